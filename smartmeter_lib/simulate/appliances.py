"""Behaviour curves, the appliance catalogue and the event timeline of the household simulator.

Occupancy ("activity") curves say how busy a home is by minute of the day for three behaviour
types: a weekday with everyone out at work or school (``commuter``), a weekday with someone at
home (``home``: working from home, retired) and a ``weekend`` day. Each appliance has a
time-of-day curve per behaviour type, from which the start times of its uses are drawn.

Appliance uses are scheduled a day at a time, vectorised over homes, as events (home, start,
end, watts). An oven heats up then cycles on its thermostat; a washing machine heats water, turns
its drum and spins; a dishwasher heats twice; a tumble dryer cycles its heater. The expected
energy of one use is known in closed form (:func:`expected_kwh`), which is how annual
consumption is calibrated.

:class:`EventTimeline` turns the events into the appliance power of every home at any second:
incrementally (a binary search for the events that start or end in this second) when seconds
come in order, or by a full recount after a jump.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
COMMUTER, HOME, WEEKEND = 0, 1, 2
PROFILE_TYPES = ("commuter", "home", "weekend")


def _curve(points: list[tuple[float, float]], floor: float = 0.02) -> FloatArray:
    """A cyclic piecewise-linear curve over the 1,440 minutes of a day, mean 1."""
    pts = sorted(points)
    xp = np.array([p[0] for p in pts])
    fp = np.array([p[1] for p in pts])
    xp = np.concatenate([xp - 24, xp, xp + 24])
    fp = np.concatenate([fp, fp, fp])
    y = np.interp(np.arange(1440) / 60.0, xp, fp)
    y = np.maximum(y, floor * y.mean())
    return np.asarray(y / y.mean())


def _types(commuter: list[tuple[float, float]], home: list[tuple[float, float]],
           weekend: list[tuple[float, float]]) -> FloatArray:
    return np.stack([_curve(commuter), _curve(home), _curve(weekend)])


#: how busy a home is, by behaviour type and minute (each row has mean 1)
ACTIVITY = _types(
    [(0, .32), (2, .2), (5, .18), (6, .4), (7, 1.15), (8, 1.0), (9, .6), (12, .6), (16, .7),
     (17, 1.1), (18, 1.75), (19, 2.0), (20, 2.0), (21, 1.8), (22, 1.35), (23, .7)],
    [(0, .32), (2, .2), (5, .18), (7, .6), (8, 1.0), (9, 1.05), (12, 1.25), (13, 1.1),
     (16, 1.0), (17, 1.3), (18, 1.6), (19, 1.75), (20, 1.7), (21, 1.5), (22, 1.05), (23, .6)],
    [(0, .42), (2, .25), (6, .18), (8, .75), (9, 1.2), (11, 1.2), (12, 1.4), (13, 1.3),
     (15, 1.1), (17, 1.3), (18, 1.6), (19, 1.75), (20, 1.65), (21, 1.45), (22, 1.15), (23, .8)],
)

TIMING: dict[str, FloatArray] = {
    "kettle": _types(
        [(0, .05), (6, .3), (7, 2.5), (8, 1.5), (9, .2), (16, .3), (17, 1.2), (19, 1.), (21, .8),
         (23, .2)],
        [(0, .05), (7, 1.), (8, 2.), (10, 1.2), (11, .8), (13, 1.2), (15, 1.3), (17, 1.),
         (19, 1.), (21, .7), (23, .2)],
        [(0, .05), (8, 1.), (9, 2.), (11, 1.2), (13, 1.), (15, 1.2), (17, .9), (19, .9), (21, .7),
         (23, .2)]),
    "breakfast": _types(
        [(0, 0), (6, .5), (7, 3.), (8, 1.5), (9, 0), (19, .1), (24, 0)],
        [(0, 0), (7, 1.), (8, 3.), (9, 2.), (10, .3), (13, .5), (19, .1), (24, 0)],
        [(0, 0), (8, 1.), (9, 3.), (10, 2.), (11, .5), (13, .3), (24, 0)]),
    "cooking": _types(
        [(0, 0), (7, .2), (8, .1), (11, .05), (12, .2), (13, .05), (16, .2), (17, 1.2),
         (18, 2.4), (19, 1.8), (20, .6), (21, .1), (23, 0)],
        [(0, 0), (8, .2), (11, .4), (12, 1.), (13, .6), (15, .2), (17, 1.4), (18, 2.),
         (19, 1.4), (20, .5), (21, .1), (23, 0)],
        [(0, 0), (9, .3), (11, .8), (12, 1.6), (13, 1.4), (15, .4), (17, 1.2), (18, 2.),
         (19, 1.5), (20, .6), (21, .1), (23, 0)]),
    "meals": _types(
        [(0, .05), (7, .8), (8, .5), (12, .3), (17, 1.), (18, 1.6), (20, 1.), (22, .4)],
        [(0, .05), (8, .8), (12, 1.5), (13, 1.), (17, 1.), (18, 1.5), (20, 1.), (22, .4)],
        [(0, .05), (9, .8), (12, 1.5), (13, 1.), (17, 1.), (18, 1.5), (20, 1.), (22, .4)]),
    "laundry": _types(
        [(0, 0), (6, .2), (7, .8), (8, .6), (9, .1), (17, .3), (19, 1.), (21, .8), (22, .3),
         (23, 0)],
        [(0, 0), (7, .2), (9, 1.), (12, 1.), (16, .8), (19, .6), (21, .4), (23, 0)],
        [(0, 0), (7, .2), (9, 1.5), (12, 1.3), (15, .8), (18, .5), (21, .3), (23, 0)]),
    "after_dinner": _types(
        [(0, .1), (6, .1), (8, .4), (9, .1), (19, .5), (20, 1.5), (21, 1.8), (22, 1.), (23, .3)],
        [(0, .1), (6, .1), (9, .4), (14, .5), (19, .5), (20, 1.5), (21, 1.8), (22, 1.),
         (23, .3)],
        [(0, .1), (6, .1), (10, .3), (14, .8), (19, .5), (20, 1.5), (21, 1.8), (22, 1.),
         (23, .3)]),
    "shower": _types(
        [(0, 0), (5.5, .2), (6.5, 2.5), (7.5, 2.), (8.5, .3), (18, .3), (22, .4), (23, 0)],
        [(0, 0), (6, .2), (7, 1.), (8, 2.), (9, 1.5), (10, .5), (18, .3), (22, .4), (23, 0)],
        [(0, 0), (7, .2), (8, 1.), (9, 2.), (10, 1.5), (11, .5), (18, .3), (22, .4), (23, 0)]),
    "daytime": _types(
        [(0, 0), (8, 0), (17, .2), (18, 1.), (20, 1.), (21, 0)],
        [(0, 0), (9, .5), (10, 1.), (16, 1.), (18, .3), (21, 0)],
        [(0, 0), (9, .5), (10, 1.), (16, 1.), (18, .3), (21, 0)]),
    "activity": ACTIVITY,
}


@dataclass(frozen=True)
class Appliance:
    """One kind of appliance: power and duration ranges (uniform), how often it is used, and
    how its power varies within one use (``pattern``)."""

    name: str
    kw: tuple[float, float]
    minutes: tuple[float, float]
    per_day: float  #: uses a day for a home that owns one ...
    per_occupant: float  #: ... plus this many per occupant
    ownership: float  #: share of homes that own one (before the affluence adjustment)
    timing: str  #: a key of TIMING
    pattern: str = "flat"  #: flat, oven, wash, dish or cycle
    weekend: float = 1.0  #: relative use on a weekend day (weekdays compensate)


CATALOGUE: tuple[Appliance, ...] = (
    Appliance("kettle", (2.6, 3.0), (2.0, 3.5), 1.5, 1.0, 0.97, "kettle"),
    Appliance("microwave", (0.9, 1.2), (1.0, 5.0), 0.4, 0.3, 0.90, "meals"),
    Appliance("toaster", (0.8, 1.0), (2.0, 4.0), 0.3, 0.1, 0.70, "breakfast", weekend=1.3),
    Appliance("oven", (1.8, 2.6), (25.0, 70.0), 0.35, 0.12, 0.70, "cooking", "oven", 1.3),
    Appliance("washing_machine", (1.8, 2.2), (60.0, 120.0), 0.15, 0.15, 0.95, "laundry",
              "wash", 1.4),
    Appliance("tumble_dryer", (2.0, 2.5), (40.0, 90.0), 0.05, 0.10, 0.45, "laundry", "cycle",
              1.4),
    Appliance("dishwasher", (1.8, 2.2), (90.0, 150.0), 0.30, 0.15, 0.45, "after_dinner",
              "dish"),
    Appliance("electric_shower", (8.5, 10.5), (4.0, 9.0), 0.0, 0.6, 0.30, "shower"),
    Appliance("vacuum", (1.0, 1.6), (8.0, 20.0), 0.25, 0.0, 0.95, "daytime", weekend=1.5),
    Appliance("small_appliances", (0.6, 2.0), (2.0, 20.0), 0.5, 0.2, 1.0, "activity"),
)
APPLIANCE_NAMES = tuple(a.name for a in CATALOGUE)
_OVEN_PREHEAT_S, _OVEN_PERIOD_S, _OVEN_ON_S = 480, 200, 90
_CYCLE_PERIOD_S, _CYCLE_ON_S = 300, 240


def weekday_factor(a: Appliance) -> float:
    """Relative use on a weekday, so that a week averages 1."""
    return (7.0 - 2.0 * a.weekend) / 5.0


def expected_kwh(a: Appliance) -> float:
    """Expected energy of one use (kWh)."""
    kw = sum(a.kw) / 2
    d = sum(a.minutes) / 2 * 60.0
    if a.pattern == "oven":
        on = min(d, _OVEN_PREHEAT_S) + _OVEN_ON_S / _OVEN_PERIOD_S * max(d - _OVEN_PREHEAT_S, 0)
        return kw * on / 3600
    if a.pattern == "wash":
        return (0.15 * d + kw * 900 + 0.35 * 480) / 3600
    if a.pattern == "dish":
        return (0.06 * d + kw * 1320) / 3600
    if a.pattern == "cycle":
        return kw * d * _CYCLE_ON_S / _CYCLE_PERIOD_S / 3600
    return kw * d / 3600


@dataclass
class Events:
    """Appliance events, columnar: power ``watts`` for home ``home`` over [start, end)."""

    home: npt.NDArray[np.int32]
    start: IntArray
    end: IntArray
    watts: npt.NDArray[np.int32]

    @classmethod
    def empty(cls) -> Events:
        return cls(np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.int64),
                   np.empty(0, np.int32))

    @classmethod
    def make(cls, home: npt.ArrayLike, start: npt.ArrayLike, end: npt.ArrayLike,
             kw: npt.ArrayLike) -> Events:
        s = np.asarray(start, dtype=np.int64)
        e = np.maximum(np.asarray(end, dtype=np.int64), s)
        w = np.broadcast_to(np.rint(np.asarray(kw, dtype=np.float64) * 1000).astype(np.int32),
                            s.shape)
        keep = (e > s) & (w != 0)
        return cls(np.asarray(home, dtype=np.int32)[keep], s[keep], e[keep], w[keep])

    @staticmethod
    def concat(parts: list[Events]) -> Events:
        if not parts:
            return Events.empty()
        return Events(np.concatenate([p.home for p in parts]),
                      np.concatenate([p.start for p in parts]),
                      np.concatenate([p.end for p in parts]),
                      np.concatenate([p.watts for p in parts]))

    def __len__(self) -> int:
        return len(self.home)

    def energy_kwh(self) -> float:
        return float(((self.end - self.start) * self.watts.astype(np.float64)).sum()) / 3.6e6


def _pulses(start: IntArray, length: IntArray, first: int, period: int,
            on: int) -> tuple[IntArray, IntArray, IntArray]:
    """Thermostat pulses from ``first`` s into each use until its end: (use index, start,
    end) of every pulse."""
    span = np.maximum(length - first, 0)
    k = -(-span // period)
    idx = np.repeat(np.arange(len(start)), k)
    j = np.arange(len(idx)) - np.repeat(np.cumsum(k) - k, k)
    s = start[idx] + first + j * period
    e = np.minimum(s + on, start[idx] + length[idx])
    return idx, s, e


def explode(a: Appliance, home: npt.NDArray[np.int32], start: IntArray, length: IntArray,
            kw: FloatArray) -> Events:
    """The events of uses of ``a`` (one use per element)."""
    end = start + length
    if a.pattern == "oven":
        pre = Events.make(home, start, start + np.minimum(length, _OVEN_PREHEAT_S), kw)
        i, s, e = _pulses(start, length, _OVEN_PREHEAT_S, _OVEN_PERIOD_S, _OVEN_ON_S)
        return Events.concat([pre, Events.make(home[i], s, e, kw[i])])
    if a.pattern == "wash":
        return Events.concat([
            Events.make(home, start, end, 0.15),
            Events.make(home, start + 180, np.minimum(start + 1080, end), kw),
            Events.make(home, np.maximum(end - 480, start), end, 0.35)])
    if a.pattern == "dish":
        return Events.concat([
            Events.make(home, start, end, 0.06),
            Events.make(home, start + 300, np.minimum(start + 1020, end), kw),
            Events.make(home, end - 1500, end - 900, kw)])
    if a.pattern == "cycle":
        i, s, e = _pulses(start, length, 0, _CYCLE_PERIOD_S, _CYCLE_ON_S)
        return Events.make(home[i], s, e, kw[i])
    return Events.make(home, start, end, kw)


def draw_minutes(curves: FloatArray, ptype: npt.NDArray[np.int64],
                 u: FloatArray) -> IntArray:
    """Minutes of the day drawn from per-type curves (``curves[ptype]``), by inverse CDF."""
    out = np.empty(len(u), dtype=np.int64)
    for p in range(curves.shape[0]):
        sel = ptype == p
        if sel.any():
            cdf = np.cumsum(curves[p])
            out[sel] = np.searchsorted(cdf / cdf[-1], u[sel], side="right")
    return np.minimum(out, 1439)


class EventTimeline:
    """Appliance power of every home, in integer watts, from day-by-day event schedules.

    ``build_day(day)`` returns the events of a (UK) day; the timeline keeps the days that can
    still have running events (the current and the previous one).
    """

    def __init__(self, n: int, build_day: Callable[[int], Events]) -> None:
        self.n = n
        self._build = build_day
        self._days: dict[int, Events] = {}
        self._by_start: Events = Events.empty()
        self._end_sorted: IntArray = np.empty(0, np.int64)
        self._end_order: IntArray = np.empty(0, np.int64)
        self._watts = np.zeros(n, np.int64)
        self._t: int | None = None

    def _ensure(self, day: int) -> bool:
        want = (day - 1, day)
        if all(d in self._days for d in want) and len(self._days) == 2:
            return False
        self._days = {d: self._days[d] if d in self._days else self._build(d) for d in want}
        ev = Events.concat(list(self._days.values()))
        order = np.argsort(ev.start, kind="stable")
        self._by_start = Events(ev.home[order], ev.start[order], ev.end[order], ev.watts[order])
        self._end_order = np.argsort(self._by_start.end, kind="stable")
        self._end_sorted = self._by_start.end[self._end_order]
        return True

    def watts(self, t: int, day: int) -> IntArray:
        """Appliance power (W) of every home during second ``t`` of UK day ``day``."""
        rebuilt = self._ensure(day)
        ev = self._by_start
        if rebuilt or self._t is None or t != self._t + 1:
            on = (ev.start <= t) & (ev.end > t)
            self._watts = np.bincount(ev.home[on], weights=ev.watts[on],
                                      minlength=self.n).astype(np.int64)
        else:
            i0, i1 = np.searchsorted(ev.start, [t, t + 1])
            if i1 > i0:
                np.add.at(self._watts, ev.home[i0:i1], ev.watts[i0:i1])
            j0, j1 = np.searchsorted(self._end_sorted, [t, t + 1])
            if j1 > j0:
                k = self._end_order[j0:j1]
                np.subtract.at(self._watts, ev.home[k], ev.watts[k])
        self._t = t
        return self._watts
