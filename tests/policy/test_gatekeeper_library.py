"""Conformance: the public gatekeeper-library's v0 templates on our Rego engine, run as the
library's own `suite.yaml` files run them with gator (each case's object, the sample constraint's
parameters, the case's inventory as data.inventory, `violations: yes|no|N` and `message`
assertions): every suite of the library (49 templates, 270 cases). Fixtures:
fixtures/gatekeeper-library (only the files the suites name)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from lks.policy.rego import compile_template

LIBRARY = Path(__file__).parent / "fixtures" / "gatekeeper-library"


def _cases():
    for suite_path in sorted(LIBRARY.rglob("suite.yaml")):
        suite = yaml.safe_load(suite_path.read_text())
        base = suite_path.parent
        for test in suite["tests"]:
            for case in test.get("cases") or []:
                name = f"{base.relative_to(LIBRARY)}/{test['name']}/{case['name']}"
                yield pytest.param(base, test, case, id=name)


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _inventory(objects: list[dict]) -> dict:
    """Gatekeeper's data.inventory: cluster[gv][kind][name], namespace[ns][gv][kind][name]."""
    inventory: dict = {"cluster": {}, "namespace": {}}
    for obj in objects:
        meta = obj.get("metadata") or {}
        where = inventory["cluster"]
        if meta.get("namespace"):
            where = inventory["namespace"].setdefault(meta["namespace"], {})
        where.setdefault(obj.get("apiVersion", "v1"), {}).setdefault(obj["kind"], {})[meta.get("name", "")] = obj
    return inventory


def _review(obj: dict) -> dict:
    """gator's review of an object: a CREATE by no one; an AdmissionReview is its request."""
    if obj.get("kind") == "AdmissionReview":
        request = dict(obj["request"])
        target = request.get("object") or request.get("oldObject") or {}
    else:
        request, target = {"operation": "CREATE", "object": obj}, obj
    group, _, version = target.get("apiVersion", "v1").rpartition("/")
    request.setdefault("kind", {"group": group, "version": version, "kind": target.get("kind", "")})
    request.setdefault("name", target.get("metadata", {}).get("name", ""))
    namespace = target.get("metadata", {}).get("namespace")
    if namespace:
        request.setdefault("namespace", namespace)
    return request


def _matches(constraint: dict, review: dict) -> bool:
    """The constraint's `match.kinds` (what gator checks before evaluating)."""
    kinds = ((constraint.get("spec") or {}).get("match") or {}).get("kinds")
    if not kinds:
        return True
    kind = review["kind"]
    return any(
        ("*" in k.get("apiGroups", ["*"]) or kind["group"] in k.get("apiGroups", []))
        and ("*" in k.get("kinds", ["*"]) or kind["kind"] in k.get("kinds", []))
        for k in kinds
    )


@pytest.mark.parametrize("base, test, case", list(_cases()))
def test_library_suite(base: Path, test: dict, case: dict):
    template = _load(base / test["template"])
    target = template["spec"]["targets"][0]
    # the Rego: spec.targets[].rego, or the `code` entry of engine Rego (whose source may say v1)
    source = next((c["source"] for c in target.get("code") or [] if c.get("engine") == "Rego"), target)
    program = compile_template(source["rego"], source.get("libs") or [], version=source.get("version", "v0"))
    constraint = _load(base / test["constraint"])
    review = _review(_load(base / case["object"]))
    objects = [o for f in case.get("inventory") or [] for o in yaml.safe_load_all((base / f).read_text()) if o]
    parameters = (constraint.get("spec") or {}).get("parameters")
    found = program.violations(review, parameters, _inventory(objects)) if _matches(constraint, review) else []
    for assertion in case.get("assertions") or []:
        hits = found
        if "message" in assertion:
            hits = [v for v in found if re.search(assertion["message"], v["msg"])]
        expected = assertion.get("violations", "yes")
        if expected is True or expected == "yes":
            assert hits, f"expected a violation, got none (all: {found})"
        elif expected is False or expected == "no":
            assert not hits, f"expected no violation, got {hits}"
        else:
            assert len(hits) == int(expected), f"expected {expected} violations, got {hits}"
