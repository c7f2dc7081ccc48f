"""Defaulting of built-in objects, as kube-apiserver applies it on create and update.

A client's object comes back from kube-apiserver with every field upstream defaults filled
in: the `SetDefaults_*` functions of `pkg/apis/<group>/<version>/defaults.go`, the declarative
`+default` markers, both applied recursively by the generated `zz_generated.defaults.go` (so a
Deployment's pod template gets a Pod's container defaults), and the few defaults that the
admission chain, registry strategies and Service REST storage add on create. `apply` is that
step for one object, a plain JSON dict, mutated in place; validation comes after it.

Defaults only fill what is unset, so `apply` is idempotent. Upstream defaults twice: when it
decodes the request and again when it decodes the object it has just stored, after the
strategy ran. Calling `apply` on the decoded body and once more after `prepare_for_create`
(when the object has its uid) reproduces that: for example a Pod's `status` and a Job's
generated selector come from the second pass. Feature-gated defaults follow the gate defaults
of Kubernetes 1.36; each module's docstring names the gates it depends on.

One module per API area holds a table `DEFAULTERS` of (group, version, kind) to function;
`pods` holds the PodSpec walk that the workload kinds share.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lks.kube.defaulting import apiserver, core, networking, rbac, scheduling, storage, workloads

Defaulter = Callable[[dict[str, Any]], None]

_DEFAULTERS: dict[tuple[str, str, str], Defaulter] = {
    **core.DEFAULTERS,
    **workloads.DEFAULTERS,
    **networking.DEFAULTERS,
    **apiserver.DEFAULTERS,
    **rbac.DEFAULTERS,
    **scheduling.DEFAULTERS,
    **storage.DEFAULTERS,
}

__all__ = ["apply", "defaulted_kinds"]


def apply(group: str, version: str, kind: str, obj: dict[str, Any]) -> None:
    """Fill in upstream's defaults for a `group/version` `kind` object; unknown kinds are left
    alone (CRD objects get their schema defaults elsewhere)."""
    defaulter = _DEFAULTERS.get((group, version, kind))
    if defaulter is not None and isinstance(obj, dict):
        defaulter(obj)


def defaulted_kinds() -> frozenset[tuple[str, str, str]]:
    """The (group, version, kind) triples that have defaults."""
    return frozenset(_DEFAULTERS)
