"""`lks ad app …`: applications and their federated identity credentials, shaped like `az ad
app` (azure-cli `command_modules/role/custom.py`), over the service's Graph subset
(`lks.cli.graph`). An application's service principal is `lks ad sp` (`lks.cli.commands.ad`).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from lks.cli import graph
from lks.cli.client import Client
from lks.cli.output import CLIError


def register(groups: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """`lks ad app …` under `lks ad` (`lks.cli.commands.ad`)."""
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
    p.set_defaults(func=list_apps, table=graph.table)
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


# -- applications -----------------------------------------------------------------------------------

def create_app(args: argparse.Namespace, client: Client) -> Any:
    """az's create_application: patch the one application of that name, else create one."""
    return graph.create_application(client, args.display_name, args.service_management_reference)


def list_apps(args: argparse.Namespace, client: Client) -> Any:
    if args.show_mine:
        return graph.owned(client, "#microsoft.graph.application")
    filters = []
    if args.query_filter:
        filters.append(args.query_filter)
    if args.app_id:
        filters.append(f"appId eq '{graph.literal(args.app_id)}'")
    if args.display_name:
        filters.append(f"startswith(displayName,'{graph.literal(args.display_name)}')")
    if args.identifier_uri:
        filters.append(f"identifierUris/any(s:s eq '{graph.literal(args.identifier_uri)}')")
    return graph.listing(client, "/applications", filters, args.include_all)


def show_app(args: argparse.Namespace, client: Client) -> Any:
    return graph.call(client, "GET", f"/applications/{graph.segment(graph.resolve_app(client, args.identifier))}")


def delete_app(args: argparse.Namespace, client: Client) -> None:
    graph.call(client, "DELETE", f"/applications/{graph.segment(graph.resolve_app(client, args.identifier))}")


# -- federated identity credentials -------------------------------------------------------------

def create_federated(args: argparse.Namespace, client: Client) -> Any:
    parameters = _file_or_dict(args.parameters)
    return graph.call(client, "POST", _credentials(client, args), parameters)


def list_federated(args: argparse.Namespace, client: Client) -> Any:
    return graph.call(client, "GET", _credentials(client, args))


def show_federated(args: argparse.Namespace, client: Client) -> Any:
    return graph.call(client, "GET", f"{_credentials(client, args)}/{graph.segment(args.fic_id)}")


def delete_federated(args: argparse.Namespace, client: Client) -> None:
    graph.call(client, "DELETE", f"{_credentials(client, args)}/{graph.segment(args.fic_id)}")


def _credentials(client: Client, args: argparse.Namespace) -> str:
    """The Graph path of the federated identity credentials of the application `--id` names."""
    app = graph.resolve_app(client, args.app_identifier)
    return f"/applications/{graph.segment(app)}/federatedIdentityCredentials"


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
