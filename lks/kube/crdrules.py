"""CEL validation rules of CRD schemas (`x-kubernetes-validations`) applied to custom resources,
as apiextensions' `schema/cel` validator does on create, update and status update.

`build(schema)` compiles a CRD version's rules once into a tree of `Node`s parallel to the
schema (None when the schema has no rules, so such resources pay nothing); `Node.validate`
walks an object with its old version. Each rule sees its value as `self` (at the root and at
embedded resources with `apiVersion`, `kind` and `metadata.name`/`generateName` only); a
transition rule (one that reads `oldSelf`) runs only on update and only where the old value
can be correlated (object fields, map values, items of `x-kubernetes-list-type: map` lists by
key), unless `optionalOldSelf` makes `oldSelf` an optional. A failed rule gives upstream's
field error (`spec: Invalid value: "object": <message>`, the reason's wording, `fieldPath`
appended). A non-transition rule that fails on a value unchanged since the old object (or whose
nearest correlatable ancestor is) gives a warning instead (upstream's validation ratcheting,
KEP-4008: the field error's text as a `Warning` header); evaluation errors stay errors. The
rules are checked when the CRD is written by `lks.kube.crdschemarules`, which uses
`field_path`, `check` (types) and `estimate` (cost) from here. Where the rules' estimated costs
could reach a runtime limit (`Node.budgeted`), each evaluation is charged its estimate with the
object's actual sizes (`lks.kube.cel.cost`): over PerCallLimit the rule fails without running,
and once the object's RuntimeCELCostBudget is spent no further rule runs.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from dataclasses import dataclass, field
from typing import Any

import cel as _cel

from lks.kube import cel, warning
from lks.kube.cel import checker, strings
from lks.kube.cel import cost as celcost
from lks.kube.cel import types as celtypes
from lks.kube.errors import Cause
from lks.kube.policy import projection
from lks.kube.schema import Schema

VARIABLES = ("self", "oldSelf")
MAX_MESSAGE_BYTES = 5 * 1024  # celconfig.MaxEvaluatedMessageExpressionSizeBytes
_META_KEYS = ("name", "generateName")


@dataclass(frozen=True, slots=True)
class Rule:
    rule: str
    program: cel.Program
    message: str = ""
    message_expression: str = ""
    message_program: cel.Program | None = None
    reason: str | None = None
    field_path: str = ""  # normalized: "foo.bar", "foo[key]"
    optional_old_self: bool = False
    cost: int = 0  # the estimated cost of one evaluation, with the schema's bounds (lks.kube.cel.cost)
    checked: checker.Checked | None = None  # the typed AST, to estimate again with actual sizes

    @property
    def sized(self) -> bool:
        """Whether its cost depends on the sizes of the values (else it is always `cost`)."""
        return self.checked is not None and self.cost_sized

    cost_sized: bool = False

    def runtime_cost(self, variables: dict[str, Any]) -> int:
        """The estimate taken with the actual sizes of the values (what cannot be measured
        counts as one)."""
        if not self.sized or self.checked is None:
            return self.cost
        return celcost.estimate(self.checked.ast, frozenset(VARIABLES), celcost.ValueSizes(variables),
                                self.checked.types, unknown=1).max

    @property
    def transition(self) -> bool:
        return self.program.references("oldSelf")

    def error_string(self) -> str:
        """upstream's `ruleErrorString`: the message if there is one, else the rule."""
        return self.message.strip() or self.rule.strip()


@dataclass
class Node:
    type: str  # the schema's type: the value shown in field errors
    rules: list[Rule] = field(default_factory=list)
    properties: dict[str, Node] = field(default_factory=dict)
    additional: Node | None = None
    items: Node | None = None
    all_of: list[Node] = field(default_factory=list)
    resource_root: bool = False  # the CR itself or an embedded resource
    format: str = ""  # a string's: date and date-time values are timestamps for CEL, duration durations
    converts: bool = False  # a value below that CEL sees as another type than JSON's (_typed)
    map_keys: tuple[str, ...] | None = None  # of an `x-kubernetes-list-type: map` list
    atomic_map: bool = False
    reads: dict[str, Any] = field(default_factory=dict)  # what of self/oldSelf the rules read
    budgeted: bool = False  # at the root: the rules may exceed the runtime cost limits, so count

    def compiled(self) -> None:
        """Note what the rules read: only that is converted for CEL, which costs per field."""
        expressions = [e for r in self.rules for e in (r.rule, r.message_expression) if e]
        self.reads = projection.reads(expressions, VARIABLES)

    def validate(self, obj: Any, old: Any, path: str, unchanged: bool = False,
                 budget: _Budget | None = None, *, correlated: bool = True) -> list[Cause]:
        """Every rule broken in `obj`. `old` is the correlated old value (None on create or where
        none correlates); `unchanged` tells an uncorrelatable value whether its nearest
        correlatable ancestor is unchanged (ratcheting: a rule without oldSelf that fails there
        is a warning, `lks.kube.warning`, not an error). `correlated` False: an allOf branch,
        which ratchets by the parent's equality only, as upstream. At a root whose rules could
        exceed the runtime cost limits, their cost is counted (`budget`) and validation stops
        when the object's budget is spent, as upstream."""
        if obj is None:
            return []
        if budget is None and self.budgeted:
            budget = _Budget()
        inherited = unchanged
        if old is not None and correlated:
            unchanged = old == obj
        causes = self._rules(obj, old, path, unchanged, budget) if self.rules else []
        for sub in self.all_of:
            if budget is not None and budget.spent:
                return causes
            causes += sub.validate(obj, old, path, inherited, budget, correlated=False)
        if isinstance(obj, dict) and (self.properties or self.additional is not None):
            old_map = old if isinstance(old, dict) and not self.atomic_map else {}
            for key, value in obj.items():
                if budget is not None and budget.spent:
                    return causes
                sub = self.properties.get(key)
                if sub is not None:
                    causes += sub.validate(value, old_map.get(key), _child(path, key), unchanged, budget,
                                           correlated=correlated)
                elif self.additional is not None:
                    causes += self.additional.validate(value, old_map.get(key), f"{path}[{key}]", unchanged, budget,
                                                       correlated=correlated)
        elif isinstance(obj, list) and self.items is not None:
            olds = _correlate(self.map_keys, old) if self.map_keys and isinstance(old, list) else {}
            for i, item in enumerate(obj):
                if budget is not None and budget.spent:
                    return causes
                causes += self.items.validate(item, olds.get(_key(self.map_keys, item)) if olds else None,
                                              f"{path}[{i}]", unchanged, budget, correlated=correlated)
        return causes

    def _charge(self, rule: Rule, variables: dict[str, Any], budget: _Budget, path: str) -> Cause | None:
        """Count one evaluation's cost; the cause when it is over a limit (the budget spent, or
        the per-call limit: then the rule is not run)."""
        spent = min(rule.runtime_cost(variables), celcost.PER_CALL_LIMIT + 1)
        if spent > budget.remaining:
            budget.spent = True
            return Cause.invalid(path or "<nil>", self.type, "validation failed due to running out of cost budget, "
                                                             "no further validation rules will be run")
        budget.remaining -= spent
        if spent > celcost.PER_CALL_LIMIT:
            return Cause.invalid(path or "<nil>", self.type, "'operation cancelled: actual cost limit exceeded': "
                                                             f"call cost exceeds limit for rule: {rule.error_string()}")
        return None

    def _rules(self, obj: Any, old: Any, path: str, unchanged: bool, budget: _Budget | None = None) -> list[Cause]:
        # transition rules run only with an old value, unless oldSelf is optional for them
        rules = [r for r in self.rules if not r.transition or old is not None or r.optional_old_self]
        if not rules:
            return []
        programs = [p for r in rules for p in (r.program, r.message_program) if p]
        value = self._value(obj, "self")
        old_value = self._value(old, "oldSelf") if old is not None else None
        variables = {"self": value}
        if old_value is not None:
            variables["oldSelf"] = old_value
        plain = cel.activation(variables, programs)
        optional = None
        causes = []
        for rule in rules:
            if budget is not None:
                over = self._charge(rule, variables, budget, path)
                if over is not None:
                    causes.append(over)
                    if budget.spent:
                        return causes
                    continue
            act = plain
            if rule.optional_old_self:
                if optional is None:
                    wrapped = _cel.OptionalValue.of(old_value) if old_value is not None else _cel.OptionalValue.none()
                    optional = cel.activation({"self": value, "oldSelf": wrapped}, programs)
                act = optional
            try:
                ok = rule.program.run(act)
            except cel.EvalError as err:
                causes.append(self._eval_failure(rule, str(err), path))
                continue
            if ok is not True:
                failure = self._failure(rule, act, path)
                if unchanged and not rule.transition:  # ratcheted: the value was accepted before
                    warning.add(f"{failure['field']}: {failure['message']}")
                else:
                    causes.append(failure)
        return causes

    def _value(self, obj: Any, name: str) -> Any:
        """`obj` as the rules see it: type and object meta only at a resource root, only what
        they read, numbers as doubles, dates as timestamps, durations as durations."""
        if self.resource_root and isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
            meta = obj["metadata"]
            obj = {**obj, "metadata": {k: meta[k] for k in _META_KEYS if k in meta}}
        obj = projection.project(obj, self.reads.get(name, {}))
        return _typed(obj, self) if self.converts else obj

    def _eval_failure(self, rule: Rule, error: str, path: str) -> Cause:
        if error.startswith("no such overload"):
            detail = (f"'{error}': call arguments did not match a supported operator, function or macro signature "
                      f"for rule: {rule.error_string()}")
        else:
            detail = f"{error} evaluating rule: {rule.error_string()}"
        return Cause.invalid(path or "<nil>", self.type, detail)

    def _failure(self, rule: Rule, act: cel.Activation, path: str) -> Cause:
        detail = _message(rule, act)
        if rule.field_path:
            path = _child(path, rule.field_path)
        at = path or "<nil>"
        if rule.reason == "FieldValueForbidden":
            return Cause.forbidden(at, detail)
        if rule.reason == "FieldValueRequired":
            return Cause.required(at, detail)
        if rule.reason == "FieldValueDuplicate":
            return Cause(reason="FieldValueDuplicate", message=f'Duplicate value: "{self.type}"', field=at)
        return Cause.invalid(at, self.type, detail)


class _Budget:
    """What is left of one object's runtime cost budget (celconfig.RuntimeCELCostBudget)."""

    __slots__ = ("remaining", "spent")

    def __init__(self) -> None:
        self.remaining = celcost.RUNTIME_BUDGET
        self.spent = False


def _message(rule: Rule, act: cel.Activation) -> str:
    """The messageExpression's value when it gives a usable one, else the message or the rule."""
    if rule.message_program is not None:
        try:
            text = rule.message_program.run(act)
        except cel.EvalError:
            text = None
        if isinstance(text, str):
            text = text.strip()
            if text and "\n" not in text and len(text.encode()) <= MAX_MESSAGE_BYTES:
                return text
    return rule.message.strip() if rule.message else f"failed rule: {rule.error_string()}"


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _key(keys: tuple[str, ...], item: Any) -> tuple | None:
    return tuple(item.get(k) for k in keys) if isinstance(item, dict) else None


def _correlate(keys: tuple[str, ...], old: list[Any]) -> dict[tuple | None, Any]:
    return {_key(keys, item): item for item in old}


def _typed(obj: Any, node: Node | None) -> Any:
    """Values as CEL sees them by their schema (apiextensions' `UnstructuredToVal`): JSON integers
    where the schema says `number` are doubles, strings of format date or date-time timestamps,
    of format duration durations, of format byte the bytes they encode (the checker,
    `lks.kube.cel.types`, types them so)."""
    if node is None or not node.converts:
        return obj
    if node.type == "number" and isinstance(obj, int) and not isinstance(obj, bool):
        return float(obj)
    if node.format and isinstance(obj, str):
        return _formatted(obj, node.format)
    if isinstance(obj, dict):
        return {k: _typed(v, node.properties.get(k) or node.additional) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_typed(v, node.items) for v in obj]
    return obj


def _formatted(text: str, fmt: str) -> Any:
    """A date, date-time, duration or base64 string as its CEL value (the string itself if it
    does not parse: schema validation reports that)."""
    try:
        if fmt == "duration":
            return strings.parse_duration(text)
        if fmt == "byte":
            return base64.b64decode(text, validate=True)
        when = datetime.datetime.fromisoformat(text)
        return when if when.tzinfo is not None else when.replace(tzinfo=datetime.UTC)
    except (ValueError, TypeError, binascii.Error):
        return text


# -- compiling ----------------------------------------------------------------------------------


def has_rules(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    if schema.get("x-kubernetes-validations"):
        return True
    subs = list((schema.get("properties") or {}).values()) + list(schema.get("allOf") or [])
    subs += [schema[k] for k in ("items", "additionalProperties") if isinstance(schema.get(k), dict)]
    return any(has_rules(s) for s in subs)


def build(schema: dict[str, Any]) -> Node | None:
    """The validator of a CRD version's `openAPIV3Schema`, or None when it has no rules."""
    if not has_rules(schema):
        return None
    root = _node(schema, schema, resource_root=True)
    worst = _worst_cost(root, schema, 1)
    root.budgeted = worst is None or worst > celcost.RUNTIME_BUDGET
    return root


def _worst_cost(node: Node, shape: dict[str, Any], cardinality: int | None) -> int | None:
    """The most the rules of `node` and below can cost on one object, by their estimates with the
    schema's bounds (None: a rule may exceed the per-call limit)."""
    total = 0
    for rule in node.rules:
        if rule.cost > celcost.PER_CALL_LIMIT:
            return None
        times = cardinality if cardinality is not None else celcost.max_cardinality(2)
        total += rule.cost * times
    props = shape.get("properties") or {}
    subs = [(sub, props.get(key) or {}, cardinality) for key, sub in node.properties.items()]
    if node.additional is not None:
        subs.append((node.additional, shape.get("additionalProperties") or {},
                     _times(cardinality, shape.get("maxProperties"))))
    if node.items is not None:
        subs.append((node.items, shape.get("items") or {}, _times(cardinality, shape.get("maxItems"))))
    subs += [(sub, shape, cardinality) for sub in node.all_of]
    for sub, sub_shape, times in subs:
        found = _worst_cost(sub, sub_shape if isinstance(sub_shape, dict) else {}, times)
        if found is None:
            return None
        total += found
    return total


def _times(cardinality: int | None, bound: Any) -> int | None:
    return cardinality * max(bound, 0) if cardinality is not None and isinstance(bound, int) else None


def _node(s: dict[str, Any], shape: dict[str, Any], *, resource_root: bool = False) -> Node:
    """`s` holds the rules; `shape` the structure (the same schema, or the one an allOf refines)."""
    node = Node(type=str(shape.get("type") or ""), resource_root=resource_root,
                atomic_map=shape.get("x-kubernetes-map-type") == "atomic")
    if shape.get("x-kubernetes-list-type") == "map":
        node.map_keys = tuple(shape.get("x-kubernetes-list-map-keys") or ())
    for rule in s.get("x-kubernetes-validations") or []:
        compiled = compile_rule(rule, shape, resource_root=resource_root)
        if compiled is not None:
            node.rules.append(compiled)
    node.compiled()
    props = shape.get("properties") or {}
    for key, sub in (s.get("properties") or {}).items():
        if isinstance(sub, dict) and isinstance(props.get(key), dict) and (has_rules(sub) or _converts(sub)):
            node.properties[key] = _node(sub, props[key], resource_root=sub.get("x-kubernetes-embedded-resource") is True)
    extra = s.get("additionalProperties")
    if isinstance(extra, dict) and (has_rules(extra) or _converts(extra)):
        node.additional = _node(extra, extra, resource_root=extra.get("x-kubernetes-embedded-resource") is True)
    items = s.get("items")
    if isinstance(items, dict) and (has_rules(items) or _converts(items)):
        node.items = _node(items, items, resource_root=items.get("x-kubernetes-embedded-resource") is True)
    for sub in s.get("allOf") or []:
        if isinstance(sub, dict) and has_rules(sub):
            node.all_of.append(_node(sub, shape, resource_root=resource_root))
    node.converts = _converts(shape)
    if shape.get("type") == "string" and shape.get("format") in _CONVERTED_FORMATS:
        node.format = shape["format"]
    return node


_CONVERTED_FORMATS = ("date", "date-time", "duration", "byte")


def _converts(s: Any) -> bool:
    """A `number`, or a string CEL sees as a timestamp or a duration, at or below `s`."""
    if not isinstance(s, dict):
        return False
    if s.get("type") == "number" or (s.get("type") == "string" and s.get("format") in _CONVERTED_FORMATS):
        return True
    subs = list((s.get("properties") or {}).values())
    subs += [s[k] for k in ("items", "additionalProperties") if isinstance(s.get(k), dict)]
    return any(_converts(sub) for sub in subs)


def compile_rule(rule: Any, shape: dict[str, Any], *, resource_root: bool = False) -> Rule | None:
    """A rule ready to run; None when it does not compile (the CRD was refused for that)."""
    if not isinstance(rule, dict) or not str(rule.get("rule") or "").strip():
        return None
    try:
        program = cel.compile(rule["rule"], VARIABLES)
        message_program = cel.compile(rule["messageExpression"], VARIABLES) \
            if str(rule.get("messageExpression") or "").strip() else None
    except cel.CompileError:
        return None
    path = field_path(str(rule.get("fieldPath") or ""), shape) if rule.get("fieldPath") else ""
    self_t = self_type(shape, resource_root=resource_root)
    roots = {"self": self_t, "oldSelf": self_t}
    checked = checker.check(rule["rule"], roots)
    found = celcost.estimate(checked.ast, frozenset(roots), celcost.TypeSizes(roots), checked.types) \
        if checked is not None else None
    return Rule(rule=rule["rule"], program=program, message=str(rule.get("message") or ""),
                message_expression=str(rule.get("messageExpression") or ""), message_program=message_program,
                reason=rule.get("reason"), field_path=path or "", optional_old_self=rule.get("optionalOldSelf") is True,
                cost=found.max if found is not None else 0, checked=checked,
                cost_sized=found is not None and found.sized)


def self_type(schema: dict[str, Any], *, resource_root: bool) -> celtypes.Type:
    """The CEL type of `self` for rules on `schema` (apiextensions' `SchemaDeclType`)."""
    return celtypes.from_schema(Schema({}, schema), resource_root=resource_root, name="selfType0")


def check(expression: str, schema: dict[str, Any], *, resource_root: bool,
          optional_old_self: bool = False) -> checker.Checked | None:
    """Type-check a rule or messageExpression against the schema it is declared on; raises
    cel.CompileError with cel-go's text when it does not type-check (None: beyond the checker)."""
    self_t = self_type(schema, resource_root=resource_root)
    old_t = celtypes.optional(self_t) if optional_old_self else self_t
    checked = checker.check(expression, {"self": self_t, "oldSelf": old_t})
    if checked is not None and checked.errors:
        raise cel.CompileError("\n".join(checked.errors))
    return checked


def estimate(expression: str, schema: dict[str, Any], *, resource_root: bool) -> tuple[int, int] | None:
    """The static cost estimate of a rule on `schema` (bounded by its maxItems, maxProperties and
    maxLength) and the smallest serialized size of `self` (for its cardinality); None when the
    expression is beyond the checker."""
    self_t = self_type(schema, resource_root=resource_root)
    roots = {"self": self_t, "oldSelf": self_t}
    checked = checker.check(expression, roots)
    if checked is None:
        return None
    found = celcost.estimate(checked.ast, frozenset(roots), celcost.TypeSizes(roots), checked.types)
    return found.max, self_t.min_size


def field_path(path: str, schema: dict[str, Any]) -> str | None:
    """upstream's `ValidFieldPath`: `.foo.bar` or `.foo['key']` walked through the schema's
    properties (a name) and additionalProperties (a key); the normalized path, or None when it
    names nothing in the schema."""
    out, s, i, n = "", schema, 0, len(path)
    if not path:
        return None
    while i < n:
        if path[i] == ".":
            j = i + 1
            while j < n and path[j] not in ".[]":
                j += 1
            name, i = path[i + 1:j], j
        elif path[i] == "[":
            end = _quoted_end(path, i + 1)
            if end is None or end + 1 >= n or path[end + 1] != "]":
                return None
            name, i = _unescape(path[i + 2:end]), end + 2
            if name is None:
                return None
        else:
            return None
        if not name:
            return None
        props, extra = s.get("properties"), s.get("additionalProperties")
        if props:
            if name not in props:
                return None
            out, s = f"{out}.{name}" if out else name, props[name]
        elif isinstance(extra, dict):
            out, s = f"{out}[{name}]", extra
        else:
            return None
    return out


def _quoted_end(path: str, i: int) -> int | None:
    if i >= len(path) or path[i] != "'":
        return None
    j = i + 1
    while j < len(path):
        if path[j] == "'" and path[j - 1] != "\\":
            return j
        j += 1
    return None


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "'": "'", "\\": "\\"}


def _unescape(s: str) -> str | None:
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\":
            if i + 1 >= len(s) or s[i + 1] not in _ESCAPES:
                return None
            out.append(_ESCAPES[s[i + 1]])
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)
