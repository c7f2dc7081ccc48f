"""The EndpointSlice controller: for every Service with a selector, `discovery.k8s.io/v1`
EndpointSlices listing the selected pods (upstream's `pkg/controller/endpointslice` and the
reconciler of `k8s.io/endpointslice`). kube-proxy and CoreDNS read these, not Endpoints.

Slices are named `<service>-<random>`, labelled `kubernetes.io/service-name` and
`endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`, owned by the Service
(the garbage collector removes them with it), and hold at most 100 endpoints of one address type
and one set of ports (a named target port can resolve to different numbers on different pods).
Each endpoint carries its pod's address, the ready / serving / terminating conditions (terminating
pods stay listed, not ready), node name, zone, hostname and a `targetRef` to the pod. A Service
that selects nothing keeps one empty placeholder slice. As upstream, the reconciler changes as
few slices as it can: endpoints stay in the slice they are in, new ones fill slices being updated
before new slices are made, and a slice that would be deleted while another is created is
updated instead. The pod helpers are shared with `lks.controllers.endpoints`.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any

from lks.controllers import endpoints as eputil
from lks.controllers import events
from lks.controllers.controller import Controller
from lks.controllers.serviceaccount import namespace_gone
from lks.kube import deletion, errors
from lks.kube.cluster import Cluster
from lks.kube.registry import WriteOptions

Obj = dict[str, Any]
WRITE = WriteOptions(field_validation="Ignore", trusted=True, field_manager="kube-controller-manager")
Key = eputil.Key

MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER = "endpointslice-controller.k8s.io"
SERVICE_NAME = "kubernetes.io/service-name"
ZONE = "topology.kubernetes.io/zone"
MAX_ENDPOINTS = 100  # kube-controller-manager's --max-endpoints-per-slice
_RESERVED = (SERVICE_NAME, MANAGED_BY, eputil.HEADLESS)


def _ports_key(ports: list[Obj]) -> tuple:
    return tuple(sorted(tuple(sorted(p.items())) for p in ports))


def _endpoint_key(ep: Obj) -> tuple:
    """Upstream's endpoint hash: the same pod at the same address is the same endpoint."""
    ref = ep.get("targetRef") or {}
    return tuple(ep.get("addresses") or []), ep.get("hostname"), ref.get("namespace"), ref.get("name")


class _Plan:
    """What one sync writes: slices to create, update and delete."""

    def __init__(self) -> None:
        self.create: list[Obj] = []
        self.update: list[Obj] = []
        self.delete: list[Obj] = []


class EndpointSliceController(Controller[Key]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="endpointslice")
        self.slices = cluster.registry("discovery.k8s.io", "v1", "endpointslices")
        self.index = eputil.ServiceIndex()
        self.triggers = eputil.TriggerTimes()
        self.recorder = events.EventRecorder(cluster, component="endpoint-slice-controller")
        self.nodes = self.watch(cluster.registry("", "v1", "nodes"), lambda *_: None)  # zones, read at sync
        self.pods = self.watch(cluster.registry("", "v1", "pods"), self._on_pod)
        self.informer = self.watch(self.slices, self._on_slice)
        self.services = self.watch(cluster.registry("", "v1", "services"), self._on_service)
        self._ours: dict[Key, str] = {}  # slice -> resourceVersion this controller wrote
        self._deleted: set[Key] = set()  # slices this controller deleted

    # -- events: only enqueue Service keys -----------------------------------------------

    def _on_service(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        self.index.on_service(kind, obj)
        self.queue.add((obj["metadata"]["namespace"], obj["metadata"]["name"]))

    def _on_pod(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        for key in self.index.for_pod_change(kind, obj, prev):
            self.queue.add(key)

    def _on_slice(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        meta = obj["metadata"]
        labels = meta.get("labels") or {}
        if labels.get(MANAGED_BY) != CONTROLLER or not labels.get(SERVICE_NAME):
            return
        key = (meta["namespace"], meta["name"])
        if kind == "DELETED":
            self._ours.pop(key, None)
            if key in self._deleted:
                self._deleted.discard(key)
                return
        elif self._ours.get(key) == meta.get("resourceVersion"):
            return  # our own write: nothing to look at again
        self.queue.add((meta["namespace"], labels[SERVICE_NAME]))

    # -- sync ----------------------------------------------------------------------------

    async def sync(self, key: Key) -> None:
        namespace, name = key
        service = self.services.get(namespace, name)
        if service is None:
            self.triggers.forget(key)  # the garbage collector removes the slices it owned
            return
        selector = eputil.selects(service)
        if selector is None:
            return  # slices written by hand (or by `lks.controllers.kubernetesservice`)
        pods = eputil.selected_pods(self.pods, namespace, selector)
        trigger = self.triggers.compute(service, pods)
        plan = self.reconcile(service, pods, self._existing(namespace, name))
        if plan.create or plan.update or plan.delete:
            await self._apply(service, plan, trigger)

    def _existing(self, namespace: str, name: str) -> list[Obj]:
        assert self.informer.cache is not None
        prefix = self.slices.key(namespace, "")
        return [s for k, s in self.informer.cache.objects.items() if k.startswith(prefix)
                and (s["metadata"].get("labels") or {}).get(SERVICE_NAME) == name
                and (s["metadata"].get("labels") or {}).get(MANAGED_BY) == CONTROLLER]

    def desired(self, service: Obj, pods: list[Obj]) -> dict[tuple, tuple[list[Obj], dict[tuple, Obj]]]:
        """The endpoints the Service should have, by set of ports: key -> (ports, endpoints)."""
        spec = service.get("spec") or {}
        publish = bool(spec.get("publishNotReadyAddresses"))
        groups: dict[tuple, tuple[list[Obj], dict[tuple, Obj]]] = {}
        for pod in pods:
            if not eputil.should_include(pod, include_terminating=True):
                continue
            ip = eputil.pod_address(service, pod)
            if ip is None:
                continue
            ports = []
            for sport in spec.get("ports") or []:
                number = eputil.find_port(pod, sport)
                if number is None:
                    continue
                port = {"name": sport.get("name", ""), "port": number, "protocol": sport.get("protocol") or "TCP"}
                if sport.get("appProtocol"):
                    port["appProtocol"] = sport["appProtocol"]
                ports.append(port)
            ep = self._endpoint(service, pod, ip, publish)
            groups.setdefault(_ports_key(ports), (ports, {}))[1][_endpoint_key(ep)] = ep
        return groups

    def _endpoint(self, service: Obj, pod: Obj, ip: str, publish: bool) -> Obj:
        """Upstream's `podToEndpoint`."""
        serving = eputil.pod_ready(pod)
        terminating = "deletionTimestamp" in pod["metadata"]
        # a terminating pod is never ready, unless the Service publishes not-ready addresses
        ep: Obj = {"addresses": [ip], "conditions": {"ready": publish or (serving and not terminating),
                                                     "serving": serving, "terminating": terminating}}
        host = eputil.hostname(service, pod)
        if host:
            ep["hostname"] = host
        ep["targetRef"] = eputil.pod_reference(pod)
        node_name = (pod.get("spec") or {}).get("nodeName")
        if node_name:
            ep["nodeName"] = node_name
            node = self.nodes.get(None, node_name)
            zone = ((node or {}).get("metadata", {}).get("labels") or {}).get(ZONE)
            if zone:
                ep["zone"] = zone
        return ep

    def reconcile(self, service: Obj, pods: list[Obj], existing: list[Obj]) -> _Plan:
        """Upstream's `reconcileByAddressType` for the Service's primary family."""
        plan = _Plan()
        address_type = eputil.ip_family(service)
        desired = self.desired(service, pods)
        labels, owner = self._labels(service), self._owner(service)
        owned: dict[tuple, list[Obj]] = defaultdict(list)
        for s in existing:
            if s.get("addressType") != address_type or not _owned_by(s, service):
                plan.delete.append(s)
            else:
                owned[_ports_key(s.get("ports") or [])].append(s)
        unchanged: list[Obj] = []
        for pkey, slices in owned.items():
            ports, eps = desired.get(pkey, ([], {}))
            updating: list[Obj] = []
            for s in sorted(slices, key=lambda s: s["metadata"]["name"]):
                kept, changed = [], False
                for ep in s.get("endpoints") or []:
                    want = eps.pop(_endpoint_key(ep), None)
                    changed |= want != ep
                    if want is not None:
                        kept.append(want)
                changed |= (s["metadata"].get("labels") or {}) != labels or s["metadata"].get("ownerReferences") != [owner]
                if not kept:
                    plan.delete.append(s)
                elif changed:
                    updating.append({**s, "endpoints": kept})
                else:
                    unchanged.append(s)
            self._fill(plan, service, address_type, ports, list(eps.values()), updating, unchanged)
            desired.pop(pkey, None)
        for ports, eps in desired.values():  # sets of ports no slice has yet
            self._fill(plan, service, address_type, ports, list(eps.values()), [], unchanged)
        if len(plan.delete) == len(existing) and not plan.create:
            placeholder = self._slice(service, address_type, [], [])
            if len(plan.delete) == 1 and _placeholder_like(plan.delete[0], placeholder):
                plan.delete.clear()  # it already is the placeholder
            else:
                plan.create.append(placeholder)
        self._recycle(plan, service)
        return plan

    def _fill(self, plan: _Plan, service: Obj, address_type: str, ports: list[Obj], new: list[Obj],
              updating: list[Obj], unchanged: list[Obj]) -> None:
        """Place endpoints no slice has: into slices being updated, then an unchanged slice
        with room for all that is left, then new slices."""
        new.sort(key=lambda ep: ep["addresses"])
        for s in updating:
            room = MAX_ENDPOINTS - len(s["endpoints"])
            s["endpoints"], new = s["endpoints"] + new[:room], new[room:]
        plan.update.extend(updating)
        pkey = _ports_key(ports)
        while new:
            if len(new) < MAX_ENDPOINTS:
                roomy = [s for s in unchanged if _ports_key(s.get("ports") or []) == pkey
                         and len(s.get("endpoints") or []) + len(new) <= MAX_ENDPOINTS]
                if roomy:
                    target = max(roomy, key=lambda s: len(s.get("endpoints") or []))
                    unchanged.remove(target)
                    plan.update.append({**target, "endpoints": [*(target.get("endpoints") or []), *new]})
                    return
            plan.create.append(self._slice(service, address_type, ports, new[:MAX_ENDPOINTS]))
            new = new[MAX_ENDPOINTS:]

    def _recycle(self, plan: _Plan, service: Obj) -> None:
        """Upstream's finalize: a slice to create takes the place of one to delete."""
        for old in list(plan.delete):
            if not plan.create:
                break
            if not _owned_by(old, service) or old.get("addressType") != plan.create[-1]["addressType"]:
                continue  # addressType is immutable
            new = plan.create.pop()
            plan.delete.remove(old)
            recycled = {k: v for k, v in old.items() if k != "ports"} | {"endpoints": new["endpoints"]}
            if "ports" in new:
                recycled["ports"] = new["ports"]
            plan.update.append(recycled)

    def _labels(self, service: Obj) -> dict[str, str]:
        labels = {k: v for k, v in (service["metadata"].get("labels") or {}).items() if k not in _RESERVED}
        if not eputil.ip_set(service):
            labels[eputil.HEADLESS] = ""
        return labels | {SERVICE_NAME: service["metadata"]["name"], MANAGED_BY: CONTROLLER}

    def _owner(self, service: Obj) -> Obj:
        meta = service["metadata"]
        return {"apiVersion": "v1", "kind": "Service", "name": meta["name"], "uid": meta.get("uid"),
                "controller": True, "blockOwnerDeletion": True}

    def _slice(self, service: Obj, address_type: str, ports: list[Obj], eps: list[Obj]) -> Obj:
        meta = service["metadata"]
        out: Obj = {"metadata": {"generateName": f"{meta['name']}-", "namespace": meta["namespace"],
                                 "labels": self._labels(service), "ownerReferences": [self._owner(service)]},
                    "addressType": address_type, "endpoints": eps}
        if ports:
            out["ports"] = ports
        return out

    # -- writes --------------------------------------------------------------------------

    async def _apply(self, service: Obj, plan: _Plan, trigger: str | None) -> None:
        """Creates first, so no endpoint is ever missing from every slice; then updates, then
        deletes. Waits until the informer has seen the writes: a sync from a cache without
        them would make the same slices again."""
        namespace = service["metadata"]["namespace"]
        revision = 0
        try:
            for s in plan.create:
                created = await self.slices.create(namespace, self._stamped(s, service, trigger), WRITE)
                self._ours[(namespace, created["metadata"]["name"])] = created["metadata"]["resourceVersion"]
                revision = int(created["metadata"]["resourceVersion"])
            for s in plan.update:
                updated, _ = await self.slices.update(namespace, s["metadata"]["name"],
                                                     self._stamped(s, service, trigger), WRITE)
                self._ours[(namespace, updated["metadata"]["name"])] = updated["metadata"]["resourceVersion"]
                revision = int(updated["metadata"]["resourceVersion"])
            for s in plan.delete:
                self._deleted.add((namespace, s["metadata"]["name"]))
                try:
                    await self.slices.delete(namespace, s["metadata"]["name"], deletion.DeleteOptions(
                        preconditions={"uid": s["metadata"].get("uid")}))
                except errors.APIError as err:
                    self._deleted.discard((namespace, s["metadata"]["name"]))
                    if err.code != 404:
                        raise
        except errors.APIError as err:
            if plan.create and namespace_gone(err):
                return
            if err.code != 409:  # 409: our cache is behind; the queue retries
                name = service["metadata"]["name"]
                await self.recorder.record(service, events.WARNING, "FailedToUpdateEndpointSlices",
                                           f"Error updating Endpoint Slices for Service {namespace}/{name}: {err.message}")
            raise
        if plan.delete:
            revision = await self.cluster.store.current_revision()
        await eputil.cache_reaches(self.informer, revision)

    def _stamped(self, s: Obj, service: Obj, trigger: str | None) -> Obj:
        """A copy of `s` to write, with the Service's labels, ownership and trigger time."""
        out = copy.deepcopy(s)
        meta = out["metadata"]
        meta["labels"] = self._labels(service)
        meta["ownerReferences"] = [self._owner(service)]
        annotations = dict(meta.get("annotations") or {})
        if trigger:
            annotations[eputil.TRIGGER_TIME] = trigger
        else:
            annotations.pop(eputil.TRIGGER_TIME, None)
        if annotations:
            meta["annotations"] = annotations
        else:
            meta.pop("annotations", None)
        return out


def _owned_by(s: Obj, service: Obj) -> bool:
    uid = service["metadata"].get("uid")
    return any(ref.get("uid") == uid and ref.get("controller") for ref in s["metadata"].get("ownerReferences") or [])


def _placeholder_like(s: Obj, placeholder: Obj) -> bool:
    return (s.get("addressType") == placeholder["addressType"] and not s.get("endpoints")
            and not s.get("ports") and (s["metadata"].get("labels") or {}) == placeholder["metadata"]["labels"])
