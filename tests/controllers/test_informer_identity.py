"""Controllers' informers read as kube-controller-manager's shared informers do, as
`system:kube-controller-manager` (the scheduler's as `system:kube-scheduler`): without list and
watch on a resource in the bootstrap role (edited with autoupdate off) an informer logs the
reflector's Forbidden and retries with back-off, its controller waiting for the cache to sync;
once the role allows it again, the informer syncs and the controller works."""

from __future__ import annotations

import logging

import pytest

from lks.clock import ManualClock
from lks.controllers import identities
from lks.controllers.replicaset import ReplicaSetController
from lks.controllers.scheduler.scheduler import Scheduler
from lks.kube import authz
from lks.kube.cluster import Cluster

from .test_replicaset import NS, pods, rs_body, wait_for

LIST_WATCH_ALL = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["list", "watch"]}


async def _rules(cluster: Cluster, role: str, change) -> None:
    roles = cluster.registry("rbac.authorization.k8s.io", "v1", "clusterroles")

    def put(current: dict) -> dict:
        current["metadata"].setdefault("annotations", {})["rbac.authorization.kubernetes.io/autoupdate"] = "false"
        current["rules"] = change(current["rules"])
        return current

    await roles.patch(None, role, put)


async def _until(cluster: Cluster, user, group: str, resource: str, *, allowed: bool) -> None:
    """Until the authorizer's RBAC index (it follows the roles' watch events) says `allowed`."""
    attrs = authz.Attributes(user, "list", True, "", group, "v1", resource)
    await wait_for(lambda: _is(cluster.authorizer.allowed(attrs), allowed))


async def _is(decision, expected: bool) -> bool:
    return await decision == expected


def _logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in r.getMessage() for r in caplog.records)


async def test_a_controller_waits_for_its_informers_to_be_allowed(
        cluster: Cluster, clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    await _rules(cluster, "system:kube-controller-manager", lambda rules: [r for r in rules if r != LIST_WATCH_ALL])
    await _until(cluster, identities.CONTROLLER_MANAGER, "apps", "replicasets", allowed=False)
    caplog.set_level(logging.WARNING, logger="lks.controllers.informer")
    controller = ReplicaSetController(cluster)
    await cluster.registry("apps", "v1", "replicasets").create(NS, rs_body(replicas=2))
    await controller.start()
    try:
        assert not controller.queue._tasks  # no worker before the caches sync
        await wait_for(lambda: _logged(caplog, (
            'failed to list *v1.ReplicaSet: replicasets.apps is forbidden: User "system:kube-controller-manager" '
            'cannot list resource "replicasets" in API group "apps" at the cluster scope')))
        await clock.advance(5)  # retries, still refused: nothing happens
        assert await pods(cluster) == []
        await _rules(cluster, "system:kube-controller-manager", lambda rules: [*rules, LIST_WATCH_ALL])
        await clock.advance(30)  # past the reflector's longest back-off
        await wait_for(lambda: _count(cluster, 2))
    finally:
        await controller.stop()


async def test_the_scheduler_reads_as_kube_scheduler(
        cluster: Cluster, clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    def without_nodes(rules: list[dict]) -> list[dict]:
        return [r for r in rules if r.get("resources") != ["nodes"]]

    before = (await cluster.registry("rbac.authorization.k8s.io", "v1", "clusterroles").get(
        None, "system:kube-scheduler"))["rules"]
    await _rules(cluster, "system:kube-scheduler", without_nodes)
    await _until(cluster, identities.SCHEDULER, "", "nodes", allowed=False)
    caplog.set_level(logging.WARNING, logger="lks.controllers.informer")
    scheduler = Scheduler(cluster)
    await scheduler.start()
    try:
        await wait_for(lambda: _logged(caplog, (
            'failed to list *v1.Node: nodes is forbidden: User "system:kube-scheduler" cannot list resource '
            '"nodes" in API group "" at the cluster scope')))
        assert scheduler._informers["nodes"].cache is None
        await _rules(cluster, "system:kube-scheduler", lambda _rules: before)
        await clock.advance(30)
        await wait_for(lambda: scheduler._informers["nodes"].cache is not None)
        assert scheduler._informers["pods"].identity == identities.SCHEDULER
    finally:
        await scheduler.stop()


async def _count(cluster: Cluster, n: int) -> bool:
    return len(await pods(cluster)) == n
