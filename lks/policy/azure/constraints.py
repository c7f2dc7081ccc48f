"""What the azure-policy add-on installs in a cluster for the assignments reaching it: each
Kubernetes definition's ConstraintTemplate, and one Constraint per (assignment, definition) with
the assignment's resolved details, named and labelled as the add-on names them
(`azurepolicy-<template>-<hash>`, `managed-by: azure-policy-addon`, the assignment and definition
ids in annotations, which is how compliance finds its way back). `lks.policy.azure.addon` applies
`desired(await PolicyStore.applying_to(cluster_id))` in each cluster and reports its audits per
constraint through `lks.policy.azure.states`, reading the ids back with `origin`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from lks.policy.azure import catalog

Doc = dict[str, Any]
MANAGED_BY = {"managed-by": "azure-policy-addon"}
ASSIGNMENT = "azure-policy-assignment-id"
DEFINITION = "azure-policy-definition-id"
REFERENCE = "azure-policy-definition-reference-id"
SET_DEFINITION = "azure-policy-setdefinition-id"


@dataclass
class Desired:
    templates: dict[str, Doc] = field(default_factory=dict)  # by template name
    constraints: list[Doc] = field(default_factory=list)


def enforcement_action(effect: str, enforcement_mode: str, warn: Any) -> str | None:
    """Gatekeeper's enforcementAction for an Azure effect: Deny denies (unless the assignment is
    DoNotEnforce), Audit only audits (`dryrun`, or `warn` when the definition's warn parameter is
    set), Disabled installs nothing (None)."""
    effect = (effect or "").lower()
    if effect == "disabled":
        return None
    if effect == "deny" and enforcement_mode != "DoNotEnforce":
        return "deny"
    return "warn" if warn is True else "dryrun"


MAX_NAME = 63  # Gatekeeper's limit on the names of its resources


def constraint_name(template_name: str, assignment_id: str, reference_id: str) -> str:
    """`azurepolicy-<template>-<20 hex>`, the template's part cut so the whole stays within the
    63 characters Gatekeeper's webhook allows its resources (`k8sazurev1loadbalancernopublicips`
    would make 66)."""
    digest = hashlib.sha256(f"{assignment_id.lower()}|{reference_id}".encode()).hexdigest()[:20]
    return f"azurepolicy-{template_name[:MAX_NAME - len('azurepolicy--') - len(digest)]}-{digest}"


def desired(entries: list[Doc]) -> Desired:
    """The templates and constraints for `entries` (`PolicyStore.applying_to`'s answer). An entry
    whose definition has no template lks knows is skipped."""
    out = Desired()
    for entry in entries:
        details = entry["details"]
        action = enforcement_action(entry["effect"], entry["enforcementMode"], details.get("warn"))
        if action is None:
            continue
        try:
            template = catalog.template(entry["definition"])
        except catalog.TemplateError:
            continue
        if template is None:
            continue
        name = template["metadata"]["name"]
        template.setdefault("metadata", {}).setdefault("labels", {}).update(MANAGED_BY)
        out.templates[name] = template
        match: Doc = {"kinds": [{"apiGroups": details.get("apiGroups") or [""], "kinds": details.get("kinds") or []}]}
        for key in ("excludedNamespaces", "namespaces"):
            if details.get(key):
                match[key] = details[key]
        if details.get("labelSelector"):
            match["labelSelector"] = details["labelSelector"]
        assignment_id = entry["assignment"]["id"]
        reference = entry.get("policyDefinitionReferenceId", "")
        spec: Doc = {"enforcementAction": action, "match": match}
        values = {k: v for k, v in (details.get("values") or {}).items() if v is not None}
        if values:
            spec["parameters"] = values
        out.constraints.append({
            "apiVersion": "constraints.gatekeeper.sh/v1beta1",
            "kind": template["spec"]["crd"]["spec"]["names"]["kind"],
            "metadata": {"name": constraint_name(name, assignment_id, reference), "labels": dict(MANAGED_BY),
                         "annotations": {ASSIGNMENT: assignment_id, DEFINITION: entry["definition"]["id"],
                                         REFERENCE: reference, SET_DEFINITION: entry.get("policySetDefinitionId", ""),
                                         "constraint-installed-by": "azure-policy-addon"}},
            "spec": spec,
        })
    return out


def origin(constraint: Doc) -> tuple[str, str, str, str] | None:
    """(assignment id, definition id, reference id, set definition id) of a constraint the add-on
    installed, None for one a user made."""
    meta = constraint.get("metadata") or {}
    notes = meta.get("annotations") or {}
    if (meta.get("labels") or {}).get("managed-by") != MANAGED_BY["managed-by"] or not notes.get(ASSIGNMENT):
        return None
    return notes[ASSIGNMENT], notes.get(DEFINITION, ""), notes.get(REFERENCE, ""), notes.get(SET_DEFINITION, "")
