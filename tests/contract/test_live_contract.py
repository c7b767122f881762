"""The live-store contract: every LiveStore implementation must pass these."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from smartmeter_lib.adapters.base import LiveStore
from smartmeter_lib.model import AreaStats

from .conftest import LIVES

pytestmark = pytest.mark.parametrize("live_factory", LIVES, indirect=True)
T0 = 1_764_300_000_000


def test_area_stats_replace_the_snapshot(live_factory: Callable[[], LiveStore]) -> None:
    s = live_factory()
    assert s.get_area_stats(5) is None
    cells = np.array(["gcpvj", "gcpvh"], dtype=object)
    s.put_area_stats(AreaStats(T0, 5, cells, np.array([1.5, 2.5]), np.array([3, 4], np.int32)))
    s.put_area_stats(AreaStats(T0 + 1000, 5, cells, np.array([1.0, 2.0]),
                               np.array([3, 3], np.int32)))
    s.put_area_stats(AreaStats(T0 + 1000, 5, cells, np.array([1.0, 2.0]),
                               np.array([3, 3], np.int32)))  # the same again: no change
    s.put_area_stats(AreaStats(T0, 6, cells, np.array([9.0, 9.0]), np.array([1, 1], np.int32)))
    got = s.get_area_stats(5)
    assert got is not None and got.ts_ms == T0 + 1000
    assert got.cell.tolist() == ["gcpvh", "gcpvj"]  # sorted
    assert got.kw.tolist() == pytest.approx([2.0, 1.0])
    assert got.homes.tolist() == [3, 3]


def test_totals_series(live_factory: Callable[[], LiveStore]) -> None:
    s = live_factory()
    for i in range(5):
        s.put_total(T0 + i * 1000, 100.0 + i, 10 + i)
    df = s.get_totals(T0 + 2000)
    assert df.ts_ms.tolist() == [T0 + 2000, T0 + 3000, T0 + 4000]
    assert df.kw.tolist() == pytest.approx([102.0, 103.0, 104.0])
    assert df.homes.tolist() == [12, 13, 14]


def test_meter_snapshot(live_factory: Callable[[], LiveStore]) -> None:
    s = live_factory()
    assert s.get_meter("nope") is None
    ids = ["A1", "B2", "C3"]
    s.put_meters(T0, ids, [T0 - 1000, T0, T0], [0.5, 1.5, 0.0], [10.0, 20.0, 30.0])
    got = s.get_meter("B2")
    assert got is not None
    assert got["kw"] == pytest.approx(1.5) and got["kwh_total"] == pytest.approx(20.0)
    assert got["last_ts_ms"] == T0
    assert s.get_meter("Z9") is None
    s.put_meters(T0 + 1000, ["B2"], [T0 + 1000], [2.0], [21.0])  # a new snapshot replaces
    got = s.get_meter("B2")
    assert got is not None and got["kwh_total"] == pytest.approx(21.0)
    assert s.get_meter("A1") is None


def test_kpis_and_clear_seen_by_a_second_client(
        live_factory: Callable[[], LiveStore]) -> None:
    w, r = live_factory(), live_factory()
    w.put_kpis({"homes_reporting": 7, "total_mw": 0.5})
    w.put_total(T0, 1.0, 1)
    assert r.get_kpis() == {"homes_reporting": 7, "total_mw": 0.5}
    w.clear()
    assert r.get_kpis() == {}
    assert len(r.get_totals(0)) == 0


def test_recent_series_of_one_meter(live_factory: Callable[[], LiveStore]) -> None:
    s = live_factory()
    ids = ["A1", "B2", "C3"]
    s.put_meters(T0, ids, [T0] * 3, [0.1, 0.2, 0.3], [1.0, 2.0, 3.0])
    for k in range(5):
        s.put_meter_power(T0 + k * 1000, np.array([0.1, 0.2 + k, 0.3]))
    df = s.get_meter_series("B2", T0 + 2000)
    assert df.ts_ms.tolist() == [T0 + 2000, T0 + 3000, T0 + 4000]
    assert df.kw.tolist() == pytest.approx([2.2, 3.2, 4.2], rel=1e-6)
    assert len(s.get_meter_series("nobody", 0)) == 0


def test_top_consumers_and_active_alerts(live_factory: Callable[[], LiveStore]) -> None:
    from smartmeter_lib.model import Alert, AlertKind

    s = live_factory()
    s.put_top_consumers(T0, ["A", "B", "C"], [1.0, 3.0, 2.0])
    assert s.get_top_consumers().meter_id.tolist() == ["B", "C", "A"]
    s.put_top_consumers(T0 + 1000, ["D"], [9.0])
    assert s.get_top_consumers().to_dict("list") == {"meter_id": ["D"], "kw": [9.0]}
    assert s.get_active_alerts() == []
    a = Alert("out-1", AlertKind.AREA_OUTAGE, "gcpvj0", ("M1", "M2"), T0, None, 0.9,
              {"silent": 2})
    b = Alert("theft-1", AlertKind.SUSPECTED_THEFT, "gcpvj1", ("M3",), T0 + 5, None, 0.7,
              {"expected_kwh": 1.2, "metered_kwh": 0.3})
    s.put_alerts([b, a])
    assert live_factory().get_active_alerts() == [a, b]
    closed = Alert("out-0", AlertKind.AREA_OUTAGE, "gcpvj2", ("M4",), T0 - 60_000, T0 - 1000)
    s.put_alerts([b, a, closed])
    assert s.get_active_alerts() == [a, b]
    assert s.get_alerts() == [closed, a, b]
    s.put_alerts([])
    assert s.get_active_alerts() == []
    assert s.get_alerts() == []


def test_insights_snapshot(live_factory: Callable[[], LiveStore]) -> None:
    import pandas as pd

    s = live_factory()
    assert s.get_insights("A") is None
    s.put_insights(T0, pd.DataFrame({"meter_id": ["A", "B"], "baseload_w": [120.5, float("nan")],
                                     "area_percentile": [35.0, 80.0]}))
    got = s.get_insights("A")
    assert got == {"meter_id": "A", "baseload_w": 120.5, "area_percentile": 35.0, "ts_ms": T0}
    assert s.get_insights("B")["baseload_w"] is None  # type: ignore[index]
    s.put_insights(T0 + 1, pd.DataFrame({"meter_id": ["B"], "baseload_w": [1.0],
                                         "area_percentile": [1.0]}))
    assert live_factory().get_insights("A") is None


def test_several_writers_each_hold_their_meters(
        live_factory: Callable[[], LiveStore]) -> None:
    """Two processors write the snapshots of the meters they hold; readers see both, and a
    meter that changed hands is read from the snapshot with its newest reading."""
    a, b, reader = live_factory(), live_factory(), live_factory()
    a.put_meters(T0, ["A1", "B2"], [T0, T0], [0.5, 1.5], [10.0, 20.0])
    b.put_meters(T0, ["C3"], [T0], [2.5], [30.0])
    for k in range(3):
        a.put_meter_power(T0 + k * 1000, np.array([0.5 + k, 1.5]))
        b.put_meter_power(T0 + k * 1000, np.array([2.5 + k]))
    a.put_top_consumers(T0, ["B2", "A1"], [1.5, 0.5])
    b.put_top_consumers(T0, ["C3"], [2.5])
    got = {m: reader.get_meter(m) for m in ("A1", "B2", "C3")}
    assert {m: g and g["kw"] for m, g in got.items()} == {"A1": 0.5, "B2": 1.5, "C3": 2.5}
    assert reader.get_meter_series("C3", T0).kw.tolist() == pytest.approx([2.5, 3.5, 4.5])
    assert reader.get_meter_series("A1", T0).kw.tolist() == pytest.approx([0.5, 1.5, 2.5])
    assert reader.get_top_consumers().meter_id.tolist() == ["C3", "B2", "A1"]
    # B2's partition moves to b: b's snapshot has the newer reading, a's next one drops it
    b.put_meters(T0 + 1000, ["C3", "B2"], [T0 + 1000, T0 + 1000], [2.0, 9.0], [31.0, 21.0])
    assert (reader.get_meter("B2") or {}).get("kw") == 9.0
    a.put_meters(T0 + 1000, ["A1"], [T0 + 1000], [0.7], [10.5])
    assert (reader.get_meter("B2") or {}).get("kwh_total") == 21.0
    assert (reader.get_meter("A1") or {}).get("kw") == pytest.approx(0.7)
