"""Service rules of upstream's `pkg/apis/core/validation/validation.go` (`ValidateService`,
`ValidateServiceUpdate`): ports, type-specific fields, cluster IPs and traffic policies.

Fields the registry fills on create (cluster IPs, node ports, defaults such as `type: ClusterIP`
and `targetPort`) read as filled when absent, and an update that leaves out the allocated IPs
keeps them, as upstream's strategy does. The node port range, which upstream checks when it
allocates (`portallocator`), is checked here with the allocator's wording.
"""

from __future__ import annotations

from lks.kube.errors import Cause
from lks.kube.typevalidation import field
from lks.kube.typevalidation.common import (
    cidr_errors,
    dns_label,
    dns_subdomain,
    get,
    ip_errors,
    is_port_num,
    items,
    labels,
    mapping,
    port_num_or_name,
    qualified_name,
)

NODE_PORTS = (30000, 32767)  # kube-apiserver's default --service-node-port-range


def _cluster_ips(spec: dict) -> list:
    ips = items(spec, "clusterIPs")
    if not ips and spec.get("clusterIP"):
        ips = [spec["clusterIP"]]  # the strategy keeps clusterIPs[0] and clusterIP in step
    return ips


def _headless(spec: dict) -> bool:
    return _cluster_ips(spec) == ["None"]


def _service_port_key(port: dict) -> field.GoStruct:
    """The internal `core.ServicePort` upstream reports duplicate ports with."""
    return field.GoStruct(Name="", Protocol=get(port, "protocol", default="TCP"), AppProtocol=None,
                          Port=get(port, "port", default=0), TargetPort=0, NodePort=0)


def validate_service(obj: dict) -> list[Cause]:
    """`ValidateService`, plus the node port range of the allocator."""
    spec = mapping(obj, "spec")
    kind = spec.get("type") or "ClusterIP"
    ports = items(spec, "ports")
    headless = _headless(spec)
    causes: list[Cause] = []
    if not ports and not headless and kind != "ExternalName":
        causes.append(field.required("spec.ports"))
    if kind in ("LoadBalancer", "NodePort") and headless:
        causes.append(field.invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {kind} services"))
    if kind == "ExternalName":
        if _cluster_ips(spec):
            causes.append(field.forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if items(spec, "ipFamilies"):
            causes.append(field.forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            causes.append(field.forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
        cname = get(spec, "externalName", default="").removesuffix(".")
        causes += dns_subdomain(cname, "spec.externalName") if cname else [field.required("spec.externalName")]
    names: set[str] = set()
    for i, port in enumerate(ports):
        causes += _service_port(port, len(ports) > 1, names, f"spec.ports[{i}]")
    if spec.get("selector") is not None:
        causes += labels(spec["selector"], "spec.selector")
    affinity = spec.get("sessionAffinity") or "None"
    if affinity not in ("ClientIP", "None"):
        causes.append(field.not_supported("spec.sessionAffinity", affinity, ["ClientIP", "None"]))
    elif affinity == "None" and spec.get("sessionAffinityConfig") is not None:
        causes.append(field.forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"))
    elif affinity == "ClientIP":
        timeout = get(spec, "sessionAffinityConfig", "clientIP", "timeoutSeconds")
        if isinstance(timeout, int) and not 0 < timeout <= 86400:
            causes.append(field.invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", timeout,
                                        "must be greater than 0 and less than 86400"))
    if kind != "ExternalName":
        causes += _cluster_ips_fields(spec)
    for i, ip in enumerate(items(spec, "externalIPs")):
        causes += ip_errors(ip, f"spec.externalIPs[{i}]")
    kinds = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
    if kind not in kinds:
        causes.append(field.not_supported("spec.type", kind, kinds))
    for i, port in enumerate(ports):
        node_port = get(port, "nodePort", default=0)
        if kind == "ClusterIP" and node_port:
            causes.append(field.forbidden(f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'"))
    seen_node_ports: set[tuple] = set()
    for i, port in enumerate(ports):
        node_port = get(port, "nodePort", default=0)
        if node_port:
            key = (get(port, "protocol", default="TCP"), node_port)
            if key in seen_node_ports:
                causes.append(field.duplicate(f"spec.ports[{i}].nodePort", node_port))
            seen_node_ports.add(key)
    seen_ports: set[tuple] = set()
    for i, port in enumerate(ports):
        key = (get(port, "protocol", default="TCP"), get(port, "port", default=0))
        if key in seen_ports:
            causes.append(field.duplicate(f"spec.ports[{i}]", _service_port_key(port)))
        seen_ports.add(key)
    ranges = items(spec, "loadBalancerSourceRanges")
    if ranges:
        if kind != "LoadBalancer":  # upstream spells this path with a capital L
            causes.append(field.forbidden("spec.LoadBalancerSourceRanges", "may only be used when `type` is "
                                                                           "'LoadBalancer'"))
        for i, cidr in enumerate(ranges):
            causes += cidr_errors(cidr.strip(), f"spec.LoadBalancerSourceRanges[{i}]")
    if spec.get("allocateLoadBalancerNodePorts") is not None and kind != "LoadBalancer":
        causes.append(field.forbidden("spec.allocateLoadBalancerNodePorts",
                                      "may only be used when `type` is 'LoadBalancer'"))
    lb_class = spec.get("loadBalancerClass")
    if lb_class is not None:
        causes += qualified_name(lb_class, "spec.loadBalancerClass") if kind == "LoadBalancer" else \
            [field.forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'")]
    causes += _traffic_policies(spec, kind)
    if kind in ("NodePort", "LoadBalancer"):
        for i, port in enumerate(ports):
            node_port = get(port, "nodePort", default=0)
            if node_port and not NODE_PORTS[0] <= node_port <= NODE_PORTS[1]:
                causes.append(field.invalid(f"spec.ports[{i}].nodePort", node_port,
                                            "provided port is not in the valid range. The range of valid ports is "
                                            f"{NODE_PORTS[0]}-{NODE_PORTS[1]}"))
    return causes


def _service_port(port: dict, require_name: bool, names: set[str], path: str) -> list[Cause]:
    name = get(port, "name", default="")
    causes: list[Cause] = []
    if require_name and not name:
        causes.append(field.required(f"{path}.name"))
    elif name:
        causes += dns_label(name, f"{path}.name")
        if name in names:
            causes.append(field.duplicate(f"{path}.name", name))
        names.add(name)
    number = get(port, "port", default=0)
    causes += [field.invalid(f"{path}.port", number, m) for m in is_port_num(number)]
    protocol = get(port, "protocol", default="TCP")
    if protocol not in ("SCTP", "TCP", "UDP"):
        causes.append(field.not_supported(f"{path}.protocol", protocol, ["SCTP", "TCP", "UDP"]))
    target = port.get("targetPort")
    causes += port_num_or_name(number if target in (None, 0, "") else target, f"{path}.targetPort")
    if port.get("appProtocol") is not None:
        causes += qualified_name(port["appProtocol"], f"{path}.appProtocol")
    return causes


def _cluster_ips_fields(spec: dict) -> list[Cause]:
    """`ValidateServiceClusterIPsRelatedFields` (the stand-alone checks)."""
    causes: list[Cause] = []
    ips, cluster_ip = items(spec, "clusterIPs"), spec.get("clusterIP") or ""
    if cluster_ip and ips and ips[0] != cluster_ip:
        causes.append(field.invalid("spec.clusterIPs", ips, "first value must match `clusterIP`"))
    elif not cluster_ip and ips:
        causes.append(field.invalid("spec.clusterIPs", ips, "must be empty when `clusterIP` is not specified"))
    families = items(spec, "ipFamilies")
    for i, family in enumerate(families):
        if family not in ("IPv4", "IPv6"):
            causes.append(field.not_supported(f"spec.ipFamilies[{i}]", family, ["IPv4", "IPv6"]))
        if family in families[:i]:
            causes.append(field.duplicate(f"spec.ipFamilies[{i}]", family))
    policy = spec.get("ipFamilyPolicy")
    policies = ["PreferDualStack", "RequireDualStack", "SingleStack"]
    if policy is not None and policy not in policies:
        causes.append(field.not_supported("spec.ipFamilyPolicy", policy, policies))
    ips = _cluster_ips(spec)
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                causes.append(field.invalid("spec.clusterIPs", ips, "'None' must be the first and only value"))
            continue
        causes += ip_errors(ip, f"spec.clusterIPs[{i}]")
    if len(ips) > 2:
        causes.append(field.invalid("spec.clusterIPs", ips, "may only hold up to 2 values"))
    return causes


def _traffic_policies(spec: dict, kind: str) -> list[Cause]:
    causes: list[Cause] = []
    external = kind in ("LoadBalancer", "NodePort") or (kind == "ClusterIP" and items(spec, "externalIPs"))
    etp = spec.get("externalTrafficPolicy") or ""
    if not external and etp:
        causes.append(field.invalid("spec.externalTrafficPolicy", etp, "may only be set for externally-accessible "
                                                                       "services"))
    elif external and etp not in ("", "Cluster", "Local"):
        causes.append(field.not_supported("spec.externalTrafficPolicy", etp, ["Cluster", "Local"]))
    hc = spec.get("healthCheckNodePort") or 0
    if hc and not (kind == "LoadBalancer" and etp == "Local"):
        causes.append(field.invalid("spec.healthCheckNodePort", hc, "may only be set when `type` is 'LoadBalancer' "
                                                                    "and `externalTrafficPolicy` is 'Local'"))
    elif hc:
        causes += [field.invalid("spec.healthCheckNodePort", hc, m) for m in is_port_num(hc)]
    itp = spec.get("internalTrafficPolicy")
    if itp is not None and itp not in ("Cluster", "Local"):
        causes.append(field.not_supported("spec.internalTrafficPolicy", itp, ["Cluster", "Local"]))
    return causes


def _allocated(new: dict, old: dict) -> dict:
    """The new Service as the strategy hands it to validation: cluster IPs the request left out
    are the old ones, and a changed clusterIP replaces clusterIPs[0] (`NormalizeClusterIPs`)."""
    ns, os_ = dict(mapping(new, "spec")), mapping(old, "spec")
    if not ns.get("clusterIP") and not items(ns, "clusterIPs") and ns.get("type") != "ExternalName":
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if os_.get(key) is not None and ns.get(key) is None:
                ns[key] = os_[key]
    elif ns.get("clusterIP") and items(ns, "clusterIPs") == items(os_, "clusterIPs") \
            and ns.get("clusterIP") != os_.get("clusterIP"):
        ns["clusterIPs"] = [ns["clusterIP"], *items(ns, "clusterIPs")[1:]]
    return {**new, "spec": ns}


def validate_service_update(new: dict, old: dict) -> list[Cause]:
    """`ValidateServiceUpdate`: cluster IPs and IP families may not change once set."""
    new = _allocated(new, old)
    ns, os_ = mapping(new, "spec"), mapping(old, "spec")
    causes: list[Cause] = []
    kinds = {ns.get("type") or "ClusterIP", os_.get("type") or "ClusterIP"}
    new_ips, old_ips = _cluster_ips(ns), _cluster_ips(os_)
    if "ExternalName" not in kinds and not (_headless(ns) and _headless(os_)):
        if len(new_ips) == len(old_ips):
            causes += [field.invalid(f"spec.clusterIPs[{i}]", new_ips, "may not change once set")
                       for i, ip in enumerate(old_ips) if ip != new_ips[i]]
        elif len(new_ips) < len(old_ips):
            if not new_ips:
                causes.append(field.invalid("spec.clusterIPs[0]", new_ips, "primary clusterIP can not be unset"))
            elif new_ips[0] != old_ips[0]:
                causes.append(field.invalid("spec.clusterIPs[0]", new_ips, "may not change once set"))
        elif old_ips and new_ips[0] != old_ips[0]:
            causes.append(field.invalid("spec.clusterIPs[0]", new_ips, "may not change once set"))
    new_fam, old_fam = items(ns, "ipFamilies"), items(os_, "ipFamilies")
    if "ExternalName" not in kinds and new_fam and old_fam and not _headless(ns) and not _headless(os_) \
            and new_fam[0] != old_fam[0]:
        causes.append(field.invalid("spec.ipFamilies[0]", new_fam, "may not change once set"))
    if kinds == {"LoadBalancer"} and ns.get("loadBalancerClass") != os_.get("loadBalancerClass"):
        causes.append(field.invalid("spec.loadBalancerClass", ns.get("loadBalancerClass"), "may not change once set"))
    hc_needed = all(s.get("type") == "LoadBalancer" and s.get("externalTrafficPolicy") == "Local" for s in (ns, os_))
    if hc_needed and ns.get("healthCheckNodePort") and ns.get("healthCheckNodePort") != os_.get("healthCheckNodePort"):
        causes.append(field.forbidden("spec.healthCheckNodePort", "field is immutable"))
    return causes + validate_service(new)
