"""`SelfSubjectRulesReview` (authorization.k8s.io/v1): everything the caller may do in a
namespace, as `kubectl auth can-i --list` asks. The rules come from the authorizer chain's
`rules_for` (`lks.kube.authz`); the answer carries only the status, as upstream's
`selfsubjectrulesreview` REST builds a new object for it. Nothing is stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lks.kube import errors
from lks.kube.subresources import accessreviews, reviewbody, virtual

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.kube.registry import WriteOptions

Obj = dict[str, Any]


@virtual(accessreviews.GROUP, "selfsubjectrulesreviews")
async def review(cluster: Cluster, _namespace: str | None, body: Any, opts: WriteOptions) -> tuple[int, Obj]:
    obj = reviewbody.decode(cluster, accessreviews.GROUP, "selfsubjectrulesreviews", None, body, opts)
    if opts.user is None:
        raise errors.bad_request("no user present on request")
    namespace = (obj.get("spec") or {}).get("namespace", "")
    if not namespace:
        raise errors.bad_request("no namespace on request")
    rules = await cluster.authorizer.rules_for(opts.user, namespace)
    status: Obj = {"resourceRules": [_resource_rule(r) for r in rules.resource_rules],
                   "nonResourceRules": [_non_resource_rule(r) for r in rules.non_resource_rules],
                   "incomplete": rules.incomplete}
    if rules.evaluation_error:
        status["evaluationError"] = rules.evaluation_error
    return 201, {"kind": obj["kind"], "apiVersion": obj["apiVersion"], "metadata": {"creationTimestamp": None},
                 "spec": {}, "status": status}


def _resource_rule(rule: Obj) -> Obj:
    out: Obj = {"verbs": list(rule.get("verbs") or ())}
    for key in ("apiGroups", "resources", "resourceNames"):
        if rule.get(key):  # omitempty
            out[key] = list(rule[key])
    return out


def _non_resource_rule(rule: Obj) -> Obj:
    out: Obj = {"verbs": list(rule.get("verbs") or ())}
    if rule.get("nonResourceURLs"):
        out["nonResourceURLs"] = list(rule["nonResourceURLs"])
    return out
