"""RBAC rules of upstream's `pkg/apis/rbac/validation/validation.go`: a Role's rules, a
ClusterRole's aggregationRule, and a binding's roleRef (required, and immutable on update) and
subjects.
"""

from __future__ import annotations

from lks.kube import validation
from lks.kube.errors import Cause
from lks.kube.typevalidation import field
from lks.kube.typevalidation.common import items, label_selector, mapping

GROUP = "rbac.authorization.k8s.io"


def validate_role(obj: dict, *, namespaced: bool) -> list[Cause]:
    """`ValidatePolicyRule` for each rule of a Role or ClusterRole."""
    causes: list[Cause] = []
    for i, rule in enumerate(items(obj, "rules")):
        p = f"rules[{i}]"
        if not items(rule, "verbs"):
            causes.append(field.required(f"{p}.verbs", "verbs must contain at least one value"))
        urls = items(rule, "nonResourceURLs")
        if urls:
            if namespaced:
                causes.append(field.invalid(f"{p}.nonResourceURLs", urls,
                                            "namespaced rules cannot apply to non-resource URLs"))
            if items(rule, "apiGroups") or items(rule, "resources") or items(rule, "resourceNames"):
                causes.append(field.invalid(f"{p}.nonResourceURLs", urls,
                                            "rules cannot apply to both regular resources and non-resource URLs"))
            continue
        if not items(rule, "apiGroups"):
            causes.append(field.required(f"{p}.apiGroups", "resource rules must supply at least one api group"))
        if not items(rule, "resources"):
            causes.append(field.required(f"{p}.resources", "resource rules must supply at least one resource"))
    aggregation = obj.get("aggregationRule")
    if not namespaced and isinstance(aggregation, dict):
        selectors = items(aggregation, "clusterRoleSelectors")
        if not selectors:
            causes.append(field.required("aggregationRule.clusterRoleSelectors",
                                         "at least one clusterRoleSelector required if aggregationRule is non-nil"))
        for i, selector in enumerate(selectors):
            p = f"aggregationRule.clusterRoleSelectors[{i}]"
            found = label_selector(selector, p)
            if found:  # upstream converts it too, which fails the same way: one more cause, on the whole
                found.append(field.invalid(p, "null", "invalid label selector."))  # Go prints a nil value as "null"
            causes += found
    return causes


def _role_ref_value(ref: dict) -> field.GoStruct:
    """An internal `rbac.RoleRef` as Go's JSON shows it (no JSON tags)."""
    return field.GoStruct(APIGroup=ref.get("apiGroup", ""), Kind=ref.get("kind", ""), Name=ref.get("name", ""))


def validate_binding(obj: dict, *, namespaced: bool) -> list[Cause]:
    """`ValidateRoleBinding` / `ValidateClusterRoleBinding`."""
    ref = mapping(obj, "roleRef")
    causes: list[Cause] = []
    if ref.get("apiGroup", "") != GROUP:
        causes.append(field.not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), [GROUP]))
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if ref.get("kind", "") not in kinds:
        causes.append(field.not_supported("roleRef.kind", ref.get("kind", ""), kinds))
    name = ref.get("name") or ""
    if not name:
        causes.append(field.required("roleRef.name"))
    else:
        causes += [field.invalid("roleRef.name", name, m) for m in validation.path_segment(name)]
    for i, subject in enumerate(items(obj, "subjects")):
        causes += _subject(subject if isinstance(subject, dict) else {}, namespaced, f"subjects[{i}]")
    return causes


def _subject(subject: dict, namespaced: bool, path: str) -> list[Cause]:
    name, kind = subject.get("name") or "", subject.get("kind") or ""
    group = subject.get("apiGroup", GROUP if kind in ("User", "Group") else "")  # defaulted by rbac/v1
    causes = [] if name else [field.required(f"{path}.name")]
    if kind == "ServiceAccount":
        if name:
            causes += [field.invalid(f"{path}.name", name, m) for m in validation.dns_subdomain(name)]
        if group:
            causes.append(field.not_supported(f"{path}.apiGroup", group, [""]))
        if not namespaced and not subject.get("namespace"):
            causes.append(field.required(f"{path}.namespace"))
    elif kind in ("User", "Group"):
        if group != GROUP:
            causes.append(field.not_supported(f"{path}.apiGroup", group, [GROUP]))
    else:
        causes.append(field.not_supported(f"{path}.kind", kind, ["ServiceAccount", "User", "Group"]))
    return causes


def validate_binding_update(new: dict, old: dict, *, namespaced: bool) -> list[Cause]:
    causes = validate_binding(new, namespaced=namespaced)
    ref, old_ref = mapping(new, "roleRef"), mapping(old, "roleRef")
    if _role_ref_value(ref) != _role_ref_value(old_ref):
        causes.append(field.invalid("roleRef", _role_ref_value(ref), "cannot change roleRef"))
    return causes


