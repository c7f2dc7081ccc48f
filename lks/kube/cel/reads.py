"""What of its variables an expression can read, through comprehensions: `x.filter(c, has(c.image)
&& c.image.endsWith(':latest'))` reads the image of x's items and nothing else of them, so the
caller may give the interpreter x with only that (`project`). Converting a value for the `cel`
package and copying it as a comprehension walks its items cost per field held, so a Pod's
containers cut to what a rule reads make its evaluation many times cheaper.

Found over the AST (`lks.kube.cel.parser`): each expression names the variable paths it may
stand for (a field selection extends them, a ternary or `+` joins them, a comprehension binds
its variable to the items of its range, `filter` keeps them, `cel.bind` names them); where a
value is used otherwise (compared, passed to a function, returned, indexed by a computed key)
its path is read whole. `has()` and `size()` read only that a value is there and how big.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lks.kube.cel import parser

Tree = dict[str, "Tree | None"]  # field (or ITEMS) -> what of it is read; None: all of it
WHOLE = None
ITEMS = "[]"  # a list's items (or a map's values: a map read so is kept whole)
Alias = tuple[str, tuple[str, ...]]
_ONE_VARIABLE = frozenset({"all", "exists", "exists_one", "filter", "map"})


def reads(expressions: Iterable[str], roots: Iterable[str], trees: dict[str, Tree | None] | None = None
          ) -> dict[str, Tree | None]:
    """For each of `roots` the expressions use: the tree of what they read (merged into `trees`).
    Raises parser.ParseError for a text the parser cannot read."""
    out: dict[str, Tree | None] = trees if trees is not None else {}
    walker = _Walker(frozenset(roots), out)
    for expression in expressions:
        walker.consume(walker.visit(parser.parse(expression), {}))
    return out


def project(value: Any, tree: Tree | None) -> Any:
    """`value` with only what `tree` reads (missing fields stay missing)."""
    if tree is WHOLE:
        return value
    if type(value) is dict:
        if ITEMS in tree:
            return value
        return {k: project(value[k], sub) for k, sub in tree.items() if k in value}
    if type(value) is list:
        items = tree.get(ITEMS, {})
        return [project(v, items) for v in value]
    return value


class _Walker:
    def __init__(self, roots: frozenset[str], trees: dict[str, Tree | None]):
        self.roots, self.trees = roots, trees

    def mark(self, alias: Alias, whole: bool) -> None:
        root, path = alias
        if not path:
            if whole:
                self.trees[root] = WHOLE
            else:
                self.trees.setdefault(root, {})
            return
        node = self.trees.setdefault(root, {})
        if node is WHOLE:
            return
        for step in path[:-1]:
            child = node.setdefault(step, {})
            if child is WHOLE:
                return
            node = child
        if whole:
            node[path[-1]] = WHOLE
        else:
            node.setdefault(path[-1], {})

    def consume(self, aliases: set[Alias]) -> None:
        for alias in aliases:
            self.mark(alias, True)

    def visit(self, node: parser.Node, env: dict[str, set[Alias]]) -> set[Alias]:
        if isinstance(node, parser.Ident):
            if node.name in env:
                return env[node.name]
            return {(node.name, ())} if node.name in self.roots else set()
        if isinstance(node, parser.Select):
            operand = self.visit(node.operand, env)
            if node.optional:
                self.consume(operand)
                return set()
            selected = {(r, p + (node.field,)) for r, p in operand}
            if node.test:  # has(): that it is there
                for alias in selected:
                    self.mark(alias, False)
                return set()
            return selected
        if isinstance(node, parser.Index):
            operand = self.visit(node.operand, env)
            if isinstance(node.index, parser.Lit) and node.index.kind == "string" and not node.optional:
                return {(r, p + (node.index.value,)) for r, p in operand}
            self.consume(self.visit(node.index, env))
            if node.optional:
                self.consume(operand)
                return set()
            return {(r, p + (ITEMS,)) for r, p in operand}
        if isinstance(node, parser.Call):
            return self.call(node, env)
        if isinstance(node, parser.ListLit):
            for item in node.items:
                self.consume(self.visit(item, env))
            return set()
        if isinstance(node, parser.MapLit):
            for key, value in node.entries:
                self.consume(self.visit(key, env))
                self.consume(self.visit(value, env))
            return set()
        return set()

    def call(self, node: parser.Call, env: dict[str, set[Alias]]) -> set[Alias]:
        name, args = node.function, node.args
        if node.macro and name == "has":
            self.visit(args[0], env)
            return set()
        if node.macro and name == "cel.bind" and isinstance(args[0], parser.Ident):
            bound = self.visit(args[1], env)
            return self.visit(args[2], {**env, args[0].name: bound})
        if node.macro and node.target is not None and name in _ONE_VARIABLE and isinstance(args[0], parser.Ident) \
                and (len(args) == 2 or (name == "map" and len(args) == 3)):
            ranged = self.visit(node.target, env)
            items = {(r, p + (ITEMS,)) for r, p in ranged}
            for alias in items:
                self.mark(alias, False)
            inner = {**env, args[0].name: items}
            for arg in args[1:]:
                self.consume(self.visit(arg, inner))
            return ranged if name == "filter" else set()
        if node.macro:  # two-variable comprehensions: their range read whole
            if node.target is not None:
                self.consume(self.visit(node.target, env))
            inner = {**env, **{a.name: set() for a in args if isinstance(a, parser.Ident)}}
            for arg in args:
                if not isinstance(arg, parser.Ident):
                    self.consume(self.visit(arg, inner))
            return set()
        if name == "_?_:_":
            self.consume(self.visit(args[0], env))
            return self.visit(args[1], env) | self.visit(args[2], env)
        if name == "_+_":
            return self.visit(args[0], env) | self.visit(args[1], env)
        if name == "size" and len(args) + (node.target is not None) == 1:
            for r, p in self.visit(node.target if node.target is not None else args[0], env):
                self.mark((r, p + (ITEMS,)), False)
            return set()
        if node.target is not None:
            self.consume(self.visit(node.target, env))
        for arg in args:
            self.consume(self.visit(arg, env))
        return set()
