"""The Graph subset's in-process fixtures, shared by the Graph, application and group tests: a
principals store on the memory backend and an aiohttp client of `GraphAPI` signed in as the
bootstrap owner, with a stand-in for the management API's authentication."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import test_utils, web

from lks import store
from lks.arm.errors import ARMError
from lks.identity.caller import Caller
from lks.identity.graph import GraphAPI
from lks.identity.principals import Principals

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OWNER = "owner-token"
READER = "reader-token"


def authenticate(request: web.Request) -> Caller:
    """A stand-in for the management API's helper: the bootstrap owner, or a read-only principal."""
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if not request.headers.get("Authorization"):
        raise ARMError("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.", 401)
    if token == OWNER:
        return Caller(object_id="owner", tenant_id=TENANT, kind="User", name="owner", bootstrap=True)
    if token == READER:
        return Caller(object_id="sp", tenant_id=TENANT, kind="ServicePrincipal", name="sp", app_id="sp")
    raise ARMError("InvalidAuthenticationToken", "The access token is invalid.", 401)


@pytest.fixture
async def principals() -> AsyncIterator[Principals]:
    backend = store.open_store("memory://")
    await backend.start()
    yield Principals(backend)
    await backend.close()


@pytest.fixture
async def client(principals: Principals) -> AsyncIterator[test_utils.TestClient]:
    app = web.Application()
    app.add_routes(GraphAPI(principals=principals, tenant_id=TENANT, authenticate=authenticate).routes())
    async with test_utils.TestClient(test_utils.TestServer(app), headers={"Authorization": f"Bearer {OWNER}"}) as c:
        yield c
