"""Custom Azure Policy initiatives (`policySetDefinitions` at a subscription) on a real `lks up`,
through the Azure SDK's PolicyClient and the `lks policy set-definition` CLI: ARM's checks of the
members (unknown definitions, parameters a member does not declare, `[parameters('x')]` naming
no initiative parameter, defaults a member does not allow), reference ids, and an assignment of
the custom initiative that reaches the demo cluster's Gatekeeper like a built-in one: a
privileged pod is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.resource.policy import PolicyClient

from .conftest import LKS, StaticToken, lks_cli, lks_json, wait_until
from .gatekeeper import enable_azure_policy

NO_PRIVILEGE = "/providers/Microsoft.Authorization/policyDefinitions/95edb821-ddaf-4404-9732-666045e056b4"
ALLOWED_IMAGES = "/providers/Microsoft.Authorization/policyDefinitions/febd0533-8e55-448f-b837-bd0e06f16469"
PARAMS = {"effect": {"type": "String", "defaultValue": "Deny", "allowedValues": ["Audit", "Deny", "Disabled"]},
          "registry": {"type": "String", "defaultValue": "^myregistry\\.azurecr\\.io/.+$"}}
MEMBERS = [
    {"policyDefinitionId": NO_PRIVILEGE, "policyDefinitionReferenceId": "noPrivileged",
     "parameters": {"effect": {"value": "[parameters('effect')]"},
                    "excludedNamespaces": {"value": ["kube-system", "gatekeeper-system"]}}},
    {"policyDefinitionId": ALLOWED_IMAGES,
     "parameters": {"effect": {"value": "Audit"},
                    "allowedContainerImagesRegex": {"value": "[parameters('registry')]"}}},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = LKS(tmp_path_factory.mktemp("lks-initiatives"))
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def config(server: LKS) -> dict[str, Any]:
    return json.loads((server.home / "config.json").read_text())


@pytest.fixture(scope="module")
def policy(config) -> PolicyClient:
    return PolicyClient(StaticToken(config["token"]), config["subscription_id"], base_url=config["endpoint"],
                        connection_verify=config["ca_file"])


def refused(call) -> tuple[int, str, str]:
    with pytest.raises(HttpResponseError) as err:
        call()
    return err.value.status_code, err.value.error.code, err.value.error.message


def test_create_get_list_delete_with_the_sdk(policy: PolicyClient, config):
    created = policy.policy_set_definitions.create_or_update("pod-baseline", {"properties": {
        "displayName": "Our pod baseline", "parameters": PARAMS, "policyDefinitions": MEMBERS}})
    sub = config["subscription_id"]
    assert created.id == f"/subscriptions/{sub}/providers/Microsoft.Authorization/policySetDefinitions/pod-baseline"
    assert created.policy_type == "Custom" and created.display_name == "Our pod baseline"
    refs = [m.policy_definition_reference_id for m in created.policy_definitions]
    assert refs[0] == "noPrivileged" and refs[1].isdigit()  # ARM makes one up when left out
    assert created.policy_definitions[0].definition_version == "9.*.*"
    got = policy.policy_set_definitions.get("pod-baseline")
    assert [m.policy_definition_reference_id for m in got.policy_definitions] == refs
    assert "pod-baseline" in {d.name for d in policy.policy_set_definitions.list()}
    again = policy.policy_set_definitions.create_or_update("pod-baseline", {"properties": {
        "displayName": "Our pod baseline", "parameters": PARAMS, "policyDefinitions": MEMBERS}})
    assert [m.policy_definition_reference_id for m in again.policy_definitions] == refs  # kept on a replace

    policy.policy_set_definitions.create_or_update("scratch", {"properties": {"policyDefinitions": MEMBERS[:1],
                                                                              "parameters": PARAMS}})
    policy.policy_set_definitions.delete("scratch")
    with pytest.raises(ResourceNotFoundError) as err:
        policy.policy_set_definitions.get("scratch")
    assert err.value.error.code == "PolicySetDefinitionNotFound"
    assert err.value.error.message == "The policy set definition 'scratch' could not be found."


@pytest.mark.parametrize("properties, status, code, message", [
    pytest.param({"policyDefinitions": [{"policyDefinitionId": "/providers/Microsoft.Authorization/"
                                                               "policyDefinitions/no-such-definition"}]},
                 404, "PolicyDefinitionNotFound", "The policy definition 'no-such-definition' could not be found.",
                 id="unknown-definition"),
    pytest.param({"policyDefinitions": [{"policyDefinitionId": NO_PRIVILEGE,
                                         "parameters": {"colour": {"value": "red"}}}]},
                 400, "UndefinedPolicyParameter",
                 "The policy set definition 'bad' is attempting to assign the parameter(s) 'colour' which are not "
                 "defined in the policy definition '95edb821-ddaf-4404-9732-666045e056b4' using version '9.2.0'.",
                 id="undeclared-member-parameter"),
    pytest.param({"policyDefinitions": [{"policyDefinitionId": NO_PRIVILEGE,
                                         "parameters": {"effect": {"value": "[parameters('missing')]"}}}]},
                 400, "InvalidPolicyParameters", None, id="undeclared-set-parameter"),
    pytest.param({"parameters": {"effect": {"type": "String", "defaultValue": "Block"}},
                  "policyDefinitions": [{"policyDefinitionId": NO_PRIVILEGE,
                                         "parameters": {"effect": {"value": "[parameters('effect')]"}}}]},
                 400, "InvalidPolicyParameters",
                 "The policy set 'bad' could not be parameterized because the default value of a policy set "
                 "parameter referenced by policy definition 95edb821-ddaf-4404-9732-666045e056b4 was not valid for "
                 "that policy definition. Please verify that the default values of all policy set parameters are "
                 "valid in the context of the policy definitions referencing them. The inner exception 'The value "
                 "'Block' is not allowed for policy parameter 'effect' in policy definition "
                 "'95edb821-ddaf-4404-9732-666045e056b4 version 9.2.0'. The allowed values are 'Audit, Deny, "
                 "Disabled'.'.", id="default-not-allowed"),
    pytest.param({"policyDefinitions": [{"policyDefinitionId": NO_PRIVILEGE, "policyDefinitionReferenceId": "a"},
                                        {"policyDefinitionId": ALLOWED_IMAGES, "policyDefinitionReferenceId": "A",
                                         "parameters": {"allowedContainerImagesRegex": {"value": ".*"}}}]},
                 400, "InvalidCreatePolicySetDefinitionRequest", None, id="duplicate-reference-id"),
    pytest.param({"policyDefinitions": [{"policyDefinitionId": ALLOWED_IMAGES}]},
                 400, "MissingPolicyParameter", "The policy set definition 'bad' is missing the parameter(s) "
                 "'allowedContainerImagesRegex' as defined in the policy definition "
                 "'febd0533-8e55-448f-b837-bd0e06f16469'.", id="missing-required"),
    pytest.param({"policyDefinitions": []}, 400, "InvalidCreatePolicySetDefinitionRequest",
                 "The policy set definition 'bad' request is invalid. At least one policy definition must be "
                 "referenced.", id="empty"),
])
def test_arm_refuses_bad_initiatives(policy: PolicyClient, properties: dict, status: int, code: str,
                                     message: str | None):
    got = refused(lambda: policy.policy_set_definitions.create_or_update("bad", {"properties": properties}))
    assert got[:2] == (status, code), got
    if message is not None:
        assert got[2] == message


def test_cli_create_show_delete(server: LKS, tmp_path):
    members = tmp_path / "members.json"
    members.write_text(json.dumps(MEMBERS[:1]))
    made = lks_json(server, "policy", "set-definition", "create", "-n", "cli-set", "--definitions", str(members),
                    "--params", json.dumps({"effect": PARAMS["effect"]}), "--display-name", "From the CLI")
    assert made["name"] == "cli-set" and made["policyType"] == "Custom"
    assert made["policyDefinitions"][0]["policyDefinitionReferenceId"] == "noPrivileged"
    assert lks_json(server, "policy", "set-definition", "show", "-n", "cli-set")["displayName"] == "From the CLI"
    res = lks_cli(server, "policy", "set-definition", "create", "-n", "cli-bad", "--definitions",
                  json.dumps([{"policyDefinitionId": NO_PRIVILEGE, "parameters": {"colour": {"value": 1}}}]))
    assert res.returncode != 0 and "(UndefinedPolicyParameter)" in res.stderr
    assigned = lks_json(server, "policy", "assignment", "create", "-n", "cli-assigned", "--policy-set-definition",
                        "cli-set", "-p", json.dumps({"effect": "Audit"}))
    assert assigned["policyDefinitionId"] == made["id"] and assigned["parameters"] == {"effect": {"value": "Audit"}}
    lks_cli(server, "policy", "assignment", "delete", "-n", "cli-assigned")
    lks_cli(server, "policy", "set-definition", "delete", "-n", "cli-set")
    res = lks_cli(server, "policy", "set-definition", "show", "-n", "cli-set")
    assert res.returncode != 0 and "PolicySetDefinitionNotFound" in res.stderr


def test_assigned_custom_initiative_reaches_the_cluster(server: LKS, policy: PolicyClient, config):
    enable_azure_policy(server)
    sub = config["subscription_id"]
    set_id = f"/subscriptions/{sub}/providers/Microsoft.Authorization/policySetDefinitions/pod-baseline"
    policy.policy_set_definitions.create_or_update("pod-baseline", {"properties": {
        "parameters": PARAMS, "policyDefinitions": MEMBERS}})
    got = refused(lambda: policy.policy_assignments.create(f"/subscriptions/{sub}", "baseline", {"properties": {
        "policyDefinitionId": set_id, "parameters": {"colour": {"value": "red"}}}}))
    assert got[:2] == (400, "UndefinedPolicyParameter")
    assigned = policy.policy_assignments.create(f"/subscriptions/{sub}", "baseline", {"properties": {
        "policyDefinitionId": set_id, "parameters": {"effect": {"value": "Deny"}}}})
    assert assigned.policy_definition_id == set_id

    def refused_privileged():
        res = server.kubectl("run", "priv", "--image=nginx", "--privileged", "--restart=Never", check=False)
        return res.returncode != 0 and "validation.gatekeeper.sh" in res.stderr and res.stderr
    text = wait_until(refused_privileged, what="the initiative's Deny in the cluster")
    assert "Privileged container is not allowed: priv" in text
    templates = json.loads(server.kubectl("get", "constrainttemplates", "-o", "json").stdout)["items"]
    kinds = {t["spec"]["crd"]["spec"]["names"]["kind"] for t in templates}
    assert {"K8sAzureV2NoPrivilege", "K8sAzureV2ContainerAllowedImages"} <= kinds, kinds  # both members
