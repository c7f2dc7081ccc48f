"""The node agents write as their kubelets would, `system:node:<name>` in `system:nodes`: every
write (registration, status, Lease, pod status, Events, the final pod delete) is decided by the
Node authorizer and NodeRestriction, and a kubelet that writes another node's objects is refused
in upstream's words."""

from __future__ import annotations

import pytest
from support import pod_or_none

from lks.kube import authn, authz, deletion, errors
from lks.kube.registry import ListOptions
from lks.kube.selectors import FieldSelector, LabelSelector
from lks.nodes import agent as agents
from lks.nodes import pods, statusmanager

CIDR = "10.244.3.0/24"


@pytest.fixture
def decisions(cluster, monkeypatch):
    """Every authorization the cluster decided, as (user, verb, resource, subresource, decision)."""
    seen: list[tuple[authn.User, str, str, str, str]] = []
    chain = cluster.authorizer
    decide = chain.authorize

    async def spy(attrs: authz.Attributes) -> tuple[str, str]:
        decision, reason = await decide(attrs)
        seen.append((attrs.user, attrs.verb, attrs.resource, attrs.subresource, decision))
        return decision, reason

    monkeypatch.setattr(chain, "authorize", spy)
    return seen


def _pod(name: str, node: str) -> dict:
    return {"metadata": {"name": name},
            "spec": {"nodeName": node, "containers": [{"name": "main", "image": "nginx"}]}}


async def test_every_write_of_an_agent_is_its_kubelets(cluster, template, clock, settle, decisions):
    agent = agents.NodeAgent(cluster=cluster, template=template, index=0, address="10.224.0.4", pod_cidrs=[CIDR])
    await agent.start()
    try:
        reg = cluster.registry("", "v1", "pods")
        await reg.create("default", _pod("web", agent.name))

        async def running() -> bool:
            pod = await pod_or_none(cluster, "web")
            if pod is not None and "containerStatuses" in pod["status"]:
                await clock.advance(0.01)
            return pod is not None and pod["status"].get("phase") == "Running"

        await settle(running, tries=2000)
        await reg.delete("default", "web", deletion.DeleteOptions())

        async def gone() -> bool:
            return await pod_or_none(cluster, "web") is None

        await settle(gone, tries=2000)
        await clock.advance(agents.RENEW_INTERVAL)  # a heartbeat: the Lease renewed

        async def renewed() -> bool:
            return any(verb == "patch" and resource == "leases" for _, verb, resource, _, _ in decisions)

        await settle(renewed, tries=2000)
    finally:
        await agent.stop()

    writes = {(verb, resource, sub) for user, verb, resource, sub, _ in decisions if user == agent.identity}
    assert {("create", "nodes", ""), ("patch", "nodes", "status"), ("create", "leases", ""),
            ("patch", "leases", ""), ("patch", "pods", "status"), ("delete", "pods", ""),
            ("create", "events", "")} <= writes
    assert agent.identity == authn.User(f"system:node:{agent.name}", ("system:nodes", "system:authenticated"))
    assert {user for user, *_ in decisions} == {agent.identity}  # the pool's other work is not the kubelet's
    assert all(decision == authz.ALLOW for *_, decision in decisions)
    listed = await cluster.registry("", "v1", "events").list("default", ListOptions(LabelSelector([]), FieldSelector([])))
    events = listed["items"]
    assert {e["reason"] for e in events} >= {"Pulled", "Created", "Started", "Killing"}


async def test_a_restarted_agent_keeps_the_pools_taints_as_aks_does(open_cluster, cluster, make_template, decisions):
    """A kubelet may not change its taints: the pool's, changed while the service was down,
    are set on the adopted Node as AKS's control plane (the caller), not as the node."""
    first = agents.NodeAgent(cluster=cluster, template=make_template(), index=0, address="10.224.0.4")
    await first.start()
    await first.stop()
    taint = {"key": "sku", "value": "gpu", "effect": "NoSchedule"}
    again = agents.NodeAgent(cluster=cluster, template=make_template(taints=({**taint},)), index=0,
                             address="10.224.0.4")
    await again.start()
    try:
        node = await cluster.registry("", "v1", "nodes").get(None, again.name)
        assert node["spec"]["taints"] == [taint]
    finally:
        await again.stop()
    assert all(decision == authz.ALLOW for *_, decision in decisions)


async def test_a_kubelet_cannot_write_another_nodes_objects(cluster, template):
    mine = agents.NodeAgent(cluster=cluster, template=template, index=0, address="10.224.0.4")
    other = agents.NodeAgent(cluster=cluster, template=template, index=1, address="10.224.0.5")
    await mine.start()
    await other.start()
    try:
        await cluster.registry("", "v1", "pods").create("default", _pod("elsewhere", other.name))

        def touch(obj: dict) -> dict:
            obj["status"].setdefault("conditions", [])
            obj["metadata"].setdefault("annotations", {})["example.com/by"] = mine.name
            return obj

        with authn.acting_as(mine.identity):
            with pytest.raises(errors.APIError) as err:
                await cluster.registry("", "v1", "nodes").patch(None, other.name, touch, subresource="status")
            assert (err.value.code, err.value.status()["message"]) == (
                403, f'nodes "{other.name}" is forbidden: node "{mine.name}" is not allowed to modify node '
                     f'"{other.name}"')
            with pytest.raises(errors.APIError) as err:
                await cluster.registry("coordination.k8s.io", "v1", "leases").patch(
                    "kube-node-lease", other.name, touch)
            assert err.value.status()["message"] == (
                f'leases.coordination.k8s.io "{other.name}" is forbidden: User "system:node:{mine.name}" cannot '
                f'patch resource "leases" in API group "coordination.k8s.io" in the namespace "kube-node-lease": '
                "can only access node lease with the same name as the requesting node")
            with pytest.raises(errors.APIError) as err:
                await cluster.registry("", "v1", "pods").delete(
                    "default", "elsewhere", deletion.DeleteOptions(grace_period_seconds=0))
            assert err.value.status()["message"] == (
                f'pods "elsewhere" is forbidden: node "{mine.name}" can only delete pods with spec.nodeName set to '
                "itself")
    finally:
        await other.stop()
        await mine.stop()


async def test_a_status_written_for_the_wrong_node_is_refused(cluster, template, clock):
    """The status manager writes each report as the node it names: one claiming a pod bound
    elsewhere (a bug that would let one kubelet write another's pods) is refused, and the pod
    keeps its status."""
    mine = agents.NodeAgent(cluster=cluster, template=template, index=0, address="10.224.0.4")
    other = agents.NodeAgent(cluster=cluster, template=template, index=1, address="10.224.0.5")
    await mine.start()
    await other.start()
    manager = statusmanager.StatusManager(cluster.registry("", "v1", "pods"), clock=clock, workers=1)
    try:
        pod = await cluster.registry("", "v1", "pods").create("default", _pod("elsewhere", other.name))
        status = {"phase": "Failed", "message": "not mine", "conditions": []}
        manager.report("default/elsewhere", pod, status, clock.now(), user=mine.identity)
        with pytest.raises(errors.APIError) as err:
            await manager._write("default/elsewhere")  # noqa: SLF001  # one writer's turn, run here
        assert err.value.status()["message"] == (
            f'pods "elsewhere" is forbidden: node "{mine.name}" can only update pod status for pods with '
            "spec.nodeName set to itself")
        assert (await pod_or_none(cluster, "elsewhere"))["status"].get("message") != "not mine"
    finally:
        await other.stop()
        await mine.stop()


async def test_the_shared_pod_workers_write_each_pod_as_its_node(cluster, template, clock, settle, decisions):
    """One set of pod workers serves every node; each pod's status is its own node's write."""
    a = agents.NodeAgent(cluster=cluster, template=template, index=0, address="10.224.0.4", pod_cidrs=[CIDR])
    b = agents.NodeAgent(cluster=cluster, template=template, index=1, address="10.224.0.5",
                         pod_cidrs=["10.244.4.0/24"])
    await a.start()
    await b.start()
    try:
        assert pods.PodWorkers.shared(cluster) is pods.PodWorkers.shared(cluster)
        reg = cluster.registry("", "v1", "pods")
        await reg.create("default", _pod("on-a", a.name))
        await reg.create("default", _pod("on-b", b.name))

        async def started() -> bool:
            found = [await pod_or_none(cluster, n) for n in ("on-a", "on-b")]
            return all(p is not None and "containerStatuses" in p["status"] for p in found)

        await settle(started, tries=2000)
    finally:
        await b.stop()
        await a.stop()
    status_writers = {user.name for user, verb, resource, sub, _ in decisions if (resource, sub) == ("pods", "status")}
    assert status_writers == {f"system:node:{a.name}", f"system:node:{b.name}"}
    assert all(decision == authz.ALLOW for *_, decision in decisions)
