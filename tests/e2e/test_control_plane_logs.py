"""Control-plane logs (issue 22) of the session's demo cluster, read with `lks aks logs`: the
kube-apiserver's klog httplog lines for kubectl's requests, kube-controller-manager's and
kube-scheduler's own lines, the audit log as kube-audit, `--since`, `--follow`, and AKS-shaped
errors for a component that does not exist."""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import threading
import urllib.error
import urllib.request

from .conftest import LKS, LKS_BIN, lks_cli, wait_until

KLOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ [\w.]+:\d+\] ")


def _logs(lks: LKS, component: str, *more: str) -> str:
    res = lks_cli(lks, "aks", "logs", "-g", "demo", "-n", "demo", "--component", component, *more)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_apiserver_request_log_in_httplog_style(lks, kubectl, namespace):
    kubectl("get", "configmaps", "-n", namespace)
    uri = f'URI="/api/v1/namespaces/{namespace}/configmaps?limit=500"'
    line = wait_until(lambda: next((ln for ln in _logs(lks, "kube-apiserver").splitlines() if uri in ln), None),
                      what="the request's line")
    assert KLOG.match(line), line
    assert " httplog.go:" in line
    assert '"HTTP" verb="LIST" ' in line
    assert re.search(r' latency="[\d.]+(µs|ms|s)" userAgent="kubectl/', line), line
    assert re.search(r' audit-ID="[0-9a-f-]{36}" srcIP="127\.0\.0\.1:\d+" resp=200$', line), line


def test_controller_manager_and_scheduler_logs(lks, kubectl, namespace):
    cm = _logs(lks, "kube-controller-manager")
    assert any(KLOG.match(ln) and '"Started controller" controller="deployment"' in ln for ln in cm.splitlines()), \
        cm[:2000]
    kubectl("run", "logged", "--image=nginx", "-n", namespace)
    bound = f'"Successfully bound pod to node" pod="{namespace}/logged" node="'
    wait_until(lambda: bound in _logs(lks, "kube-scheduler"), what="the scheduler's line")


def test_audit_log_is_kube_audit(lks, kubectl, namespace):
    kubectl("create", "configmap", "audited", "-n", namespace)

    def created():
        for ln in _logs(lks, "kube-audit").splitlines():
            event = json.loads(ln)
            ref = event.get("objectRef") or {}
            if event["verb"] == "create" and ref.get("resource") == "configmaps" and ref.get("namespace") == namespace:
                return event
        return None

    event = wait_until(created, what="the audit event")
    assert event["kind"] == "Event" and event["apiVersion"] == "audit.k8s.io/v1"


def test_since_keeps_recent_lines(lks, kubectl, namespace):
    kubectl("get", "secrets", "-n", namespace)
    uri = f'URI="/api/v1/namespaces/{namespace}/secrets?limit=500"'
    wait_until(lambda: uri in _logs(lks, "kube-apiserver", "--since", "10m"), what="a recent line kept")
    recent = _logs(lks, "kube-apiserver", "--since", "1h")
    assert all(KLOG.match(ln) for ln in recent.splitlines())


def test_follow_prints_new_lines(lks, kubectl, namespace):
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update(LKS_HOME=str(lks.home), HOME=str(lks.home / "cli-home"))
    proc = subprocess.Popen([str(LKS_BIN), "aks", "logs", "-g", "demo", "-n", "demo", "--component",
                             "kube-apiserver", "--follow"], env=env, stdout=subprocess.PIPE, text=True)
    uri = f'URI="/api/v1/namespaces/{namespace}/serviceaccounts?limit=500"'
    seen = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            if uri in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        kubectl("get", "serviceaccounts", "-n", namespace)  # before or after the follow began: printed once
        assert seen.wait(30), "the followed log never showed the request"
        assert proc.poll() is None  # still following
    finally:
        proc.kill()
        proc.wait()


def test_unknown_component(lks):
    res = lks_cli(lks, "aks", "logs", "-g", "demo", "-n", "demo", "--component", "etcd")
    assert res.returncode == 2 and "invalid choice: 'etcd'" in res.stderr
    config = json.loads((lks.home / "config.json").read_text())
    url = (f"{config['endpoint']}/subscriptions/{config['subscription_id']}/resourceGroups/demo/providers/"
           "Microsoft.ContainerService/managedClusters/demo/controlPlaneLogs/etcd?api-version=2026-08-01")
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {config['token']}"})
    try:
        urllib.request.urlopen(req, context=ssl.create_default_context(cafile=config["ca_file"]))
        raise AssertionError("expected a 400")
    except urllib.error.HTTPError as err:
        assert err.code == 400
        body = json.loads(err.read())
        assert body["error"]["code"] == "InvalidParameter" and body["error"]["target"] == "component"
