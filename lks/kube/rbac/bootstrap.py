"""The bootstrap policy reconciled at every start, as kube-apiserver's `rbac/bootstrap-roles`
post-start hook does: missing roles and bindings are created; existing ones whose
`rbac.authorization.kubernetes.io/autoupdate` annotation is not "false" get the rules,
aggregation selectors, subjects, labels and annotations they lack (nothing is removed); a
binding whose roleRef changed is recreated. One cache list per type, writes only for what
differs, so a restart of an up-to-date cluster writes nothing.
"""

from __future__ import annotations

import asyncio
import copy
import functools
from typing import TYPE_CHECKING, Any

from lks.kube import deletion, errors
from lks.kube.rbac import policy, rules

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.kube.registry import Registry

GROUP = "rbac.authorization.k8s.io"
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
BOOTSTRAPPING = {"kubernetes.io/bootstrapping": "rbac-defaults"}
Obj = dict[str, Any]


def _meta(name: str, namespace: str = "", labels: dict[str, str] | None = None) -> Obj:
    meta: Obj = {"name": name, "labels": {**BOOTSTRAPPING, **(labels or {})}, "annotations": {AUTOUPDATE: "true"}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _role(kind: str, name: str, rule_list: list[Obj], namespace: str = "") -> Obj:
    obj: Obj = {"apiVersion": f"{GROUP}/v1", "kind": kind,
                "metadata": _meta(name, namespace, policy.AGGREGATE_LABELS.get(name))}
    label = policy.AGGREGATED.get(name)
    if label:
        obj["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]}
    else:
        obj["rules"] = copy.deepcopy(rule_list)
    return obj


def _binding(kind: str, name: str, role_kind: str, role: str, subjects: list[Obj], namespace: str = "") -> Obj:
    obj: Obj = {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": _meta(name, namespace),
                "roleRef": {"apiGroup": GROUP, "kind": role_kind, "name": role}}
    if subjects:
        obj["subjects"] = copy.deepcopy(subjects)
    return obj


@functools.cache
def desired() -> dict[str, list[Obj]]:
    """The bootstrap objects by resource (built once; callers copy before writing)."""
    controllers = {f"system:controller:{n}": r for n, r in policy.CONTROLLER_ROLES.items()}
    return {
        "clusterroles": [_role("ClusterRole", n, r) for n, r in {**policy.CLUSTER_ROLES, **controllers}.items()],
        "clusterrolebindings": [
            *(_binding("ClusterRoleBinding", n, "ClusterRole", role, subjects)
              for n, (role, subjects) in policy.CLUSTER_ROLE_BINDINGS.items()),
            *(_binding("ClusterRoleBinding", f"system:controller:{n}", "ClusterRole", f"system:controller:{n}",
                       [{"kind": "ServiceAccount", "name": n, "namespace": "kube-system"}])
              for n in policy.CONTROLLER_ROLES)],
        "roles": [_role("Role", n, r, ns) for (ns, n), r in policy.NAMESPACE_ROLES.items()],
        "rolebindings": [_binding("RoleBinding", n, "Role", role, subjects, ns)
                         for (ns, n), (role, subjects) in policy.NAMESPACE_ROLE_BINDINGS.items()],
    }


async def reconcile(cluster: Cluster) -> None:
    for resource in ("clusterroles", "clusterrolebindings", "roles", "rolebindings"):
        reg = cluster.registry(GROUP, "v1", resource)
        cache = await reg.cache()
        # concurrently, so that a new cluster's ~140 creates share the store's group commits
        await asyncio.gather(*(
            _reconcile_one(reg, resource, want, cache.objects.get(reg.key(want["metadata"].get("namespace"),
                                                                          want["metadata"]["name"])))
            for want in desired()[resource]))


async def _reconcile_one(reg: Registry, resource: str, want: Obj, have: Obj | None) -> None:
    meta = want["metadata"]
    namespace = meta.get("namespace")
    if have is None:
        try:
            await reg.create(namespace, copy.deepcopy(want))
        except errors.APIError as err:
            if err.code != 409:
                raise
        return
    if (have["metadata"].get("annotations") or {}).get(AUTOUPDATE) == "false":
        return  # protected: the user owns it now
    if resource.endswith("bindings") and have.get("roleRef") != want["roleRef"]:
        await reg.delete(namespace, meta["name"], deletion.DeleteOptions())
        await reg.create(namespace, copy.deepcopy(want))
        return
    merged = None if _same(want, have) else _merged(resource, want, have)
    if merged is not None:
        try:
            await reg.update(namespace, meta["name"], merged)
        except errors.APIError as err:
            if err.code != 409:  # someone else wrote it meanwhile: next start catches up
                raise


def _same(want: Obj, have: Obj) -> bool:
    """The common case, checked cheaply: `have` is exactly what bootstrap made."""
    meta, wmeta = have["metadata"], want["metadata"]
    for key in ("labels", "annotations"):
        mine = meta.get(key) or {}
        if any(mine.get(k) != v for k, v in wmeta[key].items()):
            return False
    return all(have.get(k) == want.get(k) for k in ("rules", "aggregationRule", "subjects") if k in want)


def _merged(resource: str, want: Obj, have: Obj) -> Obj | None:
    """`have` with what `want` adds, or None when it lacks nothing (upstream's
    computeReconciledRole / computeReconciledRoleBinding without removals)."""
    out = copy.deepcopy(have)
    meta, wmeta = out["metadata"], want["metadata"]
    changed = False
    for key in ("labels", "annotations"):
        merged = {**wmeta.get(key, {}), **(meta.get(key) or {})}
        if merged != (meta.get(key) or {}):
            meta[key], changed = merged, True
    if resource.endswith("bindings"):
        subjects = out.get("subjects") or []
        missing = [s for s in want.get("subjects", ()) if not any(_same_subject(s, h) for h in subjects)]
        if missing:
            out["subjects"], changed = subjects + missing, True
        return out if changed else None
    if "aggregationRule" in want:
        selectors = (out.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
        extra = [s for s in want["aggregationRule"]["clusterRoleSelectors"] if s not in selectors]
        if extra:
            out["aggregationRule"], changed = {"clusterRoleSelectors": selectors + extra}, True
    missing_rules = rules.uncovered(out.get("rules") or [], want.get("rules") or [])
    if missing_rules:
        out["rules"], changed = (out.get("rules") or []) + missing_rules, True
    return out if changed else None


def _same_subject(a: Obj, b: Obj) -> bool:
    return all(a.get(k, "") == b.get(k, "") for k in ("kind", "name", "namespace"))
