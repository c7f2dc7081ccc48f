"""Built-in types as kube-apiserver treats them, through kubectl and the Python client: Secret
`stringData`, Table rows kubectl sorts, template hashes across `rollout undo`, and the input
upstream's validation refuses."""

from __future__ import annotations

import base64
import json


def _get(kubectl, *args: str) -> dict:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


# --- Secret stringData (issue 12, item 9) -----------------------------------------------------

def test_secret_string_data_is_merged_into_data(kubectl, namespace):
    kubectl("create", "-n", namespace, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "data": {"a": base64.b64encode(b"old").decode(), "b": base64.b64encode(b"kept").decode()},
        "stringData": {"a": "new", "c": "see"}}))
    secret = _get(kubectl, "secret", "s", "-n", namespace)
    assert "stringData" not in secret
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == {"a": "new", "b": "kept", "c": "see"}
    # updates too: a merge patch and an apply each go through the same conversion
    kubectl("patch", "secret", "s", "-n", namespace, "-p", '{"stringData": {"b": "patched"}}')
    kubectl("apply", "--server-side", "--force-conflicts", "-n", namespace, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"d": "applied"}}))
    secret = _get(kubectl, "secret", "s", "-n", namespace)
    assert "stringData" not in secret
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded["b"] == "patched" and decoded["d"] == "applied"


def test_secret_string_data_keys_are_validated_as_data(kubectl, namespace):
    res = kubectl("create", "-n", namespace, "-f", "-", check=False, input=json.dumps({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bad"}, "stringData": {"bad key": "x"}}))
    assert res.returncode != 0
    assert 'The Secret "bad" is invalid: data[bad key]: Invalid value: "bad key": a valid config key' in res.stderr
    big = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "big"}, "stringData": {"k": "x" * (1024 * 1024 + 1)}}
    res = kubectl("create", "-n", namespace, "-f", "-", check=False, input=json.dumps(big))
    assert 'The Secret "big" is invalid: data: Too long: ' in res.stderr


# --- Tables (item 11) -------------------------------------------------------------------------

def test_sort_by_prints_names(kubectl, namespace):
    for name in ("cm-b", "cm-c", "cm-a"):
        kubectl("create", "configmap", name, "-n", namespace)
    out = kubectl("get", "configmaps", "-n", namespace, "--sort-by=.metadata.name", "--no-headers").stdout
    names = [line.split()[0] for line in out.splitlines()]
    assert [n for n in names if n.startswith("cm-")] == ["cm-a", "cm-b", "cm-c"]


def test_table_rows_embed_typed_objects(api, namespace, core):
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "one"}})
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io"
    for query, kind, version in (("includeObject=Object", "ConfigMap", "v1"),
                                 ("", "PartialObjectMetadata", "meta.k8s.io/v1")):
        resp = api.rest_client.pool_manager.request(
            "GET", f"{api.configuration.host}/api/v1/namespaces/{namespace}/configmaps?{query}",
            headers={"Accept": accept})
        row = next(r for r in json.loads(resp.data)["rows"] if r["cells"][0] == "one")
        assert (row["object"]["kind"], row["object"]["apiVersion"]) == (kind, version)


# --- template hashes across kubectl round trips (item 10) --------------------------------------

def _replica_sets(kubectl, namespace: str, app: str) -> list[tuple[str, str, str | None, int]]:
    items = _get(kubectl, "rs", "-n", namespace, "-l", f"app={app}")["items"]
    return sorted((rs["metadata"]["name"], rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
                   rs["metadata"]["annotations"].get("deployment.kubernetes.io/revision-history"),
                   rs["spec"]["replicas"]) for rs in items)


def test_rollout_undo_reuses_the_replica_set(kubectl, namespace):
    """A template sent without `resources` comes back from `rollout undo` with `resources: {}`
    (client-go serializes the non-pointer struct): still the same template, the same set."""
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}))
    kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    first = _replica_sets(kubectl, namespace, "web")
    assert len(first) == 1
    original = first[0][0]
    kubectl("set", "resources", "deploy/web", "-n", namespace, "--limits=cpu=200m")
    kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    kubectl("rollout", "undo", "deploy/web", "-n", namespace)
    kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    sets = _replica_sets(kubectl, namespace, "web")
    assert len(sets) == 2, sets
    back = next(s for s in sets if s[0] == original)
    assert back[1:] == ("3", "1", 1)
    kubectl("rollout", "undo", "deploy/web", "-n", namespace)  # and forth again: revision 2 becomes 4
    kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    sets = _replica_sets(kubectl, namespace, "web")
    assert len(sets) == 2 and next(s for s in sets if s[0] != original)[1:] == ("4", "2", 1)
