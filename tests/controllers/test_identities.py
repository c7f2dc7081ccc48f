"""The in-process controllers act as their own identities, as kube-controller-manager's do with
`--use-service-account-credentials`: their writes are authorized by RBAC as
`system:serviceaccount:kube-system:<controller>`, so taking a permission from the controller's
bootstrap role stops it (upstream's Forbidden, as a FailedCreate event), and giving it back lets
it go on."""

from __future__ import annotations

from lks.clock import ManualClock
from lks.controllers.replicaset import ReplicaSetController
from lks.kube.authn import ACTING, acting_as, service_account_user
from lks.kube.cluster import Cluster

from .test_replicaset import NS, events, pods, rs_body, wait_for

ROLE = "system:controller:replicaset-controller"


async def _rules(cluster: Cluster, change) -> None:
    roles = cluster.registry("rbac.authorization.k8s.io", "v1", "clusterroles")

    def put(current: dict) -> dict:
        current["metadata"].setdefault("annotations", {})["rbac.authorization.kubernetes.io/autoupdate"] = "false"
        current["rules"] = change(current["rules"])
        return current

    await roles.patch(None, ROLE, put)


def _without_pod_create(rules: list[dict]) -> list[dict]:
    out = []
    for rule in rules:
        if "pods" in rule.get("resources", ()) and "create" in rule["verbs"]:
            rule = {**rule, "verbs": [v for v in rule["verbs"] if v != "create"]}
        out.append(rule)
    return out


async def test_a_controller_is_authorized_as_its_service_account(cluster: Cluster, clock: ManualClock) -> None:
    await _rules(cluster, _without_pod_create)
    controller = ReplicaSetController(cluster)
    assert controller.identity == service_account_user("kube-system", "replicaset-controller")
    await controller.start()
    try:
        assert ACTING.get() is None  # starting it changed nothing for its caller
        await cluster.registry("apps", "v1", "replicasets").create(NS, rs_body(replicas=2))
        failed = await wait_for(lambda: events(cluster, "FailedCreate"))
        assert ('pods is forbidden: User "system:serviceaccount:kube-system:replicaset-controller" '
                'cannot create resource "pods" in API group "" in the namespace "default"') in failed[0]["message"]
        assert await pods(cluster) == []
        await _rules(cluster, lambda rules: [*rules, {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}])
        await clock.advance(60)  # past the retry's back-off
        await wait_for(lambda: _count(cluster, 2))
    finally:
        await controller.stop()


async def _count(cluster: Cluster, n: int) -> bool:
    return len(await pods(cluster)) == n


async def test_the_api_servers_own_writes_are_not_checked(cluster: Cluster) -> None:
    with acting_as(None):
        await cluster.registry("", "v1", "configmaps").create(NS, {"metadata": {"name": "free"}})
