"""Azure RBAC on the management plane: role assignments (a principal, a role, a scope), kept in
the service's store under `/identity/roleAssignments/<name>` and indexed in memory by principal,
and the decision ARM makes for every request: does one of the caller's assignments (its own or
one of its groups') sit at the request's scope or above it, with a role that grants the action?

A decision looks only at the caller's own few assignments (the index), so it costs the same with
ten or ten thousand assignments in the service. The bootstrap token of `config.json` is the
service's first Owner: an Owner assignment at subscription scope made at start-up (`ensure_owner`),
listed like any other. `lks.arm.authorization` serves the assignments as ARM resources;
`lks.arm.app` asks `Access.allows` before it calls a handler, and list handlers filter with it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from lks import store
from lks.identity import roles
from lks.identity.caller import Caller

PREFIX = "/identity/roleAssignments/"
DEFINITIONS = "/identity/roleDefinitions/"  # custom roles
TYPE = "Microsoft.Authorization/roleAssignments"
BOOTSTRAP_NAME = "lks-bootstrap"  # what messages call the bootstrap token's principal

Doc = dict[str, Any]


def bootstrap_object_id(subscription_id: str) -> str:
    """The object id of the bootstrap token's principal: stable for a service (its subscription)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"lks:{subscription_id.lower()}:bootstrap"))


def scope_key(scope: str) -> str:
    """A scope as compared: lower case, no trailing slash ("/" for the root)."""
    return scope.lower().rstrip("/") or "/"


def covers(outer: str, inner: str) -> bool:
    """Whether scope key `outer` is `inner` or one of its ancestors (`/subscriptions/s/resourcegroups/rg`
    covers that group and everything in it, not `…/rg2`)."""
    return outer == "/" or inner == outer or inner.startswith(outer + "/")


@dataclass(frozen=True, slots=True)
class Assignment:
    name: str  # the GUID
    scope: str  # as created
    scope_key: str
    role_id: str  # the role definition's GUID, lower case
    principal_id: str  # lower case
    doc: Doc  # as ARM shows it

    @property
    def id(self) -> str:
        return self.doc["id"]

    @classmethod
    def of(cls, doc: Doc) -> Assignment:
        props = doc["properties"]
        return cls(doc["name"], props["scope"], scope_key(props["scope"]), roles.guid_of(props["roleDefinitionId"]),
                   props["principalId"].lower(), doc)


class RoleAssignments:
    """Every role assignment of the service, written through to the store and indexed by
    principal. One process serves the management API, so the index is the truth once loaded."""

    def __init__(self, backend: store.Backend):
        self.store = backend
        self._by_name: dict[str, Assignment] = {}
        self._by_principal: dict[str, list[Assignment]] = {}
        self.bootstrap_id: str | None = None  # set by ensure_owner
        self.custom: dict[str, roles.Role] = {}  # custom role definitions by GUID

    async def start(self, subscription_id: str, *, now: str) -> None:
        """Load every assignment, then make sure of the bootstrap Owner (`ensure_owner`)."""
        await self.load()
        await self.ensure_owner(subscription_id, now=now)

    async def load(self) -> None:
        res = await self.store.list(PREFIX)
        self._by_name.clear()
        self._by_principal.clear()
        for kv in res.items:
            self._index(Assignment.of(orjson.loads(kv.value)))
        self.custom = {r.id: r for r in (roles.custom(orjson.loads(kv.value))
                                         for kv in (await self.store.list(DEFINITIONS)).items)}

    async def ensure_owner(self, subscription_id: str, *, now: str) -> None:
        """The bootstrap principal as Owner of the subscription, made again at a start if it is
        gone: the token of config.json stays able to do everything (and to mend a mistake)."""
        self.bootstrap_id = bootstrap_object_id(subscription_id)
        scope = f"/subscriptions/{subscription_id}"
        if self.find(self.bootstrap_id, roles.OWNER.id, scope) is None:
            name = str(uuid.uuid5(uuid.NAMESPACE_URL, f"lks:{subscription_id.lower()}:bootstrap-owner"))
            await self.create(document(name, scope, roles.definition_id(roles.OWNER.id, scope), self.bootstrap_id,
                                       "ServicePrincipal", created_by=self.bootstrap_id, now=now,
                                       description="The bootstrap token of the service (config.json)"))

    # -- reads ----------------------------------------------------------------------------

    def role(self, guid: str) -> roles.Role | None:
        """The built-in or custom role definition with that GUID."""
        return roles.get(guid) or self.custom.get(guid.lower())

    def get(self, name: str) -> Assignment | None:
        return self._by_name.get(name.lower())

    def all(self) -> Iterable[Assignment]:
        return self._by_name.values()

    def of_principals(self, principal_ids: Iterable[str]) -> list[Assignment]:
        out: list[Assignment] = []
        for pid in principal_ids:
            out.extend(self._by_principal.get(pid.lower(), ()))
        return out

    def find(self, principal_id: str, role_id: str, scope: str) -> Assignment | None:
        """The assignment of that role to that principal at exactly that scope, if any."""
        key, role_id = scope_key(scope), role_id.lower()
        return next((a for a in self._by_principal.get(principal_id.lower(), ())
                     if a.role_id == role_id and a.scope_key == key), None)

    # -- writes ---------------------------------------------------------------------------

    async def create(self, doc: Doc) -> Assignment:
        a = Assignment.of(doc)
        await self.store.create(PREFIX + a.name.lower(), orjson.dumps(doc))
        self._index(a)
        return a

    async def delete(self, name: str) -> Assignment | None:
        a = self._by_name.pop(name.lower(), None)
        if a is None:
            return None
        self._by_principal[a.principal_id] = [x for x in self._by_principal[a.principal_id] if x is not a]
        try:
            await self.store.delete(PREFIX + a.name.lower())
        except store.NotFound:
            pass
        return a

    async def delete_within(self, scope: str) -> None:
        """Delete the assignments at `scope` and beneath it: a deleted resource takes its role
        assignments along, so one made again with the same name starts with none."""
        key = scope_key(scope)
        for a in [a for a in self._by_name.values() if covers(key, a.scope_key)]:
            await self.delete(a.name)

    async def put_role(self, role: roles.Role) -> None:
        """Create or replace a custom role."""
        key = DEFINITIONS + role.id
        raw = orjson.dumps(role.document("/"))
        kv = await self.store.get(key)
        if kv is None:
            await self.store.create(key, raw)
        else:
            await self.store.update(key, raw, mod_revision=kv.mod_revision)
        self.custom[role.id] = role

    async def delete_role(self, guid: str) -> None:
        self.custom.pop(guid.lower(), None)
        try:
            await self.store.delete(DEFINITIONS + guid.lower())
        except store.NotFound:
            pass

    def _index(self, a: Assignment) -> None:
        self._by_name[a.name.lower()] = a
        self._by_principal.setdefault(a.principal_id, []).append(a)

    # -- decisions ------------------------------------------------------------------------

    def access(self, caller: Caller | None) -> Access:
        """What `caller` may do; None (no authentication in front, as in-process tests) and the
        bootstrap token stand for the bootstrap principal."""
        if caller is None or caller.bootstrap:
            ids = (self.bootstrap_id or "",) if caller is None else (caller.object_id, self.bootstrap_id or "")
            return Access(self, ids, caller.name if caller else BOOTSTRAP_NAME,
                          (caller.object_id if caller else "") or self.bootstrap_id or "")
        return Access(self, (caller.object_id, *caller.groups), caller.name, caller.object_id)


def document(name: str, scope: str, role_definition_id: str, principal_id: str, principal_type: str, *,
             created_by: str, now: str, description: str | None = None, condition: str | None = None,
             condition_version: str | None = None) -> Doc:
    """A role assignment as ARM shows it (api-version 2022-04-01)."""
    return {
        "id": f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}",
        "name": name,
        "type": TYPE,
        "properties": {
            "roleDefinitionId": role_definition_id,
            "principalId": principal_id,
            "principalType": principal_type,
            "scope": scope.rstrip("/") or "/",
            "condition": condition,
            "conditionVersion": condition_version,
            "createdOn": now,
            "updatedOn": now,
            "createdBy": created_by,
            "updatedBy": created_by,
            "delegatedManagedIdentityResourceId": None,
            "description": description,
        },
    }


class Access:
    """One caller's rights: the principals it acts as (itself and its groups) over the index."""

    __slots__ = ("_assignments", "_principals", "name", "object_id")

    def __init__(self, assignments: RoleAssignments, principals: tuple[str, ...], name: str, object_id: str):
        self._assignments = assignments
        self._principals = tuple(p for p in principals if p)
        self.name = name
        self.object_id = object_id

    def _grants(self, a: Assignment, action: str) -> bool:
        role = self._assignments.role(a.role_id)
        return role is not None and role.permits(action)

    def allows(self, action: str, scope: str) -> bool:
        """Whether an assignment at `scope` or above grants `action`."""
        key = scope_key(scope)
        return any(covers(a.scope_key, key) and self._grants(a, action)
                   for a in self._assignments.of_principals(self._principals))

    def allows_within(self, action: str, scope: str) -> bool:
        """Whether `action` is granted at `scope`, above it or on something beneath it: a list
        at `scope` then shows that much (ARM filters lists instead of refusing them)."""
        key = scope_key(scope)
        return any((covers(a.scope_key, key) or covers(key, a.scope_key)) and self._grants(a, action)
                   for a in self._assignments.of_principals(self._principals))

    def holds_within(self, scope: str) -> bool:
        """Whether any assignment of the caller is at `scope`, above it or beneath it."""
        key = scope_key(scope)
        return any(covers(a.scope_key, key) or covers(key, a.scope_key)
                   for a in self._assignments.of_principals(self._principals))

    def allows_data(self, action: str, scope: str) -> bool:
        """Whether an assignment at `scope` or above grants the data action (Kubernetes requests
        of Entra-integrated clusters with Azure RBAC)."""
        key = scope_key(scope)
        for a in self._assignments.of_principals(self._principals):
            role = self._assignments.role(a.role_id)
            if role is not None and covers(a.scope_key, key) and role.permits_data(action):
                return True
        return False
