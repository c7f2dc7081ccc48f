"""Access reviews (authorization.k8s.io/v1): may a subject do this? `SelfSubjectAccessReview`
asks for the caller (`kubectl auth can-i`), `SubjectAccessReview` for any user, groups, uid and
extra, `LocalSubjectAccessReview` the same within the namespace it is posted to. The answer is
the cluster's authorizer chain's (`lks.kube.authz`): allowed, denied, its reason, and the error
of an authorizer that failed. Nothing is stored (upstream's `pkg/registry/authorization/*`).

Bodies are decoded by `reviewbody`; the rules review (`kubectl auth can-i --list`) lives in
`rulesreview`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from lks.kube import authz, errors, selectors
from lks.kube.authn import User
from lks.kube.subresources import reviewbody, virtual
from lks.kube.typevalidation import field

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.kube.registry import WriteOptions

log = logging.getLogger(__name__)

Obj = dict[str, Any]
GROUP = "authorization.k8s.io"


@virtual(GROUP, "selfsubjectaccessreviews")
async def self_subject(cluster: Cluster, _namespace: str | None, body: Any, opts: WriteOptions) -> tuple[int, Obj]:
    review = reviewbody.decode(cluster, GROUP, "selfsubjectaccessreviews", None, body, opts)
    spec = review.setdefault("spec", {})
    causes = _attribute_causes(spec) + _meta_causes(review["metadata"])
    if causes:
        raise invalid(causes)
    if opts.user is None:  # only the service itself writes without a user, and it never asks
        raise errors.bad_request("no user present on request")
    review["status"] = await _decide(cluster, _attributes(opts.user, spec), spec)
    return 201, review


@virtual(GROUP, "subjectaccessreviews")
async def subject(cluster: Cluster, _namespace: str | None, body: Any, opts: WriteOptions) -> tuple[int, Obj]:
    review = reviewbody.decode(cluster, GROUP, "subjectaccessreviews", None, body, opts)
    spec = review.setdefault("spec", {})
    causes = _attribute_causes(spec) + _subject_causes(spec) + _meta_causes(review["metadata"])
    if causes:
        raise invalid(causes)
    review["status"] = await _decide(cluster, _attributes(_subject(spec), spec), spec)
    return 201, review


@virtual(GROUP, "localsubjectaccessreviews")
async def local_subject(cluster: Cluster, namespace: str | None, body: Any, opts: WriteOptions) -> tuple[int, Obj]:
    review = reviewbody.decode(cluster, GROUP, "localsubjectaccessreviews", namespace, body, opts)
    spec = review.setdefault("spec", {})
    meta = review["metadata"]
    causes = _attribute_causes(spec) + _subject_causes(spec)
    if not reviewbody.meta_is_empty(meta, allow=("namespace",)):
        causes.append(field.invalid("metadata", reviewbody.shown_meta(meta), "must be empty except for namespace"))
    resource = spec.get("resourceAttributes")
    if resource is not None and resource.get("namespace", "") != meta.get("namespace", ""):
        causes.append(field.invalid("spec.resourceAttributes.namespace", resource.get("namespace", ""),
                                    "must match metadata.namespace"))
    if spec.get("nonResourceAttributes") is not None:
        causes.append(field.invalid("spec.nonResourceAttributes", _shown_non_resource(spec),
                                    "disallowed on this kind of request"))
    if causes:
        raise invalid(causes)
    if not namespace:
        raise errors.bad_request(f"namespace is required on this type: {namespace or ''}")
    review["status"] = await _decide(cluster, _attributes(_subject(spec), spec), spec)
    return 201, review


def invalid(causes: list[errors.Cause]) -> errors.APIError:
    """`NewInvalid(authorizationapi.Kind(review.Kind), "", errs)`: the internal object the REST
    validates has no kind (conversion leaves TypeMeta behind), so the message names none."""
    err = errors.invalid("", GROUP, "", causes)
    if err.details is not None:
        err.details.pop("kind", None)
    return err


# -- validation (pkg/apis/authorization/validation) ----------------------------------------------

def _attribute_causes(spec: Obj) -> list[errors.Cause]:
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    causes = []
    if resource is not None and non_resource is not None:
        causes.append(field.invalid("spec.nonResourceAttributes", _shown_non_resource(spec),
                                    "cannot be specified in combination with resourceAttributes"))
    if resource is None and non_resource is None:
        causes.append(field.invalid("spec.resourceAttributes", None,
                                    "exactly one of nonResourceAttributes or resourceAttributes must be specified"))
    if resource is not None:
        for key in ("fieldSelector", "labelSelector"):
            causes += _selector_causes(resource.get(key), f"spec.resourceAttributes.{key}")
    return causes


def _selector_causes(selector: Obj | None, path: str) -> list[errors.Cause]:
    if selector is None:
        return []
    raw, requirements = selector.get("rawSelector", ""), selector.get("requirements") or []
    causes = []
    if raw and requirements:
        causes.append(field.invalid(f"{path}.rawSelector", raw, "may not specified at the same time as requirements"))
    if not raw and not requirements:
        causes.append(field.required(f"{path}.requirements",
                                     f"when {path} is specified, requirements or rawSelector is required"))
    for i, req in enumerate(requirements):
        if not req.get("key"):
            causes.append(field.required(f"{path}.requirements[{i}].key", "must be specified"))
    return causes


def _subject_causes(spec: Obj) -> list[errors.Cause]:
    if spec.get("user") or spec.get("groups"):
        return []
    return [field.invalid("spec.user", spec.get("user", ""), "at least one of user or group must be specified")]


def _meta_causes(meta: Obj) -> list[errors.Cause]:
    if reviewbody.meta_is_empty(meta):
        return []
    return [field.invalid("metadata", reviewbody.shown_meta(meta), "must be empty")]


def _shown_non_resource(spec: Obj) -> Any:
    """The internal NonResourceAttributes struct (no JSON tags) as a message shows it."""
    attrs = spec.get("nonResourceAttributes") or {}
    return field.GoStruct(Path=attrs.get("path", ""), Verb=attrs.get("verb", ""))


# -- the decision -------------------------------------------------------------------------------

def _subject(spec: Obj) -> User:
    """The user a (Local)SubjectAccessReview asks about, exactly as given: no groups added."""
    extra = {k: tuple(v or ()) for k, v in (spec.get("extra") or {}).items()}
    return User(spec.get("user", ""), tuple(spec.get("groups") or ()), spec.get("uid", ""), extra)


def _attributes(user: User, spec: Obj) -> authz.Attributes:
    """upstream's ResourceAttributesFrom / NonResourceAttributesFrom: an empty version matches all."""
    resource = spec.get("resourceAttributes")
    if resource is None:
        attrs = spec.get("nonResourceAttributes") or {}
        return authz.Attributes(user, attrs.get("verb", ""), False, path=attrs.get("path", ""))
    fields, labels = _selectors(resource)
    return authz.Attributes(user, resource.get("verb", ""), True, resource.get("namespace", ""),
                            resource.get("group", ""), resource.get("version") or "*", resource.get("resource", ""),
                            resource.get("subresource", ""), resource.get("name", ""),
                            field_selector=fields, label_selector=labels)


_LABEL_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def _selectors(resource: Obj) -> tuple[tuple[selectors.FieldRequirement, ...], tuple[selectors.Requirement, ...]]:
    """The selectors the authorizers are given (upstream's ResourceAttributesFrom): the raw
    one parsed, else the usable requirements; what does not parse is left out (and reported
    by `_selector_problems`)."""
    fields: tuple[selectors.FieldRequirement, ...] = ()
    labels: tuple[selectors.Requirement, ...] = ()
    if isinstance(selector := resource.get("fieldSelector"), dict):
        if raw := selector.get("rawSelector"):
            try:
                fields = tuple(selectors.parse_fields(raw, lambda _f: True).requirements)
            except errors.APIError:
                pass
        else:
            fields = tuple(selectors.FieldRequirement(r.get("key", ""), r["values"][0], r.get("operator") == "In")
                           for r in selector.get("requirements") or () if _usable_field_requirement(r))
    if isinstance(selector := resource.get("labelSelector"), dict):
        if raw := selector.get("rawSelector"):
            try:
                labels = tuple(selectors.parse_labels(raw).requirements)
            except errors.APIError:
                pass
        else:
            labels = tuple(selectors.Requirement(r.get("key", ""), _LABEL_OPS[r["operator"]],
                                                 frozenset(r.get("values") or ()))
                           for r in selector.get("requirements") or () if r.get("operator") in _LABEL_OPS)
    return fields, labels


async def _decide(cluster: Cluster, attrs: authz.Attributes, spec: Obj) -> Obj:
    """The status: the chain's decision, and (upstream's BuildEvaluationError) an authorizer's
    failure, then the selectors the authorizer could not be given."""
    problems = []
    try:
        decision, reason = await cluster.authorizer.authorize(attrs)
    except Exception as err:  # an authorizer that fails answers no opinion, with its error
        log.warning("authorizer failed on %s: %s", attrs, err)
        decision, reason = authz.NO_OPINION, ""
        problems.append(str(err))
    problems += _selector_problems(spec.get("resourceAttributes") or {})
    status: Obj = {"allowed": decision == authz.ALLOW}
    if decision == authz.DENY:
        status["denied"] = True
    if reason:
        status["reason"] = reason
    if problems:
        status["evaluationError"] = "; ".join(problems)
    return status


_LABEL_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def _selector_problems(resource: Obj) -> list[str]:
    """What of the field and label selectors does not parse (then ignored, as upstream's
    ResourceAttributesFrom ignores it: a broader check, never a narrower one)."""
    out = []
    for key, parse, usable in (("fieldSelector", lambda raw: selectors.parse_fields(raw, lambda _f: True),
                                _usable_field_requirement),
                               ("labelSelector", selectors.parse_labels,
                                lambda r: r.get("operator") in _LABEL_OPERATORS)):
        selector = resource.get(key)
        if not selector:
            continue
        raw, requirements = selector.get("rawSelector", ""), selector.get("requirements") or []
        kept, broken = 0, False
        if raw:
            try:
                parse(raw)
            except errors.APIError:
                broken = True
        for req in requirements:
            if usable(req):
                kept += 1
            else:
                broken = True
        if broken:
            out.append(f"spec.resourceAttributes.{key} {'partially ' if kept else ''}ignored due to parse error")
    return out


def _usable_field_requirement(req: Obj) -> bool:
    return req.get("operator") in ("In", "NotIn") and len(req.get("values") or ()) == 1
