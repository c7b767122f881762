"""Event-time tumbling windows over columnar batches, per meter and per area.

Pure logic: no I/O, no clocks except the injectable ``now_ms`` used to refuse readings from the
future. The processor edge (``stream.runner``) feeds it decoded batches and writes what it
returns to the sinks.

Semantics:

- A reading belongs to the windows that contain its timestamp (interval start).
- The watermark is the largest event time seen minus the allowed lateness. A window closes
  when the watermark reaches its end; a reading for a closed 1-s window is *late*: it is
  returned, not counted, so the caller can send it to the dead-letter topic.
- A reading with the same meter and timestamp as one already counted is a duplicate and is
  dropped (counted), so replays do not double count.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from smartmeter_lib import geo
from smartmeter_lib.model import AreaRollup, AreaStats, Kind, MeterInfo, ReadingBatch, Rollup

LIVE_MS = 1000


@dataclass(frozen=True)
class LiveSecond:
    """What closed for one second of event time: London's total and each area's load."""

    ts_ms: int
    total_kw: float
    homes: int
    areas: dict[int, AreaStats]


@dataclass
class StepResult:
    """The outcome of one batch (or of :meth:`WindowedAggregator.flush`)."""

    accepted: ReadingBatch = field(default_factory=ReadingBatch.empty)
    late: ReadingBatch = field(default_factory=ReadingBatch.empty)
    future: ReadingBatch = field(default_factory=ReadingBatch.empty)
    unknown: ReadingBatch = field(default_factory=ReadingBatch.empty)
    events: ReadingBatch = field(default_factory=ReadingBatch.empty)
    duplicates: int = 0
    dup_rows: ReadingBatch = field(default_factory=ReadingBatch.empty)  #: the duplicates
    seconds: list[LiveSecond] = field(default_factory=list)
    rollups: list[Rollup] = field(default_factory=list)
    area_rollups: list[AreaRollup] = field(default_factory=list)


@dataclass
class _Second:
    kw: npt.NDArray[np.float64]
    seen_ts: npt.NDArray[np.int64]  # ts of the reading counted for each meter, -1 if none


@dataclass
class _Window:
    kwh: npt.NDArray[np.float64]
    count: npt.NDArray[np.int32]


class WindowedAggregator:
    """Per-meter and per-area event-time windows for a known set of meters."""

    def __init__(self, meters: MeterInfo, allowed_lateness_ms: int = 5000,
                 rollup_resolutions_s: Sequence[int] = (60, 1800, 86400),
                 area_rollup_min_s: int = 1800,
                 area_precisions: Sequence[int] = geo.AREA_PRECISIONS,
                 max_future_ms: int = 300_000,
                 now_ms: Callable[[], int] | None = None) -> None:
        self.meters = meters
        self.n = len(meters)
        self._index = pd.Index(meters.meter_id)
        self.lateness_ms = int(allowed_lateness_ms)
        self.resolutions = tuple(int(r) for r in rollup_resolutions_s)
        self.area_rollup_min_s = int(area_rollup_min_s)
        self.max_future_ms = int(max_future_ms)
        self._now_ms = now_ms or (lambda: int(time.time() * 1000))
        self.areas: dict[int, tuple[npt.NDArray[np.intp], npt.NDArray[np.object_]]] = {}
        for p in area_precisions:
            codes, cells = pd.factorize(geo.truncate(meters.geohash, p), sort=True)
            self.areas[p] = (codes.astype(np.intp), np.asarray(cells, dtype=object))
        #: each meter's shard (its readings-topic partition, set by the processor; -1 not
        #: known); area rollups are summed per (cell, shard). None: one shard
        self.shard_of: npt.NDArray[np.int64] | None = None
        self.last_ts = np.full(self.n, -1, np.int64)
        self.last_kw = np.zeros(self.n)
        self.kwh_total = np.zeros(self.n)
        self.max_event_ms: int | None = None
        self.event_clock_ms: int | None = None  # set by callers that track partitions
        self.closed_until_ms: int | None = None  # every 1-s window ending <= this is closed
        self._seconds: dict[int, _Second] = {}
        self._windows: dict[int, dict[int, _Window]] = {r: {} for r in self.resolutions}
        self.counts = {"accepted": 0, "late": 0, "duplicates": 0, "unknown": 0, "future": 0}
        #: set by a caller that passes the event clock (the processor, per partition): until
        #: it passes one, the watermark is unknown and no window closes (a backlog read one
        #: partition at a time must not make the other partitions late)
        self.clock_from_caller = False

    @property
    def watermark_ms(self) -> int | None:
        clock = self.event_clock_ms
        if clock is None and not self.clock_from_caller:
            clock = self.max_event_ms
        return None if clock is None else clock - self.lateness_ms

    def _close_due(self, res: StepResult) -> None:
        """Close what the watermark has passed (nothing while it is unknown)."""
        wm = self.watermark_ms
        if wm is not None:
            self._close(wm, res)

    # -- the step ------------------------------------------------------------------------
    def process(self, batch: ReadingBatch, event_clock_ms: int | None = None) -> StepResult:
        """Count ``batch`` and close the windows the watermark has passed.

        The watermark is ``event_clock_ms`` (or, by default, the largest event time seen) minus
        the allowed lateness. A caller reading several partitions passes the smallest of the
        partitions' largest event times, so a partition that is behind is not made late.
        """
        res = StepResult()
        if event_clock_ms is not None:
            self.event_clock_ms = event_clock_ms if self.event_clock_ms is None else max(
                self.event_clock_ms, event_clock_ms)
        if len(batch) == 0:
            self._close_due(res)
            return res
        is_event = batch.kind != Kind.READING
        res.events = batch.take(is_event)
        batch = batch.take(~is_event) if is_event.any() else batch
        idx = self._index.get_indexer(pd.Index(batch.meter_id))
        unknown = idx < 0
        future = batch.ts_ms > self._now_ms() + self.max_future_ms
        late = np.zeros(len(batch), bool)
        if self.closed_until_ms is not None:
            late = batch.ts_ms < self.closed_until_ms
        late &= ~unknown & ~future
        future &= ~unknown
        res.unknown, res.future, res.late = (batch.take(unknown), batch.take(future),
                                             batch.take(late))
        ok = ~(unknown | future | late)
        b, idx = batch.take(ok), idx[ok]
        b, idx, dups, res.dup_rows = self._dedupe(b, idx)
        res.accepted, res.duplicates = b, dups
        for k, v in (("accepted", len(b)), ("late", int(late.sum())), ("duplicates", dups),
                     ("unknown", int(unknown.sum())), ("future", int(future.sum()))):
            self.counts[k] += v
        if len(b):
            self._accumulate(b, idx)
            top = int(b.ts_ms.max())
            self.max_event_ms = top if self.max_event_ms is None else max(self.max_event_ms, top)
        self._close_due(res)
        return res

    def flush(self) -> StepResult:
        """Close every open window (at shutdown, or at the end of a bounded run)."""
        res = StepResult()
        self._close(None, res)
        return res

    # -- internals -----------------------------------------------------------------------
    def open_window_starts(self, resolution_s: int) -> list[int]:
        """Start times (ms) of the windows of ``resolution_s`` still open."""
        return list(self._windows.get(int(resolution_s), {}))

    def _dedupe(self, b: ReadingBatch, idx: npt.NDArray[np.intp]) -> tuple[
            ReadingBatch, npt.NDArray[np.intp], int, ReadingBatch]:
        if len(b) == 0:
            return b, idx, 0, ReadingBatch.empty()
        base = int(b.ts_ms.min())
        key = (b.ts_ms - base) * self.n + idx
        _, first = np.unique(key, return_index=True)
        keep = np.zeros(len(b), bool)
        keep[first] = True
        sec = b.ts_ms // LIVE_MS * LIVE_MS
        for s in np.unique(sec):
            w = self._seconds.get(int(s))
            if w is not None:
                m = sec == s
                keep[m] &= w.seen_ts[idx[m]] != b.ts_ms[m]
        dups = int(len(b) - keep.sum())
        dup_rows = ReadingBatch.empty()
        if dups:
            dup_rows = b.take(~keep)
            b, idx = b.take(keep), idx[keep]
        return b, idx, dups, dup_rows

    def _accumulate(self, b: ReadingBatch, idx: npt.NDArray[np.intp]) -> None:
        kw = b.power_kw()
        sec = b.ts_ms // LIVE_MS * LIVE_MS
        for s in np.unique(sec):
            m = sec == s
            w = self._seconds.get(int(s))
            if w is None:
                w = self._seconds[int(s)] = _Second(np.zeros(self.n), np.full(self.n, -1, np.int64))
            w.kw += np.bincount(idx[m], weights=kw[m], minlength=self.n)
            w.seen_ts[idx[m]] = b.ts_ms[m]
        for r in self.resolutions:
            span = r * 1000
            fits = b.interval_s <= r  # a half-hour reading cannot be split into minutes
            start = b.ts_ms // span * span
            for s in np.unique(start[fits]):
                m = fits & (start == s)
                w2 = self._windows[r].get(int(s))
                if w2 is None:
                    w2 = self._windows[r][int(s)] = _Window(np.zeros(self.n),
                                                            np.zeros(self.n, np.int32))
                w2.kwh += np.bincount(idx[m], weights=b.kwh[m], minlength=self.n)
                w2.count += np.bincount(idx[m], minlength=self.n).astype(np.int32)
        self.kwh_total += np.bincount(idx, weights=b.kwh, minlength=self.n)
        order = np.argsort(b.ts_ms, kind="stable")
        i, t = idx[order], b.ts_ms[order]
        newer = t >= self.last_ts[i]
        self.last_ts[i[newer]] = t[newer]
        self.last_kw[i[newer]] = kw[order][newer]

    def _close(self, watermark: int | None, res: StepResult) -> None:
        if watermark is not None:  # every second ending at or before the watermark is closed
            done = watermark // LIVE_MS * LIVE_MS
            self.closed_until_ms = done if self.closed_until_ms is None else max(
                self.closed_until_ms, done)
        for s in sorted(self._seconds):
            if watermark is not None and s + LIVE_MS > watermark:
                break
            res.seconds.append(self._live_second(s, self._seconds.pop(s)))
            end = s + LIVE_MS
            self.closed_until_ms = end if self.closed_until_ms is None else max(
                self.closed_until_ms, end)
        for r, wins in self._windows.items():
            for s in sorted(wins):
                if watermark is not None and s + r * 1000 > watermark:
                    break
                w = wins.pop(s)
                nz = np.flatnonzero(w.count)
                res.rollups.append(Rollup(r, self.meters.meter_id[nz],
                                          np.full(len(nz), s, np.int64), w.kwh[nz], w.count[nz]))
                if r >= self.area_rollup_min_s and len(nz):
                    res.area_rollups += self._area_rollups(r, s, w)

    def _area_rollups(self, r: int, s: int, w: _Window) -> list[AreaRollup]:
        """One row per (cell, shard) with readings in the window."""
        out = []
        reported = (w.count > 0).astype(np.float64)
        shard = (np.zeros(self.n, np.int64) if self.shard_of is None
                 else np.maximum(self.shard_of, 0))
        n_shards = int(shard.max(initial=0)) + 1
        for p, (codes, cells) in self.areas.items():
            key = codes * n_shards + shard
            size = len(cells) * n_shards
            homes = np.bincount(key, weights=reported, minlength=size).astype(np.int32)
            kwh = np.bincount(key, weights=w.kwh, minlength=size).astype(np.float64)
            nz = np.flatnonzero(homes)
            out.append(AreaRollup(r, p, cells[nz // n_shards], np.full(len(nz), s, np.int64),
                                  kwh[nz], homes[nz], (nz % n_shards).astype(np.int32)))
        return out

    def _live_second(self, s: int, w: _Second) -> LiveSecond:
        reporting = (w.seen_ts >= 0).astype(np.float64)
        areas = {}
        for p, (codes, cells) in self.areas.items():
            kw = np.bincount(codes, weights=w.kw, minlength=len(cells)).astype(np.float64)
            homes = np.bincount(codes, weights=reporting, minlength=len(cells)).astype(np.int32)
            areas[p] = AreaStats(s, p, cells, kw, homes)
        return LiveSecond(s, float(w.kw.sum()), int(reporting.sum()), areas)
