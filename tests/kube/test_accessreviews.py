"""Access reviews over the real HTTP layer (authorization.k8s.io/v1 SelfSubjectAccessReview,
SubjectAccessReview, LocalSubjectAccessReview, SelfSubjectRulesReview), answered by a stand-in
authorizer so the decision, reason and evaluation error are known; validation as upstream's
`pkg/apis/authorization/validation` words it."""

from __future__ import annotations

import pytest
from support import TOKEN

from lks.kube import authz
from lks.kube.authn import User

AUTH = {"Authorization": f"Bearer {TOKEN}"}
BASE = "/clusters/c1/apis/authorization.k8s.io/v1"


class _Judge:
    """alice may list pods in `default`; dave is denied; `broken` makes the authorizer fail."""

    def __init__(self, _cluster=None):
        self.seen: list[authz.Attributes] = []

    async def authorize(self, attrs: authz.Attributes) -> tuple[str, str]:
        self.seen.append(attrs)
        if attrs.verb == "create" and attrs.resource.startswith("selfsubject"):  # as system:basic-user
            return authz.ALLOW, ""
        if attrs.user.name == "broken":
            raise RuntimeError("webhook unreachable")
        if attrs.user.name == "dave":
            return authz.DENY, "dave is never allowed"
        if attrs.user.name == "alice" and attrs.verb == "list" and attrs.namespace == "default":
            return authz.ALLOW, 'RBAC: allowed by RoleBinding "r/default"'
        if "devs" in attrs.user.groups and not attrs.resource_request and attrs.path == "/logs":
            return authz.ALLOW, ""
        return authz.NO_OPINION, ""

    async def rules_for(self, user: User, namespace: str) -> authz.Rules:
        if user.name == "masterclient":
            return authz.Rules()
        return authz.Rules([{"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}],
                           [{"verbs": ["get"], "nonResourceURLs": ["/logs"]}], incomplete=True,
                           evaluation_error="role.rbac.authorization.k8s.io \"gone\" not found")


@pytest.fixture
def judge(cluster) -> _Judge:
    judge = _Judge()
    cluster.authorizer = authz.Chain([judge])
    return judge


async def _post(client, path: str, body: dict, **headers: str):
    resp = await client.post(BASE + path, json=body, headers={**AUTH, **headers})
    return resp.status, await resp.json()


def _sar(spec: dict, kind: str = "SubjectAccessReview", **meta) -> dict:
    return {"apiVersion": "authorization.k8s.io/v1", "kind": kind, "metadata": meta, "spec": spec}


async def test_subject_access_review_answers_for_the_subject(client, judge):
    status, out = await _post(client, "/subjectaccessreviews", _sar(
        {"user": "alice", "groups": ["devs"], "uid": "u-1", "extra": {"scopes": ["a", "b"]},
         "resourceAttributes": {"namespace": "default", "verb": "list", "resource": "pods"}}))
    assert status == 201
    assert out["kind"] == "SubjectAccessReview" and out["metadata"] == {"creationTimestamp": None}
    assert out["status"] == {"allowed": True, "reason": 'RBAC: allowed by RoleBinding "r/default"'}
    attrs = judge.seen[-1]
    # the subject exactly as given: no system:authenticated added; an empty version matches all
    assert attrs.user == User("alice", ("devs",), "u-1") and attrs.user.extra == {"scopes": ("a", "b")}
    assert (attrs.verb, attrs.namespace, attrs.api_group, attrs.api_version, attrs.resource) == (
        "list", "default", "", "*", "pods")


async def test_denied_and_evaluation_errors_are_reported(client, judge):
    _, out = await _post(client, "/subjectaccessreviews", _sar(
        {"user": "dave", "resourceAttributes": {"verb": "get", "resource": "secrets"}}))
    assert out["status"] == {"allowed": False, "denied": True, "reason": "dave is never allowed"}
    _, out = await _post(client, "/subjectaccessreviews", _sar(
        {"user": "broken", "resourceAttributes": {"verb": "get", "resource": "secrets"}}))
    assert out["status"] == {"allowed": False, "evaluationError": "webhook unreachable"}
    _, out = await _post(client, "/subjectaccessreviews", _sar(
        {"groups": ["devs"], "nonResourceAttributes": {"verb": "get", "path": "/logs"}}))
    assert out["status"] == {"allowed": True}
    assert not judge.seen[-1].resource_request and judge.seen[-1].path == "/logs"


async def test_self_subject_access_review_asks_for_the_caller(client, judge):
    status, out = await _post(client, "/selfsubjectaccessreviews", _sar(
        {"resourceAttributes": {"namespace": "default", "verb": "list", "resource": "pods"}},
        "SelfSubjectAccessReview"), **{"Impersonate-User": "alice"})
    assert status == 201 and out["status"]["allowed"] is True
    assert judge.seen[-1].user.name == "alice" and "system:authenticated" in judge.seen[-1].user.groups


async def test_local_subject_access_review_takes_the_namespace_of_the_url(client, judge):
    status, out = await _post(client, "/namespaces/default/localsubjectaccessreviews", _sar(
        {"user": "alice", "resourceAttributes": {"namespace": "default", "verb": "list", "resource": "pods"}},
        "LocalSubjectAccessReview"))
    assert status == 201 and out["metadata"]["namespace"] == "default" and out["status"]["allowed"] is True
    status, out = await _post(client, "/namespaces/default/localsubjectaccessreviews", _sar(
        {"user": "alice", "resourceAttributes": {"namespace": "kube-system", "verb": "list", "resource": "pods"}},
        "LocalSubjectAccessReview"))
    assert status == 422 and out["reason"] == "Invalid"
    assert out["message"] == ('.authorization.k8s.io "" is invalid: spec.resourceAttributes.namespace: '
                              'Invalid value: "kube-system": must match metadata.namespace')
    assert out["details"] == {"group": "authorization.k8s.io", "causes": [
        {"reason": "FieldValueInvalid", "message": 'Invalid value: "kube-system": must match metadata.namespace',
         "field": "spec.resourceAttributes.namespace"}]}
    status, out = await _post(client, "/namespaces/default/localsubjectaccessreviews", _sar(
        {"user": "alice", "nonResourceAttributes": {"verb": "get", "path": "/logs"}}, "LocalSubjectAccessReview"))
    assert status == 422
    assert out["details"]["causes"][0] == {
        "reason": "FieldValueInvalid", "field": "spec.nonResourceAttributes",
        "message": 'Invalid value: {"Path":"/logs","Verb":"get"}: disallowed on this kind of request'}
    status, out = await _post(client, "/namespaces/default/localsubjectaccessreviews", _sar(
        {"user": "alice", "resourceAttributes": {"namespace": "other"}}, "LocalSubjectAccessReview",
        namespace="other"))
    assert status == 400
    assert out["message"] == "the namespace of the provided object does not match the namespace sent on the request"


@pytest.mark.parametrize(("path", "kind", "spec", "message"), [
    pytest.param("/subjectaccessreviews", "SubjectAccessReview", {"user": "a"},
                 'spec.resourceAttributes: Invalid value: null: exactly one of nonResourceAttributes or '
                 'resourceAttributes must be specified', id="no-attributes"),
    pytest.param("/subjectaccessreviews", "SubjectAccessReview", {"resourceAttributes": {"verb": "get"}},
                 'spec.user: Invalid value: "": at least one of user or group must be specified', id="no-subject"),
    pytest.param("/selfsubjectaccessreviews", "SelfSubjectAccessReview",
                 {"resourceAttributes": {"verb": "get"}, "nonResourceAttributes": {"verb": "get", "path": "/x"}},
                 'spec.nonResourceAttributes: Invalid value: {"Path":"/x","Verb":"get"}: cannot be specified in '
                 'combination with resourceAttributes', id="both"),
    pytest.param("/subjectaccessreviews", "SubjectAccessReview", {},
                 '[spec.resourceAttributes: Invalid value: null: exactly one of nonResourceAttributes or '
                 'resourceAttributes must be specified, spec.user: Invalid value: "": at least one of user or group '
                 'must be specified]', id="empty"),
    pytest.param("/selfsubjectaccessreviews", "SelfSubjectAccessReview",
                 {"resourceAttributes": {"verb": "list", "fieldSelector": {}}},
                 'spec.resourceAttributes.fieldSelector.requirements: Required value: when '
                 'spec.resourceAttributes.fieldSelector is specified, requirements or rawSelector is required',
                 id="empty-selector"),
])
async def test_invalid_reviews_are_422_with_field_causes(client, judge, path, kind, spec, message):
    status, out = await _post(client, path, _sar(spec, kind))
    assert status == 422 and out["reason"] == "Invalid"
    assert out["message"] == f'.authorization.k8s.io "" is invalid: {message}'


async def test_metadata_must_be_empty(client, judge):
    status, out = await _post(client, "/selfsubjectaccessreviews", _sar(
        {"resourceAttributes": {"verb": "get"}}, "SelfSubjectAccessReview", name="x"))
    assert status == 422
    assert out["message"] == ('.authorization.k8s.io "" is invalid: metadata: Invalid value: '
                              '{"name":"x","creationTimestamp":null}: must be empty')


async def test_hostile_bodies_are_decode_errors(client, judge):
    status, out = await _post(client, "/selfsubjectaccessreviews", {"spec": "nope"})
    assert status == 400 and out["message"].startswith(
        'SelfSubjectAccessReview in version "v1" cannot be handled as a SelfSubjectAccessReview:')
    status, out = await _post(client, "/selfsubjectaccessreviews", {"kind": "Pod", "spec": {}})
    assert status == 400
    resp = await client.post(BASE + "/selfsubjectaccessreviews?fieldValidation=Strict", headers=AUTH,
                             json={"spec": {"resourceAttributes": {"verb": "get"}, "bogus": 1}})
    assert resp.status == 400 and 'unknown field "spec.bogus"' in (await resp.json())["message"]


async def test_self_subject_rules_review(client, judge):
    status, out = await _post(client, "/selfsubjectrulesreviews", {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": "default"}},
        **{"Impersonate-User": "alice"})
    assert status == 201
    assert out == {"kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1",
                   "metadata": {"creationTimestamp": None}, "spec": {}, "status": {
                       "resourceRules": [{"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}],
                       "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/logs"]}],
                       "incomplete": True, "evaluationError": 'role.rbac.authorization.k8s.io "gone" not found'}}
    status, out = await _post(client, "/selfsubjectrulesreviews", {"spec": {}})
    assert status == 400 and out["message"] == "no namespace on request"


async def test_masters_may_do_everything(client, judge):
    _, out = await _post(client, "/selfsubjectrulesreviews", {"spec": {"namespace": "default"}})
    assert out["status"]["resourceRules"] == [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
    _, out = await _post(client, "/selfsubjectaccessreviews", _sar(
        {"resourceAttributes": {"verb": "delete", "resource": "nodes"}}, "SelfSubjectAccessReview"))
    assert out["status"] == {"allowed": True}


async def test_discovery_lists_the_reviews(client):
    resp = await client.get(BASE, headers=AUTH)
    names = {r["name"]: r for r in (await resp.json())["resources"]}
    for name in ("selfsubjectaccessreviews", "subjectaccessreviews", "selfsubjectrulesreviews"):
        assert names[name]["verbs"] == ["create"] and not names[name]["namespaced"]
    assert names["localsubjectaccessreviews"]["namespaced"]


async def test_selectors_that_do_not_parse_are_ignored_and_said(client, judge):
    _, out = await _post(client, "/subjectaccessreviews", _sar({"user": "alice", "resourceAttributes": {
        "namespace": "default", "verb": "list", "resource": "pods",
        "labelSelector": {"rawSelector": "a in (b"},
        "fieldSelector": {"requirements": [{"key": "spec.nodeName", "operator": "In", "values": ["n1"]},
                                           {"key": "metadata.name", "operator": "Exists"}]}}}))
    assert out["status"] == {"allowed": True, "reason": 'RBAC: allowed by RoleBinding "r/default"',
                             "evaluationError": "spec.resourceAttributes.fieldSelector partially ignored due to "
                                                "parse error; spec.resourceAttributes.labelSelector ignored due "
                                                "to parse error"}
    _, out = await _post(client, "/subjectaccessreviews", _sar({"user": "broken", "resourceAttributes": {
        "verb": "list", "resource": "pods", "fieldSelector": {"rawSelector": "spec.nodeName=n1"}}}))
    assert out["status"] == {"allowed": False, "evaluationError": "webhook unreachable"}
