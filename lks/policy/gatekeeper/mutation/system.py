"""The mutation system (Gatekeeper's `mutation.System`): the cluster's valid mutators in id
order (group, kind, name), the schema conflicts among them (`schema`), and `mutate`, which runs
every matching, non-conflicting mutator over an object again and again until an iteration
changes nothing; more iterations than mutators + 1 is Gatekeeper's "not converging" error.
Gatekeeper adds the `gatekeeper.sh/mutation-id` and `gatekeeper.sh/mutations` annotations only
with `--mutation-annotations`, which the AKS add-on does not pass, so none are added here.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from lks.policy.gatekeeper import constraints
from lks.policy.gatekeeper.mutation import mutators, schema

Obj = dict[str, Any]


class MutationError(Exception):
    """The object could not be mutated (the webhook answers 500 with this message)."""


class System:
    def __init__(self) -> None:
        self.mutators: dict[schema.ID, mutators.Mutator] = {}
        self.conflicts: dict[schema.ID, set[schema.ID]] = {}

    def upsert(self, m: mutators.Mutator) -> None:
        self.mutators[m.id] = m
        self.conflicts = schema.conflicts(list(self.mutators.values()))

    def remove(self, id_: schema.ID) -> None:
        if self.mutators.pop(id_, None) is not None:
            self.conflicts = schema.conflicts(list(self.mutators.values()))

    def mutate(self, obj: Obj, *, group: str, version: str, kind: str, operation: str,
               namespace_labels: Obj | None) -> bool:
        """Mutate `obj` in place to a fixed point; True if it changed. Raises MutationError."""
        ordered = [self.mutators[i] for i in sorted(self.mutators)]
        run_id = uuid.uuid4()
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or ""
        for iteration in range(1, len(ordered) + 2):
            old = copy.deepcopy(obj)
            applied = False
            meta = obj.get("metadata") or {}
            target = constraints.Target(group, kind, namespace, meta.get("name") or "", meta.get("labels") or {},
                                        namespace_labels)
            for m in ordered:
                if m.id in self.conflicts:
                    continue
                if not m.matches(group, version, kind, operation, target, meta.get("generateName") or ""):
                    continue
                try:
                    applied = m.mutate(obj) or applied
                except mutators.MutateError as err:
                    raise MutationError(f"mutation {run_id} for mutator {m.describe()} failed for "
                                        f"{_subject(group, kind, obj)}: {err}") from None
            if not applied or obj == old:
                return iteration != 1
        raise MutationError(f"mutation not converging: mutation {run_id} not converging for "
                            f"{_subject(group, kind, obj)}")


def _subject(group: str, kind: str, obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{group} {kind} {meta.get('namespace') or ''} {meta.get('name') or meta.get('generateName') or ''}"


def json_patch(old: Any, new: Any, at: str = "") -> list[Obj]:
    """RFC 6902 operations that turn `old` into `new` (what controller-runtime's
    `PatchResponseFromRaw` sends back)."""
    if isinstance(old, dict) and isinstance(new, dict):
        ops: list[Obj] = []
        for k in old:
            if k not in new:
                ops.append({"op": "remove", "path": f"{at}/{_escape(k)}"})
        for k, v in new.items():
            if k not in old:
                ops.append({"op": "add", "path": f"{at}/{_escape(k)}", "value": v})
            elif not _equal(old[k], v):
                ops.extend(json_patch(old[k], v, f"{at}/{_escape(k)}"))
        return ops
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        ops = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            if not _equal(a, b):
                ops.extend(json_patch(a, b, f"{at}/{i}"))
        return ops
    return [{"op": "replace", "path": at, "value": new}]


def _equal(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")
