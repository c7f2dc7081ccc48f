"""A Process node's containers across a control-plane restart (`PodWorkers.hand_over`): the
runtime is parked with its processes running while the node's agent stops, and the pod workers
of the next `Cluster` of that id take it over: a running container is adopted as it is (same
process, same container id, restartCount 0), one that exited meanwhile is restarted with its
real exit code, and the new agent's stop ends every process again."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from support import pod_or_none, pod_until

from lks.nodes import agent as agents
from lks.nodes import pods

CIDR = "10.244.3.0/24"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _status(pod):
    return (pod["status"].get("containerStatuses") or [{}])[0]


@pytest.fixture
async def restart(open_cluster, make_template, tmp_path):
    """(agent on the first control plane, a function that restarts the control plane the way
    an upgrade does and returns the new cluster's agent)."""
    template = make_template(workload_runtime="Process")
    started: list[agents.NodeAgent] = []

    async def first():
        cluster = await open_cluster()
        pods.PodWorkers.configure(cluster, data_dir=tmp_path / "nodes")
        agent = agents.NodeAgent(cluster=cluster, template=template, index=0, address="10.224.0.4", pod_cidrs=[CIDR])
        await agent.start()
        started.append(agent)
        return agent

    async def again(agent, meanwhile=None):
        parked = pods.PodWorkers.hand_over(agent.cluster)
        assert parked is not None
        await agent.stop()
        started.remove(agent)
        if meanwhile is not None:  # while the control plane restarts
            await meanwhile(parked)
        cluster = await open_cluster()
        pods.PodWorkers.configure(cluster, data_dir=tmp_path / "nodes", process=parked)
        new = agents.NodeAgent(cluster=cluster, template=template, index=0, address="10.224.0.4", pod_cidrs=[CIDR])
        await new.start()
        started.append(new)
        assert pods.PodWorkers.unclaimed(cluster) is None and pods.PodWorkers.shared(cluster).process is parked
        return new

    yield first, again
    for agent in started:
        await agent.stop()


async def _run(agent, name, script, restart="Always"):
    await agent.cluster.registry("", "v1", "pods").create("default", {
        "metadata": {"name": name},
        "spec": {"nodeName": agent.name, "restartPolicy": restart, "terminationGracePeriodSeconds": 1,
                 "automountServiceAccountToken": False,
                 "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", script]}]}})
    return await pod_until(agent.cluster, name, lambda p: "running" in _status(p).get("state", {}))


async def _idle(workers, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not workers._queue.idle():  # noqa: SLF001
        assert time.monotonic() < deadline, "the pod workers did not settle"
        await asyncio.sleep(0.01)


def _pid(agent, pod) -> int:
    runtime = pods.PodWorkers.shared(agent.cluster).process
    assert runtime is not None
    return runtime.find(pod["metadata"]["uid"]).current("main").pid


async def test_a_running_container_is_adopted_as_it_is(restart):
    first, again = restart
    agent = await first()
    before = await _run(agent, "keeper", "sleep 300")
    pid = _pid(agent, before)

    agent = await again(agent)

    assert _alive(pid) and _pid(agent, before) == pid
    runtime = pods.PodWorkers.shared(agent.cluster).process
    assert runtime.cluster is agent.cluster and runtime.tokens.cluster is agent.cluster
    workers = pods.PodWorkers.shared(agent.cluster)
    await _idle(workers)  # the new pod workers have synced it
    after = await pod_or_none(agent.cluster, "keeper")
    assert _status(after)["restartCount"] == 0 and not _status(after).get("lastState")
    assert _status(after)["containerID"] == _status(before)["containerID"]
    assert _status(after)["state"] == _status(before)["state"]
    await agent.stop()
    assert not _alive(pid)  # the new agent's stop still ends its processes


async def test_a_container_that_exited_meanwhile_restarts_with_its_exit_code(restart, tmp_path):
    first, again = restart
    agent = await first()
    go = tmp_path / "go"
    pod = await _run(agent, "quitter", f"while [ ! -e {go} ]; do sleep 0.02; done; exit 3")

    async def exits(runtime):
        inst = runtime.find(pod["metadata"]["uid"]).current("main")
        go.touch()
        await asyncio.wait_for(inst.done.wait(), 5)  # parked: nobody hears of it

    agent = await again(agent, exits)

    after = await pod_until(agent.cluster, "quitter", lambda p: _status(p).get("restartCount") == 1)
    assert _status(after)["lastState"]["terminated"]["exitCode"] == 3
