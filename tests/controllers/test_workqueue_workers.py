"""WorkQueue workers exist only while there is work (an idle cluster's ~70 queues park no tasks),
and keep what parked workers gave: at most `workers` keys at once, one worker per key, a key
added while it is processed runs again, workers act in the context `start()` ran in."""

from __future__ import annotations

import asyncio
import contextvars

from lks.controllers.workqueue import WorkQueue

who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


def _workers(name: str) -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_name() == f"{name} worker"]


async def _drained(q: WorkQueue, name: str) -> None:
    for _ in range(1000):
        if q.idle() and not _workers(name):
            return
        await asyncio.sleep(0)
    raise AssertionError(f"queue {name} not drained: {len(_workers(name))} workers")


async def test_an_idle_queue_holds_no_worker_tasks() -> None:
    done: list[str] = []

    async def sync(key: str) -> None:
        done.append(key)

    q: WorkQueue[str] = WorkQueue(sync, name="idle", workers=4)
    q.start()
    await asyncio.sleep(0)
    assert _workers("idle") == []  # started, nothing queued: no task at all
    for key in "abcdef":
        q.add(key)
    assert len(_workers("idle")) == 4
    await _drained(q, "idle")
    assert sorted(done) == list("abcdef")
    q.add("g")  # work after idling starts a worker again
    await _drained(q, "idle")
    assert done[-1] == "g"
    await q.stop()


async def test_at_most_workers_at_once_and_one_worker_per_key() -> None:
    running: set[str] = set()
    peak = 0
    runs: dict[str, int] = {}
    gate = asyncio.Event()

    async def sync(key: str) -> None:
        nonlocal peak
        assert key not in running
        running.add(key)
        peak = max(peak, len(running))
        runs[key] = runs.get(key, 0) + 1
        await gate.wait()
        running.discard(key)

    q: WorkQueue[str] = WorkQueue(sync, name="cap", workers=3)
    q.start()
    for i in range(10):
        q.add(f"k{i}")
    await asyncio.sleep(0)
    assert len(running) == 3
    q.add("k0")  # being processed: runs once more after, not beside itself
    q.add("k5")  # still queued: deduplicated
    gate.set()
    await _drained(q, "cap")
    assert peak == 3
    assert runs == {**{f"k{i}": 1 for i in range(10)}, "k0": 2}
    await q.stop()


async def test_keys_queued_before_start_run_after_it() -> None:
    done: list[str] = []

    async def sync(key: str) -> None:
        done.append(key)

    q: WorkQueue[str] = WorkQueue(sync, name="early", workers=2)
    q.add("a")
    q.add("b")
    await asyncio.sleep(0)
    assert done == [] and _workers("early") == []
    q.start()
    await _drained(q, "early")
    assert sorted(done) == ["a", "b"]
    await q.stop()


async def test_workers_act_in_the_context_start_ran_in() -> None:
    seen: list[str] = []

    async def sync(key: str) -> None:
        seen.append(who.get())

    q: WorkQueue[str] = WorkQueue(sync, name="ctx", workers=2)

    def start_as_controller() -> None:
        who.set("system:kube-controller-manager")
        q.start()

    contextvars.copy_context().run(start_as_controller)
    q.add("a")  # added from another context (an informer's handler), worked as the controller
    await _drained(q, "ctx")
    assert seen == ["system:kube-controller-manager"]
    await q.stop()


async def test_stop_cancels_busy_workers_and_no_new_ones_start() -> None:
    started = asyncio.Event()

    async def sync(key: str) -> None:
        started.set()
        await asyncio.Event().wait()

    q: WorkQueue[str] = WorkQueue(sync, name="stop", workers=2)
    q.start()
    q.add("a")
    await started.wait()
    await q.stop()
    assert _workers("stop") == []
    q.add("b")
    await asyncio.sleep(0)
    assert _workers("stop") == []
