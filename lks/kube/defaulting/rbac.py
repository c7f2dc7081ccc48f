"""Defaults of rbac.authorization.k8s.io/v1 (`pkg/apis/rbac/v1/defaults.go`): bindings name the
RBAC group for their role and for User and Group subjects, which live in it."""

from __future__ import annotations

from lks.kube.defaulting._json import Obj, children, default_zero, struct

GROUP = "rbac.authorization.k8s.io"
_IN_GROUP = frozenset(("User", "Group"))


def binding(obj: Obj) -> None:
    """RoleBinding and ClusterRoleBinding."""
    default_zero(struct(obj, "roleRef"), "apiGroup", GROUP)
    for subject in children(obj, "subjects"):
        # a ServiceAccount subject's group is the core group, i.e. stays ""
        if subject.get("kind") in _IN_GROUP:
            default_zero(subject, "apiGroup", GROUP)


DEFAULTERS = {
    (GROUP, "v1", "RoleBinding"): binding,
    (GROUP, "v1", "ClusterRoleBinding"): binding,
}
