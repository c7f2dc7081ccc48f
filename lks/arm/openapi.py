"""The management API's OpenAPI 3 document, derived from the route table so it can never
disagree with what is served: every path, method, path parameter and accepted api-version."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lks.arm.app import Route

_VERBS = {"GET": "get", "PUT": "put", "PATCH": "patch", "DELETE": "delete", "POST": "post", "HEAD": "head"}
_LRO = {"PUT", "DELETE", "POST"}


def _operation(route: Route, method: str) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"\{(\w+)\}", route.path)
    ]
    api = {"name": "api-version", "in": "query", "required": True, "schema": {"type": "string"}}
    if route.api_versions:
        api["schema"]["enum"] = sorted(route.api_versions)
    params.append(api)
    leaf = route.path.rstrip("/").rsplit("/", 1)[-1].strip("{}")
    op: dict[str, Any] = {
        "operationId": f"{route.type_name.replace('/', '_')}_{method.lower()}_{leaf}",
        "tags": [route.namespace],
        "parameters": params,
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
            "default": {"description": "ARM error", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/ErrorResponse"}}}},
        },
    }
    if method in ("PUT", "PATCH", "POST"):
        op["requestBody"] = {"required": method == "PUT",
                             "content": {"application/json": {"schema": {"type": "object"}}}}
    if method in _LRO:  # answered with the final state when the operation ends within the request
        op["x-ms-long-running-operation"] = True
        op["responses"]["201"] = {"description": "Created; done, or follow Azure-AsyncOperation if given"}
        op["responses"]["202"] = {"description": "Accepted; follow Location or Azure-AsyncOperation"}
        op["responses"]["204"] = {"description": "Done"}
    return op


def document(routes: list[Route]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for route in routes:
        item = paths.setdefault(route.path, {})
        for method in route.methods:
            item[_VERBS[method]] = _operation(route, method)
    return {
        "openapi": "3.0.3",
        "info": {"title": "lks management API (Microsoft.ContainerService, Microsoft.Resources)",
                 "version": max((v for r in routes for v in (r.api_versions or ())), default="")},
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "the token from $LKS_HOME/config.json"}},
            "schemas": {"ErrorResponse": {"type": "object", "properties": {"error": {
                "type": "object", "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"}, "target": {"type": "string"},
                    "details": {"type": "array", "items": {"type": "object"}}}}}}},
        },
    }
