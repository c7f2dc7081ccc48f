"""Admission webhooks over the real HTTP layer, called over HTTPS on a plain Python webhook
server (tests/webhookserver.py): AdmissionReview contents, denials and JSONPatch mutations,
failurePolicy with an unreachable or hanging webhook, selectors, deletes, dry runs, matchPolicy
Equivalent, re-validation of patched objects, and configurations refused as upstream's
`admissionregistration/validation` refuses them."""

from __future__ import annotations

import asyncio
import json

import pytest
import webhookserver as ws
from support import TOKEN

from lks.kube.webhooks import client as webhook_client

AUTH = {"Authorization": f"Bearer {TOKEN}"}
ADM = "/clusters/c1/apis/admissionregistration.k8s.io/v1"
CORE = "/clusters/c1/api/v1"


@pytest.fixture
def server():
    with ws.WebhookServer() as s:
        yield s


async def _send(client, method: str, path: str, body=None, **headers):
    resp = await client.request(method, path, data=None if body is None else json.dumps(body),
                                headers={**AUTH, "Content-Type": "application/json", **headers})
    return resp.status, await resp.json(), resp.headers


async def _configure(client, kind: str, name: str, hooks: list[dict]) -> None:
    resource = "validatingwebhookconfigurations" if kind.startswith("Validating") else "mutatingwebhookconfigurations"
    status, body, _ = await _send(client, "POST", f"{ADM}/{resource}", ws.configuration(kind, name, hooks))
    assert status == 201, body


def _hook(server, name: str, path: str, resources=("configmaps",), operations=("CREATE",), **extra) -> dict:
    return {"name": name, "clientConfig": {"url": server.url(path), "caBundle": server.ca_bundle},
            "rules": [ws.rule(list(operations), list(resources))], **extra}


def _cm(name: str, labels: dict | None = None, namespace: str = "default") -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {},
                                                                  "namespace": namespace}, "data": {"a": "b"}}


async def test_validating_webhook_denies_with_upstream_message_and_sees_the_review(client, server):
    server.paths["/validate"] = lambda r: (ws.deny(r, "no configmaps named bad") if r["name"] == "bad"
                                           else ws.allow(r, warnings=["looked at it"]))
    await _configure(client, "ValidatingWebhookConfiguration", "deny", [_hook(server, "deny.example.com", "/validate")])
    status, body, _ = await _send(client, "POST", f"{CORE}/namespaces/default/configmaps", _cm("bad"))
    assert status == 403
    assert body["message"] == 'admission webhook "deny.example.com" denied the request: no configmaps named bad'
    status, body, headers = await _send(client, "POST", f"{CORE}/namespaces/default/configmaps?fieldManager=me",
                                        _cm("good"))
    assert status == 201, body
    assert headers.getall("Warning") == ['299 - "looked at it"']
    review = server.reviews["/validate"][-1]
    assert review["apiVersion"] == "admission.k8s.io/v1"
    req = review["request"]
    assert req["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
    assert req["resource"] == {"group": "", "version": "v1", "resource": "configmaps"}
    assert req["requestKind"] == req["kind"] and req["requestResource"] == req["resource"]
    assert (req["name"], req["namespace"], req["operation"], req["dryRun"]) == ("good", "default", "CREATE", False)
    assert req["userInfo"]["username"] == "clusterAdmin"
    assert "system:masters" in req["userInfo"]["groups"]
    assert req["object"]["data"] == {"a": "b"} and req["oldObject"] is None
    assert req["options"] == {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "me"}


async def test_mutating_webhook_patch_is_stored_and_validated_again(client, server):
    server.paths["/mutate"] = lambda r: ws.json_patch(r, [{"op": "add", "path": "/metadata/labels/added-by",
                                                           "value": "webhook"}])
    server.paths["/break"] = lambda r: ws.json_patch(r, [{"op": "add", "path": "/metadata/labels/bad key!",
                                                          "value": "x"}])
    await _configure(client, "MutatingWebhookConfiguration", "m", [
        _hook(server, "label.example.com", "/mutate"),
        _hook(server, "break.example.com", "/break", objectSelector={"matchLabels": {"break": "yes"}})])
    status, body, _ = await _send(client, "POST", f"{CORE}/namespaces/default/configmaps", _cm("one"))
    assert status == 201, body
    assert body["metadata"]["labels"] == {"added-by": "webhook"}
    status, body, _ = await _send(client, "GET", f"{CORE}/namespaces/default/configmaps/one")
    assert body["metadata"]["labels"] == {"added-by": "webhook"}
    # a patch that makes the object invalid is refused as the object itself would be
    status, body, _ = await _send(client, "POST", f"{CORE}/namespaces/default/configmaps",
                                  _cm("two", {"break": "yes"}))
    assert status == 422, body
    assert body["details"]["causes"][0]["field"] == "metadata.labels"


async def test_failure_policy_with_unreachable_and_hanging_webhooks(client, server):
    server.paths["/hang"] = lambda r: "hang"
    dead = "https://127.0.0.1:1/x"
    await _configure(client, "ValidatingWebhookConfiguration", "v", [
        {**_hook(server, "dead.example.com", "/x"), "clientConfig": {"url": dead, "caBundle": server.ca_bundle},
         "objectSelector": {"matchLabels": {"case": "dead"}}},
        {**_hook(server, "ignored.example.com", "/x"), "clientConfig": {"url": dead}, "failurePolicy": "Ignore"},
        {**_hook(server, "hang.example.com", "/hang"), "timeoutSeconds": 1,
         "objectSelector": {"matchLabels": {"case": "hang"}}},
    ])
    status, body, _ = await _send(client, "POST", f"{CORE}/namespaces/default/configmaps", _cm("a", {"case": "dead"}))
    assert status == 500
    assert body["reason"] == "InternalError"
    assert body["message"] == ('Internal error occurred: failed calling webhook "dead.example.com": failed to call '
                               f'webhook: Post "{dead}?timeout=10s": dial tcp 127.0.0.1:1: connect: connection refused')
    status, body, _ = await _send(client, "POST", f"{CORE}/namespaces/default/configmaps", _cm("b", {"case": "hang"}))
    assert status == 500
    assert body["message"] == ('Internal error occurred: failed calling webhook "hang.example.com": failed to call '
                               f'webhook: Post "{server.url("/hang")}?timeout=1s": context deadline exceeded')
    status, body, _ = await _send(client, "POST", f"{CORE}/namespaces/default/configmaps", _cm("c"))
    assert status == 201, body  # only the Ignore webhook applies, and it fails open


async def test_garbage_answers_fail_as_upstream(client, server):
    server.paths["/garbage"] = lambda r: b"not json"
    server.paths["/wrong-uid"] = lambda r: ws.allow({"uid": "nope"})
    await _configure(client, "ValidatingWebhookConfiguration", "g", [
        {**_hook(server, "garbage.example.com", "/garbage"), "objectSelector": {"matchLabels": {"case": "g"}}},
        {**_hook(server, "uid.example.com", "/wrong-uid"), "objectSelector": {"matchLabels": {"case": "u"}}}])
    status, body, _ = await _send(client, "POST", f"{CORE}/namespaces/default/configmaps", _cm("a", {"case": "g"}))
    assert status == 500
    assert body["message"].startswith('Internal error occurred: failed calling webhook "garbage.example.com": failed '
                                      "to call webhook: couldn't get version/kind; json parse error: ")
    status, body, _ = await _send(client, "POST", f"{CORE}/namespaces/default/configmaps", _cm("b", {"case": "u"}))
    assert status == 500
    assert 'received invalid webhook response: expected response.uid="' in body["message"]


async def test_namespace_selector_and_delete_admission(client, server):
    server.paths["/v"] = lambda r: ws.deny(r, f"{r['operation']} refused")
    status, body, _ = await _send(client, "POST", f"{CORE}/namespaces",
                                  {"metadata": {"name": "guarded", "labels": {"guard": "on"}}})
    assert status == 201, body
    status, body, _ = await _send(client, "POST", f"{CORE}/namespaces/guarded/configmaps", _cm("x", namespace="guarded"))
    assert status == 201
    await _configure(client, "ValidatingWebhookConfiguration", "ns", [
        _hook(server, "ns.example.com", "/v", operations=("CREATE", "DELETE"),
              namespaceSelector={"matchLabels": {"guard": "on"}})])
    status, body, _ = await _send(client, "POST", f"{CORE}/namespaces/default/configmaps", _cm("free"))
    assert status == 201, body  # default has no guard label
    status, body, _ = await _send(client, "POST", f"{CORE}/namespaces/guarded/configmaps",
                                  _cm("y", namespace="guarded"))
    assert status == 403 and body["message"].endswith("CREATE refused")
    status, body, _ = await _send(client, "DELETE", f"{CORE}/namespaces/guarded/configmaps/x")
    assert status == 403 and body["message"].endswith("DELETE refused")
    req = server.reviews["/v"][-1]["request"]
    assert req["operation"] == "DELETE" and req["object"] is None and req["oldObject"]["metadata"]["name"] == "x"
    assert req["options"]["kind"] == "DeleteOptions"


async def test_dry_run_reaches_webhooks_and_side_effects_refuse(client, server):
    server.paths["/v"] = lambda r: ws.allow(r)
    await _configure(client, "ValidatingWebhookConfiguration", "d", [
        _hook(server, "dry.example.com", "/v"),
        {**_hook(server, "some.example.com", "/v"), "sideEffects": "NoneOnDryRun",
         "objectSelector": {"matchLabels": {"case": "some"}}}])
    status, body, _ = await _send(client, "POST", f"{CORE}/namespaces/default/configmaps?dryRun=All", _cm("dry"))
    assert status == 201, body
    assert server.reviews["/v"][-1]["request"]["dryRun"] is True
    assert server.reviews["/v"][-1]["request"]["options"]["dryRun"] == ["All"]
    status, _, _ = await _send(client, "GET", f"{CORE}/namespaces/default/configmaps/dry")
    assert status == 404


async def test_dry_run_refused_for_webhooks_with_side_effects(client, server, cluster):
    server.paths["/v"] = lambda r: ws.allow(r)
    await _configure(client, "ValidatingWebhookConfiguration", "d", [_hook(server, "some.example.com", "/v")])
    # sideEffects Some cannot be created any more (v1), but stored ones can exist: write it directly
    reg = cluster.registry("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations")
    obj = await reg.get(None, "d")
    obj["webhooks"][0]["sideEffects"] = "Some"
    await reg.store.update(reg.key(None, "d"), reg.encode(obj), mod_revision=int(obj["metadata"]["resourceVersion"]))
    await reg._cache_consistent()
    status, body, _ = await _send(client, "POST", f"{CORE}/namespaces/default/configmaps?dryRun=All", _cm("dry"))
    assert (status, body["reason"]) == (400, "BadRequest")
    assert body["message"] == 'admission webhook "some.example.com" does not support dry run'


async def test_equivalent_match_policy_converts_to_the_rule_version(client, server):
    server.paths["/v"] = lambda r: ws.allow(r)
    await _configure(client, "ValidatingWebhookConfiguration", "eq", [
        {**_hook(server, "eq.example.com", "/v", resources=("events",)),
         "rules": [ws.rule(["CREATE"], ["events"], groups=["events.k8s.io"])]},
        {**_hook(server, "exact.example.com", "/v", resources=("events",)), "matchPolicy": "Exact",
         "rules": [ws.rule(["CREATE"], ["events"], groups=["events.k8s.io"])]}])
    event = {"metadata": {"name": "e1"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
             "reason": "Test", "message": "hello", "type": "Normal"}
    status, body, _ = await _send(client, "POST", f"{CORE}/namespaces/default/events", event)
    assert status == 201, body
    reviews = server.reviews["/v"]
    assert len(reviews) == 1  # Exact does not match core/v1 events
    req = reviews[0]["request"]
    assert req["kind"] == {"group": "events.k8s.io", "version": "v1", "kind": "Event"}
    assert req["requestKind"] == {"group": "", "version": "v1", "kind": "Event"}
    assert req["object"]["apiVersion"] == "events.k8s.io/v1" and req["object"]["note"] == "hello"


async def test_configurations_are_never_sent_to_webhooks(client, server):
    server.paths["/v"] = lambda r: ws.deny(r, "everything refused")
    await _configure(client, "ValidatingWebhookConfiguration", "all", [
        {**_hook(server, "all.example.com", "/v"), "rules": [ws.rule(["*"], ["*"], groups=["*"], versions=["*"])]}])
    status, body, _ = await _send(client, "DELETE", f"{ADM}/validatingwebhookconfigurations/all")
    assert status == 200, body


@pytest.mark.parametrize(("hook", "field", "reason"), [
    pytest.param({"name": "short.name"}, "webhooks[0].name", "FieldValueInvalid", id="not-fully-qualified"),
    pytest.param({"sideEffects": None}, "webhooks[0].sideEffects", "FieldValueRequired", id="side-effects"),
    pytest.param({"sideEffects": "Some"}, "webhooks[0].sideEffects", "FieldValueNotSupported", id="side-effects-v1"),
    pytest.param({"admissionReviewVersions": []}, "webhooks[0].admissionReviewVersions", "FieldValueRequired",
                 id="review-versions"),
    pytest.param({"clientConfig": {"url": "http://example.com/x"}}, "webhooks[0].clientConfig.url",
                 "FieldValueInvalid", id="http-url"),
    pytest.param({"clientConfig": {"service": {"namespace": "ns", "name": "svc", "path": "noslash"}}},
                 "webhooks[0].clientConfig.service.path", "FieldValueInvalid", id="service-path"),
    pytest.param({"clientConfig": {"service": {"namespace": "ns"}}}, "webhooks[0].clientConfig.service.namespace",
                 "FieldValueRequired", id="service-name-reported-as-upstream-does"),
    pytest.param({"matchConditions": [{"name": "a", "expression": "true"}, {"name": "a", "expression": "true"}]},
                 "webhooks[0].matchConditions[1].name", "FieldValueDuplicate", id="match-condition-names"),
    pytest.param({"timeoutSeconds": 31}, "webhooks[0].timeoutSeconds", "FieldValueInvalid", id="timeout"),
])
async def test_bad_configurations_refused(client, server, hook, field, reason):
    base = {"name": "ok.example.com", "clientConfig": {"url": "https://example.com/x"},
            "rules": [ws.rule(["CREATE"], ["pods"])]}
    config = ws.configuration("ValidatingWebhookConfiguration", "bad", [{**base}])
    config["webhooks"][0].update(hook)
    config["webhooks"][0] = {k: v for k, v in config["webhooks"][0].items() if v is not None}
    status, body, _ = await _send(client, "POST", f"{ADM}/validatingwebhookconfigurations", config)
    assert status == 422, body
    assert [(c["field"], c["reason"]) for c in body["details"]["causes"]] == [(field, reason)]


async def test_duplicate_webhook_names_refused(client):
    hook = {"name": "dup.example.com", "clientConfig": {"url": "https://example.com/x"},
            "rules": [ws.rule(["CREATE"], ["pods"])]}
    config = ws.configuration("MutatingWebhookConfiguration", "dup", [hook, hook])
    status, body, _ = await _send(client, "POST", f"{ADM}/mutatingwebhookconfigurations", config)
    assert status == 422, body
    assert [(c["field"], c["reason"]) for c in body["details"]["causes"]] == [("webhooks[1].name",
                                                                               "FieldValueDuplicate")]


async def test_tls_contexts_are_cached_per_ca_bundle(server):
    c = webhook_client.Client()
    assert c.context(server.ca_bundle) is c.context(server.ca_bundle)
    assert c.context("") is not c.context(server.ca_bundle)


async def test_a_hanging_webhook_does_not_hold_up_other_requests(client, server):
    server.paths["/hang"] = lambda r: "hang"
    await _configure(client, "ValidatingWebhookConfiguration", "h", [
        {**_hook(server, "hang.example.com", "/hang"), "timeoutSeconds": 3}])
    server.received.clear()
    create = asyncio.create_task(_send(client, "POST", f"{CORE}/namespaces/default/configmaps", _cm("slow")))
    await asyncio.to_thread(server.received.wait, 10)  # the webhook holds the create now
    status, body, _ = await _send(client, "GET", f"{CORE}/namespaces/default/configmaps")
    assert status == 200 and not create.done()
    status, body, _ = await create
    assert status == 500 and body["message"].endswith("context deadline exceeded")


async def test_connections_to_a_webhook_are_reused(client, server):
    server.paths["/v"] = lambda r: ws.allow(r)
    await _configure(client, "ValidatingWebhookConfiguration", "r", [_hook(server, "reuse.example.com", "/v")])
    for i in range(3):
        status, body, _ = await _send(client, "POST", f"{CORE}/namespaces/default/configmaps", _cm(f"r{i}"))
        assert status == 201, body
    assert len(server.peers) == 3 and len(set(server.peers)) == 1


async def test_match_conditions(client, server):
    server.paths["/v"] = lambda r: ws.deny(r, "called")
    await _configure(client, "ValidatingWebhookConfiguration", "mc", [
        {**_hook(server, "cond.example.com", "/v"), "matchConditions": [
            {"name": "not-skipped", "expression": "object.metadata.name != 'skip'"},
            {"name": "admins", "expression": "request.userInfo.username == 'clusterAdmin'"},
            {"name": "may-list", "expression": "authorizer.group('').resource('configmaps').check('list').allowed()"},
        ]},
        {**_hook(server, "broken.example.com", "/v"), "matchConditions": [
            {"name": "missing", "expression": "object.data.nope == 'x'"}],
         "objectSelector": {"matchLabels": {"case": "broken"}}},
    ])
    status, body, _ = await _send(client, "POST", f"{CORE}/namespaces/default/configmaps", _cm("skip"))
    assert status == 201, body
    assert "/v" not in server.reviews
    status, body, _ = await _send(client, "POST", f"{CORE}/namespaces/default/configmaps", _cm("called"))
    assert status == 403 and body["message"].endswith("denied the request: called")
    status, body, _ = await _send(client, "POST", f"{CORE}/namespaces/default/configmaps", _cm("skip", {"case": "broken"}))
    assert status == 403
    assert body["message"] == ('configmaps "skip" is forbidden: expression \'object.data.nope == \'x\'\' resulted '
                               "in error: no such key: nope")


async def test_match_conditions_must_compile(client):
    hook = {"name": "c.example.com", "clientConfig": {"url": "https://example.com/x"},
            "rules": [ws.rule(["CREATE"], ["pods"])],
            "matchConditions": [{"name": "p", "expression": "params.x == 1"}]}
    status, body, _ = await _send(client, "POST", f"{ADM}/validatingwebhookconfigurations",
                                  ws.configuration("ValidatingWebhookConfiguration", "c", [hook]))
    assert status == 422, body
    cause = body["details"]["causes"][0]
    assert cause["field"] == "webhooks[0].matchConditions[0].expression"
    assert cause["message"].startswith("Invalid value: \"params.x == 1\": compilation failed: ERROR: <input>:1:1: "
                                       "undeclared reference to 'params'")


async def test_ca_bundle_is_verified(client, server):
    other = ws.WebhookServer()  # its CA did not sign `server`'s certificate
    server.paths["/v"] = lambda r: ws.allow(r)
    await _configure(client, "ValidatingWebhookConfiguration", "ca", [
        {**_hook(server, "ca.example.com", "/v"), "clientConfig": {"url": server.url("/v"), "caBundle": other.ca_bundle}}])
    status, body, _ = await _send(client, "POST", f"{CORE}/namespaces/default/configmaps", _cm("x"))
    assert status == 500
    assert body["message"].endswith(f'Post "{server.url("/v")}?timeout=10s": tls: failed to verify certificate: '
                                    "x509: certificate signed by unknown authority")


async def test_subresource_rules_scope_and_a_namespace_matched_by_its_own_labels(client, server):
    server.paths["/v"] = lambda r: ws.allow(r)
    await _configure(client, "ValidatingWebhookConfiguration", "sub", [
        {**_hook(server, "status.example.com", "/v"), "rules": [ws.rule(["UPDATE"], ["configmaps/*", "namespaces/status"])]},
        {**_hook(server, "cluster.example.com", "/v"), "rules": [ws.rule(["CREATE"], ["*"], scope="Cluster")],
         "namespaceSelector": {"matchLabels": {"team": "a"}}}])
    status, body, _ = await _send(client, "POST", f"{CORE}/namespaces", {"metadata": {"name": "b-team", "labels": {"team": "b"}}})
    assert status == 201 and "/v" not in server.reviews  # its own labels do not match
    status, body, _ = await _send(client, "POST", f"{CORE}/namespaces", {"metadata": {"name": "a-team", "labels": {"team": "a"}}})
    assert status == 201
    assert [r["request"]["name"] for r in server.reviews["/v"]] == ["a-team"]
    status, body, _ = await _send(client, "POST", f"{CORE}/namespaces/a-team/configmaps", _cm("x", namespace="a-team"))
    assert status == 201 and len(server.reviews["/v"]) == 1  # Cluster scope: a namespaced object is not matched
    ns = (await _send(client, "GET", f"{CORE}/namespaces/a-team"))[1]
    ns["status"]["conditions"] = [{"type": "NamespaceContentRemaining", "status": "False", "reason": "ContentRemoved",
                                   "message": "none", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    status, body, _ = await _send(client, "PUT", f"{CORE}/namespaces/a-team/status", ns)
    assert status == 200, body
    req = server.reviews["/v"][-1]["request"]
    assert (req["operation"], req["subResource"], req["requestSubResource"]) == ("UPDATE", "status", "status")
    assert req["namespace"] == "a-team" and req["oldObject"]["metadata"]["name"] == "a-team"


async def test_reinvocation_if_needed(client, server):
    def first(r):
        labels = r["object"]["metadata"].get("labels") or {}
        seen = str(len(server.reviews["/first"]))
        return ws.json_patch(r, [{"op": "add", "path": "/metadata/annotations",
                                  "value": {"first-saw": ",".join(sorted(labels)) or "-", "calls": seen}}])

    server.paths["/first"] = first
    server.paths["/second"] = lambda r: ws.json_patch(r, [{"op": "add", "path": "/metadata/labels",
                                                           "value": {"second": "yes"}}])
    await _configure(client, "MutatingWebhookConfiguration", "a", [
        {**_hook(server, "first.example.com", "/first"), "reinvocationPolicy": "IfNeeded"}])
    await _configure(client, "MutatingWebhookConfiguration", "b", [_hook(server, "second.example.com", "/second")])
    status, body, _ = await _send(client, "POST", f"{CORE}/namespaces/default/configmaps",
                                  {**_cm("re"), "metadata": {"name": "re", "namespace": "default"}})
    assert status == 201, body
    assert body["metadata"]["annotations"] == {"first-saw": "second", "calls": "2"}
    assert body["metadata"]["labels"] == {"second": "yes"}


async def test_warnings_of_a_delete_reach_the_client(client, server):
    server.paths["/warn"] = lambda r: ws.allow(r, warnings=[f"{r['operation'].lower()} seen"])
    status, body, _ = await _send(client, "POST", f"{CORE}/namespaces/default/configmaps", _cm("doomed"))
    assert status == 201, body
    await _configure(client, "ValidatingWebhookConfiguration", "warn", [
        _hook(server, "warn.example.com", "/warn", operations=("DELETE",))])
    status, body, headers = await _send(client, "DELETE", f"{CORE}/namespaces/default/configmaps/doomed")
    assert status == 200, body
    assert headers.getall("Warning") == ['299 - "delete seen"']


async def test_connect_reaches_webhooks_with_the_connect_options(client, server):
    server.paths["/exec"] = lambda r: ws.deny(r, "no exec here")
    pod = {"metadata": {"name": "target"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    status, body, _ = await _send(client, "POST", f"{CORE}/namespaces/default/pods", pod)
    assert status == 201, body
    await _configure(client, "ValidatingWebhookConfiguration", "exec", [
        _hook(server, "exec.example.com", "/exec", resources=("pods/exec",), operations=("CONNECT",))])
    status, body, _ = await _send(
        client, "GET", f"{CORE}/namespaces/default/pods/target/exec?command=ls&command=-l&stdout=true&container=c")
    assert status == 403
    assert body["message"] == 'admission webhook "exec.example.com" denied the request: no exec here'
    req = server.reviews["/exec"][-1]["request"]
    assert (req["operation"], req["name"], req["namespace"], req["subResource"]) == (
        "CONNECT", "target", "default", "exec")
    assert req["kind"] == {"group": "", "version": "v1", "kind": "PodExecOptions"}
    assert req["object"] == {"kind": "PodExecOptions", "apiVersion": "v1", "stdout": True, "container": "c",
                             "command": ["ls", "-l"]}
    assert req["oldObject"] is None and "options" not in req
