"""The Endpoints controller: for every Service with a selector, an Endpoints object of the same
name listing the selected pods' addresses, ready ones under `addresses` and the others under
`notReadyAddresses`, grouped into subsets by the ports they serve (upstream's
`pkg/controller/endpoint`).

The Endpoints API is deprecated since 1.33 in favour of EndpointSlices, but kube-controller-
manager 1.36 still runs this controller and marks what it writes with
`endpoints.kubernetes.io/managed-by: endpoint-controller`; `kubectl get endpoints` and older
clients read it. Endpoints are capped at 1000 addresses (`endpoints.kubernetes.io/over-capacity:
truncated`). The pod and Service helpers here (which pods count, their address and port for a
Service, the last-change trigger time) are shared with `lks.controllers.endpointslice`, which
writes the EndpointSlices kube-proxy and DNS read.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import logging
import math
from collections import defaultdict
from typing import Any

from lks.controllers import events
from lks.controllers.controller import Controller
from lks.controllers.informer import Informer
from lks.controllers.serviceaccount import namespace_gone
from lks.kube import deletion, errors
from lks.kube.cluster import Cluster
from lks.kube.registry import WriteOptions

log = logging.getLogger(__name__)

Obj = dict[str, Any]
WRITE = WriteOptions(field_validation="Ignore", trusted=True, field_manager="kube-controller-manager")
Key = tuple[str, str]  # (namespace, service name)

MANAGED_BY = "endpoints.kubernetes.io/managed-by"
CONTROLLER = "endpoint-controller"
HEADLESS = "service.kubernetes.io/headless"
TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
MAX_CAPACITY = 1000
SETTLE = 1.0  # seconds a sync waits for its own write to reach the informer caches


# -- pods and Services, shared with the EndpointSlice controller --------------------------

def selects(service: Obj) -> dict[str, str] | None:
    """The selector of a Service the endpoint controllers manage, None for the others
    (ExternalName, or no selector: their endpoints are written by hand)."""
    spec = service.get("spec") or {}
    if spec.get("type") == "ExternalName" or not spec.get("selector"):
        return None
    return spec["selector"]


def pod_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pod_ips(pod: Obj) -> list[str]:
    status = pod.get("status") or {}
    ips = [p["ip"] for p in status.get("podIPs") or [] if p.get("ip")]
    return ips or ([status["podIP"]] if status.get("podIP") else [])


def should_include(pod: Obj, *, include_terminating: bool) -> bool:
    """Upstream's `ShouldPodBeInEndpoints`: not finished, has an IP, and not terminating unless
    asked for."""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") or not pod_ips(pod):
        return False
    return include_terminating or "deletionTimestamp" not in pod["metadata"]


def ip_family(service: Obj) -> str:
    families = (service.get("spec") or {}).get("ipFamilies") or []
    return families[0] if families else "IPv6" if ":" in ((service.get("spec") or {}).get("clusterIP") or "") else "IPv4"


def pod_address(service: Obj, pod: Obj) -> str | None:
    """The pod's IP of the Service's (primary) family."""
    v6 = ip_family(service) == "IPv6"
    return next((ip for ip in pod_ips(pod) if (":" in ip) == v6), None)


def find_port(pod: Obj, port: Obj) -> int | None:
    """Upstream's `FindPort`: a number as is, a name looked up in the pod's containers (and
    sidecars) for the Service port's protocol."""
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    protocol = port.get("protocol") or "TCP"
    spec = pod.get("spec") or {}
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    for container in [*(spec.get("containers") or []), *sidecars]:
        for cport in container.get("ports") or []:
            if cport.get("name") == target and (cport.get("protocol") or "TCP") == protocol:
                return cport.get("containerPort")
    return None


def hostname(service: Obj, pod: Obj) -> str | None:
    """The pod's hostname when it lives under the Service's DNS subdomain."""
    spec = pod.get("spec") or {}
    if spec.get("hostname") and spec.get("subdomain") == service["metadata"]["name"] \
            and pod["metadata"].get("namespace") == service["metadata"].get("namespace"):
        return spec["hostname"]
    return None


def ip_set(service: Obj) -> bool:
    return (service.get("spec") or {}).get("clusterIP") not in (None, "", "None")


def pod_reference(pod: Obj) -> Obj:
    meta = pod["metadata"]
    return {"kind": "Pod", "namespace": meta.get("namespace"), "name": meta["name"], "uid": meta.get("uid")}


def _endpoint_view(pod: Obj) -> tuple:
    """What of a pod the endpoint controllers read (upstream's `podEndpointsChanged`)."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    return (pod["metadata"].get("labels"), spec.get("hostname"), spec.get("subdomain"), spec.get("nodeName"),
            pod["metadata"].get("deletionTimestamp"), pod_ready(pod), tuple(pod_ips(pod)), status.get("phase"))


class ServiceIndex:
    """Which Services select a pod: the selectors of each namespace's Services, kept from
    the Service informer's events, so a pod event costs one namespace's selectors."""

    def __init__(self) -> None:
        self._selectors: dict[str, dict[str, dict[str, str]]] = defaultdict(dict)

    def on_service(self, kind: str, svc: Obj) -> None:
        meta = svc["metadata"]
        selector = selects(svc) if kind != "DELETED" else None
        if selector is None:
            self._selectors[meta["namespace"]].pop(meta["name"], None)
        else:
            self._selectors[meta["namespace"]][meta["name"]] = selector

    def for_pod(self, pod: Obj) -> list[Key]:
        ns = pod["metadata"].get("namespace") or ""
        labels = pod["metadata"].get("labels") or {}
        return [(ns, name) for name, sel in self._selectors.get(ns, {}).items()
                if all(labels.get(k) == v for k, v in sel.items())]

    def for_pod_change(self, kind: str, pod: Obj, prev: Obj | None) -> set[Key]:
        """The Services to look at again after a pod event (none when nothing they read changed)."""
        if not self._selectors.get(pod["metadata"].get("namespace") or ""):
            return set()  # no Service with a selector in the pod's namespace
        if kind == "MODIFIED" and prev is not None:
            if _endpoint_view(pod) == _endpoint_view(prev):
                return set()
            return {*self.for_pod(pod), *self.for_pod(prev)}
        return set(self.for_pod(pod))


def selected_pods(pods: Informer, namespace: str, selector: dict[str, str]) -> list[Obj]:
    prefix = pods.registry.key(namespace, "")
    assert pods.cache is not None
    return [p for k, p in pods.cache.objects.items() if k.startswith(prefix)
            and all((p["metadata"].get("labels") or {}).get(lk) == lv for lk, lv in selector.items())]


async def cache_reaches(informer: Informer, revision: int) -> bool:
    """Wait (up to SETTLE seconds) until the informer's cache has seen `revision`, so a sync
    after our own write reads it. Polls: the feed is in-process and usually there within a
    loop iteration, and a plain sleep cancels cleanly when the controller stops (Python 3.11's
    `asyncio.wait_for` can swallow a cancellation that races its inner future)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE
    for i in itertools.count():
        if informer.cache is not None and informer.cache.revision >= revision:
            return True
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0 if i < 100 else 0.002)
    return False


class TriggerTimes:
    """Upstream's `TriggerTimeTracker`: the earliest change (a pod's Ready transition, or a
    new Service's creation) not yet reflected in a Service's endpoints, for the
    `last-change-trigger-time` annotation that endpoint latency SLIs measure from."""

    def __init__(self) -> None:
        self._state: dict[Key, tuple[str, dict[str, str]]] = {}

    def compute(self, service: Obj, pods: list[Obj]) -> str | None:
        meta = service["metadata"]
        key = (meta.get("namespace") or "", meta["name"])
        known = key in self._state
        last_service, last_pods = self._state.get(key, ("", {}))
        changed: list[str] = []
        created = meta.get("creationTimestamp") or ""
        if not known or created > last_service:
            changed.append(created)
        pod_times: dict[str, str] = {}
        for pod in pods:
            ready = next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
            when = (ready or {}).get("lastTransitionTime")
            if when:
                pod_times[pod["metadata"]["name"]] = when
                if when > last_pods.get(pod["metadata"]["name"], ""):
                    changed.append(when)
        self._state[key] = (created, pod_times)
        return min((t for t in changed if t), default=None)

    def forget(self, key: Key) -> None:
        self._state.pop(key, None)


# -- the controller ----------------------------------------------------------------------

class EndpointsController(Controller[Key]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="endpoint")
        self.endpoints = cluster.registry("", "v1", "endpoints")
        self.index = ServiceIndex()
        self.triggers = TriggerTimes()
        self.recorder = events.EventRecorder(cluster, component=CONTROLLER)
        self.pods = self.watch(cluster.registry("", "v1", "pods"), self._on_pod)
        self.informer = self.watch(self.endpoints, self._on_endpoints)
        self.services = self.watch(cluster.registry("", "v1", "services"), self._on_service)

    def _on_service(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        self.index.on_service(kind, obj)
        self.queue.add((obj["metadata"]["namespace"], obj["metadata"]["name"]))

    def _on_pod(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        for key in self.index.for_pod_change(kind, obj, prev):
            self.queue.add(key)

    def _on_endpoints(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        # deleted ones come back; at start every one is checked (leftovers of deleted Services)
        if kind in ("ADDED", "DELETED"):
            self.queue.add((obj["metadata"]["namespace"], obj["metadata"]["name"]))

    async def sync(self, key: Key) -> None:
        namespace, name = key
        service = self.services.get(namespace, name)
        current = self.informer.get(namespace, name)
        if service is None:
            self.triggers.forget(key)
            if current is not None and LEADER_ANNOTATION not in (current["metadata"].get("annotations") or {}):
                try:
                    await self.endpoints.delete(namespace, name, deletion.DeleteOptions())
                except errors.APIError as err:
                    if err.code != 404:
                        raise
            return
        selector = selects(service)
        if selector is None:
            return  # written by hand (or by `lks.controllers.kubernetesservice`)
        pods = selected_pods(self.pods, namespace, selector)
        trigger = self.triggers.compute(service, pods)
        subsets = build_subsets(service, pods)
        labels = {**(service["metadata"].get("labels") or {}), MANAGED_BY: CONTROLLER}
        if not ip_set(service):
            labels[HEADLESS] = ""
        if current is not None and (current.get("subsets") or []) == subsets \
                and (current["metadata"].get("labels") or {}) == labels and _capacity_noted(current, subsets):
            return
        desired = copy.deepcopy(current) if current is not None else {"metadata": {"name": name}}
        meta = desired["metadata"]
        meta["labels"] = labels
        annotations = meta.setdefault("annotations", {})
        if trigger:
            annotations[TRIGGER_TIME] = trigger
        else:
            annotations.pop(TRIGGER_TIME, None)
        if truncate(subsets):
            annotations[OVER_CAPACITY] = "truncated"
        else:
            annotations.pop(OVER_CAPACITY, None)
        if not annotations:
            del meta["annotations"]
        if subsets:
            desired["subsets"] = subsets
        else:
            desired.pop("subsets", None)
        await self._write(service, namespace, desired, create=current is None)

    async def _write(self, service: Obj, namespace: str, desired: Obj, *, create: bool) -> None:
        try:
            if create:
                written = await self.endpoints.create(namespace, desired, WRITE)
            else:
                written, _ = await self.endpoints.update(namespace, desired["metadata"]["name"], desired, WRITE)
        except errors.APIError as err:
            if create and namespace_gone(err):
                return
            if err.code == 409:
                raise  # our cache is behind: the queue retries once it has caught up
            about = {"kind": "Endpoints", "apiVersion": "v1", "metadata": {**desired["metadata"], "namespace": namespace}}
            name = service["metadata"]["name"]
            if create:
                await self.recorder.record(about, events.WARNING, "FailedToCreateEndpoint",
                                           f"Failed to create endpoint for service {namespace}/{name}: {err.message}")
            else:
                await self.recorder.record(about, events.WARNING, "FailedToUpdateEndpoint",
                                           f"Failed to update endpoint {namespace}/{name}: {err.message}")
            raise
        # the next sync must see this write, or it would write again from a stale cache
        await cache_reaches(self.informer, int(written["metadata"]["resourceVersion"]))


def build_subsets(service: Obj, pods: list[Obj]) -> list[Obj]:
    """The Service's subsets: each address once per distinct set of ports it serves, as
    upstream's `RepackSubsets` leaves them, sorted."""
    spec = service.get("spec") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    groups: dict[tuple, tuple[list[Obj], list[Obj], list[Obj]]] = {}
    for pod in pods:
        if not should_include(pod, include_terminating=publish):
            continue
        ip = pod_address(service, pod)
        if ip is None:
            continue
        address: Obj = {"ip": ip}
        host = hostname(service, pod)
        if host:
            address["hostname"] = host
        if (pod.get("spec") or {}).get("nodeName"):
            address["nodeName"] = pod["spec"]["nodeName"]
        address["targetRef"] = pod_reference(pod)
        ports = []
        for sport in spec.get("ports") or []:
            number = find_port(pod, sport)
            if number is None:
                continue  # the pod does not serve this port (a named port it lacks)
            port: Obj = {"name": sport["name"]} if sport.get("name") else {}
            port |= {"port": number, "protocol": sport.get("protocol") or "TCP"}
            if sport.get("appProtocol"):
                port["appProtocol"] = sport["appProtocol"]
            ports.append(port)
        if not ports and spec.get("ports"):
            continue  # serves none of the ports; only a headless Service without ports lists it bare
        ports.sort(key=lambda p: (p.get("name", ""), p["port"], p["protocol"]))
        group_key = tuple(tuple(sorted(p.items())) for p in ports)
        ready, not_ready, _ = groups.setdefault(group_key, ([], [], ports))
        (ready if publish or pod_ready(pod) else not_ready).append(address)
    subsets = []
    for ready, not_ready, ports in groups.values():
        subset: Obj = {}
        if ready:
            subset["addresses"] = sorted(ready, key=_address_order)
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=_address_order)
        if ports:
            subset["ports"] = ports
        subsets.append(subset)
    return sorted(subsets, key=lambda s: [(p.get("name", ""), p["port"], p["protocol"]) for p in s.get("ports", [])])


def _address_order(address: Obj) -> tuple:
    return address["ip"], address["targetRef"].get("uid") or ""


def _capacity_noted(current: Obj, subsets: list[Obj]) -> bool:
    """Upstream's `capacityAnnotationSetCorrectly`."""
    total = sum(len(s.get("addresses", [])) + len(s.get("notReadyAddresses", [])) for s in subsets)
    return total <= MAX_CAPACITY and OVER_CAPACITY not in (current["metadata"].get("annotations") or {})


def truncate(subsets: list[Obj]) -> bool:
    """Upstream's `truncateEndpoints`: keep at most 1000 addresses, ready ones first, each
    subset keeping its share; whether anything was cut."""
    ready = sum(len(s.get("addresses", [])) for s in subsets)
    not_ready = sum(len(s.get("notReadyAddresses", [])) for s in subsets)
    if ready + not_ready <= MAX_CAPACITY:
        return False
    cut_ready = ready > MAX_CAPACITY
    room, total = (MAX_CAPACITY, ready) if cut_ready else (MAX_CAPACITY - ready, not_ready)
    left = room
    for subset in subsets:
        field = "addresses" if cut_ready else "notReadyAddresses"
        have = subset.get(field, [])
        share = min(math.ceil(len(have) / total * room), left)
        if have:
            subset[field] = have[:share]
            if not subset[field]:
                del subset[field]
        left -= len(subset.get(field, []))
        if cut_ready:
            subset.pop("notReadyAddresses", None)
    return True
