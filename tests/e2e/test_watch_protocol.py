"""Watch protocol details through raw requests: sendInitialEvents with the initial-events-end
bookmark, bookmarks, resourceVersionMatch rules, aggregated discovery."""

from __future__ import annotations

import json

from kubernetes import client


def _get(api, path: str, **headers: str):
    return api.rest_client.pool_manager.request("GET", api.configuration.host + path, headers=headers)


def _events(resp) -> list[dict]:
    return [json.loads(line) for line in resp.data.decode().splitlines() if line.strip()]


def test_send_initial_events_ends_with_a_bookmark(api, namespace):
    core = client.CoreV1Api(api)
    for i in range(3):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": f"i{i}"}})
    resp = _get(api, f"/api/v1/namespaces/{namespace}/configmaps?watch=1&sendInitialEvents=true"
                     "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1")
    events = _events(resp)
    added = [e["object"]["metadata"]["name"] for e in events if e["type"] == "ADDED"]
    assert {"i0", "i1", "i2"} <= set(added)
    marks = [e for e in events if e["type"] == "BOOKMARK"]
    assert marks and marks[0]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert events.index(marks[0]) == len(added)  # the bookmark comes right after the initial state


def test_send_initial_events_requires_not_older_than(api, namespace):
    resp = _get(api, f"/api/v1/namespaces/{namespace}/configmaps?watch=1&sendInitialEvents=true")
    assert resp.status == 422
    body = json.loads(resp.data)
    assert body["reason"] == "Invalid" and "resourceVersionMatch" in body["message"]


def test_watch_without_rv_starts_with_current_state(api, namespace):
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "now"}})
    events = _events(_get(api, f"/api/v1/namespaces/{namespace}/configmaps?watch=1&timeoutSeconds=1"
                               "&fieldSelector=metadata.name%21%3Dkube-root-ca.crt"))
    assert [e["type"] for e in events] == ["ADDED"] and events[0]["object"]["metadata"]["name"] == "now"


def test_list_resource_version_semantics(api, namespace):
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    cached = json.loads(_get(api, f"/api/v1/namespaces/{namespace}/configmaps?resourceVersion=0").data)
    assert int(cached["metadata"]["resourceVersion"]) >= int(rv)
    exact = _get(api, f"/api/v1/namespaces/{namespace}/configmaps?resourceVersion={rv}&resourceVersionMatch=Exact")
    assert exact.status == 200 and json.loads(exact.data)["metadata"]["resourceVersion"] == rv
    bad = _get(api, f"/api/v1/namespaces/{namespace}/configmaps?resourceVersionMatch=Exact")
    assert bad.status == 422
    future = _get(api, f"/api/v1/namespaces/{namespace}/configmaps?resourceVersion=999999999"
                       "&resourceVersionMatch=Exact")
    assert future.status == 504


def test_aggregated_discovery(api):
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    resp = _get(api, "/apis", Accept=accept)
    assert resp.headers["Content-Type"].startswith("application/json;g=apidiscovery.k8s.io;v=v2")
    doc = json.loads(resp.data)
    groups = {item["metadata"]["name"]: item for item in doc["items"]}
    apps = groups["apps"]["versions"][0]
    deploy = next(r for r in apps["resources"] if r["resource"] == "deployments")
    assert deploy["scope"] == "Namespaced" and {"subresource": "scale", "responseKind": {
        "group": "autoscaling", "version": "v1", "kind": "Scale"}, "verbs": ["get", "patch", "update"]} in deploy[
        "subresources"]
    legacy = json.loads(_get(api, "/apis", Accept="application/json").data)
    assert legacy["kind"] == "APIGroupList"


def test_unsupported_media_and_method(api, namespace):
    url = api.configuration.host + f"/api/v1/namespaces/{namespace}/configmaps"
    resp = api.rest_client.pool_manager.request("POST", url, body=b"x", headers={"Content-Type": "text/plain"})
    assert resp.status == 415 and json.loads(resp.data)["reason"] == "UnsupportedMediaType"
    resp = api.rest_client.pool_manager.request("POST", url + "/x", body=b"{}",
                                                headers={"Content-Type": "application/json"})
    assert resp.status == 405 and json.loads(resp.data)["reason"] == "MethodNotAllowed"
