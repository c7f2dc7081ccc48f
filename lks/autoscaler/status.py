"""What the autoscaler shows: the `kube-system/cluster-autoscaler-status` ConfigMap in
upstream's YAML format (cluster-wide and per node group: health with node counts, scale-up and
scale-down state, each with its last probe and transition time) and the texts of its Events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

NAMESPACE = "kube-system"
NAME = "cluster-autoscaler-status"
LAST_UPDATED = "cluster-autoscaler.kubernetes.io/last-updated"
COMPONENT = "cluster-autoscaler"

# Event texts (upstream's)
MARKED = "marked the node as toBeDeleted/unschedulable"
DELETING_POD = "deleting pod for node scale down"
REMOVING_EMPTY = "Scale-down: removing empty node {}"
REMOVING = "Scale-down: node {} removed with drain"
DRAIN_FAILED = "failed to drain the node, aborting ScaleDown"
DELETE_FAILED = "failed to delete empty node: {}"


def go_time(ts: float) -> str:
    """Go's time.Time String() in UTC: `2024-03-11 16:17:54.470353571 +0000 UTC`."""
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{dt.microsecond * 1000:09d} +0000 UTC"


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Condition:
    """One status with the time it was last looked at and last changed."""

    status: str = ""
    probed: float = 0.0
    changed: float = 0.0

    def set(self, value: str, now: float) -> None:
        if value != self.status:
            self.status, self.changed = value, now
        self.probed = now


@dataclass
class Counts:
    total: int = 0
    ready: int = 0
    not_started: int = 0
    unregistered: int = 0
    long_unregistered: int = 0


@dataclass
class GroupStatus:
    health: Condition = field(default_factory=Condition)
    scale_up: Condition = field(default_factory=Condition)
    scale_down: Condition = field(default_factory=Condition)
    counts: Counts = field(default_factory=Counts)
    target: int = 0
    min_size: int = 0
    max_size: int = 0
    backoff_info: tuple[str, str] | None = None  # why its scale-up is backed off: (errorCode, errorMessage)


def _counts(c: Counts, indent: str) -> list[str]:
    return [f"{indent}nodeCounts:", f"{indent}  registered:", f"{indent}    total: {c.total}",
            f"{indent}    ready: {c.ready}", f"{indent}    notStarted: {c.not_started}",
            f"{indent}  longUnregistered: {c.long_unregistered}", f"{indent}  unregistered: {c.unregistered}"]


def _times(cond: Condition, indent: str) -> list[str]:
    return [f'{indent}lastProbeTime: "{rfc3339(cond.probed)}"', f'{indent}lastTransitionTime: "{rfc3339(cond.changed)}"']


def _backoff(info: tuple[str, str] | None) -> list[str]:
    if info is None:
        return []
    code, message = info
    return ["    backoffInfo:", f"      errorCode: {code}", f"      errorMessage: {message}"]


def text(now: float, cluster: GroupStatus, groups: dict[str, GroupStatus]) -> str:
    lines = [f"time: {go_time(now)}", "autoscalerStatus: Running", "clusterWide:", "  health:",
             f"    status: {cluster.health.status}", *_counts(cluster.counts, "    "), *_times(cluster.health, "    "),
             "  scaleUp:", f"    status: {cluster.scale_up.status}", *_times(cluster.scale_up, "    "),
             "  scaleDown:", f"    status: {cluster.scale_down.status}", *_times(cluster.scale_down, "    ")]
    if groups:
        lines.append("nodeGroups:")
    for name, g in groups.items():
        lines += [f"- name: {name}", "  health:", f"    status: {g.health.status}", *_counts(g.counts, "    "),
                  f"    cloudProviderTarget: {g.target}", f"    minSize: {g.min_size}", f"    maxSize: {g.max_size}",
                  *_times(g.health, "    "), "  scaleUp:", f"    status: {g.scale_up.status}",
                  *_backoff(g.backoff_info), *_times(g.scale_up, "    "), "  scaleDown:", f"    status: {g.scale_down.status}",
                  *_times(g.scale_down, "    ")]
    return "\n".join(lines) + "\n"
