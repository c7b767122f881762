"""Energy-saving insights: baseload, peak share, neighbours, weekly trend, unusual days."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from smartmeter_lib.errors import ConfigError, DataError
from smartmeter_lib.insights import energy


def frame(start: str, kwh: np.ndarray | list[float], meter: str = "m1",
          interval_s: int = 1800) -> pd.DataFrame:
    ts = pd.date_range(start, periods=len(kwh), freq=f"{interval_s}s", tz="UTC")
    return pd.DataFrame({"meter_id": meter, "ts": ts, "kwh": np.asarray(kwh, dtype=float),
                         "interval_s": interval_s})


def daily_pattern(days: int, night_w: float = 150.0, evening_kwh: float = 1.0) -> np.ndarray:
    """January (GMT = London clock): baseload all day, 0.4 kWh 07-16, evening 16-19."""
    hh = np.tile(np.arange(48), days)
    kwh = np.full(len(hh), night_w / 1000 * 0.5)
    kwh[(hh >= 14) & (hh < 32)] = 0.4
    kwh[(hh >= 32) & (hh < 38)] = evening_kwh
    return kwh


def test_baseload_is_a_low_percentile_of_night_demand_with_its_cost() -> None:
    kwh = daily_pattern(14)
    kwh[2::48] = 1.0  # a kettle at 01:00 every night does not raise the baseload
    b = energy.baseload(frame("2025-01-06", kwh)).iloc[0]
    assert b["baseload_w"] == pytest.approx(150.0) and b["nights"] == 14
    assert b["baseload_kwh_year"] == pytest.approx(150 * 8766 / 1000)
    assert b["baseload_cost_gbp_year"] == pytest.approx(150 * 8766 / 1000 * 0.2573)


def test_baseload_ignores_partly_observed_half_hours() -> None:
    full = frame("2025-01-06T01:00", [0.1] * 4)  # 200 W
    part = frame("2025-01-06T03:00", [0.01] * 900, interval_s=1)  # half a half-hour at 40 W
    b = energy.baseload(pd.concat([full, part]), percentile=0).iloc[0]
    assert b["baseload_w"] == pytest.approx(200.0)
    none = energy.baseload(frame("2025-01-06T12:00", [0.1] * 4)).iloc[0]
    assert np.isnan(none["baseload_w"]) and none["nights"] == 0
    with pytest.raises(ConfigError):
        energy.baseload(full, percentile=101)


def test_peak_share_by_london_clock() -> None:
    p = energy.peak_share(frame("2025-01-06", daily_pattern(7))).iloc[0]  # Monday to Sunday
    day = 24 * 0.075 + 18 * 0.4 + 6 * 1.0
    assert p["kwh"] == pytest.approx(7 * day)
    assert p["peak_share"] == pytest.approx(6 / day)
    wd = energy.peak_share(frame("2025-01-06", daily_pattern(7)), weekdays_only=True).iloc[0]
    assert wd["peak_kwh"] == pytest.approx(5 * 6.0)
    # in summer the 16:00-19:00 London peak is 15:00-18:00 UTC
    summer = energy.peak_share(frame("2025-07-07T15:00", [1.0] * 6)).iloc[0]
    assert summer["peak_share"] == 1.0


def test_neighbour_comparison_percentile_and_efficient_neighbours() -> None:
    frames, meters = [], []
    for i in range(10):  # area A: 10 houses using 5..14 kWh a day
        frames.append(frame("2025-01-06", [(5 + i) / 48] * 96, f"a{i}"))
        meters.append(("a" + str(i), "A", "house"))
    for i in range(2):  # area B has only 2 houses: compared with houses everywhere
        frames.append(frame("2025-01-06", [(6 + i) / 48] * 96, f"b{i}"))
        meters.append(("b" + str(i), "B", "house"))
    info = pd.DataFrame(meters, columns=["meter_id", "area", "group"])
    out = energy.neighbour_comparison(pd.concat(frames), info).set_index("meter_id")
    a0, a9 = out.loc["a0"], out.loc["a9"]
    assert a0["kwh_per_day"] == pytest.approx(5.0) and a0["peers"] == 10
    assert a0["percentile"] == pytest.approx(5.0) and a9["percentile"] == pytest.approx(95.0)
    expected = pd.Series(np.arange(5.0, 15.0)).quantile(0.2)
    assert a0["efficient_kwh_per_day"] == pytest.approx(expected)
    assert (a0["rating"], out.loc["a3", "rating"], a9["rating"]) == ("great", "good",
                                                                     "above average")
    assert out.loc["b0", "scope"] == "group" and out.loc["b0", "peers"] == 2
    assert a9["vs_efficient_pct"] == pytest.approx(100 * (14 / expected - 1))
    with pytest.raises(DataError):
        energy.neighbour_comparison(pd.concat(frames), info.drop(columns="area"))


def test_neighbour_use_per_day_is_scaled_for_coverage() -> None:
    gappy = frame("2025-01-06", [10 / 48] * 96, "g").iloc[::2]  # half the half-hours
    info = pd.DataFrame({"meter_id": ["g"], "area": ["A"], "group": ["flat"]})
    out = energy.neighbour_comparison(gappy, info, min_peers=1)
    assert out["kwh_per_day"].iloc[0] == pytest.approx(10.0)


def test_weekly_trend_week_on_week() -> None:
    kwh = np.concatenate([np.full(7 * 48, 10 / 48), np.full(7 * 48, 12 / 48),
                          np.full(2 * 48, 9 / 48)])
    t = energy.weekly_trend(frame("2025-01-06", kwh))  # starts on a Monday
    assert list(t["week_start"].astype(str)) == ["2025-01-06", "2025-01-13", "2025-01-20"]
    assert t["kwh_per_day"].tolist() == pytest.approx([10, 12, 9])
    assert np.isnan(t["change_pct"].iloc[0]) and t["change_pct"].iloc[1] == pytest.approx(20)
    assert np.isnan(t["change_pct"].iloc[2])  # the last week is only 2/7 observed


def test_unusual_days_against_the_meters_own_baseline() -> None:
    rng = np.random.default_rng(2)
    daily = rng.normal(10, 0.5, 30)
    daily[20] = 25.0  # a party
    kwh = np.repeat(daily / 48, 48)
    days = energy.daily_use(frame("2025-01-06", kwh))
    assert days["coverage"].eq(1).all() and days["kwh"].sum() == pytest.approx(daily.sum())
    flagged = energy.unusual_days(frame("2025-01-06", kwh))
    assert flagged["date"].astype(str).tolist() == ["2025-01-26"]
    assert flagged["robust_z"].iloc[0] > 10
    assert flagged["baseline_kwh"].iloc[0] == pytest.approx(np.median(daily))
    assert energy.unusual_days(frame("2025-01-06", kwh[: 48 * 10])).empty  # too few days
