"""Where a pod stream goes: the container a request names (or the pod's only one), checked as
upstream's `LogLocation`/`streamLocation` do, and the kubelet of the node the pod is bound to
(`lks.nodes.streams.lookup`). A node without a serving kubelet fails the way an unreachable
kubelet does upstream: the API server's dial error.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from lks.kube import errors

if TYPE_CHECKING:
    from lks.kube.registry import Registry
    from lks.nodes import streams

Obj = dict[str, Any]

KUBELET_PORT = 10250


@dataclass(slots=True)
class Target:
    pod: Obj
    container: str
    kubelet: streams.Kubelet


def node_streams() -> ModuleType:
    """`lks.nodes.streams`, imported on first use: importing the kube layer must not load the
    node agents (and the controllers they import)."""
    from lks.nodes import streams

    return streams


def container_names(pod: Obj) -> list[str]:
    """`podutil.VisitContainers` order: init containers, containers, ephemeral containers."""
    spec = pod.get("spec") or {}
    return [c.get("name", "") for key in ("initContainers", "containers", "ephemeralContainers")
            for c in spec.get(key) or []]


def choose_container(pod: Obj, container: str) -> str:
    name = pod["metadata"]["name"]
    if not container:
        containers = (pod.get("spec") or {}).get("containers") or []
        if len(containers) == 1:
            return containers[0]["name"]
        if not containers:
            raise errors.bad_request(f"a container name must be specified for pod {name}")
        raise errors.bad_request(
            f"a container name must be specified for pod {name}, choose one of: [{' '.join(container_names(pod))}]")
    if container not in container_names(pod):
        raise errors.bad_request(f"container {container} is not valid for pod {name}")
    return container


def container_status(pod: Obj, container: str) -> Obj | None:
    status = pod.get("status") or {}
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for cs in status.get(key) or []:
            if cs.get("name") == container:
                return cs
    return None


async def kubelet_for(reg: Registry, pod: Obj, what: str) -> streams.Kubelet:
    """The kubelet of the pod's node; `what` is the kubelet path (for the dial error's URL)."""
    node_name = (pod.get("spec") or {}).get("nodeName") or ""
    kubelet = node_streams().lookup(reg.cluster.id, node_name)
    if kubelet is not None:
        return kubelet
    nodes = reg.cluster.registry("", "v1", "nodes")
    node = await nodes.get(None, node_name)  # a missing node is `nodes "x" not found`, as upstream
    host, port = node_address(node)
    raise errors.APIError(500, "", f'Get "https://{host}:{port}/{what}": dial tcp {host}:{port}: '
                                   "connect: connection refused")


def node_address(node: Obj) -> tuple[str, int]:
    status = node.get("status") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    host = addresses.get("InternalIP") or addresses.get("Hostname") or node["metadata"]["name"]
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or KUBELET_PORT
    return host, int(port)


def stream_error(err: streams.StreamError) -> errors.APIError:
    return errors.APIError(err.code, err.reason, err.message)
