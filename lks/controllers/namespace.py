"""The namespace controller: empties a namespace that is being deleted, then removes the
`kubernetes` finalizer through `namespaces/<name>/finalize`, after which the API server
removes the namespace (upstream's `pkg/controller/namespace`).
"""

from __future__ import annotations

import logging
from typing import Any

from lks.controllers.controller import Controller
from lks.kube import deletion, errors
from lks.kube.cluster import Cluster
from lks.kube.registry import ListOptions
from lks.kube.selectors import FieldSelector, LabelSelector

log = logging.getLogger(__name__)

RECHECK = 1.0  # seconds between looks at a namespace whose contents are still going


class NamespaceController(Controller[str]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="namespace")
        self.namespaces = cluster.registry("", "v1", "namespaces")
        self.informer = self.watch(self.namespaces, self._on_event)

    def _on_event(self, kind: str, obj: dict[str, Any], _prev: Any) -> None:
        if kind != "DELETED" and "deletionTimestamp" in obj["metadata"]:
            self.queue.add(obj["metadata"]["name"])

    async def sync(self, name: str) -> None:
        ns = self.informer.get(None, name)
        if ns is None or "deletionTimestamp" not in ns["metadata"]:
            return
        if "kubernetes" not in ((ns.get("spec") or {}).get("finalizers") or []):
            return
        remaining = await self._delete_contents(name)
        if remaining:
            self.queue.add_after(name, RECHECK)
            return
        finalized = {**ns, "spec": {**ns["spec"], "finalizers": [
            f for f in ns["spec"]["finalizers"] if f != "kubernetes"]}}
        try:
            await self.namespaces.update(None, name, finalized, subresource="finalize")
        except errors.APIError as err:
            if err.code != 404:
                raise

    async def _delete_contents(self, namespace: str) -> int:
        """Delete everything in the namespace; how many objects are still there."""
        remaining = 0
        everything = ListOptions(LabelSelector([]), FieldSelector([]))
        for reg in self.cluster.storage_registries(namespaced=True):
            listed = await reg.list(namespace, everything)
            for item in listed["items"]:
                if "deletionTimestamp" in item["metadata"]:
                    remaining += 1  # already going; its finalizers or grace period hold it
                    continue
                try:
                    _, removed = await reg.delete(namespace, item["metadata"]["name"], deletion.DeleteOptions())
                except errors.APIError as err:
                    if err.code != 404:
                        raise
                    removed = True
                remaining += not removed
        return remaining
