"""Theft and tampering detection over closed one-minute windows (pure logic).

Each meter has a baseline made of its own recent profile *relative to similar meters in its
area*: every minute, its log power minus the median log power of the meters of its geohash-5
area that minute (so evening peaks, cold snaps and sunsets, which move the whole area, cancel
out). A slow average of that relative level is the meter's baseline; a fast one is its
current level.

- **Bypass** (SUSPECTED_THEFT): the current level stays below ``drop_ratio`` of the baseline
  for ``sustain_min`` minutes while the neighbours carry on. The baseline stops learning while
  a meter is suspect. A meter needs ``warmup_min`` minutes of history before it can be
  flagged; a bypass older than the meter's history is not seen as a drop.
- **Reversed** (SUSPECTED_THEFT): every reading negative for ``reversed_min`` minutes while
  the sun is down (rooftop PV exports only in daylight).
- **Stuck** (METER_FAULT): the very same reading for ``stuck_min`` whole minutes.

Evidence on every alert: the expected kWh (what the baseline predicts) against the metered
kWh since the condition began; ``score`` is 1 - metered/expected for a bypass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pandas as pd

from smartmeter_lib import geo
from smartmeter_lib.detect.outage import alert_id
from smartmeter_lib.model import Alert, AlertKind, MeterInfo, ReadingBatch, Rollup

FloatArray = npt.NDArray[np.float64]
LONDON_LAT, LONDON_LON = 51.5, -0.12


@dataclass(frozen=True)
class TheftRules:
    floor_kw: float = 0.01  # added before the log, so idle homes are not infinitely low
    fast_min: float = 15.0  # time constant of the current level (minutes)
    slow_min: float = 240.0  # time constant of the baseline
    warmup_min: int = 60
    drop_ratio: float = 0.55
    recover_ratio: float = 0.8
    sustain_min: int = 20
    min_readings: int = 30  # a minute with fewer readings is skipped
    reversed_min: int = 10
    stuck_min: int = 5
    area_precision: int = 5
    min_area_meters: int = 8  # smaller areas compare against the whole fleet


def sun_elevation_deg(ts_ms: int, lat: float = LONDON_LAT, lon: float = LONDON_LON) -> float:
    """Approximate solar elevation (degrees, about +-1) at a UTC time."""
    days = ts_ms / 86_400_000.0
    doy = days % 365.2425
    decl = math.radians(-23.44) * math.cos(2 * math.pi * (doy + 10) / 365.2425)
    hour = (days % 1.0) * 24.0 + lon / 15.0
    ha = math.radians(15.0 * (hour - 12.0))
    phi = math.radians(lat)
    s = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(ha)
    return math.degrees(math.asin(max(-1.0, min(1.0, s))))


class _Minute:
    __slots__ = ("hi", "lo")

    def __init__(self, n: int) -> None:
        self.lo = np.full(n, np.inf)
        self.hi = np.full(n, -np.inf)


class TheftDetector:
    """Raises and closes SUSPECTED_THEFT and METER_FAULT alerts, one minute at a time."""

    def __init__(self, meters: MeterInfo, rules: TheftRules | None = None) -> None:
        self.rules = r = rules or TheftRules()
        self.meters = meters
        self.n = n = len(meters)
        self._index = pd.Index(meters.meter_id)
        codes, cells = pd.factorize(geo.truncate(meters.geohash, r.area_precision), sort=True)
        small = np.bincount(codes, minlength=len(cells)) < r.min_area_meters
        codes = np.where(small[codes], len(cells), codes)  # one "rest of the fleet" group
        self.area = codes.astype(np.intp)
        self.n_areas = len(cells) + 1
        self.cells6 = geo.truncate(meters.geohash, 6)
        self.fast = np.zeros(n)
        self.slow = np.zeros(n)
        self.minutes = np.zeros(n, np.int64)  # minutes of history
        self.low_run = np.zeros(n, np.int64)
        self.neg_run = np.zeros(n, np.int64)
        self.stuck_run = np.zeros(n, np.int64)
        self.last_kw = np.zeros(n)  # reference for "same reading" across minute edges
        self.metered = np.zeros(n)  # kWh since the drop began
        self.expected = np.zeros(n)
        self.since_ms = np.zeros(n, np.int64)
        self._minutes: dict[int, _Minute] = {}
        self.open: dict[tuple[AlertKind, int], Alert] = {}

    def observe(self, batch: ReadingBatch) -> None:
        """Fold accepted readings into per-minute low/high values (for stuck and reversed)."""
        if len(batch) == 0:
            return
        idx = self._index.get_indexer(pd.Index(batch.meter_id))
        ok = idx >= 0
        minute = batch.ts_ms // 60_000 * 60_000
        for m in np.unique(minute[ok]).tolist():
            sel = ok & (minute == m)
            w = self._minutes.get(m)
            if w is None:
                w = self._minutes[m] = _Minute(self.n)
            np.minimum.at(w.lo, idx[sel], batch.kwh[sel])
            np.maximum.at(w.hi, idx[sel], batch.kwh[sel])

    def on_rollup(self, rollup: Rollup) -> list[Alert]:
        """A closed 60-s window: update every meter in it; return alerts opened or closed."""
        if rollup.resolution_s != 60 or len(rollup) == 0:
            return []
        r = self.rules
        start = int(rollup.window_start_ms[0])
        mm = self._minutes.pop(start, None)
        for old in [k for k in self._minutes if k < start]:
            del self._minutes[old]
        idx = self._index.get_indexer(pd.Index(rollup.meter_id))
        full = (idx >= 0) & (rollup.readings >= r.min_readings)
        i = idx[full]
        kwh = rollup.kwh[full]
        kw = kwh / rollup.readings[full] * 3600.0
        changed: list[Alert] = []
        changed += self._bypass(start, i, kw, kwh)
        if mm is not None:
            changed += self._register(start, i, mm)
        return changed

    # -- bypass ----------------------------------------------------------------------------
    def _bypass(self, start: int, i: npt.NDArray[np.intp], kw: FloatArray,
                kwh: FloatArray) -> list[Alert]:
        r = self.rules
        x = np.log(np.maximum(kw, 0.0) + r.floor_kw)
        areas = self.area[i]
        med = pd.Series(x).groupby(areas).median()
        rel = x - med.reindex(areas).to_numpy()
        new = self.minutes[i] == 0
        self.fast[i[new]] = self.slow[i[new]] = rel[new]
        self.fast[i] += (rel - self.fast[i]) / r.fast_min
        drop = self.fast[i] - self.slow[i]
        warm = self.minutes[i] >= r.warmup_min
        low = warm & (drop < math.log(r.drop_ratio))
        learn = ~low & ~self._suspect(AlertKind.SUSPECTED_THEFT, i)
        self.slow[i[learn]] += (rel[learn] - self.slow[i[learn]]) / r.slow_min
        self.minutes[i] += 1
        started = low & (self.low_run[i] == 0)
        self.since_ms[i[started]] = start
        self.metered[i[started]] = 0.0
        self.expected[i[started]] = 0.0
        self.low_run[i] = np.where(low, self.low_run[i] + 1, 0)
        ratio = np.exp(np.minimum(drop, 0.0))
        self.metered[i] += kwh
        self.expected[i] += kwh / np.maximum(ratio, 1e-3)
        changed = []
        for k in np.flatnonzero(low & (self.low_run[i] >= r.sustain_min)).tolist():
            m = int(i[k])
            if (AlertKind.SUSPECTED_THEFT, m) not in self.open:
                changed.append(self._raise(AlertKind.SUSPECTED_THEFT, m,
                                           int(self.since_ms[m]), start + 60_000, {
                    "rule": "bypass", "expected_kwh": round(float(self.expected[m]), 4),
                    "metered_kwh": round(float(self.metered[m]), 4),
                    "ratio": round(float(ratio[k]), 3)}, score=1.0 - float(ratio[k])))
        recovered = warm & (drop > math.log(r.recover_ratio))
        for k in np.flatnonzero(recovered).tolist():
            changed += self._close(AlertKind.SUSPECTED_THEFT, int(i[k]), start, "bypass")
        return changed

    def _suspect(self, kind: AlertKind, i: npt.NDArray[np.intp]) -> npt.NDArray[np.bool_]:
        return np.fromiter(((kind, int(m)) in self.open for m in i), bool, len(i)) \
            if self.open else np.zeros(len(i), bool)

    # -- reversed and stuck registers -------------------------------------------------------
    def _register(self, start: int, i: npt.NDArray[np.intp], mm: _Minute) -> list[Alert]:
        r = self.rules
        lo, hi = mm.lo[i], mm.hi[i]
        negative = hi < 0
        night = sun_elevation_deg(start + 30_000) < -3.0
        self.neg_run[i] = np.where(negative, self.neg_run[i] + (1 if night else 0), 0)
        stuck = (lo == hi) & (lo == self.last_kw[i])
        self.stuck_run[i] = np.where(stuck, self.stuck_run[i] + 1, 0)
        self.last_kw[i] = hi
        changed = []
        for m in i[self.neg_run[i] >= r.reversed_min].tolist():
            if (AlertKind.SUSPECTED_THEFT, m) not in self.open:
                changed.append(self._raise(AlertKind.SUSPECTED_THEFT, m,
                                           start - (r.reversed_min - 1) * 60_000, start + 60_000,
                                           {"rule": "reversed", "minutes_negative":
                                            int(self.neg_run[m])}, score=1.0))
        for m in i[self.stuck_run[i] >= r.stuck_min].tolist():
            if (AlertKind.METER_FAULT, m) not in self.open:
                changed.append(self._raise(AlertKind.METER_FAULT, m,
                                           start - (r.stuck_min - 1) * 60_000, start + 60_000,
                                           {"rule": "stuck", "reading_kwh": float(hi[i == m][0])},
                                           score=1.0))
        for m in i[~stuck].tolist():
            changed += self._close(AlertKind.METER_FAULT, m, start, "stuck")
        for m in i[hi > 0].tolist():
            changed += self._close(AlertKind.SUSPECTED_THEFT, m, start, "reversed")
        return changed

    # -- alerts ----------------------------------------------------------------------------
    def _raise(self, kind: AlertKind, m: int, start_ms: int, now_ms: int,
               evidence: dict[str, object], score: float) -> Alert:
        mid = str(self.meters.meter_id[m])
        a = Alert(alert_id(kind, mid, start_ms), kind, str(self.cells6[m]), (mid,), start_ms,
                  None, round(float(score), 3), evidence,
                  detected_ms=now_ms)
        self.open[(kind, m)] = a
        return a

    def _close(self, kind: AlertKind, m: int, end_ms: int, rule: str) -> list[Alert]:
        a = self.open.get((kind, m))
        if a is None or a.evidence.get("rule") != rule:
            return []
        del self.open[(kind, m)]
        return [replace(a, end_ms=end_ms)]

    def active(self) -> list[Alert]:
        return list(self.open.values())
