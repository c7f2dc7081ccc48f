"""The addon manager: AKS's kube-system add-ons are created, put back when deleted or changed
(`Reconcile`), and left to the user once they exist (`EnsureExists`)."""

from __future__ import annotations

import pytest

from lks.controllers.addons import AddonManager, manifests
from lks.kube import deletion, errors
from lks.kube.registry import WriteOptions

NS = manifests.NAMESPACE


@pytest.fixture
async def addons(cluster):
    manager = AddonManager(cluster)
    await manager.start()
    yield manager
    await manager.stop()


async def _get(cluster, group, version, resource, name):
    try:
        return await cluster.registry(group, version, resource).get(NS, name)
    except errors.APIError:
        return None


async def test_the_add_ons_of_a_new_aks_cluster_are_created(cluster, addons, settle):
    await settle(lambda: addons.queue.idle() and _get(cluster, "apps", "v1", "daemonsets", "azure-cns"))
    deployments = await _items(cluster, "apps", "v1", "deployments")
    assert {d["metadata"]["name"]: d["spec"]["replicas"] for d in deployments} == {
        "coredns": 2, "coredns-autoscaler": 1, "metrics-server": 2, "konnectivity-agent": 2}
    daemonsets = await _items(cluster, "apps", "v1", "daemonsets")
    assert {d["metadata"]["name"] for d in daemonsets} == {
        "kube-proxy", "azure-ip-masq-agent", "cloud-node-manager", "csi-azuredisk-node", "csi-azurefile-node",
        "azure-cns"}
    dns = await _get(cluster, "", "v1", "services", "kube-dns")
    assert dns["spec"]["clusterIP"] == cluster.dns_service_ip == "10.0.0.10"
    assert dns["metadata"]["labels"][manifests.MODE] == manifests.RECONCILE
    proxy = await _get(cluster, "apps", "v1", "daemonsets", "kube-proxy")
    assert proxy["spec"]["template"]["spec"]["containers"][0]["image"].endswith(f":v{cluster.patch_version}")
    coredns = await _get(cluster, "apps", "v1", "deployments", "coredns")
    assert coredns["metadata"]["managedFields"][0]["manager"] == "addon-manager"


async def test_reconciled_add_ons_come_back_and_ensure_exists_ones_stay_the_users(cluster, addons, settle):
    deployments = cluster.registry("apps", "v1", "deployments")
    configmaps = cluster.registry("", "v1", "configmaps")
    await settle(lambda: _get(cluster, "apps", "v1", "deployments", "coredns"))
    await deployments.delete(NS, "coredns", deletion.DeleteOptions())
    await configmaps.patch(NS, "coredns", lambda cm: {**cm, "data": {"Corefile": "broken"}}, WriteOptions())
    await configmaps.patch(NS, "coredns-custom", lambda cm: {**cm, "data": {"my.server": "example.org {}"}},
                           WriteOptions())

    async def restored():
        cm = await _get(cluster, "", "v1", "configmaps", "coredns")
        return await _get(cluster, "apps", "v1", "deployments", "coredns") and "kubernetes cluster.local" in (
            cm["data"]["Corefile"])

    await settle(restored)
    custom = await _get(cluster, "", "v1", "configmaps", "coredns-custom")
    assert custom["data"] == {"my.server": "example.org {}"}


async def test_kubenet_clusters_run_no_azure_cns():
    objs = manifests.addons(patch_version="1.36.2", dns_service_ip="10.2.0.10", pod_cidr="10.244.0.0/16",
                            network_plugin="kubenet")
    names = {(o["kind"], o["metadata"]["name"]) for o in objs}
    assert ("DaemonSet", "kube-proxy") in names and ("DaemonSet", "azure-cns") not in names
    [dns] = [o for o in objs if o["metadata"]["name"] == "kube-dns"]
    assert dns["spec"]["clusterIP"] == "10.2.0.10"


async def _items(cluster, group, version, resource):
    cache = await cluster.registry(group, version, resource).cache()
    return [o for o in cache.objects.values() if o["metadata"]["namespace"] == NS]
