"""`lks aks get-credentials` reads the user's kubeconfig with the safe YAML loader: an alias bomb
(or any malformed file) is an az-worded error, not a process that eats the machine."""

from __future__ import annotations

import pytest

from lks.cli import output

from .test_cli import MC_PATH, arm, client, kubeconfig, run  # noqa: F401 - fixtures shared with test_cli

BOMB = ("a: &a [" + ",".join(['"x"'] * 9) + "]\n"
        + "".join(f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)))


def test_an_alias_bomb_in_the_kubeconfig_is_refused(client, arm, tmp_path):  # noqa: F811
    path = tmp_path / "config"
    path.write_text(BOMB)
    arm.on("POST", f"{MC_PATH}/listClusterUserCredential", 200, kubeconfig("c1", "clusterUser_rg1_c1", "a"))
    with pytest.raises(output.CLIError, match=rf"^Error parsing {path} \(yaml: document contains excessive aliasing\)$"):
        run(client, "aks", "get-credentials", "-g", "rg1", "-n", "c1", "-f", str(path))
    assert path.read_text() == BOMB  # left as it was
