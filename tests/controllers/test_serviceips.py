"""Service cluster IP and node port allocation (`lks.kube.admission.serviceips`) and the
`kubernetes` Service (`lks.controllers.kubernetesservice`), on the memory store.

Error texts are kube-apiserver 1.36's (`pkg/registry/core/service/storage/alloc.go`, the
allocators' errors, field values rendered as JSON since 1.34).
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import pytest

from lks.clock import ManualClock
from lks.controllers.kubernetesservice import KubernetesServiceController
from lks.kube import deletion, errors
from lks.kube.admission import serviceips
from lks.kube.cluster import Cluster
from lks.kube.registry import WriteOptions

from .conftest import ADMIN, CA, TOKEN

CIDR = ipaddress.ip_network("10.0.0.0/16")


def svc(name: str, **spec: object) -> dict:
    return {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}], **spec}}


async def create(cluster: Cluster, obj: dict, opts: WriteOptions | None = None) -> dict:
    reg = cluster.registry("", "v1", "services")
    return await reg.create("default", obj, opts) if opts else await reg.create("default", obj)


async def invalid(cluster: Cluster, obj: dict) -> str:
    with pytest.raises(errors.APIError) as exc:
        await create(cluster, obj)
    return f"{exc.value.code} {exc.value.message}"


async def delete(cluster: Cluster, name: str) -> None:
    await cluster.registry("", "v1", "services").delete("default", name, deletion.DeleteOptions())


async def replace(cluster: Cluster, name: str, change) -> dict:
    reg = cluster.registry("", "v1", "services")
    current = await reg.get("default", name)
    change(current["spec"])
    updated, _ = await reg.update("default", name, current)
    return updated


async def test_cluster_ip_is_a_random_free_address_of_the_upper_band(cluster):
    ips = set()
    for i in range(20):
        spec = (await create(cluster, svc(f"s{i}")))["spec"]
        assert spec["clusterIPs"] == [spec["clusterIP"]] and spec["ipFamilies"] == ["IPv4"]
        ip = ipaddress.ip_address(spec["clusterIP"])
        assert ip in CIDR and int(ip) - int(CIDR.network_address) > 256  # 10.0.0.1–10.0.1.0 stay for requests
        ips.add(ip)
    assert len(ips) == 20


async def test_requested_ip_is_honoured_once(cluster):
    spec = (await create(cluster, svc("dns", clusterIP="10.0.0.10")))["spec"]
    assert spec["clusterIP"] == "10.0.0.10" and spec["clusterIPs"] == ["10.0.0.10"]
    assert await invalid(cluster, svc("other", clusterIP="10.0.0.10")) == (
        '422 Service "other" is invalid: spec.clusterIPs: Invalid value: ["10.0.0.10"]: failed to allocate IP '
        "10.0.0.10: provided IP is already allocated")
    assert await invalid(cluster, svc("far", clusterIP="10.1.0.5")) == (
        '422 Service "far" is invalid: spec.clusterIPs: Invalid value: ["10.1.0.5"]: failed to allocate IP '
        "10.1.0.5: the provided IP (10.1.0.5) is not in the valid range. The range of valid IPs is 10.0.0.0/16")


@pytest.mark.parametrize(("spec", "expected"), [
    pytest.param({"clusterIP": "None", "selector": {"app": "a"}}, {"clusterIP": "None", "clusterIPs": ["None"]},
                 id="headless"),
    pytest.param({"type": "ExternalName", "externalName": "example.com", "ports": []}, {}, id="external-name"),
])
async def test_no_address_for_headless_and_external_name(cluster, spec, expected):
    got = (await create(cluster, svc("s", **spec)))["spec"]
    assert {k: got.get(k) for k in ("clusterIP", "clusterIPs")} == {"clusterIP": None, "clusterIPs": None, **expected}


@pytest.mark.parametrize(("spec", "message"), [
    pytest.param({"ipFamilyPolicy": "RequireDualStack"},
                 'spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for '
                 "dual-stack services", id="dual-stack"),
    pytest.param({"ipFamilies": ["IPv6"]}, 'spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster',
                 id="ipv6"),
])
async def test_single_stack_cluster_refuses_other_families(cluster, spec, message):
    assert await invalid(cluster, svc("s", **spec)) == f'422 Service "s" is invalid: {message}'


async def test_node_ports(cluster):
    spec = (await create(cluster, svc("np", type="NodePort")))["spec"]
    assert 30000 <= spec["ports"][0]["nodePort"] <= 32767 and "healthCheckNodePort" not in spec
    assert await invalid(cluster, svc("np2", type="NodePort", ports=[{"port": 80, "nodePort": spec["ports"][0]["nodePort"]}])) == (
        f'422 Service "np2" is invalid: spec.ports[0].nodePort: Invalid value: {spec["ports"][0]["nodePort"]}: '
        "provided port is already allocated")
    # a TCP and a UDP port of the same number share one node port
    both = (await create(cluster, svc("dns", type="NodePort", ports=[
        {"name": "tcp", "port": 53, "protocol": "TCP"}, {"name": "udp", "port": 53, "protocol": "UDP"}])))["spec"]
    assert both["ports"][0]["nodePort"] == both["ports"][1]["nodePort"]


async def test_load_balancer_ports_and_health_check(cluster):
    spec = (await create(cluster, svc("lb", type="LoadBalancer", externalTrafficPolicy="Local", ports=[
        {"name": "a", "port": 80}, {"name": "b", "port": 443}])))["spec"]
    ports = {p["nodePort"] for p in spec["ports"]} | {spec["healthCheckNodePort"]}
    assert len(ports) == 3 and all(30000 <= p <= 32767 for p in ports)
    bare = (await create(cluster, svc("lb2", type="LoadBalancer", allocateLoadBalancerNodePorts=False)))["spec"]
    assert "nodePort" not in bare["ports"][0] and "healthCheckNodePort" not in bare


async def test_deleting_frees_what_the_service_held(cluster):
    await create(cluster, svc("a", type="NodePort", clusterIP="10.0.0.20", ports=[{"port": 80, "nodePort": 30080}]))
    await delete(cluster, "a")
    again = (await create(cluster, svc("b", type="NodePort", clusterIP="10.0.0.20",
                                       ports=[{"port": 80, "nodePort": 30080}])))["spec"]
    assert again["clusterIP"] == "10.0.0.20" and again["ports"][0]["nodePort"] == 30080


async def test_update_keeps_allocations_left_out(cluster):
    first = (await create(cluster, svc("a", type="NodePort", ports=[{"name": "web", "port": 80}])))["spec"]

    def leave_out(spec: dict) -> None:  # a PUT of the original manifest
        del spec["clusterIP"], spec["clusterIPs"], spec["ports"][0]["nodePort"]

    after = (await replace(cluster, "a", leave_out))["spec"]
    assert after["clusterIP"] == first["clusterIP"] and after["ports"][0]["nodePort"] == first["ports"][0]["nodePort"]


async def test_type_changes_allocate_and_release(cluster):
    spec = (await create(cluster, svc("a", type="NodePort", clusterIP="10.0.0.30",
                                      ports=[{"port": 80, "nodePort": 30090}])))["spec"]
    assert spec["ports"][0]["nodePort"] == 30090

    def to_cluster_ip(s: dict) -> None:
        s["type"] = "ClusterIP"
        del s["ports"][0]["nodePort"], s["externalTrafficPolicy"]

    await replace(cluster, "a", to_cluster_ip)
    taken = (await create(cluster, svc("b", type="NodePort", ports=[{"port": 80, "nodePort": 30090}])))["spec"]
    assert taken["ports"][0]["nodePort"] == 30090

    def to_external_name(s: dict) -> None:
        s.update(type="ExternalName", externalName="example.com")
        for k in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy"):
            s.pop(k, None)

    await replace(cluster, "a", to_external_name)
    assert (await create(cluster, svc("c", clusterIP="10.0.0.30")))["spec"]["clusterIP"] == "10.0.0.30"

    def to_cluster_ip_again(s: dict) -> None:
        s["type"] = "ClusterIP"
        del s["externalName"]

    back = (await replace(cluster, "a", to_cluster_ip_again))["spec"]
    assert ipaddress.ip_address(back["clusterIP"]) in CIDR and back["clusterIP"] != "10.0.0.30"


async def test_dry_run_reserves_nothing(cluster):
    dry = (await create(cluster, svc("a", type="NodePort"), WriteOptions(dry_run=True)))["spec"]
    real = (await create(cluster, svc("b", type="NodePort", clusterIP=dry["clusterIP"],
                                      ports=[{"port": 80, "nodePort": dry["ports"][0]["nodePort"]}])))["spec"]
    assert real["clusterIP"] == dry["clusterIP"]


async def test_allocations_survive_a_restart(backend, clock):
    first = Cluster(id="c1", name="c1", kubernetes_version="1.36", backend=backend, ca=CA, tokens={TOKEN: ADMIN},
                    clock=clock)
    await first.start()
    await create(first, svc("a", type="NodePort", clusterIP="10.0.0.40", ports=[{"port": 80, "nodePort": 30100}]))
    await first.stop()
    second = Cluster(id="c1", name="c1", kubernetes_version="1.36", backend=backend, ca=CA, tokens={TOKEN: ADMIN},
                     clock=clock)
    await second.start()
    try:
        assert "provided IP is already allocated" in await invalid(second, svc("b", clusterIP="10.0.0.40"))
        assert "provided port is already allocated" in await invalid(
            second, svc("c", type="NodePort", ports=[{"port": 80, "nodePort": 30100}]))
    finally:
        await second.stop()


async def test_claims_of_failed_writes_free_themselves(cluster, clock: ManualClock):
    await create(cluster, svc("a"))
    # admitted (10.0.0.50 claimed), then refused by the store: "a" exists
    with pytest.raises(errors.APIError) as exc:
        await create(cluster, svc("a", clusterIP="10.0.0.50"))
    assert exc.value.code == 409
    assert "already allocated" in await invalid(cluster, svc("b", clusterIP="10.0.0.50"))  # may still be in flight
    await clock.advance(serviceips.FRESH + 1)
    assert (await create(cluster, svc("b", clusterIP="10.0.0.50")))["spec"]["clusterIP"] == "10.0.0.50"


# -- the `kubernetes` Service ---------------------------------------------------------------

@pytest.fixture
async def kubernetes_service(cluster) -> AsyncIterator[KubernetesServiceController]:
    cluster.api_endpoint = ("127.0.0.1", 6443)
    controller = KubernetesServiceController(cluster)
    await controller.start()
    yield controller
    await controller.stop()


async def _get(cluster: Cluster, group: str, resource: str) -> dict | None:
    try:
        return await cluster.registry(group, "v1", resource).get("default", "kubernetes")
    except errors.APIError:
        return None


async def test_kubernetes_service_at_the_first_address(cluster, kubernetes_service, settle):
    async def ready() -> bool:
        return all([await _get(cluster, "", "services"), await _get(cluster, "", "endpoints"),
                    await _get(cluster, "discovery.k8s.io", "endpointslices")])

    await settle(ready, tries=2000)
    service = await _get(cluster, "", "services")
    assert service["metadata"]["labels"] == {"component": "apiserver", "provider": "kubernetes"}
    assert service["spec"]["clusterIP"] == "10.0.0.1" and service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443}]
    endpoints = await _get(cluster, "", "endpoints")
    assert endpoints["subsets"] == [{"addresses": [{"ip": "127.0.0.1"}],
                                     "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]
    assert endpoints["metadata"]["labels"] == {"endpointslice.kubernetes.io/skip-mirror": "true"}
    slice_ = await _get(cluster, "discovery.k8s.io", "endpointslices")
    assert slice_["metadata"]["labels"] == {"kubernetes.io/service-name": "kubernetes"}
    assert slice_["addressType"] == "IPv4"
    assert slice_["endpoints"][0]["addresses"] == ["127.0.0.1"]
    assert slice_["ports"] == [{"name": "https", "port": 6443, "protocol": "TCP"}]


async def test_kubernetes_service_comes_back(cluster, kubernetes_service, settle):
    async def present(resource: str, group: str = "") -> bool:
        return await _get(cluster, group, resource) is not None

    await settle(lambda: present("endpointslices", "discovery.k8s.io"), tries=2000)
    await settle(lambda: present("services"), tries=2000)
    await delete(cluster, "kubernetes")
    await cluster.registry("discovery.k8s.io", "v1", "endpointslices").delete(
        "default", "kubernetes", deletion.DeleteOptions())

    async def back() -> bool:
        service = await _get(cluster, "", "services")
        return bool(service and service["spec"]["clusterIP"] == "10.0.0.1"
                    and await present("endpointslices", "discovery.k8s.io"))

    await settle(back, tries=2000)
