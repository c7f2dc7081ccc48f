"""A ValidatingAdmissionPolicy or binding as admission uses it: parsed and compiled once, when
the object changes (`lks.kube.policy.source` keeps them), never per request.

A policy's expressions that do not compile (stored before a check existed, or by a newer
server) do not stop the others: each keeps its error, which admission reports according to
the policy's failurePolicy, as upstream's compilation results do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lks.kube import cel
from lks.kube.cel import composition, parser
from lks.kube.cel import cost as celcost
from lks.kube.policy import matching, projection

Obj = dict[str, Any]

# the names an expression may use (upstream's OptionalVariableDeclarations and composition env)
BASE = frozenset(("object", "oldObject", "request", "namespaceObject", "variables"))
PARAMS, AUTHORIZER = "params", "authorizer"
_VALUES = frozenset(("object", "oldObject", "params", "request", "namespaceObject", "variables"))


def declared(*, params: bool, authorizer: bool) -> frozenset[str]:
    return BASE | ({PARAMS} if params else set()) | ({AUTHORIZER} if authorizer else set())


@dataclass(frozen=True, slots=True)
class Expr:
    """One compiled expression, or why it did not compile; with its estimated cost (sizes
    unknown: the values are typed `dyn` here) and whether that depends on the values' sizes."""

    source: str
    program: cel.Program | None
    error: str = ""  # upstream's `compilation failed: ERROR: <input>:...`
    cost: int = 0
    ast: parser.Node | None = None  # kept when the cost depends on sizes, to estimate per request

    @classmethod
    def compile(cls, source: str, names: frozenset[str], declared: Mapping[str, str] | None = None) -> Expr:
        """`declared`: the policy's variables in scope (name -> the top-level name they are read
        as, `lks.kube.cel.composition`): the program runs with `variables.<name>` read by name."""
        try:
            program = cel.compile(source, names)
            if declared:
                rewritten = composition.rewrite(source, declared)
                if rewritten != source:
                    program = cel.compile(rewritten, names | frozenset(declared.values()))
        except cel.CompileError as err:
            return cls(source, None, f"compilation failed: {err}")
        try:
            ast = parser.parse(source)
        except parser.ParseError:
            return cls(source, program)
        found = celcost.estimate(ast, _VALUES, lambda path: None)
        return cls(source, program, cost=found.max, ast=ast if found.sized else None)

    def runtime_cost(self, values: Mapping[str, Any]) -> int:
        """The estimate with the sizes of the request's values (what cannot be measured counts one)."""
        if self.ast is None:
            return self.cost
        return celcost.estimate(self.ast, _VALUES, celcost.ValueSizes(values), unknown=1).max

    @property
    def names(self) -> frozenset[str]:
        return self.program.variables if self.program is not None else frozenset()


@dataclass(frozen=True, slots=True)
class Validation:
    expr: Expr
    message: str
    message_expr: Expr | None
    reason: str


@dataclass(slots=True)
class Policy:
    name: str
    uid: str
    generation: int
    failure_policy: str  # Fail | Ignore
    criteria: matching.Criteria
    param_kind: tuple[str, str] | None  # (apiVersion, kind)
    match_conditions: list[tuple[str, Expr]]
    variables: list[tuple[str, Expr]]
    validations: list[Validation]
    audit_annotations: list[tuple[str, Expr]]
    # what requests must give its expressions: the names they use, the parts of object,
    # oldObject and params they read, and the library functions they call
    roots: frozenset[str] = frozenset()
    reads: dict[str, projection.Tree | None] = field(default_factory=dict)
    functions: dict[str, Any] = field(default_factory=dict)
    costly: bool = False  # its expressions may exceed the runtime cost limits: count them per request
    bindings: dict[str, Binding] = field(default_factory=dict)  # by name, kept by the source
    ordered: tuple[Binding, ...] = ()  # the bindings by name, as requests walk them

    @classmethod
    def compile(cls, obj: Obj) -> Policy:
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        kind = spec.get("paramKind")
        param_kind = (kind.get("apiVersion") or "", kind.get("kind") or "") if isinstance(kind, dict) else None
        full = declared(params=param_kind is not None, authorizer=True)
        bare = declared(params=param_kind is not None, authorizer=False)
        # each variable sees the ones before it, the other expressions all of them
        names: dict[str, str] = {}
        variables = []
        for v in spec.get("variables") or ():
            name = v.get("name") or ""
            variables.append((name, Expr.compile(v.get("expression") or "", full, names)))
            names = {**names, name: composition.PREFIX + name}
        validations = [
            Validation(Expr.compile(v.get("expression") or "", full, names), (v.get("message") or "").strip(),
                       Expr.compile(v["messageExpression"], bare, names) if (v.get("messageExpression") or "").strip()
                       else None,
                       v.get("reason") or "Invalid")
            for v in spec.get("validations") or ()
        ]
        policy = cls(
            meta.get("name") or "", meta.get("uid") or "", meta.get("generation") or 0,
            spec.get("failurePolicy") or "Fail", matching.Criteria.parse(spec.get("matchConstraints")),
            param_kind,
            [(c.get("name") or "", Expr.compile(c.get("expression") or "", full, names))
             for c in spec.get("matchConditions") or ()],
            variables,
            validations,
            [(a.get("key") or "", Expr.compile(a.get("valueExpression") or "", full, names))
             for a in spec.get("auditAnnotations") or ()],
        )
        exprs = [e for _, e in policy.match_conditions + policy.variables + policy.audit_annotations]
        exprs += [v.expr for v in validations] + [v.message_expr for v in validations if v.message_expr]
        sources = [e.source for e in exprs if e.program is not None]
        policy.roots = frozenset().union(*(e.names for e in exprs))
        policy.reads = projection.reads(sources, ("object", "oldObject", PARAMS))
        policy.functions = projection.functions(sources)
        costs = [e.cost for e in exprs if e.program is not None]
        policy.costly = any(e.ast is not None for e in exprs) or any(c > celcost.PER_CALL_LIMIT for c in costs) \
            or sum(costs) > celcost.RUNTIME_BUDGET
        return policy


@dataclass(frozen=True, slots=True)
class Binding:
    name: str
    policy_name: str
    criteria: matching.Criteria | None  # None: every request the policy matches
    param_ref: Obj | None
    actions: tuple[str, ...]

    @classmethod
    def compile(cls, obj: Obj) -> Binding:
        spec = obj.get("spec") or {}
        match = spec.get("matchResources")
        return cls((obj.get("metadata") or {}).get("name") or "", spec.get("policyName") or "",
                   matching.Criteria.parse(match) if isinstance(match, dict) else None,
                   spec.get("paramRef") if isinstance(spec.get("paramRef"), dict) else None,
                   tuple(spec.get("validationActions") or ()))
