"""Namespaces: cluster-scoped, named by DNS labels, born `Active` with the `kubernetes`
finalizer, and the immortal ones (`default`, `kube-system`, `kube-public`) cannot be deleted
(the NamespaceLifecycle admission plugin's 403). `lks.controllers.systemnamespaces` re-creates
any of the `SYSTEM` namespaces that goes (`kube-node-lease` can be deleted)."""

from __future__ import annotations

from typing import Any

from lks.kube import errors, validation
from lks.kube.strategies.base import Obj, Strategy

IMMORTAL = frozenset(("default", "kube-system", "kube-public"))
SYSTEM = ("default", "kube-system", "kube-public", "kube-node-lease")


class NamespaceStrategy(Strategy):
    name_rule = staticmethod(validation.dns_label)
    tracks_generation = False
    return_deleted_object = True

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {"phase": "Active"}
        spec = obj.setdefault("spec", {})
        finalizers = spec.get("finalizers") or []
        if "kubernetes" not in finalizers:
            spec["finalizers"] = [*finalizers, "kubernetes"]

    async def before_delete(self, cluster: Any, obj: Obj) -> None:
        name = obj["metadata"]["name"]
        if name in IMMORTAL:
            raise errors.forbidden("namespaces", "", name, "this namespace may not be deleted")

    def deletion_needs_finalize(self, obj: Obj) -> bool:
        return bool((obj.get("spec") or {}).get("finalizers"))

    def prepare_for_delete(self, obj: Obj) -> None:
        obj["status"] = {**(obj.get("status") or {}), "phase": "Terminating"}

    def prepare_for_update(self, obj: Obj, old: Obj) -> None:
        super().prepare_for_update(obj, old)
        # spec.finalizers only change through the finalize subresource
        if "spec" in old:
            obj["spec"] = {**(obj.get("spec") or {}), "finalizers": (old["spec"] or {}).get("finalizers", [])}

    def ready_to_remove(self, obj: Obj) -> bool:
        return super().ready_to_remove(obj) and not (obj.get("spec") or {}).get("finalizers")

    def for_subresource(self, name: str) -> Any:
        if name == "finalize":
            return NamespaceFinalizeStrategy(namespaced=False, has_status=True)
        return super().for_subresource(name)


class NamespaceFinalizeStrategy(NamespaceStrategy):
    """Updates through `namespaces/<name>/finalize`: only `spec.finalizers` changes."""

    def prepare_for_update(self, obj: Obj, old: Obj) -> None:
        finalizers = (obj.get("spec") or {}).get("finalizers") or []
        fresh = {k: v for k, v in old.items()}
        fresh["metadata"] = {**old["metadata"], "resourceVersion": obj["metadata"].get("resourceVersion")}
        fresh["spec"] = {**(old.get("spec") or {}), "finalizers": finalizers}
        obj.clear()
        obj.update(fresh)
