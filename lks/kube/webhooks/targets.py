"""Where a webhook's `clientConfig` points: a `url`, dialed as it is, or a `service`, reached
through its Endpoints at a ready pod and the node agent running it (the pod's real listening
port on a Process pool; a simulated node has nothing listening, so the call fails and the
webhook's failurePolicy decides, as a webhook whose pods never came up does upstream). The
TLS server name of a service is `<name>.<namespace>.svc`, as upstream's service resolver has it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from lks.kube.streaming import target as pod_target
from lks.kube.webhooks import client, local

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster

Obj = dict[str, Any]


def of(cluster: Cluster, config: Obj, timeout: int) -> client.Target:
    """The target of `config`; the request carries upstream's `?timeout=<n>s`."""
    query = f"?timeout={timeout}s"
    ca = config.get("caBundle") or ""
    url = config.get("url")
    if url is not None:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or 443
        return client.Target(url=url + query, host=host, port=port, path=(parts.path or "/") + query,
                             ca_bundle=ca)
    svc = config.get("service") or {}
    namespace, name = svc.get("namespace") or "", svc.get("name") or ""
    port = svc.get("port") or 443
    path = svc.get("path") or "/"
    host = f"{name}.{namespace}.svc"
    shown = f"https://{host}:{port}{path}{query}"
    handler = local.lookup(cluster.id, namespace, name, path)
    if handler is not None:  # an add-on's webhook served in process
        return client.Target(url=shown, host=host, port=port, path=path + query, ca_bundle=ca, local=handler)

    async def connect() -> client.Streams:
        return await _pod_streams(cluster, namespace, name, port, shown)

    return client.Target(url=shown, host=host, port=port, path=path + query, ca_bundle=ca, connect=connect,
                         endpoint=f"{namespace}/{name}")


async def _pod_streams(cluster: Cluster, namespace: str, name: str, port: int, shown: str) -> client.Streams:
    def fail(why: str) -> client.CallError:
        return client.CallError(f'Post "{shown}": {why}')

    services = cluster.registry("", "v1", "services")
    svc = (await services.cache()).objects.get(services.key(namespace, name))
    if svc is None:
        raise fail(f'service "{name}" not found')
    svc_port = next((p for p in (svc.get("spec") or {}).get("ports") or [] if p.get("port") == port), None)
    if svc_port is None:
        raise fail(f'no service port {port} found for service "{name}"')
    endpoints = cluster.registry("", "v1", "endpoints")
    ep = (await endpoints.cache()).objects.get(endpoints.key(namespace, name)) or {}
    pods = cluster.registry("", "v1", "pods")
    pod_cache = await pods.cache()
    for subset in ep.get("subsets") or []:
        ports = subset.get("ports") or []
        number = next((p.get("port") for p in ports if (p.get("name") or "") == (svc_port.get("name") or "")), None)
        if number is None:
            continue
        for address in subset.get("addresses") or []:
            ref = address.get("targetRef") or {}
            pod = pod_cache.objects.get(pods.key(ref.get("namespace") or namespace, ref.get("name") or ""))
            if ref.get("kind") != "Pod" or pod is None:
                continue
            kubelet = pod_target.node_streams().lookup(cluster.id, (pod.get("spec") or {}).get("nodeName") or "")
            if kubelet is None:
                raise fail(f"dial tcp {address.get('ip', '')}:{number}: connect: no route to host")
            try:
                return await kubelet.port_forward(pod, number)
            except pod_target.node_streams().StreamError as err:
                raise fail(err.message) from None
    raise fail(f'no endpoints available for service "{name}"')
