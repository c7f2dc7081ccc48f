"""A container's environment as kubelet builds it (`pkg/kubelet/kubelet_pods.go`
`makeEnvironmentVariables`), for the process runtime (`lks.nodes.process`): the image's
defaults (PATH, HOSTNAME), the Service variables of the pod's namespace (`<NAME>_SERVICE_HOST`
and the docker-link ones, unless `enableServiceLinks: false`; the `kubernetes` Service of
`default` always), `envFrom` (ConfigMaps and Secrets, with `prefix`), then `env` in order with
`$(VAR)` references expanded (`value`, `configMapKeyRef`, `secretKeyRef`, `fieldRef`,
`resourceFieldRef`). `KUBERNETES_SERVICE_HOST`/`PORT` point at where a process really reaches
the cluster's API (the runtime's in-cluster endpoint), not at the `kubernetes` Service's
cluster IP, which nothing routes on the host.

Errors are kubelet's: a missing ConfigMap, Secret or key that is not `optional` gives
`CreateContainerConfigError` with upstream's message.
"""

from __future__ import annotations

import base64
import math
import re
from typing import Any

from lks.kube import errors
from lks.kube.cluster import Cluster
from lks.kube.defaulting.qos import quantity
from lks.nodes.runtime import CreateError

Obj = dict[str, Any]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # what images set
CONFIG_ERROR = "CreateContainerConfigError"
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_REF = re.compile(r"\$\$|\$\(([^)]*)\)")


async def build(cluster: Cluster, pod: Obj, spec: Obj, *, pod_ip: str, host_ip: str,
                api: tuple[str, int] | None, allocatable: Obj | None = None) -> dict[str, str]:
    """The environment of container `spec` of `pod`; `api` is where its processes reach the
    cluster's API server."""
    meta = pod["metadata"]
    ns = meta["namespace"]
    env: dict[str, str] = {"PATH": DEFAULT_PATH, "HOSTNAME": meta["name"]}
    services = await service_env(cluster, ns, links=pod["spec"].get("enableServiceLinks", True) is not False)
    if api is not None:
        host, port = api
        services.update({"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": str(port),
                         "KUBERNETES_SERVICE_PORT_HTTPS": str(port), "KUBERNETES_PORT": f"tcp://{host}:{port}",
                         f"KUBERNETES_PORT_{port}_TCP": f"tcp://{host}:{port}",
                         f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp", f"KUBERNETES_PORT_{port}_TCP_PORT": str(port),
                         f"KUBERNETES_PORT_{port}_TCP_ADDR": host})
        for key in [k for k in services if k.startswith("KUBERNETES_PORT_443_") and port != 443]:
            del services[key]
    tmp: dict[str, str] = {}
    for source in spec.get("envFrom") or ():
        prefix = source.get("prefix") or ""
        if "configMapRef" in source:
            ref = source["configMapRef"]
            data = await _config_map(cluster, ns, ref.get("name", ""), optional=bool(ref.get("optional")))
        elif "secretRef" in source:
            ref = source["secretRef"]
            data = await _secret(cluster, ns, ref.get("name", ""), optional=bool(ref.get("optional")))
        else:
            continue
        for key, value in (data or {}).items():
            name = prefix + key
            if _ENV_NAME.match(name):  # kubelet skips invalid names (with an event)
                tmp[name] = value
    expand_env = {**services, **tmp}
    for var in spec.get("env") or ():
        name = var.get("name", "")
        source = var.get("valueFrom")
        if source is None:
            value = expand(var.get("value") or "", {**expand_env, **tmp})
        else:
            found = await _value_from(cluster, pod, spec, source, pod_ip=pod_ip, host_ip=host_ip,
                                      allocatable=allocatable or {})
            if found is None:
                continue  # an optional reference that is not there
            value = found
        tmp[name] = value
    for key, value in services.items():
        tmp.setdefault(key, value)
    env.update(tmp)
    return env


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: a defined variable is replaced, `$$` is a `$`, anything
    else stays as written."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)

    return _REF.sub(sub, text)


async def service_env(cluster: Cluster, namespace: str, *, links: bool) -> dict[str, str]:
    """The Service variables kubelet gives a pod of `namespace`."""
    registry = cluster.registry("", "v1", "services")
    cache = await registry.cache()
    chosen: dict[str, Obj] = {}
    for obj in cache.objects.values():
        meta = obj["metadata"]
        if meta.get("namespace") == "default" and meta["name"] == "kubernetes":
            chosen.setdefault(meta["name"], obj)  # master services always
        elif links and meta.get("namespace") == namespace:
            chosen[meta["name"]] = obj
    env: dict[str, str] = {}
    for name, svc in sorted(chosen.items()):
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        ports = spec.get("ports") or []
        if not ip or ip == "None" or not ports:
            continue
        prefix = name.upper().replace("-", "_")
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0].get("port"))
        for p in ports:
            if p.get("name"):
                env[f"{prefix}_SERVICE_PORT_{p['name'].upper().replace('-', '_')}"] = str(p.get("port"))
        first = ports[0]
        env[f"{prefix}_PORT"] = f"{(first.get('protocol') or 'TCP').lower()}://{ip}:{first.get('port')}"
        for p in ports:
            proto = (p.get("protocol") or "TCP")
            base = f"{prefix}_PORT_{p.get('port')}_{proto.upper()}"
            env[base] = f"{proto.lower()}://{ip}:{p.get('port')}"
            env[base + "_PROTO"] = proto.lower()
            env[base + "_PORT"] = str(p.get("port"))
            env[base + "_ADDR"] = ip
    return env


async def _value_from(cluster: Cluster, pod: Obj, spec: Obj, source: Obj, *, pod_ip: str, host_ip: str,
                      allocatable: Obj) -> str | None:
    ns = pod["metadata"]["namespace"]
    if "configMapKeyRef" in source:
        ref = source["configMapKeyRef"]
        optional = bool(ref.get("optional"))
        data = await _config_map(cluster, ns, ref.get("name", ""), optional=optional)
        if data is None:
            return None
        if ref.get("key") not in data:
            if optional:
                return None
            raise CreateError(CONFIG_ERROR, f"couldn't find key {ref.get('key')} in ConfigMap {ns}/{ref.get('name')}")
        return data[ref["key"]]
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        optional = bool(ref.get("optional"))
        data = await _secret(cluster, ns, ref.get("name", ""), optional=optional)
        if data is None:
            return None
        if ref.get("key") not in data:
            if optional:
                return None
            raise CreateError(CONFIG_ERROR, f"couldn't find key {ref.get('key')} in Secret {ns}/{ref.get('name')}")
        return data[ref["key"]]
    if "fieldRef" in source:
        return field_value(pod, source["fieldRef"].get("fieldPath", ""), pod_ip=pod_ip, host_ip=host_ip)
    if "resourceFieldRef" in source:
        return resource_value(pod, spec, source["resourceFieldRef"], allocatable)
    return ""


def field_value(pod: Obj, path: str, *, pod_ip: str, host_ip: str) -> str:
    """The downward API's `fieldRef` (env and volumes)."""
    meta = pod["metadata"]
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.*)'\]", path)
    if m:
        return str((meta.get(m[1]) or {}).get(m[2], ""))
    if path in ("metadata.labels", "metadata.annotations"):  # volumes only: key="value" lines
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{_quote(v)}"' for k, v in sorted(items.items()))
    spec = pod["spec"]
    values = {
        "metadata.name": meta.get("name", ""), "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""), "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.hostIP": host_ip, "status.hostIPs": host_ip, "status.podIP": pod_ip, "status.podIPs": pod_ip,
    }
    return str(values.get(path, ""))


def _quote(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def resource_value(pod: Obj, spec: Obj, ref: Obj, allocatable: Obj) -> str:
    """The downward API's `resourceFieldRef`: a limit (the node's allocatable when none is set)
    or request, divided by `divisor` and rounded up, as kubelet does."""
    resource = ref.get("resource", "")
    name = ref.get("containerName")
    if name:
        spec = next((c for c in (pod["spec"].get("containers") or []) + (pod["spec"].get("initContainers") or [])
                     if c.get("name") == name), spec)
    kind, _, what = resource.partition(".")
    resources = spec.get("resources") or {}
    value = (resources.get(kind) or {}).get(what)
    if value is None and kind == "requests":
        value = (resources.get("limits") or {}).get(what)
    if value is None:
        value = allocatable.get(what, "0")
    amount = quantity(value) or 0
    divisor = quantity(ref.get("divisor") or "1") or 1
    if what == "cpu" and not ref.get("divisor"):
        divisor = quantity("1") or 1
    return str(math.ceil(amount / divisor))


async def _config_map(cluster: Cluster, ns: str, name: str, *, optional: bool) -> dict[str, str] | None:
    try:
        obj = await cluster.registry("", "v1", "configmaps").get(ns, name)
    except errors.APIError as err:
        if err.code != 404:
            raise
        if optional:
            return None
        raise CreateError(CONFIG_ERROR, f'configmap "{name}" not found') from None
    data = dict(obj.get("data") or {})
    for key, value in (obj.get("binaryData") or {}).items():
        data.setdefault(key, base64.b64decode(value).decode(errors="replace"))
    return data


async def _secret(cluster: Cluster, ns: str, name: str, *, optional: bool) -> dict[str, str] | None:
    try:
        obj = await cluster.registry("", "v1", "secrets").get(ns, name)
    except errors.APIError as err:
        if err.code != 404:
            raise
        if optional:
            return None
        raise CreateError(CONFIG_ERROR, f'secret "{name}" not found') from None
    data = {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
    data.update(obj.get("stringData") or {})
    return data
