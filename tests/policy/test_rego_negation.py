"""`not` over a call or an operator whose referenced argument is undefined, as OPA answers it.

OPA's compiler (RewriteDynamicTerms) evaluates every reference among a call's arguments, and an
operator's operands, before the expression, even a negated one: `not f(input.missing)` fails the
rule body (undefined) rather than being true, for user functions and built-ins alike, while
`not input.missing`, `not input.missing == 1` (unification) and `not f(g(...))` over a defined
argument stay under the `not`. rego-cpp negates the whole expression (true), so the translation
hoists those references (`hoist.py`). The expected answers below are real OPA's (v1, the Go
library, on the same rules written in v1); before this, built-in calls and operators answered as
rego-cpp does.
"""

from __future__ import annotations

import zlib

import pytest

from lks.policy.rego import compile_template

HELPERS = """
has_key(o, k) { _ = o[k] }
prefixed(s, p) { startswith(s, p) }
"""
EMPTY = {"object": {"spec": {"containers": [{"image": "a"}]}}}
PRESENT = {"object": {"data": {"foo": 1}, "spec": {"containers": [{"image": "a"}]}, "n": 5, "a": "x", "image": "xy"}}


@pytest.mark.parametrize("body, on_empty, on_present", [
    # a user function's argument: undefined, so the body fails (as before)
    pytest.param('not has_key(input.review.object.data, "foo")', 0, 0, id="user-function"),
    pytest.param('not prefixed("abc", input.parameters.prefix)', 0, 0, id="user-function-parameter"),
    # built-ins and operators: the same in OPA (these were rego-cpp's `true`)
    pytest.param('not startswith(input.parameters.prefix, "z")', 0, 1, id="builtin-parameter"),
    pytest.param('c := input.review.object\n  not startswith(c.image, "x")', 0, 0, id="builtin-field-of-a-variable"),
    pytest.param("not input.review.object.n > 1", 0, 0, id="comparison"),
    pytest.param('not input.review.object.a != "x"', 0, 1, id="not-equal"),
    pytest.param("not input.review.object.n + 1 > 2", 0, 0, id="arithmetic"),
    pytest.param("not count(input.review.object.data) > 0", 0, 0, id="builtin-inside-comparison"),
    pytest.param('not sprintf("%v", [input.review.object.data]) == "x"', 0, 1, id="array-argument"),
    pytest.param("not input.review.object.spec[input.review.object.data]", 0, 1, id="reference-as-index"),
    # what stays under the `not` in OPA too
    pytest.param("not input.review.object.data", 1, 0, id="lone-reference"),
    pytest.param('not input.review.object.a == "x"', 1, 0, id="unification"),
    pytest.param('k := "foo"\n  not input.review.object.data[k]', 1, 0, id="variable-index"),
    pytest.param('not has_key(object.get(input.review.object, "data", {}), "foo")', 1, 0, id="nested-call"),
    pytest.param('not has_key({"a": input.review.object.data}, "foo")', 0, 1, id="object-argument"),
])
def test_negated_expressions_answer_as_opa(body, on_empty, on_present):
    name = f"neg{zlib.crc32(body.encode())}"
    program = compile_template(f'package {name}\nviolation[{{"msg": "hit"}}] {{\n  {body}\n}}\n{HELPERS}')
    assert len(program.violations(EMPTY, {})) == on_empty
    assert len(program.violations(PRESENT, {"prefix": "a", "repos": ["b"]})) == on_present



def test_a_negation_with_a_modifier_keeps_its_references():
    """`not f(input.x) with input.y as z`: a reference moved before the statement would read the
    input without the `with`; such a statement is left as written."""
    program = compile_template('package negwith\nviolation[{"msg": "hit"}] {\n'
                               '  not startswith(input.review.object.name, "a") with input.review.object as {"name": "b"}\n}\n')
    assert "with input.review.object as" in program.modules[0].source
    assert program.violations({"object": {}}, {}) == [{"msg": "hit", "details": {}}]
