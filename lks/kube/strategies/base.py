"""The default strategy: what every resource does on create, update and delete unless its own
strategy says otherwise (the shape of upstream's `rest.RESTCreateStrategy` and friends).

The registry (`lks.kube.registry`) calls the hooks in one fixed order; a hook's docstring says
when it runs and whether it may mutate. Resource-specific strategies live beside this module
and override only what differs.
"""

from __future__ import annotations

from typing import Any

from lks.kube import validation
from lks.kube.errors import Cause

Obj = dict[str, Any]

# Top-level keys that are not part of an object's "spec" for generation purposes.
_NOT_SPEC = frozenset(("apiVersion", "kind", "metadata", "status"))


class Strategy:
    """Stateless rules for one resource type."""

    name_rule: validation.NameRule = staticmethod(validation.dns_subdomain)
    # metadata.generation starts at 1 and follows spec changes; None: when there is a status
    # subresource, i.e. the object has a spec/status split
    tracks_generation: bool | None = None
    allow_create_on_update = False  # PUT of a missing object creates it
    allow_unconditional_update = True  # PUT without resourceVersion overwrites
    return_deleted_object = False  # DELETE answers the object instead of a Status
    default_propagation = "Background"  # the garbage collector's policy when DELETE names none
    refuses_create: str | None = None  # why no object may be created now (a terminating CRD's)

    def __init__(self, *, namespaced: bool, has_status: bool):
        self.namespaced = namespaced
        self.has_status = has_status
        if self.tracks_generation is None:
            self.tracks_generation = has_status

    def for_subresource(self, name: str) -> Any:
        """The strategy for updates through a subresource (`status`), or None if not updatable."""
        return StatusStrategy(self) if name == "status" else None

    def normalize(self, obj: Obj) -> list[str]:
        """When an object arrives (create, update, patch result): drop unknown fields and fill
        in defaults, as decoding does upstream; may mutate. Returns the dropped field paths."""
        return []

    def record_requester(self, obj: Obj, user: Any) -> None:
        """On create, after `prepare_for_create`: note who asks (`user`, a `cluster.User`, None
        for the service itself) in the object, as upstream strategies read it from the request's
        context; may mutate."""

    def prepare_for_create(self, obj: Obj) -> None:
        """Before validation on create; may mutate `obj` (clear status, set generation)."""
        if self.has_status:
            obj.pop("status", None)
        if self.tracks_generation:
            obj["metadata"]["generation"] = 1

    def prepare_for_update(self, obj: Obj, old: Obj) -> None:
        """Before validation on update of the main resource; may mutate `obj`. With a status
        subresource the main resource cannot change status."""
        if self.has_status:
            if "status" in old:
                obj["status"] = old["status"]
            else:
                obj.pop("status", None)
        if self.tracks_generation:
            gen = old["metadata"].get("generation", 1)
            obj["metadata"]["generation"] = gen + 1 if spec_changed(obj, old) else gen

    def validate(self, obj: Obj) -> list[Cause]:
        """Validate a new object; must not mutate."""
        return validation.validate_object_meta(
            obj["metadata"], namespaced=self.namespaced, name_rule=self.name_rule
        )

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        """Validate an update; must not mutate."""
        return validation.validate_object_meta(
            obj["metadata"], namespaced=self.namespaced, name_rule=lambda _name: []
        )

    def canonicalize(self, obj: Obj) -> None:
        """Last step before storing; may mutate."""

    async def before_delete(self, cluster: Any, obj: Obj) -> None:
        """Before anything else on DELETE; raises to refuse the deletion. Must not mutate."""

    def grace_period(self, obj: Obj, requested: int | None) -> int | None:
        """Seconds the object lingers after DELETE (None or 0: no graceful deletion)."""
        return None

    def deletion_needs_finalize(self, obj: Obj) -> bool:
        """Whether DELETE must wait for something beyond finalizers and grace (namespaces)."""
        return False

    def prepare_for_delete(self, obj: Obj) -> None:
        """When DELETE marks the object as being deleted; may mutate (e.g. a Terminating phase)."""

    def ready_to_remove(self, obj: Obj) -> bool:
        """After an update: whether a deleting object has nothing left to wait for."""
        meta = obj["metadata"]
        return ("deletionTimestamp" in meta and not meta.get("finalizers")
                and not meta.get("deletionGracePeriodSeconds"))


class StatusStrategy:
    """Updates through `/status`: only `status` changes (and labels/annotations stay as stored)."""

    def __init__(self, parent: Strategy):
        self.parent = parent

    def prepare_for_update(self, obj: Obj, old: Obj) -> None:
        status = obj.get("status")
        fresh = {k: v for k, v in old.items() if k != "status"}
        fresh["metadata"] = {**old["metadata"], "resourceVersion": obj["metadata"].get("resourceVersion")}
        obj.clear()
        obj.update(fresh)
        if status is not None:
            obj["status"] = status

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        return []

    def canonicalize(self, obj: Obj) -> None:
        self.parent.canonicalize(obj)


def spec_changed(obj: Obj, old: Obj) -> bool:
    keys = (set(obj) | set(old)) - _NOT_SPEC
    return any(obj.get(k) != old.get(k) for k in keys)
