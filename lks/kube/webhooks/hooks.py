"""Webhook configurations compiled for matching, as upstream's `webhook/predicates` and
`generic.Webhook.ShouldCallHook`: a request calls a webhook when its namespaceSelector and
objectSelector admit it and one of its rules names the request's operation, group, version,
resource/subresource and scope, or, with matchPolicy Equivalent (the default), the same
resource served in another version or group (`deployments` in apps/v1 for one reached through
another version: the webhook then sees the object converted to the version its rule names).

A configuration is compiled once per resourceVersion (`compile`); what the review needs to
call a webhook (its `Target`) is built by `lks.kube.webhooks.targets`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lks.kube import selectors
from lks.kube.webhooks import conditions

if TYPE_CHECKING:
    from lks.kube.authn import User
    from lks.kube.catalog import Catalog, ResourceType
    from lks.kube.scale import ScalePaths

Obj = dict[str, Any]

GROUP = "admissionregistration.k8s.io"
# upstream's IsExemptAdmissionConfigurationResource: webhooks never see these, so a webhook
# cannot lock itself (or the admins mending it) out
EXEMPT_KINDS = frozenset({"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
                          "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
                          "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"})
DEFAULT_TIMEOUT = 10


@dataclass(frozen=True, slots=True)
class Rule:
    operations: frozenset[str]
    groups: frozenset[str]
    versions: frozenset[str]
    resources: tuple[tuple[str, str], ...]  # (resource, subresource), either may be "*"
    scope: str

    def matches(self, operation: str, group: str, version: str, resource: str, subresource: str,
                namespaced: bool) -> bool:
        """`rules.Matcher.Matches`: scope, operation, group, version, resource."""
        if self.scope == "Namespaced" and not namespaced:
            return False
        if self.scope == "Cluster" and namespaced:
            return False
        if "*" not in self.operations and operation not in self.operations:
            return False
        if "*" not in self.groups and group not in self.groups:
            return False
        if "*" not in self.versions and version not in self.versions:
            return False
        return any((r == "*" or r == resource) and (s == "*" or s == subresource) for r, s in self.resources)


@dataclass(slots=True)
class Hook:
    """One webhook of a configuration, as the dispatcher needs it."""

    configuration: str
    uid: str  # configuration uid and index: the connection pool and reinvocation key
    name: str
    mutating: bool
    rules: tuple[Rule, ...]
    equivalent: bool  # matchPolicy Equivalent
    namespace_selector: selectors.LabelSelector
    object_selector: selectors.LabelSelector
    fail_open: bool  # failurePolicy Ignore
    side_effects: str
    timeout: int
    review_versions: tuple[str, ...]
    reinvoke: bool  # reinvocationPolicy IfNeeded
    client_config: Obj
    match_conditions: tuple[conditions.Condition, ...] = ()


@dataclass(slots=True)
class Request:
    """What admission knows of a request (upstream's admission.Attributes)."""

    operation: str  # CREATE | UPDATE | DELETE | CONNECT
    rt: ResourceType  # the resource as the request named it
    subresource: str
    namespace: str
    name: str
    obj: Obj | None  # in the stored version
    old: Obj | None
    user: User | None
    dry_run: bool
    options: Obj | None  # None for a CONNECT
    namespace_labels: dict[str, str] = field(default_factory=dict)  # the labels of `namespace`
    # a write through `scale`: obj and old are the autoscaling/v1 Scale views of the object,
    # as upstream sends them, read and written back through these paths
    scale: ScalePaths | None = None


@dataclass(frozen=True, slots=True)
class Invocation:
    hook: Hook
    rt: ResourceType  # the resource as the matching rule names it (the request's or an equivalent)
    kind: tuple[str, str, str]  # (group, version, kind) the webhook sees


def compile(config: Obj, *, mutating: bool) -> list[Hook]:
    """The webhooks of a stored configuration (upstream's defaults where a field is unset)."""
    meta = config.get("metadata") or {}
    hooks = []
    for i, h in enumerate(config.get("webhooks") or []):
        rules = tuple(Rule(
            operations=frozenset(r.get("operations") or ()), groups=frozenset(r.get("apiGroups") or ()),
            versions=frozenset(r.get("apiVersions") or ()),
            resources=tuple((res.partition("/")[0], res.partition("/")[2]) for res in r.get("resources") or ()),
            scope=r.get("scope") or "*") for r in h.get("rules") or ())
        timeout = h.get("timeoutSeconds")
        hooks.append(Hook(
            configuration=meta.get("name") or "", uid=f"{meta.get('uid', '')}/{i}", name=h.get("name") or "",
            mutating=mutating, rules=rules, equivalent=(h.get("matchPolicy") or "Equivalent") == "Equivalent",
            namespace_selector=selectors.from_label_selector_object(h.get("namespaceSelector")),
            object_selector=selectors.from_label_selector_object(h.get("objectSelector")),
            fail_open=h.get("failurePolicy") == "Ignore", side_effects=h.get("sideEffects") or "",
            timeout=timeout if isinstance(timeout, int) and timeout > 0 else DEFAULT_TIMEOUT,
            review_versions=tuple(h.get("admissionReviewVersions") or ()),
            reinvoke=mutating and h.get("reinvocationPolicy") == "IfNeeded",
            client_config=h.get("clientConfig") or {},
            match_conditions=conditions.compile(h.get("matchConditions") or [])))
    return hooks


def exempt(rt: ResourceType) -> bool:
    return rt.group == GROUP and rt.kind in EXEMPT_KINDS


def _labels(obj: Obj | None) -> dict[str, str] | None:
    return None if obj is None else (obj.get("metadata") or {}).get("labels") or {}


def invocation(hook: Hook, req: Request, catalog: Catalog) -> Invocation | None:
    """`ShouldCallHook` (match conditions aside): the invocation, or None when it does not apply."""
    rt = req.rt
    is_namespace = rt.group == "" and rt.resource == "namespaces"
    if hook.namespace_selector and (req.namespace or is_namespace):
        # a Namespace's own write is matched by its own labels; other cluster-scoped objects
        # are never exempted by a namespaceSelector
        if is_namespace and not req.subresource and req.operation in ("CREATE", "UPDATE"):
            labels = _labels(req.obj) or {}
        else:
            labels = req.namespace_labels
        if not hook.namespace_selector.matches(labels):
            return None
    if hook.object_selector:
        new, old = _labels(req.obj), _labels(req.old)
        if not ((new is not None and hook.object_selector.matches(new))
                or (old is not None and hook.object_selector.matches(old))):
            return None
    namespaced = bool(req.namespace) and not is_namespace
    for rule in hook.rules:
        if rule.matches(req.operation, rt.group, rt.version, rt.resource, req.subresource, namespaced):
            return Invocation(hook, rt, _kind(rt, req.subresource))
    if hook.equivalent:
        others = equivalents(catalog, rt, req.subresource)
        for rule in hook.rules:  # earlier rules first
            for other in others:
                if rule.matches(req.operation, other.group, other.version, other.resource, req.subresource,
                                namespaced):
                    return Invocation(hook, other, _kind(other, req.subresource))
    return None


def _kind(rt: ResourceType, subresource: str) -> tuple[str, str, str]:
    sub = rt.subresources.get(subresource) if subresource else None
    if sub is not None and sub.kind != rt.kind:  # eviction, binding: a body of its own
        return sub.group, sub.version, sub.kind
    return rt.group, rt.version, rt.kind


def equivalents(catalog: Catalog, rt: ResourceType, subresource: str) -> list[ResourceType]:
    """The other resources kept in the same storage (upstream's EquivalentResourceMapper)."""
    memo = catalog.memo.setdefault("webhook-equivalents", {})
    assert isinstance(memo, dict)
    key = (rt.group, rt.version, rt.resource, subresource)
    found = memo.get(key)
    if found is None:
        found = [o for o in catalog.all() if o.storage_prefix and o.storage_prefix == rt.storage_prefix
                 and (o.group, o.version, o.resource) != (rt.group, rt.version, rt.resource)
                 and (not subresource or subresource in o.subresources)]
        memo[key] = found
    return found
