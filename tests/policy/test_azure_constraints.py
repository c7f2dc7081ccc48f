"""From assignments to what a cluster installs (`lks.policy.azure.constraints`): the assignments
reaching a cluster (scope, notScopes, initiatives), each turned into its template and a constraint
whose enforcementAction follows the effect and the enforcement mode, whose match and parameters
are the resolved details, and which the template's Rego judges as the definition says."""

from __future__ import annotations

from pathlib import Path

import yaml

from lks.policy.azure import assignments, constraints, states
from lks.policy.rego import program
from lks.store.backends.memory import MemoryBackend

SUB = "/subscriptions/s1"
RG = f"{SUB}/resourceGroups/rg1"
CLUSTER = f"{RG}/providers/Microsoft.ContainerService/managedClusters/c1"
OTHER = f"{SUB}/resourceGroups/rg2/providers/Microsoft.ContainerService/managedClusters/c2"
NO_PRIVILEGE = "/providers/Microsoft.Authorization/policyDefinitions/95edb821-ddaf-4404-9732-666045e056b4"
LABELS = "/providers/Microsoft.Authorization/policyDefinitions/46592696-4c7b-4bf3-9e45-6c2763bdc0a6"
RESTRICTED = "/providers/Microsoft.Authorization/policySetDefinitions/42b8ef37-b724-4e24-bbc8-7a7708edfe00"


def _assignment(scope: str, name: str, definition: str, params: dict | None = None, **props) -> dict:
    return {"id": f"{scope}/providers/Microsoft.Authorization/policyAssignments/{name}", "name": name,
            "type": "Microsoft.Authorization/policyAssignments",
            "properties": {"scope": scope, "policyDefinitionId": definition, "notScopes": [],
                           "parameters": {k: {"value": v} for k, v in (params or {}).items()},
                           "enforcementMode": "Default", **props}}


async def _store(*docs: dict) -> assignments.PolicyStore:
    store = assignments.PolicyStore(MemoryBackend())
    for doc in docs:
        await store.put_assignment(doc)
    return store


async def test_deny_at_a_group_reaches_its_clusters_only():
    store = await _store(_assignment(RG, "nopriv", NO_PRIVILEGE, {"effect": "Deny", "excludedContainers": ["side"]}))
    assert await store.applying_to(OTHER) == []
    want = constraints.desired(await store.applying_to(CLUSTER))
    assert list(want.templates) == ["k8sazurev2noprivilege"]
    (c,) = want.constraints
    assert c["kind"] == "K8sAzureV2NoPrivilege"
    assert c["metadata"]["name"].startswith("azurepolicy-k8sazurev2noprivilege-")
    assert c["spec"]["enforcementAction"] == "deny"
    assert c["spec"]["match"]["kinds"] == [{"apiGroups": [""], "kinds": ["Pod"]}]
    assert "kube-system" in c["spec"]["match"]["excludedNamespaces"]
    assert c["spec"]["parameters"] == {"excludedContainers": ["side"], "excludedImages": []}
    assert constraints.origin(c) == (f"{RG}/providers/Microsoft.Authorization/policyAssignments/nopriv",
                                     NO_PRIVILEGE, "", "")
    rego = program.compile_template(want.templates["k8sazurev2noprivilege"]["spec"]["targets"][0]["rego"])
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "app", "image": "nginx", "securityContext": {"privileged": True}},
        {"name": "side", "image": "nginx", "securityContext": {"privileged": True}}]}}
    found = rego.violations({"kind": {"kind": "Pod"}, "object": pod}, c["spec"]["parameters"])
    assert [v["msg"].split(",")[0] for v in found] == ["Privileged container is not allowed: app"]


async def test_effects_and_enforcement_modes():
    store = await _store(
        _assignment(SUB, "audit", LABELS, {"effect": "Audit", "labelsList": ["team"]}),
        _assignment(SUB, "dne", NO_PRIVILEGE, enforcementMode="DoNotEnforce"),
        _assignment(SUB, "off", NO_PRIVILEGE, {"effect": "Disabled"}),
        _assignment(SUB, "skipped", NO_PRIVILEGE, notScopes=[RG]))
    want = constraints.desired(await store.applying_to(CLUSTER))
    actions = {c["metadata"]["annotations"][constraints.ASSIGNMENT].rsplit("/", 1)[1]: c["spec"]["enforcementAction"]
               for c in want.constraints}
    assert actions == {"audit": "dryrun", "dne": "dryrun"}
    labels = next(c for c in want.constraints if c["kind"] == "K8sAzureV1PodEnforceLabels")
    assert labels["spec"]["parameters"] == {"labels": ["team"]}


async def test_an_initiative_installs_each_member():
    store = await _store(_assignment(RG, "restricted", RESTRICTED, {"effect": "Deny"}))
    want = constraints.desired(await store.applying_to(CLUSTER))
    assert len(want.constraints) == 8
    assert {c["metadata"]["annotations"][constraints.SET_DEFINITION] for c in want.constraints} == {RESTRICTED}
    assert len({c["metadata"]["name"] for c in want.constraints}) == 8
    users = next(c for c in want.constraints if c["kind"] == "K8sAzureV3AllowedUsersGroups")
    assert users["spec"]["parameters"]["runAsUser"] == {"rule": "MustRunAsNonRoot", "ranges": []}


async def test_an_audit_of_an_installed_constraint_becomes_a_compliance_state():
    store = await _store(_assignment(RG, "restricted", RESTRICTED))
    want = constraints.desired(await store.applying_to(CLUSTER))
    noprivilege = next(c for c in want.constraints if c["kind"] == "K8sAzureV2NoPrivilege")
    compliance = states.ComplianceStates(store.store)
    state = await compliance.report_constraint(
        cluster_id=CLUSTER, constraint=noprivilege, policies=store, timestamp="2026-12-07T00:00:00Z",
        components=[states.Component("Pod", "priv", "default", compliant=False)])
    assert state["resourceId"] == CLUSTER and state["complianceState"] == "NonCompliant"
    assert state["policySetDefinitionId"] == RESTRICTED and state["policyDefinitionReferenceId"]
    assert state["policyDefinitionAction"] == "audit"  # the initiative's default effect is Audit
    user_made = {"metadata": {"name": "mine"}, "spec": {}}
    assert await compliance.report_constraint(cluster_id=CLUSTER, constraint=user_made, policies=store,
                                              timestamp="t", components=[]) is None
    assert [s["policyAssignmentName"] for s in await compliance.all()] == ["restricted"]


def test_constraint_names_stay_within_gatekeepers_63_characters():
    folder = Path(constraints.__file__).parent / "templates"
    names = {doc["metadata"]["name"] for path in folder.glob("*.yaml") for doc in yaml.safe_load_all(path.read_text())
             if doc and doc.get("kind") == "ConstraintTemplate"}
    assert "k8sazurev1loadbalancernopublicips" in names
    made = {constraints.constraint_name(n, f"{RG}/providers/Microsoft.Authorization/policyAssignments/a", "r")
            for n in names}
    assert len(made) == len(names) and max(map(len, made)) <= 63
    assert constraints.constraint_name("k8sazurev2noprivilege", "a", "r").startswith("azurepolicy-k8sazurev2noprivilege-")
