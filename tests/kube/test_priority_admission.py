"""Priority admission over HTTP: pods take their class's priority and preemption policy (or the
global default's, or 0), unknown classes and contradicting values are 403 in upstream's words,
only one class is the global default, and the two system classes exist from the start and
cannot be deleted or revalued."""

from __future__ import annotations

import pytest

from .conftest import AUTH

PODS = "/clusters/c1/api/v1/namespaces/default/pods"
PCS = "/clusters/c1/apis/scheduling.k8s.io/v1/priorityclasses"


@pytest.fixture(autouse=True)
async def default_account(client):
    """Pods need their namespace's `default` ServiceAccount (no controller makes it here)."""
    await client.post("/clusters/c1/api/v1/namespaces/default/serviceaccounts", json={"metadata": {"name": "default"}},
                      headers=AUTH)


def pod(name: str, **spec) -> dict:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


def pclass(name: str, value: int, **extra) -> dict:
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
            "value": value, **extra}


async def test_a_plain_pod_gets_priority_zero_and_preempt_lower(client):
    resp = await client.post(PODS, json=pod("plain"), headers=AUTH)
    assert resp.status == 201
    spec = (await resp.json())["spec"]
    assert spec["priority"] == 0 and spec["preemptionPolicy"] == "PreemptLowerPriority"
    assert spec["enableServiceLinks"] is True and "priorityClassName" not in spec


async def test_a_pod_takes_its_classes_value_and_policy(client):
    assert (await client.post(PCS, json=pclass("high", 1000, preemptionPolicy="Never"), headers=AUTH)).status == 201
    resp = await client.post(PODS, json=pod("hi", priorityClassName="high"), headers=AUTH)
    spec = (await resp.json())["spec"]
    assert (spec["priority"], spec["preemptionPolicy"]) == (1000, "Never")
    resp = await client.post(PODS, json=pod("crit", priorityClassName="system-node-critical"), headers=AUTH)
    assert (await resp.json())["spec"]["priority"] == 2000001000


async def test_unknown_class_and_contradictions_are_forbidden(client):
    resp = await client.post(PODS, json=pod("x", priorityClassName="foo"), headers=AUTH)
    body = await resp.json()
    assert resp.status == 403 and body["reason"] == "Forbidden"
    assert body["message"] == 'pods "x" is forbidden: no PriorityClass with name foo was found'
    resp = await client.post(PODS, json=pod("y", priority=5), headers=AUTH)
    assert resp.status == 403
    assert (await resp.json())["message"] == (
        'pods "y" is forbidden: the integer value of priority (5) must not be provided in pod spec; '
        "priority admission controller computed 0 from the given PriorityClass name")
    resp = await client.post(PODS, json=pod("z", preemptionPolicy="Never"), headers=AUTH)
    assert resp.status == 403
    assert (await resp.json())["message"] == (
        'pods "z" is forbidden: the string value of PreemptionPolicy (Never) must not be provided in pod spec; '
        "priority admission controller computed PreemptLowerPriority from the given PriorityClass name")
    # stating the value the class gives is fine
    assert (await client.post(PODS, json=pod("ok", priority=0), headers=AUTH)).status == 201


async def test_the_global_default_class_names_itself_on_pods_and_is_alone(client):
    assert (await client.post(PCS, json=pclass("dflt", 7, globalDefault=True), headers=AUTH)).status == 201
    resp = await client.post(PCS, json=pclass("dflt2", 8, globalDefault=True), headers=AUTH)
    assert resp.status == 403
    assert (await resp.json())["message"] == (
        'priorityclasses.scheduling.k8s.io "dflt2" is forbidden: PriorityClass dflt is already marked as default. '
        "Only one default can exist")
    # updating the default itself is fine; another becoming default is not
    resp = await client.patch(PCS + "/dflt", json={"description": "d"}, headers={
        **AUTH, "Content-Type": "application/merge-patch+json"})
    assert resp.status == 200
    assert (await client.post(PCS, json=pclass("other", 9), headers=AUTH)).status == 201
    resp = await client.patch(PCS + "/other", json={"globalDefault": True}, headers={
        **AUTH, "Content-Type": "application/merge-patch+json"})
    assert resp.status == 403
    spec = (await (await client.post(PODS, json=pod("d"), headers=AUTH)).json())["spec"]
    assert (spec["priorityClassName"], spec["priority"], spec["preemptionPolicy"]) == (
        "dflt", 7, "PreemptLowerPriority")


async def test_system_classes_exist_and_cannot_be_deleted_or_revalued(client):
    resp = await client.get(PCS + "/system-cluster-critical", headers=AUTH)
    body = await resp.json()
    assert body["value"] == 2000000000 and body["preemptionPolicy"] == "PreemptLowerPriority"
    assert body["description"].startswith("Used for system critical pods that must run in the cluster")
    resp = await client.delete(PCS + "/system-node-critical", headers=AUTH)
    assert resp.status == 403
    assert (await resp.json())["message"] == (
        'priorityclasses.scheduling.k8s.io "system-node-critical" is forbidden: '
        "this is a system priority class and cannot be deleted")
    resp = await client.patch(PCS + "/system-node-critical", json={"value": 5}, headers={
        **AUTH, "Content-Type": "application/merge-patch+json"})
    assert resp.status == 422



async def test_an_update_that_leaves_priority_out_keeps_it(client):
    """A PUT of a pod read before admission set its priority (or written by hand without it)
    keeps the priority and policy, as upstream's Priority admission does on update."""
    await client.post(PCS, json=pclass("mid", 500), headers=AUTH)
    created = await (await client.post(PODS, json=pod("kept", priorityClassName="mid"), headers=AUTH)).json()
    body = {**created, "metadata": {**created["metadata"], "labels": {"a": "b"}}}
    body["spec"] = {k: v for k, v in created["spec"].items() if k not in ("priority", "preemptionPolicy")}
    resp = await client.put(f"{PODS}/kept", json=body, headers=AUTH)
    assert resp.status == 200, await resp.text()
    spec = (await resp.json())["spec"]
    assert (spec["priority"], spec["preemptionPolicy"]) == (500, "PreemptLowerPriority")
