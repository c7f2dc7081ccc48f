"""Automatic upgrades: the auto-upgrade channels of a managed cluster (AKS's
`auto-upgrade-cluster.md`, `auto-upgrade-node-os-image.md`) run inside its maintenance windows
(`lks.upgrade.schedules`, AKS's `planned-maintenance.md`).

`upgradeChannel` `patch` moves a cluster to the newest patch of its minor, `stable` towards the
newest patch of minor N-1, `rapid` towards the newest of minor N, one minor at a time
(`lks.arm.versions.CATALOG` holds N); the control plane and every pool move, as `az aks upgrade`
moves them. `nodeOSUpgradeChannel` `NodeImage` (and the legacy `upgradeChannel` `node-image`)
moves each pool to the newest node image (`lks.arm.nodeshape.node_image_version`); `None`,
`Unmanaged` and `SecurityPatch` act on OS packages lks does not model, so they change nothing.
A cluster upgrade waits for `aksManagedAutoUpgradeSchedule`'s window, a node image upgrade for
`aksManagedNodeOSUpgradeSchedule`'s; without the configuration, any time will do, as on AKS.

The `AutoUpgrader` is one task of the management plane, on the plane's clock: it starts an
upgrade as a PUT of the changed cluster would (`lks.arm.model.managed_cluster`, then the plane's
`begin_operation`), then sleeps until the next window opens or an ARM document changes (a watch of
the service's store), never polling.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lks import store, tasks
from lks.arm import documents, managedclusters, model, nodeshape, versions
from lks.arm.errors import ARMError
from lks.clock import Clock
from lks.upgrade import rollback, schedules

if TYPE_CHECKING:
    from lks.arm.plane import ManagementPlane

log = logging.getLogger(__name__)

Doc = dict[str, Any]
UPGRADE_CHANNELS = ("none", "patch", "stable", "rapid", "node-image")
NODE_OS_CHANNELS = ("None", "Unmanaged", "SecurityPatch", "NodeImage")
NODE_IMAGE_STATE = "UpgradingNodeImageVersion"  # AKS's provisioningState while node images change


def channel_target(channel: str | None, current: str) -> str | None:
    """The version `channel` moves a control plane at `current` to next, or None (nothing newer).
    Never more than one minor at a time, never down: `stable` on the newest minor only patches."""
    minors = versions.minors()
    own = versions.minor_of(current)
    if channel == "patch":
        wanted = own
    elif channel == "stable":
        wanted = minors[-2] if len(minors) > 1 else minors[-1]
    elif channel == "rapid":
        wanted = minors[-1]
    else:
        return None
    if versions.key(wanted) > versions.key(own):
        major, minor = versions.key(own)[:2]
        wanted = f"{major}.{minor + 1}"
    elif versions.key(wanted) < versions.key(own):
        wanted = own
    target = versions.latest_patch(wanted)
    return target if target is not None and versions.key(target) > versions.key(current) else None


def node_image_targets(doc: Doc) -> dict[str, str]:
    """Pool name -> the newest node image, for each running pool whose image is older and that
    has not run it before: a pool rolled back from an image (`lks.upgrade.rollback`) stays until
    a newer release comes out, rather than being upgraded again at once."""
    props = doc["properties"]
    history = (props.get(documents.PRIVATE) or {}).get(rollback.KEY) or {}
    out = {}
    for pool in props["agentPoolProfiles"]:
        if (pool.get("powerState") or {}).get("code", "Running") != "Running":
            continue  # AKS upgrades a stopped pool when it starts
        image = pool.get("nodeImageVersion") or ""
        newest = nodeshape.node_image_version(pool.get("osSKU") or "Ubuntu", pool["currentOrchestratorVersion"],
                                              gen2="gen2" in image)
        if image != newest and newest not in {e.get("nodeImageVersion") for e in history.get(pool["name"], ())}:
            out[pool["name"]] = newest
    return out


class AutoUpgrader:
    def __init__(self, *, plane: ManagementPlane, clock: Clock | None = None):
        self.plane = plane
        self.clock = clock or plane.clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._refused: dict[str, str] = {}  # cluster id -> eTag of the document its upgrade was refused on

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="auto-upgrades")

    async def stop(self) -> None:
        if self._task is not None:
            await tasks.cancel(self._task)
            self._task = None

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._watch())
            while True:
                self._wake.clear()
                try:
                    due = await self.run_once()
                except Exception:  # a bug must not end automatic upgrades for every cluster
                    log.exception("auto-upgrade pass failed")
                    due = None
                await self._sleep_until(due)

    async def _watch(self) -> None:
        """Wake the scheduler on every change of an ARM document (a channel set, a window changed,
        an operation finished)."""
        backend = self.plane.docs.store
        while True:
            try:
                revision = await backend.current_revision()
                self._wake.set()
                async for _event in backend.watch(documents.PREFIX + "/", start_revision=revision + 1):
                    self._wake.set()
            except store.StoreError:
                await asyncio.sleep(0.1)  # compacted or closed: watch again from now

    async def _sleep_until(self, due: float | None) -> None:
        waker = asyncio.ensure_future(self._wake.wait())
        waits: set[asyncio.Future[Any]] = {waker}
        if due is not None:
            waits.add(asyncio.ensure_future(self.clock.sleep(max(due - self.clock.now(), 0.0))))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def run_once(self) -> float | None:
        """Start every automatic upgrade that is due now; when the next one falls due (the clock's
        seconds), if any does."""
        at = datetime.fromtimestamp(self.clock.now(), UTC)
        due = []
        for doc in await self.plane.all_clusters(None):
            when = await self._consider(doc, at)
            if when is not None:
                due.append(when)
        return min(due, default=None)

    async def _consider(self, doc: Doc, at: datetime) -> float | None:
        props = doc["properties"]
        if props.get("provisioningState") != "Succeeded" or props["powerState"]["code"] != "Running" \
                or self.plane.operations.running(doc["id"]) is not None \
                or self._refused.get(doc["id"].lower()) == doc.get("eTag"):
            return None
        soonest = None
        for plan in _plans(doc):
            config = await self.plane.docs.get(f"{doc['id']}/maintenanceConfigurations/{plan.config}")
            window = (at, at) if config is None else schedules.next_window(config.doc["properties"], at)
            if window is None:
                continue
            if window[0] > at:
                soonest = window[0] if soonest is None else min(soonest, window[0])
                continue
            await self._begin(doc, plan)
            return None  # one operation at a time; its end wakes the next pass
        return soonest.timestamp() if soonest is not None else None

    async def _begin(self, doc: Doc, plan: _Plan) -> None:
        """Start the upgrade as a PUT of the changed document would."""
        stored = await self.plane.docs.get(doc["id"])
        if stored is None or stored.doc.get("eTag") != doc.get("eTag"):
            self._wake.set()  # changed meanwhile: look again
            return
        current = stored.doc
        body = documents.public(copy.deepcopy(current))
        plan.change_body(body)
        parts = current["id"].split("/")
        try:
            new = model.managed_cluster(body, existing=current, resource_id=current["id"], name=current["name"],
                                        group=parts[4], subscription=parts[2])
            plan.change_doc(new)
            await managedclusters.admit_update(self.plane, current, new)  # as the PUT handler does
            await self.plane.begin_operation(None, new, stored, plan.state, created=False)
        except ARMError as err:
            # refused as a PUT would be: not again until the cluster changes
            log.warning("automatic upgrade of %s refused: %s %s", current["id"], err.code, err.message)
            self._refused[current["id"].lower()] = current.get("eTag", "")
            return
        log.info("automatic upgrade of %s started (%s)", current["id"], plan.state)


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a channel wants done: in which maintenance configuration's window, in which
    provisioningState, by which change of the PUT body and of the document the model makes of it."""

    config: str
    state: str
    change_body: Callable[[Doc], None] = lambda _body: None
    change_doc: Callable[[Doc], None] = lambda _doc: None


def _plans(doc: Doc) -> list[_Plan]:
    props = doc["properties"]
    profile = props.get("autoUpgradeProfile") or {}
    channel = profile.get("upgradeChannel") or "none"
    plans = []
    target = channel_target(channel, props["currentKubernetesVersion"])
    if target is not None:
        def upgrade(body: Doc, target: str = target) -> None:
            body["properties"]["kubernetesVersion"] = target
            for pool in body["properties"]["agentPoolProfiles"]:
                pool["orchestratorVersion"] = target

        plans.append(_Plan(schedules.AUTO_UPGRADE, "Upgrading", change_body=upgrade))
    images = node_image_targets(doc) if channel == "node-image" or profile.get("nodeOSUpgradeChannel") == "NodeImage" \
        else {}
    if images:
        # on the document, not the body: a body's other nodeImageVersion asks for a rollback
        def reimage(new: Doc, images: dict[str, str] = images) -> None:
            for pool in new["properties"]["agentPoolProfiles"]:
                if pool["name"] in images:
                    pool["nodeImageVersion"] = images[pool["name"]]

        plans.append(_Plan(schedules.NODE_OS_UPGRADE, NODE_IMAGE_STATE, change_doc=reimage))
    return plans
