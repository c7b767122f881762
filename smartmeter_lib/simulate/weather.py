"""Clock, weather and sun for the household simulator: pure functions of time and seed.

- **Local time.** People keep UK clock time: GMT in winter, BST (UTC+1) from 01:00 UTC on the
  last Sunday of March to 01:00 UTC on the last Sunday of October. Economy 7 windows stay in GMT.
- **Temperature.** A London climatology (annual mean about 11.3 °C, January about 5 °C, July
  about 18 °C), a diurnal swing peaking mid-afternoon, and a seeded "synoptic" anomaly made of
  slow sinusoids (periods of days to weeks), so cold snaps last days, as they do.
- **Heating demand** is in degree-hours below 15.5 °C, the UK heating base temperature.
- **Sun and PV.** Solar elevation from declination and hour angle at 51.5° N; PV output per kWp
  is clear-sky times a seeded daily cloudiness, scaled so that a kWp yields about 950 kWh a year.
- **Noise.** ``hash_uniform`` gives reproducible uniform numbers from integer keys (a SplitMix64
  finaliser), so a reading at time t does not depend on which seconds were simulated before.

Every per-year normaliser is computed once per calendar year from these functions, so calibrated
annual energies hold exactly in expectation for each calendar year.
"""

from __future__ import annotations

import datetime as dt
import functools

import numpy as np
import numpy.typing as npt

LAT_DEG = 51.5
LON_DEG = -0.12
HEATING_BASE_C = 15.5
PV_KWH_PER_KWP = 950.0
_DAY = 86_400
FloatArray = npt.NDArray[np.float64]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def hash_uniform(seed: int, a: npt.ArrayLike, b: npt.ArrayLike = 0) -> FloatArray:
    """Uniform numbers in [0, 1), a deterministic function of ``(seed, a, b)`` (vectorised).

    >>> float(hash_uniform(1, 2, 3)) == float(hash_uniform(1, 2, 3))
    True
    """
    with np.errstate(over="ignore"):
        x = (np.asarray(a, dtype=np.int64).astype(np.uint64) * _GOLD
             ^ (np.asarray(b, dtype=np.int64).astype(np.uint64) + np.uint64(0x632BE59BD9B4E019))
             * _M2 ^ np.uint64(seed & 0xFFFFFFFFFFFFFFFF) * _M1)
        x = x ^ (x >> np.uint64(30))
        x = x * _M1
        x = x ^ (x >> np.uint64(27))
        x = x * _M2
        x = x ^ (x >> np.uint64(31))
    return np.asarray((x >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53))


# -- clock ---------------------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def bst_bounds(year: int) -> tuple[int, int]:
    """UTC seconds when British Summer Time starts and ends in ``year``."""
    def last_sunday(month: int) -> int:
        d = dt.date(year, month, 31)
        d -= dt.timedelta(days=(d.weekday() - 6) % 7)
        return int(dt.datetime(d.year, d.month, d.day, 1, tzinfo=dt.UTC).timestamp())
    return last_sunday(3), last_sunday(10)


def uk_offset_s(ts_s: int) -> int:
    """Seconds to add to UTC to get UK clock time (0 or 3600)."""
    year = dt.datetime.fromtimestamp(int(ts_s), dt.UTC).year
    start, end = bst_bounds(year)
    return 3600 if start <= ts_s < end else 0


def local_day(ts_s: int) -> int:
    """The UK calendar day of ``ts_s``, as days since 1970-01-01."""
    return (int(ts_s) + uk_offset_s(ts_s)) // _DAY


def local_midnight(day: int) -> int:
    """UTC seconds of 00:00 UK clock time on ``day`` (days since 1970-01-01)."""
    return day * _DAY - uk_offset_s(day * _DAY + 12 * 3600)


def is_weekend(day: int) -> bool:
    """Saturday or Sunday (1970-01-01 was a Thursday)."""
    return (day + 3) % 7 >= 5


def year_of(ts_s: int) -> int:
    return dt.datetime.fromtimestamp(int(ts_s), dt.UTC).year


def year_bounds(year: int) -> tuple[int, int]:
    a = int(dt.datetime(year, 1, 1, tzinfo=dt.UTC).timestamp())
    b = int(dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC).timestamp())
    return a, b


# -- weather -------------------------------------------------------------------------------
class Weather:
    """London weather for one seed: temperature, heating demand, sun and PV output."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        rng = np.random.default_rng([seed, 0x7EA7])
        self._periods = np.array([3.1, 5.3, 8.7, 13.9, 23.0]) * _DAY
        self._amps = np.array([1.0, 1.3, 1.4, 1.2, 0.9])  # sd of the sum about 2.5 °C
        self._phases = rng.uniform(0, 2 * np.pi, len(self._periods))
        self._norms: dict[int, dict[str, float]] = {}
        self._daily: dict[int, float] = {}
        self._year_total: dict[int, float] = {}

    def temperature(self, ts_s: npt.ArrayLike) -> FloatArray:
        """Outdoor temperature in °C."""
        t = np.asarray(ts_s, dtype=np.float64)
        doy = (t / _DAY) % 365.2425
        clim = 11.3 - 6.6 * np.cos(2 * np.pi * (doy - 18.0) / 365.2425)
        hour = (t % _DAY) / 3600.0
        diurnal = 3.2 * np.cos(2 * np.pi * (hour - 15.0) / 24.0)
        anomaly = np.zeros_like(t)
        for p, a, ph in zip(self._periods, self._amps, self._phases, strict=True):
            anomaly += a * np.sin(2 * np.pi * t / p + ph)
        return np.asarray(clim + diurnal + anomaly)

    def heating_degrees(self, ts_s: npt.ArrayLike) -> FloatArray:
        """Degrees below the 15.5 °C heating base (0 when warmer)."""
        return np.maximum(HEATING_BASE_C - self.temperature(ts_s), 0.0)

    def heat_pump_load(self, ts_s: npt.ArrayLike, local_hour: npt.ArrayLike) -> FloatArray:
        """Relative electrical load of a heat pump: space heating over the COP, on a daytime
        schedule with a night set-back, plus hot water mornings and evenings."""
        temp = self.temperature(ts_s)
        h = np.asarray(local_hour, dtype=np.float64)
        cop = np.clip(2.4 + 0.08 * (temp + 5.0), 2.0, 4.5)
        schedule = np.where((h >= 6.0) & (h < 22.5), 1.0, 0.45)
        hot_water = 0.6 * (np.exp(-0.5 * ((h - 6.5) / 0.6) ** 2)
                           + 0.6 * np.exp(-0.5 * ((h - 18.5) / 0.8) ** 2))
        return np.asarray(np.maximum(HEATING_BASE_C - temp, 0.0) * schedule / cop + hot_water)

    def sun_elevation_sin(self, ts_s: npt.ArrayLike) -> FloatArray:
        """Sine of the solar elevation over London."""
        t = np.asarray(ts_s, dtype=np.float64)
        doy = (t / _DAY) % 365.2425
        decl = np.radians(23.44) * np.sin(2 * np.pi * (284.0 + doy) / 365.2425)
        solar_h = (t % _DAY) / 3600.0 + LON_DEG / 15.0
        ha = np.radians(15.0 * (solar_h - 12.0))
        lat = np.radians(LAT_DEG)
        return np.asarray(np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(ha))

    def darkness(self, ts_s: npt.ArrayLike) -> FloatArray:
        """1 at night, 0 in daylight, a ramp through twilight (lights go on indoors)."""
        s = self.sun_elevation_sin(ts_s)
        return np.asarray(np.clip((0.17 - s) / 0.2, 0.0, 1.0))

    def cloudiness(self, ts_s: npt.ArrayLike) -> FloatArray:
        """Share of clear-sky sunshine that gets through (seeded per day, varying by the hour)."""
        t = np.asarray(ts_s, dtype=np.int64)
        day = t // _DAY
        daily = 0.2 + 0.8 * hash_uniform(self.seed, day, 0xC10D) ** 0.8
        wobble = 0.85 + 0.15 * np.sin(2 * np.pi * t / 5400.0 + 6.0 * hash_uniform(self.seed, day))
        return np.asarray(daily * wobble)

    def pv_shape(self, ts_s: npt.ArrayLike) -> FloatArray:
        """Unscaled PV output (use :meth:`pv_kw_per_kwp`)."""
        s = np.maximum(self.sun_elevation_sin(ts_s), 0.0)
        return np.asarray(s**1.2 * self.cloudiness(ts_s))

    def pv_kw_per_kwp(self, ts_s: int) -> float:
        """PV output in kW per installed kWp at one instant."""
        return float(self.pv_shape(ts_s)) * self.year_norms(year_of(ts_s))["pv"]

    def year_norms(self, year: int) -> dict[str, float]:
        """Per-year normalisers, from 10-minute samples over the calendar year (cached)."""
        if year not in self._norms:
            self._norms[year] = self._year_norms(year)
        return self._norms[year]

    def _year_norms(self, year: int) -> dict[str, float]:
        a, b = year_bounds(year)
        t = np.arange(a, b, 600, dtype=np.int64)
        hours = (b - a) / 3600.0
        off = np.where((t >= bst_bounds(year)[0]) & (t < bst_bounds(year)[1]), 3600, 0)
        local_h = ((t + off) % _DAY) / 3600.0
        return {
            "pv": PV_KWH_PER_KWP / (float(self.pv_shape(t).mean()) * hours),
            "hp": 1.0 / float(self.heat_pump_load(t, local_h).mean()),
        }

    def daily_heating_degrees(self, day: int) -> float:
        """Mean heating degrees over one UTC day."""
        if day not in self._daily:
            t = np.arange(day * _DAY, (day + 1) * _DAY, 1800, dtype=np.int64)
            self._daily[day] = float(self.heating_degrees(t).mean())
        return self._daily[day]

    def _year_heating_total(self, year: int) -> float:
        if year not in self._year_total:
            a, b = year_bounds(year)
            t = np.arange(a, b, 1800, dtype=np.int64)
            days = self.heating_degrees(t).reshape(-1, 48).mean(axis=1)
            self._daily.update(zip(range(a // _DAY, b // _DAY), days.tolist(), strict=True))
            self._year_total[year] = float(days.sum())
        return self._year_total[year]

    def heating_share(self, day: int) -> float:
        """This day's share of its calendar year's heating degree-days (sums to 1 per year)."""
        year = year_of(day * _DAY)
        total = self._year_heating_total(year)
        if total <= 0:
            a, b = year_bounds(year)
            return _DAY / (b - a)
        return self.daily_heating_degrees(day) / total
