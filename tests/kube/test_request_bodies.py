"""Request bodies as kube-apiserver decodes them, over raw HTTP against the real HTTP layer:
YAML alias bombs refused before they expand, malformed bodies wrapped in upstream's
"the object provided is unrecognized" error, and JSON responses ending with a newline."""

from __future__ import annotations

import time

import orjson
import pytest

from .conftest import AUTH

CMS = "/clusters/c1/api/v1/namespaces/default/configmaps"
BOMB = ("a: &a [" + ",".join(['"x"'] * 9) + "]\n"
        + "".join(f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)))


async def _send(client, method: str, path: str, body: bytes, ctype: str, **params: str):
    resp = await client.request(method, path, data=body, params=params,
                                headers={**AUTH, "Content-Type": ctype})
    return resp.status, await resp.read()


async def test_a_yaml_alias_bomb_is_a_400_not_a_dead_host(client):
    start = time.monotonic()
    status, body = await _send(client, "POST", CMS, BOMB.encode(), "application/yaml")
    assert time.monotonic() - start < 10
    assert status == 400
    status_obj = orjson.loads(body)
    assert status_obj["reason"] == "BadRequest"
    assert status_obj["message"] == (
        "the object provided is unrecognized (must be of type ConfigMap): error converting YAML to JSON: "
        f"yaml: document contains excessive aliasing ({BOMB.encode()[:30].hex()} ...)")
    # the same bomb as an update, an apply and a delete body
    status, _ = await _send(client, "PUT", CMS + "/x", BOMB.encode(), "application/yaml")
    assert status == 400
    status, body = await _send(client, "PATCH", CMS + "/x", BOMB.encode(), "application/apply-patch+yaml",
                               fieldManager="m")
    assert status == 400 and b"excessive aliasing" in body
    status, body = await _send(client, "DELETE", CMS + "/x", BOMB.encode(), "application/yaml")
    assert status == 400 and b"excessive aliasing" in body
    # and the server goes on serving
    status, _ = await _send(client, "POST", CMS, b"metadata: {name: after}\ndata: &d {k: v}\n", "application/yaml")
    assert status == 201


@pytest.mark.parametrize(("path", "body", "ctype", "message"), [
    pytest.param(CMS, b"{not json", "application/json",
                 "the object provided is unrecognized (must be of type ConfigMap): couldn't get version/kind; "
                 "json parse error: invalid character 'n' looking for beginning of object key string ({not json)",
                 id="json"),
    pytest.param("/clusters/c1/api/v1/namespaces", b'{"metadata": {"name": "a"}', "application/json",
                 "the object provided is unrecognized (must be of type Namespace): couldn't get version/kind; "
                 'json parse error: unexpected end of JSON input ({"metadata": {"name": "a"})', id="namespace"),
    pytest.param(CMS, b"", "application/json",
                 "the object provided is unrecognized (must be of type ConfigMap): couldn't get version/kind; "
                 "json parse error: unexpected end of JSON input (<empty>)", id="empty"),
    pytest.param(CMS, b"[1]", "application/json",
                 "the object provided is unrecognized (must be of type ConfigMap): couldn't get version/kind; "
                 'json parse error: json: cannot unmarshal array into Go value of type struct { APIVersion string '
                 '"json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" } (5b315d)', id="array"),
    pytest.param(CMS, b'{"apiVersion": "v1", "Kind": 5}', "application/json",
                 "the object provided is unrecognized (must be of type ConfigMap): couldn't get version/kind; "
                 'json parse error: json: cannot unmarshal number into Go struct field .kind of type string '
                 '({"apiVersion": "v1", "Kind": 5 ...)', id="kind-type"),
    pytest.param(CMS, b"a: b: c\n", "application/yaml",
                 "the object provided is unrecognized (must be of type ConfigMap): error converting YAML to JSON: "
                 "yaml: line 1: mapping values are not allowed in this context (613a20623a20630a)", id="yaml"),
    pytest.param(CMS, b"not protobuf", "application/vnd.kubernetes.protobuf",
                 "the object provided is unrecognized (must be of type ConfigMap): provided data does not appear "
                 "to be a protobuf message, expected prefix [107 56 115 0] (6e6f742070726f746f627566)", id="protobuf"),
    pytest.param("/clusters/c1/apis/apps/v1/namespaces/default/deployments/d/scale",
                 b'{"spec": {"replicas": 2}, ' + b"x" * 40, "application/json",
                 "the object provided is unrecognized (must be of type Scale): couldn't get version/kind; "
                 "json parse error: invalid character 'x' looking for beginning of object key string "
                 '({"spec": {"replicas": 2}, xxxx ...)', id="long-subresource"),
])
async def test_malformed_bodies_get_upstreams_wrapper(client, path, body, ctype, message):
    method = "PUT" if path.endswith("/scale") else "POST"
    status, raw = await _send(client, method, path, body, ctype)
    assert status == 400
    assert orjson.loads(raw)["message"] == message


async def test_json_responses_end_with_a_newline(client):
    created = await client.post(CMS, json={"metadata": {"name": "nl"}}, headers=AUTH)
    table = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    responses = [
        created,
        await client.get(CMS + "/nl", headers=AUTH),
        await client.get(CMS, headers=AUTH),
        await client.get(CMS, headers={**AUTH, **table}),
        await client.get(CMS + "/missing", headers=AUTH),  # a Status error
        await client.post(CMS, json={"metadata": {"name": "nl"}}, headers=AUTH),  # 409
        await client.get("/clusters/c1/api/v1", headers=AUTH),  # discovery
    ]
    for resp in responses:
        body = await resp.read()
        assert body.endswith(b"}\n") and body.count(b"\n") == 1, (resp.status, body[-40:])
    aggregated = await client.get("/clusters/c1/apis", headers={
        **AUTH, "Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"})
    assert (await aggregated.read()).endswith(b"}\n")
    # /version is the exception: upstream writes it indented and without a newline
    version = await (await client.get("/clusters/c1/version", headers=AUTH)).read()
    assert version.startswith(b'{\n  "major": "1",\n') and version.endswith(b"}")


def _deep(depth: int) -> bytes:
    nested = "[" * depth + "]" * depth
    return ('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"deep"},"x":' + nested + "}").encode()


@pytest.mark.parametrize("ctype", ["application/json", "application/yaml", "application/apply-patch+yaml",
                                   "application/merge-patch+json", "application/strategic-merge-patch+json"])
@pytest.mark.parametrize("depth", [300, 1100, 20000])
async def test_bodies_nested_too_deep_are_a_400_not_a_recursion_error(client, ctype, depth):
    await client.post(CMS, json={"metadata": {"name": "deep"}}, headers=AUTH)
    create = ctype in ("application/json", "application/yaml")
    status, raw = await _send(client, "POST" if create else "PATCH", CMS if create else CMS + "/deep", _deep(depth),
                              ctype, fieldManager="m")
    assert status == 400, raw[:300]
    if depth < 1000:  # deeper, the parsers' own limits answer first (orjson's, libyaml's)
        assert "exceeded max depth" in orjson.loads(raw)["message"]


async def test_a_body_nested_within_the_limit_is_served(client):
    status, raw = await _send(client, "POST", CMS, _deep(150), "application/json")
    assert status == 201, raw[:300]


@pytest.mark.parametrize(("agent", "query", "pretty"), [
    pytest.param("curl/8.5.0", {}, True, id="curl"),
    pytest.param("Mozilla/5.0 (X11)", {}, True, id="browser"),
    pytest.param("curl/8.5.0", {"pretty": "false"}, False, id="curl-pretty-false"),
    pytest.param("kubectl/v1.35.0", {"pretty": "1"}, True, id="pretty-1"),
    pytest.param("kubectl/v1.35.0", {"pretty": "maybe"}, False, id="pretty-unparsable"),
    pytest.param("kubectl/v1.35.0", {}, False, id="kubectl"),
])
async def test_pretty_json_as_upstream_chooses_it(client, agent, query, pretty):
    headers = {**AUTH, "User-Agent": agent}
    for path in (CMS, CMS + "/missing"):  # an object and a Status error
        body = await (await client.get(path, params=query, headers=headers)).read()
        if pretty:  # json.MarshalIndent: two spaces, no newline at the end
            assert body.startswith(b'{\n  "kind": ') and body.endswith(b"}"), body[:40]
        else:
            assert body.startswith(b'{"kind":') and body.endswith(b"}\n"), body[:40]
    discovery = await (await client.get("/clusters/c1/apis", headers={
        **headers, "Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"})).read()
    assert discovery.endswith(b"}\n")  # built once for every client
