"""A container group's document: the checks ACI makes on a PUT (names, resources, ports, IP
address, restart policy, volumes), with ACI's error codes and words, and its defaults and
rounding (CPU to 0.01 core, memory to 0.1 GB, as ACI bills them). `lks.aci.groups` stores what
`admit` returns and runs it through `lks.aci.runtime`; `shown` is what the API answers
(secure values never leave, the live `instanceView` and usage added).
"""

from __future__ import annotations

import copy
import re
from typing import Any

import orjson

from lks.arm.errors import ARMError

Doc = dict[str, Any]
TYPE = "Microsoft.ContainerInstance/containerGroups"
API_VERSIONS = ("2021-09-01", "2021-10-01", "2022-09-01", "2022-10-01-preview", "2023-02-01-preview",
                "2023-05-01", "2024-05-01-preview", "2024-10-01-preview", "2024-11-01-preview", "2025-09-01")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z][-a-z0-9]{3,61}[a-z0-9]$")
RESTART_POLICIES = ("Always", "OnFailure", "Never")
# a standard Linux group's ceiling in most regions (ACI's "resource availability" table)
MAX_CPU, MAX_MEMORY_GB = 4.0, 16.0
DEFAULT_CPU, DEFAULT_MEMORY_GB = 1.0, 1.5
SUPPORTED_VOLUMES = ("emptyDir", "secret")
OFFLINE_VOLUMES = ("gitRepo", "azureFile")
PRIVATE = "_lks"


def _bad(code: str, message: str, status: int = 400) -> ARMError:
    return ARMError(code, message, status)


def check_name(name: str) -> None:
    if len(name) > 63 or not _NAME.match(name):
        raise _bad("InvalidContainerGroupName",
                   f"The container group name '{name}' is invalid. The container group name must contain no more "
                   "than 63 characters and must match the regex '[a-z0-9]([-a-z0-9]*[a-z0-9])?' (e.g. 'my-name').")


def _round(value: Any, step: float, what: str, container: str, group: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _bad("InvalidRequestContent", f"The request content was invalid and could not be deserialized: "
                   f"'{what} of container '{container}' is not a number: {value!r}'.") from None
    if number <= 0:
        raise _bad("InvalidContainerResourceRequests",
                   f"The '{what}' of container '{container}' in container group '{group}' must be greater than 0.")
    return round(round(number / step) * step, 2) or step


def _resources(c: Doc, group: str) -> Doc:
    name = c["name"]
    res = c.setdefault("resources", {})
    req = res.setdefault("requests", {})
    req["cpu"] = _round(req.get("cpu", DEFAULT_CPU), 0.01, "Cpu", name, group)
    req["memoryInGB"] = _round(req.get("memoryInGB", DEFAULT_MEMORY_GB), 0.1, "MemoryInGB", name, group)
    limits = res.get("limits")
    if limits:
        for key, label, step in (("cpu", "Cpu", 0.01), ("memoryInGB", "MemoryInGB", 0.1)):
            if key in limits:
                limits[key] = _round(limits[key], step, label, name, group)
                if limits[key] < req[key]:
                    shown = {"requests": {"memoryInGB": req["memoryInGB"], "cpu": req["cpu"]},
                             "limits": {k: limits[k] for k in ("memoryInGB", "cpu") if k in limits}}
                    raise _bad("ResourceLimitsLessThanRequests",
                               f"The resource requirement '{_json(shown)}' in container '{name}' of contain group "
                               f"'{group}' is invalid. The '{label}' limit value must be greater than or equal to "
                               "the request value.")
    return res


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _env(c: Doc) -> None:
    for var in c.get("environmentVariables") or []:
        if not isinstance(var, dict) or not var.get("name"):
            raise _bad("InvalidRequestContent", "The request content was invalid and could not be deserialized: "
                       f"'an environment variable of container '{c['name']}' has no name'.")


def _volumes(props: Doc, group: str) -> None:
    names = set()
    for v in props.get("volumes") or []:
        name = v.get("name") or ""
        kinds = [k for k in (*SUPPORTED_VOLUMES, *OFFLINE_VOLUMES) if k in v]
        if len(kinds) != 1:
            raise _bad("InvalidVolume" if kinds else "UnsupportedVolumeType",
                       f"The volume '{name}' in container group '{group}' must have exactly one of "
                       f"{', '.join(repr(k) for k in (*SUPPORTED_VOLUMES, *OFFLINE_VOLUMES))} specified.")
        kind = kinds[0]
        if kind in OFFLINE_VOLUMES:
            what = "clone a git repository" if kind == "gitRepo" else "mount an Azure file share"
            raise _bad("UnsupportedVolumeType",
                       f"The volume '{name}' in container group '{group}' is of type '{kind}', which lks does not "
                       f"support: it runs container groups offline and cannot {what}. Use 'emptyDir' or 'secret'.")
        names.add(name)
    for c in props["containers"]:
        for m in c.get("volumeMounts") or []:
            if m.get("name") not in names:
                raise _bad("VolumeMountNotFound",
                           f"The volume mount '{m.get('name')}' of container '{c['name']}' in container group "
                           f"'{group}' does not match any volume of the group.")


def _ip_address(props: Doc, group: str, ports: set[tuple[int, str]]) -> None:
    ip = props.get("ipAddress")
    if not ip:
        return
    kind = ip.get("type") or "Public"
    if kind not in ("Public", "Private"):
        raise _bad("InvalidIpAddressType", f"The IP address type '{kind}' in container group '{group}' is invalid. "
                   "Valid values are 'Public' and 'Private'.")
    ip["type"] = kind
    if not ip.get("ports"):
        raise _bad("InvalidIpAddressPorts", f"The IP address of container group '{group}' must have at least one port.")
    for p in ip["ports"]:
        p["protocol"] = (p.get("protocol") or "TCP").upper()
        if (int(p["port"]), p["protocol"]) not in ports:
            raise _bad("InvalidIpAddressPorts", f"The port '{p['port']}' of the IP address of container group "
                       f"'{group}' is not exposed by any container of the group.")
    label = ip.get("dnsNameLabel")
    if label is not None:
        if kind != "Public":
            raise _bad("DnsNameLabelNotSupported", f"The DNS name label is not supported for container group "
                       f"'{group}' with a private IP address.")
        if not _DNS_LABEL.match(label):
            raise _bad("InvalidDnsNameLabel", f"The DNS name label '{label}' in container group '{group}' is invalid. "
                       "It can contain only lowercase letters, numbers and hyphens. The first character must be a "
                       "letter. The last character must be a letter or number. The value must be between 5 and 63 "
                       "characters long.")
    if kind == "Private" and not props.get("subnetIds"):
        raise _bad("PrivateIPAddressNotSupported", f"The container group '{group}' with a private IP address must "
                   "specify 'subnetIds' (a subnet delegated to 'Microsoft.ContainerInstance/containerGroups').")


def _invalid(path: str) -> ARMError:
    return _bad("InvalidRequestContent", "The request content was invalid and could not be deserialized: "
                f"'Could not convert the value at path '{path}' to the type the API expects.'")


def _typed(value: Any, kind: type | tuple[type, ...], path: str, *, optional: bool = True) -> Any:
    if value is None and optional:
        return value
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise _invalid(path)
    return value


def _objects(value: Any, path: str) -> list[Doc]:
    for i, item in enumerate(_typed(value, list, path) or []):
        _typed(item, dict, f"{path}[{i}]", optional=False)
    return value or []


def _ports(value: Any, path: str) -> None:
    for i, p in enumerate(_objects(value, path)):
        port = p.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise _bad("InvalidContainerPort" if isinstance(port, int) else "InvalidRequestContent",
                       f"The port '{port}' at '{path}[{i}]' is invalid. Valid ports are between 1 and 65535.")
        if (p.get("protocol") or "TCP").upper() not in ("TCP", "UDP"):
            raise _invalid(f"{path}[{i}].protocol")


def _shape(props: Doc) -> None:
    """The body's types, as ARM's deserializer checks them before ACI looks at the values."""
    pre = "properties"
    for key, kind in (("restartPolicy", str), ("osType", str), ("sku", str), ("ipAddress", dict)):
        _typed(props.get(key), kind, f"{pre}.{key}")
    for i, c in enumerate(_objects(props.get("containers"), f"{pre}.containers")):
        cp = _typed(c.get("properties"), dict, f"{pre}.containers[{i}].properties") or {}
        at = f"{pre}.containers[{i}].properties"
        _typed(c.get("name"), str, f"{pre}.containers[{i}].name")
        _typed(cp.get("image"), str, f"{at}.image")
        for j, arg in enumerate(_typed(cp.get("command"), list, f"{at}.command") or []):
            _typed(arg, str, f"{at}.command[{j}]", optional=False)
        for j, e in enumerate(_objects(cp.get("environmentVariables"), f"{at}.environmentVariables")):
            for key in ("name", "value", "secureValue"):
                _typed(e.get(key), str, f"{at}.environmentVariables[{j}].{key}")
        _ports(cp.get("ports"), f"{at}.ports")
        res = _typed(cp.get("resources"), dict, f"{at}.resources") or {}
        for part in ("requests", "limits"):
            for key, value in (_typed(res.get(part), dict, f"{at}.resources.{part}") or {}).items():
                _typed(value, (int, float, dict), f"{at}.resources.{part}.{key}")
        for j, m in enumerate(_objects(cp.get("volumeMounts"), f"{at}.volumeMounts")):
            _typed(m.get("name"), str, f"{at}.volumeMounts[{j}].name", optional=False)
            _typed(m.get("mountPath"), str, f"{at}.volumeMounts[{j}].mountPath", optional=False)
    for i, v in enumerate(_objects(props.get("volumes"), f"{pre}.volumes")):
        _typed(v.get("name"), str, f"{pre}.volumes[{i}].name", optional=False)
        for key, value in (_typed(v.get("secret"), dict, f"{pre}.volumes[{i}].secret") or {}).items():
            _typed(value, str, f"{pre}.volumes[{i}].secret.{key}")
    if props.get("ipAddress"):
        _ports(props["ipAddress"].get("ports"), f"{pre}.ipAddress.ports")
        for key in ("type", "dnsNameLabel"):
            _typed(props["ipAddress"].get(key), str, f"{pre}.ipAddress.{key}")
    for i, s in enumerate(_objects(props.get("subnetIds"), f"{pre}.subnetIds")):
        _typed(s.get("id"), str, f"{pre}.subnetIds[{i}].id", optional=False)


def admit(body: Any, *, name: str, location_default: str | None = None) -> Doc:
    """The document ACI would store for this PUT's body (a copy; raises ARMError with ACI's
    code). The caller adds id, name and type."""
    check_name(name)
    if not isinstance(body, dict):
        raise _bad("InvalidRequestContent", "The request content was invalid and could not be deserialized: "
                   "'the body must be a JSON object'.")
    doc = copy.deepcopy(body)
    location = doc.get("location") or location_default
    if not location:
        raise _bad("LocationRequired", "The location property is required for this definition.")
    doc["location"] = str(location).replace(" ", "").lower()
    props = doc.get("properties")
    if not isinstance(props, dict):
        raise _bad("InvalidRequestContent", "The request content was invalid and could not be deserialized: "
                   "'properties is required'.")
    _shape(props)
    _typed(doc.get("tags"), dict, "tags")
    _typed(doc.get("location"), str, "location")
    containers = props.get("containers")
    if not isinstance(containers, list) or not containers:
        raise _bad("ContainerGroupContainersEmpty", f"The container group '{name}' must have at least one container.")
    if len(containers) > 60:
        raise _bad("ContainerGroupContainersExceedsLimit",
                   f"The number of containers in container group '{name}' exceeds the limit of 60.")
    os_type = props.get("osType") or "Linux"
    if os_type != "Linux":
        raise _bad("UnsupportedOsType", f"The OS type '{os_type}' of container group '{name}' is not supported by "
                   "lks: its containers run as Linux processes.")
    props["osType"] = os_type
    policy = props.get("restartPolicy") or "Always"
    if policy not in RESTART_POLICIES:
        raise _bad("InvalidRestartPolicy", f"The restart policy '{policy}' in container group '{name}' is invalid. "
                   "Valid values are 'Always', 'OnFailure' and 'Never'.")
    props["restartPolicy"] = policy
    props.setdefault("sku", "Standard")
    flat, seen, ports = [], set(), set()
    total_cpu = total_mem = 0.0
    for raw in containers:
        c = {"name": raw.get("name") or "", **(raw.get("properties") or {})} if isinstance(raw, dict) else {}
        cname = c.get("name") or ""
        if len(cname) > 63 or not _NAME.match(cname):
            raise _bad("InvalidContainerName",
                       f"The container name '{cname}' in container group '{name}' is invalid. The container name "
                       "must contain no more than 63 characters and must match the regex "
                       "'[a-z0-9]([-a-z0-9]*[a-z0-9])?' (e.g. 'my-name').")
        if cname in seen:
            raise _bad("DuplicateContainerName", f"The container name '{cname}' in container group '{name}' is "
                       "duplicated.")
        seen.add(cname)
        if not c.get("image"):
            raise _bad("InvalidContainerImage", f"The image of container '{cname}' in container group '{name}' "
                       "must be specified.")
        _env(c)
        res = _resources(c, name)
        total_cpu += res["requests"]["cpu"]
        total_mem += res["requests"]["memoryInGB"]
        for p in c.get("ports") or []:
            p["protocol"] = (p.get("protocol") or "TCP").upper()
            ports.add((int(p["port"]), p["protocol"]))
        flat.append(c)
    total_cpu, total_mem = round(total_cpu, 2), round(total_mem, 1)
    for c in flat:
        for key, label, total in (("cpu", "Cpu", total_cpu), ("memoryInGB", "MemoryInGB", total_mem)):
            limit = (c["resources"].get("limits") or {}).get(key)
            if limit is not None and limit > total:
                raise _bad("ContainerLimitGreaterThanContainerGroupTotalRequest",
                           f"The '{label}' limit '{_num(limit)}' in container '{c['name']}' is greater than the total "
                           f"request '{_num(total)}' of container group '{name}'.")
    if total_cpu > MAX_CPU or total_mem > MAX_MEMORY_GB:
        raise _bad("ServiceUnavailable",
                   f"The requested resource is not available in the location '{doc['location']}' at this moment. "
                   "Please retry with a different resource request or in another location. Resource requested: "
                   f"'{_num(total_cpu)}' CPU '{_num(total_mem)}' GB memory 'Linux' OS", 409)
    props["containers"] = [{"name": c.pop("name"), "properties": c} for c in flat]
    _volumes(props, name)
    _ip_address(props, name, ports)
    return doc


def _num(value: float) -> str:
    return f"{value:g}"


def requests(doc: Doc) -> tuple[float, float]:
    """The group's (CPU cores, memory GB) requested: what it is billed for while it runs."""
    cpu = mem = 0.0
    for c in doc["properties"]["containers"]:
        req = c["properties"]["resources"]["requests"]
        cpu += req["cpu"]
        mem += req["memoryInGB"]
    return round(cpu, 2), round(mem, 1)


def shown(doc: Doc) -> Doc:
    """The document as the API answers it: no private part, no secure values."""
    out = {k: v for k, v in doc.items() if k != PRIVATE}
    props = dict(out["properties"])
    props.pop(PRIVATE, None)
    containers = []
    for c in props["containers"]:
        cp = dict(c["properties"])
        if cp.get("environmentVariables"):
            cp["environmentVariables"] = [{k: v for k, v in e.items() if k != "secureValue"}
                                          for e in cp["environmentVariables"]]
        containers.append({"name": c["name"], "properties": cp})
    props["containers"] = containers
    if props.get("volumes"):
        props["volumes"] = [{k: v for k, v in vol.items() if k != "secret"} | ({"secret": {}} if "secret" in vol else {})
                            for vol in props["volumes"]]
    out["properties"] = props
    return out
