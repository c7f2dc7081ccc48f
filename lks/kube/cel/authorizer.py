"""The `authorizer` variable of admission policies (`library/authz.go`): checks are built in
CEL (`authorizer.group("apps").resource("deployments").namespace(ns).check("create")`,
`authorizer.path("/healthz").check("get")`, `authorizer.serviceAccount(ns, name)...`,
`authorizer.requestResource.check(verb)`) and answered by the caller's function.

The cluster's authorizer is asynchronous and the interpreter is not, so a check whose answer is
not known yet stops the evaluation (`Pending`); `Program.run_async` asks the caller's function,
remembers the decision in the `Authorizer` and evaluates again (expressions have no side
effects, so only the time of the repeated part is lost). A synchronous function is simply called.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from lks.kube.cel.library import EvalError, function, opaque

ALLOW, DENY, NO_OPINION = "Allow", "Deny", "NoOpinion"


@dataclass(frozen=True, slots=True)
class Check:
    """What is asked: a resource request (group, resource, ...) or a non-resource `path`, for the
    request's user or, after `serviceAccount(ns, name)`, for that service account."""

    verb: str = ""
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""
    service_account: tuple[str, str] | None = None  # (namespace, name)

    @property
    def resource_request(self) -> bool:
        return not self.path


@dataclass(frozen=True, slots=True)
class Decision:
    decision: str  # ALLOW, DENY or NO_OPINION
    reason: str = ""
    error: str = ""  # the authorizer failed: the check is errored, not allowed


CheckFunction = Callable[[Check], "Decision | Awaitable[Decision]"]


class Pending(EvalError):
    def __init__(self, check: Check):
        super().__init__("authorizer check not resolved")
        self.check = check


class Authorizer:
    """The value to pass as `authorizer` in an activation."""

    def __init__(self, check: CheckFunction, *, request_resource: Check | None = None):
        self.check = check
        self.request_resource = request_resource  # the request's own group/resource/namespace/name
        self.decisions: dict[Check, Decision] = {}

    def value(self) -> dict[str, Any]:
        out = opaque("authorizer", sa=None)
        if self.request_resource is not None:
            out["requestResource"] = _encode("resourcecheck", self.request_resource)
        return out

    def decide(self, check: Check) -> Decision:
        known = self.decisions.get(check)
        if known is not None:
            return known
        result = self.check(check)
        if inspect.isawaitable(result):
            _close(result)
            raise Pending(check)
        self.decisions[check] = result
        return result

    async def resolve(self, check: Check) -> None:
        result = self.check(check)
        self.decisions[check] = await result if inspect.isawaitable(result) else result


def _close(awaitable: Any) -> None:
    if inspect.iscoroutine(awaitable):
        awaitable.close()  # not awaited here: resolve() asks again


current: contextvars.ContextVar[Authorizer | None] = contextvars.ContextVar("cel_authorizer", default=None)


def _encode(kind: str, check: Check) -> dict[str, Any]:
    sa = list(check.service_account) if check.service_account else None
    return opaque(kind, sa=sa, group=check.group, resource=check.resource, subresource=check.subresource,
                  namespace=check.namespace, name=check.name, path=check.path)


def _decode(value: dict[str, Any]) -> Check:
    sa = value.get("sa")
    return Check(group=value.get("group", ""), resource=value.get("resource", ""),
                 subresource=value.get("subresource", ""), namespace=value.get("namespace", ""),
                 name=value.get("name", ""), path=value.get("path", ""), service_account=tuple(sa) if sa else None)


@function("serviceAccount", "authorizer")
def service_account(authz: dict[str, Any], namespace: str, name: str) -> dict[str, Any]:
    return opaque("authorizer", sa=[namespace, name])


@function("path", "authorizer")
def path(authz: dict[str, Any], p: str) -> dict[str, Any]:
    return _encode("pathcheck", replace(_decode(authz), path=p))


@function("group", "authorizer")
def group(authz: dict[str, Any], g: str) -> dict[str, Any]:
    return _encode("groupcheck", replace(_decode(authz), group=g))


@function("resource", "groupcheck")
def resource(gc: dict[str, Any], r: str) -> dict[str, Any]:
    return _encode("resourcecheck", replace(_decode(gc), resource=r))


def _setter(field: str) -> Callable[[dict[str, Any], str], dict[str, Any]]:
    def set_(rc: dict[str, Any], value: str) -> dict[str, Any]:
        return _encode("resourcecheck", replace(_decode(rc), **{field: value}))
    return set_


for _field in ("subresource", "namespace", "name"):
    function(_field, "resourcecheck")(_setter(_field))


def _check(c: dict[str, Any], verb: str) -> dict[str, Any]:
    authz = current.get()
    if authz is None:
        raise EvalError("no authorizer in this evaluation")
    d = authz.decide(replace(_decode(c), verb=verb))
    return opaque("decision", allowed=d.decision == ALLOW and not d.error, reason=d.reason, error=d.error)


function("check", "resourcecheck")(_check)
function("check", "pathcheck")(_check)


@function("allowed", "decision")
def allowed(d: dict[str, Any]) -> bool:
    return d["allowed"]


@function("reason", "decision")
def reason(d: dict[str, Any]) -> str:
    return d["reason"]


@function("errored", "decision")
def errored(d: dict[str, Any]) -> bool:
    return bool(d["error"])


@function("error", "decision")
def error(d: dict[str, Any]) -> str:
    return d["error"]
