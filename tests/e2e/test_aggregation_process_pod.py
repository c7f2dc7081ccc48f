"""An extension API server running as a pod of a Process pool, behind a Service with a
selector: lks reaches it through the endpoint controller's EndpointSlice (the pod's address and
targetPort) and the node agent's port-forward, the APIService becomes Available and kubectl
lists its resources and reads through it."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import extensionserver as ext
import pytest

from lks import pki

from .conftest import LKS, free_port, with_process_pool

POOL = "extapi"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = with_process_pool(tmp_path_factory.mktemp("lks-aggregation-pod-home"), POOL)
    yield s
    s.stop()


def test_extension_server_in_a_process_pod(server: LKS, tmp_path: Path) -> None:
    ca = pki.create_ca("extension-pod-ca")
    serving = pki.create_serving_cert(ca, ["api.wardle.svc"])
    (tmp_path / "tls.crt").write_bytes(serving.cert_pem)
    (tmp_path / "tls.key").write_bytes(serving.key_pem)
    port = free_port()
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "wardle-api", "namespace": "wardle",
                                                          "labels": {"app": "wardle-api"}},
           "spec": {"nodeSelector": {"kubernetes.azure.com/agentpool": POOL}, "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "api", "image": "python",
                                    "command": [sys.executable, str(Path(ext.__file__)), str(tmp_path / "tls.crt"),
                                                str(tmp_path / "tls.key"), str(port)],
                                    "ports": [{"name": "https", "containerPort": port}],
                                    "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1}}]}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "wardle"},
               "spec": {"selector": {"app": "wardle-api"}, "ports": [{"name": "https", "port": 443, "targetPort": port}]}}
    apiservice = ext.apiservice(service={"namespace": "wardle", "name": "api", "port": 443},
                                ca_bundle=base64.b64encode(ca.cert_pem).decode())
    objs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "wardle"}}, pod, service, apiservice]
    server.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}))
    server.kubectl("wait", "--for=condition=Available", f"apiservice/{ext.VERSION}.{ext.GROUP}", "--timeout=90s")
    resources = server.kubectl("api-resources", f"--api-group={ext.GROUP}", "--no-headers").stdout.split()
    assert resources[:2] == ["flunders", f"{ext.GROUP}/{ext.VERSION}"]
    listed = json.loads(server.kubectl("get", "flunders", "-n", "default", "-o", "json").stdout)
    seen = json.loads(listed["items"][0]["metadata"]["annotations"]["seen"])
    me = json.loads(server.kubectl("auth", "whoami", "-o", "json").stdout)["status"]["userInfo"]
    assert seen["user"] == [me["username"]]
