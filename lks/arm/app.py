"""The management API's HTTP face: ARM routing (case-insensitive paths, as ARM's), bearer-token
authentication (the static token of config.json, or the tenant issuer's JWTs), `api-version`
checks, and the conversion of every failure into ARM's error body. Handlers live with their
resource types (`resourcegroups`, `managedclusters`, `agentpools`); this module only routes to
them.

Every answer of the endpoint outside the hosted API servers (`/clusters/…`) is ARM's: a path
no route serves gets ARM's 404 (`InvalidResourceType`, `InvalidResourceNamespace` or
`NotFound`), a method a path does not serve ARM's 405 with `Allow`, also where aiohttp's router
answers itself (`middleware`), never its plain-text pages.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from lks import nesting
from lks.arm import actions, openapi
from lks.arm.errors import ARMError
from lks.identity import authentication
from lks.identity.caller import Caller
from lks.identity.issuer import Issuer
from lks.identity.rbac import Access, RoleAssignments
from lks.observability.service import SERVICE

log = logging.getLogger(__name__)

_RESOURCE_TYPE = web.RequestKey("lks.arm.resource_type", str)  # the route's, for lks_arm_requests_total
METRICS_READ = "Microsoft.ContainerService/managedClusters/read"  # who may read the service's /metrics
MAX_BODY = 4 * 1024 * 1024


@dataclass(slots=True)
class Call:
    """One parsed management request."""

    request: web.Request
    params: dict[str, str]
    api_version: str
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers
    caller: Caller | None = None  # who is calling (authentication sets it)
    access: Access | None = None  # what the caller may do (None: no authorization in front)

    @property
    def method(self) -> str:
        return self.request.method

    def may(self, action: str, resource_id: str) -> bool:
        """Whether the caller may perform `action` on `resource_id`: what a list handler shows."""
        return self.access is None or self.access.allows(action, resource_id)


Handler = Callable[[Call], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    path: str  # the template, e.g. /subscriptions/{subscription}/resourcegroups/{group}
    pattern: re.Pattern[str]
    methods: dict[str, Handler]
    api_versions: tuple[str, ...] | None  # None: any
    type_name: str  # for api-version errors, e.g. "managedClusters"
    namespace: str = "Microsoft.ContainerService"


def route(path: str, methods: dict[str, Handler], *, api_versions: tuple[str, ...] | None, type_name: str,
          namespace: str = "Microsoft.ContainerService") -> Route:
    """`path` uses `{name}` placeholders; matching ignores case, as ARM does."""
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path.rstrip("/"))
    return Route(path, re.compile(f"^{regex}/?$", re.IGNORECASE), methods, api_versions, type_name, namespace)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, headers=headers,
                        content_type="application/json")


def error_response(err: ARMError) -> web.Response:
    headers = {"x-ms-failure-cause": "gateway"} if err.status == 401 else {}
    return json_response(err.body(), err.status, {**headers, **err.headers})


def method_not_allowed(method: str, allowed: set[str] | list[str]) -> ARMError:
    return ARMError("MethodNotAllowed", f"The requested resource does not support http method '{method}'.", 405,
                    headers={"Allow": ", ".join(sorted(allowed))})


class ManagementAPI:
    def __init__(self, *, token: str, subscription_id: str, routes: list[Route], issuer: Issuer | None = None,
                 bootstrap: Caller | None = None, authorizer: RoleAssignments | None = None):
        """`token`: the static bearer token of config.json, standing for `bootstrap` (the
        service's first Owner); `issuer`: the tenant's token issuer, whose JWTs authenticate
        the principals they name (None: only the static token)."""
        self._token = token.encode()
        self.subscription_id = subscription_id
        self._routes = routes
        self.issuer = issuer
        self.authorizer = authorizer  # Azure RBAC (None: every authenticated caller may do anything)
        self.bootstrap = bootstrap or Caller(object_id="", tenant_id=issuer.tenant_id if issuer else "",
                                             kind="ServicePrincipal", name="lks-bootstrap", bootstrap=True)

    def aiohttp_routes(self) -> list[web.RouteDef]:
        return [web.route("*", "/subscriptions{tail:(/.*)?}", self.handle),
                web.route("*", "/providers{tail:(/.*)?}", self.handle),
                web.get("/openapi/management.json", self.openapi),
                web.get("/metrics", self.metrics)]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """ARM's answers where aiohttp's router would answer itself with plain text: a method a
        route does not take, a path that no route of the service (management API, hosted API
        servers, health checks) serves."""
        exc = request.match_info.http_exception
        if exc is None:
            return await handler(request)
        if isinstance(exc, web.HTTPMethodNotAllowed):
            return error_response(method_not_allowed(request.method, exc.allowed_methods))
        return await self.handle(request)  # no route: authenticated, then ARM's not-found

    async def openapi(self, _request: web.Request) -> web.Response:
        """The management API's OpenAPI document (served without credentials, as a spec is public)."""
        return json_response(openapi.document(self._routes))

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        """lks's own Prometheus metrics (`lks.observability.service`), for a caller who may read
        managed clusters somewhere in the subscription."""
        try:
            caller = self.authenticate(request)
            if self.authorizer is not None and not self.authorizer.access(caller).allows_within(
                    METRICS_READ, f"/subscriptions/{self.subscription_id}"):
                access = self.authorizer.access(caller)
                raise ARMError("AuthorizationFailed", f"The client '{access.name}' with object id "
                               f"'{access.object_id}' does not have authorization to perform action '{METRICS_READ}' "
                               f"over scope '/subscriptions/{self.subscription_id}' or the scope is invalid. If access "
                               "was recently granted, please refresh your credentials.", 403)
        except ARMError as err:
            SERVICE.request(request.method, err.status, "metrics")
            return error_response(err)
        body, content_type = SERVICE.render(request.headers.get("Accept"))
        SERVICE.request(request.method, 200, "metrics")
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        resp = await self._answer(request)
        SERVICE.request(request.method, resp.status, request.get(_RESOURCE_TYPE, ""))
        return resp

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._handle(request)
        except ARMError as err:
            return error_response(err)
        except Exception as err:
            log.exception("management API error on %s %s", request.method, request.path)
            return error_response(ARMError("InternalServerError",
                                           f"An internal error occurred: {type(err).__name__}", 500))

    def authenticate(self, request: web.Request, audiences: tuple[str, ...] | None = None) -> Caller:
        """Who a request comes from: the static token's bootstrap principal, or the principal
        of an access token of the tenant's issuer for one of `audiences` (ARM's by default);
        else ARM's 401 (`lks.identity.authentication` words it). Cheap: a token's signature
        is checked once (`lks.identity.tokens`)."""
        auth = request.headers.get("Authorization")
        if not auth:
            raise authentication.missing_header(self._login_uri)
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise authentication.bad_header(self._login_uri)
        if hmac.compare_digest(token.encode(), self._token):
            return self.bootstrap
        if self.issuer is None:
            raise authentication.invalid(self._login_uri)
        return authentication.caller(self.issuer, token, audiences or self.issuer.arm_audiences)

    @property
    def _login_uri(self) -> str:
        return self.issuer.login_endpoint if self.issuer is not None else "https://login.windows.net/"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        caller = self.authenticate(request)
        path = request.path.rstrip("/") or "/"
        for r in self._routes:
            m = r.pattern.match(path)
            if m is None:
                continue
            params = m.groupdict()
            request[_RESOURCE_TYPE] = f"{r.namespace}/{r.type_name}"
            sub = params.get("subscription")
            if sub is not None and sub.lower() != self.subscription_id.lower():
                raise ARMError("SubscriptionNotFound", f"The subscription '{sub}' could not be found.", 404)
            handler = r.methods.get(request.method)
            if handler is None:
                raise method_not_allowed(request.method, r.methods)
            api_version = _check_api_version(request, r)
            access = self._authorize(r, request, path, caller)
            body = None
            if request.method in ("PUT", "PATCH", "POST") and request.can_read_body:
                body = await _read_json(request)
            call = Call(request, params, api_version, body, caller=caller, access=access)
            return await handler(call)
        raise self._no_route(request, path)

    def _authorize(self, r: Route, request: web.Request, path: str, caller: Caller | None) -> Access | None:
        """ARM's authorization of the request: the caller needs a role granting the route's action
        at the path's scope or above (`AuthorizationFailed` otherwise). A list is answered once the
        caller may read something at or below it, its handler showing only what the caller may read."""
        if self.authorizer is None:
            return None
        access = self.authorizer.access(caller)
        op = actions.of(r.path, request.method, path)
        if op is None:
            return access
        if op.action == actions.SUBSCRIPTION_READ:  # seen by whoever holds a role in it, as ARM lists them
            allowed = access.holds_within(op.scope)
        elif op.listing:
            allowed = access.allows_within(op.action, op.scope)
        else:
            allowed = access.allows(op.action, op.scope)
        if not allowed:
            raise ARMError("AuthorizationFailed", f"The client '{access.name}' with object id '{access.object_id}' "
                           f"does not have authorization to perform action '{op.action}' over scope '{op.scope}' or "
                           "the scope is invalid. If access was recently granted, please refresh your credentials.",
                           403)
        return access

    def _no_route(self, request: web.Request, path: str) -> ARMError:
        """ARM's answer for a path no route serves: as ARM checks, the api-version first, the
        subscription, then the namespace and resource type after the last `providers`."""
        version = request.query.get("api-version")
        if not version:
            return _missing_api_version()
        segments = [s for s in path.split("/") if s]
        lower = [s.lower() for s in segments]
        if len(segments) >= 2 and lower[0] == "subscriptions" and lower[1] != self.subscription_id.lower():
            return ARMError("SubscriptionNotFound", f"The subscription '{segments[1]}' could not be found.", 404)
        if "providers" in lower:
            at = len(lower) - 1 - lower[::-1].index("providers")
            namespace, types = segments[at + 1:at + 2], segments[at + 2::2]
            if namespace and types:
                ns = namespace[0]
                if not any(r.namespace.lower() == ns.lower() for r in self._routes):
                    return ARMError("InvalidResourceNamespace", f"The resource namespace '{ns}' is invalid.", 400)
                type_name = "/".join(types)
                if not any(r.namespace.lower() == ns.lower() and r.type_name.lower() == type_name.lower()
                           for r in self._routes):
                    return ARMError("InvalidResourceType", f"The resource type '{type_name}' could not be found "
                                    f"in the namespace '{ns}' for api version '{version}'.", 404)
        return ARMError("NotFound", f"The requested resource '{request.path}' could not be found.", 404)


def _check_api_version(request: web.Request, r: Route) -> str:
    version = request.query.get("api-version")
    if not version:
        raise _missing_api_version()
    if r.api_versions is not None and version not in r.api_versions:
        supported = ", ".join(sorted(r.api_versions, reverse=True))
        raise ARMError(
            "NoRegisteredProviderFound",
            f"No registered resource provider found for location 'global' and API version '{version}' for type "
            f"'{r.type_name}'. The supported api-versions are '{supported}'. The supported locations are ''.",
            400,
        )
    return version


def _too_large() -> ARMError:
    return ARMError("RequestContentTooLarge", "The request content size exceeds the maximum size of 4 MB.", 413)


def _missing_api_version() -> ARMError:
    return ARMError("MissingApiVersionParameter",
                    "The api-version query parameter (?api-version=) is required for all requests.", 400)


async def _read_json(request: web.Request) -> Any:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise _too_large()
    raw = bytearray()
    while chunk := await request.content.read(MAX_BODY + 1 - len(raw)):  # a read returns what has arrived
        raw += chunk
        if len(raw) > MAX_BODY:
            raise _too_large()
    if not raw.strip():
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise ARMError("InvalidRequestContent",
                       f"The request content was invalid and could not be deserialized: '{err}'.", 400) from None
    if nesting.too_deep(value, raw):
        raise ARMError("InvalidRequestContent", "The request content was invalid and could not be deserialized: "
                       f"'the document nests deeper than {nesting.MAX_DEPTH} levels'.", 400)
    return value
