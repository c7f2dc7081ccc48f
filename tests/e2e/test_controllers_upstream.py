"""Controllers kube-apiserver and kube-controller-manager run that kubectl users notice, on a
`lks up` of this module's own (it deletes a system namespace): storage in-use protection
(a claim used by a pod stays Terminating until the pod is gone), the system namespaces
(undeletable ones refused, `kube-node-lease` re-created) and a CronJob whose schedule never
fires (`Warning InvalidSchedule`)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from .conftest import LKS, wait_until

CLAIM = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: user}
spec:
  terminationGracePeriodSeconds: 0
  containers: [{name: c, image: busybox, command: [sleep, "3600"]}]
  volumes: [{name: v, persistentVolumeClaim: {claimName: data}}]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LKS]:
    s = LKS(tmp_path_factory.mktemp("lks-controllers-home"))
    s.start()
    yield s
    s.stop()


def _get(server: LKS, *args: str) -> dict | None:
    res = server.kubectl("get", *args, "-o", "json", check=False)
    return json.loads(res.stdout) if res.returncode == 0 else None


def test_a_claim_in_use_stays_terminating_until_its_pod_is_gone(server: LKS) -> None:
    server.kubectl("apply", "-f", "-", input=CLAIM)
    claim = _get(server, "pvc", "data")
    assert claim["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    server.kubectl("wait", "--for=jsonpath={.spec.nodeName}", "pod/user", "--timeout=30s")
    server.kubectl("delete", "pvc", "data", "--wait=false")
    held = _get(server, "pvc", "data")
    assert held is not None and held["metadata"].get("deletionTimestamp")
    assert "Terminating" in server.kubectl("get", "pvc", "data").stdout
    server.kubectl("delete", "pod", "user", "--wait=true")
    server.kubectl("wait", "--for=delete", "pvc/data", "--timeout=30s")


def test_a_volume_gets_its_finalizer_and_goes_when_unbound(server: LKS) -> None:
    server.kubectl("apply", "-f", "-", input="""
apiVersion: v1
kind: PersistentVolume
metadata: {name: pv1}
spec: {capacity: {storage: 1Gi}, accessModes: [ReadWriteOnce], hostPath: {path: /tmp/pv1}}
""")
    assert _get(server, "pv", "pv1")["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
    server.kubectl("delete", "pv", "pv1", "--timeout=30s")
    assert _get(server, "pv", "pv1") is None


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public"])
def test_immortal_namespaces_cannot_be_deleted(server: LKS, name: str) -> None:
    res = server.kubectl("delete", "ns", name, check=False)
    assert res.returncode != 0
    assert f'Error from server (Forbidden): namespaces "{name}" is forbidden: this namespace may not be deleted' \
        in res.stderr


def test_a_deleted_node_lease_namespace_comes_back(server: LKS) -> None:
    before = _get(server, "ns", "kube-node-lease")
    nodes = [n["metadata"]["name"] for n in _get(server, "nodes")["items"]]
    assert nodes
    server.kubectl("delete", "ns", "kube-node-lease", "--wait=true", "--timeout=60s")

    def recreated() -> dict | None:
        ns = _get(server, "ns", "kube-node-lease")
        return ns if ns and ns["metadata"]["uid"] != before["metadata"]["uid"] else None

    ns = wait_until(recreated, timeout=30, what="kube-node-lease re-created")
    assert ns["status"]["phase"] == "Active"

    def leases_back() -> bool:
        leases = _get(server, "leases", "-n", "kube-node-lease") or {"items": []}
        return {lease["metadata"]["name"] for lease in leases["items"]} >= set(nodes)

    wait_until(leases_back, timeout=30, what="node Leases renewed in the new namespace")
    for node in _get(server, "nodes")["items"]:
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True", node["metadata"]["name"]


def test_a_schedule_that_never_fires_is_reported(server: LKS) -> None:
    server.kubectl("create", "cronjob", "never", "--image=busybox", "--schedule=59 23 31 2 *", "--", "true")
    expected = "invalid schedule: 59 23 31 2 * : time difference between two schedules is less than 1 second"

    def reported() -> bool:
        events = _get(server, "events", "--field-selector", "involvedObject.kind=CronJob,involvedObject.name=never")
        return any(e["type"] == "Warning" and e["reason"] == "InvalidSchedule" and e["message"] == expected
                   for e in (events or {"items": []})["items"])

    wait_until(reported, timeout=30, what="the InvalidSchedule event")
    described = server.kubectl("describe", "cronjob", "never").stdout
    assert "InvalidSchedule" in described and "time difference between two schedules" in described
    assert not (_get(server, "cronjob", "never").get("status") or {})
