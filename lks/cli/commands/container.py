"""`lks container create|show|list|logs|exec|attach|start|stop|restart|delete`: container groups
(`lks.arm.containergroups`), as `az container` manages them (azure-cli
`command_modules/container`): one container per group made from flags, results flattened as the
ContainerInstance SDK's models are. `exec` and `attach` speak ACI's WebSocket protocol: the
password first, then the terminal's bytes (exec) or the container's output (attach).
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import ssl
import sys
from collections import OrderedDict
from typing import Any

from lks.cli import commands, output
from lks.cli.client import RESOURCES_API, Client
from lks.cli.output import CLIError

ACI_API = "2023-05-01"


def _path(client: Client, group: str | None = None, name: str = "") -> str:
    if group is None:
        return f"/subscriptions/{client.subscription}/providers/Microsoft.ContainerInstance/containerGroups"
    path = f"/subscriptions/{client.subscription}/resourceGroups/{group}/providers/Microsoft.ContainerInstance/" \
           "containerGroups"
    return f"{path}/{name}" if name else path


def _flat(doc: Any) -> Any:
    """A group as az prints it: `properties` lifted, in its containers too."""
    if isinstance(doc, list):
        return [_flat(d) for d in doc]
    if not isinstance(doc, dict):
        return doc
    out = output.from_arm(doc)
    out["containers"] = [output.from_arm(c) for c in (doc.get("properties") or {}).get("containers") or []]
    return out


def _list_table(result: list[dict[str, Any]]) -> list[OrderedDict[str, Any]]:
    """az's transform_container_group_list."""
    rows = []
    for r in result:
        c = (r.get("containers") or [{}])[0]
        ip = r.get("ipAddress") or {}
        ports = ",".join(str(p["port"]) for p in ip.get("ports") or [])
        req = (c.get("resources") or {}).get("requests") or {}
        rows.append(OrderedDict([
            ("Name", r["name"]), ("ResourceGroup", r.get("resourceGroup")),
            ("Status", (r.get("instanceView") or {}).get("state") or r.get("provisioningState")),
            ("Image", c.get("image")), ("IP:ports", f"{ip['ip']}:{ports}" if ip.get("ip") else ""),
            ("Network", ip.get("type") or ""), ("CPU/Memory", f"{req.get('cpu')} core/{req.get('memoryInGb')} gb"),
            ("OsType", r.get("osType")), ("Location", r.get("location"))]))
    return rows


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    container = sub.add_parser("container", help="Manage Azure Container Instances.",
                               description="Manage Azure Container Instances.")
    cmds = container.add_subparsers(dest="subcommand", required=True, metavar="<command>")

    def ident(p: argparse.ArgumentParser) -> None:
        p.add_argument("--resource-group", "-g", required=True, help="Name of resource group.")
        p.add_argument("--name", "-n", required=True, help="The name of the container group.")

    def container_name(p: argparse.ArgumentParser) -> None:
        p.add_argument("--container-name", help="The container name. Default: the group's first container.")

    p = cmds.add_parser("create", parents=[common], help="Create a container group.")
    ident(p)
    p.add_argument("--image", required=True, help="The container image name.")
    p.add_argument("--command-line", help="The command line to run when the container is started.")
    p.add_argument("--cpu", type=float, default=1.0, help="The required number of CPU cores of the container.")
    p.add_argument("--memory", type=float, default=1.5, help="The required memory of the container in GB.")
    p.add_argument("--ports", nargs="+", type=int, default=[80], help="The ports to open. Default: 80.")
    p.add_argument("--protocol", default="TCP", choices=("TCP", "UDP"), help="The network protocol.")
    p.add_argument("--ip-address", choices=("Public", "Private"), help="The IP address type of the group.")
    p.add_argument("--dns-name-label", help="The dns name label for the container group with public IP.")
    p.add_argument("--environment-variables", "-e", nargs="+", metavar="KEY=VALUE",
                   help="A list of environment variables for the container.")
    p.add_argument("--secure-environment-variables", nargs="+", metavar="KEY=VALUE",
                   help="A list of secure environment variables for the container.")
    p.add_argument("--restart-policy", default="Always", choices=("Always", "OnFailure", "Never"),
                   help="Restart policy for all containers within the container group.")
    p.add_argument("--os-type", default="Linux", choices=("Linux", "Windows"), help="The OS type of the containers.")
    p.add_argument("--location", "-l", help="Location. Default: the resource group's.")
    p.add_argument("--subnet", help="The id of a subnet delegated to ACI (a Private group).")
    commands.no_wait(p)
    p.set_defaults(func=create)

    p = cmds.add_parser("show", parents=[common], help="Get the details of a container group.")
    ident(p)
    p.set_defaults(func=show)

    p = cmds.add_parser("list", parents=[common], help="List container groups.")
    p.add_argument("--resource-group", "-g", help="Name of resource group.")
    p.set_defaults(func=list_, table=_list_table)

    p = cmds.add_parser("logs", parents=[common], help="Examine the logs for a container in a container group.")
    ident(p)
    container_name(p)
    p.add_argument("--tail", type=int, help="The number of lines to show from the end.")
    p.add_argument("--timestamps", action="store_true", help="Show the time of each line.")
    p.set_defaults(func=logs)

    p = cmds.add_parser("exec", parents=[common], help="Execute a command from within a running container.")
    ident(p)
    container_name(p)
    p.add_argument("--exec-command", required=True, help="The command to run from within the container.")
    p.add_argument("--terminal-row-size", type=int, default=20, help="The row size for the command output.")
    p.add_argument("--terminal-col-size", type=int, default=80, help="The col size for the command output.")
    p.set_defaults(func=exec_)

    p = cmds.add_parser("attach", parents=[common], help="Attach local standard output to a container's.")
    ident(p)
    container_name(p)
    p.set_defaults(func=attach)

    for verb, text in (("start", "Starts all containers in a container group."),
                       ("stop", "Stops all containers in a container group."),
                       ("restart", "Restarts all containers in a container group.")):
        p = cmds.add_parser(verb, parents=[common], help=text)
        ident(p)
        commands.no_wait(p)
        p.set_defaults(func=action, verb=verb)

    p = cmds.add_parser("delete", parents=[common], help="Delete a container group.")
    ident(p)
    commands.yes(p)
    p.set_defaults(func=delete)


def _pairs(items: list[str] | None, secure: bool) -> list[dict[str, str]]:
    out = []
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CLIError(f"usage error: {item} is not in the format KEY=VALUE")
        out.append({"name": key, "secureValue" if secure else "value": value})
    return out


def create(args: argparse.Namespace, client: Client) -> Any:
    location = args.location or client.get(client.group_path(args.resource_group), RESOURCES_API)["location"]
    ports = [{"port": p, "protocol": args.protocol} for p in args.ports]
    container: dict[str, Any] = {
        "image": args.image, "ports": ports,
        "resources": {"requests": {"cpu": args.cpu, "memoryInGB": args.memory}},
        "environmentVariables": _pairs(args.environment_variables, False) +
        _pairs(args.secure_environment_variables, True)}
    if args.command_line:
        container["command"] = shlex.split(args.command_line)
    props: dict[str, Any] = {"containers": [{"name": args.name, "properties": container}],
                             "osType": args.os_type, "restartPolicy": args.restart_policy}
    ip_type = args.ip_address or ("Private" if args.subnet else None)
    if args.dns_name_label and ip_type is None:
        ip_type = "Public"  # az: a DNS name label makes the group public
    if ip_type:
        props["ipAddress"] = {"type": ip_type, "ports": ports,
                              **({"dnsNameLabel": args.dns_name_label} if args.dns_name_label else {})}
    if args.subnet:
        props["subnetIds"] = [{"id": args.subnet}]
    doc = client.put(_path(client, args.resource_group, args.name), {"location": location, "properties": props},
                     no_wait=args.no_wait, api_version=ACI_API)
    return _flat(doc) if doc is not None else None


def show(args: argparse.Namespace, client: Client) -> Any:
    return _flat(client.get(_path(client, args.resource_group, args.name), ACI_API))


def list_(args: argparse.Namespace, client: Client) -> Any:
    return _flat(client.list(_path(client, args.resource_group), ACI_API))


def _container(args: argparse.Namespace, client: Client) -> str:
    if args.container_name:
        return args.container_name
    doc = client.get(_path(client, args.resource_group, args.name), ACI_API)
    return doc["properties"]["containers"][0]["name"]


def logs(args: argparse.Namespace, client: Client) -> None:
    query = {**({"tail": str(args.tail)} if args.tail is not None else {}),
             **({"timestamps": "true"} if args.timestamps else {})}
    path = f"{_path(client, args.resource_group, args.name)}/containers/{_container(args, client)}/logs"
    body = client.request("GET", path, api_version=ACI_API, query=query).body or {}
    sys.stdout.write(body.get("content") or "")
    sys.stdout.flush()


def exec_(args: argparse.Namespace, client: Client) -> None:
    path = f"{_path(client, args.resource_group, args.name)}/containers/{_container(args, client)}/exec"
    body = {"command": args.exec_command,
            "terminalSize": {"rows": args.terminal_row_size, "cols": args.terminal_col_size}}
    sock = client.request("POST", path, api_version=ACI_API, body=body).body
    asyncio.run(_relay(client, sock, send_stdin=True))


def attach(args: argparse.Namespace, client: Client) -> None:
    path = f"{_path(client, args.resource_group, args.name)}/containers/{_container(args, client)}/attach"
    sock = client.request("POST", path, api_version=ACI_API).body
    asyncio.run(_relay(client, sock, send_stdin=False))


async def _relay(client: Client, sock: dict[str, str], *, send_stdin: bool) -> None:
    """ACI's WebSocket: the password first; then what comes is printed (and with `send_stdin`
    standard input goes the other way) until the server closes it."""
    import aiohttp

    ctx = ssl.create_default_context(cafile=client.config.ca_file)
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as http, http.ws_connect(sock["webSocketUri"], ssl=ctx) as ws:
        await ws.send_str(sock["password"])
        pump = None
        if send_stdin and not sys.stdin.isatty():
            async def forward() -> None:
                while data := await loop.run_in_executor(None, sys.stdin.buffer.read1, 4096):  # type: ignore[attr-defined]
                    await ws.send_bytes(data)
            pump = asyncio.ensure_future(forward())
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                sys.stdout.write(msg.data)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                sys.stdout.write(msg.data.decode(errors="replace"))
            sys.stdout.flush()
        if pump is not None:
            pump.cancel()


def action(args: argparse.Namespace, client: Client) -> None:
    client.action(f"{_path(client, args.resource_group, args.name)}/{args.verb}", no_wait=args.no_wait,
                  api_version=ACI_API)


def delete(args: argparse.Namespace, client: Client) -> Any:
    output.confirm(args.yes)
    path = _path(client, args.resource_group, args.name)
    resp = client.request("DELETE", path, api_version=ACI_API)
    client.wait(resp)
    return _flat(resp.body) if resp.status == 200 and resp.body else None
