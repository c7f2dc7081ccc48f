"""Query parameters as kube-apiserver converts and validates them (`lks.kube.queryparams`), over
raw HTTP against the real HTTP layer: a bad value is a 400 or 422 with upstream's message, never
a 500, and booleans read as upstream reads them."""

from __future__ import annotations

import itertools

import orjson
import pytest

from .conftest import AUTH

CMS = "/clusters/c1/api/v1/namespaces/default/configmaps"
CM = CMS + "/c"
MERGE = "application/merge-patch+json"
APPLY = "application/apply-patch+yaml"
RANGE = 'strconv.ParseInt: parsing "99999999999999999999999": value out of range'


def _applied(value: str) -> bytes:
    return orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": value}})


async def _request(client, method: str, path: str, query: dict[str, str], body: bytes | None = None,
                   ctype: str = "application/json"):
    resp = await client.request(method, path, params=query, data=body, headers={**AUTH, "Content-Type": ctype})
    return resp.status, await resp.read()


@pytest.fixture
async def cm(client):
    status, _ = await _request(client, "POST", CMS, {}, orjson.dumps({"metadata": {"name": "c"}}))
    assert status == 201


@pytest.mark.parametrize(("method", "path", "query", "status", "message"), [
    pytest.param("GET", CMS, {"limit": "99999999999999999999999"}, 400, RANGE, id="limit-overflow"),
    pytest.param("GET", CMS, {"limit": "-9223372036854775809"}, 400,
                 'strconv.ParseInt: parsing "-9223372036854775809": value out of range', id="limit-underflow"),
    pytest.param("GET", CMS, {"limit": "x"}, 400, 'strconv.ParseInt: parsing "x": invalid syntax', id="limit-word"),
    pytest.param("GET", CMS, {"limit": ""}, 400, 'strconv.ParseInt: parsing "": invalid syntax', id="limit-empty"),
    pytest.param("GET", CMS, {"limit": " 5"}, 400, 'strconv.ParseInt: parsing " 5": invalid syntax', id="limit-space"),
    pytest.param("GET", CMS, {"limit": "5_0"}, 400, 'strconv.ParseInt: parsing "5_0": invalid syntax',
                 id="limit-underscore"),
    pytest.param("GET", CMS, {"limit": "\u0663"}, 400, 'strconv.ParseInt: parsing "\u0663": invalid syntax',
                 id="limit-arabic-digit"),
    pytest.param("GET", CMS, {"watch": "1", "timeoutSeconds": "1.5"}, 400,
                 'strconv.ParseInt: parsing "1.5": invalid syntax', id="watch-timeout"),
    pytest.param("DELETE", CMS, {"limit": "99999999999999999999999"}, 400, RANGE, id="deletecollection-limit"),
    pytest.param("DELETE", CM, {"gracePeriodSeconds": "99999999999999999999999"}, 400, RANGE, id="grace-overflow"),
    pytest.param("GET", CMS, {"sendInitialEvents": "true"}, 422,
                 'ListOptions.meta.k8s.io "" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is '
                 "forbidden for list", id="list-send-initial-events"),
    pytest.param("POST", CMS, {"dryRun": "x"}, 422,
                 'CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{"x"}: '
                 'supported values: "All"', id="create-dry-run"),
    pytest.param("PUT", CM, {"fieldValidation": "Loud"}, 422,
                 'UpdateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Loud": '
                 'supported values: "", "Ignore", "Strict", "Warn"', id="update-field-validation"),
    pytest.param("POST", CMS, {"fieldManager": "m" * 129, "dryRun": ""}, 422,
                 'CreateOptions.meta.k8s.io "" is invalid: [fieldManager: Too long: may not be more than 128 '
                 'bytes, dryRun: Unsupported value: []string{""}: supported values: "All"]', id="create-aggregate"),
    pytest.param("PATCH", CM, {"force": "true"}, 422,
                 'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply '
                 "patch", id="force-on-merge-patch"),
])
async def test_bad_values_are_refused_as_upstream_refuses_them(client, cm, method, path, query, status, message):
    body = {"POST": orjson.dumps({"metadata": {"generateName": "g"}}), "PUT": orjson.dumps({"metadata": {"name": "c"}}),
            "PATCH": b"{}"}.get(method)
    got, raw = await _request(client, method, path, query, body, MERGE if method == "PATCH" else "application/json")
    assert (got, orjson.loads(raw)["message"]) == (status, message)


async def test_force_is_a_boolean_as_upstream_reads_one(client, cm):
    """`force=maybe` is true upstream (only "0" and "false" are false), so it takes the field over."""
    status, _ = await _request(client, "PATCH", CM, {"fieldManager": "a"}, _applied("1"), APPLY)
    assert status == 200
    status, _ = await _request(client, "PATCH", CM, {"fieldManager": "b", "force": "False"}, _applied("2"), APPLY)
    assert status == 409
    status, raw = await _request(client, "PATCH", CM, {"fieldManager": "b", "force": "maybe"}, _applied("2"), APPLY)
    assert status == 200 and orjson.loads(raw)["data"] == {"k": "2"}


async def test_watch_is_a_boolean_as_upstream_reads_one(client, cm):
    resp = await client.get(CMS, params={"watch": "yes", "timeoutSeconds": "1", "resourceVersion": "0"}, headers=AUTH)
    first = orjson.loads(await resp.content.readline())
    assert first["type"] == "ADDED" and first["object"]["metadata"]["name"] == "c"
    resp.close()
    status, raw = await _request(client, "GET", CMS, {"watch": "FALSE"})
    assert status == 200 and orjson.loads(raw)["kind"] == "ConfigMapList"
    status, raw = await _request(client, "GET", CM, {"watch": "true"})  # a named GET is no watch upstream
    assert status == 200 and orjson.loads(raw)["kind"] == "ConfigMap"


_VALUES = ["99999999999999999999999", "-1", "x", "", "maybe", "\x00", "=", "!!", "in(", "a,b", "0", "true"]
_PARAMS = ["limit", "resourceVersion", "resourceVersionMatch", "continue", "allowWatchBookmarks", "dryRun",
           "fieldManager", "fieldValidation", "gracePeriodSeconds", "propagationPolicy", "orphanDependents",
           "labelSelector", "fieldSelector", "pretty", "sendInitialEvents", "force", "includeObject", "timeout"]
_REQUESTS = [("GET", CMS, None, ""), ("GET", CM, None, ""), ("POST", CMS, b'{"metadata":{"generateName":"g"}}', ""),
             ("PUT", CM, b'{"metadata":{"name":"c"}}', ""), ("PATCH", CM, b"{}", MERGE),
             ("PATCH", CM, _applied("v"), APPLY), ("DELETE", CMS + "/missing", None, ""), ("DELETE", CMS, None, "")]


@pytest.mark.parametrize("param", _PARAMS)
async def test_no_value_of_any_parameter_is_a_500(client, cm, param):
    for (method, path, body, ctype), value in itertools.product(_REQUESTS, _VALUES):
        status, raw = await _request(client, method, path, {param: value, "fieldManager": "m"}
                                     if param != "fieldManager" else {param: value}, body, ctype or "application/json")
        assert status < 500, (method, path, param, value, raw[:300])
