"""Walking the OpenAPI-derived JSON schemas of the built-in types (`kubernetes-validate`'s
`$defs`): resolve `$ref`s, step into properties and list items, read the Kubernetes
extensions (`x-kubernetes-patch-merge-key`, `x-kubernetes-patch-strategy`, list types).

Strategic merge patch and, later, validation, defaulting and server-side apply all walk
objects alongside their schema through this one helper.
"""

from __future__ import annotations

from typing import Any

Node = dict[str, Any]
_EMPTY: Node = {}


class Schema:
    """A position in the schema tree; `EMPTY` (no knowledge) when the schema says nothing."""

    __slots__ = ("defs", "node")

    def __init__(self, defs: dict[str, Node], node: Node | None):
        self.defs = defs
        self.node = self._resolve(node or _EMPTY)

    def _resolve(self, node: Node) -> Node:
        ref = node.get("$ref")
        while ref:
            target = self.defs.get(ref.rsplit("/", 1)[-1], _EMPTY)
            # the property carries the extensions; the definition carries the structure
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            ref = target.get("$ref")
        return node

    @classmethod
    def of(cls, defs: dict[str, Node], name: str | None) -> Schema:
        return cls(defs, defs.get(name) if name else None)

    @property
    def known(self) -> bool:
        return bool(self.node)

    def prop(self, key: str) -> Schema:
        props = self.node.get("properties")
        if props and key in props:
            return Schema(self.defs, props[key])
        extra = self.node.get("additionalProperties")
        if isinstance(extra, dict):
            return Schema(self.defs, extra)
        return Schema(self.defs, None)

    def items(self) -> Schema:
        items = self.node.get("items")
        return Schema(self.defs, items if isinstance(items, dict) else None)

    @property
    def merge_key(self) -> str | None:
        return self.node.get("x-kubernetes-patch-merge-key")

    @property
    def patch_strategies(self) -> list[str]:
        value = self.node.get("x-kubernetes-patch-strategy") or ""
        return [s for s in value.split(",") if s]

    @property
    def types(self) -> list[str]:
        t = self.node.get("type")
        if t is None:
            return []
        return t if isinstance(t, list) else [t]
