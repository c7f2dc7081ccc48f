"""How CRD groups and versions are ordered in discovery: as kube-aggregator and the aggregated
discovery handler order APIServices of equal priority."""

from __future__ import annotations

import orjson

from lks.kube import catalog, crds
from lks.kube.http import discovery


def _crd(plural: str, group: str, versions: list[str], storage: str, **status) -> dict:
    return {"metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": "Namespaced", "names": {"plural": plural, "kind": plural.title()},
                     "versions": [{"name": v, "served": True, "storage": v == storage,
                                   "schema": {"openAPIV3Schema": {"type": "object"}}} for v in versions]},
            "status": {"conditions": [{"type": "Established", "status": "True"}, *status.get("conditions", [])]}}


def _documents(*crd_list: dict) -> discovery.Documents:
    types, schemas, groups = crds.resource_types(list(crd_list))
    return discovery.Documents(catalog.load("1.36").extended([t.rt for t in types], schemas, groups))


def test_versions_by_kubernetes_priority_and_groups_as_the_aggregator_orders_them():
    docs = _documents(_crd("zs", "a.example.com", ["v2"], "v2"), _crd("ys", "b.example.com", ["v1"], "v1"),
                      _crd("xs", "c.example.com", ["foo1", "v1alpha1", "v10", "v2beta3", "v2", "foo10"], "v2"))
    # /apis: APIServices `<version>.<group>` sorted by name, a group where its first one falls
    legacy = [g["name"] for g in docs.group_list["groups"][-3:]]
    assert legacy == ["c.example.com", "b.example.com", "a.example.com"]  # foo1.c < v1.b < v2.a
    assert [v["version"] for v in docs.group["c.example.com"]["versions"]] == [
        "v10", "v2", "v2beta3", "v1alpha1", "foo1", "foo10"]
    # aggregated discovery: by group name
    items = orjson.loads(docs.aggregated_groups)["items"]
    assert [i["metadata"]["name"] for i in items[-3:]] == ["a.example.com", "b.example.com", "c.example.com"]


def test_a_terminating_crd_lists_the_cleanup_verbs():
    docs = _documents(_crd("ends", "e.example.com", ["v1"], "v1",
                           conditions=[{"type": "Terminating", "status": "True"}]))
    assert docs.resource_lists[("e.example.com", "v1")]["resources"][0]["verbs"] == [
        "delete", "deletecollection", "get", "list", "watch"]
