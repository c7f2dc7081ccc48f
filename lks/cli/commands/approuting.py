"""`lks aks approuting enable|disable|update`: the application routing add-on, as az's
(`azure-cli` acs `aks_approuting_*`, `update_app_routing_profile`): a read-modify-write of the
cluster's `ingressProfile.webAppRouting`, refused when it is already in the state asked for.
Key Vault integration (`--enable-kv`, `--attach-kv`) has no Key Vault here to attach.
"""

from __future__ import annotations

import argparse
from typing import Any

from lks.cli import commands, output
from lks.cli.client import Client

NGINX = ("AnnotationControlled", "External", "Internal", "None")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    group = sub.add_parser("approuting", help="Commands to manage App Routing addon.",
                           description="Commands to manage App Routing addon.")
    cmds = group.add_subparsers(dest="approuting_command", required=True, metavar="<command>")

    def cluster(p: argparse.ArgumentParser) -> None:
        commands.resource_group(p)
        p.add_argument("--name", "-n", required=True, help="Name of the managed cluster.")

    def nginx(p: argparse.ArgumentParser) -> None:
        p.add_argument("--nginx", choices=NGINX, type=_nginx, help="Configure default nginx ingress controller type. "
                       "Valid values are annotationControlled (default behavior), external, internal, or none.")

    p = cmds.add_parser("enable", parents=[common], help="Enable App Routing.")
    cluster(p)
    nginx(p)
    p.set_defaults(func=enable)
    p = cmds.add_parser("disable", parents=[common], help="Disable App Routing addon.")
    cluster(p)
    commands.yes(p)
    p.set_defaults(func=disable)
    p = cmds.add_parser("update", parents=[common], help="Update App Routing addon.")
    cluster(p)
    nginx(p)
    p.set_defaults(func=update)


def _nginx(value: str) -> str:
    return next((k for k in NGINX if k.lower() == value.lower()), value)


def _change(args: argparse.Namespace, client: Client, *, enable: bool | None, nginx: str | None) -> Any:
    from lks.cli.commands import aks  # the cluster's PUT body (aks registers this group)

    path = client.cluster_path(args.resource_group, args.name)
    doc = aks._writable(client.get(path))
    profile = doc["properties"].setdefault("ingressProfile", {}) or {}
    doc["properties"]["ingressProfile"] = profile
    routing = profile.setdefault("webAppRouting", {}) or {}
    profile["webAppRouting"] = routing
    routing.pop("identity", None)  # read-only
    if enable is not None:
        if bool(routing.get("enabled")) == enable:
            raise output.CLIError(f"App Routing is already {'enabled' if enable else 'disabled'}.\n")
        routing["enabled"] = enable
    if nginx is not None:
        routing["nginx"] = {"defaultIngressControllerType": nginx}
    return output.from_arm(client.put(path, doc, no_wait=False))


def enable(args: argparse.Namespace, client: Client) -> Any:
    return _change(args, client, enable=True, nginx=args.nginx)


def disable(args: argparse.Namespace, client: Client) -> Any:
    output.confirm(args.yes)
    return _change(args, client, enable=False, nginx=None)


def update(args: argparse.Namespace, client: Client) -> Any:
    return _change(args, client, enable=None, nginx=args.nginx)


def create_flag(p: argparse.ArgumentParser) -> None:
    """`az aks create --enable-app-routing`."""
    p.add_argument("--enable-app-routing", action="store_true", help="Enable Application Routing addon.")


def create_profile(args: argparse.Namespace, props: dict[str, Any]) -> None:
    if args.enable_app_routing:
        props["ingressProfile"] = {"webAppRouting": {"enabled": True}}
