"""Where Azure Policy's writable resources live: custom definitions and initiatives
(subscription scope) and assignments (subscription, resource group or resource scope), as documents in the service's
store under `/azurepolicy/`, keyed by their lower-cased ARM id so that one prefix lists them all
across scopes. `lks.arm.policy` writes them; `applying_to` answers the in-cluster side (which
assignments reach a cluster, and what each asks of it, via `lks.policy.azure.parameters`).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from lks import store
from lks.arm.errors import ARMError
from lks.identity import rbac
from lks.policy.azure import catalog, parameters

log = logging.getLogger(__name__)

Doc = dict[str, Any]
PREFIX = "/azurepolicy"
DEFINITIONS = PREFIX + "/definitions"
SETS = PREFIX + "/setdefinitions"
ASSIGNMENTS = PREFIX + "/assignments"


def _key(kind: str, resource_id: str) -> str:
    return kind + resource_id.lower()


class PolicyStore:
    def __init__(self, backend: store.Backend):
        self.store = backend

    async def _get(self, kind: str, resource_id: str) -> Doc | None:
        kv = await self.store.get(_key(kind, resource_id))
        return orjson.loads(kv.value) if kv else None

    async def _put(self, kind: str, doc: Doc) -> None:
        k, raw = _key(kind, doc["id"]), orjson.dumps(doc)
        for _ in range(8):
            kv = await self.store.get(k)
            try:
                if kv is None:
                    await self.store.create(k, raw)
                else:
                    await self.store.update(k, raw, mod_revision=kv.mod_revision)
                return
            except (store.KeyExists, store.RevisionConflict, store.NotFound):
                continue
        raise store.StoreError(f"could not write {doc['id']}")

    async def _delete(self, kind: str, resource_id: str) -> None:
        try:
            await self.store.delete(_key(kind, resource_id))
        except store.NotFound:
            pass

    async def _list(self, kind: str) -> list[Doc]:
        res = await self.store.list(kind + "/")
        return [orjson.loads(kv.value) for kv in res.items]

    # -- definitions ----------------------------------------------------------------------------

    async def definition(self, definition_id: str) -> Doc | None:
        """A definition by id: a built-in (`/providers/Microsoft.Authorization/policyDefinitions/{guid}`)
        or a custom one at its subscription."""
        if definition_id.lower().startswith("/providers/microsoft.authorization/policydefinitions/"):
            return catalog.definition(definition_id.rsplit("/", 1)[1])
        return await self._get(DEFINITIONS, definition_id)

    async def custom_definitions(self) -> list[Doc]:
        return await self._list(DEFINITIONS)

    async def put_definition(self, doc: Doc) -> None:
        await self._put(DEFINITIONS, doc)

    async def delete_definition(self, definition_id: str) -> None:
        await self._delete(DEFINITIONS, definition_id)

    async def set_definition(self, set_id: str) -> Doc | None:
        """An initiative by id: a built-in or a custom one at its subscription."""
        if set_id.lower().startswith("/providers/microsoft.authorization/policysetdefinitions/"):
            return catalog.set_definition(set_id.rsplit("/", 1)[1])
        return await self._get(SETS, set_id)

    async def custom_set_definitions(self) -> list[Doc]:
        return await self._list(SETS)

    async def put_set_definition(self, doc: Doc) -> None:
        await self._put(SETS, doc)

    async def delete_set_definition(self, set_id: str) -> None:
        await self._delete(SETS, set_id)

    # -- assignments ----------------------------------------------------------------------------

    async def assignment(self, assignment_id: str) -> Doc | None:
        return await self._get(ASSIGNMENTS, assignment_id)

    async def assignments(self) -> list[Doc]:
        return await self._list(ASSIGNMENTS)

    async def put_assignment(self, doc: Doc) -> None:
        await self._put(ASSIGNMENTS, doc)

    async def delete_assignment(self, assignment_id: str) -> None:
        await self._delete(ASSIGNMENTS, assignment_id)

    async def delete_under(self, scope: str) -> None:
        """Forget the assignments at `scope` or below it (a deleted cluster or group takes its own)."""
        key = rbac.scope_key(scope)
        for doc in await self.assignments():
            if rbac.covers(key, rbac.scope_key(doc["properties"]["scope"])):
                await self.delete_assignment(doc["id"])

    async def applying_to(self, resource_id: str) -> list[Doc]:
        """What the assignments reaching the resource `resource_id` (a managed cluster) ask of it:
        one entry per Kubernetes definition (an initiative's members each), with the assignment,
        the definition, its effect and resolved details. An assignment reaches a resource when its
        scope covers it and none of its `notScopes` does; `DoNotEnforce` turns Deny into Audit as far
        as admission goes (`enforcementMode` is passed along for the caller to honour)."""
        out: list[Doc] = []
        for doc in await self.assignments():
            if reaches(doc, resource_id):
                out.extend(await self.asks(doc))
        return out

    async def asks(self, doc: Doc) -> list[Doc]:
        """`applying_to`'s entries of one assignment (stored, or proposed: a what-if)."""
        out: list[Doc] = []
        props = doc["properties"]
        params = {k: v.get("value") for k, v in (props.get("parameters") or {}).items()}
        target = props["policyDefinitionId"]
        if "/policysetdefinitions/" in target.lower():
            set_doc = await self.set_definition(target)
            if set_doc is None:
                return out
            try:
                effective = parameters.check(doc["name"], set_doc, props.get("parameters") or {})
            except ARMError:
                log.warning("assignment %s: its parameters no longer fit %s", doc["id"], target)
                return out
            members = parameters.members(set_doc, effective)
        else:
            members = [("", target, params)]
        for reference, definition_id, values in members:
            definition = await self.definition(definition_id)
            if definition is None or definition["properties"].get("mode") != catalog.KUBERNETES_MODE:
                continue
            # an initiative may pass what an older version of a member declared (HostNetworkPorts'
            # minPort/maxPort): the member takes what it declares
            known = {k.lower() for k in parameters.declared(definition)}
            try:
                effective = parameters.check(doc["name"], definition, {
                    k: {"value": v} for k, v in values.items() if v is not None and k.lower() in known})
            except ARMError:
                log.warning("assignment %s: skipping %s, its parameters do not fit", doc["id"], definition_id)
                continue
            resolved = parameters.resolve(definition, effective)
            out.append({"assignment": doc, "definition": definition, "policyDefinitionReferenceId": reference,
                        "policySetDefinitionId": target if reference else "",
                        "enforcementMode": props.get("enforcementMode", "Default"), **resolved})
        return out


def reaches(doc: Doc, resource_id: str) -> bool:
    """Whether the assignment `doc` reaches the resource: its scope covers it, no notScope does."""
    key = rbac.scope_key(resource_id)
    props = doc["properties"]
    return rbac.covers(rbac.scope_key(props["scope"]), key) and \
        not any(rbac.covers(rbac.scope_key(s), key) for s in props.get("notScopes") or [])
