"""What the Gatekeeper e2e modules share: turning the `azurepolicy` add-on on for the demo
cluster with the Azure SDK, applying a document with kubectl, and waiting for a
ConstraintTemplate's status."""

from __future__ import annotations

import json

from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import ManagedClusterAddonProfile

from .conftest import LKS, StaticToken, wait_until


def enable_azure_policy(server: LKS):
    """The demo cluster with the add-on enabled (its ManagedCluster as the SDK returns it)."""
    config = json.loads((server.home / "config.json").read_text())
    aks = ContainerServiceClient(StaticToken(config["token"]), config["subscription_id"], base_url=config["endpoint"],
                                 connection_verify=config["ca_file"])
    cluster = aks.managed_clusters.get("demo", "demo")
    cluster.addon_profiles = {"azurepolicy": ManagedClusterAddonProfile(enabled=True)}
    return aks.managed_clusters.begin_create_or_update("demo", "demo", cluster).result()


def apply(server: LKS, text: str):
    return server.kubectl("apply", "-f", "-", input=text, check=False)


def template_status(server: LKS, name: str) -> dict:
    def status():
        res = server.kubectl("get", "constrainttemplate", name, "-o", "json", check=False)
        return res.returncode == 0 and (json.loads(res.stdout).get("status") or {}).get("byPod") \
            and json.loads(res.stdout)["status"]
    return wait_until(status, what=f"status of template {name}")
