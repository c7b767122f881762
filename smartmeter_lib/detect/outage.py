"""Outage and comms-loss detection: per-meter silence, correlated per geohash-6 cell.

Pure logic over arrays indexed like the processor's meter registry. Everything is judged in
event time. The detector sees each meter's accepted readings and remembers its newest reading
and its latest *gap* (the readings on either side of a silence longer than ``silence_s``).
The caller ticks it with ``now_ms``, the fleet's event clock (the newest second that every
partition has reached). Silence closes no event-time window, so the detector is a timer on
that clock: a meter is *silent at* ``now_ms`` when no reading of it falls within ``silence_s``
before it (it is still silent, or a gap covers that moment), or when it sent a LAST_GASP.
Because gaps are remembered, a partition that runs ahead of another (a backlog, a rebalance,
a replay) does not hide a short outage from the cell's correlation. When a feed stops its
clock stops too, and no alert is raised: a stalled pipeline is not a London-wide blackout
(the health check reports a stall instead).

- **AREA_OUTAGE**: in one geohash-6 cell (a feeder area), at least ``min_silent`` meters and
  at least ``share`` of the meters alive in the last ``alive_window_s`` are silent together.
  One alert per cell carries the affected meters and the start (the median first missing
  second). It closes when ``restore_share`` of the affected meters report again (or send
  POWER_RESTORE); ``end_ms`` is the median return time.
- **COMMS_LOSS**: a meter silent for ``comms_after_s`` without a last gasp, while its cell is
  not in an outage. A lone silent meter is never an outage.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
import pandas as pd

from smartmeter_lib import geo
from smartmeter_lib.model import Alert, AlertKind, Kind, MeterInfo, ReadingBatch

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class OutageRules:
    silence_s: float = 3.0
    min_silent: int = 3
    share: float = 0.5
    alive_window_s: float = 600.0
    comms_after_s: float = 30.0
    restore_share: float = 0.8
    precision: int = 6


def alert_id(kind: AlertKind, area: str, start_ms: int) -> str:
    """A stable id: the same outage seen again after a restart gets the same id."""
    digest = hashlib.blake2b(f"{kind}|{area}|{start_ms}".encode(), digest_size=6).hexdigest()
    return f"{kind.value.lower()}-{area}-{digest}"


@dataclass
class _Open:
    alert: Alert
    members: IntArray  # meter indices
    back_ms: dict[int, int] = field(default_factory=dict)  # member -> first return seen


class OutageDetector:
    """Raises, updates and closes AREA_OUTAGE and COMMS_LOSS alerts."""

    def __init__(self, meters: MeterInfo, rules: OutageRules | None = None) -> None:
        self.rules = rules or OutageRules()
        self.meters = meters
        self.n = len(meters)
        codes, cells = pd.factorize(geo.truncate(meters.geohash, self.rules.precision),
                                    sort=True)
        self.codes = codes.astype(np.intp)
        self.cells = np.asarray(cells, dtype=object)
        self._index = pd.Index(meters.meter_id)
        self.gasp_ms = np.full(self.n, -1, np.int64)  # newest LAST_GASP, -1 after a restore
        self.seen_ms = np.full(self.n, -1, np.int64)  # newest reading
        self.gap_from = np.full(self.n, -1, np.int64)  # the reading before the latest gap
        self.gap_to = np.full(self.n, -1, np.int64)  # ... and the one after it
        self.outages: dict[int, _Open] = {}  # cell code -> open outage
        self.comms: dict[int, _Open] = {}  # meter index -> open comms loss
        self.raised = {AlertKind.AREA_OUTAGE: 0, AlertKind.COMMS_LOSS: 0}

    # -- inputs ----------------------------------------------------------------------------
    def observe(self, batch: ReadingBatch) -> None:
        """Accepted readings: move each meter's newest reading on, remembering gaps."""
        if len(batch) == 0:
            return
        idx = self._index.get_indexer(pd.Index(batch.meter_id))
        ok = idx >= 0
        i, t = idx[ok], batch.ts_ms[ok]
        order = np.lexsort((t, i))
        i, t = i[order], t[order]
        first = np.r_[True, i[1:] != i[:-1]]
        last = np.r_[i[1:] != i[:-1], True]
        prev = np.empty_like(t)
        prev[1:] = t[:-1]
        prev[first] = self.seen_ms[i[first]]
        gap = (prev >= 0) & (t - prev > self.rules.silence_s * 1000)
        # the latest gap of each meter: rows are in time order, so keep the last per meter
        g = np.flatnonzero(gap)
        if len(g):
            keep = np.r_[i[g][1:] != i[g][:-1], True]
            self.gap_from[i[g[keep]]] = prev[g[keep]]
            self.gap_to[i[g[keep]]] = t[g[keep]]
        self.seen_ms[i[last]] = np.maximum(self.seen_ms[i[last]], t[last])

    def on_events(self, events: ReadingBatch) -> None:
        """Record LAST_GASP (the meter lost power) and POWER_RESTORE messages."""
        if len(events) == 0:
            return
        idx = self._index.get_indexer(pd.Index(events.meter_id))
        ok = idx >= 0
        idx, ts, kind = idx[ok], events.ts_ms[ok], events.kind[ok]
        gasp = kind == Kind.LAST_GASP
        self.gasp_ms[idx[gasp]] = np.maximum(self.gasp_ms[idx[gasp]], ts[gasp])
        restore = kind == Kind.POWER_RESTORE
        self.gasp_ms[idx[restore]] = -1

    def silence_at(self, now_ms: int) -> tuple[npt.NDArray[np.bool_], IntArray]:
        """Which meters are silent at ``now_ms``, and the last reading before each silence."""
        s_ms = int(self.rules.silence_s * 1000)
        seen, g0, g1 = self.seen_ms, self.gap_from, self.gap_to
        still = (seen >= 0) & (now_ms - seen > s_ms)
        was = (g0 >= 0) & (now_ms - g0 > s_ms) & (now_ms < g1)
        before = np.where(was, g0, seen)
        gasped = (self.gasp_ms >= 0) & (self.gasp_ms <= now_ms) & (self.gasp_ms >= before)
        return still | was | gasped, before

    def tick(self, now_ms: int) -> list[Alert]:
        """Evaluate every meter at ``now_ms``; return the alerts opened, changed or closed."""
        r = self.rules
        silent, before = self.silence_at(now_ms)
        known = self.seen_ms >= 0
        alive = known & (now_ms - before <= r.alive_window_s * 1000)
        n_cells = len(self.cells)
        n_alive = np.bincount(self.codes, weights=alive, minlength=n_cells)
        n_silent = np.bincount(self.codes, weights=silent & alive, minlength=n_cells)
        out_cells = np.flatnonzero((n_silent >= r.min_silent) & (n_silent >= r.share * n_alive))
        gasped = (self.gasp_ms >= 0) & (self.gasp_ms >= before)
        changed: list[Alert] = []
        changed += self._close_outages(now_ms)
        changed += self._open_outages(out_cells, before, silent & alive, now_ms)
        changed += self._comms(before, silent & alive & ~gasped, now_ms)
        return changed

    def _back(self, m: IntArray, start_ms: int, now_ms: int) -> IntArray:
        """When each of meters ``m`` reported again after ``start_ms`` (-1: not yet)."""
        g1 = self.gap_to[m]  # the silence that began the alert ended with this reading
        return np.where((g1 >= start_ms) & (g1 <= now_ms), g1, -1)

    # -- area outages ----------------------------------------------------------------------
    def _open_outages(self, cells: IntArray, before: IntArray, silent: npt.NDArray[np.bool_],
                      now_ms: int) -> list[Alert]:
        changed = []
        for c in cells.tolist():
            members = np.flatnonzero((self.codes == c) & silent)
            o = self.outages.get(c)
            if o is not None:
                grown = np.setdiff1d(members, o.members)
                if len(grown):
                    o.members = np.union1d(o.members, grown)
                    o.alert = replace(o.alert, meters=tuple(self.meters.meter_id[o.members]),
                                      evidence={**o.alert.evidence, **self._evidence(c, o)})
                    changed.append(o.alert)
                continue
            start = int(np.median(before[members])) // 1000 * 1000 + 1000
            cell = str(self.cells[c])
            alert = Alert(alert_id(AlertKind.AREA_OUTAGE, cell, start), AlertKind.AREA_OUTAGE,
                          cell, tuple(self.meters.meter_id[members]), start, None, 1.0, {},
                          detected_ms=now_ms)
            o = _Open(alert, members)
            o.alert = replace(alert, evidence=self._evidence(c, o))
            self.outages[c] = o
            self.raised[AlertKind.AREA_OUTAGE] += 1
            changed.append(o.alert)
            for m in members.tolist():  # consolidate: these meters are in the outage
                cl = self.comms.pop(m, None)
                if cl is not None:
                    changed.append(replace(cl.alert, end_ms=now_ms, evidence={
                        **cl.alert.evidence, "superseded_by": alert.alert_id}))
        return changed

    def _evidence(self, c: int, o: _Open) -> dict[str, object]:
        in_cell = int((self.codes == c).sum())
        gasps = int((self.gasp_ms[o.members] >= 0).sum())
        return {"meters_in_cell": in_cell, "silent": len(o.members), "last_gasps": gasps}

    def _close_outages(self, now_ms: int) -> list[Alert]:
        changed = []
        for c, o in list(self.outages.items()):
            ret = self._back(o.members, o.alert.start_ms, now_ms)
            for m, t in zip(o.members.tolist(), ret.tolist(), strict=True):
                if t >= 0:
                    o.back_ms.setdefault(m, t)
            if len(o.back_ms) >= self.rules.restore_share * len(o.members):
                end = int(np.median(list(o.back_ms.values())))
                o.alert = replace(o.alert, end_ms=max(end, o.alert.start_ms), evidence={
                    **o.alert.evidence, "restored": len(o.back_ms),
                    "duration_s": (max(end, o.alert.start_ms) - o.alert.start_ms) / 1000})
                changed.append(o.alert)
                del self.outages[c]
        return changed

    # -- comms loss ------------------------------------------------------------------------
    def _comms(self, before: IntArray, silent: npt.NDArray[np.bool_],
               now_ms: int) -> list[Alert]:
        changed = []
        for m, o in list(self.comms.items()):
            end = int(self._back(np.array([m]), o.alert.start_ms, now_ms)[0])
            if end >= 0:  # it reported again
                changed.append(replace(o.alert, end_ms=end, evidence={
                    **o.alert.evidence, "duration_s": (end - o.alert.start_ms) / 1000}))
                del self.comms[m]
        long_silent = silent & (now_ms - before > self.rules.comms_after_s * 1000)
        in_outage = np.zeros(len(self.cells), bool)
        in_outage[list(self.outages)] = True
        for m in np.flatnonzero(long_silent & ~in_outage[self.codes]).tolist():
            if m in self.comms:
                continue
            start = int(before[m]) + 1000
            cell = str(self.cells[self.codes[m]])
            mid = str(self.meters.meter_id[m])
            alert = Alert(alert_id(AlertKind.COMMS_LOSS, mid, start), AlertKind.COMMS_LOSS,
                          cell, (mid,), start, None, 1.0,
                          {"silent_s": (now_ms - int(before[m])) / 1000}, detected_ms=now_ms)
            self.comms[m] = _Open(alert, np.array([m]))
            self.raised[AlertKind.COMMS_LOSS] += 1
            changed.append(alert)
        return changed

    def active(self) -> list[Alert]:
        return [o.alert for o in self.outages.values()] + [o.alert for o in self.comms.values()]
