"""A control-plane upgrade leaves the containers of a Process pool running, as AKS's
`az aks upgrade --control-plane-only` leaves a node's containers alone: through the `lks` CLI on
the demo cluster with a 1-node `workloadRuntime: Process` pool, a pod's process keeps its PID,
restartCount 0 and its container id across the upgrade; `kubectl logs` and `exec` work on it
afterwards and its projected service-account token still authenticates to the upgraded API
server from inside the pod. Deleting it, or stopping the cluster, still ends every process."""

from __future__ import annotations

import json
import subprocess

import pytest

from .conftest import LKS, RUN, lks_json, wait_until, with_process_pool

POOL = "procs"
MARK = f"lks_cp_upgrade_{RUN}"
LOOP = f"import sys, time\n{MARK} = 1\nprint('up', flush=True)\nwhile True:\n    time.sleep(0.5)\n"
WHO_AM_I = ("import json, os, ssl, urllib.request\n"
            "d = '/var/run/secrets/kubernetes.io/serviceaccount'\n"
            "ctx = ssl.create_default_context(cafile=d + '/ca.crt')\n"
            "url = 'https://%s:%s/apis/authentication.k8s.io/v1/selfsubjectreviews' % ("
            "os.environ['KUBERNETES_SERVICE_HOST'], os.environ['KUBERNETES_SERVICE_PORT'])\n"
            "body = json.dumps({'apiVersion': 'authentication.k8s.io/v1', 'kind': 'SelfSubjectReview'}).encode()\n"
            "req = urllib.request.Request(url, data=body, method='POST', headers={\n"
            "    'Authorization': 'Bearer ' + open(d + '/token').read(), 'Content-Type': 'application/json'})\n"
            "print(json.load(urllib.request.urlopen(req, context=ctx))['status']['userInfo']['username'])\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = with_process_pool(tmp_path_factory.mktemp("lks-cp-upgrade-home"), POOL)
    yield s
    s.stop()


def _pod(server: LKS, name: str) -> dict:
    return json.loads(server.kubectl("get", "pod", name, "-o", "json").stdout)


def _status(pod: dict) -> dict:
    return (pod["status"].get("containerStatuses") or [{}])[0]


def _pids(marker: str) -> list[str]:
    return subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()


def _run(server: LKS, name: str, marker: str) -> dict:
    volume = {"name": "kube-api-access", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"nodeSelector": {"kubernetes.azure.com/agentpool": POOL}, "terminationGracePeriodSeconds": 2,
                    "automountServiceAccountToken": False, "volumes": [volume],
                    "containers": [{"name": "main", "image": "python",
                                    "command": ["python3", "-c", LOOP.replace(MARK, marker)],
                                    "volumeMounts": [{"name": "kube-api-access", "readOnly": True,
                                                      "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]}]}}
    server.kubectl("apply", "-f", "-", input=json.dumps(pod))
    return wait_until(lambda: (p := _pod(server, name))["status"].get("phase") == "Running"
                      and _status(p).get("ready") and p, what=f"pod {name} running")


def _server_minor(server: LKS) -> str:
    return json.loads(server.kubectl("version", "-o", "json").stdout)["serverVersion"]["minor"]


def test_a_process_pod_runs_on_across_a_control_plane_upgrade(server: LKS):
    before = _run(server, "keeper", MARK)
    pids = _pids(MARK)
    assert len(pids) == 1
    upgrades = lks_json(server, "aks", "get-upgrades", "-g", "demo", "-n", "demo")
    profile = upgrades.get("controlPlaneProfile") or upgrades["properties"]["controlPlaneProfile"]
    target = max((u["kubernetesVersion"] for u in profile["upgrades"] if not u.get("isPreview")),
                 key=lambda v: tuple(int(x) for x in v.split(".")))
    assert target != lks_json(server, "aks", "show", "-g", "demo", "-n", "demo")["currentKubernetesVersion"]

    lks_json(server, "aks", "upgrade", "-g", "demo", "-n", "demo", "-k", target, "--control-plane-only", "--yes")

    assert _server_minor(server) == target.split(".")[1]
    assert _pids(MARK) == pids  # the same process: not stopped with the old control plane
    assert server.kubectl("logs", "keeper").stdout == "up\n"
    who = server.kubectl("exec", "keeper", "--", "python3", "-c", WHO_AM_I).stdout
    assert who == "system:serviceaccount:default:default\n"  # the token the pod had still authenticates
    after = _pod(server, "keeper")
    st, was = _status(after), _status(before)
    assert after["status"]["phase"] == "Running" and st["ready"] is True
    assert st["restartCount"] == 0 and not st.get("lastState")
    assert st["containerID"] == was["containerID"]
    assert st["state"]["running"]["startedAt"] == was["state"]["running"]["startedAt"]
    assert _pids(MARK) == pids

    server.kubectl("delete", "pod", "keeper", "--wait=true")  # the taken-over runtime still ends its pods
    assert _pids(MARK) == []


def test_stopping_the_cluster_after_the_upgrade_ends_its_processes(server: LKS):
    marker = MARK + "_stop"
    _run(server, "stopped", marker)
    assert len(_pids(marker)) == 1
    lks_json(server, "aks", "stop", "-g", "demo", "-n", "demo")  # the VMs are deallocated
    assert _pids(marker) == []
