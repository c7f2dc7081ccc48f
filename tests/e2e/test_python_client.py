"""The official `kubernetes` Python client against a hosted cluster: CRUD, conflicts,
pagination over one snapshot, watch order and resumption, 410 after compaction, persistence
across restarts, authentication."""

from __future__ import annotations

import ssl
import threading
import time
import urllib.error
import urllib.request

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from .conftest import raw


def _cm(name: str, **labels: str) -> dict:
    return {"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}


def test_crud_and_stale_update_conflicts(core, namespace):
    created = core.create_namespaced_config_map(namespace, _cm("c"))
    rv = created.metadata.resource_version
    created.data = {"k": "v2"}
    updated = core.replace_namespaced_config_map("c", namespace, created)
    assert int(updated.metadata.resource_version) > int(rv)
    stale = core.read_namespaced_config_map("c", namespace)
    stale.metadata.resource_version = rv
    stale.data = {"k": "stale"}
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("c", namespace, stale)
    assert err.value.status == 409 and "the object has been modified" in err.value.body
    assert core.read_namespaced_config_map("c", namespace).data == {"k": "v2"}
    core.delete_namespaced_config_map("c", namespace)
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("c", namespace)
    assert err.value.status == 404


def test_generate_name(core, namespace):
    obj = core.create_namespaced_config_map(namespace, {"metadata": {"generateName": "gen-"}})
    assert obj.metadata.name.startswith("gen-") and len(obj.metadata.name) == 9


def test_invalid_name_is_422_with_cause(core, namespace):
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(namespace, _cm("UPPER"))
    assert err.value.status == 422
    assert '"field":"metadata.name"' in err.value.body.replace(" ", "")
    assert '"reason":"Invalid"' in err.value.body.replace(" ", "")


def test_malformed_body_is_400(api, namespace):
    resp = raw(api, "POST", f"/api/v1/namespaces/{namespace}/configmaps", b"{not json",
                **{"Content-Type": "application/json"})
    assert resp.status == 400 and b'"reason":"BadRequest"' in resp.data
    resp = raw(api, "POST", f"/api/v1/namespaces/{namespace}/configmaps", b"x" * (3 * 1024 * 1024 + 1),
                **{"Content-Type": "application/json"})
    assert resp.status == 413 and b'"reason":"RequestEntityTooLarge"' in resp.data
    assert not core_names(api, namespace)


def core_names(api, namespace: str) -> list[str]:
    return [c.metadata.name for c in client.CoreV1Api(api).list_namespaced_config_map(namespace).items
            if c.metadata.name != "kube-root-ca.crt"]


def test_pagination_over_one_snapshot(core, namespace):
    for i in range(25):
        core.create_namespaced_config_map(namespace, _cm(f"p{i:02d}", page="yes"))
    first = core.list_namespaced_config_map(namespace, label_selector="page=yes", limit=10)
    assert len(first.items) == 10 and first.metadata._continue
    # a write between pages is not seen by the paginated list
    core.create_namespaced_config_map(namespace, _cm("p99", page="yes"))
    names = [i.metadata.name for i in first.items]
    token = first.metadata._continue
    while token:
        page = core.list_namespaced_config_map(namespace, label_selector="page=yes", limit=10, _continue=token)
        assert page.metadata.resource_version == first.metadata.resource_version
        names += [i.metadata.name for i in page.items]
        token = page.metadata._continue
    assert names == [f"p{i:02d}" for i in range(25)]


def test_watch_in_order_and_resume(core, namespace):
    start_rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, _cm("w1"))
    core.patch_namespaced_config_map("w1", namespace, {"data": {"k": "patched"}})
    core.delete_namespaced_config_map("w1", namespace)
    w = watch.Watch()
    seen = []
    for ev in w.stream(core.list_namespaced_config_map, namespace, resource_version=start_rv, timeout_seconds=5):
        if ev["object"].metadata.name == "w1":
            seen.append((ev["type"], ev["object"].data))
        if len(seen) == 3:
            w.stop()
    assert seen == [("ADDED", {"k": "v"}), ("MODIFIED", {"k": "patched"}), ("DELETED", {"k": "patched"})]


def test_watch_live_events(core, namespace):
    seen: list[str] = []
    ready = threading.Event()

    def run():
        w = watch.Watch()
        rv = core.list_namespaced_config_map(namespace).metadata.resource_version
        ready.set()
        for ev in w.stream(core.list_namespaced_config_map, namespace, resource_version=rv, timeout_seconds=10):
            if ev["object"].metadata.name == "kube-root-ca.crt":
                continue  # the root CA controller may still be adding it to the new namespace
            seen.append(f"{ev['type']} {ev['object'].metadata.name}")
            if len(seen) == 2:
                w.stop()

    t = threading.Thread(target=run)
    t.start()
    ready.wait(5)
    core.create_namespaced_config_map(namespace, _cm("live"))
    core.delete_namespaced_config_map("live", namespace)
    t.join(15)
    assert seen == ["ADDED live", "DELETED live"]


def test_watch_too_old_is_410_after_compaction(core, namespace, api):
    old_rv = core.create_namespaced_config_map(namespace, _cm("old")).metadata.resource_version
    core.patch_namespaced_config_map("old", namespace, {"data": {"k": "newer"}})
    deadline = time.monotonic() + 20  # the test server keeps 2 s of history
    status = None
    while time.monotonic() < deadline:
        resp = raw(api, "GET", f"/api/v1/namespaces/{namespace}/configmaps?watch=true&resourceVersion={old_rv}"
                    "&timeoutSeconds=1")
        body = resp.data.decode()
        if '"ERROR"' in body:
            status = body
            break
        time.sleep(0.5)
    assert status is not None and '"code":410' in status and '"reason":"Expired"' in status


def test_everything_survives_a_restart(lks, core, namespace):
    made = core.create_namespaced_config_map(namespace, _cm("durable", keep="yes"))
    lks.restart()
    c = client.CoreV1Api(lks.api_client())
    got = c.read_namespaced_config_map("durable", namespace)
    assert got.metadata.uid == made.metadata.uid
    assert got.metadata.resource_version == made.metadata.resource_version
    assert {n.metadata.name for n in c.list_namespace().items} >= {"default", "kube-system", namespace}


def _get(url: str, headers: dict | None = None) -> int:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), context=ctx, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as err:
        return err.code


def test_credentials_are_required(lks, api):
    server = api.configuration.host
    assert _get(f"{server}/api/v1/namespaces") == 401
    assert _get(f"{server}/api/v1/namespaces", {"Authorization": "Bearer wrong"}) == 401
    assert _get(f"{server}/healthz") == 200
    other = server.rsplit("/", 1)[0] + "/0000000000000000"
    assert _get(f"{other}/api/v1/namespaces") == 404
