"""The node lifecycle controller (upstream's `pkg/controller/nodelifecycle`): notices nodes whose
kubelet went quiet and says so in the API, so that the scheduler stops placing pods there and
the taint eviction controller (`lks.controllers.tainteviction`) moves their pods elsewhere.

A node is healthy while its Lease in `kube-node-lease` (renewed every 10 s by its agent) or its
Ready condition's heartbeat is younger than the grace period (`node-monitor-grace-period`,
40 s; 60 s for a node that never posted status). Past it, the controller sets Ready and the
pressure conditions to Unknown ("Kubelet stopped posting node status."), marks the node's pods
not Ready and records a NodeNotReady event. It keeps the node's taints in step:

- NoSchedule (upstream's TaintNodesByCondition): `not-ready` for Ready=False, `unreachable`
  for Ready=Unknown, the pressure taints, and `unschedulable` for a cordoned node;
- NoExecute (taint-based eviction): `not-ready` or `unreachable`, added at most once per 10 s
  per zone (`node-eviction-rate` 0.1), slower or not at all while most of a zone is down, and
  not at all while every zone is down (then the control plane is the likelier one cut off).

Nothing polls: a node is looked at when it or its zone changes, and once more when its grace
period would run out (one timer per node, on the cluster's clock).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from lks.clock import rfc3339
from lks.controllers import nodelifecycle_util as util
from lks.controllers.controller import Controller
from lks.controllers.events import NORMAL, WARNING, EventRecorder
from lks.kube import errors
from lks.kube.cluster import Cluster

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Item = tuple[str, str]  # ("node", name) | ("zones", "")

LEASE_NAMESPACE = "kube-node-lease"
GRACE_PERIOD = 40.0  # node-monitor-grace-period
STARTUP_GRACE_PERIOD = 60.0  # node-startup-grace-period: for a node that never posted status
EVICTION_RATE = 0.1  # node-eviction-rate: NoExecute taints per second and zone
SECONDARY_EVICTION_RATE = 0.01  # secondary-node-eviction-rate, while a large zone is mostly down
UNHEALTHY_ZONE_THRESHOLD = 0.55
LARGE_CLUSTER_THRESHOLD = 50
EXCLUDE_LABEL = "node.kubernetes.io/exclude-disruption"
WORKERS = 8  # upstream's nodeUpdateWorkerSize: nodes looked at (and tainted) at once

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
# (condition, status, taint key): the NoSchedule taints a node's conditions call for
_CONDITION_TAINTS = (
    ("Ready", "False", NOT_READY),
    ("Ready", "Unknown", UNREACHABLE),
    ("MemoryPressure", "True", "node.kubernetes.io/memory-pressure"),
    ("DiskPressure", "True", "node.kubernetes.io/disk-pressure"),
    ("NetworkUnavailable", "True", "node.kubernetes.io/network-unavailable"),
    ("PIDPressure", "True", "node.kubernetes.io/pid-pressure"),
)
_NO_SCHEDULE_KEYS = frozenset(k for _, _, k in _CONDITION_TAINTS) | {UNSCHEDULABLE}
# the conditions set to Unknown when the kubelet goes quiet (NetworkUnavailable is the cloud's)
_KUBELET_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")

NORMAL_ZONE, PARTIAL_DISRUPTION, FULL_DISRUPTION = "Normal", "PartialDisruption", "FullDisruption"


class NodeLifecycleController(Controller[Item]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="nodelifecycle", workers=WORKERS)
        self.nodes = cluster.registry("", "v1", "nodes")
        self.pods = cluster.registry("", "v1", "pods")
        self.lease_informer = self.watch(cluster.registry("coordination.k8s.io", "v1", "leases"), _ignore)
        self.pod_informer = self.watch(self.pods, self._on_pod)
        self.node_informer = self.watch(self.nodes, self._on_node)
        self.recorder = EventRecorder(cluster, component="node-controller")
        self._pods = util.PodsByNode()
        self._armed: dict[str, float] = {}  # node -> when its pending timer fires
        self._unknown: set[str] = set()  # nodes whose Ready condition is Unknown
        self._zone_state: dict[str, str] = {}
        self._zone_size: dict[str, int] = {}
        self._next_taint: dict[str, float] = {}  # zone -> when it may get its next NoExecute taint
        self._all_disrupted = False  # every zone is down: no NoExecute taints anywhere
        self._since = 0.0  # heartbeats older than this count from here (start, end of disruption)

    async def start(self) -> None:
        self._since = self.clock.now()
        await super().start()

    # -- event handlers: they only index and enqueue ------------------------------------------

    def _on_node(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        name = obj["metadata"]["name"]
        self.queue.add(("node", name))
        if kind != "MODIFIED" or prev is None or _ready(obj) != _ready(prev) or zone_of(obj) != zone_of(prev):
            self.queue.add(("zones", ""))

    def _on_pod(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        _, node = self._pods.update(kind, obj)
        if node in self._unknown:
            self.queue.add(("node", node))  # a pod bound to an unreachable node: mark it

    # -- sync -------------------------------------------------------------------------------

    async def sync(self, item: Item) -> None:
        kind, name = item
        if kind == "zones":
            self._sync_zones()
            return
        node = self.node_informer.get(None, name)
        now = self.clock.now()
        if self._armed.get(name, math.inf) <= now:
            del self._armed[name]
        if node is None:
            self._armed.pop(name, None)
            self._unknown.discard(name)
            return
        deadline = self._deadline(node)
        if now >= deadline:
            node = await self._mark_unknown(node, now)
            if node is None:
                return
        else:
            self._arm(name, deadline, now)
        ready = _ready(node)
        if ready == "Unknown":
            self._unknown.add(name)
        else:
            self._unknown.discard(name)
        await self._sync_taints(node, ready, now)
        if ready == "Unknown":
            await self._mark_pods_not_ready(name, now)

    def _deadline(self, node: Obj) -> float:
        """When the node's grace period runs out: its last sign of life (lease renewal or status
        heartbeat, but nothing before this controller started) plus the grace period."""
        lease = self.lease_informer.get(LEASE_NAMESPACE, node["metadata"]["name"])
        renewed = util.parse_time((lease or {}).get("spec", {}).get("renewTime"))
        ready = util.condition(node, "Ready")
        if ready is None:
            seen = util.parse_time(node["metadata"].get("creationTimestamp"))
            return max(seen, renewed, self._since) + STARTUP_GRACE_PERIOD
        return max(util.parse_time(ready.get("lastHeartbeatTime")), renewed, self._since) + GRACE_PERIOD

    def _arm(self, name: str, when: float, now: float) -> None:
        """Look at the node again at `when` (unless a look is already due by then)."""
        if self._armed.get(name, math.inf) <= when:
            return
        self._armed[name] = when
        self.queue.add_after(("node", name), when - now)

    async def _mark_unknown(self, node: Obj, now: float) -> Obj | None:
        """The kubelet went quiet: its conditions become Unknown (upstream's tryUpdateNodeHealth).
        Returns the node as written, or None when it changed under us (looked at again)."""
        stamp = rfc3339(now)
        conditions = [dict(c) for c in (node.get("status") or {}).get("conditions") or []]
        by_type = {c.get("type"): c for c in conditions}
        changed = False
        for type_ in _KUBELET_CONDITIONS:
            cond = by_type.get(type_)
            if cond is None:
                conditions.append({"type": type_, "status": "Unknown",
                                   "lastHeartbeatTime": node["metadata"].get("creationTimestamp"),
                                   "lastTransitionTime": stamp, "reason": "NodeStatusNeverUpdated",
                                   "message": "Kubelet never posted node status."})
                changed = True
            elif cond.get("status") != "Unknown":
                cond.update(status="Unknown", reason="NodeStatusUnknown",
                            message="Kubelet stopped posting node status.", lastTransitionTime=stamp)
                changed = True
        if not changed:
            return node
        was_ready = _ready(node) == "True"
        try:
            written, _ = await self.nodes.update(
                None, node["metadata"]["name"], {**node, "status": {**node.get("status", {}), "conditions": conditions}},
                subresource="status")
        except errors.APIError as err:
            if err.code not in (404, 409):
                raise
            await util.catch_up(self.cluster)  # the kubelet spoke meanwhile: look again
            self.queue.add(("node", node["metadata"]["name"]))
            return None
        if was_ready:
            await self.recorder.record(_node_ref(node), NORMAL, "NodeNotReady",
                                       f"Node {node['metadata']['name']} status is now: NodeNotReady")
        return written

    async def _mark_pods_not_ready(self, name: str, now: float) -> None:
        """The node's pods are not Ready any more (upstream's MarkPodsNotReady)."""
        for ns, pod_name in self._pods.on(name):
            pod = self.pod_informer.get(ns, pod_name)
            if pod is None or (pod.get("spec") or {}).get("nodeName") != name:
                continue
            ready = next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
            if ready is None or ready.get("status") == "False":
                continue

            def not_ready(current: Obj) -> Obj:
                status = current.setdefault("status", {})
                for cond in status.get("conditions") or []:
                    if cond.get("type") == "Ready":
                        util.set_pod_condition(status, {**cond, "status": "False"}, now)
                return current

            try:
                await util.patch(self.cluster, self.pods, ns, pod_name, not_ready, subresource="status")
            except errors.APIError as err:
                if err.code != 404:
                    raise
                continue
            await self.recorder.record(pod, WARNING, "NodeNotReady", "Node is not ready")

    # -- taints -----------------------------------------------------------------------------

    async def _sync_taints(self, node: Obj, ready: str | None, now: float) -> None:
        name = node["metadata"]["name"]
        have = {(t.get("key"), t.get("effect")) for t in (node.get("spec") or {}).get("taints") or []}
        wanted = no_schedule_taints(node)
        add = [(k, "NoSchedule") for k in sorted(wanted) if (k, "NoSchedule") not in have]
        remove = {(k, "NoSchedule") for k in _NO_SCHEDULE_KEYS - wanted if (k, "NoSchedule") in have}
        if (node["metadata"].get("labels") or {}).get(EXCLUDE_LABEL) is None:
            ne_add, ne_remove = self._no_execute(node, ready, have, now)
            add += ne_add
            remove |= ne_remove
        if not add and not remove:
            return
        stamp = rfc3339(now)

        def retaint(current: Obj) -> Obj:
            spec = current.setdefault("spec", {})
            taints = [t for t in spec.get("taints") or [] if (t.get("key"), t.get("effect")) not in remove]
            present = {(t.get("key"), t.get("effect")) for t in taints}
            taints += [{"key": k, "effect": e, "timeAdded": stamp} for k, e in add if (k, e) not in present]
            if taints:
                spec["taints"] = taints
            else:
                spec.pop("taints", None)
            return current

        try:
            await util.patch(self.cluster, self.nodes, None, name, retaint)
        except errors.APIError as err:
            if err.code != 404:
                raise

    def _no_execute(self, node: Obj, ready: str | None, have: set, now: float) -> tuple[list, set]:
        """The NoExecute taints to add and remove (upstream's processTaintBaseEviction)."""
        present = {k for k in (NOT_READY, UNREACHABLE) if (k, "NoExecute") in have}
        if self._all_disrupted or ready == "True":
            return [], {(k, "NoExecute") for k in present}
        if ready not in ("False", "Unknown"):
            return [], set()
        key, opposite = (NOT_READY, UNREACHABLE) if ready == "False" else (UNREACHABLE, NOT_READY)
        if key in present:
            return [], {(opposite, "NoExecute")} if opposite in present else set()
        if opposite in present:  # already evicting: swap the reason at once
            return [(key, "NoExecute")], {(opposite, "NoExecute")}
        if self._may_taint(zone_of(node), node["metadata"]["name"], now):
            return [(key, "NoExecute")], set()
        return [], set()

    def _may_taint(self, zone: str, name: str, now: float) -> bool:
        """The per-zone rate limit on NoExecute taints (a token bucket of one)."""
        rate = self._rate(zone)
        if rate <= 0:
            return False  # a zone state change looks at the node again
        due = self._next_taint.get(zone, 0.0)
        if now < due:
            self._arm(name, due, now)
            return False
        self._next_taint[zone] = now + 1 / rate
        return True

    def _rate(self, zone: str) -> float:
        if self._zone_state.get(zone, NORMAL_ZONE) != PARTIAL_DISRUPTION:
            return EVICTION_RATE
        # a mostly-down small cluster is more likely cut off than broken: stop evicting
        return SECONDARY_EVICTION_RATE if self._zone_size.get(zone, 0) > LARGE_CLUSTER_THRESHOLD else 0.0

    # -- zones ------------------------------------------------------------------------------

    def _sync_zones(self) -> None:
        """Each zone's state from its nodes' readiness (upstream's handleDisruption)."""
        ready: dict[str, int] = {}
        not_ready: dict[str, int] = {}
        members: dict[str, list[str]] = {}
        for node in self.node_informer.list():
            if (node["metadata"].get("labels") or {}).get(EXCLUDE_LABEL) is not None:
                continue
            zone = zone_of(node)
            members.setdefault(zone, []).append(node["metadata"]["name"])
            counts = ready if _ready(node) == "True" else not_ready
            counts[zone] = counts.get(zone, 0) + 1
        states = {zone: zone_state(ready.get(zone, 0), not_ready.get(zone, 0)) for zone in members}
        all_disrupted = bool(states) and all(s == FULL_DISRUPTION for s in states.values())
        changed = [z for z in members if states[z] != self._zone_state.get(z, NORMAL_ZONE)]
        if all_disrupted != self._all_disrupted:
            if all_disrupted:
                log.info("%s: every node is not Ready: no taint-based evictions until some are", self.cluster.name)
            else:
                # leaving the disruption: every node gets a fresh grace period, as upstream
                self._since = self.clock.now()
            changed = list(members)
        self._all_disrupted = all_disrupted
        self._zone_state = states
        self._zone_size = {zone: len(names) for zone, names in members.items()}
        for zone in changed:
            for name in members[zone]:
                self.queue.add(("node", name))


def zone_state(ready: int, not_ready: int) -> str:
    """Upstream's ComputeZoneState."""
    if ready == 0 and not_ready > 0:
        return FULL_DISRUPTION
    if not_ready > 2 and not_ready / (ready + not_ready) >= UNHEALTHY_ZONE_THRESHOLD:
        return PARTIAL_DISRUPTION
    return NORMAL_ZONE


def zone_of(node: Obj) -> str:
    """The node's zone key: region and zone labels (upstream's GetZoneKey)."""
    labels = node["metadata"].get("labels") or {}
    region = labels.get("topology.kubernetes.io/region") or labels.get("failure-domain.beta.kubernetes.io/region", "")
    zone = labels.get("topology.kubernetes.io/zone") or labels.get("failure-domain.beta.kubernetes.io/zone", "")
    return f"{region}:\x00:{zone}" if region or zone else ""


def no_schedule_taints(node: Obj) -> set[str]:
    """The NoSchedule taint keys the node's conditions and `spec.unschedulable` call for."""
    status = {c.get("type"): c.get("status") for c in (node.get("status") or {}).get("conditions") or []}
    wanted = {key for type_, value, key in _CONDITION_TAINTS if status.get(type_) == value}
    if (node.get("spec") or {}).get("unschedulable"):
        wanted.add(UNSCHEDULABLE)
    return wanted


def _ready(node: Obj | None) -> str | None:
    cond = util.condition(node, "Ready") if node else None
    return cond.get("status") if cond else None


def _node_ref(node: Obj) -> Obj:
    # upstream's RecordNodeStatusChange names the node by name in the uid field too
    name = node["metadata"]["name"]
    return {"kind": "Node", "apiVersion": "v1", "metadata": {"name": name, "uid": name}}


def _ignore(_kind: str, _obj: Obj, _prev: Obj | None) -> None:
    """Leases are only read (a renewal just moves the deadline the node's timer checks)."""
