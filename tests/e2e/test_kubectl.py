"""kubectl against a hosted cluster: discovery, CRUD, selectors, watch, errors."""

from __future__ import annotations

import json
import time

CM = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  labels: {{app: {app}, tier: {tier}}}
data: {{key: value}}
"""


def test_version_and_namespaces(kubectl):
    out = kubectl("version", "-o", "json").stdout
    server = json.loads(out)["serverVersion"]
    assert server["major"] == "1" and server["minor"] == "36"
    names = kubectl("get", "ns", "-o", "name").stdout.split()
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert f"namespace/{ns}" in names


def test_api_resources_lists_builtin_types(kubectl):
    out = kubectl("api-resources", "--no-headers").stdout
    rows: dict[str, list[str]] = {}
    for line in out.splitlines():  # the core group's row first (metrics.k8s.io has `pods` too)
        rows.setdefault(line.split()[0], line.split())
    assert rows["pods"][1] == "po" and "Pod" in rows["pods"]
    assert "deployments" in rows and "apps/v1" in rows["deployments"]
    assert "customresourcedefinitions" in rows
    assert "namespaces" in rows and "false" in rows["namespaces"]


def test_create_get_delete(kubectl, namespace):
    kubectl("create", "-n", namespace, "--validate=false", "-f", "-", input=CM.format(name="one", app="a", tier="x"))
    got = json.loads(kubectl("get", "cm", "one", "-n", namespace, "-o", "json").stdout)
    assert got["data"] == {"key": "value"}
    assert got["metadata"]["uid"] and got["metadata"]["resourceVersion"]
    assert got["metadata"]["creationTimestamp"].endswith("Z")
    res = kubectl("create", "-n", namespace, "--validate=false", "-f", "-", check=False,
                  input=CM.format(name="one", app="a", tier="x"))
    assert res.returncode != 0 and 'configmaps "one" already exists' in res.stderr
    kubectl("delete", "cm", "one", "-n", namespace)
    res = kubectl("get", "cm", "one", "-n", namespace, check=False)
    assert res.returncode != 0 and 'configmaps "one" not found' in res.stderr


def test_label_and_field_selectors(kubectl, namespace):
    for name, app, tier in (("a1", "web", "front"), ("a2", "web", "back"), ("a3", "db", "back")):
        kubectl("create", "-n", namespace, "--validate=false", "-f", "-", input=CM.format(name=name, app=app, tier=tier))

    def names(*sel: str) -> list[str]:
        out = kubectl("get", "cm", "-n", namespace, "-o", "name", *sel).stdout.split()
        return sorted(n.split("/")[1] for n in out if "kube-root-ca" not in n)

    assert names("-l", "app=web") == ["a1", "a2"]
    assert names("-l", "app!=web") == ["a3"]
    assert names("-l", "app in (web,db),tier notin (front)") == ["a2", "a3"]
    assert names("-l", "tier") == ["a1", "a2", "a3"]
    assert names("-l", "!tier") == []
    assert names("--field-selector", "metadata.name=a2") == ["a2"]
    assert names("--field-selector", "metadata.name!=a2", "-l", "app") == ["a1", "a3"]
    res = kubectl("get", "cm", "-n", namespace, "--field-selector", "spec.bogus=1", check=False)
    assert res.returncode != 0 and "field label not supported: spec.bogus" in res.stderr


def test_invalid_name_is_422(kubectl, namespace):
    res = kubectl("create", "-n", namespace, "--validate=false", "-f", "-", check=False,
                  input=CM.format(name="Bad_Name", app="a", tier="b"))
    assert res.returncode != 0
    assert 'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"' in res.stderr


def test_namespace_must_exist(kubectl):
    res = kubectl("create", "-n", "no-such-ns", "--validate=false", "-f", "-", check=False,
                  input=CM.format(name="x", app="a", tier="b"))
    assert res.returncode != 0 and 'namespaces "no-such-ns" not found' in res.stderr


def test_label_patch_and_watch(lks, kubectl, namespace):
    kubectl("create", "-n", namespace, "--validate=false", "-f", "-", input=CM.format(name="w", app="a", tier="b"))
    proc = lks.kubectl_popen("get", "cm", "w", "-n", namespace, "-w", "-o",
                             'jsonpath={.metadata.labels.tier}{"\\n"}', "--request-timeout=20s")
    try:
        assert proc.stdout.readline().strip() == "b"
        kubectl("label", "cm", "w", "-n", namespace, "tier=c", "--overwrite")
        assert proc.stdout.readline().strip() == "c"
        kubectl("patch", "cm", "w", "-n", namespace, "--type=json",
                "-p", '[{"op":"replace","path":"/metadata/labels/tier","value":"d"}]')
        assert proc.stdout.readline().strip() == "d"
    finally:
        proc.terminate()
        proc.wait(10)


def test_delete_protected_namespace_is_forbidden(kubectl):
    res = kubectl("delete", "ns", "default", "--wait=false", check=False)
    assert res.returncode != 0 and "this namespace may not be deleted" in res.stderr


def test_namespace_delete_removes_contents(kubectl, core):
    kubectl("create", "ns", "gone")
    kubectl("create", "-n", "gone", "--validate=false", "-f", "-", input=CM.format(name="x", app="a", tier="b"))
    kubectl("delete", "ns", "gone", "--timeout=30s")
    res = kubectl("get", "ns", "gone", check=False)
    assert 'namespaces "gone" not found' in res.stderr
    kubectl("create", "ns", "gone")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if not [c for c in core.list_namespaced_config_map("gone").items if c.metadata.name == "x"]:
            break
    assert not [c for c in core.list_namespaced_config_map("gone").items if c.metadata.name == "x"]
