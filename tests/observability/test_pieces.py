"""The small pieces of lks.observability and its store hook: histogram buckets as Prometheus
counts them, the storage prefix of a key, klog's line and Go's durations, and the `since`
filter of `lks aks logs` over klog and audit lines."""

from __future__ import annotations

import asyncio
import time

import pytest

from lks.arm import controlplanelogs
from lks.observability import logs
from lks.observability.histogram import REQUEST_BUCKETS, WORKQUEUE_BUCKETS, Histogram
from lks.store import timing


def test_histogram_counts_a_value_on_a_bound_in_that_bucket():
    h = Histogram((0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 2.0):
        h.observe(v)
    assert h.cumulative() == [("0.1", 2), ("1.0", 3), ("+Inf", 4)]
    assert h.count == 4 and h.sum == pytest.approx(2.65)


def test_upstream_buckets():
    assert len(REQUEST_BUCKETS) == 23 and REQUEST_BUCKETS[0] == 0.005 and REQUEST_BUCKETS[-1] == 60
    assert [b for b, _ in Histogram(WORKQUEUE_BUCKETS).cumulative()][:3] == ["1e-08", "1e-07", "1e-06"]


@pytest.mark.parametrize(("key", "prefix"), [
    pytest.param("/registry/pods/default/p", "/registry/pods/", id="namespaced"),
    pytest.param("/registry/namespaces/default", "/registry/namespaces/", id="cluster-scoped"),
    pytest.param("/registry/pods/", "/registry/pods/", id="list-prefix"),
    pytest.param("/registry/apiextensions.k8s.io/customresourcedefinitions/x",
                 "/registry/apiextensions.k8s.io/customresourcedefinitions/", id="group-in-key"),
    pytest.param("/registry/", "/registry/", id="root"),
])
def test_storage_prefix(key, prefix):
    assert timing.prefix_of(key) == prefix


@pytest.mark.parametrize(("seconds", "text"), [
    pytest.param(2.5, "2.5s", id="s"), pytest.param(0.0032, "3.2ms", id="ms"),
    pytest.param(0.000840, "840µs", id="us"),
])
def test_go_durations(seconds, text):
    assert logs.go_duration(seconds) == text


def test_klog_line_and_since_filter(tmp_path):
    now = time.time()
    old = logs.klog_line("I", now - 3600, "httplog.go", 134, logs.infos("HTTP", verb="GET"))
    new = logs.klog_line("W", now - 5, "scheduler.go", 7, 'said "hi"')
    assert old.decode().endswith('] "HTTP" verb="GET"\n')
    assert new.decode().startswith("W") and '] said "hi"\n' in new.decode()
    path = tmp_path / "kube-apiserver.log"
    path.write_bytes(old + new + b"  a traceback line\n")
    data, read = controlplanelogs._read(path, now - 60, audit=False)
    assert data == new + b"  a traceback line\n" and read == path.stat().st_size
    assert controlplanelogs._read(path, None, audit=False)[0] == path.read_bytes()


def test_since_filter_of_audit_lines(tmp_path):
    path = tmp_path / "audit.log"
    path.write_bytes(b'{"stageTimestamp":"2020-01-01T00:00:00.000001Z"}\n'
                     + b'{"stageTimestamp":"%s"}\n' % time.strftime("%Y-%m-%dT%H:%M:%S.5Z", time.gmtime()).encode())
    data, _ = controlplanelogs._read(path, time.time() - 60, audit=True)
    assert data.count(b"\n") == 1 and b"2020" not in data


async def test_a_followed_log_ends_when_the_service_stops(tmp_path):
    class Response:
        def __init__(self):
            self.sent = b""

        async def write(self, data: bytes) -> None:
            self.sent += data

    service_logs = logs.Logs(tmp_path)
    path = tmp_path / "kube-apiserver.log"
    path.write_bytes(b"old\n")
    resp = Response()
    follow = asyncio.create_task(controlplanelogs._follow(resp, path, offset=4))
    with path.open("ab") as f:
        f.write(b"new\n")
    while not resp.sent:
        await asyncio.sleep(0.05)
    assert resp.sent == b"new\n"
    await service_logs.close()
    await asyncio.wait_for(follow, 5)  # ended, not cancelled
