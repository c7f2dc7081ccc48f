"""`lks aks autoscaler explain`: why the cluster autoscaler did what it did (an lks extension;
AKS's autoscaler only logs it). Reads the cluster's `autoscalerStatus/default`
(`lks.autoscaler.explain` words it): per pending pod why no pool can take it, per node of an
autoscaled pool why it stays or when it goes.
"""

from __future__ import annotations

import argparse
from collections import OrderedDict
from typing import Any

from lks.cli import commands
from lks.cli.client import Client


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    group = sub.add_parser("autoscaler", help="Commands to inspect the cluster autoscaler (an lks extension).",
                           description="Commands to inspect the cluster autoscaler (an lks extension).")
    cmds = group.add_subparsers(dest="autoscaler_command", required=True, metavar="<command>")
    p = cmds.add_parser("explain", parents=[common], help="Explain the cluster autoscaler's last scan: why each "
                        "pending pod triggers no scale-up and why each node of an autoscaled pool is not removed.")
    commands.resource_group(p)
    p.add_argument("--name", "-n", required=True, help="Name of the managed cluster.")
    p.set_defaults(func=explain, table=table)


def explain(args: argparse.Namespace, client: Client) -> Any:
    doc = client.get(client.cluster_path(args.resource_group, args.name) + "/autoscalerStatus/default") or {}
    # the properties lifted into the resource as az shows resources; their keys are the wire's,
    # and a pod's reasons (scheduler wording) are data, not attribute names to convert
    return {**{k: v for k, v in doc.items() if k != "properties"}, **(doc.get("properties") or {})}


def _row(kind: str, name: str, pool: str, reason: str, message: str) -> OrderedDict[str, Any]:
    return OrderedDict([("kind", kind), ("name", name), ("nodePool", pool), ("reason", reason),
                        ("message", message)])


def table(result: dict[str, Any]) -> list[OrderedDict[str, Any]]:
    """One row per pending pod and pool that refused it, one per node; the state alone when
    there was no scan to explain."""
    rows = []
    for pod in result.get("pendingPods") or []:
        name = f"{pod.get('namespace')}/{pod.get('name')}"
        pools = pod.get("nodePools") or []
        for pool in pools:
            rows.append(_row("Pod", name, pool.get("name"), "NotTriggerScaleUp", ", ".join(pool.get("reasons") or [])))
        if not pools:
            rows.append(_row("Pod", name, "", "NotTriggerScaleUp", pod.get("message") or ""))
    for node in result.get("nodes") or []:
        rows.append(_row("Node", node.get("name"), node.get("nodePool"), node.get("reason"), node.get("message")))
    if not rows:
        rows.append(_row("Cluster", _cluster(result), "", result.get("state") or "", result.get("message") or ""))
    return rows


def _cluster(result: dict[str, Any]) -> str:
    """The cluster's name, from the status resource's id (`…/managedClusters/<name>/autoscalerStatus/default`)."""
    parts = str(result.get("id") or "").split("/")
    return parts[-3] if len(parts) >= 3 else ""
