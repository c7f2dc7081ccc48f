"""The container groups' network namespace exists only while a group is on it (a service with no
groups makes none), and what a killed service left is swept when the next one starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lks.aci import runtime
from lks.net import netns, podnet

pytestmark = pytest.mark.skipif(not netns.supported(), reason="network namespaces are not available here")


def group(key: str, ip: str) -> runtime.GroupSpec:
    return runtime.GroupSpec(key=key, name=key, restart_policy="Never", subnet=("default", "10.9.0.0/24"), ip=ip,
                             containers=[runtime.ContainerSpec("main", ["sleep", "30"], {"PATH": os.environ["PATH"]})])


async def test_made_for_the_first_group_removed_with_the_last(tmp_path: Path) -> None:
    rt = runtime.Runtime(data_dir=tmp_path)
    await rt.start()
    try:
        assert podnet.leftovers(tmp_path / "net") == []
        await rt.run(group("a", "10.9.0.4"))
        await rt.run(group("b", "10.9.0.5"))
        assert len(podnet.leftovers(tmp_path / "net")) == 3  # the VNet and two groups
        await rt.stop("a", grace=0)
        assert len(podnet.leftovers(tmp_path / "net")) == 2
        await rt.stop("b", grace=0)
        assert podnet.leftovers(tmp_path / "net") == []
    finally:
        await rt.close()
    assert podnet.leftovers(tmp_path / "net") == []


async def test_a_restart_sweeps_what_a_killed_service_left(tmp_path: Path) -> None:
    killed = runtime.Runtime(data_dir=tmp_path)
    await killed.start()
    await killed.run(group("a", "10.9.0.4"))
    assert podnet.leftovers(tmp_path / "net")
    # (as after kill -9: nothing closed; the processes go here so the test leaves none)
    for key in list(killed.groups):
        for pid in killed.pids(key):
            os.kill(pid, 9)
    rt = runtime.Runtime(data_dir=tmp_path)
    await rt.start()
    try:
        assert podnet.leftovers(tmp_path / "net") == []
    finally:
        await rt.close()
        await killed.close()
    assert podnet.leftovers(tmp_path / "net") == []
