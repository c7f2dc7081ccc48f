"""Hostile and malformed input against a real `lks up`, over raw HTTP through the kubernetes
client's own connection: a 614-byte YAML alias bomb gets a 400 at once and the service keeps
serving, malformed bodies get upstream's wrapper, errors end with a newline, and bad query
parameters are 400s rather than 500s."""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse

from kubernetes import client

from .conftest import raw

BOMB = ("a: &a [" + ",".join(['"x"'] * 9) + "]\n"
        + "".join(f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)))


def test_a_yaml_alias_bomb_is_refused_and_the_service_stays_up(api, namespace):
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    resp = raw(api, "POST", path, BOMB.encode(), **{"Content-Type": "application/yaml"})
    assert resp.status == 400, resp.data[:300]
    assert resp.data.endswith(b"\n")
    message = json.loads(resp.data)["message"]
    assert message.startswith("the object provided is unrecognized (must be of type ConfigMap): "
                              "error converting YAML to JSON: yaml: document contains excessive aliasing (")
    created = client.CoreV1Api(api).create_namespaced_config_map(namespace, {"metadata": {"name": "after"}})
    assert created.metadata.name == "after"


def test_a_large_yaml_body_decodes_in_a_worker_process(api, namespace):
    """Past 128 KiB a YAML body decodes in a process `lks up` spawns for it (and that goes)."""
    body = ("metadata: {name: large}\ndata:\n" + "".join(f"  k{i}: v{i}\n" for i in range(20_000))).encode()
    resp = raw(api, "POST", f"/api/v1/namespaces/{namespace}/configmaps", body, **{"Content-Type": "application/yaml"})
    assert resp.status == 201, resp.data[:300]
    assert len(json.loads(resp.data)["data"]) == 20_000
    resp = raw(api, "POST", f"/api/v1/namespaces/{namespace}/configmaps", b"metadata: {name: [\n" + b"#" * 200_000,
                **{"Content-Type": "application/yaml"})
    assert resp.status == 400 and "error converting YAML to JSON: yaml: line" in json.loads(resp.data)["message"]


def test_a_malformed_body_is_wrapped_as_upstream_wraps_it(api, namespace):
    resp = raw(api, "POST", f"/api/v1/namespaces/{namespace}/configmaps", b"{not json",
                **{"Content-Type": "application/json"})
    assert resp.status == 400
    assert resp.data.endswith(b"}\n")
    assert json.loads(resp.data)["message"] == (
        "the object provided is unrecognized (must be of type ConfigMap): couldn't get version/kind; "
        "json parse error: invalid character 'n' looking for beginning of object key string ({not json)")


def test_an_out_of_range_limit_is_a_400(api, namespace):
    resp = raw(api, "GET", f"/api/v1/namespaces/{namespace}/configmaps?limit=99999999999999999999999")
    assert resp.status == 400
    assert json.loads(resp.data)["message"] == (
        'strconv.ParseInt: parsing "99999999999999999999999": value out of range')


def test_deeply_nested_bodies_are_400s_on_both_apis(lks, api, namespace):
    nested = "[" * 300 + "]" * 300
    resp = raw(api, "POST", f"/api/v1/namespaces/{namespace}/configmaps",
                ('{"metadata": {"name": "deep"}, "x": ' + nested + "}").encode(), **{"Content-Type": "application/json"})
    assert resp.status == 400 and "exceeded max depth" in json.loads(resp.data)["message"]
    config = json.loads((lks.home / "config.json").read_text())
    url = urllib.parse.urlsplit(config["endpoint"])
    conn = http.client.HTTPSConnection(url.hostname, url.port, timeout=30,
                                       context=ssl.create_default_context(cafile=config["ca_file"]))
    body = ('{"location": "eastus", "properties": {"dnsPrefix": "d", "x": ' + nested + "}}").encode()
    try:
        conn.request("PUT", f"/subscriptions/{config['subscription_id']}/resourceGroups/demo/providers/"
                     "Microsoft.ContainerService/managedClusters/deep?api-version=2026-08-01", body=body,
                     headers={"Authorization": f"Bearer {config['token']}", "Content-Type": "application/json"})
        resp = conn.getresponse()
        error = json.loads(resp.read())["error"]
    finally:
        conn.close()
    assert resp.status == 400 and error["code"] == "InvalidRequestContent", error
