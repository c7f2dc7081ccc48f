"""The real az with an Entra-integrated cluster: `az aks create --enable-aad --enable-azure-rbac
--disable-local-accounts`, an AKS RBAC role through `az role assignment create` at the cluster's
scope, `az aks get-credentials` (admin credentials refused), then kubectl through the user
kubeconfig's exec plugin with kubelogin's azurecli login (`AAD_LOGIN_METHOD=azurecli`: `lks
get-token` takes the token of the account az is logged in with)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from e2e.conftest import KUBECTL, lks_json

from .conftest import AZ, AzError

GROUP, CLUSTER = "az-entra-rg", "az-entra"


@pytest.fixture(scope="module")
def sp(lks, az) -> dict[str, Any]:
    return lks_json(lks, "ad", "sp", "create-for-rbac", "--name", "az-entra", "--role", "Owner",
                    "--scopes", f"/subscriptions/{az.config['subscription_id']}")


@pytest.fixture(scope="module")
def cluster(az, sp) -> dict[str, Any]:
    az("cloud", "register", "-n", "lks", "--endpoint-resource-manager", az.server.endpoint)
    az("cloud", "set", "-n", "lks")
    az("login", "--service-principal", "-u", sp["appId"], "-p", sp["password"], "--tenant", sp["tenant"])
    az("group", "create", "-n", GROUP, "-l", "westeurope")
    return az("aks", "create", "-g", GROUP, "-n", CLUSTER, "--node-count", "1", "--no-ssh-key", "--enable-aad",
              "--enable-azure-rbac", "--disable-local-accounts")


def test_entra_cluster_with_az(az, sp, cluster):
    aad = cluster["aadProfile"]
    assert aad["managed"] and aad["enableAzureRbac"] and aad["tenantId"] == az.config["tenant_id"]
    with pytest.raises(AzError) as err:
        az("aks", "get-credentials", "-g", GROUP, "-n", CLUSTER, "--admin", "--file", str(az.home / "admin"))
    assert "Getting static credential is not allowed because this cluster is set to disable local accounts." \
        in err.value.stderr
    az("role", "assignment", "create", "--assignee", sp["appId"], "--role",
       "Azure Kubernetes Service RBAC Cluster Admin", "--scope", cluster["id"])
    path = az.home / "entra.kubeconfig"
    az("aks", "get-credentials", "-g", GROUP, "-n", CLUSTER, "--file", str(path))

    env = {**az.env, "KUBECONFIG": str(path), "AAD_LOGIN_METHOD": "azurecli",
           "PATH": os.pathsep.join((str(Path(sys.executable).parent), str(AZ.parent), os.environ.get("PATH", "")))}
    res = subprocess.run([str(KUBECTL), "get", "nodes", "-o", "name"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.split()) == 1
    who = subprocess.run([str(KUBECTL), "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert who.returncode == 0 and who.stdout == lks_json(az.server, "ad", "sp", "show", "--id", sp["appId"])["id"]
