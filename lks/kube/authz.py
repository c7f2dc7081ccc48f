"""May this user do this (authorization), as kube-apiserver decides it: the request's attributes
(user, verb, namespace, API group, resource, subresource, name; or a non-resource path) go to a
chain of authorizers, the first that allows or denies decides, and nobody's opinion is a no.

The chain is upstream's: members of `system:masters` first (allowed everything, before any
authorizer runs), then the authorizers registered with `@authorizer` (the Node authorizer, RBAC)
in registration order. Each cluster gets its own instances (`for_cluster`); they also answer
which rules a user has in a namespace (SelfSubjectRulesReview, `kubectl auth can-i --list`).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from lks.kube import audit, cel, errors, selectors
from lks.kube.authn import ANONYMOUS_USER, MASTERS, User, service_account_user

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.kube.http.requestinfo import RequestInfo

ALLOW, DENY, NO_OPINION = "Allow", "Deny", "NoOpinion"

# the packages whose modules register authorizers (imported once, on the first cluster)
_PACKAGES = ("lks.kube.rbac",)


@dataclass(frozen=True, slots=True)
class Attributes:
    user: User
    verb: str
    resource_request: bool = True
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""  # of a non-resource request, from the cluster's root: "/healthz"
    # a list, watch or deletecollection's selectors, parsed (upstream's GetFieldSelector and
    # GetLabelSelector, KEP-4601); empty when it sent none or one that does not parse
    field_selector: tuple[selectors.FieldRequirement, ...] = ()
    label_selector: tuple[selectors.Requirement, ...] = ()


@dataclass
class Rules:
    """What a user may do in a namespace, in SelfSubjectRulesReview's shape."""

    resource_rules: list[dict[str, Any]] = field(default_factory=list)  # verbs, apiGroups, resources, resourceNames
    non_resource_rules: list[dict[str, Any]] = field(default_factory=list)  # verbs, nonResourceURLs
    incomplete: bool = False
    evaluation_error: str = ""


class Authorizer(Protocol):
    def __init__(self, cluster: Cluster) -> None: ...

    async def authorize(self, attrs: Attributes) -> tuple[str, str]:
        """(ALLOW | DENY | NO_OPINION, reason)."""

    async def rules_for(self, user: User, namespace: str) -> Rules:
        """Every rule that applies to `user` in `namespace` (cluster-wide ones included)."""


_AUTHORIZERS: list[type] = []


def authorizer(cls: type) -> type:
    _AUTHORIZERS.append(cls)
    return cls


class Chain:
    """A cluster's authorizers in order (upstream's union authorizer)."""

    def __init__(self, members: list[Authorizer]):
        self.members = members

    async def authorize(self, attrs: Attributes) -> tuple[str, str]:
        if MASTERS in attrs.user.groups:
            return ALLOW, ""
        if not self.members:  # no authorizer configured: upstream's AlwaysAllow, for the authenticated
            return (NO_OPINION, "") if attrs.user.anonymous else (ALLOW, "")
        reasons = []
        for member in self.members:
            decision, reason = await member.authorize(attrs)
            if decision != NO_OPINION:
                return decision, reason
            if reason:
                reasons.append(reason)
        return NO_OPINION, "; ".join(reasons)

    async def allowed(self, attrs: Attributes) -> bool:
        return (await self.authorize(attrs))[0] == ALLOW

    async def rules_for(self, user: User, namespace: str) -> Rules:
        if MASTERS in user.groups or not self.members:
            return Rules([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                         [{"verbs": ["*"], "nonResourceURLs": ["*"]}])
        out = Rules()
        for member in self.members:
            rules = await member.rules_for(user, namespace)
            out.resource_rules += rules.resource_rules
            out.non_resource_rules += rules.non_resource_rules
            out.incomplete = out.incomplete or rules.incomplete
            if rules.evaluation_error:
                out.evaluation_error = "; ".join(filter(None, (out.evaluation_error, rules.evaluation_error)))
        return out


def for_cluster(cluster: Cluster) -> Chain:
    for name in _PACKAGES:
        try:
            package = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:
                raise
            continue
        for sub in getattr(package, "MODULES", ()):
            importlib.import_module(f"{name}.{sub}")
    return Chain([cls(cluster) for cls in _AUTHORIZERS])


def attributes(user: User, info: RequestInfo, query: Mapping[str, str]) -> Attributes:
    """The attributes of a request (upstream's GetAuthorizerAttributes)."""
    if not info.is_resource:
        return Attributes(user, info.verb, False, path=info.path)
    name = info.name
    if not name and info.verb in ("list", "watch"):
        # a list or watch narrowed to one name by a field selector is authorized for that name
        for term in (query.get("fieldSelector") or "").split(","):
            key, sep, value = term.partition("=")
            if sep and key.strip() == "metadata.name" and value and not value.startswith("="):
                name = value.strip().lstrip("=")
    fields: tuple[selectors.FieldRequirement, ...] = ()
    labels: tuple[selectors.Requirement, ...] = ()
    if info.verb in ("list", "watch", "deletecollection"):
        fields, labels = _selectors(query)
    return Attributes(user, info.verb, True, info.namespace or "", info.group, info.version, info.resource,
                      info.subresource, name, field_selector=fields, label_selector=labels)


def _selectors(query: Mapping[str, str]) -> tuple[tuple[selectors.FieldRequirement, ...],
                                                  tuple[selectors.Requirement, ...]]:
    """A request's selectors as authorizers see them: any field parses here (the resource's
    own checks answer later), and one that does not parse is left out, as upstream keeps only
    the parsing error, which the authorizers that ask treat as no selector."""
    fields: tuple[selectors.FieldRequirement, ...] = ()
    labels: tuple[selectors.Requirement, ...] = ()
    if text := query.get("fieldSelector"):
        try:
            fields = tuple(selectors.parse_fields(text, lambda _: True).requirements)
        except errors.APIError:
            pass
    if text := query.get("labelSelector"):
        try:
            labels = tuple(selectors.parse_labels(text).requirements)
        except errors.APIError:
            pass
    return fields, labels


def forbidden(attrs: Attributes, reason: str = "") -> errors.APIError:
    """403 in upstream's words: `pods "x" is forbidden: User "jane" cannot get resource "pods"
    in API group "" in the namespace "default"`."""
    who = attrs.user.name
    if not attrs.resource_request:
        msg = f'User "{who}" cannot {attrs.verb} path "{attrs.path}"'
    else:
        resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
        msg = f'User "{who}" cannot {attrs.verb} resource "{resource}" in API group "{attrs.api_group}" {where}'
    if reason:
        msg = f"{msg}: {reason}"
    if not attrs.resource_request or not attrs.resource:
        return errors.APIError(403, "Forbidden", f"forbidden: {msg}", details={})
    qualified = errors.qualified(attrs.resource, attrs.api_group)
    details: dict[str, Any] = {}
    if attrs.name:
        details["name"] = attrs.name
    if attrs.api_group:
        details["group"] = attrs.api_group
    details["kind"] = attrs.resource
    subject = f'{qualified} "{attrs.name}"' if attrs.name else qualified
    return errors.APIError(403, "Forbidden", f"{subject} is forbidden: {msg}", details=details)


async def check(cluster: Cluster, attrs: Attributes) -> None:
    """Raise upstream's answer unless `attrs` is allowed: 403, or 401 for a request that brought
    no credentials (one impersonating system:anonymous gets the 403)."""
    decision, reason = await cluster.authorizer.authorize(attrs)
    audit.authorized(decision == ALLOW, reason)
    if decision == ALLOW:
        return
    if attrs.user is ANONYMOUS_USER:
        raise errors.unauthorized()
    raise forbidden(attrs, reason)


async def cel_check(cluster: Cluster, user: User, check: cel.Check) -> cel.Decision:
    """An `authorizer` check of a CEL expression (policies, webhook match conditions), for `user`
    or the service account the expression named, answered by the cluster's chain."""
    if check.service_account:
        user = service_account_user(*check.service_account)
    if check.resource_request:
        attrs = Attributes(user, check.verb, True, check.namespace, check.group, "*", check.resource,
                           check.subresource, check.name)
    else:
        attrs = Attributes(user, check.verb, False, path=check.path)
    decision, reason = await cluster.authorizer.authorize(attrs)
    return cel.Decision(decision, reason)
