"""The ServiceAccounts controller: a `default` ServiceAccount in every active namespace, made
again when it is deleted (upstream's `pkg/controller/serviceaccount/serviceaccounts_controller.go`).

Pods that name no ServiceAccount run as `default`, so it must exist before the first pod of a
new namespace. Since 1.24 no token Secret comes with it: pods get projected tokens. The CA bundle
those pods trust is published beside it by `lks.controllers.rootcacert`.
"""

from __future__ import annotations

from typing import Any

from lks.controllers.controller import Controller
from lks.kube import errors
from lks.kube.cluster import Cluster
from lks.kube.registry import WriteOptions

Obj = dict[str, Any]
WRITE = WriteOptions(field_validation="Ignore", trusted=True, field_manager="kube-controller-manager")

ENSURED = ("default",)  # upstream's --service-account-names default


def namespace_active(ns: Obj | None) -> bool:
    """Whether new content may go into `ns` (it exists and is not terminating)."""
    if ns is None or "deletionTimestamp" in ns["metadata"]:
        return False
    return (ns.get("status") or {}).get("phase", "Active") == "Active"


def namespace_gone(err: errors.APIError) -> bool:
    """Whether a create failed because its namespace is missing or terminating; nothing to
    retry then: the namespace's own events bring the key back if it returns."""
    if err.code == 404:
        return True
    causes = (err.details or {}).get("causes") or []
    return err.code == 403 and any(c.get("reason") == "NamespaceTerminating" for c in causes)


class ServiceAccountsController(Controller[str]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="serviceaccount")
        self.accounts = cluster.registry("", "v1", "serviceaccounts")
        self.informer = self.watch(self.accounts, self._on_account)
        self.namespaces = self.watch(cluster.registry("", "v1", "namespaces"), self._on_namespace)

    def _on_namespace(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        if kind != "DELETED":
            self.queue.add(obj["metadata"]["name"])

    def _on_account(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        if kind == "DELETED" and obj["metadata"]["name"] in ENSURED:
            self.queue.add(obj["metadata"]["namespace"])

    async def sync(self, namespace: str) -> None:
        if not namespace_active(self.namespaces.get(None, namespace)):
            return
        for name in ENSURED:
            if self.informer.get(namespace, name) is not None:
                continue
            try:
                await self.accounts.create(namespace, {"metadata": {"name": name}}, WRITE)
            except errors.APIError as err:
                if err.code == 409:
                    continue  # our cache is behind: it exists
                if namespace_gone(err):
                    return
                raise
