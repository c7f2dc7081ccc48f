"""Server-side Table output: the cells kube-apiserver prints, checked against upstream's rules.

Expected values come from kube-apiserver's `printers.go` and its `printers_test.go` (ported
cases keep upstream's names), apimachinery's `duration_test.go`, and the apiextensions table
convertor. Every object is the served v1 JSON a client would see.
"""

from datetime import UTC, datetime

import pytest

from lks.kube import errors, jsonpath, tables
from lks.kube.printers import _PRINTERS
from lks.kube.printers.base import Doc, describe

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC).timestamp()
S, M, H, D = 1, 60, 3600, 86400


def ago(seconds: float) -> str:
    return datetime.fromtimestamp(NOW - seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, age: float = 5 * D, **extra) -> dict:
    return {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": "42",
            "creationTimestamp": ago(age), **extra}


def cells(group: str, resource: str, obj: dict) -> list:
    return tables.row(group, resource, obj, NOW)


# --- HumanDuration -------------------------------------------------------------------------

@pytest.mark.parametrize("seconds, want", [
    pytest.param(1, "1s", id="1s"),
    pytest.param(70, "70s", id="70s"),
    pytest.param(190, "3m10s", id="3m10s"),
    pytest.param(70 * M, "70m", id="70m"),
    pytest.param(47 * H, "47h", id="47h"),
    pytest.param(49 * H, "2d1h", id="2d1h"),
    pytest.param((8 * 24 + 2) * H, "8d", id="8d"),
    pytest.param(367 * D, "367d", id="367d"),
    pytest.param((365 * 2 * 24 + 25) * H, "2y1d", id="2y1d"),
    pytest.param((365 * 8 * 24 + 2) * H, "8y", id="8y"),
])
def test_human_duration(seconds, want):
    assert tables.human_duration(seconds) == want


@pytest.mark.parametrize("seconds, want", [
    (-2, "<invalid>"), (-2 + 1e-9, "0s"), (0, "0s"), (1 - 1e-3, "0s"), (0.5, "0s"),
    (2 * M - 1e-3, "119s"), (2 * M, "2m"), (2 * M + 1, "2m1s"), (5 * M, "5m"), (5 * M + 3, "5m3s"),
    (10 * M - 1e-3, "9m59s"), (10 * M, "10m"), (10 * M + 1, "10m"),
    (3 * H - 1e-3, "179m"), (3 * H, "3h"), (3 * H + M, "3h1m"), (3 * H + 5 * M, "3h5m"),
    (8 * H - 1e-3, "7h59m"), (8 * H, "8h"), (8 * H + 59 * M, "8h"),
    (2 * D - 1e-3, "47h"), (2 * D, "2d"), (2 * D + H, "2d1h"), (2 * D + 3 * H, "2d3h"),
    (8 * D - 1e-3, "7d23h"), (8 * D, "8d"), (8 * D + 23 * H, "8d"), (400 * D, "400d"),
    (2 * 365 * D - 1e-3, "729d"), (2 * 365 * D, "2y"), (2 * 365 * D + 23 * H + 59 * M, "2y"),
    (2 * 365 * D + D, "2y1d"), (3 * 365 * D, "3y"), (8 * 365 * D - 1e-3, "7y364d"),
    (8 * 365 * D, "8y"), (8 * 365 * D + 364 * D, "8y"), (9 * 365 * D, "9y"),
])
def test_human_duration_boundaries(seconds, want):
    assert tables.human_duration(seconds) == want


# --- pods ----------------------------------------------------------------------------------

def pod(name="web-7d4b9c5f6-x2k8p", *, phase="Running", statuses=(), init=(), init_statuses=(),
        containers=1, conditions=(), deleted=False, reason=None, **status_extra) -> dict:
    spec = {"containers": [{"name": f"c{i}", "image": "nginx:1.25"} for i in range(containers)],
            "nodeName": "aks-nodepool1-0"}
    if init:
        spec["initContainers"] = list(init)
    status = {"phase": phase, "conditions": list(conditions), "containerStatuses": list(statuses),
              "podIP": "10.244.1.7", "podIPs": [{"ip": "10.244.1.7"}], **status_extra}
    if init_statuses:
        status["initContainerStatuses"] = list(init_statuses)
    if reason:
        status["reason"] = reason
    m = meta(name, 2 * H)
    if deleted:
        m["deletionTimestamp"] = ago(10)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": m, "spec": spec, "status": status}


RUNNING = {"running": {"startedAt": ago(2 * H)}}


def cs(name="c0", *, ready=False, restarts=0, state=None, last_finished=None, started=None) -> dict:
    status = {"name": name, "ready": ready, "restartCount": restarts, "image": "nginx:1.25",
              "state": state if state is not None else {}}
    if last_finished is not None:
        status["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(last_finished)}}
    if started is not None:
        status["started"] = started
    return status


def test_running_pod_wide_row():
    obj = pod(statuses=[cs(ready=True, state=RUNNING)], conditions=[{"type": "Ready", "status": "True"}])
    assert cells("", "pods", obj) == ["web-7d4b9c5f6-x2k8p", "1/1", "Running", "0", "120m",
                                      "10.244.1.7", "aks-nodepool1-0", "<none>", "<none>"]


def test_crash_loop_pod_counts_restarts_with_last_restart_age():
    obj = pod(containers=2, statuses=[
        cs("app", restarts=5, state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}},
           last_finished=3 * M + 2),
        cs("sidecar", ready=True, state=RUNNING),
    ])
    assert cells("", "pods", obj)[1:4] == ["1/2", "CrashLoopBackOff", "5 (3m2s ago)"]


def test_terminating_pod():
    obj = pod(statuses=[cs(ready=True, state=RUNNING)], deleted=True)
    assert cells("", "pods", obj)[2] == "Terminating"


def test_pod_on_lost_node_being_deleted_is_unknown():
    obj = pod(statuses=[cs(ready=True, state=RUNNING)], deleted=True, reason="NodeLost")
    assert cells("", "pods", obj)[2] == "Unknown"


def test_completed_job_pod_has_completed_row_condition():
    obj = pod("pi-x7f2q", phase="Succeeded", statuses=[
        cs("pi", state={"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": ago(M)}})])
    table = tables.to_table("", "pods", [obj], now=NOW)
    (row,) = table["rows"]
    assert row["cells"][1:4] == ["0/1", "Completed", "0"]
    assert row["conditions"] == [{"type": "Completed", "status": "True", "reason": "Succeeded",
                                  "message": "The pod has completed successfully."}]


def test_failed_pod_shows_first_failing_container_even_if_another_completed():
    obj = pod(phase="Failed", containers=2, statuses=[
        cs("a", state={"terminated": {"exitCode": 0, "reason": "Completed"}}),
        cs("b", state={"terminated": {"exitCode": 1, "reason": "Error"}})])
    row = tables.to_table("", "pods", [obj], now=NOW)["rows"][0]
    assert row["cells"][2] == "Error"
    assert row["conditions"][0]["reason"] == "Failed"


def test_init_container_crash_loop():
    obj = pod(phase="Pending", init=[{"name": "migrate", "image": "app"}], init_statuses=[
        cs("migrate", restarts=2, state={"waiting": {"reason": "CrashLoopBackOff"}}, last_finished=30)],
        statuses=[cs(state={"waiting": {"reason": "PodInitializing"}})])
    assert cells("", "pods", obj)[1:4] == ["0/1", "Init:CrashLoopBackOff", "2 (30s ago)"]


@pytest.mark.parametrize("terminated, want", [
    ({"exitCode": 1, "reason": "Error"}, "Init:Error"),
    ({"exitCode": 2}, "Init:ExitCode:2"),
    ({"exitCode": 137, "signal": 9}, "Init:Signal:9"),
])
def test_failed_init_container(terminated, want):
    obj = pod(phase="Pending", init=[{"name": "i"}], init_statuses=[cs("i", state={"terminated": terminated})])
    assert cells("", "pods", obj)[2] == want


def test_pod_ip_falls_back_to_pod_ip_and_readiness_gates_count_true_conditions():
    obj = pod(statuses=[cs(ready=True, state=RUNNING)], podIPs=[], nominatedNodeName="node-b",
              conditions=[{"type": "example.com/lb", "status": "True"}, {"type": "example.com/dns", "status": "False"}])
    obj["spec"]["readinessGates"] = [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"},
                                     {"conditionType": "example.com/other"}]
    assert cells("", "pods", obj)[5:] == ["10.244.1.7", "aks-nodepool1-0", "node-b", "1/3"]


def _upstream_pod(statuses=(), *, containers=2, phase="podPhase", reason="", conditions=(), init=0,
                  init_statuses=(), init_specs=None, deleted=False) -> dict:
    """The bare pods of upstream's TestPrintPod: no creation time, so AGE is <unknown>."""
    spec = {"containers": [{} for _ in range(containers)]}
    if init or init_specs:
        spec["initContainers"] = init_specs or [{} for _ in range(init)]
    status = {"phase": phase, "reason": reason, "conditions": list(conditions),
              "containerStatuses": list(statuses), "initContainerStatuses": list(init_statuses)}
    metadata = {"name": "test", **({"deletionTimestamp": ago(10)} if deleted else {})}
    return {"metadata": metadata, "spec": spec, "status": status}


def _st(*, ready=False, restarts=0, state=None, last=None, name=None, started=None) -> dict:
    result = {"ready": ready, "restartCount": restarts, "state": state or {}}
    if last is not None:
        result["lastState"] = {"terminated": {"finishedAt": ago(last)}}
    if name is not None:
        result["name"] = name
    if started is not None:
        result["started"] = started
    return result


_TERM_OK = {"terminated": {"reason": "Completed", "exitCode": 0}}
_WAIT = {"waiting": {}}
_SIDECARS = [{"name": "restartable-init-1", "restartPolicy": "Always"},
             {"name": "restartable-init-2", "restartPolicy": "Always"}]


@pytest.mark.parametrize("obj, want", [
    pytest.param(_upstream_pod([_st(ready=True, restarts=3, state=RUNNING), _st(restarts=3)]),
                 ["1/2", "podPhase", "6"], id="test1"),
    pytest.param(_upstream_pod([_st(ready=True, restarts=3, state=RUNNING),
                                _st(restarts=3, state={"waiting": {"reason": "ContainerWaitingReason"}})]),
                 ["1/2", "ContainerWaitingReason", "6"], id="test2"),
    pytest.param(_upstream_pod([_st(restarts=3, state={"waiting": {"reason": "ContainerWaitingReason"}}),
                                _st(restarts=3, state={"terminated": {"reason": "ContainerTerminatedReason"}})]),
                 ["0/2", "ContainerWaitingReason", "6"], id="test3"),
    pytest.param(_upstream_pod([_st(ready=True, restarts=3, state=RUNNING), _st(ready=True, restarts=3)]),
                 ["1/2", "podPhase", "6"], id="test4"),
    pytest.param(_upstream_pod([_st(ready=True, restarts=3, state=RUNNING), _st(ready=True, restarts=3)],
                               reason="podReason"), ["1/2", "podReason", "6"], id="test5"),
    pytest.param(_upstream_pod([_st(ready=True, restarts=3, state=_TERM_OK), _st(ready=True, restarts=3, state=RUNNING)],
                               phase="Running"), ["1/2", "NotReady", "6"], id="test6-not-ready"),
    pytest.param(_upstream_pod([_st(ready=True, restarts=3, state=_TERM_OK), _st(ready=True, restarts=3, state=RUNNING)],
                               phase="Running", conditions=[{"type": "Ready", "status": "True"}]),
                 ["1/2", "Running", "6"], id="test6-ready"),
    pytest.param(_upstream_pod([_st(state=_WAIT)], containers=1, init=1,
                               init_statuses=[_st(restarts=3, state=RUNNING, last=10)]),
                 ["0/1", "Init:0/1", "3 (10s ago)"], id="test7"),
    pytest.param(_upstream_pod([_st(state=_WAIT)], containers=1, init=2,
                               init_statuses=[_st(restarts=3, state=RUNNING, last=10), _st(state=_WAIT)]),
                 ["0/1", "Init:0/2", "3 (10s ago)"], id="test8"),
    pytest.param(_upstream_pod([_st(state=_WAIT)], containers=1, init=2,
                               init_statuses=[_st(state={"terminated": {}}), _st(restarts=3, state=RUNNING, last=10)]),
                 ["0/1", "Init:1/2", "3 (10s ago)"], id="test9"),
    pytest.param(_upstream_pod([_st(state=_WAIT)], containers=1, init=2, init_statuses=[
        _st(restarts=2, state={"terminated": {}}, last=2 * M), _st(restarts=3, state=RUNNING, last=10)]),
        ["0/1", "Init:1/2", "5 (10s ago)"], id="test10"),
    pytest.param(_upstream_pod([_st(restarts=4, state=RUNNING, last=20)], containers=1, init=1, phase="Running",
                               init_statuses=[_st(restarts=2, state={"terminated": {}}, last=2 * M)]),
                 ["0/1", "Running", "4 (20s ago)"], id="test11"),
    pytest.param(_upstream_pod([_st(ready=True, restarts=3, state=RUNNING, last=5 * D)], containers=1, phase="Running"),
                 ["1/1", "Running", "3 (5d ago)"], id="test12"),
    pytest.param(_upstream_pod([_st(ready=True, state=RUNNING), _st(ready=True, restarts=3, state=RUNNING, last=10 * D)],
                               phase="Running"), ["2/2", "Running", "3 (10d ago)"], id="test13"),
    pytest.param(_upstream_pod([_st(ready=True, restarts=6, state=RUNNING, last=5 * D),
                                _st(ready=True, restarts=3, state=RUNNING, last=20 * D)], phase="Running"),
                 ["2/2", "Running", "9 (5d ago)"], id="test14"),
    pytest.param(_upstream_pod(conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]),
                 ["0/2", "SchedulingGated", "0"], id="test15"),
    pytest.param(_upstream_pod([_st(state=_TERM_OK)], containers=1, phase="Succeeded"),
                 ["0/1", "Completed", "0"], id="test16"),
    pytest.param(_upstream_pod([_st(state={"terminated": {"reason": "Error", "exitCode": 1}})], containers=1,
                               phase="Failed"), ["0/1", "Error", "0"], id="test17"),
    pytest.param(_upstream_pod([_st(state=_TERM_OK)], containers=1, phase="Succeeded", deleted=True),
                 ["0/1", "Completed", "0"], id="test18"),
    pytest.param(_upstream_pod([_st(state=RUNNING)], containers=1, phase="Running", deleted=True),
                 ["0/1", "Terminating", "0"], id="test19"),
    pytest.param(_upstream_pod(containers=1, phase="Pending", deleted=True), ["0/1", "Terminating", "0"], id="test20"),
    pytest.param(_upstream_pod([_st(state=_WAIT)], containers=1, phase="Pending", init_specs=_SIDECARS,
                                init_statuses=[_st(name="restartable-init-1", restarts=3, state=RUNNING, started=False,
                                                   last=10),
                                               _st(name="restartable-init-2", state=_WAIT, started=False)],
                                conditions=[{"type": "Initialized", "status": "False"}]),
                 ["0/3", "Init:0/2", "3 (10s ago)"], id="sidecar-not-started"),
    pytest.param(_upstream_pod([_st(state=_WAIT)], containers=1, phase="Pending", init_specs=_SIDECARS,
                                init_statuses=[_st(name="restartable-init-1", restarts=3, state=RUNNING, started=True,
                                                   last=10),
                                               _st(name="restartable-init-2", state=RUNNING, started=False)],
                                conditions=[{"type": "Initialized", "status": "False"}]),
                 ["0/3", "Init:1/2", "3 (10s ago)"], id="sidecar-second-not-started"),
    pytest.param(_upstream_pod([_st(ready=True, restarts=4, state=RUNNING, last=20)], containers=1, phase="Running",
                                init_specs=_SIDECARS,
                                init_statuses=[_st(name="restartable-init-1", restarts=3, state=RUNNING, started=True,
                                                   last=10),
                                               _st(name="restartable-init-2", state=RUNNING, started=True)],
                                conditions=[{"type": "Initialized", "status": "True"}]),
                 ["1/3", "Running", "7 (10s ago)"], id="sidecars-started"),
    pytest.param(_upstream_pod(containers=1, phase="Running",
                               init_specs=[{"name": "init1"}, {"name": "sidecar1", "restartPolicy": "Always"}],
                               init_statuses=[_st(name="initinvalid"), _st(name="init1"), _st(name="sidecar1")]),
                 ["0/2", "Init:0/2", "0"], id="statuses-for-unknown-containers"),
])
def test_upstream_print_pod_cases(obj, want):
    got = cells("", "pods", obj)
    assert got[1:4] == want
    assert got[4] == "<unknown>"  # no creation timestamp


# --- workloads -----------------------------------------------------------------------------

def test_deployment_two_of_three_ready():
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("web"),
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "tier": "front"}},
                    "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"},
                                                         {"name": "envoy", "image": "envoy:v1.30"}]}}},
           "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    assert cells("apps", "deployments", obj) == ["web", "2/3", 3, 2, "5d", "nginx,envoy", "nginx:1.25,envoy:v1.30",
                                                 "app=web,tier=front"]
    assert [c["name"] for c in tables.column_definitions("apps", "deployments", wide=False)] == [
        "Name", "Ready", "Up-to-date", "Available", "Age"]


def test_replica_set_selector_with_expressions():
    obj = {"metadata": meta("web-7d4b9c5f6", 3 * H), "spec": {
        "replicas": 2, "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx"}]}},
        "selector": {"matchLabels": {"pod-template-hash": "7d4b9c5f6"}, "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "canary"]},
            {"key": "legacy", "operator": "DoesNotExist"}]}}, "status": {"replicas": 2}}
    assert cells("apps", "replicasets", obj) == [
        "web-7d4b9c5f6", 2, 2, 0, "3h", "nginx", "nginx",
        "env in (canary,prod),!legacy,pod-template-hash=7d4b9c5f6"]


def test_stateful_set_and_daemon_set():
    sts = {"metadata": meta("db"), "spec": {"replicas": 3, "template": {"spec": {"containers": []}}},
           "status": {"readyReplicas": 1}}
    assert cells("apps", "statefulsets", sts) == ["db", "1/3", "5d", "", ""]
    ds = {"metadata": meta("kube-proxy", 40 * D), "spec": {
        "selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
        "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                              "containers": [{"name": "kube-proxy", "image": "kube-proxy:v1.36.0"}]}}},
        "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 3,
                   "updatedNumberScheduled": 3, "numberAvailable": 3}}
    assert cells("apps", "daemonsets", ds) == ["kube-proxy", 3, 3, 3, 3, 3, "kubernetes.io/os=linux", "40d",
                                               "kube-proxy", "kube-proxy:v1.36.0", "k8s-app=kube-proxy"]


@pytest.mark.parametrize("spec, status, deleted, want", [
    ({"completions": 1, "parallelism": 1}, {"succeeded": 1, "startTime": ago(5 * M), "completionTime": ago(4 * M),
                                            "conditions": [{"type": "Complete", "status": "True"}]},
     False, ["Complete", "1/1", "60s"]),
    ({"completions": 5, "parallelism": 2}, {"succeeded": 2, "startTime": ago(3 * M + 5)}, False,
     ["Running", "2/5", "3m5s"]),
    ({"parallelism": 3}, {"succeeded": 0}, False, ["Running", "0/1 of 3", ""]),
    ({"completions": 1}, {"conditions": [{"type": "Failed", "status": "True"},
                                         {"type": "FailureTarget", "status": "True"}]}, True,
     ["Failed", "0/1", ""]),
    ({"completions": 1}, {"conditions": [{"type": "Suspended", "status": "True"}]}, True, ["Terminating", "0/1", ""]),
    ({"completions": 1}, {"conditions": [{"type": "Suspended", "status": "True"}]}, False, ["Suspended", "0/1", ""]),
    ({"completions": 1}, {"conditions": [{"type": "SuccessCriteriaMet", "status": "True"}]}, False,
     ["SuccessCriteriaMet", "0/1", ""]),
])
def test_job_status_completions_duration(spec, status, deleted, want):
    m = meta("pi", 6 * M, **({"deletionTimestamp": ago(1)} if deleted else {}))
    obj = {"metadata": m, "spec": {**spec, "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}},
                                   "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}},
           "status": status}
    assert cells("batch", "jobs", obj) == ["pi", *want, "6m", "pi", "perl", "batch.kubernetes.io/controller-uid=u1"]


def test_cron_job():
    obj = {"metadata": meta("backup", 3 * D), "spec": {
        "schedule": "*/5 * * * *", "suspend": False,
        "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "busybox"}]}}}}},
        "status": {"active": [{"name": "backup-1"}], "lastScheduleTime": ago(2 * M + 30)}}
    assert cells("batch", "cronjobs", obj) == ["backup", "*/5 * * * *", "<none>", "False", 1, "2m30s", "3d",
                                               "b", "busybox", "<none>"]


def test_hpa_v2_and_v1_targets():
    v2 = {"apiVersion": "autoscaling/v2", "metadata": meta("web"), "spec": {
        "scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 10,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                                 "averageUtilization": 80}}},
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue",
                                                                                    "averageValue": "500Mi"}}},
                    {"type": "Pods", "pods": {"target": {"averageValue": "1k"}}}]},
        "status": {"currentReplicas": 3, "currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 45}}}]}}
    assert cells("autoscaling", "horizontalpodautoscalers", v2) == [
        "web", "Deployment/web", "cpu: 45%/80%, memory: <unknown>/500Mi + 1 more...", "2", 10, 3, "5d"]
    v1 = {"apiVersion": "autoscaling/v1", "metadata": meta("api"), "spec": {
        "scaleTargetRef": {"kind": "Deployment", "name": "api"}, "maxReplicas": 5,
        "targetCPUUtilizationPercentage": 50}, "status": {"currentReplicas": 1}}
    assert cells("autoscaling", "horizontalpodautoscalers", v1)[2:4] == ["cpu: <unknown>/50%", "<unset>"]


def test_pdb_and_controller_revision():
    pdb = {"metadata": meta("web"), "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}}
    assert cells("policy", "poddisruptionbudgets", pdb) == ["web", "50%", "N/A", 1, "5d"]
    rev = {"metadata": meta("fluentd-6d9f7c", ownerReferences=[
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "fluentd", "controller": True}]), "revision": 2}
    assert cells("apps", "controllerrevisions", rev) == ["fluentd-6d9f7c", "daemonset.apps/fluentd", 2, "5d"]


# --- core ----------------------------------------------------------------------------------

def service(type_="ClusterIP", ports=(), **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta("web", 20 * D),
            "spec": {"type": type_, "clusterIP": "10.0.12.34", "clusterIPs": ["10.0.12.34"],
                     "ports": list(ports), **spec}, "status": {"loadBalancer": {}}}


def test_service_rows():
    svc = service(ports=[{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
                         {"name": "dns", "port": 53, "protocol": "UDP"}], selector={"app": "web"})
    assert cells("", "services", svc) == ["web", "ClusterIP", "10.0.12.34", "<none>", "80/TCP,53/UDP", "20d",
                                          "app=web"]
    node_port = service("NodePort", [{"port": 80, "nodePort": 30080, "protocol": "TCP"}],
                        externalIPs=["203.0.113.5", "203.0.113.6"])
    assert cells("", "services", node_port)[1:5] == ["NodePort", "10.0.12.34", "203.0.113.5,203.0.113.6",
                                                     "80:30080/TCP"]
    assert cells("", "services", service("LoadBalancer"))[3:5] == ["<pending>", "<none>"]
    lb = service("LoadBalancer", externalIPs=["203.0.113.9"])
    lb["status"]["loadBalancer"]["ingress"] = [{"ip": "20.50.1.2"}, {"hostname": "lb.example.com"}, {"ip": "20.50.1.2"}]
    assert cells("", "services", lb)[3] == "20.50.1.2,lb.example.com,203.0.113.9"
    headless = service(clusterIP="None", clusterIPs=["None"])
    assert cells("", "services", headless)[2] == "None"
    assert cells("", "services", service("ExternalName", externalName="db.example.com"))[3] == "db.example.com"


def test_endpoints():
    obj = {"metadata": meta("web"), "subsets": [
        {"addresses": [{"ip": "10.244.1.7"}, {"ip": "10.244.2.9"}, {"ip": "fd00::5"}],
         "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9090}]}]}
    assert cells("", "endpoints", obj) == ["web", "10.244.1.7:8080,10.244.2.9:8080,[fd00::5]:8080 + 3 more...", "5d"]
    assert cells("", "endpoints", {"metadata": meta("none")})[1] == "<none>"
    headless = {"metadata": meta("h"), "subsets": [{"addresses": [{"ip": "10.244.1.7"}]}]}
    assert cells("", "endpoints", headless)[1] == "10.244.1.7"


def test_node_ready_with_roles_from_labels():
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": "aks-nodepool1-0", "creationTimestamp": ago(12 * D + 5 * H),
        "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/worker": "",
                   "kubernetes.io/role": "agent", "kubernetes.io/os": "linux"}},
        "spec": {"unschedulable": True},
        "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                   "addresses": [{"type": "Hostname", "address": "aks-nodepool1-0"},
                                 {"type": "InternalIP", "address": "10.224.0.4"}],
                   "nodeInfo": {"kubeletVersion": "v1.36.2", "osImage": "Ubuntu 22.04.5 LTS",
                                "kernelVersion": "5.15.0-1079-azure", "architecture": "amd64",
                                "containerRuntimeVersion": "containerd://1.7.27-1"}}}
    assert cells("", "nodes", node) == [
        "aks-nodepool1-0", "Ready,SchedulingDisabled", "agent,control-plane,worker", "12d", "v1.36.2",
        "10.224.0.4", "<none>", "Ubuntu 22.04.5 LTS", "5.15.0-1079-azure (amd64)", "containerd://1.7.27-1"]
    bare = {"metadata": {"name": "n", "creationTimestamp": ago(M)}, "status": {}}
    assert cells("", "nodes", bare) == ["n", "Unknown", "<none>", "60s", "", "<none>", "<none>", "<unknown>",
                                        "<unknown>", "<unknown>"]


def test_core_v1_event():
    event = {"apiVersion": "v1", "kind": "Event", "metadata": meta("web-x2k8p.17c8f0a1b2c3d4e5", 5 * M),
             "involvedObject": {"kind": "Pod", "name": "web-x2k8p", "fieldPath": "spec.containers{nginx}"},
             "reason": "BackOff", "type": "Warning", "message": "Back-off restarting failed container\n",
             "source": {"component": "kubelet", "host": "aks-nodepool1-0"},
             "firstTimestamp": ago(5 * M), "lastTimestamp": ago(30), "count": 12}
    assert cells("", "events", event) == [
        "30s", "Warning", "BackOff", "pod/web-x2k8p", "spec.containers{nginx}", "kubelet, aks-nodepool1-0",
        "Back-off restarting failed container", "5m", 12, "web-x2k8p.17c8f0a1b2c3d4e5"]
    assert [c["name"] for c in tables.column_definitions("", "events", wide=False)] == [
        "Last Seen", "Type", "Reason", "Object", "Message"]


def test_new_style_events_use_event_time_series_and_reporting_controller():
    core = {"metadata": meta("e"), "involvedObject": {"kind": "Node"}, "type": "Normal", "reason": "Starting",
            "eventTime": "2024-05-01T11:58:00.123456Z", "series": {"count": 4, "lastObservedTime": ago(10)},
            "reportingComponent": "kube-proxy", "reportingInstance": "node-a"}
    assert cells("", "events", core)[:9] == ["10s", "Normal", "Starting", "node", "", "kube-proxy, node-a", "",
                                             "119s", 4]
    events_api = {"apiVersion": "events.k8s.io/v1", "metadata": meta("e"), "regarding": {"kind": "Pod", "name": "p"},
                  "note": "Pulled image", "reason": "Pulled", "type": "Normal", "eventTime": ago(90),
                  "reportingController": "kubelet"}
    assert cells("events.k8s.io", "events", events_api)[:9] == [
        "90s", "Normal", "Pulled", "pod/p", "", "kubelet", "Pulled image", "90s", 1]


def test_simple_core_rows():
    assert cells("", "configmaps", {"metadata": meta("cfg"), "data": {"a": "1", "b": "2"},
                                    "binaryData": {"c": "AA=="}}) == ["cfg", 3, "5d"]
    assert cells("", "secrets", {"metadata": meta("tls"), "type": "kubernetes.io/tls",
                                 "data": {"tls.crt": "", "tls.key": ""}}) == ["tls", "kubernetes.io/tls", 2, "5d"]
    assert cells("", "namespaces", {"metadata": meta("kube-system"), "status": {"phase": "Active"}}) == [
        "kube-system", "Active", "5d"]
    assert cells("", "serviceaccounts", {"metadata": meta("default"), "secrets": [{"name": "x"}]}) == ["default", "5d"]
    quota = {"metadata": meta("q"), "status": {"hard": {"limits.cpu": "4", "requests.cpu": "2", "pods": "10"},
                                               "used": {"requests.cpu": "500m", "pods": "3"}}}
    assert cells("", "resourcequotas", quota) == ["q", "pods: 3/10, requests.cpu: 500m/2", "limits.cpu: 0/4", "5d"]


def test_persistent_volume_and_claim():
    pv = {"metadata": meta("pv-1", annotations={"volume.beta.kubernetes.io/storage-class": "legacy"}),
          "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                   "persistentVolumeReclaimPolicy": "Retain", "claimRef": {"namespace": "default", "name": "data"},
                   "storageClassName": "managed-csi", "volumeMode": "Filesystem"},
          "status": {"phase": "Bound"}}
    assert cells("", "persistentvolumes", pv) == ["pv-1", "10Gi", "RWO,RWX", "Retain", "Bound", "default/data",
                                                  "legacy", "<unset>", "", "5d", "Filesystem"]
    pending = {"metadata": meta("data"), "spec": {"storageClassName": "managed-csi",
                                                  "resources": {"requests": {"storage": "5Gi"}}},
               "status": {"phase": "Pending"}}
    assert cells("", "persistentvolumeclaims", pending) == ["data", "Pending", "", "", "", "managed-csi", "<unset>",
                                                            "5d", "<unset>"]
    bound = {**pending, "spec": {**pending["spec"], "volumeName": "pv-1"},
             "status": {"phase": "Bound", "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"]}}
    assert cells("", "persistentvolumeclaims", bound)[1:5] == ["Bound", "pv-1", "10Gi", "RWO"]


# --- cluster resources ---------------------------------------------------------------------

def test_cluster_resource_rows():
    sc = {"metadata": meta("managed-csi", annotations={"storageclass.kubernetes.io/is-default-class": "true"}),
          "provisioner": "disk.csi.azure.com", "volumeBindingMode": "WaitForFirstConsumer",
          "allowVolumeExpansion": True}
    assert cells("storage.k8s.io", "storageclasses", sc) == [
        "managed-csi (default)", "disk.csi.azure.com", "Delete", "WaitForFirstConsumer", True, "5d"]
    ing = {"metadata": meta("web"), "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["a.example.com"]}],
                                             "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}, {},
                                                       {"host": "c.example.com"}, {"host": "d.example.com"}]},
           "status": {"loadBalancer": {"ingress": [{"ip": "20.1.2.3"}]}}}
    assert cells("networking.k8s.io", "ingresses", ing) == [
        "web", "nginx", "a.example.com,b.example.com,c.example.com + 2 more...", "20.1.2.3", "80, 443", "5d"]
    rb = {"metadata": meta("read"), "roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [
        {"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
        {"kind": "ServiceAccount", "namespace": "ci", "name": "bot"}, {"kind": "User", "name": "bob"}]}
    assert cells("rbac.authorization.k8s.io", "rolebindings", rb) == [
        "read", "ClusterRole/view", "5d", "alice, bob", "devs", "ci/bot"]
    np = {"metadata": meta("deny"), "spec": {"podSelector": {}}}
    assert cells("networking.k8s.io", "networkpolicies", np) == ["deny", "<none>", "5d"]
    pc = {"metadata": meta("high"), "value": 1000000, "preemptionPolicy": "Never"}
    assert cells("scheduling.k8s.io", "priorityclasses", pc) == ["high", 1000000, False, "5d", "Never"]
    lease = {"metadata": meta("kube-scheduler"), "spec": {"holderIdentity": "master-0_1234"}}
    assert cells("coordination.k8s.io", "leases", lease) == ["kube-scheduler", "master-0_1234", "5d"]
    csr = {"metadata": meta("csr-x"), "spec": {"signerName": "kubernetes.io/kube-apiserver-client",
                                               "username": "system:admin", "expirationSeconds": 86400},
           "status": {"conditions": [{"type": "Approved"}], "certificate": "LS0t"}}
    assert cells("certificates.k8s.io", "certificatesigningrequests", csr) == [
        "csr-x", "5d", "kubernetes.io/kube-apiserver-client", "system:admin", "24h", "Approved,Issued"]
    slc = {"metadata": meta("web-abc"), "addressType": "IPv4", "ports": [{"port": 80}, {"name": "x"}, {}, {"port": 9}],
           "endpoints": [{"addresses": ["10.0.0.1"]}]}
    assert cells("discovery.k8s.io", "endpointslices", slc) == ["web-abc", "IPv4", "80,x,* + 1 more...", "10.0.0.1",
                                                               "5d"]
    drv = {"metadata": meta("disk.csi.azure.com"), "spec": {"volumeLifecycleModes": ["Persistent"]}}
    assert cells("storage.k8s.io", "csidrivers", drv) == ["disk.csi.azure.com", True, False, False, "<unset>",
                                                         False, "Persistent", "5d"]
    hook = {"metadata": meta("policy"), "webhooks": [{"name": "a"}, {"name": "b"}]}
    assert cells("admissionregistration.k8s.io", "validatingwebhookconfigurations", hook) == ["policy", 2, "5d"]
    binding = {"metadata": meta("b"), "spec": {"policyName": "p", "paramRef": {"selector": {"matchLabels": {"a": "b"}}}}}
    assert cells("admissionregistration.k8s.io", "validatingadmissionpolicybindings", binding)[2] == (
        "&LabelSelector{MatchLabels:map[string]string{a: b,},MatchExpressions:[]LabelSelectorRequirement{},}")


def test_apiservice_and_flow_schema_order():
    svc = {"metadata": meta("v1beta1.metrics.k8s.io"), "spec": {"service": {"namespace": "kube-system",
                                                                            "name": "metrics-server"}},
           "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]}}
    table = tables.to_table("apiregistration.k8s.io", "apiservices", [svc], now=NOW, no_headers=True)
    assert table["rows"][0]["cells"] == ["v1beta1.metrics.k8s.io", "kube-system/metrics-server",
                                         "False (MissingEndpoints)", "5d"]
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Service", "Available", "Age"]
    schemas = [{"metadata": meta(n), "spec": {"matchingPrecedence": p, "priorityLevelConfiguration": {"name": "x"}}}
               for n, p in [("global-default", 9900), ("exempt", 1), ("catch-all", 10000), ("apf", 1)]]
    rows = tables.to_table("flowcontrol.apiserver.k8s.io", "flowschemas", schemas, now=NOW,
                           list_meta={"resourceVersion": "9"})["rows"]
    assert [r["cells"][0] for r in rows] == ["apf", "exempt", "global-default", "catch-all"]
    assert rows[0]["cells"][2:] == [1, "<none>", "5d", "?"]


def test_column_descriptions_resolve_from_schemas():
    blank = {("node.k8s.io", "runtimeclasses", "Handler"), ("coordination.k8s.io", "leasecandidates", "BinaryVersion"),
             ("coordination.k8s.io", "leasecandidates", "EmulationVersion")}  # upstream quotes missing fields
    for (group, resource), printer in _PRINTERS.items():
        for column in printer.columns:
            if isinstance(column.description, Doc) and (group, resource, column.name) not in blank:
                assert describe(column.description), (group, resource, column.name)


# --- Table assembly ------------------------------------------------------------------------

def test_table_shape_and_include_object_modes():
    obj = pod(statuses=[cs(ready=True, state=RUNNING)])
    table = tables.to_table("", "pods", [obj], now=NOW,
                            list_meta={"resourceVersion": "123", "continue": "", "remainingItemCount": None})
    assert list(table) == ["kind", "apiVersion", "metadata", "columnDefinitions", "rows"]
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "123"}
    assert table["columnDefinitions"][3] == {"name": "Restarts", "type": "string", "format": "",
                                             "description": "The number of times the containers in this pod have "
                                                            "been restarted and when the last container in this pod "
                                                            "has restarted.", "priority": 0}
    assert [c["priority"] for c in table["columnDefinitions"]] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    (row,) = table["rows"]
    assert list(row) == ["cells", "object"]
    assert row["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": obj["metadata"]}
    assert tables.to_table("", "pods", [obj], now=NOW, include_object="Object")["rows"][0]["object"] is obj
    assert tables.to_table("", "pods", [obj], now=NOW, include_object="None")["rows"][0]["object"] is None
    v1beta1 = tables.to_table("", "pods", [obj], now=NOW, api_version="meta.k8s.io/v1beta1")
    assert v1beta1["apiVersion"] == v1beta1["rows"][0]["object"]["apiVersion"] == "meta.k8s.io/v1beta1"


def test_single_object_and_watch_event_tables():
    obj = {"metadata": meta("cfg", resourceVersion="77"), "data": {}}
    first = tables.to_table("", "configmaps", [obj], now=NOW)
    assert first["metadata"] == {"resourceVersion": "77"}
    assert len(first["columnDefinitions"]) == 3
    later = tables.to_table("", "configmaps", [obj], now=NOW, no_headers=True)
    assert later["columnDefinitions"] is None and later["rows"][0]["cells"] == ["cfg", 0, "5d"]


def test_empty_list_and_continue_token():
    table = tables.to_table("apps", "deployments", [], now=NOW,
                            list_meta={"resourceVersion": "5", "continue": "tok", "remainingItemCount": 0})
    assert table["metadata"] == {"resourceVersion": "5", "continue": "tok", "remainingItemCount": 0}
    assert table["rows"] == []


def test_bad_include_object_is_bad_request():
    with pytest.raises(errors.APIError) as err:
        tables.to_table("", "pods", [], now=NOW, include_object="Everything")
    assert (err.value.code, err.value.reason) == (400, "BadRequest")
    assert err.value.message == ('Unable to convert to Table as requested: includeObject: Unsupported value: '
                                 '"Everything": supported values: "Metadata", "None", "Object"')


@pytest.mark.parametrize("group, resource", [
    ("rbac.authorization.k8s.io", "roles"), ("rbac.authorization.k8s.io", "clusterroles"), ("", "limitranges"),
    ("apiextensions.k8s.io", "customresourcedefinitions"), ("storage.k8s.io", "csistoragecapacities"),
])
def test_default_table_name_and_created_at(group, resource):
    obj = {"metadata": {"name": "thing", "creationTimestamp": "2024-04-30T10:20:30Z"}}
    table = tables.to_table(group, resource, [obj], now=NOW)
    assert [(c["name"], c["type"], c["format"]) for c in table["columnDefinitions"]] == [
        ("Name", "string", "name"), ("Created At", "date", "")]
    assert table["rows"][0]["cells"] == ["thing", "2024-04-30T10:20:30Z"]
    assert tables.row(group, resource, {"metadata": {"name": "x"}}, NOW) == ["x", "0001-01-01T00:00:00Z"]


def test_partial_object_metadata_list():
    objs = [{"metadata": meta("a")}, {"metadata": meta("b")}]
    result = tables.partial_object_metadata_list(objs, {"resourceVersion": "9", "continue": ""})
    assert result["kind"] == "PartialObjectMetadataList" and result["metadata"] == {"resourceVersion": "9"}
    assert [i["metadata"]["name"] for i in result["items"]] == ["a", "b"]
    assert result["items"][0]["kind"] == "PartialObjectMetadata"


# --- custom resources ----------------------------------------------------------------------

WIDGET = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": meta("w1", 2 * H, labels={
    "app.kubernetes.io/name": "widget"}),
    "spec": {"replicas": 3, "size": 2.5, "ports": [{"name": "http", "port": 80}, {"name": "grpc", "port": 9090}],
             "enabled": True, "owner": None, "selector": {"matchLabels": {"app": "w"}}},
    "status": {"conditions": [{"type": "Synced", "status": "True"},
                              {"type": "Ready", "status": "False", "reason": "Pending"}],
               "lastSync": ago(90)}}

COLUMNS = [
    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
     "description": "Readiness"},
    {"name": "Reason", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].reason", "priority": 1},
    {"name": "Port", "type": "integer", "jsonPath": ".spec.ports[-1].port"},
    {"name": "Ports", "type": "string", "jsonPath": ".spec.ports[*].name"},
    {"name": "App", "type": "string", "jsonPath": ".metadata.labels.app\\.kubernetes\\.io/name"},
    {"name": "Size", "type": "number", "jsonPath": ".spec.size"},
    {"name": "Enabled", "type": "boolean", "jsonPath": ".spec.enabled"},
    {"name": "Selector", "type": "string", "jsonPath": ".spec.selector"},
    {"name": "Owner", "type": "string", "jsonPath": ".spec.owner"},
    {"name": "Missing", "type": "string", "jsonPath": ".spec.nothing.here"},
    {"name": "Last Sync", "type": "date", "jsonPath": ".status.lastSync"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def test_custom_resource_table_with_printer_columns():
    table = tables.custom_resource_table(COLUMNS, [WIDGET], now=NOW, list_meta={"resourceVersion": "3"})
    defs = table["columnDefinitions"]
    assert defs[0]["name"] == "Name" and defs[0]["format"] == "name"
    assert defs[2] == {"name": "Ready", "type": "string", "format": "", "description": "Readiness", "priority": 0}
    assert defs[3]["description"] == (
        "Custom resource definition column (in JSONPath format): .status.conditions[?(@.type=='Ready')].reason")
    assert defs[3]["priority"] == 1
    assert table["rows"][0]["cells"] == ["w1", 3, "False", "Pending", 9090, "http", "widget", 2.5, True,
                                         '{"matchLabels":{"app":"w"}}', "<no value>", None, "90s", "120m"]


def test_custom_resource_default_columns_and_type_mismatches():
    table = tables.custom_resource_table([], [WIDGET], now=NOW)
    assert [(c["name"], c["type"]) for c in table["columnDefinitions"]] == [("Name", "string"), ("Age", "date")]
    assert table["rows"][0]["cells"] == ["w1", "120m"]  # minutes until three hours
    odd = [{"name": "A", "type": "integer", "jsonPath": ".spec.enabled"},      # a boolean is not an integer
           {"name": "B", "type": "boolean", "jsonPath": ".spec.replicas"},
           {"name": "C", "type": "string", "jsonPath": ".spec.replicas[0]"},   # indexing a number: error
           {"name": "D", "type": "date", "jsonPath": ".metadata.name"},
           {"name": "E", "type": "string", "jsonPath": ".spec.ports[5].name"},  # out of range: error
           {"name": "F", "type": "string", "jsonPath": ".spec[bad"},            # unparsable: dropped, with the rest
           {"name": "G", "type": "string", "jsonPath": ".spec.replicas"}]
    table = tables.custom_resource_table(odd, [WIDGET], now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "A", "B", "C", "D", "E"]
    assert table["rows"][0]["cells"] == ["w1", None, None, None, "<invalid>", None]


@pytest.mark.parametrize("path, want", [
    (".spec.replicas", [3]),
    ("{.spec.ports[0].name}", ["http"]),
    (".spec.ports[*].port", [80, 9090]),
    (".spec.ports[0:1].name", ["http"]),
    (".spec.ports[?(@.port > 100)].name", ["grpc"]),
    (".spec.ports[?(@.name)].port", [80, 9090]),
    ("$.metadata.labels['app.kubernetes.io/name']", ["widget"]),
    ("..port", [80, 9090]),
    (".spec.absent", []),
])
def test_jsonpath_subset(path, want):
    assert jsonpath.find(jsonpath.parse(path), WIDGET) == want


def test_jsonpath_comparing_unlike_types_is_an_error():
    with pytest.raises(jsonpath.JSONPathError):
        jsonpath.find(jsonpath.parse('.spec.ports[?(@.port=="80")].name'), WIDGET)


@pytest.mark.parametrize("value, want", [(3.0, "3"), (2.5, "2.5"), (1e21, "1e+21"), (1e-05, "1e-05"),
                                         (123456789012345680.0, "123456789012345680")])
def test_go_float_printing(value, want):
    assert jsonpath.go_float(value) == want
