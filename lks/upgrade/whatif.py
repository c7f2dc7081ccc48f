"""What an upgrade would do, before it starts: the cluster PUT with `?whatIf=true` (and
`lks aks upgrade --what-if`) answers with the blockers the upgrade would hit and the number of
nodes it would replace, and changes nothing. AKS has no such API; the checks are the ones its
upgrades fail on (`upgrade-aks-node-pools-rolling.md`, `upgrade-cluster.md` "Validations used
in the upgrade process", `concepts-network-ip-address-planning.md`).

The answer keeps ARM's conventions (a resource-shaped body, camelCase, errors as ARM error
objects):

    {"id": "<cluster id>/whatIf", "name": "whatIf",
     "type": "Microsoft.ContainerService/managedClusters/whatIf",
     "properties": {
       "controlPlane": {"currentKubernetesVersion": "1.35.9", "kubernetesVersion": "1.36.4",
                        "upgrade": true},
       "agentPools": [{"name": "nodepool1", "count": 3,
                       "currentOrchestratorVersion": "1.35.9", "orchestratorVersion": "1.36.4",
                       "currentNodeImageVersion": "...", "nodeImageVersion": "...",
                       "maxSurge": 1, "maxUnavailable": 0, "nodeReplacements": 3}],
       "estimatedNodeReplacements": 3,
       "blockers": [{"code": "...", "message": "...", "target": "..."}],
       "canProceed": false}}

Blockers: a request the PUT would refuse (its ARM error as is: unknown version, skipped minor,
downgrade, pools too far behind after a control-plane-only upgrade, bad upgrade settings, and
`UpgradeBlockedOnDeprecatedAPIUsage` from `lks.upgrade.apis` while a removed API is in use);
PodDisruptionBudgets that allow 0 disruptions over pods on nodes to be replaced (the drain would
fail with `PodDrainFailure` after `drainTimeoutInMinutes`); a pool whose count plus surge passes
the VMSS limit of 1000 nodes; too few node CIDRs left in the pod CIDR for the surge nodes
(kubenet and Azure CNI overlay give each node a /24, AKS's `InsufficientSubnetSize`).
`maxSurge`/`maxUnavailable` are given in nodes: percentages of the pool's count rounded up,
at most the count.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from lks.arm import documents
from lks.arm.errors import ARMError
from lks.kube import selectors
from lks.kube.registry import ListOptions
from lks.upgrade import apis

if TYPE_CHECKING:
    from lks.arm.plane import ManagementPlane
    from lks.kube.cluster import Cluster

Doc = dict[str, Any]

QUERY = "whatIf"
VMSS_LIMIT = 1000  # nodes in one scale set
NODE_MASK = 24  # the node CIDR of kubenet and overlay pods (kube-controller-manager's default)
_EVERYTHING = ListOptions(selectors.LabelSelector([]), selectors.FieldSelector([]))


def requested(query: Mapping[str, str]) -> bool:
    """Whether the request asks for a what-if (`whatIf=true`, any case)."""
    value = query.get(QUERY)
    if value is None or value.lower() == "false":
        return False
    if value.lower() != "true":
        raise ARMError("InvalidParameter", f"The value '{value}' of query parameter '{QUERY}' is not a valid "
                       "boolean.", target=QUERY)
    return True


def nodes_of(amount: str, count: int) -> int:
    """`maxSurge`/`maxUnavailable` ("5" or "33%") in nodes of a pool of `count`: percentages round
    up, and neither is more than the pool has (AKS uses the node count then)."""
    text = str(amount).strip()
    n = math.ceil(count * int(text[:-1]) / 100) if text.endswith("%") else int(text)
    return min(n, count)


async def assess(plane: ManagementPlane, existing: Doc, build: Callable[[], Doc]) -> Doc:
    """The what-if answer for changing `existing` into what `build()` makes of the request
    (`build` raises the PUT's own errors, which become blockers)."""
    props = existing["properties"]
    blockers: list[Doc] = []
    try:
        new = build()
    except ARMError as err:
        blockers.append(err.body()["error"])
        new = None
    new_props = new["properties"] if new else props
    plans = [_plan(old, pool) for old, pool in _pairs(props, new_props)] if new else []
    replaced = {p["name"] for p in plans if p["nodeReplacements"]}
    for plan in plans:
        if plan["nodeReplacements"] and plan["count"] + plan["maxSurge"] > VMSS_LIMIT:
            blockers.append(_error("MaxSurgeExceedsScaleSetLimit",
                                   f"Agent pool '{plan['name']}' has {plan['count']} nodes and a surge of "
                                   f"{plan['maxSurge']}: the upgrade would need {plan['count'] + plan['maxSurge']} "
                                   f"nodes in its scale set, more than the limit of {VMSS_LIMIT}. Lower maxSurge.",
                                   f"agentPoolProfiles.{plan['name']}.upgradeSettings.maxSurge"))
    if plans:
        blockers += _cidr_headroom(new_props, plans)
    cluster = _running(plane, existing)
    if cluster is not None and new is not None:
        try:  # the PUT's own deprecated-API gate
            await apis.check_upgrade(cluster, current=props["currentKubernetesVersion"],
                                     target=new_props["currentKubernetesVersion"],
                                     settings=new_props.get("upgradeSettings"), now=plane.clock.now())
        except ARMError as err:
            blockers.append(err.body()["error"])
    if cluster is not None and replaced:
        blockers += await _budgets(cluster, replaced)
    return {
        "id": f"{existing['id']}/whatIf", "name": "whatIf",
        "type": "Microsoft.ContainerService/managedClusters/whatIf",
        "properties": {
            "controlPlane": {"currentKubernetesVersion": props["currentKubernetesVersion"],
                             "kubernetesVersion": new_props["currentKubernetesVersion"],
                             "upgrade": new_props["currentKubernetesVersion"] != props["currentKubernetesVersion"]},
            "agentPools": plans,
            "estimatedNodeReplacements": sum(p["nodeReplacements"] for p in plans),
            "blockers": blockers,
            "canProceed": not blockers,
        },
    }


def _pairs(props: Doc, new_props: Doc) -> list[tuple[Doc | None, Doc]]:
    old = {p["name"]: p for p in props["agentPoolProfiles"]}
    return [(old.get(p["name"]), p) for p in new_props["agentPoolProfiles"]]


def _plan(old: Doc | None, pool: Doc) -> Doc:
    """What the upgrade does to one pool: every node replaced when its version or image changes
    (a running pool that existed; a new pool is created, not upgraded)."""
    count = pool["count"] if (pool.get("powerState") or {}).get("code", "Running") == "Running" else 0
    settings = pool.get("upgradeSettings") or {}
    changes = old is not None and (old.get("currentOrchestratorVersion"), old.get("nodeImageVersion")) != (
        pool.get("currentOrchestratorVersion"), pool.get("nodeImageVersion"))
    return {
        "name": pool["name"], "count": count,
        "currentOrchestratorVersion": (old or pool).get("currentOrchestratorVersion"),
        "orchestratorVersion": pool.get("currentOrchestratorVersion"),
        "currentNodeImageVersion": (old or pool).get("nodeImageVersion"),
        "nodeImageVersion": pool.get("nodeImageVersion"),
        "maxSurge": nodes_of(settings.get("maxSurge", "10%"), count),
        "maxUnavailable": nodes_of(settings.get("maxUnavailable", "0"), count),
        "nodeReplacements": count if changes else 0,
    }


def _error(code: str, message: str, target: str) -> Doc:
    return {"code": code, "message": message, "target": target}


def _cidr_headroom(props: Doc, plans: list[Doc]) -> list[Doc]:
    """Pools upgrade one after another, so the cluster peaks at its node count plus the largest
    surge; with a pod CIDR, each of those nodes needs a /24 of it."""
    cidr = (props.get("networkProfile") or {}).get("podCidr")
    if not cidr:
        return []
    network = ipaddress.ip_network(cidr, strict=False)
    if network.version != 4 or network.prefixlen > NODE_MASK:
        return []
    room = 2 ** (NODE_MASK - network.prefixlen)
    peak = sum(p["count"] for p in plans) + max((p["maxSurge"] for p in plans if p["nodeReplacements"]), default=0)
    if peak <= room:
        return []
    return [_error("InsufficientSubnetSize",
                   f"The upgrade would need {peak} nodes at its peak (the cluster's nodes plus the surge), but pod "
                   f"CIDR {cidr} has room for {room} node CIDRs (/{NODE_MASK} each). Lower maxSurge or use a larger "
                   "pod CIDR.", "networkProfile.podCidr")]


def _running(plane: ManagementPlane, doc: Doc) -> Cluster | None:
    cp_id = (doc["properties"].get(documents.PRIVATE) or {}).get("controlPlane")
    if not cp_id or doc["properties"]["powerState"]["code"] != "Running":
        return None
    return plane.planes.get(cp_id)


async def _budgets(cluster: Cluster, pools: set[str]) -> list[Doc]:
    """PodDisruptionBudgets that allow no disruption now and select pods on nodes of `pools`:
    their pods could not be evicted, so draining those nodes would fail."""
    nodes = (await cluster.registry("", "v1", "nodes").list(None, _EVERYTHING))["items"]
    doomed = {n["metadata"]["name"] for n in nodes if (n["metadata"].get("labels") or {}).get("agentpool") in pools}
    if not doomed:
        return []
    pods = [p for p in (await cluster.registry("", "v1", "pods").list(None, _EVERYTHING))["items"]
            if (p.get("spec") or {}).get("nodeName") in doomed and "deletionTimestamp" not in p["metadata"]]
    out = []
    for pdb in (await cluster.registry("policy", "v1", "poddisruptionbudgets").list(None, _EVERYTHING))["items"]:
        if (pdb.get("status") or {}).get("disruptionsAllowed", 0) > 0:
            continue
        raw = (pdb.get("spec") or {}).get("selector")
        try:
            selector = selectors.from_label_selector_object(raw) if raw else None
        except (KeyError, TypeError, ValueError):
            selector = None
        if selector is None:
            continue
        ns = pdb["metadata"]["namespace"]
        held = sorted(p["metadata"]["name"] for p in pods
                      if p["metadata"]["namespace"] == ns and selector.matches(p["metadata"].get("labels") or {}))
        if not held:
            continue
        spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
        limit = (f"minAvailable {spec['minAvailable']}" if "minAvailable" in spec
                 else f"maxUnavailable {spec.get('maxUnavailable')}")
        out.append(_error("PodDrainFailure",
                          f"PodDisruptionBudget {ns}/{pdb['metadata']['name']} ({limit}, currentHealthy "
                          f"{status.get('currentHealthy', 0)}, desiredHealthy {status.get('desiredHealthy', 0)}) "
                          f"allows 0 disruptions and selects pods on nodes the upgrade replaces: "
                          f"{', '.join(f'{ns}/{n}' for n in held)}. Their eviction would be refused until the "
                          "drain timeout fails the upgrade.", f"{ns}/{pdb['metadata']['name']}"))
    return out
