"""The household fleet: archetype homes over Greater London at 1-second resolution.

A home's net power at second t is the sum of

- an always-on baseload and a fridge-freezer compressor (a square wave, 40-60 min period);
- smooth parts recomputed once a minute: "activity" (TV, computers, chargers) following its
  occupancy curve with a season factor, a day factor and minute-to-minute noise; lighting
  (occupancy × darkness, so more on winter evenings); plug-in heaters on cold days; a heat pump
  following temperature; minus rooftop PV generation;
- scheduled appliance uses (kettle, oven, washing machine, shower, ...), night-storage and
  immersion charging on Economy 7, and EV charging (:mod:`smartmeter_lib.simulate.appliances`);
- a ±2% per-second jitter.

Behaviour follows UK clock time, with per-home shifts of about half an hour. Everything is a
deterministic function of (seed, home, time): the schedule of a day comes from a generator
seeded by (seed, day) and noise from :func:`~smartmeter_lib.simulate.weather.hash_uniform`, so
a reading does not depend on when the simulation started. Generation is vectorised over homes;
the per-second work is a handful of numpy operations on arrays of length n.

Grid events (:mod:`smartmeter_lib.simulate.events`) change what the meters send.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from smartmeter_lib.model import MeterInfo, ReadingBatch
from smartmeter_lib.simulate import weather as wx
from smartmeter_lib.simulate.appliances import (
    ACTIVITY,
    CATALOGUE,
    COMMUTER,
    HOME,
    TIMING,
    WEEKEND,
    Events,
    EventTimeline,
    draw_minutes,
    explode,
    weekday_factor,
)
from smartmeter_lib.simulate.archetypes import (
    EV_SESSION_KWH,
    STORAGE_SPACE_SHARE,
    households_frame,
    sample_households,
)
from smartmeter_lib.simulate.events import GridEvent, GridEventSet
from smartmeter_lib.simulate.placement import encode_geohash, place_homes

log = logging.getLogger(__name__)
FloatArray = npt.NDArray[np.float64]
_DAY = 86_400
_JITTER_LEN = 65_521  # a prime, so the jitter sequences of homes do not line up
_E7_WINDOW_S = 7 * 3600


@dataclass(frozen=True)
class SimStep:
    """One second: what the meters send, and the true energy of every home."""

    batch: ReadingBatch
    true_kwh: FloatArray


class HouseholdFleet:
    """``n`` simulated homes; ``readings(ts_s)`` gives every message of one second.

    >>> fleet = HouseholdFleet(20, seed=3)
    >>> batch = fleet.readings(1_736_960_400)  # 2025-01-15 17:00 UTC
    >>> len(batch), int(batch.interval_s[0]), sorted(fleet.households.columns)[:2]
    (20, 1, ['acorn_group', 'annual_kwh'])
    """

    def __init__(self, n: int, seed: int = 42, *, id_prefix: str = "SM",
                 mix: Mapping[str, float] | None = None,
                 bounds: tuple[float, float, float, float] | None = None) -> None:
        if n < 1:
            raise ValueError(f"a fleet needs at least one home, got {n}")
        self.n = n
        self.seed = seed = int(seed) % 2**63  # numpy's seed sequences take no negatives
        rng = np.random.default_rng([seed, 0x40])
        lat, lon = place_homes(n, rng, bounds)
        ids = np.array([f"{id_prefix}{i:07d}" for i in range(n)], dtype=object)
        self.meters = MeterInfo(ids, lat, lon, encode_geohash(lat, lon, 7))
        self.params = sample_households(n, rng, mix)
        hh = households_frame(self.params)
        hh.insert(0, "meter_id", ids)
        hh["lat"], hh["lon"] = lat, lon
        hh["area"] = encode_geohash(lat, lon, 6)
        self.households = hh
        self.weather = wx.Weather(seed)
        self.grid = GridEventSet(n, seed)
        self.timeline = EventTimeline(n, self._day_events)
        self._home = np.arange(n, dtype=np.int64)
        jrng = np.random.default_rng([seed, 0x717])
        self._jitter = 1.0 + 0.02 * (jrng.random(_JITTER_LEN) - jrng.random(_JITTER_LEN))
        self._jitter_off = jrng.integers(0, _JITTER_LEN, n)
        self._minute: int | None = None
        self._smooth = np.zeros(n)
        self._pv: FloatArray | None = None
        self._norm_cache: dict[int, dict[str, FloatArray | float]] = {}
        self._day_factor = functools.lru_cache(maxsize=4)(self._day_factor_uncached)

    # -- grid events ---------------------------------------------------------------------
    def set_events(self, events: list[GridEvent]) -> None:
        """Schedule grid events (replaces any scheduled before)."""
        for e in events:
            if len(e.homes) and (e.homes.min() < 0 or e.homes.max() >= self.n):
                raise ValueError(f"event {e.event_id} names homes outside the fleet")
        self.grid = GridEventSet(self.n, self.seed, list(events))

    @property
    def labels(self) -> pd.DataFrame:
        """Ground truth of the scheduled events: one row per (event, meter)."""
        return self.grid.labels(self.meters)

    # -- the load model ------------------------------------------------------------------
    def _year_norms(self, year: int) -> dict[str, FloatArray | float]:
        if year not in self._norm_cache:
            self._norm_cache[year] = self._compute_year_norms(year)
        return self._norm_cache[year]

    def _compute_year_norms(self, year: int) -> dict[str, FloatArray | float]:
        a, b = wx.year_bounds(year)
        t = np.arange(a, b, 600, dtype=np.int64)
        s, e = wx.bst_bounds(year)
        local = t + np.where((t >= s) & (t < e), 3600, 0)
        minute = (local % _DAY) // 60
        weekend = ((local // _DAY + 3) % 7) >= 5
        dark = self.weather.darkness(t)
        cold = self.weather.heating_degrees(t)
        light, plug = np.zeros(2), np.zeros(2)
        for k in (COMMUTER, HOME):
            occ = np.where(weekend, ACTIVITY[WEEKEND, minute], ACTIVITY[k, minute])
            light[k] = float((occ * dark).mean())
            plug[k] = float((occ * cold).mean())
        hours = (b - a) / 3600.0
        return {"light": light, "plug": plug, "hours": hours,
                "hp": self.weather.year_norms(year)["hp"]}

    def _day_factor_uncached(self, day: int) -> FloatArray:
        return np.asarray(0.8 + 0.4 * wx.hash_uniform(self.seed ^ 0xDA1, self._home, day))

    def _smooth_kw(self, minute: int) -> FloatArray:
        """Baseload and the smooth parts, for one minute (UTC minute number)."""
        p = self.params
        t = minute * 60 + 30
        off = wx.uk_offset_s(t)
        day = (t + off) // _DAY
        lm = ((t + off) % _DAY) // 60
        ptype = np.full(self.n, WEEKEND) if wx.is_weekend(day) else p.weekday_type
        occ = ACTIVITY[ptype, (lm + p.phase_min) % 1440]
        norms = self._year_norms(wx.year_of(t))
        hours = float(norms["hours"])
        light_n = np.asarray(norms["light"])[p.weekday_type]
        plug_n = np.asarray(norms["plug"])[p.weekday_type]
        doy = (t / _DAY) % 365.2425
        season = 1.0 + 0.1 * np.cos(2 * np.pi * (doy - 15.0) / 365.2425)
        noise = 0.75 + 0.5 * wx.hash_uniform(self.seed ^ 0x313, self._home, minute)
        act = p.activity_kwh / hours * occ * season * self._day_factor(day) * noise
        kw = p.base_kw + act
        dark = float(self.weather.darkness(t))
        if dark > 0:
            kw += p.light_kwh / hours * occ * dark / light_n
        cold = float(self.weather.heating_degrees(t))
        if cold > 0:
            kw += p.plug_heat_kwh / hours * occ * cold / plug_n
        hp = float(self.weather.heat_pump_load(t, lm / 60.0)) * float(norms["hp"])
        kw += np.where(p.heating == "heat_pump", p.heat_kwh / hours * hp, 0.0)
        pv = self.weather.pv_kw_per_kwp(t)
        self._pv = p.pv_kwp * pv if pv > 0 else None
        return np.asarray(kw)

    def _day_events(self, day: int) -> Events:
        """Appliance, storage-heater and EV events of one UK day (vectorised over homes)."""
        p = self.params
        rng = np.random.default_rng([self.seed, day % 2**32, 0xDA7])
        mid = wx.local_midnight(day)
        weekend = wx.is_weekend(day)
        ptype = np.full(self.n, WEEKEND) if weekend else p.weekday_type
        parts = []
        for k, a in enumerate(CATALOGUE):
            lam = p.appliance_rate[k] * (a.weekend if weekend else weekday_factor(a))
            homes = np.repeat(self._home, rng.poisson(lam)).astype(np.int32)
            m = len(homes)
            minute = draw_minutes(TIMING[a.timing], ptype[homes], rng.random(m))
            sec = (minute * 60 + rng.integers(0, 60, m) + p.phase_min[homes] * 60) % _DAY
            length = np.maximum(np.rint(rng.uniform(*a.minutes, m) * 60), 1).astype(np.int64)
            parts.append(explode(a, homes, mid + sec, length, rng.uniform(*a.kw, m)))
        # EV charging: about one session in 2-3 days, on arrival or on a smart night tariff
        mean_session = sum(EV_SESSION_KWH) / 2
        charge = p.ev & (rng.random(self.n) < p.ev_kwh / (365.0 * mean_session))
        energy = rng.uniform(*EV_SESSION_KWH, self.n)
        arrive = np.clip(rng.normal(18.3, 1.2, self.n), 15.0, 22.5) * 3600
        night = 23.5 * 3600 + rng.uniform(0, 2700, self.n)
        start = mid + np.where(p.ev_smart, night, arrive).astype(np.int64)
        dur = np.rint(energy / np.maximum(p.ev_kw, 0.1) * 3600).astype(np.int64)
        h = np.flatnonzero(charge)
        parts.append(Events.make(h, start[h], start[h] + dur[h], p.ev_kw[h]))
        # night storage and immersion: in the Economy 7 window, 00:00-07:00 GMT
        sto = np.flatnonzero(p.heating == "storage")
        if len(sto):
            e7 = day * _DAY
            space = STORAGE_SPACE_SHARE * p.heat_kwh[sto] * self.weather.heating_share(day)
            d1 = np.rint(space / p.storage_kw[sto] * 3600).astype(np.int64)
            s1 = e7 + (rng.random(len(sto)) * np.maximum(_E7_WINDOW_S - d1, 0)).astype(np.int64)
            water = (1 - STORAGE_SPACE_SHARE) * p.heat_kwh[sto] / 365.0
            d2 = np.rint(water / 3.0 * 3600).astype(np.int64)
            s2 = e7 + (rng.random(len(sto)) * np.maximum(_E7_WINDOW_S - d2, 0)).astype(np.int64)
            parts.append(Events.make(sto, s1, s1 + d1, p.storage_kw[sto]))
            parts.append(Events.make(sto, s2, s2 + d2, 3.0))
        return Events.concat(parts)

    # -- per second ----------------------------------------------------------------------
    def power_kw(self, ts_s: int, net: bool = True) -> FloatArray:
        """True power (kW) of every home during second ``ts_s``, grid events included (no
        power in an outage). ``net``: import minus rooftop PV generation (negative when a home
        exports), else consumption alone."""
        ts_s = int(ts_s)
        minute = ts_s // 60
        if minute != self._minute:
            self._smooth = self._smooth_kw(minute)
            self._minute = minute
        p = self.params
        watts = self.timeline.watts(ts_s, wx.local_day(ts_s))
        phase = self.grid.fridge_phase(ts_s, p.fridge_phase_s, p.fridge_period_s)
        fridge = ((ts_s + phase) % p.fridge_period_s) < p.fridge_on_s
        kw = self._smooth + fridge * p.fridge_kw + watts * 0.001
        kw *= self._jitter[(self._jitter_off + ts_s) % _JITTER_LEN]
        if net and self._pv is not None:
            kw -= self._pv
        off = self.grid.powered_off(ts_s)
        if off is not None:
            kw[off] = 0.0
        return np.asarray(kw)

    def step(self, ts_s: int) -> SimStep:
        """Every message of second ``ts_s`` (readings of meters that are not silent, plus
        LAST_GASP / POWER_RESTORE events with kwh 0) and the true energy of every home."""
        true_kwh = self.power_kw(ts_s) / 3600.0
        kwh = self.grid.metered(ts_s, true_kwh)
        batch = ReadingBatch.readings(self.meters.meter_id, ts_s * 1000, kwh, 1)
        silent = self.grid.silent(ts_s)
        if silent is not None:
            batch = batch.take(~silent)
        homes, kinds = self.grid.messages(ts_s)
        if len(homes):
            k = len(homes)
            ev = ReadingBatch(self.meters.meter_id[homes], np.full(k, ts_s * 1000, np.int64),
                              np.zeros(k), np.ones(k, np.uint16), kinds.astype(np.uint8))
            batch = ReadingBatch.concat([batch, ev])
        return SimStep(batch, true_kwh)

    def readings(self, ts_s: int) -> ReadingBatch:
        """Every message of second ``ts_s`` (see :meth:`step`)."""
        return self.step(ts_s).batch


def generation_rate(fleet: HouseholdFleet, start_s: int, seconds: int) -> dict[str, float]:
    """Readings generated per second of wall time (one core), over ``seconds`` of event time
    (the first day's schedule is built before the clock starts)."""
    fleet.readings(start_s - 1)
    t0 = time.perf_counter()
    total = 0
    for k in range(seconds):
        total += len(fleet.readings(start_s + k))
    wall = time.perf_counter() - t0
    return {"homes": fleet.n, "seconds": seconds, "readings": total, "wall_s": wall,
            "readings_per_s": total / wall, "realtime_factor": seconds / wall}
