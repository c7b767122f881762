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
