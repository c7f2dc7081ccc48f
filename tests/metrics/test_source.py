"""A cluster's usage source with a Process pod: measured from /proc, first sampled when asked,
its window in real seconds whatever the cluster clock does (here a manual clock that stands
still), and without metrics while its container is not running."""

from __future__ import annotations

import subprocess
import time

import pytest

from lks import metrics
from lks.nodes import pods as nodepods

from .test_api import _node, _pod


class _Runtime:
    def __init__(self) -> None:
        self.containers: dict[str, dict[str, tuple[str, int]]] = {}

    def running_containers(self) -> dict[str, dict[str, tuple[str, int]]]:
        return self.containers


@pytest.fixture
def busy():
    proc = subprocess.Popen(["sh", "-c", "while :; do :; done"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


async def test_a_process_pod_is_measured_over_real_seconds(cluster, busy, monkeypatch):
    runtime = _Runtime()
    monkeypatch.setattr(nodepods.PodWorkers, "process_of", classmethod(lambda cls, c: runtime))
    await _node(cluster)
    await _pod(cluster, "burn", notes={"lks.dev/simulate-cpu": "5m"})  # the model does not apply to it
    await metrics.serve(cluster)
    try:
        assert await cluster.feed.wait_for(await cluster.store.current_revision(), 5)
        usage = metrics.usage(cluster)
        uid = usage.pods_cached()[usage.pods.key("default", "burn")]["metadata"]["uid"]
        runtime.containers = {uid: {"app": ("containerd://c1", busy.pid)}}
        assert usage.pod("default", "burn") is None  # a first sample, no window yet
        time.sleep(1.2)  # real cpu time has to pass (the clock stands still)
        got = usage.pod("default", "burn")
        assert got is not None and got.window >= 1.0
        assert got.containers["app"].cpu > 0.2 and got.containers["app"].memory > 0
        runtime.containers = {uid: {}}  # its container exited: no metrics until it runs again
        assert usage.pod("default", "burn") is None
    finally:
        await metrics.stop(cluster)
