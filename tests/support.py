"""What the unit tests of several packages share: the admin identity and token of test
clusters, one CA for all of them (creating keys is slow), and the manual-clock, memory-store and
started-cluster fixtures that hosted-cluster tests start from (conftests import them)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

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


@pytest.fixture
async def cluster(backend: store.Backend, clock: ManualClock) -> AsyncIterator[Cluster]:
    """A started hosted cluster on the memory store and the manual clock."""
    c = Cluster(id="c1", name="c1", kubernetes_version="1.36", backend=backend, ca=CA,
                tokens={TOKEN: ADMIN}, clock=clock)
    await c.start()
    yield c
    await c.stop()


async def pod_or_none(cluster: Cluster, name: str, namespace: str = "default") -> dict | None:
    """The pod, or None once it is gone."""
    return await cluster.registry("", "v1", "pods").get_or_none(namespace, name)


async def pod_until(cluster: Cluster, name: str, check: Callable[[dict], Any], timeout: float = 10.0,
                    namespace: str = "default") -> dict:
    """The pod once `check(pod)` holds, polled on the wall clock (a node's processes run there)."""
    deadline = time.monotonic() + timeout
    pod = None
    while time.monotonic() < deadline:
        pod = await pod_or_none(cluster, name, namespace)
        if pod is not None and check(pod):
            return pod
        await asyncio.sleep(0.01)
    raise AssertionError(f"condition not reached; pod is {pod and pod.get('status')}")
