"""The aggregation layer over the real HTTP layer: a LocalAPI registered in process is
discovered (legacy and aggregated) and answers its requests after authorization; APIServices
behind a Service get upstream's `Available` reasons, answer 503 while unavailable, and are
proxied to a real HTTPS extension server with the front-proxy headers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
import pytest
from aiohttp import test_utils, web
from extensionserver import GROUP, RESOURCES, VERSION, ExtensionServer, apiservice, service_with_endpoints
from support import TOKEN

from lks.controllers.apiservice import APIServiceAvailabilityController
from lks.controllers.crd import CRDController
from lks.kube import aggregator, deletion
from lks.kube.authn import User
from lks.kube.cluster import Cluster

AUTH = {"Authorization": f"Bearer {TOKEN}"}
AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


class Metrics:
    """A stand-in for lks.metrics' API: two resources, answering with who asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def resources(self) -> list[dict[str, Any]]:
        return [{"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics", "verbs": ["get", "list"]},
                {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics", "verbs": ["get", "list"]}]

    async def handle(self, request: web.Request, user: User, path_rest: str) -> web.StreamResponse:
        self.calls.append((user.name, path_rest))
        return web.json_response({"kind": "NodeMetricsList", "apiVersion": "metrics.k8s.io/v1beta1",
                                  "metadata": {}, "items": [], "path": path_rest})


@pytest.fixture
async def controller(cluster: Cluster):
    c = APIServiceAvailabilityController(cluster)
    await c.start()
    yield c
    await c.stop()


async def _available(cluster: Cluster, name: str, reason: str) -> dict:
    """The APIService once its Available condition has `reason` (the controller is asynchronous)."""
    reg = cluster.registry("apiregistration.k8s.io", "v1", "apiservices")
    async with asyncio.timeout(10):
        while True:
            obj = await reg.get_or_none(None, name) or {}
            cond = next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == "Available"), None)
            fed = (cluster.aggregator.services.get(name) or {}).get("status") or {}  # what routing reads
            if cond is not None and cond["reason"] == reason and cond in (fed.get("conditions") or []):
                return cond
            await asyncio.sleep(0.02)


async def _create(cluster: Cluster, objs: list[dict]) -> None:
    for obj in objs:
        group, _, version = obj["apiVersion"].rpartition("/")
        resource = {"Service": "services", "EndpointSlice": "endpointslices", "APIService": "apiservices",
                    "Namespace": "namespaces"}[obj["kind"]]
        await cluster.registry(group, version, resource).create(obj["metadata"].get("namespace"), obj)


async def test_local_api_is_discovered_and_serves(client: test_utils.TestClient, cluster: Cluster) -> None:
    api = Metrics()
    cluster.aggregator.register_local("metrics.k8s.io", "v1beta1", api)
    groups = await (await client.get("/clusters/c1/apis", headers=AUTH)).json()
    assert {"name": "metrics.k8s.io", "versions": [{"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}],
            "preferredVersion": {"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}} in groups["groups"]
    assert groups["groups"][-1]["name"] == "metrics.k8s.io"  # priority 100: below every built-in group
    group = await (await client.get("/clusters/c1/apis/metrics.k8s.io", headers=AUTH)).json()
    assert group["kind"] == "APIGroup" and group["preferredVersion"]["version"] == "v1beta1"
    listed = await (await client.get("/clusters/c1/apis/metrics.k8s.io/v1beta1", headers=AUTH)).json()
    assert listed["groupVersion"] == "metrics.k8s.io/v1beta1" and [r["name"] for r in listed["resources"]] == ["nodes", "pods"]
    resp = await client.get("/clusters/c1/apis", headers={**AUTH, "Accept": AGGREGATED})
    doc = orjson.loads(await resp.read())
    item = next(i for i in doc["items"] if i["metadata"].get("name") == "metrics.k8s.io")
    assert item["versions"][0]["resources"][0] == {
        "resource": "nodes", "responseKind": {"group": "metrics.k8s.io", "version": "v1beta1", "kind": "NodeMetrics"},
        "scope": "Cluster", "singularResource": "", "verbs": ["get", "list"]}
    assert resp.headers["ETag"]

    resp = await client.get("/clusters/c1/apis/metrics.k8s.io/v1beta1/namespaces/default/pods", headers=AUTH)
    assert resp.status == 200 and (await resp.json())["path"] == "namespaces/default/pods"
    assert api.calls == [("clusterAdmin", "namespaces/default/pods")]


async def test_local_api_requests_are_authorized_first(client: test_utils.TestClient, cluster: Cluster) -> None:
    api = Metrics()
    cluster.aggregator.register_local("metrics.k8s.io", "v1beta1", api)
    resp = await client.get("/clusters/c1/apis/metrics.k8s.io/v1beta1/nodes",
                            headers={**AUTH, "Impersonate-User": "jane"})
    assert resp.status == 403
    assert (await resp.json())["message"] == ('nodes.metrics.k8s.io is forbidden: User "jane" cannot list resource '
                                              '"nodes" in API group "metrics.k8s.io" at the cluster scope')
    assert api.calls == []


async def test_missing_service(client: test_utils.TestClient, cluster: Cluster, controller) -> None:
    await _create(cluster, [apiservice(service={"namespace": "wardle", "name": "api", "port": 443})])
    cond = await _available(cluster, f"{VERSION}.{GROUP}", "ServiceNotFound")
    assert (cond["status"], cond["message"]) == ("False", 'service/api in "wardle" is not present')
    groups = await (await client.get("/clusters/c1/apis", headers=AUTH)).json()
    assert GROUP in [g["name"] for g in groups["groups"]]  # listed, as upstream, though unavailable
    resp = await client.get(f"/clusters/c1/apis/{GROUP}/{VERSION}", headers=AUTH)
    assert (resp.status, await resp.text()) == (503, "service unavailable\n")
    resp = await client.get(f"/clusters/c1/apis/{GROUP}/{VERSION}/namespaces/default/flunders", headers=AUTH)
    assert resp.status == 503


async def test_missing_endpoints(cluster: Cluster, controller) -> None:
    svc, sl = service_with_endpoints(1)
    sl["endpoints"][0]["conditions"]["ready"] = False
    await _create(cluster, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "wardle"}}, svc, sl,
                            apiservice(service={"namespace": "wardle", "name": "api", "port": 443})])
    cond = await _available(cluster, f"{VERSION}.{GROUP}", "MissingEndpoints")
    assert cond["message"] == 'endpointslices for service/api in "wardle" have no addresses with port name "https"'


async def test_wrong_port_and_no_slices(cluster: Cluster, controller) -> None:
    svc, _ = service_with_endpoints(1)
    await _create(cluster, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "wardle"}}, svc,
                            apiservice(service={"namespace": "wardle", "name": "api", "port": 8443})])
    cond = await _available(cluster, f"{VERSION}.{GROUP}", "ServicePortError")
    assert cond["message"] == 'service/api in "wardle" is not listening on port 8443'


async def test_failed_discovery_check(cluster: Cluster, controller) -> None:
    with ExtensionServer() as ext:
        port = ext.port
    # the server is gone: its port refuses connections
    await _create(cluster, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "wardle"}},
                            *service_with_endpoints(port),
                            apiservice(service={"namespace": "wardle", "name": "api", "port": 443})])
    cond = await _available(cluster, f"{VERSION}.{GROUP}", "FailedDiscoveryCheck")
    assert cond["message"].startswith(f"failing or missing response from https://127.0.0.1:{port}/apis/{GROUP}/{VERSION}")


async def test_proxied_to_extension_server(client: test_utils.TestClient, cluster: Cluster, controller) -> None:
    with ExtensionServer() as ext:
        await _create(cluster, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "wardle"}},
                                *service_with_endpoints(ext.port),
                                apiservice(service={"namespace": "wardle", "name": "api", "port": 443},
                                           ca_bundle=ext.ca_bundle)])
        cond = await _available(cluster, f"{VERSION}.{GROUP}", "Passed")
        assert (cond["status"], cond["message"]) == ("True", "all checks passed")
        check = ext.requests[0]
        assert check[2]["x-remote-user"] == ["system:kube-aggregator"] and check[2]["x-remote-group"] == ["system:masters"]

        cm = await cluster.registry("", "v1", "configmaps").get("kube-system", "extension-apiserver-authentication")
        assert json.loads(cm["data"]["requestheader-allowed-names"]) == ["front-proxy-client"]
        assert json.loads(cm["data"]["requestheader-username-headers"]) == ["X-Remote-User"]
        assert cm["data"]["client-ca-file"] == cluster.ca.cert_pem.decode()
        ext.trust(cm["data"]["requestheader-client-ca-file"])
        resp = await client.get(f"/clusters/c1/apis/{GROUP}/{VERSION}/namespaces/default/flunders?limit=5",
                                headers=AUTH)
        assert resp.status == 200, await resp.text()
        seen = json.loads((await resp.json())["items"][0]["metadata"]["annotations"]["seen"])
        assert seen == {"user": ["clusterAdmin"], "groups": ["system:masters", "system:authenticated"],
                        "authorization": []}  # lks's own credentials never reach the extension
        assert ext.requests[-1][1] == f"/apis/{GROUP}/{VERSION}/namespaces/default/flunders?limit=5"
        assert ext.peers[-1] == "front-proxy-client"  # lks authenticates as the front proxy

        # a caller's own X-Remote-* headers never reach the extension; impersonation is resolved first
        resp = await client.get(f"/clusters/c1/apis/{GROUP}/{VERSION}/namespaces/default/flunders",
                                headers={**AUTH, "X-Remote-User": "evil", "X-Remote-Group": "root",
                                         "Impersonate-User": "jane", "Impersonate-Group": "system:masters"})
        assert resp.status == 200, await resp.text()
        seen = json.loads((await resp.json())["items"][0]["metadata"]["annotations"]["seen"])
        assert (seen["user"], seen["groups"]) == (["jane"], ["system:masters", "system:authenticated"])
        assert not [h for h in ext.requests[-1][2] if h.startswith("impersonate-")]

        resp = await client.get("/clusters/c1/apis", headers={**AUTH, "Accept": AGGREGATED})
        item = next(i for i in orjson.loads(await resp.read())["items"] if i["metadata"].get("name") == GROUP)
        assert [r["resource"] for r in item["versions"][0]["resources"]] == [r["name"] for r in RESOURCES]


@pytest.mark.parametrize(("name", "spec", "messages"), [
    pytest.param("wrong", {"group": GROUP, "version": VERSION, "groupPriorityMinimum": 0, "versionPriority": 1001},
                 ['metadata.name: Invalid value: "wrong": must be `spec.version+"."+spec.group`: '
                  f'"{VERSION}.{GROUP}"',
                  "spec.groupPriorityMinimum: Invalid value: 0: must be positive and less than 20000",
                  "spec.versionPriority: Invalid value: 1001: must be positive and less than 1000"], id="name-priorities"),
    pytest.param("v2.", {"group": "", "version": "v2", "groupPriorityMinimum": 1, "versionPriority": 1},
                 ["spec.group: Required value: only v1 may have an empty group and it better be legacy kube"],
                 id="empty-group"),
    pytest.param(f"{VERSION}.{GROUP}", {"group": GROUP, "version": VERSION, "groupPriorityMinimum": 1,
                                        "versionPriority": 1, "insecureSkipTLSVerify": True},
                 ["spec.insecureSkipTLSVerify: Invalid value: true: local APIServices may not have insecureSkipTLSVerify"],
                 id="local-insecure"),
    pytest.param(f"{VERSION}.{GROUP}", {"group": GROUP, "version": VERSION, "groupPriorityMinimum": 1,
                                        "versionPriority": 1, "insecureSkipTLSVerify": True, "caBundle": "QUJD",
                                        "service": {"namespace": "", "name": "api"}},
                 ["spec.service.namespace: Required value",
                  "spec.insecureSkipTLSVerify: Invalid value: true: may not be true if caBundle is present"],
                 id="service-tls"),
])
async def test_apiservice_validation(client: test_utils.TestClient, name: str, spec: dict, messages: list[str]) -> None:
    body = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": name}, "spec": spec}
    resp = await client.post("/clusters/c1/apis/apiregistration.k8s.io/v1/apiservices", json=body, headers=AUTH)
    out = await resp.json()
    assert resp.status == 422, out
    assert out["reason"] == "Invalid"
    assert [f'{c["field"]}: {c["message"]}' for c in out["details"]["causes"]] == messages


async def test_builtin_and_crd_apiservices_are_registered(client: test_utils.TestClient, cluster: Cluster,
                                                          controller) -> None:
    cond = await _available(cluster, "v1.apps", "Local")
    assert (cond["status"], cond["message"]) == ("True", "Local APIServices are always available")
    reg = cluster.registry("apiregistration.k8s.io", "v1", "apiservices")
    apps = await reg.get(None, "v1.apps")
    assert apps["metadata"]["labels"] == {"kube-aggregator.kubernetes.io/automanaged": "onstart"}
    assert apps["spec"] == {"group": "apps", "version": "v1", "groupPriorityMinimum": 17800, "versionPriority": 15}
    core = await reg.get(None, "v1.")
    assert core["spec"] == {"group": "", "version": "v1", "groupPriorityMinimum": 18000, "versionPriority": 1}

    crds = cluster.registry("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    await crds.create(None, {"metadata": {"name": "widgets.toys.example.com"}, "spec": {
        "group": "toys.example.com", "scope": "Namespaced", "names": {"plural": "widgets", "kind": "Widget"},
        "versions": [{"name": "v1", "served": True, "storage": True,
                      "schema": {"openAPIV3Schema": {"type": "object"}}}]}})
    cond = await _available(cluster, "v1.toys.example.com", "Local")
    crd_svc = await reg.get(None, "v1.toys.example.com")
    assert crd_svc["metadata"]["labels"] == {"kube-aggregator.kubernetes.io/automanaged": "true"}
    assert (crd_svc["spec"]["groupPriorityMinimum"], crd_svc["spec"]["versionPriority"]) == (1000, 100)
    # a local APIService routes nothing away from the cluster's own registries
    assert cluster.aggregator.target(aggregator.discovery.served(cluster), "toys.example.com", "v1") is None
    assert not cluster.aggregator.active

    await crds.delete(None, "widgets.toys.example.com", deletion.DeleteOptions())
    crd = await crds.get(None, "widgets.toys.example.com")  # no CRD controller here to finalize it
    await crds.update(None, "widgets.toys.example.com", {**crd, "metadata": {**crd["metadata"], "finalizers": []}})
    async with asyncio.timeout(10):
        while await reg.get_or_none(None, "v1.toys.example.com") is not None:
            await asyncio.sleep(0.02)


async def test_addon_apiservice_passes_once_its_local_api_registers(client: test_utils.TestClient, cluster: Cluster,
                                                                   controller) -> None:
    """The metrics-server add-on's APIService (a Service, as on AKS) is served in process by lks."""
    await _create(cluster, [apiservice(service={"namespace": "kube-system", "name": "metrics-server", "port": 443},
                                       group="metrics.k8s.io", version="v1beta1")])
    await _available(cluster, "v1beta1.metrics.k8s.io", "ServiceNotFound")
    cluster.aggregator.register_local("metrics.k8s.io", "v1beta1", Metrics())
    cond = await _available(cluster, "v1beta1.metrics.k8s.io", "Passed")
    assert cond["status"] == "True"
    resp = await client.get("/clusters/c1/apis/metrics.k8s.io/v1beta1/nodes", headers=AUTH)
    assert resp.status == 200
    cluster.aggregator.unregister_local("metrics.k8s.io", "v1beta1")
    await _available(cluster, "v1beta1.metrics.k8s.io", "ServiceNotFound")
    resp = await client.get("/clusters/c1/apis/metrics.k8s.io/v1beta1/nodes", headers=AUTH)
    assert resp.status == 503


async def test_groups_ordered_by_priority(client: test_utils.TestClient, cluster: Cluster) -> None:
    """Extension groups sort with the CRDs' (priority 1000) by groupPriorityMinimum, then name."""
    crd_controller = CRDController(cluster)  # establishes the CRD
    await crd_controller.start()
    crds = cluster.registry("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    await crds.create(None, {"metadata": {"name": "widgets.toys.example.com"}, "spec": {
        "group": "toys.example.com", "scope": "Namespaced", "names": {"plural": "widgets", "kind": "Widget"},
        "versions": [{"name": "v1", "served": True, "storage": True,
                      "schema": {"openAPIV3Schema": {"type": "object"}}}]}})
    for group, priority in (("high.example.com", 2000), ("metrics.k8s.io", 100)):
        await _create(cluster, [apiservice(service={"namespace": "x", "name": "y", "port": 443}, group=group,
                                           version="v1beta1", priority=priority)])
        cluster.aggregator.register_local(group, "v1beta1", Metrics())
    async with asyncio.timeout(5):
        while "toys.example.com" not in [g["name"] for g in (await (await client.get(
                "/clusters/c1/apis", headers=AUTH)).json())["groups"]]:
            await asyncio.sleep(0.02)
    names = [g["name"] for g in (await (await client.get("/clusters/c1/apis", headers=AUTH)).json())["groups"]]
    assert names[-3:] == ["high.example.com", "toys.example.com", "metrics.k8s.io"]
    resp = await client.get("/clusters/c1/apis", headers={**AUTH, "Accept": AGGREGATED})
    items = [i["metadata"].get("name") for i in orjson.loads(await resp.read())["items"]]
    assert items[-3:] == ["high.example.com", "toys.example.com", "metrics.k8s.io"]
    await crd_controller.stop()


async def test_link_local_endpoint_is_not_dialed(cluster: Cluster, controller) -> None:
    """An EndpointSlice cannot point lks at the host's metadata service (169.254.169.254)."""
    svc, sl = service_with_endpoints(80)
    sl["endpoints"][0]["addresses"] = ["169.254.169.254"]
    await _create(cluster, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "wardle"}}, svc, sl,
                            apiservice(service={"namespace": "wardle", "name": "api", "port": 443})])
    cond = await _available(cluster, f"{VERSION}.{GROUP}", "FailedDiscoveryCheck")
    assert cond["message"].endswith("dial tcp 169.254.169.254:80: connect: network is unreachable")


async def test_proxy_errors(client: test_utils.TestClient, cluster: Cluster, controller) -> None:
    """Available, then the server goes: the transport's error as a 500; no endpoints: 503."""
    with ExtensionServer() as ext:
        await _create(cluster, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "wardle"}},
                                *service_with_endpoints(ext.port),
                                apiservice(service={"namespace": "wardle", "name": "api", "port": 443})])
        await _available(cluster, f"{VERSION}.{GROUP}", "Passed")
    resp = await client.get(f"/clusters/c1/apis/{GROUP}/{VERSION}/namespaces/default/flunders", headers=AUTH)
    assert (resp.status, await resp.text()) == (500, f"dial tcp 127.0.0.1:{ext.port}: connect: connection refused\n")
    slices = cluster.registry("discovery.k8s.io", "v1", "endpointslices")
    await slices.delete("wardle", "api-1", deletion.DeleteOptions())
    await _available(cluster, f"{VERSION}.{GROUP}", "EndpointsNotFound")  # the caches have seen it go
    resp = await client.get(f"/clusters/c1/apis/{GROUP}/{VERSION}/namespaces/default/flunders", headers=AUTH)
    assert (resp.status, await resp.text()) == (503, "service unavailable\n")


async def test_onstart_apiservice_of_a_dropped_version_goes_at_start(cluster: Cluster) -> None:
    """An `onstart` APIService of a group-version the cluster no longer serves (after an upgrade)."""
    reg = cluster.registry("apiregistration.k8s.io", "v1", "apiservices")
    await reg.create(None, {"metadata": {"name": "v1beta1.gone.k8s.io",
                                         "labels": {"kube-aggregator.kubernetes.io/automanaged": "onstart"}},
                            "spec": {"group": "gone.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100,
                                     "versionPriority": 9}})
    c = APIServiceAvailabilityController(cluster)
    await c.start()
    try:
        async with asyncio.timeout(10):
            while await reg.get_or_none(None, "v1beta1.gone.k8s.io") is not None:
                await asyncio.sleep(0.02)
        assert await reg.get_or_none(None, "v1.apps") is not None
    finally:
        await c.stop()
