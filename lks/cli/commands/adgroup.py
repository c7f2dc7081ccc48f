"""`lks ad group …`: the directory's security groups and their members, shaped like `az ad group`
(azure-cli `command_modules/role`: `custom.py` for the calls, `_validators.validate_group` for
how `--group` finds a group by display name), over the service's Graph subset (`lks.cli.graph`).
Role assignments to a group then reach its members (`lks role assignment create
--assignee-object-id <group> --assignee-principal-type Group`), and so do an Entra cluster's
`--aad-admin-group-object-ids`.
"""

from __future__ import annotations

import argparse
from typing import Any

from lks.cli import graph, output
from lks.cli.client import Client
from lks.cli.output import CLIError

GROUP_HELP = "group's object id or display name(prefix also works if there is a unique match)"
MEMBER_HELP = "The object ID of the contact, group, user, or service principal"


def register(groups: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """`lks ad group …` under `lks ad` (`lks.cli.commands.ad`)."""
    group = groups.add_parser("group", help="Manage Microsoft Entra groups.")
    cmds = group.add_subparsers(dest="subcommand", required=True, metavar="<command>")

    p = cmds.add_parser("create", parents=[common], help="Create a group.")
    p.add_argument("--display-name", required=True, help="Object's display name.")
    p.add_argument("--mail-nickname", required=True, help="Mail nickname")
    p.add_argument("--description", help="Group description")
    p.add_argument("--force", nargs="?", const="true", type=str.lower, choices=("true", "false"),
                   help="always create a new group instead of updating the one with same display and mail nickname")
    p.set_defaults(func=create_group)

    p = cmds.add_parser("list", parents=[common], help="List groups in the directory.")
    p.add_argument("--display-name", help="Object's display name or its prefix.")
    p.add_argument("--filter", dest="query_filter", help="OData filter, e.g. --filter \"displayname eq 'test' and "
                   "securityEnabled eq true\"")
    p.set_defaults(func=list_groups)

    def group_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--group", "-g", dest="group", required=True, help=GROUP_HELP)

    for name, func, text in (("show", show_group, "Get the details of a group."),
                             ("delete", delete_group, "Delete a group.")):
        p = cmds.add_parser(name, parents=[common], help=text)
        group_arg(p)
        p.set_defaults(func=func)
    p = cmds.add_parser("get-member-groups", parents=[common], help="Get a collection of object IDs of groups of "
                        "which the specified group is a member.")
    group_arg(p)
    p.add_argument("--security-enabled-only", nargs="?", const="true", type=str.lower, choices=("true", "false"),
                   help="true to specify that only security groups that the entity is a member of should be "
                   "returned; false to specify that all groups and directory roles that the entity is a member of "
                   "should be returned.")
    p.set_defaults(func=member_groups)

    member = cmds.add_parser("member", help="Manage Microsoft Entra group membership.")
    member_cmds = member.add_subparsers(dest="member_command", required=True, metavar="<command>")
    for name, func, text in (("add", add_member, "Add a member to a group."),
                             ("remove", remove_member, "Remove a member from a group."),
                             ("check", check_member, "Check if a member is in a group.")):
        p = member_cmds.add_parser(name, parents=[common], help=text)
        group_arg(p)
        p.add_argument("--member-id", dest="member_id", required=True, help=MEMBER_HELP)
        p.set_defaults(func=func)
    p = member_cmds.add_parser("list", parents=[common], help="Get the members of a group.")
    group_arg(p)
    p.set_defaults(func=list_members)


def create_group(args: argparse.Namespace, client: Client) -> Any:
    """az's create_group: idempotent on display name and mail nickname unless `--force`."""
    if args.force != "true":
        matches = graph.call(client, "GET", "/groups", filter=f"displayName eq '{graph.literal(args.display_name)}' "
                             f"and mailNickname eq '{graph.literal(args.mail_nickname)}'")
        if len(matches) > 1:
            raise CLIError("There is more than one group with the same display and nick names: "
                           f"\"{', '.join(m['id'] for m in matches)}\". Please delete them first.")
        if matches:
            output.warning("A group with the same display name and mail nickname already exists, returning.")
            return matches[0]
    body: dict[str, Any] = {"displayName": args.display_name, "mailNickname": args.mail_nickname,
                            "mailEnabled": False, "securityEnabled": True}
    if args.description is not None:
        body["description"] = args.description
    return graph.call(client, "POST", "/groups", body)


def list_groups(args: argparse.Namespace, client: Client) -> Any:
    filters = []
    if args.query_filter:
        filters.append(args.query_filter)
    if args.display_name:
        filters.append(f"startswith(displayName,'{graph.literal(args.display_name)}')")
    return graph.call(client, "GET", "/groups", filter=" and ".join(filters) if filters else None)


def show_group(args: argparse.Namespace, client: Client) -> Any:
    return graph.call(client, "GET", f"/groups/{graph.segment(_group(client, args.group))}")


def delete_group(args: argparse.Namespace, client: Client) -> None:
    graph.call(client, "DELETE", f"/groups/{graph.segment(_group(client, args.group))}")


def member_groups(args: argparse.Namespace, client: Client) -> Any:
    return graph.call(client, "POST", f"/groups/{graph.segment(_group(client, args.group))}/getMemberGroups",
                      {"securityEnabledOnly": args.security_enabled_only == "true"})


def list_members(args: argparse.Namespace, client: Client) -> Any:
    return graph.call(client, "GET", f"/groups/{graph.segment(_group(client, args.group))}/members")


def add_member(args: argparse.Namespace, client: Client) -> None:
    """az's add_group_member: a `$ref` to the member's directory object URL (not idempotent, as az's)."""
    group = _group(client, args.group)
    ref = (args.member_id if not graph.GUID.match(args.member_id)
           else f"{client.config.endpoint}{graph.GRAPH}/directoryObjects/{args.member_id}")
    graph.call(client, "POST", f"/groups/{graph.segment(group)}/members/$ref", {"@odata.id": ref})


def remove_member(args: argparse.Namespace, client: Client) -> None:
    group = _group(client, args.group)
    graph.call(client, "DELETE", f"/groups/{graph.segment(group)}/members/{graph.segment(args.member_id)}/$ref")


def check_member(args: argparse.Namespace, client: Client) -> Any:
    """az's check_group_membership: checkMemberGroups of the member for the one group."""
    group = _group(client, args.group)
    found = graph.call(client, "POST", f"/directoryObjects/{graph.segment(args.member_id)}/checkMemberGroups",
                       {"groupIds": [group]})
    return {"value": found is not None and group in found}


def _group(client: Client, value: str) -> str:
    """az's validate_group: an object id, else the one group of that display name, else of that
    display-name prefix."""
    if graph.GUID.match(value):
        return value
    for clause in (f"displayName eq '{graph.literal(value)}'", f"startswith(displayName,'{graph.literal(value)}')"):
        found = graph.call(client, "GET", "/groups", filter=clause)
        if len(found) == 1:
            return found[0]["id"]
        if len(found) > 1:
            raise CLIError(f"More than one group match the name of '{value}'")
    raise CLIError(f"No group matches the name of '{value}'")
