"""Processor state survives a crash and a rebalance: nothing counted twice, nothing missed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from smartmeter_lib.adapters.embedded_history import EmbeddedHistory
from smartmeter_lib.adapters.embedded_live import EmbeddedLive
from smartmeter_lib.config import build_settings
from smartmeter_lib.errors import DataError
from smartmeter_lib.simulate.fleet import Fleet
from smartmeter_lib.simulate.producer import run_fleet_producer
from smartmeter_lib.stream.checkpoint import import_state
from smartmeter_lib.stream.inprocess import memory_bus
from smartmeter_lib.stream.runner import Processor

START = 1_764_288_000 + 3600 * 18 + 1700  # 18:28:20 UTC: the run crosses a half-hour
SECONDS = 240
N = 120


def expected_sums() -> tuple[np.ndarray, int]:
    ref = Fleet(N, seed=9)
    total = np.zeros(N)
    for k in range(SECONDS):
        total += ref.readings(START + k).kwh
    return total, N * SECONDS


def sums(history: EmbeddedHistory, resolution: int, ids: np.ndarray) -> tuple[np.ndarray, int]:
    r = history.read_rollups(resolution, None, START * 1000 - 86_400_000,
                             (START + SECONDS) * 1000 + 86_400_000)
    per = {m: 0.0 for m in ids}
    for m, k in zip(r.meter_id, r.kwh, strict=True):
        per[m] += k
    return np.array([per[m] for m in ids]), int(r.readings.sum())


@pytest.mark.parametrize("how", ["crash", "rebalance", "leave"])
def test_state_survives_a_processor_crash_or_rebalance(tmp_path: Path, how: str) -> None:
    settings = build_settings(data_dir=tmp_path, allowed_lateness_s=2, batch_max=N * 3)
    bus = memory_bus(settings)
    history = EmbeddedHistory(settings.history_dir)
    live = EmbeddedLive(settings.live_db_path)
    fleet = Fleet(N, seed=9)
    history.register_meters(fleet.meters)
    run_fleet_producer(fleet, bus, settings.topic_readings, start_s=START, speedup=0,
                       duration_s=SECONDS)

    a = Processor(settings, bus, history, live, flush_interval_s=3600)
    while a.stats.messages_in < N * 100:  # 100 s in: mid-minute, mid-half-hour, mid-day
        a.step(timeout_s=0.1)
    a._flush_and_commit()  # checkpoint + commit
    committed = a.stats.messages_in
    while a.stats.messages_in < committed + N * 30:  # more work that is never committed
        a.step(timeout_s=0.1)
    if how == "crash":
        a._consumer.close()  # gone without finishing: its open windows die with it
        b = Processor(settings, bus, history, live)
        b.run(idle_exit_s=1.0)
        assert b.stats.restored_meters == N
        assert b.stats.messages_in == N * SECONDS - committed
    elif how == "leave":
        # stopped mid-run (a member leaves the group, the others go on): it writes, commits
        # and closes its windows early; the next owner must complete those windows
        a.finish()
        a._consumer.close()
        b = Processor(settings, bus, history, live)
        b.run(idle_exit_s=1.0)
        assert b.stats.restored_meters == N
        assert b.stats.messages_in == N * SECONDS - a.stats.messages_in
    else:
        b = Processor(settings, bus, history, live)  # joins: half the partitions move
        assert b._consumer.assignment() and a._consumer.assignment()
        for _ in range(400):
            a.step(timeout_s=0.01)
            b.step(timeout_s=0.01)
        a.finish()
        b.finish()
        assert b.stats.restored_meters > 0
        assert 0 < b.stats.restored_meters < N
    want, count = expected_sums()
    for res in (60, 1800, 86400):
        got, readings = sums(history, res, fleet.meters.meter_id)
        assert readings == count, f"{res}-s rollups count {readings} readings, not {count}"
        assert got == pytest.approx(want, rel=1e-9), f"{res}-s rollups differ"
    for x in (bus, history, live):
        x.close()


def test_unreadable_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    settings = build_settings(data_dir=tmp_path)
    fleet = Fleet(3, seed=1)
    bus = memory_bus(settings)
    history = EmbeddedHistory(settings.history_dir)
    history.register_meters(fleet.meters)
    p = Processor(settings, bus, history, EmbeddedLive(settings.live_db_path))
    with pytest.raises(DataError, match=r"checkpoint of fake_iot\[2\].*unreadable"):
        import_state(p.agg, p.detectors.outage, b"not a checkpoint", "checkpoint of fake_iot[2]")
