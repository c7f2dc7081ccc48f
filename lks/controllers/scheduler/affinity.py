"""InterPodAffinity: required pod affinity and anti-affinity as a filter, preferred terms (the
incoming pod's and, symmetrically, those of pods already placed) as a score, following
upstream's `interpodaffinity` plugin: PreFilter counts matching pods per topology pair
(`key=value` of the node they run on), Filter compares a node's pairs against the counts.

Pods with required anti-affinity are indexed by the snapshot (`anti_pods`), so a pod without
affinity terms of its own pays only for those. Namespace selectors read namespace labels
through `ns_labels`. `lks.controllers.scheduler.framework` builds the states when a pod or the
cluster has terms.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from lks.controllers.scheduler import status, terms
from lks.controllers.scheduler.snapshot import NodeInfo, PodInfo, Snapshot

if TYPE_CHECKING:
    from lks.controllers.scheduler.framework import Cycle

Pair = tuple[str, str]
HARD_AFFINITY_WEIGHT = 1  # InterPodAffinityArgs.hardPodAffinityWeight
MAX_SCORE = 100


def _add(counts: dict[Pair, int], node: NodeInfo | None, key: str, value: int) -> None:
    if node is not None and key in node.labels:
        pair = (key, node.labels[key])
        counts[pair] = counts.get(pair, 0) + value


def _matches_all(term_list: Iterable[terms.AffinityTerm], pod: PodInfo, ns_labels: terms.NamespaceLabels) -> bool:
    term_list = list(term_list)
    return bool(term_list) and all(t.matches(pod.namespace, pod.labels, ns_labels) for t in term_list)


def needed(pod: PodInfo, snapshot: Snapshot) -> bool:
    return bool(pod.req_aff or pod.req_anti or snapshot.anti_pods)


class FilterState:
    def __init__(self, cycle: Cycle, snapshot: Snapshot, ns_labels: terms.NamespaceLabels):
        pod = cycle.pod
        self.pod = pod
        self.existing_anti: dict[Pair, int] = {}
        for other in snapshot.anti_pods.values():
            node = snapshot.nodes.get(other.node)
            for t in other.req_anti:
                if t.matches(pod.namespace, pod.labels, ns_labels):
                    _add(self.existing_anti, node, t.key, 1)
        self.affinity: dict[Pair, int] = {}
        self.anti: dict[Pair, int] = {}
        if pod.req_aff or pod.req_anti:
            for other in snapshot.pods.values():
                node = snapshot.nodes.get(other.node)
                if pod.req_aff and _matches_all(pod.req_aff, other, ns_labels):
                    for t in pod.req_aff:
                        _add(self.affinity, node, t.key, 1)
                for t in pod.req_anti:
                    if t.matches(other.namespace, other.labels, ns_labels):
                        _add(self.anti, node, t.key, 1)
        # the first pod of a group with affinity to itself may go anywhere the keys exist
        self.self_affine = not self.affinity and _matches_all(pod.req_aff, pod, ns_labels)

    def filter(self, _cycle: Cycle, node: NodeInfo) -> status.Status | None:
        labels = node.labels
        if self.existing_anti:
            for pair in labels.items():
                if self.existing_anti.get(pair, 0) > 0:
                    return status.EXISTING_ANTI_AFFINITY
        if self.pod.req_aff:
            exist = True
            for t in self.pod.req_aff:
                value = labels.get(t.key)
                if value is None:
                    return status.AFFINITY
                if self.affinity.get((t.key, value), 0) <= 0:
                    exist = False
            if not exist and not self.self_affine:
                return status.AFFINITY
        if self.anti:
            for t in self.pod.req_anti:
                value = labels.get(t.key)
                if value is not None and self.anti.get((t.key, value), 0) > 0:
                    return status.ANTI_AFFINITY
        return None


def score_needed(pod: PodInfo, snapshot: Snapshot) -> bool:
    return bool(pod.pref_aff or pod.pref_anti or snapshot.affinity_pods)


class ScoreState:
    """`topologyScore`: key -> value -> summed weight, from every relevant placed pod."""

    def __init__(self, cycle: Cycle, snapshot: Snapshot, ns_labels: terms.NamespaceLabels):
        pod = cycle.pod
        self.scores: dict[str, dict[str, int]] = {}
        others = snapshot.pods.values() if (pod.pref_aff or pod.pref_anti) else snapshot.affinity_pods.values()
        for other in others:
            node = snapshot.nodes.get(other.node)
            if node is None or not node.labels:
                continue
            for t in pod.pref_aff:
                if t.matches(other.namespace, other.labels, ns_labels):
                    self._add(node, t.key, t.weight)
            for t in pod.pref_anti:
                if t.matches(other.namespace, other.labels, ns_labels):
                    self._add(node, t.key, -t.weight)
            if other.has_affinity:
                for t in other.req_aff:
                    if t.matches(pod.namespace, pod.labels, ns_labels):
                        self._add(node, t.key, HARD_AFFINITY_WEIGHT)
                for t in other.pref_aff:
                    if t.matches(pod.namespace, pod.labels, ns_labels):
                        self._add(node, t.key, t.weight)
                for t in other.pref_anti:
                    if t.matches(pod.namespace, pod.labels, ns_labels):
                        self._add(node, t.key, -t.weight)

    def _add(self, node: NodeInfo, key: str, weight: int) -> None:
        value = node.labels.get(key)
        if value is not None:
            values = self.scores.setdefault(key, {})
            values[value] = values.get(value, 0) + weight

    def raw(self, nodes: list[NodeInfo]) -> list[int]:
        out = []
        for node in nodes:
            score = 0
            for key, values in self.scores.items():
                value = node.labels.get(key)
                if value is not None:
                    score += values.get(value, 0)
            out.append(score)
        return out

    @staticmethod
    def normalize(raw: list[int]) -> list[int]:
        low, high = min(raw), max(raw)
        diff = high - low
        if diff <= 0:
            return [0] * len(raw)
        return [int(MAX_SCORE * ((s - low) / diff)) for s in raw]
