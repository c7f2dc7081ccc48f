"""The Kubernetes versions lks offers, and AKS's rules for choosing and changing them.

The catalog is modelled on what AKS lists late in 2026: the minors the hosted API server serves
(1.31 to 1.37, `lks.kube.catalog.SUPPORTED_VERSIONS`), each with a few recent patches. Nothing
is in preview: AKS made 1.37 GA in October 2026 (release calendar in
`supported-kubernetes-versions.md`), so 1.37 is N, 1.36 and 1.35 complete the N-2 support window
and 1.34 is N-3, the "platform support" version AKS still lets clusters be created on. Older
minors are offered for long-term support only (`LTS_ONLY`): every AKS minor from 1.27 on is
LTS-eligible for two years from its AKS GA (`long-term-support.md`), LTS patches only the two
newest patches of a minor, and `az aks get-versions` lists such a minor with the one support plan
`AKSLongTermSupport`. 1.31 (AKS GA November 2024) is kept at the end of its LTS window so that an
upgrade across an API removal (flowcontrol.apiserver.k8s.io/v1beta3, gone in 1.32) can be run.

The rules, each from AKS's documentation or its observed errors:

* Default version: the latest patch of minor N-1 ("The portal and CLI create clusters at N-1,
  latest patch", aks.md §3.1), so 1.36.4 here.
* `"1.36"` means the latest patch of 1.36; re-sending the same alias keeps the running patch
  (SDK docstring of `kubernetesVersion`). A full version must be in the catalog.
* The control plane moves to a higher patch or to the next minor only; no downgrades, no
  skipped minors (`upgrade-aks-control-plane.md`). LTS minor skipping is not modelled.
* A node pool is never newer than the control plane and at most three minors behind it (AKS
  from 1.28, `upgrade-aks-control-plane.md`); a pool may skip minors on its way up.
* A cluster on an LTS-only minor must be on the Premium tier with `supportPlan:
  AKSLongTermSupport` (`long-term-support.md`; AKS's `K8sVersionNotSupported` otherwise).

Error codes and messages are AKS's own, quoted from failures users reported; see `_error_*`.
The management API handlers (`managedclusters`, `agentpools`, `model`) call `resolve`,
`check_pool` and the `validate_*` functions, and answer the version listing endpoints with the
bodies built by `kubernetes_versions_response`, `upgrade_profile`,
`agent_pool_upgrade_profile` and `available_agent_pool_versions`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from lks.arm.errors import ARMError, invalid_parameter

Body = dict[str, Any]

# minor -> patches AKS offers, oldest first. Patch numbers follow upstream's roughly monthly
# releases: nodes seen in the wild ran 1.34.7 in May 2026 and 1.35.8 in autumn 2026.
CATALOG: dict[str, tuple[str, ...]] = {
    "1.31": ("1.31.13", "1.31.14"),
    "1.32": ("1.32.11", "1.32.12"),  # 1.32.11 was AKS's LTS patch in April 2026 (apecloud/kubeblocks#10136)
    "1.33": ("1.33.7", "1.33.8"),
    "1.34": ("1.34.10", "1.34.11", "1.34.12"),
    "1.35": ("1.35.7", "1.35.8", "1.35.9"),
    "1.36": ("1.36.2", "1.36.3", "1.36.4"),
    "1.37": ("1.37.1", "1.37.2"),
}
PREVIEW: frozenset[str] = frozenset()  # minors in preview: none, 1.37 went GA in October 2026
# Every listed minor is LTS-eligible; those past community support (below N-3) are LTS only.
SUPPORT_PLANS = ("KubernetesOfficial", "AKSLongTermSupport")
LTS = "AKSLongTermSupport"
LTS_ONLY: frozenset[str] = frozenset(("1.31", "1.32", "1.33"))
POOL_SKEW = 3  # minors a node pool may trail the control plane (AKS from 1.28; 2 before)

_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")
_SUPPORTED_LIST = ("Please use [az aks get-versions] command to get the supported version list in this region. "
                   "For more information, please check https://aka.ms/supported-version-list")


def key(version: str) -> tuple[int, ...]:
    """(major, minor, patch) or (major, minor) of a version string; ValueError if it is not one."""
    m = _VERSION.match(version.strip())
    if not m:
        raise ValueError(f"not a Kubernetes version: {version!r}")
    return tuple(int(p) for p in m.groups() if p is not None)


def minor_of(version: str) -> str:
    """"1.36" for "1.36.2" or "1.36"."""
    major, minor = key(version)[:2]
    return f"{major}.{minor}"


def _minor_number(version: str) -> int:
    return key(version)[1]


def minors() -> list[str]:
    return sorted(CATALOG, key=key)


def patches(minor: str | None = None) -> list[str]:
    """Every offered patch version (of one minor when given), oldest first."""
    if minor is not None:
        return list(CATALOG.get(minor, ()))
    return [p for m in minors() for p in CATALOG[m]]


def is_offered(version: str) -> bool:
    """Whether `version` is a full version in the catalog."""
    return version in patches()


def is_preview(version: str) -> bool:
    return minor_of(version) in PREVIEW


def latest_patch(minor: str, *, ceiling: str | None = None) -> str | None:
    """The newest patch of `minor`, not above `ceiling` when given; None if there is none."""
    candidates = [p for p in CATALOG.get(minor, ()) if ceiling is None or key(p) <= key(ceiling)]
    return candidates[-1] if candidates else None


def default_version() -> str:
    """AKS's default for a new cluster: the latest patch of the newest GA minor but one (N-1)."""
    ga = [m for m in minors() if m not in PREVIEW]
    patch = latest_patch(ga[-2] if len(ga) > 1 else ga[-1])
    assert patch is not None
    return patch


# -- errors: AKS's codes and wording ---------------------------------------------------------------

def _error_not_supported(version: str, cluster_name: str | None) -> ARMError:
    if cluster_name:
        # AKS's newer preflight wording (2024, Azure/Microsoft-Defender-for-Cloud#923)
        return ARMError("K8sVersionNotSupported",
                        f"Managed cluster {cluster_name} has invalid version {version}. {_SUPPORTED_LIST}")
    # the long-standing wording, returned for clusters and pools alike (2020-2022 reports, e.g.
    # dspace-group/simphera-reference-architecture-azure#29)
    return ARMError("AgentPoolK8sVersionNotSupported", f"Version {version} is not supported in this region. "
                    f"{_SUPPORTED_LIST}")


def _error_lts_only(version: str, cluster_name: str) -> ARMError:
    # AKS's wording for a minor past community support without LTS (kubeblocks#10136,
    # cluster-api-provider-azure#5953, secrets-store-csi-driver-provider-azure#1713)
    return ARMError("K8sVersionNotSupported",
                    f"Managed cluster {cluster_name} is on version {version}, which is only available for Long-Term "
                    "Support (LTS). If you intend to onboard to LTS, please ensure the cluster is in Premium tier and "
                    "LTS support plan (see https://aka.ms/aks/enable-lts). Otherwise, use [az aks get-versions] "
                    "command to get the supported version list in this region. For more information, please check "
                    "https://aka.ms/supported-version-list")


def _available(upgrades: Iterable[str]) -> str:
    # "[1.29.7 1.29.6 1.29.5]": newest first, space separated (rancher/dashboard#11884)
    return "[" + " ".join(upgrades) + "]"


def _error_control_plane(verb: str, current: str, target: str) -> ARMError:
    return ARMError("OperationNotAllowed",
                    f"{verb} Kubernetes version {current} to {target} is not allowed. Available upgrades: "
                    f"{_available(control_plane_upgrades(current))}. Please see https://aka.ms/aks-supported-k8s-ver "
                    "for version details.")


def _error_pool_newer(pool: str, control_plane: str) -> ARMError:
    pk, ck = key(pool), key(control_plane)
    if pk[:2] == ck[:2]:
        # Same minor, newer patch: AKS rejects it too ("can't be greater than the control plane
        # major.minor.patch"); this wording is ours, modelled on the minor-version message below.
        detail = f"Patch version of node pool version {pk[2]} is bigger than control plane version {ck[2]}."
    else:
        detail = f"Minor version of node pool version {pk[1]} is bigger than control plane version {ck[1]}."
    return ARMError("NodePoolMcVersionIncompatible",  # rancher/rancher#33426
                    f"Node pool version {pool} and control plane version {control_plane} are incompatible. "
                    f"{detail} For more information, please check https://aka.ms/version-skew-policy")


def _error_pool_too_old(pool: str, control_plane: str) -> ARMError:
    # troubleshoot article "upgrade-blocked-version-skew" (2025), with AKS's 3-minor skew
    return ARMError("NodePoolMcVersionIncompatible",
                    f"Node pool version {pool} and control plane version {control_plane} is incompatible. Minor "
                    f"version of node pool cannot be more than {POOL_SKEW} versions less than control plane's "
                    f"version. Minor version of node pool is {_minor_number(pool)} and control plane is "
                    f"{_minor_number(control_plane)}. For more information, please check "
                    "https://aka.ms/aks/UpgradeVersionRules")


def _error_pool_downgrade(current: str, target: str) -> ARMError:
    # Azure/AKS#1697, kubernetes-sigs/cluster-api-provider-azure#1883 (a pool downgrade)
    return ARMError("AgentPoolUpgradeVersionNotAllowed",
                    f"Upgrade agent pool version from {current} to {target} is not allowed, you can only upgrade one "
                    "minor version at a time. Please use [az aks get-upgrades] command to get the supported upgrade "
                    "paths. For more information, please check https://aka.ms/version-skew-policy")


# -- choosing a version ------------------------------------------------------------------------------

def _minor_or_none(version: str) -> str | None:
    try:
        return minor_of(version)
    except ValueError:
        return None


def resolve(requested: str | None, *, current: str | None = None, ceiling: str | None = None,
            cluster_name: str | None = None) -> str:
    """The full version a `kubernetesVersion`/`orchestratorVersion` asks for.

    Empty means the default (AKS's N-1 latest patch); an alias "1.36" means its latest patch (not
    above `ceiling`), except that re-sending the alias of the running version keeps the running
    patch; a full version must be offered, or be the one already running. Raises AKS's
    not-supported error otherwise (the `K8sVersionNotSupported` wording when `cluster_name` is given).
    """
    if not requested:
        return current or default_version()
    if not isinstance(requested, str):  # a number in the JSON body, say
        raise _error_not_supported(str(requested), cluster_name)
    requested = requested.strip()
    if current is not None and requested in (current, _minor_or_none(current)):
        return current
    m = _VERSION.match(requested)
    if m and m[3] is None:
        # With no patch under the ceiling, take the newest anyway: the skew check then answers
        # with AKS's "node pool newer than control plane" error rather than "not supported".
        patch = latest_patch(requested, ceiling=ceiling) or latest_patch(requested)
        if patch is not None:
            return patch
    elif m and is_offered(requested):
        return requested
    raise _error_not_supported(requested, cluster_name)


def check_pool(requested: str | None, control_plane: str, *, current: str | None = None) -> str:
    """The full version of a node pool: when not given, the one it runs (a new pool: the control
    plane's); an alias resolved to its latest patch not newer than the control plane; then checked
    against the skew rules, and against going backwards for a pool that exists."""
    if not requested:
        version = current or control_plane
    else:
        version = resolve(requested, current=current, ceiling=control_plane)
    if current is not None and version != current:
        validate_pool_upgrade(current, version, control_plane=control_plane)
    else:
        validate_pool_version(version, control_plane)
    return version


# -- changing a version ------------------------------------------------------------------------------

def control_plane_upgrades(current: str) -> list[str]:
    """Where a control plane at `current` may go: higher patches of its minor and every patch of
    the next minor, newest first (the order `az aks get-upgrades` shows)."""
    ck = key(current)
    nxt = f"{ck[0]}.{ck[1] + 1}"
    allowed = [p for p in patches() if key(p) > ck and minor_of(p) in (minor_of(current), nxt)]
    return sorted(allowed, key=key, reverse=True)


def pool_upgrades(current: str, control_plane: str) -> list[str]:
    """Where a node pool at `current` may go on its own: any higher version up to the control
    plane's (minors may be skipped), newest first."""
    return sorted((p for p in patches() if key(current) < key(p) <= key(control_plane)), key=key, reverse=True)


def validate_control_plane_upgrade(current: str, target: str, *, pool_versions: Iterable[str] = (),
                                   control_plane_only: bool = False) -> None:
    """Raise AKS's error unless the control plane may move from `current` to `target` (both full
    versions). With `control_plane_only`, the pools stay where they are and must remain within
    the skew of the new control plane."""
    ck, tk = key(current), key(target)
    if tk < ck:
        raise _error_control_plane("Downgrading", current, target)
    if tk[0] != ck[0] or tk[1] > ck[1] + 1:
        raise _error_control_plane("Upgrading", current, target)
    if control_plane_only:
        for pool in pool_versions:
            if _minor_number(pool) < tk[1] - POOL_SKEW:
                raise _error_pool_too_old(pool, target)


def validate_support_plan(version: str, *, support_plan: str, tier: str, cluster_name: str) -> None:
    """Raise AKS's error unless a cluster with this support plan and SKU tier may run `version`:
    an LTS-only minor needs `AKSLongTermSupport` on the Premium tier."""
    if support_plan not in SUPPORT_PLANS:
        raise invalid_parameter(f"The value of parameter supportPlan is invalid: '{support_plan}'. Allowed values "
                                f"are {', '.join(SUPPORT_PLANS)}.", "supportPlan")
    if minor_of(version) in LTS_ONLY and (support_plan != LTS or str(tier).lower() != "premium"):
        raise _error_lts_only(version, cluster_name)


def validate_pool_version(version: str, control_plane: str) -> None:
    """Raise AKS's error unless a pool may run `version` under a control plane at `control_plane`."""
    pk, ck = key(version), key(control_plane)
    if pk[0] != ck[0] or pk > ck:
        raise _error_pool_newer(version, control_plane)
    if pk[1] < ck[1] - POOL_SKEW:
        raise _error_pool_too_old(version, control_plane)


def validate_pool_upgrade(current: str, target: str, *, control_plane: str) -> None:
    """Raise AKS's error unless a pool may move from `current` to `target`."""
    if key(target) < key(current):
        raise _error_pool_downgrade(current, target)
    validate_pool_version(target, control_plane)


# -- response bodies ---------------------------------------------------------------------------------

def _upgrade_entries(versions: Iterable[str]) -> list[Body]:
    out = []
    for v in versions:
        entry: Body = {"kubernetesVersion": v}
        if is_preview(v):
            entry["isPreview"] = True
        out.append(entry)
    return out


def kubernetes_versions_response(location: str) -> Body:
    """`GET .../locations/{location}/kubernetesVersions` (shape of [SPEC] KubernetesVersions_List.json:
    `isDefault`/`isPreview` only when true, each patch with its upgrades oldest first). Every
    location offers the same versions."""
    del location  # lks offers the same catalog everywhere
    default_minor = minor_of(default_version())
    values = []
    for minor in minors():
        entry: Body = {"version": minor}
        if minor == default_minor:
            entry["isDefault"] = True
        if minor in PREVIEW:
            entry["isPreview"] = True
        entry["capabilities"] = {"supportPlan": [LTS] if minor in LTS_ONLY else list(SUPPORT_PLANS)}
        entry["patchVersions"] = {p: {"upgrades": sorted(control_plane_upgrades(p), key=key)}
                                  for p in CATALOG[minor]}
        values.append(entry)
    return {"values": values}


def upgrade_profile(cluster_version: str, pools: Iterable[tuple[str, str, str]], *,
                    resource_id: str | None = None) -> Body:
    """`GET .../managedClusters/{name}/upgradeProfiles/default` ([SPEC] ManagedClustersGetUpgradeProfile.json).

    `pools` are (name, currentOrchestratorVersion, osType). A pool's upgrades are where a full
    cluster upgrade or a pool upgrade could take it: up to the control plane's version, or to
    any of the control plane's own targets.
    """
    cp_targets = control_plane_upgrades(cluster_version)
    pool_profiles = []
    for name, version, os_type in pools:
        targets = {p for p in pool_upgrades(version, cluster_version)}
        targets.update(t for t in cp_targets if key(t) > key(version))
        pool_profiles.append({"kubernetesVersion": version, "name": name, "osType": os_type,
                              "upgrades": _upgrade_entries(sorted(targets, key=key, reverse=True))})
    body: Body = {}
    if resource_id:
        body["id"] = f"{resource_id}/upgradeprofiles/default"
    body["name"] = "default"
    body["type"] = "Microsoft.ContainerService/managedClusters/upgradeprofiles"
    body["properties"] = {
        "controlPlaneProfile": {"kubernetesVersion": cluster_version, "name": "master", "osType": "Linux",
                                "upgrades": _upgrade_entries(cp_targets)},
        "agentPoolProfiles": pool_profiles,
    }
    return body


def agent_pool_upgrade_profile(pool_version: str, cluster_version: str, os_type: str = "Linux", *,
                               latest_node_image_version: str | None = None,
                               recently_used: list[Body] | None = None,
                               resource_id: str | None = None) -> Body:
    """`GET .../agentPools/{pool}/upgradeProfiles/default` ([SPEC] AgentPoolsGetUpgradeProfile.json):
    the versions the pool may move to on its own, newest first, and the pairs it may roll back to
    (`recentlyUsedVersions`, when it has any)."""
    props: Body = {"kubernetesVersion": pool_version, "osType": os_type,
                   "upgrades": _upgrade_entries(pool_upgrades(pool_version, cluster_version))}
    if recently_used:
        props["recentlyUsedVersions"] = recently_used
    if latest_node_image_version:
        props["latestNodeImageVersion"] = latest_node_image_version
    body: Body = {}
    if resource_id:
        body["id"] = f"{resource_id}/upgradeProfiles/default"
    body.update(name="default", type="Microsoft.ContainerService/managedClusters/agentPools/upgradeProfiles",
                properties=props)
    return body


def available_agent_pool_versions(cluster_version: str | None = None, *, resource_id: str | None = None) -> Body:
    """`GET .../managedClusters/{name}/availableAgentPoolVersions`
    ([SPEC] AgentPoolsGetAgentPoolAvailableVersions.json): the versions a new pool may run, oldest
    first, `default` on the one it gets when none is asked for. Given the cluster's version, only
    those within the skew window and not newer than it, defaulting to the cluster's version."""
    if cluster_version is None:
        offered, default = patches(), default_version()
    else:
        lowest = _minor_number(cluster_version) - POOL_SKEW
        offered = [p for p in patches() if key(p) <= key(cluster_version) and _minor_number(p) >= lowest]
        default = cluster_version
    entries = []
    for v in offered:
        entry: Body = {}
        if v == default:
            entry["default"] = True
        entry["kubernetesVersion"] = v
        if is_preview(v):
            entry["isPreview"] = True
        entries.append(entry)
    body: Body = {}
    if resource_id:
        body["id"] = f"{resource_id}/availableagentpoolversions"
    body.update(name="default", type="Microsoft.ContainerService/managedClusters/availableAgentpoolVersions",
                properties={"agentPoolVersions": entries})
    return body
