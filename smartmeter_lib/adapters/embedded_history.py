"""The embedded history store: files on disk, no server.

- ``history.sqlite`` (SQLite in WAL mode, so dashboards in other processes can read while the
  pipeline writes): the meter registry, rollups and alerts, upserted by key (idempotent).
- ``readings/day=YYYY-MM-DD/part-*.parquet``: raw readings in compressed Parquet segments,
  which data scientists can open with pandas, pyarrow or DuckDB. A reading written twice is
  stored in two segments; reads drop the duplicates by (meter, ts), so writes are idempotent.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from smartmeter_lib.adapters.rows import insight_json, insights_frame
from smartmeter_lib.errors import BackendError
from smartmeter_lib.model import AreaRollup, MeterInfo, ReadingBatch, Rollup

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meters (
    meter_id TEXT PRIMARY KEY, lat REAL NOT NULL, lon REAL NOT NULL, geohash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rollups (
    resolution_s INTEGER NOT NULL, meter_id TEXT NOT NULL, window_start_ms INTEGER NOT NULL,
    kwh REAL NOT NULL, readings INTEGER NOT NULL,
    PRIMARY KEY (resolution_s, meter_id, window_start_ms)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS area_shard_rollups (
    resolution_s INTEGER NOT NULL, precision INTEGER NOT NULL, cell TEXT NOT NULL,
    window_start_ms INTEGER NOT NULL, shard INTEGER NOT NULL, kwh REAL NOT NULL,
    homes INTEGER NOT NULL,
    PRIMARY KEY (resolution_s, precision, cell, window_start_ms, shard)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS insights (
    meter_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (meter_id, ts_ms)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    ts_ms INTEGER NOT NULL, meter_id TEXT NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL,
    PRIMARY KEY (ts_ms, meter_id, kind)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    group_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
    state BLOB NOT NULL, PRIMARY KEY (group_id, topic, partition)) WITHOUT ROWID;
"""

READINGS_SCHEMA = pa.schema([
    ("meter_id", pa.string()), ("ts_ms", pa.int64()), ("kwh", pa.float64()),
    ("interval_s", pa.uint16()), ("kind", pa.uint8()),
])


class EmbeddedHistory:
    """An implementation of :class:`smartmeter_lib.adapters.base.HistoryStore` on disk."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.root / "history.sqlite", check_same_thread=False,
                                       timeout=30.0)
        except (OSError, sqlite3.Error) as err:
            raise BackendError(f"cannot open the embedded history at {self.root}: {err}") from err
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self.init_schema()

    def init_schema(self) -> None:
        with self._lock:
            self._db.executescript(_SCHEMA)

    # -- meters --------------------------------------------------------------------------
    def register_meters(self, meters: MeterInfo) -> None:
        rows = zip(meters.meter_id.tolist(), meters.lat.tolist(), meters.lon.tolist(),
                   meters.geohash.tolist(), strict=True)
        with self._lock, self._db:
            self._db.executemany(
                "INSERT INTO meters VALUES (?,?,?,?) ON CONFLICT(meter_id) DO UPDATE SET "
                "lat=excluded.lat, lon=excluded.lon, geohash=excluded.geohash", rows)

    def meters(self) -> MeterInfo:
        with self._lock:
            df = pd.read_sql_query("SELECT meter_id, lat, lon, geohash FROM meters "
                                   "ORDER BY meter_id", self._db)
        return MeterInfo.from_pandas(df)

    # -- readings ------------------------------------------------------------------------
    def release_meters(self, meter_ids: Sequence[str]) -> None:
        """Nothing to forget: every write appends, and reads deduplicate."""

    def write_readings(self, batch: ReadingBatch) -> None:
        if len(batch) == 0:
            return
        table = pa.table({
            "meter_id": pa.array(batch.meter_id.tolist(), pa.string()),
            "ts_ms": batch.ts_ms, "kwh": batch.kwh,
            "interval_s": batch.interval_s, "kind": batch.kind,
        }, schema=READINGS_SCHEMA)
        days = (batch.ts_ms // 86_400_000).astype(np.int64)
        for day in np.unique(days):
            part = table.filter(pa.array(days == day)) if len(np.unique(days)) > 1 else table
            d = pd.Timestamp(int(day) * 86_400_000, unit="ms").strftime("%Y-%m-%d")
            folder = self.root / "readings" / f"day={d}"
            folder.mkdir(parents=True, exist_ok=True)
            name = f"part-{time.time_ns()}-{os.getpid()}-{next(self._seq)}.parquet"
            tmp = folder / ("." + name)
            pq.write_table(part, tmp, compression="zstd")
            tmp.rename(folder / name)  # readers never see a half-written file

    def read_readings(self, meter_id: str, start_ms: int, end_ms: int) -> ReadingBatch:
        base = self.root / "readings"
        files = []
        if base.exists():
            first, last = start_ms // 86_400_000, (end_ms - 1) // 86_400_000
            for day in range(int(first), int(last) + 1):
                d = pd.Timestamp(day * 86_400_000, unit="ms").strftime("%Y-%m-%d")
                files += sorted(str(p) for p in (base / f"day={d}").glob("part-*.parquet"))
        if not files:
            return ReadingBatch.empty()
        f = ((ds.field("meter_id") == meter_id) & (ds.field("ts_ms") >= start_ms)
             & (ds.field("ts_ms") < end_ms))
        df = ds.dataset(files, schema=READINGS_SCHEMA).to_table(filter=f).to_pandas()
        df = df.drop_duplicates(["meter_id", "ts_ms"], keep="last").sort_values("ts_ms")
        return ReadingBatch(df["meter_id"].to_numpy(object), df["ts_ms"].to_numpy(np.int64),
                            df["kwh"].to_numpy(np.float64), df["interval_s"].to_numpy(np.uint16),
                            df["kind"].to_numpy(np.uint8))

    # -- rollups -------------------------------------------------------------------------
    def write_rollups(self, rollup: Rollup) -> None:
        if len(rollup) == 0:
            return
        rows = zip(itertools.repeat(int(rollup.resolution_s)), rollup.meter_id.tolist(),
                   rollup.window_start_ms.tolist(), rollup.kwh.tolist(),
                   rollup.readings.tolist())
        with self._lock, self._db:
            self._db.executemany(
                "INSERT INTO rollups VALUES (?,?,?,?,?) ON CONFLICT DO UPDATE SET "
                "kwh=excluded.kwh, readings=excluded.readings", rows)

    def read_rollups(self, resolution_s: int, meter_ids: Sequence[str] | None,
                     start_ms: int, end_ms: int) -> Rollup:
        sql = ("SELECT meter_id, window_start_ms, kwh, readings FROM rollups WHERE "
               "resolution_s=? AND window_start_ms>=? AND window_start_ms<?")
        params: list[Any] = [int(resolution_s), int(start_ms), int(end_ms)]
        if meter_ids is not None:
            ids = list(meter_ids)
            if not ids:
                return _empty_rollup(resolution_s)
            sql += f" AND meter_id IN ({','.join('?' * len(ids))})"
            params += ids
        with self._lock:
            df = pd.read_sql_query(sql + " ORDER BY meter_id, window_start_ms", self._db,
                                   params=params)
        return Rollup(int(resolution_s), df["meter_id"].to_numpy(object),
                      df["window_start_ms"].to_numpy(np.int64), df["kwh"].to_numpy(np.float64),
                      df["readings"].to_numpy(np.int32))

    # -- areas and events ----------------------------------------------------------------
    def write_area_rollups(self, rollup: AreaRollup) -> None:
        if len(rollup) == 0:
            return
        rows = zip(itertools.repeat(int(rollup.resolution_s)),
                   itertools.repeat(int(rollup.precision)), rollup.cell.tolist(),
                   rollup.window_start_ms.tolist(), rollup.shards().tolist(),
                   rollup.kwh.tolist(), rollup.homes.tolist(), strict=False)
        with self._lock, self._db:
            self._db.executemany("INSERT INTO area_shard_rollups VALUES (?,?,?,?,?,?,?) ON "
                                 "CONFLICT DO UPDATE SET kwh=excluded.kwh, homes=excluded.homes",
                                 rows)

    def read_area_rollups(self, resolution_s: int, precision: int, cells: Sequence[str] | None,
                          start_ms: int, end_ms: int) -> AreaRollup:
        sql = ("SELECT cell, window_start_ms, SUM(kwh) AS kwh, SUM(homes) AS homes FROM "
               "area_shard_rollups WHERE resolution_s=? AND precision=? AND window_start_ms>=? "
               "AND window_start_ms<?")
        params: list[Any] = [int(resolution_s), int(precision), int(start_ms), int(end_ms)]
        if cells is not None:
            sql += f" AND cell IN ({','.join('?' * len(cells))})"
            params += list(cells)
        with self._lock:
            df = pd.read_sql_query(sql + " GROUP BY cell, window_start_ms ORDER BY cell, "
                                   "window_start_ms", self._db, params=params)
        return AreaRollup(int(resolution_s), int(precision), df["cell"].to_numpy(object),
                          df["window_start_ms"].to_numpy(np.int64), df["kwh"].to_numpy(np.float64),
                          df["homes"].to_numpy(np.int32))

    def write_events(self, events: pd.DataFrame) -> None:
        if len(events) == 0:
            return
        rows = zip(events["ts_ms"].astype("int64").tolist(), events["meter_id"].astype(str),
                   events["kind"].astype(str), events["detail"].astype(str), strict=True)
        with self._lock, self._db:
            self._db.executemany("INSERT INTO events VALUES (?,?,?,?) ON CONFLICT DO UPDATE "
                                 "SET detail=excluded.detail", rows)

    def write_checkpoints(self, group_id: str, topic: str, states: dict[int, bytes]) -> None:
        rows = [(group_id, topic, int(p), sqlite3.Binary(b)) for p, b in states.items()]
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO checkpoints VALUES (?,?,?,?)", rows)

    def read_checkpoint(self, group_id: str, topic: str, partition: int) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT state FROM checkpoints WHERE group_id=? AND topic=? "
                                   "AND partition=?", (group_id, topic, int(partition))).fetchone()
        return None if row is None else bytes(row[0])

    def read_events(self, start_ms: int, end_ms: int) -> pd.DataFrame:
        with self._lock:
            df = pd.read_sql_query("SELECT ts_ms, meter_id, kind, detail FROM events WHERE "
                                   "ts_ms>=? AND ts_ms<? ORDER BY ts_ms, meter_id", self._db,
                                   params=[int(start_ms), int(end_ms)])
        return df.astype({"ts_ms": "int64"})

    def write_insights(self, ts_ms: int, insights: pd.DataFrame) -> None:
        rows = [(r["meter_id"], int(ts_ms), insight_json(r))
                for r in insights.to_dict("records")]
        with self._lock, self._db:
            self._db.executemany("INSERT INTO insights VALUES (?,?,?) ON CONFLICT DO UPDATE "
                                 "SET body=excluded.body", rows)

    def read_insights(self, meter_id: str, start_ms: int, end_ms: int) -> pd.DataFrame:
        with self._lock:
            rows = self._db.execute("SELECT ts_ms, body FROM insights WHERE meter_id=? AND "
                                    "ts_ms>=? AND ts_ms<? ORDER BY ts_ms",
                                    (meter_id, int(start_ms), int(end_ms))).fetchall()
        return insights_frame(rows)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _empty_rollup(resolution_s: int) -> Rollup:
    return Rollup(int(resolution_s), np.empty(0, object), np.empty(0, np.int64),
                  np.empty(0, np.float64), np.empty(0, np.int32))
