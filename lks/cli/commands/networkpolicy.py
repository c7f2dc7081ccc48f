"""`lks aks network-policy check`: would a connection between two pods go through the cluster's
NetworkPolicies, and which policies decide it (an lks extension; the management API's
`managedClusters/{name}/networkPolicyCheck`, `lks.arm.netpolcheck`, answers). Both directions
count: the source's egress and the destination's ingress.
"""

from __future__ import annotations

import argparse
from collections import OrderedDict
from typing import Any

from lks.cli import commands
from lks.cli.client import CONTAINER_SERVICE_API, Client


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    group = sub.add_parser("network-policy", help="Commands to inspect network policies (an lks extension).",
                           description="Commands to inspect network policies (an lks extension).")
    cmds = group.add_subparsers(dest="network_policy_command", required=True, metavar="<command>")
    p = cmds.add_parser("check", parents=[common], help="Check whether a connection from one pod to another is "
                        "allowed by the cluster's network policies, and name the policies that decide.")
    commands.resource_group(p)
    p.add_argument("--name", "-n", required=True, help="Name of the managed cluster.")
    p.add_argument("--from", dest="source", required=True, metavar="NAMESPACE/POD",
                   help="The client: a pod as <namespace>/<name>, or an IP address.")
    p.add_argument("--to", dest="destination", required=True, metavar="NAMESPACE/POD",
                   help="The server: a pod as <namespace>/<name>, or an IP address.")
    p.add_argument("--port", required=True, help="The destination port.")
    p.add_argument("--protocol", default="TCP", choices=("TCP", "UDP", "SCTP"), type=str.upper,
                   help="The protocol. Default: TCP.")
    p.set_defaults(func=check, table=table)


def check(args: argparse.Namespace, client: Client) -> Any:
    body = {"from": args.source, "to": args.destination, "port": args.port, "protocol": args.protocol}
    path = client.cluster_path(args.resource_group, args.name) + "/networkPolicyCheck"
    return client.request("POST", path, api_version=CONTAINER_SERVICE_API, body=body).body


def table(result: dict[str, Any]) -> list[OrderedDict[str, Any]]:
    """One row per direction: which pod, whether it is isolated and allowed, and by which policies."""
    rows = []
    for side in (result.get("egress") or {}, result.get("ingress") or {}):
        rows.append(OrderedDict([
            ("direction", side.get("direction")), ("pod", side.get("pod") or ""),
            ("isolated", side.get("isolated")), ("allowed", side.get("allowed")),
            ("policies", ", ".join(side.get("allowingPolicies") or side.get("selectingPolicies") or []))]))
    rows.append(OrderedDict([("direction", "Result"), ("pod", f"{result.get('from')} -> {result.get('to')}"),
                             ("isolated", ""), ("allowed", result.get("allowed")),
                             ("policies", ", ".join(result.get("decidingPolicies") or []))]))
    return rows
