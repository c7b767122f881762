"""The processor over the memory bus and the embedded stores, end to end in-process."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from smartmeter_lib.adapters.embedded_history import EmbeddedHistory
from smartmeter_lib.adapters.embedded_live import EmbeddedLive
from smartmeter_lib.adapters.memory_bus import MemoryBus
from smartmeter_lib.codec import encode_one
from smartmeter_lib.config import build_settings
from smartmeter_lib.simulate.fleet import Fleet
from smartmeter_lib.simulate.producer import run_fleet_producer
from smartmeter_lib.stream.runner import Processor

START = 1_764_288_000 + 3600 * 18  # 18:00 UTC


@pytest.fixture
def stack(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = build_settings(data_dir=tmp_path, allowed_lateness_s=2)
    bus = MemoryBus()
    for t in (settings.topic_readings, settings.topic_dlq):
        bus.create_topic(t, partitions=6)
    history = EmbeddedHistory(settings.history_dir)
    live = EmbeddedLive(settings.live_db_path)
    yield settings, bus, history, live
    for x in (bus, history, live):
        x.close()


def test_every_reading_lands_in_rollups_and_live(stack) -> None:  # type: ignore[no-untyped-def]
    settings, bus, history, live = stack
    fleet = Fleet(300, seed=5)
    history.register_meters(fleet.meters)
    ref = Fleet(300, seed=5)  # same seed: the same readings, to compute the expected sums
    expected = np.zeros(300)
    for k in range(125):
        expected += ref.readings(START + k).kwh
    run_fleet_producer(fleet, bus, settings.topic_readings, start_s=START, speedup=0,
                       duration_s=125)
    proc = Processor(settings, bus, history, live)
    stats = proc.run(stop=threading.Event(), idle_exit_s=1.0)
    assert stats.messages_in == 300 * 125
    assert stats.rejected == {}
    assert stats.readings_stored == 300 * 125
    r = history.read_rollups(60, None, START * 1000, (START + 125) * 1000)
    per_meter = {m: 0.0 for m in fleet.meters.meter_id}
    for m, k in zip(r.meter_id, r.kwh, strict=True):
        per_meter[m] += k
    got = np.array([per_meter[m] for m in fleet.meters.meter_id])
    assert got == pytest.approx(expected, rel=1e-9)
    assert sorted(set(r.window_start_ms.tolist())) == [START * 1000, (START + 60) * 1000,
                                                         (START + 120) * 1000]
    half = history.read_rollups(1800, None, START * 1000, (START + 1800) * 1000)
    assert float(half.kwh.sum()) == pytest.approx(expected.sum())
    # the live store: totals per second, areas, each meter's running kWh
    totals = live.get_totals(0)
    assert len(totals) == 125
    areas = live.get_area_stats(6)
    assert areas is not None and int(areas.homes.sum()) == 300
    m0 = live.get_meter(str(fleet.meters.meter_id[0]))
    assert m0 is not None and m0["kwh_total"] == pytest.approx(expected[0])
    assert live.get_kpis()["homes_reporting"] == 300
    raw = history.read_readings(str(fleet.meters.meter_id[0]), START * 1000,
                                (START + 125) * 1000)
    assert len(raw) == 125
    # per-area half-hour and daily rollups add up to the fleet's energy
    for res in (1800, 86400):
        areas = history.read_area_rollups(res, 6, None, 0, (START + 86400) * 1000)
        assert float(areas.kwh.sum()) == pytest.approx(expected.sum())
        assert int(areas.homes.sum()) == 300
    daily = history.read_rollups(86400, None, 0, (START + 86400) * 1000)
    assert float(daily.kwh.sum()) == pytest.approx(expected.sum())
    top = live.get_top_consumers()
    assert len(top) == 20 and top.kw.is_monotonic_decreasing
    series = live.get_meter_series(str(fleet.meters.meter_id[0]), 0)
    assert len(series) >= 1 and (series.kw >= 0).all()


def test_bad_messages_go_to_the_dead_letter_topic(stack) -> None:  # type: ignore[no-untyped-def]
    settings, bus, history, live = stack
    fleet = Fleet(5, seed=1)
    history.register_meters(fleet.meters)
    t = START * 1000
    good = [encode_one(str(fleet.meters.meter_id[0]), t + i * 1000, 0.0001) for i in range(5)]
    bad = [(b"SM0000001", b"garbage"), encode_one("NOT-A-METER", t, 0.0001),
           (b"SM0000002", encode_one("x", t, float("nan"))[1])]
    for k, v in good[:3] + bad + good[3:]:
        bus.produce(settings.topic_readings, k, v)
    stats = Processor(settings, bus, history, live).run(idle_exit_s=0.5)
    assert stats.messages_in == 8
    assert stats.readings_stored == 5
    c = bus.consumer([settings.topic_dlq], "check")
    dlq = [json.loads(m.value or b"") for m in c.poll_batch(100, 1.0)]
    reasons = sorted(d["reason"] for d in dlq)
    assert len(reasons) == 3
    assert reasons == ["kwh is not a finite number", "unknown meter",
                       "unsupported schema version 103"]  # b"garbage" starts with "g"
    assert {d["key"] for d in dlq} == {"SM0000001", "NOT-A-METER", "SM0000002"}
    assert stats.rejected == {"kwh is not a finite number": 1, "unknown meter": 1,
                              "unsupported schema version 103": 1}


def test_offsets_are_committed_only_after_the_sinks(stack) -> None:  # type: ignore[no-untyped-def]
    settings, bus, history, live = stack
    fleet = Fleet(10, seed=1)
    history.register_meters(fleet.meters)
    run_fleet_producer(fleet, bus, settings.topic_readings, start_s=START, speedup=0,
                       duration_s=3)
    proc = Processor(settings, bus, history, live, flush_interval_s=3600)
    assert proc.step(timeout_s=1.0) == 30
    proc.close()  # "crash" before the flush: nothing was committed
    again = Processor(settings, bus, history, live)
    stats = again.run(idle_exit_s=0.5)
    assert stats.messages_in == 30 and stats.readings_stored == 30


def test_late_readings_are_dead_lettered_but_kept_in_raw_history(stack) -> None:  # type: ignore[no-untyped-def]
    settings, bus, history, live = stack
    settings = settings.with_overrides(topic_readings="one_partition")
    bus.create_topic(settings.topic_readings, partitions=1)  # one meter: one partition
    fleet = Fleet(3, seed=1)
    history.register_meters(fleet.meters)
    m = str(fleet.meters.meter_id[0])
    t = START * 1000
    for i in range(12):  # 12 s of on-time readings, then one 10 s behind the watermark
        bus.produce(settings.topic_readings, *encode_one(m, t + i * 1000, 0.0001))
    proc = Processor(settings, bus, history, live)
    assert proc.step(timeout_s=1.0) == 12
    bus.produce(settings.topic_readings, *encode_one(m, t + 500, 0.0002))
    stats = proc.run(idle_exit_s=0.5)
    assert stats.rejected.get("late") == 1
    dlq = [json.loads(x.value or b"") for x in
           bus.consumer([settings.topic_dlq], "check").poll_batch(10, 1.0)]
    assert [d["reason"].split(":")[0] for d in dlq] == ["late"]
    raw = history.read_readings(m, t, t + 60_000)
    assert len(raw) == 13 and (t + 500) in raw.ts_ms.tolist()
    minute = history.read_rollups(60, [m], t, t + 60_000)
    assert float(minute.kwh.sum()) == pytest.approx(12 * 0.0001)  # not in the windows


def test_insights_refresh_from_half_hourly_profiles(stack) -> None:  # type: ignore[no-untyped-def]
    """Half-hours that close during the run refresh every meter's insights in both stores."""
    settings, bus, history, live = stack
    fleet = Fleet(60, seed=9)
    history.register_meters(fleet.meters)
    start = 1_764_288_000 + 3600 * 15 + 1800 - 30  # 15:59:30 UTC: a half-hour closes at 16:00
    run_fleet_producer(fleet, bus, settings.topic_readings, start_s=start, speedup=0,
                       duration_s=60)
    proc = Processor(settings, bus, history, live)
    stats = proc.run(idle_exit_s=1.0)
    proc.close()
    assert stats.insight_refreshes >= 1
    m = str(fleet.meters.meter_id[7])
    got = live.get_insights(m)
    assert got is not None and got["meter_id"] == m
    assert got["kwh_per_day"] > 0 and 0 <= got["area_percentile"] <= 100
    assert got["recommended_tariff"] in {"agile_synthetic", "cosy_style", "economy7",
                                         "flat_cap_2025q3", "go_style", "peak_offpeak"}
    rows = history.read_insights(m, 0, 2**62)
    assert len(rows) >= 1 and rows.meter_id.tolist()[0] == m


def test_time_blocked_in_a_slow_history_write_is_not_idle(stack) -> None:  # type: ignore[no-untyped-def]
    """A write that blocks longer than ``idle_exit_s`` (the database was down, the retry
    waited) must not end the run: the messages that arrived meanwhile are still read."""
    settings, bus, history, live = stack
    fleet = Fleet(20, seed=3)
    history.register_meters(fleet.meters)
    run_fleet_producer(fleet, bus, settings.topic_readings, start_s=START, speedup=0,
                       duration_s=5)
    blocked = threading.Event()

    class SlowHistory:
        def __init__(self, inner: EmbeddedHistory) -> None:
            self.inner, self.calls = inner, 0

        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            return getattr(self.inner, name)

        def write_checkpoints(self, *args):  # type: ignore[no-untyped-def]
            self.calls += 1
            if self.calls == 2:  # the flush of the first empty step (the first read all 5 s)
                blocked.set()  # the backlog arrives while the write waits
                run_fleet_producer(fleet, bus, settings.topic_readings, start_s=START + 5,
                                   speedup=0, duration_s=5)
                threading.Event().wait(3.0)  # three times the idle limit below
            self.inner.write_checkpoints(*args)

    proc = Processor(settings, bus, SlowHistory(history), live,  # type: ignore[arg-type]
                     flush_interval_s=0.0)
    stats = proc.run(idle_exit_s=1.0)
    assert blocked.is_set()
    assert stats.messages_in == 20 * 10
    assert len(history.read_readings(str(fleet.meters.meter_id[0]), START * 1000,
                                     (START + 10) * 1000)) == 10


def test_a_processor_blocked_elsewhere_does_not_judge_its_partitions_idle(
        stack) -> None:  # type: ignore[no-untyped-def]
    """A partition holds the watermark until it has been silent for ``idle_partition_s`` of
    polling. Time the processor spent blocked (here: sleeping; on Kafka, a commit held up for
    40 s by a rebalance) is not silence: judging the partition idle then moved the watermark
    past its unread backlog and dead-lettered it as late (the SIGKILL fault test lost 3 of 40
    readings of 121 meters that way)."""
    settings, bus, history, live = stack
    fleet = Fleet(5, seed=1)
    history.register_meters(fleet.meters)
    proc = Processor(settings, bus, history, live)
    proc.clock.idle_partition_s = 1.5
    topic = settings.topic_readings
    proc._consumer.assignment = lambda: [(topic, 0), (topic, 1)]  # type: ignore[method-assign]
    t = START * 1000
    assert proc._event_clock(np.array([0, 1]), np.array([t + 10_000, t + 9_000])) == t + 9_000
    threading.Event().wait(2.0)  # blocked, not polling: longer than idle_partition_s
    # partition 0's backlog arrives first; partition 1 still holds the clock back
    assert proc._event_clock(np.array([0]), np.array([t + 40_000])) == t + 9_000
    # silence while polling does count: after 1.5 s of empty polls partition 1 is idle
    for _ in range(12):
        proc.step(timeout_s=0.2)
    assert proc._event_clock(np.array([0]), np.array([t + 41_000])) == t + 41_000
    proc.close()
