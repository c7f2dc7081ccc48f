"""Nodes leave a pool as on AKS: cordoned, drained through the Eviction API, then deleted.

Against a real `lks up --demo` whose drain minutes last half a second (`LKS_DRAIN_MINUTE_SECONDS`),
driven by the Azure SDK, the `lks` CLI and the `kubernetes` client: a pool scaled in through
the SDK moves a Deployment's pods off the node it removes (each pod evicted, the node cordoned
first and deleted last); a PodDisruptionBudget with maxUnavailable 0 holds `lks aks nodepool
delete` up until the pool's drain timeout (PodDrainFailure with AKS's message, the pool Failed,
the node schedulable again), and `--ignore-pdb` deletes the pool anyway."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import AgentPool, AgentPoolUpgradeSettings
from kubernetes import client as k8s_client
from kubernetes import watch

from .conftest import LKS, StaticToken, lks_cli, wait_until

GROUP = CLUSTER = "demo"
DRAIN_MINUTE = 0.5  # seconds per minute of drainTimeoutInMinutes
POOL_LABEL = "kubernetes.azure.com/agentpool"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LKS]:
    s = LKS(tmp_path_factory.mktemp("lks-drain-home"), env={"LKS_DRAIN_MINUTE_SECONDS": str(DRAIN_MINUTE)})
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def aks(server: LKS) -> ContainerServiceClient:
    config = json.loads((server.home / "config.json").read_text())
    return ContainerServiceClient(StaticToken(config["token"]), config["subscription_id"], base_url=config["endpoint"],
                                  connection_verify=config["ca_file"])


@pytest.fixture(scope="module")
def api(server: LKS) -> Iterator[k8s_client.ApiClient]:
    c = server.api_client()
    yield c
    c.close()


@pytest.fixture
def core(api: k8s_client.ApiClient) -> k8s_client.CoreV1Api:
    return k8s_client.CoreV1Api(api)


@pytest.fixture
def namespace(core: k8s_client.CoreV1Api, request: pytest.FixtureRequest) -> str:
    name = "drain-" + request.node.name.lower().replace("_", "-")[5:30].strip("-") + "-" + os.urandom(2).hex()
    core.create_namespace({"metadata": {"name": name}})
    return name


def _add_pool(aks: ContainerServiceClient, name: str, count: int, drain_minutes: int) -> None:
    pool = aks.agent_pools.begin_create_or_update(GROUP, CLUSTER, name, AgentPool(
        count=count, vm_size="Standard_D4s_v3", mode="User",
        upgrade_settings=AgentPoolUpgradeSettings(drain_timeout_in_minutes=drain_minutes))).result()
    assert pool.provisioning_state == "Succeeded" and pool.count == count


def _pool_nodes(core: k8s_client.CoreV1Api, pool: str) -> list[str]:
    return sorted(n.metadata.name for n in core.list_node(label_selector=f"{POOL_LABEL}={pool}").items)


def _deployment(namespace: str, name: str, pool: str, replicas: int) -> dict:
    labels = {"app": name}
    return {"metadata": {"name": name, "namespace": namespace}, "spec": {
        "replicas": replicas, "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {
            "nodeSelector": {POOL_LABEL: pool}, "terminationGracePeriodSeconds": 5,
            "containers": [{"name": "web", "image": "nginx"}]}}}}


def _running_pods(core: k8s_client.CoreV1Api, namespace: str) -> list[k8s_client.V1Pod]:
    pods = core.list_namespaced_pod(namespace).items
    return [p for p in pods if p.metadata.deletion_timestamp is None and p.status.phase == "Running"
            and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])]


class Recorder:
    """Watch events of a namespace's pods and of a pool's nodes, in arrival order, as
    (kind, event type, object as a dict)."""

    def __init__(self, api: k8s_client.ApiClient, namespace: str, pool: str):
        self.core = k8s_client.CoreV1Api(api)
        self.events: list[tuple[str, str, dict]] = []
        self._lock = threading.Lock()
        self._watches: list[watch.Watch] = []
        self._threads = [
            threading.Thread(target=self._run, args=("pod", self.core.list_namespaced_pod, (namespace,), {}),
                             daemon=True),
            threading.Thread(target=self._run, args=("node", self.core.list_node, (),
                                                     {"label_selector": f"{POOL_LABEL}={pool}"}), daemon=True),
        ]
        self._ready = threading.Barrier(3)
        self._stopped = False

    def _run(self, kind: str, fn: Any, args: tuple, kwargs: dict) -> None:
        w = watch.Watch()
        self._watches.append(w)
        rv = fn(*args, **kwargs).metadata.resource_version
        self._ready.wait()
        try:
            for ev in w.stream(fn, *args, resource_version=rv, timeout_seconds=120, **kwargs):
                with self._lock:
                    self.events.append((kind, ev["type"],
                                        self.core.api_client.sanitize_for_serialization(ev["object"])))
        except Exception:
            if not self._stopped:  # after `stop` the open stream ends when the server does
                raise

    def __enter__(self) -> Recorder:
        for t in self._threads:
            t.start()
        self._ready.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped = True
        for w in self._watches:
            w.stop()

    def index(self, kind: str, type_: str, name: str) -> int:
        with self._lock:
            return next(i for i, (k, t, o) in enumerate(self.events)
                        if k == kind and t == type_ and o["metadata"]["name"] == name)


def test_scale_in_moves_a_deployments_pods_off_the_node_before_deleting_it(server, aks, api, core, namespace):
    _add_pool(aks, "drainpool", 2, drain_minutes=60)
    keep, going = _pool_nodes(core, "drainpool")  # a scale-in removes the highest instance
    # every replica on the node that will go: the other one is cordoned while they are placed
    server.kubectl("cordon", keep)
    k8s_client.AppsV1Api(api).create_namespaced_deployment(namespace, _deployment(namespace, "web", "drainpool", 3))
    before = wait_until(lambda: (pods := _running_pods(core, namespace)) and len(pods) == 3 and pods,
                        what="3 running replicas")
    assert {p.spec.node_name for p in before} == {going}
    server.kubectl("uncordon", keep)

    with Recorder(api, namespace, "drainpool") as seen:
        pool = aks.agent_pools.begin_create_or_update(GROUP, CLUSTER, "drainpool", AgentPool(
            count=1, vm_size="Standard_D4s_v3", mode="User",
            upgrade_settings=AgentPoolUpgradeSettings(drain_timeout_in_minutes=60))).result()
        assert pool.provisioning_state == "Succeeded" and pool.count == 1
        assert _pool_nodes(core, "drainpool") == [keep]
        after = wait_until(lambda: (pods := _running_pods(core, namespace)) and len(pods) == 3 and pods,
                           what="3 running replicas again")
        wait_until(lambda: any(k == "node" and t == "DELETED" for k, t, _ in seen.events), what="the node's deletion")

    assert {p.spec.node_name for p in after} == {keep}
    node_deleted = seen.index("node", "DELETED", going)
    cordoned = next(i for i, (k, t, o) in enumerate(seen.events) if k == "node" and t == "MODIFIED"
                    and o["metadata"]["name"] == going and o["spec"].get("unschedulable"))
    for old in before:
        name = old.metadata.name
        marked = [o for k, t, o in seen.events if k == "pod" and o["metadata"]["name"] == name]
        reasons = {c.get("reason") for o in marked for c in o["status"].get("conditions") or []
                   if c["type"] == "DisruptionTarget"}
        assert reasons == {"EvictionByEvictionAPI"}, f"{name} was not evicted: {reasons}"
        assert cordoned < seen.index("pod", "DELETED", name) < node_deleted  # gone before its node

    aks.agent_pools.begin_delete(GROUP, CLUSTER, "drainpool").result()


def test_a_budget_blocks_nodepool_delete_until_the_drain_timeout_and_ignore_pdb_deletes_anyway(
        server, aks, api, core, namespace):
    _add_pool(aks, "pdbpool", 1, drain_minutes=2)  # 1 s here: one refused eviction, one retry
    [node] = _pool_nodes(core, "pdbpool")
    k8s_client.AppsV1Api(api).create_namespaced_deployment(namespace, _deployment(namespace, "db", "pdbpool", 1))
    k8s_client.PolicyV1Api(api).create_namespaced_pod_disruption_budget(namespace, {
        "metadata": {"name": "db"}, "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "db"}}}})
    [pod] = wait_until(lambda: _running_pods(core, namespace), what="the replica running")
    wait_until(lambda: (k8s_client.PolicyV1Api(api).read_namespaced_pod_disruption_budget("db", namespace).status
                        .expected_pods == 1), what="the budget's status")

    # a scale-in that has to drain the node fails the same way and leaves the cluster Failed
    res = lks_cli(server, "aks", "nodepool", "scale", "-g", GROUP, "--cluster-name", CLUSTER, "-n", "pdbpool", "-c", "0")
    assert res.returncode == 1 and "(PodDrainFailure)" in res.stderr, res.stderr
    assert aks.managed_clusters.get(GROUP, CLUSTER).provisioning_state == "Failed"
    assert aks.agent_pools.get(GROUP, CLUSTER, "pdbpool").provisioning_state == "Failed"
    assert _pool_nodes(core, "pdbpool") == [node] and not core.read_node(node).spec.unschedulable

    started = time.monotonic()
    res = lks_cli(server, "aks", "nodepool", "delete", "-g", GROUP, "--cluster-name", CLUSTER, "-n", "pdbpool")
    assert res.returncode == 1, res.stderr
    assert time.monotonic() - started >= 2 * DRAIN_MINUTE
    assert res.stderr.startswith(
        f"ERROR: (PodDrainFailure) Drain node {node} failed when evicting pod {pod.metadata.name} failed with Too "
        "Many Requests error. This is often caused by a restrictive Pod Disruption Budget (PDB) policy. See "
        "http://aka.ms/aks/debugdrainfailures. Original error: Cannot evict pod as it would violate the pod's "
        f"disruption budget.. PDB debug info: {namespace}/{pod.metadata.name} blocked by pdb db (MaxUnavailable: 0) "
        "(CurrentHealthy: 1) (DesiredHealthy: 1) (ExpectedPods: 1) with 0 unready pods."), res.stderr
    assert "Code: PodDrainFailure" in res.stderr

    shown = aks.agent_pools.get(GROUP, CLUSTER, "pdbpool")
    assert shown.provisioning_state == "Failed"
    assert aks.managed_clusters.get(GROUP, CLUSTER).provisioning_state == "Failed"
    assert _pool_nodes(core, "pdbpool") == [node]
    assert not core.read_node(node).spec.unschedulable  # schedulable again, as AKS leaves it
    assert [p.metadata.name for p in _running_pods(core, namespace)] == [pod.metadata.name]

    # the SDK sees the same error
    with pytest.raises(HttpResponseError) as err:
        aks.agent_pools.begin_delete(GROUP, CLUSTER, "pdbpool").result()
    assert err.value.error.code == "PodDrainFailure"

    res = lks_cli(server, "aks", "nodepool", "delete", "-g", GROUP, "--cluster-name", CLUSTER, "-n", "pdbpool",
               "--ignore-pdb")
    assert res.returncode == 0 and res.stdout == "", res.stderr
    assert "pdbpool" not in {p.name for p in aks.agent_pools.list(GROUP, CLUSTER)}
    assert aks.managed_clusters.get(GROUP, CLUSTER).provisioning_state == "Succeeded"
    assert _pool_nodes(core, "pdbpool") == []
    wait_until(lambda: all(p.metadata.name != pod.metadata.name for p in core.list_namespaced_pod(namespace).items),
               what="the budgeted pod deleted")
