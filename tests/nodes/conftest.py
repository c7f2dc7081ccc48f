"""Fixtures for the node agent tests: a hosted cluster on the memory store with a manual clock,
an AKS-like pool template, and `settle` for waiting until the heartbeat task has written."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from support import ADMIN, CA, TOKEN, backend, clock  # noqa: F401 (fixtures, and names tests import from here)

from lks import store
from lks.clock import ManualClock
from lks.kube.cluster import Cluster
from lks.nodes import template as templates


@pytest.fixture
async def open_cluster(backend: store.Backend, clock: ManualClock) -> AsyncIterator[Callable[[], Awaitable[Cluster]]]:  # noqa: F811
    """Opens a cluster over the test's store; opening a second one is the service restarted."""
    opened: list[Cluster] = []

    async def open_() -> Cluster:
        cluster = Cluster(id="c1", name="c1", kubernetes_version="1.36", backend=backend, ca=CA,
                          tokens={TOKEN: ADMIN}, clock=clock)
        await cluster.start()
        opened.append(cluster)
        return cluster

    yield open_
    for cluster in opened:
        await cluster.stop()


@pytest.fixture
async def cluster(open_cluster: Callable[[], Awaitable[Cluster]]) -> Cluster:
    return await open_cluster()


def _template(pool: str = "nodepool1", **changes: object) -> templates.NodeTemplate:
    node_rg = "MC_rg1_c1_eastus"
    fields: dict = {
        "pool": pool, "name_digits": "12345678", "subscription_id": "00000000-0000-0000-0000-000000000001",
        "node_resource_group": node_rg, "mode": "System",
        "labels": {"agentpool": pool, "kubernetes.azure.com/agentpool": pool, "kubernetes.azure.com/mode": "system",
                   "node.kubernetes.io/instance-type": "Standard_D4ds_v5", "topology.kubernetes.io/region": "eastus",
                   "kubernetes.azure.com/cluster": node_rg},
        "capacity": {"cpu": "4", "ephemeral-storage": "153682820Ki", "hugepages-1Gi": "0", "hugepages-2Mi": "0",
                     "memory": "16381480Ki", "pods": "250"},
        "allocatable": {"cpu": "3860m", "ephemeral-storage": "141633937005", "hugepages-1Gi": "0",
                        "hugepages-2Mi": "0", "memory": "13611048Ki", "pods": "250"},
    }
    fields.update(changes)
    return templates.NodeTemplate(**fields)


@pytest.fixture
def make_template() -> Callable[..., templates.NodeTemplate]:
    """A pool template like AKS's for a Standard_D4ds_v5 pool; keyword arguments override."""
    return _template


@pytest.fixture
def template() -> templates.NodeTemplate:
    return _template()


async def _settle(check: Callable[[], Awaitable[bool]], *, tries: int = 200) -> None:
    """Let the loop run until `check()` holds (the heartbeat task writes after the clock moves)."""
    for _ in range(tries):
        if await check():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


@pytest.fixture
def settle() -> Callable[..., Awaitable[None]]:
    return _settle
