"""Theft and tampering detection over closed one-minute windows (pure logic).

Each meter's *baseload* is a low percentile (10th) of its minute powers over the last
``window_min`` minutes: the fridge, standby and heating that run whatever the occupants do, so
it moves little from hour to hour while total use swings with cooking and kettles. It is taken
relative to the median baseload of similar meters in its geohash-5 area (so an evening, a cold
snap or a sunset that moves the whole area cancels out), and compared with its *floor*: the
lowest it has been over the last ``history_h`` hours, leaving out the last half hour. A day of
history covers a night of storage heating or an EV's charge, whose end is not a drop.

- **Bypass** (SUSPECTED_THEFT): the relative baseload falls below ``drop_ratio`` of the floor
  and stays there for ``sustain_min`` minutes while the neighbours carry on. A bypass scales
  everything the meter sees, baseload included; a home's routine does not take it below its
  own lowest. A meter needs ``min_history_min`` minutes of history first; a bypass older than
  the meter's history is not a drop. By day, meters seen exporting (rooftop PV) are left out.
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
    floor_kw: float = 0.005  # added before the log, so an idle home is not infinitely low
    window_min: int = 40  # the baseload is a low percentile of the minutes of this window
    percentile: float = 10.0
    history_h: int = 24  # ... compared with its lowest over this much history (a day covers
    # a night of storage heating or EV charging, whose end is not a drop)
    min_history_min: int = 180  # ... of which at least this much is needed
    slot_min: int = 15  # the history is kept as the lowest value of each slot
    gap_slots: int = 2  # ... leaving out the most recent slots (where a drop would be)
    drop_ratio: float = 0.55  # relative baseload below this share of before: a drop
    recover_ratio: float = 0.8
    sustain_min: int = 10
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
        self.kw_ring = np.full((n, r.window_min), np.nan, np.float32)  # minute power
        self.slots = r.history_h * 60 // r.slot_min
        self.rel_slots = np.full((n, self.slots), np.nan, np.float32)  # lowest per slot
        self._slot: int | None = None
        self.exporter = np.zeros(n, bool)  # seen exporting in daylight: rooftop PV
        self.frozen_ref = np.full(n, np.nan)  # the level before the drop, while suspect
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
        minute = start // 60_000
        col = minute % r.window_min
        self.kw_ring[:, col] = np.nan
        self.kw_ring[i, col] = kw
        valid = np.isfinite(self.kw_ring).sum(axis=1) >= r.window_min // 2
        base = np.full(self.n, np.nan)
        if valid.any():
            base[valid] = np.nanpercentile(self.kw_ring[valid], r.percentile, axis=1)
        lb = np.log(np.maximum(base, 0.0) + r.floor_kw)
        med = pd.Series(lb).groupby(self.area).median().reindex(range(self.n_areas))
        rel = lb - med.to_numpy()[self.area]
        slot = minute // r.slot_min
        if slot != self._slot:
            self.rel_slots[:, slot % self.slots] = np.nan
            self._slot = slot
        cur = self.rel_slots[:, slot % self.slots]
        self.rel_slots[:, slot % self.slots] = np.fmin(cur, rel)
        old = (slot - np.arange(r.gap_slots + 1, self.slots)) % self.slots
        hist = self.rel_slots[:, old]
        enough = np.isfinite(hist).sum(axis=1) >= r.min_history_min // r.slot_min
        ref = np.full(self.n, np.nan)
        ref[enough] = np.nanmin(hist[enough], axis=1)
        suspect = np.isfinite(self.frozen_ref)
        level = np.where(suspect, self.frozen_ref, ref)
        drop = rel - level
        faulty = np.zeros(self.n, bool)
        for kind, m in self.open:
            if kind == AlertKind.METER_FAULT or self.open[(kind, m)].evidence.get(
                    "rule") == "reversed":
                faulty[m] = True
        if sun_elevation_deg(start + 30_000) > 0:
            faulty |= self.exporter  # PV lowers what a home imports by day: not a drop
        with np.errstate(invalid="ignore"):
            low = np.isfinite(drop) & (drop < math.log(r.drop_ratio)) & ~faulty
        started = low & (self.low_run == 0)
        self.since_ms[started] = start
        self.metered[started] = 0.0
        self.expected[started] = 0.0
        self.low_run = np.where(low, self.low_run + 1, 0)
        in_low = low[i]
        ratio = np.exp(np.minimum(np.nan_to_num(drop[i]), 0.0))
        self.metered[i[in_low]] += kwh[in_low]
        self.expected[i[in_low]] += kwh[in_low] / np.maximum(ratio[in_low], 1e-3)
        changed = []
        for m in np.flatnonzero(low & (self.low_run >= r.sustain_min) & ~suspect).tolist():
            self.frozen_ref[m] = level[m]
            q = float(math.exp(min(float(drop[m]), 0.0)))
            changed.append(self._raise(AlertKind.SUSPECTED_THEFT, m, int(self.since_ms[m]),
                                       start + 60_000, {
                "rule": "bypass", "expected_kwh": round(float(self.expected[m]), 4),
                "metered_kwh": round(float(self.metered[m]), 4),
                "baseload_ratio": round(q, 3)}, score=1.0 - q))
        with np.errstate(invalid="ignore"):
            back = suspect & np.isfinite(drop) & (drop > math.log(r.recover_ratio))
        for m in np.flatnonzero(back).tolist():
            self.frozen_ref[m] = np.nan
            changed += self._close(AlertKind.SUSPECTED_THEFT, m, start, "bypass")
        return changed

    # -- reversed and stuck registers -------------------------------------------------------
    def _register(self, start: int, i: npt.NDArray[np.intp], mm: _Minute) -> list[Alert]:
        r = self.rules
        lo, hi = mm.lo[i], mm.hi[i]
        negative = hi < 0
        sun = sun_elevation_deg(start + 30_000)
        night = sun < -3.0
        if sun > 0:
            self.exporter[i[lo < 0]] = True
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
