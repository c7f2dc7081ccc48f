"""Container groups as processes (`lks.aci.runtime`), without network namespaces: restart
policies, states, logs, stop killing what a container forked, exec on a terminal."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from lks.aci import runtime, usage
from lks.nodes import containerlogs
from lks.nodes.streams import LogOptions


def group(key: str, script: str, policy: str = "Never") -> runtime.GroupSpec:
    env = {"PATH": os.environ["PATH"], "GREETING": "hi"}
    return runtime.GroupSpec(key=key, name=key, restart_policy=policy,
                             containers=[runtime.ContainerSpec("main", ["sh", "-c", script], env)])


async def ended(g: runtime.Group, state: str) -> None:
    while g.state != state:
        g.changed.clear()
        await asyncio.wait_for(g.changed.wait(), 10)


async def test_never_runs_once_and_keeps_its_log(tmp_path: Path) -> None:
    rt = runtime.Runtime(data_dir=tmp_path, network=False)
    await rt.start()
    try:
        g = await rt.run(group("once", "echo $GREETING; echo oops >&2"))
        await ended(g, "Succeeded")
        c = g.containers["main"]
        assert c.current["state"] == "Terminated" and c.current["exitCode"] == 0 and c.restart_count == 0
        path = rt.log_path("once", "main")
        assert path is not None
        text = b"".join([x async for x in containerlogs.read(path, LogOptions("main"), now=0)])
        assert text == b"hi\noops\n"
    finally:
        await rt.close()


async def test_on_failure_restarts_until_success(tmp_path: Path) -> None:
    marker = tmp_path / "tries"
    rt = runtime.Runtime(data_dir=tmp_path, network=False)
    await rt.start()
    try:
        g = await rt.run(group("flaky", f"echo x >> {marker}; [ $(wc -l < {marker}) -ge 3 ]", "OnFailure"))
        await ended(g, "Succeeded")
        c = g.containers["main"]
        assert c.restart_count == 2 and c.previous is not None and c.previous["exitCode"] == 1
        assert [e["name"] for e in c.events].count("Started") == 1 and c.events[0]["count"] == 3
    finally:
        await rt.close()


async def test_stop_kills_what_the_container_forked(tmp_path: Path) -> None:
    ended_keys: list[str] = []
    rt = runtime.Runtime(data_dir=tmp_path, network=False, on_end=ended_keys.append)
    await rt.start()
    try:
        g = await rt.run(group("forks", f"sleep 300 & echo $! > {tmp_path}/child; wait", "Always"))
        while not (tmp_path / "child").exists() or not (tmp_path / "child").read_text().strip():
            await asyncio.sleep(0.02)
        child = int((tmp_path / "child").read_text())
        await rt.stop("forks", grace=0.5)
        assert rt.get("forks") is None and g.containers["main"].current["state"] == "Terminated"
        await asyncio.sleep(0.05)
        assert not os.path.exists(f"/proc/{child}") or "Z" in open(f"/proc/{child}/stat").read().split(")")[1][:3]
    finally:
        await rt.close()


async def test_exec_on_a_terminal_with_the_containers_environment(tmp_path: Path) -> None:
    rt = runtime.Runtime(data_dir=tmp_path, network=False)
    await rt.start()
    try:
        await rt.run(group("sh", "sleep 300", "Always"))
        proc, master = await rt.exec("sh", "main", [sys.executable, "-c", "import os,sys; print(os.environ['GREETING'],"
                                                                        " sys.stdout.isatty())"])
        await proc.wait()
        out = os.read(master, 1024)
        os.close(master)
        assert out.strip() == b"hi True"
    finally:
        await rt.close()


def test_meter_counts_running_seconds_only() -> None:
    now = [100.0]
    m = usage.Meter(now=lambda: now[0])
    m.start("g")
    now[0] = 110.0
    m.pause("g")  # its containers ended
    now[0] = 200.0
    assert m.seconds("g") == 10.0
    m.start("g")
    now[0] = 205.0
    assert m.stop("g") == 15.0 and m.seconds("g") == 0.0
    assert usage.bill(15.0, 0.5, 1.5) == {"runningSeconds": 15.0, "cpuCoreSeconds": 7.5, "memoryGBSeconds": 22.5,
                                          "requestedCpu": 0.5, "requestedMemoryInGB": 1.5}
