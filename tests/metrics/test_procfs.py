"""The /proc sampler of Process containers: a container is its session; cpu time over a window
of two samples, resident memory at the last."""

from __future__ import annotations

import subprocess
import time

import pytest

from lks.metrics import procfs


def _stat(pid, comm, session, utime, stime, cutime, cstime, rss):
    fields = ["S", "1", str(pid), str(session), "0", "-1", "0", "0", "0", "0", "0",
              str(utime), str(stime), str(cutime), str(cstime), "20", "0", "1", "0", "100", "1000", str(rss)]
    return f"{pid} ({comm}) " + " ".join(fields) + " 0 0 0\n"


def test_a_session_sums_its_processes_own_and_reaped_time_and_their_memory(tmp_path):
    for pid, comm, session, times, rss in [
            (10, "sh", 10, (100, 50, 30, 20), 100), (11, "my (odd) prog", 10, (10, 0, 0, 0), 50),
            (12, "other", 12, (1, 1, 0, 0), 7)]:
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(_stat(pid, comm, session, *times, rss))
    (tmp_path / "self").mkdir()
    sessions = procfs.scan(tmp_path)
    assert sessions[10] == procfs.Totals(210 / procfs.TICKS, 150 * procfs.PAGE)
    assert sessions[12] == procfs.Totals(2 / procfs.TICKS, 7 * procfs.PAGE)


def test_a_rate_needs_two_samples_of_the_same_process_and_is_never_negative():
    sampler = procfs.Sampler()
    sampler.record({"c1": 10}, {10: procfs.Totals(5.0, 4096)}, at=100.0)
    assert sampler.rate("c1") is None and not sampler.complete("c1")
    sampler.record({"c1": 10}, {10: procfs.Totals(8.0, 8192)}, at=115.0)
    assert sampler.rate("c1") == procfs.Rate(cpu=0.2, memory=8192, timestamp=115.0, window=15.0)
    sampler.record({"c1": 10}, {10: procfs.Totals(7.0, 8192)}, at=130.0)  # a child left unreaped
    assert sampler.rate("c1").cpu == 0.0
    sampler.record({"c1": 11}, {11: procfs.Totals(1.0, 4096)}, at=145.0)  # restarted: a new window
    assert sampler.rate("c1") is None
    sampler.record({}, {}, at=160.0)  # gone: forgotten
    assert sampler.last("c1") is None and len(sampler) == 0


def test_a_busy_loop_measures_close_to_a_core():
    proc = subprocess.Popen(["sh", "-c", "while :; do :; done"], start_new_session=True)
    try:
        sampler = procfs.Sampler()
        t0 = time.monotonic()
        sampler.record({"c": proc.pid}, procfs.scan(), at=t0)
        time.sleep(0.5)  # real cpu time has to pass
        t1 = time.monotonic()
        sampler.record({"c": proc.pid}, procfs.scan(), at=t1)
        rate = sampler.rate("c")
        assert rate is not None and rate.cpu > 0.2  # a shared machine gives it less than a core
        assert rate.memory > 0
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("text", ["garbage", "1 (x) S 1 2"])
def test_unreadable_stat_lines_are_skipped(text):
    assert procfs._parse_stat(text) is None
