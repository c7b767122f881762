"""Each meter's recent half-hourly profile, kept by the processor, and the energy insights
and tariff recommendation refreshed from it during the day (not only in batch).

The profile is a ring of the last ``days`` days of 30-minute rollups per meter (float32,
NaN where nothing was seen). :func:`ProfileKeeper.insights` is pure and vectorised over
meters; the processor calls it when half-hours close and writes the result to the live store
and history.

Clock: the stream works in UTC. Baseload uses 01:00-05:00 UTC and peak 16:00-19:00 UTC; in
British Summer Time that is an hour off the London clock (the batch insights in
``smartmeter_lib.insights.energy`` use the London clock).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from smartmeter_lib.model import MeterInfo, Rollup

log = logging.getLogger(__name__)
SLOT_MS = 1_800_000
SLOTS_PER_DAY = 48
NIGHT_SLOTS = range(2, 10)  # 01:00-05:00 UTC
PEAK_SLOTS = range(32, 38)  # 16:00-19:00 UTC
EFFICIENT_SHARE = 0.2  #: "efficient neighbours": the best 20% of similar homes nearby
UNUSUAL_MADS = 3.5  #: a day this many robust deviations above the meter's median is unusual
FLAT_RATE_P = 25.73  #: p/kWh, the Jul-Sep 2025 price cap: what the baseload costs a year
INSIGHT_COLUMNS = ["meter_id", "area", "baseload_w", "baseload_annual_gbp", "peak_share",
                   "kwh_per_day",
                   "area_percentile", "efficient_kwh_per_day", "days_seen",
                   "week_on_week_pct", "last_day_kwh", "unusual_last_day",
                   "recommended_tariff", "annual_saving_gbp"]


class ProfileKeeper:
    """The last ``days`` days of every meter's half-hourly kWh."""

    def __init__(self, meters: MeterInfo, days: int = 14, area_precision: int = 6) -> None:
        self.meters = meters
        self.days = days
        self.n_slots = days * SLOTS_PER_DAY
        self._index = pd.Index(meters.meter_id)
        self.kwh = np.full((len(meters), self.n_slots), np.nan, np.float32)
        self.slot_start = np.full(self.n_slots, -1, np.int64)  # which half-hour each column is
        self.area = np.array([str(g)[:area_precision] for g in meters.geohash], dtype=object)
        self.latest_ms: int | None = None

    def add(self, rollup: Rollup) -> int:
        """Put closed 30-minute rollups into the ring; returns how many rows were taken."""
        if rollup.resolution_s != 1800 or len(rollup) == 0:
            return 0
        idx = self._index.get_indexer(pd.Index(rollup.meter_id))
        ok = idx >= 0
        starts = rollup.window_start_ms[ok]
        col = (starts // SLOT_MS) % self.n_slots
        for c in np.unique(col):  # a column reused for a newer half-hour starts empty
            newest = int(starts[col == c].max())
            if self.slot_start[c] != newest:
                if self.slot_start[c] > newest:
                    continue  # older than the ring keeps
                self.kwh[:, c] = np.nan
                self.slot_start[c] = newest
        keep = self.slot_start[col] == starts
        self.kwh[idx[ok][keep], col[keep]] = rollup.kwh[ok][keep]
        top = int(starts.max()) if len(starts) else None
        if top is not None:
            self.latest_ms = top if self.latest_ms is None else max(self.latest_ms, top)
        return int(keep.sum())

    def _slot_of_day(self) -> npt.NDArray[np.int64]:
        return np.where(self.slot_start >= 0, (self.slot_start // SLOT_MS) % SLOTS_PER_DAY, -1)

    def insights(self, tariffs: Sequence[Any] = (), flat_tariff: str | None = None
                 ) -> pd.DataFrame:
        """Per meter: baseload (W), peak share, kWh per day, percentile among the meters of
        its geohash-6 area, the efficient neighbours' kWh per day and, with ``tariffs``, the
        cheapest tariff on this profile with its annual saving against ``flat_tariff``."""
        sod = self._slot_of_day()
        seen = ~np.isnan(self.kwh)
        days_seen = seen.sum(axis=1) / SLOTS_PER_DAY
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                night = np.isin(sod, NIGHT_SLOTS)
                base = np.nanpercentile(self.kwh[:, night], 10, axis=1) if night.any() else \
                    np.full(len(self.meters), np.nan)
                total = np.nansum(self.kwh, axis=1)
                peak = np.nansum(self.kwh[:, np.isin(sod, PEAK_SLOTS)], axis=1)
                per_day = np.where(days_seen > 0, total / np.maximum(days_seen, 1e-9), np.nan)
                share = np.where(total > 0, peak / total, np.nan)
        df = pd.DataFrame({"meter_id": self.meters.meter_id, "area": self.area,
                           "baseload_w": base * 2 * 1000,
                           "baseload_annual_gbp": base * 2 * 8766 * FLAT_RATE_P / 100,
                           "peak_share": share,
                           "kwh_per_day": per_day, "days_seen": days_seen})
        grp = df.groupby("area")["kwh_per_day"]
        df["area_percentile"] = grp.rank(pct=True) * 100
        df["efficient_kwh_per_day"] = grp.transform(lambda s: s.quantile(EFFICIENT_SHARE))
        self._days(df)
        df["recommended_tariff"] = None
        df["annual_saving_gbp"] = np.nan
        if tariffs and self.latest_ms is not None:
            self._recommend(df, tariffs, flat_tariff)
        return df[INSIGHT_COLUMNS]

    def _days(self, df: pd.DataFrame) -> None:
        """Whole UTC days: week-on-week change, and whether the last day was unusual."""
        n = len(self.meters)
        df["week_on_week_pct"] = np.nan
        df["last_day_kwh"] = np.nan
        df["unusual_last_day"] = False
        day = np.where(self.slot_start >= 0, self.slot_start // 86_400_000, -1)
        days = [d for d in np.unique(day[day >= 0])
                if (day == d).sum() == SLOTS_PER_DAY]  # only days the ring holds whole
        if not days:
            return
        sums = np.full((n, len(days)), np.nan)
        for j, d in enumerate(days):
            block = self.kwh[:, day == d]
            full = ~np.isnan(block).any(axis=1)
            sums[full, j] = block[full].sum(axis=1)
        df["last_day_kwh"] = sums[:, -1]
        if len(days) >= 14 and days[-1] - days[-14] == 13:
            this, prev = sums[:, -7:].sum(axis=1), sums[:, -14:-7].sum(axis=1)
            with np.errstate(all="ignore"):
                df["week_on_week_pct"] = np.where(prev > 0, (this - prev) / prev * 100, np.nan)
        if len(days) >= 6:
            hist = sums[:, :-1]
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(hist, axis=1)
                mad = np.nanmedian(np.abs(hist - med[:, None]), axis=1) * 1.4826
            df["unusual_last_day"] = (sums[:, -1] > med + UNUSUAL_MADS * np.maximum(
                mad, 0.05 * med)) & ~np.isnan(sums[:, -1])

    def _recommend(self, df: pd.DataFrame, tariffs: Sequence[Any],
                   flat_tariff: str | None) -> None:
        from smartmeter_lib.insights.cost import cheapest, cost_pivot, cost_table
        from smartmeter_lib.insights.halfhours import HalfHours

        order = np.argsort(self.slot_start, kind="stable")
        order = order[self.slot_start[order] >= 0]
        if len(order) == 0:
            return
        first = int(self.slot_start[order[0]])
        n = int((int(self.slot_start[order[-1]]) - first) // SLOT_MS) + 1
        kwh = np.zeros((len(self.meters), n))
        cov = np.zeros((len(self.meters), n), np.float32)
        pos = (self.slot_start[order] - first) // SLOT_MS
        block = self.kwh[:, order]
        kwh[:, pos] = np.nan_to_num(block)
        cov[:, pos] = ~np.isnan(block)
        hh = HalfHours(self.meters.meter_id, first * 1_000_000, kwh, cov)
        costs = cost_table(hh, tariffs)
        best = cheapest(costs)
        df["recommended_tariff"] = best.reindex(df["meter_id"]).to_numpy()
        table = cost_pivot(costs, "est_total_gbp")
        days = max(n / SLOTS_PER_DAY, 1e-9)
        if flat_tariff in table.columns:
            saving = (table[flat_tariff] - table.min(axis=1, skipna=True)) * 365.25 / days
            df["annual_saving_gbp"] = saving.reindex(df["meter_id"]).to_numpy()
