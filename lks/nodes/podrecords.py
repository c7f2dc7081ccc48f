"""What the pod workers (`lks.nodes.pods`) keep about each attached node and each pod they run
besides the runtime's records, and how a pod's record is rebuilt from its stored status when
the service restarts while its node keeps running (`rebuild`). `lks.nodes.podactions` changes
these records; `lks.nodes.podstatus` turns them into a status.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lks.controllers.events import EventRecorder
from lks.nodes import podstatus
from lks.nodes import runtime as runtimes

if TYPE_CHECKING:
    from lks.nodes.agent import NodeAgent

Obj = dict[str, Any]


@dataclass(slots=True, eq=False)
class NodeRecord:
    name: str
    host_ip: str
    events: EventRecorder
    runtime: runtimes.Runtime  # the simulated one, or the process runtime of a `Process` pool
    agent: NodeAgent


@dataclass(slots=True, eq=False)
class PodRecord:
    """What kubelet keeps about one pod besides the runtime's records."""

    key: str
    uid: str
    node: str
    start_time: float
    runtime: runtimes.Runtime
    sandbox: runtimes.Sandbox | None = None
    containers: dict[str, podstatus.Containers] = field(default_factory=dict)
    reported: Obj | None = None  # the status as last reported (merged into the stored one)
    rv: int = 0  # the resourceVersion of our last status write
    grace: float | None = None  # being deleted: the grace period its containers were stopped with
    next: float | None = None  # the earliest change an action of this sync brings


def rebuild(pod: Obj, key: str, node: NodeRecord, cidr: str | None, *, now: float) -> PodRecord:
    """Kubelet's record of a pod the node already runs, from its stored status."""
    status = pod.get("status") or {}
    sandbox = node.runtime.adopt(pod, node=node.name, pod_cidr=cidr, host_ip=node.host_ip)
    start = parse_time(status.get("startTime")) or now
    rec = PodRecord(key, pod["metadata"]["uid"], node.name, start, node.runtime, sandbox=sandbox)
    if sandbox is None:
        return rec  # nothing ran yet, or its IP is gone: it starts afresh
    spec = pod["spec"]
    specs = {c["name"]: (c, True) for c in spec.get("initContainers") or ()}
    specs.update({c["name"]: (c, False) for c in spec.get("containers") or ()})
    for st in itertools.chain(status.get("initContainerStatuses") or (), status.get("containerStatuses") or ()):
        c, init = specs.get(st.get("name"), (None, False))
        if c is None:
            continue
        restarts = int(st.get("restartCount") or 0)
        cr = rec.containers[c["name"]] = podstatus.Containers(restarts=restarts, backoff=restarts)
        state, last = st.get("state") or {}, (st.get("lastState") or {}).get("terminated")
        cr.previous = exited(st, last) if last else None
        if "running" in state:
            cr.current = node.runtime.adopt_container(
                sandbox, pod, c, init=init, container_id=(st.get("containerID") or "").partition("://")[2],
                image=st.get("image") or "", image_id=st.get("imageID") or "",
                started=parse_time(state["running"].get("startedAt")) or start)
        elif "terminated" in state:
            cr.current = exited(st, state["terminated"])
        elif last:  # waiting to restart (CrashLoopBackOff): the last run is the current one
            cr.current, cr.previous = cr.previous, None
        if cr.current is None:
            del rec.containers[c["name"]]
    return rec


def note(rec: PodRecord, when: float) -> None:
    if rec.next is None or when < rec.next:
        rec.next = when



def finished(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in podstatus.TERMINAL



def parse_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None



def exited(st: Obj, term: Obj) -> runtimes.Container:
    """A stored `terminated` state as the runtime's record of that run."""
    started = parse_time(term.get("startedAt")) or 0.0
    reason = term.get("reason") or ""
    container_id = (term.get("containerID") or st.get("containerID") or "").partition("://")[2]
    return runtimes.Container(name=st["name"], id=container_id, image=st.get("image") or "",
                              image_id=st.get("imageID") or "", created=started, started=started,
                              exits=parse_time(term.get("finishedAt")) or started,
                              exit_code=int(term.get("exitCode") or 0),
                              reason="" if reason in ("Completed", "Error") else reason)
