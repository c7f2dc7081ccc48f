"""`lks aks nodepool add|list|show|scale|update|upgrade|get-upgrades|get-rollback-versions|rollback|delete`:
a cluster's node pools through the `agentPools` API, shaped like `az aks nodepool` (azure-cli
`command_modules/acs/custom.py` `aks_agentpool_*`, `agentpool_decorator.py`, `_format.py`).
"""

from __future__ import annotations

import argparse
from typing import Any

from lks.autoscaler import profile
from lks.cli import commands, output
from lks.cli.client import Client

# az's _aks_agentpool_table_format
_POOL_ROW = ("{name: name, osType: osType, kubernetesVersion: orchestratorVersion, vmSize: vmSize, "
             "osDiskSizeGB: osDiskSizeGb, count: count, maxPods: maxPods, provisioningState: provisioningState, "
             "mode: mode}")
SHOW_TABLE = _POOL_ROW
LIST_TABLE = "[]." + _POOL_ROW
# az's aks_agentpool_rollback_versions_table_format
ROLLBACK_TABLE = "[].{kubernetesVersion: orchestratorVersion, nodeImageVersion: nodeImageVersion, timestamp: timestamp}"

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
    p.add_argument("--vnet-subnet-id", help="The ID of a subnet in an existing VNet into which to deploy the node pool.")
    p.add_argument("--os-type", choices=("Linux", "Windows"), help="The OS Type. Default: Linux.")
    p.add_argument("--os-sku", help="The OS SKU of the agent node pool, e.g. Ubuntu or AzureLinux.")
    p.add_argument("--workload-runtime", choices=WORKLOAD_RUNTIMES, help=WORKLOAD_RUNTIME_HELP)
    autoscaler_flags(p, update=False)
    profile_arg(p)
    _upgrade_flags(p)
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
    autoscaler_flags(p, update=True)
    profile_arg(p)
    _upgrade_flags(p)
    commands.tags_arg(p)
    commands.no_wait(p)
    p.set_defaults(func=update)

    p = cmds.add_parser("upgrade", parents=[common], help="Upgrade the node pool in a managed Kubernetes cluster.")
    pool(p)
    p.add_argument("--kubernetes-version", "-k", default="", help="Version of Kubernetes to upgrade the node pool to, "
                   'such as "1.36.4".')
    p.add_argument("--node-image-only", action="store_true", help="Only upgrade agent pool's node image.")
    _upgrade_flags(p)
    commands.no_wait(p)
    commands.yes(p)
    p.set_defaults(func=upgrade)

    p = cmds.add_parser("get-upgrades", parents=[common], help="Get the available upgrade versions for an agent "
                        "pool of the managed Kubernetes cluster.")
    pool(p)
    p.set_defaults(func=get_upgrades)

    p = cmds.add_parser("get-rollback-versions", parents=[common], help="Get the available rollback versions for "
                        "an agent pool of the managed Kubernetes cluster.")
    pool(p)
    p.set_defaults(func=get_rollback_versions, table=ROLLBACK_TABLE)

    p = cmds.add_parser("rollback", parents=[common], help="Rollback an agent pool to the most recently used "
                        "configuration (N-1).")
    pool(p)
    commands.no_wait(p)
    p.set_defaults(func=rollback)

    p = cmds.add_parser("delete", parents=[common], help="Delete the agent pool in the managed Kubernetes cluster.")
    pool(p)
    p.add_argument("--ignore-pdb", "-i", action="store_true",
                   help="Delete the node pool without honouring PodDisruptionBudgets.")
    commands.no_wait(p)
    p.set_defaults(func=delete)


def _upgrade_flags(p: argparse.ArgumentParser) -> None:
    """az's upgrade-settings flags of `nodepool add`, `update` and `upgrade`."""
    p.add_argument("--max-surge", type=_int_or_percent("--max-surge"),
                   help='Extra nodes used to speedup upgrade. When specified, it represents the number or percent '
                   'used, eg. 5 or 33%%')
    p.add_argument("--max-unavailable", type=_int_or_percent("--max-unavailable"),
                   help="The maximum number or percentage of nodes that can be simultaneously unavailable during "
                   "upgrade. When specified, it represents the number or percent used, eg. 1 or 5%%")
    p.add_argument("--drain-timeout", type=int, help="When nodes are drain how many minutes to wait for all pods "
                   "to be evicted")
    p.add_argument("--node-soak-duration", type=int, help="The amount of time (in minutes) to wait after draining a "
                   "node and before reimaging it and moving on to next node.")
    p.add_argument("--undrainable-node-behavior", help="Define the behavior for undrainable nodes during upgrade. "
                   "Possible values: Cordon, Schedule.")


def _upgrade_settings(args: argparse.Namespace, current: dict[str, Any] | None) -> dict[str, Any] | None:
    """`upgradeSettings` with the flags given (az sets each one that is truthy, the soak
    duration when it is 0 or more); None when no flag was given."""
    changes = {"maxSurge": args.max_surge, "drainTimeoutInMinutes": args.drain_timeout,
               "undrainableNodeBehavior": args.undrainable_node_behavior, "maxUnavailable": args.max_unavailable}
    changes = {k: v for k, v in changes.items() if v}
    if args.node_soak_duration is not None and args.node_soak_duration >= 0:
        changes["nodeSoakDurationInMinutes"] = args.node_soak_duration
    if not changes:
        return None
    return {**(current or {}), **changes}


def autoscaler_flags(p: argparse.ArgumentParser, *, update: bool) -> None:
    """az's cluster autoscaler flags: `--enable-cluster-autoscaler` with `--min-count`/`--max-count`,
    and on update `-e`/`-u`/`-d` (enable, update the range, disable)."""
    short = ("-e",) if update else ()
    p.add_argument("--enable-cluster-autoscaler", *short, action="store_true",
                   help="Enable cluster autoscaler, default value is false. If specified, please make sure the "
                   "kubernetes version is larger than 1.10.6.")
    if update:
        p.add_argument("--update-cluster-autoscaler", "-u", action="store_true",
                       help="Update min-count or max-count for cluster autoscaler.")
        p.add_argument("--disable-cluster-autoscaler", "-d", action="store_true", help="Disable cluster autoscaler.")
    p.add_argument("--min-count", type=int, help="Minimum nodes count used for autoscaler, when "
                   '"--enable-cluster-autoscaler" specified. Please specify the value in the range of [0, 1000].')
    p.add_argument("--max-count", type=int, help="Maximum nodes count used for autoscaler, when "
                   '"--enable-cluster-autoscaler" specified. Please specify the value in the range of [0, 1000].')


def profile_arg(p: argparse.ArgumentParser) -> None:
    """The pool's own autoscaler profile keys (an lks extension; AKS's profile is cluster-wide)."""
    p.add_argument("--cluster-autoscaler-profile", nargs="+", metavar="KEY=VALUE",
                   help="Space- or comma-separated key=value pairs overriding the cluster's autoscaler profile for "
                   f"this node pool only: {', '.join(profile.POOL_KEYS)}. An empty value goes back to the "
                   'cluster\'s; "" clears every override. An lks extension.')


def profile_pairs(items: list[str] | None) -> dict[str, Any] | None:
    """az's `--cluster-autoscaler-profile` syntax: space- and comma-separated `key=value` (an
    empty value allowed), the booleans of the API's model as JSON booleans."""
    if items is None:
        return None
    out: dict[str, Any] = {}
    for raw in items:
        for item in (raw.split(",") if raw else []):
            parts = item.split("=")
            if len(parts) > 2:
                raise output.CLIError(f"The format of '{item}' in '{raw}' seems to be invalid.")
            out[parts[0]] = parts[1] if len(parts) == 2 else ""
    if "" in out:
        raise output.CLIError("Empty key specified for cluster-autoscaler-profile")
    for key in profile.BOOL_KEYS:
        if isinstance(out.get(key), str) and out[key].lower() in ("true", "false"):
            out[key] = out[key].lower() == "true"
    return out


def _pool_profile(items: list[str] | None, current: dict[str, Any] | None) -> dict[str, Any] | None:
    """The pool's `autoScalerProfile` to send: the flag's pairs over the current overrides (the
    service checks the keys); `""` alone clears them all."""
    changes = profile_pairs(items)
    if changes is None:
        return None
    if not changes:
        return dict.fromkeys(current or {})
    return {**(current or {}), **changes}


def check_counts(args: argparse.Namespace, *, node_count: int | None) -> bool:
    """az's validate_nodes_count and validate_counts_in_autoscaler: the range flags checked, the
    node count inside the range on create (`node_count` given); True when the autoscaler is to be
    enabled or its range updated."""
    for flag, value in (("--min-count", args.min_count), ("--max-count", args.max_count)):
        if value is not None and not 0 <= value <= 1000:
            raise output.CLIError(f"{flag} must be in the range [0,1000]")
    enabling = args.enable_cluster_autoscaler or getattr(args, "update_cluster_autoscaler", False)
    if enabling:
        if args.min_count is None or args.max_count is None:
            raise output.CLIError("Please specify both min-count and max-count when --enable-cluster-autoscaler "
                                  "enabled")
        if args.min_count > args.max_count:
            raise output.CLIError("Value of min-count should be less than or equal to value of max-count")
        if node_count is not None and not args.min_count <= node_count <= args.max_count:
            raise output.CLIError("node-count is not in the range of min-count and max-count")
    elif args.min_count is not None or args.max_count is not None:
        option = "--enable-cluster-autoscaler" + (" or --update-cluster-autoscaler"
                                                  if hasattr(args, "update_cluster_autoscaler") else "")
        raise output.CLIError(f"min-count and max-count are required for {option}, please use the flag")
    return bool(enabling)


def update_autoscaler(args: argparse.Namespace, props: dict[str, Any]) -> bool:
    """az's update of a pool's autoscaler from `-e`/`-u`/`-d` (the `agentpool_decorator` rules and
    messages); False when az exits early, having only warned."""
    flags = (args.enable_cluster_autoscaler, args.update_cluster_autoscaler, args.disable_cluster_autoscaler)
    if sum(flags) > 1:
        raise output.CLIError("Can only specify one of --enable-cluster-autoscaler, --update-cluster-autoscaler and "
                              "--disable-cluster-autoscaler")
    enabling = check_counts(args, node_count=None)
    enabled = bool(props.get("enableAutoScaling"))
    if args.enable_cluster_autoscaler and enabled:
        output.warning("Cluster autoscaler is already enabled for this node pool.\nPlease run \"az aks "
                       "--update-cluster-autoscaler\" if you want to update min-count or max-count.")
        return False
    if args.update_cluster_autoscaler and not enabled:
        raise output.CLIError("Cluster autoscaler is not enabled for this node pool.\nRun \"az aks nodepool update "
                              "--enable-cluster-autoscaler\" to enable cluster with min-count and max-count.")
    if args.disable_cluster_autoscaler and not enabled:
        output.warning("Cluster autoscaler is already disabled for this node pool.")
        return False
    if enabling:
        props.update(enableAutoScaling=True, minCount=args.min_count, maxCount=args.max_count)
    elif args.disable_cluster_autoscaler:
        props.update(enableAutoScaling=False, minCount=None, maxCount=None)
    return True


def _int_or_percent(flag: str) -> Any:
    """az's validate_max_surge / validate_max_unavailable: a positive integer or percentage
    (less strict than the service, which also caps percentages at 100)."""
    def parse(raw: str) -> str:
        number = raw[:-1] if raw.endswith("%") else raw
        try:
            value = int(number)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} should be an int or percentage") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"{flag} must be positive")
        return raw
    return parse


def _path(args: argparse.Namespace, client: Client) -> str:
    return client.pool_path(args.resource_group, args.cluster_name, args.nodepool_name)


def _names(args: argparse.Namespace, client: Client) -> list[str]:
    return [p["name"] for p in client.list(client.pool_path(args.resource_group, args.cluster_name))]


def add(args: argparse.Namespace, client: Client) -> Any:
    if args.nodepool_name in _names(args, client):
        raise output.CLIError(f"Node pool {args.nodepool_name} already exists, please try a different name, use "
                              "'aks nodepool list' to get current list of node pool")
    props: dict[str, Any] = {"count": args.node_count, "mode": args.mode, "type": "VirtualMachineScaleSets"}
    if check_counts(args, node_count=args.node_count):
        props.update(enableAutoScaling=True, minCount=args.min_count, maxCount=args.max_count)
    optional = {"vmSize": args.node_vm_size, "orchestratorVersion": args.kubernetes_version,
                "nodeLabels": commands.labels(args.labels), "nodeTaints": commands.taints(args.node_taints),
                "maxPods": args.max_pods, "osType": args.os_type, "osSKU": args.os_sku,
                "workloadRuntime": args.workload_runtime, "tags": commands.tags(args.tags),
                "vnetSubnetID": args.vnet_subnet_id,
                "upgradeSettings": _upgrade_settings(args, None),
                "autoScalerProfile": _pool_profile(args.cluster_autoscaler_profile, None)}
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
    settings = _upgrade_settings(args, props.get("upgradeSettings"))
    scaler = args.enable_cluster_autoscaler or args.update_cluster_autoscaler or args.disable_cluster_autoscaler
    scaler_profile = _pool_profile(args.cluster_autoscaler_profile, props.get("autoScalerProfile"))
    if args.labels is None and args.node_taints is None and args.mode is None and args.tags is None and \
            settings is None and not scaler and args.min_count is None and args.max_count is None and \
            scaler_profile is None:
        commands.reconcile_or_refuse(False, ["--enable-cluster-autoscaler", "--disable-cluster-autoscaler",
                                             "--update-cluster-autoscaler", "--cluster-autoscaler-profile",
                                             "--labels", "--node-taints", "--mode",
                                             "--tags", "--max-surge", "--max-unavailable", "--drain-timeout",
                                             "--node-soak-duration", "--undrainable-node-behavior"])
    if not update_autoscaler(args, props):
        return None
    changes = {"nodeLabels": commands.labels(args.labels), "nodeTaints": commands.taints(args.node_taints),
               "mode": args.mode, "tags": commands.tags(args.tags), "upgradeSettings": settings,
               "autoScalerProfile": scaler_profile}
    props.update({k: v for k, v in changes.items() if v is not None})
    return output.from_arm(client.put(path, {"properties": props}, no_wait=args.no_wait))


def upgrade(args: argparse.Namespace, client: Client) -> Any:
    """az's aks_agentpool_upgrade: a PUT of the pool with the new `orchestratorVersion` (and the
    upgrade settings given), or with --node-image-only the `upgradeNodeImageVersion` action."""
    if args.kubernetes_version and args.node_image_only:
        raise output.CLIError("Conflicting flags. Upgrading the Kubernetes version will also upgrade node image "
                              "version. If you only want to upgrade the node version please use the "
                              '"--node-image-only" option only.')
    settings = (args.max_surge, args.drain_timeout, args.node_soak_duration, args.undrainable_node_behavior,
                args.max_unavailable)
    if args.node_image_only and any(settings):
        raise output.CLIError(
            "Conflicting flags. Unable to specify max-surge/drain-timeout/node-soak-duration/max-unavailable with "
            "node-image-only.If you want to use max-surge/drain-timeout/node-soak-duration with a node image upgrade, "
            "please first update max-surge/drain-timeout/node-soak-duration/max-unavailable using \"az aks nodepool "
            'update --max-surge/--drain-timeout/--node-soak-duration/--max-unavailable".')
    path = _path(args, client)
    if args.node_image_only:
        # the SDK's begin_upgrade_node_image_version has no result: az prints nothing
        client.action(path + "/upgradeNodeImageVersion", no_wait=args.no_wait)
        return None
    instance = client.get(path)
    props = instance.get("properties") or {}
    if args.kubernetes_version == "" or props.get("orchestratorVersion") == args.kubernetes_version:
        message = "The new kubernetes version is the same as the current kubernetes version."
        if props.get("provisioningState") == "Succeeded":
            message = (f"The cluster is already on version {props.get('orchestratorVersion')} and is not in a failed "
                       "state. No operations will occur when upgrading to the same version if the cluster is not in "
                       "a failed state.")
        elif props.get("provisioningState") == "Failed":
            message = ("Cluster currently in failed state. Proceeding with upgrade to existing version "
                       f"{props.get('orchestratorVersion')} to attempt resolution of failed cluster state.")
        if not args.yes:
            try:
                agreed = output.prompt_y_n(message)
            except output.NoTTY:
                raise output.CLIError("Unable to prompt for confirmation as no tty available. Use --yes.") from None
            if not agreed:
                return None
    body = writable(props)
    body["orchestratorVersion"] = args.kubernetes_version
    body.pop("creationData", None)
    body["upgradeSettings"] = _upgrade_settings(args, body.get("upgradeSettings")) or body.get("upgradeSettings") or {}
    return output.from_arm(client.put(path, {"properties": body}, no_wait=args.no_wait))


def get_upgrades(args: argparse.Namespace, client: Client) -> Any:
    return output.from_arm(client.get(_path(args, client) + "/upgradeProfiles/default"))


def get_rollback_versions(args: argparse.Namespace, client: Client) -> Any:
    """az returns the upgrade profile's `recentlyUsedVersions` (nothing when there are none)."""
    profile = client.get(_path(args, client) + "/upgradeProfiles/default") or {}
    return output.from_arm((profile.get("properties") or {}).get("recentlyUsedVersions"))


def rollback(args: argparse.Namespace, client: Client) -> Any:
    """az's aks_agentpool_rollback: a PUT of the pool with the most recent of its
    `recentlyUsedVersions`, warning first when an auto-upgrade channel would undo it."""
    cluster = client.get(client.cluster_path(args.resource_group, args.cluster_name)) or {}
    profile = (cluster.get("properties") or {}).get("autoUpgradeProfile") or {}
    channel, node_os = profile.get("upgradeChannel"), profile.get("nodeOSUpgradeChannel")
    if channel and str(channel).lower() != "none":
        output.warning(f"Auto-upgrade is enabled on cluster '{args.cluster_name}' (upgradeChannel={channel}). "
                       "Rollback will not succeed until auto-upgrade is disabled. Please disable auto-upgrade to "
                       "roll back the node pool.")
    elif node_os and str(node_os).lower() not in ("none", "unmanaged"):
        output.warning(f"nodeOSUpgradeChannel is enabled on cluster '{args.cluster_name}' (nodeOSUpgradeChannel="
                       f"{node_os}). The orchestrator version rollback will proceed, but the node image rollback will "
                       "not succeed. Please disable nodeOSUpgradeChannel if you want to roll back the node image.")
    path = _path(args, client)
    used = ((client.get(path + "/upgradeProfiles/default") or {}).get("properties") or {}).get("recentlyUsedVersions")
    if not used:
        raise output.CLIError("No rollback versions available. The nodepool must have been upgraded at least once "
                              "to have rollback history available.")
    recent = max(used, key=lambda v: v.get("timestamp") or "")
    props = writable(client.get(path).get("properties") or {})
    props["orchestratorVersion"] = recent.get("orchestratorVersion")
    props["nodeImageVersion"] = recent.get("nodeImageVersion")
    return output.from_arm(client.put(path, {"properties": props}, no_wait=args.no_wait))


def delete(args: argparse.Namespace, client: Client) -> None:
    if args.nodepool_name.lower() not in (n.lower() for n in _names(args, client)):
        raise output.CLIError(f"Node pool {args.nodepool_name} doesnt exist, use 'aks nodepool list' to get current "
                              "node pool list")
    query = {"ignore-pod-disruption-budget": "true"} if args.ignore_pdb else None
    client.delete(_path(args, client), no_wait=args.no_wait, query=query)
