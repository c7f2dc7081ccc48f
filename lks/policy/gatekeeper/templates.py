"""The constraint template controller (Gatekeeper's `constrainttemplate_controller`): for each
ConstraintTemplate it compiles the code (`engines`), creates or updates the constraint CRD
(`crds.constraint_crd`) and writes the template's status as Gatekeeper's pods report it:
`created: true` once the CRD is there, and one `byPod` entry per Gatekeeper pod whose `errors`
hold `ingest_error` (`Could not ingest Rego: ...`, whatever the engine, as Gatekeeper words it)
or `create_error` (`Could not create CRD: ...`). A deleted template takes its CRD, and so its
constraints, with it. The compiled programs are handed to `state.State` for admission and
audit.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lks.controllers.controller import Controller
from lks.controllers.informer import Informer
from lks.kube import deletion, errors
from lks.kube.registry import WriteOptions
from lks.policy.gatekeeper import crds, engines, manifests

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.policy.gatekeeper.state import State

Obj = dict[str, Any]
log = logging.getLogger(__name__)
MANAGER = "gatekeeper"
_ESTABLISH_WAIT = 10.0  # seconds for the CRD controller to establish a constraint CRD
_CONSTRAINT = "constraint:"  # queue keys of constraints: constraint:<kind>/<name> (no template name has a colon)
_POD_OPERATIONS = {"controller-manager": ["mutation-webhook", "webhook"], "audit-controller": ["audit", "status"]}


class TemplateController(Controller[str]):
    def __init__(self, cluster: Cluster, state: State, *, on_change: Callable[[Obj, Obj | None], None] | None = None):
        """`on_change(obj, prev)` hears of a template or constraint changed (spec, labels or
        annotations) or deleted, for whoever keeps them in line (the azure-policy add-on)."""
        super().__init__(cluster, name="gatekeeper-templates", workers=2)
        self.state = state
        self.on_change = on_change
        self.templates = cluster.registry(crds.TEMPLATES_GROUP, "v1", "constrainttemplates")
        self.crds = cluster.registry("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        self.pod_statuses = cluster.registry(crds.STATUS_GROUP, "v1beta1", "constrainttemplatepodstatuses")
        self.informer = self.watch(self.templates, self._on_event)
        self.constraint_informers: dict[str, Informer] = {}  # by kind: constraints get their byPod status

    def _changed(self, event: str, obj: Obj, prev: Obj | None) -> None:
        if self.on_change is None or event == "ADDED":
            return
        meta, before = obj["metadata"], (prev or {}).get("metadata") or {}
        if event == "DELETED" or obj.get("spec") != (prev or {}).get("spec") or \
                meta.get("labels") != before.get("labels") or meta.get("annotations") != before.get("annotations"):
            self.on_change(obj, prev)

    def _on_event(self, event: str, obj: Obj, prev: Obj | None) -> None:
        self._changed(event, obj, prev)
        if event == "MODIFIED" and prev is not None and obj.get("spec") == prev.get("spec") \
                and obj["metadata"].get("deletionTimestamp") == prev["metadata"].get("deletionTimestamp"):
            return  # our own status write
        self.queue.add(obj["metadata"]["name"])

    def prime(self) -> None:
        for obj in self.informer.list():
            self.queue.add(obj["metadata"]["name"])

    async def stop(self) -> None:
        await super().stop()
        for informer in self.constraint_informers.values():
            await informer.stop()
        self.constraint_informers.clear()

    async def sync(self, name: str) -> None:
        if name.startswith(_CONSTRAINT):
            kind, _, constraint = name.removeprefix(_CONSTRAINT).partition("/")
            await self._constraint_status(kind, constraint)
            return
        template = self.informer.get(None, name)
        if template is None or template["metadata"].get("deletionTimestamp"):
            kind = self.state.remove_template(name)
            if kind is not None:
                informer = self.constraint_informers.pop(kind, None)
                if informer is not None:
                    await informer.stop()
                await self._delete_crd(kind)
            await self._delete_pod_statuses(name)
            return
        names = ((template.get("spec") or {}).get("crd") or {}).get("spec", {}).get("names") or {}
        kind = names.get("kind") or ""
        try:
            if not kind:
                raise engines.IngestError("the template has no kind (spec.crd.spec.names.kind)")
            program = engines.compile_template(template)
        except engines.IngestError as err:
            self.state.remove_template(name)
            await self._status(template, created=None, error=("ingest_error", f"Could not ingest Rego: {err}"))
            return
        try:
            crd = crds.constraint_crd(template)
            await self.crds.apply(None, crd["metadata"]["name"], crd,
                                  WriteOptions(field_manager=MANAGER, force=True, field_validation="Ignore"))
            await self._established(kind)
        except (errors.APIError, TimeoutError) as err:
            text = err.message if isinstance(err, errors.APIError) else "the CRD was not established in time"
            await self._status(template, created=None, error=("create_error", f"Could not create CRD: {text}"))
            return
        self.state.set_template(name, kind, program)
        await self._watch_constraints(kind)
        await self._status(template, created=True, error=None)

    async def _watch_constraints(self, kind: str) -> None:
        if kind in self.constraint_informers:
            return
        reg = self.state.registry(kind)
        if reg is None:
            return

        def on_event(event: str, obj: Obj, prev: Obj | None) -> None:
            self._changed(event, obj, prev)
            if event != "DELETED" and (prev is None or obj["metadata"].get("generation") !=
                                       prev["metadata"].get("generation")):
                self.queue.add(f"{_CONSTRAINT}{kind}/{obj['metadata']['name']}")

        informer = self.constraint_informers[kind] = Informer(reg, on_event)
        await informer.start()
        for obj in informer.list():
            self.queue.add(f"{_CONSTRAINT}{kind}/{obj['metadata']['name']}")

    async def _constraint_status(self, kind: str, name: str) -> None:
        """A constraint's `status.byPod`: enforced by every Gatekeeper pod, at its generation
        (the audit adds its results)."""
        informer = self.constraint_informers.get(kind)
        obj = informer.get(None, name) if informer is not None else None
        if obj is None:
            return
        by_pod = constraint_by_pod(obj, await self.state.pods())
        if (obj.get("status") or {}).get("byPod") == by_pod:
            return

        def patch(current: Obj) -> Obj:
            current = copy.deepcopy(current)
            current["status"] = {**(current.get("status") or {}), "byPod": by_pod}
            return current

        try:
            await informer.registry.patch(None, name, patch, WriteOptions(field_manager=MANAGER,
                                                                         field_validation="Ignore", trusted=True),
                                          subresource="status")
        except errors.APIError as err:
            if err.code != 404:
                raise

    async def _established(self, kind: str) -> None:
        await wait_established(self.cluster, crds.CONSTRAINTS_GROUP, "v1beta1", kind.lower())

    async def _delete_crd(self, kind: str) -> None:
        try:
            await self.crds.delete(None, f"{kind.lower()}.{crds.CONSTRAINTS_GROUP}", deletion.DeleteOptions())
        except errors.APIError as err:
            if err.code != 404:
                raise

    async def _pods(self) -> list[tuple[str, list[str]]]:
        return pod_ids(await self.state.pods())

    async def _delete_pod_statuses(self, name: str) -> None:
        for obj in list((await self.pod_statuses.cache()).objects.values()):
            meta = obj["metadata"]
            if (meta.get("labels") or {}).get("internal.gatekeeper.sh/constrainttemplate-name") != name:
                continue
            try:
                await self.pod_statuses.delete(meta.get("namespace"), meta["name"], deletion.DeleteOptions())
            except errors.APIError as err:
                if err.code != 404:
                    raise

    async def _pod_statuses(self, name: str, by_pod: list[Obj]) -> None:
        """Each pod's own ConstraintTemplatePodStatus in gatekeeper-system, what byPod gathers."""
        opts = WriteOptions(field_manager=MANAGER, force=True, field_validation="Ignore")
        for entry in by_pod:
            key = pack(entry["id"], name)
            obj = {"apiVersion": f"{crds.STATUS_GROUP}/v1beta1", "kind": "ConstraintTemplatePodStatus",
                   "metadata": {"name": key, "namespace": manifests.NAMESPACE, "labels": {
                       "internal.gatekeeper.sh/constrainttemplate-name": name,
                       "internal.gatekeeper.sh/pod": entry["id"]}},
                   "status": entry}
            try:
                await self.pod_statuses.apply(manifests.NAMESPACE, key, obj, opts)
            except errors.APIError as err:  # the namespace is going (the add-on turned off)
                log.debug("gatekeeper: pod status %s not written: %s", key, err.message)

    async def _status(self, template: Obj, *, created: bool | None, error: tuple[str, str] | None) -> None:
        meta = template["metadata"]
        by_pod = []
        for pod, operations in await self._pods():
            entry: Obj = {"id": pod, "observedGeneration": meta.get("generation") or 1,
                          "operations": operations, "templateUID": meta.get("uid")}
            if error is not None:
                entry["errors"] = [{"code": error[0], "message": error[1]}]
            by_pod.append(entry)
        await self._pod_statuses(meta["name"], by_pod)
        status: Obj = {"byPod": by_pod}
        if created is not None:
            status["created"] = created

        def patch(current: Obj) -> Obj:
            current = copy.deepcopy(current)
            current["status"] = status
            return current

        try:
            await self.templates.patch(None, meta["name"], patch, WriteOptions(field_manager=MANAGER,
                                                                                field_validation="Ignore",
                                                                                trusted=True),
                                       subresource="status")
        except errors.APIError as err:
            if err.code != 404:
                raise


async def wait_established(cluster: Cluster, group: str, version: str, resource: str) -> None:
    """Until the CRD controller has established the type (TimeoutError after a while)."""
    async with asyncio.timeout(_ESTABLISH_WAIT):
        while await cluster.lookup(group, version, resource) is None:
            await asyncio.sleep(0.02)


def pack(*values: str) -> str:
    """Gatekeeper's `DashPacker`: the values' dashes doubled, joined by single dashes (a pod
    status's name: `<pod>-<template>`)."""
    return "-".join(v.replace("-", "--") for v in values)


def pod_ids(pods: list[Obj]) -> list[tuple[str, list[str]]]:
    """(id, operations) of Gatekeeper's pods, the webhook's first; their deployments' names
    before any pod exists."""
    out = []
    for role in ("controller-manager", "audit-controller"):
        found = sorted(p["metadata"]["name"] for p in pods
                       if (p["metadata"].get("labels") or {}).get("control-plane") == role)
        out.extend((name, _POD_OPERATIONS[role]) for name in found or [
            "gatekeeper-controller-manager" if role == "controller-manager" else "gatekeeper-audit"])
    return out


def constraint_by_pod(obj: Obj, pods: list[Obj]) -> list[Obj]:
    meta = obj["metadata"]
    return [{"constraintUID": meta.get("uid"), "enforced": True, "id": pod,
             "observedGeneration": meta.get("generation") or 1, "operations": ops}
            for pod, ops in pod_ids(pods)]
