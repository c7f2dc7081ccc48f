"""The `kubernetes` Service in `default`, and the Endpoints and EndpointSlice that point it at
the API server (upstream's `pkg/controlplane/controller/kubernetesservice` and the endpoint
reconciler that kube-apiserver runs for itself).

Pods reach the API server at `kubernetes.default.svc`: the first address of the service CIDR
(10.0.0.1 by default), port 443 (`https`). Its endpoint is where lks serves the cluster's API
(`cluster.api_endpoint`). The Service has no selector, so the Endpoints and EndpointSlice
controllers (`lks.controllers.endpoints`, `.endpointslice`) leave these objects alone; this
controller puts them back when they are deleted or changed. The cluster IP is claimed through
the Service IP allocator (`lks.kube.admission.serviceips`) like any requested address.
"""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

from lks.controllers.controller import Controller
from lks.kube import errors
from lks.kube.cluster import Cluster
from lks.kube.registry import Registry, WriteOptions

Obj = dict[str, Any]
WRITE = WriteOptions(field_validation="Ignore", trusted=True, field_manager="kube-apiserver")

NAMESPACE, NAME = "default", "kubernetes"
PORT_NAME, PORT = "https", 443
SERVICE_LABELS = {"component": "apiserver", "provider": "kubernetes"}
ENDPOINTS_LABELS = {"endpointslice.kubernetes.io/skip-mirror": "true"}  # no mirrored slice: we write our own
SLICE_LABELS = {"kubernetes.io/service-name": NAME}
RETRY = 1.0  # seconds before looking again for an API endpoint not yet known


def service_ip(cluster: Cluster) -> str:
    """The first address of the service CIDR."""
    network = ipaddress.ip_network(getattr(cluster, "service_cidr", "10.0.0.0/16"), strict=False)
    return str(network.network_address + 1)


def api_address(cluster: Cluster) -> tuple[str, int]:
    """Where pods reach the API server: lks's address if it is a usable IPv4 address, else
    loopback (a wildcard or host name cannot be an endpoint)."""
    host, port = getattr(cluster, "api_endpoint", ("127.0.0.1", PORT))
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return "127.0.0.1", port
    return ("127.0.0.1" if addr.is_unspecified or addr.version != 4 else host), port


class KubernetesServiceController(Controller[str]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="kubernetes-service", workers=1)
        self.services = cluster.registry("", "v1", "services")
        self.endpoints = cluster.registry("", "v1", "endpoints")
        self.slices = cluster.registry("discovery.k8s.io", "v1", "endpointslices")
        self.informers = {reg.rt.resource: self.watch(reg, self._on_event)
                          for reg in (self.services, self.endpoints, self.slices)}

    def _on_event(self, _kind: str, obj: Obj, _prev: Obj | None) -> None:
        meta = obj["metadata"]
        if meta.get("namespace") == NAMESPACE and meta["name"] == NAME:
            self.queue.add(NAME)

    def prime(self) -> None:
        self.queue.add(NAME)

    async def sync(self, _key: str) -> None:
        ip, port = api_address(self.cluster)
        ports = [{"name": PORT_NAME, "port": port, "protocol": "TCP"}]
        await self._ensure(self.services, {"metadata": {"labels": SERVICE_LABELS}, "spec": {
            "type": "ClusterIP", "clusterIP": service_ip(self.cluster), "sessionAffinity": "None",
            "ports": [{"name": PORT_NAME, "port": PORT, "protocol": "TCP", "targetPort": PORT}],
        }}, _service_differs)
        if not port:  # lks is still binding its port (`--port 0`): look again shortly
            self.queue.add_after(NAME, RETRY)
            return
        await self._ensure(self.endpoints, {"metadata": {"labels": ENDPOINTS_LABELS}, "subsets": [
            {"addresses": [{"ip": ip}], "ports": ports}]}, _differs("subsets"))
        await self._ensure(self.slices, {"metadata": {"labels": SLICE_LABELS}, "addressType": "IPv4", "endpoints": [
            {"addresses": [ip], "conditions": {"ready": True}}], "ports": ports},
            _differs("addressType", "endpoints", "ports"))

    async def _ensure(self, reg: Registry, desired: Obj, differs: Any) -> None:
        """Create `desired` if missing; otherwise put back what `differs` finds changed."""
        current = self.informers[reg.rt.resource].get(NAMESPACE, NAME)
        if current is None:
            obj = copy.deepcopy(desired)
            obj["metadata"]["name"] = NAME
            try:
                await reg.create(NAMESPACE, obj, WRITE)
            except errors.APIError as err:
                if err.code != 409:  # our cache is behind: its ADDED event brings us back
                    raise
            return
        labels = current["metadata"].get("labels") or {}
        mislabelled = any(labels.get(k) != v for k, v in desired["metadata"]["labels"].items())
        if not mislabelled and not differs(current, desired):
            return
        updated = copy.deepcopy(current)  # the cache's copy is shared
        updated["metadata"]["labels"] = {**labels, **desired["metadata"]["labels"]}
        for k, v in desired.items():
            if k == "spec":
                # the ports and type, as upstream reconciles them; the cluster IP stays
                updated["spec"] = {**updated.get("spec", {}), "type": v["type"], "ports": v["ports"]}
            elif k != "metadata":
                updated[k] = copy.deepcopy(v)
        try:
            await reg.update(NAMESPACE, NAME, updated, WRITE)
        except errors.APIError as err:
            if err.code != 404:  # deleted meanwhile: its DELETED event brings us back
                raise


def _service_differs(current: Obj, desired: Obj) -> bool:
    spec, want = current.get("spec") or {}, desired["spec"]
    ports = [{k: p.get(k) for k in ("name", "port", "protocol", "targetPort")} for p in spec.get("ports") or []]
    return spec.get("type") != want["type"] or ports != want["ports"]


def _differs(*keys: str) -> Any:
    def differs(current: Obj, desired: Obj) -> bool:
        return any(current.get(k) != desired[k] for k in keys)

    return differs
