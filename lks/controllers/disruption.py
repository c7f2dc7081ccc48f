"""The disruption controller (upstream's `pkg/controller/disruption`): keeps each
PodDisruptionBudget's status, which the eviction subresource (`lks.kube.subresources.eviction`)
reads and decrements to decide whether a pod may be evicted.

For a budget it counts the pods its selector picks, how many of them are healthy (Ready and
not on their way out), how many must stay healthy (`minAvailable`, or the expected count less
`maxUnavailable`; a percentage, or `maxUnavailable` at all, scales by the pods' controllers'
`spec.replicas`, as upstream's getExpectedScale) and so how many disruptions are allowed, with
the DisruptionAllowed condition (SufficientPods / InsufficientPods). Pods an eviction has just
approved (`status.disruptedPods`) count as gone for two minutes, until their deletion shows.
It also resets a DisruptionTarget condition that an eviction left on a pod it then did not
delete.
"""

from __future__ import annotations

import math
from typing import Any

from lks.clock import rfc3339
from lks.controllers import nodelifecycle_util as util
from lks.controllers.controller import Controller
from lks.controllers.events import NORMAL, WARNING, EventRecorder
from lks.kube import errors
from lks.kube.cluster import Cluster
from lks.kube.selectors import from_label_selector_object

Obj = dict[str, Any]
Item = tuple[str, str, str]  # ("pdb" | "pod", namespace, name)

DELETION_TIMEOUT = 120.0  # seconds an approved eviction counts before its deletion must show
STALE_DISRUPTION_TIMEOUT = 120.0  # seconds a DisruptionTarget condition may sit on a live pod


class SyncError(Exception):
    """The budget's status cannot be computed (upstream's failSafe path)."""


class DisruptionController(Controller[Item]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="disruption")
        self.pdbs = cluster.registry("policy", "v1", "poddisruptionbudgets")
        self.pods = cluster.registry("", "v1", "pods")
        self.pdb_informer = self.watch(self.pdbs, self._on_pdb)
        self.pod_informer = self.watch(self.pods, self._on_pod)
        self.recorder = EventRecorder(cluster, component="controllermanager")
        self._budgets: dict[str, set[str]] = {}  # namespace -> PDB names
        self._pods_in: dict[str, set[str]] = {}  # namespace -> pod names

    def _on_pdb(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        ns, name = obj["metadata"].get("namespace") or "", obj["metadata"]["name"]
        if kind == "DELETED":
            self._budgets.get(ns, set()).discard(name)
            return
        self._budgets.setdefault(ns, set()).add(name)
        self.queue.add(("pdb", ns, name))

    def _on_pod(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        meta = obj["metadata"]
        ns, name = meta.get("namespace") or "", meta["name"]
        if kind == "DELETED":
            self._pods_in.get(ns, set()).discard(name)
        else:
            self._pods_in.setdefault(ns, set()).add(name)
        labels = [meta.get("labels")] + ([prev["metadata"].get("labels")] if prev else [])
        for budget in self._budgets.get(ns, ()):
            pdb = self.pdb_informer.get(ns, budget)
            if pdb is not None and any(selects(pdb, lbl) for lbl in labels):
                self.queue.add(("pdb", ns, budget))
        if kind != "DELETED" and _stale_disruption(obj, self.clock.now()) is not None:
            self.queue.add(("pod", ns, name))

    # -- sync -------------------------------------------------------------------------------

    async def sync(self, item: Item) -> None:
        kind, ns, name = item
        if kind == "pod":
            await self._clear_stale_condition(ns, name)
            return
        pdb = self.pdb_informer.get(ns, name)
        if pdb is None:
            return
        try:
            await self._sync_budget(pdb)
        except SyncError as err:
            await self._fail_safe(pdb, str(err))

    async def _sync_budget(self, pdb: Obj) -> None:
        ns = pdb["metadata"]["namespace"]
        pods = [p for p in (self.pod_informer.get(ns, n) for n in sorted(self._pods_in.get(ns, ())))
                if p is not None and selects(pdb, p["metadata"].get("labels"))]
        if not pods:
            await self.recorder.record(pdb, NORMAL, "NoPods", "No matching pods found")
        try:
            expected, desired, unmanaged = await self._expected_count(pdb, pods)
        except SyncError as err:
            await self.recorder.record(pdb, WARNING, "CalculateExpectedPodCountFailed",
                                       f"Failed to calculate the number of expected pods: {err}")
            raise
        if unmanaged:
            await self.recorder.record(pdb, WARNING, "UnmanagedPods", (
                f"Pods selected by this PodDisruptionBudget (selector: {_go_selector(pdb['spec'].get('selector'))}) "
                "were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, "
                "which may result in undefined behavior. To account for these pods please set "
                '".spec.minAvailable" field of the PDB to an integer value.'))
        now = self.clock.now()
        disrupted, recheck = await self._disrupted_pods(pdb, pods, now)
        healthy = count_healthy(pods, disrupted, now)
        await self._write_status(pdb, healthy, desired, expected, disrupted)
        if recheck is not None:
            self.queue.add_after(("pdb", ns, pdb["metadata"]["name"]), max(recheck - now, 0.0))

    async def _expected_count(self, pdb: Obj, pods: list[Obj]) -> tuple[int, int, list[str]]:
        """(expected pods, desired healthy, unmanaged pod names): upstream's getExpectedPodCount."""
        spec = pdb.get("spec") or {}
        unmanaged: list[str] = []
        if spec.get("maxUnavailable") is not None:
            expected, unmanaged = await self._expected_scale(pods)
            desired = max(expected - scaled_value(spec["maxUnavailable"], expected), 0)
        elif isinstance(spec.get("minAvailable"), int):
            expected, desired = len(pods), spec["minAvailable"]
        elif spec.get("minAvailable") is not None:
            expected, unmanaged = await self._expected_scale(pods)
            desired = scaled_value(spec["minAvailable"], expected)
        else:
            expected, desired = 0, 0
        return expected, desired, unmanaged

    async def _expected_scale(self, pods: list[Obj]) -> tuple[int, list[str]]:
        """The sum of the replicas of the pods' controllers, and the pods without one."""
        scales: dict[str, int] = {}
        unmanaged: list[str] = []
        for pod in pods:
            ref = _controller_of(pod)
            if ref is None:
                unmanaged.append(pod["metadata"]["name"])
                continue
            if ref.get("uid") in scales:
                continue
            found = await self._controller_scale(ref, pod["metadata"]["namespace"])
            if found is None:
                raise SyncError(f'found no controllers for pod "{pod["metadata"]["name"]}"')
            scales[found[0]] = found[1]
        return sum(scales.values()), unmanaged

    async def _controller_scale(self, ref: Obj, ns: str) -> tuple[str, int] | None:
        """(uid, replicas) of the workload that controls a pod through `ref`: a Deployment for
        its ReplicaSets, else the controller itself (upstream's finders, in their order)."""
        group = (ref.get("apiVersion") or "").rpartition("/")[0]
        kind = ref.get("kind")
        if kind == "ReplicaSet" and group in ("apps", "extensions"):
            rs = await self._cached("apps", "replicasets", ns, ref.get("name", ""), ref.get("uid"))
            owner = _controller_of(rs) if rs else None
            if owner is not None and owner.get("kind") == "Deployment":
                deployment = await self._cached("apps", "deployments", ns, owner.get("name", ""), owner.get("uid"))
                if deployment is not None:
                    return deployment["metadata"]["uid"], _replicas(deployment, ".spec.replicas")
        # any other workload with a scale subresource (and a ReplicaSet whose Deployment is gone)
        version = (ref.get("apiVersion") or "").rpartition("/")[2]
        rt = self.cluster.catalog.by_kind(group, version, kind or "")
        paths = self.cluster.scale_paths(rt) if rt is not None else None
        if rt is None or paths is None:
            what = f"{rt.resource}.{rt.group}" if rt is not None else f"{kind}.{group}"
            raise SyncError(f"{what} does not implement the scale subresource")
        owner = await self._cached(rt.group, rt.resource, ns, ref.get("name", ""), ref.get("uid"), rt.version)
        if owner is None:
            return None
        return owner["metadata"]["uid"], _replicas(owner, paths.spec_replicas)

    async def _cached(self, group: str, resource: str, ns: str, name: str, uid: str | None,
                      version: str = "v1") -> Obj | None:
        reg = self.cluster.registry(group, version, resource)
        obj = (await reg.cache()).objects.get(reg.key(ns, name))
        return obj if obj is not None and obj["metadata"].get("uid") == uid else None

    async def _disrupted_pods(self, pdb: Obj, pods: list[Obj], now: float) -> tuple[dict[str, str], float | None]:
        """`status.disruptedPods` without the pods whose deletion shows (or never came), and
        when to look again (upstream's buildDisruptedPodMap)."""
        known = (pdb.get("status") or {}).get("disruptedPods") or {}
        kept: dict[str, str] = {}
        recheck: float | None = None
        for pod in pods:
            name = pod["metadata"]["name"]
            if "deletionTimestamp" in pod["metadata"] or name not in known:
                continue
            expected = util.parse_time(known[name]) + DELETION_TIMEOUT
            if expected < now:
                await self.recorder.record(pod, WARNING, "NotDeleted",
                                           f"Pod was expected by PDB {pdb['metadata']['namespace']}/"
                                           f"{pdb['metadata']['name']} to be deleted but it wasn't")
                continue
            kept[name] = known[name]
            recheck = expected if recheck is None else min(recheck, expected)
        return kept, recheck

    async def _write_status(self, pdb: Obj, healthy: int, desired: int, expected: int,
                            disrupted: dict[str, str]) -> None:
        allowed = healthy - desired
        if expected <= 0 or allowed <= 0:
            # a budget that selects nothing yet stays safe until its first pods are counted
            allowed = 0
        old = pdb.get("status") or {}
        generation = pdb["metadata"].get("generation", 1)
        status: Obj = {"observedGeneration": generation, "disruptionsAllowed": allowed, "currentHealthy": healthy,
                       "desiredHealthy": desired, "expectedPods": expected}
        if disrupted:
            status["disruptedPods"] = disrupted
        status["conditions"] = list(old.get("conditions") or [])
        set_allowed_condition(status, self.clock.now())
        if all(old.get(k) == v for k, v in status.items()) and bool(old.get("disruptedPods")) == bool(disrupted):
            return
        await self._update_status(pdb, status)

    async def _fail_safe(self, pdb: Obj, message: str) -> None:
        """At least let no eviction through while the status cannot be computed."""
        status = {**(pdb.get("status") or {}), "disruptionsAllowed": 0}
        status["conditions"] = list(status.get("conditions") or [])
        set_condition(status["conditions"], {
            "type": "DisruptionAllowed", "status": "False", "reason": "SyncFailed", "message": message,
            "observedGeneration": status.get("observedGeneration", 0)}, self.clock.now())
        if status != pdb.get("status"):
            await self._update_status(pdb, status)

    async def _update_status(self, pdb: Obj, status: Obj) -> None:
        meta = pdb["metadata"]
        try:
            # the resourceVersion guards against an eviction's decrement written since we read
            await self.pdbs.update(meta["namespace"], meta["name"], {**pdb, "status": status}, subresource="status")
        except errors.APIError as err:
            if err.code == 409:
                await util.catch_up(self.cluster)
                self.queue.add(("pdb", meta["namespace"], meta["name"]))
            elif err.code != 404:
                raise

    async def _clear_stale_condition(self, ns: str, name: str) -> None:
        pod = self.pod_informer.get(ns, name)
        now = self.clock.now()
        left = _stale_disruption(pod, now) if pod is not None else None
        if left is None:
            return
        if left > 0:
            self.queue.add_after(("pod", ns, name), left)
            return

        def reset(current: Obj) -> Obj:
            status = current.setdefault("status", {})
            cond = util.condition(current, "DisruptionTarget")
            if cond is not None and cond.get("status") == "True":
                util.set_pod_condition(status, {"type": "DisruptionTarget", "status": "False"}, now)
            return current

        try:
            await util.patch(self.cluster, self.pods, ns, name, reset, subresource="status")
        except errors.APIError as err:
            if err.code != 404:
                raise


def selects(pdb: Obj, labels: dict[str, str] | None) -> bool:
    """Whether the budget's selector picks a pod with these labels (in policy/v1 an empty
    selector picks every pod of the namespace, a missing one none)."""
    selector = (pdb.get("spec") or {}).get("selector")
    if selector is None:
        return False
    try:
        return from_label_selector_object(selector).matches(labels)
    except (KeyError, TypeError):
        return False


def scaled_value(value: int | str, total: int) -> int:
    """Upstream's GetScaledValueFromIntOrPercent, rounding up."""
    if isinstance(value, int):
        return value
    if not value.endswith("%"):
        raise SyncError("invalid value for IntOrString: invalid type: string is not a percentage")
    try:
        percent = int(value[:-1])
    except ValueError:
        raise SyncError(f'invalid value "{value}": strconv.Atoi: parsing "{value[:-1]}": invalid syntax') from None
    return math.ceil(percent * total / 100)


def count_healthy(pods: list[Obj], disrupted: dict[str, str], now: float) -> int:
    """Ready pods that are not being deleted and whose eviction was not just approved."""
    healthy = 0
    for pod in pods:
        name = pod["metadata"]["name"]
        if "deletionTimestamp" in pod["metadata"]:
            continue
        if name in disrupted and util.parse_time(disrupted[name]) + DELETION_TIMEOUT > now:
            continue
        ready = util.condition(pod, "Ready")
        healthy += ready is not None and ready.get("status") == "True"
    return healthy


def set_allowed_condition(status: Obj, now: float) -> None:
    """The DisruptionAllowed condition for `status.disruptionsAllowed` (upstream's
    UpdateDisruptionAllowedCondition)."""
    allowed = status.get("disruptionsAllowed", 0) > 0
    set_condition(status.setdefault("conditions", []), {
        "type": "DisruptionAllowed", "status": "True" if allowed else "False",
        "reason": "SufficientPods" if allowed else "InsufficientPods", "message": "",
        "observedGeneration": status.get("observedGeneration", 0)}, now)


def set_condition(conditions: list[Obj], cond: Obj, now: float) -> None:
    """apimachinery's meta.SetStatusCondition: the transition time moves with the status."""
    for i, old in enumerate(conditions):
        if old.get("type") == cond["type"]:
            since = old.get("lastTransitionTime") if old.get("status") == cond["status"] else rfc3339(now)
            conditions[i] = {**cond, "lastTransitionTime": since}
            return
    conditions.append({**cond, "lastTransitionTime": rfc3339(now)})


def _stale_disruption(pod: Obj, now: float) -> float | None:
    """Seconds until the pod's DisruptionTarget condition counts as stale (None: it has none
    that can be: the pod is going, finished, or the kubelet set it)."""
    if "deletionTimestamp" in pod["metadata"] or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return None
    cond = util.condition(pod, "DisruptionTarget")
    if cond is None or cond.get("status") != "True" or cond.get("reason") == "TerminationByKubelet":
        return None
    return max(util.parse_time(cond.get("lastTransitionTime")) + STALE_DISRUPTION_TIMEOUT - now, 0.0)


def _controller_of(obj: Obj) -> Obj | None:
    return next((r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")), None)


def _replicas(obj: Obj, path: str) -> int:
    cur: Any = obj
    for part in [p for p in path.split(".") if p]:
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur if isinstance(cur, int) else 1


def _go_selector(sel: Obj | None) -> str:
    """A LabelSelector as Go's generated String() prints it (in the UnmanagedPods event)."""
    if sel is None:
        return "nil"
    labels = "".join(f"{k}: {v}," for k, v in sorted((sel.get("matchLabels") or {}).items()))
    exprs = "".join(f"LabelSelectorRequirement{{Key:{e.get('key')},Operator:{e.get('operator')},"
                    f"Values:[{' '.join(e.get('values') or [])}],}},"
                    for e in sel.get("matchExpressions") or [])
    return (f"&LabelSelector{{MatchLabels:map[string]string{{{labels}}},"
            f"MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}")
