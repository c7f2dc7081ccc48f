"""The Azure RBAC operation a management request performs, and the scope it performs it on,
derived from the route that serves it as ARM derives them: the resource provider namespace after
the path's last `providers` (`Microsoft.Resources` for subscriptions and groups), the resource
types of the path, and a verb from the method (`read`, `write`, `delete`, or the action's name
followed by `/action` for a POST). So `POST …/managedClusters/c1/listClusterUserCredential` is
`Microsoft.ContainerService/managedClusters/listClusterUserCredential/action` over the cluster.

`lks.arm.app` asks `lks.identity.rbac` whether the caller may; a list (a GET of a collection)
is not refused but filtered by its handler, once the caller may read something at or below it.
"""

from __future__ import annotations

from dataclasses import dataclass

SUBSCRIPTION_READ = "Microsoft.Resources/subscriptions/read"
_VERBS = {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}
_CANONICAL = {"resourcegroups": "resourceGroups"}  # templates spell a few types in lower case
# where Azure's operation name is not the one the path gives
_RENAMED = {
    "microsoft.containerservice/managedclusters/agentpools/upgradenodeimageversion/action":
        "Microsoft.ContainerService/managedClusters/agentPools/upgradeNodeImageVersion/write",
    # policy state queries are POSTs that Azure counts as reads (a Reader sees compliance)
    "microsoft.policyinsights/policystates/queryresults/action": "Microsoft.PolicyInsights/policyStates/queryResults/read",
    "microsoft.policyinsights/policystates/summarize/action": "Microsoft.PolicyInsights/policyStates/summarize/read",
}
# polled by whoever started an operation (or a run command), with an id only it was given: never refused
_UNCHECKED_TYPES = ("operations", "operationresults", "operationstatuses", "commandresults")


@dataclass(frozen=True, slots=True)
class Operation:
    action: str  # e.g. Microsoft.ContainerService/managedClusters/read
    scope: str  # the resource id the action is over, as the request wrote it
    listing: bool  # a GET of a collection: filtered, not refused


def of(template: str, method: str, path: str) -> Operation | None:
    """The operation of `method` on `path`, served by the route `template`; None for requests
    that need no role (tenant-level reads such as provider operations, operation polling)."""
    t = [s for s in template.split("/") if s]
    p = [s for s in path.split("/") if s]
    if t and t[0] == "{scope}":  # a route at any scope: the scope's segments as the request wrote them
        t = p[:len(p) - len(t) + 1] + t[1:]
    if not t or t[0].lower() != "subscriptions" or len(t) < 2:
        return None
    lower = [s.lower() for s in t]
    if "providers" in lower:
        at = len(lower) - 1 - lower[::-1].index("providers")
        namespace, rest, base = t[at + 1] if at + 1 < len(t) else "", t[at + 2:], at + 2
    else:
        namespace, rest, base = "Microsoft.Resources", t, 0
    if not namespace:
        return None
    types = [_CANONICAL.get(s.lower(), s) for s in rest[0::2]]
    if any(ty.lower() in _UNCHECKED_TYPES for ty in types[-1:]):
        return None
    whole = len(rest) % 2 == 0  # ends with a name: one resource
    if whole:
        verb = _VERBS.get(method, "action")
        scope_len = len(p)
    elif method == "POST":  # …/{name}/listClusterUserCredential: an action over the resource
        types, verb = types[:-1], f"{types[-1]}/action"
        scope_len = len(p) - 1
    else:
        verb = "read" if method in ("GET", "HEAD") else _VERBS.get(method, "action")
        scope_len = len(p) - 1
    action = "/".join([namespace, *types, verb])
    action = _RENAMED.get(action.lower(), action)
    scope = "/" + "/".join(p[:max(scope_len, 0)]) if scope_len > 0 else "/"
    if base and scope_len <= base:  # a collection right under `providers/Namespace`: over what holds it
        scope = "/" + "/".join(p[:base - 2]) if base > 2 else "/"
    return Operation(action, scope, listing=not whole and method in ("GET", "HEAD"))
