"""The managed cluster's `ingressProfile.webAppRouting` (the app routing add-on): kept when a PUT
leaves it out, the read-only identity made once and kept, the default controller's type, AKS-style
400s for what cannot be."""

from __future__ import annotations

import pytest

from lks.arm import model
from lks.arm.errors import ARMError

RID = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/mc"
POOL = {"name": "nodepool1", "count": 1, "mode": "System"}


def _put(props: dict, existing: dict | None = None) -> dict:
    body = {"location": "westeurope", "properties": {"agentPoolProfiles": [POOL], **props}}
    return model.managed_cluster(body, existing=existing, resource_id=RID, name="mc", group="rg", subscription="sub")


def test_enabled_gets_aks_defaults_and_identity() -> None:
    doc = _put({"ingressProfile": {"webAppRouting": {"enabled": True}}})
    routing = doc["properties"]["ingressProfile"]["webAppRouting"]
    assert routing["nginx"] == {"defaultIngressControllerType": "AnnotationControlled"}
    assert routing["identity"]["resourceId"] == ("/subscriptions/sub/resourcegroups/MC_rg_mc_westeurope/providers/"
                                                 "Microsoft.ManagedIdentity/userAssignedIdentities/webapprouting-mc")
    assert model.web_app_routing(doc) == "AnnotationControlled"
    # a PUT without the profile keeps it; one sending the identity back cannot change it
    again = _put({}, existing=doc)
    assert again["properties"]["ingressProfile"] == doc["properties"]["ingressProfile"]
    forged = _put({"ingressProfile": {"webAppRouting": {"enabled": True, "identity": {"clientId": "x"}}}},
                  existing=doc)
    assert forged["properties"]["ingressProfile"]["webAppRouting"]["identity"] == routing["identity"]
    off = _put({"ingressProfile": {"webAppRouting": {"enabled": False}}}, existing=doc)
    assert "identity" not in off["properties"]["ingressProfile"]["webAppRouting"] and model.web_app_routing(off) is None


def test_controller_type_any_case() -> None:
    doc = _put({"ingressProfile": {"webAppRouting": {"enabled": True, "nginx": {
        "defaultIngressControllerType": "internal"}}}})
    assert doc["properties"]["ingressProfile"]["webAppRouting"]["nginx"] == {"defaultIngressControllerType": "Internal"}


@pytest.mark.parametrize(("routing", "target"), [
    pytest.param({"enabled": "yes"}, "ingressProfile.webAppRouting.enabled", id="enabled-not-bool"),
    pytest.param({"enabled": True, "nginx": {"defaultIngressControllerType": "Sideways"}},
                 "ingressProfile.webAppRouting.nginx.defaultIngressControllerType", id="controller-type"),
    pytest.param({"enabled": True, "dnsZoneResourceIds": ["/subscriptions/s/resourceGroups/r/providers/"
                                                          "Microsoft.Storage/storageAccounts/a"]},
                 "ingressProfile.webAppRouting.dnsZoneResourceIds", id="not-a-dns-zone"),
])
def test_invalid(routing: dict, target: str) -> None:
    with pytest.raises(ARMError) as err:
        _put({"ingressProfile": {"webAppRouting": routing}})
    assert (err.value.status, err.value.code, err.value.target) == (400, "InvalidParameter", target)


def test_dns_zones() -> None:
    zones = ["/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/dnszones/example.com",
             "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/privateDnsZones/internal.example"]
    doc = _put({"ingressProfile": {"webAppRouting": {"enabled": True, "dnsZoneResourceIds": zones}}})
    assert doc["properties"]["ingressProfile"]["webAppRouting"]["dnsZoneResourceIds"] == zones
