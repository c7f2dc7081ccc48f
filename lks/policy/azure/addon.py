"""The azure-policy add-on's sync: for every cluster whose `addonProfiles.azurepolicy` is on, the
ConstraintTemplates and constraints of the assignments reaching it (`constraints.desired` over
`PolicyStore.applying_to`) are applied in the cluster with a field manager of the add-on's own and
its `managed-by` label (so manual edits of what it owns are overwritten at the next sync, as AKS
reverts them), and those it installed for assignments that no longer reach the cluster are
deleted. AKS's add-on polls every 15 minutes; this one watches the service's store under
`/azurepolicy/` and syncs within moments of an assignment or custom definition change, when a
cluster's Gatekeeper starts (add-on enabled, cluster started, service restarted), when someone
edits or deletes what it installed, and every 15 minutes of the service's clock besides. After each Gatekeeper audit the per-constraint violations
go to the compliance states (`states.ComplianceStates.report_constraint`); a sync that changed a
cluster's constraints audits it at once, so compliance shows in seconds too.

`lks.arm.plane` starts one `AddonSync` with the clusters to serve (`targets`) and their control
planes (`cluster_of`); Gatekeeper (`lks.policy.gatekeeper`) tells it when it starts and audits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from lks import store, tasks
from lks.clock import Clock
from lks.kube import deletion, errors
from lks.kube.registry import WriteOptions
from lks.policy import gatekeeper
from lks.policy.azure import assignments, constraints, states
from lks.policy.gatekeeper import constraints as gk_constraints
from lks.policy.gatekeeper import crds, engines
from lks.policy.gatekeeper import templates as gk_templates
from lks.policy.gatekeeper.state import Bound

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.policy.gatekeeper.audit import Result

Doc = dict[str, Any]
log = logging.getLogger(__name__)
MANAGER = "azure-policy-addon"
RESYNC = 15 * 60.0  # seconds of the service's clock: AKS's add-on polling interval
_READY_WAIT = 10.0  # seconds for a template's program and a constraint to reach Gatekeeper's state

# (managed cluster id, control plane id) of every cluster whose azurepolicy add-on is on
Targets = Callable[[], Awaitable[list[tuple[str, str]]]]


class AddonSync:
    def __init__(self, *, meta: store.Backend, targets: Targets, cluster_of: Callable[[str], Cluster | None],
                 clock: Clock | None = None, resync: float = RESYNC):
        self.meta = meta
        self.policies = assignments.PolicyStore(meta)
        self.states = states.ComplianceStates(meta)
        self.targets = targets
        self.cluster_of = cluster_of
        self.clock = clock or Clock()
        self.resync = resync
        self._dirty: set[str] = set()  # control plane ids; "*": all
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        gatekeeper.subscribe(self)
        self.enqueue("*")
        self._tasks = [asyncio.create_task(self._worker(), name="azure-policy addon sync"),
                       asyncio.create_task(self._watch(), name="azure-policy addon watch"),
                       asyncio.create_task(self._timer(), name="azure-policy addon resync")]

    async def stop(self) -> None:
        gatekeeper.unsubscribe(self)
        for task in self._tasks:
            await tasks.cancel(task)
        self._tasks = []

    def enqueue(self, cp_id: str) -> None:
        self._dirty.add(cp_id)
        self._idle.clear()
        self._wake.set()

    async def settled(self) -> None:
        """Until nothing is waiting to be synced (tests, benches)."""
        await self._idle.wait()

    # -- what Gatekeeper tells us -------------------------------------------------------------

    def started(self, cp_id: str) -> None:
        self.enqueue(cp_id)

    def changed(self, cp_id: str, obj: Doc, prev: Doc | None) -> None:
        """A template or constraint of the add-on's was edited or deleted: put back at once (our own
        writes come by here too; their sync finds nothing to do)."""
        if _managed(obj) or (prev is not None and _managed(prev)):
            self.enqueue(cp_id)

    async def audited(self, cp_id: str, bound: list[Bound], results: dict[tuple[str, str], Result],
                      timestamp: str) -> None:
        arm_id = await self._arm_id(cp_id)
        if arm_id is None:
            return
        for b in bound:
            c = b.constraint
            if constraints.origin(c.obj) is None:
                continue
            result = results.get((c.kind, c.name))
            components = [states.Component(v["kind"], v["name"], v.get("namespace", ""), False, v.get("message", ""))
                          for v in (result.violations if result else [])]
            await self.states.report_constraint(cluster_id=arm_id, constraint=c.obj, policies=self.policies,
                                                components=components, timestamp=timestamp)

    async def _arm_id(self, cp_id: str) -> str | None:
        return next((arm for arm, cp in await self.targets() if cp == cp_id), None)

    # -- triggers -----------------------------------------------------------------------------

    async def _watch(self) -> None:
        """Assignment, definition and initiative changes (not compliance states) sync every cluster."""
        rev = await self.meta.current_revision() + 1
        while True:
            try:
                async for event in self.meta.watch(assignments.PREFIX + "/", start_revision=rev):
                    rev = event.revision + 1
                    if event.kv.key.startswith((assignments.ASSIGNMENTS, assignments.DEFINITIONS,
                                                assignments.SETS)):
                        self.enqueue("*")
            except asyncio.CancelledError:
                raise
            except store.Compacted:  # changes missed: everything again
                rev = await self.meta.current_revision() + 1
                self.enqueue("*")
            except Exception:
                log.exception("azure-policy add-on: the store watch failed; watching again")
                await asyncio.sleep(1.0)

    async def _timer(self) -> None:
        while True:
            await self.clock.sleep(self.resync)
            self.enqueue("*")

    async def _worker(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            dirty, self._dirty = self._dirty, set()
            failed: set[str] = set()
            try:
                targets = await self.targets()
                chosen = targets if "*" in dirty else [(a, c) for a, c in targets if c in dirty]
                done = await asyncio.gather(*(self.sync(a, c) for a, c in chosen), return_exceptions=True)
                changed = []
                for (arm_id, cp_id), outcome in zip(chosen, done, strict=True):
                    if isinstance(outcome, Exception):
                        log.warning("azure-policy add-on: sync of %s failed: %r", arm_id, outcome)
                        failed.add(cp_id)
                    elif outcome is not None:
                        changed.append((cp_id, outcome))
                # every cluster enforces first; then the changed ones are audited, for compliance now
                await asyncio.gather(*(self._audit(cp_id, wanted) for cp_id, wanted in changed),
                                     return_exceptions=True)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("azure-policy add-on: sync round failed")
                failed |= dirty
            if failed:  # again after a pause
                await asyncio.sleep(1.0)
                self._dirty |= failed
                self._wake.set()
            elif not self._wake.is_set():
                self._idle.set()

    # -- what-if ------------------------------------------------------------------------------

    async def what_if(self, assignment: Doc) -> list[Doc]:
        """For the assignment `assignment` (stored or proposed), per cluster in its scope whose
        add-on is on and per constraint it would install: the live objects that violate it (those
        Deny would refuse), from the audit engine over the cluster's caches; nothing is written."""
        want = constraints.desired(await self.policies.asks(assignment))
        programs: dict[str, engines.Program | None] = {}
        for template in want.templates.values():
            kind = template["spec"]["crd"]["spec"]["names"]["kind"]
            try:
                programs[kind] = engines.compile_template(template)
            except engines.IngestError:
                programs[kind] = None
        out: list[Doc] = []
        for arm_id, cp_id in sorted(await self.targets()):
            gk = gatekeeper.running(cp_id)
            if gk is None or not assignments.reaches(assignment, arm_id):
                continue
            bound = [Bound(gk_constraints.Constraint(c), program) for c in want.constraints
                     if (program := programs.get(c["kind"])) is not None]
            results = await gk.audit.evaluate(bound, limit=1_000_000)
            parts = arm_id.split("/")
            for b in bound:
                c = b.constraint
                result = results[(c.kind, c.name)]
                notes = c.obj["metadata"]["annotations"]
                out.append({"clusterId": arm_id, "clusterName": parts[-1], "resourceGroup": parts[4],
                            "policyDefinitionId": notes[constraints.DEFINITION],
                            "policyDefinitionReferenceId": notes[constraints.REFERENCE],
                            "constraintKind": c.kind, "constraintName": c.name, "enforcementAction": c.action,
                            "total": result.total,
                            "objects": [{k: v[k] for k in ("group", "version", "kind", "namespace", "name", "message")
                                         if k in v} for v in result.violations]})
        return out

    # -- one cluster --------------------------------------------------------------------------

    async def _audit(self, cp_id: str, wanted: set[tuple[str, str]]) -> None:
        gk = gatekeeper.running(cp_id)
        if gk is None:
            return
        try:
            await _caught_up(gk, wanted)
            await gk.audit.run()
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the periodic audit reports later
            log.warning("azure-policy add-on: audit of %s after its sync failed: %r", cp_id, err)

    async def sync(self, arm_id: str, cp_id: str) -> set[tuple[str, str]] | None:
        """Make the cluster's add-on objects those of the assignments reaching it; when anything
        changed, the (kind, name) of the constraints it now has (for an audit at once)."""
        cluster = self.cluster_of(cp_id)
        gk = gatekeeper.running(cp_id)
        if cluster is None or gk is None:
            return None
        want = constraints.desired(await self.policies.applying_to(arm_id))
        opts = WriteOptions(field_manager=MANAGER, force=True, field_validation="Ignore")
        treg = cluster.registry(crds.TEMPLATES_GROUP, "v1", "constrainttemplates")
        changed = False
        for name, template in want.templates.items():
            changed |= await _apply(treg, name, template, opts)
        wanted = {(c["kind"], c["metadata"]["name"]) for c in want.constraints}
        for c in want.constraints:
            kind = c["kind"]
            await _ready(cluster, gk, kind)
            reg = gk.state.registry(kind)
            if reg is None:
                raise RuntimeError(f"the constraint kind {kind} is not served")
            changed |= await _apply(reg, c["metadata"]["name"], c, opts)
        # what the add-on installed before and no assignment asks for now
        kinds = {c["kind"] for c in want.constraints}
        for template in list((await treg.cache()).objects.values()):
            kind = (((template.get("spec") or {}).get("crd") or {}).get("spec") or {}).get("names", {}).get("kind")
            reg = gk.state.registry(kind) if kind else None
            if reg is not None:
                for obj in list((await reg.cache()).objects.values()):
                    if constraints.origin(obj) is not None and (kind, obj["metadata"]["name"]) not in wanted:
                        changed |= await _delete(reg, obj["metadata"]["name"])
            name = template["metadata"]["name"]
            if _managed(template) and name not in want.templates and kind not in kinds:
                changed |= await _delete(treg, name)
        return wanted if changed else None


def _managed(obj: Doc) -> bool:
    return (obj["metadata"].get("labels") or {}).get("managed-by") == constraints.MANAGED_BY["managed-by"]


def _owned_differs(current: Doc | None, applied: Doc) -> bool:
    """Whether applying `applied` would change `current` (a subset check on what we apply)."""
    def covers(have: Any, want: Any) -> bool:
        if isinstance(want, dict):
            return isinstance(have, dict) and all(covers(have.get(k), v) for k, v in want.items())
        return have == want
    return current is None or not covers({k: current.get(k) for k in ("metadata", "spec")},
                                         {k: applied.get(k) for k in ("metadata", "spec")})


async def _apply(reg: Any, name: str, obj: Doc, opts: WriteOptions) -> bool:
    current = (await reg.cache()).objects.get(reg.key(None, name))
    if not _owned_differs(current, obj):
        return False
    await reg.apply(None, name, obj, opts)
    return True


async def _delete(reg: Any, name: str) -> bool:
    try:
        await reg.delete(None, name, deletion.DeleteOptions())
    except errors.APIError as err:
        if err.code != 404:
            raise
        return False
    return True


async def _ready(cluster: Cluster, gk: gatekeeper.Gatekeeper, kind: str) -> None:
    """Until the template controller has compiled `kind`'s template and established its CRD."""
    await gk_templates.wait_established(cluster, crds.CONSTRAINTS_GROUP, "v1beta1", kind.lower())
    async with asyncio.timeout(_READY_WAIT):
        while kind not in gk.state.programs:
            await asyncio.sleep(0.02)


async def _caught_up(gk: gatekeeper.Gatekeeper, wanted: set[tuple[str, str]]) -> None:
    """Until Gatekeeper's state holds every constraint just applied (its caches follow the store)."""
    async with asyncio.timeout(_READY_WAIT):
        while True:
            have = {(b.constraint.kind, b.constraint.name) for b in await gk.state.constraints()}
            if wanted <= have:
                return
            await asyncio.sleep(0.02)
