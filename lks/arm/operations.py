"""Long-running operations, as ARM defines them: a journal of operation records in the store,
and one task per running operation that carries it out.

A mutating request records an operation (`InProgress`), answers at once with the
`Azure-AsyncOperation` and/or `Location` URLs of that record, and the operation's task runs the
registered work function. The record ends `Succeeded`, `Failed` (with the ARM error) or
`Canceled`. Work functions are level-triggered (they bring a resource to its desired state), so
an operation interrupted by a restart simply runs again: `resume` restarts every record still
`InProgress`, and none is ever left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from lks import store
from lks.arm import documents
from lks.arm.errors import ARMError
from lks.clock import Clock, iso8601

log = logging.getLogger(__name__)

Doc = dict[str, Any]
Work = Callable[[Doc], Awaitable[Doc | None]]  # returns the operation's result body, if any

RETRY_AFTER = "1"  # seconds: clients poll again almost at once (AKS says 10-600; lks is fast)
_PROVIDER = "Microsoft.ContainerService"


_KEY = "/lks/operations/"


class Operations:
    def __init__(self, backend: store.Backend, *, clock: Clock | None = None):
        self.store = backend
        self.clock = clock or Clock()
        self._work: dict[str, Work] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._busy: dict[str, str] = {}  # resource id (lowercase) -> running operation id

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
        """The operation currently changing `resource_id`, if any (its id)."""
        op_id = self._busy.get(resource_id.lower())
        return {"name": op_id} if op_id else None

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
        self._busy[meta["resourceId"].lower()] = op["name"]
        self._tasks[op["name"]] = asyncio.create_task(self._run(op), name=f"operation {meta['action']}")

    async def _run(self, op: Doc) -> None:
        meta = op[documents.PRIVATE]
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
            self._tasks.pop(op["name"], None)
            if self._busy.get(meta["resourceId"].lower()) == op["name"]:
                del self._busy[meta["resourceId"].lower()]
        op["endTime"] = iso8601(self.clock.now())
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

    async def wait(self, op_id: str) -> None:
        """Wait for a running operation (tests, and the demo set-up)."""
        task = self._tasks.get(op_id)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)
