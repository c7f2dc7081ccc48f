"""Gatekeeper benchmark (`lks.policy.gatekeeper`): in process on the memory store, a cluster with
Gatekeeper on and 25 constraints matching Pods (5 templates x 5 constraints: no privileged
containers, no `latest` tag, required labels, no host network, allowed repos), once with CEL
templates and once with the same rules in Rego (v0, as the gatekeeper-library writes them).

Every Rego constraint that matches an object is answered in one rego-cpp query
(`lks.policy.rego.batch`), in admission and in the audit alike.

Admission: pods are created through the registry as a user would (the API server's webhook
dispatcher calls Gatekeeper's webhook in process); the overhead is each create's CPU time with
the 25 constraints minus the median without any, and the webhook's own answer per request
(p50, p99). Audit: one audit of 10,000 pods against the 25 constraints, CPU time, and the next
one over the same, unchanged pods. Times are CPU
time of this process (`time.process_time`), so that other work on a shared machine does not count.

Run: `.venv/bin/python bench/gatekeeper_bench.py [pods]`.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time

from lks import pki, store
from lks.clock import ManualClock
from lks.controllers.crd import CRDController
from lks.kube.authn import User
from lks.kube.cluster import Cluster
from lks.kube.registry import WriteOptions
from lks.policy import gatekeeper

ADMIN = User("clusterAdmin", ("system:masters", "system:authenticated"))
CREATES = 300
AUDIT_PODS = 10_000
PER_TEMPLATE = 5

_ANY = "variables.anyObject"
CEL = {
    "privileged": f"{_ANY}.spec.containers.all(c, !has(c.securityContext) || !has(c.securityContext.privileged) || "
                  "c.securityContext.privileged != true)",
    "latest": f'{_ANY}.spec.containers.all(c, !c.image.endsWith(":latest"))',
    "labels": f"variables.params.labels.all(k, has({_ANY}.metadata.labels) && k in {_ANY}.metadata.labels)",
    "hostnetwork": f"!has({_ANY}.spec.hostNetwork) || {_ANY}.spec.hostNetwork != true",
    "repos": f"{_ANY}.spec.containers.all(c, variables.params.repos.exists(r, c.image.startsWith(r)))",
}
REGO = {
    "privileged": """violation[{"msg": msg}] {
  c := input.review.object.spec.containers[_]
  c.securityContext.privileged
  msg := sprintf("Privileged container is not allowed: %v", [c.name])
}""",
    "latest": """violation[{"msg": msg}] {
  c := input.review.object.spec.containers[_]
  endswith(c.image, ":latest")
  msg := sprintf("container <%v> uses a disallowed tag <%v>", [c.name, c.image])
}""",
    "labels": """violation[{"msg": msg}] {
  provided := {label | input.review.object.metadata.labels[label]}
  required := {label | label := input.parameters.labels[_]}
  missing := required - provided
  count(missing) > 0
  msg := sprintf("you must provide labels: %v", [missing])
}""",
    "hostnetwork": """violation[{"msg": msg}] {
  input.review.object.spec.hostNetwork
  msg := "host network is not allowed"
}""",
    "repos": """violation[{"msg": msg}] {
  c := input.review.object.spec.containers[_]
  not startswith_any(c.image, input.parameters.repos)
  msg := sprintf("container <%v> has an invalid image repo <%v>", [c.name, c.image])
}
startswith_any(image, repos) {
  startswith(image, repos[_])
}""",
}
PARAMS = {"labels": {"labels": ["app"]}, "repos": {"repos": ["docker.io/", "mcr.microsoft.com/"]}}
SCHEMAS = {"labels": {"type": "object", "properties": {"labels": {"type": "array", "items": {"type": "string"}}}},
           "repos": {"type": "object", "properties": {"repos": {"type": "array", "items": {"type": "string"}}}}}


def _template(engine: str, rule: str) -> dict:
    kind = f"Bench{engine.title()}{rule.title()}"
    if engine == "cel":
        code = {"code": [{"engine": "K8sNativeValidation", "source": {"validations": [
            {"expression": CEL[rule], "message": f"{rule} rule failed"}]}}]}
    else:
        code = {"rego": f"package {kind.lower()}\n\n{REGO[rule]}\n"}
    crd: dict = {"names": {"kind": kind}}
    if rule in SCHEMAS:
        crd["validation"] = {"openAPIV3Schema": SCHEMAS[rule]}
    return {"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
            "metadata": {"name": kind.lower()},
            "spec": {"crd": {"spec": crd}, "targets": [{"target": "admission.k8s.gatekeeper.sh", **code}]}}


def _pod(name: str, i: int = 0) -> dict:
    image = "docker.io/library/nginx:1.27" if i % 7 else "nginx:latest"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default",
                                                           "labels": {"app": "web"} if i % 5 else {}},
            "spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 80}]}]}}


async def _cluster() -> tuple[Cluster, CRDController]:
    backend = store.open_store("memory://")
    await backend.start()
    cluster = Cluster(id="bench-gk", name="bench", kubernetes_version="1.36", backend=backend,
                      ca=pki.create_ca("bench"), tokens={}, clock=ManualClock())
    await cluster.start()
    crds = CRDController(cluster)
    await crds.start()
    await gatekeeper.configure(cluster, enabled=True)
    await cluster.registry("", "v1", "serviceaccounts").create("default", {
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "default"}})
    return cluster, crds


async def _constraints(cluster: Cluster, engine: str) -> None:
    templates = cluster.registry("templates.gatekeeper.sh", "v1", "constrainttemplates")
    for rule in CEL:
        await templates.create(None, _template(engine, rule))
    gk = gatekeeper.running(cluster.id)
    for _ in range(2000):
        if len(gk.state.programs) == len(CEL):
            break
        await asyncio.sleep(0.01)
    assert len(gk.state.programs) == len(CEL), "templates not ingested"
    for rule in CEL:
        kind = f"Bench{engine.title()}{rule.title()}"
        reg = cluster.registry("constraints.gatekeeper.sh", "v1beta1", kind.lower())
        for n in range(PER_TEMPLATE):
            spec: dict = {"enforcementAction": "dryrun", "match": {"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]}}
            if rule in PARAMS:
                spec["parameters"] = PARAMS[rule]
            await reg.create(None, {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": kind,
                                    "metadata": {"name": f"{rule}-{n}"}, "spec": spec})
    for _ in range(2000):
        if len(await gk.state.constraints()) == len(CEL) * PER_TEMPLATE:
            break
        await asyncio.sleep(0.01)


async def _creates(cluster: Cluster, prefix: str, n: int) -> list[float]:
    pods = cluster.registry("", "v1", "pods")
    for i in range(30):  # warm up caches and compiled programs
        await pods.create("default", _pod(f"{prefix}-warm-{i}", i), WriteOptions(user=ADMIN))
    gc.collect()
    out = []
    for i in range(n):
        start = time.process_time()
        await pods.create("default", _pod(f"{prefix}-{i}", i), WriteOptions(user=ADMIN))
        out.append(time.process_time() - start)
    return out


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


async def _webhook(cluster: Cluster, n: int) -> list[float]:
    gk = gatekeeper.running(cluster.id)
    out = []
    for i in range(n):
        pod = _pod(f"direct-{i}", i)
        request = {"uid": "x", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                   "resource": {"group": "", "version": "v1", "resource": "pods"}, "name": pod["metadata"]["name"],
                   "namespace": "default", "operation": "CREATE", "object": pod, "oldObject": None,
                   "userInfo": {"username": "clusterAdmin"}, "dryRun": False}
        start = time.process_time()
        await gk.webhook.respond(request)
        out.append(time.process_time() - start)
    return out


async def _one(engine: str, audit_pods: int) -> dict[str, float]:
    cluster, crds = await _cluster()
    try:
        base = await _creates(cluster, f"{engine}-base", CREATES)
        pods = cluster.registry("", "v1", "pods")
        for i in range(audit_pods - CREATES - 30):  # the rest of the audit's pods, before the constraints
            await pods.create("default", _pod(f"{engine}-fill-{i}", i))
        await _constraints(cluster, engine)
        with_gk = await _creates(cluster, f"{engine}-gk", CREATES)
        hook = await _webhook(cluster, CREATES)
        base_p50 = statistics.median(base)
        gk = gatekeeper.running(cluster.id)
        count = len((await pods.cache()).objects)
        gc.collect()
        start = time.process_time()
        results = await gk.audit.run()
        audit = time.process_time() - start
        total = sum(r.total for r in results.values())
        start = time.process_time()
        await gk.audit.run()  # nothing changed: what an engine keeps per object revision answers
        again = time.process_time() - start
        return {
            f"{engine}: pod create p50, no constraints (ms)": base_p50 * 1000,
            f"{engine}: pod create p50, 25 constraints (ms)": statistics.median(with_gk) * 1000,
            f"{engine}: admission overhead p50 (ms)": (statistics.median(with_gk) - base_p50) * 1000,
            f"{engine}: admission overhead p99 (ms)": (_pct(with_gk, 0.99) - base_p50) * 1000,
            f"{engine}: webhook answer p50 (ms)": statistics.median(hook) * 1000,
            f"{engine}: webhook answer p99 (ms)": _pct(hook, 0.99) * 1000,
            f"{engine}: audit of {count} pods x 25 constraints (s CPU)": audit,
            f"{engine}: the next audit, pods unchanged (s CPU)": again,
            f"{engine}: audit violations found": float(total),
        }
    finally:
        await gatekeeper.stop(cluster.id)
        await crds.stop()
        await cluster.stop()


async def run(audit_pods: int = AUDIT_PODS) -> dict[str, float]:
    out: dict[str, float] = {}
    out.update(await _one("cel", audit_pods))
    out.update(await _one("rego", audit_pods))
    return out


if __name__ == "__main__":
    figures = asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else AUDIT_PODS))
    for name, value in figures.items():
        print(f"{name:60s} {value:10.3f}")
