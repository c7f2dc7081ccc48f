"""`lks aks nodepool add|list|show|scale|update|delete`: a cluster's node pools through the
`agentPools` API, shaped like `az aks nodepool` (azure-cli `command_modules/acs/custom.py`
`aks_agentpool_*`, `agentpool_decorator.py`, `_format.py`).
"""

from __future__ import annotations

import argparse
from typing import Any

from lks.cli import commands, output
from lks.cli.client import Client

# az's _aks_agentpool_table_format
_POOL_ROW = ("{name: name, osType: osType, kubernetesVersion: orchestratorVersion, vmSize: vmSize, "
             "osDiskSizeGB: osDiskSizeGb, count: count, maxPods: maxPods, provisioningState: provisioningState, "
             "mode: mode}")
SHOW_TABLE = _POOL_ROW
LIST_TABLE = "[]." + _POOL_ROW

_READ_ONLY = ("provisioningState", "currentOrchestratorVersion", "eTag")
WORKLOAD_RUNTIMES = ("OCIContainer", "WasmWasi", "KataMshvVmIsolation", "KataVmIsolation", "Process")
WORKLOAD_RUNTIME_HELP = ("Determines the type of workload a node can run. Default: OCIContainer (simulated on lks); "
                         "Process runs each container's command as a process on the host.")


def writable(pool: dict[str, Any]) -> dict[str, Any]:
    """A fetched pool's properties as a PUT body (read-only fields dropped)."""
    return commands.writable(pool, _READ_ONLY)


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    group = sub.add_parser("nodepool", help="Commands to manage node pools in Kubernetes cluster.",
                           description="Commands to manage node pools in Kubernetes cluster.")
    cmds = group.add_subparsers(dest="nodepool_command", required=True, metavar="<command>")

    def pool(p: argparse.ArgumentParser, *, name: bool = True) -> None:
        commands.resource_group(p)
        p.add_argument("--cluster-name", required=True, help="The cluster name.")
        if name:
            p.add_argument("--name", "--nodepool-name", "-n", dest="nodepool_name", required=True,
                           help="The node pool name.")

    p = cmds.add_parser("add", parents=[common], help="Add a node pool to the managed Kubernetes cluster.")
    pool(p)
    p.add_argument("--node-count", "-c", type=int, default=3, help="Number of nodes in the node pool. Default: 3.")
    p.add_argument("--node-vm-size", "-s", help="Size of Virtual Machines to create as Kubernetes nodes.")
    p.add_argument("--kubernetes-version", "-k", default="", help="Version of Kubernetes to use for the node pool.")
    p.add_argument("--mode", choices=("System", "User", "Gateway"), default="User",
                   help="The mode for a node pool. Default: User.")
    p.add_argument("--labels", nargs="*", metavar="KEY=VALUE",
                   help="The node labels for the node pool: key=value [key=value ...].")
    p.add_argument("--node-taints", metavar="TAINTS",
                   help='The node taints for the node pool, comma-separated, e.g. "special=true:NoSchedule".')
    p.add_argument("--max-pods", "-m", type=int, help="The maximum number of pods deployable to a node.")
    p.add_argument("--os-type", choices=("Linux", "Windows"), help="The OS Type. Default: Linux.")
    p.add_argument("--os-sku", help="The OS SKU of the agent node pool, e.g. Ubuntu or AzureLinux.")
    p.add_argument("--workload-runtime", choices=WORKLOAD_RUNTIMES, help=WORKLOAD_RUNTIME_HELP)
    commands.tags_arg(p)
    commands.no_wait(p)
    p.set_defaults(func=add)

    p = cmds.add_parser("list", parents=[common], help="List node pools in the managed Kubernetes cluster.")
    pool(p, name=False)
    p.set_defaults(func=list_, table=LIST_TABLE)

    p = cmds.add_parser("show", parents=[common], help="Show the details for a node pool in the managed "
                        "Kubernetes cluster.")
    pool(p)
    p.set_defaults(func=show, table=SHOW_TABLE)

    p = cmds.add_parser("scale", parents=[common], help="Scale the node pool in a managed Kubernetes cluster.")
    pool(p)
    p.add_argument("--node-count", "-c", type=int, default=3, help="Number of nodes in the node pool. Default: 3.")
    commands.no_wait(p)
    p.set_defaults(func=scale)

    p = cmds.add_parser("update", parents=[common], help="Update a node pool properties.")
    pool(p)
    p.add_argument("--labels", nargs="*", metavar="KEY=VALUE",
                   help='The node labels for the node pool: key=value [key=value ...]. Use "" to clear them.')
    p.add_argument("--node-taints", metavar="TAINTS", help='The node taints for the node pool, comma-separated. '
                   'Use "" to clear them.')
    p.add_argument("--mode", choices=("System", "User", "Gateway"), help="The mode for a node pool.")
    commands.tags_arg(p)
    commands.no_wait(p)
    p.set_defaults(func=update)

    p = cmds.add_parser("delete", parents=[common], help="Delete the agent pool in the managed Kubernetes cluster.")
    pool(p)
    p.add_argument("--ignore-pdb", "-i", action="store_true",
                   help="Delete the node pool without honouring PodDisruptionBudgets.")
    commands.no_wait(p)
    p.set_defaults(func=delete)


def _path(args: argparse.Namespace, client: Client) -> str:
    return client.pool_path(args.resource_group, args.cluster_name, args.nodepool_name)


def _names(args: argparse.Namespace, client: Client) -> list[str]:
    return [p["name"] for p in client.list(client.pool_path(args.resource_group, args.cluster_name))]


def add(args: argparse.Namespace, client: Client) -> Any:
    if args.nodepool_name in _names(args, client):
        raise output.CLIError(f"Node pool {args.nodepool_name} already exists, please try a different name, use "
                              "'aks nodepool list' to get current list of node pool")
    props: dict[str, Any] = {"count": args.node_count, "mode": args.mode, "type": "VirtualMachineScaleSets"}
    optional = {"vmSize": args.node_vm_size, "orchestratorVersion": args.kubernetes_version,
                "nodeLabels": commands.labels(args.labels), "nodeTaints": commands.taints(args.node_taints),
                "maxPods": args.max_pods, "osType": args.os_type, "osSKU": args.os_sku,
                "workloadRuntime": args.workload_runtime, "tags": commands.tags(args.tags)}
    props.update({k: v for k, v in optional.items() if v not in (None, "")})
    return output.from_arm(client.put(_path(args, client), {"properties": props}, no_wait=args.no_wait))


def list_(args: argparse.Namespace, client: Client) -> Any:
    return output.from_arm(client.list(client.pool_path(args.resource_group, args.cluster_name)))


def show(args: argparse.Namespace, client: Client) -> Any:
    return output.from_arm(client.get(_path(args, client)))


def scale(args: argparse.Namespace, client: Client) -> Any:
    path = _path(args, client)
    props = writable(client.get(path).get("properties") or {})
    if props.get("enableAutoScaling"):
        raise output.CLIError("Cannot scale cluster autoscaler enabled node pool.")
    if props.get("count") == args.node_count:
        raise output.CLIError("The new node count is the same as the current node count.")
    props["count"] = args.node_count
    return output.from_arm(client.put(path, {"properties": props}, no_wait=args.no_wait))


def update(args: argparse.Namespace, client: Client) -> Any:
    path = _path(args, client)
    props = writable(client.get(path).get("properties") or {})
    if args.labels is None and args.node_taints is None and args.mode is None and args.tags is None:
        commands.reconcile_or_refuse(False, ["--labels", "--node-taints", "--mode", "--tags"])
    changes = {"nodeLabels": commands.labels(args.labels), "nodeTaints": commands.taints(args.node_taints),
               "mode": args.mode, "tags": commands.tags(args.tags)}
    props.update({k: v for k, v in changes.items() if v is not None})
    return output.from_arm(client.put(path, {"properties": props}, no_wait=args.no_wait))


def delete(args: argparse.Namespace, client: Client) -> None:
    if args.nodepool_name.lower() not in (n.lower() for n in _names(args, client)):
        raise output.CLIError(f"Node pool {args.nodepool_name} doesnt exist, use 'aks nodepool list' to get current "
                              "node pool list")
    query = {"ignore-pod-disruption-budget": "true"} if args.ignore_pdb else None
    client.delete(_path(args, client), no_wait=args.no_wait, query=query)
