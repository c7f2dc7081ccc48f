"""The managed cluster and agent pool resource model: AKS's defaults, validation rules and
immutable fields, applied to request bodies to give the stored document.

`managed_cluster(...)` turns a PUT body (and the stored document, for an update) into the new
document; `agent_pool(...)` does the same for one pool, whether it arrives inside
`agentPoolProfiles` or through the `agentPools` API. Nothing here performs I/O: the handlers
in `managedclusters` and `agentpools` store the result and start the operations that make it
real.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import re
import uuid
from typing import Any

from lks.arm import aad, documents, monitoring, nodeshape, versions, vmsizes
from lks.arm.errors import ARMError, invalid_parameter
from lks.autoscaler import profile as autoscaler_profile
from lks.kube.admission.noderestriction import forbidden_labels
from lks.upgrade import apis

Doc = dict[str, Any]

CLUSTER_TYPE = "Microsoft.ContainerService/ManagedClusters"
POOL_TYPE = "Microsoft.ContainerService/managedClusters/agentPools"
_POOL_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}$")
_TAINT = re.compile(r"^([^=:]+)(?:=([^:]*))?:(NoSchedule|PreferNoSchedule|NoExecute)$")
_DNS_PREFIX = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]{0,52}[a-zA-Z0-9]$|^[a-zA-Z0-9]$")
MAX_POOLS = 100
MAX_AUTHORIZED_IP_RANGES = 200  # AKS's limit without API Server VNet Integration
# AKS's `WorkloadRuntime` values, and lks's `Process` (containers run as host processes).
WORKLOAD_RUNTIMES = ("OCIContainer", "WasmWasi", "KataMshvVmIsolation", "KataVmIsolation", "Process")

# Pool fields that cannot change once the pool exists (AKS answers PropertyChangeNotAllowed).
_IMMUTABLE_POOL = ("vmSize", "osType", "osSKU", "osDiskType", "osDiskSizeGB", "maxPods", "vnetSubnetID",
                   "availabilityZones", "scaleSetPriority", "enableNodePublicIP", "workloadRuntime")
ACI_CONNECTOR = "aciConnectorLinux"  # the virtual node add-on (az aks enable-addons -a virtual-node)
_IMMUTABLE_NETWORK = ("networkPlugin", "podCidr", "serviceCidr", "dnsServiceIP", "outboundType",
                      "loadBalancerSku")


def changed(field: str, target: str | None = None) -> ARMError:
    return ARMError("PropertyChangeNotAllowed", f"Changing property '{field}' is not allowed.", 400,
                    target=target or field)


def _object(value: Any, field: str) -> Doc:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid_parameter(f"The value of parameter {field} is invalid.", field)
    return value


def agent_pool(body: Doc, *, existing: Doc | None, cluster_version: str, network: Doc,
               name: str | None = None, recently_used: list[Doc] | None = None) -> Doc:
    """One agent pool's properties (as in `agentPoolProfiles`, with `name` when given).
    `recently_used` are the pool's `recentlyUsedVersions` (`lks.upgrade.rollback`): a body that
    sets `nodeImageVersion` to one of them rolls the pool back to it."""
    props = copy.deepcopy(body)
    name = name or props.get("name")
    if not isinstance(name, str) or not _POOL_NAME.match(name):
        raise invalid_parameter(
            f"The agent pool name '{name}' is invalid. Agent pool names must start with a lowercase letter, "
            "have max length of 12, and only have characters a-z0-9.", "agentPoolProfile.name")
    props["name"] = name
    old = existing or {}
    for field in _IMMUTABLE_POOL:
        if existing is not None and field in props and props[field] not in (None, old.get(field)):
            raise changed(field, f"agentPoolProfile.{field}")
        if field in old and props.get(field) is None:
            props[field] = old[field]
    mode = props.get("mode") or old.get("mode") or "User"
    if mode not in ("System", "User", "Gateway"):
        raise invalid_parameter(f"The value of parameter agentPoolProfile.mode is invalid: '{mode}'.",
                                "agentPoolProfile.mode")
    props["mode"] = mode
    count = props.get("count", old.get("count", 1))
    if not isinstance(count, int) or isinstance(count, bool):
        raise invalid_parameter("The value of parameter agentPoolProfile.count is invalid.", "agentPoolProfile.count")
    low = 1 if mode == "System" else 0
    if not low <= count <= 1000:
        raise ARMError("InvalidParameter",
                       f"The value of parameter agentPoolProfile.count is invalid. Please see "
                       f"https://aka.ms/aks-naming-rules for more details. Valid values are {low} to 1000 for "
                       f"{mode.lower()} node pools.", 400, target="agentPoolProfile.count")
    props["count"] = count
    _autoscaling(props, old if existing is not None else None, body, low)
    # lks's extension: the pool's own autoscaler profile keys, kept over a PUT that leaves them out
    overrides = autoscaler_profile.normalize_pool(props.get("autoScalerProfile"), old.get("autoScalerProfile"))
    props.pop("autoScalerProfile", None)
    if overrides is not None:
        props["autoScalerProfile"] = overrides
    size = vmsizes.check_pool(props.get("vmSize") or old.get("vmSize") or vmsizes.DEFAULT, mode=mode, pool_name=name)
    props["vmSize"] = size.name
    props.setdefault("osType", "Linux")
    props.setdefault("osSKU", "Ubuntu")
    props.setdefault("type", "VirtualMachineScaleSets")
    props.setdefault("osDiskSizeGB", 128)
    props.setdefault("osDiskType", "Managed")
    props.setdefault("kubeletDiskType", "OS")
    runtime = props.get("workloadRuntime") or "OCIContainer"
    if runtime not in WORKLOAD_RUNTIMES:
        raise invalid_parameter(
            f"The value of parameter agentPoolProfile.workloadRuntime is invalid: '{runtime}'. Allowed values are "
            f"{', '.join(WORKLOAD_RUNTIMES)}.", "agentPoolProfile.workloadRuntime")
    props["workloadRuntime"] = runtime
    props.setdefault("enableNodePublicIP", False)
    props.setdefault("enableEncryptionAtHost", False)
    props.setdefault("enableUltraSSD", False)
    props.setdefault("enableFIPS", False)
    max_pods = props.get("maxPods") or nodeshape.max_pods_default(network.get("networkPlugin"),
                                                                  network.get("networkPluginMode"))
    if isinstance(max_pods, int) and max_pods < 10:
        raise ARMError("InsufficientMaxPods", f"The value of maxPods ({max_pods}) for agent pool '{name}' is too low: "
                       "it must be at least 10.", 400, target="agentPoolProfile.maxPods")
    if not isinstance(max_pods, int) or not 10 <= max_pods <= 250:
        raise invalid_parameter(f"The value of parameter agentPoolProfile.maxPods is invalid: {max_pods}. "
                                "Valid values are 10 to 250.", "agentPoolProfile.maxPods")
    props["maxPods"] = max_pods
    rollback = _rollback_entry(props, old, recently_used or []) if existing is not None else None
    if rollback is not None:  # back to a version the pool ran, though lower: a rollback
        current = rollback["orchestratorVersion"]
        versions.validate_pool_version(current, cluster_version)
        props["orchestratorVersion"] = current
    else:
        current = versions.check_pool(props.get("orchestratorVersion"), cluster_version,
                                      current=old.get("currentOrchestratorVersion"))
    props["orchestratorVersion"] = props.get("orchestratorVersion") or old.get("orchestratorVersion") or current
    props["currentOrchestratorVersion"] = current
    labels = _object(props.get("nodeLabels"), "agentPoolProfile.nodeLabels")
    for key in labels:
        if key.startswith("kubernetes.azure.com/"):
            raise invalid_parameter(f"The label key '{key}' is reserved by AKS and cannot be set.",
                                    "agentPoolProfile.nodeLabels")
    for key in forbidden_labels(labels, None):  # the kubelet could not register with them (NodeRestriction)
        raise ARMError("BadRequest", "For Kubernetes version greater than or equal to 1.16, node label keys in the "
                       "'kubernetes.io' or 'k8s.io' namespace must begin with an allowed prefix (kubelet.kubernetes.io, "
                       "node.kubernetes.io). For more information, please check https://aka.ms/aks-node-labels-116.",
                       400, target=f"{key}={labels[key]}")
    props["nodeLabels"] = labels
    taints = props.get("nodeTaints") or []
    if not isinstance(taints, list) or not all(isinstance(t, str) and _TAINT.match(t) for t in taints):
        raise invalid_parameter(f"The value of parameter agentPoolProfile.nodeTaints is invalid: {taints}. "
                                "Taints must be in the format key=value:Effect.", "agentPoolProfile.nodeTaints")
    props["nodeTaints"] = taints
    if rollback is not None:
        props["nodeImageVersion"] = rollback["nodeImageVersion"]
    elif old.get("nodeImageVersion") and current == old.get("currentOrchestratorVersion"):
        props["nodeImageVersion"] = old["nodeImageVersion"]
    else:  # a new pool, or a new Kubernetes version: AKS moves the node image to the newest too
        props["nodeImageVersion"] = nodeshape.node_image_version(props["osSKU"], current, gen2=size.gen2)
    upgrade = props.get("upgradeSettings")
    props["upgradeSettings"] = _upgrade_settings(upgrade if upgrade is not None else old.get("upgradeSettings"))
    props["powerState"] = {"code": (props.get("powerState") or old.get("powerState") or {}).get("code", "Running")}
    if props.get("availabilityZones") is None:
        props.pop("availabilityZones", None)
    props.setdefault("securityProfile", {"enableVTPM": False, "enableSecureBoot": False})
    props["eTag"] = str(uuid.uuid4())
    return props


def _autoscaling(props: Doc, old: Doc | None, body: Doc, low: int) -> None:
    """`enableAutoScaling`, `minCount`, `maxCount` of a pool, checked as AKS does: a range within
    [0 (1 for a System pool), 1000] with min <= max, given only with the autoscaler on; the count a
    request sets inside it; the count of a pool the autoscaler keeps refused to a manual scale (the
    autoscaler's own changes of count do not come through here). Without the autoscaler the range
    is dropped, as AKS shows it null."""
    enabled = props.get("enableAutoScaling")
    if enabled is None:
        enabled = False
    if not isinstance(enabled, bool):
        raise invalid_parameter(f"The value of parameter agentPoolProfile.enableAutoScaling is invalid: '{enabled}'.",
                                "agentPoolProfile.enableAutoScaling")
    props["enableAutoScaling"] = enabled
    was = bool(old and old.get("enableAutoScaling"))
    if not enabled:
        for field in ("minCount", "maxCount"):
            value = props.pop(field, None)
            # a GET-modify-PUT that turns the autoscaler off sends the old range back: nothing to refuse
            if value is not None and not (was and value == old.get(field)):
                raise invalid_parameter(f"The value of parameter agentPoolProfile.{field} is invalid: {field} can "
                                        "only be set when enableAutoScaling is true.", f"agentPoolProfile.{field}")
        return
    bounds = {}
    for field in ("minCount", "maxCount"):
        value = props.get(field)
        if value is None:
            raise invalid_parameter(f"Required parameter agentPoolProfile.{field} is missing (null): it is required "
                                    "when enableAutoScaling is true.", f"agentPoolProfile.{field}")
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= 1000:
            raise invalid_parameter(f"The value of parameter agentPoolProfile.{field} is invalid: {value}. Valid "
                                    f"values are {low} to 1000 for {props['mode'].lower()} node pools.",
                                    f"agentPoolProfile.{field}")
        bounds[field] = value
    low_count, high_count = bounds["minCount"], bounds["maxCount"]
    if low_count > high_count:
        raise invalid_parameter(f"The value of parameter agentPoolProfile.minCount is invalid: minCount ({low_count}) "
                                f"must be less than or equal to maxCount ({high_count}).", "agentPoolProfile.minCount")
    count = props["count"]
    if was and "count" in body and count != old.get("count"):
        raise ARMError("InvalidParameter", "Cannot scale cluster autoscaler enabled node pool. Disable the cluster "
                       "autoscaler to set the node count, or change minCount and maxCount.", 400,
                       target="agentPoolProfile.count")
    # the range may later move past the count (the autoscaler brings it back), so only a count this
    # request sets, or the one a pool starts autoscaling with, must lie inside it
    if not was and not low_count <= count <= high_count:
        raise ARMError("InvalidParameter", f"agentPoolProfile.count was {count}. It must be greater or equal to "
                       f"minCount:{low_count} and less than or equal to maxCount:{high_count}.", 400,
                       target="agentPoolProfile.count")


def autoscaler(props_in: Doc, old_props: Doc, pools: list[Doc]) -> Doc | None:
    """The cluster's `autoScalerProfile`: the stored one overlaid with the request's, each key
    checked (`lks.autoscaler.profile`), shown in full with AKS's defaults once a profile is given
    or any pool autoscales; None (shown null, as AKS does) otherwise."""
    given = props_in.get("autoScalerProfile")
    stored = old_props.get("autoScalerProfile")
    if given is None and stored is None and not any(p.get("enableAutoScaling") for p in pools):
        return None
    return autoscaler_profile.normalize(given, stored)


def _rollback_entry(props: Doc, old: Doc, recently_used: list[Doc]) -> Doc | None:
    """The `recentlyUsedVersions` entry a pool body asks to go back to, if any: its
    `nodeImageVersion` (and `orchestratorVersion`, when given) name a pair the pool ran before.
    Another `nodeImageVersion` than the pool's own is refused: setting it means a rollback."""
    image, version = props.get("nodeImageVersion"), props.get("orchestratorVersion")
    if not image or (image == old.get("nodeImageVersion") and version in (
            None, "", old.get("orchestratorVersion"), old.get("currentOrchestratorVersion"))):
        return None
    for entry in recently_used:
        if entry.get("nodeImageVersion") == image and version in (None, "", entry.get("orchestratorVersion")):
            return entry
    if image == old.get("nodeImageVersion"):
        return None  # a change of orchestratorVersion alone: the upgrade rules decide
    # AKS's SDK: "Setting this value triggers an agentPool rollback. Only values from
    # recentlyUsedVersions are allowed." (the wording of the refusal is lks's)
    raise invalid_parameter(f"The value of parameter agentPoolProfile.nodeImageVersion is invalid: '{image}'. Setting "
                            "it rolls the agent pool back; only versions from the pool's recentlyUsedVersions are "
                            "allowed (see az aks nodepool get-rollback-versions).", "agentPoolProfile.nodeImageVersion")


_INT_OR_PERCENT = re.compile(r"^(\d+)(%?)$")
_UNDRAINABLE = ("Schedule", "Cordon")


def _upgrade_settings(value: Any) -> Doc:
    """`upgradeSettings` with AKS's defaults (maxSurge 10%, maxUnavailable 0), checked against the
    API's rules: maxSurge and maxUnavailable an integer or a percentage up to 100%, not both 0;
    drainTimeoutInMinutes 1-1440; nodeSoakDurationInMinutes 0-30; undrainableNodeBehavior
    Schedule or Cordon (ranges from the API spec's minimum/maximum; the wording is AKS's
    InvalidParameter form)."""
    settings = {"maxSurge": "10%", "maxUnavailable": "0", **_object(value, "agentPoolProfile.upgradeSettings")}
    target = "agentPoolProfile.upgradeSettings"
    amounts = {}
    for field in ("maxSurge", "maxUnavailable"):
        raw = settings[field]
        m = _INT_OR_PERCENT.match(str(raw).strip()) if isinstance(raw, (str, int)) and not isinstance(raw, bool) \
            else None
        if m is None or (m[2] and int(m[1]) > 100):
            raise invalid_parameter(f"The value of parameter {target}.{field} is invalid: '{raw}'. It must be an "
                                    "integer (e.g. '5') or a percentage from 0% to 100% (e.g. '50%').",
                                    f"{target}.{field}")
        settings[field] = str(raw).strip()
        amounts[field] = int(m[1])
    if amounts["maxSurge"] == 0 and amounts["maxUnavailable"] == 0:
        raise invalid_parameter(f"The value of parameter {target}.maxSurge is invalid: maxSurge and maxUnavailable "
                                "cannot both be 0. Set maxSurge greater than 0 for a surge upgrade, or maxUnavailable "
                                "greater than 0 to upgrade nodes in place.", f"{target}.maxSurge")
    for field, low, high in (("drainTimeoutInMinutes", 1, 1440), ("nodeSoakDurationInMinutes", 0, 30)):
        raw = settings.get(field)
        if raw is None:
            continue
        if not isinstance(raw, int) or isinstance(raw, bool) or not low <= raw <= high:
            raise invalid_parameter(f"The value of parameter {target}.{field} is invalid: '{raw}'. Valid values are "
                                    f"{low} to {high}.", f"{target}.{field}")
    behavior = settings.get("undrainableNodeBehavior")
    if behavior is not None and behavior not in _UNDRAINABLE:
        raise invalid_parameter(f"The value of parameter {target}.undrainableNodeBehavior is invalid: '{behavior}'. "
                                f"Allowed values are {', '.join(_UNDRAINABLE)}.", f"{target}.undrainableNodeBehavior")
    return settings


def _network(body: Doc, old: Doc | None) -> Doc:
    net = {**(old or {}), **_object(body, "networkProfile")}
    if old:
        for field in _IMMUTABLE_NETWORK:
            if field in body and body[field] not in (None, old.get(field)):
                raise changed(f"networkProfile.{field}")
    plugin = net.get("networkPlugin") or "azure"
    if plugin not in ("azure", "kubenet", "none"):
        raise invalid_parameter(f"The value of parameter networkProfile.networkPlugin is invalid: '{plugin}'.",
                                "networkProfile.networkPlugin")
    mode = net.get("networkPluginMode")
    if mode is not None and (plugin != "azure" or mode != "overlay"):
        raise invalid_parameter(f"The value of parameter networkProfile.networkPluginMode is invalid: '{mode}'. "
                                "Only 'overlay' is allowed, with networkPlugin 'azure'.", "networkProfile.networkPluginMode")
    # no plugin asked for: Azure CNI Overlay, as az aks create; `azure` without a mode is Azure CNI
    # in its node subnet mode (pods take addresses of the node subnet: lks.arm.addressing)
    given = (body or {}).get("networkPlugin")
    net["networkPlugin"] = plugin
    if plugin == "azure" and "networkPluginMode" not in net and not old and not given:
        net["networkPluginMode"] = "overlay"
    net.setdefault("networkPolicy", "none")
    net.setdefault("networkDataplane", "azure")
    if plugin == "kubenet" or net.get("networkPluginMode") == "overlay":
        net.setdefault("podCidr", "10.244.0.0/16")
    net.setdefault("serviceCidr", "10.0.0.0/16")
    net.setdefault("dnsServiceIP", "10.0.0.10")
    net.setdefault("outboundType", "loadBalancer")
    net.setdefault("loadBalancerSku", "standard")
    net.setdefault("loadBalancerProfile", {"managedOutboundIPs": {"count": 1}, "backendPoolType": "nodeIPConfiguration"})
    net.setdefault("ipFamilies", ["IPv4"])
    if "podCidr" in net:
        net["podCidrs"] = [net["podCidr"]]
    net["serviceCidrs"] = [net["serviceCidr"]]
    _check_cidrs(net)
    return net


def _addon_profiles(addons: Doc, network: Doc) -> Doc:
    """The add-on profiles as given, checked where AKS checks them: the virtual node
    (`aciConnectorLinux`, `lks.aci.virtualnode`) needs Azure CNI in its node subnet mode (its pods
    take addresses of a delegated subnet) and that subnet's name (`config.SubnetName`)."""
    aci = addons.get(ACI_CONNECTOR) if isinstance(addons, dict) else None
    if not isinstance(aci, dict) or not aci.get("enabled"):
        return addons
    if network.get("networkPlugin") != "azure" or network.get("networkPluginMode") == "overlay":
        raise ARMError("AddonInvalid", "Virtual node addon (aciConnectorLinux) is only supported with Azure CNI "
                       "(networkPlugin 'azure' without networkPluginMode 'overlay').", 400,
                       target=f"addonProfiles.{ACI_CONNECTOR}")
    if not ((aci.get("config") or {}).get("SubnetName") or ""):
        raise invalid_parameter(f"The value of parameter addonProfiles.{ACI_CONNECTOR}.config.SubnetName is invalid: "
                                "''. A subnet name is required for the virtual node addon.",
                                f"addonProfiles.{ACI_CONNECTOR}.config.SubnetName")
    return addons


def _check_cidrs(net: Doc) -> None:
    import ipaddress

    try:
        service = ipaddress.ip_network(net["serviceCidr"], strict=True)
        dns = ipaddress.ip_address(net["dnsServiceIP"])
        pod = ipaddress.ip_network(net["podCidr"], strict=True) if "podCidr" in net else None
    except ValueError as err:
        raise invalid_parameter(f"The network profile is invalid: {err}.", "networkProfile") from None
    if dns not in service:
        raise ARMError("InvalidDNSServiceIP",
                       f"DNSServiceIP {dns} is not within ServiceCIDR {service}.", 400, target="networkProfile.dnsServiceIP")
    if pod is not None and pod.overlaps(service):
        raise ARMError("InvalidParameter", f"Pod CIDR {pod} overlaps with service CIDR {service}.", 400,
                       target="networkProfile.podCidr")


def managed_cluster(body: Any, *, existing: Doc | None, resource_id: str, name: str, group: str,
                    subscription: str, tenant_id: str | None = None) -> Doc:
    """The stored document for a PUT of a managed cluster (creation or full update); `tenant_id`
    is the service's tenant, the system-assigned identity's."""
    if not isinstance(body, dict):
        raise ARMError("InvalidRequestContent", "The request content was invalid and could not be deserialized.", 400)
    props_in = _object(body.get("properties"), "properties")
    old = existing or {}
    old_props = old.get("properties") or {}
    location = body.get("location") or old.get("location")
    if not location:
        raise ARMError("LocationRequired", "The location property is required for this definition.", 400)
    location = location.lower().replace(" ", "")
    if existing is not None and location != old["location"]:
        raise changed("location")
    provisioning = props_in.get("provisioningState")
    if provisioning and provisioning != old_props.get("provisioningState", provisioning):
        raise ARMError("InvalidParameter", "The provisioningState of the resource cannot be set by the client.", 400,
                       target="properties.provisioningState")
    dns_prefix = props_in.get("dnsPrefix") or old_props.get("dnsPrefix") or _default_dns_prefix(name, group, subscription)
    if existing is not None and props_in.get("dnsPrefix") not in (None, old_props.get("dnsPrefix")):
        raise changed("dnsPrefix")
    if not _DNS_PREFIX.match(dns_prefix):
        raise invalid_parameter(
            f"The value of parameter dnsPrefix is invalid: '{dns_prefix}'. DNS prefix must contain between 1 and 54 "
            "characters. It can contain only letters, numbers, and hyphens. It must start and end with a letter "
            "or a number.", "dnsPrefix")
    requested = props_in.get("kubernetesVersion") or old_props.get("kubernetesVersion")
    running = old_props.get("currentKubernetesVersion")
    current = versions.resolve(requested, current=running, cluster_name=name)
    if running is not None and current != running:
        versions.validate_control_plane_upgrade(
            running, current, pool_versions=[p["currentOrchestratorVersion"] for p in old_props["agentPoolProfiles"]])
    network = _network(props_in.get("networkProfile") or {}, old_props.get("networkProfile"))
    pools_in = props_in.get("agentPoolProfiles")
    if pools_in is None:
        pools_in = old_props.get("agentPoolProfiles") or []
    if not isinstance(pools_in, list) or not pools_in:
        raise ARMError("InvalidParameter", "The value of parameter agentPoolProfiles is invalid: a managed cluster "
                       "must have at least one agent pool.", 400, target="agentPoolProfiles")
    old_pools = {p["name"]: p for p in old_props.get("agentPoolProfiles") or []}
    pools = []
    seen = set()
    for pool in pools_in:
        pool = _object(pool, "agentPoolProfiles")
        if pool.get("name") in seen:
            raise invalid_parameter(f"Agent pool name '{pool.get('name')}' is duplicated.", "agentPoolProfiles")
        seen.add(pool.get("name"))
        pools.append(agent_pool(pool, existing=old_pools.get(pool.get("name")), cluster_version=current,
                                network=network, recently_used=recently_used(old_props, pool.get("name"))))
    check_pools(pools)
    scaler = autoscaler(props_in, old_props, pools)
    props = {
        **copy.deepcopy(old_props),
        **{k: v for k, v in props_in.items() if k not in ("provisioningState", "powerState", "fqdn")},
        "kubernetesVersion": requested or current.rsplit(".", 1)[0],
        "currentKubernetesVersion": current,
        "dnsPrefix": dns_prefix,
        "fqdn": old_props.get("fqdn") or _fqdn(dns_prefix, location, resource_id),
        "azurePortalFQDN": old_props.get("azurePortalFQDN") or _fqdn(dns_prefix, location, resource_id, portal=True),
        "agentPoolProfiles": pools,
        "networkProfile": network,
        "nodeResourceGroup": old_props.get("nodeResourceGroup") or props_in.get("nodeResourceGroup")
        or f"MC_{group}_{name}_{location}",
        "powerState": old_props.get("powerState") or {"code": "Running"},
        "maxAgentPools": MAX_POOLS,
        "enableRBAC": props_in.get("enableRBAC", old_props.get("enableRBAC", True)),
        "supportPlan": props_in.get("supportPlan") or old_props.get("supportPlan") or "KubernetesOfficial",
        "disableLocalAccounts": _flag(props_in, old_props, "disableLocalAccounts"),
        "addonProfiles": _addon_profiles(props_in.get("addonProfiles", old_props.get("addonProfiles", {})) or {},
                                         network),
        "autoUpgradeProfile": _auto_upgrade_profile(props_in, old_props),
        "oidcIssuerProfile": _oidc_issuer(props_in, old_props),
        "storageProfile": old_props.get("storageProfile") or {
            "diskCSIDriver": {"enabled": True}, "fileCSIDriver": {"enabled": True},
            "snapshotController": {"enabled": True}},
        "resourceUID": old_props.get("resourceUID") or uuid.uuid4().hex[:24],
    }
    ingress = _ingress_profile(props_in, old_props, subscription=subscription, node_group=props["nodeResourceGroup"],
                               name=name)
    if ingress is not None:
        props["ingressProfile"] = ingress
    props["aadProfile"] = aad.profile(props_in, old_props, tenant_id=tenant_id, rbac=props["enableRBAC"])
    if props["aadProfile"] is None:
        del props["aadProfile"]
    if (monitor := monitoring.profile(props_in, old_props)) is not None:  # managed Prometheus: only shown
        props["azureMonitorProfile"] = monitor
    else:
        props.pop("azureMonitorProfile", None)
    if scaler is not None:
        props["autoScalerProfile"] = scaler
    else:
        props.pop("autoScalerProfile", None)
    if "apiServerAccessProfile" in props_in or old_props.get("apiServerAccessProfile"):
        props["apiServerAccessProfile"] = _api_server_access(props_in.get("apiServerAccessProfile", old_props.get(
            "apiServerAccessProfile")))
    if props_in.get("nodeResourceGroup") and existing is not None and \
            props_in["nodeResourceGroup"] != old_props.get("nodeResourceGroup"):
        raise changed("nodeResourceGroup")
    identity = body.get("identity") or old.get("identity") or {"type": "SystemAssigned"}
    if identity.get("type") == "SystemAssigned":
        identity = {"type": "SystemAssigned",
                    "principalId": (old.get("identity") or {}).get("principalId") or str(uuid.uuid4()),
                    "tenantId": tenant_id or (old.get("identity") or {}).get("tenantId") or str(uuid.uuid4())}
    props["servicePrincipalProfile"] = _service_principal(props_in, old_props, identity)
    props["identityProfile"] = old_props.get("identityProfile") or {"kubeletidentity": {
        "resourceId": f"/subscriptions/{subscription}/resourcegroups/{props['nodeResourceGroup']}/providers/"
                      f"Microsoft.ManagedIdentity/userAssignedIdentities/{name}-agentpool",
        "clientId": str(uuid.uuid4()), "objectId": str(uuid.uuid4())}}
    sku = {"name": "Base", "tier": "Free", **(old.get("sku") or {}), **_object(body.get("sku"), "sku")}
    versions.validate_support_plan(current, support_plan=props["supportPlan"], tier=sku["tier"], cluster_name=name)
    if props.get("upgradeSettings") is not None:  # the cluster's: overrideSettings (lks.upgrade.apis)
        props["upgradeSettings"] = apis.upgrade_settings(props["upgradeSettings"])
    return {
        "id": resource_id, "location": location, "name": name, "type": CLUSTER_TYPE,
        "tags": body.get("tags", old.get("tags")) or {}, "sku": sku, "identity": identity,
        "kind": old.get("kind", "Base"), "properties": props,
    }


def _service_principal(props_in: Doc, old_props: Doc, identity: Doc) -> Doc:
    """`servicePrincipalProfile`: `{"clientId": "msi"}` for a cluster with a managed identity, as AKS
    answers (az reads `service_principal_profile.client_id` unchecked); a service principal cluster
    keeps its client id. The secret is never stored."""
    if identity.get("type") in ("SystemAssigned", "UserAssigned"):
        return {"clientId": "msi"}
    given = _object(props_in.get("servicePrincipalProfile"), "servicePrincipalProfile")
    return {"clientId": given.get("clientId") or (old_props.get("servicePrincipalProfile") or {}).get("clientId")
            or "msi"}


def _oidc_issuer(props_in: Doc, old_props: Doc) -> Doc:
    """`oidcIssuerProfile`: `issuerURL` is read-only, set once the issuer serves (`lks.arm.plane`)
    and kept while it stays enabled."""
    profile = {"enabled": False, **_object(props_in.get("oidcIssuerProfile"), "oidcIssuerProfile")}
    profile.pop("issuerURL", None)
    old = old_props.get("oidcIssuerProfile") or {}
    if profile["enabled"] and old.get("issuerURL"):
        profile["issuerURL"] = old["issuerURL"]
    return profile


_NGINX_TYPES = ("AnnotationControlled", "External", "Internal", "None")


def _ingress_profile(props_in: Doc, old_props: Doc, *, subscription: str, node_group: str, name: str) -> Doc | None:
    """`ingressProfile` (absent from a PUT: kept). `webAppRouting` is the app routing add-on
    (`lks.net.ingress`); while it is on, AKS answers the default controller's type
    (`nginx.defaultIngressControllerType`, AnnotationControlled unless given) and the add-on's
    read-only managed identity `webapprouting-<cluster>` in the node resource group."""
    if "ingressProfile" not in props_in:
        return old_props.get("ingressProfile")
    profile = copy.deepcopy(_object(props_in.get("ingressProfile"), "ingressProfile"))
    routing = _object(profile.get("webAppRouting"), "ingressProfile.webAppRouting")
    if not routing:
        return profile
    old = (old_props.get("ingressProfile") or {}).get("webAppRouting") or {}
    routing.pop("identity", None)
    enabled = routing.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise invalid_parameter("The value of parameter ingressProfile.webAppRouting.enabled is invalid.",
                                "ingressProfile.webAppRouting.enabled")
    zones = routing.get("dnsZoneResourceIds")
    if zones is not None and (not isinstance(zones, list) or not all(
            isinstance(z, str) and re.search(r"/providers/microsoft\.network/(private)?dnszones/[^/]+$", z, re.I)
            for z in zones)):
        raise invalid_parameter("The value of parameter ingressProfile.webAppRouting.dnsZoneResourceIds is invalid: "
                                "each must be the resource ID of an Azure DNS zone or private DNS zone.",
                                "ingressProfile.webAppRouting.dnsZoneResourceIds")
    nginx = _object(routing.get("nginx"), "ingressProfile.webAppRouting.nginx")
    kind = nginx.get("defaultIngressControllerType")
    if kind is not None:
        found = next((k for k in _NGINX_TYPES if isinstance(kind, str) and k.lower() == kind.lower()), None)
        if found is None:
            raise invalid_parameter(
                f"The value of parameter ingressProfile.webAppRouting.nginx.defaultIngressControllerType is invalid: "
                f"'{kind}'. Allowed values are {', '.join(_NGINX_TYPES)}.",
                "ingressProfile.webAppRouting.nginx.defaultIngressControllerType")
        nginx["defaultIngressControllerType"] = found
    if enabled:
        routing["nginx"] = {"defaultIngressControllerType": (old.get("nginx") or {}).get(
            "defaultIngressControllerType", "AnnotationControlled"), **nginx}
        routing["identity"] = old.get("identity") or {
            "resourceId": f"/subscriptions/{subscription}/resourcegroups/{node_group}/providers/"
                          f"Microsoft.ManagedIdentity/userAssignedIdentities/webapprouting-{name}",
            "clientId": str(uuid.uuid4()), "objectId": str(uuid.uuid4())}
    profile["webAppRouting"] = routing
    return profile


def web_app_routing(doc: Doc) -> str | None:
    """The cluster's app routing add-on: its default controller's type while it is on, else None."""
    routing = (doc["properties"].get("ingressProfile") or {}).get("webAppRouting") or {}
    if not routing.get("enabled"):
        return None
    return (routing.get("nginx") or {}).get("defaultIngressControllerType") or "AnnotationControlled"


def virtual_node(doc: Doc) -> str | None:
    """The virtual node subnet's name while the cluster's `aciConnectorLinux` add-on is on, else None."""
    aci = (doc["properties"].get("addonProfiles") or {}).get(ACI_CONNECTOR) or {}
    return (aci.get("config") or {}).get("SubnetName") if aci.get("enabled") else None


_UPGRADE_CHANNELS = ("rapid", "stable", "patch", "node-image", "none")
_NODE_OS_CHANNELS = ("None", "Unmanaged", "SecurityPatch", "NodeImage")


def _auto_upgrade_profile(props_in: Doc, old_props: Doc) -> Doc:
    """`autoUpgradeProfile`: the channels `lks.upgrade.auto` follows, their values as AKS spells
    them (any case accepted). The node OS channel defaults to NodeImage (API 2023-06-01 on), and
    is NodeImage while the cluster channel is node-image (`auto-upgrade-node-os-image.md`)."""
    given = _object(props_in.get("autoUpgradeProfile"), "autoUpgradeProfile")
    profile = {"nodeOSUpgradeChannel": "NodeImage", **(old_props.get("autoUpgradeProfile") or {}), **given}
    for field, allowed in (("upgradeChannel", _UPGRADE_CHANNELS), ("nodeOSUpgradeChannel", _NODE_OS_CHANNELS)):
        value = profile.get(field)
        if value is None:
            profile.pop(field, None)
            continue
        known = next((a for a in allowed if isinstance(value, str) and value.lower() == a.lower()), None)
        if known is None:
            raise invalid_parameter(f"The value of parameter autoUpgradeProfile.{field} is invalid: '{value}'. "
                                    f"Allowed values are {', '.join(allowed)}.", f"autoUpgradeProfile.{field}")
        profile[field] = known
    profile.setdefault("nodeOSUpgradeChannel", "NodeImage")
    if profile.get("upgradeChannel") == "node-image" and profile["nodeOSUpgradeChannel"] != "NodeImage":
        if "nodeOSUpgradeChannel" in given:
            raise invalid_parameter(
                f"The node OS upgrade channel cannot be {profile['nodeOSUpgradeChannel']} when the auto-upgrade "
                "channel is node-image: it must be NodeImage. To use another node OS upgrade channel, change the "
                "auto-upgrade channel first.", "autoUpgradeProfile.nodeOSUpgradeChannel")
        profile["nodeOSUpgradeChannel"] = "NodeImage"
    return profile


def _flag(props_in: Doc, old_props: Doc, name: str) -> bool:
    value = props_in.get(name, old_props.get(name, False))
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid_parameter(f"The value of parameter {name} is invalid: '{value}'.", name)
    return value


def _api_server_access(profile: Any) -> Doc:
    """`apiServerAccessProfile`, its `authorizedIPRanges` checked (CIDRs, or addresses taken as
    /32; at most 200; none: every address may connect) and written in canonical form."""
    profile = copy.deepcopy(_object(profile, "apiServerAccessProfile"))
    ranges = profile.get("authorizedIPRanges")
    target = "apiServerAccessProfile.authorizedIPRanges"
    if ranges is None:
        ranges = []
    if not isinstance(ranges, list):
        raise invalid_parameter(f"The value of parameter {target} is invalid.", target)
    if len(ranges) > MAX_AUTHORIZED_IP_RANGES:
        raise invalid_parameter("The number of APIServer Authorized IP Ranges is greater than the allowed value "
                                f"{MAX_AUTHORIZED_IP_RANGES}.", target)
    canonical = []
    for value in ranges:
        try:
            network = ipaddress.ip_network(value.strip(), strict=True) if isinstance(value, str) else None
        except ValueError:
            network = None
        if network is None:
            raise invalid_parameter(f"The value of parameter {target} is invalid: '{value}' is not a valid IP "
                                    "address or CIDR range (a CIDR starts at the first address of its range).",
                                    target)
        canonical.append(str(network))
    profile["authorizedIPRanges"] = canonical
    return profile


def recently_used(props: Doc, pool: Any) -> list[Doc]:
    """A pool's `recentlyUsedVersions`, kept in the cluster's private fields (`lks.upgrade.rollback`)."""
    return ((props.get(documents.PRIVATE) or {}).get("recentlyUsedVersions") or {}).get(pool) or []


def check_pools(pools: list[Doc]) -> None:
    if not any(p["mode"] == "System" for p in pools):
        raise ARMError("InvalidParameter", "The managed cluster must have at least one node pool with mode System.",
                       400, target="agentPoolProfiles")
    if len(pools) > MAX_POOLS:
        raise ARMError("InvalidParameter", f"A managed cluster can have at most {MAX_POOLS} agent pools.", 400,
                       target="agentPoolProfiles")


def _default_dns_prefix(name: str, group: str, subscription: str) -> str:
    """What `az aks create` generates: `<name>-<group>-<subscription[:6]>`, cleaned."""
    base = re.sub(r"[^A-Za-z0-9-]", "", f"{name[:10]}-{group[:16]}").strip("-")
    if not base or not base[0].isalpha():
        base = "a" + base
    return f"{base}-{subscription[:6]}"


def _fqdn(dns_prefix: str, location: str, resource_id: str, *, portal: bool = False) -> str:
    digest = hashlib.sha256(resource_id.lower().encode()).hexdigest()
    suffix = f"{digest[:8]}.portal" if portal else digest[:8]
    return f"{dns_prefix.lower()}-{suffix}.hcp.{location}.azmk8s.io"


def pool_resource(cluster_id: str, pool: Doc) -> Doc:
    """A pool as the `agentPools` API shows it."""
    props = {k: v for k, v in pool.items() if k != "name"}
    return {"id": f"{cluster_id}/agentPools/{pool['name']}", "name": pool["name"], "type": POOL_TYPE,
            "properties": props}


def pool_versions(pool: Doc) -> tuple[str | None, str | None]:
    """What a pool's nodes run; a change of it is an upgrade of the pool (`lks.upgrade.surge`)."""
    return pool.get("currentOrchestratorVersion"), pool.get("nodeImageVersion")
