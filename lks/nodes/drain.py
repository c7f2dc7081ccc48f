"""Cordon and drain: how AKS empties a node before it removes it (a pool scaled in or deleted).

`cordon` marks the Node unschedulable (`spec.unschedulable`, as `kubectl cordon`; the node
lifecycle controller adds the matching taint). `drain` then does what
`kubectl drain --ignore-daemonsets --delete-emptydir-data` does: DaemonSet pods and mirror
pods stay, every other pod of the node is evicted through the eviction subresource
(`lks.kube.subresources.eviction`, which honours PodDisruptionBudgets), a 429 from a budget is
retried every 5 seconds, and the drain waits until the evicted pods are gone, which the node's
agent sees to (`lks.nodes.pods`). With `disable_eviction` (a pool deleted with
`ignore-pod-disruption-budget=true`) the pods are deleted instead, budgets or not.

The whole drain of a node is bounded by a timeout (the pool's
`upgradeSettings.drainTimeoutInMinutes`, default 30); past it `drain` raises `DrainError` with
AKS's wording. Every wait reads the cluster's clock. `lks.nodes.pool` cordons, drains and then
deletes the nodes it removes; `lks.arm.fleet` turns a `DrainError` into the ARM error.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from lks.clock import go_duration
from lks.controllers.events import EventRecorder
from lks.kube import deletion, errors, selectors
from lks.kube.cluster import Cluster
from lks.kube.registry import ListOptions, Registry, WriteOptions
from lks.kube.subresources import eviction

log = logging.getLogger(__name__)

Obj = dict[str, Any]

DEFAULT_TIMEOUT_MINUTES = 30  # upgradeSettings.drainTimeoutInMinutes when the pool does not say
EVICTION_RETRY = 5.0  # seconds between evictions a budget refused (kubectl drain's "will retry after 5s")
DELETION_POLL = 1.0  # seconds between looks at pods still terminating (kubectl drain's poll interval)
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
DEBUG_URL = "http://aka.ms/aks/debugdrainfailures"
COMPONENT = "upgrader"  # the source AKS's drain events carry
_WRITE = WriteOptions(field_validation="Ignore", trusted=True)


class DrainError(Exception):
    """A node could not be drained within its timeout; the message is AKS's."""

    def __init__(self, node: str, message: str):
        super().__init__(message)
        self.node = node
        self.message = message


@dataclass(frozen=True, slots=True)
class _Pod:
    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


# -- cordon -------------------------------------------------------------------------------------


async def cordon(cluster: Cluster, node: str) -> bool:
    """Mark `node` unschedulable. True if this call cordoned it; False if it already was, or
    is gone (the caller then must not uncordon it)."""
    return await _set_unschedulable(cluster, node, True)


async def uncordon(cluster: Cluster, node: str) -> None:
    """Make `node` schedulable again (a drain that failed leaves the node as it found it)."""
    await _set_unschedulable(cluster, node, False)


async def _set_unschedulable(cluster: Cluster, node: str, value: bool) -> bool:
    changed = False

    def mark(current: Obj) -> Obj:
        nonlocal changed
        spec = current.setdefault("spec", {})
        changed = bool(spec.get("unschedulable")) != value
        if value:
            spec["unschedulable"] = True
        else:
            spec.pop("unschedulable", None)
        return current

    try:
        await cluster.registry("", "v1", "nodes").patch(None, node, mark)
    except errors.APIError as err:
        if err.code != 404:
            raise
        return False
    return changed


# -- drain ----------------------------------------------------------------------------------------


def must_go(pod: Obj) -> bool:
    """Whether a drain removes `pod`: everything but DaemonSet pods (`--ignore-daemonsets`) and
    mirror pods; pods with local storage go too (`--delete-emptydir-data`)."""
    meta = pod.get("metadata") or {}
    if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
        return False
    return not any(ref.get("controller") and ref.get("kind") == "DaemonSet"
                   for ref in meta.get("ownerReferences") or [])


async def drain(cluster: Cluster, node: str, *, timeout: float, disable_eviction: bool = False) -> None:
    """Evict (or with `disable_eviction` delete) the pods of `node` that must go, and wait until
    they are gone; `DrainError` if that takes longer than `timeout` seconds. The node should be
    cordoned first, or the scheduler may place new pods on it meanwhile."""
    clock = cluster.clock
    deadline = clock.monotonic() + timeout
    pods = cluster.registry("", "v1", "pods")
    recorder = EventRecorder(cluster, component=COMPONENT)
    node_obj = await cluster.registry("", "v1", "nodes").get_or_none(None, node)
    listed = await pods.list(None, ListOptions(selectors.LabelSelector([]),
                                               pods.parse_field_selector(f"spec.nodeName={node}")))
    todo = [_Pod(p["metadata"]["namespace"], p["metadata"]["name"], p["metadata"]["uid"])
            for p in listed["items"] if must_go(p)]
    if node_obj is not None:
        await recorder.record(node_obj, "Normal", "Drain", f"Draining node: {node}")
    if not todo:
        return
    log.info("draining node %s: %s", node, ", ".join(map(str, todo)))
    results: dict[_Pod, DrainError | None] = {}

    async def one(pod: _Pod) -> None:
        results[pod] = await _remove(cluster, pods, node, node_obj, pod, deadline=deadline,
                                     disable_eviction=disable_eviction, recorder=recorder)

    async with asyncio.TaskGroup() as tg:
        for pod in todo:
            tg.create_task(one(pod))
    refused = [err for err in results.values() if err is not None]
    if refused:
        raise refused[0]
    stuck = [pod for pod in todo if not await _gone(pods, pod)]
    if stuck:
        raise DrainError(node, f"Node '{node}' failed to be drained with error: 'Drain did not complete pods "
                               f"[{' '.join(map(str, stuck))}] within {go_duration(round(timeout * 1e9))}'")


async def _remove(cluster: Cluster, pods: Registry, node: str, node_obj: Obj | None, pod: _Pod, *, deadline: float,
                  disable_eviction: bool, recorder: EventRecorder) -> DrainError | None:
    """One pod: evict it until a budget lets it go (or delete it), then wait for it to be gone
    or for the deadline. A refusal still standing at the deadline is returned, not raised, so
    that the node's other pods get their time too."""
    clock = cluster.clock
    options = deletion.DeleteOptions(preconditions={"uid": pod.uid})
    while True:
        try:
            if disable_eviction:
                await pods.delete(pod.namespace, pod.name, options)
            else:
                body = {"apiVersion": "policy/v1", "kind": "Eviction",
                        "metadata": {"name": pod.name, "namespace": pod.namespace},
                        "deleteOptions": {"preconditions": {"uid": pod.uid}}}
                code, answer = await eviction.evict(pods, pod.namespace, pod.name, "create", body, _WRITE)
                if code >= 400:  # more than one budget: the subresource answers rather than raises
                    raise errors.APIError(code, str(answer.get("reason") or "InternalError"),
                                          str(answer.get("message") or ""))
            break
        except errors.APIError as err:
            if err.code == 404 or (err.code == 409 and await _gone(pods, pod)):  # gone, or replaced by name
                return None
            if err.code not in (409, 429):  # a 409 of a pod still there: a write raced ours, try again
                return DrainError(node, f"Drain node {node} failed when evicting pod {pod.name}: "
                                        f"{err.message.rstrip('.')}. See {DEBUG_URL}.")
            left = deadline - clock.monotonic()
            if left <= 0 and err.code == 409:
                return None  # reported with the node's other stuck pods
            if left <= 0:
                info = await _budget_info(cluster, pod)
                return DrainError(node, (
                    f"Drain node {node} failed when evicting pod {pod.name} failed with Too Many Requests error. "
                    "This is often caused by a restrictive Pod Disruption Budget (PDB) policy. "
                    f"See {DEBUG_URL}. Original error: {err.message}. PDB debug info: {info}"))
            if node_obj is not None and err.code == 429:
                await recorder.record(node_obj, "Warning", "Drain",
                                      f"Eviction blocked by Too many Requests (usually a pdb): {pod.name}")
            await clock.sleep(min(EVICTION_RETRY, left))
    while not await _gone(pods, pod):
        left = deadline - clock.monotonic()
        if left <= 0:
            return None  # reported with the node's other stuck pods
        await clock.sleep(min(DELETION_POLL, left))
    return None


async def _gone(pods: Registry, pod: _Pod) -> bool:
    current = await pods.get_or_none(pod.namespace, pod.name)
    return current is None or current["metadata"].get("uid") != pod.uid


async def _budget_info(cluster: Cluster, pod: _Pod) -> str:
    """AKS's "PDB debug info": the budget that holds the pod, its numbers, and the pods it
    selects that are not Ready."""
    pdbs = cluster.registry("policy", "v1", "poddisruptionbudgets")
    pods = cluster.registry("", "v1", "pods")
    everything = ListOptions(selectors.LabelSelector([]), selectors.FieldSelector([]))
    try:
        target = await pods.get(pod.namespace, pod.name)
    except errors.APIError:
        return f"{pod} blocked by an unknown pdb."
    labels = target["metadata"].get("labels") or {}
    for pdb in (await pdbs.list(pod.namespace, everything))["items"]:
        raw = (pdb.get("spec") or {}).get("selector")
        if not raw or not (raw.get("matchLabels") or raw.get("matchExpressions")):
            continue
        try:
            selector = selectors.from_label_selector_object(raw)
        except (KeyError, TypeError, ValueError):
            continue
        if not selector.matches(labels):
            continue
        spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
        limit = (f"(MinAvailable: {spec['minAvailable']})" if "minAvailable" in spec
                 else f"(MaxUnavailable: {spec.get('maxUnavailable')})")
        selected = (await pods.list(pod.namespace, ListOptions(selector, selectors.FieldSelector([]))))["items"]
        unready = [f"{pod.namespace}/{p['metadata']['name']}" for p in selected
                   if "deletionTimestamp" not in p["metadata"] and not _ready(p)]
        tail = f": [{' '.join(unready)}]" if unready else ""
        return (f"{pod} blocked by pdb {pdb['metadata']['name']} {limit} "
                f"(CurrentHealthy: {status.get('currentHealthy', 0)}) (DesiredHealthy: {status.get('desiredHealthy', 0)}) "
                f"(ExpectedPods: {status.get('expectedPods', 0)}) with {len(unready)} unready pods{tail}.")
    return f"{pod} blocked by an unknown pdb."


def _ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])
