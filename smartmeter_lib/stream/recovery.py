"""Exact rollups across crashes and rebalances: what a processor commits, and which closing
windows it must complete from history.

A processor keeps its windows in memory, so a successor (after a crash, or when a partition
moves to another member) must not start in the middle of a window it cannot finish. Two rules
make every per-meter rollup equal the sum of its readings whatever happens to the members:

1. **Commits never pass an open minute.** :class:`Recovery` remembers, per partition, the
   smallest offset of a reading in each open 1-minute window; the processor commits that
   offset, not its read position. A successor therefore re-reads every minute that was not
   written, from its first message.
2. **Windows begun under another owner are completed from history.** For each meter it holds
   the event time of the first reading this member read since its partition was (re)assigned.
   When a window closes that started before that time (readings of it were processed by a
   previous owner), or whose partition this member has lost since, the rollup is recomputed
   from history: 1-minute rollups from the raw readings (flushed first), 30-minute ones from
   the 1-minute rollups, daily ones from the 30-minute rollups. Raw readings are written
   before their offsets are committed, and every write is an idempotent upsert, so history
   holds exactly the readings seen so far.

The first windows of a fresh start are recomputed too (a few reads per meter, once).
Readings longer than a minute (half-hourly replays) are not in minute rollups, so the
recomputed 30-minute and daily rollups of a meter taken over mid-window count only its
1-second readings; see docs/reliability.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from smartmeter_lib.adapters.base import HistoryStore, Message
from smartmeter_lib.model import Kind, ReadingBatch, Rollup

log = logging.getLogger(__name__)
MINUTE_MS = 60_000
NEVER = np.iinfo(np.int64).max
LOWER = {1800: 60, 86400: 1800}  # a rollup is recomputed from the next finer one


class Recovery:
    """Per-partition commit marks and per-meter ownership of one processor."""

    def __init__(self, meter_ids: npt.NDArray[np.object_], topic: str) -> None:
        self.topic = topic
        self._index = pd.Index(meter_ids)
        n = len(meter_ids)
        self.since = np.full(n, NEVER, np.int64)  # first event time read in this ownership
        self._meter_epoch = np.full(n, -1, np.int64)
        self._meter_part = np.full(n, -1, np.int64)
        self._epoch: dict[int, int] = {}  # partition -> the assignment it belongs to
        self._epochs = 0
        self._held: dict[int, dict[int, int]] = {}  # partition -> minute -> smallest offset
        self._next: dict[int, int] = {}  # partition -> offset after the last one read
        self._closed_at: dict[int, int | None] = {}  # partition -> closed windows at takeover
        self.recomputed = 0  # meter-windows completed from history
        self.repaired = 0  # closed meter-windows rewritten after a takeover

    # -- reading ---------------------------------------------------------------------------
    def assigned(self, assignment: Iterable[tuple[str, int]]) -> None:
        """Note the partitions held now: a newly (re)assigned one starts a new ownership."""
        parts = {p for t, p in assignment if t == self.topic}
        for p in parts - self._epoch.keys():
            self._epochs += 1
            self._epoch[p] = self._epochs
        for p in self._epoch.keys() - parts:
            del self._epoch[p]
            self._held.pop(p, None)
            self._next.pop(p, None)
            self._closed_at.pop(p, None)

    def observe(self, msgs: Sequence[Message], index: npt.NDArray[np.intp],
                batch: ReadingBatch, closed_until_ms: int | None = None) -> None:
        """``batch`` was decoded from ``msgs[index]``: record read positions, what holds each
        partition's commit back, and when this member began reading each meter.
        ``closed_until_ms``: the windows this member has closed already."""
        from_start: set[int] = set()
        for m in msgs:
            if m.topic != self.topic:
                continue
            if m.partition not in self._next:  # the first message of this ownership
                self._closed_at[m.partition] = closed_until_ms
                if m.offset == 0:
                    from_start.add(m.partition)  # it sees the whole partition
            if m.offset + 1 > self._next.get(m.partition, -1):
                self._next[m.partition] = m.offset + 1
        if len(batch) == 0:
            return
        index = np.asarray(index, np.intp)
        parts = np.fromiter((msgs[i].partition for i in index), np.int64, len(index))
        offs = np.fromiter((msgs[i].offset for i in index), np.int64, len(index))
        reading = (batch.kind == Kind.READING) & (batch.interval_s <= 60)
        if reading.any():
            df = pd.DataFrame({"p": parts[reading], "m": batch.ts_ms[reading] // MINUTE_MS,
                               "o": offs[reading]}).groupby(["p", "m"])["o"].min()
            keys = df.index.to_frame(index=False)
            for p, minute, off in zip(keys["p"].tolist(), keys["m"].tolist(),
                                      df.to_numpy().tolist(), strict=True):
                held = self._held.setdefault(int(p), {})
                start = int(minute) * MINUTE_MS
                held[start] = min(held.get(start, int(off)), int(off))
        idx = self._index.get_indexer(pd.Index(batch.meter_id))
        known = idx >= 0
        if not known.any():
            return
        idx, parts, ts = idx[known], parts[known], batch.ts_ms[known]
        epoch = np.array([self._epoch.get(int(p), -1) for p in parts], np.int64)
        new = self._meter_epoch[idx] != epoch
        if new.any():
            m = idx[new]
            self.since[m] = NEVER
            np.minimum.at(self.since, m, ts[new])
            self._meter_epoch[m] = epoch[new]
            self._meter_part[m] = parts[new]
            whole = np.isin(parts[new], list(from_start))
            self.since[m[whole]] = np.iinfo(np.int64).min  # nothing came before: not uncertain

    # -- committing ------------------------------------------------------------------------
    def commit_offsets(self, open_minutes: Iterable[int],
                       assignment: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The offset to commit for each partition held and read: the first reading of its
        oldest minute still open, else the position after the last message read."""
        self.assigned(assignment)
        still = set(open_minutes)
        out = {}
        for p, nxt in self._next.items():
            held = self._held.get(p, {})
            for start in [s for s in held if s not in still]:
                del held[start]
            out[(self.topic, p)] = min([nxt, *held.values()])
        return out

    # -- closing ---------------------------------------------------------------------------
    def uncertain(self, meter_ids: npt.NDArray[np.object_], window_start_ms: int) -> Any:
        """Which meters' windows starting at ``window_start_ms`` this member may not have
        seen whole: begun before it read the meter, or its partition is no longer held."""
        idx = self._index.get_indexer(pd.Index(meter_ids))
        out = np.ones(len(idx), bool)
        ok = idx >= 0
        i = idx[ok]
        held = np.isin(self._meter_part[i], list(self._epoch))
        out[ok] = (self.since[i] > window_start_ms) | ~held
        return out

    def settle(self, rollup: Rollup, history: HistoryStore,
               write_pending: Callable[[], None]) -> Rollup:
        """``rollup`` with the meters whose window this member may not have seen whole
        recomputed from history (after writing the pending raw readings)."""
        if len(rollup) == 0:
            return rollup
        kwh, count = rollup.kwh.copy(), rollup.readings.copy()
        r = int(rollup.resolution_s)
        t0 = time.monotonic()
        done = 0
        for ws in np.unique(rollup.window_start_ms).tolist():
            rows = np.flatnonzero(rollup.window_start_ms == ws)
            unc = rows[self.uncertain(rollup.meter_id[rows], ws)]
            if len(unc) == 0:
                continue
            if r == 60 or r not in LOWER:
                write_pending()
            k, c = _from_history(history, r, rollup.meter_id[unc].tolist(), ws)
            has = c > 0  # history holds the readings of this member too (written above)
            kwh[unc[has]], count[unc[has]] = k[has], c[has]
            done += len(unc)
        if done:
            self.recomputed += done
            log.info("%d %d-s rollups completed from history (their windows began before this "
                     "member read them) in %.1f s", done, r, time.monotonic() - t0)
        return Rollup(r, rollup.meter_id, rollup.window_start_ms, kwh, count)


    def repair_late(self, late: ReadingBatch, open_starts: Callable[[int], Iterable[int]],
                    history: HistoryStore, write_pending: Callable[[], None]) -> None:
        """Readings re-read after a takeover (from before this member took the partition
        over) arrive behind windows it has closed already: they are stored raw, and here
        the closed rollups they belong to are rewritten from history; the open ones are
        completed from history when they close."""
        if len(late) == 0:
            return
        idx = self._index.get_indexer(pd.Index(late.meter_id))
        ok = idx >= 0
        idx, ts = idx[ok], late.ts_ms[ok]
        parts = self._meter_part[idx]
        cut = np.array([_or_min(self._closed_at.get(int(p))) for p in parts], np.int64)
        re_read = ts < cut
        if not re_read.any():
            return  # genuinely late: the windows stand as they were written
        idx, ts = idx[re_read], ts[re_read]
        np.maximum.at(self.since, idx, ts + 1)  # its windows still open: completed at close
        write_pending()
        t0, done = time.monotonic(), 0
        for r in (60, 1800, 86400):
            span = r * 1000
            still = set(open_starts(r))
            pairs = pd.DataFrame({"i": idx, "w": ts // span * span}).drop_duplicates()
            for w in np.unique(pairs["w"].to_numpy()).tolist():
                if w in still:
                    continue
                sel = pairs["i"].to_numpy()[pairs["w"].to_numpy() == w]
                ids = self._index[sel].to_numpy(dtype=object)
                k, c = _from_history(history, r, ids.tolist(), w)
                has = c > 0
                if has.any():
                    history.write_rollups(Rollup(r, ids[has], np.full(int(has.sum()), w,
                                                                       np.int64), k[has], c[has]))
                    done += int(has.sum())
        if done:
            self.repaired += done
            log.info("%d closed rollups rewritten from history for readings re-read after a "
                     "takeover (%.1f s)", done, time.monotonic() - t0)


def _or_min(v: int | None) -> int:
    return np.iinfo(np.int64).min if v is None else int(v)


def _from_history(history: HistoryStore, r: int, meter_ids: list[str], ws: int) -> tuple[
        npt.NDArray[np.float64], npt.NDArray[np.int32]]:
    end = ws + r * 1000
    kwh = np.zeros(len(meter_ids))
    count = np.zeros(len(meter_ids), np.int32)
    lower = LOWER.get(r)
    if lower is None:  # from the raw readings (concurrently where the store can)
        many = getattr(history, "read_readings_many", None)
        batches = (many(meter_ids, ws, end) if many is not None
                   else [history.read_readings(m, ws, end) for m in meter_ids])
        for j, b in enumerate(batches):
            fits = b.interval_s <= r
            kwh[j], count[j] = float(b.kwh[fits].sum()), int(fits.sum())
        return kwh, count
    got = history.read_rollups(lower, meter_ids, ws, end)
    if len(got):
        df = pd.DataFrame({"m": got.meter_id, "k": got.kwh, "n": got.readings})
        sums = df.groupby("m").agg(k=("k", "sum"), n=("n", "sum"))
        sums = sums.reindex(meter_ids, fill_value=0)
        kwh = sums["k"].to_numpy(np.float64)
        count = sums["n"].to_numpy(np.int32)
    return kwh, count
