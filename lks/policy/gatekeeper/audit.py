"""Gatekeeper's audit (`pkg/audit/manager.go`): every `interval` seconds of the cluster's clock
(60 by default, as `--audit-interval`) each constraint is evaluated over the live objects it
matches, read from the watch caches (one pass per resource type, every constraint of that kind
on each object), and its status gets `auditTimestamp`, `totalViolations` and the first
`violations_limit` (20, as `--constraint-violations-limit`) violations. Namespaces the Config
excludes for the audit are skipped. `Audit.results` keeps the last run's violations per
constraint for the Azure side (`lks.policy.gatekeeper.violations`).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lks import tasks
from lks.clock import rfc3339
from lks.kube import errors
from lks.kube.registry import WriteOptions
from lks.policy.gatekeeper import constraints, evaluation, templates

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.kube.registry import Registry
    from lks.policy.gatekeeper.state import Bound, State

Obj = dict[str, Any]
log = logging.getLogger(__name__)
INTERVAL = 60.0
VIOLATIONS_LIMIT = 20


@dataclass(slots=True)
class Result:
    """One constraint's audit: how many objects it finds in violation, and the first ones."""

    kind: str
    name: str
    action: str
    total: int = 0
    violations: list[Obj] = field(default_factory=list)


class Audit:
    def __init__(self, cluster: Cluster, state: State, *, interval: float = INTERVAL,
                 violations_limit: int = VIOLATIONS_LIMIT,
                 on_audit: Callable[[list[Bound], dict[tuple[str, str], Result], str], Awaitable[None]] | None = None):
        """`on_audit(bound, results, timestamp)` hears of each audit that wrote its results."""
        self.cluster = cluster
        self.on_audit = on_audit
        self.state = state
        self.interval = interval
        self.limit = violations_limit
        self.results: dict[tuple[str, str], Result] = {}  # (kind, name) -> the last audit's
        self.timestamp: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._pods: list[Obj] = []

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"gatekeeper audit {self.cluster.id}")

    async def stop(self) -> None:
        await tasks.cancel(self._task)
        self._task = None

    async def _loop(self) -> None:
        while True:
            await self.cluster.clock.sleep(self.interval)
            try:
                await self.run()
            except asyncio.CancelledError:
                raise
            except Exception:  # an audit that fails is tried again next interval, as Gatekeeper's
                log.exception("gatekeeper audit of cluster %s failed", self.cluster.id)

    async def run(self, *, write: bool = True) -> dict[tuple[str, str], Result]:
        """One audit; the constraints' statuses written unless `write` is False (a what-if)."""
        bound = await self.state.constraints()
        results = await self.evaluate(bound)
        self.timestamp = rfc3339(self.cluster.clock.now())
        self.results = results
        if write:
            self._pods = await self.state.pods()
            for b in bound:
                await self._write(b, results[(b.constraint.kind, b.constraint.name)])
            if self.on_audit is not None:
                await self.on_audit(bound, results, self.timestamp)
        return results

    async def evaluate(self, bound: list[Bound], *, limit: int | None = None) -> dict[tuple[str, str], Result]:
        """The violations of `bound` (the cluster's constraints, or constraints not installed: a
        what-if) over the live objects, nothing written; the first `limit` of each kept (the
        audit's own limit by default)."""
        results = {(b.constraint.kind, b.constraint.name): Result(b.constraint.kind, b.constraint.name,
                                                                   b.constraint.action) for b in bound}
        if bound:
            excluded = await self.state.excluded("audit")
            inventory = await self.state.inventory() if await self.state.sync_only() else {}
            namespaces = await self._namespace_labels() if any(
                b.constraint.namespace_selector is not None for b in bound) else {}
            for reg, group, version, kind in self._types(bound):
                await self._audit_type(reg, group, version, kind, bound, results, excluded, inventory, namespaces,
                                       self.limit if limit is None else limit)
        return results

    def _types(self, bound: list[Bound]) -> list[tuple[Registry, str, str, str]]:
        """The resource types (their storage registries) some constraint can match."""
        out = []
        for rt in self.cluster.catalog.all():
            if rt.virtual or rt.gv != rt.storage_gv or "list" not in rt.verbs or "watch" not in rt.verbs:
                continue
            if any(b.constraint.kinds and b.constraint.matches_kind(rt.group, rt.kind) for b in bound):
                out.append((self.cluster.registry(rt.group, rt.version, rt.resource), rt.group, rt.version, rt.kind))
        return out

    async def _audit_type(self, reg: Registry, group: str, version: str, kind: str, bound: list[Bound],
                          results: dict[tuple[str, str], Result], excluded: list[str], inventory: Obj,
                          namespaces: dict[str, Obj], limit: int) -> None:
        mine = [b for b in bound if b.constraint.matches_kind(group, kind)]
        review_kind = {"group": group, "version": version, "kind": kind}
        objects = list((await reg.cache()).objects.values())
        # which constraints match an object depends on its namespace and labels alone, unless a
        # constraint matches names or the objects are Namespaces: matched once per such pair
        by_name = group == "" and kind == "Namespace" or any(b.constraint.match_name is not None for b in mine)
        known: dict[tuple, tuple[list[Bound], list[tuple[Any, Any]]]] = {}
        for i, obj in enumerate(objects):
            if i and i % 500 == 0:
                await asyncio.sleep(0)  # let requests in between
            meta = obj["metadata"]
            ns = meta.get("namespace") or ""
            name = meta.get("name") or ""
            subject = name if group == "" and kind == "Namespace" else ns
            if subject and excluded and constraints.any_glob(excluded, subject):
                continue
            labels = meta.get("labels") or {}
            key = None if by_name else (ns, *sorted(labels.items()))
            found_before = known.get(key) if key is not None else None
            if found_before is None:
                target = constraints.Target(group, kind, ns, name, labels, namespaces.get(ns))
                matched = [b for b in mine if b.constraint.matches(target)]
                found_before = (matched, [(b.program, b.constraint.parameters) for b in matched])
                if key is not None:
                    known[key] = found_before
            matched, entries = found_before
            if not matched:
                continue
            review = {"kind": review_kind, "name": name, "object": obj, "operation": "CREATE",
                      **({"namespace": ns} if ns else {})}
            # the object's revision: an engine may keep its answer until the object changes
            shared: Obj = {"revision": (meta.get("uid"), meta.get("resourceVersion"))}
            answers = evaluation.violations(entries, review, inventory, shared)
            for b, found in zip(matched, answers, strict=True):
                c = b.constraint
                if isinstance(found, Exception):
                    log.warning("gatekeeper audit: constraint %s failed: %s", c.name, found)
                    continue
                if not found:
                    continue
                result = results[(c.kind, c.name)]
                for v in found:
                    result.total += 1
                    if len(result.violations) < limit:
                        entry: Obj = {"enforcementAction": c.action, "group": group, "kind": kind,
                                      "message": v.get("msg", ""), "name": name, "version": version}
                        if ns:
                            entry["namespace"] = ns
                        result.violations.append(entry)

    async def _namespace_labels(self) -> dict[str, Obj]:
        reg = self.cluster.registry("", "v1", "namespaces")
        return {o["metadata"]["name"]: o["metadata"].get("labels") or {}
                for o in (await reg.cache()).objects.values()}

    async def _write(self, b: Bound, result: Result) -> None:
        reg = self.state.registry(b.constraint.kind)
        if reg is None:
            return
        c = b.constraint

        def patch(current: Obj) -> Obj:
            current = copy.deepcopy(current)
            status = current.setdefault("status", {}) or {}
            current["status"] = status
            status["auditTimestamp"] = self.timestamp
            status["totalViolations"] = result.total
            status["violations"] = result.violations
            status["byPod"] = templates.constraint_by_pod(current, self._pods)
            return current

        try:
            await reg.patch(None, c.name, patch, WriteOptions(field_manager="gatekeeper", field_validation="Ignore",
                                                              trusted=True), subresource="status")
        except errors.APIError as err:
            if err.code != 404:
                raise
