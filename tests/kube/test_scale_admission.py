"""Writes through `/scale` reach admission as upstream sends them: a write of the `scale`
subresource, which rules on the resource itself do not match and rules on `<resource>/scale` do,
with the autoscaling/v1 Scale as the object (a mutating webhook's Scale goes back to the object)."""

from __future__ import annotations

import json

import pytest
import webhookserver as ws

from .conftest import AUTH
from .test_validating_policy import DEPLOYS, binding, create_deploy, install, policy

SCALE = "/clusters/c1/apis/apps/v1/namespaces/default/deployments/{name}/scale"


async def _scale(client, name: str, replicas: int):
    resp = await client.patch(SCALE.format(name=name), json={"spec": {"replicas": replicas}},
                              headers={**AUTH, "Content-Type": "application/merge-patch+json"})
    return resp.status, await resp.json()


async def test_a_policy_on_deployments_does_not_see_scaling(client, cluster):
    await install(client, cluster, policy("max5", [{"expression": "object.spec.replicas <= 5"}]),
                  binding("max5-b", "max5"))
    status, _, _ = await create_deploy(client, "web", 2)
    assert status == 201
    status, body = await _scale(client, "web", 8)
    assert status == 200 and body["spec"]["replicas"] == 8, body
    resp = await client.get(f"{DEPLOYS.format(ns='default')}/web", headers=AUTH)
    assert (await resp.json())["spec"]["replicas"] == 8


async def test_a_policy_on_the_scale_subresource_does(client, cluster):
    rules = [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["UPDATE"],
              "resources": ["deployments/scale"]}]
    validations = [{"expression": "object.kind == 'Scale' && object.spec.replicas <= 5 && oldObject.kind == 'Scale'",
                    "message": "at most 5"}]
    await install(client, cluster, policy("max5-scale", validations, rules=rules), binding("max5-scale-b", "max5-scale"))
    status, _, _ = await create_deploy(client, "api", 9)
    assert status == 201  # a create of the deployment is not a write of its scale
    status, body = await _scale(client, "api", 3)
    assert status == 200 and body["spec"]["replicas"] == 3, body
    status, body = await _scale(client, "api", 8)
    assert status == 422 and "at most 5" in body["message"], body


@pytest.fixture
def server():
    with ws.WebhookServer() as s:
        yield s


async def test_webhooks_get_the_scale_and_may_change_it(client, server):
    server.paths["/cap"] = lambda r: ws.json_patch(r, [{"op": "replace", "path": "/spec/replicas", "value": 4}])
    server.paths["/look"] = lambda r: ws.allow(r)
    hooks = [{"name": "cap.example.com", "clientConfig": {"url": server.url("/cap"), "caBundle": server.ca_bundle},
              "rules": [ws.rule(["UPDATE"], ["deployments/scale"], ["apps"])]}]
    looks = [{"name": "look.example.com", "clientConfig": {"url": server.url("/look"), "caBundle": server.ca_bundle},
              "rules": [ws.rule(["UPDATE"], ["deployments/scale"], ["apps"])]}]
    adm = "/clusters/c1/apis/admissionregistration.k8s.io/v1"
    for resource, kind, name, webhooks in (("mutatingwebhookconfigurations", "MutatingWebhookConfiguration", "cap", hooks),
                                           ("validatingwebhookconfigurations", "ValidatingWebhookConfiguration", "look",
                                            looks)):
        resp = await client.post(f"{adm}/{resource}", data=json.dumps(ws.configuration(kind, name, webhooks)),
                                 headers={**AUTH, "Content-Type": "application/json"})
        assert resp.status == 201, await resp.text()
    status, _, _ = await create_deploy(client, "capped", 1)
    assert status == 201
    status, body = await _scale(client, "capped", 10)
    assert status == 200 and body["spec"]["replicas"] == 4, body
    resp = await client.get(f"{DEPLOYS.format(ns='default')}/capped", headers=AUTH)
    assert (await resp.json())["spec"]["replicas"] == 4
    req = server.reviews["/look"][-1]["request"]
    assert req["kind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    assert (req["subResource"], req["object"]["kind"], req["object"]["spec"]["replicas"]) == ("scale", "Scale", 4)
    assert req["oldObject"]["kind"] == "Scale" and req["oldObject"]["spec"]["replicas"] == 1
