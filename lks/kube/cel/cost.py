"""The cost of CEL expressions (cel-go's `checker.CostEstimator`, k8s.io/apiserver's limits): a
worst-case estimate in cel-go's cost units, computed from an expression's AST and the sizes of
the values it traverses, and the limits Kubernetes puts on it.

Sizes come from a `Sizes` oracle asked for the path of each value an expression reads
(`self.spec.items`, `self.spec.items.@items.name`, as cel-go's `AstNode.Path()`): `TypeSizes`
answers from the schema's bounds (maxItems, maxProperties, maxLength, or what the largest
request could hold) for the static estimate a CRD is refused by; `ValueSizes` answers from the
object being validated. The `cel` interpreter counts no cost as it runs, so the runtime budget
(`PerCallLimit`, `RuntimeCELCostBudget`) is enforced on the same estimate taken with the actual
sizes of the object's lists, maps and strings before the program runs: an upper bound of what
cel-go would count (it assumes every comprehension runs to the end, and `exists` may stop
early), so a rule near the limit can be refused here where upstream lets it finish. An expression
whose estimate reads no sizes costs the same every time: `Estimate.sized` tells callers when the
runtime estimate is worth taking at all, which keeps the common rules free of it.

Costs per node follow cel-go: 1 per identifier, selection and call, 10 to build a list and 30 a
map, string traversals at 0.1 per byte, regular expressions by the product of both lengths
(the pattern's at 0.25), and a comprehension its range's size times its step and condition.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lks.kube.cel import parser
from lks.kube.cel import types as t

PER_CALL_LIMIT = 1_000_000  # celconfig.PerCallLimit
RUNTIME_BUDGET = 10_000_000  # celconfig.RuntimeCELCostBudget
STATIC_LIMIT = 10_000_000  # apiextensions validation.StaticEstimatedCostLimit
STATIC_CRD_LIMIT = 100_000_000  # StaticEstimatedCRDCostLimit
MAX_UINT = 2 ** 64 - 1
UNBOUNDED = t.MAX_REQUEST_BYTES  # the size of what nothing bounds

Path = tuple[str, ...]
Sizes = Callable[[Path], "int | None"]

_STRING_TRAVERSAL = 0.1
_REGEX_LENGTH = 0.25
# traversing their (first) string argument, at 0.1 per byte
_STRING_FUNCTIONS = frozenset({
    "lowerAscii", "upperAscii", "trim", "replace", "split", "substring", "indexOf", "lastIndexOf", "format",
    "strings.quote", "quantity", "isQuantity", "url", "isURL", "ip", "isIP", "cidr", "isCIDR", "semver", "isSemver",
    "ip.isCanonical", "bytes", "string", "validate", "join", "reverse"})
_COMPARISONS = frozenset({"_==_", "_!=_", "_<_", "_<=_", "_>_", "_>=_"})
_REGEX_FUNCTIONS = frozenset({"matches", "find", "findAll"})
_LIST_FUNCTIONS = frozenset({"isSorted", "sum", "min", "max", "indexOf", "lastIndexOf", "slice", "flatten",
                             "distinct", "reverse", "join", "sort"})
_SET_FUNCTIONS = frozenset({"sets.contains", "sets.equivalent", "sets.intersects"})
# calls whose result is no larger than their receiver (or first argument)
_SAME_SIZE = frozenset({"lowerAscii", "upperAscii", "trim", "substring", "reverse", "split", "findAll", "slice",
                        "distinct", "sort", "flatten", "string", "bytes", "orValue", "value", "dyn", "find"})


@dataclass(frozen=True, slots=True)
class Estimate:
    max: int
    sized: bool  # whether it depends on the sizes of the values (else the same for every object)


def estimate(ast: parser.Node, roots: frozenset[str], sizes: Sizes, types: Mapping[int, t.Type] | None = None,
             *, unknown: int = UNBOUNDED) -> Estimate:
    """The worst-case cost of `ast`, reading the sizes of the values under the variables `roots`
    from `sizes`; a size nothing tells is `unknown`. `types`: the checker's node types, which tell
    a string comparison (0.1 per byte) from a list comparison."""
    e = _Estimator(roots, sizes, types or {}, unknown)
    try:
        return Estimate(min(e.cost(ast), MAX_UINT), e.sized)
    except RecursionError:  # a chain too long to walk: not estimated
        return Estimate(0, False)


class _Estimator:
    def __init__(self, roots: frozenset[str], sizes: Sizes, types: Mapping[int, t.Type], unknown: int):
        self.roots, self.sizes, self.types, self.unknown = roots, sizes, types, unknown
        self.scopes: list[dict[str, Path | None]] = []
        self.sized = False

    # -- paths and sizes ------------------------------------------------------------------

    def path(self, node: parser.Node) -> Path | None:
        if isinstance(node, parser.Ident):
            for scope in reversed(self.scopes):
                if node.name in scope:
                    return scope[node.name]
            return (node.name,) if node.name in self.roots else None
        if isinstance(node, parser.Select) and not node.test:
            base = self.path(node.operand)
            return base + (node.field,) if base is not None else None
        if isinstance(node, parser.Index):
            base = self.path(node.operand)
            return base + ("@items",) if base is not None else None
        if isinstance(node, parser.Call) and not node.macro and node.function in ("orValue", "value") \
                and node.target is not None:
            return self.path(node.target)
        return None

    def size(self, node: parser.Node) -> int:
        kind = self.types.get(id(node))
        if kind is not None and kind.kind in ("prim", "null") and kind.name not in ("string", "bytes"):
            return 1  # a scalar (cel-go sizes them 1)
        path = self.path(node)
        if path is not None:
            self.sized = True
            got = self.sizes(path)
            return self.unknown if got is None else got
        if isinstance(node, parser.Lit):
            return len(node.value) if isinstance(node.value, (str, bytes)) else 1
        if isinstance(node, parser.ListLit):
            return len(node.items)
        if isinstance(node, parser.MapLit):
            return len(node.entries)
        if isinstance(node, parser.Call):
            if node.macro and node.function in ("map", "filter", "transformList", "transformMap") and node.target:
                return self.size(node.target)
            if node.function == "_+_" and len(node.args) == 2:
                return self.size(node.args[0]) + self.size(node.args[1])
            if node.function in _SAME_SIZE:
                first = node.target if node.target is not None else (node.args[0] if node.args else None)
                if first is not None:
                    return self.size(first)
            if node.function == "lists.range" and node.args and isinstance(node.args[0], parser.Lit):
                return max(int(node.args[0].value or 0), 0)
        self.sized = True
        return self.unknown

    # -- costs ----------------------------------------------------------------------------

    def cost(self, node: parser.Node) -> int:
        if isinstance(node, parser.Lit):
            return 0
        if isinstance(node, parser.Ident):
            return 1
        if isinstance(node, parser.Select):
            return self.cost(node.operand) + 1
        if isinstance(node, parser.Index):
            return self.cost(node.operand) + self.cost(node.index) + 1
        if isinstance(node, parser.ListLit):
            return 10 + sum(self.cost(i) for i in node.items)
        if isinstance(node, parser.MapLit):
            return 30 + sum(self.cost(k) + self.cost(v) for k, v in node.entries)
        assert isinstance(node, parser.Call)
        if node.macro:
            return self.macro(node)
        name = node.function
        if name in ("_&&_", "_||_"):
            return sum(self.cost(a) for a in node.args)
        if name == "_?_:_":
            cond, yes, no = node.args
            return self.cost(cond) + max(self.cost(yes), self.cost(no))
        args = ([node.target] if node.target is not None else []) + node.args
        total = sum(self.cost(a) for a in args)
        if node.target is not None and isinstance(node.target, parser.Ident) and node.target.name in (
                "sets", "lists", "strings", "optional", "format", "ip") and node.target.name not in self.roots:
            total -= 1  # a namespace, not a variable
            name = f"{node.target.name}.{name}"
            args = node.args
        return total + self.call(name, args)

    def call(self, name: str, args: list[parser.Node]) -> int:
        """One call's own cost (cel-go's `functionCost` and the Kubernetes libraries')."""
        if not args:
            return 1
        if name in _COMPARISONS and len(args) == 2:
            if any(isinstance(a, parser.Lit) and a.kind not in ("string", "bytes") for a in args):
                return 1  # against a number, bool or null: no traversal, whatever the other side is
            return max(1, _traverse(min(self.size(args[0]), self.size(args[1]))))
        if name == "_+_" and len(args) == 2:
            return _traverse(self.size(args[0]) + self.size(args[1])) if self._sized_value(args[0]) else 1
        if name == "contains" and len(args) == 2 and self._sized_value(args[0]):
            return _traverse(self.size(args[0])) * _traverse(self.size(args[1]))
        if name in ("startsWith", "endsWith") and len(args) == 2:
            return _traverse(self.size(args[1]))
        if name in _REGEX_FUNCTIONS and len(args) >= 2:
            return _traverse(self.size(args[0]) + 1) * max(1, math.ceil(_REGEX_LENGTH * self.size(args[1])))
        if name in _SET_FUNCTIONS and len(args) == 2:
            return max(1, self.size(args[0]) * self.size(args[1]))
        if name == "@in" and len(args) == 2:
            kind = self.types.get(id(args[1]))
            return 1 if kind is not None and kind.kind == "map" else max(1, self.size(args[1]))
        if name in _LIST_FUNCTIONS and self._is_list(args[0]):
            n = self.size(args[0])
            return max(1, n * max(1, math.ceil(math.log2(n))) if name == "sort" and n > 1 else n)
        if name in _STRING_FUNCTIONS and self._sized_value(args[0]):
            return _traverse(self.size(args[0]))
        return 1

    def _is_list(self, node: parser.Node) -> bool:
        kind = self.types.get(id(node))
        return kind is None or kind.kind in ("list", "dyn", "error")

    def _sized_value(self, node: parser.Node) -> bool:
        """A string, bytes or list (or what may be one): its size counts."""
        kind = self.types.get(id(node))
        if kind is None:
            return True
        return kind.name in ("string", "bytes") or kind.kind in ("list", "map", "dyn", "error")

    def macro(self, node: parser.Call) -> int:
        name = node.function
        if name == "has":
            return self.cost(node.args[0].operand) + 1 if isinstance(node.args[0], parser.Select) else 1
        if name == "cel.bind":
            var, init, body = node.args
            init_cost = self.cost(init)
            self.scopes.append({var.name: self.path(init)} if isinstance(var, parser.Ident) else {})
            body_cost = self.cost(body)
            self.scopes.pop()
            return 10 + init_cost + body_cost
        assert node.target is not None
        range_cost = self.cost(node.target)
        n = self.size(node.target)
        base = self.path(node.target)
        two = name.startswith("transform") or (name in ("all", "exists", "exists_one") and len(node.args) == 3)
        count = 2 if two else 1
        names = [a.name if isinstance(a, parser.Ident) else "" for a in node.args[:count]]
        element = base + ("@items",) if base is not None else None
        self.scopes.append({names[0]: None, names[1]: element} if two else {names[0]: element})
        bodies = [self.cost(a) for a in node.args[count:]]
        self.scopes.pop()
        body = sum(bodies)
        if name == "all":
            return range_cost + 1 + n * (3 + body)
        if name == "exists":
            return range_cost + 1 + n * (4 + body)
        if name == "exists_one":
            return range_cost + 2 + n * (2 + body)
        if name == "filter":
            return range_cost + 11 + n * (13 + body)
        if name in ("transformMap", "transformMapEntry"):
            return range_cost + 31 + n * (3 + body)
        return range_cost + 11 + n * (12 + body)  # map, transformList


def _traverse(size: int) -> int:
    return math.ceil(_STRING_TRAVERSAL * size)


# -- the sizes ------------------------------------------------------------------------------------


class TypeSizes:
    """Sizes from the types of the roots (schema bounds): None where a type bounds nothing."""

    def __init__(self, roots: Mapping[str, t.Type]):
        self.roots = roots

    def __call__(self, path: Path) -> int | None:
        current = self.roots.get(path[0])
        for step in path[1:]:
            if current is None:
                return None
            if step == "@items":
                current = current.elem if current.kind in ("list", "map") else None
            elif current.kind == "map":
                current = current.params[1]
            elif current.kind == "object":
                current = current.field(step)
            else:
                return None
        if current is None or current.max <= 0:
            return None
        return current.max


class ValueSizes:
    """Sizes from the values being validated: the largest list, map or string at the path (over
    every item where it passes through a list or map)."""

    def __init__(self, values: Mapping[str, Any]):
        self.values = values

    def __call__(self, path: Path) -> int | None:
        if path[0] not in self.values:
            return None
        current = [self.values[path[0]]]
        for step in path[1:]:
            nxt = []
            for value in current:
                if step == "@items":
                    if isinstance(value, list):
                        nxt.extend(value)
                    elif isinstance(value, dict):
                        nxt.extend(value.values())
                elif isinstance(value, dict) and step in value:
                    nxt.append(value[step])
            current = nxt
        return max((len(v) for v in current if isinstance(v, (str, bytes, list, dict))), default=0)


def exceeds_message(what: str, cost: int, limit: int) -> str:
    """upstream's `getCostErrorMessage`."""
    factor = cost / limit
    if factor > 100.0:
        shown = "more than 100x"
    elif factor < 1.5:
        shown = f"{factor:f}x"
    else:
        shown = f"{factor:.1f}x"
    return (f"{what} exceeds budget by factor of {shown} (try simplifying the rule, or adding maxItems, "
            "maxProperties, and maxLength where arrays, maps, and strings are declared)")


def max_cardinality(min_size: int) -> int:
    """upstream's `MaxCardinality`: how often data of this smallest size fits in a request."""
    return t.MAX_REQUEST_BYTES // (min_size + 1)
