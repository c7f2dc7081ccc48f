"""Managed Entra integration turned on for a running cluster (`lks aks update --enable-aad`, as
AKS allows), az's usage errors of the Entra flags, and the integration kept across a restart
of the service (the clusters start before the tenant's issuer: it is given to them after)."""

from __future__ import annotations

import uuid

import pytest
import yaml

from .conftest import LKS, lks_cli, lks_json
from .test_entra_clusters import _kubectl, _raw, _signed, _token_kubeconfig

GROUP = str(uuid.uuid4())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = LKS(tmp_path_factory.mktemp("lks-entra"))
    s.start()
    yield s
    s.stop()


def test_enable_on_existing_cluster_and_restart(server):
    import json

    config = json.loads((server.home / "config.json").read_text())
    res = lks_cli(server, "aks", "update", "-g", "demo", "-n", "demo", "--enable-azure-rbac")
    assert res.returncode != 0
    assert ('Cannot specify "--aad-tenant-id/--aad-admin-group-object-ids/--enable-azure-rbac/--disable-azure-rbac" '
            "if managed AAD is not enabled") in res.stderr
    doc = lks_json(server, "aks", "update", "-g", "demo", "-n", "demo", "--enable-aad",
                   "--aad-admin-group-object-ids", GROUP)
    assert doc["aadProfile"]["managed"] and doc["aadProfile"]["enableAzureRbac"] is False
    res = lks_cli(server, "aks", "update", "-g", "demo", "-n", "demo", "--enable-aad")
    assert res.returncode != 0 and 'Cannot specify "--enable-aad" if managed AAD is already enabled' in res.stderr

    kubeconfig = server.home / "entra-user"
    res = lks_cli(server, "aks", "get-credentials", "-g", "demo", "-n", "demo", "--file", str(kubeconfig))
    assert res.returncode == 0, res.stderr
    assert yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["exec"]["command"] == "lks"
    admin = _token_kubeconfig(server, kubeconfig, _signed(server, config, groups=[GROUP]))
    assert _kubectl(server, admin, None, "get", "nodes").returncode == 0
    # without Azure RBAC, someone outside the admin groups meets in-cluster RBAC alone
    outsider = _kubectl(server, _token_kubeconfig(server, kubeconfig, _signed(server, config)), None, "get", "nodes")
    assert outsider.returncode != 0 and "Update role assignment" not in outsider.stderr

    server.restart()
    config = json.loads((server.home / "config.json").read_text())
    admin = _token_kubeconfig(server, kubeconfig, _signed(server, config, groups=[GROUP]))
    res = _kubectl(server, admin, None, "get", "clusterrolebinding", "aks-cluster-admin-binding-aad")
    assert res.returncode == 0, res.stderr
    assert _raw(kubeconfig, "/api", "garbage")[0] == 401

    doc = lks_json(server, "aks", "update", "-g", "demo", "-n", "demo", "--aad-admin-group-object-ids", "")
    assert doc["aadProfile"]["adminGroupObjectIDs"] == []
    res = _kubectl(server, admin, None, "get", "nodes")
    assert res.returncode != 0 and "forbidden" in res.stderr.lower()
