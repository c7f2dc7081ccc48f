"""Gatekeeper's CEL fast programs (`lks.policy.gatekeeper.engines`): a constraint's parameters
written in as literals and the object's chains hoisted to names bound once per review, with only
what the templates read of them (`lks.kube.cel.specialize`, `lks.kube.cel.reads`). They must
judge exactly as the expressions as written: every Azure built-in template over its examples,
edge objects and the gatekeeper-library samples, with several parameters; a review's
constraints share one activation that nothing rebinds; a fast program that fails is judged
again as written (the original's words). And the pieces: literals, hoisting, substitution,
the read analysis through comprehensions, `matches` compiled once with RE2's `$`."""

from __future__ import annotations

import pytest

from lks.kube import cel
from lks.kube.cel import reads, specialize
from lks.policy.azure import catalog, parameters
from lks.policy.gatekeeper import engines
from tests.policy.test_azure_templates import CASES, _review
from tests.policy.test_azure_templates_cel import _EDGES, _LIBRARY, _MORE


def _exact(program: engines.CELProgram, review: dict, params) -> list:
    saved = engines.CELProgram._specialized
    engines.CELProgram._specialized = lambda self, parameters: None
    try:
        return program.violations(review, params, {}, {})
    finally:
        engines.CELProgram._specialized = saved


def _params(doc: dict, given: dict) -> dict:
    effective = parameters.check("a", doc, {k: {"value": v} for k, v in given.items()})
    return parameters.resolve(doc, effective)["details"].get("values") or {}


@pytest.mark.parametrize(("guid", "given"), [(c[0], c[1]) for c in CASES], ids=[c[0][:8] for c in CASES])
def test_fast_programs_judge_as_the_expressions_as_written(guid, given):
    doc = catalog.definition(guid)
    template = catalog.template(doc)
    program = engines.compile_template(template)
    assert isinstance(program, engines.CELProgram)
    kind = template["metadata"]["name"]
    variants = [_params(doc, given), *_MORE.get(kind, []), None]
    objects = [c[2] for c in CASES] + [c[3] for c in CASES] + _EDGES + _LIBRARY[::3]
    for params in variants:
        assert program._specialized(params) is not None or params is None
        for obj in objects:
            review = _review(obj)
            assert program.violations(review, params, {}, {}) == _exact(program, review, params), (kind, params, obj)


def test_a_reviews_constraints_share_one_activation_nothing_rebinds():
    programs = []
    for doc in catalog.definitions():
        template = catalog.template(doc)
        values = _params(doc, next((c[1] for c in CASES if c[0] == doc["name"]), {}))
        programs.append((engines.compile_template(template), values))
    review = _review(CASES[0][2])
    shared: dict = {}
    programs[0][0].violations(review, programs[0][1], {}, shared)
    act, known = shared["cel_fast"], shared["cel_fast_known"]
    for program, values in programs[1:]:
        program.violations(review, values, {}, shared)
        assert engines._PARAMS not in program._specialized(values).names  # written in, never bound
    for program, values in programs:
        program.violations(review, values, {}, shared)
        assert shared["cel_fast"] is act and shared["cel_fast_known"] == known


def test_a_failing_fast_program_is_judged_again_in_the_originals_words():
    program = engines.CELProgram({"validations": [{"expression": "variables.anyObject.spec.missing.x == 1"}]})
    review = {"kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
              "object": {"kind": "Pod", "metadata": {"name": "p"}, "spec": {}}}
    assert program.violations(review, None, {}, {}) == _exact(program, review, None) == [
        {"msg": "expression 'variables.anyObject.spec.missing.x == 1' resulted in error: no such key: missing",
         "details": {}}]


def test_literals():
    assert specialize.literal({"a": [1, 2.5, "x\"y\n", None, True], "b": {}}) == \
        '{"a": [1, 2.5, "x\\"y\\n", null, true], "b": {}}'
    assert cel.compile(specialize.literal({"s": "é'\\", "n": -3}), ()).run({}) == {"s": "é'\\", "n": -3}
    with pytest.raises(specialize.NotLiteral):
        specialize.literal(float("nan"))
    with pytest.raises(specialize.NotLiteral):
        specialize.literal(2**64)


def test_hoist_bind_and_substitute():
    names: dict = {}
    shadowing = "o.spec.x == 1 && l.all(o, o.z)"  # a macro binds `o`: left as written
    assert specialize.hoist(shadowing, ("o",), names=names) == (shadowing, {})
    text, used = specialize.hoist("has(o.spec.x) && o.spec.x.y > size(o.metadata.name) && has(o.spec) && "
                                  "o.spec.f('o.a.b')", ("o",), names=names)
    has_x, x_y, name, spec = (used[("has", "o", ("spec", "x"))], used[("value", "o", ("spec", "x", "y"))],
                              used[("value", "o", ("metadata", "name"))], used[("value", "o", ("spec",))])
    assert text == f"{has_x} && {x_y} > size({name}) && has(o.spec) && {spec}.f('o.a.b')"
    bound = specialize.bind({n: p for p, n in used.items()}, {"o": {"spec": {"x": {"y": 2}}, "metadata": {}}})
    assert bound == {has_x: True, x_y: 2, spec: {"x": {"y": 2}}}  # no metadata.name: unbound
    assert specialize.substitute("p.a + size(p.b) + (has(p.c) ? 1 : 0) + (p == null ? 0 : 1)", ("p",),
                                 {"a": 1, "b": [2]}) == "(1) + size(([2])) + (false ? 1 : 0) + (({\"a\": 1, \"b\": [2]}) == null ? 0 : 1)"
    assert specialize.substitute("p.a.b", ("p",), None) == "(null).a.b"


def test_reads_through_comprehensions():
    trees = reads.reads([
        "(has(x.spec) && has(x.spec.cs) ? x.spec.cs : []).filter(c, has(c.image) && c.image.endsWith(':latest'))"
        ".all(c, c.name != '')",
        "size(x.spec.volumes) > 0 && x.metadata.labels['app'] == 'web'",
    ], ("x",))
    assert trees == {"x": {"spec": {"cs": {"[]": {"image": None, "name": None}}, "volumes": {"[]": {}}},
                           "metadata": {"labels": {"app": None}}}}
    assert reads.reads(["x.spec.cs.map(c, c).size() > 0", "x.spec.cs[0].name == ''"], ("x",)) == \
        {"x": {"spec": {"cs": {"[]": None}}}}
    pod = {"spec": {"cs": [{"name": "a", "image": "i", "env": [1]}], "volumes": [{"name": "v", "emptyDir": {}}],
                    "other": 1}, "metadata": {"labels": {"app": "web", "x": "y"}, "name": "p"}}
    assert reads.project(pod, trees["x"]) == {"spec": {"cs": [{"name": "a", "image": "i"}], "volumes": [{}]},
                                              "metadata": {"labels": {"app": "web"}}}


@pytest.mark.parametrize(("expression", "expected"), [
    ("'abc'.matches('^a.c$')", True), ("'abc'.matches('^b')", False), ("matches('abc', 'b')", True),
    ("'ab\\n'.matches('b$')", False), ("'a\\nb'.matches('(?m)a$')", True), ("'x:1'.matches(':[^/$]*$')", True),
])
def test_matches_as_re2(expression, expected):
    assert cel.compile(expression, ()).run({}) is expected


def test_matches_bad_pattern_in_gos_words():
    with pytest.raises(cel.EvalError, match="^error parsing regexp: missing closing \\): `a\\(b`$"):
        cel.compile("'abc'.matches('a(b')", ()).run({})


def test_a_review_alike_one_found_compliant_is_compliant_without_evaluating(monkeypatch):
    doc = catalog.definition("021f8078-41a0-40e6-81b6-c6597da9f3ee")  # no latest tag
    program = engines.compile_template(catalog.template(doc))
    good, bad = CASES[[c[0] for c in CASES].index(doc["name"])][3], CASES[[c[0] for c in CASES].index(doc["name"])][2]
    assert program.violations(_review(good), None, {}, {}) == []
    fast = program._specialized(None)
    assert len(fast.compliant) == 1
    runs = []
    monkeypatch.setattr(engines, "_judge", lambda *a, **k: runs.append(1) or [])
    other = {**good, "metadata": {**good["metadata"], "name": "another", "uid": "u2"}}  # not read by the checks
    assert program.violations(_review(other), None, {}, {}) == [] and runs == []
    monkeypatch.undo()
    assert program.violations(_review(bad), None, {}, {})  # what the checks read differs: judged
    assert program.violations(_review(bad), None, {}, {})  # a violation is never kept
    assert len(fast.compliant) == 1


def test_a_review_alike_one_found_violating_gets_its_results_without_evaluating(monkeypatch):
    doc = catalog.definition("021f8078-41a0-40e6-81b6-c6597da9f3ee")  # no latest tag
    program = engines.compile_template(catalog.template(doc))
    bad = CASES[[c[0] for c in CASES].index(doc["name"])][2]
    found = program.violations(_review(bad), None, {}, {})
    assert found == [{"msg": "container <app> uses an image tagged with latest <nginx>", "details": {}}]
    runs = []
    judge = engines._judge
    monkeypatch.setattr(engines, "_judge", lambda *a, **k: runs.append(1) or judge(*a, **k))
    other = {**bad, "metadata": {**bad["metadata"], "name": "another"}}  # read by neither checks nor messages
    again = program.violations(_review(other), None, {}, {})
    assert again == found and runs == []
    again[0]["details"]["x"] = 1  # the caller's to change
    renamed = {**bad, "spec": {"containers": [{**bad["spec"]["containers"][0], "name": "web"}]}}  # the message reads it
    assert program.violations(_review(renamed), None, {}, {}) == [
        {"msg": "container <web> uses an image tagged with latest <nginx>", "details": {}}]
    assert runs == [1]
    assert program.violations(_review(bad), None, {}, {}) == found
