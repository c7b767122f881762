"""Synthetic half-hourly readings of a fleet, for the tariff study notebook and the benchmark.

Not real data. Each home gets an Ofgem typical annual use (1,800 / 2,700 / 4,100 kWh, with
spread), an always-on baseload of 100-200 W, the fleet simulator's daily shape
(:func:`smartmeter_lib.simulate.fleet.daily_shape`) on the London clock with a later morning at
weekends, the seasonal cycle of :data:`~.profiles.MONTHLY_RELATIVE_USE`, and noise. Some homes
are archetypes that make tariffs differ: ``night_ev`` charges an EV 00:30-05:30 most nights,
``evening`` puts more use into 16:00-19:00, ``solar`` has a rooftop PV array whose output can
exceed use at midday (negative net import). A small share of half-hours is dropped (missing).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from smartmeter_lib.insights.halfhours import SLOTS_PER_DAY, local_days, slot_times
from smartmeter_lib.insights.profiles import HOME_TZ, seasonal_factor
from smartmeter_lib.simulate.fleet import daily_shape

ARCHETYPES = ("standard", "evening", "night_ev", "solar")
ARCHETYPE_SHARES = (0.55, 0.15, 0.15, 0.15)
CHUNK = 500


def synthetic_meters(n_meters: int, seed: int = 7, id_prefix: str = "SYN",
                     n_areas: int = 6) -> pd.DataFrame:
    """The homes: ``meter_id, archetype, annual_kwh, base_w, area, group``."""
    if n_meters < 1:
        raise ValueError(f"n_meters must be at least 1, got {n_meters}")
    rng = np.random.default_rng(seed)
    band = rng.choice(3, size=n_meters, p=[0.3, 0.45, 0.25])
    annual = np.array([1800.0, 2700.0, 4100.0])[band] * rng.lognormal(-0.15**2 / 2, 0.15,
                                                                      n_meters)
    return pd.DataFrame({
        "meter_id": [f"{id_prefix}{i:06d}" for i in range(n_meters)],
        "archetype": rng.choice(np.array(ARCHETYPES, dtype=object), size=n_meters,
                                p=ARCHETYPE_SHARES),
        "annual_kwh": annual,
        "base_w": np.minimum(rng.uniform(100, 200, n_meters), 0.6 * annual / 8.766),
        "area": [f"area-{a}" for a in rng.integers(0, n_areas, n_meters)],
        "group": np.where(band == 0, "flat", "house"),
        "phase_h": rng.normal(0.0, 0.6, n_meters),
    })


def _chunk_kwh(homes: pd.DataFrame, times: pd.DatetimeIndex, rng: np.random.Generator
               ) -> npt.NDArray[np.float64]:
    m, s = len(homes), len(times)
    day, minute = local_days(times, HOME_TZ)
    hour = minute / 60.0
    weekend = ((day + 3) % 7) >= 5
    season = seasonal_factor(times)
    arch = homes["archetype"].to_numpy()
    phase = homes["phase_h"].to_numpy()[:, None] - 1.0 * weekend[None, :]
    shape = daily_shape(hour[None, :] - phase)
    evening = (arch == "evening")[:, None] & (hour >= 16) & (hour < 19)
    shape = shape * np.where(evening, 1.8, 1.0)
    mean_kw = homes["annual_kwh"].to_numpy()[:, None] / 8766.0
    base_kw = homes["base_w"].to_numpy()[:, None] / 1000.0
    noise = rng.gamma(4.0, 0.25, (m, s))
    kw = (base_kw + (mean_kw - base_kw) * shape * noise) * season[None, :]
    n_days = int(day.max() - day.min()) + 1
    di = (day - day.min())[None, :]
    ev_night = rng.random((m, n_days)) < 0.6
    ev = (arch == "night_ev")[:, None] & np.take_along_axis(
        ev_night, np.broadcast_to(di, (m, s)), axis=1) & (minute >= 30) & (minute < 330)
    kw = kw + 1.2 * ev  # 1.2 kW for five hours: 6 kWh a charge
    solar = arch == "solar"
    if solar.any():
        summer = (2.0 - season) - 0.83  # ≈ 1 in July, ≈ 0 in January
        width = 2.2 + 1.8 * summer
        bell = np.exp(-0.5 * ((hour - 13.0) / width) ** 2) * (0.25 + 0.75 * summer)
        cloud = rng.uniform(0.2, 1.0, (int(solar.sum()), n_days))
        cloud_s = np.take_along_axis(cloud, np.broadcast_to(di, (int(solar.sum()), s)), axis=1)
        kw[solar] -= 3.5 * 0.8 * bell[None, :] * cloud_s  # 3.5 kWp array
    return kw * 0.5  # kWh per half-hour


def synthetic_readings(n_meters: int = 200, start: Any = "2025-01-01", days: int = 56,
                       seed: int = 7, missing: float = 0.01, *, homes: pd.DataFrame | None = None,
                       categorical_ids: bool = False) -> pd.DataFrame:
    """Half-hourly readings (``meter_id, ts, kwh, interval_s``) of synthetic homes.

    ``missing`` is the share of half-hours dropped at random; ``categorical_ids`` stores
    ``meter_id`` as a category (much less memory for large fleets).
    """
    homes = synthetic_meters(n_meters, seed) if homes is None else homes
    rng = np.random.default_rng(seed + 1)
    t0 = pd.Timestamp(start, tz="UTC") if pd.Timestamp(start).tzinfo is None else \
        pd.Timestamp(start).tz_convert("UTC")
    n_slots = days * SLOTS_PER_DAY
    times = slot_times(int(t0.as_unit("ns").value), n_slots)
    ids = pd.Categorical(homes["meter_id"])
    parts = []
    for r0 in range(0, len(homes), CHUNK):
        chunk = homes.iloc[r0:r0 + CHUNK]
        kwh = _chunk_kwh(chunk, times, rng)
        keep = rng.random(kwh.shape) >= missing
        rows, cols = np.nonzero(keep)
        parts.append(pd.DataFrame({
            "meter_id": pd.Categorical.from_codes(ids.codes[r0 + rows], ids.categories),
            "ts": pd.DatetimeIndex(times.asi8[cols].view("datetime64[ns]")).tz_localize("UTC"),
            "kwh": np.round(kwh[rows, cols], 4),
            "interval_s": np.full(len(rows), 1800, dtype=np.int32),
        }))
    out = pd.concat(parts, ignore_index=True)
    if not categorical_ids:
        out["meter_id"] = out["meter_id"].astype(object)
    return out
