"""Typical load profiles: the seasonal fact table and per-meter 96-bin day profiles.

A household's use is modelled as ``profile(day type, half-hour of the London clock day) ×
seasonal factor(date)``. The day types are *working day* and *weekend or bank holiday*; the
seasonal factor is :data:`MONTHLY_RELATIVE_USE`, interpolated between mid-months.

:data:`MONTHLY_RELATIVE_USE` is a stated fact table: relative daily electricity use of a GB
household without electric heating by month (mean 1), a smooth annual cycle of ±17% peaking in
mid-January, so January uses about 1.4 times as much per day as July. That is the winter/summer
contrast of Elexon's domestic unrestricted (profile class 1) load profiles, and the real LCL
sample MAC000002 shows a similar cycle (Jan-Mar / Jul-Aug ≈ 1.5 in 2013). Households differ
(LCL sample MAC000147 is almost flat), which is why recommendations report a confidence.

>>> round(float(seasonal_factor(pd.DatetimeIndex(["2025-01-15", "2025-07-16"], tz="UTC"))[0]
...             / seasonal_factor(pd.DatetimeIndex(["2025-07-16"], tz="UTC"))[0]), 2)
1.41
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from smartmeter_lib.insights import holidays as hol
from smartmeter_lib.insights.halfhours import SLOTS_PER_DAY, HalfHours, day_types, local_days

HOME_TZ = "Europe/London"  #: households live by the clock: profiles use London clock time
N_BINS = 2 * SLOTS_PER_DAY  #: working-day half-hours, then weekend/bank-holiday half-hours

#: relative daily use by calendar month (annual mean ≈ 1); see the module docstring
MONTHLY_RELATIVE_USE: dict[int, float] = {
    1: 1.17, 2: 1.15, 3: 1.09, 4: 1.00, 5: 0.92, 6: 0.85,
    7: 0.83, 8: 0.85, 9: 0.92, 10: 1.00, 11: 1.08, 12: 1.15,
}
_MID_DOY = np.array([15.5, 45.0, 74.5, 105.0, 135.5, 166.0, 196.5, 227.5, 258.0, 288.5, 319.0,
                     349.5])

#: blocks of the London clock day used to explain load shifting: name, first hour, end hour
BLOCKS: tuple[tuple[str, int, int], ...] = (
    ("night 00-07", 0, 7), ("day 07-16", 7, 16), ("peak 16-19", 16, 19),
    ("evening 19-24", 19, 24),
)


def seasonal_factor(times: pd.DatetimeIndex) -> npt.NDArray[np.float64]:
    """The seasonal factor of each time's London date (periodic interpolation of the table)."""
    local = times.tz_convert(HOME_TZ)
    doy = np.asarray(local.day_of_year, dtype=np.float64) - 0.5
    values = np.array([MONTHLY_RELATIVE_USE[m] for m in range(1, 13)])
    xp = np.concatenate([[_MID_DOY[-1] - 365.25], _MID_DOY, [_MID_DOY[0] + 365.25]])
    fp = np.concatenate([[values[-1]], values, [values[0]]])
    return np.asarray(np.interp(doy, xp, fp), dtype=np.float64)


def profile_bins(times: pd.DatetimeIndex) -> npt.NDArray[np.int64]:
    """Bin 0..95 of each time: (weekend or bank holiday) × 48 + London half-hour of the day."""
    day, minute = local_days(times, HOME_TZ)
    off = day_types(day, hol.as_day_numbers(hol.bank_holidays())) > 0
    return np.asarray(off * SLOTS_PER_DAY + minute // 30, dtype=np.int64)


def block_of_bin() -> npt.NDArray[np.int64]:
    """Which :data:`BLOCKS` entry each of the 96 bins falls in."""
    hour = (np.arange(N_BINS) % SLOTS_PER_DAY) / 2
    out = np.zeros(N_BINS, dtype=np.int64)
    for j, (_, lo, hi) in enumerate(BLOCKS):
        out[(hour >= lo) & (hour < hi)] = j
    return out


@dataclass(frozen=True)
class UnitSums:
    """Per meter, resampling unit (day or week) and bin: de-seasonalised kWh and coverage."""

    imp: npt.NDArray[np.float64]  #: (meters, units, bins) import kWh / seasonal factor
    exp: npt.NDArray[np.float64]  #: (meters, units, bins) export kWh / seasonal factor
    n: npt.NDArray[np.float64]  #: (meters, units, bins) covered half-hours
    unit: str  #: "week" or "day"


def unit_sums(hh: HalfHours, min_weeks: int = 4) -> UnitSums:
    """Sum a chunk of meters into resampling units × 96 bins (weeks if ``min_weeks`` fit)."""
    times = hh.times
    slots_per_unit = SLOTS_PER_DAY * 7 if hh.n_slots >= min_weeks * 7 * SLOTS_PER_DAY \
        else SLOTS_PER_DAY
    unit = np.arange(hh.n_slots) // slots_per_unit
    n_units = int(unit[-1]) + 1 if hh.n_slots else 0
    key = unit * N_BINS + profile_bins(times)
    m = len(hh.meters)
    flat = (np.arange(m, dtype=np.int64)[:, None] * (n_units * N_BINS) + key[None, :]).ravel()
    size = m * n_units * N_BINS
    seen = hh.covered.astype(np.float64)
    s = seasonal_factor(times)[None, :]

    def acc(weights: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        out = np.bincount(flat, weights=weights.ravel(), minlength=size)
        return np.asarray(out, dtype=np.float64).reshape(m, n_units, N_BINS)

    return UnitSums(acc(np.maximum(hh.kwh, 0) / s), acc(np.maximum(-hh.kwh, 0) / s), acc(seen),
                    "week" if slots_per_unit > SLOTS_PER_DAY else "day")


def fill_profile(a: npt.NDArray[np.float64], n: npt.NDArray[np.float64]
                 ) -> npt.NDArray[np.float64]:
    """Mean kWh per half-hour per bin (last axis, 96), filling bins without data.

    A bin with no data takes the same half-hour of the other day type, then the meter's
    overall mean; a meter without any data stays NaN.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        p = a / n
        both = (a[..., :SLOTS_PER_DAY] + a[..., SLOTS_PER_DAY:]) / \
            (n[..., :SLOTS_PER_DAY] + n[..., SLOTS_PER_DAY:])
        overall = a.sum(axis=-1, keepdims=True) / n.sum(axis=-1, keepdims=True)
    both2 = np.concatenate([both, both], axis=-1)
    p = np.where(n > 0, p, both2)
    return np.where(np.isnan(p), np.broadcast_to(overall, p.shape), p)
