"""Microsoft Graph's groups for `lks.identity.graph`: security groups (`lks.identity.groups`)
listed, made, read and deleted, their `members` (listed typed, added and removed with `$ref`), and
`getMemberGroups` / `checkMemberGroups` of any directory object, as az's `ad group` commands call
them. `GraphAPI` routes these paths here; the directory objects a group's members are (service
principals and groups) come from `object`, which `GraphAPI`'s directory reads use too.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from lks.identity import graphobjects as objects
from lks.identity import groups as groups_
from lks.identity import principals
from lks.identity.graphio import (
    Call,
    bad_request,
    body_object,
    json_response,
    location,
    not_found,
    page,
)

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class GroupsAPI:
    def __init__(self, *, groups: groups_.Groups, principals: principals.Principals, tenant_id: str):
        self.groups = groups
        self.principals = principals
        self.tenant_id = tenant_id

    async def list_groups(self, call: Call) -> web.Response:
        return page(call, [objects.group(g) for g in await self.groups.list()], "groups", objects.GROUP_FILTERS,
                    "Group")

    async def create_group(self, call: Call) -> web.Response:
        """A security group: Graph needs displayName, mailNickname, mailEnabled and
        securityEnabled, and makes no mail-enabled group but a Microsoft 365 one (lks makes none)."""
        body = body_object(call.body)
        for key in ("displayName", "mailNickname"):
            value = body.get(key)
            if not isinstance(value, str) or not value.strip():
                raise bad_request(f"Invalid value specified for property '{key}' of resource 'Group'.")
        for key in ("mailEnabled", "securityEnabled"):
            if not isinstance(body.get(key), bool):
                raise bad_request(f"Invalid value specified for property '{key}' of resource 'Group'.")
        if body["mailEnabled"] or body.get("groupTypes"):
            raise bad_request("The service does not currently support writes of mail-enabled groups. Please "
                              "ensure that the mail-enablement property is unset or set to false.")
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            raise bad_request("Invalid value specified for property 'description' of resource 'Group'.")
        group = await self.groups.create(body["displayName"], body["mailNickname"], description=description,
                                         security_enabled=body["securityEnabled"])
        return json_response({"@odata.context": call.context("groups/$entity"), **objects.group(group)}, 201,
                             location=location(call, "groups", group.object_id))

    async def get_group(self, call: Call) -> web.Response:
        group = await self.group(call.ids[0])
        return json_response({"@odata.context": call.context("groups/$entity"), **objects.group(group)})

    async def delete_group(self, call: Call) -> web.Response:
        group = await self.group(call.ids[0])
        try:
            await self.groups.delete(group.object_id)
        except groups_.GroupNotFound:
            raise not_found(call.ids[0]) from None
        return web.Response(status=204)

    async def list_members(self, call: Call) -> web.Response:
        group = await self.group(call.ids[0])
        members = [o for o in [await self.object(m) for m in group.members] if o is not None]
        return page(call, members, "directoryObjects", frozenset({"id", "displayname"}), "DirectoryObject")

    async def add_member(self, call: Call) -> web.Response:
        """`POST /groups/{id}/members/$ref` with `{"@odata.id": "…/directoryObjects/{member}"}`."""
        group = await self.group(call.ids[0])
        ref = body_object(call.body).get("@odata.id")
        if not isinstance(ref, str) or not ref.strip():
            raise bad_request("Invalid URL format specified in @odata.id.", "BadRequest")
        member = ref.rstrip("/").rsplit("/", 1)[-1]
        if not _GUID.match(member):
            raise bad_request(f"Invalid object identifier '{member}'.")
        if await self.object(member) is None:
            raise not_found(member)
        if member.lower() == group.object_id.lower():
            raise bad_request("A group cannot be a member of itself.")
        try:
            await self.groups.add_member(group.object_id, member)
        except groups_.MemberExists:
            raise bad_request("One or more added object references already exist for the following modified "
                              "properties: 'members'.") from None
        except groups_.GroupNotFound:
            raise not_found(call.ids[0]) from None
        return web.Response(status=204)

    async def remove_member(self, call: Call) -> web.Response:
        group = await self.group(call.ids[0])
        try:
            await self.groups.remove_member(group.object_id, call.ids[1])
        except (groups_.NotAMember, groups_.GroupNotFound):
            raise not_found(call.ids[1]) from None
        return web.Response(status=204)

    async def member_groups(self, call: Call) -> web.Response:
        """getMemberGroups: the ids of the groups the object is in, transitively."""
        await self.require_object(call.ids[0])
        only = body_object(call.body).get("securityEnabledOnly", False)
        if not isinstance(only, bool):
            raise bad_request("Invalid value specified for property 'securityEnabledOnly' of resource "
                              "'DirectoryObject'.")
        found = await self.groups.member_of(call.ids[0], security_only=only)
        return json_response({"@odata.context": call.context("Collection(Edm.String)"), "value": found})

    async def check_member_groups(self, call: Call) -> web.Response:
        """checkMemberGroups: which of `groupIds` (at most 20) the object is in, transitively."""
        await self.require_object(call.ids[0])
        ids = body_object(call.body).get("groupIds")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or not 0 < len(ids) <= 20:
            raise bad_request("Invalid value specified for property 'groupIds' of resource 'DirectoryObject'.")
        member_of = {g.lower() for g in await self.groups.member_of(call.ids[0])}
        found = [i for i in ids if i.lower() in member_of]
        return json_response({"@odata.context": call.context("Collection(Edm.String)"), "value": found})

    async def group(self, id: str) -> groups_.Group:
        if not _GUID.match(id):
            raise bad_request(f"Invalid object identifier '{id}'.")
        group = await self.groups.get(id)
        if group is None:
            raise not_found(id)
        return group

    async def object(self, id: str) -> dict[str, Any] | None:
        """The directory object (service principal or group) of that object id, typed; None if none."""
        group = await self.groups.get(id)
        if group is not None:
            return {"@odata.type": objects.ODATA_TYPES["group"], **objects.group(group)}
        sp = await self.principals.get(id)
        if sp is not None and sp.service_principal and sp.object_id.lower() == id.lower():
            return {"@odata.type": objects.ODATA_TYPES["servicePrincipal"],
                    **objects.service_principal(sp, self.tenant_id)}
        return None

    async def require_object(self, id: str) -> dict[str, Any]:
        if not _GUID.match(id):
            raise bad_request(f"Invalid object identifier '{id}'.")
        obj = await self.object(id)
        if obj is None:
            raise not_found(id)
        return obj
