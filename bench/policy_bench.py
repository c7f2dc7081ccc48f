"""ValidatingAdmissionPolicy benchmark: in process on the memory store, Deployments created
through the registry as a user would (decoding checks, defaulting, validation, admission), in
three rounds: no policy, one bound policy on another resource (configmaps: must cost nothing),
and one simple bound policy matching the Deployments (`object.spec.replicas <= 5`); then the
admission plugin alone, called with a stored Deployment, without and with the matching policy.
Times are CPU time of this process (`time.process_time`), so that other work on a shared
machine does not count. Prints the mean time per create of each round and what the matching
policy costs a request.

Run: `.venv/bin/python bench/policy_bench.py [creates]`.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time

from lks import pki, store
from lks.clock import ManualClock
from lks.kube.admission import validatingpolicy
from lks.kube.authn import User
from lks.kube.cluster import Cluster
from lks.kube.registry import WriteOptions

ADMIN = User("clusterAdmin", ("system:masters", "system:authenticated"))
GROUP = "admissionregistration.k8s.io"


def _deployment(name: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                                                           "ports": [{"containerPort": 80}]}]}}}}


async def _bind(cluster: Cluster, name: str, group: str, resource: str) -> None:
    rules = [{"apiGroups": [group], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": [resource]}]
    expression = "object.spec.replicas <= 5" if resource == "deployments" else "size(object.data) <= 5"
    await cluster.registry(GROUP, "v1", "validatingadmissionpolicies").create(None, {
        "metadata": {"name": name}, "spec": {"matchConstraints": {"resourceRules": rules},
                                             "validations": [{"expression": expression}]}})
    await cluster.registry(GROUP, "v1", "validatingadmissionpolicybindings").create(None, {
        "metadata": {"name": f"{name}-binding"}, "spec": {"policyName": name, "validationActions": ["Deny"]}})
    assert await cluster.feed.wait_for(await cluster.store.current_revision(), 5)


async def _round(cluster: Cluster, prefix: str, n: int) -> float:
    """Mean seconds per create."""
    reg = cluster.registry("apps", "v1", "deployments")
    for i in range(50):  # warm up caches and compiled programs
        await reg.create("default", _deployment(f"{prefix}-warm-{i}"), WriteOptions(user=ADMIN))
    gc.collect()
    start = time.process_time()
    for i in range(n):
        await reg.create("default", _deployment(f"{prefix}-{i}"), WriteOptions(user=ADMIN))
    return (time.process_time() - start) / n


async def _plugin(cluster: Cluster, n: int) -> float:
    """Mean seconds of the policy plugin's validate of one create (the Deployment as stored)."""
    reg = cluster.registry("apps", "v1", "deployments")
    obj = await reg.get("default", "none-0")
    plugin = next(p for p in cluster.admission if isinstance(p, validatingpolicy.ValidatingAdmissionPolicyPlugin))
    opts = WriteOptions(user=ADMIN)
    for _ in range(100):
        await plugin.validate("CREATE", reg, obj, None, opts)
    gc.collect()
    start = time.process_time()
    for _ in range(n):
        await plugin.validate("CREATE", reg, obj, None, opts)
    return (time.process_time() - start) / n


async def run(creates: int = 2000) -> dict[str, float]:
    backend = store.open_store("memory://")
    await backend.start()
    cluster = Cluster(id="bench", name="bench", kubernetes_version="1.36", backend=backend,
                      ca=pki.create_ca("bench"), tokens={}, clock=ManualClock())
    await cluster.start()
    try:
        none = await _round(cluster, "none", creates)
        plugin_none = await _plugin(cluster, creates * 5)
        await _bind(cluster, "configmaps-only", "", "configmaps")
        other = await _round(cluster, "other", creates)
        await _bind(cluster, "replicas", "apps", "deployments")
        matching = await _round(cluster, "matching", creates)
        plugin_one = await _plugin(cluster, creates * 5)
    finally:
        await cluster.stop()
        await backend.close()
    figures = {
        "create, no policy (us)": none * 1e6,
        "create, a policy on another resource (us)": other * 1e6,
        "create, one matching policy (us)": matching * 1e6,
        "matching policy adds per create (us)": (matching - none) * 1e6,
        "policy admission, no matching policy (us)": plugin_none * 1e6,
        "policy admission, one matching policy (us)": plugin_one * 1e6,
    }
    for k, v in figures.items():
        print(f"{k:<45} {v:>10,.1f}")
    return figures


def main() -> None:
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))


if __name__ == "__main__":
    main()
