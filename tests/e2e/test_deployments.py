"""Deployments, ReplicaSets and ReplicationControllers end to end, through kubectl and the
Python client: create, scale (to zero too), rolling updates, the progress deadline,
`kubectl rollout history|undo|pause|resume|restart|status`.

Tests whose outcome needs pods to run (a rollout that completes, `kubectl rollout status`)
call `require_scheduled` first: it skips the test only if no pod of the Deployment got a
`spec.nodeName` within 5 s, i.e. while the cluster has no scheduler and node runtime.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from .conftest import wait_until

HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"



def get_json(kubectl, *args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def live_pods(kubectl, namespace: str, selector: str) -> list[dict]:
    items = get_json(kubectl, "pods", "-n", namespace, "-l", selector)["items"]
    return [p for p in items if "deletionTimestamp" not in p["metadata"]]


def replica_sets(kubectl, namespace: str, selector: str = "app=web") -> list[dict]:
    items = get_json(kubectl, "rs", "-n", namespace, "-l", selector)["items"]
    return sorted(items, key=lambda r: int(r["metadata"].get("annotations", {}).get(REVISION, "0")))


def require_scheduled(kubectl, namespace: str, selector: str = "app=web") -> None:
    """Skip unless pods get scheduled: without a scheduler (and node agents running pods) a
    rollout can never complete. Skips only if no pod got a nodeName within 5 s."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if any(p["spec"].get("nodeName") for p in live_pods(kubectl, namespace, selector)):
            return
        time.sleep(0.2)
    pytest.skip("needs the scheduler and the node runtime: no pod got a nodeName within 5 s")


def n_live(kubectl, namespace: str, n: int, selector: str = "app=web") -> Callable[[], list[dict] | bool | None]:
    def check() -> list[dict] | bool | None:
        pods = live_pods(kubectl, namespace, selector)
        return (pods or True) if len(pods) == n else None
    return check


def create_web(kubectl, namespace: str, replicas: int = 3, image: str = "nginx") -> None:
    kubectl("create", "deployment", "web", f"--image={image}", f"--replicas={replicas}", "-n", namespace)


# -- without a scheduler: the objects the controllers write ---------------------------------

def test_create_deployment_makes_a_replica_set_and_pods(kubectl, namespace):
    create_web(kubectl, namespace, replicas=3)
    rss = wait_until(lambda: replica_sets(kubectl, namespace))
    assert len(rss) == 1
    rs = rss[0]
    hash_ = rs["metadata"]["labels"][HASH]
    assert rs["metadata"]["name"] == f"web-{hash_}"
    assert rs["metadata"]["annotations"][REVISION] == "1"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "3"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "4"
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    pods = wait_until(n_live(kubectl, namespace, 3))
    assert all(p["metadata"]["name"].startswith(f"web-{hash_}-") for p in pods)
    assert all(p["metadata"]["ownerReferences"][0]["name"] == f"web-{hash_}" for p in pods)
    dep = wait_until(lambda: (d := get_json(kubectl, "deploy", "web", "-n", namespace)).get("status", {}).get(
        "replicas") == 3 and d)
    assert dep["metadata"]["annotations"][REVISION] == "1"
    assert dep["status"]["observedGeneration"] == 1 and dep["status"]["updatedReplicas"] == 3
    conditions = {c["type"]: c for c in dep["status"]["conditions"]}
    assert conditions["Progressing"]["status"] == "True"
    events = wait_until(lambda: [e for e in get_json(kubectl, "events", "-n", namespace)["items"]
                                 if e["reason"] == "ScalingReplicaSet"])
    assert events[0]["message"] == f"Scaled up replica set web-{hash_} from 0 to 3"
    assert events[0]["source"]["component"] == "deployment-controller"
    created = wait_until(lambda: [e for e in get_json(kubectl, "events", "-n", namespace)["items"]
                                  if e["reason"] == "SuccessfulCreate"])
    assert created[0]["message"].startswith(f"Created pod: web-{hash_}-")
    out = kubectl("get", "rs", "-n", namespace).stdout
    assert out.split()[:4] == ["NAME", "DESIRED", "CURRENT", "READY"] and f"web-{hash_}" in out


def test_scale_up_down_and_to_zero(kubectl, namespace):
    create_web(kubectl, namespace, replicas=2)
    wait_until(n_live(kubectl, namespace, 2))
    kubectl("scale", "deployment", "web", "--replicas=5", "-n", namespace)
    wait_until(n_live(kubectl, namespace, 5))
    kubectl("scale", "deployment", "web", "--replicas=1", "-n", namespace)
    wait_until(n_live(kubectl, namespace, 1))
    kubectl("scale", "deployment", "web", "--replicas=0", "-n", namespace)
    wait_until(n_live(kubectl, namespace, 0))
    rs = replica_sets(kubectl, namespace)
    assert len(rs) == 1 and rs[0]["spec"]["replicas"] == 0
    dep = wait_until(lambda: (d := get_json(kubectl, "deploy", "web", "-n", namespace))["status"].get(
        "observedGeneration") == 4 and d)
    assert "replicas" not in dep["status"] or dep["status"]["replicas"] == 0
    msgs = [e["message"] for e in get_json(kubectl, "events", "-n", namespace)["items"] if e["reason"] == "ScalingReplicaSet"]
    name = rs[0]["metadata"]["name"]
    assert f"Scaled up replica set {name} from 2 to 5" in msgs
    assert f"Scaled down replica set {name} from 5 to 1" in msgs


def test_set_image_creates_a_second_revision(kubectl, namespace):
    create_web(kubectl, namespace, replicas=2, image="nginx:1.25")
    wait_until(n_live(kubectl, namespace, 2))
    kubectl("set", "image", "deployment/web", "nginx=nginx:1.27", "-n", namespace)
    rss = wait_until(lambda: len(r := replica_sets(kubectl, namespace)) == 2 and r)
    old, new = rss
    assert new["metadata"]["annotations"][REVISION] == "2"
    assert new["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert old["metadata"]["labels"][HASH] != new["metadata"]["labels"][HASH]
    # the surge: one new pod beside the old ones until new pods become available
    assert new["spec"]["replicas"] >= 1
    dep = get_json(kubectl, "deploy", "web", "-n", namespace)
    wait_until(lambda: get_json(kubectl, "deploy", "web", "-n", namespace)["metadata"]["annotations"][REVISION] == "2")
    assert dep["metadata"]["generation"] == 2


def test_rollout_history_and_undo(kubectl, namespace):
    create_web(kubectl, namespace, replicas=1, image="nginx:1.25")
    wait_until(lambda: replica_sets(kubectl, namespace))
    kubectl("annotate", "deployment/web", "kubernetes.io/change-cause=to 1.27", "-n", namespace)
    kubectl("set", "image", "deployment/web", "nginx=nginx:1.27", "-n", namespace)
    wait_until(lambda: len(replica_sets(kubectl, namespace)) == 2)
    wait_until(lambda: "to 1.27" in kubectl("rollout", "history", "deployment/web", "-n", namespace).stdout)
    history = kubectl("rollout", "history", "deployment/web", "-n", namespace).stdout
    lines = [line.split(None, 1) for line in history.splitlines() if line and line[0].isdigit()]
    assert [row[0] for row in lines] == ["1", "2"]
    assert lines[1][1].strip() == "to 1.27"
    one = kubectl("rollout", "history", "deployment/web", "--revision=1", "-n", namespace).stdout
    assert "nginx:1.25" in one

    out = kubectl("rollout", "undo", "deployment/web", "-n", namespace).stdout
    assert "rolled back" in out
    dep = wait_until(lambda: (d := get_json(kubectl, "deploy", "web", "-n", namespace))["metadata"]["annotations"].get(
        REVISION) == "3" and d)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    rss = replica_sets(kubectl, namespace)
    assert len(rss) == 2  # the first set came back as revision 3
    back = rss[-1]
    assert back["metadata"]["annotations"][REVISION] == "3"
    assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert back["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    history = kubectl("rollout", "history", "deployment/web", "-n", namespace).stdout
    assert [line.split()[0] for line in history.splitlines() if line and line[0].isdigit()] == ["2", "3"]
    out = kubectl("rollout", "undo", "deployment/web", "--to-revision=2", "-n", namespace).stdout
    assert "rolled back" in out
    wait_until(lambda: get_json(kubectl, "deploy", "web", "-n", namespace)["metadata"]["annotations"].get(
        REVISION) == "4")


def test_rollout_pause_and_resume(kubectl, namespace):
    create_web(kubectl, namespace, replicas=2)
    wait_until(lambda: replica_sets(kubectl, namespace))
    kubectl("rollout", "pause", "deployment/web", "-n", namespace)
    dep = wait_until(lambda: (d := get_json(kubectl, "deploy", "web", "-n", namespace)) and any(
        c["reason"] == "DeploymentPaused" for c in d.get("status", {}).get("conditions", [])) and d)
    progressing = next(c for c in dep["status"]["conditions"] if c["type"] == "Progressing")
    assert progressing["status"] == "Unknown" and progressing["message"] == "Deployment is paused"
    kubectl("set", "image", "deployment/web", "nginx=nginx:2", "-n", namespace)
    wait_until(lambda: get_json(kubectl, "deploy", "web", "-n", namespace)["status"].get("observedGeneration") == 3)
    assert len(replica_sets(kubectl, namespace)) == 1  # paused: no rollout
    res = kubectl("rollout", "resume", "deployment/web", "-n", namespace)
    assert "resumed" in res.stdout
    rss = wait_until(lambda: len(r := replica_sets(kubectl, namespace)) == 2 and r)
    assert rss[-1]["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"


def test_rollout_restart_makes_a_new_replica_set(kubectl, namespace):
    create_web(kubectl, namespace, replicas=1)
    wait_until(lambda: replica_sets(kubectl, namespace))
    out = kubectl("rollout", "restart", "deployment/web", "-n", namespace).stdout
    assert "restarted" in out
    rss = wait_until(lambda: len(r := replica_sets(kubectl, namespace)) == 2 and r)
    annotations = rss[-1]["spec"]["template"]["metadata"].get("annotations") or {}
    assert "kubectl.kubernetes.io/restartedAt" in annotations


def test_replica_set_through_the_python_client(api, namespace):
    apps = client.AppsV1Api(api)
    apps.create_namespaced_replica_set(namespace, {
        "metadata": {"name": "plain"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "plain"}},
                 "template": {"metadata": {"labels": {"app": "plain"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
    })
    core = client.CoreV1Api(api)

    def pods() -> list:
        return [p for p in core.list_namespaced_pod(namespace, label_selector="app=plain").items
                if p.metadata.deletion_timestamp is None]

    wait_until(lambda: len(pods()) == 2)
    assert all(p.metadata.owner_references[0].kind == "ReplicaSet" and p.metadata.owner_references[0].controller
               for p in pods())
    rs = wait_until(lambda: (r := apps.read_namespaced_replica_set("plain", namespace)).status.replicas == 2 and r)
    assert rs.status.observed_generation == 1 and rs.status.fully_labeled_replicas == 2
    apps.patch_namespaced_replica_set_scale("plain", namespace, {"spec": {"replicas": 0}})
    wait_until(lambda: not pods())


def test_progress_deadline_exceeded(kubectl, namespace):
    # pods that take ten minutes to start (the simulated runtime's annotation; without a
    # scheduler they never start at all): no progress within the 2 s deadline
    manifest = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "progressDeadlineSeconds": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"},
                                           "annotations": {"lks.dev/simulate-start-seconds": "600"}},
                              "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}},
    }
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))

    def timed_out() -> dict | None:
        dep = get_json(kubectl, "deploy", "web", "-n", namespace)
        conds = {c["type"]: c for c in dep.get("status", {}).get("conditions", [])}
        return conds["Progressing"] if conds.get("Progressing", {}).get("reason") == "ProgressDeadlineExceeded" else None

    cond = wait_until(timed_out, timeout=20)
    assert cond["status"] == "False" and cond["message"].endswith("has timed out progressing.")
    res = kubectl("rollout", "status", "deployment/web", "--timeout=20s", "-n", namespace, check=False)
    assert res.returncode != 0 and 'deployment "web" exceeded its progress deadline' in res.stderr


def test_replication_controller(kubectl, namespace):
    manifest = {
        "apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "old"},
        "spec": {"replicas": 2, "selector": {"app": "old"},
                 "template": {"metadata": {"labels": {"app": "old"}},
                              "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}},
    }
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    pods = wait_until(n_live(kubectl, namespace, 2, "app=old"))
    assert all(p["metadata"]["ownerReferences"][0]["kind"] == "ReplicationController" for p in pods)
    assert all(p["metadata"]["name"].startswith("old-") for p in pods)
    kubectl("scale", "rc", "old", "--replicas=3", "-n", namespace)
    wait_until(n_live(kubectl, namespace, 3, "app=old"))
    rc = wait_until(lambda: (r := get_json(kubectl, "rc", "old", "-n", namespace))["status"].get("replicas") == 3 and r)
    assert rc["status"]["observedGeneration"] == 2


def test_deleting_a_deployment_removes_its_replica_sets_and_pods(kubectl, namespace):
    create_web(kubectl, namespace, replicas=2)
    wait_until(n_live(kubectl, namespace, 2))
    kubectl("delete", "deployment", "web", "-n", namespace)
    wait_until(lambda: not replica_sets(kubectl, namespace), timeout=60)
    wait_until(n_live(kubectl, namespace, 0), timeout=60)


# -- with a scheduler and node runtime: rollouts complete ----------------------------------------

def test_rollout_status_completes(kubectl, namespace):
    create_web(kubectl, namespace, replicas=3)
    require_scheduled(kubectl, namespace)
    res = kubectl("rollout", "status", "deployment/web", "--timeout=90s", "-n", namespace)
    assert 'deployment "web" successfully rolled out' in res.stdout
    dep = get_json(kubectl, "deploy", "web", "-n", namespace)
    st = dep["status"]
    assert st["replicas"] == st["readyReplicas"] == st["availableReplicas"] == st["updatedReplicas"] == 3
    conditions = {c["type"]: c for c in st["conditions"]}
    assert conditions["Available"]["reason"] == "MinimumReplicasAvailable"
    assert conditions["Progressing"]["reason"] == "NewReplicaSetAvailable"
    out = kubectl("get", "deploy", "web", "-n", namespace).stdout.splitlines()
    assert out[1].split()[:4] == ["web", "3/3", "3", "3"]


def test_rolling_update_replaces_every_pod(kubectl, namespace):
    create_web(kubectl, namespace, replicas=4, image="nginx:1.25")
    require_scheduled(kubectl, namespace)
    kubectl("rollout", "status", "deployment/web", "--timeout=90s", "-n", namespace)
    kubectl("set", "image", "deployment/web", "nginx=nginx:1.27", "-n", namespace)
    res = kubectl("rollout", "status", "deployment/web", "--timeout=90s", "-n", namespace)
    assert "successfully rolled out" in res.stdout
    old, new = replica_sets(kubectl, namespace)
    assert old["spec"]["replicas"] == 0 and new["spec"]["replicas"] == 4
    wait_until(lambda: all(p["spec"]["containers"][0]["image"] == "nginx:1.27"
                           for p in live_pods(kubectl, namespace, "app=web"))
               and len(live_pods(kubectl, namespace, "app=web")) == 4, timeout=60)
    msgs = [e["message"] for e in get_json(kubectl, "events", "-n", namespace)["items"] if e["reason"] == "ScalingReplicaSet"]
    assert any(m.startswith(f"Scaled down replica set {old['metadata']['name']} from ") and m.endswith(" to 0")
               for m in msgs)
    # and back
    kubectl("rollout", "undo", "deployment/web", "-n", namespace)
    res = kubectl("rollout", "status", "deployment/web", "--timeout=90s", "-n", namespace)
    assert "successfully rolled out" in res.stdout
    back = wait_until(n_live(kubectl, namespace, 4), timeout=60)
    assert all(p["spec"]["containers"][0]["image"] == "nginx:1.25" for p in back)


def test_recreate_strategy(kubectl, namespace):
    manifest = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "strategy": {"type": "Recreate"}, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}}},
    }
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    require_scheduled(kubectl, namespace)
    kubectl("rollout", "status", "deployment/web", "--timeout=90s", "-n", namespace)
    kubectl("set", "image", "deployment/web", "nginx=nginx:1.27", "-n", namespace)
    res = kubectl("rollout", "status", "deployment/web", "--timeout=90s", "-n", namespace)
    assert "successfully rolled out" in res.stdout
    assert [r["spec"]["replicas"] for r in replica_sets(kubectl, namespace)] == [0, 2]


def test_thirty_replicas_spread_over_the_demo_nodes(kubectl, namespace):
    create_web(kubectl, namespace, replicas=30)
    require_scheduled(kubectl, namespace)
    res = kubectl("rollout", "status", "deployment/web", "--timeout=120s", "-n", namespace)
    assert "successfully rolled out" in res.stdout
    pods = live_pods(kubectl, namespace, "app=web")
    assert len(pods) == 30 and all(p["status"]["phase"] == "Running" for p in pods)
    nodes = {n["metadata"]["name"] for n in get_json(kubectl, "nodes")["items"]}
    assert {p["spec"]["nodeName"] for p in pods} == nodes


def test_rollout_restart_replaces_running_pods(kubectl, namespace):
    create_web(kubectl, namespace, replicas=2)
    require_scheduled(kubectl, namespace)
    kubectl("rollout", "status", "deployment/web", "--timeout=90s", "-n", namespace)
    before = {p["metadata"]["name"] for p in live_pods(kubectl, namespace, "app=web")}
    kubectl("rollout", "restart", "deployment/web", "-n", namespace)
    res = kubectl("rollout", "status", "deployment/web", "--timeout=90s", "-n", namespace)
    assert "successfully rolled out" in res.stdout
    after = wait_until(lambda: (p := {x["metadata"]["name"] for x in live_pods(kubectl, namespace, "app=web")})
                       and len(p) == 2 and not (p & before) and p, timeout=60)
    assert not after & before
