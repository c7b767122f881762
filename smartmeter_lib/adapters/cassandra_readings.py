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
  owns a meter. When a meter's partition moves, the processor calls :meth:`ChunkStore.forget`
  for it on both sides, so neither merges into a cached chunk the other may have rewritten.

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
    encode_chunks,
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
                 concurrency: int = 64, cache_minutes: int = 3,
                 profile: object = None) -> None:
        """``profile``: the name of the execution profile to run with; best one returning
        plain tuples (``cassandra.query.tuple_factory``: named tuples cost a class per
        response)."""
        self.session, self.insert, self.select = session, insert, select
        from cassandra.cluster import EXEC_PROFILE_DEFAULT

        self.profile = EXEC_PROFILE_DEFAULT if profile is None else profile
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
        merged: list[Chunk] = []
        for p in pieces:
            held = self._cache.setdefault(p.minute, {})
            old = held.get(p.meter_id)
            c = p.chunk if old is None else old.merge(p.chunk)
            held[p.meter_id] = c
            merged.append(c)
        self._execute_many(self._statements(pieces, encode_chunks(merged)),
                           "write of reading chunks")
        self.writes += len(pieces)
        newest = max(self._cache)
        for m in [m for m in self._cache if m <= newest - self.cache_minutes]:
            del self._cache[m]

    def forget(self, meter_ids: Sequence[str]) -> None:
        """Drop these meters' cached chunks: the next write of theirs reads what is stored."""
        gone = set(meter_ids)
        for held in self._cache.values():
            for m in gone.intersection(held):
                del held[m]

    def _statements(self, pieces: list[Piece], blobs: list[bytes]) -> list[Any]:
        """One statement per (meter, day) partition: a bound INSERT, or an UNLOGGED batch of
        the partition's rows when a write holds several of its minutes (never across
        partitions)."""
        from cassandra.query import BatchStatement, BatchType

        dates: dict[int, dt.date] = {}
        out: list[Any] = []
        key: tuple[str, int] | None = None
        batch: Any = None
        for p, blob in zip(pieces, blobs, strict=True):
            day, minute = divmod(p.minute, MINUTES_PER_DAY)
            date = dates.get(day) or dates.setdefault(day, _date(day))
            bound = self.insert.bind((p.meter_id, date, minute, blob))
            if (p.meter_id, day) == key:  # pieces come sorted by meter, then minute
                if batch is None:
                    batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                    batch.add(out[-1])
                    out[-1] = batch
                batch.add(bound)
            else:
                key, batch = (p.meter_id, day), None
                out.append(bound)
        return out

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
            for minute, blob in rows:
                if minute in wanted:
                    self._cache.setdefault(day * MINUTES_PER_DAY + minute, {})[meter] = \
                        self._decode(blob, meter, day, minute)
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
            for minute, blob in rows:
                c = self._decode(blob, meter_id, day, minute)
                t = (day * MINUTES_PER_DAY + minute) * MINUTE_MS + c.offset_ms
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

    def _execute_many(self, statements: list[Any], what: str) -> None:
        from cassandra.concurrent import execute_concurrent

        results = execute_concurrent(self.session, [(st, ()) for st in statements],
                                     concurrency=self.concurrency, raise_on_first_error=False,
                                     execution_profile=self.profile)
        for ok, res in results:
            if not ok:
                raise BackendError(f"Cassandra {what} in keyspace {self.keyspace}: {res}")

    def _execute(self, statement: Any, args: Sequence[Sequence[Any]], what: str) -> list[Any]:
        from cassandra.concurrent import execute_concurrent_with_args

        results = execute_concurrent_with_args(self.session, statement, list(args),
                                               concurrency=self.concurrency,
                                               raise_on_first_error=False,
                                               execution_profile=self.profile)
        out = []
        for ok, res in results:
            if not ok:
                raise BackendError(f"Cassandra {what} in keyspace {self.keyspace}: {res}")
            out.append(res)
        return out


_EMPTY = Chunk(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.uint16),
               np.empty(0, np.uint8))
