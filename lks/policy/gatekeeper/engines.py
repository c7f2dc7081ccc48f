"""The code of a ConstraintTemplate, compiled once per template generation: a `Program` whose
`violations(review, parameters, inventory)` gives Gatekeeper's results (`{"msg", "details"}`).

Two engines, as Gatekeeper's drivers: `K8sNativeValidation` (CEL, with lks's own CEL as
ValidatingAdmissionPolicy uses it: `variables.anyObject`, `variables.params`, the template's
variables, `validations` with `message` / `messageExpression`, optional `matchConditions`) and
`Rego` (the `rego` field or a `code` entry; `lks.policy.rego`). When a template carries both,
CEL answers admission and audit alike, as in Gatekeeper: its `--enable-k8s-native-validation`
flag (default true) registers the K8sNativeValidation driver before the Rego one, and the
constraint framework picks the first registered driver among a template's engines, with no
fallback (CEL that does not compile is the template's error, its Rego is not tried). A template
that does not compile raises `IngestError` with the driver's words, for the template
controller's `ingest_error`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import orjson

from lks.kube import cel
from lks.kube.cel import composition, parser, reads, specialize
from lks.kube.cel import source as celsource

Obj = dict[str, Any]

TARGET = "admission.k8s.gatekeeper.sh"
CEL, REGO = "K8sNativeValidation", "Rego"
_CEL_NAMES = ("object", "oldObject", "request", "params", "namespaceObject", "variables")


class IngestError(Exception):
    """The template's code could not be compiled; str(err) is the driver's message."""


class Program(Protocol):
    def violations(self, review: Obj, parameters: Any, inventory: Obj, shared: Obj | None = None) -> list[Obj]:
        """Gatekeeper's results for one review; `shared` is kept by the caller for one review
        across constraints (what an engine can reuse between them)."""
        ...


class CELProgram:
    """A K8sNativeValidation template. `variables.anyObject` and `variables.params` are read as
    top-level names (the expressions are rewritten once), so that one activation per object under
    review serves every constraint: the object is converted for the interpreter once, only the
    parameters change from one constraint to the next (converting a Pod costs ~20x evaluating a
    rule over it).

    Each constraint's parameters also get fast programs of their own (compiled at its first
    review and kept): the parameters written in as literals and the chains of field selections
    from the object hoisted to names bound once per review with only what the templates read of
    them (`lks.kube.cel.specialize`, `lks.kube.cel.reads`; `_Bindings`), so that no constraint
    rebinds anything and no expression copies the object's spec to read one of its fields. Where
    such a program fails (a hoisted chain the object does not have), the constraint is judged
    again with the expressions as written, for the original's words. A review alike, in what a
    constraint's checks read, to one it found compliant is compliant again unevaluated."""

    def __init__(self, source: Obj):
        if not isinstance(source, dict):
            raise IngestError("K8sNativeValidation source must be an object")
        variables: dict[str, cel.Program] = {}  # by the top-level name it is read as
        declared: dict[str, str] = {}
        for v in source.get("variables") or []:
            name = v.get("name") or ""
            program = _compile(v.get("expression") or "", "variables", declared)  # sees the ones before it
            declared[name] = _VARIABLE + name
            variables[declared[name]] = program
        conditions = [_compile(c.get("expression") or "", "matchConditions", declared)
                      for c in source.get("matchConditions") or []]
        validations: list[tuple[cel.Program, str, cel.Program | None, str]] = []
        for v in source.get("validations") or []:
            expr = v.get("expression") or ""
            message_expr = v.get("messageExpression")
            validations.append((_compile(expr, "validations", declared),
                                v.get("message") or f"failed expression: {expr.strip()}",
                                _compile(message_expr, "messageExpression", declared) if message_expr else None,
                                expr))
        if not validations:
            raise IngestError("K8sNativeValidation source must have at least one validation")
        self.exact = _Programs(variables, conditions, validations)
        self.names = self.exact.names
        self.declared = tuple(declared.values())
        for program in self.exact.all():
            _PROGRAMS.setdefault(program.expression, program)
            _note_fields(program.expression)
        # the fast programs' texts, before the parameters: chains hoisted (at ingest, once)
        # messages run only on a violation: what they read (often a whole item, to print it) is
        # bound in an activation of their own, made at a review's first violation
        messages = [m for _, _, m, _ in validations if m is not None]
        self._hoisted = _CHECKS.hoist([p for p in self.exact.all() if p not in messages])
        self._hoisted.update(_MESSAGES.hoist(messages))
        self._fast: dict[int, tuple[Any, _Programs | None]] = {}  # by id of the parameters object
        self._fast_by_json: dict[bytes, _Programs | None] = {}

    def violations(self, review: Obj, parameters: Any, inventory: Obj, shared: Obj | None = None) -> list[Obj]:
        """`shared`: kept by the caller per review, for the activations every constraint reuses."""
        shared = shared if shared is not None else {}
        fast = self._specialized(parameters)
        if fast is not None:
            # a review with the same values of what the checks read as one found compliant (a
            # ReplicaSet's pods): compliant again, without converting or evaluating anything
            key = _CHECKS.fingerprint(review, shared, fast.inputs)
            if key is not None and key in fast.compliant:
                shared["cel_kept"] = True
                return []
            # the same for one found violating, whose messages read the same too
            messages = _MESSAGES.fingerprint(review, shared, fast.message_inputs) \
                if key is not None and key in fast.violating else None
            if messages is not None and (key, messages) in fast.violations:
                shared["cel_kept"] = True
                return [{**r, "details": dict(r["details"])} for r in fast.violations[key, messages]]
            # where others were found compliant, bind only what this one reads
            act = _CHECKS.activation(review, shared, fast.checks if shared.get("cel_kept") else None)
            try:
                found = _judge(fast, act, shared, strict=True,
                               message_act=lambda names: _MESSAGES.activation(review, shared, names))
            except cel.EvalError:
                pass  # judged again as written, for the original's words
            else:
                if key is not None and not found:
                    _keep(fast.compliant, key, None)
                elif key is not None:
                    messages = _MESSAGES.fingerprint(review, shared, fast.message_inputs)
                    if messages is not None:
                        _keep(fast.violating, key, None)
                        _keep(fast.violations, (key, messages), [{**r, "details": dict(r["details"])} for r in found])
                return found
        act = _activation(review, self.names, shared)
        ctx = act.context
        for name in (_PARAMS, "params"):
            # a change of the context costs a rebuild of its environment: constraints with the
            # same parameters one after the other (the caller's order) bind them once
            if name in self.names and shared.get(name, _UNSET) != parameters:
                ctx.add_variable(name, parameters)
                shared[name] = parameters
        return _judge(self.exact, act, shared, strict=False)

    def _specialized(self, parameters: Any) -> _Programs | None:
        """The constraint's own programs (None: its parameters have no CEL literal)."""
        hit = self._fast.get(id(parameters))
        if hit is not None and hit[0] is parameters:
            return hit[1]
        try:
            key = orjson.dumps(parameters, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            return None
        if key not in self._fast_by_json:
            if len(self._fast_by_json) >= _FAST_KEPT:
                self._fast_by_json.clear()
            self._fast_by_json[key] = self._compile_fast(parameters)
        if len(self._fast) >= _FAST_KEPT:
            self._fast.clear()
        fast = self._fast[id(parameters)] = (parameters, self._fast_by_json[key])  # keeps it: the id stays its
        return fast[1]

    def _compile_fast(self, parameters: Any) -> _Programs | None:
        def one(program: cel.Program) -> cel.Program:
            text, paths = self._hoisted[id(program)]
            text = specialize.substitute(text, (_PARAMS, "params"), parameters)
            names = (*_NAMES, *self.declared, *paths.values())
            return cel.compile(text, names)

        try:
            exact = self.exact
            fast = _Programs({name: one(p) for name, p in exact.variables.items()},
                             [one(p) for p in exact.conditions],
                             [(one(p), message, one(m) if m is not None else None, expr)
                              for p, message, m, expr in exact.validations])
        except (specialize.NotLiteral, cel.CompileError):
            return None
        messages = [m for _, _, m, _ in fast.validations if m is not None]
        checks = frozenset().union(*(p.variables for p in fast.all() if p not in messages))
        _CHECKS.names.update(checks)
        _MESSAGES.names.update(*(m.variables for m in messages))
        fast.checks = checks
        fast.inputs = tuple(sorted(n for n in checks if n in _CHECKS.hoisted or n in _ROOTS))
        fast.message_inputs = tuple(sorted({n for m in messages for n in m.variables
                                            if n in _MESSAGES.hoisted or n in _ROOTS}))
        return fast


def _keep(kept: dict[Any, Any], key: Any, value: Any) -> None:
    if len(kept) >= _KEPT:
        del kept[next(iter(kept))]  # the oldest
    kept[key] = value


class _Programs:
    """A template's compiled expressions: as written (with `variables.*` read by name), or a
    constraint's fast ones."""

    __slots__ = ("variables", "conditions", "validations", "names", "checks", "inputs", "compliant",
                 "message_inputs", "violating", "violations")

    def __init__(self, variables: dict[str, cel.Program], conditions: list[cel.Program],
                 validations: list[tuple[cel.Program, str, cel.Program | None, str]]):
        self.variables, self.conditions, self.validations = variables, conditions, validations
        self.names = frozenset().union(*(p.variables for p in self.all()))
        # fast programs: the names of the review their checks read (hoisted chains, roots), and
        # the reviews whose values of them were found compliant: judged the same again
        self.checks: frozenset[str] = self.names  # what all but the messages read
        self.inputs: tuple[str, ...] = ()
        self.compliant: dict[bytes, None] = {}
        # and those found violating: with what their messages read, the results
        self.message_inputs: tuple[str, ...] = ()
        self.violating: dict[bytes, None] = {}
        self.violations: dict[tuple[bytes, bytes], list[Obj]] = {}

    def all(self) -> list[cel.Program]:
        return [*self.variables.values(), *self.conditions] + [p for v in self.validations for p in v[::2] if p]


def _judge(programs: _Programs, act: cel.Activation, shared: Obj, *, strict: bool,
           message_act: Callable[[frozenset[str]], cel.Activation] | None = None) -> list[Obj]:
    """Gatekeeper's results of `programs` over `act`. `strict`: an evaluation error is raised (the
    caller judges again with the expressions as written) instead of being a result.
    `message_act`: the activation messages run over, when not `act`."""
    # this evaluation's variables, each computed when first read (by the resolver the shared
    # activation carries): binding values instead would rebuild the interpreter's environment,
    # converting the object again, once per variable and constraint
    state = shared["cel_variables"] = composition.Variables(
        programs.variables, lambda program: program.run(act), prefix=_VARIABLE) if programs.variables else None
    run = state.run if state is not None else lambda program: program.run(act)
    for program in programs.conditions:
        try:
            if run(program) is False:
                return []
        except cel.EvalError:
            if strict:
                raise
            continue
    out: list[Obj] = []
    for program, message, message_expr, expr in programs.validations:
        try:
            ok = run(program)
        except cel.EvalError as err:
            if strict:
                raise
            out.append({"msg": f"expression {expr.strip()!r} resulted in error: {err}", "details": {}})
            continue
        if ok is True:
            continue
        text = message
        if message_expr is not None:
            try:
                shown = run(message_expr) if message_act is None else \
                    _run_on(message_act(message_expr.variables), message_expr, state)
                if isinstance(shown, str) and shown.strip():
                    text = shown
            except cel.EvalError:
                if strict:
                    raise
        out.append({"msg": text, "details": {}})
    return out


_ANY, _PARAMS = "gatekeeperAnyObject", "gatekeeperParams"
_VARIABLE = "gatekeeperVariable_"  # + name: `variables.<name>` of the template's own variables
_UNSET = object()
_PROGRAMS: dict[str, cel.Program] = {}  # every template expression compiled, for their functions
_REWRITTEN = {"anyObject": _ANY, "params": _PARAMS}
_NAMES = (*_CEL_NAMES, _ANY, _PARAMS)
_ROOTS = (_ANY, "object", "oldObject", "request", "namespaceObject")  # the chains hoisted start at these
_FAST_KEPT = 1024  # constraints' fast programs kept per template
_KEPT = 256  # reviews' answers kept per constraint (compliant, violating)


class _Bindings:
    """The hoisted chains of some of the fast programs (their checks, or their messages) and the
    review's activation that binds them: checks' at a review's first constraint, messages' at its
    first violation (messages print what checks need not read, whole items)."""

    def __init__(self, key: str):
        self.key = key  # of the review's activation in `shared`
        self.hoisted: dict[str, tuple[specialize.Path, reads.Tree | None]] = {}  # by the name read as
        self.by_read: dict[tuple[specialize.Path, bytes], str] = {}  # (path, what of it is read) -> name
        self.root_trees: dict[str, reads.Tree | None] = {}  # what is read of the roots themselves
        self.roots_read = 0  # changes of root_trees
        self.names: set[str] = set()  # every name the programs read

    def hoist(self, programs: list[cel.Program]) -> dict[int, tuple[str, dict[specialize.Path, str]]]:
        """Each program's text with its chains hoisted, by id of the program. A chain's name is
        shared by the templates that read the same of it (`reads`: a rule over the containers'
        images binds containers with only their images; the interpreter copies an item whole as
        it walks a list, so the less an item holds the cheaper)."""
        local: dict[specialize.Path, str] = {}
        texts = [specialize.hoist(p.expression, _ROOTS, names=local)[0] for p in programs]
        trees: dict[str, reads.Tree | None] = {}
        try:
            reads.reads(texts, {*local.values(), *_ROOTS}, trees)
        except parser.ParseError:
            trees = {name: reads.WHOLE for name in (*local.values(), *_ROOTS)}
        for root in _ROOTS:
            if root in trees:
                merged = _merge(self.root_trees.get(root, {}), trees[root])
                if merged != self.root_trees.get(root):
                    self.root_trees[root] = merged
                    self.roots_read += 1
        final: dict[specialize.Path, str] = {}
        for path, name in local.items():
            tree = trees.get(name, {}) if path[0] == specialize.VALUE else {}
            key = (path, orjson.dumps(tree, option=orjson.OPT_SORT_KEYS))
            if key not in self.by_read:
                self.by_read[key] = f"lks{self.key.title()}{len(self.hoisted)}_{'_'.join(path[2])}"[:200]
                self.hoisted[self.by_read[key]] = (path, tree)
            final[path] = self.by_read[key]
        return {id(p): specialize.hoist(p.expression, _ROOTS, names=dict(final)) for p in programs}

    def activation(self, review: Obj, shared: Obj, needed: frozenset[str] | None = None) -> cel.Activation:
        """The review's activation: every hoisted chain the object has (with what is read of it)
        and every other name the programs read, bound at once (a later binding rebuilds the
        interpreter's environment); or, given the names a program reads, at least those (for
        messages: few run in a review)."""
        act: cel.Activation | None = shared.get(self.key)
        known = (len(self.hoisted), len(self.names), self.roots_read)  # what was bound
        if act is not None and shared[self.key + "_known"] == known \
                and (needed is None or needed <= shared[self.key + "_names"]):
            return act
        old = shared.get(self.key + "_known")
        shared[self.key + "_known"] = known
        bound: set[str] = shared.setdefault(self.key + "_names", set())
        if act is None:
            act = shared[self.key] = cel.activation({}, _PROGRAMS.values())
        if self.key + "_resolver" not in shared and any(n.startswith(_VARIABLE) or n == "variables"
                                                        for n in self.names):
            # asked for every name the interpreter looks up: only once a template has variables
            shared[self.key + "_resolver"] = True
            act.context.set_variable_resolver(lambda name: _resolve(shared, name))
        if old is not None and old[2] != known[2]:
            bound.difference_update(_ROOTS)  # what is read of them grew: bound again
        for name in self.hoisted:
            if name not in bound and (needed is None or name in needed):
                present, value = self.value(review, shared, name)
                if present:  # one the object does not have stays unbound: reading it fails
                    act.context.add_variable(name, value)
                bound.add(name)
        for name in self.names - bound if needed is None else needed - bound:
            if name in self.hoisted:
                continue  # the object does not have it
            if name in _ROOTS:
                act.context.add_variable(name, self.value(review, shared, name)[1])
            elif name.startswith(_VARIABLE):
                act.context.add_variable(name, None)  # what the resolver's None (a null variable) falls through to
            elif name == "variables":
                act.context.add_variable(name, {})
            bound.add(name)
        return act


    def value(self, review: Obj, shared: Obj, name: str) -> tuple[bool, Any]:
        """(whether the review has it, the value with only what is read of it) of a hoisted
        chain or a root, computed once per review."""
        values: dict[tuple[str, int], tuple[bool, Any]] = shared.setdefault(self.key + "_values", {})
        found = values.get((name, self.roots_read))
        if found is None:
            roots = shared.get("cel_roots")
            if roots is None:
                roots = shared["cel_roots"] = _roots(review)
            if name in _ROOTS:
                found = (True, reads.project(roots[name], self.root_trees.get(name, reads.WHOLE)))
            else:
                path, tree = self.hoisted[name]
                bound = specialize.bind({name: path}, roots)
                found = (True, reads.project(bound[name], tree)) if name in bound else (False, None)
            values[(name, self.roots_read)] = found
        return found

    def fingerprint(self, review: Obj, shared: Obj, names: tuple[str, ...]) -> bytes | None:
        """What `names` are in this review, as one key (None: not JSON)."""
        try:
            return orjson.dumps([self.value(review, shared, n) for n in names])
        except TypeError:
            return None


def _merge(a: reads.Tree | None, b: reads.Tree | None) -> reads.Tree | None:
    if a is reads.WHOLE or b is reads.WHOLE:
        return reads.WHOLE
    return {k: _merge(a[k], b[k]) if k in a and k in b else (a[k] if k in a else b[k]) for k in {*a, *b}}


_CHECKS, _MESSAGES = _Bindings("cel_fast"), _Bindings("cel_message")


def _run_on(act: cel.Activation, program: cel.Program, state: composition.Variables | None) -> Any:
    return state.run(program, lambda p: p.run(act)) if state is not None else program.run(act)


def _roots(review: Obj) -> Obj:
    """The values of the roots chains are hoisted from."""
    obj = review.get("object")
    return {_ANY: review.get("oldObject") if review.get("operation") == "DELETE" and obj is None else obj,
            "object": obj, "oldObject": review.get("oldObject"),
            "request": {k: v for k, v in review.items() if k not in ("object", "oldObject")},
            "namespaceObject": review.get("_namespace")}


def _activation(review: Obj, names: frozenset[str], shared: Obj) -> cel.Activation:
    """The review's activation, with at least `names` bound (added the first time one is needed)."""
    act: cel.Activation | None = shared.get("cel")
    bound: set[str] = shared.setdefault("cel_names", set())
    if act is not None and names <= bound:  # every constraint after the first
        return act
    missing = names - bound - {"params", _PARAMS, "variables"}
    if act is None:
        # with only the functions templates call: the interpreter's environment costs time per
        # function each time it is rebuilt (a constraint's other parameters)
        act = shared["cel"] = cel.activation({}, _PROGRAMS.values())
    if "cel_resolver" not in shared and any(n == "variables" or n.startswith(_VARIABLE) for n in names):
        shared["cel_resolver"] = True
        act.context.set_variable_resolver(lambda name: _resolve(shared, name))
    for name in missing:
        if name == _ANY:
            obj = review.get("object")
            value = _pruned(review.get("oldObject") if review.get("operation") == "DELETE" and obj is None else obj)
        elif name in ("object", "oldObject"):
            value = _pruned(review.get(name))
        elif name == "request":
            value = {k: v for k, v in review.items() if k not in ("object", "oldObject")}
        elif name == "namespaceObject":
            value = review.get("_namespace")
        elif name.startswith(_VARIABLE):
            value = None  # what the resolver's None (a null variable) falls through to
        else:
            value = review.get(name)
        act.context.add_variable(name, value)
        bound.add(name)
    if "variables" in names and "variables" not in bound:
        act.context.add_variable("variables", {})
    bound.update(names)  # the parameters and variables are bound by the program itself
    return act


def _resolve(shared: Obj, name: str) -> Any:
    """The running template's variable `name` (None: not one of them, or null)."""
    state: composition.Variables | None = shared.get("cel_variables")
    return state.resolve(name) if state is not None else None


# What of an object the compiled templates read: top-level field -> the fields of it they read
# (None: all of it); `_WHOLE` once one reads an object other than field by field. Converting an
# object for the interpreter is most of an evaluation's cost, and stored objects carry much no
# template reads (managedFields, status). A superset over every template ever compiled: safe.
_FIELDS: dict[str, set[str] | None] = {"apiVersion": None, "kind": None}
_WHOLE = [False]
_OBJECTS = frozenset(("object", "oldObject", _ANY))


def _note_fields(expression: str) -> None:
    try:
        toks = celsource.tokens(expression)
    except celsource.SyntaxProblem:
        _WHOLE[0] = True
        return
    toks = toks + [celsource.Token("end", "", len(expression))] * 4  # lookahead past the end
    for i, t in enumerate(toks):
        if t.kind != "ident" or t.text not in _OBJECTS or (i and toks[i - 1].text == "."):
            continue
        if toks[i + 1].text != "." or toks[i + 2].kind != "ident":
            _WHOLE[0] = True  # the object itself: passed, compared, indexed
            return
        top = toks[i + 2].text
        known = _FIELDS.get(top, set())
        if top != "metadata":
            _FIELDS[top] = None
        elif known is None:
            continue
        elif toks[i + 3].text == "." and toks[i + 4].kind == "ident":
            known.add(toks[i + 4].text)
            _FIELDS[top] = known
        elif toks[i + 3].text == ")" and i >= 2 and toks[i - 1].text == "(" and toks[i - 2].text == "has":
            _FIELDS[top] = known  # has(x.metadata): that it is there
        else:
            _FIELDS[top] = None


def _pruned(obj: Any) -> Any:
    """`obj` with only what the templates read (see `_FIELDS`)."""
    if _WHOLE[0] or not isinstance(obj, dict):
        return obj
    out: Obj = {}
    for top, sub in _FIELDS.items():
        if top not in obj:
            continue
        value = obj[top]
        if sub is not None and isinstance(value, dict):
            value = {k: value[k] for k in sub if k in value}
        out[top] = value
    return out


def _compile(expression: str, where: str, declared: Mapping[str, str]) -> cel.Program:
    """`declared`: the template's variables in scope, by name -> the top-level name they are read as."""
    try:
        cel.compile(expression, _CEL_NAMES)  # errors as the user wrote it
    except cel.CompileError as err:
        raise IngestError(f"{where}: compilation failed: {err}") from None
    try:
        return cel.compile(_rewrite(expression, declared), (*_NAMES, *declared.values()))
    except cel.CompileError as err:
        raise IngestError(f"{where}: compilation failed: {err}") from None


def _rewrite(expression: str, declared: Mapping[str, str]) -> str:
    """`variables.anyObject` / `variables.params` and the template's `declared` variables as
    top-level names (tokens, not text: a string literal that mentions them stays as it is).
    `has(variables.x)` stays: a test of the whole map."""
    try:
        toks = celsource.tokens(expression)
    except celsource.SyntaxProblem:
        return expression
    out, last = [], 0
    for i in range(len(toks) - 2):
        a, dot, b = toks[i], toks[i + 1], toks[i + 2]
        if a.kind != "ident" or a.text != "variables" or dot.text != "." or b.kind != "ident" \
                or (i and toks[i - 1].text == "."):
            continue
        if b.text in _REWRITTEN:
            out.append(expression[last:a.pos])
            out.append(_REWRITTEN[b.text])
            last = b.pos + len(b.text)
        elif b.text in declared and not (i >= 2 and toks[i - 1].text == "(" and toks[i - 2].text == "has"
                                         and i + 3 < len(toks) and toks[i + 3].text == ")"):
            out.append(expression[last:a.pos])
            out.append(declared[b.text])
            last = b.pos + len(b.text)
    out.append(expression[last:])
    return "".join(out)


class RegoProgram:
    def __init__(self, rego: str, libs: list[str], version: str = "v0"):
        try:
            from lks.policy import rego as engine  # written alongside; absent, templates say so
        except ImportError:
            raise IngestError("the Rego engine is not available") from None
        compile_template = getattr(engine, "compile_template", None)
        if compile_template is None:
            raise IngestError("the Rego engine is not available")
        try:
            self.program = compile_template(rego, list(libs), version=version)
        except engine.RegoError as err:
            raise IngestError(str(err)) from None

    def violations(self, review: Obj, parameters: Any, inventory: Obj, shared: Obj | None = None) -> list[Obj]:
        # `shared`: the review converted for rego-cpp once, for every Rego constraint after the first
        return self.program.violations(review, parameters if parameters is not None else {}, inventory, shared)


def compile_template(template: Obj, *, native_validation: bool = True) -> Program:
    """The program of `template`'s admission target; IngestError if it has none or it does not
    compile. `native_validation`: Gatekeeper's `--enable-k8s-native-validation` (false: Rego only)."""
    targets = (template.get("spec") or {}).get("targets") or []
    if len(targets) != 1:
        raise IngestError(f"expected exactly 1 item in targets, got {len(targets)}")
    target = targets[0]
    if target.get("target") != TARGET:
        raise IngestError(f'target "{target.get("target")}" not recognized')
    code: Mapping[str, Any] = {c.get("engine"): c.get("source") for c in target.get("code") or []}
    if native_validation and CEL in code:
        return CELProgram(code[CEL])
    rego, libs, version = target.get("rego"), target.get("libs") or [], "v0"
    if REGO in code:
        source = code[REGO] or {}
        if rego:
            raise IngestError('"Rego" may only be specified in one place: the rego field or code')
        rego, libs, version = source.get("rego"), source.get("libs") or libs, source.get("version") or "v0"
    if not rego:
        raise IngestError("no language driver is installed for this template: it has neither Rego nor "
                          "K8sNativeValidation code")
    return RegoProgram(rego, libs, version)
