"""Microsoft Graph's request and answer forms for `lks.identity.graph`: its errors
(`{"error": {"code", "message", "innerError"}}` with the request ids), JSON bodies read within a
limit and answered with OData's content type, and collections answered as OData pages (`$filter`
through `lks.identity.odata`, `$top`, `$skiptoken` and `@odata.nextLink`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from lks import nesting
from lks.identity import odata, principals
from lks.identity.caller import Caller

MAX_BODY = 1024 * 1024
PAGE = 100  # Graph's default page of directory objects
MAX_PAGE = 999
CONTENT_TYPE = ("application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;"
                "charset=utf-8")


class GraphError(Exception):
    """A failure answered as Graph's error body with `status`."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def not_found(id: str) -> GraphError:
    return GraphError(404, "Request_ResourceNotFound", f"Resource '{id}' does not exist or one of its "
                      "queried reference-property objects are not present.")


def bad_request(message: str, code: str = "Request_BadRequest") -> GraphError:
    return GraphError(400, code, message)


@dataclass(slots=True)
class Call:
    """One parsed Graph request."""

    request: web.Request
    version: str
    ids: tuple[str, ...]  # the path's ids, outermost first
    body: Any
    caller: Caller | None

    def context(self, fragment: str) -> str:
        """An `@odata.context` URL of this Graph, e.g. `…/v1.0/$metadata#servicePrincipals`."""
        return f"{self.request.url.origin()}/graph/{self.version}/$metadata#{fragment}"


def page(call: Call, items: list[dict[str, Any]], context: str, properties: frozenset[str],
         resource: str) -> web.Response:
    """A collection after `$filter`, one `$top`-sized page at `$skiptoken`, with Graph's
    `@odata.nextLink` to the next."""
    query = call.request.query
    raw = query.get("$filter")
    if raw is not None:
        match = odata.parse(raw, properties=properties, resource=resource)
        items = [i for i in items if match(i)]
    top = PAGE
    if "$top" in query:
        try:
            top = int(query["$top"])
        except ValueError:
            top = 0
        if not 1 <= top <= MAX_PAGE:
            raise bad_request(f"Invalid page size specified: '{query['$top']}'. Must be between 1 and "
                              f"{MAX_PAGE} inclusive.")
    start = 0
    if "$skiptoken" in query:
        try:
            start = int(query["$skiptoken"])
        except ValueError:
            start = -1
        if start < 0:
            raise bad_request("Invalid skip token.")
    body: dict[str, Any] = {"@odata.context": call.context(context), "value": items[start:start + top]}
    if start + top < len(items):
        params = {**query, "$skiptoken": str(start + top)}
        body["@odata.nextLink"] = str(call.request.url.with_query(params))
    return json_response(body)


def location(call: Call, collection: str, id: str) -> str:
    return f"{call.request.url.origin()}/graph/{call.version}/{collection}/{id}"


def body_object(value: Any) -> dict[str, Any]:
    """A request body (or a part of one) that must be a JSON object; {} when absent."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise unreadable()
    return value


def timestamp(value: Any, name: str) -> float | None:
    """A passwordCredential's date-time property `name` (ISO 8601), as a timestamp."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return principals.parse_iso(value)
        except ValueError:
            pass
    raise bad_request(f"Invalid value specified for property '{name}' of resource 'PasswordCredential'.")


def unreadable() -> GraphError:
    return GraphError(400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type "
                      "header is set and payload is of valid JSON format.")


async def read_json(request: web.Request) -> Any:
    """The JSON body (None when empty), at most MAX_BODY bytes and MAX_DEPTH levels deep."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise GraphError(413, "Request_EntityTooLarge", "The request is too large.")
    raw = bytearray()
    while chunk := await request.content.read(MAX_BODY + 1 - len(raw)):
        raw += chunk
        if len(raw) > MAX_BODY:
            raise GraphError(413, "Request_EntityTooLarge", "The request is too large.")
    if not raw.strip():
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise unreadable() from None
    if nesting.too_deep(value, raw):
        raise unreadable()
    return value


def json_response(body: Any, status: int = 200, *, location: str | None = None) -> web.Response:
    headers = {"OData-Version": "4.0", "Content-Type": CONTENT_TYPE}
    if location:
        headers["Location"] = location
    return web.Response(body=orjson.dumps(body), status=status, headers=headers)


def error_response(err: GraphError, request: web.Request, request_id: str) -> web.Response:
    inner = {"date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "request-id": request_id,
             "client-request-id": request.headers.get("client-request-id", request_id)}
    error = {"code": err.code, "message": err.message, "innerError": inner}
    return json_response({"error": error}, err.status)
