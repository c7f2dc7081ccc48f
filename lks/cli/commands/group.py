"""`lks group create|list|show|delete`: resource groups, as `az group` manages them
(azure-cli `command_modules/resource`). Groups keep `properties` nested in az's output: their
SDK model does not flatten it.
"""

from __future__ import annotations

import argparse
from collections import OrderedDict
from typing import Any

from lks.cli import commands, output
from lks.cli.client import RESOURCES_API, Client


def _list_table(result: list[dict[str, Any]]) -> list[OrderedDict[str, Any]]:
    """az's transform_resource_group_list."""
    return [OrderedDict([("Name", r["name"]), ("Location", r["location"]),
                         ("Status", (r.get("properties") or {}).get("provisioningState"))]) for r in result]


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    group = sub.add_parser("group", help="Manage resource groups.", description="Manage resource groups.")
    cmds = group.add_subparsers(dest="subcommand", required=True, metavar="<command>")

    def name(p: argparse.ArgumentParser) -> None:
        p.add_argument("--name", "-n", "--resource-group", "-g", dest="name", required=True, metavar="NAME",
                       help="Name of resource group.")

    p = cmds.add_parser("create", parents=[common], help="Create a new resource group.")
    name(p)
    p.add_argument("--location", "-l", required=True, help="Location, e.g. westeurope.")
    commands.tags_arg(p)
    p.set_defaults(func=create)

    p = cmds.add_parser("list", parents=[common], help="List resource groups.")
    p.set_defaults(func=list_, table=_list_table)

    p = cmds.add_parser("show", parents=[common], help="Get a resource group.")
    name(p)
    p.set_defaults(func=show)

    p = cmds.add_parser("delete", parents=[common], help="Delete a resource group and everything in it.")
    name(p)
    commands.no_wait(p)
    commands.yes(p)
    p.set_defaults(func=delete)


def create(args: argparse.Namespace, client: Client) -> Any:
    body: dict[str, Any] = {"location": args.location}
    if args.tags is not None:
        body["tags"] = commands.tags(args.tags)
    doc = client.put(client.group_path(args.name), body, no_wait=False, api_version=RESOURCES_API)
    return output.from_arm(doc, flatten=False)


def list_(args: argparse.Namespace, client: Client) -> Any:
    return output.from_arm(client.list(client.group_path(), RESOURCES_API),
                           flatten=False)


def show(args: argparse.Namespace, client: Client) -> Any:
    return output.from_arm(client.get(client.group_path(args.name), RESOURCES_API), flatten=False)


def delete(args: argparse.Namespace, client: Client) -> None:
    output.confirm(args.yes)
    client.delete(client.group_path(args.name), no_wait=args.no_wait, api_version=RESOURCES_API)
