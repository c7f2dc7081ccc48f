"""ControllerRevisions: the pod-template history of StatefulSets and DaemonSets (upstream's
`pkg/controller/history` and the DaemonSet controller's `snapshot`).

A revision stores its owner's template as the strategic-merge patch upstream stores,
`{"spec": {"template": {..., "$patch": "replace"}}}`, so `kubectl rollout history` shows it
and `kubectl rollout undo` can apply it back. Names are `<owner>-<hash>`, the hash being an
FNV-32a of the content (and the owner's `collisionCount`) spelled with upstream's
`rand.SafeEncodeString` alphabet. Upstream hashes Go's printed form of the object, which we
cannot reproduce; the names look alike but differ. `lks.controllers.statefulset` and
`lks.controllers.daemonset` build on this module.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from lks.controllers import podcontrol
from lks.controllers import replicaset_util as rsutil
from lks.kube import deletion, errors, semantic
from lks.kube.cluster import Cluster

Obj = dict[str, Any]

HASH_LABEL = "controller.kubernetes.io/hash"  # history.ControllerRevisionHashLabel
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand
_MAX_PREFIX = 223  # ControllerRevisionName keeps a name under 253 characters


@functools.lru_cache(maxsize=1024)
def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """rand.SafeEncodeString: each character mapped onto an alphabet without vowels."""
    return "".join(_ALPHANUMS[ord(c) % len(_ALPHANUMS)] for c in text)


def canonical(obj: Obj) -> Obj:
    """A pod template, or a revision's data holding one, in `semantic.canonical` form: the
    same Go value hashes and compares alike however a client serialized it."""
    spec = obj.get("spec")
    if isinstance(spec, dict) and isinstance(spec.get("template"), dict):  # revision data
        return {**obj, "spec": {**spec, "template": semantic.canonical_template(spec["template"])}}
    return semantic.canonical_template(obj)


def compute_hash(obj: Any, collision_count: int | None) -> str:
    """controller.ComputeHash: a short, stable, DNS-safe hash of `obj` (a pod template or a
    revision's data); a collision count moves it when two different contents met the same name."""
    data = orjson.dumps(canonical(obj), option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += collision_count.to_bytes(4, "little")
    return safe_encode(str(_fnv32a(data)))


def revision_name(prefix: str, hash_: str) -> str:
    return f"{prefix[:_MAX_PREFIX]}-{hash_}"


def template_patch(template: Obj) -> Obj:
    """The `data` a revision stores for a pod template."""
    return {"spec": {"template": {**copy.deepcopy(template), "$patch": "replace"}}}


def template_of(revision: Obj) -> Obj:
    """The pod template a revision stores."""
    template = dict(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return template


def sort_key(revision: Obj) -> tuple:
    """history.SortControllerRevisions: by revision number, then creation, then name."""
    meta = revision["metadata"]
    return (int(revision.get("revision") or 0), rsutil.parse_time(meta.get("creationTimestamp")), meta["name"])


def next_number(revisions: Iterable[Obj]) -> int:
    return max((int(r.get("revision") or 0) for r in revisions), default=0) + 1


def same_data(a: Obj, b: Obj) -> bool:
    """Whether two revisions' data hold the same template (as Go values)."""
    return a == b or canonical(a) == canonical(b)


def equal(a: Obj, b: Obj) -> bool:
    """history.EqualRevision: the same data. (Upstream first compares the hash labels as
    numbers, which SafeEncodeString'd hashes never parse as, so only the data counts.)"""
    return same_data(a.get("data") or {}, b.get("data") or {})


def new_revision(owner: Obj, *, api_version: str, kind: str, labels: dict[str, str], data: Obj, number: int,
                 name: str, annotations: dict[str, str] | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": owner["metadata"]["namespace"], "labels": dict(labels),
                 "ownerReferences": [rsutil.new_controller_ref(owner, api_version=api_version, kind=kind)]}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": meta, "data": data, "revision": number}


class History:
    """Writes ControllerRevisions (upstream's `realHistory`)."""

    def __init__(self, cluster: Cluster):
        self.registry = cluster.registry("apps", "v1", "controllerrevisions")
        self.revision = 0  # the highest resourceVersion written, for read-your-writes

    def _wrote(self, obj: Obj) -> Obj:
        self.revision = max(self.revision, int(obj["metadata"].get("resourceVersion") or 0))
        return obj

    async def create(self, owner: Obj, build: Callable[[int], Obj], collision_count: int) -> tuple[Obj, int]:
        """Create the revision `build(collision_count)` returns. When its name is taken by
        different content, count a collision and try the next name (CreateControllerRevision);
        an identical revision of this owner is returned as it is."""
        namespace = owner["metadata"]["namespace"]
        for _ in range(100):
            revision = build(collision_count)
            try:
                return self._wrote(await self.registry.create(namespace, revision, podcontrol.WRITE)), collision_count
            except errors.APIError as err:
                if err.code != 409 or err.reason != "AlreadyExists":
                    raise
            existing = await self.registry.get(namespace, revision["metadata"]["name"])
            ref = rsutil.controller_of(existing)
            if ref and ref.get("uid") == owner["metadata"]["uid"] and equal(existing, revision):
                return existing, collision_count
            collision_count += 1
        raise errors.conflict("controllerrevisions", "apps", owner["metadata"]["name"], "too many hash collisions")

    async def renumber(self, revision: Obj, number: int) -> Obj:
        """Give an old revision a new number (a rollback to it)."""
        if int(revision.get("revision") or 0) == number:
            return revision

        def bump(current: Obj) -> Obj:
            current["revision"] = number
            return current

        meta = revision["metadata"]
        return self._wrote(await self.registry.patch(meta["namespace"], meta["name"], bump, podcontrol.WRITE))

    async def delete(self, revision: Obj) -> None:
        meta = revision["metadata"]
        try:
            answer, _ = await self.registry.delete(meta["namespace"], meta["name"], deletion.DeleteOptions())
        except errors.APIError as err:
            if err.code != 404:
                raise
            return
        if isinstance(answer, dict) and answer.get("kind") == "ControllerRevision":
            self._wrote(answer)

    async def truncate(self, revisions: list[Obj], keep: set[str], limit: int) -> None:
        """Delete the oldest revisions not in `keep` (current, update, those pods still run)
        beyond `limit` of them (truncateHistory / cleanupHistory)."""
        old = sorted((r for r in revisions if r["metadata"]["name"] not in keep), key=sort_key)
        for revision in old[:max(len(old) - limit, 0)]:
            await self.delete(revision)
