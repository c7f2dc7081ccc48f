"""`lks network vnet create|show|list|delete` and `lks network vnet subnet create|show|list|delete`:
virtual networks and subnets (`lks.arm.vnets`), as `az network vnet` manages them (azure-cli
`command_modules/network`), for clusters that bring their own subnet (`lks aks create
--vnet-subnet-id`). Results are flattened as the Network SDK's models are; `vnet create`
answers `{"newVNet": ...}` as az does.
"""

from __future__ import annotations

import argparse
from collections import OrderedDict
from typing import Any

from lks.cli import commands, output
from lks.cli.client import RESOURCES_API, Client

NETWORK_API = "2024-05-01"


def _vnet_path(client: Client, group: str, name: str = "") -> str:
    path = (f"/subscriptions/{client.subscription}/resourceGroups/{group}/providers/Microsoft.Network/"
            "virtualNetworks")
    return f"{path}/{name}" if name else path


def _subnet_path(client: Client, group: str, vnet: str, name: str = "") -> str:
    path = f"{_vnet_path(client, group, vnet)}/subnets"
    return f"{path}/{name}" if name else path


def _flat(doc: Any) -> Any:
    """A VNet or subnet as az prints it: `properties` lifted, in the subnets and delegations too."""
    if isinstance(doc, list):
        return [_flat(d) for d in doc]
    if not isinstance(doc, dict) or not isinstance(doc.get("properties"), dict):
        return doc
    props = dict(doc["properties"])
    for key in ("subnets", "delegations"):
        if isinstance(props.get(key), list):
            props[key] = [_flat(d) for d in props[key]]
    return output.from_arm({**doc, "properties": props})


def _vnet_table(result: list[dict[str, Any]]) -> list[OrderedDict[str, Any]]:
    return [OrderedDict([("Name", r["name"]), ("ResourceGroup", r.get("resourceGroup")), ("Location", r["location"]),
                         ("NumSubnets", len(r.get("subnets") or [])),
                         ("Prefixes", ", ".join((r.get("addressSpace") or {}).get("addressPrefixes") or [])),
                         ("ProvisioningState", r.get("provisioningState"))]) for r in result]


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    network = sub.add_parser("network", help="Manage virtual networks.", description="Manage virtual networks.")
    groups = network.add_subparsers(dest="group", required=True, metavar="<group>")
    vnet = groups.add_parser("vnet", help="Manage virtual networks.")
    cmds = vnet.add_subparsers(dest="subcommand", required=True, metavar="<command>")

    p = cmds.add_parser("create", parents=[common], help="Create a virtual network.")
    commands.resource_group(p)
    p.add_argument("--name", "-n", required=True, help="The virtual network (VNet) name.")
    p.add_argument("--location", "-l", help="Location. Default: the resource group's.")
    p.add_argument("--address-prefixes", nargs="+", default=["10.0.0.0/16"],
                   help="Space-separated IP address prefixes in CIDR format. Default: 10.0.0.0/16.")
    p.add_argument("--subnet-name", help="Name of a new subnet to create within the VNet.")
    p.add_argument("--subnet-prefixes", nargs="+", help="Space-separated address prefixes of the new subnet.")
    commands.tags_arg(p)
    p.set_defaults(func=create)

    for verb, func, text in (("show", show, "Get the details of a virtual network."),
                             ("delete", delete, "Delete a virtual network.")):
        p = cmds.add_parser(verb, parents=[common], help=text)
        commands.resource_group(p)
        p.add_argument("--name", "-n", required=True, help="The virtual network (VNet) name.")
        p.set_defaults(func=func)

    p = cmds.add_parser("list", parents=[common], help="List virtual networks.")
    commands.resource_group(p, required=False)
    p.set_defaults(func=list_, table=_vnet_table)

    subnet = cmds.add_parser("subnet", help="Manage subnets in a virtual network.")
    scmds = subnet.add_subparsers(dest="subsubcommand", required=True, metavar="<command>")

    def names(p: argparse.ArgumentParser, *, name: bool = True) -> None:
        commands.resource_group(p)
        p.add_argument("--vnet-name", required=True, help="The virtual network (VNet) name.")
        if name:
            p.add_argument("--name", "-n", required=True, help="The subnet name.")

    p = scmds.add_parser("create", parents=[common], help="Create a subnet.")
    names(p)
    p.add_argument("--address-prefixes", nargs="+", required=True, help="Space-separated address prefixes in CIDR "
                   "format.")
    p.add_argument("--delegations", nargs="+", help="Space-separated services to delegate the subnet to, e.g. "
                   "Microsoft.ContainerInstance/containerGroups.")
    p.set_defaults(func=subnet_create)
    for verb, func, text in (("show", subnet_show, "Show the details of a subnet."),
                             ("delete", subnet_delete, "Delete a subnet.")):
        p = scmds.add_parser(verb, parents=[common], help=text)
        names(p)
        p.set_defaults(func=func)
    p = scmds.add_parser("list", parents=[common], help="List the subnets of a virtual network.")
    names(p, name=False)
    p.set_defaults(func=subnet_list)


def create(args: argparse.Namespace, client: Client) -> Any:
    location = args.location or client.get(client.group_path(args.resource_group), RESOURCES_API)["location"]
    props: dict[str, Any] = {"addressSpace": {"addressPrefixes": args.address_prefixes}}
    if args.subnet_name:
        prefixes = args.subnet_prefixes or args.address_prefixes[:1]
        props["subnets"] = [{"name": args.subnet_name, "properties": {"addressPrefix": prefixes[0]}}]
    body: dict[str, Any] = {"location": location, "properties": props}
    if args.tags is not None:
        body["tags"] = commands.tags(args.tags)
    doc = client.put(_vnet_path(client, args.resource_group, args.name), body, no_wait=False, api_version=NETWORK_API)
    return {"newVNet": _flat(doc)}


def show(args: argparse.Namespace, client: Client) -> Any:
    return _flat(client.get(_vnet_path(client, args.resource_group, args.name), NETWORK_API))


def list_(args: argparse.Namespace, client: Client) -> Any:
    path = _vnet_path(client, args.resource_group) if args.resource_group else \
        f"/subscriptions/{client.subscription}/providers/Microsoft.Network/virtualNetworks"
    return _flat(client.list(path, NETWORK_API))


def delete(args: argparse.Namespace, client: Client) -> None:
    client.delete(_vnet_path(client, args.resource_group, args.name), no_wait=False, api_version=NETWORK_API)


def subnet_create(args: argparse.Namespace, client: Client) -> Any:
    props: dict[str, Any] = {"addressPrefix": args.address_prefixes[0]}
    if len(args.address_prefixes) > 1:
        props = {"addressPrefixes": args.address_prefixes}
    if args.delegations:
        props["delegations"] = [{"name": str(i), "properties": {"serviceName": s}}
                                for i, s in enumerate(args.delegations)]
    doc = client.put(_subnet_path(client, args.resource_group, args.vnet_name, args.name), {"properties": props},
                     no_wait=False, api_version=NETWORK_API)
    return _flat(doc)


def subnet_show(args: argparse.Namespace, client: Client) -> Any:
    return _flat(client.get(_subnet_path(client, args.resource_group, args.vnet_name, args.name),
                                      NETWORK_API))


def subnet_list(args: argparse.Namespace, client: Client) -> Any:
    return _flat(client.list(_subnet_path(client, args.resource_group, args.vnet_name), NETWORK_API))


def subnet_delete(args: argparse.Namespace, client: Client) -> None:
    client.delete(_subnet_path(client, args.resource_group, args.vnet_name, args.name), no_wait=False,
                  api_version=NETWORK_API)
