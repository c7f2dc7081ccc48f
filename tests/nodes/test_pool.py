"""Node pools: VMSS-style names and scaling, template changes rolled onto Nodes, stop/start,
adoption after a restart, deletion, and the Nodes as kubectl sees them over HTTP."""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import sys
from pathlib import Path

import pytest
import yaml
from aiohttp import ClientSession, TCPConnector, web

from lks import pki
from lks.kube.http.app import KubeAPI
from lks.kube.registry import ListOptions
from lks.kube.selectors import FieldSelector, LabelSelector
from lks.nodes import agent as agents
from lks.nodes import template as templates
from lks.nodes.pool import NodePool

from .conftest import CA, TOKEN

PREFIX = "aks-nodepool1-12345678-vmss"
KUBECTL = Path(sys.executable).parent / "kubectl"


async def _nodes(cluster) -> dict[str, dict]:
    listed = await cluster.registry("", "v1", "nodes").list(None, ListOptions(LabelSelector([]), FieldSelector([])))
    return {n["metadata"]["name"]: n for n in listed["items"]}


async def _leases(cluster) -> dict[str, dict]:
    listed = await cluster.registry("coordination.k8s.io", "v1", "leases").list(
        agents.LEASE_NAMESPACE, ListOptions(LabelSelector([]), FieldSelector([])))
    return {n["metadata"]["name"]: n for n in listed["items"]}


def _ip(node: dict) -> str:
    return next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")


@pytest.fixture
async def pool(cluster, template):
    p = NodePool(cluster=cluster, template=template, count=3)
    await p.start()
    yield p
    await p.close()


# -- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("index", "name"), [
    pytest.param(0, PREFIX + "000000", id="first"),
    pytest.param(10, PREFIX + "00000a", id="base36"),
    pytest.param(36, PREFIX + "000010", id="carry"),
])
def test_node_names_are_the_vmss_instance_in_base36(template, index, name):
    assert template.node_name(index) == name
    assert template.index_of(name) == index


def test_foreign_names_are_not_the_pools(template):
    assert template.index_of("aks-nodepool1-87654321-vmss000000") is None
    assert template.index_of(PREFIX + "00000") is None
    assert template.index_of(PREFIX + "00000A") is None


def test_taints_from_arm():
    assert templates.parse_taint("sku=gpu:NoSchedule") == {"key": "sku", "value": "gpu", "effect": "NoSchedule"}
    assert templates.parse_taint("dedicated:NoExecute") == {"key": "dedicated", "effect": "NoExecute"}
    with pytest.raises(ValueError):
        templates.parse_taint("sku=gpu:Sometimes")


# -- scaling ------------------------------------------------------------------------------------


async def test_start_registers_count_nodes_with_leases(cluster, pool):
    nodes = await _nodes(cluster)
    assert sorted(nodes) == [PREFIX + "000000", PREFIX + "000001", PREFIX + "000002"]
    assert [_ip(nodes[n]) for n in sorted(nodes)] == ["10.224.0.4", "10.224.0.5", "10.224.0.6"]
    assert sorted(await _leases(cluster)) == sorted(nodes)
    assert pool.heartbeats.agents == 3


async def test_scale_out_takes_the_next_free_indexes_and_scale_in_the_highest(cluster, pool):
    await pool.scale(5)
    assert sorted(await _nodes(cluster)) == [PREFIX + f"00000{i}" for i in range(5)]
    await pool.scale(2)
    assert sorted(await _nodes(cluster)) == [PREFIX + "000000", PREFIX + "000001"]
    assert sorted(await _leases(cluster)) == [PREFIX + "000000", PREFIX + "000001"]
    await pool.scale(12)
    nodes = await _nodes(cluster)
    assert sorted(nodes)[-2:] == [PREFIX + "00000a", PREFIX + "00000b"]
    assert len(nodes) == 12 and pool.heartbeats.agents == 12
    assert len({_ip(n) for n in nodes.values()}) == 12  # freed addresses are reused, never shared


async def test_every_lease_is_renewed_by_the_pools_heartbeat_task(cluster, pool, clock, settle):
    await clock.advance(10)

    async def all_renewed():
        leases = await _leases(cluster)
        return {lease["spec"]["renewTime"] for lease in leases.values()} == {"2023-11-14T22:13:30.000000Z"}

    await settle(all_renewed)


async def test_apply_rolls_labels_and_taints_onto_existing_nodes(cluster, pool, make_template):
    nodes = cluster.registry("", "v1", "nodes")
    base = dict(pool.template.labels)
    old = make_template(labels={**base, "tier": "web", "gone": "soon"},
                        taints=({"key": "sku", "value": "cpu", "effect": "NoSchedule"},
                                {"key": "old", "effect": "PreferNoSchedule"}))
    await pool.apply(old, 3)

    def cordon_and_label(node):
        node["metadata"]["labels"]["owner"] = "me"
        node["spec"]["taints"].append({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"})
        return node

    await nodes.patch(None, PREFIX + "000000", cordon_and_label)
    new = make_template(labels={**base, "tier": "api"},
                        taints=({"key": "sku", "value": "gpu", "effect": "NoSchedule"},))
    await pool.apply(new, 4)
    listed = await _nodes(cluster)
    assert len(listed) == 4
    first = listed[PREFIX + "000000"]
    assert first["metadata"]["labels"]["tier"] == "api"
    assert "gone" not in first["metadata"]["labels"]
    assert first["metadata"]["labels"]["owner"] == "me"
    assert first["spec"]["taints"] == [{"key": "sku", "value": "gpu", "effect": "NoSchedule"},
                                       {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
    for name in (PREFIX + "000001", PREFIX + "000003"):  # an old node and a new one look alike
        assert listed[name]["metadata"]["labels"]["tier"] == "api"
        assert listed[name]["spec"]["taints"] == [{"key": "sku", "value": "gpu", "effect": "NoSchedule"}]
    await pool.apply(make_template(labels=base), 4)  # no taints left: none on the nodes
    assert "taints" not in (await _nodes(cluster))[PREFIX + "000001"]["spec"]


# -- stop, start, restart, delete ------------------------------------------------------------


async def test_stop_deletes_the_nodes_and_start_brings_them_back_by_name(cluster, pool):
    before = await _nodes(cluster)
    await pool.stop()
    assert await _nodes(cluster) == {} and await _leases(cluster) == {}
    assert pool.heartbeats.agents == 0
    await pool.start()
    after = await _nodes(cluster)
    assert sorted(after) == sorted(before)
    assert {n: _ip(after[n]) for n in after} == {n: _ip(before[n]) for n in before}
    assert all(after[n]["metadata"]["uid"] != before[n]["metadata"]["uid"] for n in after)  # new Node objects


async def test_a_new_pool_after_a_restart_adopts_the_nodes(cluster, open_cluster, template, clock, settle):
    first = NodePool(cluster=cluster, template=template, count=4)
    await first.start()
    before = await _nodes(cluster)
    await first.close()  # the service stops; the Nodes stay
    await cluster.stop()
    restarted = await open_cluster()
    again = NodePool(cluster=restarted, template=template, count=3)  # scaled in while down
    await again.start()
    try:
        after = await _nodes(restarted)
        assert sorted(after) == sorted(before)[:3]
        assert all(after[n]["metadata"]["uid"] == before[n]["metadata"]["uid"] for n in after)
        assert all(_ip(after[n]) == _ip(before[n]) for n in after)
        assert sorted(await _leases(restarted)) == sorted(after)
        await clock.advance(10)

        async def renewed():
            return all(lease["spec"]["renewTime"] == "2023-11-14T22:13:30.000000Z"
                       for lease in (await _leases(restarted)).values())

        await settle(renewed)
    finally:
        await again.close()


async def test_pools_of_a_cluster_share_the_node_subnet(cluster, pool, make_template):
    user = NodePool(cluster=cluster, template=make_template(pool="userpool", mode="User"), count=2)
    await user.start()
    try:
        ips = {n: _ip(node) for n, node in (await _nodes(cluster)).items()}
        assert ips["aks-userpool-12345678-vmss000000"] == "10.224.0.7"
        assert ips["aks-userpool-12345678-vmss000001"] == "10.224.0.8"
        await pool.scale(1)
        await user.scale(3)  # the lowest free address again
        assert _ip((await _nodes(cluster))["aks-userpool-12345678-vmss000002"]) == "10.224.0.5"
    finally:
        await user.close()


async def test_delete_removes_nodes_and_leases_even_of_a_pool_never_started_here(cluster, template):
    first = NodePool(cluster=cluster, template=template, count=2)
    await first.start()
    await first.close()
    other = NodePool(cluster=cluster, template=template, count=2)
    await other.delete()
    assert await _nodes(cluster) == {} and await _leases(cluster) == {}


# -- over HTTP -----------------------------------------------------------------------------------


async def test_kubectl_sees_the_nodes(cluster, pool, tmp_path):
    # kubectl sends a bearer token only over TLS: serve the cluster like `lks up` does
    serving = pki.create_serving_cert(CA, ["127.0.0.1"])
    (tmp_path / "tls.crt").write_bytes(serving.cert_pem)
    (tmp_path / "tls.key").write_bytes(serving.key_pem)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    app = web.Application()
    app.router.add_routes(KubeAPI(lambda id: cluster if id == cluster.id else None).routes())
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
    server = f"https://127.0.0.1:{port}/clusters/{cluster.id}"
    trust = ssl.create_default_context(cadata=CA.cert_pem.decode())
    try:
        async with ClientSession(headers={"Authorization": f"Bearer {TOKEN}"},
                                 connector=TCPConnector(ssl=trust)) as http:
            async with http.get(f"{server}/api/v1/nodes?labelSelector=kubernetes.azure.com/agentpool=nodepool1") as r:
                assert r.status == 200
                names = [n["metadata"]["name"] for n in (await r.json())["items"]]
        assert names == pool.node_names()
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "c1",
            "clusters": [{"name": "c1", "cluster": {
                "server": server, "certificate-authority-data": base64.b64encode(CA.cert_pem).decode()}}],
            "users": [{"name": "admin", "user": {"token": TOKEN}}],
            "contexts": [{"name": "c1", "context": {"cluster": "c1", "user": "admin"}}],
        }))
        proc = await asyncio.create_subprocess_exec(
            str(KUBECTL), "get", "nodes", "-o", "wide", "--no-headers",
            env={**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        rows = [line.split() for line in out.decode().splitlines()]
        assert [r[0] for r in rows] == pool.node_names()
        # no node IPAM runs here: without a pod CIDR the nodes' runtime network is not ready
        assert all(r[1] == "NotReady" and r[4] == "v1.36.0" for r in rows)
        assert [r[5] for r in rows] == ["10.224.0.4", "10.224.0.5", "10.224.0.6"]
    finally:
        await runner.cleanup()
