"""Binding a pod to a node: `POST pods/<name>/binding` and the older `POST bindings` (upstream's
`BindingREST` and `LegacyBindingREST` in `pkg/registry/core/pod/storage`).

A binding sets `spec.nodeName` once, merges the Binding's annotations (and labels) into the
pod, clears `status.nominatedNodeName` and sets the `PodScheduled=True` condition, all in one
write that goes straight to storage, past the pod strategy's update rules, as upstream's
`GuaranteedUpdate` does: pod updates may not change `spec.nodeName`, a binding may. A pod that
is being deleted, already has a node or still has scheduling gates is refused with 409.

The scheduler (`lks.controllers.scheduler`) binds through `assign` in-process; the HTTP layer
reaches the handler through `lks.kube.subresources.HANDLERS`.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from lks import store
from lks.clock import rfc3339
from lks.kube import errors
from lks.kube.subresources import handler, virtual

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.kube.registry import Registry, WriteOptions

Obj = dict[str, Any]

_ATTEMPTS = 16  # re-reads when another writer wins the race, as GuaranteedUpdate retries
SUCCESS: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


def pod_scheduled(conditions: list[Obj], status: str, now: str, *, reason: str | None = None,
                  message: str | None = None) -> list[Obj]:
    """`podutil.UpdatePodCondition` for PodScheduled: the condition replaced (or appended),
    keeping its lastTransitionTime when the status does not change."""
    cond: Obj = {"type": "PodScheduled", "status": status, "lastProbeTime": None, "lastTransitionTime": now}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    out = []
    found = False
    for c in conditions:
        if c.get("type") == "PodScheduled" and not found:
            found = True
            if c.get("status") == status and c.get("lastTransitionTime"):
                cond["lastTransitionTime"] = c["lastTransitionTime"]
            out.append(cond)
        else:
            out.append(c)
    if not found:
        out.append(cond)
    return out


@functools.lru_cache(maxsize=4)
def _timestamp(second: int) -> str:
    """RFC 3339 at second precision; a scheduler binds hundreds of pods within one second."""
    return rfc3339(second)


def _refuse(name: str, why: str) -> errors.APIError:
    return errors.conflict("pods/binding", "", name, why)


def _precondition(reg: Registry, key: str, name: str, msg: str) -> errors.APIError:
    # storage's InvalidObjError, as InterpretUpdateError turns it into a Conflict on the pod
    return errors.conflict(reg.rt.resource, reg.rt.group, name,
                           f"StorageError: invalid object, Code: 4, Key: {key}, ResourceVersion: 0, "
                           f"AdditionalErrorMsg: {msg}")


async def assign(
    reg: Registry, namespace: str, name: str, node: str, *, uid: str | None = None,
    resource_version: str | None = None, annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None, dry_run: bool = False,
) -> Obj:
    """Bind pod `namespace/name` to `node` (`setPodNodeAndMetadata`); returns the bound pod.
    `uid` and `resource_version` are preconditions, as a Binding's metadata carries them."""
    key = reg.key(namespace, name)
    for _ in range(_ATTEMPTS):
        kv = await reg.store.get(key)
        if kv is None:
            raise errors.not_found(reg.rt.resource, reg.rt.group, name)
        pod = reg.decode(kv)
        meta = pod["metadata"]
        if uid and uid != meta.get("uid"):
            raise _precondition(reg, key, name, f"Precondition failed: UID in precondition: {uid}, "
                                                f"UID in object meta: {meta.get('uid')}")
        if resource_version and resource_version != meta.get("resourceVersion"):
            raise _precondition(reg, key, name, "Precondition failed: ResourceVersion in precondition: "
                                                f"{resource_version}, ResourceVersion in object meta: "
                                                f"{meta.get('resourceVersion')}")
        spec = pod.setdefault("spec", {})
        if "deletionTimestamp" in meta:
            raise _refuse(name, f"pod {name} is being deleted, cannot be assigned to a host")
        if spec.get("nodeName"):
            raise _refuse(name, f'pod {name} is already assigned to node "{spec["nodeName"]}"')
        if spec.get("schedulingGates"):
            raise _refuse(name, f"pod {name} has non-empty .spec.schedulingGates")
        spec["nodeName"] = node
        if annotations:
            meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
        if labels:
            meta["labels"] = {**(meta.get("labels") or {}), **labels}
        status = pod.setdefault("status", {})
        status.pop("nominatedNodeName", None)
        status["conditions"] = pod_scheduled(status.get("conditions") or [], "True",
                                             _timestamp(int(reg.cluster.clock.now())))
        if dry_run:
            return reg.served(pod)
        try:
            rev = await reg.store.update(key, reg.encode(pod), mod_revision=kv.mod_revision)
        except store.RevisionConflict:
            if resource_version:
                raise errors.conflict(reg.rt.resource, reg.rt.group, name, errors.MODIFIED) from None
            continue  # written meanwhile: re-read, re-check, re-apply
        except store.NotFound:
            raise errors.not_found(reg.rt.resource, reg.rt.group, name) from None
        meta["resourceVersion"] = str(rev)
        return reg.served(pod)
    raise errors.conflict(reg.rt.resource, reg.rt.group, name, errors.MODIFIED)


def _binding(body: Any, namespace: str | None) -> Obj:
    if not isinstance(body, dict) or body.get("kind", "Binding") != "Binding":
        raise errors.bad_request("not a Binding object")
    meta = body.get("metadata") or {}
    if meta.get("namespace") and namespace and meta["namespace"] != namespace:
        raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
    return body


def _validate(binding: Obj) -> None:
    """`ValidatePodBinding`. Upstream returns its aggregate as a plain error, which the API
    server answers with 500 and no reason; clients see exactly that."""
    target = binding.get("target") or {}
    problems = []
    kind = target.get("kind") or ""
    if kind and kind != "Node":
        problems.append(f'target.kind: Unsupported value: "{kind}": supported values: "Node", "<empty>"')
    if not target.get("name"):
        problems.append("target.name: Required value")
    if problems:
        raise errors.APIError(500, "", problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]")


async def create(reg: Registry, namespace: str | None, name: str, binding: Any, opts: WriteOptions) -> Obj:
    """`BindingREST.Create`: validate the Binding for pod `name`, then assign it."""
    binding = _binding(binding, namespace)
    meta = binding.get("metadata") or {}
    if meta.get("name") != name:
        raise errors.bad_request("name in URL does not match name in Binding object")
    _validate(binding)
    if not name:
        raise errors.bad_request("Name parameter required.")
    await assign(reg, namespace or "", name, binding["target"]["name"], uid=meta.get("uid") or None,
                 resource_version=meta.get("resourceVersion") or None,
                 annotations=meta.get("annotations") or None, labels=meta.get("labels") or None,
                 dry_run=opts.dry_run)
    return dict(SUCCESS)


@handler("", "pods", "binding")
async def pod_binding(reg: Registry, namespace: str | None, name: str, verb: str, body: Any,
                      opts: WriteOptions) -> tuple[int, Obj]:
    if verb != "create":
        raise errors.method_not_allowed()
    return 201, await create(reg, namespace, name, body, opts)


@virtual("", "bindings")
async def create_legacy(cluster: Cluster, namespace: str | None, body: Any, opts: WriteOptions) -> tuple[int, Obj]:
    """`POST /api/v1/namespaces/<ns>/bindings` (the virtual `bindings` resource): the pod is
    the one the Binding names."""
    binding = _binding(body, namespace)
    name = (binding.get("metadata") or {}).get("name") or ""
    return 201, await create(cluster.registry("", "v1", "pods"), namespace, name, binding, opts)
