"""The command groups of `lks`, one module per `az` group (`group`, `aks`, `nodepool`), and the
argument types they share, parsed as az parses them.

Each module's `register(subparsers, common)` adds its commands; a command is a function
`(args, client) -> result` stored as the parser's `func` default, with its table transformer
as `table`. `lks.cli.main` runs it and hands the result to `lks.cli.output.emit`.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from lks.cli import output
from lks.cli.output import CLIError

# az's validate_nodepool_taints pattern (key=value:Effect)
_TAINT = re.compile(r"^[a-zA-Z\d][\w\-./]{0,252}=[a-zA-Z\d][\w\-.]{0,62}:(NoSchedule|PreferNoSchedule|NoExecute)$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                        r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def tags(items: list[str] | None) -> dict[str, str] | None:
    """az's tags_type: `key[=value] ...`; `""` alone gives {} (clears the tags)."""
    if items is None:
        return None
    out: dict[str, str] = {}
    for item in items:
        if item:
            key, _, value = item.partition("=")
            out[key] = value
    return out


def labels(items: list[str] | None) -> dict[str, str] | None:
    """az's validate_nodepool_labels: space-separated `key=value`, Kubernetes label syntax."""
    if items is None:
        return None
    out: dict[str, str] = {}
    for item in items:
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise CLIError(f"Invalid label: {item}. Label definition must be of format name=value.")
        if not _LABEL_KEY.match(key) or len(key.rpartition("/")[2]) > 63:
            raise CLIError(f"Invalid label: {item}. Label key '{key}' is not a valid Kubernetes label key.")
        if not _LABEL_VALUE.match(value):
            raise CLIError(f"Invalid label: {item}. Label value '{value}' is not a valid Kubernetes label value.")
        out[key] = value
    return out


def taints(raw: str | None) -> list[str] | None:
    """az's comma-separated `--node-taints key=value:Effect,...`; `""` gives [] (clears them)."""
    if raw is None:
        return None
    out = [t.strip() for t in raw.split(",") if t.strip()]
    for taint in out:
        if not _TAINT.match(taint):
            raise CLIError('Taint does not match allowed values. Expect value such as "special=true:NoSchedule".')
    return out


def resource_group(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument("--resource-group", "-g", dest="resource_group", required=required, metavar="NAME",
                        help="Name of resource group.")


def no_wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-wait", action="store_true", help="Do not wait for the long-running operation to finish.")


def yes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--yes", "-y", action="store_true", help="Do not prompt for confirmation.")


def tags_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tags", nargs="*", metavar="KEY[=VALUE]",
                        help='Space-separated tags: key[=value] [key[=value] ...]. Use "" to clear existing tags.')


def writable(doc: dict[str, Any], read_only: tuple[str, ...]) -> dict[str, Any]:
    """A copy of `doc` without the read-only fields, for sending back in a PUT."""
    return {k: v for k, v in doc.items() if k not in read_only}


def reconcile_or_refuse(yes: bool, options: list[str]) -> None:
    """az's answer to an update with nothing to change: offer to reconcile the resource to its
    current settings (an empty PUT, which also moves it out of a failed state), else name the options."""
    try:
        if yes or output.prompt_y_n("no argument specified to update would you like to reconcile to current "
                                    "settings?", default="n"):
            return
    except output.NoTTY:
        pass
    raise CLIError("Please specify one or more of {}.".format(" or ".join(options)))
