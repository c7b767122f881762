"""Raw readings in Cassandra as one compact chunk per meter per minute (``reading_chunks``).

A write merges the new readings into each touched (meter, minute) chunk and writes the chunk
whole, so the row always holds every reading of that minute that was written so far:

- **Idempotent.** A reading written twice (a re-delivery after a restart, a replay) lands on the
  same timestamp slot of the same chunk: it is stored once.
- **Merging without a read in the steady state.** The store keeps the chunks of the latest
  minutes it wrote (``cache_minutes`` of event time). A chunk it does not hold (its first write
  of a minute, a late reading, a new process) is read from Cassandra first, one range query per
  meter and day, and merged.
- **One writer per meter.** Two clients merging the same minute at the same moment could
  overwrite each other's readings. The processors key the bus by meter id, so one processor
  owns a meter; after a rebalance the new owner starts with an empty cache and reads first.

Every statement is prepared; writes and reads run concurrently (``concurrency`` in flight).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from smartmeter_lib.adapters.chunks import (
    MINUTE_MS,
    Chunk,
    Piece,
    decode_chunk,
    encode_chunk,
    split_by_minute,
)
from smartmeter_lib.errors import BackendError, SmartmeterError
from smartmeter_lib.model import ReadingBatch

log = logging.getLogger(__name__)
MINUTES_PER_DAY = 1440


def _date(day: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=day)


class ChunkStore:
    """Reads and writes ``reading_chunks`` through a cassandra-driver session."""

    def __init__(self, session: Any, insert: Any, select: Any, keyspace: str,
                 concurrency: int = 64, cache_minutes: int = 3) -> None:
        self.session, self.insert, self.select = session, insert, select
        self.keyspace = keyspace
        self.concurrency = concurrency
        self.cache_minutes = cache_minutes
        self._cache: dict[int, dict[str, Chunk]] = {}  # minute -> meter -> chunk
        self.reads = 0  #: range queries issued to merge chunks not in the cache
        self.writes = 0  #: chunk rows written

    # -- writing ---------------------------------------------------------------------------
    def write(self, batch: ReadingBatch) -> None:
        pieces = split_by_minute(batch.meter_id, batch.ts_ms, batch.kwh, batch.interval_s,
                                 batch.kind)
        if not pieces:
            return
        self._load_missing(pieces)
        rows: list[tuple[str, dt.date, int, bytes]] = []
        for p in pieces:
            held = self._cache.setdefault(p.minute, {})
            old = held.get(p.meter_id)
            merged = p.chunk if old is None else old.merge(p.chunk)
            held[p.meter_id] = merged
            day, minute = divmod(p.minute, MINUTES_PER_DAY)
            rows.append((p.meter_id, _date(day), minute, encode_chunk(merged)))
        self._execute(self.insert, rows, "write of reading chunks")
        self.writes += len(rows)
        newest = max(self._cache)
        for m in [m for m in self._cache if m <= newest - self.cache_minutes]:
            del self._cache[m]

    def _load_missing(self, pieces: list[Piece]) -> None:
        """Read the stored chunks of the (meter, minute)s not in the cache, into the cache."""
        want: dict[tuple[str, int], list[int]] = {}
        for p in pieces:
            held = self._cache.get(p.minute)
            if held is None or p.meter_id not in held:
                want.setdefault((p.meter_id, p.minute // MINUTES_PER_DAY), []).append(
                    p.minute % MINUTES_PER_DAY)
        if not want:
            return
        keys = list(want)
        args = [(m, _date(d), min(want[(m, d)]), max(want[(m, d)])) for m, d in keys]
        results = self._execute(self.select, args, "read of reading chunks to merge")
        self.reads += len(args)
        for (meter, day), rows in zip(keys, results, strict=True):
            wanted = set(want[(meter, day)])
            for r in rows:
                if r.minute in wanted:
                    self._cache.setdefault(day * MINUTES_PER_DAY + r.minute, {})[meter] = \
                        self._decode(r.chunk, meter, day, r.minute)
            for minute in wanted:  # nothing stored yet: an empty chunk, so no second read
                self._cache.setdefault(day * MINUTES_PER_DAY + minute, {}).setdefault(
                    meter, _EMPTY)

    # -- reading ---------------------------------------------------------------------------
    def read(self, meter_id: str, start_ms: int, end_ms: int) -> ReadingBatch:
        if end_ms <= start_ms:
            return ReadingBatch.empty()
        first, last = start_ms // MINUTE_MS, (end_ms - 1) // MINUTE_MS
        days = range(first // MINUTES_PER_DAY, last // MINUTES_PER_DAY + 1)
        args = [(meter_id, _date(d), max(0, first - d * MINUTES_PER_DAY),
                 min(MINUTES_PER_DAY - 1, last - d * MINUTES_PER_DAY)) for d in days]
        ts, kwh, iv, kind = [], [], [], []
        for (_, date, _, _), rows in zip(args, self._execute(self.select, args,
                                                            "read of readings"), strict=True):
            day = (date - dt.date(1970, 1, 1)).days
            for r in rows:
                c = self._decode(r.chunk, meter_id, day, r.minute)
                t = (day * MINUTES_PER_DAY + r.minute) * MINUTE_MS + c.offset_ms
                sel = (t >= start_ms) & (t < end_ms)
                ts.append(t[sel])
                kwh.append(c.kwh[sel])
                iv.append(c.interval_s[sel])
                kind.append(c.kind[sel])
        if not ts:
            return ReadingBatch.empty()
        n = sum(len(t) for t in ts)
        return ReadingBatch(np.array([meter_id] * n, dtype=object), np.concatenate(ts),
                            np.concatenate(kwh), np.concatenate(iv), np.concatenate(kind))

    # -- helpers ---------------------------------------------------------------------------
    def _decode(self, blob: bytes, meter: str, day: int, minute: int) -> Chunk:
        try:
            return decode_chunk(blob)
        except SmartmeterError as err:
            raise BackendError(f"reading chunk of meter {meter} at {_date(day)} minute "
                               f"{minute} in {self.keyspace}.reading_chunks: {err}") from err

    def _execute(self, statement: Any, args: Sequence[Sequence[Any]], what: str) -> list[Any]:
        from cassandra.concurrent import execute_concurrent_with_args

        results = execute_concurrent_with_args(self.session, statement, list(args),
                                               concurrency=self.concurrency,
                                               raise_on_first_error=False)
        out = []
        for ok, res in results:
            if not ok:
                raise BackendError(f"Cassandra {what} in keyspace {self.keyspace}: {res}")
            out.append(res)
        return out


_EMPTY = Chunk(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.uint16),
               np.empty(0, np.uint8))
