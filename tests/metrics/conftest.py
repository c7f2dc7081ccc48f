"""Fixtures for the metrics tests: a hosted cluster on the memory store with a manual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from support import ADMIN, CA, TOKEN, backend, clock  # noqa: F401 (fixtures)

from lks import store
from lks.clock import ManualClock
from lks.kube.cluster import Cluster


@pytest.fixture
async def cluster(backend: store.Backend, clock: ManualClock) -> AsyncIterator[Cluster]:  # noqa: F811
    c = Cluster(id="c1", name="c1", kubernetes_version="1.36", backend=backend, ca=CA,
                tokens={TOKEN: ADMIN}, clock=clock)
    await c.start()
    yield c
    await c.stop()
