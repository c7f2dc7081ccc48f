"""Node-pool rollback, as AKS offers it (`az aks nodepool get-rollback-versions` / `rollback`,
API 2025+): each pool remembers the (orchestratorVersion, nodeImageVersion) pairs it ran
before, its `recentlyUsedVersions`, shown in the pool's upgrade profile. A PUT of the pool that
sets `nodeImageVersion` (and `orchestratorVersion`) to one of them is a rollback: allowed
though the version is lower (`lks.arm.model.agent_pool` checks it), and carried out by the same
reconcile operation and surge upgrade as any other version change.

`record` is called by the handlers that change a pool's versions (cluster and pool PUTs, the
`upgradeNodeImageVersion` action) before they store the new document. The history lives in the
cluster's private fields, so it never reaches a PUT body sent back by a client.
"""

from __future__ import annotations

from typing import Any

from lks.arm import documents
from lks.clock import iso8601

Doc = dict[str, Any]

HISTORY = 5  # pairs kept per pool, the most recent first
KEY = "recentlyUsedVersions"


def record(old_props: Doc, new_props: Doc, *, now: float) -> None:
    """Push each pool's previous versions onto its history where `new_props` changes them; a
    pool that is new (or was deleted and added again) starts without history."""
    private = new_props.setdefault(documents.PRIVATE, {})
    history: dict[str, list[Doc]] = dict(private.get(KEY) or {})
    before = {p["name"]: p for p in old_props.get("agentPoolProfiles") or []}
    names = set()
    for pool in new_props["agentPoolProfiles"]:
        name = pool["name"]
        names.add(name)
        old = before.get(name)
        if old is None:
            history.pop(name, None)
            continue
        was = (old.get("currentOrchestratorVersion"), old.get("nodeImageVersion"))
        now_pair = (pool.get("currentOrchestratorVersion"), pool.get("nodeImageVersion"))
        if was == now_pair or None in was:
            continue
        rest = [e for e in history.get(name, [])
                if (e["orchestratorVersion"], e["nodeImageVersion"]) not in (was, now_pair)]
        history[name] = [{"orchestratorVersion": was[0], "nodeImageVersion": was[1], "timestamp": iso8601(now)},
                         *rest][:HISTORY]
    private[KEY] = {name: h for name, h in history.items() if name in names}
