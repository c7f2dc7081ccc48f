"""Long-running operations, as ARM defines them: a journal of operation records in the store,
and one task per running operation that carries it out.

A mutating request records an operation (`InProgress`) and its task runs the registered work
function. The record ends `Succeeded`, `Failed` (with the ARM error) or `Canceled`. Work
functions are level-triggered (they bring a resource to its desired state), so an operation
interrupted by a restart simply runs again: `resume` restarts every record still `InProgress`,
and none is ever left behind.

Most lks operations take a fraction of a second, so the request that started one waits for it
up to `SYNC_BUDGET` (`answer_put`, `answer_action`): one that succeeded by then is answered
synchronously with its final state (a PUT's resource with `provisioningState: Succeeded`, a
DELETE's or action's 204), as ARM allows; azure-core's ARMPolling then reads the state from
that answer and polls nothing (with an `Azure-AsyncOperation` header it would poll, and sleep
`Retry-After` once). An operation still running, or one that failed, is answered
asynchronously: 201/202 with the `Azure-AsyncOperation` and/or `Location` URLs of its record,
whose monitors (`settle`) again wait up to the budget before they answer `InProgress`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from lks import store
from lks.arm import documents
from lks.arm.app import json_response
from lks.arm.errors import ARMError
from lks.clock import Clock, iso8601
from lks.observability.service import SERVICE

log = logging.getLogger(__name__)

Doc = dict[str, Any]
Work = Callable[[Doc], Awaitable[Doc | None]]  # returns the operation's result body, if any

Url = Callable[[str, str], str]  # (path, api-version) -> the absolute URL clients follow

RETRY_AFTER = "1"  # seconds: clients poll again almost at once (AKS says 10-600; lks is fast)
SYNC_BUDGET_ENV = "LKS_SYNC_ANSWER_SECONDS"
# how long a request waits for the operation it started before answering asynchronously: a
# 3-node cluster takes ~0.35 s, and waiting costs nothing but the open request
SYNC_BUDGET = float(os.environ.get(SYNC_BUDGET_ENV) or 0.5)
_PROVIDER = "Microsoft.ContainerService"
_KEY = "/lks/operations/"
PREFIX = _KEY  # the records' keys: a watch of it sees every operation end (after `running` forgets it)


class Operations:
    def __init__(self, backend: store.Backend, *, clock: Clock | None = None, url: Url | None = None,
                 sync_budget: float = SYNC_BUDGET):
        self.store = backend
        self.clock = clock or Clock()
        self.url = url or (lambda path, api_version: f"{path}?api-version={api_version}")
        self.sync_budget = sync_budget
        self._work: dict[str, Work] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._busy: dict[str, Doc] = {}  # resource id (lowercase) -> its running operation

    def register(self, kind: str, work: Work) -> None:
        self._work[kind] = work

    @staticmethod
    def path(subscription: str, location: str | None, op_id: str, *, results: bool = False) -> str:
        """The operation's status path; `results` for the Location (operation result) path."""
        if location is None:  # Microsoft.Resources operations (resource group deletion)
            return f"/subscriptions/{subscription}/operationresults/{op_id}"
        leaf = "operationresults" if results else "operations"
        return f"/subscriptions/{subscription}/providers/{_PROVIDER}/locations/{location}/{leaf}/{op_id}"

    def running(self, resource_id: str) -> Doc | None:
        """The operation currently changing `resource_id`, if any (its record)."""
        return self._busy.get(resource_id.lower())

    async def begin(self, kind: str, *, subscription: str, location: str | None, resource_id: str,
                    action: str, args: Doc | None = None) -> Doc:
        """Record and start an operation on `resource_id`."""
        op_id = str(uuid.uuid4())
        op = {
            "id": self.path(subscription, location, op_id),
            "name": op_id,
            "status": "InProgress",
            "startTime": iso8601(self.clock.now()),
            documents.PRIVATE: {"kind": kind, "resourceId": resource_id, "action": action,
                                "subscription": subscription, "location": location, "args": args or {}},
        }
        await self.store.create(_KEY + op_id, orjson.dumps(op))
        self._start(op)
        return op

    def _start(self, op: Doc) -> None:
        meta = op[documents.PRIVATE]
        self._busy[meta["resourceId"].lower()] = op
        self._tasks[op["name"]] = asyncio.create_task(self._run(op), name=f"operation {meta['action']}")

    async def _run(self, op: Doc) -> None:
        meta = op[documents.PRIVATE]
        started = time.perf_counter()
        try:
            try:
                result = await self._work[meta["kind"]](op)
                op.update(status="Succeeded", percentComplete=100.0)
                if result is not None:
                    meta["result"] = result
            except asyncio.CancelledError:
                raise  # shutdown: the record stays InProgress and resumes after the restart
            except ARMError as err:
                op.update(status="Failed", error=err.body()["error"])
            except Exception as err:  # a bug must still end the operation, never leave it hanging
                log.exception("operation %s (%s) failed", op["name"], meta["action"])
                op.update(status="Failed", error={"code": "InternalOperationError",
                                                  "message": f"An internal error occurred: {type(err).__name__}"})
            finally:
                if self._busy.get(meta["resourceId"].lower()) is op:
                    del self._busy[meta["resourceId"].lower()]
            op["endTime"] = iso8601(self.clock.now())
            SERVICE.operation(meta["kind"], meta["action"], op["status"], time.perf_counter() - started)
            kv = await self.store.get(_KEY + op["name"])
            if kv is not None:
                await self.store.update(_KEY + op["name"], orjson.dumps(op), mod_revision=kv.mod_revision)
        finally:
            # only now: a request waiting on the task (`_succeeded`) finds the record final
            self._tasks.pop(op["name"], None)

    async def progress(self, op: Doc, percent: float) -> None:
        """A running operation's work reports how far it has come: its record's
        `percentComplete`, which the status monitor shows (100 once it succeeds)."""
        op["percentComplete"] = round(min(max(percent, 0.0), 99.9), 1)
        kv = await self.store.get(_KEY + op["name"])
        if kv is not None:
            await self.store.update(_KEY + op["name"], orjson.dumps(op), mod_revision=kv.mod_revision)

    async def get(self, op_id: str) -> Doc | None:
        kv = await self.store.get(_KEY + op_id)
        return orjson.loads(kv.value) if kv else None

    async def resume(self) -> None:
        """Start again every operation a previous run left InProgress."""
        res = await self.store.list(_KEY)
        for kv in res.items:
            op = orjson.loads(kv.value)
            if op.get("status") == "InProgress":
                log.info("resuming operation %s (%s)", op["name"], op[documents.PRIVATE]["action"])
                self._start(op)

    async def stop(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- ARM's answer to the request that started an operation --------------------------------

    def monitors(self, op: Doc, api_version: str, *, location: bool, async_operation: bool = True) -> dict[str, str]:
        """The headers that send a client to `op`: `Azure-AsyncOperation` (its status) and/or
        `Location` (its result), and how soon to look."""
        meta = op[documents.PRIVATE]
        sub, where = meta["subscription"], meta["location"]
        headers = {"Retry-After": RETRY_AFTER}
        if async_operation:
            headers["Azure-AsyncOperation"] = self.url(self.path(sub, where, op["name"]), api_version)
        if location:
            headers["Location"] = self.url(self.path(sub, where, op["name"], results=True), api_version)
        return headers

    async def answer_put(self, op: Doc, api_version: str, *, status: int, accepted: Doc,
                         final: Callable[[], Awaitable[Doc]]) -> web.Response:
        """A PUT's answer (`status` 201 created, 200 updated): `final()`, the resource as the
        operation left it, when it succeeded within the budget; else `accepted` (the resource
        as the request left it) with `Azure-AsyncOperation` to follow."""
        if await self._succeeded(op):
            return json_response(await final(), status)
        return json_response(accepted, status, self.monitors(op, api_version, location=False))

    async def answer_action(self, op: Doc, api_version: str, *, done: int = 204,
                            async_operation: bool = True) -> web.Response:
        """A DELETE's or POST action's answer: `done` without a body when the operation
        succeeded within the budget (204 as AKS's API declares; resource groups' 200), else 202
        with `Location` (and `Azure-AsyncOperation` unless `async_operation` is false)."""
        if await self._succeeded(op):
            return web.Response(status=done)
        return web.Response(status=202, headers=self.monitors(op, api_version, location=True,
                                                              async_operation=async_operation))

    async def settle(self, op_id: str) -> Doc | None:
        """The record of operation `op_id` once it has ended, waiting up to the budget for a
        running one (never cancelling it: the request may go, the operation stays). The status
        monitors answer with it too, so that a client whose operation outlasted the request's
        wait learns of its end from its first poll rather than after a `Retry-After`."""
        task = self._tasks.get(op_id)
        if task is not None:
            await asyncio.wait({task}, timeout=self.sync_budget)
        return await self.get(op_id)

    async def _succeeded(self, op: Doc) -> bool:
        record = await self.settle(op["name"])
        return record is not None and record["status"] == "Succeeded"

    async def wait(self, op_id: str) -> None:
        """Wait for a running operation (tests, and the demo set-up)."""
        task = self._tasks.get(op_id)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)
