"""Exact rollups across a crash and a rebalance, in-process (memory bus, embedded stores).

A processor that dies mid-window, or loses partitions to a new member, leaves windows its
successor cannot see whole. The successor restores the partitions' state checkpointed with
the last commit and reads on from there: every 1-minute, 30-minute and daily rollup equals
the sum of its readings, each counted once, and so does every area rollup (per geohash cell).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from smartmeter_lib.adapters.embedded_history import EmbeddedHistory
from smartmeter_lib.adapters.embedded_live import EmbeddedLive
from smartmeter_lib.adapters.memory_bus import MemoryBus
from smartmeter_lib.config import Settings, build_settings
from smartmeter_lib.simulate.fleet import Fleet
from smartmeter_lib.simulate.producer import run_fleet_producer
from smartmeter_lib.stream.runner import Processor

HOMES, SECONDS = 40, 200
START = 1_764_288_000 + 3600 * 18 - 50  # 50 s before a half hour: windows begin mid-way


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Settings, MemoryBus, EmbeddedHistory, EmbeddedLive]]:
    s = build_settings(data_dir=tmp_path, allowed_lateness_s=3, batch_max=700)
    bus = MemoryBus()
    for t in (s.topic_readings, s.topic_dlq, s.topic_alerts):
        bus.create_topic(t, partitions=6)
    history = EmbeddedHistory(s.history_dir)
    live = EmbeddedLive(s.live_db_path)
    fleet = Fleet(HOMES, seed=9)
    history.register_meters(fleet.meters)
    run_fleet_producer(fleet, bus, s.topic_readings, start_s=START, speedup=0,
                       duration_s=SECONDS)
    yield s, bus, history, live
    for x in (bus, history, live):
        x.close()


def check_exact(history: EmbeddedHistory) -> int:
    """Every reading stored once; every rollup the sum of the fleet's readings in it."""
    fleet = Fleet(HOMES, seed=9)
    ids = fleet.meters.meter_id.tolist()
    exp = np.stack([fleet.readings(START + k).kwh for k in range(SECONDS)], axis=1)
    for i, m in enumerate(ids):
        raw = history.read_readings(m, START * 1000, (START + SECONDS) * 1000)
        assert len(raw) == SECONDS and float(raw.kwh.sum()) == pytest.approx(exp[i].sum())
    checked = 0
    for res in (60, 1800, 86400):
        wins = (START + np.arange(SECONDS)) // res * res * 1000
        r = history.read_rollups(res, ids, int(wins[0]), (START + SECONDS) * 1000)
        have = {(m, int(w)): (float(k), int(n)) for m, w, k, n in
                zip(r.meter_id, r.window_start_ms, r.kwh, r.readings, strict=True)}
        assert len(have) == len(ids) * len(np.unique(wins)), (res, len(have))
        for w in np.unique(wins).tolist():
            sel = wins == w
            for i, m in enumerate(ids):
                kwh, n = have[(m, w)]
                assert n == int(sel.sum()), (res, m, w, n)
                assert kwh == pytest.approx(float(exp[i, sel].sum()), rel=1e-9), (res, m, w)
                checked += 1
    # area rollups (half-hour and day, geohash 5 and 6): each processor writes the rows of
    # the partitions it holds, so the cells' sums are exact with several processors too
    for res in (1800, 86400):
        wins = (START + np.arange(SECONDS)) // res * res * 1000
        for p in (5, 6):
            cell_of = np.array([g[:p] for g in fleet.meters.geohash], dtype=object)
            got = history.read_area_rollups(res, p, None, int(wins[0]),
                                            (START + SECONDS) * 1000)
            have_a = {(str(c), int(w)): (float(k), int(h)) for c, w, k, h in
                      zip(got.cell, got.window_start_ms, got.kwh, got.homes, strict=True)}
            want_a = {}
            for w in np.unique(wins).tolist():
                sel = wins == w
                for c in np.unique(cell_of).tolist():
                    mine = cell_of == c
                    want_a[(c, w)] = (float(exp[mine][:, sel].sum()), int(mine.sum()))
            assert set(have_a) == set(want_a), (res, p)
            for key, (kwh, homes) in want_a.items():
                assert have_a[key][1] == homes, (res, p, key, have_a[key], homes)
                assert have_a[key][0] == pytest.approx(kwh, rel=1e-9), (res, p, key)
                checked += 1
    return checked


def test_a_processor_that_dies_mid_window_and_its_successor_give_exact_rollups(
        world: tuple[Settings, MemoryBus, EmbeddedHistory, EmbeddedLive]) -> None:
    s, bus, history, live = world
    a = Processor(s, bus, history, live, flush_interval_s=0.0)
    while a.stats.messages_in < HOMES * SECONDS * 0.55:
        a.step(timeout_s=0.01)
    a._consumer.close()  # a crash: no final flush, no commit past what was committed
    b = Processor(s, bus, history, live, flush_interval_s=0.0)
    stats = b.run(idle_exit_s=0.3)
    assert 0 < stats.messages_in < HOMES * SECONDS, "resumed from the committed offsets"
    assert b.stats.restored_meters > 0  # it took the partitions' state over
    assert check_exact(history) > 0
    b.close()
    a.close()


def test_a_member_joining_and_another_leaving_give_exact_rollups(
        world: tuple[Settings, MemoryBus, EmbeddedHistory, EmbeddedLive]) -> None:
    s, bus, history, live = world
    a = Processor(s, bus, history, live, flush_interval_s=0.0)
    for _ in range(4):
        a.step(timeout_s=0.01)
    b = Processor(s, bus, history, live, flush_interval_s=0.0)  # joins: partitions move
    for _ in range(6):
        a.step(timeout_s=0.01)
        b.step(timeout_s=0.01)
    a.finish()  # leaves cleanly
    a.close()
    b.run(idle_exit_s=0.3)
    b.close()
    assert check_exact(history) > 0
