"""`lks up --node-provisioning-time`: a scale-up's new nodes register only once that time has
passed on the service's clock (here 3 minutes on a clock 20 times the wall's: 9 s), while the
cluster and its pool show `Scaling` as on AKS; a bad value is refused as az refuses a bad flag."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import LKS, lks_cli, lks_json, wait_until


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    s = LKS(tmp_path_factory.mktemp("lks-provisioning"), "--time-scale", "20", "--node-provisioning-time", "3m")
    s.start()
    yield s
    s.stop()


def _nodes(server: LKS) -> list[str]:
    out = server.kubectl("get", "nodes", "-l", "kubernetes.azure.com/agentpool=nodepool1", "-o", "name").stdout
    return out.split()


def test_scaled_up_nodes_register_after_the_provisioning_time(slow):
    before = _nodes(slow)
    res = lks_cli(slow, "aks", "scale", "-g", "demo", "-n", "demo", "--nodepool-name", "nodepool1",
                  "--node-count", str(len(before) + 2), "--no-wait")
    assert res.returncode == 0, res.stderr
    shown = lks_json(slow, "aks", "show", "-g", "demo", "-n", "demo")
    assert shown["provisioningState"] == "Scaling"
    assert shown["agentPoolProfiles"][0]["provisioningState"] == "Scaling"
    assert _nodes(slow) == before  # the VMs are still booting
    wait_until(lambda: len(_nodes(slow)) == len(before) + 2, timeout=120, what="the two new nodes")
    shown = wait_until(lambda: (s := lks_json(slow, "aks", "show", "-g", "demo", "-n", "demo"))
                       ["provisioningState"] == "Succeeded" and s, timeout=60, what="the scale to succeed")
    assert shown["agentPoolProfiles"][0]["count"] == len(before) + 2


def test_a_bad_duration_is_refused(tmp_path):
    res = subprocess.run([sys.executable, "-m", "lks", "up", "--node-provisioning-time", "soon"],
                         env={"LKS_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2
    assert "ERROR: argument --node-provisioning-time: invalid duration: 'soon'" in res.stderr
