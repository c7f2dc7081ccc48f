"""Deletion end to end: finalizers, propagation policies and the garbage collector, namespace
termination, and kubectl's waiting deletes."""

from __future__ import annotations

import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException


def _eventually(check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except ApiException as err:
            if err.status != 404:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.05)


def _gone(read, *args) -> bool:
    try:
        read(*args)
    except ApiException as err:
        if err.status == 404:
            return True
        raise
    return False


def _owned_cm(core, namespace: str, name: str, owner, block: bool = False):
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name, "uid": owner.metadata.uid}
    if block:
        ref["blockOwnerDeletion"] = True
    return core.create_namespaced_config_map(namespace, {"metadata": {"name": name, "ownerReferences": [ref]}})


def test_finalizer_holds_deletion_until_removed(core, namespace):
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    core.delete_namespaced_config_map("held", namespace)
    held = core.read_namespaced_config_map("held", namespace)
    assert held.metadata.deletion_timestamp is not None
    assert held.metadata.deletion_grace_period_seconds == 0
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map("held", namespace, {"metadata": {"finalizers": ["example.com/hold", "x.io/new"]}})
    assert err.value.status == 422 and "no new finalizers can be added" in err.value.body
    core.patch_namespaced_config_map("held", namespace, {"metadata": {"finalizers": None}})
    assert _gone(core.read_namespaced_config_map, "held", namespace)


def test_background_propagation_deletes_dependents(core, namespace):
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    _owned_cm(core, namespace, "dep1", owner)
    _owned_cm(core, namespace, "dep2", owner)
    core.delete_namespaced_config_map("owner", namespace)
    _eventually(lambda: _gone(core.read_namespaced_config_map, "dep1", namespace)
                and _gone(core.read_namespaced_config_map, "dep2", namespace))


def test_dependent_of_missing_owner_is_collected(core, namespace):
    orphan = core.create_namespaced_config_map(namespace, {"metadata": {"name": "lonely", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "never-was", "uid": "00000000-0000-0000-0000-000000000000"}]}})
    assert orphan.metadata.name == "lonely"
    _eventually(lambda: _gone(core.read_namespaced_config_map, "lonely", namespace))


def test_orphan_propagation_keeps_dependents(core, namespace):
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    _owned_cm(core, namespace, "kept", owner)
    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Orphan")
    _eventually(lambda: _gone(core.read_namespaced_config_map, "owner", namespace))
    kept = core.read_namespaced_config_map("kept", namespace)
    assert not kept.metadata.owner_references


def test_foreground_propagation_waits_for_blocking_dependents(core, namespace):
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    core.create_namespaced_config_map(namespace, {"metadata": {
        "name": "slow", "finalizers": ["example.com/slow"],
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                             "uid": owner.metadata.uid, "blockOwnerDeletion": True}]}})
    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Foreground")
    deleting = core.read_namespaced_config_map("owner", namespace)
    assert "foregroundDeletion" in deleting.metadata.finalizers
    _eventually(lambda: core.read_namespaced_config_map("slow", namespace).metadata.deletion_timestamp)
    assert core.read_namespaced_config_map("owner", namespace).metadata.deletion_timestamp
    core.patch_namespaced_config_map("slow", namespace, {"metadata": {"finalizers": None}})
    _eventually(lambda: _gone(core.read_namespaced_config_map, "owner", namespace))


def test_namespace_terminates_then_goes(core, kubectl):
    core.create_namespace({"metadata": {"name": "term"}})
    core.create_namespaced_config_map("term", {"metadata": {"name": "blocker", "finalizers": ["example.com/x"]}})
    core.delete_namespace("term")
    ns = core.read_namespace("term")
    assert ns.status.phase == "Terminating" and ns.metadata.deletion_timestamp
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("term", {"metadata": {"name": "late"}})
    assert err.value.status == 403 and "because it is being terminated" in err.value.body
    _eventually(lambda: core.read_namespaced_config_map("blocker", "term").metadata.deletion_timestamp)
    core.patch_namespaced_config_map("blocker", "term", {"metadata": {"finalizers": None}})
    _eventually(lambda: _gone(core.read_namespace, "term"))


def test_kubectl_delete_waits_and_kubectl_wait_for_delete(lks, kubectl, core, namespace):
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "w", "finalizers": ["example.com/w"]}})
    waiter = lks.kubectl_popen("wait", "--for=delete", "configmap/w", "-n", namespace, "--timeout=30s")
    res = kubectl("delete", "configmap", "w", "-n", namespace, "--wait=false")
    assert 'configmap "w" deleted' in res.stdout
    time.sleep(0.5)
    assert waiter.poll() is None  # still waiting on the finalizer
    core.patch_namespaced_config_map("w", namespace, {"metadata": {"finalizers": None}})
    assert waiter.wait(30) == 0
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "x"}})
    kubectl("delete", "configmap", "x", "-n", namespace, "--timeout=30s")
    assert _gone(core.read_namespaced_config_map, "x", namespace)


def test_delete_collection_by_label(core, namespace):
    for i in range(3):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": f"c{i}", "labels": {"sweep": "yes"}}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "stay"}})
    core.delete_collection_namespaced_config_map(namespace, label_selector="sweep=yes")
    left = {c.metadata.name for c in core.list_namespaced_config_map(namespace).items}
    assert "stay" in left and not left & {"c0", "c1", "c2"}


def test_dry_run_delete_keeps_the_object(core, namespace):
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "dry"}})
    core.delete_namespaced_config_map("dry", namespace, dry_run="All")
    assert core.read_namespaced_config_map("dry", namespace).metadata.name == "dry"


def test_delete_precondition_uid(core, namespace):
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "pre"}})
    with pytest.raises(ApiException) as err:
        core.delete_namespaced_config_map("pre", namespace, body=client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid="not-the-uid")))
    assert err.value.status == 409 and "the UID in the precondition (not-the-uid) does not match" in err.value.body
