"""Tariff recommendation: predict each meter's annual cost under each tariff from any history.

Method (docs/tariffs.md has the long form):

1. De-seasonalise the observed half-hours with :func:`~.profiles.seasonal_factor` and average
   them into a 96-bin typical day (working day / weekend-or-holiday × London half-hour), import
   and export separately. Missing half-hours are left out, never read as zero.
2. Project the profile onto every half-hour of the target ``year`` (times the seasonal factor)
   and price it: because the projection is linear, each tariff reduces to 96 weights
   ``W[bin] = Σ seasonal(t) × rate(t)`` over the year, so the annual cost is one small matrix
   product (plus the year's standing charge, minus export credit).
3. Confidence: the history is resampled with replacement (weeks, or days when there are
   fewer than 4 weeks) ``n_boot`` times; the confidence is the share of resamples in which the
   recommended tariff is still the cheapest, and the saving gets a 10-90% range. It does not
   cover a household whose seasonal cycle differs from the fact table.
4. Load shifting: annual kWh per block of the day (:data:`~.profiles.BLOCKS`) and each
   tariff's own-mix average rate in each block give the smallest kWh a year moved from one
   block to another that would make another tariff cheaper than the recommended one, and the
   block that costs most above the tariff's average rate.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from smartmeter_lib.errors import ConfigError
from smartmeter_lib.insights.cost import RateMatrix
from smartmeter_lib.insights.halfhours import (
    SLOT_NS,
    SLOTS_PER_DAY,
    HalfHours,
    half_hour_matrix,
    slot_times,
    to_utc,
)
from smartmeter_lib.insights.profiles import (
    BLOCKS,
    N_BINS,
    block_of_bin,
    fill_profile,
    profile_bins,
    seasonal_factor,
    unit_sums,
)
from smartmeter_lib.insights.tariffs import Tariff

log = logging.getLogger(__name__)

DEFAULT_REFERENCE = "flat_cap_2025q3"
CHUNK_METERS = 256


@dataclass(frozen=True)
class YearWeights:
    """Tariffs reduced to 96-bin weights over a projection year."""

    year: int
    ids: list[str]
    w: npt.NDArray[np.float64]  #: (bins, tariffs) Σ seasonal × p/kWh (NaN if a rate is missing)
    e: npt.NDArray[np.float64]  #: (bins,) Σ seasonal
    standing_p: npt.NDArray[np.float64]  #: (tariffs,) the year's standing charge, p
    export: npt.NDArray[np.float64]  #: (tariffs,) p/kWh

    @classmethod
    def build(cls, tariffs: Sequence[Tariff], year: int) -> YearWeights:
        start = to_utc(f"{year}-01-01")
        n = int((to_utc(f"{year + 1}-01-01") - start).total_seconds()) * 10**9 // SLOT_NS
        times = slot_times(int(start.value), n)
        rates = RateMatrix.build(tariffs, times)
        s = seasonal_factor(times)
        bins = profile_bins(times)
        w = np.column_stack([np.bincount(bins, weights=s * rates.unit[:, k], minlength=N_BINS)
                             for k in range(len(rates.ids))]).astype(np.float64)
        for k, tid in enumerate(rates.ids):
            if np.isnan(rates.unit[:, k]).any():
                log.warning("tariff %s has no prices for part of %d: its annual costs are NaN",
                            tid, year)
        e = np.bincount(bins, weights=s, minlength=N_BINS).astype(np.float64)
        return cls(year, rates.ids, w, e,
                   rates.standing.sum(axis=0), rates.export)

    def annual_p(self, p_imp: npt.NDArray[np.float64], p_exp: npt.NDArray[np.float64]
                 ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Annual unit cost and export credit (p, ``(..., tariffs)``) of 96-bin profiles."""
        unit = p_imp @ self.w
        credit = (p_exp @ self.e)[..., None] * self.export
        return unit, credit


@dataclass(frozen=True)
class Recommendation:
    """``summary``: one row per meter; ``annual``: meter × tariff; ``blocks``: × block."""

    summary: pd.DataFrame
    annual: pd.DataFrame
    blocks: pd.DataFrame


def default_year(hh: HalfHours) -> int:
    """The calendar year of the middle of the observed half-hours."""
    seen = np.flatnonzero(hh.covered.any(axis=0))
    if not len(seen):
        raise ConfigError("no observed half-hours to project from")
    mid = (seen[0] + seen[-1]) // 2
    return int(pd.Timestamp(hh.start_ns + int(mid) * SLOT_NS, tz="UTC").year)


def recommend(data: pd.DataFrame | HalfHours, tariffs: Sequence[Tariff], *,
              reference: str | Mapping[str, str] | None = None, year: int | None = None,
              n_boot: int = 200, seed: int = 0, start: Any = None, end: Any = None
              ) -> Recommendation:
    """Recommend the cheapest tariff for each meter over a projected ``year``.

    ``reference`` is the current tariff id (one for all, or per meter) savings are measured
    against; by default the flat price-cap tariff if given, else the first tariff.
    """
    hh = data if isinstance(data, HalfHours) else half_hour_matrix(data, start, end)
    if n_boot < 0:
        raise ConfigError(f"n_boot must be 0 or more, got {n_boot}")
    yw = YearWeights.build(tariffs, year if year is not None else default_year(hh))
    ref = _reference(reference, yw.ids, hh.meters)
    rng = np.random.default_rng(seed)
    parts = [_chunk(hh.take_meters(slice(r0, r0 + CHUNK_METERS)), yw, ref[r0:r0 + CHUNK_METERS],
                    n_boot, rng) for r0 in range(0, len(hh.meters), CHUNK_METERS)]
    if not parts:
        raise ConfigError("no meters to recommend for")
    return Recommendation(*(pd.concat([p[i] for p in parts], ignore_index=True)
                            for i in range(3)))


def _reference(reference: str | Mapping[str, str] | None, ids: list[str],
               meters: npt.NDArray[np.object_]) -> npt.NDArray[np.int64]:
    if reference is None:
        reference = DEFAULT_REFERENCE if DEFAULT_REFERENCE in ids else ids[0]
    names = [reference] * len(meters) if isinstance(reference, str) else \
        [reference.get(str(m), DEFAULT_REFERENCE if DEFAULT_REFERENCE in ids else ids[0])
         for m in meters]
    unknown = sorted(set(names) - set(ids))
    if unknown:
        raise ConfigError(f"reference tariff {unknown[0]!r} is not among the tariffs {ids}")
    return np.array([ids.index(n) for n in names], dtype=np.int64)


def _resample(sums_n: npt.NDArray[np.float64], n_boot: int, rng: np.random.Generator
              ) -> npt.NDArray[np.float64]:
    """Counts (boot, meters, units): each meter's observed units drawn with replacement."""
    m, u = sums_n.shape
    observed = sums_n > 0
    k = observed.sum(axis=1)
    order = np.argsort(~observed, axis=1, kind="stable")  # observed units first
    draw = np.floor(rng.random((n_boot, m, u)) * np.maximum(k, 1)[None, :, None]).astype(int)
    chosen = np.take_along_axis(np.broadcast_to(order, (n_boot, m, u)), draw, axis=2)
    valid = np.broadcast_to(np.arange(u)[None, None, :] < k[None, :, None], chosen.shape)
    flat = (np.arange(n_boot * m)[:, None] * u).reshape(n_boot, m, 1) + chosen
    counts = np.bincount(flat[valid], minlength=n_boot * m * u).reshape(n_boot, m, u)
    return counts.astype(np.float64)


def _chunk(hh: HalfHours, yw: YearWeights, ref: npt.NDArray[np.int64], n_boot: int,
           rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    sums = unit_sums(hh)
    p_imp = fill_profile(sums.imp.sum(axis=1), sums.n.sum(axis=1))  # (m, bins)
    p_exp = fill_profile(sums.exp.sum(axis=1), sums.n.sum(axis=1))
    unit, credit = yw.annual_p(p_imp, p_exp)
    cost = unit - credit + yw.standing_p  # (m, k) p
    m, k = cost.shape
    rows = np.arange(m)
    valid = ~np.isnan(cost)
    best = np.where(valid.any(axis=1), np.nanargmin(np.where(valid, cost, np.inf), axis=1), -1)
    second = np.argsort(np.where(valid, cost, np.inf), axis=1)[:, 1] if k > 1 else best
    n_units = (sums.n.sum(axis=2) > 0).sum(axis=1)
    lo = hi = np.full((m, k), np.nan)
    share = np.full((m, k), np.nan)
    save_lo = save_hi = np.full(m, np.nan)
    if n_boot > 0:
        c = _resample(sums.n.sum(axis=2), n_boot, rng).transpose(1, 0, 2)  # (m, boot, units)
        bn = np.matmul(c, sums.n)
        bi = fill_profile(np.matmul(c, sums.imp), bn)
        be = fill_profile(np.matmul(c, sums.exp), bn)
        bu, bc = yw.annual_p(bi, be)
        boot = (bu - bc + yw.standing_p).transpose(1, 0, 2)  # (boot, m, k)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN tariffs stay NaN
            lo, hi = np.nanpercentile(boot, [10, 90], axis=0)
        arg = np.argmin(np.where(np.isnan(boot), np.inf, boot), axis=2)
        share = (arg[..., None] == np.arange(k)).mean(axis=0)
        saving_r = boot[:, rows, ref] - boot[:, rows, np.maximum(best, 0)]
        save_lo, save_hi = np.percentile(saving_r, [10, 90], axis=0)
        enough = n_units >= 2
        share[~enough] = np.nan
        save_lo[~enough] = save_hi[~enough] = np.nan
    ids = np.array(yw.ids, dtype=object)
    blocks = _blocks(hh.meters, p_imp, yw, ids)
    flip = _flip(cost, best, blocks, ids)
    bk = blocks["kwh"].to_numpy().reshape(m, k, len(BLOCKS))[:, 0, :]
    has = best >= 0
    pick = np.maximum(best, 0)
    summary = pd.DataFrame({
        "meter_id": hh.meters,
        "observed_days": hh.covered.sum(axis=1, dtype=np.float64) / SLOTS_PER_DAY,
        "resample_unit": sums.unit,
        "resampled_units": n_units,
        "year": yw.year,
        "annual_kwh": p_imp @ yw.e,
        "annual_export_kwh": p_exp @ yw.e,
        "recommended": _names(has, ids, pick),
        "recommended_cost_gbp": np.where(has, cost[rows, pick], np.nan) / 100,
        "reference": ids[ref],
        "reference_cost_gbp": cost[rows, ref] / 100,
        "saving_gbp": np.where(has, cost[rows, ref] - cost[rows, pick], np.nan) / 100,
        "saving_p10_gbp": save_lo / 100,
        "saving_p90_gbp": save_hi / 100,
        "confidence": np.where(has, share[rows, pick], np.nan),
        "runner_up": _names(has & (k > 1), ids, second),
        "margin_gbp": (cost[rows, second] - cost[rows, pick]) / 100,
        "peak_kwh": bk[:, 2],
        "peak_share": bk[:, 2] / np.maximum(bk.sum(axis=1), 1e-12),
        **flip,
    })
    annual = pd.DataFrame({
        "meter_id": np.repeat(hh.meters, k), "tariff": np.tile(ids, m),
        "annual_cost_gbp": (cost / 100).ravel(), "cost_p10_gbp": (lo / 100).ravel(),
        "cost_p90_gbp": (hi / 100).ravel(), "prob_cheapest": share.ravel(),
        "unit_cost_gbp": (unit / 100).ravel(),
        "standing_charge_gbp": np.tile(yw.standing_p / 100, m),
        "export_credit_gbp": (credit / 100).ravel(),
        "annual_kwh": np.repeat(p_imp @ yw.e, k),
    })
    return summary, annual, blocks


def _names(mask: npt.NDArray[np.bool_], names: npt.NDArray[np.object_],
           idx: npt.NDArray[Any]) -> npt.NDArray[np.object_]:
    """``names[idx]`` where ``mask``, else None."""
    out = np.full(len(mask), None, dtype=object)
    out[mask] = names[np.asarray(idx)[mask]]
    return out


def _blocks(meters: npt.NDArray[np.object_], p_imp: npt.NDArray[np.float64], yw: YearWeights,
            ids: npt.NDArray[np.object_]) -> pd.DataFrame:
    """Annual kWh and own-mix average p/kWh per meter, tariff and block of the day."""
    onehot = (block_of_bin()[:, None] == np.arange(len(BLOCKS))[None, :]).astype(np.float64)
    kwh = (p_imp * yw.e) @ onehot  # (m, blocks)
    spend = np.einsum("mb,bk,bj->mkj", p_imp, yw.w, onehot)  # (m, k, blocks) p
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = spend / kwh[:, None, :]
    m, k, nb = rate.shape
    return pd.DataFrame({
        "meter_id": np.repeat(meters, k * nb), "tariff": np.tile(np.repeat(ids, nb), m),
        "block": np.tile(np.array([b[0] for b in BLOCKS], dtype=object), m * k),
        "kwh": np.repeat(kwh[:, None, :], k, axis=1).ravel(), "avg_rate_p": rate.ravel(),
    })


def _flip(cost: npt.NDArray[np.float64], best: npt.NDArray[np.int64], blocks: pd.DataFrame,
          ids: npt.NDArray[np.object_]) -> dict[str, Any]:
    """Smallest annual kWh moved between blocks that makes another tariff the cheapest.

    A move must save money under that other tariff (from a dearer block of it to a cheaper
    one) and cannot move more than the meter uses in the block.
    """
    m, k = cost.shape
    nb = len(BLOCKS)
    rate = blocks["avg_rate_p"].to_numpy().reshape(m, k, nb)
    kwh = blocks["kwh"].to_numpy().reshape(m, k, nb)[:, 0, :]
    rows = np.arange(m)
    pick = np.maximum(best, 0)
    delta = cost - cost[rows, pick][:, None]  # (m, k) ≥ 0
    gain = rate[:, :, :, None] - rate[:, :, None, :]  # (m, k, from, to) saving per kWh moved
    net = gain - gain[rows, pick][:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = delta[:, :, None, None] / net
    # only moves that save money on the new tariff itself (its dear block to a cheaper one)
    ok = (gain > 1e-9) & (net > 1e-9) & (q <= kwh[:, None, :, None]) & np.isfinite(q)
    ok &= (np.arange(k)[None, :] != pick[:, None])[:, :, None, None]
    q = np.where(ok, q, np.inf).reshape(m, -1)
    arg = q.argmin(axis=1)
    found = np.isfinite(q[rows, arg]) & (best >= 0)
    t, f, to = np.unravel_index(arg, (k, nb, nb))
    names = np.array([b[0] for b in BLOCKS], dtype=object)
    own = rate[rows, pick]  # (m, blocks) p/kWh under the recommended tariff
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.nansum(own * kwh, axis=1) / kwh.sum(axis=1)
    above = np.nan_to_num(kwh * (own - mean[:, None]), nan=-np.inf)  # p above the average
    return {
        "costliest_block": _names(best >= 0, names, above.argmax(axis=1)),
        "flip_tariff": _names(found, ids, t),
        "flip_kwh": np.where(found, q[rows, arg], np.nan),
        "flip_from": _names(found, names, f),
        "flip_to": _names(found, names, to),
    }
