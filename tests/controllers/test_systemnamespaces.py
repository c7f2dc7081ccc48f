"""System namespaces as kube-apiserver keeps them: `default`, `kube-system` and `kube-public`
cannot be deleted (NamespaceLifecycle's 403), and a deleted `kube-node-lease` is emptied,
removed and created again by the system namespaces controller."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lks.controllers.namespace import NamespaceController
from lks.controllers.systemnamespaces import SystemNamespacesController
from lks.kube import deletion, errors
from lks.kube.cluster import Cluster

from . import workloads as w


@pytest.fixture
async def controllers(cluster: Cluster) -> AsyncIterator[tuple[NamespaceController, SystemNamespacesController]]:
    pair = (NamespaceController(cluster), SystemNamespacesController(cluster))
    for c in pair:
        await c.start()
    yield pair
    for c in reversed(pair):
        await c.stop()


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public"])
async def test_immortal_namespaces_refuse_deletion(cluster: Cluster, name: str) -> None:
    with pytest.raises(errors.APIError) as caught:
        await cluster.registry("", "v1", "namespaces").delete(None, name, deletion.DeleteOptions())
    err = caught.value
    assert (err.code, err.reason) == (403, "Forbidden")
    assert err.message == f'namespaces "{name}" is forbidden: this namespace may not be deleted'


async def test_a_deleted_node_lease_namespace_comes_back(cluster: Cluster, controllers) -> None:
    namespaces = cluster.registry("", "v1", "namespaces")
    leases = cluster.registry("coordination.k8s.io", "v1", "leases")
    await leases.create("kube-node-lease", {"metadata": {"name": "node-1"}, "spec": {"holderIdentity": "node-1"}})
    before = await namespaces.get(None, "kube-node-lease")
    await namespaces.delete(None, "kube-node-lease", deletion.DeleteOptions())

    async def recreated():
        ns = await namespaces.get_or_none(None, "kube-node-lease")
        return ns is not None and ns["metadata"]["uid"] != before["metadata"]["uid"] and ns

    ns = await w.until(recreated)
    assert ns["status"]["phase"] == "Active" and "deletionTimestamp" not in ns["metadata"]
    assert await leases.get_or_none("kube-node-lease", "node-1") is None  # emptied on the way
