"""ARM's reads around a login (`/subscriptions`, `/subscriptions/{id}`, `/tenants`) through the
Azure SDK's SubscriptionClient and raw HTTPS, ARM-shaped JSON 404s for unknown paths, and the
managed-cluster fields az dereferences (`servicePrincipalProfile`, `identity.tenantId`)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.resource.subscriptions import SubscriptionClient

from .conftest import StaticToken
from .test_arm_errors import arm_error, send


@pytest.fixture(scope="module")
def config(lks) -> dict[str, Any]:
    return json.loads((lks.home / "config.json").read_text())


@pytest.fixture(scope="module")
def subscriptions(config) -> SubscriptionClient:
    return SubscriptionClient(StaticToken(config["token"]), base_url=config["endpoint"],
                              connection_verify=config["ca_file"])


def test_config_has_a_stable_tenant(config, lks):
    assert len(config["tenant_id"]) == 36 and config["tenant_id"] != config["subscription_id"]


def test_subscriptions_through_the_sdk(subscriptions, config):
    sub, tenant = config["subscription_id"], config["tenant_id"]
    listed = list(subscriptions.subscriptions.list())
    assert [s.subscription_id for s in listed] == [sub]
    got = subscriptions.subscriptions.get(sub)
    for s in (listed[0], got):
        assert s.id == f"/subscriptions/{sub}" and s.tenant_id == tenant and s.state == "Enabled"
        assert s.display_name and s.authorization_source == "RoleBased" and s.managed_by_tenants == []
        assert s.subscription_policies.spending_limit == "Off" and s.subscription_policies.quota_id
    with pytest.raises(ResourceNotFoundError) as err:
        subscriptions.subscriptions.get("00000000-0000-0000-0000-000000000000")
    assert err.value.error.code == "SubscriptionNotFound"


def test_tenants_through_the_sdk(subscriptions, config):
    tenants = list(subscriptions.tenants.list())
    assert len(tenants) == 1
    t = tenants[0]
    assert (t.id, t.tenant_id, t.tenant_category) == (f"/tenants/{config['tenant_id']}", config["tenant_id"], "Home")
    assert t.default_domain in t.domains and t.display_name


def test_raw_shapes_as_az_reads_them(config):
    status, resp, raw = send(config, "GET", "/subscriptions?api-version=2022-12-01")
    assert status == 200 and resp.getheader("Content-Type").startswith("application/json")
    body = json.loads(raw)
    assert body["count"] == {"type": "Total", "value": 1}
    assert set(body["value"][0]) >= {"id", "subscriptionId", "tenantId", "displayName", "state",
                                     "subscriptionPolicies", "authorizationSource", "managedByTenants"}
    status, _, raw = send(config, "GET", f"/SUBSCRIPTIONS/{config['subscription_id'].upper()}?api-version=2022-12-01")
    assert status == 200 and json.loads(raw)["subscriptionId"] == config["subscription_id"]
    status, _, raw = send(config, "GET", "/tenants?api-version=2022-12-01")
    assert status == 200 and set(json.loads(raw)["value"][0]) >= {
        "id", "tenantId", "tenantCategory", "displayName", "defaultDomain", "domains"}


@pytest.mark.parametrize("path", ["/subscriptions", "/tenants"])
def test_api_version_checks(config, path):
    status, resp, raw = send(config, "GET", path)
    assert status == 400 and arm_error(resp, raw)["code"] == "MissingApiVersionParameter"
    status, resp, raw = send(config, "GET", f"{path}?api-version=2099-01-01")
    err = arm_error(resp, raw)
    assert status == 400 and err["code"] == "InvalidApiVersionParameter"
    assert err["message"].startswith("The api-version '2099-01-01' is invalid. The supported versions are '")
    assert "2022-12-01," in err["message"]


@pytest.mark.parametrize("path", ["/tenants/x", "/tenants/x/y", "/foo", "/metadata/other"])
@pytest.mark.parametrize("token", [True, False], ids=["token", "anonymous"])
def test_unknown_paths_are_arm_json(config, path, token):
    status, resp, raw = send(config, "GET", f"{path}?api-version=2022-12-01", token=token)
    err = arm_error(resp, raw)
    assert (status, err["code"]) == ((404, "NotFound") if token else (401, "AuthenticationFailed"))


def test_subscription_reads_refuse_writes(config):
    status, resp, raw = send(config, "PUT", "/tenants?api-version=2022-12-01", b"{}")
    assert status == 405 and arm_error(resp, raw)["code"] == "MethodNotAllowed" and resp.getheader("Allow") == "GET"
    with pytest.raises(HttpResponseError):
        SubscriptionClient(StaticToken("wrong"), base_url=config["endpoint"],
                           connection_verify=config["ca_file"]).tenants.list().next()


def test_cluster_fields_az_dereferences(config):
    aks = ContainerServiceClient(StaticToken(config["token"]), config["subscription_id"], base_url=config["endpoint"],
                                 connection_verify=config["ca_file"])
    demo = aks.managed_clusters.get("demo", "demo")
    assert demo.service_principal_profile.client_id == "msi"
    assert demo.identity.type == "SystemAssigned" and demo.identity.tenant_id == config["tenant_id"]
