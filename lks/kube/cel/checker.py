"""The CEL type checker (cel-go's `checker`): the type of every node of an expression parsed by
`lks.kube.cel.parser`, given the types of its variables (`lks.kube.cel.types`), with cel-go's
errors rendered as it renders them:

    ERROR: <input>:1:7: undefined field 'replicas'
    ERROR: <input>:1:3: found no matching overload for '_+_' applied to '(string, int)'
    ERROR: <input>:1:2: expected type 'int' but found 'string'   (list and map literals agree)

Calls resolve against `lks.kube.cel.signatures`; `dyn` (and what the schemas leave open) is
assignable to anything, so only what is certainly wrong is reported. Undeclared names are
`lks.kube.cel.source`'s to report (at compile), not this module's. Callers: CRD rules when a
CRD is written (`lks.kube.crdschemarules`), admission policy type checking
(`lks.kube.policy.typecheck`); the cost estimator reuses the types this computes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from lks.kube.cel import parser, source
from lks.kube.cel import types as t
from lks.kube.cel.signatures import SIGNATURES, Overload

_LOGICAL = ("_&&_", "_||_")
_COMPREHENSIONS = ("all", "exists", "exists_one", "map", "filter", "transformList", "transformMap",
                   "transformMapEntry")


@dataclass
class Checked:
    """The result of checking: the expression's type, its errors (rendered), and each node's type."""

    ast: parser.Node
    type: t.Type
    errors: list[str]
    types: dict[int, t.Type] = field(default_factory=dict)  # id(node) -> type
    unknown: bool = False  # it calls a function without a declared signature (its type may be wider)

    def type_of(self, node: parser.Node) -> t.Type:
        return self.types.get(id(node), t.DYN)


def check(expression: str, variables: Mapping[str, t.Type], ast: parser.Node | None = None) -> Checked | None:
    """Check `expression` with `variables` typed; None when it does not parse here (the
    interpreter's parser then reports it, or it is beyond this checker)."""
    if ast is None:
        try:
            ast = parser.parse(expression)
        except parser.ParseError:
            return None
    c = _Checker(expression, variables)
    try:
        result = c.visit(ast)
    except RecursionError:
        return None  # thousands of operands in a chain: left to the interpreter
    return Checked(ast, result, c.errors, c.types, c.unknown)


class _Checker:
    def __init__(self, text: str, variables: Mapping[str, t.Type]):
        self.text = text
        self.variables = variables
        self.scopes: list[dict[str, t.Type]] = []
        self.errors: list[str] = []
        self.types: dict[int, t.Type] = {}
        self.unknown = False

    def error(self, pos: int, message: str) -> t.Type:
        self.errors.append(source.render(self.text, pos, message))
        return t.ERROR

    def visit(self, node: parser.Node) -> t.Type:
        result = self._visit(node)
        self.types[id(node)] = result
        return result

    def _visit(self, node: parser.Node) -> t.Type:
        if isinstance(node, parser.Lit):
            return t.NULL if node.kind == "null" else t.TYPE_NAMES[node.kind]
        if isinstance(node, parser.Ident):
            return self.ident(node.name)
        if isinstance(node, parser.Select):
            qualified = _qualified(node)
            if qualified is not None and not self.declared(qualified.split(".")[0]) and qualified in self.variables:
                return self.variables[qualified]
            return self.select(node, self.visit(node.operand))
        if isinstance(node, parser.Index):
            operand, index = self.visit(node.operand), self.visit(node.index)
            if node.optional:
                inner = operand.params[0] if operand.kind == "opaque" and operand.name == "optional_type" else operand
                return t.optional(self.resolve(node.pos, "_[_]", [inner, index], False))
            return self.resolve(node.pos, "_[_]", [operand, index], False)
        if isinstance(node, parser.ListLit):
            items = [(item, self.visit(item)) for item in node.items]
            return t.list_of(self.join([(item, _present(kind) if i in node.optional else kind)
                                        for i, (item, kind) in enumerate(items)]))
        if isinstance(node, parser.MapLit):
            keys = self.join([(k, self.visit(k)) for k, _ in node.entries])
            values = [(v, self.visit(v)) for _, v in node.entries]
            return t.map_of(keys, self.join([(v, _present(kind) if i in node.optional else kind)
                                             for i, (v, kind) in enumerate(values)]))
        assert isinstance(node, parser.Call)
        return self.call(node)

    # -- names and fields -----------------------------------------------------------------

    def declared(self, name: str) -> bool:
        return any(name in s for s in self.scopes) or name in self.variables

    def ident(self, name: str) -> t.Type:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        if name in self.variables:
            return self.variables[name]
        if name in t.TYPE_NAMES:
            return t.type_of(t.TYPE_NAMES[name])
        return t.DYN  # undeclared: reported at compile

    def select(self, node: parser.Select, operand: t.Type) -> t.Type:
        optional = operand.kind == "opaque" and operand.name == "optional_type"
        if optional and node.optional:
            operand = operand.params[0] if operand.params else t.DYN
        if t.is_dyn(operand):
            found = t.DYN
        elif operand.kind == "map":
            found = operand.params[1]
        elif operand.kind == "object":
            got = operand.field(node.field)
            if got is None:
                return self.error(node.pos, f"undefined field '{node.field}'")
            found = got
        else:
            return self.error(node.pos, f"type '{operand}' does not support field selection")
        if node.test:
            return t.BOOL
        return t.optional(found) if node.optional else found

    # -- calls ----------------------------------------------------------------------------

    def call(self, node: parser.Call) -> t.Type:
        if node.macro:
            return self.macro(node)
        name = node.function
        if node.target is not None:
            qualified = _qualified(node.target)
            if qualified is not None and not self.declared(qualified.split(".")[0]) \
                    and f"{qualified}.{name}" in SIGNATURES:
                name, target = f"{qualified}.{name}", None
            else:
                target = node.target
        else:
            target = None
        args = [self.visit(a) for a in node.args]
        if name in _LOGICAL:
            for arg in args:
                if not t.is_dyn(arg) and arg != t.BOOL:
                    return self.error(node.pos, _no_overload(name, args, False))
            return t.BOOL
        if target is not None:
            args.insert(0, self.visit(target))
        return self.resolve(node.pos, name, args, target is not None)

    def resolve(self, pos: int, name: str, args: list[t.Type], member: bool) -> t.Type:
        overloads = [o for o in SIGNATURES.get(name, ()) if o.member == member and len(o.params) == len(args)]
        if name not in SIGNATURES:
            self.unknown = True
            return t.DYN  # a function lks implements without a declared signature
        if any(a.kind == "error" for a in args):
            return t.ERROR
        results = []
        for overload in overloads:
            result = _apply(overload, args)
            if result is not None:
                results.append(result)
        if not results:
            return self.error(pos, _no_overload(name, args, member))
        first = results[0]
        return first if all(_same(r, first) for r in results) else t.DYN

    def join(self, items: list[tuple[parser.Node, t.Type]]) -> t.Type:
        """The element type of a list or map literal (whose elements must agree, as Kubernetes'
        environments have cel-go's HomogeneousAggregateLiterals)."""
        joined: t.Type | None = None
        for node, current in items:
            if joined is None or current.kind == "error":
                joined = joined or current
                continue
            if _assignable(joined, current, {}):
                joined = current if t.is_dyn(current) else joined
            elif _assignable(current, joined, {}):
                joined = current
            else:
                self.error(node.pos, f"expected type '{joined}' but found '{current}'")
                return t.ERROR
        return joined if joined is not None else t.DYN

    # -- macros ---------------------------------------------------------------------------

    def macro(self, node: parser.Call) -> t.Type:
        name = node.function
        if name == "has":
            self.visit(node.args[0])
            return t.BOOL
        if name == "cel.bind":
            var = node.args[0]
            init = self.visit(node.args[1])
            self.scopes.append({var.name: init} if isinstance(var, parser.Ident) else {})
            result = self.visit(node.args[2])
            self.scopes.pop()
            return result
        assert node.target is not None
        range_type = self.visit(node.target)
        two = name.startswith("transform") or (name in ("all", "exists", "exists_one") and len(node.args) == 3)
        count = 2 if two else 1
        names = [a.name if isinstance(a, parser.Ident) else "" for a in node.args[:count]]
        if t.is_dyn(range_type):
            first, second = t.DYN, t.DYN
        elif range_type.kind == "list":
            first, second = (t.INT, range_type.elem) if two else (range_type.elem, t.DYN)
        elif range_type.kind == "map":
            first, second = range_type.params[0], range_type.params[1]
        else:
            self.error(node.target.pos, f"expression of type '{range_type}' cannot be range of a comprehension "
                                        "(must be list, map, or dynamic)")
            first, second = t.DYN, t.DYN
        self.scopes.append(dict(zip(names, (first, second), strict=False)))
        bodies = [(a, self.visit(a)) for a in node.args[count:]]
        self.scopes.pop()
        result = bodies[-1][1] if bodies else t.DYN
        # a predicate (every body of all/exists/exists_one/filter, the middle one of a filtering map)
        # is not a bool: cel-go reports the operator of the expansion it sits in, at the call
        predicates = bodies if name in ("all", "exists", "exists_one", "filter") else bodies[:-1]
        for _, body in predicates:
            if t.is_dyn(body) or body == t.BOOL:
                continue
            if name in ("all", "exists"):
                self.error(node.pos, _no_overload("_&&_" if name == "all" else "_||_", [t.BOOL, body], False))
            elif name == "exists_one":
                self.error(node.pos, _no_overload("_?_:_", [body, t.INT, t.INT], False))
            else:
                accu = t.list_of(first if name == "filter" else result)
                self.error(node.pos, _no_overload("_?_:_", [body, accu, accu], False))
        if name in ("all", "exists", "exists_one"):
            return t.BOOL
        if name == "filter":
            return range_type if range_type.kind == "list" else t.list_of(first)
        if name in ("map", "transformList"):
            return t.list_of(result)
        if name == "transformMap":
            return t.map_of(first, result)
        return result  # transformMapEntry: the map each entry gives


def _present(kind: t.Type) -> t.Type:
    """The value of an optional element (`[?x]`): what `x` holds when it has one."""
    return kind.params[0] if kind.kind == "opaque" and kind.name == "optional_type" and kind.params else kind


def _qualified(node: parser.Node) -> str | None:
    """`a.b.c` of a chain of selections on a name, else None."""
    parts = []
    while isinstance(node, parser.Select) and not node.optional:
        parts.append(node.field)
        node = node.operand
    if not isinstance(node, parser.Ident):
        return None
    return ".".join([node.name, *reversed(parts)])


def _no_overload(name: str, args: list[t.Type], member: bool) -> str:
    """cel-go's `formatFunctionDeclType`: `(string, int)`, or `int.(string)` for a member call."""
    if member:
        return f"found no matching overload for '{name}' applied to '{args[0]}.({', '.join(map(str, args[1:]))})'"
    return f"found no matching overload for '{name}' applied to '({', '.join(map(str, args))})'"


def _apply(overload: Overload, args: list[t.Type]) -> t.Type | None:
    bindings: dict[str, t.Type] = {}
    for p, a in zip(overload.params, args, strict=True):
        if not _assignable(p, a, bindings):
            return None
    return _substitute(overload.result, bindings)


def _assignable(p: t.Type, a: t.Type, bindings: dict[str, t.Type]) -> bool:
    """Whether a value of type `a` may be passed where `p` is declared, binding type parameters."""
    if p.kind == "param":
        bound = bindings.get(p.name)
        if bound is None:
            bindings[p.name] = a
            return True
        if _assignable(bound, a, {}):
            if t.is_dyn(bound) and not t.is_dyn(a):
                return True
            return True
        if _assignable(a, bound, {}):
            bindings[p.name] = a
            return True
        return False
    if t.is_dyn(p) or t.is_dyn(a):
        _bind_dyn(p, bindings)
        return True
    if a.kind == "null":
        return p.kind in ("null", "object", "opaque") or p.name in (t.TIMESTAMP.name, t.DURATION.name)
    if a.kind == "object" or p.kind == "object":
        # fields are checked where selected; two schemas' objects may be compared, and an object
        # with a map (`self.?spec.orValue({})`): both are JSON objects at runtime
        return a.kind in ("object", "map") and p.kind in ("object", "map")
    if a.kind == "type" and p.kind == "type":
        return True  # `type(x) == string`: type values compare whatever they denote
    if p.kind != a.kind or p.name != a.name or len(p.params) != len(a.params):
        return False
    return all(_assignable(pp, ap, bindings) for pp, ap in zip(p.params, a.params, strict=True))


def _bind_dyn(p: t.Type, bindings: dict[str, t.Type]) -> None:
    if p.kind == "param":
        bindings.setdefault(p.name, t.DYN)
    for sub in p.params:
        _bind_dyn(sub, bindings)


def _substitute(result: t.Type, bindings: dict[str, t.Type]) -> t.Type:
    if result.kind == "param":
        return bindings.get(result.name, t.DYN)
    if not result.params:
        return result
    params = tuple(_substitute(p, bindings) for p in result.params)
    return t.Type(result.kind, result.name, params, max=result.max, min_size=result.min_size)


def _same(a: t.Type, b: t.Type) -> bool:
    return a is b or (a.kind != "object" and a == b)
