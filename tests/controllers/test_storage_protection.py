"""Storage object in-use protection: the admission plugin's `kubernetes.io/pvc-protection` and
`kubernetes.io/pv-protection` finalizers, and the PVC and PV protection controllers that hold
a deleted claim while a scheduled pod uses it and a deleted volume while it is bound."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from lks.controllers.pvcprotection import PVCProtectionController
from lks.controllers.pvprotection import PVProtectionController
from lks.kube import deletion
from lks.kube.cluster import Cluster
from lks.kube.registry import WriteOptions

from . import workloads as w

Obj = dict[str, Any]
PVC = "kubernetes.io/pvc-protection"
PV = "kubernetes.io/pv-protection"


@pytest.fixture
async def pvc_controller(cluster: Cluster) -> AsyncIterator[PVCProtectionController]:
    c = PVCProtectionController(cluster)
    await c.start()
    yield c
    await c.stop()


@pytest.fixture
async def pv_controller(cluster: Cluster) -> AsyncIterator[PVProtectionController]:
    c = PVProtectionController(cluster)
    await c.start()
    yield c
    await c.stop()


def _claim(name: str = "data") -> Obj:
    return {"metadata": {"name": name}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                   "resources": {"requests": {"storage": "1Gi"}}}}


def _pod(name: str, claim: str, node: str | None = "node-1") -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": "busybox"}],
                 "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": claim}}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name}, "spec": spec}


def _volume(name: str = "pv1") -> Obj:
    return {"metadata": {"name": name}, "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                                   "hostPath": {"path": "/tmp/pv1"}}}


async def _claim_or_none(cluster: Cluster, name: str = "data") -> Obj | None:
    return await cluster.registry("", "v1", "persistentvolumeclaims").get_or_none("default", name)


async def test_a_claim_in_use_stays_until_its_pod_is_gone(cluster: Cluster, pvc_controller: PVCProtectionController) -> None:
    claims, pods = cluster.registry("", "v1", "persistentvolumeclaims"), cluster.registry("", "v1", "pods")
    created = await claims.create("default", _claim())
    assert created["metadata"]["finalizers"] == [PVC]
    await pods.create("default", _pod("user", "data"))
    await claims.delete("default", "data", deletion.DeleteOptions())
    await w.idle(pvc_controller.queue)
    held = await _claim_or_none(cluster)
    assert held is not None and "deletionTimestamp" in held["metadata"] and held["metadata"]["finalizers"] == [PVC]
    await pods.delete("default", "user", deletion.DeleteOptions(grace_period_seconds=0))
    await w.idle(pvc_controller.queue)
    assert await _claim_or_none(cluster) is None


async def test_an_unused_or_unscheduled_claim_goes_at_once(cluster: Cluster,
                                                           pvc_controller: PVCProtectionController) -> None:
    claims, pods = cluster.registry("", "v1", "persistentvolumeclaims"), cluster.registry("", "v1", "pods")
    await claims.create("default", _claim())
    await pods.create("default", _pod("pending", "data", node=None))  # never scheduled: no kubelet uses it
    await claims.delete("default", "data", deletion.DeleteOptions())
    await w.idle(pvc_controller.queue)
    assert await _claim_or_none(cluster) is None


async def test_a_claim_without_the_finalizer_gets_it(cluster: Cluster, pvc_controller: PVCProtectionController) -> None:
    claims = cluster.registry("", "v1", "persistentvolumeclaims")
    await claims.create("default", _claim())

    def drop(current: Obj) -> Obj:
        current["metadata"].pop("finalizers", None)
        return current

    await claims.patch("default", "data", drop)
    await w.idle(pvc_controller.queue)
    assert (await claims.get("default", "data"))["metadata"]["finalizers"] == [PVC]


async def test_a_bound_volume_stays_until_released(cluster: Cluster, pv_controller: PVProtectionController) -> None:
    volumes = cluster.registry("", "v1", "persistentvolumes")
    created = await volumes.create(None, _volume())
    assert created["metadata"]["finalizers"] == [PV]

    def phase(value: str):
        def change(current: Obj) -> Obj:
            current.setdefault("status", {})["phase"] = value
            return current
        return change

    await volumes.patch(None, "pv1", phase("Bound"), subresource="status")
    await volumes.delete(None, "pv1", deletion.DeleteOptions())
    await w.idle(pv_controller.queue)
    held = await volumes.get_or_none(None, "pv1")
    assert held is not None and held["metadata"]["finalizers"] == [PV]
    await volumes.patch(None, "pv1", phase("Released"), subresource="status")
    await w.idle(pv_controller.queue)
    assert await volumes.get_or_none(None, "pv1") is None


async def test_the_writer_does_not_own_the_finalizer_admission_adds(cluster: Cluster) -> None:
    """The field manager runs before mutating admission, as upstream's: a later server-side
    apply by the claim's creator cannot strip the protection finalizer it never sent."""
    claims = cluster.registry("", "v1", "persistentvolumeclaims")
    created = await claims.create("default", _claim(), WriteOptions(field_manager="kubectl-create"))
    assert created["metadata"]["finalizers"] == [PVC]
    [entry] = created["metadata"]["managedFields"]
    assert "f:finalizers" not in entry["fieldsV1"].get("f:metadata", {})
