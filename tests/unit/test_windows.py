"""Event-time windows, checked against sums computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from smartmeter_lib.model import Kind, MeterInfo, ReadingBatch
from smartmeter_lib.stream.windows import WindowedAggregator

T0 = 1_764_288_000_000  # 2025-11-28 00:00:00 UTC, a minute and half-hour boundary
NOW = T0 + 3_600_000


def meters() -> MeterInfo:
    # A and B share geohash-6 cell gcpvj0, C is in another gcpvj cell; all in gcpvj at p5
    return MeterInfo(np.array(["A", "B", "C"], dtype=object), np.zeros(3), np.zeros(3),
                     np.array(["gcpvj0d", "gcpvj0e", "gcpvj1a"], dtype=object))


def agg(lateness_ms: int = 2000) -> WindowedAggregator:
    return WindowedAggregator(meters(), allowed_lateness_ms=lateness_ms,
                              rollup_resolutions_s=(60, 1800), now_ms=lambda: NOW)


def rb(rows: list[tuple[str, int, float]], interval_s: int = 1) -> ReadingBatch:
    ids, ts, kwh = zip(*rows, strict=True)
    return ReadingBatch.readings(list(ids), [T0 + t for t in ts], list(kwh), interval_s)


def test_live_seconds_per_area_and_total() -> None:
    a = agg()
    res = a.process(rb([("A", 0, 0.001), ("B", 0, 0.002), ("C", 0, 0.0005),
                        ("A", 1000, 0.001)]))
    assert res.seconds == []  # watermark = 1000 - 2000: nothing closed yet
    res = a.process(rb([("A", 3000, 0.001)]))  # watermark 1000: closes second 0
    assert [s.ts_ms for s in res.seconds] == [T0]
    s0 = res.seconds[0]
    assert s0.total_kw == pytest.approx((0.001 + 0.002 + 0.0005) * 3600)  # 12.6 kW
    assert s0.homes == 3
    p6 = dict(zip(s0.areas[6].cell.tolist(), s0.areas[6].kw.tolist(), strict=True))
    assert p6 == pytest.approx({"gcpvj0": 10.8, "gcpvj1": 1.8})
    p5 = s0.areas[5]
    assert p5.cell.tolist() == ["gcpvj"] and p5.homes.tolist() == [3]
    res = a.flush()
    assert [s.ts_ms for s in res.seconds] == [T0 + 1000, T0 + 3000]
    assert res.seconds[0].homes == 1 and res.seconds[0].total_kw == pytest.approx(3.6)


def test_minute_and_half_hour_rollups() -> None:
    a = agg()
    rows = [("A", t * 1000, 0.001) for t in range(0, 125)] + [("B", 59_000, 0.5)]
    rollups = a.process(rb(rows)).rollups + a.flush().rollups
    by_res = {(r.resolution_s, int(w)): dict(zip(r.meter_id.tolist(), r.kwh.tolist(),
                                                 strict=True))
              for r in rollups for w in np.unique(r.window_start_ms)}
    assert by_res[(60, T0)] == pytest.approx({"A": 0.060, "B": 0.5})
    assert by_res[(60, T0 + 60_000)] == pytest.approx({"A": 0.060})
    assert by_res[(60, T0 + 120_000)] == pytest.approx({"A": 0.005})
    assert by_res[(1800, T0)] == pytest.approx({"A": 0.125, "B": 0.5})
    counts = {int(r.window_start_ms[0]): r.readings.tolist() for r in rollups
              if r.resolution_s == 60}
    assert counts[T0] == [60, 1]


def test_windows_close_only_when_the_watermark_passes() -> None:
    a = agg(lateness_ms=5000)
    a.process(rb([("A", t * 1000, 0.001) for t in range(0, 64)]))
    # watermark = 63 s - 5 s = 58 s: the first minute is still open
    assert a.process(rb([("A", 64_000, 0.001)])).rollups == []
    res = a.process(rb([("A", 65_000, 0.001)]))  # watermark 60 s: minute 0 closes
    assert [(r.resolution_s, int(r.window_start_ms[0])) for r in res.rollups] == [(60, T0)]
    assert res.rollups[0].kwh.tolist() == pytest.approx([0.060])


def test_late_readings_are_returned_not_counted() -> None:
    a = agg(lateness_ms=1000)
    a.process(rb([("A", 0, 0.001), ("A", 10_000, 0.001)]))  # closes seconds up to 9 s
    res = a.process(rb([("B", 2000, 0.7), ("B", 9500, 0.002)]))
    assert res.late.meter_id.tolist() == ["B"] and res.late.ts_ms.tolist() == [T0 + 2000]
    assert res.accepted.ts_ms.tolist() == [T0 + 9500]
    assert a.counts["late"] == 1
    total = sum(float(r.kwh.sum()) for r in a.flush().rollups if r.resolution_s == 60)
    assert total == pytest.approx(0.001 + 0.001 + 0.002)  # the late 0.7 is not in


def test_out_of_order_within_lateness_is_counted_once_in_the_right_window() -> None:
    a = agg(lateness_ms=10_000)
    a.process(rb([("A", 61_000, 0.004)]))
    a.process(rb([("A", 59_000, 0.003)]))  # older, but within lateness
    a.process(rb([("A", 60_000, 0.002)]))
    assert a.last_ts[0] == T0 + 61_000 and a.last_kw[0] == pytest.approx(0.004 * 3600)
    res = a.flush()
    got = {int(r.window_start_ms[0]): float(r.kwh[0]) for r in res.rollups
           if r.resolution_s == 60}
    assert got == pytest.approx({T0: 0.003, T0 + 60_000: 0.006})


def test_duplicates_are_dropped_within_a_batch_and_across_batches() -> None:
    a = agg()
    res = a.process(rb([("A", 0, 0.001), ("A", 0, 0.001), ("B", 0, 0.002)]))
    assert res.duplicates == 1
    res = a.process(rb([("A", 0, 0.001), ("B", 500, 0.002)]))  # B at 0.5 s is new
    assert res.duplicates == 1
    assert a.kwh_total.tolist() == pytest.approx([0.001, 0.004, 0.0])
    assert a.counts["duplicates"] == 2


def test_unknown_future_and_event_messages_are_set_aside() -> None:
    a = agg()
    b = ReadingBatch(np.array(["A", "ZZ", "B", "C"], dtype=object),
                     np.array([T0, T0, NOW + 3_600_000, T0]), np.array([0.001, 0.001,
                                                                       0.001, 0.0]),
                     np.ones(4, np.uint16), np.array([0, 0, 0, Kind.LAST_GASP], np.uint8))
    res = a.process(b)
    assert res.unknown.meter_id.tolist() == ["ZZ"]
    assert res.future.meter_id.tolist() == ["B"]
    assert res.events.meter_id.tolist() == ["C"]
    assert res.accepted.meter_id.tolist() == ["A"]


def test_half_hourly_readings_roll_up_only_at_half_hour() -> None:
    a = agg()
    first = a.process(rb([("A", 0, 0.219), ("A", 1_800_000, 0.241)], interval_s=1800))
    rollups = first.rollups + a.flush().rollups
    assert {r.resolution_s for r in rollups} == {1800}
    assert sorted(float(r.kwh[0]) for r in rollups) == pytest.approx([0.219, 0.241])
    assert first.seconds[0].total_kw == pytest.approx(0.219 * 2)  # average power


def test_event_clock_holds_the_watermark_back() -> None:
    a = agg(lateness_ms=0)
    # one partition is at 10 s, the slowest at 2 s: only windows before 2 s may close
    res = a.process(rb([("A", 10_000, 0.001), ("B", 1000, 0.001)]), event_clock_ms=T0 + 2000)
    assert [s.ts_ms for s in res.seconds] == [T0 + 1000]
    res = a.process(rb([("B", 2000, 0.001)]), event_clock_ms=T0 + 2000)
    assert res.late.meter_id.tolist() == []


def test_area_rollups_are_split_by_shard() -> None:
    """A and B share cell gcpvj0 but sit in different partitions (shards): one row each, so
    the processors that hold them never overwrite each other's sums."""
    a = agg()
    a.shard_of = np.array([0, 3, 3])
    a.process(rb([("A", 0, 0.001), ("B", 0, 0.002), ("C", 0, 0.004), ("B", 1000, 0.002)]))
    rows = [r for r in a.flush().area_rollups if r.resolution_s == 1800 and r.precision == 6]
    assert len(rows) == 1
    r = rows[0]
    got = sorted(zip(r.cell.tolist(), r.shards().tolist(), r.kwh.tolist(), r.homes.tolist(),
                     strict=True))
    assert [g[:2] for g in got] == [("gcpvj0", 0), ("gcpvj0", 3), ("gcpvj1", 3)]
    assert [g[2] for g in got] == pytest.approx([0.001, 0.004, 0.004])
    assert [g[3] for g in got] == [1, 1, 1]
    p5 = [r for r in a.flush().area_rollups if r.precision == 5]  # nothing left open
    assert p5 == []
