"""The addon manager: keeps AKS's system add-ons (`manifests`) in `kube-system`, as the addon
manager of AKS's hidden control plane does. `Reconcile` objects are applied (server-side, field
manager `addon-manager`, forced) on start and again whenever one is deleted or its content is
changed by someone else; `EnsureExists` objects are created when missing and otherwise left to
the user. The add-on pods are ordinary pods: the scheduler places them, node agents run them.
"""

from __future__ import annotations

import copy
from typing import Any

from lks import metrics
from lks.controllers.addons import manifests
from lks.controllers.controller import Controller
from lks.kube import errors
from lks.kube.cluster import Cluster
from lks.kube.registry import Registry, WriteOptions

Obj = dict[str, Any]
Key = tuple[str, str]  # (kind, name); namespaced add-ons live in kube-system
MANAGER = "addon-manager"


def _content(obj: Obj) -> tuple:
    """What the addon manager owns of an object: everything but status and server-set metadata."""
    meta = obj.get("metadata") or {}
    return ({k: v for k, v in obj.items() if k not in ("metadata", "status")},
            meta.get("labels"), meta.get("annotations"))


class AddonManager(Controller[Key]):
    def __init__(self, cluster: Cluster, *, objects: list[Obj] | None = None, name: str = "addon-manager"):
        """`objects`: another add-on's set to keep (an optional add-on, `lks.net.ingress`), all
        `Reconcile`d unless labelled otherwise; None: the kube-system add-ons (`manifests`)."""
        super().__init__(cluster, name=name, workers=2)
        self.system = objects is None  # the kube-system set, with metrics-server's API
        if objects is None:
            objects = manifests.addons(patch_version=cluster.patch_version, dns_service_ip=cluster.dns_service_ip,
                                       pod_cidr=cluster.pod_cidr, network_plugin=cluster.network_plugin)
        self.desired: dict[Key, Obj] = {(o["kind"], o["metadata"]["name"]): o for o in objects}
        self.registries: dict[str, Registry] = {}  # by kind
        for obj in self.desired.values():
            group, _, version = obj["apiVersion"].rpartition("/")
            rt = cluster.catalog.by_kind(group, version, obj["kind"])
            assert rt is not None, obj["kind"]
            self.registries[obj["kind"]] = cluster.registry(group, version, rt.resource)
        self.informers = {
            kind: self.watch(reg, lambda t, o, p, kind=kind: self._on_event(kind, t, o, p))
            for kind, reg in self.registries.items()}

    def _on_event(self, kind: str, event: str, obj: Obj, prev: Obj | None) -> None:
        meta = obj["metadata"]
        key = (kind, meta["name"])
        want = self.desired.get(key)
        if want is None or meta.get("namespace") != want["metadata"].get("namespace"):
            return
        if event == "DELETED":
            self.queue.add(key)
        elif event == "MODIFIED" and prev is not None and _content(obj) != _content(prev):
            self.queue.add(key)

    async def start(self) -> None:
        if self.system:
            await metrics.serve(self.cluster)  # metrics-server's API, served in process
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        if self.system:
            await metrics.stop(self.cluster)

    def prime(self) -> None:
        for key in self.desired:
            self.queue.add(key)

    async def sync(self, key: Key) -> None:
        kind, name = key
        want = copy.deepcopy(self.desired[key])
        reg = self.registries[kind]
        namespace = want["metadata"].get("namespace")  # None: a cluster-scoped add-on object
        if (want["metadata"].get("labels") or {}).get(manifests.MODE) == manifests.ENSURE_EXISTS:
            if self.informers[kind].get(namespace, name) is not None:
                return
            try:
                await reg.create(namespace, want, WriteOptions(field_manager=MANAGER, trusted=True,
                                                                field_validation="Ignore"))
            except errors.APIError as err:
                if err.code != 409:
                    raise
            return
        await reg.apply(namespace, name, want, WriteOptions(field_manager=MANAGER, force=True,
                                                             field_validation="Ignore"))
