"""Surge upgrades through the Azure SDK against a real `lks up` whose drain minutes last half a
second: a 1.35 cluster of 3 nodes running a 6-replica Deployment under a budget of
`minAvailable: 5` upgrades to 1.36 (cluster PUT with the pools' orchestratorVersion, as
`az aks upgrade` sends it): the control plane says 1.36 (`kubectl version`), every Node is
replaced by one whose kubelet is 1.36, a watch never sees fewer than 5 Ready replicas, the
operation's percentComplete moves, the states say Upgrading while it runs and Succeeded after.
With `minAvailable: 6` the next upgrade's drain fails after the drain timeout with AKS's
`PodDrainFailure` and leaves the cluster and pool Failed; once the budget allows it, the same
PUT again finishes the upgrade from where it stopped."""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import (
    AgentPoolUpgradeSettings,
    ManagedCluster,
    ManagedClusterAgentPoolProfile,
)
from azure.mgmt.resource.resources import ResourceManagementClient
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes import watch

from .conftest import LKS, StaticToken, wait_until

GROUP, CLUSTER = "upgrade-rg", "up1"
DRAIN_MINUTE = 0.5  # seconds per minute of drainTimeoutInMinutes
POOL = "nodepool1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LKS]:
    s = LKS(tmp_path_factory.mktemp("lks-upgrade-home"), env={"LKS_DRAIN_MINUTE_SECONDS": str(DRAIN_MINUTE)})
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def config(server: LKS) -> dict:
    return json.loads((server.home / "config.json").read_text())


@pytest.fixture(scope="module")
def aks(config: dict) -> ContainerServiceClient:
    return ContainerServiceClient(StaticToken(config["token"]), config["subscription_id"], base_url=config["endpoint"],
                                  connection_verify=config["ca_file"])


@pytest.fixture(scope="module")
def group(config: dict) -> str:
    ResourceManagementClient(StaticToken(config["token"]), config["subscription_id"], base_url=config["endpoint"],
                             connection_verify=config["ca_file"]).resource_groups.create_or_update(
        GROUP, {"location": "westeurope"})
    return GROUP


@pytest.fixture(scope="module")
def kubeconfig(server: LKS, group: str, aks: ContainerServiceClient, tmp_path_factory) -> str:
    mc = aks.managed_clusters.begin_create_or_update(GROUP, CLUSTER, ManagedCluster(
        location="westeurope", dns_prefix="up1", kubernetes_version="1.35", agent_pool_profiles=[
            ManagedClusterAgentPoolProfile(name=POOL, count=3, vm_size="Standard_D4s_v3", mode="System",
                                           upgrade_settings=AgentPoolUpgradeSettings(drain_timeout_in_minutes=60))],
    )).result()
    assert mc.provisioning_state == "Succeeded" and mc.current_kubernetes_version.startswith("1.35.")
    path = tmp_path_factory.mktemp("up1") / "kubeconfig"
    path.write_bytes(aks.managed_clusters.list_cluster_admin_credentials(GROUP, CLUSTER).kubeconfigs[0].value)
    return str(path)


@pytest.fixture(scope="module")
def api(kubeconfig: str) -> Iterator[k8s_client.ApiClient]:
    c = k8s_config.new_client_from_config(kubeconfig)
    yield c
    c.close()


def _ready(pod: Any) -> bool:
    return pod.metadata.deletion_timestamp is None and any(
        c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


class ReadyWatch:
    """Watches a namespace's pods and keeps the lowest number of Ready ones seen at once. The
    control plane's restart on the new version ends the watch, as a real API server's does:
    it lists again and watches on."""

    def __init__(self, api: k8s_client.ApiClient, namespace: str):
        self.core = k8s_client.CoreV1Api(api)
        self.namespace = namespace
        self.ready: dict[str, bool] = {}
        self.lowest: int | None = None
        self.events = 0
        self._watch: watch.Watch | None = None
        self._stopped = False
        self._rv = self._list()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _list(self) -> str:
        listed = self.core.list_namespaced_pod(self.namespace)
        self.ready = {p.metadata.name: _ready(p) for p in listed.items}
        self._seen()
        return listed.metadata.resource_version

    def _seen(self) -> None:
        count = sum(self.ready.values())
        self.lowest = count if self.lowest is None else min(self.lowest, count)

    def _run(self) -> None:
        while not self._stopped:
            try:
                self._watch = watch.Watch()
                for ev in self._watch.stream(self.core.list_namespaced_pod, self.namespace,
                                             resource_version=self._rv, timeout_seconds=300):
                    pod = ev["object"]
                    if ev["type"] == "DELETED":
                        self.ready.pop(pod.metadata.name, None)
                    else:
                        self.ready[pod.metadata.name] = _ready(pod)
                    self._rv = pod.metadata.resource_version
                    self.events += 1
                    self._seen()
            except Exception:
                if self._stopped:
                    return
                time.sleep(0.2)
                try:
                    self._rv = self._list()
                except Exception:
                    continue

    def __enter__(self) -> ReadyWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped = True
        if self._watch is not None:
            self._watch.stop()


def _nodes(api: k8s_client.ApiClient) -> dict[str, Any]:
    return {n.metadata.name: n for n in k8s_client.CoreV1Api(api).list_node().items}


def _upgrade_body(aks: ContainerServiceClient, version: str) -> ManagedCluster:
    """The cluster as `az aks upgrade -k` sends it: the new version for the control plane and
    every pool."""
    mc = aks.managed_clusters.get(GROUP, CLUSTER)
    mc.kubernetes_version = version
    for pool in mc.agent_pool_profiles:
        pool.orchestrator_version = version
    return mc


def _operation(config: dict, url: str) -> dict:
    ctx = ssl.create_default_context(cafile=config["ca_file"])
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {config['token']}"})
    with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
        return json.loads(r.read())


def _workload(api: k8s_client.ApiClient, namespace: str, min_available: int) -> None:
    k8s_client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
    labels = {"app": "web"}
    k8s_client.AppsV1Api(api).create_namespaced_deployment(namespace, {
        "metadata": {"name": "web"}, "spec": {
            "replicas": 6, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                "terminationGracePeriodSeconds": 1, "containers": [{"name": "web", "image": "nginx"}]}}}})
    policy = k8s_client.PolicyV1Api(api)
    policy.create_namespaced_pod_disruption_budget(namespace, {
        "metadata": {"name": "web"}, "spec": {"minAvailable": min_available, "selector": {"matchLabels": labels}}})
    core = k8s_client.CoreV1Api(api)
    wait_until(lambda: sum(_ready(p) for p in core.list_namespaced_pod(namespace).items) == 6, timeout=60,
               what="6 Ready replicas")
    wait_until(lambda: (policy.read_namespaced_pod_disruption_budget("web", namespace).status.current_healthy == 6),
               what="the budget's status")


def test_upgrade_replaces_every_node_and_keeps_the_budget(server, config, aks, api, kubeconfig):
    _workload(api, "web135", 5)
    before = _nodes(api)
    assert len(before) == 3 and all(n.status.node_info.kubelet_version.startswith("v1.35.") for n in before.values())

    with ReadyWatch(api, "web135") as seen:
        poller = aks.managed_clusters.begin_create_or_update(GROUP, CLUSTER, _upgrade_body(aks, "1.36"))
        monitor = poller.polling_method()._initial_response.http_response.headers.get("Azure-AsyncOperation")
        assert monitor, "an upgrade takes longer than a synchronous answer"
        states, percents = set(), set()
        while not poller.done():
            states.add((aks.managed_clusters.get(GROUP, CLUSTER).provisioning_state,
                        aks.agent_pools.get(GROUP, CLUSTER, POOL).provisioning_state))
            percents.add(_operation(config, monitor).get("percentComplete"))
            time.sleep(0.3)
        mc = poller.result()
        wait_until(lambda: seen.events > 0, what="the watch to see the pods move")

    assert mc.provisioning_state == "Succeeded" and mc.current_kubernetes_version.startswith("1.36.")
    assert ("Upgrading", "Upgrading") in states
    assert any(p is not None and 0 < p < 100 for p in percents), percents
    done = _operation(config, monitor)
    assert done["status"] == "Succeeded" and done["percentComplete"] == 100
    assert seen.lowest is not None and seen.lowest >= 5, f"only {seen.lowest} Ready replicas at one moment"

    version = json.loads(server.kubectl("version", "-o", "json", kubeconfig=kubeconfig).stdout)["serverVersion"]
    assert (version["major"], version["minor"]) == ("1", "36")
    after = _nodes(api)
    assert sorted(after) == sorted(before)  # reimaged under their names, the surge node gone
    for name, node in after.items():
        assert node.status.node_info.kubelet_version == f"v{mc.current_kubernetes_version}"
        assert node.metadata.uid != before[name].metadata.uid
        assert not node.spec.unschedulable
    pool = aks.agent_pools.get(GROUP, CLUSTER, POOL)
    assert pool.provisioning_state == "Succeeded" and pool.current_orchestrator_version.startswith("1.36.")
    core = k8s_client.CoreV1Api(api)
    wait_until(lambda: sum(_ready(p) for p in core.list_namespaced_pod("web135").items) == 6, what="6 replicas")
    events = core.list_namespaced_event("default", field_selector="source=upgrader").items
    assert {e.reason for e in events} >= {"Surge", "Drain", "Upgrade"}


def test_a_budget_that_allows_nothing_fails_the_upgrade_after_the_drain_timeout_and_a_put_resumes(
        server, config, aks, api, kubeconfig):
    k8s_client.CoreV1Api(api).delete_namespace("web135")
    _workload(api, "web136", 6)
    body = _upgrade_body(aks, "1.37")
    for pool in body.agent_pool_profiles:
        pool.upgrade_settings = AgentPoolUpgradeSettings(drain_timeout_in_minutes=6)  # 3 s here
    started = time.monotonic()
    with pytest.raises(HttpResponseError) as err:
        aks.managed_clusters.begin_create_or_update(GROUP, CLUSTER, body).result()
    assert time.monotonic() - started >= 6 * DRAIN_MINUTE
    assert err.value.error.code == "PodDrainFailure"
    assert "failed with Too Many Requests error. This is often caused by a restrictive Pod Disruption Budget " \
           "(PDB) policy. See http://aka.ms/aks/debugdrainfailures." in err.value.error.message
    assert "blocked by pdb web (MinAvailable: 6)" in err.value.error.message

    mc = aks.managed_clusters.get(GROUP, CLUSTER)
    assert mc.provisioning_state == "Failed" and mc.current_kubernetes_version.startswith("1.37.")
    assert aks.agent_pools.get(GROUP, CLUSTER, POOL).provisioning_state == "Failed"
    nodes = _nodes(api)
    assert len(nodes) == 3  # the surge node went, best effort
    assert all(n.status.node_info.kubelet_version.startswith("v1.36.") for n in nodes.values())
    assert not any(n.spec.unschedulable for n in nodes.values())  # Schedule: the blocked node is schedulable

    # the budget relaxed, the same PUT again continues the upgrade
    k8s_client.PolicyV1Api(api).patch_namespaced_pod_disruption_budget("web", "web136", {"spec": {"minAvailable": 5}})
    body = aks.managed_clusters.get(GROUP, CLUSTER)
    for pool in body.agent_pool_profiles:
        pool.upgrade_settings = AgentPoolUpgradeSettings(drain_timeout_in_minutes=60)
    mc = aks.managed_clusters.begin_create_or_update(GROUP, CLUSTER, body).result()
    assert mc.provisioning_state == "Succeeded"
    nodes = _nodes(api)
    assert len(nodes) == 3 and all(n.status.node_info.kubelet_version == f"v{mc.current_kubernetes_version}"
                                   for n in nodes.values())
    assert aks.agent_pools.get(GROUP, CLUSTER, POOL).current_orchestrator_version == mc.current_kubernetes_version


def _cluster2(server: LKS, aks: ContainerServiceClient, tmp_path_factory) -> tuple[str, k8s_client.ApiClient]:
    mc = aks.managed_clusters.begin_create_or_update(GROUP, "up2", ManagedCluster(
        location="westeurope", dns_prefix="up2", kubernetes_version="1.35", agent_pool_profiles=[
            ManagedClusterAgentPoolProfile(name=POOL, count=2, vm_size="Standard_D4s_v3", mode="System",
                                           upgrade_settings=AgentPoolUpgradeSettings(drain_timeout_in_minutes=60))],
    )).result()
    assert mc.provisioning_state == "Succeeded"
    path = tmp_path_factory.mktemp("up2") / "kubeconfig"
    path.write_bytes(aks.managed_clusters.list_cluster_admin_credentials(GROUP, "up2").kubeconfigs[0].value)
    return str(path), k8s_config.new_client_from_config(str(path))


def test_control_plane_only_keeps_nodes_and_pods_and_a_restart_resumes_a_pool_upgrade(
        server, group, aks, tmp_path_factory):
    kubeconfig, api = _cluster2(server, aks, tmp_path_factory)
    core, policy = k8s_client.CoreV1Api(api), k8s_client.PolicyV1Api(api)
    k8s_client.AppsV1Api(api).create_namespaced_deployment("default", {
        "metadata": {"name": "app"}, "spec": {
            "replicas": 2, "selector": {"matchLabels": {"app": "app"}},
            "template": {"metadata": {"labels": {"app": "app"}}, "spec": {
                "terminationGracePeriodSeconds": 1, "containers": [{"name": "app", "image": "nginx"}]}}}})
    policy.create_namespaced_pod_disruption_budget("default", {
        "metadata": {"name": "app"}, "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "app"}}}})
    pods = wait_until(lambda: (ps := [p for p in core.list_namespaced_pod("default").items if _ready(p)])
                      and len(ps) == 2 and ps, what="2 Ready replicas")
    wait_until(lambda: policy.read_namespaced_pod_disruption_budget("app", "default").status.current_healthy == 2,
               what="the budget's status")
    nodes = _nodes(api)

    # the control plane alone: the API server restarts on 1.36, the nodes and their pods stay as they are
    body = aks.managed_clusters.get(GROUP, "up2")
    body.kubernetes_version = "1.36"
    mc = aks.managed_clusters.begin_create_or_update(GROUP, "up2", body).result()
    assert mc.provisioning_state == "Succeeded" and mc.current_kubernetes_version.startswith("1.36.")
    version = json.loads(server.kubectl("version", "-o", "json", kubeconfig=kubeconfig).stdout)["serverVersion"]
    assert version["minor"] == "36"
    after = _nodes(api)
    assert {n: a.metadata.uid for n, a in after.items()} == {n: b.metadata.uid for n, b in nodes.items()}
    assert all(n.status.node_info.kubelet_version.startswith("v1.35.") for n in after.values())
    still = {p.metadata.uid: p for p in core.list_namespaced_pod("default").items}
    assert set(still) == {p.metadata.uid for p in pods}
    assert all(_ready(p) and p.status.container_statuses[0].restart_count == 0 for p in still.values())

    # the pool next; its drain is held by the budget when the service restarts
    pool = aks.agent_pools.get(GROUP, "up2", POOL)
    pool.orchestrator_version = "1.36"
    aks.agent_pools.begin_create_or_update(GROUP, "up2", POOL, pool, polling=False)
    assert aks.agent_pools.get(GROUP, "up2", POOL).provisioning_state == "Upgrading"
    wait_until(lambda: any(n.spec.unschedulable for n in _nodes(api).values()) and len(_nodes(api)) == 3,
               what="a surge node and a node cordoned")
    api.close()
    server.restart()
    api = k8s_config.new_client_from_config(kubeconfig)
    core, policy = k8s_client.CoreV1Api(api), k8s_client.PolicyV1Api(api)
    policy.patch_namespaced_pod_disruption_budget("app", "default", {"spec": {"minAvailable": 1}})
    wait_until(lambda: aks.agent_pools.get(GROUP, "up2", POOL).provisioning_state == "Succeeded", timeout=120,
               what="the upgrade resumed and done")
    after = _nodes(api)
    assert sorted(after) == sorted(nodes)
    assert all(n.status.node_info.kubelet_version == f"v{mc.current_kubernetes_version}" for n in after.values())
    events = core.list_namespaced_event("default", field_selector="source=upgrader").items
    assert [e.reason for e in events].count("Surge") == 1  # the resumed upgrade used the surge node it had
    assert aks.managed_clusters.get(GROUP, "up2").provisioning_state == "Succeeded"
    api.close()
