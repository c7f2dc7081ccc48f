"""A kubelet's client certificate (`CN=system:node:<node>`, `O=system:nodes`) against a running
`lks up`, through kubectl and the `kubernetes` Python client: it lists and watches only the pods
bound to its node, named by `fieldSelector=spec.nodeName=<node>` (AuthorizeNodeWithSelectors),
and the node agents, which write as their kubelets, still take a pod from creation to deletion."""

from __future__ import annotations

import base64
import json
import os

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from kubernetes.client.rest import ApiException

from tests.e2e.conftest import wait_until


@pytest.fixture(scope="module")
def node(lks) -> str:
    return json.loads(lks.kubectl("get", "nodes", "-o", "json").stdout)["items"][0]["metadata"]["name"]


@pytest.fixture(scope="module")
def kubelet_config(lks, node):
    """A kubeconfig with the client certificate kubelet's TLS bootstrap gets: a CSR to
    `kubernetes.io/kube-apiserver-client-kubelet`, approved, signed by the cluster's CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}")])
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    name = f"node-csr-{os.urandom(4).hex()}"
    lks.kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": name},
        "spec": {"request": base64.b64encode(request.public_bytes(serialization.Encoding.PEM)).decode(),
                 "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
                 "usages": ["digital signature", "client auth"]}}))
    lks.kubectl("certificate", "approve", name)
    cert = wait_until(lambda: json.loads(lks.kubectl("get", "csr", name, "-o", "json").stdout)
                      .get("status", {}).get("certificate"), what=f"{name}'s certificate")
    config = yaml.safe_load(lks.kubeconfig.read_text())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    config["users"] = [{"name": "kubelet", "user": {"client-certificate-data": cert,
                                                    "client-key-data": base64.b64encode(key_pem).decode()}}]
    for context in config["contexts"]:
        context["context"]["user"] = "kubelet"
    path = lks.home / f"kubeconfig-{name}"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def kubelet(lks, kubelet_config):
    """kubectl with the node's certificate."""
    return lambda *args, check=False: lks.kubectl(*args, check=check, kubeconfig=kubelet_config)


@pytest.fixture(scope="module")
def kubelet_api(kubelet_config):
    api = k8s_config.new_client_from_config(str(kubelet_config))
    yield k8s_client.CoreV1Api(api)
    api.close()


@pytest.fixture
def bound_pod(core, namespace, node) -> str:
    """A pod bound to `node` (no scheduler involved), once it runs."""
    core.create_namespaced_pod(namespace, {
        "metadata": {"name": "bound"},
        "spec": {"nodeName": node, "containers": [{"name": "main", "image": "nginx"}]}})
    wait_until(lambda: core.read_namespaced_pod("bound", namespace).status.phase == "Running",
               what="the bound pod running")
    return "bound"


def _forbidden(verb: str, where: str) -> str:
    return (f'pods is forbidden: User "system:node:{{node}}" cannot {verb} resource "pods" in API group "" {where}: '
            "can only list/watch pods with spec.nodeName field selector")


def test_kubectl_as_a_kubelet_lists_only_its_pods(kubelet, node, namespace, bound_pod):
    res = kubelet("get", "pods", "-A", "--field-selector", f"spec.nodeName={node}", "-o", "json")
    assert res.returncode == 0, res.stderr
    assert (namespace, bound_pod) in {(p["metadata"]["namespace"], p["metadata"]["name"])
                                      for p in json.loads(res.stdout)["items"]}
    res = kubelet("get", "pods", "-A")
    assert res.stderr.strip() == "Error from server (Forbidden): " + _forbidden(
        "list", "at the cluster scope").format(node=node)
    res = kubelet("get", "pods", "-n", namespace, "--field-selector", "spec.nodeName=aks-elsewhere-vmss000000")
    assert res.stderr.strip() == "Error from server (Forbidden): " + _forbidden(
        "list", f'in the namespace "{namespace}"').format(node=node)
    res = kubelet("auth", "can-i", "list", "pods", "-A")
    assert res.stdout.strip() == "no - can only list/watch pods with spec.nodeName field selector"


def test_the_python_client_as_a_kubelet_watches_its_pods(kubelet_api, node, namespace, bound_pod):
    listed = kubelet_api.list_namespaced_pod(namespace, field_selector=f"spec.nodeName={node}")
    assert [p.metadata.name for p in listed.items] == [bound_pod]
    with pytest.raises(ApiException) as err:
        kubelet_api.list_namespaced_pod(namespace)
    assert err.value.status == 403
    assert json.loads(err.value.body)["message"] == _forbidden(
        "list", f'in the namespace "{namespace}"').format(node=node)
    with pytest.raises(ApiException) as err:
        next(iter(k8s_watch.Watch().stream(kubelet_api.list_pod_for_all_namespaces, timeout_seconds=5)))
    assert err.value.status == 403
    w = k8s_watch.Watch()
    for event in w.stream(kubelet_api.list_namespaced_pod, namespace, field_selector=f"spec.nodeName={node}",
                          timeout_seconds=10):
        assert (event["type"], event["object"].metadata.name) == ("ADDED", bound_pod)
        w.stop()
        break
    else:
        raise AssertionError("no event for the node's pod")


def test_the_agents_writes_pass_as_their_kubelets(kubectl, core, namespace, bound_pod):
    """Pod status, Events and the final delete are the node agent's writes, made as the node."""
    events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={bound_pod}").items
    assert {"Pulled", "Created", "Started"} <= {e.reason for e in events}
    kubectl("delete", "pod", bound_pod, "-n", namespace, "--wait=true", "--timeout=60s")
    assert not core.list_namespaced_pod(namespace).items
