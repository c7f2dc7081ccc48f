"""Everything the `lks` command shows, in one place, the way `az` shows it: results in the
`-o/--output` formats after `--query`, errors and warnings on stderr, the progress spinner
of long-running operations and the y/n prompt.

The command modules (`lks.cli.commands.*`) return plain JSON values and name a table
transformer; `emit` does the rest. ARM documents reach them through `from_arm`, which gives
them the shape `az` prints: `az` serializes the SDK's model objects, so `properties` is
flattened into the resource and every key is the SDK attribute name in camelCase
(`dnsServiceIP` → `dnsServiceIp`, `osDiskSizeGB` → `osDiskSizeGb`).

Sources: knack `output.py` (formats, `_TableOutput`, `_TsvOutput`), `log.py` and `cli.py`
(colour only when stdout and stderr are terminals; `ERROR:`/`WARNING:` prefixes otherwise),
`prompting.py`; azure-cli-core `commands/progress.py` (humanfriendly's spinner) and
`commands/arm.py` (`_add_resource_group`).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TextIO

import jmespath
import jmespath.exceptions
import yaml

FORMATS = ("json", "jsonc", "table", "tsv", "yaml", "yamlc", "none")
QUERY_REFERENCE = "To learn more about --query, please visit: 'https://docs.microsoft.com/cli/azure/query-azure-cli'"

Table = Callable[[Any], Any] | str  # a function or a JMESPath expression, as az's table_transformer


def add_arguments(g: argparse._ActionsContainer) -> None:
    """The output arguments every `az` command has."""
    g.add_argument("--output", "-o", choices=FORMATS, default="json", type=str.lower, metavar="FORMAT",
                   help="Output format: " + ", ".join(FORMATS) + ". Default: json.")
    g.add_argument("--query", type=jmespath_type, metavar="JMESPATH",
                   help="JMESPath query string. See http://jmespath.org/ for more information and examples.")
    g.add_argument("--only-show-errors", action="store_true", help="Only show errors, suppressing warnings.")


def jmespath_type(raw: str) -> jmespath.parser.ParsedResult:
    """argparse type for --query: a compiled expression (so a bad one is a usage error, as in az)."""
    try:
        return jmespath.compile(raw)
    except jmespath.exceptions.JMESPathError as err:
        raise argparse.ArgumentTypeError(f"invalid jmespath_type value: '{raw}'") from err


# -- ARM documents as az shows them ---------------------------------------------------------------

# Fields whose value is a free-form map: their keys are data (tag names, label keys, addon names,
# patch versions), never SDK attribute names, so they keep their spelling.
_MAPS = frozenset({"tags", "nodeLabels", "addonProfiles", "config", "identityProfile", "userAssignedIdentities",
                   "patchVersions", "delegatedResources"})


def _snake(name: str) -> str:
    """The SDK's Python attribute for a wire name (autorest's rule), e.g. `enableRBAC` → `enable_rbac`."""
    name = name.replace("-", "_")
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def _camel(name: str) -> str:
    """knack's `to_camel_case` of the SDK attribute: what az prints for a wire name."""
    return re.sub(r"(?!^)_([a-zA-Z])", lambda m: m.group(1).upper(), _snake(name))


def _convert(value: Any) -> Any:
    if isinstance(value, list):
        return [_convert(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key in _MAPS and isinstance(item, dict):
            out[_camel(key)] = {k: _convert(v) for k, v in item.items()}
        else:
            out[_camel(key)] = _convert(item)
    return out


def from_arm(doc: Any, *, flatten: bool = True) -> Any:
    """An ARM resource (or a list of them) as az prints it. `flatten` lifts `properties` into the
    resource as the SDK models of managed clusters and agent pools do; a property that collides
    with a resource field gets autorest's `<name>PropertiesType`-style name (`typePropertiesType`).
    Resource groups are not flattened in their SDK, so callers pass `flatten=False` for them."""
    if isinstance(doc, list):
        return [from_arm(d, flatten=flatten) for d in doc]
    if not isinstance(doc, dict):
        return doc
    if flatten and isinstance(doc.get("properties"), dict):
        top = {k: v for k, v in doc.items() if k != "properties"}
        for key, value in doc["properties"].items():
            top[f"{key}Properties{key[:1].upper()}{key[1:]}" if key in top else key] = value
        doc = top
    return _convert(doc)


def _add_resource_group(value: Any) -> None:
    """az adds `resourceGroup` (parsed from `id`) to every resource in a result, nested ones too."""
    if isinstance(value, list):
        for item in value:
            _add_resource_group(item)
    elif isinstance(value, dict):
        rid = value.get("id")
        if "resourceGroup" not in value and isinstance(rid, str):
            parts = rid.split("/")
            # az's _parse_id: the id must go down to a resource (parts[8]) inside a group
            if len(parts) > 8 and parts[3].lower() == "resourcegroups":
                value["resourceGroup"] = parts[4]
        for item in list(value.values()):
            _add_resource_group(item)


# -- results --------------------------------------------------------------------------------------

def emit(result: Any, *, output: str = "json", query: Any = None, table: Table | None = None,
         out: TextIO | None = None) -> None:
    """Print a command's result as az does; None prints nothing at all."""
    if result is None:
        return
    out = out or sys.stdout
    _add_resource_group(result)
    if query is not None:
        result = query.search(result, jmespath.Options(dict_cls=OrderedDict))
    text = format_result(result, output=output, table=None if query is not None else table,
                         query_active=query is not None, color=_color_enabled(out))
    out.write(text)
    out.flush()


def format_result(result: Any, *, output: str, table: Table | None = None, query_active: bool = False,
                  color: bool = False) -> str:
    if output == "none":
        return ""
    if output in ("json", "jsonc"):
        text = json.dumps(result, ensure_ascii=False, indent=2, sort_keys=True, separators=(",", ": ")) + "\n"
        return _highlight(text, "json") if output == "jsonc" and color else text
    if output in ("yaml", "yamlc"):
        text = yaml.safe_dump(json.loads(json.dumps(result)), default_flow_style=False, allow_unicode=True)
        return _highlight(text, "yaml") if output == "yamlc" and color else text
    if output == "tsv":
        return _tsv(result if isinstance(result, list) else [result])
    if output == "table":
        if table is not None:
            result = (jmespath.search(table, result, jmespath.Options(dict_cls=OrderedDict))
                      if isinstance(table, str) else table(result))
        rows = result if isinstance(result, list) else [result]
        return _table(rows, sort_keys=not query_active and table is None)
    raise ValueError(f"unknown output format {output!r}")


def _highlight(text: str, lexer: str) -> str:
    try:
        from pygments import formatters, highlight, lexers
    except ImportError:  # colour is a nicety; pygments is not a dependency of lks
        return text
    lex = lexers.JsonLexer() if lexer == "json" else lexers.YamlLexer()
    return highlight(text, lex, formatters.TerminalFormatter())


def _table_row(item: Any, sort_keys: bool) -> OrderedDict[str, Any]:
    """knack's _auto_table_item: scalar fields only, id/type/etag left out, first letter capitalised."""
    row: OrderedDict[str, Any] = OrderedDict()
    if isinstance(item, dict):
        for key in sorted(item) if sort_keys else item:
            value = item[key]
            if key in ("id", "type", "etag") or value is None or isinstance(value, list | dict | set):
                continue
            row[key[:1].upper() + key[1:]] = value
    elif isinstance(item, list):
        for i, value in enumerate(item):
            row[f"Column{i + 1}"] = value
    else:
        row["Result"] = item
    return row


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _table(items: list[Any], *, sort_keys: bool) -> str:
    """tabulate's "simple" format as knack calls it: left-aligned, columns at least two wider than
    their header, two spaces between columns, trailing blanks trimmed."""
    rows = [_table_row(item, sort_keys) for item in items]
    headers: list[str] = []
    for row in rows:
        headers += [k for k in row if k not in headers]
    if not rows:
        return "\n"
    if not headers:
        raise CLIError("Table output unavailable. Use the --query option to specify an appropriate query. "
                       "Use --debug for more info.")
    cells = [[_cell(row.get(h)) for h in headers] for row in rows]
    widths = [max([len(h) + 2] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells)]) + "\n"


def _tsv_value(value: Any) -> str:
    if isinstance(value, list):
        return str(len(value))
    if isinstance(value, dict):
        return ""  # keeps the column count when some rows have an object there
    return value if isinstance(value, str) else str(value)


def _tsv(items: list[Any]) -> str:
    """knack's _TsvOutput: one line per item, dict values in key order (insertion order after --query)."""
    buf = io.StringIO()
    for item in items:
        if isinstance(item, OrderedDict):
            values = list(item.values())
        elif isinstance(item, dict):
            values = [v for _, v in sorted(item.items())]
        elif isinstance(item, list):
            values = item
        elif isinstance(item, bool):
            values = [str(item).lower()]
        else:
            values = [item]
        buf.write("\t".join(_tsv_value(v) for v in values) + "\n")
    return buf.getvalue()


# -- messages on stderr ---------------------------------------------------------------------------

class CLIError(Exception):
    """A failure the user can act on; printed as `ERROR: <message>`, exit code 1 (az's CLIError)."""

    exit_code = 1


def _color_enabled(stream: TextIO | None = None) -> bool:
    if "NO_COLOR" in os.environ:
        return False
    return sys.stdout.isatty() and sys.stderr.isatty() and (stream is None or stream is sys.stdout)


_COLORS = {"error": "\x1b[91m", "warning": "\x1b[33m"}
_quiet = False  # --only-show-errors


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def _log(level: str, message: str) -> None:
    if _color_enabled():
        sys.stderr.write(f"{_COLORS[level]}{message}\x1b[0m\n")
    else:
        sys.stderr.write(f"{level.upper()}: {message}\n")
    sys.stderr.flush()


def error(message: str) -> None:
    _log("error", message)


def warning(message: str) -> None:
    if not _quiet:
        _log("warning", message)


class NoTTY(Exception):
    """A prompt was needed but stdin is not a terminal (knack's NoTTYException)."""


def prompt_y_n(message: str, default: str | None = None) -> bool:
    """knack's prompt_y_n: `<message> (y/n): ` until the answer is y or n (or empty, with a default)."""
    if not sys.stdin.isatty():
        raise NoTTY()
    y, n = ("Y" if default == "y" else "y"), ("N" if default == "n" else "n")
    while True:
        answer = input(f"{message} ({y}/{n}): ").strip().lower()
        if answer in ("y", "n"):
            return answer == "y"
        if default and not answer:
            return default == "y"


def confirm(yes: bool, message: str = "Are you sure you want to perform this operation?") -> None:
    """az's `confirmation=True`: prompt unless --yes; without a terminal, warn and cancel."""
    if yes:
        return
    try:
        confirmed = prompt_y_n(message)
    except NoTTY:
        warning("Unable to prompt for confirmation as no tty available. Use --yes.")
        confirmed = False
    if not confirmed:
        raise CLIError("Operation cancelled.")


class Spinner:
    """The indicator az shows on stderr while it waits for a long-running operation
    (humanfriendly's spinner, label "Running"), drawn only on a terminal."""

    STATES = "-\\|/"
    INTERVAL = 0.2

    def __init__(self, stream: TextIO | None = None, label: str = "Running"):
        self.stream = stream or sys.stderr
        self.label = label
        self.count = 0
        self.shown = False

    def sleep(self, seconds: float) -> None:
        """Wait `seconds`, turning the spinner meanwhile."""
        end = time.monotonic() + seconds
        while True:
            self.step()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(self.INTERVAL, left))

    def step(self) -> None:
        if not self.stream.isatty():
            return
        state = self.STATES[self.count % len(self.STATES)]
        self.stream.write(f"\r\x1b[K {state} {self.label} ..\r")
        self.stream.flush()
        self.count += 1
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False
