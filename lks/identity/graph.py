"""The Microsoft Graph subset the Azure CLI's `az ad sp|app` commands call (azure-cli's
`role/_msgrpah/_graph_client.py`), served under `<endpoint>/graph/` (the cloud's
`microsoftGraphResourceId`): applications, service principals, their client secrets
(`addPassword`, `removePassword`) and federated identity credentials, `$filter`ed listings
(`lks.identity.odata`) paged with `@odata.nextLink`, `directoryObjects/{id}` and
`directoryObjects/getByIds` (role assignments resolve and name principals through them), the
tenant's `organization`, security `groups` (`lks.identity.groups`) with their `members` (`$ref`
add and remove), `getMemberGroups` and `checkMemberGroups`, and empty `users` (lks has no
directory users yet).
Answers are Graph's JSON (`lks.identity.graphobjects`) and Graph's errors, pages and bodies
(`lks.identity.graphio`).

An Entra application and its service principal are kept apart as Entra keeps them
(`lks.identity.principals`): `POST /applications` makes an application without service
principal, `POST /servicePrincipals` for its appId makes that, deleting the application deletes
its service principal and deleting the service principal keeps the application. Their client
secrets are one list in lks (Graph shows it on both).
Callers authenticate as on the management API (its helper, passed in by `lks.server`). Any
principal may read the directory; writing it takes what `may_write` says, in `lks up` the right
to write role assignments at subscription scope (Owner, User Access Administrator: who may grant
any role anyway); others get Graph's 403, as a service principal without its
`Application.ReadWrite.All` permission.
"""

from __future__ import annotations

import inspect
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from lks.arm.errors import ARMError
from lks.identity import graphgroups, odata, principals
from lks.identity import graphobjects as objects
from lks.identity import groups as groups_
from lks.identity.caller import Caller
from lks.identity.graphio import (
    Call,
    GraphError,
    bad_request,
    body_object,
    error_response,
    json_response,
    location,
    not_found,
    page,
    read_json,
    timestamp,
)

log = logging.getLogger(__name__)

VERSIONS = ("v1.0", "beta")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

Authenticate = Callable[[web.Request], "Awaitable[Caller | None] | Caller | None"]


Handler = Callable[[Call], Awaitable[web.Response]]


class GraphAPI:
    def __init__(self, *, principals: principals.Principals, tenant_id: str, authenticate: Authenticate,
                 may_write: Callable[[Caller | None], bool] | None = None, groups: groups_.Groups | None = None):
        """`may_write`: whether a caller may change the directory (default: the bootstrap
        token's principal only); `groups` default to those in the principals' store."""
        self.principals = principals
        self.groups = groups or groups_.Groups(principals.store, clock=principals.clock)
        self._groups = graphgroups.GroupsAPI(groups=self.groups, principals=principals, tenant_id=tenant_id)
        g = self._groups
        self.tenant_id = tenant_id
        self._authenticate = authenticate
        self._may_write = may_write or _bootstrap
        collection = r"(?:/(?P<{}>[^/]+))"
        sp, app, grp = collection.format("sp"), collection.format("app"), collection.format("grp")
        obj = collection.format("obj")
        table: list[tuple[str, dict[str, Handler]]] = [
            ("/applications", {"GET": self.list_applications, "POST": self.create_application}),
            (f"/applications{app}", {"GET": self.get_application, "PATCH": self.update_application,
                                     "DELETE": self.delete_application}),
            (f"/applications{app}/addPassword", {"POST": self.add_password}),
            (f"/applications{app}/removePassword", {"POST": self.remove_password}),
            (f"/applications{app}/owners", {"GET": self.no_owners}),
            (f"/applications{app}/federatedIdentityCredentials", {"GET": self.list_federated,
                                                                 "POST": self.create_federated}),
            (f"/applications{app}/federatedIdentityCredentials{collection.format('fic')}",
             {"GET": self.get_federated, "DELETE": self.delete_federated}),
            ("/servicePrincipals", {"GET": self.list_service_principals,
                                    "POST": self.create_service_principal}),
            (f"/servicePrincipals{sp}", {"GET": self.get_service_principal,
                                         "PATCH": self.update_service_principal,
                                         "DELETE": self.delete_service_principal}),
            (f"/servicePrincipals{sp}/addPassword", {"POST": self.add_password}),
            (f"/servicePrincipals{sp}/removePassword", {"POST": self.remove_password}),
            (f"/servicePrincipals{sp}/owners", {"GET": self.no_owners}),
            ("/directoryObjects/getByIds", {"POST": self.get_by_ids}),
            (f"/directoryObjects{obj}", {"GET": self.get_directory_object}),
            (f"/(?:directoryObjects|servicePrincipals|groups){obj}/getMemberGroups", {"POST": g.member_groups}),
            (f"/(?:directoryObjects|servicePrincipals|groups){obj}/checkMemberGroups",
             {"POST": g.check_member_groups}),
            ("/organization", {"GET": self.organization}),
            ("/me(?:/.*)?", {"GET": self.me}),
            ("/users", {"GET": self.no_users}),
            ("/groups", {"GET": g.list_groups, "POST": g.create_group}),
            (f"/groups{grp}", {"GET": g.get_group, "DELETE": g.delete_group}),
            (f"/groups{grp}/members", {"GET": g.list_members}),
            (f"/groups{grp}/members/\\$ref", {"POST": g.add_member}),
            (f"/groups{grp}/members{collection.format('member')}/\\$ref", {"DELETE": g.remove_member}),
            (f"/groups{grp}/owners", {"GET": self.no_owners}),
        ]
        # POSTs that only read
        self._reads = {self.get_by_ids, g.member_groups, g.check_member_groups}
        # Graph's path segments ignore case, as ARM's do
        self._table = [(re.compile(f"^{path}/?$", re.IGNORECASE), methods) for path, methods in table]

    def routes(self) -> list[web.RouteDef]:
        return [web.route("*", "/graph/{tail:.*}", self.handle)]

    async def handle(self, request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        try:
            resp = await self._handle(request)
        except GraphError as err:
            resp = error_response(err, request, request_id)
        except odata.FilterError as err:
            resp = error_response(bad_request(err.message, err.code), request, request_id)
        except Exception:  # a bug: Graph's general exception, never a traceback
            log.exception("Graph error on %s %s", request.method, request.path)
            bug = GraphError(500, "generalException", "General exception while processing.")
            resp = error_response(bug, request, request_id)
        resp.headers["request-id"] = request_id
        resp.headers["client-request-id"] = request.headers.get("client-request-id", request_id)
        return resp

    async def _handle(self, request: web.Request) -> web.Response:
        caller = await self._caller(request)
        version, _, path = request.match_info["tail"].partition("/")
        if version not in VERSIONS:
            raise bad_request(f"Invalid version: {version}", "BadRequest")
        path = "/" + path
        for pattern, methods in self._table:
            m = pattern.match(path)
            if m is None:
                continue
            handler = methods.get(request.method)
            if handler is None:
                raise GraphError(405, "Request_BadRequest",
                                 "Specified HTTP method is not allowed for the request target.")
            writes = request.method not in ("GET", "HEAD", "OPTIONS") and handler not in self._reads
            if writes and not self._may_write(caller):
                raise GraphError(403, "Authorization_RequestDenied",
                                 "Insufficient privileges to complete the operation.")
            body = await read_json(request) if request.method in ("POST", "PATCH") else None
            ids = tuple(v for v in m.groups() if v is not None)
            return await handler(Call(request, version, ids, body, caller))
        segment = next((s for s in path.split("/") if s), "")
        raise bad_request(f"Resource not found for the segment '{segment}'.", "BadRequest")

    async def _caller(self, request: web.Request) -> Caller | None:
        """The management API's authentication, its refusals worded as Graph's."""
        try:
            caller = self._authenticate(request)
            if inspect.isawaitable(caller):
                caller = await caller
        except ARMError as err:
            if err.code == "ExpiredAuthenticationToken":
                message = "Lifetime validation failed, the token is expired."
            elif err.code == "InvalidAuthenticationTokenAudience":
                message = "Access token validation failure. Invalid audience."
            elif "missing" in err.message:
                message = "Access token is empty."
            else:
                message = "Access token validation failure."
            raise GraphError(401, "InvalidAuthenticationToken", message) from None
        return caller  # type: ignore[return-value]

    # -- applications ---------------------------------------------------------------------------

    async def list_applications(self, call: Call) -> web.Response:
        apps = [objects.application(sp) for sp in await self.principals.list()]
        return page(call, apps, "applications", objects.APPLICATION_FILTERS, "Application")

    async def create_application(self, call: Call) -> web.Response:
        body = body_object(call.body)
        name = body.get("displayName")
        if not isinstance(name, str) or not name.strip():
            raise bad_request("A value is required for property 'displayName' of resource 'Application'.")
        _no_key_credentials(body)
        sp = await self.principals.create(name, service_principal=False)
        doc = objects.application(sp)
        return json_response({"@odata.context": call.context("applications/$entity"), **doc}, 201,
                     location=location(call, "applications", sp.application_object_id))

    async def get_application(self, call: Call) -> web.Response:
        sp = await self._application(call.ids[0])
        doc = objects.application(sp)
        return json_response({"@odata.context": call.context("applications/$entity"), **doc})

    async def update_application(self, call: Call) -> web.Response:
        sp = await self._application(call.ids[0])
        await self._update(sp, body_object(call.body))
        return web.Response(status=204)

    async def delete_application(self, call: Call) -> web.Response:
        sp = await self._application(call.ids[0])
        await self._delete(sp)
        return web.Response(status=204)

    # -- service principals ---------------------------------------------------------------------

    async def list_service_principals(self, call: Call) -> web.Response:
        sps = [objects.service_principal(sp, self.tenant_id) for sp in await self.principals.list()
               if sp.service_principal]
        return page(call, sps, "servicePrincipals", objects.SERVICE_PRINCIPAL_FILTERS, "ServicePrincipal")

    async def create_service_principal(self, call: Call) -> web.Response:
        """The service principal of an application (one at most: Graph's 409 for another)."""
        app_id = body_object(call.body).get("appId")
        if not isinstance(app_id, str) or not app_id:
            raise bad_request("A value is required for property 'appId' of resource 'ServicePrincipal'.")
        sp = await self.principals.get(app_id)
        if sp is None or sp.app_id.lower() != app_id.lower():
            raise bad_request(f"The appId '{app_id}' of the service principal does not reference a valid "
                              "application object.")
        try:
            sp = await self.principals.add_service_principal(sp.app_id)
        except principals.ServicePrincipalExists:
            raise GraphError(409, "Request_MultipleObjectsWithSameKeyValue", "The service principal cannot be "
                             f"created, updated, or restored because the service principal name {sp.app_id} is "
                             "already in use.") from None
        except principals.PrincipalNotFound:
            raise not_found(app_id) from None
        doc = objects.service_principal(sp, self.tenant_id)
        return json_response({"@odata.context": call.context("servicePrincipals/$entity"), **doc}, 201,
                     location=location(call, "servicePrincipals", sp.object_id))

    async def get_service_principal(self, call: Call) -> web.Response:
        sp = await self._service_principal(call.ids[0])
        doc = objects.service_principal(sp, self.tenant_id)
        return json_response({"@odata.context": call.context("servicePrincipals/$entity"), **doc})

    async def update_service_principal(self, call: Call) -> web.Response:
        sp = await self._service_principal(call.ids[0])
        await self._update(sp, body_object(call.body))
        return web.Response(status=204)

    async def delete_service_principal(self, call: Call) -> web.Response:
        """The service principal only: its application stays."""
        sp = await self._service_principal(call.ids[0])
        try:
            await self.principals.remove_service_principal(sp.app_id)
        except principals.PrincipalNotFound:
            raise not_found(sp.object_id) from None
        await self.groups.forget(sp.object_id)  # a deleted object leaves its groups, as in Entra
        return web.Response(status=204)

    # -- client secrets (of an application or its service principal: the same in lks) -----------

    async def add_password(self, call: Call) -> web.Response:
        sp = await self._owner(call)
        cred = body_object(body_object(call.body).get("passwordCredential", {}))
        name = cred.get("displayName")
        if name is not None and not isinstance(name, str):
            raise bad_request("Invalid value specified for property 'displayName' of resource "
                              "'PasswordCredential'.")
        end = timestamp(cred.get("endDateTime"), "endDateTime")
        if end is not None and end <= self.principals.clock.now():
            raise bad_request("Invalid value specified for property 'endDateTime' of resource "
                              "'PasswordCredential'.")
        # Graph's default lifetime of a secret is two years
        _sp, made, secret = await self.principals.add_password(sp.app_id, display_name=name, years=2.0,
                                                               end=end)
        return json_response({"@odata.context": call.context("microsoft.graph.passwordCredential"),
                      **objects.password(made, secret)})

    async def remove_password(self, call: Call) -> web.Response:
        sp = await self._owner(call)
        key_id = body_object(call.body).get("keyId")
        if not isinstance(key_id, str) or not _GUID.match(key_id):
            raise bad_request("A value is required for property 'keyId' of resource 'PasswordCredential'.")
        try:
            await self.principals.remove_password(sp.app_id, key_id)
        except principals.CredentialNotFound:
            raise bad_request(f"No password credential found with keyId '{key_id}'.") from None
        return web.Response(status=204)

    # -- federated identity credentials ---------------------------------------------------------

    async def list_federated(self, call: Call) -> web.Response:
        sp = await self._application(call.ids[0])
        creds = [objects.federated(f) for f in sp.federated]
        return page(call, creds, _federated_context(sp), objects.FEDERATED_FILTERS, "FederatedIdentityCredential")

    async def create_federated(self, call: Call) -> web.Response:
        sp = await self._application(call.ids[0])
        body = body_object(call.body)
        fields = {}
        for key in ("name", "issuer", "subject"):
            value = body.get(key)
            if not isinstance(value, str) or not value.strip():
                raise bad_request(f"A value is required for property '{key}' of resource "
                                  "'FederatedIdentityCredential'.")
            fields[key] = value
        audiences = body.get("audiences", [principals.EXCHANGE_AUDIENCE])
        if (not isinstance(audiences, list) or len(audiences) != 1
                or not all(isinstance(a, str) and a for a in audiences)):
            raise bad_request("Invalid value specified for property 'audiences' of resource "
                              "'FederatedIdentityCredential'.")
        description = body.get("description")
        try:
            _sp, cred = await self.principals.add_federated(
                sp.app_id, audiences=audiences, **fields,
                description=description if isinstance(description, str) else None)
        except ValueError:
            raise GraphError(409, "Request_MultipleObjectsWithSameKeyValue",
                             f"FederatedIdentityCredential with name {fields['name']} already exists.") from None
        context = call.context(_federated_context(sp) + "/$entity")
        return json_response({"@odata.context": context, **objects.federated(cred)}, 201)

    async def get_federated(self, call: Call) -> web.Response:
        sp = await self._application(call.ids[0])
        cred = _federated(sp, call.ids[1])
        context = call.context(_federated_context(sp) + "/$entity")
        return json_response({"@odata.context": context, **objects.federated(cred)})

    async def delete_federated(self, call: Call) -> web.Response:
        sp = await self._application(call.ids[0])
        cred = _federated(sp, call.ids[1])
        try:
            await self.principals.remove_federated(sp.app_id, cred.id)
        except (principals.CredentialNotFound, principals.PrincipalNotFound):
            raise not_found(call.ids[1]) from None
        return web.Response(status=204)

    # -- directory reads ------------------------------------------------------------------------

    async def get_by_ids(self, call: Call) -> web.Response:
        """The directory objects among `ids` (service principals and groups), typed."""
        body = body_object(call.body)
        ids = body.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(ids) > 1000:
            raise bad_request("Invalid value specified for property 'ids' of resource 'DirectoryObject'.")
        types = body.get("types")
        wanted = {i.lower() for i in ids}

        def asked(kind: str) -> bool:
            return types is None or any(isinstance(t, str) and t.lower() == kind.lower() for t in types)
        found = []
        if asked("servicePrincipal"):
            found += [{"@odata.type": objects.ODATA_TYPES["servicePrincipal"],
                       **objects.service_principal(sp, self.tenant_id)}
                      for sp in await self.principals.list()
                      if sp.service_principal and sp.object_id.lower() in wanted]
        if asked("group"):
            found += [{"@odata.type": objects.ODATA_TYPES["group"], **objects.group(g)}
                      for g in await self.groups.list() if g.object_id.lower() in wanted]
        return json_response({"@odata.context": call.context("directoryObjects"), "value": found})

    async def get_directory_object(self, call: Call) -> web.Response:
        """A directory object by its object id, typed (`@odata.type`): a service principal or a group."""
        obj = await self._require_object(call.ids[0])
        return json_response({"@odata.context": call.context("directoryObjects/$entity"), **obj})

    async def organization(self, call: Call) -> web.Response:
        return json_response({"@odata.context": call.context("organization"),
                      "value": [objects.organization(self.tenant_id, None)]})

    async def me(self, call: Call) -> web.Response:
        """`/me` is a signed-in user's; lks's callers are service principals (and the bootstrap
        token), which Graph answers so."""
        raise bad_request("/me request is only valid with delegated authentication flow.", "BadRequest")

    async def no_owners(self, call: Call) -> web.Response:
        path = call.request.path.lower()
        await (self._application if "/applications/" in path else self._group if "/groups/" in path
               else self._service_principal)(call.ids[0])
        return json_response({"@odata.context": call.context("directoryObjects"), "value": []})

    async def no_users(self, call: Call) -> web.Response:
        return page(call, [], "users", objects.USER_FILTERS, "User")

    # -- helpers --------------------------------------------------------------------------------

    async def _application(self, id: str) -> principals.ServicePrincipal:
        """The principal whose application object id is `id` (Graph's /applications/{id})."""
        return await self._find(id, lambda sp: sp.application_object_id)

    async def _service_principal(self, id: str) -> principals.ServicePrincipal:
        sp = await self._find(id, lambda sp: sp.object_id)
        if not sp.service_principal:
            raise not_found(id)
        return sp

    async def _find(self, id: str,
                    key: Callable[[principals.ServicePrincipal], str]) -> principals.ServicePrincipal:
        if not _GUID.match(id):
            raise bad_request(f"Invalid object identifier '{id}'.")
        sp = await self.principals.get(id)
        if sp is None or key(sp).lower() != id.lower():
            raise not_found(id)
        return sp

    async def _group(self, id: str) -> groups_.Group:
        return await self._groups.group(id)

    async def _require_object(self, id: str) -> dict[str, Any]:
        return await self._groups.require_object(id)

    async def _owner(self, call: Call) -> principals.ServicePrincipal:
        """The principal of an addPassword/removePassword path: an application or a service principal."""
        if "/applications/" in call.request.path.lower():
            return await self._application(call.ids[0])
        return await self._service_principal(call.ids[0])

    async def _update(self, sp: principals.ServicePrincipal, body: dict[str, Any]) -> None:
        """A PATCH: lks keeps a principal's display name; other writable properties are accepted
        and have no effect, except certificates, which lks does not take."""
        _no_key_credentials(body)
        name = body.get("displayName")
        if name is not None:
            if not isinstance(name, str) or not name.strip():
                raise bad_request("Invalid value specified for property 'displayName' of resource "
                                  "'Application'.")
            try:
                await self.principals.rename(sp.app_id, name)
            except principals.PrincipalNotFound:
                raise not_found(sp.object_id) from None

    async def _delete(self, sp: principals.ServicePrincipal) -> None:
        """The application and its service principal."""
        try:
            await self.principals.delete(sp.app_id)
        except principals.PrincipalNotFound:
            raise not_found(sp.application_object_id) from None
        if sp.service_principal:
            await self.groups.forget(sp.object_id)  # a deleted object leaves its groups, as in Entra


def _bootstrap(caller: Caller | None) -> bool:
    return caller is None or caller.bootstrap


def _federated(sp: principals.ServicePrincipal, id_or_name: str) -> principals.FederatedCredential:
    wanted = id_or_name.lower()
    cred = next((f for f in sp.federated if wanted in (f.id.lower(), f.name.lower())), None)
    if cred is None:
        raise not_found(id_or_name)
    return cred


def _federated_context(sp: principals.ServicePrincipal) -> str:
    """The `@odata.context` fragment of an application's federated identity credentials."""
    return f"applications('{sp.application_object_id}')/federatedIdentityCredentials"


def _no_key_credentials(body: dict[str, Any]) -> None:
    if body.get("keyCredentials"):
        raise bad_request("lks principals authenticate with client secrets or federated credentials; "
                          "certificate key credentials are not supported.")


