"""The Cassandra history store (cassandra-driver; prepared statements only).

Data model (documented in docs/data-contracts.md):

- ``reading_chunks`` partitioned by ``(meter_id, day)``: one row per meter per minute holding
  that minute's readings as a compact blob (:mod:`smartmeter_lib.adapters.chunks`), 1,440 rows
  per partition, so no partition is hot (the prototype keyed a table by timestamp alone, which
  put every home into one partition each second). Merging is in
  :mod:`smartmeter_lib.adapters.cassandra_readings`.
- ``rollups`` partitioned by ``(meter_id, resolution_s, month)``.
- ``meters``: the registry.

Every write is an upsert keyed by meter and time: replaying the same data does not double count.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from cassandra import ConsistencyLevel
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
    Session,
)
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.query import PreparedStatement, tuple_factory

from smartmeter_lib.adapters.cassandra_readings import ChunkStore
from smartmeter_lib.adapters.rows import insight_json, insights_frame
from smartmeter_lib.config import Settings
from smartmeter_lib.errors import BackendError
from smartmeter_lib.model import AreaRollup, MeterInfo, ReadingBatch, Rollup

log = logging.getLogger(__name__)
DAY_MS = 86_400_000
_EPOCH = dt.datetime(1970, 1, 1)


def schema_statements(keyspace: str, replication: int = 1) -> list[str]:
    """The CQL that creates the keyspace and tables (idempotent). ``keyspace`` is validated by
    the settings (letters, digits, _), since CQL cannot bind identifiers."""
    ks = keyspace
    return [
        f"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = "
        f"{{'class': 'SimpleStrategy', 'replication_factor': {int(replication)}}}",
        f"CREATE TABLE IF NOT EXISTS {ks}.meters (meter_id text PRIMARY KEY, lat double, "
        "lon double, geohash text)",
        f"CREATE TABLE IF NOT EXISTS {ks}.reading_chunks (meter_id text, day date, "
        "minute smallint, chunk blob, PRIMARY KEY ((meter_id, day), minute)) "
        "WITH CLUSTERING ORDER BY (minute ASC) AND compression = "
        "{'class': 'ZstdCompressor', 'chunk_length_in_kb': 64} AND compaction = {'class': "
        "'TimeWindowCompactionStrategy', 'compaction_window_unit': 'DAYS', "
        "'compaction_window_size': 1}",
        f"CREATE TABLE IF NOT EXISTS {ks}.rollups (meter_id text, resolution_s int, month int, "
        "window_start timestamp, kwh double, readings int, "
        "PRIMARY KEY ((meter_id, resolution_s, month), window_start)) "
        "WITH CLUSTERING ORDER BY (window_start ASC)",
        f"CREATE TABLE IF NOT EXISTS {ks}.area_shard_rollups (cell text, precision int, "
        "resolution_s int, month int, window_start timestamp, shard int, kwh double, "
        "homes int, PRIMARY KEY ((cell, precision, resolution_s, month), window_start, shard)) "
        "WITH CLUSTERING ORDER BY (window_start ASC, shard ASC)",
        f"CREATE TABLE IF NOT EXISTS {ks}.area_cells (precision int, cell text, "
        "PRIMARY KEY (precision, cell))",
        f"CREATE TABLE IF NOT EXISTS {ks}.insights (meter_id text, month int, ts timestamp, "
        "body text, PRIMARY KEY ((meter_id, month), ts))",
        f"CREATE TABLE IF NOT EXISTS {ks}.events (day date, ts timestamp, meter_id text, "
        "kind text, detail text, PRIMARY KEY ((day), ts, meter_id, kind))",
        f"CREATE TABLE IF NOT EXISTS {ks}.checkpoints (group_id text, topic text, "
        "partition int, state blob, PRIMARY KEY ((group_id, topic), partition))",
    ]


def _day(ms: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=ms // DAY_MS)


def _month(ms: int) -> int:
    d = _day(ms)
    return d.year * 100 + d.month


def _months(start_ms: int, end_ms: int) -> list[int]:
    out, d = [], _day(start_ms).replace(day=1)
    last = _day(max(start_ms, end_ms - 1))
    while d <= last:
        out.append(d.year * 100 + d.month)
        d = (d.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return out


class CassandraHistory:
    """An implementation of :class:`smartmeter_lib.adapters.base.HistoryStore` on Cassandra."""

    def __init__(self, settings: Settings, keyspace: str | None = None,
                 replication: int = 1, concurrency: int = 64) -> None:
        self.keyspace = keyspace or settings.cassandra_keyspace
        self.replication = replication
        self.concurrency = concurrency
        auth = None
        if settings.cassandra_username:
            pw = (settings.cassandra_password.get_secret_value()
                  if settings.cassandra_password else "")
            auth = PlainTextAuthProvider(settings.cassandra_username, pw)
        hosts = [h.strip() for h in settings.cassandra_hosts.split(",") if h.strip()]
        profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
            consistency_level=ConsistencyLevel.LOCAL_QUORUM,
            request_timeout=settings.cassandra_request_timeout_s)
        tuples = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
            consistency_level=ConsistencyLevel.LOCAL_QUORUM,
            request_timeout=settings.cassandra_request_timeout_s, row_factory=tuple_factory)
        self.cluster = Cluster(hosts, port=settings.cassandra_port, auth_provider=auth,
                               protocol_version=5, connect_timeout=15,
                               execution_profiles={EXEC_PROFILE_DEFAULT: profile,
                                                   "tuples": tuples})
        try:
            self.session: Session = self.cluster.connect()
        except NoHostAvailable as err:
            self.cluster.shutdown()
            raise BackendError(f"Cassandra at {settings.cassandra_hosts}:"
                               f"{settings.cassandra_port} does not answer: {err}") from err
        self._ps: dict[str, PreparedStatement] = {}
        self.init_schema()

    def init_schema(self) -> None:
        for stmt in schema_statements(self.keyspace, self.replication):
            self.session.execute(stmt, timeout=120)
        ks = self.keyspace
        q = {
            "meter_ins": f"INSERT INTO {ks}.meters (meter_id, lat, lon, geohash) VALUES (?,?,?,?)",
            "meters": f"SELECT meter_id, lat, lon, geohash FROM {ks}.meters",
            "chunk_ins": f"INSERT INTO {ks}.reading_chunks (meter_id, day, minute, chunk) "
                         "VALUES (?,?,?,?)",
            "chunk_sel": f"SELECT minute, chunk FROM {ks}.reading_chunks WHERE meter_id=? "
                         "AND day=? AND minute>=? AND minute<=?",
            "roll_ins": f"INSERT INTO {ks}.rollups (meter_id, resolution_s, month, window_start, "
                        "kwh, readings) VALUES (?,?,?,?,?,?)",
            "roll_sel": f"SELECT window_start, kwh, readings FROM {ks}.rollups WHERE meter_id=? "
                        "AND resolution_s=? AND month=? AND window_start>=? AND window_start<?",
            "area_ins": f"INSERT INTO {ks}.area_shard_rollups (cell, precision, resolution_s, "
                        "month, window_start, shard, kwh, homes) VALUES (?,?,?,?,?,?,?,?)",
            "area_sel": f"SELECT window_start, kwh, homes FROM {ks}.area_shard_rollups WHERE "
                        "cell=? AND precision=? AND resolution_s=? AND month=? AND "
                        "window_start>=? AND window_start<?",
            "cell_ins": f"INSERT INTO {ks}.area_cells (precision, cell) VALUES (?,?)",
            "cell_sel": f"SELECT cell FROM {ks}.area_cells WHERE precision=?",
            "ins_ins": f"INSERT INTO {ks}.insights (meter_id, month, ts, body) VALUES (?,?,?,?)",
            "ins_sel": f"SELECT ts, body FROM {ks}.insights WHERE meter_id=? AND month=? AND "
                       "ts>=? AND ts<?",
            "ck_ins": f"INSERT INTO {ks}.checkpoints (group_id, topic, partition, state) "
                      "VALUES (?,?,?,?)",
            "ck_sel": f"SELECT state FROM {ks}.checkpoints WHERE group_id=? AND topic=? AND "
                      "partition=?",
            "ev_ins": f"INSERT INTO {ks}.events (day, ts, meter_id, kind, detail) "
                      "VALUES (?,?,?,?,?)",
            "ev_sel": f"SELECT ts, meter_id, kind, detail FROM {ks}.events WHERE day=? AND "
                      "ts>=? AND ts<?",
        }
        self._ps = {k: self.session.prepare(v) for k, v in q.items()}
        self._chunks = ChunkStore(self.session, self._ps["chunk_ins"], self._ps["chunk_sel"],
                                  ks, self.concurrency, profile="tuples")

    def _run(self, name: str, rows: Iterable[Sequence[Any]]) -> list[Any]:
        results = execute_concurrent_with_args(self.session, self._ps[name], list(rows),
                                               concurrency=self.concurrency,
                                               raise_on_first_error=False)
        out = []
        for ok, res in results:
            if not ok:
                raise BackendError(f"Cassandra {name} on keyspace {self.keyspace}: {res}")
            out.append(res)
        return out

    # -- meters --------------------------------------------------------------------------
    def register_meters(self, meters: MeterInfo) -> None:
        self._run("meter_ins", zip(meters.meter_id.tolist(), meters.lat.tolist(),
                                   meters.lon.tolist(), meters.geohash.tolist(), strict=True))

    def meters(self) -> MeterInfo:
        rows = sorted(self.session.execute(self._ps["meters"]), key=lambda r: r.meter_id)
        return MeterInfo(np.array([r.meter_id for r in rows], dtype=object),
                         np.array([r.lat for r in rows], np.float64),
                         np.array([r.lon for r in rows], np.float64),
                         np.array([r.geohash for r in rows], dtype=object))

    # -- readings ------------------------------------------------------------------------
    def write_readings(self, batch: ReadingBatch) -> None:
        """Merge ``batch`` into the per-minute chunks and write each touched chunk whole.

        See :mod:`smartmeter_lib.adapters.cassandra_readings` for how (idempotent)."""
        self._chunks.write(batch)

    def release_meters(self, meter_ids: Sequence[str]) -> None:
        self._chunks.forget(meter_ids)

    def read_readings(self, meter_id: str, start_ms: int, end_ms: int) -> ReadingBatch:
        return self._chunks.read(meter_id, start_ms, end_ms)

    # -- rollups -------------------------------------------------------------------------
    def write_rollups(self, rollup: Rollup) -> None:
        if len(rollup) == 0:
            return
        epoch = dt.datetime(1970, 1, 1)
        r = int(rollup.resolution_s)
        self._run("roll_ins", ((m, r, _month(w), epoch + dt.timedelta(milliseconds=w), k, n)
                               for m, w, k, n in zip(rollup.meter_id.tolist(),
                                                     rollup.window_start_ms.tolist(),
                                                     rollup.kwh.tolist(),
                                                     rollup.readings.tolist(), strict=True)))

    def read_rollups(self, resolution_s: int, meter_ids: Sequence[str] | None,
                     start_ms: int, end_ms: int) -> Rollup:
        ids = sorted(self.meters().meter_id.tolist() if meter_ids is None else meter_ids)
        epoch = dt.datetime(1970, 1, 1)
        lo = epoch + dt.timedelta(milliseconds=start_ms)
        hi = epoch + dt.timedelta(milliseconds=end_ms)
        args = [(m, int(resolution_s), mo, lo, hi) for m in ids
                for mo in _months(start_ms, end_ms)]
        mid, ws, kwh, n = [], [], [], []
        for (m, *_), res in zip(args, self._run("roll_sel", args), strict=True):
            for row in res:
                mid.append(m)
                ws.append(int((row.window_start - epoch).total_seconds() * 1000))
                kwh.append(row.kwh)
                n.append(row.readings)
        return Rollup(int(resolution_s), np.array(mid, dtype=object), np.array(ws, np.int64),
                      np.array(kwh, np.float64), np.array(n, np.int32))

    # -- areas and events ----------------------------------------------------------------
    def write_area_rollups(self, rollup: AreaRollup) -> None:
        if len(rollup) == 0:
            return
        r, p = int(rollup.resolution_s), int(rollup.precision)
        cells = rollup.cell.tolist()
        self._run("area_ins", ((c, p, r, _month(w), _EPOCH + dt.timedelta(milliseconds=w), sh,
                                k, h)
                               for c, w, sh, k, h in zip(cells, rollup.window_start_ms.tolist(),
                                                         rollup.shards().tolist(),
                                                         rollup.kwh.tolist(),
                                                         rollup.homes.tolist(), strict=True)))
        self._run("cell_ins", ((p, c) for c in sorted(set(cells))))

    def read_area_rollups(self, resolution_s: int, precision: int, cells: Sequence[str] | None,
                          start_ms: int, end_ms: int) -> AreaRollup:
        if cells is None:
            cells = [r.cell for r in self.session.execute(self._ps["cell_sel"], (precision,))]
        lo = _EPOCH + dt.timedelta(milliseconds=start_ms)
        hi = _EPOCH + dt.timedelta(milliseconds=end_ms)
        args = [(c, int(precision), int(resolution_s), mo, lo, hi) for c in sorted(cells)
                for mo in _months(start_ms, end_ms)]
        sums: dict[tuple[str, int], list[float]] = {}  # (cell, window) -> [kwh, homes]
        for (c, *_), res in zip(args, self._run("area_sel", args), strict=True):
            for row in res:  # one row per shard: their sum is the cell's
                w = int((row.window_start - _EPOCH).total_seconds() * 1000)
                acc = sums.setdefault((c, w), [0.0, 0])
                acc[0] += row.kwh
                acc[1] += row.homes
        keys = sorted(sums)
        return AreaRollup(int(resolution_s), int(precision),
                          np.array([c for c, _ in keys], dtype=object),
                          np.array([w for _, w in keys], np.int64),
                          np.array([sums[k][0] for k in keys], np.float64),
                          np.array([sums[k][1] for k in keys], np.int32))

    def write_events(self, events: pd.DataFrame) -> None:
        if len(events) == 0:
            return
        self._run("ev_ins", ((_day(t), _EPOCH + dt.timedelta(milliseconds=t), str(m), str(k),
                              str(d)) for t, m, k, d in
                             zip(events["ts_ms"].astype("int64").tolist(), events["meter_id"],
                                 events["kind"], events["detail"], strict=True)))

    def read_events(self, start_ms: int, end_ms: int) -> pd.DataFrame:
        lo = _EPOCH + dt.timedelta(milliseconds=start_ms)
        hi = _EPOCH + dt.timedelta(milliseconds=end_ms)
        days = range(start_ms // DAY_MS, max(start_ms, end_ms - 1) // DAY_MS + 1)
        rows = [(int((r.ts - _EPOCH).total_seconds() * 1000), r.meter_id, r.kind, r.detail)
                for res in self._run("ev_sel", [(_day(d * DAY_MS), lo, hi) for d in days])
                for r in res]
        df = pd.DataFrame(rows, columns=["ts_ms", "meter_id", "kind", "detail"])
        return df.astype({"ts_ms": "int64"}).sort_values(["ts_ms", "meter_id"],
                                                         ignore_index=True)

    def write_insights(self, ts_ms: int, insights: pd.DataFrame) -> None:
        ts = _EPOCH + dt.timedelta(milliseconds=int(ts_ms))
        self._run("ins_ins", ((r["meter_id"], _month(int(ts_ms)), ts, insight_json(r))
                              for r in insights.to_dict("records")))

    def read_insights(self, meter_id: str, start_ms: int, end_ms: int) -> pd.DataFrame:
        lo = _EPOCH + dt.timedelta(milliseconds=start_ms)
        hi = _EPOCH + dt.timedelta(milliseconds=end_ms)
        res = self._run("ins_sel", [(meter_id, m, lo, hi) for m in _months(start_ms, end_ms)])
        return insights_frame((int((r.ts - _EPOCH).total_seconds() * 1000), r.body)
                              for part in res for r in part)

    def write_checkpoints(self, group_id: str, topic: str, states: dict[int, bytes]) -> None:
        self._run("ck_ins", [(group_id, topic, int(p), b) for p, b in states.items()])

    def read_checkpoint(self, group_id: str, topic: str, partition: int) -> bytes | None:
        (res,) = self._run("ck_sel", [(group_id, topic, int(partition))])
        rows = list(res)
        return None if not rows else bytes(rows[0].state)

    def drop_keyspace(self) -> None:
        self.session.execute(f"DROP KEYSPACE IF EXISTS {self.keyspace}", timeout=120)

    def close(self) -> None:
        self.cluster.shutdown()
