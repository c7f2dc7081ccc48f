"""Fixtures for API-server tests that need a live hosted cluster: one on the memory store,
served by the real HTTP layer (`KubeAPI`) on an aiohttp test server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import test_utils, web
from support import ADMIN, CA, TOKEN

from lks import store
from lks.clock import ManualClock
from lks.kube.cluster import Cluster
from lks.kube.http.app import KubeAPI

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    backend = store.open_store("memory://")
    await backend.start()
    c = Cluster(id="c1", name="c1", kubernetes_version="1.36", backend=backend, ca=CA,
                tokens={TOKEN: ADMIN}, clock=ManualClock())
    await c.start()
    # what the ServiceAccounts controller (not running here) would make: pods need their account
    await c.registry("", "v1", "serviceaccounts").create("default", {"metadata": {"name": "default"}})
    yield c
    await c.stop()
    await backend.close()


@pytest.fixture
def kube_api(cluster: Cluster) -> KubeAPI:
    return KubeAPI(lambda cid: cluster if cid == cluster.id else None)


@pytest.fixture
async def client(kube_api: KubeAPI) -> AsyncIterator[test_utils.TestClient]:
    app = web.Application()
    app.add_routes(kube_api.routes())
    async with test_utils.TestClient(test_utils.TestServer(app)) as c:
        yield c
