"""The cost engine: what each meter's half-hourly use costs under each tariff.

Semantics (also in docs/tariffs.md):

- Readings are summed into UTC half-hours (:mod:`~smartmeter_lib.insights.halfhours`). In each
  half-hour the net import is priced at the tariff's unit rate if positive; if negative (solar
  export) its size is paid at the export rate.
- ``coverage`` is the share of the period's time covered by readings. Missing half-hours are
  never priced as zero use: the ``*_gbp`` costs are for the observed half-hours only, and
  ``est_total_gbp`` scales the observed energy cost by ``1 / coverage`` (missing half-hours are
  assumed to cost, on average, what the observed ones did) before adding the standing charge.
- The standing charge is for the whole period (1/48 of the day's charge per half-hour).
- A tariff with no price for an observed half-hour (e.g. the 2013 dToU schedule in 2025) gets
  NaN costs for that meter and period; ``unpriced_share`` says how much was unpriced.
- Periods (``by``) are UTC calendar days, ISO weeks (Monday 00:00 UTC) or calendar months.

Everything is array arithmetic: one ``meters × half-hours`` matrix and one matrix product per
period and chunk of meters against a ``half-hours × tariffs`` rate matrix.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from smartmeter_lib.errors import ConfigError
from smartmeter_lib.insights.halfhours import SLOT_NS, HalfHours, half_hour_matrix
from smartmeter_lib.insights.tariffs import Tariff

log = logging.getLogger(__name__)

By = Literal["day", "week", "month"] | None
COST_COLUMNS = ["meter_id", "tariff", "period_start", "period_end", "kwh", "export_kwh",
                "unit_cost_gbp", "standing_charge_gbp", "export_credit_gbp", "total_gbp",
                "coverage", "est_total_gbp", "unpriced_share"]
CHUNK_CELLS = 8_000_000  #: meters × half-hours per matrix product (bounds the temporaries)


@dataclass(frozen=True)
class RateMatrix:
    """Tariffs evaluated on a half-hour grid: p/kWh (NaN = no price) and standing p per slot."""

    ids: list[str]
    unit: npt.NDArray[np.float64]  #: (slots, tariffs)
    standing: npt.NDArray[np.float64]  #: (slots, tariffs)
    export: npt.NDArray[np.float64]  #: (tariffs,) p/kWh

    @classmethod
    def build(cls, tariffs: Sequence[Tariff], times: pd.DatetimeIndex) -> RateMatrix:
        if not tariffs:
            raise ConfigError("no tariffs to price: give --tariff FILE or use the catalogue")
        ids = [t.id for t in tariffs]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"tariff ids must be distinct, got {ids}")
        unit = np.column_stack([t.unit_rates(times) for t in tariffs])
        standing = np.column_stack([t.standing_per_slot(times) for t in tariffs])
        return cls(ids, unit, standing, np.array([t.export_p_per_kwh for t in tariffs]))


def period_slices(start_ns: int, n_slots: int, by: By) -> list[tuple[int, int]]:
    """``[a, b)`` slot ranges of the UTC days, ISO weeks or months within the grid."""
    if by is None:
        return [(0, n_slots)]
    freq = {"day": "D", "week": "W-MON", "month": "MS"}.get(by)
    if freq is None:
        raise ConfigError(f"by must be day, week, month or None, got {by!r}")
    start = pd.Timestamp(start_ns, tz="UTC")
    end = start + pd.Timedelta(n_slots * SLOT_NS, "ns")
    edges = pd.date_range(start.floor("D"), end, freq=freq)
    cuts = sorted({0, n_slots} | {int((e.value - start_ns) // SLOT_NS) for e in edges
                                  if start_ns < e.value < end.value})
    return list(itertools.pairwise(cuts))


def cost_table(data: pd.DataFrame | HalfHours, tariffs: Sequence[Tariff], start: Any = None,
               end: Any = None, by: By = None) -> pd.DataFrame:
    """Cost of every meter under every tariff, one row per meter, tariff and period.

    ``data`` is a readings frame (``meter_id, ts, kwh, interval_s``) or a :class:`HalfHours`
    matrix; ``[start, end)`` defaults to the whole UTC days the data spans. Columns:
    :data:`COST_COLUMNS` (kWh, £, coverage 0..1).
    """
    hh = data if isinstance(data, HalfHours) else half_hour_matrix(data, start, end)
    rates = RateMatrix.build(tariffs, hh.times)
    parts = [_price_chunk(hh.take_meters(slice(r0, r0 + step)), rates, by)
             for r0, step in _chunks(len(hh.meters), hh.n_slots)]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COST_COLUMNS)
    for tid in rates.ids:
        bad = out.loc[out["tariff"] == tid, "unpriced_share"]
        if len(bad) and bad.max() > 0:
            log.warning("tariff %s has no price for some observed half-hours (up to %.0f%% of "
                        "a meter's); those costs are NaN", tid, 100 * bad.max())
    return out


def _chunks(n_meters: int, n_slots: int) -> list[tuple[int, int]]:
    step = max(1, CHUNK_CELLS // max(n_slots, 1))
    return [(r0, step) for r0 in range(0, n_meters, step)]


def _price_chunk(hh: HalfHours, rates: RateMatrix, by: By) -> pd.DataFrame:
    imp = np.maximum(hh.kwh, 0.0)
    exp = np.maximum(-hh.kwh, 0.0)
    seen = (hh.covered > 0).astype(np.float64)
    nan = np.isnan(rates.unit)
    unit0 = np.where(nan, 0.0, rates.unit)
    m, k = len(hh.meters), len(rates.ids)
    cols: dict[str, list[npt.NDArray[Any]]] = {c: [] for c in COST_COLUMNS}
    for a, b in period_slices(hh.start_ns, hh.n_slots, by):
        unit_p = imp[:, a:b] @ unit0[a:b]  # (m, k)
        unpriced = seen[:, a:b] @ nan[a:b].astype(np.float64)
        n_seen = seen[:, a:b].sum(axis=1)
        unit_p[unpriced > 0] = np.nan
        kwh = imp[:, a:b].sum(axis=1)
        exp_kwh = exp[:, a:b].sum(axis=1)
        coverage = hh.covered[:, a:b].sum(axis=1, dtype=np.float64) / (b - a)
        standing_p = np.broadcast_to(rates.standing[a:b].sum(axis=0), (m, k))
        credit_p = exp_kwh[:, None] * rates.export[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            est = np.where(coverage[:, None] > 0,
                           (unit_p - credit_p) / coverage[:, None] + standing_p, np.nan)
            unpriced_share = np.where(n_seen[:, None] > 0, unpriced / n_seen[:, None], 0.0)
        t0 = pd.Timestamp(hh.start_ns + a * SLOT_NS, tz="UTC")
        t1 = pd.Timestamp(hh.start_ns + b * SLOT_NS, tz="UTC")
        cols["meter_id"].append(np.repeat(hh.meters, k))
        cols["tariff"].append(np.tile(np.array(rates.ids, dtype=object), m))
        cols["period_start"].append(np.full(m * k, t0.value, dtype=np.int64))
        cols["period_end"].append(np.full(m * k, t1.value, dtype=np.int64))
        cols["kwh"].append(np.repeat(kwh, k))
        cols["export_kwh"].append(np.repeat(exp_kwh, k))
        cols["unit_cost_gbp"].append((unit_p / 100).ravel())
        cols["standing_charge_gbp"].append((standing_p / 100).ravel())
        cols["export_credit_gbp"].append((credit_p / 100).ravel())
        cols["total_gbp"].append(((unit_p + standing_p - credit_p) / 100).ravel())
        cols["coverage"].append(np.repeat(coverage, k))
        cols["est_total_gbp"].append((est / 100).ravel())
        cols["unpriced_share"].append(unpriced_share.ravel())
    out = pd.DataFrame({c: np.concatenate(v) for c, v in cols.items()})
    for c in ("period_start", "period_end"):
        out[c] = pd.to_datetime(out[c], unit="ns", utc=True)
    return out


def cost_pivot(costs: pd.DataFrame, value: str = "total_gbp") -> pd.DataFrame:
    """Meters × tariffs of one cost column (summed over periods; NaN stays NaN)."""
    table = costs.groupby(["meter_id", "tariff"], sort=True)[value].sum(min_count=1)
    return table.unstack("tariff")


def cheapest(costs: pd.DataFrame, value: str = "est_total_gbp") -> pd.Series:
    """The cheapest tariff of each meter (over the whole table); NaN costs are skipped."""
    table = cost_pivot(costs, value)
    some = table.notna().any(axis=1)
    best = table[some].idxmin(axis=1, skipna=True)
    return best.reindex(table.index).astype(object)
