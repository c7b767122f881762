"""Energy-saving insights per meter: pure functions of readings that return DataFrames.

All take the readings frame (``meter_id, ts, kwh, interval_s``); days and hours are on the
London clock. Half-hours only partly covered by readings are scaled by their coverage where a
rate is needed (power), and left out where a low value would mislead (baseload).

- :func:`baseload`: always-on power, a low percentile (default 10th) of the half-hourly
  demand between 01:00 and 05:00, in W, with its annual kWh and cost.
- :func:`peak_share`: share of use in peak windows (default 16:00-19:00).
- :func:`neighbour_comparison`: use per day against similar homes (same ``area`` and
  ``group``): percentile, the "efficient neighbours" (best 20%) and the median.
- :func:`weekly_trend`: week-on-week change of use per day.
- :func:`unusual_days`: days far above the meter's own robust baseline (median + MAD).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from smartmeter_lib.errors import ConfigError, DataError
from smartmeter_lib.insights.halfhours import DAY_NS, SLOT_S, half_hourly_frame, local_days
from smartmeter_lib.insights.profiles import HOME_TZ

FLAT_RATE_P = 25.73  #: p/kWh, the Jul-Sep 2025 price cap (the default for baseload cost)
HOURS_PER_YEAR = 8766.0  #: 365.25 days
EFFICIENT_SHARE = 0.2  #: "efficient neighbours": the best 20% of similar homes nearby
FULL = 0.999  #: a half-hour counts as fully observed above this coverage


def _with_clock(frame: pd.DataFrame) -> pd.DataFrame:
    hh = half_hourly_frame(frame)
    day, minute = local_days(pd.DatetimeIndex(hh["ts"]), HOME_TZ)
    hh["day"] = day
    hh["minute"] = minute
    return hh


def _windows(minute: pd.Series, windows: Sequence[str]) -> np.ndarray:
    m = np.zeros(len(minute), dtype=bool)
    mins = minute.to_numpy()
    for w in windows:
        try:
            a, b = (int(x[:2]) * 60 + int(x[3:5]) for x in w.split("-"))
        except (ValueError, IndexError):
            raise ConfigError(f"window {w!r} must look like 16:00-19:00") from None
        m |= (mins >= a) & (mins < b) if a < b else (mins >= a) | (mins < b)
    return m


def baseload(frame: pd.DataFrame, *, percentile: float = 10.0,
             night: Sequence[str] = ("01:00-05:00",), rate_p_per_kwh: float = FLAT_RATE_P
             ) -> pd.DataFrame:
    """Always-on demand: ``baseload_w``, ``baseload_kwh_year``, ``baseload_cost_gbp_year``.

    The ``percentile`` of fully observed half-hourly demand in the ``night`` windows; ``nights``
    counts the nights it rests on (NaN baseload when there are none).
    """
    if not 0 <= percentile <= 100:
        raise ConfigError(f"percentile must be within 0-100, got {percentile}")
    night = [night] if isinstance(night, str) else list(night)
    hh = _with_clock(frame)
    sel = hh[_windows(hh["minute"], night) & (hh["covered"] >= FULL)]
    watts = sel["kwh"].clip(lower=0) * (3600.0 / SLOT_S) * 1000.0
    g = watts.groupby(sel["meter_id"])
    out = pd.DataFrame({"baseload_w": g.quantile(percentile / 100.0),
                        "nights": sel.groupby("meter_id")["day"].nunique()})
    out = out.reindex(pd.Index(sorted(hh["meter_id"].unique()), name="meter_id"))
    out["nights"] = out["nights"].fillna(0).astype(int)
    out["baseload_kwh_year"] = out["baseload_w"] * HOURS_PER_YEAR / 1000.0
    out["baseload_cost_gbp_year"] = out["baseload_kwh_year"] * rate_p_per_kwh / 100.0
    return out.reset_index()


def peak_share(frame: pd.DataFrame, *, windows: Sequence[str] = ("16:00-19:00",),
               weekdays_only: bool = False) -> pd.DataFrame:
    """Share of each meter's import in the peak ``windows``: ``kwh, peak_kwh, peak_share``."""
    hh = _with_clock(frame)
    peak = _windows(hh["minute"], windows)
    if weekdays_only:
        peak &= ((hh["day"].to_numpy() + 3) % 7) < 5
    imp = hh["kwh"].clip(lower=0)
    out = pd.DataFrame({"kwh": imp.groupby(hh["meter_id"]).sum(),
                        "peak_kwh": imp.where(peak, 0.0).groupby(hh["meter_id"]).sum()})
    out["peak_share"] = out["peak_kwh"] / out["kwh"].where(out["kwh"] > 0)
    return out.rename_axis("meter_id").reset_index()


def daily_use(frame: pd.DataFrame) -> pd.DataFrame:
    """Per meter and London date: ``kwh`` (net), ``coverage`` (share of the day's half-hours)."""
    hh = _with_clock(frame)
    g = hh.groupby(["meter_id", "day"], sort=True)
    out = pd.DataFrame({"kwh": g["kwh"].sum(), "coverage": g["covered"].sum() / 48.0})
    out = out.reset_index()
    out["date"] = pd.to_datetime(out.pop("day") * DAY_NS, unit="ns").dt.date
    return out[["meter_id", "date", "kwh", "coverage"]]


def _kwh_per_day(frame: pd.DataFrame) -> pd.Series:
    """Use per day scaled for coverage: observed kWh / observed days."""
    hh = half_hourly_frame(frame)
    g = hh.groupby("meter_id")
    days = g["covered"].sum() / 48.0
    return (g["kwh"].sum() / days.where(days > 0)).rename("kwh_per_day")


def neighbour_comparison(frame: pd.DataFrame, meters: pd.DataFrame, *, min_peers: int = 5,
                         efficient_share: float = EFFICIENT_SHARE) -> pd.DataFrame:
    """Each meter's use per day against similar homes: same ``area`` and ``group``.

    ``meters`` has ``meter_id``, ``area`` and ``group``. When an area has fewer than
    ``min_peers`` homes of the group, the comparison widens to the group in all areas
    (``scope`` says which). ``percentile`` is the share of peers using less (0 = least);
    ``efficient_kwh_per_day`` is the boundary of the best ``efficient_share``; ``rating`` is
    ``great`` (among the efficient), ``good`` (below the median) or ``above average``.
    """
    missing = {"meter_id", "area", "group"} - set(meters.columns)
    if missing:
        raise DataError(f"meters frame lacks columns {sorted(missing)}")
    use = _kwh_per_day(frame).reset_index()
    df = meters[["meter_id", "area", "group"]].merge(use, on="meter_id", how="inner")
    df = df[df["kwh_per_day"].notna()].copy()
    n_area = df.groupby(["area", "group"])["kwh_per_day"].transform("size")
    df["scope"] = np.where(n_area >= min_peers, "area", "group")
    df["_cell"] = np.where(df["scope"] == "area", df["area"].astype(str), "*")
    keys = [df["_cell"], df["group"]]
    g = df.groupby(keys)["kwh_per_day"]
    df["peers"] = g.transform("size")
    df["percentile"] = 100.0 * (g.rank(method="average") - 0.5) / df["peers"]
    df["efficient_kwh_per_day"] = g.transform("quantile", efficient_share)
    df["median_kwh_per_day"] = g.transform("median")
    df["vs_efficient_pct"] = 100.0 * (df["kwh_per_day"] / df["efficient_kwh_per_day"] - 1.0)
    df["rating"] = np.select(
        [df["kwh_per_day"] <= df["efficient_kwh_per_day"],
         df["kwh_per_day"] <= df["median_kwh_per_day"]], ["great", "good"], "above average")
    return df.drop(columns="_cell").sort_values("meter_id").reset_index(drop=True)


def weekly_trend(frame: pd.DataFrame, *, min_coverage: float = 0.8) -> pd.DataFrame:
    """Per meter and London week (Monday start): use per day and the change on the week before.

    ``change_pct`` is NaN unless both weeks are at least ``min_coverage`` observed.
    """
    hh = _with_clock(frame)
    monday = hh["day"] - (hh["day"] + 3) % 7
    g = hh.groupby([hh["meter_id"], monday.rename("week")], sort=True)
    out = pd.DataFrame({"kwh": g["kwh"].sum(), "coverage": g["covered"].sum() / (7 * 48.0)})
    out["kwh_per_day"] = out["kwh"] / (out["coverage"] * 7).where(out["coverage"] > 0)
    out = out.reset_index()
    prev = out.groupby("meter_id")[["week", "kwh_per_day", "coverage"]].shift(1)
    ok = ((prev["week"] == out["week"] - 7) & (prev["coverage"] >= min_coverage)
          & (out["coverage"] >= min_coverage))
    out["change_pct"] = np.where(ok, 100.0 * (out["kwh_per_day"] / prev["kwh_per_day"] - 1.0),
                                 np.nan)
    out["week_start"] = pd.to_datetime(out.pop("week") * DAY_NS, unit="ns").dt.date
    return out[["meter_id", "week_start", "kwh", "coverage", "kwh_per_day", "change_pct"]]


def unusual_days(frame: pd.DataFrame, *, threshold: float = 3.5, min_days: int = 14,
                 min_coverage: float = 0.95) -> pd.DataFrame:
    """Days far above the meter's own baseline: robust z = (kWh − median) / (1.4826 × MAD).

    Only days at least ``min_coverage`` observed count, and only meters with ``min_days`` such
    days are judged. Returns the flagged days: ``meter_id, date, kwh, baseline_kwh, robust_z``.
    """
    days = daily_use(frame)
    days = days[days["coverage"] >= min_coverage].copy()
    g = days.groupby("meter_id")["kwh"]
    days["baseline_kwh"] = g.transform("median")
    mad = (days["kwh"] - days["baseline_kwh"]).abs().groupby(days["meter_id"]).transform(
        "median")
    scale = 1.4826 * mad
    floor = 0.05 * days["baseline_kwh"].abs() + 1e-6  # a dead-flat meter has MAD 0
    days["robust_z"] = (days["kwh"] - days["baseline_kwh"]) / np.maximum(scale, floor)
    enough = g.transform("size") >= min_days
    flagged = days[enough & (days["robust_z"] > threshold)]
    return flagged[["meter_id", "date", "kwh", "baseline_kwh", "robust_z"]].reset_index(
        drop=True)
