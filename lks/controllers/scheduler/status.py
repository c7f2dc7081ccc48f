"""A filter's verdict on one node (upstream's `fwk.Status`): the code says whether preemption
could help (`UNSCHEDULABLE`) or not (`UNRESOLVABLE`, i.e. UnschedulableAndUnresolvable), the
reasons are the words the FailedScheduling message counts, and the plugin names the filter.

Statuses are shared constants where the wording is fixed, so the filters allocate nothing on
the hot path; `lks.controllers.scheduler.framework` turns them into the message.
"""

from __future__ import annotations

UNSCHEDULABLE = 1
UNRESOLVABLE = 2


class Status:
    __slots__ = ("code", "reasons", "plugin")

    def __init__(self, code: int, reasons: tuple[str, ...], plugin: str):
        self.code = code
        self.reasons = reasons
        self.plugin = plugin

    def __repr__(self) -> str:
        return f"Status({self.code}, {self.reasons!r}, {self.plugin})"


def unresolvable(reason: str, plugin: str) -> Status:
    return Status(UNRESOLVABLE, (reason,), plugin)


def unschedulable(reason: str, plugin: str) -> Status:
    return Status(UNSCHEDULABLE, (reason,), plugin)


NODE_UNSCHEDULABLE = unresolvable("node(s) were unschedulable", "NodeUnschedulable")
UNTOLERATED_TAINT = unresolvable("node(s) had untolerated taint(s)", "TaintToleration")
NODE_AFFINITY = unresolvable("node(s) didn't match Pod's node affinity/selector", "NodeAffinity")
NODE_PORTS = unschedulable("node(s) didn't have free ports for the requested pod ports", "NodePorts")
SPREAD = unschedulable("node(s) didn't match pod topology spread constraints", "PodTopologySpread")
SPREAD_LABEL = unresolvable("node(s) didn't match pod topology spread constraints (missing required label)",
                            "PodTopologySpread")
EXISTING_ANTI_AFFINITY = unschedulable("node(s) didn't satisfy existing pods anti-affinity rules", "InterPodAffinity")
AFFINITY = unresolvable("node(s) didn't match pod affinity rules", "InterPodAffinity")
ANTI_AFFINITY = unschedulable("node(s) didn't match pod anti-affinity rules", "InterPodAffinity")
NO_VICTIMS = unresolvable("No preemption victims found for incoming pod", "DefaultPreemption")
NOT_HELPFUL = unresolvable("Preemption is not helpful for scheduling", "DefaultPreemption")
