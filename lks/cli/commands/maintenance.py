"""`lks aks maintenanceconfiguration add|update|list|show|delete`: a cluster's planned maintenance
windows through the `maintenanceConfigurations` API, shaped like `az aks maintenanceconfiguration`
(azure-cli `command_modules/acs/custom.py` `aks_maintenanceconfiguration_*` and
`maintenanceconfiguration.py`): `default` from `--weekday`/`--start-hour` or a weekly
`--schedule-type`, the `aksManaged*` configurations from `--schedule-type` and its options, or
any of them from `--config-file`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from lks.cli import commands, output
from lks.cli.client import Client

NAMES = ("default", "aksManagedAutoUpgradeSchedule", "aksManagedNodeOSUpgradeSchedule")
DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
SCHEDULE_TYPES = ("Daily", "Weekly", "AbsoluteMonthly", "RelativeMonthly")
WEEK_INDEXES = ("First", "Second", "Third", "Fourth", "Last")
_LIST_HINT = "use 'aks maintenanceconfiguration list' to get current list of maitenance configurations"  # az's spelling


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    group = sub.add_parser("maintenanceconfiguration", help="Commands to manage maintenance configurations in "
                           "managed Kubernetes cluster.", description="Commands to manage maintenance configurations "
                           "in managed Kubernetes cluster.")
    cmds = group.add_subparsers(dest="maintenance_command", required=True, metavar="<command>")

    def config(p: argparse.ArgumentParser, *, name: bool = True) -> None:
        commands.resource_group(p)
        p.add_argument("--cluster-name", required=True, help="The cluster name.")
        if name:
            p.add_argument("--name", "-n", dest="config_name", required=True,
                           help="The config name: default, aksManagedAutoUpgradeSchedule or "
                                "aksManagedNodeOSUpgradeSchedule.")

    for verb, func, text in (("add", add, "Add a maintenance configuration in managed Kubernetes cluster."),
                             ("update", update, "Update a maintenance configuration of a managed Kubernetes "
                              "cluster.")):
        p = cmds.add_parser(verb, parents=[common], help=text)
        config(p)
        p.add_argument("--config-file", help="The maintenance configuration json file.")
        p.add_argument("--weekday", type=_choice(DAYS), help="Weekday on which maintenance can happen "
                       "(default configuration only), e.g. Monday.")
        p.add_argument("--start-hour", type=_int_in("--start-hour", 0, 23),
                       help="Maintenance start hour of 1 hour window on the weekday, e.g. 1 means 1:00am - 2:00am.")
        p.add_argument("--schedule-type", type=_choice(SCHEDULE_TYPES), help="Choose either 'Daily', 'Weekly', "
                       "'AbsoluteMonthly' or 'RelativeMonthly' for your maintenance schedule.")
        p.add_argument("--interval-days", type=int, help="The number of days between each set of occurrences for "
                       "Daily schedule type.")
        p.add_argument("--interval-weeks", type=int, help="The number of weeks between each set of occurrences for "
                       "Weekly schedule type.")
        p.add_argument("--interval-months", type=int, help="The number of months between each set of occurrences "
                       "for AbsoluteMonthly or RelativeMonthly schedule type.")
        p.add_argument("--day-of-week", type=_choice(DAYS), help="Specify on which day of the week the maintenance "
                       "occurs for Weekly or RelativeMonthly schedule type.")
        p.add_argument("--day-of-month", type=int, help="Specify on which date of the month the maintenance occurs "
                       "for AbsoluteMonthly schedule type.")
        p.add_argument("--week-index", type=_choice(WEEK_INDEXES), help="Specify on which instance of the weekday "
                       "specified in --day-of-week the maintenance occurs for RelativeMonthly schedule type.")
        p.add_argument("--duration", dest="duration_hours", type=int, help="The length of maintenance window. The "
                       "value ranges from 4 to 24 hours.")
        p.add_argument("--utc-offset", help="The UTC offset in format +/-HH:mm. For example, '+05:30' for IST and "
                       "'-07:00' for PST. If not specified, the default is '+00:00'.")
        p.add_argument("--start-date", help="The date the maintenance configuration activates. If not specified, "
                       "the maintenance window will be active right away.")
        p.add_argument("--start-time", help="The start time of the maintenance window. Accepted values are from "
                       "'00:00' to '23:59'. '--utc-offset' applies to this field.")
        p.set_defaults(func=func)

    p = cmds.add_parser("list", parents=[common], help="List maintenance configurations in managed Kubernetes "
                        "cluster.")
    config(p, name=False)
    p.set_defaults(func=list_)
    p = cmds.add_parser("show", parents=[common], help="Show the details of a maintenance configuration in managed "
                        "Kubernetes cluster.")
    config(p)
    p.set_defaults(func=show)
    p = cmds.add_parser("delete", parents=[common], help="Delete a maintenance configuration in managed Kubernetes "
                        "cluster.")
    config(p)
    p.set_defaults(func=delete)


def _choice(allowed: tuple[str, ...]):
    """az's enum arguments: any case, printed as the service spells them."""
    def parse(value: str) -> str:
        for a in allowed:
            if value.lower() == a.lower():
                return a
        raise argparse.ArgumentTypeError(f"invalid choice: '{value}' (choose from {', '.join(allowed)})")
    return parse


def _int_in(flag: str, low: int, high: int):
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = low - 1
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{flag} must be an integer from {low} to {high}, not '{value}'")
        return number
    return parse


def _path(args: argparse.Namespace, client: Client, name: str = "") -> str:
    path = client.cluster_path(args.resource_group, args.cluster_name) + "/maintenanceConfigurations"
    return f"{path}/{name}" if name else path


def _names(args: argparse.Namespace, client: Client) -> list[str]:
    return [c["name"] for c in client.list(_path(args, client))]


def list_(args: argparse.Namespace, client: Client) -> Any:
    return output.from_arm(client.list(_path(args, client)))


def show(args: argparse.Namespace, client: Client) -> Any:
    output.warning(f"resource_group_name: {args.resource_group}, cluster_name: {args.cluster_name}, "
                   f"config_name: {args.config_name} ")
    return output.from_arm(client.get(_path(args, client, args.config_name)))


def delete(args: argparse.Namespace, client: Client) -> None:
    output.warning(f"resource_group_name: {args.resource_group}, cluster_name: {args.cluster_name}, "
                   f"config_name: {args.config_name} ")
    client.delete(_path(args, client, args.config_name), no_wait=False)


def add(args: argparse.Namespace, client: Client) -> Any:
    if args.config_name in _names(args, client):
        raise output.CLIError(f"Maintenance configuration '{args.config_name}' already exists, please try a different "
                              f"name, {_LIST_HINT}")
    return _put(args, client)


def update(args: argparse.Namespace, client: Client) -> Any:
    if args.config_name not in _names(args, client):
        raise output.CLIError(f"Maintenance configuration '{args.config_name}' doesn't exist.{_LIST_HINT}")
    return _put(args, client)


def _put(args: argparse.Namespace, client: Client) -> Any:
    body = _body(args)
    return output.from_arm(client.put(_path(args, client, args.config_name), body, no_wait=False))


def _body(args: argparse.Namespace) -> dict[str, Any]:
    """The configuration az builds from the arguments (`getMaintenanceConfiguration`)."""
    if args.config_file is not None:
        return _from_file(args.config_file)
    if args.config_name == NAMES[0] and args.schedule_type is None:
        if args.weekday is None or args.start_hour is None:
            raise output.CLIError("Please specify --weekday and --start-hour for default maintenance configuration, "
                                  "or use --config-file instead.")
        return {"properties": {"timeInWeek": [{"day": args.weekday, "hourSlots": [args.start_hour]}],
                               "notAllowedTime": []}}
    if args.config_name not in NAMES:
        raise output.CLIError(f"--config-name must be one of default, aksManagedAutoUpgradeSchedule or "
                              f"aksManagedNodeOSUpgradeSchedule, not {args.config_name}")
    if args.weekday is not None or args.start_hour is not None:
        raise output.CLIError("--weekday and --start-hour are only applicable to default maintenance configuration.")
    if args.config_name == NAMES[0] and (args.schedule_type != "Weekly" or (args.interval_weeks or 1) != 1):
        # AKS takes only a weekly window every week for `default` (API 2025-03-01 on), az checks it first
        raise output.CLIError("Only --schedule-type Weekly with --interval-weeks 1 is supported for default "
                              "maintenance configuration.")
    window: dict[str, Any] = {"schedule": _schedule(args)}
    if args.start_time is None:
        raise output.CLIError("Please specify --start-time for maintenance window.")
    if args.duration_hours is None:
        raise output.CLIError("Please specify --duration for maintenance window.")
    window["durationHours"] = args.duration_hours
    window["startTime"] = args.start_time
    if args.utc_offset is not None:
        window["utcOffset"] = args.utc_offset
    if args.start_date is not None:
        window["startDate"] = args.start_date
    return {"properties": {"maintenanceWindow": window}}


def _schedule(args: argparse.Namespace) -> dict[str, Any]:
    given = {"--interval-days": args.interval_days, "--interval-weeks": args.interval_weeks,
             "--interval-months": args.interval_months, "--day-of-week": args.day_of_week,
             "--day-of-month": args.day_of_month, "--week-index": args.week_index}
    kind = args.schedule_type
    needs, body, name = {
        "Daily": (("--interval-days",), {"intervalDays": args.interval_days}, "daily"),
        "Weekly": (("--interval-weeks", "--day-of-week"), {"intervalWeeks": args.interval_weeks,
                                                           "dayOfWeek": args.day_of_week}, "weekly"),
        "AbsoluteMonthly": (("--interval-months", "--day-of-month"), {"intervalMonths": args.interval_months,
                                                                      "dayOfMonth": args.day_of_month},
                            "absoluteMonthly"),
        "RelativeMonthly": (("--interval-months", "--day-of-week", "--week-index"),
                            {"intervalMonths": args.interval_months, "dayOfWeek": args.day_of_week,
                             "weekIndex": args.week_index}, "relativeMonthly"),
    }.get(kind, ((), {}, ""))
    if not name:
        raise output.CLIError("--schedule-type must be one of Daily, Weekly, AbsoluteMonthly or RelativeMonthly.")
    if any(given[flag] is None for flag in needs):
        raise output.CLIError(f"Please specify {_and(needs)} when using {_spaced(kind)} schedule.")
    # az's messages name a fixed list per schedule type (`construct*Schedule`)
    extra = {"Daily": ("--interval-weeks", "--interval-months", "--day-of-week", "--day-of-month", "--week-index"),
             "Weekly": ("--interval-months", "--day-of-month", "--week-index"),
             "AbsoluteMonthly": ("--interval-days", "--interval-weeks", "--day-of-week", "--week-index"),
             "RelativeMonthly": ("--interval-days", "--interval-weeks", "--day-of-month")}[kind]
    if any(v is not None for flag, v in given.items() if flag not in needs):
        raise output.CLIError(f"{_and(extra)} cannot be used for {kind} schedule.")
    return {name: body}


def _and(flags: tuple[str, ...]) -> str:
    return flags[0] if len(flags) == 1 else ", ".join(flags[:-1]) + " and " + flags[-1]


def _spaced(kind: str) -> str:
    return {"AbsoluteMonthly": "absolute monthly", "RelativeMonthly": "relative monthly"}.get(kind, kind.lower())


def _from_file(path: str) -> dict[str, Any]:
    """`--config-file`: the configuration as JSON, with or without `properties` around it (az's
    older docs show the flattened form, with `hour_slots`)."""
    try:
        with open(path, encoding="utf-8") as f:
            body = json.load(f)
    except OSError as err:
        raise output.CLIError(f"Failed to read file {path}: {err}") from None
    except ValueError as err:
        raise output.CLIError(f"Failed to parse file {path} with exception:\n{err}") from None
    if not isinstance(body, dict):
        raise output.CLIError(f"Failed to parse file {path}: a JSON object was expected.")
    props = body.get("properties") if isinstance(body.get("properties"), dict) else body
    for slot in props.get("timeInWeek") or []:
        if isinstance(slot, dict) and "hour_slots" in slot:
            slot["hourSlots"] = slot.pop("hour_slots")
    return {"properties": props}
