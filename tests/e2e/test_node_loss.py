"""A node that goes away takes its pods with it, and their controllers put them elsewhere: a
pool added with the `lks` CLI, a Deployment that prefers it, then its Node deleted with kubectl.
The pod garbage collector deletes pods bound to a vanished node after upstream's 40 s
quarantine, and the ReplicaSet's replacements are scheduled onto the nodes that remain.
(An agent that stops instead — Lease expiry, NotReady, unreachable taints, eviction after the
tolerations run out — is covered on the manual clock in tests/controllers/test_nodelifecycle.py.)"""

from __future__ import annotations

import json

from .conftest import lks_json, wait_until

POOL = "spare"
TAINT = "lks.test/spare"




def _pods(kubectl, namespace: str) -> list[dict]:
    items = json.loads(kubectl("get", "pods", "-n", namespace, "-l", "app=mover", "-o", "json").stdout)["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]



def test_pods_of_a_deleted_node_move_to_the_others(lks, kubectl, namespace):
    lks_json(lks, "aks", "nodepool", "add", "-g", "demo", "--cluster-name", "demo", "-n", POOL, "--node-count", "1",
         "--node-taints", f"{TAINT}=true:NoSchedule")
    try:
        [spare] = wait_until(lambda: [n["metadata"]["name"] for n in json.loads(kubectl(
            "get", "nodes", "-l", f"kubernetes.azure.com/agentpool={POOL}", "-o", "json").stdout)["items"]], 60)
        deployment = {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "mover"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "mover"}}, "template": {
                "metadata": {"labels": {"app": "mover"}},
                "spec": {"tolerations": [{"key": TAINT, "operator": "Exists", "effect": "NoSchedule"}],
                         "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                             {"weight": 100, "preference": {"matchExpressions": [
                                 {"key": "kubernetes.azure.com/agentpool", "operator": "In", "values": [POOL]}]}}]}},
                         "containers": [{"name": "app", "image": "nginx"}]}}}}
        kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(deployment))
        kubectl("rollout", "status", "deployment/mover", "-n", namespace, "--timeout=60s")
        before = _pods(kubectl, namespace)
        on_spare = {p["metadata"]["name"] for p in before if p["spec"]["nodeName"] == spare}
        assert on_spare, f"no pod preferred the {POOL} node: {[p['spec']['nodeName'] for p in before]}"

        kubectl("delete", "node", spare)

        def moved():
            pods = _pods(kubectl, namespace)
            running = [p for p in pods if p["status"].get("phase") == "Running"]
            return (len(running) == 3 and all(p["spec"]["nodeName"] != spare for p in running)
                    and not on_spare & {p["metadata"]["name"] for p in pods} and running)

        after = wait_until(moved, 120)  # 40 s of quarantine, then the replacements
        assert {p["spec"]["nodeName"] for p in after} <= {
            n["metadata"]["name"] for n in json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]}
    finally:
        lks_json(lks, "aks", "nodepool", "delete", "-g", "demo", "--cluster-name", "demo", "-n", POOL)
