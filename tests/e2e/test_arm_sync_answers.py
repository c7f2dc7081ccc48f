"""Long-running operations that end quickly are answered with their final state, through the Azure
SDK: a create, update, scale, pool add and delete, stop, start and delete of a cluster, and a
resource group deletion each take the one request that started it (azure-core's ARMPolling
reads the final state from the answer and polls nothing), while an operation that outlasts the
wait (a pool deletion whose drain waits on a pod's finalizer) still answers 202 with its monitor
URLs, refuses a second change of the cluster meanwhile, and ends through polling.

The server here waits up to 3 s for an operation (`LKS_SYNC_ANSWER_SECONDS`; 0.5 s by default), so
that a loaded test machine still sees the quick operations answered synchronously.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import AgentPool, ManagedCluster, ManagedClusterAgentPoolProfile
from azure.mgmt.resource.resources import ResourceManagementClient
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from lks.arm.operations import SYNC_BUDGET_ENV

from .conftest import LKS, StaticToken, wait_until

GROUP = "sync-rg"


class Requests(SansIOHTTPPolicy):
    """Every request the SDK sends, with the answer's status and headers."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int, dict[str, str]]] = []

    def on_response(self, request, response) -> None:
        http = response.http_response
        self.seen.append((request.http_request.method, request.http_request.url.split("?")[0], http.status_code,
                          {k.lower(): v for k, v in http.headers.items()}))

    def polls(self) -> list[str]:
        return [url for method, url, _, _ in self.seen if method == "GET" and "/operation" in url.lower()]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LKS]:
    s = LKS(tmp_path_factory.mktemp("lks-sync"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(SYNC_BUDGET_ENV, "3")
        s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def requests() -> Requests:
    return Requests()


@pytest.fixture(scope="module")
def clients(server: LKS, requests: Requests) -> tuple[ContainerServiceClient, ResourceManagementClient]:
    config = json.loads((server.home / "config.json").read_text())
    common: dict[str, Any] = {"base_url": config["endpoint"], "connection_verify": config["ca_file"],
                              "per_call_policies": [requests]}
    token = StaticToken(config["token"])
    aks = ContainerServiceClient(token, config["subscription_id"], **common)
    resources = ResourceManagementClient(token, config["subscription_id"], **common)
    resources.resource_groups.create_or_update(GROUP, {"location": "westeurope"})
    return aks, resources


def _cluster(count: int) -> ManagedCluster:
    return ManagedCluster(location="westeurope", dns_prefix="sync", agent_pool_profiles=[
        ManagedClusterAgentPoolProfile(name="nodepool1", count=count, vm_size="Standard_DS2_v2", mode="System",
                                       os_type="Linux")])


def _in_one_request(requests: Requests, begin: Any) -> tuple[Any, tuple[str, str, int, dict[str, str]]]:
    """Start an operation and wait for its end; it must have taken exactly one request, answered
    without monitor URLs. (result, that request)."""
    requests.seen.clear()
    poller = begin()
    assert poller.done() and poller.status() == "Succeeded"
    result = poller.result()
    assert len(requests.seen) == 1, requests.seen
    answer = requests.seen[0]
    assert "azure-asyncoperation" not in answer[3] and "location" not in answer[3], answer
    return result, answer


def test_quick_operations_are_answered_with_their_final_state(clients, requests):
    aks, resources = clients
    mc, (_, _, status, _) = _in_one_request(requests, lambda: aks.managed_clusters.begin_create_or_update(
        GROUP, "quick", _cluster(3)))
    assert status == 201 and mc.provisioning_state == "Succeeded" and mc.power_state.code == "Running"
    assert mc.agent_pool_profiles[0].provisioning_state == "Succeeded" and mc.agent_pool_profiles[0].count == 3

    mc.agent_pool_profiles[0].count = 4
    mc, (_, _, status, _) = _in_one_request(requests, lambda: aks.managed_clusters.begin_create_or_update(
        GROUP, "quick", mc))
    assert status == 200 and mc.provisioning_state == "Succeeded" and mc.agent_pool_profiles[0].count == 4

    pool, (_, _, status, _) = _in_one_request(requests, lambda: aks.agent_pools.begin_create_or_update(
        GROUP, "quick", "user1", AgentPool(count=2, vm_size="Standard_D4s_v3", mode="User")))
    assert status == 201 and pool.provisioning_state == "Succeeded" and pool.count == 2
    pool.count = 1
    pool, (_, _, status, _) = _in_one_request(requests, lambda: aks.agent_pools.begin_create_or_update(
        GROUP, "quick", "user1", pool))
    assert status == 200 and pool.provisioning_state == "Succeeded" and pool.count == 1
    _, (_, _, status, _) = _in_one_request(requests, lambda: aks.agent_pools.begin_delete(GROUP, "quick", "user1"))
    assert status == 204 and [p.name for p in aks.agent_pools.list(GROUP, "quick")] == ["nodepool1"]

    _, (_, _, status, _) = _in_one_request(requests, lambda: aks.managed_clusters.begin_stop(GROUP, "quick"))
    assert status == 204 and aks.managed_clusters.get(GROUP, "quick").power_state.code == "Stopped"
    _, (_, _, status, _) = _in_one_request(requests, lambda: aks.managed_clusters.begin_start(GROUP, "quick"))
    assert status == 204 and aks.managed_clusters.get(GROUP, "quick").power_state.code == "Running"

    _, (_, _, status, _) = _in_one_request(requests, lambda: aks.managed_clusters.begin_delete(GROUP, "quick"))
    assert status == 204
    with pytest.raises(ResourceNotFoundError):
        aks.managed_clusters.get(GROUP, "quick")

    resources.resource_groups.create_or_update("sync-gone", {"location": "westeurope"})
    _, (_, _, status, _) = _in_one_request(requests, lambda: resources.resource_groups.begin_delete("sync-gone"))
    assert status == 200 and not resources.resource_groups.check_existence("sync-gone")


def test_a_long_operation_is_answered_asynchronously(server, clients, requests, tmp_path: Path):
    aks, _ = clients
    aks.managed_clusters.begin_create_or_update(GROUP, "slow", _cluster(1)).result()
    aks.agent_pools.begin_create_or_update(GROUP, "slow", "held", AgentPool(
        count=1, vm_size="Standard_D4s_v3", mode="User")).result()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_bytes(aks.managed_clusters.list_cluster_admin_credentials(GROUP, "slow").kubeconfigs[0].value)
    api = k8s_config.new_client_from_config(str(kubeconfig))
    core = k8s_client.CoreV1Api(api)
    [node] = core.list_node(label_selector="kubernetes.azure.com/agentpool=held").items
    # the drain of the pool's node waits until this pod is gone, which its finalizer prevents
    core.create_namespaced_pod("default", {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}, "spec": {
        "nodeName": node.metadata.name, "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "c", "image": "nginx"}]}})

    requests.seen.clear()
    poller = aks.agent_pools.begin_delete(GROUP, "slow", "held")
    method, _, status, headers = requests.seen[0]
    assert (method, status) == ("DELETE", 202) and not poller.done()
    assert "/operations/" in headers["azure-asyncoperation"] and "/operationresults/" in headers["location"]
    with pytest.raises(HttpResponseError) as err:  # AKS refuses a second change while one runs
        aks.managed_clusters.begin_create_or_update(GROUP, "slow", _cluster(2))
    assert err.value.status_code == 409 and err.value.error.code == "OperationNotAllowed"
    assert "in progress" in err.value.error.message

    wait_until(lambda: core.read_namespaced_pod("held", "default").metadata.deletion_timestamp, what="the eviction")
    core.patch_namespaced_pod("held", "default", {"metadata": {"finalizers": None}})
    poller.result()
    assert poller.status() == "Succeeded" and requests.polls()
    assert [p.name for p in aks.agent_pools.list(GROUP, "slow")] == ["nodepool1"]
    api.close()
