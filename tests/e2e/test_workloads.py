"""StatefulSets, DaemonSets, Jobs and CronJobs on the demo cluster (3 nodes), through kubectl.

These need the whole chain: the workload controllers create pods, the scheduler binds them and
the simulated kubelets run them (run-to-completion pods finish after a short simulated run). A
test is skipped only when its pods exist but none gets a node within 5 s, i.e. when the build
has no scheduler; anything else that goes wrong fails. A CronJob firing on its schedule needs
the clock to move, which an e2e test cannot do: `tests/controllers/test_cronjob.py` covers it
on a manual clock, and here a Job is made from a CronJob with `kubectl create job --from`.
"""

from __future__ import annotations

import json
import time

import pytest

from .conftest import wait_until

TIMEOUT = "120s"


def _apply(kubectl, namespace: str, *bodies: dict) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input="\n---\n".join(json.dumps(b) for b in bodies))


def _get(kubectl, namespace: str, *what: str) -> dict:
    return json.loads(kubectl("get", "-n", namespace, *what, "-o", "json").stdout)


def _pods(kubectl, namespace: str, selector: str) -> list[dict]:
    return sorted(_get(kubectl, namespace, "pods", "-l", selector)["items"], key=lambda p: p["metadata"]["name"])


def _require_scheduler(kubectl, namespace: str, selector: str) -> None:
    """Wait for the controller's first pod; skip if no pod is bound within 5 s after that."""
    deadline = time.monotonic() + 15
    while not _pods(kubectl, namespace, selector):
        if time.monotonic() > deadline:
            raise AssertionError(f"no pod matching {selector} was created")
        time.sleep(0.1)
    deadline = time.monotonic() + 5
    while not any(p["spec"].get("nodeName") for p in _pods(kubectl, namespace, selector)):
        if time.monotonic() > deadline:
            pytest.skip("pods get no node within 5 s: this build has no scheduler")
        time.sleep(0.1)



def _ready_since(pod: dict) -> str:
    return next(c["lastTransitionTime"] for c in pod["status"]["conditions"] if c["type"] == "Ready")


def _template(app: str, **spec) -> dict:
    return {"metadata": {"labels": {"app": app}},
            "spec": {"containers": [{"name": app, "image": "nginx:1.27"}], **spec}}


def test_statefulset_comes_up_in_order_with_stable_names(kubectl, namespace):
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 80}]}}
    claim = {"metadata": {"name": "www"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                   "resources": {"requests": {"storage": "1Gi"}}}}
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
           "spec": {"serviceName": "web", "replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                    "template": _template("web"), "volumeClaimTemplates": [claim]}}
    _apply(kubectl, namespace, service, sts)
    _require_scheduler(kubectl, namespace, "app=web")
    kubectl("rollout", "status", "-n", namespace, "statefulset/web", f"--timeout={TIMEOUT}")

    pods = _pods(kubectl, namespace, "app=web")
    assert [p["metadata"]["name"] for p in pods] == ["web-0", "web-1", "web-2"]
    for i, pod in enumerate(pods):
        labels = pod["metadata"]["labels"]
        assert labels["statefulset.kubernetes.io/pod-name"] == f"web-{i}"
        assert labels["apps.kubernetes.io/pod-index"] == str(i)
        assert pod["spec"]["hostname"] == f"web-{i}" and pod["spec"]["subdomain"] == "web"
        claim_name = next(v for v in pod["spec"]["volumes"] if v["name"] == "www")["persistentVolumeClaim"]["claimName"]
        assert claim_name == f"www-web-{i}"
        if i:  # OrderedReady: each pod was created once its predecessor was Ready
            assert pod["metadata"]["creationTimestamp"] >= _ready_since(pods[i - 1])
    claims = _get(kubectl, namespace, "pvc")["items"]
    assert sorted(c["metadata"]["name"] for c in claims) == ["www-web-0", "www-web-1", "www-web-2"]

    status = _get(kubectl, namespace, "statefulset", "web")["status"]
    assert (status["replicas"], status["readyReplicas"], status["availableReplicas"]) == (3, 3, 3)
    assert status["currentRevision"] == status["updateRevision"]
    assert pods[0]["metadata"]["labels"]["controller-revision-hash"] == status["updateRevision"]
    row = kubectl("get", "statefulset", "web", "-n", namespace, "--no-headers").stdout.split()
    assert row[:2] == ["web", "3/3"]

    # a deleted member comes back under its own name
    old_uid = pods[1]["metadata"]["uid"]
    kubectl("delete", "pod", "web-1", "-n", namespace, "--wait=false")
    wait_until(lambda: any(p["metadata"]["name"] == "web-1" and p["metadata"]["uid"] != old_uid
                       and p.get("status", {}).get("phase") == "Running"
                       for p in _pods(kubectl, namespace, "app=web")), timeout=60, what="web-1 to come back")

    # a rolling update replaces the pods from the highest ordinal down
    kubectl("set", "image", "statefulset/web", "-n", namespace, "web=nginx:1.28")
    kubectl("rollout", "status", "-n", namespace, "statefulset/web", f"--timeout={TIMEOUT}")
    pods = _pods(kubectl, namespace, "app=web")
    assert [p["spec"]["containers"][0]["image"] for p in pods] == ["nginx:1.28"] * 3
    assert pods[2]["metadata"]["creationTimestamp"] <= pods[1]["metadata"]["creationTimestamp"] \
        <= pods[0]["metadata"]["creationTimestamp"]
    status = _get(kubectl, namespace, "statefulset", "web")["status"]
    assert status["currentRevision"] == status["updateRevision"] == pods[0]["metadata"]["labels"]["controller-revision-hash"]
    assert len(_get(kubectl, namespace, "controllerrevisions")["items"]) == 2

    # scaling down removes the highest ordinals; the claims stay (whenScaled: Retain)
    kubectl("scale", "statefulset/web", "-n", namespace, "--replicas=1")
    wait_until(lambda: [p["metadata"]["name"] for p in _pods(kubectl, namespace, "app=web")] == ["web-0"],
           what="the scale-down to web-0", timeout=90)
    assert len(_get(kubectl, namespace, "pvc")["items"]) == 3


def test_daemonset_runs_one_pod_per_node(kubectl, namespace):
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
          "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": _template("agent")}}
    _apply(kubectl, namespace, ds)
    _require_scheduler(kubectl, namespace, "app=agent")
    kubectl("rollout", "status", "-n", namespace, "daemonset/agent", f"--timeout={TIMEOUT}")
    nodes = {n["metadata"]["name"] for n in json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]}
    assert len(nodes) == 3
    pods = _pods(kubectl, namespace, "app=agent")
    assert sorted(p["spec"]["nodeName"] for p in pods) == sorted(nodes)
    for pod in pods:
        term = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"][0]
        assert term["matchFields"] == [{"key": "metadata.name", "operator": "In", "values": [pod["spec"]["nodeName"]]}]
    status = _get(kubectl, namespace, "daemonset", "agent")["status"]
    assert status["desiredNumberScheduled"] == status["currentNumberScheduled"] == 3
    assert status["numberReady"] == status["numberAvailable"] == status["updatedNumberScheduled"] == 3
    row = kubectl("get", "daemonset", "agent", "-n", namespace, "--no-headers").stdout.split()
    assert row[:6] == ["agent", "3", "3", "3", "3", "3"]

    # a rolling update replaces the pods node by node
    kubectl("set", "image", "daemonset/agent", "-n", namespace, "agent=nginx:1.28")
    kubectl("rollout", "status", "-n", namespace, "daemonset/agent", f"--timeout={TIMEOUT}")
    wait_until(lambda: sorted(p["spec"]["containers"][0]["image"] for p in _pods(kubectl, namespace, "app=agent")
                          if "deletionTimestamp" not in p["metadata"]) == ["nginx:1.28"] * 3, timeout=60, what="the new pods")
    history = kubectl("rollout", "history", "daemonset/agent", "-n", namespace).stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]

    # and undo applies the first revision's template back
    kubectl("rollout", "undo", "daemonset/agent", "-n", namespace)
    kubectl("rollout", "status", "-n", namespace, "daemonset/agent", f"--timeout={TIMEOUT}")
    wait_until(lambda: sorted(p["spec"]["containers"][0]["image"] for p in _pods(kubectl, namespace, "app=agent")
                          if "deletionTimestamp" not in p["metadata"]) == ["nginx:1.27"] * 3, timeout=60, what="the undone pods")
    history = kubectl("rollout", "history", "daemonset/agent", "-n", namespace).stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "3"]


def test_job_with_completions_and_parallelism_completes(kubectl, namespace):
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "calc"},
           "spec": {"completions": 3, "parallelism": 2, "template": {"spec": {
               "restartPolicy": "Never", "containers": [{"name": "calc", "image": "busybox", "command": ["true"]}]}}}}
    _apply(kubectl, namespace, job)
    _require_scheduler(kubectl, namespace, "batch.kubernetes.io/job-name=calc")
    kubectl("wait", "-n", namespace, "--for=condition=complete", "job/calc", f"--timeout={TIMEOUT}")
    status = _get(kubectl, namespace, "job", "calc")["status"]
    assert status["succeeded"] == 3 and status["uncountedTerminatedPods"] == {}
    types = [c["type"] for c in status["conditions"]]
    assert types == ["SuccessCriteriaMet", "Complete"]
    pods = _pods(kubectl, namespace, "batch.kubernetes.io/job-name=calc")
    assert len(pods) == 3 and all(p["status"]["phase"] == "Succeeded" for p in pods)
    assert all("batch.kubernetes.io/job-tracking" not in (p["metadata"].get("finalizers") or []) for p in pods)
    row = kubectl("get", "job", "calc", "-n", namespace, "--no-headers").stdout.split()
    assert row[:3] == ["calc", "Complete", "3/3"]
    events = kubectl("get", "events", "-n", namespace, "--field-selector", "involvedObject.name=calc",
                     "-o", "json").stdout
    messages = {e["message"] for e in json.loads(events)["items"]}
    assert "Job completed" in messages and any(m.startswith("Created pod: calc-") for m in messages)


def test_indexed_job(kubectl, namespace):
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "idx"},
           "spec": {"completions": 3, "parallelism": 3, "completionMode": "Indexed", "template": {"spec": {
               "restartPolicy": "Never", "containers": [{"name": "work", "image": "busybox"}]}}}}
    _apply(kubectl, namespace, job)
    _require_scheduler(kubectl, namespace, "batch.kubernetes.io/job-name=idx")
    kubectl("wait", "-n", namespace, "--for=condition=complete", "job/idx", f"--timeout={TIMEOUT}")
    assert _get(kubectl, namespace, "job", "idx")["status"]["completedIndexes"] == "0-2"
    pods = _pods(kubectl, namespace, "batch.kubernetes.io/job-name=idx")
    assert sorted(p["spec"]["hostname"] for p in pods) == ["idx-0", "idx-1", "idx-2"]


def test_job_from_cronjob(kubectl, namespace):
    kubectl("create", "cronjob", "hello", "-n", namespace, "--image=busybox", "--schedule=*/5 * * * *",
            "--", "echo", "hello")
    cronjob = _get(kubectl, namespace, "cronjob", "hello")
    kubectl("create", "job", "hello-manual", "-n", namespace, "--from=cronjob/hello")
    _require_scheduler(kubectl, namespace, "batch.kubernetes.io/job-name=hello-manual")
    kubectl("wait", "-n", namespace, "--for=condition=complete", "job/hello-manual", f"--timeout={TIMEOUT}")
    job = _get(kubectl, namespace, "job", "hello-manual")
    ref = job["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["uid"]) == ("CronJob", cronjob["metadata"]["uid"])
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    row = kubectl("get", "cronjob", "hello", "-n", namespace, "--no-headers").stdout.split()
    assert row[0] == "hello" and "*/5" in row
