"""The DaemonSet controller (upstream's `pkg/controller/daemon`): one pod per eligible node.

A node is eligible when the DaemonSet's pod would fit it by node name, `nodeSelector`,
required node affinity and taints, counting the tolerations every daemon pod gets
(`not-ready` and `unreachable` NoExecute; `disk-pressure`, `memory-pressure`, `pid-pressure`,
`unschedulable` and, with host networking, `network-unavailable` NoSchedule). A pod that no
longer fits keeps running while it tolerates the node's NoExecute taints, as upstream.

Pods are not bound here: since 1.12 each pod asks for its node through a required node
affinity on `metadata.name` (`matchFields`), and the scheduler (`lks.controllers.scheduler`)
places it like any pod. `sync` follows `syncDaemonSet`: the ControllerRevision history
(`lks.controllers.history`), `manage` (create for nodes without a pod, delete failed, surplus
and misplaced pods), then the RollingUpdate (maxUnavailable, or maxSurge) unless manage just
wrote, then the status. Node additions, removals and label or taint changes re-sync every
DaemonSet. Pod shapes and placement rules are in `lks.controllers.daemonset_util`.
"""

from __future__ import annotations

import logging
from typing import Any

from lks.controllers import daemonset_util as dsu
from lks.controllers import history, ownerindex, podcontrol
from lks.controllers import replicaset_util as rsutil
from lks.controllers.controller import Controller
from lks.controllers.events import WARNING, EventRecorder
from lks.controllers.informer import Informer
from lks.kube import errors
from lks.kube.cluster import Cluster

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class DaemonSetController(Controller[str]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="daemonset")
        self.sets = cluster.registry("apps", "v1", "daemonsets")
        self.pods = cluster.registry("", "v1", "pods")
        self.nodes = cluster.registry("", "v1", "nodes")
        self.recorder = EventRecorder(cluster, component="daemonset-controller")
        self.control = podcontrol.PodControl(cluster, self.recorder)
        self.history = history.History(cluster)
        self.deadlines = podcontrol.Deadlines(self.queue, cluster.clock)
        self.pods_by_owner = ownerindex.OwnerIndex()
        self.revisions_by_owner = ownerindex.OwnerIndex()
        self.revision_informer = self.watch(self.history.registry, self._on_revision)
        self.node_informer = self.watch(self.nodes, self._on_node)
        self.set_informer = self.watch(self.sets, self._on_set)
        self.pod_informer = self.watch(self.pods, self._on_pod)
        self._backoff: dict[tuple[str, str], tuple[float, float]] = {}  # (ds uid, node) -> (delay, at)

    # -- events ----------------------------------------------------------------------------

    def _on_set(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        self.queue.add(podcontrol.object_key(obj))

    def _on_pod(self, kind: str, pod: Obj, prev: Obj | None) -> None:
        meta = pod["metadata"]
        self.pods_by_owner.observe(self.pods.key(meta["namespace"], meta["name"]), pod, deleted=kind == "DELETED")
        for obj in (pod, prev):
            ref = rsutil.controller_of(obj) if obj is not None else None
            if ref is not None and ref.get("kind") == dsu.KIND:
                self.queue.add(f"{meta['namespace']}/{ref['name']}")
        if kind != "DELETED" and rsutil.controller_of(pod) is None and self.set_informer.cache is not None:
            for ds in self.set_informer.list():
                if ds["metadata"]["namespace"] == meta["namespace"] and dsu.selector(ds).matches(meta.get("labels")):
                    self.queue.add(podcontrol.object_key(ds))

    def _on_node(self, kind: str, node: Obj, prev: Obj | None) -> None:
        # heartbeats change only status: what decides placement is the name, labels and spec
        if (kind == "MODIFIED" and prev is not None and node["metadata"].get("labels") == prev["metadata"].get("labels")
                and node.get("spec") == prev.get("spec")):
            return
        if self.set_informer.cache is not None:
            for ds in self.set_informer.list():
                self.queue.add(podcontrol.object_key(ds))

    def _on_revision(self, kind: str, rev: Obj, _prev: Obj | None) -> None:
        meta = rev["metadata"]
        self.revisions_by_owner.observe(self.history.registry.key(meta["namespace"], meta["name"]), rev,
                                        deleted=kind == "DELETED")

    def prime(self) -> None:
        self.pods_by_owner.seed(self._cached(self.pod_informer))
        self.revisions_by_owner.seed(self._cached(self.revision_informer))

    # -- sync --------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        namespace, name = podcontrol.split_key(key)
        ds = self.set_informer.get(namespace, name)
        if ds is None:
            self.deadlines.forget(key)
            return
        uid = ds["metadata"]["uid"]
        if "deletionTimestamp" in ds["metadata"]:
            return
        current, old, collisions = await self._history(ds)
        hash_ = (current["metadata"].get("labels") or {}).get(dsu.HASH_LABEL) or current["metadata"]["name"]
        nodes = self.node_informer.list()
        fit = dsu.Fit(ds)
        placement = {n["metadata"]["name"]: fit(n) for n in nodes}
        by_node = self._by_node(await self._claim_pods(ds))
        try:
            wrote = await self._manage(key, ds, placement, by_node, hash_)
            await self.control.caught_up()
            if not wrote and (ds["spec"].get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate":
                by_node = self._by_node(self.pods_by_owner.owned(uid, self._cached(self.pod_informer)))
                wrote = await self._rolling_update(ds, placement, by_node, hash_)
                await self.control.caught_up()
        finally:
            await self.cluster.feed.wait_for(self.history.revision, podcontrol.CATCH_UP_TIMEOUT)
        by_node = self._by_node(self.pods_by_owner.owned(uid, self._cached(self.pod_informer)))
        live = {p["metadata"]["labels"].get(dsu.HASH_LABEL) for ps in by_node.values() for p in ps
                if p["metadata"].get("labels")}
        keep = {r["metadata"]["name"] for r in old if (r["metadata"].get("labels") or {}).get(dsu.HASH_LABEL) in live}
        await self.history.truncate([*old, current], keep | {current["metadata"]["name"]},
                                    int(ds["spec"].get("revisionHistoryLimit", 10)))
        await self._write_status(ds, self._status(ds, placement, by_node, hash_, collisions))

    @staticmethod
    def _cached(informer: Informer) -> dict[str, Obj]:
        assert informer.cache is not None
        return informer.cache.objects

    @staticmethod
    def _by_node(pods: list[Obj]) -> dict[str, list[Obj]]:
        out: dict[str, list[Obj]] = {}
        for pod in pods:
            out.setdefault(dsu.target_node(pod), []).append(pod)
        return out

    async def _claim_pods(self, ds: Obj) -> list[Obj]:
        meta = ds["metadata"]
        objects = self._cached(self.pod_informer)
        candidates = self.pods_by_owner.owned(meta["uid"], objects) + self.pods_by_owner.orphans(meta["namespace"], objects)
        ref = rsutil.new_controller_ref(ds, api_version=dsu.API_VERSION, kind=dsu.KIND)
        selector = dsu.selector(ds)

        async def can_adopt() -> bool:
            try:
                fresh = await self.sets.get(meta["namespace"], meta["name"])
            except errors.APIError:
                return False
            return fresh["metadata"]["uid"] == meta["uid"] and "deletionTimestamp" not in fresh["metadata"]

        async def adopt(pod: Obj) -> None:
            if await self.control.patch(pod, rsutil.adopt_patch(ref, pod["metadata"]["uid"], "pods", "")) is not None:
                self.pods_by_owner.add(meta["uid"], self.pods.key(meta["namespace"], pod["metadata"]["name"]))

        async def release(pod: Obj) -> None:
            await self.control.patch(pod, rsutil.release_patch(meta["uid"], pod["metadata"]["uid"]))

        return await rsutil.claim(candidates, owner=ds, matches=lambda p: selector.matches(p["metadata"].get("labels")),
                                  can_adopt=can_adopt, adopt=adopt, release=release)

    async def _history(self, ds: Obj) -> tuple[Obj, list[Obj], int]:
        """constructHistory: (current revision, older ones, collisionCount). The current one
        stores today's template; an older equal one is renumbered to be the newest."""
        revisions = self.revisions_by_owner.owned(ds["metadata"]["uid"], self._cached(self.revision_informer))
        template = ds["spec"].get("template") or {}
        data = history.template_patch(template)
        current: list[Obj] = []
        old: list[Obj] = []
        for r in revisions:  # one comparison each (a differing one canonicalizes both sides)
            (current if history.same_data(r.get("data") or {}, data) else old).append(r)
        number = history.next_number(old)
        collisions = int((ds.get("status") or {}).get("collisionCount") or 0)
        if current:
            cur = max(current, key=history.sort_key)
            for dup in current:  # dedupCurHistories
                if dup is not cur:
                    await self.history.delete(dup)
            if int(cur.get("revision") or 0) < number:
                cur = await self.history.renumber(cur, number)
            return cur, old, collisions

        def build(count: int) -> Obj:
            hash_ = history.compute_hash(template, count)
            labels = {**((template.get("metadata") or {}).get("labels") or {}), dsu.HASH_LABEL: hash_}
            return history.new_revision(ds, api_version=dsu.API_VERSION, kind=dsu.KIND, labels=labels, data=data, number=number,
                                        name=history.revision_name(ds["metadata"]["name"], hash_),
                                        annotations=ds["metadata"].get("annotations"))

        cur, collisions = await self.history.create(ds, build, collisions)
        return cur, old, collisions

    # -- manage ------------------------------------------------------------------------------

    async def _manage(self, key: str, ds: Obj, placement: dict[str, tuple[bool, bool]],
                      by_node: dict[str, list[Obj]], hash_: str) -> bool:
        """manage + podsShouldBeOnNode: which nodes need a pod, which pods must go."""
        surge = dsu.allows_surge(ds)
        min_ready = int(ds["spec"].get("minReadySeconds") or 0)
        now = self.cluster.clock.now()
        create_on: list[str] = []
        delete: list[Obj] = []
        for node, (should_run, should_continue) in placement.items():
            pods = by_node.get(node, [])
            if should_run and not pods:
                create_on.append(node)
            elif should_continue:
                running = []
                for pod in pods:
                    if podcontrol.is_terminating(pod):
                        continue
                    phase = (pod.get("status") or {}).get("phase")
                    if phase == "Failed":
                        if await self._failed_pod(key, ds, pod, node):
                            delete.append(pod)
                    elif phase == "Succeeded":
                        delete.append(pod)
                    else:
                        running.append(pod)
                running.sort(key=dsu.by_creation)
                if not surge:
                    delete.extend(running[1:])
                elif len(running) > 1:
                    newest = next((p for p in running if dsu.is_updated(ds, p, hash_)), None)
                    oldest = next((p for p in running if not dsu.is_updated(ds, p, hash_)), None)
                    delete.extend(p for p in running if p is not newest and p is not oldest)
                    if newest is not None and oldest is not None and (
                            not rsutil.is_ready(oldest)
                            or rsutil.is_available(rsutil.ready_since(newest), min_ready, now) and rsutil.is_ready(newest)):
                        delete.append(oldest)
            elif pods:
                delete.extend(p for p in pods if not podcontrol.is_terminating(p))
        for node, pods in by_node.items():
            # unbound pods aimed at a node that is gone: nobody else would remove them
            if node not in placement:
                delete.extend(p for p in pods if not (p.get("spec") or {}).get("nodeName")
                              and not podcontrol.is_terminating(p))
        return await self._sync_nodes(ds, delete, create_on, hash_)

    async def _failed_pod(self, key: str, ds: Obj, pod: Obj, node: str) -> bool:
        """A failed daemon pod is deleted (and so replaced), backing off per node, as kubelet
        rejecting a pod would otherwise make the two fight in a hot loop."""
        now = self.cluster.clock.now()
        slot = (ds["metadata"]["uid"], node)
        delay, at = self._backoff.get(slot, (0.0, 0.0))
        if delay and now - at < delay:
            self.deadlines.after(key, delay - (now - at))
            return False
        self._backoff[slot] = (min(delay * 2, dsu.BACKOFF_MAX) if delay else dsu.BACKOFF_INITIAL, now)
        meta = pod["metadata"]
        await self.control.event(ds, WARNING, "FailedDaemonPod",
                                 f"Found failed daemon pod {meta['namespace']}/{meta['name']} on node {node}, "
                                 "will try to kill it")
        return True

    async def _sync_nodes(self, ds: Obj, delete: list[Obj], create_on: list[str], hash_: str) -> bool:
        """syncNodes: create a pod for each node in `create_on` (slow start), delete `delete`."""
        create_on, delete = create_on[:dsu.BURST], delete[:dsu.BURST]
        template = dsu.pod_template(ds, hash_)
        ref = rsutil.new_controller_ref(ds, api_version=dsu.API_VERSION, kind=dsu.KIND)
        meta = ds["metadata"]
        nodes = iter(create_on)
        error: Exception | None = None

        async def create_one() -> None:
            node = next(nodes)
            pod = rsutil.pod_from_template(template, meta["name"], ref)
            pod["spec"]["affinity"] = dsu.node_affinity_for(pod["spec"].get("affinity"), node)
            created = await self.control.create(pod, ds)
            self.pods_by_owner.add(meta["uid"], self.pods.key(meta["namespace"], created["metadata"]["name"]))

        if create_on:
            _, error = await rsutil.slow_start_batch(len(create_on), 1, create_one)
        for pod in delete:
            await self.control.delete(pod, ds)
        if error is not None:
            raise error
        return bool(create_on or delete)

    # -- rolling update ------------------------------------------------------------------------

    async def _rolling_update(self, ds: Obj, placement: dict[str, tuple[bool, bool]],
                              by_node: dict[str, list[Obj]], hash_: str) -> bool:
        """rollingUpdate: replace old pods node by node, at most maxUnavailable unavailable at
        a time; or, with maxSurge, start the new pod beside the old one and delete the old
        one once the new one is available."""
        desired = [n for n, (run, _) in placement.items() if run]
        rolling = (ds["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {}
        max_unavailable = dsu.scaled_value(rolling.get("maxUnavailable", 1), len(desired), round_up=True)
        max_surge = dsu.scaled_value(rolling.get("maxSurge", 0), len(desired), round_up=True)
        if desired and not max_unavailable and not max_surge:
            max_unavailable = 1
        min_ready = int(ds["spec"].get("minReadySeconds") or 0)
        now = self.cluster.clock.now()

        def available(pod: Obj) -> bool:
            return rsutil.is_ready(pod) and rsutil.is_available(rsutil.ready_since(pod), min_ready, now)

        nodes = sorted(set(desired) | set(by_node))
        delete: list[Obj] = []
        if not max_surge:
            unavailable, replace, candidates = 0, [], []
            for node in nodes:
                found = dsu.new_and_old(ds, by_node.get(node, []), hash_)
                if found is None:
                    continue
                new, old = found
                if old is None and new is None or old is not None and new is not None:
                    continue
                if new is not None:
                    unavailable += not available(new)
                elif not available(old):
                    replace.append(old)
                elif unavailable < max_unavailable:
                    candidates.append(old)
            room = min(max(max_unavailable - unavailable, 0), len(candidates))
            return await self._sync_nodes(ds, replace + candidates[:room], [], hash_)
        surged, allowed, candidate_nodes = 0, [], []
        for node in nodes:
            found = dsu.new_and_old(ds, by_node.get(node, []), hash_)
            if found is None:
                continue
            new, old = found
            if old is None:
                continue
            if new is None:
                if not available(old):
                    allowed.append(node)
                elif surged < max_surge:
                    candidate_nodes.append(node)
            elif not available(new):
                surged += 1
            else:
                delete.append(old)
        room = min(max(max_surge - surged, 0), len(candidate_nodes))
        return await self._sync_nodes(ds, delete, allowed + candidate_nodes[:room], hash_)

    # -- status ------------------------------------------------------------------------------

    def _status(self, ds: Obj, placement: dict[str, tuple[bool, bool]], by_node: dict[str, list[Obj]],
                hash_: str, collisions: int) -> Obj:
        """updateDaemonSetStatus."""
        min_ready = int(ds["spec"].get("minReadySeconds") or 0)
        now = self.cluster.clock.now()
        desired = current = ready = available = updated = misscheduled = 0
        waiting = False
        for node, (should_run, _) in placement.items():
            pods = by_node.get(node) or []
            if not should_run:
                misscheduled += bool(pods)
                continue
            desired += 1
            if not pods:
                continue
            current += 1
            pod = min(pods, key=dsu.by_creation)
            if rsutil.is_ready(pod):
                ready += 1
                if rsutil.is_available(rsutil.ready_since(pod), min_ready, now):
                    available += 1
                else:
                    waiting = True
            updated += dsu.is_updated(ds, pod, hash_)
        if waiting:
            self.deadlines.after(podcontrol.object_key(ds), min_ready)
        old = ds.get("status") or {}
        status: Obj = {"currentNumberScheduled": current, "numberMisscheduled": misscheduled,
                       "desiredNumberScheduled": desired, "numberReady": ready,
                       "observedGeneration": ds["metadata"].get("generation", 1)}
        for field, value in (("updatedNumberScheduled", updated), ("numberAvailable", available),
                             ("numberUnavailable", desired - available)):
            if value:  # omitempty upstream
                status[field] = value
        if collisions or "collisionCount" in old:
            status["collisionCount"] = collisions
        if old.get("conditions"):
            status["conditions"] = old["conditions"]
        return status

    async def _write_status(self, ds: Obj, status: Obj) -> None:
        if (ds.get("status") or {}) == status:
            return
        uid = ds["metadata"]["uid"]

        def put(current: Obj) -> Obj:
            if current["metadata"].get("uid") != uid:
                raise errors.conflict("daemonsets", "apps", current["metadata"]["name"], "the object was replaced")
            current["status"] = status
            return current

        try:
            await self.sets.patch(ds["metadata"]["namespace"], ds["metadata"]["name"], put, podcontrol.WRITE,
                                  subresource="status")
        except errors.APIError as err:
            if err.code != 404:
                raise


