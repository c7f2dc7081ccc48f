"""The Endpoints and EndpointSlice controllers (`lks.controllers.endpoints`, `.endpointslice`)
on the memory store: pods are created bound to a node and given a status by hand, as a node
agent would, and the tests read what the controllers wrote."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from lks.controllers import endpoints as ep
from lks.controllers import endpointslice
from lks.kube import deletion, errors
from lks.kube.cluster import Cluster
from lks.kube.registry import ListOptions
from lks.kube.selectors import FieldSelector, LabelSelector

NS = "default"
EVERYTHING = ListOptions(LabelSelector([]), FieldSelector([]))
TRIGGER = "2026-01-02T03:04:05Z"


@pytest.fixture
async def controllers(cluster: Cluster) -> AsyncIterator[None]:
    started = [ep.EndpointsController(cluster), endpointslice.EndpointSliceController(cluster)]
    for c in started:
        await c.start()
    yield
    for c in reversed(started):
        await c.stop()


async def service(cluster: Cluster, name: str = "web", **spec: object) -> dict:
    body = {"metadata": {"name": name, "labels": {"team": "a"}},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}], **spec}}
    return await cluster.registry("", "v1", "services").create(NS, body)


async def pod(cluster: Cluster, name: str, ip: str | None, *, app: str = "web", ready: bool = True,
              phase: str = "Running", node: str = "aks-nodepool1-0", ports: list | None = None, **spec: object) -> dict:
    pods = cluster.registry("", "v1", "pods")
    container = {"name": "c", "image": "nginx", **({"ports": ports} if ports else {})}
    await pods.create(NS, {"metadata": {"name": name, "labels": {"app": app}},
                           "spec": {"nodeName": node, "containers": [container], **spec}})

    def status(current: dict) -> dict:
        current["status"] = {"phase": phase, "conditions": [
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": TRIGGER}]}
        if ip:
            current["status"] |= {"podIP": ip, "podIPs": [{"ip": ip}]}
        return current

    return await pods.patch(NS, name, status, subresource="status")


async def endpoints(cluster: Cluster, name: str = "web") -> dict | None:
    try:
        return await cluster.registry("", "v1", "endpoints").get(NS, name)
    except errors.APIError:
        return None


async def slices(cluster: Cluster, name: str = "web") -> list[dict]:
    listed = await cluster.registry("discovery.k8s.io", "v1", "endpointslices").list(NS, EVERYTHING)
    return [s for s in listed["items"] if s["metadata"]["labels"].get("kubernetes.io/service-name") == name]


def addresses(slices_: list[dict]) -> dict[str, dict]:
    return {e["addresses"][0]: e for s in slices_ for e in s["endpoints"]}


Settle = Callable[..., Awaitable[None]]


async def until(settle: Settle, check: Callable[[], Awaitable[bool]]) -> None:
    await settle(check, tries=5000)


async def test_ready_and_not_ready_pods(cluster, controllers, settle):
    svc = await service(cluster)
    a = await pod(cluster, "a", "10.244.0.5")
    await pod(cluster, "b", "10.244.1.6", ready=False, node="aks-nodepool1-1")
    await pod(cluster, "other", "10.244.0.9", app="db")
    await pod(cluster, "pending", None)

    async def both() -> bool:
        got = await endpoints(cluster)
        return bool(got and got.get("subsets") and len(addresses(await slices(cluster))) == 2)

    await until(settle, both)
    got = await endpoints(cluster)
    assert got["metadata"]["labels"] == {"team": "a", "endpoints.kubernetes.io/managed-by": "endpoint-controller"}
    assert got["metadata"]["annotations"] == {"endpoints.kubernetes.io/last-change-trigger-time": TRIGGER}
    assert got["subsets"] == [{
        "addresses": [{"ip": "10.244.0.5", "nodeName": "aks-nodepool1-0", "targetRef": {
            "kind": "Pod", "namespace": NS, "name": "a", "uid": a["metadata"]["uid"]}}],
        "notReadyAddresses": [{"ip": "10.244.1.6", "nodeName": "aks-nodepool1-1", "targetRef": {
            "kind": "Pod", "namespace": NS, "name": "b", "uid": got["subsets"][0]["notReadyAddresses"][0]["targetRef"]["uid"]}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }]
    [slice_] = await slices(cluster)
    assert slice_["metadata"]["name"].startswith("web-") and slice_["addressType"] == "IPv4"
    assert slice_["metadata"]["labels"] == {"team": "a", "kubernetes.io/service-name": "web",
                                            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    assert slice_["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                                      "uid": svc["metadata"]["uid"], "controller": True,
                                                      "blockOwnerDeletion": True}]
    assert slice_["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    eps = addresses([slice_])
    assert eps["10.244.0.5"] == {"addresses": ["10.244.0.5"], "nodeName": "aks-nodepool1-0",
                                 "conditions": {"ready": True, "serving": True, "terminating": False},
                                 "targetRef": {"kind": "Pod", "namespace": NS, "name": "a", "uid": a["metadata"]["uid"]}}
    assert eps["10.244.1.6"]["conditions"] == {"ready": False, "serving": False, "terminating": False}


async def test_named_target_port_resolves_per_pod(cluster, controllers, settle):
    await service(cluster, ports=[{"name": "http", "port": 80, "targetPort": "web"}])
    await pod(cluster, "a", "10.244.0.5", ports=[{"name": "web", "containerPort": 8080}])
    await pod(cluster, "b", "10.244.0.6", ports=[{"name": "web", "containerPort": 9090}])
    await pod(cluster, "c", "10.244.0.7", ports=[{"name": "metrics", "containerPort": 9100}])

    async def done() -> bool:
        got = await endpoints(cluster)
        return bool(got and len(got.get("subsets") or []) == 2 and len(await slices(cluster)) == 3)

    await until(settle, done)
    subsets = (await endpoints(cluster))["subsets"]
    assert {s["ports"][0]["port"]: [a["ip"] for a in s["addresses"]] for s in subsets} == {
        8080: ["10.244.0.5"], 9090: ["10.244.0.6"]}  # "c" serves no port named web
    by_ports = {tuple(p["port"] for p in s.get("ports") or []): [e["addresses"][0] for e in s["endpoints"]]
                for s in await slices(cluster)}
    assert by_ports == {(8080,): ["10.244.0.5"], (9090,): ["10.244.0.6"], (): ["10.244.0.7"]}


async def test_terminating_and_finished_pods(cluster, controllers, settle):
    await service(cluster)
    await pod(cluster, "a", "10.244.0.5")
    await pod(cluster, "done", "10.244.0.8", phase="Succeeded", ready=False)
    await pod(cluster, "going", "10.244.0.6", terminationGracePeriodSeconds=30)
    await cluster.registry("", "v1", "pods").delete(NS, "going", deletion.DeleteOptions())

    async def done() -> bool:
        eps = addresses(await slices(cluster))
        return "10.244.0.6" in eps and eps["10.244.0.6"]["conditions"]["terminating"]

    await until(settle, done)
    eps = addresses(await slices(cluster))
    assert set(eps) == {"10.244.0.5", "10.244.0.6"}
    assert eps["10.244.0.6"]["conditions"] == {"ready": False, "serving": True, "terminating": True}
    await until(settle, lambda: _ips(cluster, "addresses", {"10.244.0.5"}))


async def _ips(cluster: Cluster, field: str, want: set[str]) -> bool:
    got = await endpoints(cluster)
    return {a["ip"] for s in (got or {}).get("subsets") or [] for a in s.get(field) or []} == want


async def test_publish_not_ready_addresses(cluster, controllers, settle):
    await service(cluster, publishNotReadyAddresses=True)
    await pod(cluster, "a", "10.244.0.5", ready=False)
    await until(settle, lambda: _ips(cluster, "addresses", {"10.244.0.5"}))

    async def ready_in_slice() -> bool:
        eps = addresses(await slices(cluster))
        return "10.244.0.5" in eps and eps["10.244.0.5"]["conditions"]["ready"]

    await until(settle, ready_in_slice)
    assert addresses(await slices(cluster))["10.244.0.5"]["conditions"]["serving"] is False


async def test_pod_changes_follow(cluster, controllers, settle):
    await service(cluster)
    await pod(cluster, "a", "10.244.0.5", ready=False)
    await until(settle, lambda: _ips(cluster, "notReadyAddresses", {"10.244.0.5"}))

    def ready(current: dict) -> dict:
        current["status"]["conditions"][0]["status"] = "True"
        return current

    await cluster.registry("", "v1", "pods").patch(NS, "a", ready, subresource="status")
    await until(settle, lambda: _ips(cluster, "addresses", {"10.244.0.5"}))

    def relabel(current: dict) -> dict:
        current["metadata"]["labels"] = {"app": "elsewhere"}
        return current

    await cluster.registry("", "v1", "pods").patch(NS, "a", relabel)
    await until(settle, lambda: _ips(cluster, "addresses", set()))

    async def placeholder() -> bool:
        got = await slices(cluster)
        return len(got) == 1 and not got[0]["endpoints"] and "ports" not in got[0]

    await until(settle, placeholder)


async def test_a_hundred_endpoints_per_slice(cluster, controllers, settle):
    await service(cluster)
    for i in range(150):
        await pod(cluster, f"p{i}", f"10.244.{i // 200}.{i % 200 + 10}")

    async def spread() -> bool:
        return len(addresses(await slices(cluster))) == 150

    await until(settle, spread)
    assert sorted(len(s["endpoints"]) for s in await slices(cluster)) == [50, 100]
    got = await endpoints(cluster)
    assert len(got["subsets"][0]["addresses"]) == 150
    pods = cluster.registry("", "v1", "pods")
    for i in range(60):
        await pods.delete(NS, f"p{i}", deletion.DeleteOptions(grace_period_seconds=0))

    async def shrunk() -> bool:
        got = await slices(cluster)
        return len(addresses(got)) == 90 and all(s["endpoints"] for s in got)

    await until(settle, shrunk)


async def test_headless_and_selectorless_services(cluster, controllers, settle):
    await service(cluster, "headless", clusterIP="None")
    await pod(cluster, "a", "10.244.0.5", app="headless", hostname="a", subdomain="headless")

    async def headless() -> bool:
        got = await endpoints(cluster, "headless")
        return bool(got and got.get("subsets"))

    await until(settle, headless)
    got = await endpoints(cluster, "headless")
    assert got["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
    assert got["subsets"][0]["addresses"][0]["hostname"] == "a"
    [slice_] = await slices(cluster, "headless")
    assert slice_["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
    assert slice_["endpoints"][0]["hostname"] == "a"

    await cluster.registry("", "v1", "services").create(NS, {
        "metadata": {"name": "manual"}, "spec": {"ports": [{"port": 80}]}})
    await service(cluster, "marker")  # synced after "manual": by then "manual" was passed over
    await until(settle, lambda: _exists(cluster, "marker"))
    assert await endpoints(cluster, "manual") is None and await slices(cluster, "manual") == []


async def _exists(cluster: Cluster, name: str) -> bool:
    return await endpoints(cluster, name) is not None and bool(await slices(cluster, name))


async def test_zone_from_the_node(cluster, controllers, settle):
    await cluster.registry("", "v1", "nodes").create(None, {"metadata": {"name": "aks-nodepool1-0", "labels": {
        "topology.kubernetes.io/zone": "eastus-1"}}})
    await service(cluster)
    await pod(cluster, "a", "10.244.0.5")
    await until(settle, lambda: _slice_has(cluster, "10.244.0.5"))
    assert addresses(await slices(cluster))["10.244.0.5"]["zone"] == "eastus-1"


async def _slice_has(cluster: Cluster, ip: str) -> bool:
    return ip in addresses(await slices(cluster))


async def test_deleted_service_takes_its_endpoints(cluster, controllers, settle):
    await service(cluster)
    await pod(cluster, "a", "10.244.0.5")
    await until(settle, lambda: _ips(cluster, "addresses", {"10.244.0.5"}))
    await cluster.registry("", "v1", "services").delete(NS, "web", deletion.DeleteOptions())

    async def gone() -> bool:
        return await endpoints(cluster) is None

    await until(settle, gone)


async def test_deleted_slice_is_made_again(cluster, controllers, settle):
    await service(cluster)
    await pod(cluster, "a", "10.244.0.5")
    await until(settle, lambda: _slice_has(cluster, "10.244.0.5"))
    [slice_] = await slices(cluster)
    await cluster.registry("discovery.k8s.io", "v1", "endpointslices").delete(
        NS, slice_["metadata"]["name"], deletion.DeleteOptions())

    async def again() -> bool:
        got = await slices(cluster)
        return len(got) == 1 and got[0]["metadata"]["name"] != slice_["metadata"]["name"] \
            and "10.244.0.5" in addresses(got)

    await until(settle, again)


def test_truncate_keeps_ready_addresses_first():
    subsets = [{"addresses": [{"ip": f"a{i}"} for i in range(600)], "notReadyAddresses": [{"ip": "x"}]},
               {"addresses": [{"ip": f"b{i}"} for i in range(600)]}]
    assert ep.truncate(subsets)
    assert [len(s.get("addresses", [])) for s in subsets] == [500, 500]
    assert "notReadyAddresses" not in subsets[0]
    assert not ep.truncate([{"addresses": [{"ip": "a"}]}])
