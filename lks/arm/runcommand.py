"""`managedClusters/{name}/runCommand` and `commandResults/{id}`: AKS's run command (`az aks command
invoke`), answered as AKS answers it.

`POST …/runCommand` with `{"command", "context", "clusterToken"}` checks the request, records a
result (`Running`) and answers 202 with no body and `Location: …/commandResults/<id>` (32 hex
digits, as AKS's ids and az's `commandResults/(\\w*)\\?` expect). `GET …/commandResults/<id>`
answers 202 `{"id", "properties": {"provisioningState": "Running"}}` with the same `Location`
while the command runs, then 200 with `provisioningState` `Succeeded` (whatever the exit code),
`exitCode`, `startedAt`, `finishedAt` and `logs`; or `Failed` with `reason` when the command
could not run to its end (a timeout, its cluster stopped or deleted under it, the service
restarted). `lks.arm.commandrun` runs it.

The command runs with the caller's rights in the cluster: the `clusterToken` the request
carries (Entra clusters), else the cluster's user credential, as AKS uses the cluster's local
credentials for callers of a local-accounts cluster.

Each command is an operation of the service's journal (`lks.arm.operations`), so stopping the
service stops it (its process or pod is killed) and its task is accounted for. Results are
documents beside the cluster: they survive a restart of the service and go with the cluster;
a cluster keeps its last `KEEP` results. The request itself (command, files, token) is never
stored: a command the service was running when it stopped is not run again after the restart,
its result is `Failed` with a reason that says so (and what it left running is killed).

Errors (AKS's codes; the messages are lks's where AKS's are not documented): a missing or blank
`command` and a `context` that is not a base64 zip are 400 `InvalidParameter`; a stopped
cluster, or one with `apiServerAccessProfile.disableRunCommand`, 409 `OperationNotAllowed`; an
unknown result 404 `NotFound`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
import yaml
from aiohttp import web

from lks import store
from lks.arm import commandrun, documents
from lks.arm.app import Call, Route, json_response, route
from lks.arm.errors import ARMError, invalid_parameter
from lks.arm.operations import RETRY_AFTER

if TYPE_CHECKING:
    from lks.arm.plane import ManagementPlane

Doc = dict[str, Any]
Load = Callable[[Call], Awaitable[documents.Stored]]

KIND = "managedClusters.runCommand"
TYPE = "Microsoft.ContainerService/managedClusters/commandResults"
KEEP = 100  # results kept per cluster, the oldest finished ones dropped first


@dataclass(slots=True)
class _Request:
    command: str
    context: bytes
    token: str


def routes(plane: ManagementPlane, *, cluster: str, api_versions: tuple[str, ...], load: Load) -> list[Route]:
    """The routes under the cluster path template `cluster`; `load` finds the call's cluster."""
    h = RunCommands(plane, load)
    plane.operations.register(KIND, h.work)
    return [route(cluster + "/runCommand", {"POST": h.run}, api_versions=api_versions,
                  type_name="managedClusters/runCommand"),
            route(cluster + "/commandResults/{command}", {"GET": h.result}, api_versions=api_versions,
                  type_name="managedClusters/commandResults")]


def result_id(cluster_id: str, command_id: str) -> str:
    return f"{cluster_id}/commandResults/{command_id}"


class RunCommands:
    def __init__(self, plane: ManagementPlane, load: Load):
        self.plane = plane
        self.load = load
        self._requests: dict[str, _Request] = {}  # by result id (lowercase), until its work takes it

    # -- the API ------------------------------------------------------------------------------

    async def run(self, call: Call) -> web.Response:
        doc = (await self.load(call)).doc
        request = _parse(call.body)
        props = doc["properties"]
        if (props.get("apiServerAccessProfile") or {}).get("disableRunCommand"):
            raise ARMError("OperationNotAllowed", "Run command is disabled for this managed cluster: "
                           "apiServerAccessProfile.disableRunCommand is true.", 409)
        power = props["powerState"]["code"]
        if power != "Running" or not props.get(documents.PRIVATE, {}).get("controlPlane"):
            raise ARMError("OperationNotAllowed", f"managed cluster is in Provisioning State("
                           f"{props.get('provisioningState')}) and Power State({power}), run command cannot be "
                           "performed", 409)
        command_id = uuid.uuid4().hex
        rid = result_id(doc["id"], command_id)
        await self._prune(doc["id"])
        await self.plane.docs.create({"id": rid, "name": command_id, "type": TYPE,
                                      "properties": {"provisioningState": "Running"},
                                      documents.PRIVATE: {"startedAt": self.plane.clock.now()}})
        self._requests[rid.lower()] = request
        await self.plane.operations.begin(KIND, subscription=call.params["subscription"], location=doc["location"],
                                          resource_id=rid, action=f"run command {command_id} on {doc['name']}",
                                          args={"cluster": doc["id"]})
        location = self.plane.url(f"{_cluster_path(call)}/commandResults/{command_id}", call.api_version)
        return web.Response(status=202, headers={"Location": location, "Retry-After": RETRY_AFTER})

    async def result(self, call: Call) -> web.Response:
        doc = (await self.load(call)).doc
        command_id = call.params["command"]
        rid = result_id(doc["id"], command_id)
        stored = await self.plane.docs.get(rid)
        if stored is None:
            raise ARMError("NotFound", f"Command result '{command_id}' was not found for managed cluster "
                           f"'{doc['name']}'.", 404)
        if stored.doc["properties"]["provisioningState"] == "Running":
            running = self.plane.operations.running(rid)
            if running is not None:  # a poll that comes as it finishes gets the result at once
                await self.plane.operations.settle(running["name"])
                stored = await self.plane.docs.get(rid) or stored
        body = {"id": stored.doc["name"], "properties": stored.doc["properties"]}
        if body["properties"]["provisioningState"] == "Running":
            return json_response(body, 202, {"Location": str(call.request.url), "Retry-After": RETRY_AFTER})
        return json_response(body)

    # -- the operation ------------------------------------------------------------------------

    async def work(self, op: Doc) -> None:
        """Run the command of result `op`'s resource and record how it ended."""
        rid = op[documents.PRIVATE]["resourceId"]
        cluster_doc = await self.plane.docs.get(op[documents.PRIVATE]["args"].get("cluster", ""))
        request = self._requests.pop(rid.lower(), None)
        command_id = rid.rsplit("/", 1)[1]
        if cluster_doc is None:
            return  # the cluster and its results are gone
        cp_id = cluster_doc.doc["properties"].get(documents.PRIVATE, {}).get("controlPlane", "")
        ws = commandrun.Workspace(self.plane.planes.data_dir / cp_id / "runcommand" / command_id)
        if request is None:  # the service stopped while it ran: not run again
            await asyncio.to_thread(ws.sweep)
            await asyncio.to_thread(ws.remove)
            cluster = self.plane.planes.get(cp_id)
            if cluster is not None:
                await commandrun.delete_pod(cluster, command_id)
            await self._finish(rid, commandrun.Outcome(reason="Failed to run command: the service restarted while "
                                                                  "the command was running."))
            return
        await self._finish(rid, await self._while_running(
            cluster_doc, self._execute(cluster_doc.doc, cp_id, command_id, request, ws)))

    async def _while_running(self, cluster: documents.Stored,
                             execution: Awaitable[commandrun.Outcome]) -> commandrun.Outcome:
        """The outcome of `execution`, unless its cluster is stopped or deleted first: then the
        command is stopped (its process or pod killed) and the outcome says why."""
        task = asyncio.ensure_future(execution)
        left = asyncio.ensure_future(self._cluster_left(cluster))
        try:
            await asyncio.wait({task, left}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                return task.result()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return commandrun.Outcome(reason=left.result())
        finally:
            for t in (task, left):
                t.cancel()
            await asyncio.gather(task, left, return_exceptions=True)

    async def _cluster_left(self, cluster: documents.Stored) -> str:
        """Returns, with the reason, once the cluster is stopped or deleted."""
        key = documents.key(cluster.doc["id"])
        try:
            async for event in self.plane.docs.store.watch(key, start_revision=cluster.revision + 1):
                if event.kv.key != key:
                    continue  # its children (results, configurations), or a cluster whose name extends it
                if event.type == "DELETE":
                    return "Failed to run command: the managed cluster was deleted while the command was running."
                doc = orjson.loads(event.kv.value)
                if doc["properties"]["powerState"]["code"] != "Running":
                    return "Failed to run command: the managed cluster was stopped while the command was running."
        except store.StoreError:  # history compacted, store closing: the command runs on
            pass
        await asyncio.Event().wait()
        return ""

    async def _execute(self, doc: Doc, cp_id: str, command_id: str, request: _Request,
                       ws: commandrun.Workspace) -> commandrun.Outcome:
        cluster = self.plane.planes.get(cp_id)
        if cluster is None:
            return commandrun.Outcome(reason="Failed to run command: the managed cluster is not running.")
        try:
            config = await self._kubeconfig(doc, request.token)
            await asyncio.to_thread(ws.create, context=request.context, kubeconfig=config)
            pool = _process_pool(doc)
            if pool is not None:
                return await commandrun.run_pod(cluster, command_id, request.command, ws, pool=pool["name"],
                                                taints=pool.get("nodeTaints") or [])
            return await commandrun.run_process(ws, request.command)
        except (ARMError, OSError, RuntimeError, NotImplementedError, zipfile.BadZipFile) as err:
            # a cluster gone meanwhile, a file that cannot be written or unzipped (encrypted,
            # an unknown compression): the result says so rather than staying Running
            message = err.message if isinstance(err, ARMError) else str(err) or type(err).__name__
            return commandrun.Outcome(reason=f"Failed to run command: {message}")
        finally:
            await asyncio.to_thread(ws.remove)

    async def _kubeconfig(self, doc: Doc, token: str) -> str:
        """The caller's kubeconfig for the command: the cluster's user credential, or the
        request's `clusterToken` in its place."""
        text = await self.plane.kubeconfig(doc, admin=False)
        if not token:
            return text
        config = yaml.safe_load(text)
        for user in config.get("users") or []:
            user["user"] = {"token": token}
        return yaml.safe_dump(config, default_flow_style=False)

    async def _finish(self, rid: str, outcome: commandrun.Outcome) -> None:
        stored = await self.plane.docs.get(rid)
        if stored is None:
            return
        started = stored.doc.get(documents.PRIVATE, {}).get("startedAt") or self.plane.clock.now()
        props: Doc = {"provisioningState": "Failed" if outcome.reason else "Succeeded"}
        if outcome.exit_code is not None:
            props["exitCode"] = outcome.exit_code
        props.update(startedAt=_stamp(started), finishedAt=_stamp(self.plane.clock.now()), logs=outcome.logs)
        if outcome.reason:
            props["reason"] = outcome.reason
        stored.doc["properties"] = props
        await self.plane.docs.put(stored.doc)

    async def _prune(self, cluster_id: str) -> None:
        """Keep at most KEEP results of the cluster: drop the oldest finished ones."""
        results = [d for d in await self.plane.docs.list(f"{cluster_id}/commandResults") if d.get("type") == TYPE]
        finished = sorted((d for d in results if d["properties"].get("provisioningState") != "Running"),
                          key=lambda d: d["properties"].get("finishedAt", ""))
        for d in finished[:max(0, len(results) - KEEP + 1)]:
            await self.plane.docs.delete(d["id"])


def _parse(body: Any) -> _Request:
    """The request's fields, or AKS's errors for a missing command and a `context` that is not
    a base64 zip."""
    if not isinstance(body, dict):
        raise ARMError("InvalidRequestContent", "The request content was invalid and could not be deserialized: "
                       "'the request body must be a JSON object'.", 400)
    command = body.get("command")
    if not isinstance(command, str) or not command.strip():
        raise invalid_parameter("Required parameter command is missing (null).", "command")
    context = body.get("context") or ""
    token = body.get("clusterToken") or ""
    if not isinstance(context, str) or not isinstance(token, str):
        raise invalid_parameter("The value of parameter context or clusterToken is invalid: a string is expected.")
    try:
        data = base64.b64decode("".join(context.split()), validate=True) if context else b""
    except (binascii.Error, ValueError):
        raise invalid_parameter("The value of parameter context is invalid: it is not base64 encoded.",
                                "context") from None
    if data:
        try:
            commandrun.check_context(data)
        except commandrun.BadContext as err:
            raise invalid_parameter(f"The value of parameter context is invalid: {err}.", "context") from None
    return _Request(command, data, token)


def _process_pool(doc: Doc) -> Doc | None:
    """A running `workloadRuntime: Process` pool of the cluster with nodes, if it has one."""
    for pool in doc["properties"].get("agentPoolProfiles") or []:
        if pool.get("workloadRuntime") == "Process" and (pool.get("count") or 0) > 0 \
                and (pool.get("powerState") or {}).get("code", "Running") == "Running":
            return pool
    return None


def _cluster_path(call: Call) -> str:
    """The cluster's path as the request spelled it, up to the action."""
    path = call.request.path.rstrip("/")
    return path[:path.lower().rindex("/runcommand")]


def _stamp(ts: float) -> str:
    """AKS's timestamps of a command result: UTC to the second."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
