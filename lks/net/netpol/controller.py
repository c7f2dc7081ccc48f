"""NetworkPolicy enforcement for one hosted cluster: informers on its NetworkPolicies, Pods and
Namespaces; any change that matters to a policy (a policy, a pod's address, labels, ports or
phase, a namespace's labels) wakes one task that compiles the whole table
(`lks.net.netpol.rules`) and applies it, as one `nft -f` transaction (`lks.net.netpol.nft`), in
each network namespace the cluster's pods live in.

Only where the managed cluster asks for it (`networkProfile.networkPolicy` azure, calico or
cilium; none: nothing is enforced, as on AKS). The control planes (`lks/controlplanes.py`) call
`start(cluster, mode=...)` and `stop(id)`, and `start` again when an update changes the mode; the Process runtime calls `attach(id, netns)` once its
pod network exists (it outlives a restarted control plane, which finds it here again). A stopped
control plane leaves the last table in place: its pods run on, still confined.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lks import tasks
from lks.controllers.informer import Informer
from lks.kube.cluster import Cluster
from lks.net import netns
from lks.net.netpol import model, nft, rules

Obj = dict[str, Any]
log = logging.getLogger(__name__)

ENFORCING = ("azure", "calico", "cilium")  # networkProfile.networkPolicy values that enforce
RETRY = 2.0  # seconds before a failed apply is tried again

_running: dict[str, Enforcer] = {}
_attached: dict[str, set[str]] = {}  # cluster id -> its pods' network namespaces


def enforcing(mode: str | None) -> bool:
    return (mode or "none").lower() in ENFORCING


def policy_pod(obj: Obj) -> model.Pod | None:
    """The pod as enforcement sees it; None when policies do not apply to it (host network, no
    address yet, or finished: its address may already be another pod's)."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if spec.get("hostNetwork") or status.get("phase") in ("Succeeded", "Failed"):
        return None
    pod = model.pod_of(obj)
    return pod if pod.ips else None


class Enforcer:
    def __init__(self, cluster: Cluster, *, mode: str):
        self.cluster = cluster
        self.mode = mode
        self.error: str | None = None  # the last apply's failure (None: it went through)
        self.applied: dict[str, str] = {}  # namespace -> the script it has
        self.generation = 0  # bumped per compile: tests and tools wait on `applied_generation`
        self.applied_generation = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._policies = Informer(cluster.registry("networking.k8s.io", "v1", "networkpolicies"), self._changed)
        self._pods = Informer(cluster.registry("", "v1", "pods"), self._pod_changed)
        self._namespaces = Informer(cluster.registry("", "v1", "namespaces"), self._namespace_changed)
        self._done = asyncio.Condition()

    async def start(self) -> None:
        for informer in (self._policies, self._namespaces, self._pods):
            await informer.start()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"netpol {self.cluster.name}")
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            await tasks.cancel(self._task)
            self._task = None
        for informer in (self._pods, self._namespaces, self._policies):
            await informer.stop()

    def wake(self) -> None:
        self._wake.set()

    # -- what changed ------------------------------------------------------------------------

    def _changed(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        self._wake.set()

    def _pod_changed(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        now = None if kind == "DELETED" else policy_pod(obj)
        before = policy_pod(prev) if prev is not None else (policy_pod(obj) if kind == "DELETED" else None)
        if now != before:
            self._wake.set()

    def _namespace_changed(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        labels = lambda o: (o or {}).get("metadata", {}).get("labels")  # noqa: E731
        if kind != "MODIFIED" or labels(obj) != labels(prev):
            self._wake.set()

    # -- the state, compiled -------------------------------------------------------------------

    def state(self) -> tuple[list[Obj], list[model.Pod], dict[str, dict[str, str]]]:
        policies = self._policies.list()
        pods = [p for p in map(policy_pod, self._pods.list()) if p is not None]
        namespaces = {o["metadata"]["name"]: o["metadata"].get("labels") or {} for o in self._namespaces.list()}
        return policies, pods, namespaces

    def script(self) -> str:
        policies, pods, namespaces = self.state()
        return rules.script(policies, pods, namespaces) if policies else rules.removal()

    async def _compile(self) -> str:
        """`script()`, compiled off the event loop (~0.1 s for 2000 pods and 50 policies): the
        state is read here, and cached objects are never changed, only replaced."""
        policies, pods, namespaces = self.state()
        if not policies:
            return rules.removal()
        return await asyncio.to_thread(rules.script, policies, pods, namespaces)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self.generation += 1
            generation = self.generation
            script = await self._compile()
            if nft.binary() is None:  # said once; nothing to retry until nftables is installed
                if self.error is None:
                    log.warning("network policies of %s are not enforced: nft is not installed", self.cluster.name)
                self.error = "nft is not installed (make net installs nftables)"
                names: list[str] = []
            else:
                names = sorted(_attached.get(self.cluster.id, ()))
            for name in names:
                if self.applied.get(name) == script:
                    continue
                if not netns.exists(name):  # the runtime went with its network
                    self.applied.pop(name, None)
                    _attached.get(self.cluster.id, set()).discard(name)
                    continue
                try:
                    await nft.apply(name, script)
                except (OSError, nft.NftError) as err:
                    self.error = str(err)
                    log.warning("network policies of %s not applied in %s: %s", self.cluster.name, name, err)
                    # tried again in a while (only after a failure: nothing polls otherwise)
                    asyncio.get_running_loop().call_later(RETRY, self._wake.set)
                    continue
                self.applied[name] = script
                self.error = None
            async with self._done:
                self.applied_generation = generation
                self._done.notify_all()

    async def settled(self) -> None:
        """Wait until what the caches say now is applied (for tests and tools)."""
        self._wake.set()
        target = self.generation + 1
        async with self._done:
            await self._done.wait_for(lambda: self.applied_generation >= target)


async def start(cluster: Cluster, *, mode: str | None) -> Enforcer | None:
    """Enforce `cluster`'s NetworkPolicies when `mode` says so; turned off (`none` where it ran),
    the tables go from the cluster's networks."""
    was_running = await stop(cluster.id)
    if not enforcing(mode):
        if was_running:
            await _clear(cluster.id)
        return None
    enforcer = Enforcer(cluster, mode=(mode or "").lower())
    await enforcer.start()
    _running[cluster.id] = enforcer
    return enforcer


def attach(cluster_id: str, namespace: str | None) -> None:
    """The cluster's pods live in network namespace `namespace` (None: they share the host's
    network, nothing to do)."""
    if namespace is None:
        return
    _attached.setdefault(cluster_id, set()).add(namespace)
    enforcer = _running.get(cluster_id)
    if enforcer is not None:
        enforcer.applied.pop(namespace, None)  # a namespace made anew under its old name has no table
        enforcer.wake()


def get(cluster_id: str) -> Enforcer | None:
    return _running.get(cluster_id)


async def stop(cluster_id: str) -> bool:
    """Stop enforcing changes (the tables stay: the pods stay confined); whether it ran."""
    enforcer = _running.pop(cluster_id, None)
    if enforcer is not None:
        await enforcer.stop()
    return enforcer is not None


async def _clear(cluster_id: str) -> None:
    for name in sorted(_attached.get(cluster_id, ())):
        if netns.exists(name) and nft.binary() is not None:
            try:
                await nft.apply(name, rules.removal())
            except (OSError, nft.NftError) as err:
                log.warning("network policies not removed from %s: %s", name, err)
