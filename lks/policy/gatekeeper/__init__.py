"""Gatekeeper v3 in each cluster whose `azurepolicy` add-on is on, as users of a stand-alone
Gatekeeper know it: the CRDs (`crds`), the add-on's pods and webhook configurations
(`manifests`), the template controller that makes constraint CRDs (`templates`), the validating
webhook answered in process (`webhook`), mutation (`mutation`: mutators and the mutating
webhook) and the audit (`audit`), sharing one `state.State`.

`configure(cluster, enabled=...)` turns it on or off for a cluster (`lks.controlplanes` calls
it from the managed cluster's `addonProfiles.azurepolicy.enabled`); `violations(cluster_id)`
gives the Azure side the last audit's results per constraint. The audit interval is 60 s, or
`LKS_GATEKEEPER_AUDIT_INTERVAL` seconds. `subscribe(listener)` tells a listener (the azure-policy
add-on's sync, `lks.policy.azure.addon`) when a cluster's Gatekeeper has started and after each audit.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any, Protocol

from lks.kube import deletion, errors
from lks.kube.registry import WriteOptions
from lks.kube.webhooks import local
from lks.policy.gatekeeper import audit, crds, manifests, mutation, state, templates, webhook

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster

Obj = dict[str, Any]
log = logging.getLogger(__name__)
MANAGER = "addon-manager"
_TERMINATING_WAIT = 60.0  # seconds for a terminating gatekeeper-system to go

__all__ = ["Gatekeeper", "Listener", "configure", "running", "subscribe", "unsubscribe", "violations"]


class Listener(Protocol):
    def started(self, cluster_id: str) -> None: ...

    def changed(self, cluster_id: str, obj: Obj, prev: Obj | None) -> None:
        """A template or constraint was changed or deleted (by anyone)."""

    async def audited(self, cluster_id: str, bound: list[state.Bound], results: dict[tuple[str, str], audit.Result],
                      timestamp: str) -> None: ...


_LISTENERS: list[Listener] = []


def subscribe(listener: Listener) -> None:
    _LISTENERS.append(listener)


def unsubscribe(listener: Listener) -> None:
    if listener in _LISTENERS:
        _LISTENERS.remove(listener)


async def _audited(cluster_id: str, bound: list[state.Bound], results: dict[tuple[str, str], audit.Result],
                   timestamp: str) -> None:
    for listener in list(_LISTENERS):
        try:
            await listener.audited(cluster_id, bound, results, timestamp)
        except asyncio.CancelledError:
            raise
        except Exception:  # a listener's failure is not the audit's
            log.exception("gatekeeper: an audit listener failed for cluster %s", cluster_id)


class Gatekeeper:
    """One cluster's Gatekeeper."""

    def __init__(self, cluster: Cluster, *, audit_interval: float | None = None,
                 violations_limit: int = audit.VIOLATIONS_LIMIT):
        self.cluster = cluster
        if audit_interval is None:
            audit_interval = float(os.environ.get("LKS_GATEKEEPER_AUDIT_INTERVAL") or audit.INTERVAL)
        self.state = state.State(cluster)
        self.webhook = webhook.Webhook(self.state)
        self.audit = audit.Audit(cluster, self.state, interval=audit_interval, violations_limit=violations_limit,
                                 on_audit=lambda bound, results, at: _audited(cluster.id, bound, results, at))
        self.templates: templates.TemplateController | None = None
        self.mutation: mutation.Mutation | None = None

    async def start(self) -> None:
        opts = WriteOptions(field_manager=MANAGER, force=True, field_validation="Ignore")
        crd_reg = self.cluster.registry("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        for crd in crds.system_crds() + crds.mutation_crds():
            await crd_reg.apply(None, crd["metadata"]["name"], crd, opts)
        await templates.wait_established(self.cluster, crds.TEMPLATES_GROUP, "v1", "constrainttemplates")
        for crd in crds.mutation_crds():
            spec = crd["spec"]
            await templates.wait_established(self.cluster, spec["group"], spec["versions"][0]["name"],
                                             spec["names"]["plural"])
        await templates.wait_established(self.cluster, crds.CONFIG_GROUP, "v1alpha1", "configs")
        await templates.wait_established(self.cluster, crds.STATUS_GROUP, "v1beta1", "constrainttemplatepodstatuses")
        await templates.wait_established(self.cluster, crds.STATUS_GROUP, "v1beta1", "mutatorpodstatuses")
        await self._namespace_gone()
        # the handler is there before the configuration that sends requests to it
        local.register(self.cluster.id, manifests.NAMESPACE, manifests.SERVICE, self.webhook.admit)
        self.mutation = mutation.Mutation(self.cluster, self.state)
        await self.mutation.start()
        for obj in manifests.objects(int(self.audit.interval), self.audit.limit):
            group, _, version = obj["apiVersion"].rpartition("/")
            rt = self.cluster.catalog.by_kind(group, version, obj["kind"])
            assert rt is not None, obj["kind"]
            reg = self.cluster.registry(group, version, rt.resource)
            meta = obj["metadata"]
            await reg.apply(meta.get("namespace"), meta["name"], obj, opts)
        cluster_id = self.cluster.id

        def changed(obj: Obj, prev: Obj | None) -> None:
            for listener in list(_LISTENERS):
                listener.changed(cluster_id, obj, prev)
        self.templates = templates.TemplateController(self.cluster, self.state, on_change=changed)
        await self.templates.start()
        await self.audit.start()
        for listener in list(_LISTENERS):
            listener.started(self.cluster.id)

    async def _namespace_gone(self) -> None:
        """The add-on turned off a moment ago: its namespace finishes terminating first."""
        namespaces = self.cluster.registry("", "v1", "namespaces")
        async with asyncio.timeout(_TERMINATING_WAIT):
            while True:
                ns = await namespaces.get_or_none(None, manifests.NAMESPACE)
                if ns is None or not ns["metadata"].get("deletionTimestamp"):
                    return
                await asyncio.sleep(0.1)

    async def stop(self) -> None:
        """Stop serving (the cluster stops, or the add-on is turned off: `remove` then takes the objects)."""
        local.unregister(self.cluster.id, manifests.NAMESPACE, manifests.SERVICE)
        if self.mutation is not None:
            await self.mutation.stop()
            self.mutation = None
        await self.audit.stop()
        if self.templates is not None:
            await self.templates.stop()
            self.templates = None

    async def remove(self) -> None:
        """What turning the add-on off takes away: the webhook configuration, pods and namespace
        (templates and constraints stay with their CRDs, as on AKS they go with the assignments)."""
        for obj in reversed(manifests.objects(int(self.audit.interval), self.audit.limit)):
            group, _, version = obj["apiVersion"].rpartition("/")
            rt = self.cluster.catalog.by_kind(group, version, obj["kind"])
            if rt is None:
                continue
            meta = obj["metadata"]
            try:
                await self.cluster.registry(group, version, rt.resource).delete(
                    meta.get("namespace"), meta["name"], deletion.DeleteOptions())
            except errors.APIError as err:
                if err.code != 404:
                    raise


_RUNNING: dict[str, Gatekeeper] = {}  # cluster id -> its Gatekeeper


async def configure(cluster: Cluster, *, enabled: bool) -> None:
    """Turn Gatekeeper on or off for `cluster` (idempotent)."""
    current = _RUNNING.get(cluster.id)
    if current is not None and current.cluster is not cluster:  # the cluster restarted: a new one
        _RUNNING.pop(cluster.id, None)
        await current.stop()
        current = None
    if enabled and current is None:
        gk = Gatekeeper(cluster)
        _RUNNING[cluster.id] = gk
        try:
            await gk.start()
        except BaseException:
            _RUNNING.pop(cluster.id, None)
            await gk.stop()
            raise
    elif not enabled and current is not None:
        _RUNNING.pop(cluster.id, None)
        await current.stop()
        await current.remove()


async def stop(cluster_id: str) -> None:
    """The cluster stops serving: its Gatekeeper stops, its objects stay."""
    current = _RUNNING.pop(cluster_id, None)
    if current is not None:
        await current.stop()


def running(cluster_id: str) -> Gatekeeper | None:
    return _RUNNING.get(cluster_id)


def violations(cluster_id: str) -> dict[tuple[str, str], audit.Result] | None:
    """The last audit's results per (constraint kind, name) of a cluster; None: no Gatekeeper."""
    gk = _RUNNING.get(cluster_id)
    return None if gk is None else gk.audit.results
