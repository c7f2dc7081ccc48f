"""The ClusterRole aggregation controller: `view`, `edit` and `admin` get the union of the rules
of the roles their selectors pick, and follow those roles as they change."""

from __future__ import annotations

from lks.controllers.clusterroleaggregation import ClusterRoleAggregationController, aggregated_rules

GROUP = "rbac.authorization.k8s.io"
VIEW_LABEL = {"rbac.authorization.k8s.io/aggregate-to-view": "true"}
WIDGETS = {"verbs": ["get", "list"], "apiGroups": ["example.com"], "resources": ["widgets"]}


def test_union_in_selector_then_name_order_each_rule_once():
    a = {"verbs": ["get"], "apiGroups": [""], "resources": ["a"]}
    b = {"verbs": ["get"], "apiGroups": [""], "resources": ["b"]}
    role = {"metadata": {"name": "agg"}, "aggregationRule": {"clusterRoleSelectors": [
        {"matchLabels": {"tier": "2"}}, {"matchLabels": {"tier": "1"}}]}}
    roles = [role,
             {"metadata": {"name": "z", "labels": {"tier": "1"}}, "rules": [a]},
             {"metadata": {"name": "y", "labels": {"tier": "2"}}, "rules": [b, a]},
             {"metadata": {"name": "x", "labels": {"tier": "3"}}, "rules": [WIDGETS]}]
    assert aggregated_rules(role, roles) == [b, a]


async def test_view_edit_admin_follow_their_parts(cluster, settle):
    roles = cluster.registry(GROUP, "v1", "clusterroles")
    controller = ClusterRoleAggregationController(cluster)
    await controller.start()
    try:
        def rules_of(name):
            obj = controller.informer.get(None, name)
            return (obj or {}).get("rules") or []

        part = (await roles.get(None, "system:aggregate-to-view"))["rules"]
        await settle(lambda: rules_of("view") == part)
        await settle(lambda: all(r in rules_of("edit") for r in part))  # edit aggregates view
        await settle(lambda: all(r in rules_of("admin") for r in part))  # admin aggregates edit

        await roles.create(None, {"metadata": {"name": "widgets-view", "labels": VIEW_LABEL}, "rules": [WIDGETS]})
        await settle(lambda: WIDGETS in rules_of("view") and WIDGETS in rules_of("admin"))

        obj = await roles.get(None, "widgets-view")
        obj["metadata"]["labels"] = {}
        await roles.update(None, "widgets-view", obj)
        await settle(lambda: WIDGETS not in rules_of("view") and WIDGETS not in rules_of("admin"))
    finally:
        await controller.stop()
