"""The azure-policy add-on's sync (`lks.policy.azure.addon`) over three in-process clusters on
memory stores: which assignments reach which cluster (subscription, group, cluster scope,
notScopes), effects and enforcementMode as enforcementAction, Disabled installing nothing, an
assignment's removal taking its objects, convergence at start after changes made while the
sync was not running, compliance states after the audit, and the what-if."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from support import ADMIN, CA, TOKEN  # noqa: F401

from lks import store
from lks.clock import ManualClock
from lks.controllers.crd import CRDController
from lks.kube import deletion
from lks.kube.cluster import Cluster
from lks.kube.registry import WriteOptions
from lks.policy import gatekeeper
from lks.policy.azure import addon, assignments, states

SUB = "00000000-0000-0000-0000-000000000001"
NO_PRIVILEGE = "/providers/Microsoft.Authorization/policyDefinitions/95edb821-ddaf-4404-9732-666045e056b4"
KIND = "K8sAzureV2NoPrivilege"


def cluster_id(group: str, name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.ContainerService/managedClusters/{name}"


PLACES = {"a1": cluster_id("ga", "a1"), "a2": cluster_id("ga", "a2"), "b1": cluster_id("gb", "b1")}


def assignment(name: str, scope: str, effect: str = "Deny", **props: object) -> dict:
    return {"id": f"{scope}/providers/Microsoft.Authorization/policyAssignments/{name}", "name": name,
            "type": "Microsoft.Authorization/policyAssignments",
            "properties": {"policyDefinitionId": NO_PRIVILEGE, "scope": scope, "notScopes": [],
                           "parameters": {"effect": {"value": effect}}, "enforcementMode": "Default", **props}}


@pytest.fixture
async def clusters() -> AsyncIterator[dict[str, Cluster]]:
    clock = ManualClock()
    made: dict[str, Cluster] = {}
    controllers = []
    for name in PLACES:
        backend = store.open_store("memory://")
        await backend.start()
        c = Cluster(id=f"addon-{name}", name=name, kubernetes_version="1.36", backend=backend, ca=CA,
                    tokens={TOKEN: ADMIN}, clock=clock)
        await c.start()
        crds = CRDController(c)
        await crds.start()
        await gatekeeper.configure(c, enabled=True)
        made[name] = c
        controllers.append(crds)
    yield made
    for c, crds in zip(made.values(), controllers, strict=True):
        await gatekeeper.stop(c.id)
        await crds.stop()
        await c.stop()
        await c.store.close()


@pytest.fixture
async def meta() -> AsyncIterator[store.Backend]:
    b = store.open_store("memory://")
    await b.start()
    yield b
    await b.close()


def make_sync(meta: store.Backend, clusters: dict[str, Cluster]) -> addon.AddonSync:
    async def targets() -> list[tuple[str, str]]:
        return [(PLACES[name], c.id) for name, c in clusters.items()]
    by_id = {c.id: c for c in clusters.values()}
    return addon.AddonSync(meta=meta, targets=targets, cluster_of=by_id.get, clock=ManualClock())


async def installed(c: Cluster) -> dict[str, dict]:
    """The add-on's constraints in the cluster, by name (none when the kind is not served)."""
    if await c.lookup("constraints.gatekeeper.sh", "v1beta1", KIND.lower()) is None:
        return {}
    reg = c.registry("constraints.gatekeeper.sh", "v1beta1", KIND.lower())
    return {o["metadata"]["name"]: o for o in (await reg.cache()).objects.values()}


async def settle(sync: addon.AddonSync) -> None:
    await asyncio.sleep(0.05)  # the store watch delivers the change
    await asyncio.wait_for(sync.settled(), 30)


async def actions(clusters: dict[str, Cluster]) -> dict[str, list[str]]:
    return {name: sorted(o["spec"]["enforcementAction"] for o in (await installed(c)).values())
            for name, c in clusters.items()}


async def test_scopes_effects_and_removal(meta: store.Backend, clusters: dict[str, Cluster]):
    sync = make_sync(meta, clusters)
    policies = assignments.PolicyStore(meta)
    await sync.start()
    try:
        await settle(sync)
        assert await actions(clusters) == {"a1": [], "a2": [], "b1": []}

        group_a = f"/subscriptions/{SUB}/resourceGroups/ga"
        await policies.put_assignment(assignment("deny-a", group_a, notScopes=[PLACES["a2"]]))
        await policies.put_assignment(assignment("audit-b1", PLACES["b1"], "Audit"))
        await policies.put_assignment(assignment("off", f"/subscriptions/{SUB}", "Disabled"))
        await policies.put_assignment(assignment("dne", f"/subscriptions/{SUB}", enforcementMode="DoNotEnforce"))
        await settle(sync)
        assert await actions(clusters) == {"a1": ["deny", "dryrun"], "a2": ["dryrun"], "b1": ["dryrun", "dryrun"]}
        one = next(iter((await installed(clusters["a2"])).values()))
        assert one["metadata"]["labels"] == {"managed-by": "azure-policy-addon"}
        assert one["metadata"]["managedFields"][0]["manager"] == "azure-policy-addon"

        # the audit after the sync reported every cluster, Compliant (nothing privileged runs)
        found = await states.ComplianceStates(meta).all()
        assert {(s["resourceId"], s["policyAssignmentName"], s["complianceState"]) for s in found} == {
            (PLACES["a1"], "deny-a", "Compliant"), (PLACES["a1"], "dne", "Compliant"),
            (PLACES["a2"], "dne", "Compliant"), (PLACES["b1"], "audit-b1", "Compliant"),
            (PLACES["b1"], "dne", "Compliant")}

        for name in ("deny-a", "audit-b1", "dne"):
            scope = {"deny-a": group_a, "audit-b1": PLACES["b1"], "dne": f"/subscriptions/{SUB}"}[name]
            await policies.delete_assignment(f"{scope}/providers/Microsoft.Authorization/policyAssignments/{name}")
        await settle(sync)
        assert await actions(clusters) == {"a1": [], "a2": [], "b1": []}
        templates = clusters["a1"].registry("templates.gatekeeper.sh", "v1", "constrainttemplates")
        assert not (await templates.cache()).objects
    finally:
        await sync.stop()


async def test_converges_at_start_and_reports_violations(meta: store.Backend, clusters: dict[str, Cluster]):
    pods = clusters["b1"].registry("", "v1", "pods")  # a privileged pod runs in b1 before any policy
    await pods.create("default", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "priv"}, "spec": {
        "containers": [{"name": "c", "image": "nginx", "securityContext": {"privileged": True}}]}}, WriteOptions())
    policies = assignments.PolicyStore(meta)
    first = assignment("deny-all", f"/subscriptions/{SUB}")
    await policies.put_assignment(first)
    sync = make_sync(meta, clusters)
    await sync.start()
    await settle(sync)
    assert await actions(clusters) == {"a1": ["deny"], "a2": ["deny"], "b1": ["deny"]}
    await sync.stop()

    # meanwhile (the service down): the assignment goes, another comes
    await policies.delete_assignment(first["id"])
    await policies.put_assignment(assignment("audit-all", f"/subscriptions/{SUB}", "Audit"))

    sync = make_sync(meta, clusters)
    await sync.start()
    try:
        await settle(sync)
        assert await actions(clusters) == {"a1": ["dryrun"], "a2": ["dryrun"], "b1": ["dryrun"]}
        found = {s["resourceId"]: s for s in await states.ComplianceStates(meta).all()
                 if s["policyAssignmentName"] == "audit-all"}
        assert found[PLACES["b1"]]["complianceState"] == "NonCompliant"
        assert [(c["id"], c["type"]) for c in found[PLACES["b1"]]["components"]] == [("default/priv", "Pod")]
        assert found[PLACES["a1"]]["complianceState"] == "Compliant"

        # what-if for a proposed Deny at group gb: b1's privileged pod, and nothing of group ga
        proposal = assignment("would-deny", f"/subscriptions/{SUB}/resourceGroups/gb")
        report = await sync.what_if(proposal)
        assert [(r["clusterName"], r["enforcementAction"], [(o["namespace"], o["name"]) for o in r["objects"]])
                for r in report] == [("b1", "deny", [("default", "priv")])]
    finally:
        await sync.stop()


async def test_manual_edits_and_deletions_are_put_back(meta: store.Backend, clusters: dict[str, Cluster]):
    sync = make_sync(meta, clusters)
    await assignments.PolicyStore(meta).put_assignment(assignment("audit-a1", PLACES["a1"], "Audit"))
    await sync.start()
    try:
        await settle(sync)
        c = clusters["a1"]
        name, obj = next(iter((await installed(c)).items()))
        reg = c.registry("constraints.gatekeeper.sh", "v1beta1", KIND.lower())
        edited = {**obj, "spec": {**obj["spec"], "enforcementAction": "deny"}}
        await reg.update(None, name, edited, WriteOptions(user=ADMIN))

        async def reverted():
            found = (await installed(c)).get(name)
            return found is not None and found["spec"]["enforcementAction"] == "dryrun"
        for _ in range(500):
            if await reverted():
                break
            await asyncio.sleep(0.01)
        assert await reverted()

        await reg.delete(None, name, deletion.DeleteOptions())
        for _ in range(500):
            if name in await installed(c):
                break
            await asyncio.sleep(0.01)
        assert name in await installed(c)
    finally:
        await sync.stop()
