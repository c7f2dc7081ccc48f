"""The real Azure CLI against lks: `az` is azure-cli from PyPI (pinned in requirements.txt,
installed by `make az` into `.venv-az`, a virtualenv of its own since its pins clash with the
project's), run as a user runs it. The modules share one `lks up` (each keeps to principals, groups and
clusters of its own names) and each has its own az state (`AZURE_CONFIG_DIR`, its own login);
az trusts lks's CA through `REQUESTS_CA_BUNDLE` only, TLS checks on."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from e2e.conftest import LKS  # tests/ is on sys.path: tests/e2e and tests/az are packages

AZ = Path(__file__).resolve().parents[2] / ".venv-az" / "bin" / "az"


class AzError(AssertionError):
    def __init__(self, args: tuple[str, ...], res: subprocess.CompletedProcess):
        super().__init__(f"az {' '.join(args)} failed ({res.returncode}): {res.stderr.strip()}")
        self.returncode = res.returncode
        self.stderr = res.stderr


class Az:
    """`az(*args)`: run az with `--output json` and return the parsed output (None when it prints
    nothing); a failure raises AzError with az's stderr. `az.run(*args)` returns the process."""

    def __init__(self, server: LKS, home: Path):
        self.server = server
        self.home = home
        config = json.loads((server.home / "config.json").read_text())
        self.config = config
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "KUBECONFIG", "REQUESTS_"))}
        self.env.update(
            HOME=str(home), AZURE_CONFIG_DIR=str(home / ".azure"), REQUESTS_CA_BUNDLE=config["ca_file"],
            AZURE_CORE_COLLECT_TELEMETRY="false", AZURE_CORE_NO_COLOR="true", AZURE_CORE_SURVEY_MESSAGE="false",
            AZURE_EXTENSION_USE_DYNAMIC_INSTALL="no", KUBECONFIG=str(home / "kubeconfig"),
        )

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([str(AZ), *args], env=self.env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def __call__(self, *args: str, timeout: float = 300) -> Any:
        res = self.run(*args, "--output", "json", timeout=timeout)
        if res.returncode != 0:
            raise AzError(args, res)
        return json.loads(res.stdout) if res.stdout.strip() else None


@pytest.fixture(scope="session")
def lks(tmp_path_factory: pytest.TempPathFactory):
    if not AZ.exists():
        message = f"the Azure CLI is not installed at {AZ}: run `make az`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = LKS(tmp_path_factory.mktemp("lks-home"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def az(lks: LKS, tmp_path_factory: pytest.TempPathFactory) -> Az:
    return Az(lks, tmp_path_factory.mktemp("az-home"))
