"""Admission webhooks end to end: a real `lks up` (with a Process pool) calls plain Python HTTPS
webhooks (tests/webhookserver.py) on loopback, driven by kubectl and the `kubernetes` client:
a denial worded as upstream, a label added by JSONPatch, failurePolicy Fail/Ignore with an
unreachable and with a hanging webhook, namespace and object selectors, DELETE admission,
`kubectl apply --dry-run=server`, and a `clientConfig.service` webhook served by a pod of the
Process pool."""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from pathlib import Path

import pytest
import webhookserver as ws
from kubernetes import client as k8s_client
from kubernetes.client.rest import ApiException

from lks import pki

from .conftest import LKS, free_port, wait_until, with_process_pool

POOL = "hooks"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = with_process_pool(tmp_path_factory.mktemp("lks-webhooks-home"), POOL)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def api(server: LKS):
    c = server.api_client()
    yield c
    c.close()


@pytest.fixture(scope="module")
def hook_server():
    with ws.WebhookServer() as s:
        yield s


@pytest.fixture
def namespace(server: LKS, request) -> str:
    """A namespace of the test's own, labelled so only its webhooks' namespaceSelector matches."""
    name = "wh-" + request.node.name.lower().replace("_", "-")[5:35].strip("-") + "-" + os.urandom(2).hex()
    server.kubectl("create", "namespace", name)
    server.kubectl("label", "namespace", name, f"webhook-test={name}")
    return name


@pytest.fixture
def configure(server: LKS):
    """Create a webhook configuration with kubectl (deleted after the test)."""
    made: list[tuple[str, str]] = []

    def make(kind: str, name: str, hooks: list[dict]) -> None:
        server.kubectl("apply", "-f", "-", input=json.dumps(ws.configuration(kind, name, hooks)))
        made.append((kind.lower(), name))

    yield make
    for kind, name in made:
        server.kubectl("delete", kind, name, "--ignore-not-found")


def _hook(hook_server: ws.WebhookServer, name: str, path: str, namespace: str, operations=("CREATE",),
          resources=("configmaps",), **extra) -> dict:
    return {"name": name, "clientConfig": {"url": hook_server.url(path), "caBundle": hook_server.ca_bundle},
            "rules": [ws.rule(list(operations), list(resources))],
            "namespaceSelector": {"matchLabels": {"webhook-test": namespace}}, **extra}


def _cm(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}


def test_kubectl_sees_the_denial_as_upstream_words_it(server, hook_server, configure, namespace):
    hook_server.paths["/deny"] = lambda r: (ws.deny(r, "names starting with bad are refused")
                                            if r["name"].startswith("bad") else ws.allow(r))
    configure("ValidatingWebhookConfiguration", f"deny-{namespace}",
              [_hook(hook_server, "deny.example.com", "/deny", namespace)])
    res = server.kubectl("create", "configmap", "bad-one", "-n", namespace, "--from-literal=a=b", check=False)
    assert res.returncode == 1
    assert res.stderr.strip() == ('error: failed to create configmap: admission webhook "deny.example.com" denied '
                                  "the request: names starting with bad are refused")
    server.kubectl("create", "configmap", "good-one", "-n", namespace, "--from-literal=a=b")
    review = hook_server.reviews["/deny"][-1]["request"]
    assert review["userInfo"]["username"] == "masterclient"
    assert review["object"]["metadata"]["name"] == "good-one"


def test_python_client_gets_the_label_a_mutating_webhook_adds(server, api, hook_server, configure, namespace):
    def stamp(r):
        if r["object"]["metadata"].get("labels"):
            op = {"op": "add", "path": "/metadata/labels/stamped", "value": "by-webhook"}
        else:
            op = {"op": "add", "path": "/metadata/labels", "value": {"stamped": "by-webhook"}}
        return ws.json_patch(r, [op], warnings=["stamped it"])

    hook_server.paths["/mutate"] = stamp
    configure("MutatingWebhookConfiguration", f"stamp-{namespace}",
              [_hook(hook_server, "stamp.example.com", "/mutate", namespace)])
    core = k8s_client.CoreV1Api(api)
    created = core.create_namespaced_config_map(namespace, _cm("stamped", app="x"))
    assert created.metadata.labels == {"app": "x", "stamped": "by-webhook"}
    assert core.read_namespaced_config_map("stamped", namespace).metadata.labels["stamped"] == "by-webhook"
    res = server.kubectl("create", "configmap", "warned", "-n", namespace)
    assert "Warning: stamped it" in res.stderr


def test_failure_policy_with_unreachable_and_hanging_webhooks(server, api, hook_server, configure, namespace):
    hook_server.paths["/hang"] = lambda r: "hang"
    dead = f"https://127.0.0.1:{free_port()}/dead"
    configure("ValidatingWebhookConfiguration", f"fail-{namespace}", [
        {**_hook(hook_server, "dead.example.com", "/dead", namespace), "clientConfig": {"url": dead},
         "objectSelector": {"matchLabels": {"case": "dead"}}},
        {**_hook(hook_server, "ignored.example.com", "/dead", namespace), "clientConfig": {"url": dead},
         "failurePolicy": "Ignore"},
        {**_hook(hook_server, "hang.example.com", "/hang", namespace), "timeoutSeconds": 1,
         "objectSelector": {"matchLabels": {"case": "hang"}}},
    ])
    core = k8s_client.CoreV1Api(api)
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(namespace, _cm("a", case="dead"))
    assert err.value.status == 500
    port = dead.split(":")[2].split("/")[0]
    assert json.loads(err.value.body)["message"] == (
        'Internal error occurred: failed calling webhook "dead.example.com": failed to call webhook: '
        f'Post "{dead}?timeout=10s": dial tcp 127.0.0.1:{port}: connect: connection refused')
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(namespace, _cm("b", case="hang"))
    assert err.value.status == 500
    assert json.loads(err.value.body)["message"].endswith(
        f'Post "{hook_server.url("/hang")}?timeout=1s": context deadline exceeded')
    core.create_namespaced_config_map(namespace, _cm("c"))  # the Ignore webhook fails open
    # the API server kept serving while the webhook hung: a read answers at once
    core.read_namespaced_config_map("c", namespace)


def test_object_selector_and_delete_admission(server, hook_server, configure, namespace):
    hook_server.paths["/guard"] = lambda r: ws.deny(r, f"{r['operation'].lower()} of a guarded object")
    server.kubectl("create", "configmap", "guarded", "-n", namespace)
    server.kubectl("label", "configmap", "guarded", "-n", namespace, "guard=yes")
    server.kubectl("create", "configmap", "free", "-n", namespace)
    configure("ValidatingWebhookConfiguration", f"guard-{namespace}", [
        _hook(hook_server, "guard.example.com", "/guard", namespace, operations=("DELETE",),
              objectSelector={"matchLabels": {"guard": "yes"}})])
    res = server.kubectl("delete", "configmap", "guarded", "-n", namespace, check=False)
    assert res.returncode == 1
    assert ('admission webhook "guard.example.com" denied the request: delete of a guarded object'
            in res.stderr)
    review = hook_server.reviews["/guard"][-1]["request"]
    assert review["operation"] == "DELETE" and review["oldObject"]["metadata"]["name"] == "guarded"
    server.kubectl("delete", "configmap", "free", "-n", namespace)  # no guard label: not sent


def test_server_side_dry_run_reaches_webhooks_without_side_effects(server, hook_server, configure, namespace):
    hook_server.paths["/seen"] = lambda r: ws.allow(r)
    configure("ValidatingWebhookConfiguration", f"dry-{namespace}",
              [_hook(hook_server, "dry.example.com", "/seen", namespace)])
    server.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(_cm("dry")))
    review = hook_server.reviews["/seen"][-1]["request"]
    assert review["dryRun"] is True and review["name"] == "dry"
    res = server.kubectl("get", "configmap", "dry", "-n", namespace, check=False)
    assert "NotFound" in res.stderr


def test_service_webhook_served_by_a_process_pool_pod(server, api, configure, namespace, tmp_path: Path):
    ca = pki.create_ca("webhook-service-ca")
    serving = pki.create_serving_cert(ca, [f"hook.{namespace}.svc"])
    (tmp_path / "tls.crt").write_bytes(serving.cert_pem)
    (tmp_path / "tls.key").write_bytes(serving.key_pem)
    port = free_port()
    script = str(Path(ws.__file__))
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hook", "labels": {"app": "hook"}},
           "spec": {"nodeSelector": {"kubernetes.azure.com/agentpool": POOL}, "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "hook", "image": "python",
                                    "command": [sys.executable, script, str(tmp_path / "tls.crt"),
                                                str(tmp_path / "tls.key"), str(port)],
                                    "ports": [{"containerPort": port}]}]}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hook"},
               "spec": {"selector": {"app": "hook"}, "ports": [{"port": 443, "targetPort": port}]}}
    server.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                          "items": [pod, service]}))
    core = k8s_client.CoreV1Api(api)

    def endpoint_ready():
        subsets = core.read_namespaced_endpoints("hook", namespace).subsets or []
        return any(s.addresses for s in subsets)

    wait_until(endpoint_ready, timeout=60, what="the webhook pod behind its Service")
    configure("ValidatingWebhookConfiguration", f"svc-{namespace}", [{
        "name": "svc.example.com", "rules": [ws.rule(["CREATE"], ["configmaps"])],
        "namespaceSelector": {"matchLabels": {"webhook-test": namespace}},
        "clientConfig": {"service": {"namespace": namespace, "name": "hook", "path": "/validate"},
                         "caBundle": base64.b64encode(ca.cert_pem).decode()}}])

    def refused():  # the pod's server may still be binding its port
        try:
            core.create_namespaced_config_map(namespace, _cm(f"deny-{time.monotonic_ns()}"))
        except ApiException as err:
            return json.loads(err.body)["message"] if err.status == 403 else None
        return None

    message = wait_until(refused, timeout=30, what="a denial from the pod")
    assert message == f'admission webhook "svc.example.com" denied the request: refused by the pod on port {port}'
    core.create_namespaced_config_map(namespace, _cm("allowed"))
