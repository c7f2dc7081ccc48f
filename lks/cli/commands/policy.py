"""`lks policy definition|set-definition|assignment|state …`: Azure Policy as `az policy` manages
it (azure-cli `command_modules/resource`, `policyinsights`): definitions by name or id (a custom one
at the subscription first, then the built-in), assignments at the subscription, a group (`-g`) or
any `--scope`, with `--params` as JSON or `@file`, and compliance states over a scope. Results are
flattened as az prints them; the management API (`lks.arm.policy`) checks everything.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lks.cli import commands, output
from lks.cli.client import Client, ServiceError
from lks.cli.output import CLIError

API = "2024-05-01"  # Microsoft.Authorization policy resources, as az's policy commands send it
INSIGHTS_API = "2019-10-01"  # Microsoft.PolicyInsights
_AUTH = "/providers/Microsoft.Authorization"


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    policy = sub.add_parser("policy", help="Manage resource policies.", description="Manage resource policies.")
    groups = policy.add_subparsers(dest="subgroup", required=True, metavar="<group>")

    definition = groups.add_parser("definition", help="Manage resource policy definitions.")
    cmds = definition.add_subparsers(dest="subcommand", required=True, metavar="<command>")
    p = cmds.add_parser("list", parents=[common], help="List policy definitions.")
    p.set_defaults(func=definition_list)
    p = cmds.add_parser("show", parents=[common], help="Show a policy definition.")
    p.add_argument("--name", "-n", required=True, help="The name of the policy definition.")
    p.set_defaults(func=definition_show)
    p = cmds.add_parser("create", parents=[common], help="Create a policy definition.")
    p.add_argument("--name", "-n", required=True, help="Name of the new policy definition.")
    p.add_argument("--rules", required=True, help="Policy rules in JSON format, or a path to a file containing them.")
    p.add_argument("--params", help="JSON formatted string or a path to a file with parameter definitions.")
    p.add_argument("--display-name", help="Display name of policy definition.")
    p.add_argument("--description", help="Description of policy definition.")
    p.add_argument("--mode", "-m", default="Indexed", help="Mode of the policy definition, e.g. All, Indexed, "
                   "Microsoft.Kubernetes.Data.")
    p.add_argument("--metadata", nargs="*", metavar="KEY=VALUE", help="Metadata in space-separated key=value pairs.")
    p.set_defaults(func=definition_create)
    p = cmds.add_parser("delete", parents=[common], help="Delete a policy definition.")
    p.add_argument("--name", "-n", required=True, help="The name of the policy definition.")
    p.set_defaults(func=definition_delete)

    sets = groups.add_parser("set-definition", help="Manage resource policy set definitions.")
    cmds = sets.add_subparsers(dest="subcommand", required=True, metavar="<command>")
    p = cmds.add_parser("list", parents=[common], help="List policy set definitions.")
    p.set_defaults(func=set_list)
    p = cmds.add_parser("show", parents=[common], help="Show a policy set definition.")
    p.add_argument("--name", "-n", required=True, help="The name of the policy set definition.")
    p.set_defaults(func=set_show)
    p = cmds.add_parser("create", parents=[common], help="Create a policy set definition.")
    p.add_argument("--name", "-n", required=True, help="Name of the new policy set definition.")
    p.add_argument("--definitions", required=True, help="Policy definitions in JSON format, or a path to a file "
                   "containing JSON rules.")
    p.add_argument("--params", help="JSON formatted string or a path to a file or uri with parameter definitions.")
    p.add_argument("--display-name", help="Display name of policy set definition.")
    p.add_argument("--description", help="Description of policy set definition.")
    p.add_argument("--definition-groups", help="Policy definition groups in JSON format, or a path to a file "
                   "containing JSON rules.")
    p.add_argument("--metadata", nargs="+", help="Metadata in space-separated key=value pairs.")
    p.set_defaults(func=set_create)
    p = cmds.add_parser("delete", parents=[common], help="Delete a policy set definition.")
    p.add_argument("--name", "-n", required=True, help="The name of the policy set definition.")
    p.set_defaults(func=set_delete)

    assignment = groups.add_parser("assignment", help="Manage resource policy assignments.")
    cmds = assignment.add_subparsers(dest="subcommand", required=True, metavar="<command>")

    def scope(p: argparse.ArgumentParser) -> None:
        commands.resource_group(p, required=False)
        p.add_argument("--scope", help="Scope to which this policy assignment applies.")

    def assigned(p: argparse.ArgumentParser, policy_help: str) -> None:  # what an assignment applies, and where
        p.add_argument("--policy", help=policy_help)
        p.add_argument("--policy-set-definition", "-d", help="Name or id of the policy set definition.")
        p.add_argument("--params", "-p", help="JSON formatted string or a path to a file with "
                       "parameter values of the policy rule.")
        p.add_argument("--enforcement-mode", "-e", choices=["Default", "DoNotEnforce"], default="Default",
                       help="Enforcement mode of the policy assignment.")
        p.add_argument("--not-scopes", nargs="*", help="Space-separated scopes where the policy assignment does "
                       "not apply.")
        scope(p)

    p = cmds.add_parser("create", parents=[common], help="Create a resource policy assignment.")
    p.add_argument("--name", "-n", help="Name of the new policy assignment (default: a random name).")
    p.add_argument("--display-name", help="Display name of the policy assignment.")
    p.add_argument("--description", help="Description of the policy assignment.")
    assigned(p, "Name or id of the policy definition.")
    p.set_defaults(func=assignment_create)
    p = cmds.add_parser("what-if", parents=[common], help="List the live objects in every cluster in scope that an "
                        "assignment would refuse (lks only).",
                        description="For an existing assignment (--name alone), or the one --policy or "
                        "--policy-set-definition with --params would create, list per cluster in scope with the "
                        "azure-policy add-on the live Kubernetes objects in violation: those Deny would refuse.")
    p.add_argument("--name", "-n", required=True, help="Name of the policy assignment.")
    assigned(p, "Name or id of the policy definition (a proposed assignment).")
    p.set_defaults(func=assignment_what_if)
    p = cmds.add_parser("list", parents=[common], help="List resource policy assignments.")
    scope(p)
    p.add_argument("--disable-scope-strict-match", action="store_true",
                   help="Include policy assignments either inherited from parent scopes or at child scopes.")
    p.set_defaults(func=assignment_list)
    for verb, func, text in (("show", assignment_show, "Show a resource policy assignment."),
                             ("delete", assignment_delete, "Delete a resource policy assignment.")):
        p = cmds.add_parser(verb, parents=[common], help=text)
        p.add_argument("--name", "-n", required=True, help="Name of the policy assignment.")
        scope(p)
        p.set_defaults(func=func)

    state = groups.add_parser("state", help="Manage policy compliance states.")
    cmds = state.add_subparsers(dest="subcommand", required=True, metavar="<command>")
    for verb, func, text in (("list", state_list, "List policy compliance states."),
                             ("summarize", state_summarize, "Summarize policy compliance states.")):
        p = cmds.add_parser(verb, parents=[common], help=text)
        commands.resource_group(p, required=False)
        p.add_argument("--resource", help="Resource id, or the name of a managed cluster in --resource-group.")
        p.add_argument("--filter", help="Filter expression using OData notation.")
        p.add_argument("--top", type=int, help="Maximum number of records to return.")
        if verb == "list":
            p.add_argument("--expand", help="Expand expression using OData notation, e.g. components.")
            p.add_argument("--select", help="Select expression using OData notation.")
            p.add_argument("--order-by", dest="order_by", help="Ordering expression using OData notation.")
        p.set_defaults(func=func)


def _json_arg(raw: str | None, what: str) -> Any:
    """az's JSON-or-file arguments: a JSON string, `@path`, or a path to a file."""
    if raw is None:
        return None
    text = raw
    path = Path(raw[1:] if raw.startswith("@") else raw).expanduser()
    if raw.startswith("@") or (not raw.lstrip().startswith(("{", "[")) and path.is_file()):
        try:
            text = path.read_text()
        except OSError as err:
            raise CLIError(f"Unable to read {what} file '{path}': {err.strerror}") from None
    try:
        return json.loads(text)
    except ValueError:
        raise CLIError(f"Failed to parse {what} JSON: {raw}") from None


def _sub_path(client: Client, collection: str, name: str = "") -> str:
    path = f"/subscriptions/{client.subscription}{_AUTH}/{collection}"
    return f"{path}/{name}" if name else path


def _find(client: Client, collection: str, name_or_id: str) -> dict:
    """A definition by id, or by name: the subscription's custom one, else the built-in (az's lookup)."""
    if name_or_id.startswith("/"):
        return client.get(name_or_id, API)
    try:
        return client.get(_sub_path(client, collection, name_or_id), API)
    except ServiceError as err:
        if err.status != 404:
            raise
    return client.get(f"{_AUTH}/{collection}/{name_or_id}", API)


# -- definitions ---------------------------------------------------------------------------------


def definition_list(args: argparse.Namespace, client: Client) -> Any:
    return output.from_arm(client.list(_sub_path(client, "policyDefinitions"), API))


def definition_show(args: argparse.Namespace, client: Client) -> Any:
    return output.from_arm(_find(client, "policyDefinitions", args.name))


def definition_create(args: argparse.Namespace, client: Client) -> Any:
    rules = _json_arg(args.rules, "rules")
    if isinstance(rules, dict) and "policyRule" in rules:  # a whole definition's properties, as az takes them
        rules = rules["policyRule"]
    props: dict[str, Any] = {"policyType": "Custom", "mode": args.mode, "policyRule": rules}
    if args.params is not None:
        props["parameters"] = _json_arg(args.params, "params")
    for key, value in (("displayName", args.display_name), ("description", args.description)):
        if value is not None:
            props[key] = value
    if args.metadata:
        props["metadata"] = dict(item.partition("=")[::2] for item in args.metadata)
    doc = client.put(_sub_path(client, "policyDefinitions", args.name), {"properties": props}, no_wait=False,
                     api_version=API)
    return output.from_arm(doc)


def definition_delete(args: argparse.Namespace, client: Client) -> None:
    client.delete(_sub_path(client, "policyDefinitions", args.name), no_wait=False, api_version=API)


# -- set definitions -----------------------------------------------------------------------------


def set_list(args: argparse.Namespace, client: Client) -> Any:
    return output.from_arm(client.list(_sub_path(client, "policySetDefinitions"), API))


def set_show(args: argparse.Namespace, client: Client) -> Any:
    return output.from_arm(_find(client, "policySetDefinitions", args.name))


def set_create(args: argparse.Namespace, client: Client) -> Any:
    """az's `policy set-definition create`: the members as given (ids, reference ids, parameters)."""
    definitions = _json_arg(args.definitions, "definitions")
    props: dict[str, Any] = {"policyDefinitions": definitions}
    if args.params is not None:
        props["parameters"] = _json_arg(args.params, "params")
    if args.definition_groups is not None:
        props["policyDefinitionGroups"] = _json_arg(args.definition_groups, "definition groups")
    for key, value in (("displayName", args.display_name), ("description", args.description)):
        if value is not None:
            props[key] = value
    if args.metadata:
        props["metadata"] = dict(item.partition("=")[::2] for item in args.metadata)
    doc = client.put(_sub_path(client, "policySetDefinitions", args.name), {"properties": props}, no_wait=False,
                     api_version=API)
    return output.from_arm(doc)


def set_delete(args: argparse.Namespace, client: Client) -> None:
    client.delete(_sub_path(client, "policySetDefinitions", args.name), no_wait=False, api_version=API)


# -- assignments ---------------------------------------------------------------------------------


def _scope(args: argparse.Namespace, client: Client) -> str:
    if args.scope and args.resource_group:
        raise CLIError(f"Resource group '{args.resource_group}' is redundant because 'scope' is supplied")
    if args.scope:
        return args.scope.rstrip("/")
    if args.resource_group:
        return f"/subscriptions/{client.subscription}/resourceGroups/{args.resource_group}"
    return f"/subscriptions/{client.subscription}"


def _params(raw: str | None) -> dict | None:
    """`--params`: `{"name": {"value": …}}`, or `{"name": …}` whose values az wraps."""
    value = _json_arg(raw, "params")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise CLIError("--params must be a JSON object")
    return {k: v if isinstance(v, dict) and set(v) == {"value"} else {"value": v} for k, v in value.items()}


def assignment_create(args: argparse.Namespace, client: Client) -> Any:
    if bool(args.policy) == bool(args.policy_set_definition):
        raise CLIError("usage error: --policy NAME_OR_ID | --policy-set-definition NAME_OR_ID")
    scope = _scope(args, client)
    name = args.name or _random_name()
    props = _assignment_properties(args, client, name)
    if args.description is not None:
        props["description"] = args.description
    doc = client.put(f"{scope}{_AUTH}/policyAssignments/{name}", {"properties": props}, no_wait=False,
                     api_version=API)
    return output.from_arm(doc)


def _assignment_properties(args: argparse.Namespace, client: Client, name: str) -> dict[str, Any]:
    target = _find(client, "policyDefinitions", args.policy) if args.policy else \
        _find(client, "policySetDefinitions", args.policy_set_definition)
    props: dict[str, Any] = {"policyDefinitionId": target["id"], "enforcementMode": args.enforcement_mode,
                             "displayName": getattr(args, "display_name", None) or name}
    if args.not_scopes:
        props["notScopes"] = [s for item in args.not_scopes for s in item.split() if s]
    params = _params(args.params)
    if params is not None:
        props["parameters"] = params
    return props


def assignment_what_if(args: argparse.Namespace, client: Client) -> Any:
    """POST `{assignmentId}/whatIf`: the stored assignment's, or with --policy / -d a proposed one's."""
    if args.policy and args.policy_set_definition:
        raise CLIError("usage error: --policy NAME_OR_ID | --policy-set-definition NAME_OR_ID")
    body = {"properties": _assignment_properties(args, client, args.name)} \
        if args.policy or args.policy_set_definition else None
    path = f"{_scope(args, client)}{_AUTH}/policyAssignments/{args.name}/whatIf"
    return (client.request("POST", path, body=body, api_version=API).body or {}).get("value") or []


def _random_name() -> str:
    import uuid

    return uuid.uuid4().hex[:24]


def assignment_list(args: argparse.Namespace, client: Client) -> Any:
    scope = _scope(args, client)
    items = client.list(f"{scope}{_AUTH}/policyAssignments", API)
    if not args.disable_scope_strict_match:  # az shows the assignments made at the scope itself
        items = [a for a in items if a["properties"]["scope"].lower() == scope.lower()]
    return output.from_arm(items)


def assignment_show(args: argparse.Namespace, client: Client) -> Any:
    return output.from_arm(client.get(f"{_scope(args, client)}{_AUTH}/policyAssignments/{args.name}", API))


def assignment_delete(args: argparse.Namespace, client: Client) -> None:
    client.delete(f"{_scope(args, client)}{_AUTH}/policyAssignments/{args.name}", no_wait=False, api_version=API)


# -- compliance states ---------------------------------------------------------------------------


def _state_scope(args: argparse.Namespace, client: Client) -> str:
    if args.resource:
        if args.resource.startswith("/"):
            return args.resource.rstrip("/")
        if not args.resource_group:
            raise CLIError("usage error: --resource ID | --resource NAME --resource-group NAME")
        return client.cluster_path(args.resource_group, args.resource)
    if args.resource_group:
        return f"/subscriptions/{client.subscription}/resourceGroups/{args.resource_group}"
    return f"/subscriptions/{client.subscription}"


def _query(args: argparse.Namespace) -> dict[str, str]:
    query = {}
    if args.filter:
        query["$filter"] = args.filter
    if args.top is not None:
        query["$top"] = str(args.top)
    for key, value in (("$expand", "expand"), ("$select", "select"), ("$orderby", "order_by")):
        if getattr(args, value, None):
            query[key] = getattr(args, value)
    return query


def _odata(record: dict) -> dict:
    """A record as az prints the SDK's model of it: `@odata.id` as `odataId`, `@odata.context` as
    `odataContext`."""
    names = {"@odata.id": "odataId", "@odata.context": "odataContext"}
    return {names.get(k, k): v for k, v in record.items()}


def state_list(args: argparse.Namespace, client: Client) -> Any:
    path = f"{_state_scope(args, client)}/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults"
    body = client.request("POST", path, api_version=INSIGHTS_API, query=_query(args)).body or {}
    return [_odata(r) for r in body.get("value") or []]


def state_summarize(args: argparse.Namespace, client: Client) -> Any:
    path = f"{_state_scope(args, client)}/providers/Microsoft.PolicyInsights/policyStates/latest/summarize"
    body = client.request("POST", path, api_version=INSIGHTS_API, query=_query(args)).body or {}
    return _odata((body.get("value") or [{}])[0])
