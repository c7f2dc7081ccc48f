"""`Microsoft.ContainerInstance/containerGroups` over ARM, as azure-mgmt-containerinstance's
`ContainerInstanceManagementClient` drives it: create or update (a long-running operation, as
the rest of the management API: the request waits briefly, then answers with
`Azure-AsyncOperation` to ACI's own `locations/{l}/operations/{id}`), get, list by group and by
subscription, delete, start, stop and restart, a container's `logs` (tail, timestamps), `exec`
and `attach` (ACI's answer: a `webSocketUri` and a `password`, the first message the client
sends on that WebSocket; then exec relays the terminal both ways and attach streams the
container's output), and the location's quota `usages`. The groups themselves are
`lks.aci.groups`'.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from lks.aci import groups as aci_groups
from lks.aci import model
from lks.aci.groups import ContainerGroups
from lks.arm import documents
from lks.arm.app import Call, Route, json_response, route
from lks.arm.errors import ARMError, not_found
from lks.arm.operations import RETRY_AFTER
from lks.nodes import containerlogs
from lks.nodes.streams import LogOptions

Doc = dict[str, Any]
NAMESPACE = "Microsoft.ContainerInstance"
SOCKET_TTL = 300.0  # seconds a webSocketUri stays good for its first connection
GROUPS = "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.ContainerInstance/containerGroups"
GROUP = GROUPS + "/{name}"
CONTAINER = GROUP + "/containers/{container}"
LOCATION = "/subscriptions/{subscription}/providers/Microsoft.ContainerInstance/locations/{location}"
QUOTA_GROUPS, QUOTA_CORES = 100, 10  # ACI's default per-region quotas of a subscription


@dataclass(slots=True)
class _Socket:
    password: str
    kind: str  # exec | attach
    key: str  # the runtime's group key
    container: str
    argv: list[str]
    expires: float


class ContainerGroupsAPI:
    def __init__(self, service: ContainerGroups, *, require_group: Callable[[str, str], Awaitable[Any]],
                 url: Callable[[str, str], str], endpoint: Callable[[], str]):
        """`require_group(subscription, name)` raises ARM's ResourceGroupNotFound; `url(path,
        api_version)` makes an absolute URL; `endpoint()` is the service's https://host:port."""
        self.service = service
        self.require_group = require_group
        self.url = url
        self.endpoint = endpoint
        self._sockets: dict[str, _Socket] = {}

    def routes(self) -> list[Route]:
        def r(path: str, methods: dict[str, Any], type_name: str) -> Route:
            return route(path, methods, api_versions=model.API_VERSIONS, type_name=type_name, namespace=NAMESPACE)

        return [
            r("/subscriptions/{subscription}/providers/Microsoft.ContainerInstance/containerGroups",
              {"GET": self.list_subscription}, "containerGroups"),
            r(GROUPS, {"GET": self.list_group}, "containerGroups"),
            r(GROUP, {"PUT": self.put, "GET": self.get, "DELETE": self.delete, "PATCH": self.patch},
              "containerGroups"),
            r(GROUP + "/start", {"POST": self.start}, "containerGroups"),
            r(GROUP + "/stop", {"POST": self.stop}, "containerGroups"),
            r(GROUP + "/restart", {"POST": self.restart}, "containerGroups"),
            r(CONTAINER + "/logs", {"GET": self.logs}, "containerGroups/containers"),
            r(CONTAINER + "/exec", {"POST": self.exec}, "containerGroups/containers"),
            r(CONTAINER + "/attach", {"POST": self.attach}, "containerGroups/containers"),
            r(LOCATION + "/operations/{operation}", {"GET": self.operation_status}, "locations/operations"),
            r(LOCATION + "/usages", {"GET": self.usages}, "locations/usages"),
        ]

    def aiohttp_routes(self) -> list[web.RouteDef]:
        """The WebSockets of exec and attach (outside ARM: the password is the credential)."""
        return [web.get("/aci/sockets/{token}", self.socket)]

    # -- resources -----------------------------------------------------------------------------

    async def _load(self, call: Call) -> documents.Stored:
        p = call.params
        stored = await self.service.load(p["subscription"], p["group"], p["name"])
        if stored is None:
            await self.require_group(p["subscription"], p["group"])
            raise not_found(model.TYPE, p["name"], p["group"])
        return stored

    async def put(self, call: Call) -> web.Response:
        p = call.params
        await self.require_group(p["subscription"], p["group"])
        doc, op, created = await self.service.put(p["subscription"], p["group"], p["name"], call.body)
        status = 201 if created else 200
        if await self._done(op):
            return json_response(await self._current(doc["id"]), status)
        return json_response(self.service.shown(doc), status, self._monitor(op, call.api_version))

    async def patch(self, call: Call) -> web.Response:
        """ACI's update: tags only."""
        stored = await self._load(call)
        doc = stored.doc
        if isinstance(call.body, dict) and "tags" in call.body:
            doc["tags"] = call.body["tags"] or {}
            await self.service.docs.update(doc, stored.revision)
        return json_response(self.service.shown(doc))

    async def get(self, call: Call) -> web.Response:
        return json_response(self.service.shown((await self._load(call)).doc))

    async def list_group(self, call: Call) -> web.Response:
        p = call.params
        await self.require_group(p["subscription"], p["group"])
        return self._list(call, await self.service.all(p["subscription"], p["group"]))

    async def list_subscription(self, call: Call) -> web.Response:
        return self._list(call, await self.service.all(call.params["subscription"]))

    def _list(self, call: Call, docs: list[Doc]) -> web.Response:
        return json_response({"value": [self.service.shown(d) for d in docs
                                        if call.may(f"{model.TYPE}/read", d["id"])]})

    async def delete(self, call: Call) -> web.Response:
        p = call.params
        stored = await self.service.load(p["subscription"], p["group"], p["name"])
        if stored is None:
            await self.require_group(p["subscription"], p["group"])
            return web.Response(status=204)
        shown = self.service.shown(stored.doc)
        op = self.service.operations.running(stored.doc["id"])
        if op is None or op[documents.PRIVATE]["kind"] != "containerGroups.delete":
            op = await self.service.begin_delete(stored)
        if await self._done(op):
            return json_response(shown)
        return web.Response(status=202, headers=self._monitor(op, call.api_version))

    async def start(self, call: Call) -> web.Response:
        stored = await self._load(call)
        self._refuse_if_busy(stored.doc)
        op = await self.service.begin_start(stored)
        if await self._done(op):
            return web.Response(status=204)
        return web.Response(status=202, headers=self._monitor(op, call.api_version))

    async def stop(self, call: Call) -> web.Response:
        stored = await self._load(call)
        self._refuse_if_busy(stored.doc)
        await self.service.stop_group(stored)
        return web.Response(status=204)

    async def restart(self, call: Call) -> web.Response:
        stored = await self._load(call)
        self._refuse_if_busy(stored.doc)
        await self.service.restart(stored)
        return web.Response(status=204)

    def _refuse_if_busy(self, doc: Doc) -> None:
        if self.service.operations.running(doc["id"]) is not None:
            raise ARMError("Conflict", f"The container group '{doc['name']}' is being changed by another operation; "
                           "retry when it has finished.", 409)

    # -- containers ------------------------------------------------------------------------------

    async def logs(self, call: Call) -> web.Response:
        stored = await self._load(call)
        q = call.request.query
        tail = None
        if q.get("tail"):
            try:
                tail = int(q["tail"])
            except ValueError:
                raise ARMError("InvalidParameter", f"The value '{q['tail']}' of parameter 'tail' is invalid.") from None
        timestamps = q.get("timestamps", "").lower() == "true"
        content = await self.service.logs(stored.doc, call.params["container"], tail=tail, timestamps=timestamps)
        return json_response({"content": content})

    async def exec(self, call: Call) -> web.Response:
        stored = await self._load(call)
        body = call.body if isinstance(call.body, dict) else {}
        command = body.get("command")
        if not isinstance(command, str):
            raise ARMError("InvalidRequestContent", "The request content was invalid and could not be deserialized: "
                           "'command is required'.")
        g = self.service.running(stored.doc, call.params["container"])
        return json_response(self._socket("exec", g.spec.key, call.params["container"],
                                          aci_groups.exec_argv(command)))

    async def attach(self, call: Call) -> web.Response:
        stored = await self._load(call)
        g = self.service.running(stored.doc, call.params["container"])
        return json_response(self._socket("attach", g.spec.key, call.params["container"], []))

    def _socket(self, kind: str, key: str, container: str, argv: list[str]) -> Doc:
        now = time.monotonic()
        for token in [t for t, s in self._sockets.items() if s.expires < now]:
            del self._sockets[token]
        token, password = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self._sockets[token] = _Socket(password, kind, key, container, argv, now + SOCKET_TTL)
        base = self.endpoint().replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return {"webSocketUri": f"{base}/aci/sockets/{token}", "password": password}

    async def socket(self, request: web.Request) -> web.StreamResponse:
        """The exec or attach WebSocket: the client's first message is the password."""
        s = self._sockets.pop(request.match_info["token"], None)
        if s is None or s.expires < time.monotonic():
            raise web.HTTPNotFound()
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        try:
            first = await ws.receive(timeout=30)
        except TimeoutError:
            await ws.close()
            return ws
        text = first.data if first.type == WSMsgType.TEXT else (
            first.data.decode(errors="replace") if first.type == WSMsgType.BINARY else "")
        if not secrets.compare_digest(text.strip(), s.password):
            await ws.close(code=4001, message=b"unauthorized")
            return ws
        runtime = self.service.runtime
        if runtime.get(s.key) is None:
            await ws.close()
            return ws
        if s.kind == "exec":
            await _exec(ws, runtime, s)
        else:
            await _attach(ws, runtime, s)
        return ws

    # -- operations and quotas ---------------------------------------------------------------------

    async def operation_status(self, call: Call) -> web.Response:
        op = await self.service.operations.settle(call.params["operation"])
        if op is None or (op[documents.PRIVATE].get("location") or "").lower() != call.params["location"].lower():
            raise ARMError("NotFound", f"Operation '{call.params['operation']}' was not found.", 404)
        headers = {"Retry-After": RETRY_AFTER} if op["status"] == "InProgress" else None
        return json_response(documents.public(op), headers=headers)

    async def usages(self, call: Call) -> web.Response:
        location = call.params["location"].replace(" ", "").lower()
        docs = [d for d in await self.service.all(call.params["subscription"]) if d["location"] == location]
        cores = sum(model.requests(d)[0] for d in docs)
        return json_response({"value": [
            {"id": f"{call.request.path}/ContainerGroups", "unit": "Count", "currentValue": len(docs),
             "limit": QUOTA_GROUPS, "name": {"value": "ContainerGroups", "localizedValue": "Container Groups"}},
            {"id": f"{call.request.path}/StandardCores", "unit": "Count", "currentValue": int(-(-cores // 1)),
             "limit": QUOTA_CORES, "name": {"value": "StandardCores", "localizedValue": "Standard Cores"}},
        ]})

    def _monitor(self, op: Doc, api_version: str) -> dict[str, str]:
        meta = op[documents.PRIVATE]
        path = (f"/subscriptions/{meta['subscription']}/providers/{NAMESPACE}/locations/{meta['location']}"
                f"/operations/{op['name']}")
        return {"Azure-AsyncOperation": self.url(path, api_version), "Retry-After": RETRY_AFTER}

    async def _done(self, op: Doc) -> bool:
        record = await self.service.operations.settle(op["name"])
        if record is not None and record["status"] == "Failed":
            err = record.get("error") or {}
            raise ARMError(err.get("code", "Failed"), err.get("message", ""), 400)
        return record is not None and record["status"] == "Succeeded"

    async def _current(self, rid: str) -> Doc:
        stored = await self.service.docs.get(rid)
        if stored is None:
            raise ARMError("ResourceNotFound", f"The resource {rid} was deleted.", 404)
        return self.service.shown(stored.doc)


async def _exec(ws: web.WebSocketResponse, runtime: Any, s: _Socket) -> None:
    try:
        proc, master = await runtime.exec(s.key, s.container, s.argv)
    except (OSError, KeyError) as err:
        await ws.send_str(f"failed to exec in container: {err}\r\n")
        await ws.close()
        return
    loop = asyncio.get_running_loop()
    out: asyncio.Queue[bytes] = asyncio.Queue()

    def readable() -> None:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the terminal's last process is gone
            data = b""
        if not data:
            loop.remove_reader(master)
        out.put_nowait(data)

    loop.add_reader(master, readable)

    async def send() -> None:
        while data := await out.get():
            await ws.send_str(data.decode(errors="replace"))

    async def receive() -> None:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                os.write(master, msg.data.encode())
            elif msg.type == WSMsgType.BINARY:
                os.write(master, msg.data)

    sender, receiver = asyncio.ensure_future(send()), asyncio.ensure_future(receive())
    try:
        await asyncio.wait({sender, asyncio.ensure_future(proc.wait())}, return_when=asyncio.FIRST_COMPLETED)
        await proc.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(sender), 1.0)
    finally:
        loop.remove_reader(master)
        os.close(master)
        for t in (sender, receiver):
            t.cancel()
        aci_kill(proc.pid)
        await ws.close()


def aci_kill(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, signal.SIGKILL)


async def _attach(ws: web.WebSocketResponse, runtime: Any, s: _Socket) -> None:
    """The container's output from now on, as it comes, until it exits or the client goes."""
    writer = runtime.live_writer(s.key, s.container)
    path = runtime.log_path(s.key, s.container)
    if writer is None or path is None:
        await ws.close()
        return
    opts = LogOptions(container=s.container, follow=True, tail_lines=0)

    async def stream() -> None:
        async for chunk in containerlogs.read(path, opts, now=runtime.now(), live=writer):
            await ws.send_str(chunk.decode(errors="replace"))

    task = asyncio.ensure_future(stream())
    closed = asyncio.ensure_future(ws.receive())
    try:
        await asyncio.wait({task, closed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        task.cancel()
        closed.cancel()
        await ws.close()
