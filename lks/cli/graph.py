"""The `lks` command's Microsoft Graph client, as azure-cli's `role/_msgrpah` GraphClient: calls
to the service's Graph subset (`lks.identity.graph`, under `<endpoint>/graph/v1.0`) over the
management client's transport and credential, collections followed through `@odata.nextLink`,
Graph's errors raised as az shows them (`ERROR: <message>`), and az's ways of finding a service
principal or an application from what a user typed. `lks.cli.commands.ad` and `adapp` use it.
"""

from __future__ import annotations

import re
import urllib.parse
from collections import OrderedDict
from typing import Any

from lks.cli.client import Client, ServiceError
from lks.cli.output import CLIError, warning

GRAPH = "/graph/v1.0"
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class NotFound(CLIError):
    """What az cannot resolve to a directory object."""

    exit_code = 3  # az sets status_code 404 on these, so they exit 3


def call(client: Client, method: str, path: str, body: Any = None, filter: str | None = None) -> Any:
    """One Graph call; a collection comes back as the list of all its pages, as az's `_send`."""
    url = client.config.endpoint + GRAPH + path
    query = {"$filter": filter} if filter is not None else None
    items: list[Any] | None = None
    while True:
        try:
            body_out = client.request(method, url, body=body, query=query).body
        except ServiceError as err:  # az's graph_err_handler: the message alone
            raise CLIError(err.message) from None
        if not isinstance(body_out, dict):
            return body_out
        if "value" in body_out:
            items = (items or []) + list(body_out["value"])
        if "@odata.nextLink" not in body_out:
            return items if items is not None else body_out
        url, query = body_out["@odata.nextLink"], None


def tenant(client: Client) -> str:
    """The signed-in tenant az prints as `tenant`: the directory's organization."""
    orgs = call(client, "GET", "/organization")
    return orgs[0]["id"] if orgs else ""


def resolve_sp(client: Client, identifier: str) -> str:
    """az's _resolve_service_principal: a service principal name (its appId), else an object id."""
    found = call(client, "GET", "/servicePrincipals",
                 filter=f"servicePrincipalNames/any(c:c eq '{literal(identifier)}')")
    if found:
        return found[0]["id"]
    if GUID.match(identifier):
        return identifier
    raise NotFound(f"Service principal '{identifier}' doesn't exist")


def resolve_app(client: Client, identifier: str) -> str:
    """az's _resolve_application: an appId or object id (a GUID), else an identifier URI."""
    if GUID.match(identifier):
        found = call(client, "GET", "/applications", filter=f"appId eq '{literal(identifier)}'")
        return found[0]["id"] if found else identifier
    found = call(client, "GET", "/applications", filter=f"identifierUris/any(s:s eq '{literal(identifier)}')")
    if not found:
        raise NotFound(f"Application with identifier URI '{identifier}' doesn't exist")
    return found[0]["id"]


def owned(client: Client, odata_type: str) -> list[dict[str, Any]]:
    """az's list_owned_objects: the signed-in user's objects of one type (`--show-mine`)."""
    return [o for o in call(client, "GET", "/me/ownedObjects") if o.get("@odata.type") == odata_type]


def listing(client: Client, path: str, filters: list[str], include_all: bool) -> list[dict[str, Any]]:
    """az's `ad sp|app list`: the objects matching every filter; unfiltered and without `--all`,
    the first 100 with az's warning when there were more."""
    result = call(client, "GET", path, filter=" and ".join(filters) if filters else None)
    if filters or include_all:
        return result
    if len(result) > 100:
        warning("The result is not complete. You can still use '--all' to get all of them with long "
                "latency expected, or provide a filter through command arguments")
    return result[:100]


def literal(value: str) -> str:
    """`value` inside an OData string literal (quotes doubled)."""
    return value.replace("'", "''")


def create_application(client: Client, name: str, reference: str | None) -> dict[str, Any]:
    """az's create_application: patch the one application of that exact name, else create one."""
    existing = [a for a in call(client, "GET", "/applications", filter=f"startswith(displayName,'{literal(name)}')")
                if a["displayName"] == name]
    if len(existing) > 1:
        raise CLIError(f"More than one application have the same display name '{name}': (id) "
                       f"{', '.join(a['id'] for a in existing)}, please remove them first.")
    body: dict[str, Any] = {"displayName": name}
    if reference is not None:
        body["serviceManagementReference"] = reference
    if existing:
        warning(f"Found an existing application instance: (id) {existing[0]['id']}. We will patch it.")
        call(client, "PATCH", f"/applications/{existing[0]['id']}", body)
        return call(client, "GET", f"/applications/{existing[0]['id']}")
    return call(client, "POST", "/applications", {**body, "keyCredentials": []})


def table(result: list[dict[str, Any]]) -> list[OrderedDict[str, Any]]:
    """az's get_graph_object_transformer('sp'): sorted by display name, the object id shown."""
    keys = (("DisplayName", "displayName"), ("Id", "id"), ("AppId", "appId"), ("CreatedDateTime", "createdDateTime"))
    return [OrderedDict((col, r.get(key)) for col, key in keys)
            for r in sorted(result, key=lambda r: r.get("displayName") or "")]


def segment(value: str) -> str:
    """`value` as one path segment."""
    return urllib.parse.quote(value, safe="")
