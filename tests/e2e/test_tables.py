"""Server-side tables: kubectl get prints upstream's columns, also for watches and CRDs."""

from __future__ import annotations

import json


def _header(out: str) -> list[str]:
    return out.splitlines()[0].split()


def test_get_prints_upstream_columns(kubectl, namespace):
    kubectl("create", "deployment", "web", "--image=nginx", "--replicas=2", "-n", namespace)
    kubectl("run", "solo", "--image=busybox", "--restart=Never", "-n", namespace)
    kubectl("create", "service", "clusterip", "svc", "--tcp=80:8080", "-n", namespace)
    assert _header(kubectl("get", "deploy", "-n", namespace).stdout) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    pods = kubectl("get", "pods", "-n", namespace).stdout
    assert _header(pods) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    solo = next(line.split() for line in pods.splitlines()[1:] if line.startswith("solo "))
    assert solo[1] in ("0/1", "1/1") and solo[2] in ("Pending", "ContainerCreating", "Running")
    wide = kubectl("get", "pods", "-o", "wide", "-n", namespace).stdout
    assert _header(wide) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE",
                             "READINESS", "GATES"]
    assert _header(kubectl("get", "ns").stdout) == ["NAME", "STATUS", "AGE"]
    svc = kubectl("get", "svc", "svc", "-n", namespace).stdout
    assert _header(svc) == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]


def test_table_protocol(api, namespace):
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    resp = api.rest_client.pool_manager.request(
        "GET", api.configuration.host + f"/api/v1/namespaces/{namespace}/configmaps?includeObject=Object",
        headers={"Accept": accept})
    table = json.loads(resp.data)
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Data", "Age"]
    meta = api.rest_client.pool_manager.request(
        "GET", api.configuration.host + f"/api/v1/namespaces/{namespace}",
        headers={"Accept": "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"})
    assert json.loads(meta.data)["kind"] == "PartialObjectMetadata"


def test_get_watch_prints_rows(lks, kubectl, namespace):
    kubectl("create", "configmap", "first", "-n", namespace)
    proc = lks.kubectl_popen("get", "cm", "-n", namespace, "-w", "--request-timeout=20s",
                             "--field-selector", "metadata.name!=kube-root-ca.crt")
    try:
        assert proc.stdout.readline().split() == ["NAME", "DATA", "AGE"]
        assert proc.stdout.readline().split()[0] == "first"
        kubectl("create", "configmap", "second", "--from-literal=a=b", "-n", namespace)
        assert proc.stdout.readline().split()[:2] == ["second", "1"]
    finally:
        proc.terminate()
        proc.wait(10)
