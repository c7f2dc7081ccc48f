"""What the unit tests of several packages share: the admin identity and token of test
clusters, one CA for all of them (creating keys is slow), and the manual-clock and memory-store
fixtures that hosted-cluster tests start from (conftests import them)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lks import pki, store
from lks.clock import ManualClock
from lks.kube.authn import User
from lks.kube.cluster import Cluster

ADMIN = User("clusterAdmin", ("system:masters", "system:authenticated"))
TOKEN = "test-token"
CA = pki.create_ca("lks-tests")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def backend() -> AsyncIterator[store.Backend]:
    b = store.open_store("memory://")
    await b.start()
    yield b
    await b.close()


async def pod_or_none(cluster: Cluster, name: str, namespace: str = "default") -> dict | None:
    """The pod, or None once it is gone."""
    return await cluster.registry("", "v1", "pods").get_or_none(namespace, name)
