"""Compliance states: what each cluster's Gatekeeper audit found for each assignment reaching it,
as Azure Policy keeps them (`Microsoft.PolicyInsights/policyStates/latest`). AKS reports a
`Microsoft.Kubernetes.Data` policy on the cluster itself: one state per (assignment, definition,
cluster) whose `resourceId` is the managed cluster's id, NonCompliant when any Kubernetes object
violates it, the objects being the state's components (`$expand=components`, each `{id: namespace/
name, type: Kind, name, complianceState}`).

The in-cluster side calls `ComplianceStates.report_constraint` (or `report`) after an audit; `lks.arm.policy` queries
(`query`, with `lks.policy.azure.odata` for `$filter`) and summarises (`summarize`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from lks import store
from lks.policy.azure import assignments, constraints

Doc = dict[str, Any]
PREFIX = "/azurepolicy/states/"
CLUSTER_TYPE = "Microsoft.ContainerService/managedClusters"


@dataclass(frozen=True, slots=True)
class Component:
    """One Kubernetes object an audit judged."""

    kind: str
    name: str
    namespace: str = ""
    compliant: bool = False
    message: str = ""


def _key(cluster_id: str, assignment_id: str, definition_id: str, reference: str) -> str:
    return PREFIX + "|".join(s.lower() for s in (cluster_id, assignment_id, definition_id, reference))


class ComplianceStates:
    def __init__(self, backend: store.Backend):
        self.store = backend

    async def report(self, *, cluster_id: str, assignment: Doc, definition: Doc, components: list[Component],
                     timestamp: str, reference_id: str = "", set_definition: Doc | None = None,
                     effect: str = "") -> Doc:
        """Replace the state of `definition` under `assignment` on the cluster with an audit's
        findings (`components`: the objects judged, compliant or not); the state as queries show it."""
        parts = cluster_id.split("/")
        props = assignment["properties"]
        meta = definition["properties"].get("metadata") or {}
        non_compliant = any(not c.compliant for c in components)
        state: Doc = {
            "@odata.id": None,
            "timestamp": timestamp,
            "resourceId": cluster_id,
            "policyAssignmentId": assignment["id"],
            "policyDefinitionId": definition["id"],
            "effectiveParameters": "",
            "isCompliant": not non_compliant,
            "subscriptionId": parts[2] if len(parts) > 2 else "",
            "resourceType": CLUSTER_TYPE,
            "resourceLocation": "",
            "resourceGroup": parts[4] if len(parts) > 4 else "",
            "resourceTags": "tbd",
            "policyAssignmentName": assignment["name"],
            "policyAssignmentOwner": "tbd",
            "policyAssignmentParameters": orjson.dumps(props.get("parameters") or {}).decode(),
            "policyAssignmentScope": props["scope"],
            "policyDefinitionName": definition["name"],
            "policyDefinitionAction": (effect or "").lower(),
            "policyDefinitionCategory": meta.get("category", "tbd"),
            "policySetDefinitionId": set_definition["id"] if set_definition else "",
            "policySetDefinitionName": set_definition["name"] if set_definition else "",
            "policySetDefinitionOwner": "",
            "policySetDefinitionCategory": ((set_definition or {}).get("properties", {}).get("metadata") or {})
            .get("category", ""),
            "policySetDefinitionParameters": "",
            "managementGroupIds": "",
            "policyDefinitionReferenceId": reference_id,
            "complianceState": "NonCompliant" if non_compliant else "Compliant",
            "policyDefinitionGroupNames": [""],
            "policyDefinitionVersion": definition["properties"].get("version", ""),
            "policySetDefinitionVersion": (set_definition or {}).get("properties", {}).get("version", ""),
            "policyAssignmentVersion": "",
            "components": [{"id": f"{c.namespace}/{c.name}" if c.namespace else c.name, "type": c.kind,
                            "name": c.name, "timestamp": timestamp,
                            "complianceState": "Compliant" if c.compliant else "NonCompliant",
                            **({"message": c.message} if c.message else {})} for c in components],
        }
        key = _key(cluster_id, assignment["id"], definition["id"], reference_id)
        raw = orjson.dumps(state)
        for _ in range(8):
            kv = await self.store.get(key)
            try:
                if kv is None:
                    await self.store.create(key, raw)
                else:
                    await self.store.update(key, raw, mod_revision=kv.mod_revision)
                break
            except (store.KeyExists, store.RevisionConflict, store.NotFound):
                continue
        return state

    async def report_constraint(self, *, cluster_id: str, constraint: Doc, policies: assignments.PolicyStore,
                                components: list[Component], timestamp: str) -> Doc | None:
        """`report` for an audit of one constraint the azure-policy add-on installed (its
        annotations name the assignment and definition, `lks.policy.azure.constraints.origin`);
        None for a constraint a user made, or whose assignment is gone."""
        found = constraints.origin(constraint)
        if found is None:
            return None
        assignment_id, definition_id, reference, set_id = found
        assignment = await policies.assignment(assignment_id)
        definition = await policies.definition(definition_id)
        if assignment is None or definition is None:
            return None
        set_doc = await policies.set_definition(set_id) if set_id else None
        action = (constraint.get("spec") or {}).get("enforcementAction", "deny")
        return await self.report(cluster_id=cluster_id, assignment=assignment, definition=definition,
                                 components=components, timestamp=timestamp, reference_id=reference,
                                 set_definition=set_doc, effect="deny" if action == "deny" else "audit")

    async def all(self) -> list[Doc]:
        res = await self.store.list(PREFIX)
        return [orjson.loads(kv.value) for kv in res.items]

    async def forget(self, *, cluster_id: str | None = None, assignment_id: str | None = None) -> None:
        """Drop the states of a deleted cluster or assignment."""
        for state in await self.all():
            if (cluster_id and state["resourceId"].lower() == cluster_id.lower()) or \
                    (assignment_id and state["policyAssignmentId"].lower() == assignment_id.lower()):
                key = _key(state["resourceId"], state["policyAssignmentId"], state["policyDefinitionId"],
                           state["policyDefinitionReferenceId"])
                try:
                    await self.store.delete(key)
                except store.NotFound:
                    pass


def summarize(states: list[Doc]) -> Doc:
    """ARM's `SummaryResults` over `states`, plus the per-assignment and per-definition breakdown."""
    def results(group: list[Doc]) -> Doc:
        bad_resources = {s["resourceId"].lower() for s in group if s["complianceState"] == "NonCompliant"}
        good_resources = {s["resourceId"].lower() for s in group} - bad_resources
        bad_policies = {(s["policyAssignmentId"].lower(), s["policyDefinitionId"].lower(),
                         s["policyDefinitionReferenceId"]) for s in group if s["complianceState"] == "NonCompliant"}
        all_policies = {(s["policyAssignmentId"].lower(), s["policyDefinitionId"].lower(),
                         s["policyDefinitionReferenceId"]) for s in group}
        return {"nonCompliantResources": len(bad_resources), "nonCompliantPolicies": len(bad_policies),
                "resourceDetails": [{"complianceState": "compliant", "count": len(good_resources)},
                                    {"complianceState": "noncompliant", "count": len(bad_resources)}],
                "policyDetails": [{"complianceState": "compliant", "count": len(all_policies - bad_policies)},
                                  {"complianceState": "noncompliant", "count": len(bad_policies)}],
                "policyGroupDetails": []}

    by_assignment: dict[str, list[Doc]] = {}
    for s in states:
        by_assignment.setdefault(s["policyAssignmentId"], []).append(s)
    assignments = []
    for assignment_id, group in by_assignment.items():
        by_definition: dict[tuple[str, str], list[Doc]] = {}
        for s in group:
            by_definition.setdefault((s["policyDefinitionId"], s["policyDefinitionReferenceId"]), []).append(s)
        assignments.append({
            "policyAssignmentId": assignment_id,
            "policySetDefinitionId": group[0]["policySetDefinitionId"],
            "results": results(group),
            "policyDefinitions": [{"policyDefinitionId": d, "policyDefinitionReferenceId": ref,
                                   "effect": g[0]["policyDefinitionAction"], "policyDefinitionGroupNames": [""],
                                   "results": results(g)} for (d, ref), g in by_definition.items()],
            "policyGroups": [],
        })
    return {"results": results(states), "policyAssignments": assignments}
