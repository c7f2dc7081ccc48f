"""`Microsoft.Resources` resource groups: create or update, get, check, list and delete
(deleting a group deletes what is in it, as a long-running operation)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from lks import store
from lks.arm import documents, policy
from lks.arm.app import Call, Route, json_response, route
from lks.arm.errors import ARMError, group_not_found
from lks.arm.operations import RETRY_AFTER

if TYPE_CHECKING:
    from lks.arm.plane import ManagementPlane

API_VERSIONS = ("2019-05-01", "2019-10-01", "2020-06-01", "2020-10-01", "2021-01-01", "2021-04-01",
                "2022-09-01", "2023-07-01", "2024-03-01", "2024-07-01", "2024-11-01", "2025-03-01",
                "2025-04-01")
TYPE = "Microsoft.Resources/resourceGroups"
READ = "Microsoft.Resources/subscriptions/resourceGroups/read"
_NAME = re.compile(r"^[-\w._()]{1,90}$")
_ALLOWED = re.compile(r"[-\w._()]")


def group_id(subscription: str, name: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{name}"


def routes(plane: ManagementPlane) -> list[Route]:
    groups = ResourceGroups(plane)
    base = "/subscriptions/{subscription}/resourcegroups"
    return [
        route(base, {"GET": groups.list}, api_versions=API_VERSIONS, type_name="resourceGroups",
              namespace="Microsoft.Resources"),
        route(base + "/{group}", {"PUT": groups.put, "GET": groups.get, "HEAD": groups.head,
                                  "PATCH": groups.patch, "DELETE": groups.delete},
              api_versions=API_VERSIONS, type_name="resourceGroups", namespace="Microsoft.Resources"),
        route("/subscriptions/{subscription}/operationresults/{operation}", {"GET": groups.operation_result},
              api_versions=None, type_name="operationresults", namespace="Microsoft.Resources"),
    ]


class ResourceGroups:
    def __init__(self, plane: ManagementPlane):
        self.plane = plane
        plane.operations.register("resourceGroups.delete", self._delete_work)

    async def require(self, subscription: str, name: str) -> dict[str, Any]:
        """The group, or ARM's ResourceGroupNotFound."""
        stored = await self.plane.docs.get(group_id(subscription, name))
        if stored is None:
            raise group_not_found(name)
        return stored.doc

    async def put(self, call: Call) -> web.Response:
        sub, name = call.params["subscription"], call.params["group"]
        if not _NAME.match(name) or name.endswith("."):
            bad = "".join(sorted(set(_ALLOWED.sub("", name)))) or "."
            raise ARMError("InvalidResourceGroup",
                           f"The provided resource group name '{name}' has these invalid characters: '{bad}'. "
                           "The name can only be a letter, digit, '-', '.', '(', ')' or '_'.", 400)
        body = call.body if isinstance(call.body, dict) else {}
        location = body.get("location")
        if not location or not isinstance(location, str):
            raise ARMError("LocationRequired", "The location property is required for this definition.", 400)
        tags = body.get("tags") or {}
        stored = await self.plane.docs.get(group_id(sub, name))
        if stored is not None:
            doc = stored.doc
            if doc["location"].lower() != location.lower():
                raise ARMError("InvalidResourceGroupLocation",
                               f"Invalid resource group location '{location}'. The Resource group already exists in "
                               f"location '{doc['location']}'.", 409)
            doc["tags"] = tags
            await self.plane.docs.update(doc, stored.revision)
            return json_response(documents.public(doc), 200)
        doc = {"id": group_id(sub, name), "name": name, "type": TYPE, "location": location.lower().replace(" ", ""),
               "tags": tags, "properties": {"provisioningState": "Succeeded"}}
        try:
            await self.plane.docs.create(doc)
        except store.KeyExists:
            return await self.put(call)  # created concurrently: answer as an update
        return json_response(documents.public(doc), 201)

    async def patch(self, call: Call) -> web.Response:
        sub, name = call.params["subscription"], call.params["group"]
        stored = await self.plane.docs.get(group_id(sub, name))
        if stored is None:
            raise group_not_found(name)
        body = call.body if isinstance(call.body, dict) else {}
        if "tags" in body:
            stored.doc["tags"] = body["tags"] or {}
            await self.plane.docs.update(stored.doc, stored.revision)
        return json_response(documents.public(stored.doc))

    async def get(self, call: Call) -> web.Response:
        return json_response(documents.public(await self.require(call.params["subscription"], call.params["group"])))

    async def head(self, call: Call) -> web.Response:
        stored = await self.plane.docs.get(group_id(call.params["subscription"], call.params["group"]))
        return web.Response(status=204 if stored else 404)

    async def list(self, call: Call) -> web.Response:
        docs = await self.plane.docs.list(f"/subscriptions/{call.params['subscription']}/resourceGroups")
        groups = [documents.public(d) for d in docs if d.get("type") == TYPE and call.may(READ, d["id"])]
        return json_response({"value": groups})

    async def delete(self, call: Call) -> web.Response:
        sub, name = call.params["subscription"], call.params["group"]
        stored = await self.plane.docs.get(group_id(sub, name))
        if stored is None:
            raise group_not_found(name)  # unlike resources, ARM refuses to delete a missing group
        doc = stored.doc
        op = self.plane.operations.running(doc["id"])
        if op is None:
            doc["properties"]["provisioningState"] = "Deleting"
            await self.plane.docs.update(doc, stored.revision)
            op = await self.plane.operations.begin("resourceGroups.delete", subscription=sub, location=None,
                                                   resource_id=doc["id"], action="delete resource group")
        # Microsoft.Resources answers 200 when done, and follows a deletion by Location only
        return await self.plane.operations.answer_action(op, call.api_version, done=200, async_operation=False)

    async def _delete_work(self, op: dict[str, Any]) -> None:
        meta = op[documents.PRIVATE]
        group = meta["resourceId"]
        await self.plane.delete_group_contents(meta["subscription"], group.rsplit("/", 1)[-1])
        await self.plane.docs.delete(group)
        await self.plane.rbac.delete_within(group)  # the group's role assignments go with it, as in ARM
        await policy.forget_scope(self.plane, group)  # and its policy assignments

    async def operation_result(self, call: Call) -> web.Response:
        op = await self.plane.operations.settle(call.params["operation"])
        if op is None:
            raise ARMError("NotFound", f"The operation '{call.params['operation']}' could not be found.", 404)
        if op["status"] == "InProgress":
            return web.Response(status=202, headers={"Location": str(call.request.url), "Retry-After": RETRY_AFTER})
        if op["status"] == "Failed":
            return json_response({"error": op.get("error")}, 400)
        return web.Response(status=200)
