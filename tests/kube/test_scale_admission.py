"""Writes through `/scale` reach admission as upstream sends them: a write of the `scale`
subresource, which rules on the resource itself do not match and rules on `<resource>/scale` do."""

from __future__ import annotations

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
    await install(client, cluster, policy("no-scale", [{"expression": "false", "message": "no scaling"}],
                                          rules=rules), binding("no-scale-b", "no-scale"))
    status, _, _ = await create_deploy(client, "api", 2)
    assert status == 201  # a create of the deployment is not a write of its scale
    status, body = await _scale(client, "api", 3)
    assert status == 422 and "no scaling" in body["message"], body
