"""The aggregation layer end to end with kubectl and the `kubernetes` client against a real
`lks up`: an APIService pointing at a missing Service shows `False (ServiceNotFound)` in
`kubectl get apiservice` and its group-version answers 503; an extension API server (a plain
Python HTTPS server, tests/extensionserver.py) behind a Service whose EndpointSlice points at
127.0.0.1 becomes Available, its resources are discovered by `kubectl api-resources` and
`kubectl get` reaches it with the caller's identity in the front-proxy headers."""

from __future__ import annotations

import json

import pytest
from extensionserver import GROUP, VERSION, ExtensionServer, apiservice, service_with_endpoints

from .conftest import LKS, raw


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = LKS(tmp_path_factory.mktemp("lks-aggregation-home"))
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def extension():
    with ExtensionServer() as ext:
        yield ext


def test_missing_service(server: LKS) -> None:
    svc = apiservice(service={"namespace": "nowhere", "name": "gone", "port": 443}, group="missing.example.com")
    server.kubectl("apply", "-f", "-", input=json.dumps(svc))
    name = f"{VERSION}.missing.example.com"
    server.kubectl("wait", "--for=condition=Available=False", f"apiservice/{name}", "--timeout=20s")
    out = server.kubectl("get", "apiservice", name, "--no-headers").stdout.split()
    assert out[:4] == [name, "nowhere/gone", "False", "(ServiceNotFound)"]
    cond = json.loads(server.kubectl("get", "apiservice", name, "-o", "json").stdout)["status"]["conditions"][0]
    assert (cond["reason"], cond["message"]) == ("ServiceNotFound", 'service/gone in "nowhere" is not present')
    res = server.kubectl("get", "--raw", f"/apis/missing.example.com/{VERSION}", check=False)
    assert res.returncode != 0 and "the server is currently unable to handle the request" in res.stderr
    with server.api_client() as api:
        resp = raw(api, "GET", f"/apis/missing.example.com/{VERSION}/namespaces/default/things")
    assert (resp.status, resp.data) == (503, b"service unavailable\n")
    server.kubectl("delete", "apiservice", name)


def test_extension_server(server: LKS, extension: ExtensionServer) -> None:
    objs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "wardle"}},
            *service_with_endpoints(extension.port),
            apiservice(service={"namespace": "wardle", "name": "api", "port": 443}, ca_bundle=extension.ca_bundle)]
    server.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}))
    server.kubectl("wait", "--for=condition=Available", f"apiservice/{VERSION}.{GROUP}", "--timeout=30s")
    out = server.kubectl("get", "apiservice", f"{VERSION}.{GROUP}", "--no-headers").stdout.split()
    assert out[1:3] == ["wardle/api", "True"]
    resources = server.kubectl("api-resources", f"--api-group={GROUP}", "--no-headers").stdout.split()
    assert resources[:4] == ["flunders", f"{GROUP}/{VERSION}", "true", "Flunder"]
    listed = json.loads(server.kubectl("get", "flunders", "-n", "default", "-o", "json").stdout)
    seen = json.loads(listed["items"][0]["metadata"]["annotations"]["seen"])
    me = json.loads(server.kubectl("auth", "whoami", "-o", "json").stdout)["status"]["userInfo"]
    assert seen["user"] == [me["username"]] and seen["groups"] == me["groups"] and seen["authorization"] == []


def test_builtin_apiservices_and_front_proxy_trust(server: LKS) -> None:
    rows = {r.split()[0]: r.split()[1:3] for r in server.kubectl("get", "apiservices", "--no-headers").stdout.splitlines()}
    assert rows["v1."] == ["Local", "True"] and rows["v1.apps"] == ["Local", "True"]
    cm = json.loads(server.kubectl("get", "configmap", "-n", "kube-system", "extension-apiserver-authentication",
                                   "-o", "json").stdout)
    assert json.loads(cm["data"]["requestheader-allowed-names"]) == ["front-proxy-client"]
    assert cm["data"]["requestheader-client-ca-file"].startswith("-----BEGIN CERTIFICATE-----")


def test_metrics_api_through_the_aggregation_layer(server: LKS) -> None:
    """The metrics-server add-on's APIService, served in process by lks.metrics."""
    server.kubectl("wait", "--for=condition=Available", "apiservice/v1beta1.metrics.k8s.io", "--timeout=60s")
    out = server.kubectl("get", "apiservice", "v1beta1.metrics.k8s.io", "--no-headers").stdout.split()
    assert out[1:3] == ["kube-system/metrics-server", "True"]
    rows = server.kubectl("api-resources", "--api-group=metrics.k8s.io", "--no-headers").stdout.splitlines()
    assert sorted(r.split()[0] for r in rows) == ["nodes", "pods"]
