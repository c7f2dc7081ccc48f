"""Azure Policy's ARM routes (`lks.arm.policy`) through a real aiohttp client against the
management API on a memory store: the built-in catalog, custom Kubernetes definitions,
assignments at every scope with ARM's parameter errors, and policy states reported as the
in-cluster audit reports them (`lks.policy.azure.states`), queried and summarised."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from lks.arm import policy
from lks.arm.app import ManagementAPI
from lks.arm.documents import Documents
from lks.arm.errors import group_not_found
from lks.clock import ManualClock
from lks.policy.azure import assignments, states
from lks.store.backends.memory import MemoryBackend

SUB = "00000000-0000-0000-0000-000000000001"
TOKEN = "t0ken"
API = "api-version=2023-04-01"
INSIGHTS = "api-version=2019-10-01"
NO_PRIVILEGE = "/providers/Microsoft.Authorization/policyDefinitions/95edb821-ddaf-4404-9732-666045e056b4"
ALLOWED_IMAGES = "/providers/Microsoft.Authorization/policyDefinitions/febd0533-8e55-448f-b837-bd0e06f16469"
BASELINE = "/providers/Microsoft.Authorization/policySetDefinitions/a8640138-9b0a-4a28-b8cb-1666c838647d"
RG = f"/subscriptions/{SUB}/resourceGroups/rg1"
CLUSTER = f"{RG}/providers/Microsoft.ContainerService/managedClusters/c1"


class _Groups:
    def __init__(self, docs: Documents):
        self.docs = docs

    async def require(self, subscription: str, name: str) -> dict:
        stored = await self.docs.get(f"/subscriptions/{subscription}/resourcegroups/{name}")
        if stored is None:
            raise group_not_found(name)
        return stored.doc


class _Plane:
    """What `lks.arm.policy` reads of the management plane."""

    def __init__(self, backend: MemoryBackend):
        self.docs = Documents(backend)
        self.clock = ManualClock()
        self.groups = _Groups(self.docs)
        self.endpoint = "https://127.0.0.1:8443"


@pytest.fixture
async def env():
    backend = MemoryBackend()
    plane = _Plane(backend)
    await plane.docs.put({"id": f"/subscriptions/{SUB}/resourceGroups/rg1", "name": "rg1"})
    await plane.docs.put({"id": CLUSTER, "name": "c1", "type": "Microsoft.ContainerService/managedClusters"})
    api = ManagementAPI(token=TOKEN, subscription_id=SUB, routes=policy.routes(plane))
    app = web.Application()
    app.add_routes(api.aiohttp_routes())
    client = TestClient(TestServer(app))
    await client.start_server()

    async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        r = await client.request(method, path, json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        text = await r.text()
        import json
        return r.status, json.loads(text) if text else None

    yield call, backend
    await client.close()


def _assign(definition: str, params: dict | None = None, **props: Any) -> dict:
    return {"properties": {"policyDefinitionId": definition, "parameters": params or {}, **props}}


async def test_builtins_listed_and_shown_with_their_real_names(env):
    call, _ = env
    status, body = await call("GET", f"/providers/Microsoft.Authorization/policyDefinitions?{API}")
    assert status == 200
    names = {d["name"]: d for d in body["value"]}
    assert len(names) == 25
    d = names["95edb821-ddaf-4404-9732-666045e056b4"]
    assert d["properties"]["displayName"] == "Kubernetes cluster should not allow privileged containers"
    assert d["properties"]["mode"] == "Microsoft.Kubernetes.Data"
    details = d["properties"]["policyRule"]["then"]["details"]
    assert details["templateInfo"]["url"].startswith("https://store.policy.core.windows.net/kubernetes/")
    assert details["kinds"] == ["Pod"]
    status, body = await call("GET", f"/subscriptions/{SUB}{ALLOWED_IMAGES}?{API}")
    assert status == 200 and body["id"] == ALLOWED_IMAGES
    status, body = await call("GET", f"{BASELINE}?{API}")
    assert body["properties"]["displayName"] == \
        "Kubernetes cluster pod security baseline standards for Linux-based workloads"
    status, body = await call("GET", f"/providers/Microsoft.Authorization/policyDefinitions/nope?{API}")
    assert (status, body["error"]["code"]) == (404, "PolicyDefinitionNotFound")


async def test_assignment_at_each_scope_and_parameter_errors(env):
    call, _ = env
    base = "/providers/Microsoft.Authorization/policyAssignments"
    status, body = await call("PUT", f"{RG}{base}/nopriv?{API}", _assign(NO_PRIVILEGE, {"effect": {"value": "Audit"}},
                                                                          notScopes=[CLUSTER]))
    assert status == 201, body
    assert body["properties"]["scope"] == RG and body["properties"]["enforcementMode"] == "Default"
    status, body = await call("PUT", f"{CLUSTER}{base}/c1only?{API}", _assign(NO_PRIVILEGE))
    assert status == 201, body
    status, body = await call("PUT", f"/subscriptions/{SUB}{base}/subwide?{API}",
                              _assign(BASELINE, enforcementMode="DoNotEnforce"))
    assert status == 201 and body["properties"]["enforcementMode"] == "DoNotEnforce"

    status, body = await call("GET", f"{RG}{base}?{API}")
    assert {a["name"] for a in body["value"]} == {"nopriv", "c1only", "subwide"}
    status, body = await call("GET", f"{RG}{base}?{API}&$filter=atScope()")
    assert {a["name"] for a in body["value"]} == {"nopriv", "subwide"}

    status, body = await call("PUT", f"{RG}{base}/bad?{API}", _assign(NO_PRIVILEGE, {"effekt": {"value": "Deny"}}))
    assert (status, body["error"]["code"]) == (400, "UndefinedPolicyParameter")
    assert body["error"]["message"] == ("The policy assignment 'bad' has the parameter(s) 'effekt' which are not "
                                        "defined in the policy definition '95edb821-ddaf-4404-9732-666045e056b4'.")
    status, body = await call("PUT", f"{RG}{base}/bad?{API}", _assign(ALLOWED_IMAGES))
    assert (status, body["error"]["code"]) == (400, "MissingPolicyParameter")
    assert "'allowedContainerImagesRegex'" in body["error"]["message"]
    status, body = await call("PUT", f"{RG}{base}/bad?{API}",
                              _assign(NO_PRIVILEGE, {"excludedContainers": {"value": "c1"}}))
    assert (status, body["error"]["code"]) == (400, "InvalidPolicyParameterValue")
    assert "The expected policy parameter type: 'Array'. The actual policy parameter type 'String'." in \
        body["error"]["message"]
    status, body = await call("PUT", f"{RG}{base}/bad?{API}", _assign(NO_PRIVILEGE, {"effect": {"value": "Mutate"}}))
    assert (status, body["error"]["code"]) == (400, "PolicyParameterValueNotAllowed")
    assert body["error"]["message"] == ("The value 'Mutate' is not allowed for policy parameter 'effect' in policy "
                                        "definition '95edb821-ddaf-4404-9732-666045e056b4 version 9.2.0'. The "
                                        "allowed values are 'Audit, Deny, Disabled'.")
    status, body = await call("PUT", f"{RG}{base}/bad?{API}",
                              _assign("/providers/Microsoft.Authorization/policyDefinitions/nope"))
    assert (status, body["error"]["code"]) == (404, "PolicyDefinitionNotFound")
    status, body = await call("PUT", f"/subscriptions/{SUB}/resourceGroups/nogroup{base}/a?{API}",
                              _assign(NO_PRIVILEGE))
    assert (status, body["error"]["code"]) == (404, "ResourceGroupNotFound")
    status, body = await call("PUT", f"{RG}/providers/Microsoft.ContainerService/managedClusters/c9{base}/a?{API}",
                              _assign(NO_PRIVILEGE))
    assert (status, body["error"]["code"]) == (404, "ResourceNotFound")
    assert "'Microsoft.ContainerService/managedClusters/c9'" in body["error"]["message"]

    status, body = await call("DELETE", f"{RG}{base}/nopriv?{API}")
    assert status == 200 and body["name"] == "nopriv"
    status, _ = await call("DELETE", f"{RG}{base}/nopriv?{API}")
    assert status == 204
    status, body = await call("GET", f"{RG}{base}/nopriv?{API}")
    assert (status, body["error"]["code"]) == (404, "PolicyAssignmentNotFound")


async def test_applying_to_honours_not_scopes_and_resolves_details(env):
    call, backend = env
    base = "/providers/Microsoft.Authorization/policyAssignments"
    await call("PUT", f"{RG}{base}/nopriv?{API}", _assign(NO_PRIVILEGE, {"effect": {"value": "audit"},
                                                                           "excludedNamespaces": {"value": ["x"]}}))
    await call("PUT", f"{RG}{base}/skip?{API}", _assign(NO_PRIVILEGE, notScopes=[CLUSTER]))
    await call("PUT", f"/subscriptions/{SUB}{base}/base?{API}", _assign(BASELINE))
    found = await assignments.PolicyStore(backend).applying_to(CLUSTER)
    names = sorted((f["assignment"]["name"], f["policyDefinitionReferenceId"]) for f in found)
    assert ("skip", "") not in names and ("nopriv", "") in names
    assert len([n for n in names if n[0] == "base"]) == 5  # the baseline initiative's five members
    nopriv = next(f for f in found if f["assignment"]["name"] == "nopriv")
    assert nopriv["effect"] == "Audit"
    assert nopriv["details"]["excludedNamespaces"] == ["x"]
    assert nopriv["details"]["values"] == {"excludedContainers": [], "excludedImages": []}


async def test_custom_kubernetes_definition(env):
    call, _ = env
    template = ("apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata:\n  name: k8sdenyall\n"
                "spec:\n  crd:\n    spec:\n      names:\n        kind: K8sDenyAll\n  targets:\n"
                "  - target: admission.k8s.gatekeeper.sh\n    rego: |\n      package k8sdenyall\n"
                "      violation[{\"msg\": \"denied\"}] { true }\n")
    rule = {"if": {"field": "type", "in": ["Microsoft.ContainerService/managedClusters"]},
            "then": {"effect": "[parameters('effect')]", "details": {
                "templateInfo": {"sourceType": "Base64Encoded", "content": base64.b64encode(template.encode()).decode()},
                "apiGroups": [""], "kinds": ["Pod"]}}}
    body = {"properties": {"mode": "Microsoft.Kubernetes.Data", "displayName": "deny all",
                           "parameters": {"effect": {"type": "String", "defaultValue": "Deny",
                                                     "allowedValues": ["Audit", "Deny", "Disabled"]}},
                           "policyRule": rule}}
    path = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyDefinitions/denyall?{API}"
    status, doc = await call("PUT", path, body)
    assert status == 201, doc
    assert doc["properties"]["policyType"] == "Custom"
    status, listed = await call("GET", f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyDefinitions?"
                                f"{API}&$filter=policyType eq 'Custom'")
    assert [d["name"] for d in listed["value"]] == ["denyall"]
    rule["then"]["details"]["templateInfo"]["content"] = base64.b64encode(b"kind: Pod\n").decode()
    status, err = await call("PUT", path, body)
    assert (status, err["error"]["code"]) == (400, "InvalidPolicyRule")
    status, _ = await call("DELETE", path)
    assert status == 200


async def test_policy_states_query_and_summarize(env):
    call, backend = env
    base = "/providers/Microsoft.Authorization/policyAssignments"
    _, assignment = await call("PUT", f"{RG}{base}/nopriv?{API}", _assign(NO_PRIVILEGE))
    _, definition = await call("GET", f"{NO_PRIVILEGE}?{API}")
    store = states.ComplianceStates(backend)
    await store.report(cluster_id=CLUSTER, assignment=assignment, definition=definition, timestamp="2026-12-07T00:00:00Z",
                       effect="deny", components=[
                           states.Component("Pod", "priv", "default", compliant=False, message="Privileged"),
                           states.Component("Pod", "fine", "default", compliant=True)])
    status, body = await call("POST", f"{RG}/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults?"
                              f"{INSIGHTS}&$expand=components")
    assert status == 200, body
    assert body["@odata.count"] == 1
    state = body["value"][0]
    assert state["resourceId"] == CLUSTER and state["complianceState"] == "NonCompliant"
    assert state["policyAssignmentName"] == "nopriv"
    assert [c["id"] for c in state["components"] if c["complianceState"] == "NonCompliant"] == ["default/priv"]
    status, body = await call("POST", f"/subscriptions/{SUB}/providers/Microsoft.PolicyInsights/policyStates/latest/"
                              f"queryResults?{INSIGHTS}&$filter=ComplianceState eq 'Compliant'")
    assert body["value"] == []
    status, body = await call("POST", f"{RG}/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults?"
                              f"{INSIGHTS}&$select=ResourceId,ComplianceState&$orderby=timestamp desc&$top=5")
    assert [{k: v for k, v in s.items() if not k.startswith("@")} for s in body["value"]] == [
        {"resourceId": CLUSTER, "complianceState": "NonCompliant"}]
    status, body = await call("POST", f"/subscriptions/{SUB}/providers/Microsoft.PolicyInsights/policyStates/latest/"
                              f"queryResults?{INSIGHTS}&$filter=ComplianceState eq")
    assert (status, body["error"]["code"]) == (400, "InvalidFilterInQueryString")
    status, body = await call("POST", f"{CLUSTER}/providers/Microsoft.PolicyInsights/policyStates/latest/summarize?"
                              f"{INSIGHTS}")
    assert status == 200
    results = body["value"][0]["results"]
    assert results["nonCompliantResources"] == 1 and results["nonCompliantPolicies"] == 1
    assert body["value"][0]["policyAssignments"][0]["policyAssignmentId"] == assignment["id"]
    await call("DELETE", f"{RG}{base}/nopriv?{API}")
    _, body = await call("POST", f"{RG}/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults?{INSIGHTS}")
    assert body["value"] == []
