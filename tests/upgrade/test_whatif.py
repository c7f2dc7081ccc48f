"""What-if without a running cluster: surge sizes in nodes, node replacements per pool, the
VMSS limit and the pod CIDR headroom blockers, and a refused request reported as a blocker."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest

from lks.arm.errors import ARMError
from lks.upgrade import whatif


def _doc(pools: list[dict], *, version: str = "1.35.9", pod_cidr: str = "10.244.0.0/16") -> dict:
    return {"id": "/subscriptions/s/resourcegroups/g/providers/Microsoft.ContainerService/managedClusters/c",
            "properties": {"currentKubernetesVersion": version, "powerState": {"code": "Stopped"},
                           "networkProfile": {"podCidr": pod_cidr}, "agentPoolProfiles": pools}}


def _pool(name: str, count: int, version: str = "1.35.9", surge: str = "10%") -> dict:
    return {"name": name, "count": count, "currentOrchestratorVersion": version, "nodeImageVersion": f"img-{version}",
            "upgradeSettings": {"maxSurge": surge, "maxUnavailable": "0"}}


def _upgraded(doc: dict, *names: str, version: str = "1.36.4") -> dict:
    new = copy.deepcopy(doc)
    new["properties"]["currentKubernetesVersion"] = version
    for pool in new["properties"]["agentPoolProfiles"]:
        if pool["name"] in names:
            pool.update(currentOrchestratorVersion=version, nodeImageVersion=f"img-{version}")
    return new


PLANE = SimpleNamespace(planes=SimpleNamespace(get=lambda _id: None))


@pytest.mark.parametrize(("amount", "count", "nodes"), [
    pytest.param("10%", 3, 1, id="percent-rounds-up"),
    pytest.param("33%", 9, 3, id="a-third"),
    pytest.param("5", 3, 3, id="capped-at-the-count"),
    pytest.param("0", 3, 0, id="none"),
    pytest.param("100%", 0, 0, id="empty-pool"),
])
def test_nodes_of(amount, count, nodes):
    assert whatif.nodes_of(amount, count) == nodes


async def test_replacements_per_pool():
    doc = _doc([_pool("sys", 3), _pool("user", 10, surge="3")])
    answer = await whatif.assess(PLANE, doc, lambda: _upgraded(doc, "sys"))
    props = answer["properties"]
    assert props["canProceed"] is True and props["blockers"] == []
    assert [(p["name"], p["maxSurge"], p["nodeReplacements"]) for p in props["agentPools"]] == [
        ("sys", 1, 3), ("user", 3, 0)]
    assert props["estimatedNodeReplacements"] == 3
    assert props["controlPlane"] == {"currentKubernetesVersion": "1.35.9", "kubernetesVersion": "1.36.4",
                                     "upgrade": True}


async def test_surge_past_the_scale_set_limit():
    doc = _doc([_pool("big", 995, surge="10")], pod_cidr="10.0.0.0/8")
    props = (await whatif.assess(PLANE, doc, lambda: _upgraded(doc, "big")))["properties"]
    assert [b["code"] for b in props["blockers"]] == ["MaxSurgeExceedsScaleSetLimit"]
    assert props["blockers"][0]["target"] == "agentPoolProfiles.big.upgradeSettings.maxSurge"


async def test_pod_cidr_without_room_for_the_surge():
    doc = _doc([_pool("a", 2, surge="2"), _pool("b", 1)], pod_cidr="10.244.0.0/22")  # four /24s
    props = (await whatif.assess(PLANE, doc, lambda: _upgraded(doc, "a")))["properties"]
    [blocker] = props["blockers"]
    assert blocker["code"] == "InsufficientSubnetSize" and "room for 4 node CIDRs" in blocker["message"]
    props = (await whatif.assess(PLANE, doc, lambda: _upgraded(doc, "b")))["properties"]
    assert props["blockers"] == []  # 3 nodes and a surge of 1 fit


async def test_a_refused_request_is_the_blocker():
    doc = _doc([_pool("sys", 3)])

    def build():
        raise ARMError("OperationNotAllowed", "Upgrading Kubernetes version 1.35.9 to 1.37.2 is not allowed.")

    props = (await whatif.assess(PLANE, doc, build))["properties"]
    assert props["blockers"] == [{"code": "OperationNotAllowed",
                                  "message": "Upgrading Kubernetes version 1.35.9 to 1.37.2 is not allowed."}]
    assert props["agentPools"] == [] and props["canProceed"] is False


@pytest.mark.parametrize(("query", "answer"), [({}, False), ({"whatIf": "TRUE"}, True), ({"whatIf": "false"}, False)])
def test_the_query_flag(query, answer):
    assert whatif.requested(query) is answer


def test_a_bad_query_flag():
    with pytest.raises(ARMError) as err:
        whatif.requested({"whatIf": "maybe"})
    assert err.value.code == "InvalidParameter" and err.value.target == "whatIf"
