"""The Node authorizer and NodeRestriction over the real HTTP layer, a kubelet impersonated as
`system:node:n1` in `system:nodes`: its own Node, the objects its pods need, its Lease, and
upstream's words for the rest."""

from __future__ import annotations

from support import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}
N1 = {**AUTH, "Impersonate-User": "system:node:n1", "Impersonate-Group": "system:nodes"}
API = "/clusters/c1/api/v1"
LEASES = "/clusters/c1/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"


async def _create(client, path: str, body: dict, headers: dict = AUTH) -> tuple[int, dict]:
    resp = await client.post(path, json=body, headers=headers)
    return resp.status, await resp.json()


async def _setup(client) -> None:
    for name in ("n1", "n2"):
        assert (await _create(client, f"{API}/nodes", {"metadata": {"name": name}}))[0] == 201
    for name in ("mine", "other"):
        assert (await _create(client, f"{API}/namespaces/default/secrets", {"metadata": {"name": name}}))[0] == 201
    pod = {"metadata": {"name": "web"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx"}],
                                                 "volumes": [{"name": "s", "secret": {"secretName": "mine"}}]}}
    assert (await _create(client, f"{API}/namespaces/default/pods", pod))[0] == 201
    pod = {"metadata": {"name": "elsewhere"}, "spec": {"nodeName": "n2", "containers": [{"name": "c", "image": "x"}]}}
    assert (await _create(client, f"{API}/namespaces/default/pods", pod))[0] == 201


async def test_a_node_reads_its_own(client):
    await _setup(client)
    assert (await client.get(f"{API}/nodes/n1", headers=N1)).status == 200
    resp = await client.get(f"{API}/nodes/n2", headers=N1)
    assert resp.status == 403
    assert (await resp.json())["message"] == (
        'nodes "n2" is forbidden: User "system:node:n1" cannot get resource "nodes" in API group "" at the cluster '
        "scope: node 'n1' cannot read 'n2', only its own Node object")
    assert (await client.get(f"{API}/namespaces/default/secrets/mine", headers=N1)).status == 200
    resp = await client.get(f"{API}/namespaces/default/secrets/other", headers=N1)
    assert resp.status == 403
    assert (await resp.json())["message"] == (
        'secrets "other" is forbidden: User "system:node:n1" cannot get resource "secrets" in API group "" in the '
        "namespace \"default\": no relationship found between node 'n1' and this object")
    assert (await client.get(f"{API}/namespaces/default/secrets", headers=N1)).status == 403
    assert (await client.get(f"{API}/namespaces/default/pods/web", headers=N1)).status == 200
    assert (await client.get(f"{API}/namespaces/default/pods/elsewhere", headers=N1)).status == 403
    assert (await client.get(f"{API}/services", headers=N1)).status == 200  # the static system:node rules
    assert (await client.get(f"{API}/namespaces/default/serviceaccounts", headers=N1)).status == 403
    # the pod goes away: so does the node's access to its secret
    resp = await client.delete(f"{API}/namespaces/default/pods/web?gracePeriodSeconds=0", headers=AUTH)
    assert resp.status == 200
    assert (await client.get(f"{API}/namespaces/default/secrets/mine", headers=N1)).status == 403


async def test_node_restriction_on_writes(client):
    await _setup(client)
    status, body = await _create(client, LEASES, {"metadata": {"name": "n1"}}, N1)
    assert status == 201, body
    status, body = await _create(client, LEASES, {"metadata": {"name": "n2"}}, N1)
    assert (status, body["message"]) == (403, 'leases.coordination.k8s.io "n2" is forbidden: can only access node '
                                              "lease with the same name as the requesting node")
    node = await (await client.get(f"{API}/nodes/n1", headers=N1)).json()
    node["metadata"].setdefault("labels", {})["kubernetes.io/hostname"] = "n1"
    resp = await client.put(f"{API}/nodes/n1", json=node, headers=N1)
    assert resp.status == 200, await resp.text()
    node = await resp.json()
    node["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] = ""
    resp = await client.put(f"{API}/nodes/n1", json=node, headers=N1)
    assert (resp.status, (await resp.json())["message"]) == (
        403, 'nodes "n1" is forbidden: is not allowed to modify labels: node-role.kubernetes.io/control-plane')
    del node["metadata"]["labels"]["node-role.kubernetes.io/control-plane"]
    node.setdefault("spec", {})["taints"] = [{"key": "k", "effect": "NoSchedule"}]
    resp = await client.put(f"{API}/nodes/n1", json=node, headers=N1)
    assert (await resp.json())["message"] == 'nodes "n1" is forbidden: node "n1" is not allowed to modify taints'
    other = await (await client.get(f"{API}/nodes/n2", headers=AUTH)).json()
    other["metadata"]["labels"] = {"example.com/owner": "n1"}
    resp = await client.put(f"{API}/nodes/n2", json=other, headers=N1)
    assert (await resp.json())["message"] == 'nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"'

    pod = {"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x"}]}}
    status, body = await _create(client, f"{API}/namespaces/default/pods", pod, N1)
    assert (status, body["message"]) == (
        403, 'pods "p" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "n1" can only '
             "create mirror pods")
    elsewhere = await (await client.get(f"{API}/namespaces/default/pods/elsewhere", headers=AUTH)).json()
    elsewhere["status"]["message"] = "mine now"
    resp = await client.put(f"{API}/namespaces/default/pods/elsewhere/status", json=elsewhere, headers=N1)
    assert (await resp.json())["message"] == (
        'pods "elsewhere" is forbidden: node "n1" can only update pod status for pods with spec.nodeName set to itself')
    web = await (await client.get(f"{API}/namespaces/default/pods/web", headers=AUTH)).json()
    web["status"]["message"] = "running"
    resp = await client.put(f"{API}/namespaces/default/pods/web/status", json=web, headers=N1)
    assert resp.status == 200, await resp.text()
    status, _ = await _create(client, f"{API}/namespaces/default/events", {
        "metadata": {"name": "e1"}, "involvedObject": {"kind": "Node", "name": "n1"}, "reason": "Ready",
        "message": "ok"}, N1)
    assert status == 201
