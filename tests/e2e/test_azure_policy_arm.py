"""Azure Policy on the management plane of a real `lks up`: the built-in Kubernetes definitions and
initiatives over raw HTTPS, assignments at subscription, group and cluster scope through the `lks
policy` CLI (az's arguments, `--params` as JSON and `@file`), ARM's errors for bad input (unknown
or mistyped parameters, unknown definitions, a scope that does not exist), custom
`Microsoft.Kubernetes.Data` definitions, and the policy state query and summary answers."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from typing import Any

import pytest

from .conftest import LKS, lks_cli, lks_json

API = "api-version=2023-04-01"
NO_PRIVILEGE = "95edb821-ddaf-4404-9732-666045e056b4"
ALLOWED_IMAGES = "febd0533-8e55-448f-b837-bd0e06f16469"
BASELINE = "a8640138-9b0a-4a28-b8cb-1666c838647d"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = LKS(tmp_path_factory.mktemp("lks-policy"))
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def config(server) -> dict[str, Any]:
    return json.loads((server.home / "config.json").read_text())


@pytest.fixture(scope="module")
def arm(config):
    ctx = ssl.create_default_context(cafile=config["ca_file"])

    def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        req = urllib.request.Request(config["endpoint"] + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {config['token']}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=60) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            raw = err.read()
            return err.code, json.loads(raw) if raw else None
    return call


def _error(server: LKS, *args: str) -> str:
    res = lks_cli(server, *args)
    assert res.returncode != 0, res.stdout
    return res.stderr


def test_builtin_catalog_over_https(arm, config):
    status, body = arm("GET", f"/providers/Microsoft.Authorization/policyDefinitions/{NO_PRIVILEGE}?{API}")
    assert status == 200
    assert body["properties"]["displayName"] == "Kubernetes cluster should not allow privileged containers"
    assert body["properties"]["policyRule"]["then"]["details"]["templateInfo"]["url"] == \
        "https://store.policy.core.windows.net/kubernetes/container-no-privilege/v2/template.yaml"
    sub = config["subscription_id"]
    status, body = arm("GET", f"/subscriptions/{sub}/providers/Microsoft.Authorization/policySetDefinitions?{API}")
    assert status == 200
    assert {d["name"] for d in body["value"]} == {BASELINE, "42b8ef37-b724-4e24-bbc8-7a7708edfe00"}
    status, body = arm("GET", f"/providers/Microsoft.Authorization/policyDefinitions/{NO_PRIVILEGE}?"
                       "api-version=1999-01-01")
    assert (status, body["error"]["code"]) == (400, "NoRegisteredProviderFound")


def test_assignments_through_the_cli(server, config, tmp_path):
    sub = config["subscription_id"]
    shown = lks_json(server, "policy", "definition", "show", "--name", NO_PRIVILEGE)
    assert shown["mode"] == "Microsoft.Kubernetes.Data" and shown["policyType"] == "BuiltIn"
    assert any(d["name"] == ALLOWED_IMAGES for d in lks_json(server, "policy", "definition", "list"))
    assert lks_json(server, "policy", "set-definition", "show", "-n", BASELINE)["displayName"] == \
        "Kubernetes cluster pod security baseline standards for Linux-based workloads"

    made = lks_json(server, "policy", "assignment", "create", "--name", "no-priv", "-g", "demo",
                    "--policy", NO_PRIVILEGE, "--params", '{"effect": {"value": "Audit"}}',
                    "--display-name", "No privileged containers")
    assert made["scope"] == f"/subscriptions/{sub}/resourceGroups/demo"
    assert made["parameters"] == {"effect": {"value": "Audit"}} and made["enforcementMode"] == "Default"
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"allowedContainerImagesRegex": "^myregistry[.]azurecr[.]io/.+$"}))
    cluster = f"/subscriptions/{sub}/resourceGroups/demo/providers/Microsoft.ContainerService/managedClusters/demo"
    made = lks_json(server, "policy", "assignment", "create", "-n", "images", "--scope", cluster,
                    "--policy", ALLOWED_IMAGES, "--params", f"@{params}", "--enforcement-mode", "DoNotEnforce")
    assert made["scope"] == cluster and made["enforcementMode"] == "DoNotEnforce"
    made = lks_json(server, "policy", "assignment", "create", "-n", "baseline",
                    "--policy-set-definition", BASELINE, "--not-scopes", cluster)
    assert made["scope"] == f"/subscriptions/{sub}" and made["notScopes"] == [cluster]

    at_group = lks_json(server, "policy", "assignment", "list", "-g", "demo")
    assert [a["name"] for a in at_group] == ["no-priv"]
    around = lks_json(server, "policy", "assignment", "list", "-g", "demo", "--disable-scope-strict-match")
    assert {a["name"] for a in around} == {"no-priv", "images", "baseline"}
    assert lks_json(server, "policy", "assignment", "show", "-n", "images", "--scope", cluster)["name"] == "images"

    # bad input: ARM's errors, as az prints them
    assert "(UndefinedPolicyParameter) The policy assignment 'x' has the parameter(s) 'effekt' which are not " \
           f"defined in the policy definition '{NO_PRIVILEGE}'." in _error(
               server, "policy", "assignment", "create", "-n", "x", "--policy", NO_PRIVILEGE,
               "--params", '{"effekt": {"value": "Deny"}}')
    assert "(MissingPolicyParameter)" in _error(server, "policy", "assignment", "create", "-n", "x",
                                                "--policy", ALLOWED_IMAGES)
    assert "(InvalidPolicyParameterValue)" in _error(server, "policy", "assignment", "create", "-n", "x",
                                                     "--policy", NO_PRIVILEGE,
                                                     "--params", '{"excludedImages": "nginx"}')
    assert "(PolicyParameterValueNotAllowed)" in _error(server, "policy", "assignment", "create", "-n", "x",
                                                        "--policy", NO_PRIVILEGE, "--params", '{"effect": "Mutate"}')
    assert "(PolicyDefinitionNotFound) The policy definition 'nope' could not be found." in _error(
        server, "policy", "assignment", "create", "-n", "x", "--policy", "nope")
    assert "(ResourceGroupNotFound) Resource group 'nogroup' could not be found." in _error(
        server, "policy", "assignment", "create", "-n", "x", "--policy", NO_PRIVILEGE, "-g", "nogroup")
    assert "(ResourceNotFound)" in _error(server, "policy", "assignment", "create", "-n", "x",
                                          "--policy", NO_PRIVILEGE, "--scope", cluster[:-len("demo")] + "gone")

    assert lks_cli(server, "policy", "assignment", "delete", "-n", "images", "--scope", cluster).returncode == 0
    assert "(PolicyAssignmentNotFound)" in _error(server, "policy", "assignment", "show", "-n", "images",
                                                  "--scope", cluster)


def test_custom_kubernetes_definition(server, tmp_path):
    template = ("apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata:\n"
                "  name: k8sdenylabel\nspec:\n  crd:\n    spec:\n      names:\n        kind: K8sDenyLabel\n"
                "  targets:\n  - target: admission.k8s.gatekeeper.sh\n    rego: |\n      package k8sdenylabel\n"
                "      violation[{\"msg\": \"labelled\"}] { input.review.object.metadata.labels.deny }\n")
    rules = {"if": {"field": "type", "in": ["Microsoft.ContainerService/managedClusters"]},
             "then": {"effect": "[parameters('effect')]", "details": {
                 "templateInfo": {"sourceType": "Base64Encoded",
                                  "content": base64.b64encode(template.encode()).decode()},
                 "apiGroups": [""], "kinds": ["Pod"], "excludedNamespaces": "[parameters('excludedNamespaces')]"}}}
    (tmp_path / "rules.json").write_text(json.dumps(rules))
    params = {"effect": {"type": "String", "defaultValue": "Deny", "allowedValues": ["Audit", "Deny", "Disabled"]},
              "excludedNamespaces": {"type": "Array", "defaultValue": ["kube-system"]}}
    made = lks_json(server, "policy", "definition", "create", "-n", "deny-label", "--mode",
                    "Microsoft.Kubernetes.Data", "--rules", str(tmp_path / "rules.json"),
                    "--params", json.dumps(params), "--display-name", "Deny labelled pods")
    assert made["policyType"] == "Custom" and made["mode"] == "Microsoft.Kubernetes.Data"
    assert lks_json(server, "policy", "assignment", "create", "-n", "deny-label", "-g", "demo",
                    "--policy", "deny-label")["policyDefinitionId"] == made["id"]
    rules["then"]["details"]["templateInfo"]["content"] = base64.b64encode(b"kind: Deployment\n").decode()
    (tmp_path / "rules.json").write_text(json.dumps(rules))
    assert "(InvalidPolicyRule)" in _error(server, "policy", "definition", "create", "-n", "broken", "--mode",
                                           "Microsoft.Kubernetes.Data", "--rules", str(tmp_path / "rules.json"))
    assert lks_cli(server, "policy", "definition", "delete", "-n", "deny-label").returncode == 0


def test_policy_states_answers(server, arm, config):
    sub = config["subscription_id"]
    states = lks_json(server, "policy", "state", "list", "-g", "demo", "--filter",
                      "ComplianceState eq 'NonCompliant'", "--top", "10")
    assert isinstance(states, list)
    summary = lks_json(server, "policy", "state", "summarize", "--resource", "demo", "-g", "demo")
    assert set(summary["results"]) >= {"nonCompliantResources", "nonCompliantPolicies", "resourceDetails"}
    assert "odataContext" in summary and "@odata.context" not in summary
    status, body = arm("POST", f"/subscriptions/{sub}/providers/Microsoft.PolicyInsights/policyStates/latest/"
                       "queryResults?api-version=2019-10-01&$filter=ComplianceState%20eq")
    assert (status, body["error"]["code"]) == (400, "InvalidFilterInQueryString")
    status, body = arm("POST", f"/subscriptions/{sub}/resourceGroups/nogroup/providers/Microsoft.PolicyInsights/"
                       "policyStates/latest/queryResults?api-version=2019-10-01")
    assert (status, body["error"]["code"]) == (404, "ResourceGroupNotFound")


def test_azure_rbac_on_policy_routes(server, arm, config):
    """A Reader of the group reads its assignments and its compliance (policy state queries are
    reads in Azure) but cannot assign; a Contributor cannot either (Contributor's NotActions hold
    Microsoft.Authorization/*/Write, as in Azure); the Owner can."""
    from .test_azure_rbac import denied, login, principal

    sub = f"/subscriptions/{config['subscription_id']}"
    group = f"{sub}/resourceGroups/demo"
    body = {"properties": {"policyDefinitionId":
                           f"/providers/Microsoft.Authorization/policyDefinitions/{NO_PRIVILEGE}"}}
    assert arm("PUT", f"{group}/providers/Microsoft.Authorization/policyAssignments/rbac-seen?{API}", body)[0] == 201
    for role in ("Reader", "Contributor"):
        sp = principal(server, role.lower())
        lks_json(server, "role", "assignment", "create", "--assignee", sp["appId"], "--role", role,
                 "--resource-group", "demo")
        caller = login(config, sp)
        status, listed = caller("GET", f"{group}/providers/Microsoft.Authorization/policyAssignments?{API}")
        assert status == 200 and "rbac-seen" in {a["name"] for a in listed["value"]}
        assert caller("GET", f"{group}/providers/Microsoft.Authorization/policyAssignments/rbac-seen?{API}")[0] == 200
        assert caller("POST", f"{group}/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults?"
                      "api-version=2019-10-01")[0] == 200
        target = f"{group}/providers/Microsoft.Authorization/policyAssignments/by-{role.lower()}"
        denied(caller("PUT", f"{target}?{API}", body), sp["appId"], "Microsoft.Authorization/policyAssignments/write",
               target)


_DEF = f"/providers/Microsoft.Authorization/policyDefinitions/{NO_PRIVILEGE}"


@pytest.mark.parametrize(("name", "body", "code"), [
    pytest.param("a", [], "InvalidRequestContent", id="body-not-an-object"),
    pytest.param("a", {"properties": "x"}, "InvalidRequestContent", id="properties-not-an-object"),
    pytest.param("a", {"properties": {"policyDefinitionId": 5}}, "InvalidRequestContent", id="definition-not-a-string"),
    pytest.param("a", {"properties": {"policyDefinitionId": _DEF, "parameters": []}}, "InvalidRequestContent",
                 id="parameters-not-an-object"),
    pytest.param("a", {"properties": {"policyDefinitionId": _DEF, "parameters": {"effect": "Deny"}}},
                 "InvalidRequestContent", id="parameter-without-value"),
    pytest.param("a", {"properties": {"policyDefinitionId": _DEF, "enforcementMode": "Sometimes"}},
                 "InvalidRequestContent", id="bad-enforcement-mode"),
    pytest.param("a", {"properties": {"policyDefinitionId": _DEF, "notScopes": "everything"}}, "InvalidNotScopes",
                 id="not-scopes-not-a-list"),
    pytest.param("x" * 65, {"properties": {"policyDefinitionId": _DEF}}, "InvalidPolicyAssignmentName",
                 id="name-too-long"),
    pytest.param("a", {"properties": {"policyDefinitionId": "/subscriptions/x/providers/Microsoft.Authorization/"
                                                            "policySetDefinitions/none"}},
                 "PolicySetDefinitionNotFound", id="unknown-initiative"),
])
def test_hostile_assignment_requests(arm, config, name, body, code):
    status, answer = arm("PUT", f"/subscriptions/{config['subscription_id']}/providers/Microsoft.Authorization/"
                         f"policyAssignments/{name}?{API}", body)
    assert 400 <= status < 500 and answer["error"]["code"] == code, answer


def test_a_deleted_group_takes_its_policy_assignments_along(server, config):
    sub = config["subscription_id"]
    lks_json(server, "group", "create", "-n", "short-lived", "-l", "eastus")
    lks_json(server, "policy", "assignment", "create", "-n", "temp", "-g", "short-lived", "--policy", NO_PRIVILEGE)
    assert lks_cli(server, "group", "delete", "-n", "short-lived", "-y").returncode == 0
    around = lks_json(server, "policy", "assignment", "list", "--disable-scope-strict-match")
    assert f"/subscriptions/{sub}/resourceGroups/short-lived" not in {a["scope"] for a in around}
    lks_json(server, "group", "create", "-n", "short-lived", "-l", "eastus")  # a new group of the same name
    assert "(PolicyAssignmentNotFound)" in _error(server, "policy", "assignment", "show", "-n", "temp",
                                                  "-g", "short-lived")
