"""A first meter fleet: homes over Greater London with a plausible daily load shape.

Each home has a mean power calibrated to a UK annual consumption (Ofgem typical values: low
1,800, medium 2,700, high 4,100 kWh a year), an always-on baseload of 100-200 W, a morning
bump and an evening peak around 17:00-20:00. Appliance use is a two-state Markov chain per home
whose expected value is the daily shape, so the mean is preserved while the trace looks like a
real meter (bursts of a few minutes, not Gaussian noise). Everything is vectorised over homes
and deterministic for a given seed.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from smartmeter_lib import geo
from smartmeter_lib.model import MeterInfo, ReadingBatch

SECONDS_PER_YEAR = 365.25 * 86400
_APPLIANCE_SHARE = 0.6  # share of the non-base load that comes in bursts
_ON_PROB = 0.25  # stationary share of time the burst state is on
_MEAN_ON_S = 120.0


def daily_shape(hour: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Relative demand above baseload by hour of day (mean over a day ≈ 1)."""
    h = np.mod(hour, 24.0)

    def bump(centre: float, width: float) -> npt.NDArray[np.float64]:
        d = np.minimum(np.abs(h - centre), 24.0 - np.abs(h - centre))
        return np.exp(-0.5 * (d / width) ** 2)

    shape = 0.25 + 0.7 * bump(7.75, 1.2) + 0.35 * bump(13.0, 2.5) + 1.9 * bump(18.75, 1.7)
    return shape / _SHAPE_MEAN


_SHAPE_MEAN = 1.0
_SHAPE_MEAN = float(daily_shape(np.linspace(0, 24, 24 * 60, endpoint=False)).mean())


def place_homes(n: int, rng: np.random.Generator) -> tuple[
        npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Lat/lon of ``n`` homes over Greater London, denser in inner London."""
    s, w, north, e = geo.LONDON_BOUNDS
    clat, clon = geo.LONDON_CENTRE
    a_lat, a_lon = (north - s) / 2, (e - w) / 2
    lat = np.empty(n)
    lon = np.empty(n)
    filled = 0
    while filled < n:
        k = (n - filled) * 2 + 16
        # radius in the unit ellipse: density falls off with distance from the centre
        r = np.minimum(rng.gamma(2.0, 0.22, k), 1.5)
        theta = rng.uniform(0, 2 * np.pi, k)
        la = clat + r * a_lat * np.sin(theta)
        lo = clon + r * a_lon * np.cos(theta)
        ok = (r <= 1.0) & (la > s) & (la < north) & (lo > w) & (lo < e)
        take = np.flatnonzero(ok)[: n - filled]
        lat[filled:filled + len(take)] = la[take]
        lon[filled:filled + len(take)] = lo[take]
        filled += len(take)
    return lat, lon


class Fleet:
    """``n`` homes, each sending one reading per second.

    >>> fleet = Fleet(3, seed=1)
    >>> batch = fleet.readings(1_764_300_000)
    >>> len(batch), int(batch.ts_ms[0])
    (3, 1764300000000)
    """

    def __init__(self, n: int, seed: int = 42, id_prefix: str = "SM") -> None:
        if n < 1:
            raise ValueError(f"a fleet needs at least one home, got {n}")
        self.n = n
        self.seed = seed
        rng = np.random.default_rng(seed)
        lat, lon = place_homes(n, rng)
        ids = np.array([f"{id_prefix}{i:07d}" for i in range(n)], dtype=object)
        self.meters = MeterInfo(ids, lat, lon, geo.encode_many(lat, lon, geo.HOME_PRECISION))
        band = rng.choice(3, size=n, p=[0.3, 0.45, 0.25])
        target = np.array([1800.0, 2700.0, 4100.0])[band]
        self.annual_kwh = target * rng.lognormal(0.0, 0.15, n) / np.exp(0.15**2 / 2)
        self.mean_kw = self.annual_kwh / SECONDS_PER_YEAR * 3600.0
        self.base_kw = np.minimum(rng.uniform(0.10, 0.20, n), 0.6 * self.mean_kw)
        self.phase_h = rng.normal(0.0, 0.6, n)  # households keep different hours
        self._rng = np.random.default_rng(seed + 1)
        self._on = self._rng.random(n) < _ON_PROB
        self._p_off = 1.0 / _MEAN_ON_S
        self._p_on = _ON_PROB / (1 - _ON_PROB) * self._p_off

    def expected_kw(self, ts_s: float) -> npt.NDArray[np.float64]:
        """Expected power of every home at ``ts_s`` (UTC seconds), without bursts or noise."""
        hour = (ts_s % 86400) / 3600.0 + self.phase_h
        return self.base_kw + (self.mean_kw - self.base_kw) * daily_shape(hour)

    def step_kw(self, ts_s: int) -> npt.NDArray[np.float64]:
        """Power of every home during second ``ts_s``; advances the appliance state."""
        u = self._rng.random(self.n)
        self._on = np.where(self._on, u >= self._p_off, u < self._p_on)
        hour = (ts_s % 86400) / 3600.0 + self.phase_h
        active = (self.mean_kw - self.base_kw) * daily_shape(hour)
        burst = (1 - _APPLIANCE_SHARE) + _APPLIANCE_SHARE * self._on / _ON_PROB
        jitter = 1.0 + 0.03 * self._rng.standard_normal(self.n)
        return np.maximum(self.base_kw + active * burst * jitter, 0.0)

    def readings(self, ts_s: int) -> ReadingBatch:
        """One 1-second reading per home for the second starting at ``ts_s``."""
        kwh = self.step_kw(ts_s) / 3600.0
        return ReadingBatch.readings(self.meters.meter_id, ts_s * 1000, kwh, 1)
