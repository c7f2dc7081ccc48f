"""Every Rego constraint of a review in one rego-cpp query (`lks.policy.rego.batch`): each slot's
answer is exactly its own template's (the whole gatekeeper-library, batched together, on every
suite case), packages and libs of the same name stay apart, an evaluation error falls back to
each constraint's own answer or error, and Gatekeeper's webhook and audit run one query per
object."""

from __future__ import annotations

import pytest
import yaml
from support import backend, clock  # noqa: F401

from lks.kube import errors
from lks.policy import gatekeeper
from lks.policy.rego import RegoError, batch, compile_template, program

from .test_gatekeeper import (
    add_template,
    cluster,  # noqa: F401  (the fixture)
    until,
    user,
)
from .test_gatekeeper_library import _cases, _inventory, _load, _review


def _template(base, test):
    template = _load(base / test["template"])
    target = template["spec"]["targets"][0]
    source = next((c["source"] for c in target.get("code") or [] if c.get("engine") == "Rego"), target)
    return compile_template(source["rego"], source.get("libs") or [], version=source.get("version", "v0"))


def _own(p, review, parameters, inventory):
    try:
        return p.violations(review, parameters, inventory)
    except RegoError as err:
        return err


def test_the_whole_library_batched_answers_as_each_template():
    """the library's templates (but those reading `input` other than by static paths), with their suites' sample parameters, in a few bundles: on every suite case,
    each slot answers what its template answers alone."""
    entries, seen, cases = [], set(), []
    for param in _cases():
        base, test, case = param.values
        cases.append((base, case))
        if (base, test["template"], test["constraint"]) in seen:
            continue
        seen.add((base, test["template"], test["constraint"]))
        constraint = _load(base / test["constraint"])
        entries.append((_template(base, test), (constraint.get("spec") or {}).get("parameters")))
    slots = []
    for p, parameters in entries:
        slot, in_input = p._with(parameters if parameters is not None else {})
        if in_input is None and slot not in slots:  # else: answered on its own
            slots.append(slot)
    groups = batch._groups(slots)  # apart: functions of one name with other numbers of arguments
    assert len(groups) < len(slots) / 4
    built = [(batch.Batch([slots[k] for k in members]), members) for members in groups]  # or raises
    answered = 0
    for base, case in cases:
        review = _review(_load(base / case["object"]))
        objects = [o for f in case.get("inventory") or [] for o in yaml.safe_load_all((base / f).read_text()) if o]
        inventory = _inventory(objects)
        own = [_own(slot, review, None, inventory) for slot in slots]
        for whole, members in built:
            answers = whole.answers(review, inventory, {})
            if answers is None:  # some template fails on this object: each answers on its own
                assert any(isinstance(own[k], RegoError) for k in members)
                continue
            answered += 1
            for k, answer in zip(members, answers, strict=True):
                assert answer == own[k], slots[k].package
    assert len(slots) > 30 and answered > len(cases) * len(built) * 0.9


SAME_PACKAGE = '''package k8sshared
import data.lib.helpers
violation[{"msg": msg}] {
  helpers.name(input.review.object) == input.parameters.name
  msg := sprintf("%v: %v", [helpers.tag, input.parameters.name])
}
'''
LIB_A = 'package lib.helpers\ntag := "a"\nname(o) = n { n := o.metadata.name }\n'
LIB_B = 'package lib.helpers\ntag := "b"\nname(o) = n { n := o.metadata.namespace }\n'
FAILING = '''package k8sfailing
name = input.review.object.metadata.name
name = "other" { input.review.object.metadata.namespace == "prod" }
violation[{"msg": name}] { true }
'''


def _always_batched(monkeypatch):
    monkeypatch.setattr(batch, "_seen", _Everything())


class _Everything(dict):
    def __contains__(self, key):
        return True


def test_same_packages_and_libs_stay_apart(monkeypatch):
    _always_batched(monkeypatch)
    a, b = compile_template(SAME_PACKAGE, [LIB_A]), compile_template(SAME_PACKAGE + "\n", [LIB_B])
    review = {"object": {"metadata": {"name": "web", "namespace": "prod"}}}
    entries = [(a, {"name": "web"}), (b, {"name": "prod"}), (a, {"name": "other"}), (b, {"name": "prod"})]
    queries = _count_queries(monkeypatch)
    assert batch.violations(entries, review) == [
        [{"msg": "a: web", "details": {}}], [{"msg": "b: prod", "details": {}}], [],
        [{"msg": "b: prod", "details": {}}]]
    assert queries == [1]


def test_an_error_falls_back_to_each_constraint(monkeypatch):
    _always_batched(monkeypatch)
    ok, failing = compile_template(SAME_PACKAGE, [LIB_A]), compile_template(FAILING)
    review = {"object": {"metadata": {"name": "web", "namespace": "prod"}}}
    answers = batch.violations([(ok, {"name": "web"}), (failing, None)], review)
    assert answers[0] == [{"msg": "a: web", "details": {}}]
    assert isinstance(answers[1], RegoError)
    assert "eval_error" in answers[1].message
    elsewhere = {"object": {"metadata": {"name": "web", "namespace": "dev"}}}
    assert batch.violations([(ok, {"name": "web"}), (failing, None)], elsewhere) == [
        [{"msg": "a: web", "details": {}}], [{"msg": "web", "details": {}}]]


def test_a_set_of_slots_met_once_is_not_compiled(monkeypatch):
    monkeypatch.setattr(batch, "_seen", {})
    monkeypatch.setattr(batch, "_batches", {})
    a, b = compile_template(SAME_PACKAGE, [LIB_A]), compile_template(FAILING)
    review = {"object": {"metadata": {"name": "1", "namespace": "dev"}}}
    queries = _count_queries(monkeypatch)
    first = batch.violations([(a, {"name": "1"}), (b, None)], review)
    assert queries == [2] and not batch._batches
    assert batch.violations([(a, {"name": "1"}), (b, None)], review) == first
    assert queries == [3] and len(batch._batches) == 1


def _count_queries(monkeypatch) -> list[int]:
    count = [0]
    real = program.query

    def counted(*args):
        count[0] += 1
        return real(*args)
    monkeypatch.setattr(program, "query", counted)
    return count


@pytest.mark.parametrize("source, expected", [
    pytest.param("package a.b\nx := data.lib.y\n", "package lks_s3.a.b\nx := data.lks_s3.lib.y\n", id="package-and-lib"),
    pytest.param('package p\nimport data.lib.h\nx := data["lks.parameters"].n\ny := input.review.data\n',
                 'package lks_s3.p\nimport data.lks_s3.lib.h\nx := data.lks_s3["lks.parameters"].n\n'
                 'y := input.review.data\n', id="import-parameters-field"),
])
def test_prefixed(source, expected):
    assert batch.prefixed(source, "lks_s3") == expected


def test_functions_of_one_name_with_other_arities_are_refused():
    """rego-cpp 1.5.2 crashes the process compiling them, even in two packages: refused instead."""
    lib = 'package lib.h\nf(x) = x\n'
    src = 'package p\nimport data.lib.h\nf(x, y) = y\nviolation[{"msg": m}] { m := f(1, h.f("x")) }\n'
    with pytest.raises(RegoError, match="function f is defined with different numbers of arguments"):
        compile_template(src, [lib])


def _rego_template(kind: str, body: str) -> dict:
    return {"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
            "metadata": {"name": kind.lower()},
            "spec": {"crd": {"spec": {"names": {"kind": kind}}},
                     "targets": [{"target": "admission.k8s.gatekeeper.sh",
                                  "rego": f"package {kind.lower()}\n{body}\n"}]}}


async def test_webhook_and_audit_answer_every_rego_constraint_in_one_query(cluster, monkeypatch):  # noqa: F811
    """Three Rego constraints of two templates on Namespaces: once a set of constraints has been
    met (the first time: constraint by constraint), each request and each audited object costs one
    rego-cpp query, with each constraint's own `[name] message`."""
    await add_template(cluster, _rego_template("NsOwner", 'violation[{"msg": "needs an owner"}] {\n'
                                               '  not input.review.object.metadata.labels.owner\n}'))
    await add_template(cluster, _rego_template("NsPrefix", 'violation[{"msg": msg}] {\n'
                                               '  not startswith(input.review.object.metadata.name, '
                                               'input.parameters.prefix)\n'
                                               '  msg := sprintf("must start with %v", [input.parameters.prefix])\n}'))
    gk = gatekeeper.running(cluster.id)
    specs = [("nsowner", "owner", None), ("nsprefix", "team-a", {"prefix": "team-"}),
             ("nsprefix", "app", {"prefix": "app-"})]
    for resource, name, parameters in specs:
        reg = cluster.registry("constraints.gatekeeper.sh", "v1beta1", resource)
        await reg.create(None, {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": reg.rt.kind,
                                "metadata": {"name": name}, "spec": {
                                    "match": {"kinds": [{"apiGroups": [""], "kinds": ["Namespace"]}]},
                                    **({"parameters": parameters} if parameters else {})}}, user())
    await until(lambda: _count(gk))
    namespaces = cluster.registry("", "v1", "namespaces")
    with pytest.raises(errors.APIError) as denied:
        await namespaces.create(None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "z"}}, user())
    assert denied.value.message == (
        'admission webhook "validation.gatekeeper.sh" denied the request: [owner] needs an owner\n'
        "[app] must start with app-\n[team-a] must start with team-")
    queries = _count_queries(monkeypatch)
    for name in ("team-x", "app-y", "other"):
        request = {"uid": "1", "kind": {"group": "", "version": "v1", "kind": "Namespace"}, "name": name,
                   "operation": "CREATE", "object": {"apiVersion": "v1", "kind": "Namespace",
                                                     "metadata": {"name": name}}}
        before = queries[0]
        answer = await gk.webhook.respond(request)
        assert queries[0] == before + 1
        assert answer["status"]["message"].splitlines() == [
            "[owner] needs an owner", *(["[app] must start with app-"] if name != "app-y" else []),
            *(["[team-a] must start with team-"] if name != "team-x" else [])]
    objects = len((await namespaces.cache()).objects)
    before = queries[0]
    results = await gk.audit.run(write=False)
    assert queries[0] - before <= objects + 1  # the first object's set of slots: one by one
    assert results[("NsPrefix", "app")].total == objects


async def _count(gk) -> bool:
    return len(await gk.state.constraints()) == 3
