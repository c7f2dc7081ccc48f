"""`lks ad sp …` and `lks ad app …`: service principals and applications, shaped like `az ad`
(azure-cli `command_modules/role`: `custom.py` for the calls, their order and messages,
`_params.py` for the flags). Like az, it talks to the service's Microsoft Graph subset
(`lks.identity.graph`, under `<endpoint>/graph/`) and, for `create-for-rbac --role --scopes`,
to ARM's `Microsoft.Authorization` role definitions and assignments. Graph objects are printed
as Graph answers them (no ARM flattening), Graph's errors as az prints them: `ERROR: <message>`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import urllib.parse
import uuid
from collections import OrderedDict
from typing import Any

from lks.cli import output
from lks.cli.client import Client, ServiceError
from lks.cli.output import CLIError

GRAPH = "/graph/v1.0"
AUTHORIZATION_API = "2022-04-01"  # Microsoft.Authorization, as az's role commands call it
CREDENTIAL_WARNING = (
    "The output includes credentials that you must protect. Be sure that you do not include these credentials in "
    "your code or check the credentials into your source control. For more information, see https://aka.ms/azadsp-cli")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class NotFound(CLIError):
    exit_code = 3  # az sets status_code 404 on these, so they exit 3


# -- the Graph client (azure-cli's GraphClient, over lks's transport) -----------------------------

def _graph(client: Client, method: str, path: str, body: Any = None, filter: str | None = None) -> Any:
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


def _tenant(client: Client) -> str:
    """The signed-in tenant az prints as `tenant`: the directory's organization."""
    orgs = _graph(client, "GET", "/organization")
    return orgs[0]["id"] if orgs else ""


def _resolve_sp(client: Client, identifier: str) -> str:
    """az's _resolve_service_principal: a service principal name (its appId), else an object id."""
    found = _graph(client, "GET", "/servicePrincipals", filter=f"servicePrincipalNames/any(c:c eq '{_q(identifier)}')")
    if found:
        return found[0]["id"]
    if _GUID.match(identifier):
        return identifier
    raise NotFound(f"Service principal '{identifier}' doesn't exist")


def _resolve_app(client: Client, identifier: str) -> str:
    """az's _resolve_application: an appId or object id (a GUID), else an identifier URI."""
    if _GUID.match(identifier):
        found = _graph(client, "GET", "/applications", filter=f"appId eq '{_q(identifier)}'")
        return found[0]["id"] if found else identifier
    found = _graph(client, "GET", "/applications", filter=f"identifierUris/any(s:s eq '{_q(identifier)}')")
    if not found:
        raise NotFound(f"Application with identifier URI '{identifier}' doesn't exist")
    return found[0]["id"]


def _q(value: str) -> str:
    return value.replace("'", "''")  # an OData string literal


# -- arguments --------------------------------------------------------------------------------------

def _three_state(p: argparse.ArgumentParser, *names: str, dest: str, help: str) -> None:
    """az's get_three_state_flag: the flag alone means true, or an explicit true/false."""
    p.add_argument(*names, dest=dest, nargs="?", const="true", type=str.lower, choices=("true", "false"), help=help)


def _credential_dates(p: argparse.ArgumentParser, *, end_date: bool) -> None:
    g = p.add_argument_group("Credential Arguments")
    g.add_argument("--years", type=int, help="Number of years for which the credentials will be valid. Default: 1 year")
    if end_date:
        g.add_argument("--end-date", help="Finer grain of expiry time if '--years' is insufficient, e.g. "
                       "'2020-12-31T11:59:59+00:00' or '2299-12-31'")
        g.add_argument("--append", action="store_true", help="Append the new credential instead of overwriting.")
        g.add_argument("--display-name", help="Friendly name for the credential.")
    k = p.add_argument_group("keyCredential Arguments")
    k.add_argument("--cert", help="Certificate to use for credentials (not supported by lks).")
    k.add_argument("--create-cert", action="store_true", help="Create a self-signed certificate (not supported by lks).")
    k.add_argument("--keyvault", help="Name or ID of a KeyVault (not supported by lks).")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    ad = sub.add_parser("ad", help="Manage Microsoft Entra ID entities: service principals and applications.",
                        description="Manage Microsoft Entra ID entities: service principals and applications.")
    groups = ad.add_subparsers(dest="group", required=True, metavar="<group>")

    sp = groups.add_parser("sp", help="Manage Microsoft Entra ID service principals.")
    cmds = sp.add_subparsers(dest="subcommand", required=True, metavar="<command>")

    p = cmds.add_parser("create-for-rbac", parents=[common], help="Create an application and its associated "
                        "service principal, optionally configure the service principal's RBAC role assignments.")
    p.add_argument("--display-name", "--name", "-n", dest="display_name", help="Display name of the service "
                   "principal. If not present, default to azure-cli-%%Y-%%m-%%d-%%H-%%M-%%S where the suffix is the "
                   "time of creation.")
    p.add_argument("--role", help="Role of the service principal.")
    p.add_argument("--scopes", nargs="+", help="Space-separated list of scopes the service principal's role "
                   "assignment applies to, e.g. /subscriptions/{id}/resourceGroups/myGroup.")
    p.add_argument("--service-management-reference", help="Set the serviceManagementReference property of the "
                   "created application.")
    _three_state(p, "--create-password", dest="create_password", help="Create a password credential (secret) on "
                 "the application. This is the default behavior.")
    _three_state(p, "--skip-assignment", dest="skip_assignment", help=argparse.SUPPRESS)
    _three_state(p, "--sdk-auth", "--json-auth", dest="sdk_auth", help="Output service principal credential along "
                 "with cloud endpoints in JSON format.")
    _credential_dates(p, end_date=False)
    p.set_defaults(func=create_for_rbac)

    p = cmds.add_parser("create", parents=[common], help="Create a service principal.")
    p.add_argument("--id", dest="identifier", required=True,
                   help="identifier uri, application id, or object id of the associated application")
    p.set_defaults(func=create_sp)

    p = cmds.add_parser("list", parents=[common], help="List service principals.")
    p.add_argument("--all", dest="include_all", action="store_true",
                   help="list all entities, expect long delay if under a big organization")
    p.add_argument("--display-name", help="object's display name or its prefix")
    p.add_argument("--spn", help="service principal name")
    p.add_argument("--filter", dest="query_filter", help="OData filter, e.g. --filter \"displayname eq 'test' and "
                   "servicePrincipalType eq 'Application'\"")
    p.add_argument("--show-mine", action="store_true", help="list entities owned by the current user")
    p.set_defaults(func=list_sps, table=_graph_table)

    for name, func, text in (("show", show_sp, "Get the details of a service principal."),
                             ("delete", delete_sp, "Delete a service principal.")):
        p = cmds.add_parser(name, parents=[common], help=text)
        p.add_argument("--id", dest="identifier", required=True, help="service principal name, or object id")
        p.set_defaults(func=func)

    cred = cmds.add_parser("credential", help="Manage a service principal's credentials.")
    cred_cmds = cred.add_subparsers(dest="credential_command", required=True, metavar="<command>")
    p = cred_cmds.add_parser("reset", parents=[common], help="Reset a service principal credential.")
    p.add_argument("--id", dest="identifier", required=True, help="service principal name, or object id")
    _credential_dates(p, end_date=True)
    p.set_defaults(func=reset_credential)
    p = cred_cmds.add_parser("list", parents=[common], help="List a service principal's credentials.")
    p.add_argument("--id", dest="identifier", required=True, help="service principal name, or object id")
    p.add_argument("--cert", action="store_true", help="Operate on certificate credentials")
    p.set_defaults(func=list_credentials)
    p = cred_cmds.add_parser("delete", parents=[common], help="Delete a service principal's credential.")
    p.add_argument("--id", dest="identifier", required=True, help="service principal name, or object id")
    p.add_argument("--key-id", required=True, help="credential key id")
    p.add_argument("--cert", action="store_true", help="Operate on certificate credentials")
    p.set_defaults(func=delete_credential)

    app = groups.add_parser("app", help="Manage Microsoft Entra ID applications.")
    app_cmds = app.add_subparsers(dest="subcommand", required=True, metavar="<command>")
    p = app_cmds.add_parser("create", parents=[common], help="Create an application.")
    p.add_argument("--display-name", required=True, help="the display name of the application")
    p.add_argument("--service-management-reference", help="References application or service contact information "
                   "from a Service or Asset Management database.")
    p.set_defaults(func=create_app)
    p = app_cmds.add_parser("list", parents=[common], help="List applications.")
    p.add_argument("--all", dest="include_all", action="store_true",
                   help="list all entities, expect long delay if under a big organization")
    p.add_argument("--app-id", help="application id")
    p.add_argument("--display-name", help="the display name of the application")
    p.add_argument("--identifier-uri", help="graph application identifier, must be in uri format")
    p.add_argument("--filter", dest="query_filter", help="OData filter, e.g. --filter \"displayname eq 'test'\"")
    p.add_argument("--show-mine", action="store_true", help="list entities owned by the current user")
    p.set_defaults(func=list_apps, table=_graph_table)
    for name, func, text in (("show", show_app, "Get the details of an application."),
                             ("delete", delete_app, "Delete an application.")):
        p = app_cmds.add_parser(name, parents=[common], help=text)
        p.add_argument("--id", dest="identifier", required=True, help="identifier uri, application id, or object id")
        p.set_defaults(func=func)

    fic = app_cmds.add_parser("federated-credential", help="Manage application federated identity credentials.")
    fic_cmds = fic.add_subparsers(dest="fic_command", required=True, metavar="<command>")

    def app_id(p: argparse.ArgumentParser) -> None:
        p.add_argument("--id", dest="app_identifier", required=True,
                       help="Application's appId, identifierUri, or id (formerly known as objectId)")

    def fic_id(p: argparse.ArgumentParser) -> None:
        p.add_argument("--federated-credential-id", dest="fic_id", required=True,
                       help="ID or name of the federated identity credential")

    p = fic_cmds.add_parser("create", parents=[common], help="Create application federated identity credential.")
    app_id(p)
    p.add_argument("--parameters", required=True, help="Parameters for creating federated identity credential. "
                   "Should be JSON file path or in-line JSON string.")
    p.set_defaults(func=create_federated)
    p = fic_cmds.add_parser("list", parents=[common], help="List application federated identity credentials.")
    app_id(p)
    p.set_defaults(func=list_federated)
    for name, func, text in (("show", show_federated, "Show application federated identity credential."),
                             ("delete", delete_federated, "Delete application federated identity credential.")):
        p = fic_cmds.add_parser(name, parents=[common], help=text)
        app_id(p)
        fic_id(p)
        p.set_defaults(func=func)


def _graph_table(result: list[dict[str, Any]]) -> list[OrderedDict[str, Any]]:
    """az's get_graph_object_transformer('sp'): sorted by display name, the object id shown."""
    keys = (("DisplayName", "displayName"), ("Id", "id"), ("AppId", "appId"), ("CreatedDateTime", "createdDateTime"))
    return [OrderedDict((col, r.get(key)) for col, key in keys)
            for r in sorted(result, key=lambda r: r.get("displayName") or "")]


# -- service principals -------------------------------------------------------------------------

def create_for_rbac(args: argparse.Namespace, client: Client) -> Any:
    """az's create_service_principal_for_rbac, call for call."""
    if args.sdk_auth == "true":  # knack warns as it parses the arguments
        output.warning("Option '--sdk-auth' has been deprecated and will be removed in a future release.")
    if bool(args.role) != bool(args.scopes):
        raise CLIError("Usage error: To create role assignments, specify both --role and --scopes.")
    _no_certificates(args)
    now = datetime.datetime.now(datetime.UTC)
    existing_sps = None
    if args.display_name:
        name = args.display_name
        # an existing service principal of that name makes the command idempotent
        existing_sps = _graph(client, "GET", "/servicePrincipals", filter=f"displayName eq '{_q(name)}'")
    else:
        name = "azure-cli-" + now.strftime("%Y-%m-%d-%H-%M-%S")
    end = _add_years(now, args.years or 1)

    app = _create_application(client, name, args.service_management_reference)
    for cred in app.get("passwordCredentials") or []:  # an existing application loses its old secrets
        _graph(client, "POST", f"/applications/{app['id']}/removePassword", {"keyId": cred["keyId"]})
    password = None
    if args.create_password != "false":
        made = _graph(client, "POST", f"/applications/{app['id']}/addPassword", _password_body("rbac", now, end))
        password = made["secretText"]

    sp = existing_sps[0] if existing_sps else _graph(client, "POST", "/servicePrincipals",
                                                     {"appId": app["appId"], "accountEnabled": True})
    if args.role:
        for scope in args.scopes:
            output.warning(f"Creating '{args.role}' role assignment under scope '{scope}'")
            _assign_role(client, args.role, sp["id"], scope)
    if password:
        output.warning(CREDENTIAL_WARNING)
    tenant = _tenant(client)
    if args.sdk_auth == "true":
        _sdk_auth(client, args.scopes, app["appId"], password, tenant)
        return None
    return {"appId": app["appId"], "displayName": name, "password": password, "tenant": tenant}


def _create_application(client: Client, name: str, reference: str | None) -> dict[str, Any]:
    """az's create_application: patch the one application of that exact name, else create one."""
    existing = [a for a in _graph(client, "GET", "/applications", filter=f"startswith(displayName,'{_q(name)}')")
                if a["displayName"] == name]
    if len(existing) > 1:
        raise CLIError(f"More than one application have the same display name '{name}': (id) "
                       f"{', '.join(a['id'] for a in existing)}, please remove them first.")
    body: dict[str, Any] = {"displayName": name}
    if reference is not None:
        body["serviceManagementReference"] = reference
    if existing:
        output.warning(f"Found an existing application instance: (id) {existing[0]['id']}. We will patch it.")
        _graph(client, "PATCH", f"/applications/{existing[0]['id']}", body)
        return _graph(client, "GET", f"/applications/{existing[0]['id']}")
    return _graph(client, "POST", "/applications", {**body, "keyCredentials": []})


def _assign_role(client: Client, role: str, principal_id: str, scope: str) -> None:
    """az's _create_role_assignment for a service principal: the role by id or name at `scope`,
    then a PUT of a new assignment; one that exists already is only a warning."""
    scope = "/" + scope.strip("/")
    if re.match(r"/subscriptions/.+/providers/Microsoft.Authorization/roleDefinitions/", role, re.I):
        role_id = role
    elif _GUID.match(role):
        role_id = f"/subscriptions/{client.subscription}/providers/Microsoft.Authorization/roleDefinitions/{role}"
    else:
        found = client.request("GET", f"{scope}/providers/Microsoft.Authorization/roleDefinitions",
                               api_version=AUTHORIZATION_API, query={"$filter": f"roleName eq '{_q(role)}'"}).body
        defs = (found or {}).get("value") or []
        if not defs:
            raise CLIError(f"Role '{role}' doesn't exist.")
        if len(defs) > 1:
            raise CLIError(f"More than one role matches the given name '{role}'. Please pick a value from "
                           f"'{[d['id'] for d in defs]}'")
        role_id = defs[0]["id"]
    body = {"properties": {"roleDefinitionId": role_id, "principalId": principal_id,
                           "principalType": "ServicePrincipal"}}
    try:
        client.request("PUT", f"{scope}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}",
                       api_version=AUTHORIZATION_API, body=body)
    except ServiceError as err:
        if err.status == 409 and err.code == "RoleAssignmentExists":
            output.warning("  Role assignment already exists.\n")
            return
        output.warning("  Role assignment creation failed.\n")
        raise


def _sdk_auth(client: Client, scopes: list[str] | None, app_id: str, password: str | None, tenant: str) -> None:
    """az's `--sdk-auth`: Profile.get_sp_auth_info, the credential with the cloud's endpoints
    (the service's cloud metadata, as `az cloud register` read them), printed as az prints it."""
    cloud = client.request("GET", "/metadata/endpoints", api_version="2022-09-01").body or {}
    auth = cloud.get("authentication") or {}
    subscription = scopes[0].strip("/").split("/")[1] if scopes else client.subscription
    print(json.dumps({
        "clientId": app_id, "clientSecret": password, "subscriptionId": subscription, "tenantId": tenant,
        "activeDirectoryEndpointUrl": auth.get("loginEndpoint"), "resourceManagerEndpointUrl": cloud.get(
            "resourceManager"), "activeDirectoryGraphResourceId": cloud.get("graphAudience"),
        "sqlManagementEndpointUrl": cloud.get("sqlManagement"), "galleryEndpointUrl": cloud.get("gallery"),
        "managementEndpointUrl": (auth.get("audiences") or [None])[0]}, indent=2))


def list_sps(args: argparse.Namespace, client: Client) -> Any:
    if args.show_mine:
        return []  # the bootstrap owner owns no directory objects
    filters = []
    if args.query_filter:
        filters.append(args.query_filter)
    if args.spn:
        filters.append(f"servicePrincipalNames/any(c:c eq '{_q(args.spn)}')")
    if args.display_name:
        filters.append(f"startswith(displayName,'{_q(args.display_name)}')")
    result = _graph(client, "GET", "/servicePrincipals", filter=" and ".join(filters) if filters else None)
    if filters or args.include_all:
        return result
    if len(result) > 100:
        output.warning("The result is not complete. You can still use '--all' to get all of them with long "
                       "latency expected, or provide a filter through command arguments")
    return result[:100]


def create_sp(args: argparse.Namespace, client: Client) -> Any:
    """az's _create_service_principal: the application by appId, identifier URI or object id."""
    identifier = args.identifier
    if _GUID.match(identifier):
        found = _graph(client, "GET", "/applications", filter=f"appId eq '{_q(identifier)}'")
    else:
        found = _graph(client, "GET", "/applications", filter=f"identifierUris/any(s:s eq '{_q(identifier)}')")
    app_id = identifier
    try:
        app_id = (found or [_graph(client, "GET", f"/applications/{_segment(identifier)}")])[0]["appId"]
    except CLIError:
        pass  # as az: fall back to the identifier as an appId
    return _graph(client, "POST", "/servicePrincipals", {"appId": app_id, "accountEnabled": True})


def show_sp(args: argparse.Namespace, client: Client) -> Any:
    return _graph(client, "GET", f"/servicePrincipals/{_resolve_sp(client, args.identifier)}")


def delete_sp(args: argparse.Namespace, client: Client) -> None:
    _graph(client, "DELETE", f"/servicePrincipals/{_resolve_sp(client, args.identifier)}")


def reset_credential(args: argparse.Namespace, client: Client) -> Any:
    """az's reset_service_principal_credential (_reset_credential with the service principal's calls)."""
    _no_certificates(args)
    sp = show_sp(args, client)
    now = datetime.datetime.now(datetime.UTC)
    if args.years is not None and args.end_date is not None:
        raise CLIError("usage error: --years | --end-date")
    end = _add_years(now, args.years or 1) if args.end_date is None else _parse_date(args.end_date)
    if not args.append:
        for cred in sp.get("passwordCredentials") or []:
            _graph(client, "POST", f"/servicePrincipals/{sp['id']}/removePassword", {"keyId": cred["keyId"]})
    made = _graph(client, "POST", f"/servicePrincipals/{sp['id']}/addPassword",
                  _password_body(args.display_name, now, end))
    output.warning(CREDENTIAL_WARNING)
    return {"appId": sp["appId"], "password": made["secretText"], "tenant": _tenant(client)}


def list_credentials(args: argparse.Namespace, client: Client) -> Any:
    sp = show_sp(args, client)
    return sp.get("keyCredentials" if args.cert else "passwordCredentials") or []


def delete_credential(args: argparse.Namespace, client: Client) -> None:
    sp = show_sp(args, client)
    if args.cert:
        raise CLIError(f"No key credential found with keyId as '{args.key_id}' in graph object '{sp['id']}'.")
    _graph(client, "POST", f"/servicePrincipals/{sp['id']}/removePassword", {"keyId": args.key_id})


# -- applications -----------------------------------------------------------------------------------

def create_app(args: argparse.Namespace, client: Client) -> Any:
    """az's create_application: patch the one application of that name, else create one."""
    return _create_application(client, args.display_name, args.service_management_reference)


def list_apps(args: argparse.Namespace, client: Client) -> Any:
    if args.show_mine:
        return []  # the bootstrap owner owns no directory objects
    filters = []
    if args.query_filter:
        filters.append(args.query_filter)
    if args.app_id:
        filters.append(f"appId eq '{_q(args.app_id)}'")
    if args.display_name:
        filters.append(f"startswith(displayName,'{_q(args.display_name)}')")
    if args.identifier_uri:
        filters.append(f"identifierUris/any(s:s eq '{_q(args.identifier_uri)}')")
    result = _graph(client, "GET", "/applications", filter=" and ".join(filters) if filters else None)
    if filters or args.include_all:
        return result
    if len(result) > 100:
        output.warning("The result is not complete. You can still use '--all' to get all of them with long "
                       "latency expected, or provide a filter through command arguments")
    return result[:100]


def show_app(args: argparse.Namespace, client: Client) -> Any:
    return _graph(client, "GET", f"/applications/{_segment(_resolve_app(client, args.identifier))}")


def delete_app(args: argparse.Namespace, client: Client) -> None:
    _graph(client, "DELETE", f"/applications/{_segment(_resolve_app(client, args.identifier))}")


# -- federated identity credentials -------------------------------------------------------------

def create_federated(args: argparse.Namespace, client: Client) -> Any:
    parameters = _file_or_dict(args.parameters)
    app = _resolve_app(client, args.app_identifier)
    return _graph(client, "POST", f"/applications/{app}/federatedIdentityCredentials", parameters)


def list_federated(args: argparse.Namespace, client: Client) -> Any:
    return _graph(client, "GET", f"/applications/{_resolve_app(client, args.app_identifier)}"
                  "/federatedIdentityCredentials")


def show_federated(args: argparse.Namespace, client: Client) -> Any:
    return _graph(client, "GET", f"/applications/{_resolve_app(client, args.app_identifier)}"
                  f"/federatedIdentityCredentials/{_segment(args.fic_id)}")


def delete_federated(args: argparse.Namespace, client: Client) -> None:
    _graph(client, "DELETE", f"/applications/{_resolve_app(client, args.app_identifier)}"
           f"/federatedIdentityCredentials/{_segment(args.fic_id)}")


# -- helpers ----------------------------------------------------------------------------------------

def _no_certificates(args: argparse.Namespace) -> None:
    if args.cert or args.create_cert or args.keyvault:
        raise CLIError("lks service principals authenticate with client secrets or federated credentials; "
                       "--cert, --create-cert and --keyvault are not supported.")


def _password_body(display_name: str | None, start: datetime.datetime, end: datetime.datetime) -> dict[str, Any]:
    """az's _build_add_password_credential_body."""
    return {"passwordCredential": {"displayName": display_name, "endDateTime": _utc(end),
                                   "startDateTime": _utc(start)}}


def _utc(dt: datetime.datetime) -> str:
    return dt.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _add_years(dt: datetime.datetime, years: int) -> datetime.datetime:
    """dateutil's relativedelta(years=n): the same day n years on (Feb 29 becomes Feb 28)."""
    try:
        return dt.replace(year=dt.year + years)
    except ValueError:
        return dt.replace(year=dt.year + years, day=28)


def _parse_date(value: str) -> datetime.datetime:
    try:
        dt = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise CLIError(f"Unknown string format: {value}") from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=datetime.UTC)


def _file_or_dict(value: str) -> Any:
    """az's validate_file_or_dict: a JSON file (a path, or @path) or in-line JSON."""
    path = value[1:] if value.startswith("@") else value
    if os.path.exists(os.path.expanduser(path)):
        try:
            with open(os.path.expanduser(path)) as f:
                value = f.read()
        except OSError as err:
            raise CLIError(f"Cannot read {path}: {err}") from None
    try:
        return json.loads(value)
    except ValueError as err:
        raise CLIError(f"Failed to parse string as JSON:\n{value}\nError detail: {err}") from None


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")
