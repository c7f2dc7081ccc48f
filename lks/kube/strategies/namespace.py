"""Namespaces: cluster-scoped, named by DNS labels, born `Active` with the `kubernetes`
finalizer, and the immortal ones (`default`, `kube-system`, `kube-public`) cannot be deleted."""

from __future__ import annotations

from lks.kube import validation
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
