"""The processor's half-hourly profiles and the insights computed from them, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from smartmeter_lib.model import MeterInfo, Rollup
from smartmeter_lib.stream.profiles import ProfileKeeper

DAY0 = 1_764_288_000_000  # 2025-11-28 00:00 UTC


def keeper() -> ProfileKeeper:
    # A and B share geohash-6 cell gcpvj0; C is alone in gcpvj1
    return ProfileKeeper(MeterInfo(np.array(["A", "B", "C"], object), np.zeros(3), np.zeros(3),
                                   np.array(["gcpvj0d", "gcpvj0e", "gcpvj1a"], object)))


def put_day(k: ProfileKeeper, day: int, per_slot: dict[str, np.ndarray]) -> None:
    for s in range(48):
        ids = list(per_slot)
        k.add(Rollup(1800, np.array(ids, object), np.full(len(ids), DAY0 + day * 86_400_000
                                                          + s * 1_800_000),
                     np.array([per_slot[m][s] for m in ids]), np.ones(len(ids), np.int32)))


def test_baseload_peak_share_and_neighbours_by_hand() -> None:
    k = keeper()
    a = np.full(48, 0.1)  # 200 W all day
    a[32:38] = 0.5  # 16:00-19:00 peak
    b = np.full(48, 0.2)
    c = np.full(48, 0.05)
    put_day(k, 0, {"A": a, "B": b, "C": c})
    df = k.insights().set_index("meter_id")
    assert df.loc["A", "baseload_w"] == pytest.approx(200.0)  # 0.1 kWh per half-hour
    assert df.loc["A", "baseload_annual_gbp"] == pytest.approx(0.2 * 8766 * 0.2573)
    assert df.loc["A", "peak_share"] == pytest.approx(3.0 / (42 * 0.1 + 3.0))
    assert df.loc["A", "kwh_per_day"] == pytest.approx(7.2)
    assert df.loc["B", "kwh_per_day"] == pytest.approx(9.6)
    assert df.loc["A", "area_percentile"] == pytest.approx(50.0)  # lower of two in gcpvj0
    assert df.loc["B", "area_percentile"] == pytest.approx(100.0)
    assert df.loc["A", "efficient_kwh_per_day"] == pytest.approx(7.2 + 0.2 * 2.4)
    assert df.loc["C", "days_seen"] == pytest.approx(1.0)
    assert df.loc["A", "last_day_kwh"] == pytest.approx(7.2)


def test_week_on_week_and_an_unusual_day() -> None:
    k = keeper()
    for d in range(14):
        level = 0.1 if d < 7 else 0.11  # the second week uses 10% more
        if d == 13:
            level = 0.4  # the last day is far above the meter's usual days
        put_day(k, d, {"A": np.full(48, level)})
    df = k.insights().set_index("meter_id")
    this = (6 * 0.11 + 0.4) * 48
    prev = 7 * 0.1 * 48
    assert df.loc["A", "week_on_week_pct"] == pytest.approx((this - prev) / prev * 100)
    assert bool(df.loc["A", "unusual_last_day"]) is True
    assert np.isnan(df.loc["B", "week_on_week_pct"])


def test_the_ring_forgets_old_days_and_ignores_older_rollups() -> None:
    k = ProfileKeeper(keeper().meters, days=1)
    put_day(k, 0, {"A": np.full(48, 0.1)})
    put_day(k, 1, {"A": np.full(48, 0.3)})
    assert k.add(Rollup(1800, np.array(["A"], object), np.array([DAY0]), np.array([9.0]),
                        np.ones(1, np.int32))) == 0  # older than the ring keeps
    df = k.insights().set_index("meter_id")
    assert df.loc["A", "kwh_per_day"] == pytest.approx(0.3 * 48)
