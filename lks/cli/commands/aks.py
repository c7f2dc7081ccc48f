"""`lks aks …`: managed clusters, shaped like `az aks` (azure-cli `command_modules/acs`:
`custom.py` for behaviour and messages, `_params.py` for flags and defaults, `_format.py` for
the tables). The node pool subgroup lives in `lks.cli.commands.nodepool`, the autoscaler's
(an lks extension) in `lks.cli.commands.autoscaler`.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import ipaddress
import os
import stat
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import yaml

from lks import kubeconfig, safeyaml
from lks.autoscaler import profile
from lks.cli import commands, output
from lks.cli.client import CONTAINER_SERVICE_API, RESOURCES_API, Client
from lks.cli.commands import (
    aad,
    approuting,
    autoscaler,
    maintenance,
    monitor,
    networkpolicy,
    nodepool,
    runcommand,
)

# az's _aks_table_format
_CLUSTER_ROW = ("{name: name, location: location, resourceGroup: resourceGroup, kubernetesVersion: kubernetesVersion, "
                "currentKubernetesVersion: currentKubernetesVersion, provisioningState: provisioningState, "
                "fqdn: fqdn || privateFqdn}")
SHOW_TABLE = _CLUSTER_ROW
LIST_TABLE = "[]." + _CLUSTER_ROW

# Read-only fields of a cluster and its pools, left out when a fetched cluster is PUT back
# (the SDK's serializer drops them the same way).
_READ_ONLY = ("provisioningState", "powerState", "maxAgentPools", "currentKubernetesVersion", "fqdn", "privateFQDN",
              "azurePortalFQDN", "resourceUID")


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.removesuffix("(preview)").split("."))


def _sort_versions(versions: list[str]) -> list[str]:
    try:
        return sorted(versions, key=_version_key)
    except ValueError:  # az's sort_versions leaves what it cannot sort alone
        return versions


def versions_table(result: dict[str, Any]) -> list[OrderedDict[str, Any]]:
    """az's aks_versions_table_format: one row per patch version, newest first."""
    rows = []
    for release in result.get("values") or []:
        plans = (release.get("capabilities") or {}).get("supportPlan") or []
        for version, patch in (release.get("patchVersions") or {}).items():
            rows.append(OrderedDict([
                ("kubernetesVersion", version), ("isPreview", release.get("isPreview")),
                ("upgrades", ", ".join(_sort_versions((patch or {}).get("upgrades") or ["None available"]))),
                ("supportPlan", ", ".join(plans))]))
    return sorted(rows, key=lambda r: _version_key(r["kubernetesVersion"]), reverse=True)


def upgrades_table(result: dict[str, Any]) -> list[OrderedDict[str, Any]]:
    """az's aks_upgrades_table_format (control plane only, preview versions marked)."""
    control = result.get("controlPlaneProfile") or {}
    upgrades = control.get("upgrades") or []
    preview = {u.get("kubernetesVersion") for u in upgrades if u.get("isPreview")}
    names = _sort_versions([u.get("kubernetesVersion") for u in upgrades]) or ["None available"]
    return [OrderedDict([("name", result.get("name")), ("resourceGroup", result.get("resourceGroup")),
                         ("masterVersion", control.get("kubernetesVersion") or "unknown"),
                         ("upgrades", ", ".join(v + "(preview)" if v in preview else v for v in names))])]


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    aks = sub.add_parser("aks", help="Manage Kubernetes clusters.", description="Manage Kubernetes clusters.")
    cmds = aks.add_subparsers(dest="subcommand", required=True, metavar="<command>")

    def cluster(p: argparse.ArgumentParser) -> None:
        commands.resource_group(p)
        p.add_argument("--name", "-n", required=True, help="Name of the managed cluster.")

    p = cmds.add_parser("create", parents=[common], help="Create a new managed Kubernetes cluster.")
    cluster(p)
    p.add_argument("--location", "-l", help="Location. Defaults to the location of the resource group.")
    p.add_argument("--node-count", "-c", type=int, default=3, help="Number of nodes in the node pool. Default: 3.")
    p.add_argument("--node-vm-size", "-s", help="Size of Virtual Machines to create as Kubernetes nodes. "
                   "If not given, the service selects a default VM size.")
    p.add_argument("--kubernetes-version", "-k", default="",
                   help="Version of Kubernetes to use. Default: the service's default (N-1, latest patch).")
    p.add_argument("--nodepool-name", default="nodepool1", help="Node pool name, up to 12 alphanumeric characters. "
                   "Default: nodepool1.")
    p.add_argument("--nodepool-labels", nargs="*", metavar="KEY=VALUE",
                   help="Space-separated labels for the node pool's nodes: key=value [key=value ...].")
    p.add_argument("--nodepool-taints", metavar="TAINTS",
                   help='Comma-separated taints for the node pool\'s nodes, e.g. "special=true:NoSchedule".')
    p.add_argument("--workload-runtime", choices=nodepool.WORKLOAD_RUNTIMES, help=nodepool.WORKLOAD_RUNTIME_HELP)
    p.add_argument("--max-pods", "-m", type=int, help="Maximum number of pods per node (default depends on the "
                   "network plugin: 250 for overlay, 110 for kubenet, 30 for Azure CNI).")
    p.add_argument("--vnet-subnet-id", help="The ID of a subnet in an existing VNet into which to deploy the cluster.")
    p.add_argument("--dns-name-prefix", "-p", help="Prefix for host names that are created. If not specified, "
                   "generate a host name using the managed cluster and resource group names.")
    p.add_argument("--network-plugin", choices=("azure", "kubenet", "none"), help="Kubernetes network plugin.")
    p.add_argument("--network-plugin-mode", choices=("overlay",), help="The mode the network plugin should use.")
    p.add_argument("--network-policy", help="Network policy: none, calico, azure or cilium.")
    p.add_argument("--pod-cidr", help="A CIDR notation IP range from which to assign pod IPs (overlay, kubenet).")
    p.add_argument("--service-cidr", help="A CIDR notation IP range from which to assign service cluster IPs.")
    p.add_argument("--dns-service-ip", help="An IP address assigned to the Kubernetes DNS service.")
    p.add_argument("--tier", choices=("free", "standard", "premium"), type=str.lower, help="The SKU tier.")
    nodepool.autoscaler_flags(p, update=False)
    _profile_arg(p)
    _support_plan_arg(p)
    _access_args(p, update=False)
    commands.tags_arg(p)
    p.add_argument("--generate-ssh-keys", action="store_true",
                   help="Accepted for compatibility with az and ignored: lks nodes take no SSH keys.")
    approuting.create_flag(p)
    commands.no_wait(p)
    commands.yes(p)
    p.set_defaults(func=create)

    p = cmds.add_parser("list", parents=[common], help="List managed Kubernetes clusters.")
    commands.resource_group(p, required=False)
    p.set_defaults(func=list_, table=LIST_TABLE)

    p = cmds.add_parser("show", parents=[common], help="Show the details for a managed Kubernetes cluster.")
    cluster(p)
    p.set_defaults(func=show, table=SHOW_TABLE)

    p = cmds.add_parser("delete", parents=[common], help="Delete a managed Kubernetes cluster.")
    cluster(p)
    commands.no_wait(p)
    commands.yes(p)
    p.set_defaults(func=delete)

    p = cmds.add_parser("scale", parents=[common], help="Scale the node pool in a managed Kubernetes cluster.")
    cluster(p)
    p.add_argument("--node-count", "-c", type=int, required=True, help="Number of nodes in the node pool.")
    p.add_argument("--nodepool-name", default="", help="Node pool name; required when the cluster has several.")
    commands.no_wait(p)
    p.set_defaults(func=scale)

    p = cmds.add_parser("update", parents=[common], help="Update a managed Kubernetes cluster. "
                        "With no arguments, reconcile the cluster back to its current settings.")
    cluster(p)
    commands.tags_arg(p)
    p.add_argument("--tier", choices=("free", "standard", "premium"), type=str.lower, help="The SKU tier.")
    p.add_argument("--auto-upgrade-channel", choices=("rapid", "stable", "patch", "node-image", "none"),
                   help="Upgrade channel for auto upgrade.")
    p.add_argument("--node-os-upgrade-channel", choices=("NodeImage", "None", "SecurityPatch", "Unmanaged"),
                   help="Manner in which the OS on your nodes is updated.")
    nodepool.autoscaler_flags(p, update=True)
    _profile_arg(p)
    _support_plan_arg(p)
    _force_upgrade_args(p)
    _access_args(p, update=True)
    p.add_argument("--network-policy", help="Update the mode of a network policy: none, calico, azure or cilium.")
    monitor.update_flags(p)
    commands.no_wait(p)
    commands.yes(p)
    p.set_defaults(func=update)

    for verb, func, text in (("start", start, "Start a previously stopped managed cluster."),
                             ("stop", stop, "Stop a managed cluster.")):
        p = cmds.add_parser(verb, parents=[common], help=text)
        cluster(p)
        commands.no_wait(p)
        p.set_defaults(func=func)

    p = cmds.add_parser("get-credentials", parents=[common],
                        help="Get access credentials for a managed Kubernetes cluster.")
    cluster(p)
    p.add_argument("--admin", "-a", action="store_true", help="Get cluster administrator credentials.")
    p.add_argument("--file", "-f", default=None, help="Kubernetes configuration file to update. "
                   'Use "-" to print YAML to stdout instead. Default: ~/.kube/config (or $KUBECONFIG\'s first entry).')
    p.add_argument("--overwrite-existing", action="store_true",
                   help="Overwrite any existing cluster entry with the same name.")
    p.add_argument("--context", dest="context_name", help="If specified, overwrite the default context name.")
    p.set_defaults(func=get_credentials)

    p = cmds.add_parser("get-versions", parents=[common],
                        help="Get the versions available for creating a managed Kubernetes cluster.")
    p.add_argument("--location", "-l", required=True, help="Location, e.g. westeurope.")
    p.set_defaults(func=get_versions, table=versions_table)

    p = cmds.add_parser("get-upgrades", parents=[common],
                        help="Get the upgrade versions available for a managed Kubernetes cluster.")
    cluster(p)
    p.set_defaults(func=get_upgrades, table=upgrades_table)

    p = cmds.add_parser("upgrade", parents=[common], help="Upgrade a managed Kubernetes cluster to a newer version.")
    cluster(p)
    p.add_argument("--kubernetes-version", "-k", default="", help="Version of Kubernetes to upgrade the cluster to, "
                   'such as "1.36.4" or "1.36". See `lks aks get-upgrades`.')
    p.add_argument("--control-plane-only", action="store_true",
                   help="Upgrade the cluster control plane only. If not specified, control plane AND all node pools "
                   "will be upgraded.")
    p.add_argument("--node-image-only", action="store_true",
                   help="Only upgrade node image for agent pools.")
    p.add_argument("--enable-force-upgrade", action="store_true",
                   help="Enable forceUpgrade cluster upgrade settings override.")
    p.add_argument("--disable-force-upgrade", action="store_true",
                   help="Disable forceUpgrade cluster upgrade settings override.")
    p.add_argument("--upgrade-override-until", help="Until when the cluster upgradeSettings overrides are effective. "
                   "It needs to be in a valid date-time format that's within the next 30 days.")
    p.add_argument("--what-if", action="store_true", help="Show what the upgrade would do (its blockers and the "
                   "node replacements it would make) without changing anything. An lks extension.")
    commands.no_wait(p)
    commands.yes(p)
    p.set_defaults(func=upgrade)

    nodepool.register(cmds, common)
    maintenance.register(cmds, common)
    autoscaler.register(cmds, common)
    runcommand.register(cmds, common)
    networkpolicy.register(cmds, common)
    approuting.register(cmds, common)
    monitor.register(cmds, common)  # aks logs


def _profile_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cluster-autoscaler-profile", nargs="+", metavar="KEY=VALUE",
                   help="Comma-separated list of key=value pairs for configuring cluster autoscaler. Pass an empty "
                   "string to clear the profile.")


def _autoscaler_profile(items: list[str] | None) -> dict[str, Any] | None:
    """az's `--cluster-autoscaler-profile`: space- and comma-separated `key=value` (an empty value
    allowed: the key goes back to its default), the keys checked against the API's model."""
    out = nodepool.profile_pairs(items)
    for key in out or ():
        if key not in profile.KEYS:
            raise output.CLIError(f"'{key}' is an invalid key for cluster-autoscaler-profile. Valid keys are "
                                  f"{', '.join(profile.KEYS)}.")
    return out


def _access_args(p: argparse.ArgumentParser, *, update: bool) -> None:
    p.add_argument("--api-server-authorized-ip-ranges", help="Comma-separated list of authorized apiserver IP "
                   "ranges. Set to \"\" to allow all traffic on a previously restricted cluster. Set to 0.0.0.0/32 "
                   "to restrict apiserver traffic to node pools.")
    p.add_argument("--disable-local-accounts", action="store_true",
                   help="If set to true, getting static credentials will be disabled for this cluster.")
    if update:
        p.add_argument("--enable-local-accounts", action="store_true",
                       help="If specified, the cluster's static credentials work again.")
    p.add_argument("--enable-oidc-issuer", action="store_true",
                   help="Enable OIDC issuer: the cluster's service-account token issuer, served publicly.")
    aad.add_arguments(p, update=update)


def _ip_ranges(value: str) -> list[str]:
    """`--api-server-authorized-ip-ranges` checked as az's validate_ip_ranges does (save that lks,
    self-hosted, takes private and loopback addresses as well as global ones)."""
    ranges = [r.strip() for r in value.split(",")]
    if "0.0.0.0/32" in ranges and len(ranges) > 1:
        raise output.CLIError("Setting --api-server-authorized-ip-ranges to 0.0.0.0/32 is not allowed with other IP "
                              "ranges.Refer to https://aka.ms/aks/whitelist for more details")
    if "" in ranges and len(ranges) > 1:
        raise output.CLIError("--api-server-authorized-ip-ranges cannot be disabled and simultaneously enabled")
    for r in ranges:
        if r in ("", "0.0.0.0/32"):
            continue
        try:
            network = ipaddress.ip_network(r)
        except ValueError:
            raise output.CLIError("--api-server-authorized-ip-ranges should be a list of IPv4 addresses or CIDRs") \
                from None
        if network.version == 6:
            raise output.CLIError("--api-server-authorized-ip-ranges cannot be IPv6 addresses")
    return [r for r in ranges if r]


def _set_access(args: argparse.Namespace, props: dict[str, Any]) -> None:
    """The access flags of `create` and `update` into the cluster's properties."""
    aad.apply(args, props, update="enable_local_accounts" in args)
    if getattr(args, "enable_local_accounts", False) and args.disable_local_accounts:
        raise output.CLIError("Cannot specify --disable-local-accounts and --enable-local-accounts at the same time.")
    if args.disable_local_accounts:
        props["disableLocalAccounts"] = True
    elif getattr(args, "enable_local_accounts", False):
        props["disableLocalAccounts"] = False
    if args.enable_oidc_issuer:
        props["oidcIssuerProfile"] = {**(props.get("oidcIssuerProfile") or {}), "enabled": True}
    if args.api_server_authorized_ip_ranges is not None:
        props["apiServerAccessProfile"] = {**(props.get("apiServerAccessProfile") or {}),
                                           "authorizedIPRanges": _ip_ranges(args.api_server_authorized_ip_ranges)}


# -- commands -------------------------------------------------------------------------------------

def create(args: argparse.Namespace, client: Client) -> Any:
    path = client.cluster_path(args.resource_group, args.name)
    try:
        exists = client.exists(path)
    except output.CLIError:
        exists = False  # as az: any failure here is left to the requests that follow
    if exists:
        raise output.CLIError(
            f"The cluster '{args.name}' under resource group '{args.resource_group}' already exists. Please use "
            "command 'lks aks update' to update the existing cluster, or select a different cluster name to "
            "create a new cluster.")
    location = args.location or client.get(client.group_path(args.resource_group), RESOURCES_API)["location"]
    pool: dict[str, Any] = {"name": args.nodepool_name, "count": args.node_count, "mode": "System",
                            "osType": "Linux", "type": "VirtualMachineScaleSets"}
    optional = {"vmSize": args.node_vm_size, "maxPods": args.max_pods, "orchestratorVersion": args.kubernetes_version,
                "nodeLabels": commands.labels(args.nodepool_labels), "nodeTaints": commands.taints(args.nodepool_taints),
                "workloadRuntime": args.workload_runtime, "vnetSubnetID": args.vnet_subnet_id}
    pool.update({k: v for k, v in optional.items() if v not in (None, "")})
    if nodepool.check_counts(args, node_count=args.node_count):
        pool.update(enableAutoScaling=True, minCount=args.min_count, maxCount=args.max_count)
    props: dict[str, Any] = {"agentPoolProfiles": [pool], "enableRBAC": True}
    scaler_profile = _autoscaler_profile(args.cluster_autoscaler_profile)
    if scaler_profile:
        props["autoScalerProfile"] = scaler_profile
    if args.kubernetes_version:
        props["kubernetesVersion"] = args.kubernetes_version
    if args.k8s_support_plan:
        props["supportPlan"] = args.k8s_support_plan
    if args.dns_name_prefix:
        props["dnsPrefix"] = args.dns_name_prefix
    network = {"networkPlugin": args.network_plugin, "networkPluginMode": args.network_plugin_mode,
               "networkPolicy": args.network_policy, "podCidr": args.pod_cidr, "serviceCidr": args.service_cidr,
               "dnsServiceIP": args.dns_service_ip}
    if any(network.values()):
        props["networkProfile"] = {k: v for k, v in network.items() if v}
    _set_access(args, props)
    approuting.create_profile(args, props)
    body: dict[str, Any] = {"location": location, "identity": {"type": "SystemAssigned"},
                            "sku": {"name": "Base", "tier": (args.tier or "free").capitalize()}, "properties": props}
    if args.tags is not None:
        body["tags"] = commands.tags(args.tags)
    return output.from_arm(client.put(path, body, no_wait=args.no_wait))


def list_(args: argparse.Namespace, client: Client) -> Any:
    path = (client.cluster_path(args.resource_group) if args.resource_group
            else client.provider_path("managedClusters"))
    return output.from_arm(client.list(path))


def show(args: argparse.Namespace, client: Client) -> Any:
    return output.from_arm(client.get(client.cluster_path(args.resource_group, args.name)))


def delete(args: argparse.Namespace, client: Client) -> None:
    output.confirm(args.yes)
    client.delete(client.cluster_path(args.resource_group, args.name), no_wait=args.no_wait)


def _writable(doc: dict[str, Any]) -> dict[str, Any]:
    """The fetched cluster as a PUT body."""
    props = commands.writable(doc["properties"], _READ_ONLY)
    props["agentPoolProfiles"] = [nodepool.writable(p) for p in props.get("agentPoolProfiles") or []]
    return {**commands.writable(doc, ("id", "name", "type", "eTag", "systemData")), "properties": props}


def scale(args: argparse.Namespace, client: Client) -> Any:
    path = client.cluster_path(args.resource_group, args.name)
    doc = _writable(client.get(path))
    pools = doc["properties"]["agentPoolProfiles"]
    if len(pools) > 1 and not args.nodepool_name:
        raise output.CLIError("There are more than one node pool in the cluster. Please specify nodepool name or use "
                              "lks aks nodepool command to scale node pool")
    for pool in pools:
        if pool["name"] == args.nodepool_name or (not args.nodepool_name and len(pools) == 1):
            if pool.get("enableAutoScaling"):
                raise output.CLIError("Cannot scale cluster autoscaler enabled node pool.")
            pool["count"] = args.node_count
            return output.from_arm(client.put(path, doc, no_wait=args.no_wait))
    raise output.CLIError(f'The nodepool "{args.nodepool_name}" was not found.')


def update(args: argparse.Namespace, client: Client) -> Any:
    path = client.cluster_path(args.resource_group, args.name)
    doc = _writable(client.get(path))
    props = doc["properties"]
    if args.tags is None and not (args.tier or args.auto_upgrade_channel or args.node_os_upgrade_channel
                                  or args.k8s_support_plan or args.enable_force_upgrade or args.disable_force_upgrade
                                  or args.upgrade_override_until
                                  or args.disable_local_accounts or args.enable_local_accounts
                                  or args.enable_oidc_issuer or args.api_server_authorized_ip_ranges is not None
                                  or aad.given(args)
                                  or args.enable_cluster_autoscaler or args.update_cluster_autoscaler
                                  or args.disable_cluster_autoscaler or args.min_count is not None
                                  or args.max_count is not None or args.cluster_autoscaler_profile is not None
                                  or args.network_policy or monitor.given(args)):
        commands.reconcile_or_refuse(args.yes, ["--enable-cluster-autoscaler", "--disable-cluster-autoscaler",
                                                "--update-cluster-autoscaler", "--cluster-autoscaler-profile",
                                                "--tags", "--tier", "--auto-upgrade-channel", "--node-os-upgrade-channel",
                                                "--disable-local-accounts", "--enable-local-accounts",
                                                "--enable-oidc-issuer", "--k8s-support-plan",
                                                "--enable-force-upgrade", "--disable-force-upgrade",
                                                "--upgrade-override-until",
                                                "--api-server-authorized-ip-ranges", "--network-policy", *aad.FLAGS,
                                                *monitor.FLAGS[:2]])
    _set_access(args, props)
    if not _update_autoscaler(args, props):
        return None
    if args.tags is not None:
        doc["tags"] = commands.tags(args.tags)
    if args.tier:
        doc["sku"] = {**(doc.get("sku") or {"name": "Base"}), "tier": args.tier.capitalize()}
    if args.auto_upgrade_channel:
        props["autoUpgradeProfile"] = {**(props.get("autoUpgradeProfile") or {}),
                                       "upgradeChannel": args.auto_upgrade_channel}
    if args.node_os_upgrade_channel:
        props["autoUpgradeProfile"] = {**(props.get("autoUpgradeProfile") or {}),
                                       "nodeOSUpgradeChannel": args.node_os_upgrade_channel}
    if args.k8s_support_plan:
        props["supportPlan"] = args.k8s_support_plan
    if args.network_policy:
        props["networkProfile"] = {**(props.get("networkProfile") or {}), "networkPolicy": args.network_policy}
    monitor.apply(args, props)
    _force_upgrade(args, props)
    return output.from_arm(client.put(path, doc, no_wait=args.no_wait))


def _update_autoscaler(args: argparse.Namespace, props: dict[str, Any]) -> bool:
    """az aks update's autoscaler flags: `-e`/`-u`/`-d` on the cluster's only pool (several pools:
    `lks aks nodepool update`), the profile merged over the current one (az sends the whole
    profile; an empty argument clears it). False when az exits early, having only warned."""
    pools = props.get("agentPoolProfiles") or []
    if (args.enable_cluster_autoscaler or args.update_cluster_autoscaler) and len(pools) > 1:
        raise output.CLIError('There are more than one node pool in the cluster. Please use "az aks nodepool" '
                              "command to update per node pool auto scaler settings")
    scaler = args.enable_cluster_autoscaler or args.update_cluster_autoscaler or args.disable_cluster_autoscaler
    if (scaler or args.min_count is not None or args.max_count is not None) and pools:
        if not nodepool.update_autoscaler(args, pools[0]):
            return False
    changes = _autoscaler_profile(args.cluster_autoscaler_profile)
    if changes is not None and (changes or props.get("autoScalerProfile")):
        current = props.get("autoScalerProfile") or {}
        # nulls put every key back to its default: the profile cleared
        props["autoScalerProfile"] = {**current, **changes} if changes else dict.fromkeys(profile.KEYS)
    return True


def _support_plan_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--k8s-support-plan", choices=("KubernetesOfficial", "AKSLongTermSupport"),
                   help="The support plan: AKSLongTermSupport (Premium tier) for long-term support.")


def _force_upgrade_args(p: argparse.ArgumentParser) -> None:
    force = p.add_mutually_exclusive_group()
    force.add_argument("--enable-force-upgrade", action="store_true",
                       help="Force upgrade even if there is usage of APIs deprecated in the target version.")
    force.add_argument("--disable-force-upgrade", action="store_true", help="Disable the force upgrade override.")
    p.add_argument("--upgrade-override-until", help="Until when the upgrade overrides are effective, a date-time "
                   "within the next 30 days such as 2026-12-31T13:00:00Z; with --enable-force-upgrade and no value "
                   "it is 3 days from now.")


def start(args: argparse.Namespace, client: Client) -> None:
    client.action(client.cluster_path(args.resource_group, args.name) + "/start", no_wait=args.no_wait)


def stop(args: argparse.Namespace, client: Client) -> None:
    client.action(client.cluster_path(args.resource_group, args.name) + "/stop", no_wait=args.no_wait)


def get_versions(args: argparse.Namespace, client: Client) -> Any:
    return output.from_arm(client.get(client.provider_path(f"locations/{args.location}/kubernetesVersions")))


def get_upgrades(args: argparse.Namespace, client: Client) -> Any:
    return output.from_arm(client.get(client.cluster_path(args.resource_group, args.name) + "/upgradeProfiles/default"))


def _agree(yes: bool, message: str) -> bool:
    """az's `if not yes and not prompt_y_n(msg, default="n")`; without a terminal, knack's error."""
    if yes:
        return True
    try:
        return output.prompt_y_n(message, default="n")
    except output.NoTTY:
        raise output.CLIError("Unable to prompt for confirmation as no tty available. Use --yes.") from None


def upgrade(args: argparse.Namespace, client: Client) -> Any:
    """az's aks_upgrade: the cluster PUT with the new `kubernetesVersion` and, unless
    --control-plane-only, every pool's `orchestratorVersion`; --node-image-only upgrades each
    pool's node image instead. --what-if sends the same PUT with `whatIf=true`."""
    if not args.what_if and not _agree(args.yes, "Kubernetes may be unavailable during cluster upgrades.\n Are you "
                                       "sure you want to perform this operation?"):
        return None
    path = client.cluster_path(args.resource_group, args.name)
    instance = client.get(path)
    version = args.kubernetes_version
    if version and args.node_image_only:
        raise output.CLIError("Conflicting flags. Upgrading the Kubernetes version will also upgrade node image "
                              "version. If you only want to upgrade the node version please use the "
                              '"--node-image-only" option only.')
    if args.enable_force_upgrade and args.disable_force_upgrade:
        raise output.CLIError("Providing both --disable-force-upgrade and --enable-force-upgrade flags is not "
                              "allowed")
    if args.node_image_only:
        if args.what_if:
            raise output.CLIError("--what-if takes a Kubernetes version upgrade; it cannot be used with "
                                  "--node-image-only.")
        # az's message, its missing space included
        if not _agree(args.yes, "This node image upgrade operation will run across every node pool in the cluster"
                      "and might take a while, do you wish to continue?"):
            return None
        pools = (instance.get("properties") or {}).get("agentPoolProfiles") or []
        for i, pool in enumerate(pools):
            # az starts them all at once; lks runs one operation per cluster at a time, so each
            # waits for the one before (the last returns at once with --no-wait)
            client.action(client.pool_path(args.resource_group, args.name, pool["name"]) + "/upgradeNodeImageVersion",
                          no_wait=args.no_wait and i == len(pools) - 1)
        return output.from_arm(client.get(path))
    doc = _writable(instance)
    props = doc["properties"]
    _force_upgrade(args, props)
    state = (instance.get("properties") or {}).get("provisioningState")
    if props.get("kubernetesVersion") == version or version == "":
        if state == "Succeeded":
            output.warning(f"The cluster is already on version {props.get('kubernetesVersion')} and is not in a "
                           "failed state. No operations will occur when upgrading to the same version if the cluster "
                           "is not in a failed state.")
        elif state == "Failed":
            output.warning("Cluster currently in failed state. Proceeding with upgrade to existing version "
                           f"{props.get('kubernetesVersion')} to attempt resolution of failed cluster state.")
    props["kubernetesVersion"] = version
    if not args.what_if:
        if not args.control_plane_only:
            message = ("Since --control-plane-only parameter is not specified, this will upgrade the control plane "
                       f"AND all nodepools to version {version}. Continue?")
        else:
            message = ("Since --control-plane-only parameter is specified, this will upgrade only the kubernetes "
                       f"version of the control plane to {version}. Kubernetes versions of the node pools will "
                       "remain unchanged, but node image version may be upgraded if there has been cluster config "
                       "change that requires VM reimage. Continue?")
        if not _agree(args.yes, message):
            return None
    if not args.control_plane_only:
        for pool in props.get("agentPoolProfiles") or []:
            pool["orchestratorVersion"] = version
            pool.pop("creationData", None)
    props.pop("servicePrincipalProfile", None)
    if args.what_if:
        return output.from_arm(client.request("PUT", path, api_version=CONTAINER_SERVICE_API, body=doc,
                                              query={"whatIf": "true"}).body)
    return output.from_arm(client.put(path, doc, no_wait=args.no_wait))


def _force_upgrade(args: argparse.Namespace, props: dict[str, Any]) -> None:
    """az's _update_upgrade_settings: forceUpgrade on or off, and `until` (given, or three days
    from now when forcing without one and the one set ends sooner)."""
    force = True if args.enable_force_upgrade else False if args.disable_force_upgrade else None
    if force is None and args.upgrade_override_until is None:
        return
    settings = props.setdefault("upgradeSettings", {}) or {}
    props["upgradeSettings"] = settings
    override = settings.setdefault("overrideSettings", {}) or {}
    settings["overrideSettings"] = override
    existing = override.get("until")
    if force is not None:
        override["forceUpgrade"] = force
    if args.upgrade_override_until is not None:
        try:
            until = datetime.datetime.fromisoformat(args.upgrade_override_until.replace("Z", "+00:00"))
        except ValueError:
            raise output.CLIError(f"{args.upgrade_override_until} is not a valid datatime format.") from None
        override["until"] = until.isoformat()
    elif force:
        default = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=3)
        try:
            sooner = existing is None or datetime.datetime.fromisoformat(existing.replace("Z", "+00:00")) < default
        except ValueError:
            sooner = True
        if sooner:
            override["until"] = default.isoformat()


# -- credentials ----------------------------------------------------------------------------------

def _default_kubeconfig() -> str:
    default = os.path.join(os.path.expanduser("~"), ".kube", "config")
    # az: with no --file, the first entry of $KUBECONFIG wins over ~/.kube/config
    first = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    return first or default


def _rename(doc: dict[str, Any], context_name: str | None) -> dict[str, Any]:
    """az's merge_kubernetes_configurations: `--context` renames the context and cluster; an admin
    context becomes `<name>-admin`, so it does not replace the user context."""
    if context_name:
        doc["contexts"][0]["name"] = doc["contexts"][0]["context"]["cluster"] = context_name
        doc["clusters"][0]["name"] = doc["current-context"] = context_name
    for ctx in doc.get("contexts") or []:
        if str((ctx.get("context") or {}).get("user", "")).startswith("clusterAdmin"):
            ctx["name"] = doc["current-context"] = ctx["name"] + "-admin"
            break
    return doc


def get_credentials(args: argparse.Namespace, client: Client) -> None:
    kind = "listClusterAdminCredential" if args.admin else "listClusterUserCredential"
    resp = client.request("POST", f"{client.cluster_path(args.resource_group, args.name)}/{kind}",
                          api_version=CONTAINER_SERVICE_API)
    try:
        new = base64.b64decode((resp.body or {})["kubeconfigs"][0]["value"]).decode()
    except (KeyError, IndexError, TypeError, ValueError):
        raise output.CLIError("Fail to find kubeconfig file.") from None
    path = args.file or _default_kubeconfig()
    if path == "-":
        print(new)
        return
    try:
        new_doc = _rename(safeyaml.load(new), args.context_name)
    except (safeyaml.YAMLError, KeyError, IndexError, TypeError):
        raise output.CLIError("Fail to find kubeconfig file.") from None
    new = yaml.safe_dump(new_doc, sort_keys=False)
    file = Path(path).expanduser()
    file.parent.mkdir(parents=True, exist_ok=True)
    if not file.exists():
        file.touch(mode=0o600)
    existing = file.read_text()
    try:
        merged, conflicts = kubeconfig.merge(existing, new, overwrite=args.overwrite_existing)
    except safeyaml.YAMLError as err:
        raise output.CLIError(f"Error parsing {path} ({safeyaml.message(err)})") from None  # as az words it
    for conflict in conflicts:  # "cluster <name>", "user <name>", "context <name>"
        kind_, _, name = conflict.partition(" ")
        try:
            if output.prompt_y_n(f"A different object named {name} already exists in your kubeconfig file.\n"
                                 "Overwrite?"):
                continue
        except output.NoTTY:
            pass
        raise output.CLIError(f"A different object named {name} already exists in {kind_}s in your kubeconfig file.")
    if conflicts:
        merged, _ = kubeconfig.merge(existing, new, overwrite=True)
    mode = stat.S_IMODE(file.stat().st_mode)
    if sys.platform != "win32" and not file.is_symlink() and not f"{mode:o}".endswith("600"):
        output.warning(f'{file} has permissions "{mode:o}".\nIt should be readable and writable only by its owner.')
    file.write_text(merged)
    output.warning(f'Merged "{new_doc["current-context"]}" as current context in {path}')
