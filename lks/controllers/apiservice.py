"""kube-aggregator's availability controllers: every APIService's `Available` condition, decided
by `lks.kube.aggregator.availability` and written when it changes. An APIService is looked at
again when it, its Service or the Service's EndpointSlices change, and a Service-backed one
every `RESYNC` seconds (sooner after a failed discovery check), as upstream's resync does.

It also registers the cluster's own APIServices (`lks.kube.aggregator.autoregister`): the
built-in group-versions' once at start, the CRDs' whenever a CRD changes (the key `AUTO`).
"""

from __future__ import annotations

import logging
from typing import Any

from lks.clock import rfc3339
from lks.controllers.controller import Controller
from lks.kube import deletion, errors
from lks.kube.aggregator import autoregister, availability, frontproxy
from lks.kube.cluster import Cluster

Obj = dict[str, Any]
log = logging.getLogger(__name__)
RESYNC = 30.0
RETRY = 5.0
AUTO = ""  # the queue key of autoregistration (no APIService has an empty name)


class APIServiceAvailabilityController(Controller[str]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="apiservice-availability")
        self.apiservices = cluster.registry("apiregistration.k8s.io", "v1", "apiservices")
        self.informer = self.watch(self.apiservices, self._on_apiservice)
        self._later: dict[str, float] = {}  # APIService -> when its pending recheck is due
        self.watch(cluster.registry("", "v1", "services"), self._on_service)
        self.watch(cluster.registry("discovery.k8s.io", "v1", "endpointslices"), self._on_slice)
        self.watch(cluster.registry("apiextensions.k8s.io", "v1", "customresourcedefinitions"),
                   lambda *_: self.queue.add(AUTO))
        self._started = False
        self._on_local = lambda group, version: self.queue.add(f"{version}.{group}")

    def _on_apiservice(self, _kind: str, obj: Obj, _prev: Obj | None) -> None:
        self.queue.add(obj["metadata"]["name"])

    def _enqueue_for(self, namespace: str, name: str) -> None:
        for svc in self.informer.list():
            ref = (svc.get("spec") or {}).get("service") or {}
            if ref.get("namespace") == namespace and ref.get("name") == name:
                self.queue.add(svc["metadata"]["name"])

    def _on_service(self, _kind: str, obj: Obj, _prev: Obj | None) -> None:
        self._enqueue_for(obj["metadata"].get("namespace") or "", obj["metadata"]["name"])

    def _on_slice(self, _kind: str, obj: Obj, _prev: Obj | None) -> None:
        service = (obj["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
        if service:
            self._enqueue_for(obj["metadata"].get("namespace") or "", service)

    def prime(self) -> None:
        self.cluster.aggregator.listeners.append(self._on_local)  # an add-on's API comes or goes
        self.queue.add(AUTO)
        for svc in self.informer.list():
            self.queue.add(svc["metadata"]["name"])

    async def stop(self) -> None:
        if self._on_local in self.cluster.aggregator.listeners:
            self.cluster.aggregator.listeners.remove(self._on_local)
        await super().stop()

    async def _publish(self, cm: Obj) -> None:
        """Create or correct kube-system/extension-apiserver-authentication."""
        configmaps = self.cluster.registry("", "v1", "configmaps")
        have = await configmaps.get_or_none("kube-system", cm["metadata"]["name"])
        try:
            if have is None:
                await configmaps.create("kube-system", cm)
            elif have.get("data") != cm["data"]:
                await configmaps.update("kube-system", cm["metadata"]["name"], {**have, "data": cm["data"]})
        except errors.APIError as err:
            if err.code != 409:
                raise
            self.queue.add(AUTO)  # raced with a writer: look again

    async def _autoregister(self) -> None:
        """Create the built-in APIServices missing (once, deleting those of group-versions no
        longer served), create or correct the CRDs', and delete the CRD ones whose version is
        no longer served."""
        wanted = autoregister.for_crds(self.cluster)
        if not self._started:
            wanted.update({o["metadata"]["name"]: o for o in autoregister.builtin(self.cluster)})
            if (front := self.cluster.aggregator.front_proxy) is not None:
                await self._publish(frontproxy.configmap(self.cluster, front))
        for name, obj in wanted.items():
            have = self.informer.get(None, name)
            try:
                if have is None:
                    await self.apiservices.create(None, obj)
                elif (have["metadata"].get("labels") or {}).get(autoregister.LABEL) == "true" \
                        and have.get("spec") != obj["spec"]:
                    await self.apiservices.update(None, name, {**have, "spec": obj["spec"]})
            except errors.APIError as err:
                if err.code != 409:
                    raise
        # the CRDs' that are gone always; at start, also the built-in ones of a former version
        # (a control-plane upgrade that dropped a group-version)
        stale = ("true", "onstart") if not self._started else ("true",)
        self._started = True
        for have in self.informer.list():
            name = have["metadata"]["name"]
            if (have["metadata"].get("labels") or {}).get(autoregister.LABEL) in stale and name not in wanted:
                try:
                    await self.apiservices.delete(None, name, deletion.DeleteOptions())
                except errors.APIError as err:
                    if err.code != 404:
                        raise

    async def sync(self, name: str) -> None:
        if name == AUTO:
            await self._autoregister()
            return
        if self._later.get(name, float("inf")) <= self.clock.monotonic():
            del self._later[name]  # its recheck is this sync
        svc = self.informer.get(None, name)
        if svc is None:
            return
        cond = await availability.check(self.cluster, svc)
        status = availability.set_condition(svc, cond, rfc3339(self.cluster.clock.now()))
        if status != (svc.get("status") or {}):
            log.info("APIService %s: Available=%s (%s) %s", name, *cond)
            try:
                await self.apiservices.update(None, name, {**svc, "status": status}, subresource="status")
            except errors.APIError as err:
                if err.code not in (404, 409):
                    raise
                self.queue.add(name)
                return
        spec = svc.get("spec") or {}
        remote = spec.get("service") and (spec.get("group"), spec.get("version")) not in self.cluster.aggregator.local
        if remote and name not in self._later:  # one pending recheck per APIService
            delay = RETRY if cond[1] == "FailedDiscoveryCheck" else RESYNC
            self._later[name] = self.clock.monotonic() + delay
            self.queue.add_after(name, delay)
