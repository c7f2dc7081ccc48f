"""The management endpoint answers every request ARM's way, over raw HTTP: paths no route serves
(ARM's `InvalidResourceType`, `InvalidResourceNamespace`, `NotFound`), methods a path does not
take (405 with `Allow`, also on the OpenAPI document and the health checks), oversized and
malformed bodies: always `{"error": {"code", "message"}}` as JSON, never aiohttp's plain text;
and the Azure SDK reads the same errors."""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.resource.resources import ResourceManagementClient

from .conftest import StaticToken

CS = "api-version=2026-08-01"
RG = "api-version=2025-04-01"
PROVIDER = "/providers/Microsoft.ContainerService"


@pytest.fixture(scope="module")
def config(lks) -> dict[str, Any]:
    return json.loads((lks.home / "config.json").read_text())


def send(config: dict[str, Any], method: str, path: str, body: bytes | None = None, *, token: bool = True,
         headers: dict[str, str] | None = None, chunked: bool = False) -> tuple[int, http.client.HTTPResponse, bytes]:
    """One raw request; (status, response, body)."""
    url = urllib.parse.urlsplit(config["endpoint"])
    conn = http.client.HTTPSConnection(url.hostname, url.port, timeout=30,
                                       context=ssl.create_default_context(cafile=config["ca_file"]))
    all_headers = {"Authorization": f"Bearer {config['token']}"} if token else {}
    all_headers.update(headers or {})
    try:
        if chunked:
            conn.request(method, path, body=iter([body[i:i + 65536] for i in range(0, len(body or b""), 65536)]),
                         headers=all_headers, encode_chunked=True)
        else:
            conn.request(method, path, body=body, headers=all_headers)
        resp = conn.getresponse()
        return resp.status, resp, resp.read()
    finally:
        conn.close()


def arm_error(resp: http.client.HTTPResponse, raw: bytes) -> dict[str, Any]:
    """The ARM error of an answer, which must be JSON and nothing else."""
    assert resp.getheader("Content-Type", "").startswith("application/json"), (resp.getheader("Content-Type"), raw)
    body = json.loads(raw)
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return body["error"]


def _sub(config: dict[str, Any]) -> str:
    return f"/subscriptions/{config['subscription_id']}"


UNKNOWN = [
    pytest.param("GET", "/tenants/x?api-version=2022-12-01", 404, "NotFound", None, id="tenants"),
    pytest.param("GET", "/foo?api-version=2022-12-01", 404, "NotFound", None, id="foo"),
    pytest.param("POST", "/foo/bar?api-version=2022-12-01", 404, "NotFound", None, id="post-foo"),
    pytest.param("GET", "/clusters?api-version=2022-12-01", 404, "NotFound", None, id="clusters-root"),
    pytest.param("GET", "/tenants", 400, "MissingApiVersionParameter", None, id="no-api-version"),
    pytest.param("GET", "/", 400, "MissingApiVersionParameter", None, id="root"),
    pytest.param("GET", "{sub}/foo?" + CS, 404, "NotFound", None, id="under-subscription"),
    pytest.param("GET", "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups?" + RG, 404,
                 "SubscriptionNotFound", None, id="other-subscription"),
    pytest.param("GET", "{sub}/resourcegroups/g" + PROVIDER + "/fooBars/x?" + CS, 404, "InvalidResourceType",
                 "The resource type 'fooBars' could not be found in the namespace 'Microsoft.ContainerService' for "
                 "api version '2026-08-01'.", id="unknown-type"),
    pytest.param("PUT", "{sub}/resourcegroups/g" + PROVIDER + "/managedClusters/c/nodePoolz/p?" + CS, 404,
                 "InvalidResourceType", "The resource type 'managedClusters/nodePoolz' could not be found in the "
                 "namespace 'Microsoft.ContainerService' for api version '2026-08-01'.", id="unknown-child-type"),
    pytest.param("GET", "{sub}" + PROVIDER + "/locations/westeurope/nothing?" + CS, 404, "InvalidResourceType",
                 None, id="unknown-location-type"),
    pytest.param("GET", "{sub}/resourcegroups/g/providers/Microsoft.Nope/things/x?" + CS, 400,
                 "InvalidResourceNamespace", "The resource namespace 'Microsoft.Nope' is invalid.", id="namespace"),
]


@pytest.mark.parametrize(("method", "path", "status", "code", "message"), UNKNOWN)
def test_a_path_no_route_serves_gets_arms_error(config, method, path, status, code, message):
    got, resp, raw = send(config, method, path.format(sub=_sub(config)), b"{}" if method in ("PUT", "POST") else None)
    error = arm_error(resp, raw)
    assert (got, error["code"]) == (status, code), error
    if message:
        assert error["message"] == message


def test_an_unauthenticated_request_to_any_path_gets_arms_401(config):
    got, resp, raw = send(config, "GET", "/foo?api-version=2022-12-01", token=False)
    assert got == 401 and arm_error(resp, raw)["code"] == "AuthenticationFailed"


NOT_ALLOWED = [
    pytest.param("DELETE", "{sub}/resourcegroups?" + RG, "GET", id="group-collection"),
    pytest.param("POST", "{sub}/resourcegroups/g" + PROVIDER + "/managedClusters/c?" + CS,
                 "DELETE, GET, PATCH, PUT", id="cluster"),
    pytest.param("GET", "{sub}/resourcegroups/g" + PROVIDER + "/managedClusters/c/listClusterUserCredential?" + CS,
                 "POST", id="action"),
    pytest.param("PUT", "{sub}" + PROVIDER + "/locations/westeurope/kubernetesVersions?" + CS, "GET",
                 id="versions"),
    pytest.param("POST", "/openapi/management.json", "GET, HEAD", id="openapi"),
    pytest.param("DELETE", "/healthz", "GET, HEAD", id="healthz"),
    pytest.param("PUT", "/readyz", "GET, HEAD", id="readyz"),
]


@pytest.mark.parametrize(("method", "path", "allow"), NOT_ALLOWED)
def test_a_method_a_path_does_not_take_gets_405_with_allow(config, method, path, allow):
    got, resp, raw = send(config, method, path.format(sub=_sub(config)), b"{}" if method in ("PUT", "POST") else None)
    error = arm_error(resp, raw)
    assert got == 405 and error["code"] == "MethodNotAllowed", error
    assert error["message"] == f"The requested resource does not support http method '{method}'."
    assert resp.getheader("Allow") == allow


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_oversized_body_gets_413(config, chunked):
    body = b'{"location": "westeurope", "tags": {"a": "' + b"x" * (5 * 1024 * 1024) + b'"}}'
    got, resp, raw = send(config, "PUT", f"{_sub(config)}/resourcegroups/big?{RG}", body,
                          headers={"Content-Type": "application/json"}, chunked=chunked)
    error = arm_error(resp, raw)
    assert (got, error["code"]) == (413, "RequestContentTooLarge"), error
    assert error["message"] == "The request content size exceeds the maximum size of 4 MB."


def test_a_large_body_in_many_chunks_is_read_whole(config):
    # a body that arrives in many reads is decoded as a whole, not from its first read
    body = json.dumps({"location": "westeurope", "tags": {f"k{i}": "v" * 200 for i in range(8000)}}).encode()
    got, resp, raw = send(config, "PUT", f"{_sub(config)}/resourcegroups/wide?{RG}", body,
                          headers={"Content-Type": "application/json"}, chunked=True)
    assert got in (200, 201), raw
    assert len(json.loads(raw)["tags"]) == 8000
    send(config, "DELETE", f"{_sub(config)}/resourcegroups/wide?{RG}")


@pytest.mark.parametrize("body", [b"{", b'{"location": }', b"\xff\xfe"], ids=["truncated", "bad-value", "not-utf8"])
def test_a_malformed_body_gets_invalid_request_content(config, body):
    got, resp, raw = send(config, "PUT", f"{_sub(config)}/resourcegroups/bad?{RG}", body,
                          headers={"Content-Type": "application/json"})
    error = arm_error(resp, raw)
    assert (got, error["code"]) == (400, "InvalidRequestContent"), error


def test_the_sdk_reads_arms_errors(config):
    resources = ResourceManagementClient(StaticToken(config["token"]), config["subscription_id"],
                                         base_url=config["endpoint"], connection_verify=config["ca_file"])
    rid = f"{_sub(config)}/resourceGroups/g{PROVIDER}/fooBars/x"
    with pytest.raises(ResourceNotFoundError) as err:
        resources.resources.get_by_id(rid, api_version="2026-08-01")
    assert err.value.error.code == "InvalidResourceType"
    with pytest.raises(HttpResponseError) as err:
        resources.resources.get_by_id(f"{_sub(config)}/resourceGroups/g/providers/Microsoft.Nope/things/x",
                                      api_version="2026-08-01")
    assert err.value.status_code == 400 and err.value.error.code == "InvalidResourceNamespace"
