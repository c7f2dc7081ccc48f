"""`lks up --time-scale N`: the management plane's clock runs N times faster than the wall (its
sleeps N times shorter); the hosted clusters keep wall time."""

from __future__ import annotations

import asyncio
import time

import pytest

from lks.cli import main
from lks.clock import Clock, ScaledClock
from lks.server import Service


async def test_scaled_clock_runs_fast():
    clock = ScaledClock(100_000)
    wall, now, mono = time.time(), clock.now(), clock.monotonic()
    assert now >= wall - 1  # it starts at the wall's time
    await asyncio.wait_for(clock.sleep(3600), 5)  # an hour in ~36 ms
    assert clock.now() - now >= 3600 and clock.monotonic() - mono >= 3600
    assert Clock().scale == 1.0 and clock.scale == 100_000


def test_time_scale_must_be_positive(capsys):
    with pytest.raises(SystemExit) as exit_:
        main.main(["up", "--time-scale", "0"])
    assert exit_.value.code == 2 and "invalid positive number: '0'" in capsys.readouterr().err
    assert main._parser().parse_args(["up", "--time-scale", "60"]).time_scale == 60.0


async def test_only_the_management_plane_runs_on_the_scaled_clock(tmp_path, monkeypatch):
    monkeypatch.delenv("LKS_DRAIN_MINUTE_SECONDS", raising=False)
    clock = ScaledClock(3600)
    svc = Service(home=tmp_path, port=0, clock=clock)
    await svc.start()
    try:
        assert svc.plane.clock is clock and svc.plane.operations.clock is clock and svc.plane.fleet.clock is clock
        assert svc.plane.fleet.drain_minute == pytest.approx(60 / 3600)  # a drain minute lasts 1/60 s
        assert svc.auto_upgrades.clock is clock
        assert svc.planes.clock.scale == 1.0  # clusters: tokens, certificates, leases on wall time
    finally:
        await svc.stop()
