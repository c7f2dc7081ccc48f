"""Gatekeeper's schema check of mutators (`pkg/mutation/schema`): every mutator with `applyTo`
implies part of its kinds' schema (a field is an object, a list keyed by some field, or, at the
end, a set for ModifySet or a string for AssignImage). Two mutators that disagree on a node for
the same group/version/kind/operation conflict, and so do mutators that go below a node an
AssignImage ends at; conflicting mutators are not applied and report `ErrConflictingSchema` in
their status. The tree is rebuilt from all mutators on each change (there are few).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lks.policy.gatekeeper.mutation import mutators, path

ID = tuple[str, str, str, str]
CONFLICT_TYPE = "ErrConflictingSchema"


@dataclass
class _Node:
    refs: set[ID] = field(default_factory=set)
    children: dict[str, dict[str, _Node]] = field(default_factory=dict)  # key -> node type -> node
    must_terminate: set[ID] = field(default_factory=set)

    def add(self, id_: ID, nodes: tuple[path.Node, ...], terminal: str, must_terminate: bool) -> None:
        self.refs.add(id_)
        if not nodes:
            if must_terminate:
                self.must_terminate.add(id_)
            return
        child = self.children.setdefault(_key(nodes[0]), {}).setdefault(_head_type(nodes, terminal), _Node())
        child.add(id_, nodes[1:], terminal, must_terminate)

    def conflicts(self, key: str) -> set[ID]:
        out: set[ID] = set()
        by_type = self.children.get(key) or {}
        types = len(by_type) - (1 if mutators.UNKNOWN in by_type else 0)
        terminates = any(c.must_terminate for c in by_type.values())
        grandchildren = any(c.children for c in by_type.values())
        for node_type, child in by_type.items():
            if node_type == mutators.UNKNOWN:
                continue
            if types > 1 or (node_type == "List" and len(child.children) > 1):
                out |= child.refs
        if terminates and grandchildren:
            for child in by_type.values():
                out |= child.must_terminate
                for nodes in child.children.values():
                    for grandchild in nodes.values():
                        out |= grandchild.refs
        return out

    def conflicts_along(self, nodes: tuple[path.Node, ...], terminal: str) -> set[ID]:
        if not nodes:
            return set()
        key = _key(nodes[0])
        child = (self.children.get(key) or {}).get(_head_type(nodes, terminal))
        if child is None:
            return set()
        return self.conflicts(key) | child.conflicts_along(nodes[1:], terminal)


def _key(node: path.Node) -> str:
    return node.name if isinstance(node, path.Field) else node.key


def _head_type(nodes: tuple[path.Node, ...], terminal: str) -> str:
    if len(nodes) < 2:
        return terminal
    return "Object" if isinstance(nodes[1], path.Field) else "List"


def conflicts(all_mutators: list[mutators.Mutator]) -> dict[ID, set[ID]]:
    """Each conflicting mutator's id -> the ids it conflicts with (itself included)."""
    schemas: dict[tuple[str, str, str, str], _Node] = {}
    with_schema = [m for m in all_mutators if m.apply_to is not None]
    for m in with_schema:
        for binding in m.bindings:
            schemas.setdefault(binding, _Node()).add(m.id, m.path, m.terminal, m.must_terminate)
    out: dict[ID, set[ID]] = {}
    for m in with_schema:
        found: set[ID] = set()
        for binding in m.bindings:
            found |= schemas[binding].conflicts_along(m.path, m.terminal)
        if found:
            out[m.id] = found
    return out


def describe(ids: set[ID]) -> str:
    """Gatekeeper's `ErrConflictingSchema` message."""
    texts = sorted(f"{kind}.{group} {ns}/{name}" for group, kind, ns, name in ids)
    return f"the following mutators have conflicting schemas: [{','.join(texts)}]"
