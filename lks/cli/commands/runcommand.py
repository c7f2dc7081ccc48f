"""`lks aks command invoke|result`: run a shell command (kubectl, helm) in a cluster through the
management API's run command (`lks.arm.runcommand`), shaped like `az aks command` (azure-cli
`command_modules/acs/custom.py`: `aks_runcommand`, `aks_command_result`,
`_get_command_context`, `_print_command_result`).

As az, without `--output` the result is printed for a person (`command started at …, finished
at … with exitcode=N` then the logs; `command failed with reason: …`); with `--output` it is the
result object. `--file` attaches files (flattened to their names) or `.` the current directory
(its tree kept), sent as a base64 zip.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import re
import sys
import zipfile
from typing import Any

from lks.cli import commands
from lks.cli.client import CONTAINER_SERVICE_API, Client, Response
from lks.cli.output import CLIError

# az's colorama colours around the summary line
_GREEN, _RED, _BLUE, _RESET = "\x1b[32m", "\x1b[31m", "\x1b[34m", "\x1b[0m"


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    group = sub.add_parser("command", help="See detail usage in 'az aks command invoke', 'az aks command result'.",
                           description="See detail usage in 'az aks command invoke', 'az aks command result'.")
    cmds = group.add_subparsers(dest="command_command", required=True, metavar="<command>")

    def cluster(p: argparse.ArgumentParser) -> None:
        commands.resource_group(p)
        p.add_argument("--name", "-n", required=True, help="Name of the managed cluster.")

    p = cmds.add_parser("invoke", parents=[common], help="Run a shell command (with kubectl, helm) on your aks "
                        "cluster, support attaching files as well.")
    cluster(p)
    p.add_argument("--command", "-c", dest="command_string", default="",
                   help="Command or shell script you want to run.")
    p.add_argument("--file", "-f", dest="command_files", action="append",
                   help="Files to be used by the command, use '.' to attach the current folder.")
    commands.no_wait(p)
    p.set_defaults(func=invoke)

    p = cmds.add_parser("result", parents=[common], help="Fetch result from previously triggered "
                        "'aks command invoke'.")
    cluster(p)
    p.add_argument("--command-id", "-i", default="", help="commandId returned from 'aks command invoke'.")
    p.set_defaults(func=result)


def invoke(args: argparse.Namespace, client: Client) -> Any:
    path = client.cluster_path(args.resource_group, args.name)
    client.get(path)  # az reads the cluster first: a missing one is its ResourceNotFound
    if not args.command_string:
        raise CLIError("Command cannot be empty.")
    body = {"command": args.command_string, "context": context(args.command_files)}
    resp = client.request("POST", path + "/runCommand", api_version=CONTAINER_SERVICE_API, body=body)
    location = resp.headers.get("location") or ""
    if args.no_wait:
        found = re.findall(r"commandResults/(\w*)\?", location)
        command_id = found[0] if found else ""
        return _in_progress(client, args, command_id)
    final = client.wait(resp)
    return _print(args, (final or resp).body or {})


def result(args: argparse.Namespace, client: Client) -> Any:
    if not args.command_id:
        raise CLIError("CommandID cannot be empty.")
    path = client.cluster_path(args.resource_group, args.name) + f"/commandResults/{args.command_id}"
    resp = client.request("GET", path, api_version=CONTAINER_SERVICE_API)
    if resp.status == 202:
        return _in_progress(client, args, args.command_id, resp)
    return _print(args, resp.body or {})


def context(files: list[str] | None) -> str:
    """az's `_get_command_context`: the attached files as a base64 zip ("" for none)."""
    if not files:
        return ""
    attach: dict[str, str] = {}
    if files == ["."]:
        cwd = os.getcwd()
        for folder, _dirs, names in os.walk(cwd):
            for name in names:
                attach[os.path.join(folder, name)] = os.path.join(os.path.relpath(folder, cwd), name)
    else:
        for f in files:
            if f == ".":
                raise CLIError(". is used to attach current folder, not expecting other attachements.")
            if not os.path.isfile(f):
                raise CLIError(f"{f} is not valid file, or not accessable.")
            attach[f] = os.path.basename(f)
    if not attach:
        return ""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for path, entry in attach.items():
            z.write(path, entry)
    return base64.encodebytes(buf.getvalue()).decode()


def _output_given() -> bool:
    """Whether the user chose an output format (az prints the result object then)."""
    return any(a in ("-o", "--output") or a.startswith("--output=") or (a.startswith("-o") and len(a) > 2)
               for a in sys.argv[1:])


def _print(args: argparse.Namespace, body: dict[str, Any]) -> Any:
    """az's `_print_command_result`."""
    if _output_given() or args.query is not None:
        return _result_object(body)
    props = body.get("properties") or {}
    state = props.get("provisioningState")
    tint = _GREEN if state == "Succeeded" else _RED if state == "Failed" else _BLUE
    on, off = (tint, _RESET) if sys.stdout.isatty() else ("", "")  # colorama strips them from a pipe
    if state == "Succeeded":
        print(f"{on}command started at {_az_time(props.get('startedAt'))}, finished at "
              f"{_az_time(props.get('finishedAt'))} with exitcode={props.get('exitCode')}{off}")
        print(props.get("logs"))
    elif state == "Failed":
        print(f"{on}command failed with reason: {props.get('reason')}{off}")
    else:
        print(f"{on}command (id: {body.get('id')}) is in {state} state{off}")
    return None


def _result_object(body: dict[str, Any]) -> dict[str, Any]:
    """The result as az prints the SDK's RunCommandResult: flattened, every field present, the
    times as Python prints an aware datetime's isoformat."""
    props = body.get("properties") or {}
    out: dict[str, Any] = {"id": body.get("id")}
    for key in ("provisioningState", "exitCode", "startedAt", "finishedAt", "logs", "reason"):
        value = props.get(key)
        out[key] = value.replace("Z", "+00:00") if key.endswith("At") and isinstance(value, str) else value
    return out


def _in_progress(client: Client, args: argparse.Namespace, command_id: str, resp: Response | None = None) -> None:
    """az's `_aks_command_result_in_progess_helper` (its spelling)."""
    if resp is None:
        path = client.cluster_path(args.resource_group, args.name) + f"/commandResults/{command_id}"
        resp = client.request("GET", path, api_version=CONTAINER_SERVICE_API)
    props = (resp.body or {}).get("properties") if isinstance(resp.body, dict) else None
    if not props:
        print(f"failed to fetch command result for command id: {command_id}")
        return None
    print(f"command id: {command_id}, started at: {props.get('startedAt')}, status: {props.get('provisioningState')}")
    print(f'Please use command "az aks command result -g {args.resource_group} -n {args.name} -i {command_id}" '
          "to get the future execution result")
    return None


def _az_time(value: str | None) -> str:
    """A timestamp as az prints the SDK's datetime (`2022-05-13 08:14:46+00:00`)."""
    if not value:
        return str(value)
    return value.replace("T", " ").replace("Z", "+00:00")
