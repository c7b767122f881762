"""The history-store contract: every HistoryStore implementation must pass these."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from smartmeter_lib.adapters.base import HistoryStore
from smartmeter_lib.model import MeterInfo, ReadingBatch, Rollup

from .conftest import HISTORIES

pytestmark = pytest.mark.parametrize("history_factory", HISTORIES, indirect=True)
T0 = 1_764_300_000_000  # 2025-11-28 03:20 UTC


def _meters(prefix: str, n: int = 3) -> MeterInfo:
    ids = np.array([f"{prefix}-{i}" for i in range(n)], dtype=object)
    return MeterInfo(ids, np.linspace(51.4, 51.6, n), np.linspace(-0.2, 0.1, n),
                     np.array(["gcpvj0d"] * n, dtype=object))


def test_meter_registry_round_trip_and_upsert(
        history_factory: Callable[[], HistoryStore], unique: str) -> None:
    h = history_factory()
    h.register_meters(_meters(unique))
    h.register_meters(_meters(unique))  # twice: still three meters
    got = h.meters().to_pandas()
    mine = got[got.meter_id.str.startswith(unique)].sort_values("meter_id")
    assert list(mine.meter_id) == [f"{unique}-0", f"{unique}-1", f"{unique}-2"]
    assert mine.lat.tolist() == pytest.approx([51.4, 51.5, 51.6])


def test_readings_round_trip_in_time_order_and_idempotent(
        history_factory: Callable[[], HistoryStore], unique: str) -> None:
    h = history_factory()
    m = f"{unique}-0"
    ts = T0 + np.array([3000, 1000, 2000, 86_400_000])  # last one is the next day
    batch = ReadingBatch.readings([m, m, m, m], ts, [0.3, 0.1, 0.2, 0.9])
    h.write_readings(batch)
    h.write_readings(batch.take(np.array([0, 1])))  # replayed: must not double
    other = ReadingBatch.readings([f"{unique}-1"], [T0 + 1000], [5.0])
    h.write_readings(other)
    got = h.read_readings(m, T0, T0 + 10_000)
    assert got.ts_ms.tolist() == [T0 + 1000, T0 + 2000, T0 + 3000]
    assert got.kwh.tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert got.interval_s.tolist() == [1, 1, 1]
    assert len(h.read_readings(m, T0, T0 + 2 * 86_400_000)) == 4
    assert len(h.read_readings(m, T0 + 5000, T0 + 6000)) == 0


def test_rollups_upsert_by_window(
        history_factory: Callable[[], HistoryStore], unique: str) -> None:
    h = history_factory()
    ids = np.array([f"{unique}-0", f"{unique}-1"], dtype=object)
    r1 = Rollup(60, ids, np.array([T0, T0]), np.array([1.0, 2.0]), np.array([60, 60],
                                                                             np.int32))
    h.write_rollups(r1)
    r2 = Rollup(60, ids[:1], np.array([T0]), np.array([1.5]), np.array([61], np.int32))
    h.write_rollups(r2)  # same window again: replaces, never adds
    h.write_rollups(Rollup(1800, ids[:1], np.array([T0]), np.array([9.0]),
                           np.array([1800], np.int32)))
    got = h.read_rollups(60, list(ids), T0, T0 + 60_000)
    assert got.meter_id.tolist() == list(ids)
    assert got.kwh.tolist() == pytest.approx([1.5, 2.0])
    assert got.readings.tolist() == [61, 60]
    assert h.read_rollups(1800, [ids[0]], T0, T0 + 1).kwh.tolist() == [9.0]
    assert len(h.read_rollups(60, [ids[0]], T0 + 60_000, T0 + 120_000)) == 0


def test_a_second_client_sees_the_writes(
        history_factory: Callable[[], HistoryStore], unique: str) -> None:
    writer, reader = history_factory(), history_factory()
    writer.register_meters(_meters(unique, 2))
    writer.write_rollups(Rollup(60, np.array([f"{unique}-0"], object), np.array([T0]),
                                np.array([0.25]), np.array([60], np.int32)))
    assert reader.read_rollups(60, [f"{unique}-0"], T0, T0 + 1).kwh.tolist() == [0.25]
    assert f"{unique}-1" in set(reader.meters().meter_id.tolist())


def test_area_rollups_upsert_and_filter(
        history_factory: Callable[[], HistoryStore], unique: str) -> None:
    from smartmeter_lib.model import AreaRollup

    h = history_factory()
    cells = np.array(["gcpvj0", "gcpvj1"], dtype=object)
    h.write_area_rollups(AreaRollup(1800, 6, cells, np.array([T0, T0]), np.array([5.0, 6.0]),
                                    np.array([10, 12], np.int32)))
    h.write_area_rollups(AreaRollup(1800, 6, cells[:1], np.array([T0]), np.array([5.5]),
                                    np.array([11], np.int32)))  # replaces
    h.write_area_rollups(AreaRollup(86400, 6, cells[:1], np.array([T0]), np.array([99.0]),
                                    np.array([11], np.int32)))
    got = h.read_area_rollups(1800, 6, None, T0, T0 + 1800_000)
    assert got.cell.tolist() == ["gcpvj0", "gcpvj1"]
    assert got.kwh.tolist() == pytest.approx([5.5, 6.0]) and got.homes.tolist() == [11, 12]
    one = h.read_area_rollups(86400, 6, ["gcpvj0"], T0, T0 + 1)
    assert one.kwh.tolist() == [99.0]
    assert len(h.read_area_rollups(1800, 5, None, T0, T0 + 1800_000)) == 0


def test_area_rollups_of_several_shards_add_up(
        history_factory: Callable[[], HistoryStore], unique: str) -> None:
    """Each processor writes the rows of the partitions it holds (its shards); a read sums
    the shards of a cell, and rewriting a shard (its new owner completes the window)
    replaces only that shard's row."""
    from smartmeter_lib.model import AreaRollup

    h = history_factory()
    cell = np.array(["gcpvj0", "gcpvj0"], dtype=object)
    h.write_area_rollups(AreaRollup(1800, 6, cell, np.array([T0, T0]), np.array([1.0, 2.0]),
                                    np.array([3, 4], np.int32), np.array([0, 4], np.int32)))
    h.write_area_rollups(AreaRollup(1800, 6, cell[:1], np.array([T0]), np.array([0.5]),
                                    np.array([1], np.int32), np.array([1], np.int32)))
    got = h.read_area_rollups(1800, 6, None, T0, T0 + 1800_000)
    assert got.cell.tolist() == ["gcpvj0"] and got.window_start_ms.tolist() == [T0]
    assert got.kwh.tolist() == pytest.approx([3.5]) and got.homes.tolist() == [8]
    # shard 4 moved to another processor, which completes the window: its row is replaced
    h.write_area_rollups(AreaRollup(1800, 6, cell[:1], np.array([T0]), np.array([2.5]),
                                    np.array([5], np.int32), np.array([4], np.int32)))
    got = h.read_area_rollups(1800, 6, ["gcpvj0"], T0, T0 + 1800_000)
    assert got.kwh.tolist() == pytest.approx([4.0]) and got.homes.tolist() == [9]


def test_events_are_kept_once_in_time_order(
        history_factory: Callable[[], HistoryStore], unique: str) -> None:
    import pandas as pd

    h = history_factory()
    ev = pd.DataFrame({"ts_ms": [T0 + 2000, T0 + 1000, T0 + 86_400_000],
                       "meter_id": [f"{unique}-1", f"{unique}-0", f"{unique}-0"],
                       "kind": ["LAST_GASP", "LAST_GASP", "POWER_RESTORE"],
                       "detail": ["{}", '{"n": 1}', "{}"]})
    h.write_events(ev)
    h.write_events(ev.iloc[:1])  # again: stored once
    got = h.read_events(T0, T0 + 2 * 86_400_000)
    mine = got[got.meter_id.str.startswith(unique)]
    assert mine.ts_ms.tolist() == [T0 + 1000, T0 + 2000, T0 + 86_400_000]
    assert mine.kind.tolist() == ["LAST_GASP", "LAST_GASP", "POWER_RESTORE"]
    assert mine.detail.tolist()[0] == '{"n": 1}'
    assert len(h.read_events(T0 + 3000, T0 + 4000).query("meter_id.str.startswith(@unique)")) == 0


def test_insights_history_per_meter(
        history_factory: Callable[[], HistoryStore], unique: str) -> None:
    import pandas as pd

    h = history_factory()
    df = pd.DataFrame({"meter_id": [f"{unique}-0", f"{unique}-1"], "baseload_w": [150.0, None],
                       "recommended_tariff": ["economy7", None]})
    h.write_insights(T0, df)
    h.write_insights(T0 + 1_800_000, df.assign(baseload_w=[160.0, 90.0]))
    h.write_insights(T0, df)  # again: one row per meter and time
    got = h.read_insights(f"{unique}-0", T0, T0 + 3_600_000)
    assert got.ts_ms.tolist() == [T0, T0 + 1_800_000]
    assert got.baseload_w.tolist() == [150.0, 160.0]
    assert got.recommended_tariff.tolist() == ["economy7", "economy7"]
    other = h.read_insights(f"{unique}-1", T0, T0 + 1)
    assert other.baseload_w.isna().tolist() == [True]  # NaN round-trips as missing


def test_checkpoints_replace_per_group_and_partition(
        history_factory: Callable[[], HistoryStore], unique: str) -> None:
    h = history_factory()
    group = f"g-{unique}"
    assert h.read_checkpoint(group, "fake_iot", 0) is None
    blob = bytes(range(256)) * 64  # binary-safe, 16 KiB
    h.write_checkpoints(group, "fake_iot", {0: blob, 3: b"three"})
    assert h.read_checkpoint(group, "fake_iot", 0) == blob
    assert h.read_checkpoint(group, "fake_iot", 3) == b"three"
    assert h.read_checkpoint(group, "other_topic", 3) is None
    assert h.read_checkpoint(f"{group}-b", "fake_iot", 3) is None
    h.write_checkpoints(group, "fake_iot", {3: b"newer"})
    assert history_factory().read_checkpoint(group, "fake_iot", 3) == b"newer"
    assert h.read_checkpoint(group, "fake_iot", 0) == blob


def test_a_released_meter_merges_with_what_another_writer_stored(
        history_factory: Callable[[], HistoryStore], unique: str) -> None:
    """A partition moves from one processor to another and back: after ``release_meters`` the
    first writer's next write keeps what the second one wrote meanwhile (same minute)."""
    first, second = history_factory(), history_factory()
    m = f"{unique}-0"
    first.write_readings(ReadingBatch.readings([m, m], [T0, T0 + 1000], [0.1, 0.1]))
    second.release_meters([m])  # takes the meter over
    second.write_readings(ReadingBatch.readings([m, m], [T0 + 2000, T0 + 3000], [0.2, 0.2]))
    first.release_meters([m])  # takes it back
    first.write_readings(ReadingBatch.readings([m], [T0 + 4000], [0.3]))
    got = first.read_readings(m, T0, T0 + 60_000)
    assert got.ts_ms.tolist() == [T0 + k * 1000 for k in range(5)]
    assert float(got.kwh.sum()) == pytest.approx(0.9)
