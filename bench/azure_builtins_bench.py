"""The 25 Azure Policy built-in Kubernetes definitions (`lks.policy.azure`) as Gatekeeper
constraints on a pod create, in CEL (their templates' K8sNativeValidation code, which Gatekeeper
evaluates when a template has both engines).

Two modes. `engine` (default): the constraints the add-on installs for one assignment of each
definition (its default parameters, or a test's where a parameter is required), compiled once;
each round evaluates every constraint whose kinds match one Pod review, as Gatekeeper's webhook
does (one `shared` per review), over a fresh AdmissionRequest each time (the object as the API
server hands it to admission: defaulted, with a service account token volume). `create`: a cluster
on the memory store with Gatekeeper on and the same 25 constraints applied with the registry, pods
created as a user would; the overhead is each create's CPU time minus the median without them.
Prints p50 and p99. Times are CPU time of this process (`time.process_time`).

Run: `.venv/bin/python bench/azure_builtins_bench.py [engine|create|profile] [n]` (`make bench`: both).
"""

from __future__ import annotations

import asyncio
import copy
import cProfile
import gc
import pstats
import statistics
import sys
import time
from typing import Any

from lks.policy.azure import catalog, constraints, parameters
from lks.policy.gatekeeper import constraints as gkconstraints
from lks.policy.gatekeeper import engines

Obj = dict[str, Any]

# what a required parameter is given (as the README's examples and tests/policy give them)
REQUIRED = {
    "febd0533-8e55-448f-b837-bd0e06f16469": {"allowedContainerImagesRegex": "^myregistry[.]azurecr[.]io/.+$"},
    "e345eecc-fa47-480f-9e88-67dcc122b164": {"cpuLimit": "500m", "memoryLimit": "1Gi"},
    "46592696-4c7b-4bf3-9e45-6c2763bdc0a6": {"labelsList": ["app"]},
    "233a2a17-77ca-4fb1-9b6b-69223d272a44": {"allowedServicePortsList": ["443"]},
}


def desired() -> constraints.Desired:
    """The templates and constraints of one subscription-wide assignment of every built-in."""
    entries = []
    for doc in catalog.definitions():
        given = {k: {"value": v} for k, v in REQUIRED.get(doc["name"], {}).items()}
        resolved = parameters.resolve(doc, parameters.check("bench", doc, given))
        entries.append({**resolved, "enforcementMode": "Default", "definition": doc,
                        "assignment": {"id": f"/subscriptions/0/providers/Microsoft.Authorization/"
                                             f"policyAssignments/{doc['name'][:8]}"}})
    out = constraints.desired(entries)
    assert len(out.templates) == 25 and len(out.constraints) == 25, (len(out.templates), len(out.constraints))
    return out


def minimal_pod(i: int) -> Obj:
    """What `kubectl run web --image=nginx` makes, as admission sees it (defaulted)."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"web-{i}", "namespace": "team", "labels": {"run": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx", "imagePullPolicy": "Always", "resources": {},
                                     "terminationMessagePath": "/dev/termination-log",
                                     "terminationMessagePolicy": "File"}],
                     "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                     "serviceAccountName": "default", "schedulerName": "default-scheduler",
                     "enableServiceLinks": True, "priority": 0, "preemptionPolicy": "PreemptLowerPriority"},
            "status": {"phase": "Pending"}}


def replica(i: int) -> Obj:
    """A ReplicaSet's pod: the same spec as the others, another name."""
    return pod(i, image_tag="1.4.2")


def pod(i: int, image_tag: str = "") -> Obj:
    """A Pod as admission sees it on create: defaulted, with the service account's token volume;
    an image of its own (no two reviews alike)."""
    def container(name: str, image: str) -> Obj:
        return {"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "resources": {"limits": {"cpu": "250m", "memory": "256Mi"},
                              "requests": {"cpu": "100m", "memory": "128Mi"}},
                "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                                   "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
                                   "failureThreshold": 3},
                "livenessProbe": {"tcpSocket": {"port": 8080}, "timeoutSeconds": 1, "periodSeconds": 10,
                                  "successThreshold": 1, "failureThreshold": 3},
                "volumeMounts": [{"name": "kube-api-access-x7k2p", "readOnly": True,
                                  "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}

    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"web-{i}", "namespace": "team", "uid": f"0d9c-{i}",
                         "creationTimestamp": "2026-12-08T01:00:00Z",
                         "labels": {"app": "web", "pod-template-hash": "5d8f7"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f7",
                                              "uid": "77aa", "controller": True, "blockOwnerDeletion": True}],
                         "managedFields": [{"manager": "kube-controller-manager", "operation": "Update",
                                            "apiVersion": "v1", "time": "2026-12-08T01:00:00Z",
                                            "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}, "f:spec": {}}}]},
            "spec": {"containers": [container("web", f"myregistry.azurecr.io/web:{image_tag or f'1.{i}'}"),
                                    container("sidecar", "myregistry.azurecr.io/proxy:2.0")],
                     "volumes": [{"name": "kube-api-access-x7k2p", "projected": {"defaultMode": 420, "sources": [
                         {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                         {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                         {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                             "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}],
                     "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                     "serviceAccountName": "default", "serviceAccount": "default",
                     "automountServiceAccountToken": False,
                     "securityContext": {"runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
                     "schedulerName": "default-scheduler", "enableServiceLinks": True, "priority": 0,
                     "preemptionPolicy": "PreemptLowerPriority",
                     "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                      "effect": "NoExecute", "tolerationSeconds": 300}]},
            "status": {"phase": "Pending", "qosClass": "Burstable"}}


def request(obj: Obj) -> Obj:
    return {"uid": "x", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": obj["metadata"]["name"], "namespace": "team", "operation": "CREATE", "object": obj,
            "oldObject": None, "userInfo": {"username": "clusterAdmin", "groups": ["system:masters"]},
            "dryRun": False, "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}}


def bound() -> list[tuple[gkconstraints.Constraint, engines.Program]]:
    want = desired()
    programs = {name: engines.compile_template(t) for name, t in want.templates.items()}
    kinds = {t["spec"]["crd"]["spec"]["names"]["kind"]: name for name, t in want.templates.items()}
    return [(gkconstraints.Constraint(c), programs[kinds[c["kind"]]]) for c in want.constraints]


def review(pairs: list[tuple[gkconstraints.Constraint, engines.Program]], req: Obj) -> int:
    """The webhook's loop over the constraints for one request: how many violations."""
    obj = req["object"]
    target = gkconstraints.Target("", "Pod", req["namespace"], req["name"], obj["metadata"].get("labels") or {}, {})
    shared: Obj = {}
    found = 0
    for c, program in pairs:
        if c.matches(target):
            found += len(program.violations(req, c.parameters, {}, shared))
    return found


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def engine(n: int = 2000) -> dict[str, float]:
    out = _engine(n, pod, "a pod (2 containers), no two alike")
    out.update(_engine(n, replica, "a ReplicaSet's pods (alike but for their names)"))
    out.update(_engine(n, minimal_pod, "kubectl run's pod"))
    return out


def _engine(n: int, make: Any, what: str) -> dict[str, float]:
    """p50/p99 of one review with each constraint's own fast programs, and with the template's
    expressions as written (what every review ran before them), rounds interleaved so that the
    machine's load weighs on both alike."""
    pairs = bound()
    requests = [request(make(i)) for i in range(n)]
    for req in requests[:50]:
        review(pairs, copy.deepcopy(req))
    matched = sum(c.matches(gkconstraints.Target("", "Pod", "team", "x", {}, {})) for c, _ in pairs)
    gc.collect()
    fast, exact = [], []
    specialized = getattr(engines.CELProgram, "_specialized", None)  # (absent before the fast programs)
    for i, req in enumerate(requests):
        for times, as_written in ((fast, False), (exact, True)) if i % 2 else ((exact, True), (fast, False)):
            if as_written:
                engines.CELProgram._specialized = lambda self, parameters: None
            start = time.process_time()
            review(pairs, req)
            times.append(time.process_time() - start)
            if specialized is not None:
                engines.CELProgram._specialized = specialized
    label = f"25 built-ins ({matched} match), {what}"
    return {
        f"{label}, as written p50 (ms)": statistics.median(exact) * 1000,
        f"{label}, as written p99 (ms)": _pct(exact, 0.99) * 1000,
        f"{label}, fast programs p50 (ms)": statistics.median(fast) * 1000,
        f"{label}, fast programs p99 (ms)": _pct(fast, 0.99) * 1000,
    }


def profile(n: int = 1000) -> None:
    pairs = bound()
    requests = [request(pod(i)) for i in range(n)]
    review(pairs, requests[0])
    prof = cProfile.Profile()
    prof.enable()
    for req in requests:
        review(pairs, req)
    prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)


async def create(n: int = 300) -> dict[str, float]:
    from lks import pki, store
    from lks.clock import ManualClock
    from lks.controllers.crd import CRDController
    from lks.kube.authn import User
    from lks.kube.cluster import Cluster
    from lks.kube.registry import WriteOptions
    from lks.policy import gatekeeper

    admin = User("clusterAdmin", ("system:masters", "system:authenticated"))
    backend = store.open_store("memory://")
    await backend.start()
    cluster = Cluster(id="bench-azure", name="bench", kubernetes_version="1.36", backend=backend,
                      ca=pki.create_ca("bench"), tokens={}, clock=ManualClock())
    await cluster.start()
    crds = CRDController(cluster)
    await crds.start()
    try:
        await gatekeeper.configure(cluster, enabled=True)
        await cluster.registry("", "v1", "namespaces").create(None, {
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
        await cluster.registry("", "v1", "serviceaccounts").create("team", {
            "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "team"}})
        pods = cluster.registry("", "v1", "pods")

        async def creates(prefix: str) -> list[float]:
            for i in range(30):  # warm up caches and compiled programs
                await pods.create("team", _user_pod(f"{prefix}-warm-{i}"), WriteOptions(user=admin))
            gc.collect()
            out = []
            for i in range(n):
                body = _user_pod(f"{prefix}-{i}")
                start = time.process_time()
                await pods.create("team", body, WriteOptions(user=admin))
                out.append(time.process_time() - start)
            return out

        base = await creates("base")
        want = desired()
        gk = gatekeeper.running(cluster.id)
        templates = cluster.registry("templates.gatekeeper.sh", "v1", "constrainttemplates")
        for t in want.templates.values():
            await templates.create(None, t)
        for _ in range(3000):
            if len(gk.state.programs) == len(want.templates):
                break
            await asyncio.sleep(0.01)
        assert len(gk.state.programs) == len(want.templates), "templates not ingested"
        for i, c in enumerate(want.constraints):
            c = {**c, "metadata": {**c["metadata"], "name": f"azurepolicy-{i}"}}  # Gatekeeper's 63 characters
            for _ in range(3000):
                reg = gk.state.registry(c["kind"])
                if reg is not None:
                    break
                await asyncio.sleep(0.01)
            await reg.create(None, c)
        for _ in range(3000):
            if len(await gk.state.constraints()) == len(want.constraints):
                break
            await asyncio.sleep(0.01)
        assert len(await gk.state.constraints()) == len(want.constraints), "constraints not bound"
        with_gk = await creates("gk")
    finally:
        await gatekeeper.stop(cluster.id)
        await crds.stop()
        await cluster.stop()
        await backend.close()
    base_p50 = statistics.median(base)
    return {
        "pod create p50, no constraints (ms)": base_p50 * 1000,
        "pod create p50, 25 built-in constraints (ms)": statistics.median(with_gk) * 1000,
        "admission overhead p50 (ms)": (statistics.median(with_gk) - base_p50) * 1000,
        "admission overhead p99 (ms)": (_pct(with_gk, 0.99) - base_p50) * 1000,
    }


def _user_pod(name: str) -> Obj:
    """What a user sends: the API server defaults the rest before admission."""
    body = pod(0)
    spec = body["spec"]
    for c in spec["containers"]:
        c.pop("volumeMounts")
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "team", "labels": {"app": "web"}},
            "spec": {"containers": spec["containers"], "securityContext": spec["securityContext"],
                     "automountServiceAccountToken": False}}


def run(n: int = 1000) -> dict[str, float]:
    """Both modes, for `make bench`."""
    figures = engine(n)
    figures.update(asyncio.run(create(300)))
    for k, v in figures.items():
        print(f"{k:<75} {v:>10.3f}")
    return figures


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "engine"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    if mode == "profile":
        profile(n or 1000)
        return
    figures = engine(n or 2000) if mode == "engine" else asyncio.run(create(n or 300))
    for k, v in figures.items():
        print(f"{k:<75} {v:>10.3f}")


if __name__ == "__main__":
    main()
