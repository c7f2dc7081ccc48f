"""Managed Entra integration turned on for a running cluster (`lks aks update --enable-aad`, as
AKS allows), az's usage errors of the Entra flags, and the integration kept across a restart
of the service (the clusters start before the tenant's issuer: it is given to them after)."""

from __future__ import annotations

import uuid

import pytest
import yaml

from .conftest import LKS, lks_cli, lks_json
from .test_entra_clusters import _kubectl, _object_id, _raw, _sp


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = LKS(tmp_path_factory.mktemp("lks-entra"))
    s.start()
    yield s
    s.stop()


def test_enable_on_existing_cluster_and_restart(server):
    name = f"aks-admins-{uuid.uuid4().hex[:6]}"
    group = lks_json(server, "ad", "group", "create", "--display-name", name, "--mail-nickname", name)["id"]
    admin, outsider = _sp(server, "admin"), _sp(server, "outsider")
    res = lks_cli(server, "ad", "group", "member", "add", "-g", group, "--member-id", _object_id(server, admin["appId"]))
    assert res.returncode == 0, res.stderr
    res = lks_cli(server, "aks", "update", "-g", "demo", "-n", "demo", "--enable-azure-rbac")
    assert res.returncode != 0
    assert ('Cannot specify "--aad-tenant-id/--aad-admin-group-object-ids/--enable-azure-rbac/--disable-azure-rbac" '
            "if managed AAD is not enabled") in res.stderr
    doc = lks_json(server, "aks", "update", "-g", "demo", "-n", "demo", "--enable-aad",
                   "--aad-admin-group-object-ids", group)
    assert doc["aadProfile"]["managed"] and doc["aadProfile"]["enableAzureRbac"] is False
    res = lks_cli(server, "aks", "update", "-g", "demo", "-n", "demo", "--enable-aad")
    assert res.returncode != 0 and 'Cannot specify "--enable-aad" if managed AAD is already enabled' in res.stderr

    kubeconfig = server.home / "entra-user"
    res = lks_cli(server, "aks", "get-credentials", "-g", "demo", "-n", "demo", "--file", str(kubeconfig))
    assert res.returncode == 0, res.stderr
    assert yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["exec"]["command"] == "lks"
    res = _kubectl(server, kubeconfig, admin, "get", "nodes")
    assert res.returncode == 0, res.stderr
    # without Azure RBAC, someone outside the admin groups meets in-cluster RBAC alone
    res = _kubectl(server, kubeconfig, outsider, "get", "nodes")
    assert res.returncode != 0 and "Update role assignment" not in res.stderr

    server.restart()
    res = _kubectl(server, kubeconfig, admin, "get", "clusterrolebinding", "aks-cluster-admin-binding-aad")
    assert res.returncode == 0, res.stderr
    assert _raw(kubeconfig, "/api", "garbage")[0] == 401

    doc = lks_json(server, "aks", "update", "-g", "demo", "-n", "demo", "--aad-admin-group-object-ids", "")
    assert doc["aadProfile"]["adminGroupObjectIDs"] == []
    res = _kubectl(server, kubeconfig, admin, "get", "nodes")
    assert res.returncode != 0 and "forbidden" in res.stderr.lower()
