"""The Rego engine's input: converted once per review (shared across constraints and templates,
each constraint's parameters in its own bundle's data), escaped strings pushed without rego-cpp's slow reader, and the parts of the
object no module reads (managedFields, status) left out, without changing any result."""

import orjson
import pytest
from regopy import rego_shared as _c

from lks.policy.rego import compile_template, inputs, reads

LABELS = '''package k8srequiredlabels
violation[{"msg": msg}] {
  provided := {l | input.review.object.metadata.labels[l]}
  required := {l | l := input.parameters.labels[_]}
  missing := required - provided
  count(missing) > 0
  msg := sprintf("you must provide labels: %v", [missing])
}
'''
HOSTNET = '''package k8shostnetwork
violation[{"msg": "host network"}] { input.review.object.spec.hostNetwork }
'''


def stored_pod(labels):
    """A Pod as the store keeps it: managedFields keys hold quotes, status is there."""
    return {"kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE", "name": "web",
            "object": {"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": "web", "namespace": "default", "labels": labels,
                                    "managedFields": [{"manager": "kubectl", "fieldsType": "FieldsV1",
                                                       "fieldsV1": {"f:spec": {'k:{"name":"web"}': {}}}}]},
                       "spec": {"containers": [{"name": "web", "image": "nginx"}]},
                       "status": {"phase": "Pending"}}}


@pytest.fixture
def built(monkeypatch):
    documents = []
    real = inputs.Input

    def counting(document):
        documents.append(document)
        return real(document)

    monkeypatch.setattr(inputs, "Input", counting)
    return documents


def test_one_input_per_review_and_parameters(built):
    labels, hostnet = compile_template(LABELS), compile_template(HOSTNET)
    review, shared = stored_pod({"a": "1"}), {}
    for _ in range(3):
        assert labels.violations(review, {"labels": ["app"]}, {}, shared) == [
            {"msg": 'you must provide labels: {"app"}', "details": {}}]
        assert labels.violations(review, {"labels": ["a"]}, {}, shared) == []
        assert hostnet.violations(review, {}, {}, shared) == []
    # the parameters ride in each constraint's bundle as data: one input for all nine, but for
    # each template only what it reads (`reads.paths`)
    assert built == [{"review": {"object": {"metadata": {"labels": {"a": "1"}}}}},
                     {"review": {"object": {"spec": {}}}}]
    assert labels.violations(review, {"labels": ["app"]}, {}) == [  # without `shared`: as before
        {"msg": 'you must provide labels: {"app"}', "details": {}}]


def test_parameters_stay_in_the_input_when_input_is_read_whole(built):
    src = 'package p\nviolation[{"msg": m}] { x := input; m := sprintf("%v", [x.parameters.a]) }\n'
    program, shared = compile_template(src), {}
    assert program.violations({}, {"a": 1}, {}, shared) == [{"msg": "1", "details": {}}]
    assert program.violations({}, {"a": 2}, {}, shared) == [{"msg": "2", "details": {}}]
    assert [d["parameters"] for d in built] == [{"a": 1}, {"a": 2}]


def test_unread_parts_are_left_out(built):
    review = stored_pod({})
    review["object"]["spec"]["hostNetwork"] = True
    compile_template(HOSTNET).violations(review, {})
    assert built[-1] == {"review": {"object": {"spec": {"hostNetwork": True}}}}
    compile_template('package p\nviolation[{"msg": "x"}] { o := input.review.object; o.status }\n').violations(
        review, {})
    assert built[-1]["review"]["object"] == review["object"]  # the whole object: all of it


@pytest.mark.parametrize("src, tree", [
    pytest.param(HOSTNET, {"object": {"spec": {"hostNetwork": None}}}, id="one-field"),
    pytest.param(LABELS, {"object": {"metadata": {"labels": None}}}, id="iterated-field"),
    pytest.param('package p\nviolation[{"msg": "x"}] {\n  c := input.review.object.spec.containers[_]\n'
                 '  c.image == input.review["oldObject"].spec.containers[0].image\n'
                 '  input.review.object.spec.containers[0].name\n  input.review.kind.kind == "Pod"\n}\n',
                 {"object": {"spec": {"containers": None}}, "oldObject": {"spec": {"containers": None}},
                  "kind": {"kind": None}}, id="indexed-and-bracket-steps"),
    pytest.param('package p\nviolation[{"msg": "x"}] { f(input.review.object.metadata) }\n'
                 'f(m) { m.name; input.review.object.metadata.labels.x }\n',
                 {"object": {"metadata": None}}, id="a-part-passed-whole"),
    pytest.param('package p\nviolation[{"msg": "x"}] { input.review[k] }\n', None, id="review-by-variable"),
    pytest.param('package p\nviolation[{"msg": "x"}] { x := input; x.review }\n', None, id="input-whole"),
    pytest.param('package p\nviolation[{"msg": "x"}] { input.parameters.x; input["data.inventory"] }\n', {},
                 id="no-review"),
])
def test_what_of_the_review_a_template_reads(src, tree):
    assert compile_template(src).reads == tree


@pytest.mark.parametrize("src, unread", [
    pytest.param(HOSTNET, {"managedFields", "status"}, id="spec-only"),
    pytest.param(LABELS, {"managedFields", "status"}, id="metadata-field"),
    pytest.param('package p\nviolation[{"msg": m}] { m := sprintf("%v", [input.review.object.metadata]) }\n',
                 {"status"}, id="metadata-whole"),
    pytest.param('package p\nviolation[{"msg": "x"}] { input.review.object.status.phase == "Running" }\n',
                 {"managedFields"}, id="status-read"),
    pytest.param('package p\nviolation[{"msg": "x"}] { o := input.review.object; o.status }\n',
                 set(), id="aliased-object"),
    pytest.param('package p\nviolation[{"msg": "x"}] { input.review[k] }\n', set(), id="review-by-variable"),
    pytest.param('package p\nviolation[{"msg": "x"}] { x := input; x.review }\n', set(), id="input-whole"),
    pytest.param('package p\nviolation[{"msg": "x"}] { input.review["oldObject"]["metadata"]["managedFields"] }\n',
                 {"status"}, id="bracket-steps"),
    pytest.param('package p\nviolation[{"msg": "x"}] { x := object.get(input.review.object.metadata.labels, '
                 '"managedFields", 1); x }\n', {"status"}, id="named-anywhere"),
])
def test_what_a_template_can_read(src, unread):
    assert compile_template(src).unread == unread


@pytest.mark.parametrize("text", ['a"b', "c\\d", "e\nf\t\x01\x7f é", 'k:{"name":"c0"}', "plain é"])
def test_escaped_strings_read_as_rego_cpps_own_reader(text):
    """A string pushed through the C API reads (and prints) exactly as the same document set as
    JSON text, the way rego-cpp's reader keeps it."""
    src = ('package p\nviolation[{"msg": m}] {\n  s := input.review.object.metadata.labels.x\n'
           '  m := sprintf("%v|%v|%v|%v", [s, count(s), s == input.parameters.x, '
           'regex.match(input.parameters.re, s)])\n}\n')
    program = compile_template(src)
    review = {"object": {"metadata": {"labels": {"x": text, text: text}}}}
    params = {"x": text, "re": "^[a-z]"}
    got = program.violations(review, params)
    document = {"review": reads.pruned(review, program.unread), "parameters": params}
    with program._lock:
        _c.rego_set_input_term(program._rego._impl, orjson.dumps(document).decode())
        output = _c.rego_bundle_query(program._rego._impl, program._bundle._impl)
        text_out = _c.rego_output_string(output)
        _c.rego_free_output(output)
    assert got == [{"msg": orjson.loads(text_out)["expressions"][0][0]["msg"], "details": {}}]


def test_audit_answers_are_kept_per_object_revision(built):
    """The audit names the object's (uid, resourceVersion): an unchanged object is not evaluated
    again; a new revision is."""
    program = compile_template(HOSTNET.replace("k8shostnetwork", "k8shostnetworkaudit"))
    review = stored_pod({})
    assert program.violations(review, {}, {}, {"revision": ("u1", "5")}) == []
    assert len(built) == 1
    assert program.violations(review, {}, {}, {"revision": ("u1", "5")}) == []
    assert len(built) == 1  # kept
    review["object"]["spec"]["hostNetwork"] = True
    assert program.violations(review, {}, {}, {"revision": ("u1", "6")}) == [{"msg": "host network", "details": {}}]
    assert program.violations(review, {}, {}, {}) == [{"msg": "host network", "details": {}}]
    assert len(built) == 3
