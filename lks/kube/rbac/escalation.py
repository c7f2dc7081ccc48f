"""Escalation prevention, as upstream's `pkg/registry/rbac/*/policybased` storage: a user may
write a Role or ClusterRole only with rules they hold themselves (or with the `escalate` verb
on it), and a binding only to a role they may `bind` or whose every permission they hold. An
aggregationRule gathers anything, so setting one needs cluster-admin's powers. Members of
`system:masters` and the service's own writes pass. `lks.kube.admission.rbacescalation` calls
`check` for every write of the four RBAC resources.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lks.kube import authz, errors
from lks.kube.authn import MASTERS, User
from lks.kube.rbac import rules
from lks.kube.rbac.index import GROUP, PolicyIndex, aggregate

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster

Obj = dict[str, Any]
FULL_AUTHORITY = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, {"verbs": ["*"], "nonResourceURLs": ["*"]}]
_GC_FIELDS = ("ownerReferences", "finalizers", "managedFields", "resourceVersion", "generation")


async def check(cluster: Cluster, index: PolicyIndex, resource: str, obj: Obj, old: Obj | None, user: User) -> None:
    """Raise upstream's 403 if writing `obj` (replacing `old`) would escalate `user`'s rights."""
    if MASTERS in user.groups or (old is not None and _only_gc_fields(obj, old)):
        return
    meta = obj["metadata"]
    name, namespace = meta.get("name") or "", meta.get("namespace") or ""
    if resource in ("roles", "clusterroles"):
        escalate = authz.Attributes(user, "escalate", True, namespace, GROUP, "v1", resource, "", name)
        if await cluster.authorizer.allowed(escalate):
            return
        _confirm(index, user, namespace, obj.get("rules") or [], resource, name)
        if resource == "clusterroles" and obj.get("aggregationRule"):
            try:
                _confirm(index, user, namespace, FULL_AUTHORITY, resource, name)
            except errors.APIError:
                raise errors.forbidden(resource, GROUP, name,
                                       "must have cluster-admin privileges to use the aggregationRule") from None
        return
    ref = obj.get("roleRef") or {}
    kind = ref.get("kind")
    if kind not in ("Role", "ClusterRole"):
        return  # validation refuses it
    bind = authz.Attributes(user, "bind", True, namespace, ref.get("apiGroup", ""), "v1",
                            "roles" if kind == "Role" else "clusterroles", "", ref.get("name", ""))
    if await cluster.authorizer.allowed(bind):
        return
    found = (index.cluster_roles.get(ref.get("name", "")) if kind == "ClusterRole"
             else index.roles.get((namespace, ref.get("name", ""))))
    if found is None:
        what = "clusterrole" if kind == "ClusterRole" else "role"
        raise errors.forbidden(resource, GROUP, name, f'{what}.{GROUP} "{ref.get("name", "")}" not found')
    _confirm(index, user, namespace, [r.raw for r in found], resource, name)


def _confirm(index: PolicyIndex, user: User, namespace: str, wanted: list[Obj], resource: str, name: str) -> None:
    """Upstream's ConfirmNoEscalation: every rule of `wanted` covered by the user's own."""
    owned, missing_roles = index.rules_for(user, namespace)
    missing = rules.uncovered(owned, wanted)
    if not missing:
        return
    described = sorted({rules.describe(r) for r in _compact(missing)})
    groups = " ".join(f'"{g}"' for g in user.groups)
    msg = (f'user "{user.name}" (groups=[{groups}]) is attempting to grant RBAC permissions not currently held:\n'
           + "\n".join(described))
    if missing_roles:
        msg += f"; resolution errors: [{aggregate(missing_roles)}]"
    raise errors.forbidden(resource, GROUP, name, msg)


def _compact(found: list[Obj]) -> list[Obj]:
    """Upstream's CompactRules: rules of one group and one resource (and at most one name)
    merged, their verbs joined."""
    out: list[Obj] = []
    simple: dict[tuple[str, str, str | None], Obj] = {}
    for rule in found:
        names = rule.get("resourceNames") or []
        if (rule.get("nonResourceURLs") or len(names) > 1 or len(rule.get("apiGroups") or []) != 1
                or len(rule.get("resources") or []) != 1):
            out.append(rule)
            continue
        key = (rule["apiGroups"][0], rule["resources"][0], names[0] if names else None)
        if key in simple:
            simple[key]["verbs"] = simple[key]["verbs"] + list(rule.get("verbs") or [])
        else:
            simple[key] = {**rule, "verbs": list(rule.get("verbs") or [])}
    return out + list(simple.values())


def _only_gc_fields(obj: Obj, old: Obj) -> bool:
    """Upstream's IsOnlyMutatingGCFields: nothing but owners and finalizers changed."""
    def strip(o: Obj) -> Obj:
        return {**o, "metadata": {k: v for k, v in o["metadata"].items() if k not in _GC_FIELDS}}
    return strip(obj) == strip(old)
