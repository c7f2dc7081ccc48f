"""The Rego engine behind Gatekeeper: v0 heads translated (never read as v1 partial objects),
Gatekeeper's input and data.inventory, libs, and errors that name the line."""

import pytest

from lks.policy.rego import RegoError, compile_template, v0

PRIVILEGED = '''package k8spsprivileged

violation[{"msg": msg, "details": {}}] {
  c := input_containers[_]
  c.securityContext.privileged
  msg := sprintf("Privileged container is not allowed: %v", [c.name])
}

input_containers[c] { c := input.review.object.spec.containers[_] }
input_containers[c] { c := input.review.object.spec.initContainers[_] }
'''


def pod(*containers, init=()):
    return {"object": {"kind": "Pod", "spec": {"containers": list(containers), "initContainers": list(init)}}}


def test_v0_partial_sets_are_sets():
    program = compile_template(PRIVILEGED)
    assert program.package == "k8spsprivileged"
    bad = {"name": "a", "securityContext": {"privileged": True}}
    assert program.violations(pod(bad), {}) == [
        {"msg": "Privileged container is not allowed: a", "details": {}}
    ]
    assert program.violations(pod({"name": "b"}, init=[{**bad, "name": "i"}]), {}) == [
        {"msg": "Privileged container is not allowed: i", "details": {}}
    ]
    assert program.violations(pod({"name": "b"}), {}) == []


def test_compile_is_cached_by_source():
    assert compile_template(PRIVILEGED) is compile_template(PRIVILEGED)


HEADS = '''package heads

default allow = false
allow { input.review.x == 1 }

greeting(name) = msg { msg := sprintf("hi %v", [name]) }
is_one(x) { x == 1 }

kind(x) = "one" { x == 1 } else = "two" { x == 2 } else = "many" { true }

labels[k] = v { v := input.review.labels[k] }

either { input.review.x == 1 } { input.review.x == 2 }

# comments with braces { and strings "{" `}` never count
brace := "{ not a body }"

violation[{"msg": msg}] {
  not allow
  contains(brace, "{")
  msg := sprintf("%v %v %v %v %v", [greeting("x"), kind(input.review.x), labels, either, is_one(1)])
}
'''


@pytest.mark.parametrize("x, msg", [
    pytest.param(2, 'hi x two {"a": "b"} true true', id="second-body-and-else"),
    pytest.param(3, None, id="no-body-matches"),
])
def test_v0_heads(x, msg):
    found = compile_template(HEADS).violations({"x": x, "labels": {"a": "b"}}, {})
    if x == 3:  # `either` is undefined: no violation
        assert found == []
    else:
        assert found == [{"msg": msg, "details": {}}]


def test_v1_and_future_keywords_pass_through():
    future = 'package p\nimport future.keywords.in\nimport future.keywords.if\nimport future.keywords.contains\n' \
             'violation contains {"msg": "in"} if { "a" in input.review.names }\n'
    assert compile_template(future).violations({"names": ["a"]}, {}) == [{"msg": "in", "details": {}}]
    v1 = 'package p\nviolation contains {"msg": x} if { some x in input.review.names }\n'
    assert compile_template(v1, version="v1").violations({"names": ["a"]}, {}) == [{"msg": "a", "details": {}}]


def test_v1_keywords_used_as_names_in_v0():
    src = 'package p\nviolation[{"msg": msg}] {\n  in := input.review.names[_]\n  contains(in, "a")\n  msg := in\n}\n'
    assert compile_template(src).violations({"names": ["ab", "c"]}, {}) == [{"msg": "ab", "details": {}}]


def test_inventory_and_libs():
    lib = 'package lib.helpers\nname_of(o) = n { n := o.metadata.name }\n'
    src = '''package k8suniquename
import data.lib.helpers
violation[{"msg": msg}] {
  other := data.inventory.namespace[ns][_]["Service"][name]
  helpers.name_of(other) == input.review.object.metadata.name
  msg := sprintf("name %v taken in %v", [name, ns])
}
'''
    program = compile_template(src, [lib])
    inventory = {"namespace": {"prod": {"v1": {"Service": {"web": {"metadata": {"name": "web"}}}}}}}
    review = {"object": {"metadata": {"name": "web"}}}
    assert program.violations(review, {}, inventory) == [{"msg": "name web taken in prod", "details": {}}]
    assert program.violations(review, {}, None) == []


@pytest.mark.parametrize("src, message", [
    pytest.param('package p\nviolation[{"msg": m}] {\n  m := "x"\n', "template:2: rego_parse_error: unclosed {",
                 id="unclosed"),
    pytest.param('package p\nviolation[{"msg": m}] {\n  m := foo(1)\n}', "template:3: rego_type_error: undefined function foo",
                 id="unknown-function"),
    pytest.param('package p\nq { true }', "template:1: rego_compile_error: missing required rule: violation",
                 id="no-violation"),
    pytest.param('package p\nviolation[{"msg": m}] {\n  any([true])\n  m := "x"\n}',
                 "template:3: rego_type_error: deprecated built-in any", id="deprecated-any"),
    pytest.param('package p\nviolation[{"msg": m}] {\n  external_data({})\n  m := "x"\n}',
                 "template:3: rego_type_error: external_data (external data providers) is not supported",
                 id="external-data"),
    pytest.param('package p\nviolation[{"msg": m}] {\n  m := data.other.x\n}',
                 "template:3: rego_type_error: invalid data reference", id="data-reference"),
    pytest.param('package p\nviolation[{"msg": m}] {\n  m := "a\n}', "template:3: rego_parse_error: non-terminated string",
                 id="string"),
])
def test_errors_name_the_line(src, message):
    with pytest.raises(RegoError) as err:
        compile_template(src)
    assert err.value.message.startswith(message)


def test_lib_package_must_begin_with_lib():
    with pytest.raises(RegoError, match='invalid package "helpers"'):
        compile_template(PRIVILEGED, ['package helpers\nx := 1\n'])


def test_translation_keeps_lines():
    module = v0.translate(HEADS, "template")
    out = module.source.splitlines()
    # every original line is still where it was, but for the one the second body moved
    assert out[out.index('brace := "{ not a body }"')] == 'brace := "{ not a body }"'
    assert module.lines[out.index('brace := "{ not a body }"')] == HEADS.splitlines().index(
        'brace := "{ not a body }"') + 1


ITERATION = """package iteration
lower_all := {c | c := lower(input.review.names[_])}
indexed[[i, c]] { c := lower(input.review.names[i]) }
accept("any", _)
violation[{"msg": msg}] {
  not accept(input.parameters.rule, input.parameters.missing)
  msg := sprintf("%v %v", [lower_all, indexed])
}
"""


def test_iteration_inside_call_arguments():
    """rego-cpp fails on `lower(xs[_])` and answers nothing for `lower(xs[i])`: both hoisted."""
    program = compile_template(ITERATION)
    found = program.violations({"names": ["A", "B"]}, {"rule": "other", "missing": 1})
    assert found == [{"msg": '{"a", "b"} {[0, "a"], [1, "b"]}', "details": {}}]


def test_undefined_argument_of_a_negated_user_function_fails_the_statement():
    # as OPA (and gatekeeper-library's psp users suite): `not accept(rule, undefined)` is not true
    program = compile_template(ITERATION)
    assert program.violations({"names": ["A"]}, {"rule": "other"}) == []


def test_iteration_in_a_negated_builtin_call_is_refused():
    src = 'package p\nviolation[{"msg": "x"}] {\n  not startswith(input.review.names[_], "a")\n}\n'
    with pytest.raises(RegoError, match="template:3: rego_compile_error: iteration inside the arguments"):
        compile_template(src)


def test_strings_needing_escapes_read_as_in_opa():
    """rego-cpp keeps strings JSON-escaped: a regex with `\\.` from the parameters must match,
    and a message carrying a quote or a newline must come back intact."""
    src = 'package p\nviolation[{"msg": msg}] {\n  not regex.match(input.parameters.pattern, input.review.name)\n' \
          '  msg := sprintf("%v does not match %v", [input.review.name, input.parameters.pattern])\n}\n'
    program = compile_template(src)
    assert program.violations({"name": "a.b"}, {"pattern": r"^a\.b$"}) == []
    assert program.violations({"name": 'a"b\nc'}, {"pattern": r"^\d+$"}) == [
        {"msg": 'a"b\nc does not match ^\\d+$', "details": {}}
    ]


def test_else_without_body_and_a_line_opening_with_a_parenthesis():
    src = """package p
message := m {
  input.parameters.verbose
  m := "long"
} else := sprintf(
  "%v",
  ["short"]
)
violation[{"msg": message}] {
  input.parameters.min
  (input.review.max - input.review.min) < input.parameters.min
}
"""
    program = compile_template(src)
    assert program.violations({"max": 3, "min": 2}, {"min": 2}) == [{"msg": "short", "details": {}}]
    assert program.violations({"max": 5, "min": 2}, {"min": 2, "verbose": True}) == []


def test_a_verb_without_its_argument_prints_as_go_does():
    # gatekeeper-library's horizontalpodautoscaler has 6 verbs for 5 arguments: OPA says MISSING
    src = 'package p\nviolation[{"msg": msg}] {\n  msg := sprintf("%v and %v (%s)", ["one"])\n}\n'
    assert compile_template(src).violations({}, {}) == [
        {"msg": "one and %!v(MISSING) (%!s(MISSING))", "details": {}}
    ]


@pytest.mark.parametrize("head, v1", [
    pytest.param('violation[{"msg": m}] { m := "a" }', 'violation contains {"msg": m} if { m := "a" }', id="partial-set"),
    pytest.param('names["a"]', 'names contains "a"', id="partial-set-no-body"),
    pytest.param("labels[k] = v { v := x[k] }", "labels[k] = v if { v := x[k] }", id="partial-object"),
    pytest.param("allow = true { x }", "allow = true if { x }", id="complete"),
    pytest.param("allow { x }", "allow if { x }", id="boolean"),
    pytest.param("f(a) = b { b := a }", "f(a) = b if { b := a }", id="function"),
    pytest.param("f(a) { a }", "f(a) if { a }", id="function-boolean"),
    pytest.param("default allow = false", "default allow = false", id="default"),
    pytest.param('f(x) = "a" { x } else = "b" { true }', 'f(x) = "a" if { x } else = "b" if { true }', id="else"),
    pytest.param("p { a }\n{ b }", "p if { a }\n\np if { b }", id="two-bodies"),
    pytest.param('p { x := "{ }" } # } {', 'p if { x := "{ }" } # } {', id="braces-in-strings-and-comments"),
    pytest.param("p { in := 1; if := in }", "p if { in_ := 1; if_ := in_ }", id="keywords-as-names"),
])
def test_v0_heads_translate(head, v1):
    assert v0.translate(f"package p\n{head}\n", "template").source == f"package p\n{v1}\n"


def test_multi_part_head_refused():
    with pytest.raises(RegoError, match="template:2: rego_parse_error: rule head 'a' with a multi-part reference"):
        compile_template('package p\na.b[x] { x := 1 }\nviolation[{"msg": "x"}] { true }\n')
