"""CEL benchmark, in process: the Kubernetes CEL library (`lks.kube.cel`) and CRD validation
rules (`lks.kube.crdrules`).

Figures: evaluations per second of a simple comparison and of an `all()` over a Deployment's
containers, over a prebuilt activation and over a fresh one (the object converted each time);
one evaluation using a Kubernetes library function (quantity); compiles per second (uncached);
and the custom-resource schema validation per object without rules and with three rules (one
of them a transition rule on update), so the price of rules shows per write.

Run: `.venv/bin/python bench/cel_bench.py [n]`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from lks.kube import cel, crds

DEPLOYMENT = {"metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
              "spec": {"replicas": 3, "template": {"spec": {"containers": [
                  {"name": f"c{i}", "image": f"myregistry/app{i}:1.0",
                   "resources": {"limits": {"memory": "512Mi"}}} for i in range(4)]}}}}


def _rate(fn: Callable[[], Any], n: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def _crd(rules: bool) -> crds.CustomResourceStrategy:
    spec: dict[str, Any] = {"type": "object", "properties": {
        "replicas": {"type": "integer"}, "maxReplicas": {"type": "integer"},
        "name": {"type": "string"}, "image": {"type": "string"},
        "ports": {"type": "array", "items": {"type": "integer"}}}}
    if rules:
        spec["x-kubernetes-validations"] = [
            {"rule": "self.replicas <= self.maxReplicas", "message": "too many"},
            {"rule": "self.image.startsWith('registry.example/')"},
            {"rule": "self.name == oldSelf.name", "message": "immutable"}]
    crd = {"metadata": {"name": "widgets.bench.dev"},
           "spec": {"group": "bench.dev", "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "properties": {"spec": spec}}}}]},
           "status": {"conditions": [{"type": "Established", "status": "True"}], "storedVersions": ["v1"]}}
    types, _, _ = crds.resource_types([crd])
    return crds.CustomResourceStrategy(types[0])


def run(n: int = 20000) -> dict[str, float]:
    simple = cel.compile("object.spec.replicas <= 5")
    every = cel.compile("object.spec.template.spec.containers.all(c, c.image.startsWith('myregistry/'))")
    quantity = cel.compile("object.spec.template.spec.containers.all(c, "
                           "quantity(c.resources.limits.memory).isLessThan(quantity('1Gi')))")
    act = cel.activation({"object": DEPLOYMENT}, [simple, every, quantity])
    variables = {"object": DEPLOYMENT}
    counter = iter(range(10**9))
    cr = {"apiVersion": "bench.dev/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"},
          "spec": {"replicas": 1, "maxReplicas": 3, "name": "a", "image": "registry.example/x", "ports": [80, 443]}}
    changed = {**cr, "spec": {**cr["spec"], "replicas": 2}}
    plain, ruled = _crd(False), _crd(True)
    figures = {
        "replicas <= 5, prebuilt activation (evals/s)": _rate(lambda: simple.run(act), n),
        "containers.all(...), prebuilt activation (evals/s)": _rate(lambda: every.run(act), n),
        "replicas <= 5, object converted each time (evals/s)": _rate(lambda: simple.run(variables), n // 4),
        "quantity(...).isLessThan(...) x4 (evals/s)": _rate(lambda: quantity.run(act), n // 4),
        "compile, uncached (compiles/s)": _rate(lambda: cel.compile(f"self.x == {next(counter)}", ("self",)), n // 10),
        "CR validation, no rules (us)": 1e6 / _rate(lambda: plain.schema_causes(cr, None), n // 4),
        "CR validation, 3 rules, create (us)": 1e6 / _rate(lambda: ruled.schema_causes(cr, None), n // 4),
        "CR validation, 3 rules, update (us)": 1e6 / _rate(lambda: ruled.schema_causes(changed, cr), n // 4),
    }
    for k, v in figures.items():
        print(f"{k:<55} {v:>12,.1f}")
    return figures


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
