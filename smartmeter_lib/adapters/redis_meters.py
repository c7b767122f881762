"""The per-meter live view in Redis, written by several processors at once.

Each processor (a *writer*) holds some of the meters: those of the bus partitions it reads.
Every second it writes the snapshot of its own meters as a few binary values, not one Redis
command per meter (at 100,000 meters that was 200,000 commands a second, packed in Python):

- ``meters:<w>:ids``: the writer's meter ids, ``\\n``-joined, rewritten only when the set
  changes (a rebalance), and ``meters:<w>:ver`` which changes with it;
- ``meters:<w>:data``: one 24-byte record per meter in that order: ``last_ts_ms`` (int64),
  ``kw`` and ``kwh_total`` (float64), little-endian; ``meters:<w>:ts_ms``: the snapshot's time;
- ``power:<w>:<ts_ms>``: every meter's power that second (float32, same order), with the
  index ``power:<w>:index``; ``top:<w>``: the writer's top consumers;
- ``writers``: a sorted set of the writers, scored by when they last wrote (wall clock ms).

Readers merge: a meter held by two writers (during a handover) is read from the one with the
newest reading. Writers that have not written for an hour drop out, and every key has a TTL.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import redis

RECORD = np.dtype([("last_ts_ms", "<i8"), ("kw", "<f8"), ("kwh_total", "<f8")])
WRITER_TTL_S = 3600  # a writer silent for an hour drops out of the live view


class RedisMeterView:
    """Per-writer meter snapshots, power vectors and top consumers on one Redis client."""

    def __init__(self, r: redis.Redis, prefix: str, writer: str, series_keep_s: int) -> None:
        self.r, self.p, self.w = r, prefix, writer
        self.series_keep_s = series_keep_s
        self._sent_ids: list[str] | None = None
        self._ids_cache: dict[str, tuple[bytes, dict[str, int]]] = {}  # writer -> (ver, ids)

    def k(self, *parts: object) -> str:
        return self.p + ":".join(str(x) for x in parts)

    # -- writing ---------------------------------------------------------------------------
    def put_meters(self, ts_ms: int, meter_id: Sequence[str] | Any, last_ts_ms: Any,
                   kw: Any, kwh_total: Any) -> None:
        ids = [str(m) for m in meter_id]
        rec = np.empty(len(ids), RECORD)
        rec["last_ts_ms"], rec["kw"], rec["kwh_total"] = last_ts_ms, kw, kwh_total
        ttl = WRITER_TTL_S
        with self.r.pipeline(transaction=True) as pipe:
            if ids != self._sent_ids:
                pipe.set(self.k("meters", self.w, "ids"), "\n".join(ids), ex=ttl)
                pipe.set(self.k("meters", self.w, "ver"), f"{time.time_ns()}", ex=ttl)
            else:
                pipe.expire(self.k("meters", self.w, "ids"), ttl)
                pipe.expire(self.k("meters", self.w, "ver"), ttl)
            pipe.set(self.k("meters", self.w, "data"), rec.tobytes(), ex=ttl)
            pipe.set(self.k("meters", self.w, "ts_ms"), int(ts_ms), ex=ttl)
            self._register(pipe)
            pipe.execute()
        self._sent_ids = ids

    def put_meter_power(self, ts_ms: int, kw: Any) -> None:
        index = self.k("power", self.w, "index")
        with self.r.pipeline(transaction=False) as pipe:
            pipe.set(self.k("power", self.w, int(ts_ms)), np.asarray(kw, "<f4").tobytes(),
                     ex=self.series_keep_s)
            pipe.zadd(index, {str(int(ts_ms)): int(ts_ms)})
            pipe.zremrangebyscore(index, "-inf", f"({int(ts_ms) - self.series_keep_s * 1000}")
            pipe.expire(index, self.series_keep_s)
            pipe.execute()

    def put_top_consumers(self, ts_ms: int, meter_id: Sequence[str], kw: Any) -> None:
        key = self.k("top", self.w)
        with self.r.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if len(meter_id):
                pipe.zadd(key, dict(zip([str(m) for m in meter_id],
                                        np.asarray(kw, np.float64).tolist(), strict=True)))
                pipe.expire(key, WRITER_TTL_S)
            self._register(pipe)
            pipe.execute()

    def _register(self, pipe: Any) -> None:
        now = int(time.time() * 1000)
        pipe.zadd(self.k("writers"), {self.w: now})
        pipe.zremrangebyscore(self.k("writers"), "-inf", f"({now - WRITER_TTL_S * 1000}")

    # -- reading ---------------------------------------------------------------------------
    def writers(self) -> list[str]:
        since = int(time.time() * 1000) - WRITER_TTL_S * 1000
        return [w.decode() for w in self.r.zrangebyscore(self.k("writers"), since, "+inf")]

    def _holders(self, meter_id: str) -> list[tuple[str, int]]:
        """(writer, position) of every live writer whose snapshot holds the meter."""
        writers = self.writers()
        if not writers:
            return []
        with self.r.pipeline(transaction=False) as pipe:
            for w in writers:
                pipe.get(self.k("meters", w, "ver"))
            versions = pipe.execute()
        stale = [w for w, v in zip(writers, versions, strict=True)
                 if v is not None and self._ids_cache.get(w, (b"",))[0] != v]
        if stale:  # their id lists changed (a rebalance) or were never read: read them once
            with self.r.pipeline(transaction=False) as pipe:
                for w in stale:
                    pipe.get(self.k("meters", w, "ids"))
                blobs = pipe.execute()
            fresh = dict(zip(writers, versions, strict=True))
            for w, blob in zip(stale, blobs, strict=True):
                if blob is not None:  # ids rewritten since: the next read sees a new ver
                    ids = blob.decode().split("\n") if blob else []
                    self._ids_cache[w] = (fresh[w], {m: j for j, m in enumerate(ids)})
        out = []
        for w, v in zip(writers, versions, strict=True):
            cached = self._ids_cache.get(w)
            if v is not None and cached is not None and meter_id in cached[1]:
                out.append((w, cached[1][meter_id]))
        return out

    def _best(self, meter_id: str) -> tuple[str, int, dict[str, Any]] | None:
        """The holder with the newest reading of the meter, its position and its values."""
        holders = self._holders(meter_id)
        if not holders:
            return None
        size = RECORD.itemsize
        with self.r.pipeline(transaction=False) as pipe:
            for w, i in holders:
                pipe.getrange(self.k("meters", w, "data"), i * size, i * size + size - 1)
                pipe.get(self.k("meters", w, "ts_ms"))
            got = pipe.execute()
        best: tuple[str, int, dict[str, Any]] | None = None
        for n, (w, i) in enumerate(holders):
            raw, ts = got[2 * n], got[2 * n + 1]
            if raw is None or len(raw) != size or ts is None:
                continue
            r = np.frombuffer(raw, RECORD)[0]
            row = {"meter_id": meter_id, "last_ts_ms": int(r["last_ts_ms"]),
                   "kw": float(r["kw"]), "kwh_total": float(r["kwh_total"]),
                   "snapshot_ts_ms": int(ts)}
            if best is None or (row["last_ts_ms"], row["snapshot_ts_ms"]) > (
                    best[2]["last_ts_ms"], best[2]["snapshot_ts_ms"]):
                best = (w, i, row)
        return best

    def get_meter(self, meter_id: str) -> dict[str, Any] | None:
        best = self._best(meter_id)
        return None if best is None else best[2]

    def get_meter_series(self, meter_id: str, since_ms: int) -> pd.DataFrame:
        best = self._best(meter_id)
        rows: list[tuple[int, float]] = []
        if best is not None:
            w, i, _ = best
            stamps = [int(t) for t in self.r.zrangebyscore(self.k("power", w, "index"),
                                                           int(since_ms), "+inf")]
            with self.r.pipeline(transaction=False) as pipe:
                for t in stamps:
                    pipe.getrange(self.k("power", w, t), 4 * i, 4 * i + 3)
                values = pipe.execute()
            rows = [(t, float(np.frombuffer(v, "<f4")[0]))
                    for t, v in zip(stamps, values, strict=True) if v and len(v) == 4]
        return pd.DataFrame(rows, columns=["ts_ms", "kw"]).astype({"ts_ms": "int64",
                                                                   "kw": "float64"})

    def get_top_consumers(self) -> pd.DataFrame:
        writers = self.writers()
        with self.r.pipeline(transaction=False) as pipe:
            for w in writers:
                pipe.zrevrange(self.k("top", w), 0, -1, withscores=True)
            got = pipe.execute() if writers else []
        kw: dict[str, float] = {}
        for rows in got:
            for m, s in rows:
                kw[m.decode()] = max(float(s), kw.get(m.decode(), float("-inf")))
        df = pd.DataFrame({"meter_id": list(kw), "kw": list(kw.values())},
                          columns=["meter_id", "kw"]).astype({"meter_id": object,
                                                              "kw": "float64"})
        return df.sort_values(["kw", "meter_id"], ascending=[False, True],
                              kind="stable").reset_index(drop=True)
