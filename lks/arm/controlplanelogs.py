"""`lks aks logs`: a cluster's control-plane logs read through the management endpoint. AKS
sends these categories (kube-apiserver, kube-audit, kube-scheduler, kube-controller-manager) to
diagnostic settings; lks keeps them in files (`lks.observability.logs`) and serves them on an
lks-specific route under the cluster, authorized like any ARM request (the action
`Microsoft.ContainerService/managedClusters/controlPlaneLogs/read`):

    GET …/managedClusters/{name}/controlPlaneLogs/{component}?api-version=…[&sinceSeconds=600][&follow=true]

The answer is the log's lines as text/plain (with `sinceSeconds`, the rotated files too, from
the oldest); `follow` keeps the response open and sends lines as they are written, until the
client goes away.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from lks.arm import documents
from lks.arm.app import Call, Route, route
from lks.arm.errors import invalid_parameter
from lks.observability import logs

if TYPE_CHECKING:
    from lks.arm.plane import ManagementPlane

Load = Callable[[Call], Awaitable[documents.Stored]]
FOLLOW_INTERVAL = 0.25  # seconds between looks at a followed file (its writer batches every 0.2 s)
_CHUNK = 1024 * 1024


def routes(plane: ManagementPlane, *, cluster: str, api_versions: tuple[str, ...], load: Load) -> list[Route]:
    h = ControlPlaneLogs(plane, load)
    return [route(cluster + "/controlPlaneLogs/{component}", {"GET": h.read}, api_versions=api_versions,
                  type_name="managedClusters/controlPlaneLogs")]


class ControlPlaneLogs:
    def __init__(self, plane: ManagementPlane, load: Load):
        self.plane = plane
        self.load = load

    async def read(self, call: Call) -> web.StreamResponse:
        doc = (await self.load(call)).doc
        component = call.params["component"]
        if component not in logs.COMPONENTS:
            raise invalid_parameter(f"The value of parameter component is invalid: '{component}'. Allowed values: "
                                    f"{', '.join(logs.COMPONENTS)}.", "component")
        query = call.request.query
        since: float | None = None
        if "sinceSeconds" in query:
            try:
                since = time.time() - max(0, int(query["sinceSeconds"]))
            except ValueError:
                raise invalid_parameter("sinceSeconds must be a whole number of seconds.", "sinceSeconds") from None
        follow = query.get("follow", "").lower() == "true"
        cluster_id = (doc["properties"].get(documents.PRIVATE) or {}).get("controlPlane", "")
        current = logs.path(self.plane.planes.data_dir.parent, cluster_id, component)
        resp = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await resp.prepare(call.request)
        files = [current.with_name(f"{current.name}.{i}") for i in range(logs.BACKUPS, 0, -1)] if since else []
        read = 0
        for f in [*files, current]:
            data, read = await asyncio.to_thread(_read, f, since, component == logs.AUDIT)
            await _send(resp, data)
        if follow:  # from where the reading of the current file ended: no line lost or repeated
            with contextlib.suppress(ConnectionResetError):
                await _follow(resp, current, read)
        return resp


async def _send(resp: web.StreamResponse, data: bytes) -> None:
    for i in range(0, len(data), _CHUNK):
        await resp.write(data[i:i + _CHUNK])


def _read(path: Path, since: float | None, audit: bool) -> tuple[bytes, int]:
    """The lines of `path` to send, and how many bytes of it were read."""
    try:
        data = path.read_bytes()
    except OSError:
        return b"", 0
    if since is None:
        return data, len(data)
    kept, keep = [], False
    for line in data.splitlines(keepends=True):
        when = _audit_time(line) if audit else _klog_time(line)
        if when is not None:  # a line without a time (a traceback's) goes with the line before
            keep = when >= since
        if keep:
            kept.append(line)
    return b"".join(kept), len(data)


async def _follow(resp: web.StreamResponse, path: Path, offset: int) -> None:
    """Send what is appended to `path` past `offset`, a rotated file from its start, until the
    client goes away or the service stops."""
    stopping = logs.closing()
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), FOLLOW_INTERVAL)
        size = await asyncio.to_thread(_size, path)
        if size < offset:  # rotated: the new file is read whole
            offset = 0
        if size > offset:
            data = await asyncio.to_thread(_tail, path, offset)
            offset += len(data)
            await _send(resp, data)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _tail(path: Path, offset: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read()


def _klog_time(line: bytes) -> float | None:
    """The time of a klog line (`I1208 01:23:45.678901 …`: no year, so this year's, or last year's
    for a date ahead of now)."""
    if len(line) < 21 or line[:1] not in b"IWEF" or line[5:6] != b" ":
        return None
    try:
        month, day = int(line[1:3]), int(line[3:5])
        hh, mm, ss = int(line[6:8]), int(line[9:11]), float(line[12:21])
        year = time.gmtime().tm_year
        when = calendar.timegm((year, month, day, hh, mm, 0, 0, 0, 0)) + ss
    except (ValueError, OverflowError):
        return None
    return when if when <= time.time() + 86400 else when - 365 * 86400


def _audit_time(line: bytes) -> float | None:
    try:
        stamp = orjson.loads(line).get("stageTimestamp", "")
        day, _, clock = stamp.rstrip("Z").partition("T")
        whole, _, frac = clock.partition(".")
        return calendar.timegm(time.strptime(f"{day}T{whole}", "%Y-%m-%dT%H:%M:%S")) + float(f"0.{frac or 0}")
    except (ValueError, AttributeError, orjson.JSONDecodeError):
        return None
