"""The garbage collector reads as upstream's metadata informers do, one per resource, as
`system:kube-controller-manager`: with list and watch on ConfigMaps taken out of its bootstrap
role (edited with autoupdate off), ConfigMaps are not followed (the reflector's Forbidden is
logged) and a ConfigMap whose owner is gone is not collected, while other resources' dependents
still are; once the role allows ConfigMaps again, they are listed and the orphan is collected.
A type that comes later (a CRD's) is decided and followed too."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from lks.clock import ManualClock
from lks.controllers import identities
from lks.controllers.crd import CRDController
from lks.controllers.garbagecollector import GarbageCollector
from lks.kube import deletion
from lks.kube.cluster import Cluster

from .test_informer_identity import LIST_WATCH_ALL, _logged, _rules, _until
from .test_replicaset import wait_for

NS = "default"
FORBIDDEN = ('failed to list *v1.PartialObjectMetadata: configmaps is forbidden: User '
             '"system:kube-controller-manager" cannot list resource "configmaps" in API group "" '
             'at the cluster scope')


def _all_but_configmaps(cluster: Cluster):
    """The role's rules with list/watch on everything but ConfigMaps (RBAC only adds: every
    other core resource by name, every other group whole)."""
    core = sorted({reg.rt.resource for reg in cluster.storage_registries() if reg.rt.group == ""} - {"configmaps"})
    groups = sorted({reg.rt.group for reg in cluster.storage_registries() if reg.rt.group})
    narrowed = [{"apiGroups": [""], "resources": core, "verbs": ["list", "watch"]},
                {"apiGroups": groups, "resources": ["*"], "verbs": ["list", "watch"]}]
    return lambda rules: [r for r in rules if r != LIST_WATCH_ALL] + narrowed


def _restored(rules: list[dict]) -> list[dict]:
    return [r for r in rules if r.get("verbs") != ["list", "watch"]] + [LIST_WATCH_ALL]


@pytest.fixture
async def gc(cluster: Cluster, clock: ManualClock) -> AsyncIterator[GarbageCollector]:
    collector = GarbageCollector(cluster)
    yield collector
    await collector.stop()


async def _owned(cluster: Cluster, resource: str, owner: str, dependent: str) -> None:
    reg = cluster.registry("", "v1", resource)
    made = await reg.create(NS, {"metadata": {"name": owner}})
    ref = {"apiVersion": "v1", "kind": made["kind"], "name": owner, "uid": made["metadata"]["uid"]}
    await reg.create(NS, {"metadata": {"name": dependent, "ownerReferences": [ref]}})


async def _gone(cluster: Cluster, resource: str, name: str, group: str = "") -> bool:
    return await cluster.registry(group, "v1", resource).get_or_none(NS, name) is None


async def _refuse_configmaps(cluster: Cluster) -> None:
    await _rules(cluster, "system:kube-controller-manager", _all_but_configmaps(cluster))
    await _until(cluster, identities.CONTROLLER_MANAGER, "", "configmaps", allowed=False)


async def _collected_while_refused(cluster: Cluster, caplog: pytest.LogCaptureFixture) -> None:
    """The owners go: the Secret's dependent is collected, the ConfigMap's is not (its owner's
    deletion came first, so by then the collector has seen and ignored it)."""
    await _owned(cluster, "secrets", "s-owner", "s-dependent")
    await wait_for(lambda: _logged(caplog, FORBIDDEN))
    await cluster.registry("", "v1", "configmaps").delete(NS, "cm-owner", deletion.DeleteOptions())
    await cluster.registry("", "v1", "secrets").delete(NS, "s-owner", deletion.DeleteOptions())
    await wait_for(lambda: _gone(cluster, "secrets", "s-dependent"))
    assert not await _gone(cluster, "configmaps", "cm-dependent")


async def test_a_resource_refused_from_the_start_is_not_collected_until_allowed(
        cluster: Cluster, gc: GarbageCollector, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="lks.controllers.informer")
    await _refuse_configmaps(cluster)
    await gc.start()
    await _owned(cluster, "configmaps", "cm-owner", "cm-dependent")
    await _collected_while_refused(cluster, caplog)
    await _rules(cluster, "system:kube-controller-manager", _restored)
    await wait_for(lambda: _gone(cluster, "configmaps", "cm-dependent"))


async def test_a_resource_refused_later_is_no_longer_followed_until_allowed_again(
        cluster: Cluster, gc: GarbageCollector, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="lks.controllers.informer")
    await gc.start()
    await _owned(cluster, "configmaps", "cm-owner", "cm-dependent")
    await _refuse_configmaps(cluster)  # the collector follows the role's change
    await _collected_while_refused(cluster, caplog)
    await _rules(cluster, "system:kube-controller-manager", _restored)
    await wait_for(lambda: _gone(cluster, "configmaps", "cm-dependent"))
    # followed again: a new orphan goes at once
    await _owned(cluster, "configmaps", "cm-owner-2", "cm-dependent-2")
    await cluster.registry("", "v1", "configmaps").delete(NS, "cm-owner-2", deletion.DeleteOptions())
    await wait_for(lambda: _gone(cluster, "configmaps", "cm-dependent-2"))


WIDGETS = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object"}}}]}}


async def test_a_type_that_comes_later_is_decided_and_followed(cluster: Cluster, gc: GarbageCollector) -> None:
    crds = CRDController(cluster)
    await crds.start()
    try:
        await gc.start()
        await cluster.registry("apiextensions.k8s.io", "v1", "customresourcedefinitions").create(None, WIDGETS)
        await wait_for(lambda: cluster.catalog.lookup("example.com", "v1", "widgets"))
        widgets = cluster.registry("example.com", "v1", "widgets")
        made = await widgets.create(NS, {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
        ref = {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": made["metadata"]["uid"]}
        await widgets.create(NS, {"apiVersion": "example.com/v1", "kind": "Widget",
                                  "metadata": {"name": "w-part", "ownerReferences": [ref]}})
        await widgets.delete(NS, "w", deletion.DeleteOptions())
        await wait_for(lambda: _gone(cluster, "widgets", "w-part", "example.com"))
    finally:
        await crds.stop()
