"""The hosted API server's `/metrics` (issue 22) on the session's `lks up`, read with
`kubectl get --raw /metrics` and parsed with prometheus_client's own parser: upstream's names,
types, labels and buckets, counts that grow as kubectl is used, OpenMetrics when the Accept
header asks for it, and the nonResourceURL authorization (system:monitoring) in front of it. Also
the management endpoint's own `/metrics` (raw HTTP with config.json's token) and
`azureMonitorProfile` through the lks CLI and the Azure SDK."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
import uuid

from azure.mgmt.containerservice import ContainerServiceClient
from prometheus_client.parser import text_string_to_metric_families

from .conftest import StaticToken, lks_cli, lks_json, raw, wait_until

UPSTREAM_REQUEST_BUCKETS = ["0.005", "0.025", "0.05", "0.1", "0.2", "0.4", "0.6", "0.8", "1.0", "1.25", "1.5",
                            "2.0", "3.0", "4.0", "5.0", "6.0", "8.0", "10.0", "15.0", "20.0", "30.0", "45.0", "60.0",
                            "+Inf"]


def _scrape(kubectl) -> dict:
    text = kubectl("get", "--raw", "/metrics").stdout
    return {f.name: f for f in text_string_to_metric_families(text)}


def _value(family, name: str, **labels: str) -> float:
    return sum(s.value for s in family.samples if s.name == name and all(s.labels.get(k) == v
                                                                          for k, v in labels.items()))


def test_kubectl_reads_upstream_metrics_whose_counts_grow(kubectl, namespace):
    kubectl("create", "configmap", "one", "-n", namespace)
    before = _scrape(kubectl)
    lists = dict(verb="LIST", group="", version="v1", resource="configmaps", scope="namespace",
                 component="apiserver", code="200", dry_run="", subresource="")
    was = _value(before["apiserver_request"], "apiserver_request_total", **lists)
    assert was >= 0
    for _ in range(3):
        kubectl("get", "configmaps", "-n", namespace)
    after = _scrape(kubectl)
    total = after["apiserver_request"]
    assert total.type == "counter"
    assert _value(total, "apiserver_request_total", **lists) == was + 3
    assert _value(total, "apiserver_request_total", verb="POST", resource="configmaps", scope="resource",
                  code="201") >= 1
    # the scrape before this one counted as a non-resource GET of /metrics
    assert _value(total, "apiserver_request_total", verb="GET", subresource="/metrics", code="200") >= 1

    durations = after["apiserver_request_duration_seconds"]
    assert durations.type == "histogram"
    buckets = [s.labels["le"] for s in durations.samples if s.name.endswith("_bucket")
               and s.labels["verb"] == "LIST" and s.labels["resource"] == "configmaps"
               and s.labels["scope"] == "namespace"]
    assert buckets == UPSTREAM_REQUEST_BUCKETS
    assert {"verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component"} <= set(
        durations.samples[0].labels)

    inflight = after["apiserver_current_inflight_requests"]
    assert inflight.type == "gauge"
    assert {s.labels["request_kind"] for s in inflight.samples} == {"readOnly", "mutating"}
    # the scrape itself is a read in flight
    assert _value(inflight, "apiserver_current_inflight_requests", request_kind="readOnly") >= 1

    objects = after["apiserver_storage_objects"]
    assert _value(objects, "apiserver_storage_objects", resource="namespaces") >= 4
    assert _value(objects, "apiserver_storage_objects", resource="configmaps") >= 1

    etcd = after["etcd_request_duration_seconds"]
    assert etcd.type == "histogram"
    assert _value(etcd, "etcd_request_duration_seconds_count", operation="create", type="configmaps") >= 1

    adds = after["workqueue_adds"]
    names = {s.labels["name"] for s in adds.samples}
    assert names and all(s.value >= 0 for s in adds.samples)
    for family in ("workqueue_depth", "workqueue_queue_duration_seconds", "workqueue_work_duration_seconds",
                   "workqueue_retries"):
        assert {s.labels["name"] for s in after[family].samples} == names, family

    attempts = after["scheduler_schedule_attempts"]
    assert {s.labels["profile"] for s in attempts.samples} == {"default-scheduler"}
    assert {s.labels["result"] for s in attempts.samples} == {"scheduled", "unschedulable", "error"}
    assert {s.labels["queue"] for s in after["scheduler_pending_pods"].samples} == {
        "active", "backoff", "unschedulable", "gated"}
    assert after["scheduler_scheduling_attempt_duration_seconds"].type == "histogram"


def test_scheduling_counts_a_bound_pod(kubectl, namespace):
    was = _value(_scrape(kubectl)["scheduler_schedule_attempts"], "scheduler_schedule_attempts_total",
                 result="scheduled")
    kubectl("run", "p", "--image=nginx", "-n", namespace)
    kubectl("wait", "--for=condition=PodScheduled", "pod/p", "-n", namespace, "--timeout=60s")
    now = _value(_scrape(kubectl)["scheduler_schedule_attempts"], "scheduler_schedule_attempts_total",
                 result="scheduled")
    assert now >= was + 1


def test_openmetrics_when_asked(api):
    res = raw(api, "GET", "/metrics", Accept="application/openmetrics-text; version=1.0.0; charset=utf-8")
    assert res.status == 200
    assert res.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    body = res.data.decode()
    assert body.rstrip().endswith("# EOF")
    assert "# TYPE apiserver_request counter" in body
    plain = raw(api, "GET", "/metrics")
    assert plain.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"


def test_metrics_need_the_non_resource_url(kubectl):
    res = kubectl("get", "--raw", "/metrics", "--as", "jane", check=False)
    assert res.returncode == 1
    assert res.stderr.strip() == 'Error from server (Forbidden): forbidden: User "jane" cannot get path "/metrics"'
    # upstream's system:monitoring ClusterRole, bound to the group of the same name
    res = kubectl("get", "--raw", "/metrics", "--as", "prometheus", "--as-group", "system:monitoring")
    assert "apiserver_request_total" in res.stdout


# -- the management endpoint's own /metrics, and azureMonitorProfile -------------------------------


def _arm_metrics(lks, token: str | None = None, accept: str | None = None):
    config = json.loads((lks.home / "config.json").read_text())
    headers = {"Authorization": f"Bearer {token or config['token']}"} if token != "" else {}
    if accept:
        headers["Accept"] = accept
    req = urllib.request.Request(f"{config['endpoint']}/metrics", headers=headers)
    ctx = ssl.create_default_context(cafile=config["ca_file"])
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


def test_management_endpoint_metrics(lks):
    status, ctype, text = _arm_metrics(lks)
    assert status == 200 and ctype.startswith("text/plain")
    before = {f.name: f for f in text_string_to_metric_families(text)}
    shows = dict(method="GET", code="200", resource_type="Microsoft.ContainerService/managedClusters")
    was = _value(before["lks_arm_requests"], "lks_arm_requests_total", **shows)
    lks_json(lks, "aks", "show", "-g", "demo", "-n", "demo")
    lks_json(lks, "aks", "show", "-g", "demo", "-n", "demo")
    after = {f.name: f for f in text_string_to_metric_families(_arm_metrics(lks)[2])}
    assert _value(after["lks_arm_requests"], "lks_arm_requests_total", **shows) == was + 2
    assert after["lks_arm_requests"].type == "counter"
    assert _value(after["lks_clusters"], "lks_clusters") >= 1
    assert _value(after["lks_nodes"], "lks_nodes") >= 1
    ops = after["lks_arm_operation_duration_seconds"]
    assert ops.type == "histogram"
    assert _value(ops, "lks_arm_operation_duration_seconds_count", type="managedClusters.reconcile",
                  status="Succeeded") >= 1  # the demo cluster's creation
    _, ctype, text = _arm_metrics(lks, accept="application/openmetrics-text; version=1.0.0")
    assert ctype.startswith("application/openmetrics-text") and text.rstrip().endswith("# EOF")


def test_management_metrics_need_a_credential(lks):
    status, _, body = _arm_metrics(lks, token="")
    assert status == 401
    assert json.loads(body)["error"]["code"] == "AuthenticationFailed"
    status, _, body = _arm_metrics(lks, token="not-a-token")
    assert status == 401


def test_azure_monitor_metrics_profile(lks):
    shown = lks_json(lks, "aks", "update", "-g", "demo", "-n", "demo", "--enable-azure-monitor-metrics",
                     "--ksm-metric-labels-allow-list", "namespaces=[team],pods=[app]")
    assert shown["azureMonitorProfile"] == {"metrics": {"enabled": True, "kubeStateMetrics": {
        "metricLabelsAllowlist": "namespaces=[team],pods=[app]", "metricAnnotationsAllowList": ""}}}
    config = json.loads((lks.home / "config.json").read_text())
    sdk = ContainerServiceClient(StaticToken(config["token"]), config["subscription_id"], base_url=config["endpoint"],
                                 connection_verify=config["ca_file"]).managed_clusters.get("demo", "demo")
    assert sdk.azure_monitor_profile.metrics.enabled is True
    assert sdk.azure_monitor_profile.metrics.kube_state_metrics.metric_labels_allowlist == "namespaces=[team],pods=[app]"
    shown = lks_json(lks, "aks", "update", "-g", "demo", "-n", "demo", "--disable-azure-monitor-metrics")
    assert shown["azureMonitorProfile"] == {"metrics": {"enabled": False}}
    res = lks_cli(lks, "aks", "update", "-g", "demo", "-n", "demo", "--enable-azure-monitor-metrics",
                  "--ksm-metric-labels-allow-list", "pods=app")
    assert res.returncode != 0
    assert "metricLabelsAllowlist is invalid" in res.stderr


def _principal_token(lks) -> tuple[str, str]:
    """A new service principal with no role (`lks ad sp create-for-rbac`) and its ARM token."""
    config = json.loads((lks.home / "config.json").read_text())
    sp = lks_json(lks, "ad", "sp", "create-for-rbac", "--name", f"scraper-{uuid.uuid4().hex[:6]}")
    ctx = ssl.create_default_context(cafile=config["ca_file"])
    with urllib.request.urlopen(f"{config['endpoint']}/metadata/endpoints?api-version=2022-09-01",
                                context=ctx) as r:
        audience = json.load(r)["authentication"]["audiences"][0]
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": sp["appId"],
                                   "client_secret": sp["password"], "scope": f"{audience}/.default"}).encode()
    with urllib.request.urlopen(urllib.request.Request(
            f"{config['endpoint']}/{sp['tenant']}/oauth2/v2.0/token", data=form), context=ctx) as r:
        return sp["appId"], json.load(r)["access_token"]


def test_management_metrics_need_read_permission(lks):
    app_id, token = _principal_token(lks)
    status, _, body = _arm_metrics(lks, token=token)
    assert status == 403
    error = json.loads(body)["error"]
    assert error["code"] == "AuthorizationFailed"
    assert error["message"].startswith(f"The client '{app_id}' with object id '")
    assert "'Microsoft.ContainerService/managedClusters/read'" in error["message"]
    sub = f"/subscriptions/{json.loads((lks.home / 'config.json').read_text())['subscription_id']}"
    lks_json(lks, "role", "assignment", "create", "--assignee", app_id, "--role", "Reader", "--scope", sub)
    status, _, body = _arm_metrics(lks, token=token)
    assert status == 200 and "lks_arm_requests_total" in body


def test_a_service_account_bound_to_system_monitoring_scrapes_with_curl_style_requests(lks, kubectl, namespace):
    """The README's scrape configuration: a ServiceAccount's token, bound to the system:monitoring
    ClusterRole, as a bearer token on /clusters/<id>/metrics with the service's CA."""
    kubectl("create", "serviceaccount", "prometheus", "-n", namespace)
    token = kubectl("create", "token", "prometheus", "-n", namespace).stdout.strip()
    server = kubectl("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}").stdout
    config = json.loads((lks.home / "config.json").read_text())
    ctx = ssl.create_default_context(cafile=config["ca_file"])

    def scrape() -> tuple[int, str]:
        req = urllib.request.Request(f"{server}/metrics", headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    status, body = scrape()
    assert status == 403
    assert json.loads(body)["message"] == (f'forbidden: User "system:serviceaccount:{namespace}:prometheus" cannot '
                                           'get path "/metrics"')
    kubectl("create", "clusterrolebinding", f"{namespace}-metrics", "--clusterrole=system:monitoring",
            f"--serviceaccount={namespace}:prometheus")
    status, body = wait_until(lambda: (r := scrape())[0] == 200 and r, what="the bound account scraping")
    assert {f.name for f in text_string_to_metric_families(body)} >= {"apiserver_request", "etcd_request_duration_seconds"}
