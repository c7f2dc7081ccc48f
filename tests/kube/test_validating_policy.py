"""ValidatingAdmissionPolicy over HTTP, in process: matching (rules, excludes, selectors, names),
params (by name, by selector, namespaced, missing with Deny or Allow), validations with message,
messageExpression and reason, variables, matchConditions, failurePolicy on errors, the
Deny/Warn/Audit actions, the request, namespaceObject and authorizer variables, and the checks
that refuse a bad policy or binding at create."""

from __future__ import annotations

import pytest

from .conftest import AUTH

VAPS = "/clusters/c1/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies"
VAPBS = "/clusters/c1/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings"
DEPLOYS = "/clusters/c1/apis/apps/v1/namespaces/{ns}/deployments"
CMS = "/clusters/c1/api/v1/namespaces/{ns}/configmaps"
NSS = "/clusters/c1/api/v1/namespaces"

DEPLOY_RULES = [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                 "resources": ["deployments"]}]


def policy(name: str, validations: list[dict], *, rules=None, **spec) -> dict:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {"matchConstraints": {"resourceRules": rules or DEPLOY_RULES}, "validations": validations,
                     **spec}}


def binding(name: str, policy_name: str, actions=("Deny",), **spec) -> dict:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {"policyName": policy_name, "validationActions": list(actions), **spec}}


def deployment(name: str, replicas: int = 1, labels: dict | None = None) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


async def settle(cluster) -> None:
    """Let the cluster's feed bring what was just written to the policy source."""
    assert await cluster.feed.wait_for(await cluster.store.current_revision(), 5)


async def install(client, cluster, *objects) -> None:
    for obj in objects:
        url = VAPS if obj["kind"] == "ValidatingAdmissionPolicy" else VAPBS
        resp = await client.post(url, json=obj, headers=AUTH)
        assert resp.status == 201, await resp.text()
    await settle(cluster)


async def create_deploy(client, name, replicas=1, ns="default", labels=None):
    resp = await client.post(DEPLOYS.format(ns=ns), json=deployment(name, replicas, labels), headers=AUTH)
    return resp.status, await resp.json(), resp.headers.getall("Warning", [])


MAX5 = [{"expression": "object.spec.replicas <= 5"}]


async def test_deny_is_422_in_upstreams_words(client, cluster):
    await install(client, cluster, policy("max5", MAX5), binding("max5-b", "max5"))
    status, body, _ = await create_deploy(client, "big", 6)
    assert status == 422
    msg = ("ValidatingAdmissionPolicy 'max5' with binding 'max5-b' denied request: "
           "failed expression: object.spec.replicas <= 5")
    assert body["reason"] == "Invalid"
    assert body["message"] == f'deployments.apps "big" is forbidden: {msg}'
    assert body["details"] == {"name": "big", "group": "apps", "kind": "deployments", "causes": [{"message": msg}]}
    status, _, _ = await create_deploy(client, "small", 5)
    assert status == 201


async def test_message_message_expression_and_reason(client, cluster):
    validations = [
        {"expression": "object.spec.replicas <= 5", "message": "too many", "reason": "Forbidden"},
        {"expression": "object.metadata.name != 'bad'",
         "messageExpression": "'name ' + object.metadata.name + ' is not allowed'"},
    ]
    await install(client, cluster, policy("msgs", validations), binding("msgs-b", "msgs"))
    status, body, _ = await create_deploy(client, "many", 6)
    assert status == 403 and body["reason"] == "Forbidden"
    assert body["message"].endswith("denied request: too many")
    status, body, _ = await create_deploy(client, "bad")
    assert status == 422
    assert body["message"].endswith("with binding 'msgs-b' denied request: name bad is not allowed")


async def test_warn_and_audit_actions_admit_with_a_warning(client, cluster):
    await install(client, cluster, policy("warn", MAX5), binding("warn-b", "warn", actions=("Warn", "Audit")))
    status, _, warnings = await create_deploy(client, "big", 7)
    assert status == 201
    assert any("Validation failed for ValidatingAdmissionPolicy 'warn' with binding 'warn-b': "
               "failed expression: object.spec.replicas <= 5" in w for w in warnings)


async def test_params_from_a_configmap_by_name_and_selector(client, cluster):
    for name, limit, labels in (("limits", "3", {"tier": "a"}), ("other", "10", {"tier": "b"})):
        cm = {"metadata": {"name": name, "labels": labels}, "data": {"max": limit}}
        assert (await client.post(CMS.format(ns="default"), json=cm, headers=AUTH)).status == 201
    p = policy("param", [{"expression": "object.spec.replicas <= int(params.data.max)",
                          "messageExpression": "'at most ' + params.data.max + ' replicas'"}],
               paramKind={"apiVersion": "v1", "kind": "ConfigMap"})
    b = binding("param-b", "param", paramRef={"name": "limits", "parameterNotFoundAction": "Deny"})
    await install(client, cluster, p, b)
    status, body, _ = await create_deploy(client, "four", 4)
    assert status == 422 and body["message"].endswith("denied request: at most 3 replicas")
    assert (await create_deploy(client, "three", 3))[0] == 201
    # a namespace without the param: Deny says so in upstream's words
    assert (await client.post(NSS, json={"metadata": {"name": "empty"}}, headers=AUTH)).status == 201
    status, body, _ = await create_deploy(client, "x", 1, ns="empty")
    assert status == 422
    assert body["message"] == (
        'deployments.apps "x" is forbidden: ValidatingAdmissionPolicy \'param\' with binding \'param-b\' denied '
        "request: failed to configure binding: no params found for policy binding with `Deny` "
        "parameterNotFoundAction")
    # by selector: every matching param must pass
    b2 = binding("param-sel", "param", paramRef={"selector": {"matchLabels": {"tier": "b"}},
                                                 "parameterNotFoundAction": "Allow"})
    await client.delete(f"{VAPBS}/param-b", headers=AUTH)
    await install(client, cluster, b2)
    assert (await create_deploy(client, "five", 5))[0] == 201
    assert (await create_deploy(client, "eleven", 11))[0] == 422
    assert (await create_deploy(client, "y", 50, ns="empty"))[0] == 201  # Allow: nothing to check against


async def test_namespace_selector_on_the_binding(client, cluster):
    assert (await client.post(NSS, json={"metadata": {"name": "prod", "labels": {"env": "prod"}}},
                              headers=AUTH)).status == 201
    b = binding("prod-only", "max5p", matchResources={"namespaceSelector": {"matchLabels": {"env": "prod"}}})
    await install(client, cluster, policy("max5p", MAX5), b)
    assert (await create_deploy(client, "big", 9, ns="default"))[0] == 201
    assert (await create_deploy(client, "big", 9, ns="prod"))[0] == 422


async def test_match_constraints_exclude_object_selector_and_names(client, cluster):
    spec = {"matchConstraints": {
        "resourceRules": [{**DEPLOY_RULES[0], "resourceNames": ["a", "b"]}],
        "excludeResourceRules": [{**DEPLOY_RULES[0], "resourceNames": ["b"]}],
        "objectSelector": {"matchExpressions": [{"key": "skip", "operator": "DoesNotExist"}]}}}
    p = policy("sel", [{"expression": "false"}])
    p["spec"].update(spec)
    await install(client, cluster, p, binding("sel-b", "sel"))
    assert (await create_deploy(client, "a"))[0] == 422
    assert (await create_deploy(client, "b"))[0] == 201  # excluded
    assert (await create_deploy(client, "c"))[0] == 201  # not named
    resp = await client.delete(DEPLOYS.format(ns="default") + "/b", headers=AUTH)
    assert resp.status == 200
    assert (await create_deploy(client, "a2"))[0] == 201
    assert (await create_deploy(client, "a", labels={"skip": "yes"}))[0] == 201


async def test_variables_match_conditions_request_and_namespace_object(client, cluster):
    p = policy("vars", [{"expression": "variables.wanted <= 2 || request.userInfo.username == 'nobody'"},
                        {"expression": "namespaceObject.metadata.name == request.namespace"},
                        {"expression": "request.operation == 'CREATE' && oldObject == null"}],
               variables=[{"name": "wanted", "expression": "object.spec.replicas"}],
               matchConditions=[{"name": "not-system", "expression": "!object.metadata.name.startsWith('sys-')"}])
    await install(client, cluster, p, binding("vars-b", "vars"))
    status, body, _ = await create_deploy(client, "three", 3)
    assert status == 422 and "failed expression: variables.wanted <= 2" in body["message"]
    assert (await create_deploy(client, "sys-three", 3))[0] == 201  # matchConditions false: not checked
    assert (await create_deploy(client, "two", 2))[0] == 201


async def test_failure_policy_on_evaluation_errors(client, cluster):
    missing = [{"expression": "object.spec.nothing == 1"}]
    await install(client, cluster, policy("failing", missing), binding("failing-b", "failing"),
                  policy("ignoring", missing, failurePolicy="Ignore"), binding("ignoring-b", "ignoring"))
    status, body, _ = await create_deploy(client, "d")
    assert status == 422
    assert body["message"] == (
        'deployments.apps "d" is forbidden: ValidatingAdmissionPolicy \'failing\' with binding \'failing-b\' '
        "denied request: expression 'object.spec.nothing == 1' resulted in error: no such key: nothing")
    await client.delete(f"{VAPBS}/failing-b", headers=AUTH)
    await settle(cluster)
    assert (await create_deploy(client, "d"))[0] == 201


async def test_authorizer_in_expressions(client, cluster):
    p = policy("authz", [{"expression": "authorizer.group('apps').resource('deployments')"
                                        ".namespace(request.namespace).check('delete').allowed()"},
                         {"expression": "authorizer.requestResource.check('create').allowed()"}])
    await install(client, cluster, p, binding("authz-b", "authz"))
    assert (await create_deploy(client, "ok"))[0] == 201  # the admin may


async def test_deletes_and_other_resources(client, cluster):
    rules = [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["DELETE"], "resources": ["configmaps"]}]
    p = policy("keep", [{"expression": "!has(oldObject.metadata.labels) || "
                                       "!('keep' in oldObject.metadata.labels)"}], rules=rules)
    await install(client, cluster, p, binding("keep-b", "keep"))
    cm = {"metadata": {"name": "kept", "labels": {"keep": "1"}}}
    assert (await client.post(CMS.format(ns="default"), json=cm, headers=AUTH)).status == 201
    resp = await client.delete(CMS.format(ns="default") + "/kept", headers=AUTH)
    assert resp.status == 422 and (await resp.json())["message"].startswith('configmaps "kept" is forbidden: ')
    assert (await create_deploy(client, "untouched", 9))[0] == 201  # the policy names configmaps only


@pytest.mark.parametrize(("obj", "causes"), [
    pytest.param(policy("bad", [{"expression": "object.spec.replicas <"}]),
                 [("spec.validations[0].expression", "Invalid value: \"object.spec.replicas <\": compilation failed: "
                   "ERROR: <input>:1:23: Syntax error: mismatched input '<EOF>' expecting")], id="syntax"),
    pytest.param(policy("bad", [{"expression": "params.x"}]),
                 [("spec.validations[0].expression", "compilation failed: ERROR: <input>:1:1: undeclared "
                   "reference to 'params' (in container '')")], id="params-without-paramKind"),
    pytest.param(policy("bad", [{"expression": "true", "messageExpression": "authorizer.path('/').check('get')"
                                                                          ".reason()"}]),
                 [("spec.validations[0].messageExpression", "undeclared reference to 'authorizer'")],
                 id="authorizer-in-message"),
    pytest.param(policy("bad", [], failurePolicy="Sometimes", rules=[{"apiGroups": ["apps"]}]),
                 [("spec.failurePolicy", 'Unsupported value: "Sometimes": supported values: "Fail", "Ignore"'),
                  ("spec.matchConstraints.resourceRules[0].operations", "Required value"),
                  ("spec.validations", "Required value: validations or auditAnnotations must contain at least "
                                       "one item")], id="fields"),
    pytest.param(binding("bad", "p", actions=("Deny", "Warn", "Nope"), paramRef={"name": "x"}),
                 [("spec.validationActions[2]", 'Unsupported value: "Nope": supported values: "Audit", "Deny", '
                                                '"Warn"'),
                  ("spec.validationActions", "must not contain both Deny and Warn"),
                  ("spec.paramRef.parameterNotFoundAction", "Required value")], id="binding"),
    pytest.param(binding("bad", "p", actions=()),
                 [("spec.validationActions", "Required value: at least one validation action is required")],
                 id="no-actions"),
])
async def test_bad_policies_are_refused_with_field_causes(client, obj, causes):
    url = VAPS if obj["kind"] == "ValidatingAdmissionPolicy" else VAPBS
    resp = await client.post(url, json=obj, headers=AUTH)
    body = await resp.json()
    assert resp.status == 422 and body["reason"] == "Invalid", body
    got = [(c["field"], c["message"]) for c in body["details"]["causes"]]
    for path, text in causes:
        assert any(f == path and text in m for f, m in got), (path, text, got)


async def test_expressions_see_the_fields_they_read_whatever_their_shape(client, cluster):
    # each policy reads the object differently; what a request converts for CEL must not change
    # what an expression sees (absent fields, whole objects, optionals, message-only fields)
    cases = [
        ("absent", "!has(object.spec.paused)", None),
        ("whole", "size(object) >= 4 && object.kind == 'Deployment'", None),
        ("optional", "object.?spec.?paused.orValue(false) == false", None),
        ("message", "object.spec.replicas <= 5", "object.metadata.name + ' asks for ' + string(object.spec.replicas)"),
        ("index", "object['metadata']['labels']['team'] == 'a'", None),
    ]
    objects = []
    for name, expression, message in cases:
        v = {"expression": expression, **({"messageExpression": message} if message else {})}
        objects += [policy(name, [v]), binding(f"{name}-b", name)]
    await install(client, cluster, *objects)
    assert (await create_deploy(client, "fine", 2, labels={"team": "a"}))[0] == 201
    status, body, _ = await create_deploy(client, "wide", 9, labels={"team": "a"})
    assert status == 422 and body["message"].endswith("with binding 'message-b' denied request: wide asks for 9")
    status, body, _ = await create_deploy(client, "other", 1, labels={"team": "b"})
    assert status == 422 and "failed expression: object['metadata']['labels']['team'] == 'a'" in body["message"]


async def test_the_authorizer_answers_for_the_requesting_user(client, cluster):
    p = policy("who", [{"expression": "authorizer.group('').resource('secrets').namespace('default')"
                                      ".check('list').allowed()",
                        "messageExpression": "request.userInfo.username + ' may not list secrets'"}])
    await install(client, cluster, p, binding("who-b", "who"))
    assert (await create_deploy(client, "admin-made"))[0] == 201  # system:masters may
    rules = [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["create"]}]
    role = {"metadata": {"name": "deployer"}, "rules": rules}
    rb = {"metadata": {"name": "jane-deployer"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                                              "name": "deployer"},
          "subjects": [{"kind": "User", "name": "jane", "apiGroup": "rbac.authorization.k8s.io"}]}
    rbac = "/clusters/c1/apis/rbac.authorization.k8s.io/v1/namespaces/default"
    assert (await client.post(f"{rbac}/roles", json=role, headers=AUTH)).status == 201
    assert (await client.post(f"{rbac}/rolebindings", json=rb, headers=AUTH)).status == 201
    await settle(cluster)
    resp = await client.post(DEPLOYS.format(ns="default"), json=deployment("jane-made"),
                             headers={**AUTH, "Impersonate-User": "jane"})
    body = await resp.json()
    assert resp.status == 422, body
    assert body["message"].endswith("denied request: jane may not list secrets")


@pytest.mark.parametrize(("match_policy", "refused"), [("Equivalent", True), ("Exact", False)])
async def test_match_policy_equivalent_matches_the_same_resource_in_another_group(client, cluster, match_policy,
                                                                                  refused):
    rules = [{"apiGroups": ["events.k8s.io"], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["events"]}]
    # the object is seen in the version matched: events.k8s.io/v1 calls the message `note`
    p = policy("events", [{"expression": "request.kind.group == 'events.k8s.io' && object.note != 'bad'"}],
               rules=rules)
    p["spec"]["matchConstraints"]["matchPolicy"] = match_policy
    await install(client, cluster, p, binding("events-b", "events"))
    event = {"metadata": {"name": "e1"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
             "reason": "Seen", "message": "bad", "type": "Normal"}
    resp = await client.post("/clusters/c1/api/v1/namespaces/default/events", json=event, headers=AUTH)
    assert resp.status == (422 if refused else 201), await resp.text()


async def test_the_index_follows_policies_and_bindings_in_any_order(client, cluster):
    await install(client, cluster, binding("early-b", "late"))  # a binding before its policy
    await install(client, cluster, policy("late", MAX5))
    assert (await create_deploy(client, "one", 6))[0] == 422
    await install(client, cluster, policy("unbound", [{"expression": "false"}]))  # no binding: never evaluated
    assert (await create_deploy(client, "two", 1))[0] == 201
    assert (await client.delete(f"{VAPS}/late", headers=AUTH)).status == 200
    await settle(cluster)
    assert (await create_deploy(client, "three", 6))[0] == 201  # the binding names a policy that is gone
    resp = await client.get(f"{VAPS}/unbound", headers=AUTH)
    unbound = await resp.json()
    unbound["spec"]["validations"] = [{"expression": "true"}]
    assert (await client.put(f"{VAPS}/unbound", json=unbound, headers=AUTH)).status == 200
    await install(client, cluster, binding("unbound-b", "unbound"))
    assert (await create_deploy(client, "four", 6))[0] == 201  # the new generation was compiled


async def test_connect_is_checked_with_its_options_object(client, cluster):
    rules = [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CONNECT"], "resources": ["pods/exec"]}]
    validations = [{"expression": "!object.command.exists(c, c == 'rm')",
                    "messageExpression": "'no rm in ' + request.name + ' (' + object.kind + ')'"}]
    await install(client, cluster, policy("no-rm", validations, rules=rules), binding("no-rm-b", "no-rm"))
    pod = {"metadata": {"name": "box"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    resp = await client.post("/clusters/c1/api/v1/namespaces/default/pods", json=pod, headers=AUTH)
    assert resp.status == 201, await resp.text()
    resp = await client.get("/clusters/c1/api/v1/namespaces/default/pods/box/exec?command=rm&command=-rf&stdout=1",
                            headers=AUTH)
    body = await resp.json()
    assert resp.status == 422, body
    assert body["message"].endswith("denied request: no rm in box (PodExecOptions)")
