"""`POST managedClusters/{name}/networkPolicyCheck` (an lks extension, behind `lks aks
network-policy check`): would a connection from one pod to another (or to or from an address)
on a port go through the cluster's NetworkPolicies, and which policies decide it.

Body `{"from": "ns/pod" | IP, "to": "ns/pod" | IP, "port": 80, "protocol": "TCP"}`; the answer
says `allowed`, whether policies are enforced at all (`networkProfile.networkPolicy` none: they
are not, and a connection is allowed whatever they say, as on AKS), and both directions
(`lks.net.netpol.model`): the source's egress and the destination's ingress, each with the
policies that isolate the pod and those that let the connection through. `decidingPolicies`
names what decided: the allowing policies of an allowed connection, the isolating ones of each
direction that refused it.

Read from the cluster's watch caches (as its API server lists), so the answer follows every
change at once. A stopped cluster is 409 `OperationNotAllowed`; a bad body, or a pod that does
not exist, 400 `InvalidParameter`.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from aiohttp import web

from lks.arm import documents, managedclusters
from lks.arm.app import Call, Route, json_response, route
from lks.arm.errors import ARMError, invalid_parameter
from lks.kube.cluster import Cluster
from lks.net.netpol import controller as netpol
from lks.net.netpol import model

if TYPE_CHECKING:
    from lks.arm.plane import ManagementPlane

Doc = dict[str, Any]
PROTOCOLS = ("TCP", "UDP", "SCTP")


def routes(plane: ManagementPlane) -> list[Route]:
    h = NetworkPolicyCheck(plane)
    return [route(managedclusters.CLUSTER + "/networkPolicyCheck", {"POST": h.check},
                  api_versions=managedclusters.API_VERSIONS, type_name="managedClusters/networkPolicyCheck")]


class NetworkPolicyCheck:
    def __init__(self, plane: ManagementPlane):
        self.plane = plane
        self.clusters = managedclusters.ManagedClusters(plane)

    async def check(self, call: Call) -> web.Response:
        doc = (await self.clusters.load(call)).doc
        body = call.body if isinstance(call.body, dict) else {}
        port, protocol = _port(body.get("port")), str(body.get("protocol") or "TCP").upper()
        if protocol not in PROTOCOLS:
            raise invalid_parameter(f"The value of parameter protocol is invalid: '{body.get('protocol')}'. "
                                    f"Allowed values are {', '.join(PROTOCOLS)}.", "protocol")
        cluster = self.plane.planes.get(doc["properties"].get(documents.PRIVATE, {}).get("controlPlane", ""))
        if cluster is None:
            raise ARMError("OperationNotAllowed", f"The managed cluster {doc['name']} is not running: start it to "
                           "check its network policies.", 409)
        policies = [o for o in await _objects(cluster, "networking.k8s.io", "networkpolicies")]
        namespaces = {o["metadata"]["name"]: o["metadata"].get("labels") or {}
                      for o in await _objects(cluster, "", "namespaces")}
        src = await _end(cluster, body.get("from"), "from")
        dst = await _end(cluster, body.get("to"), "to")
        verdict = model.check(policies, namespaces, src, dst, port, protocol)
        mode = ((doc["properties"].get("networkProfile") or {}).get("networkPolicy") or "none").lower()
        enforced = netpol.enforcing(mode)
        return json_response(_answer(verdict, src, dst, port, protocol, mode, enforced))


def _port(value: Any) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = 0
    if not 1 <= port <= 65535 or isinstance(value, bool):
        raise invalid_parameter(f"The value of parameter port is invalid: '{value}'. It must be a port number "
                                "from 1 to 65535.", "port")
    return port


async def _objects(cluster: Cluster, group: str, resource: str) -> list[Doc]:
    cache = await cluster.registry(group, "v1", resource).cache()
    return list(cache.objects.values())


async def _end(cluster: Cluster, value: Any, target: str) -> model.Pod | str:
    """A connection's end: `namespace/pod` (a pod of the cluster) or an IP address (the pod that
    has it, if one does)."""
    text = str(value or "").strip()
    try:
        ip = str(ipaddress.ip_address(text))
    except ValueError:
        pass
    else:  # a running pod's address is that pod: its policies count
        pods = [p for p in map(netpol.policy_pod, await _objects(cluster, "", "pods")) if p is not None and ip in p.ips]
        return pods[0] if pods else ip
    namespace, _, name = text.rpartition("/")
    if not text or not name:
        raise invalid_parameter(f"The value of parameter {target} is invalid: '{text}'. Give a pod as "
                                "<namespace>/<name>, or an IP address.", target)
    registry = cluster.registry("", "v1", "pods")
    obj = (await registry.cache()).objects.get(registry.key(namespace or "default", name))
    if obj is None:
        raise invalid_parameter(f"The pod '{namespace or 'default'}/{name}' was not found in the cluster.", target)
    return model.pod_of(obj)


def _answer(verdict: model.Verdict, src: model.Pod | str, dst: model.Pod | str, port: int, protocol: str,
            mode: str, enforced: bool) -> Doc:
    deciding: list[str] = []
    for side in (verdict.egress, verdict.ingress):
        if verdict.allowed:
            deciding += side.allowing
        elif not side.allowed:
            deciding += side.selecting
    if not enforced:
        message = (f"Allowed: network policies are not enforced in this cluster (networkProfile.networkPolicy is "
                   f"{mode}); with enforcement the connection would be {'allowed' if verdict.allowed else 'denied'}.")
    elif verdict.allowed:
        message = "Allowed" + (f" by {', '.join(deciding)}." if deciding else ": no policy isolates either pod.")
    else:
        message = f"Denied by {', '.join(deciding)}: no rule of theirs allows the connection."
    return {
        "from": src.key if isinstance(src, model.Pod) else src, "to": dst.key if isinstance(dst, model.Pod) else dst,
        "port": port, "protocol": protocol, "networkPolicy": mode, "enforced": enforced,
        "allowed": verdict.allowed or not enforced, "policyAllowed": verdict.allowed,
        "decidingPolicies": deciding, "egress": verdict.egress.as_dict(), "ingress": verdict.ingress.as_dict(),
        "message": message,
    }
