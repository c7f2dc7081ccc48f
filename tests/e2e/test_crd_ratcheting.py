"""CRD validation ratcheting (KEP-4008, GA in 1.33) through kubectl: after a CRD tightens its
schema and rules, a custom resource stored before still updates where the offending values
are unchanged. A failing `x-kubernetes-validations` rule on an unchanged value becomes a
`Warning` (its field error's text, as apiextensions' CEL validator's `warning.AddWarning`); an
OpenAPI schema error on an unchanged value is dropped without a word; changed values are
refused as on create."""

from __future__ import annotations

import json

import pytest

from .conftest import LKS, wait_until

GROUP = "ratchet.e2e.lks.dev"
NS = "default"


def _crd(spec_schema: dict) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gauges.{GROUP}"},
        "spec": {"group": GROUP, "scope": "Namespaced",
                 "names": {"plural": "gauges", "singular": "gauge", "kind": "Gauge"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                     "type": "object", "properties": {"spec": spec_schema}}}}]}}


LAX = {"type": "object", "properties": {
    "size": {"type": "integer"}, "note": {"type": "string"},
    "range": {"type": "object", "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}}}}}
STRICT = {"type": "object", "properties": {
    "size": {"type": "integer", "maximum": 10}, "note": {"type": "string"},
    "range": {"type": "object", "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}},
              "x-kubernetes-validations": [{"rule": "self.min <= self.max", "message": "min must not exceed max"}]}}}


def _gauge(name: str, **spec) -> str:
    return json.dumps({"apiVersion": f"{GROUP}/v1", "kind": "Gauge", "metadata": {"name": name, "namespace": NS},
                       "spec": spec})


@pytest.fixture(scope="module")
def tightened(lks: LKS):
    """A Gauge stored under the lax schema, then the schema tightened (in force once a new
    Gauge like it is refused)."""
    kubectl = lks.kubectl
    kubectl("create", "-f", "-", input=json.dumps(_crd(LAX)))
    kubectl("wait", "--for=condition=Established", f"crd/gauges.{GROUP}", "--timeout=30s")
    kubectl("create", "-f", "-", input=_gauge("old", size=50, note="a", range={"min": 3, "max": 2}))
    kubectl("apply", "-f", "-", input=json.dumps(_crd(STRICT)))
    wait_until(lambda: kubectl("create", "--dry-run=server", "-f", "-", check=False,
                               input=_gauge("new", size=50, range={"min": 3, "max": 2})).returncode == 1,
               what="the strict schema in force")
    yield
    kubectl("delete", "crd", f"gauges.{GROUP}", "--wait=false")


def test_unchanged_values_are_ratcheted(lks: LKS, tightened):
    kubectl = lks.kubectl
    res = kubectl("create", "--dry-run=server", "-f", "-", check=False,
                  input=_gauge("new", size=50, range={"min": 3, "max": 2}))
    assert 'spec.size: Invalid value: 50: spec.size in body should be less than or equal to 10' in res.stderr
    assert 'spec.range: Invalid value: "object": min must not exceed max' in res.stderr

    # spec changes, size and range do not: the rule's failure is a warning, the schema's is dropped
    res = kubectl("patch", f"gauges.{GROUP}", "old", "-n", NS, "--type=merge", "-p", '{"spec": {"note": "b"}}')
    assert res.stderr.splitlines() == ['Warning: spec.range: Invalid value: "object": min must not exceed max']
    assert json.loads(kubectl("get", f"gauges.{GROUP}", "old", "-n", NS, "-o", "json").stdout)["spec"]["note"] == "b"

    res = kubectl("label", f"gauges.{GROUP}", "old", "-n", NS, "touched=yes")  # metadata only
    assert "min must not exceed max" in res.stderr

    res = kubectl("patch", f"gauges.{GROUP}", "old", "-n", NS, "--type=merge", "-p",
                  '{"spec": {"range": {"min": 4}}}', check=False)
    assert res.returncode == 1
    assert 'spec.range: Invalid value: "object": min must not exceed max' in res.stderr
    assert "Warning" not in res.stderr

    res = kubectl("patch", f"gauges.{GROUP}", "old", "-n", NS, "--type=merge", "-p", '{"spec": {"size": 60}}',
                  check=False)
    assert res.returncode == 1
    assert "spec.size: Invalid value: 60: spec.size in body should be less than or equal to 10" in res.stderr
