"""The resource quota controller (upstream's `pkg/controller/resourcequota`): keeps each
ResourceQuota's `status.hard` (its spec's limits) and `status.used` (what the namespace's
objects use of them, counted with the evaluators of `lks.kube.admission.resourcequota`).

Admission raises `status.used` as it admits each object; this controller counts again from
what exists whenever a quota's spec changes or an object it tracks changes or goes, which
gives back the usage of deleted and finished objects, and shortly after admission charged a
quota, which gives back a charge whose write then failed. Until a quota has a status, admission
does not enforce it. The controller watches only the types some quota tracks: a cluster
without quotas costs nothing here.
"""

from __future__ import annotations

from typing import Any

from lks.controllers import nodelifecycle_util as util
from lks.controllers.controller import Controller
from lks.controllers.informer import Informer
from lks.kube import errors
from lks.kube.admission import resourcequota as quota
from lks.kube.cluster import Cluster

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, quota name)
GroupResource = tuple[str, str]

RECOUNT_AFTER = 10.0  # seconds after admission charges a quota until it is counted again


class ResourceQuotaController(Controller[Key]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="resourcequota")
        self.quotas = cluster.registry("", "v1", "resourcequotas")
        self.informer = self.watch(self.quotas, self._on_quota)
        self._in_namespace: dict[str, set[str]] = {}  # namespace -> quota names
        self._watched: dict[GroupResource, Informer] = {}  # the tracked types, started on demand
        self._recount_due: set[Key] = set()

    async def stop(self) -> None:
        await super().stop()
        for informer in self._watched.values():
            await informer.stop()

    def _on_quota(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        ns, name = obj["metadata"].get("namespace") or "", obj["metadata"]["name"]
        if kind == "DELETED":
            self._in_namespace.get(ns, set()).discard(name)
            return
        self._in_namespace.setdefault(ns, set()).add(name)
        if prev is None or obj.get("spec") != prev.get("spec") or not (obj.get("status") or {}).get("hard"):
            self.queue.add((ns, name))
        elif obj.get("status") != prev.get("status") and (ns, name) not in self._recount_due:
            # admission charged the quota: recount a little later, which gives back a charge
            # whose write then failed (an AlreadyExists, a later admission plugin's refusal)
            self._recount_due.add((ns, name))
            self.queue.add_after((ns, name), RECOUNT_AFTER)

    def _on_object(self, gr: GroupResource, obj: Obj) -> None:
        ns = obj["metadata"].get("namespace") or ""
        for name in self._in_namespace.get(ns, ()):
            q = self.informer.get(ns, name)
            if q is not None and gr in quota.tracked((q.get("spec") or {}).get("hard") or {}):
                self.queue.add((ns, name))

    async def _watch(self, gr: GroupResource) -> Informer | None:
        """The informer of a tracked type, started the first time a quota needs it."""
        if gr in self._watched:
            return self._watched[gr]
        reg = self._registry(gr)
        if reg is None:
            return None
        informer = self._watched[gr] = Informer(reg, lambda _kind, obj, _prev: self._on_object(gr, obj),
                                                identity=self._reader)
        await informer.start()
        return informer

    def _registry(self, gr: GroupResource) -> Any:
        group, resource = gr
        for rt in self.cluster.catalog.all():
            if rt.group == group and rt.resource == resource and rt.namespaced and not rt.virtual and rt.gv == rt.storage_gv:
                return self.cluster.registry(rt.group, rt.version, rt.resource)
        return None

    async def sync(self, key: Key) -> None:
        ns, name = key
        self._recount_due.discard(key)
        q = self.informer.get(ns, name)
        if q is None:
            return
        hard = quota.parse_list((q.get("spec") or {}).get("hard"))
        used: quota.Usage = {}
        for gr in sorted(quota.tracked(hard)):
            informer = await self._watch(gr)
            if informer is not None and not informer.synced.is_set():  # not allowed to list yet: retried
                raise RuntimeError(f"the {gr[1]}{'.' + gr[0] if gr[0] else ''} informer has not synced")
            if informer is not None:
                used.update(self._count(q, gr, informer, hard))
        # a limit nothing can use still shows what was last known of it, as upstream
        old_used = quota.parse_list((q.get("status") or {}).get("used"))
        used = {k: used.get(k, old_used.get(k)) for k in hard if k in used or k in old_used}
        status = {"hard": quota.dump(hard), "used": quota.dump(used)}
        if status == q.get("status"):
            return
        try:
            # guarded by the resourceVersion: an admission's increment since our read wins
            await self.quotas.update(ns, name, {**q, "status": status}, subresource="status")
        except errors.APIError as err:
            if err.code == 409:
                await util.catch_up(self.cluster)
                self.queue.add(key)
            elif err.code != 404:
                raise

    def _count(self, q: Obj, gr: GroupResource, informer: Informer, hard: quota.Usage) -> quota.Usage:
        """What the namespace's objects of one type use of the quota's limits (upstream's
        CalculateUsage): zero for every limit the type can use, plus each covered object."""
        ev = quota.evaluator_for(*gr)
        names = ev.matching(hard)
        total: quota.Usage = {n: quota.ZERO for n in names}
        ns = q["metadata"]["namespace"]
        scopes = quota.scope_selectors(q)
        now = self.cluster.clock.now()
        for obj in informer.list():
            if obj["metadata"].get("namespace") != ns:
                continue
            if not all(ev.scope_matches(s, obj) for s in scopes):
                continue
            usage = ev.usage(obj, now)
            total = quota.add_usage(total, {k: v for k, v in usage.items() if k in names})
        return total
