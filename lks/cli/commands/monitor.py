"""`lks aks logs` (a cluster's control-plane logs, read from the management endpoint's
`controlPlaneLogs` route, `lks.arm.controlplanelogs`) and az's Azure Monitor metrics flags of
`lks aks update` (`--enable-azure-monitor-metrics` ...), which only set `azureMonitorProfile`.
"""

from __future__ import annotations

import argparse
import json
import re
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from lks.cli import commands, output
from lks.cli.client import CONTAINER_SERVICE_API, Client, ServiceError

COMPONENTS = ("kube-apiserver", "kube-scheduler", "kube-controller-manager", "kube-audit")
FLAGS = ["--enable-azure-monitor-metrics", "--disable-azure-monitor-metrics", "--ksm-metric-labels-allow-list",
         "--ksm-metric-annotations-allow-list"]
_SINCE = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def register(cmds: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = cmds.add_parser("logs", parents=[common], help="Show a managed cluster's control-plane logs (the "
                        "categories AKS sends to diagnostic settings).")
    commands.resource_group(p)
    p.add_argument("--name", "-n", required=True, help="Name of the managed cluster.")
    p.add_argument("--component", required=True, choices=COMPONENTS, help="Which control-plane log.")
    p.add_argument("--since", type=_since, help="Only lines newer than this relative duration, e.g. 10m, 1h, 30s.")
    p.add_argument("--follow", "-f", action="store_true", help="Keep printing lines as they are written.")
    p.set_defaults(func=logs)


def update_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--enable-azure-monitor-metrics", action="store_true",
                   help="Enable Azure Monitor metrics (managed Prometheus) for the cluster.")
    p.add_argument("--disable-azure-monitor-metrics", action="store_true",
                   help="Disable Azure Monitor metrics for the cluster.")
    p.add_argument("--ksm-metric-labels-allow-list", help="Comma-separated list of additional Kubernetes label "
                   "keys used in the resource's labels metric, e.g. namespaces=[k8s-label-1,k8s-label-n],pods=[app].")
    p.add_argument("--ksm-metric-annotations-allow-list", help="Comma-separated list of Kubernetes annotation keys "
                   "used in the resource's annotations metric, e.g. namespaces=[kubernetes.io/team],pods=[*].")


def given(args: argparse.Namespace) -> bool:
    return bool(args.enable_azure_monitor_metrics or args.disable_azure_monitor_metrics)


def apply(args: argparse.Namespace, props: dict[str, Any]) -> None:
    """az's azureMonitorProfile for the flags given (nothing: left as it is)."""
    if args.enable_azure_monitor_metrics and args.disable_azure_monitor_metrics:
        raise output.CLIError("Cannot specify --enable-azure-monitor-metrics and --disable-azure-monitor-metrics "
                              "at the same time.")
    if args.enable_azure_monitor_metrics:
        props["azureMonitorProfile"] = {**(props.get("azureMonitorProfile") or {}), "metrics": {
            "enabled": True, "kubeStateMetrics": {
                "metricLabelsAllowlist": args.ksm_metric_labels_allow_list or "",
                "metricAnnotationsAllowList": args.ksm_metric_annotations_allow_list or ""}}}
    elif args.disable_azure_monitor_metrics:
        props["azureMonitorProfile"] = {**(props.get("azureMonitorProfile") or {}), "metrics": {"enabled": False}}


def logs(args: argparse.Namespace, client: Client) -> None:
    query = {"api-version": CONTAINER_SERVICE_API}
    if args.since is not None:
        query["sinceSeconds"] = str(args.since)
    if args.follow:
        query["follow"] = "true"
    path = f"{client.cluster_path(args.resource_group, args.name)}/controlPlaneLogs/{args.component}"
    url = f"{client.config.endpoint}{path}?{urllib.parse.urlencode(query)}"
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {client.config.token}",
                                               "User-Agent": "lks-cli"})
    context = ssl.create_default_context(cafile=client.config.ca_file)
    try:
        with urllib.request.urlopen(req, context=context, timeout=None if args.follow else 120) as resp:
            out = sys.stdout.buffer
            while chunk := resp.read1(64 * 1024):
                out.write(chunk)
                out.flush()
    except urllib.error.HTTPError as err:
        raise ServiceError.from_body(err.code, _json(err.read())) from None
    except urllib.error.URLError as err:
        raise output.CLIError(f"Cannot reach the lks management API at {client.config.endpoint}: {err.reason}. "
                              "Is 'lks up' running?") from None


def _since(value: str) -> int:
    match = _SINCE.fullmatch(value.strip())
    if not value.strip() or match is None:
        raise argparse.ArgumentTypeError(f"invalid duration: '{value}' (e.g. 10m, 1h, 30s)")
    h, m, s = (int(g or 0) for g in match.groups())
    return 3600 * h + 60 * m + s


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


