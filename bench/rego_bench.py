"""Rego benchmark, in process: Gatekeeper templates on rego-cpp (`lks.policy.rego`).

Figures: evaluations per second of a v0 privileged-containers template (translated to v1, one
precompiled bundle) against an allowed and a violating 4-container Pod; the same Pod against the
same policy compiled per query (regopy's `query()`, what a bundle saves); the same Pod as the
store keeps it (managedFields, status); 25 constraints (5 templates x 5 parameters) on one stored
Pod one by one (the input converted once for all) and in one query (`lks.policy.rego.batch`, as the
webhook and the audit evaluate them); the audit's answer for an
object unchanged since the last audit (kept by uid and resourceVersion); a template reading
`data.inventory` with 200 synced Services (the inventory rides in the input, so its size costs
per evaluation); and a template compile (translation + bundle build, uncached) in ms. Times are
CPU time of this process (`time.process_time`), so other work on a shared machine does not count.

Run: `.venv/bin/python bench/rego_bench.py [n]`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from regopy import Interpreter, LogLevel

from lks.policy.rego import batch, compile_template, v0

PRIVILEGED = """package k8spspprivileged

violation[{"msg": msg, "details": {}}] {
  c := input_containers[_]
  c.securityContext.privileged
  msg := sprintf("Privileged container is not allowed: %v, securityContext: %v", [c.name, c.securityContext])
}

input_containers[c] { c := input.review.object.spec.containers[_] }
input_containers[c] { c := input.review.object.spec.initContainers[_] }
"""

UNIQUE_SERVICE = """package k8suniqueservicename

violation[{"msg": msg}] {
  name := input.review.object.metadata.name
  other := data.inventory.namespace[ns][_]["Service"][name]
  ns != input.review.object.metadata.namespace
  msg := sprintf("service name %v is taken in namespace %v", [name, ns])
}
"""


def _pod(privileged: bool) -> dict:
    containers = [{"name": f"c{i}", "image": f"myregistry.azurecr.io/app{i}:1.0",
                   "securityContext": {"privileged": privileged and i == 3, "runAsNonRoot": True},
                   "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}}} for i in range(4)]
    return {"kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE", "name": "web",
            "namespace": "default", "object": {"apiVersion": "v1", "kind": "Pod",
                                               "metadata": {"name": "web", "namespace": "default"},
                                               "spec": {"containers": containers}}}


def _stored(review: dict) -> dict:
    """`review` with what a stored Pod carries besides: managedFields (keys with quotes), status."""
    obj = review["object"]
    fields = {"f:spec": {"f:containers": {f'k:{{"name":"{c["name"]}"}}': {".": {}, "f:image": {}, "f:name": {}}
                                          for c in obj["spec"]["containers"]}}}
    meta = {**obj["metadata"], "uid": "6f1c-4b2a", "resourceVersion": "1234", "labels": {"app": "web"},
            "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                               "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": fields}]}
    status = {"phase": "Running", "podIP": "10.244.0.7", "conditions": [
        {"type": t, "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
        for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]}
    return {**review, "object": {**obj, "metadata": meta, "status": status}}


REQUIRED_LABELS = """package k8srequiredlabels

violation[{"msg": msg}] {
  provided := {label | input.review.object.metadata.labels[label]}
  required := {label | label := input.parameters.labels[_]}
  missing := required - provided
  count(missing) > 0
  msg := sprintf("you must provide labels: %v", [missing])
}
"""


def _rate(fn: Callable[[], Any], n: int) -> float:
    fn()
    start = time.process_time()
    for _ in range(n):
        fn()
    return n / max(time.process_time() - start, 1e-9)


def run(n: int = 5000) -> dict[str, float]:
    program = compile_template(PRIVILEGED)
    allowed, violating = _pod(False), _pod(True)
    assert not program.violations(allowed, {}) and program.violations(violating, {})
    per_query = Interpreter()
    per_query.log_level = LogLevel.NONE
    per_query.add_module("template", v0.translate(PRIVILEGED, "template").source)

    def query() -> None:
        per_query.set_input({"review": allowed, "parameters": {}})
        per_query.query("data.k8spspprivileged.violation")

    unique = compile_template(UNIQUE_SERVICE)
    inventory: dict = {"namespace": {}}
    for i in range(200):
        services = inventory["namespace"].setdefault(f"ns{i % 20}", {"v1": {"Service": {}}})["v1"]["Service"]
        services[f"svc{i}"] = {"metadata": {"name": f"svc{i}", "namespace": f"ns{i % 20}"}}
    service = {"object": {"kind": "Service", "metadata": {"name": "svc7", "namespace": "default"}}}
    assert unique.violations(service, {}, inventory)
    stored = _stored(allowed)
    # 25 constraints on one review, as Gatekeeper's webhook evaluates them: 5 templates x 5
    # constraints, each with parameters of its own; `shared` is kept for the review
    programs = [compile_template(PRIVILEGED.replace("k8spspprivileged", f"k8spspprivileged{i}")) for i in range(4)]
    programs.append(compile_template(REQUIRED_LABELS))
    params = [[{"labels": [f"l{i}{j}"]} if p is programs[-1] else {} for j in range(5)] for i, p in enumerate(programs)]

    def review25() -> None:
        shared: dict = {}
        for p, ps in zip(programs, params, strict=True):
            for par in ps:
                try:
                    p.violations(stored, par, None, shared)
                except TypeError:  # an engine without `shared`
                    p.violations(stored, par)

    entries = [(p, par) for p, ps in zip(programs, params, strict=True) for par in ps]

    def review25_batched() -> None:  # as Gatekeeper's webhook and audit: one query for the 25
        batch.violations(entries, stored, None, {})

    review25_batched()
    review25_batched()  # a set of constraints is compiled into one bundle the second time it is met
    counter = iter(range(10**9))
    figures = {
        "privileged, allowed Pod, bundle (evals/s)": _rate(lambda: program.violations(allowed, {}), n),
        "privileged, violating Pod, bundle (evals/s)": _rate(lambda: program.violations(violating, {}), n),
        "privileged, stored Pod (managedFields, status) (evals/s)": _rate(lambda: program.violations(stored, {}), n),
        "25 constraints (5 templates x 5 parameters), one stored Pod, one by one (ms)": 1000 / _rate(review25, n // 25),
        "25 constraints, one stored Pod, in one query (ms)": 1000 / _rate(review25_batched, n // 25),
        "privileged, stored Pod unchanged since the last audit (evals/s)": _rate(
            lambda: program.violations(stored, {}, None, {"revision": ("6f1c-4b2a", "1234")}), n),
        "privileged, allowed Pod, query compiled each time (evals/s)": _rate(query, n // 10),
        "inventory of 200 Services, bundle (evals/s)": _rate(lambda: unique.violations(service, {}, inventory), n // 5),
        "compile a template, uncached (ms)": 1000 / _rate(
            lambda: compile_template(PRIVILEGED + f"\n# {next(counter)}\n"), n // 50),
    }
    for k, v in figures.items():
        print(f"{k:<78} {v:>12,.1f}")
    return figures


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
