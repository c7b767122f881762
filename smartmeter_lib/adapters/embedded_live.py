"""The embedded live store: one SQLite file in WAL mode.

The pipeline writes it; dashboards in other processes (Voila kernels) read it at the same time,
with no server and no root. Snapshots (area loads, the per-meter table) are Arrow IPC blobs;
London's total load is a table trimmed to the last ``keep_s`` seconds.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from smartmeter_lib.adapters.rows import default_writer, insight_json
from smartmeter_lib.errors import BackendError
from smartmeter_lib.model import Alert, AreaStats

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshot (name TEXT PRIMARY KEY, ts_ms INTEGER, payload BLOB);
CREATE TABLE IF NOT EXISTS totals (ts_ms INTEGER PRIMARY KEY, kw REAL, homes INTEGER);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS meter_power (writer TEXT, ts_ms INTEGER, payload BLOB,
                                        PRIMARY KEY (writer, ts_ms));
"""


def _to_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _from_ipc(blob: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(blob)).read_all()


class EmbeddedLive:
    """An implementation of :class:`smartmeter_lib.adapters.base.LiveStore` in SQLite."""

    def __init__(self, path: Path | str, keep_s: int = 7200, series_keep_s: int = 900,
                 writer: str | None = None) -> None:
        """``writer``: this client's name in the per-meter view (default: host, pid and a
        random suffix); each processor writes the snapshot of the meters it holds under it."""
        self.path = Path(path)
        self.writer = writer or default_writer()
        self.keep_ms = keep_s * 1000
        self.series_keep_ms = series_keep_s * 1000
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0,
                                       isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as err:
            raise BackendError(f"cannot open the embedded live store {self.path}: {err}") from err
        self._lock = threading.Lock()
        self._meter_cache: dict[str, dict[str, int]] = {}  # snapshot name -> id -> row

    def _put_snapshot(self, name: str, ts_ms: int, table: pa.Table) -> None:
        blob = _to_ipc(table)
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO snapshot VALUES (?,?,?)",
                             (name, int(ts_ms), blob))

    def _get_snapshot(self, name: str) -> tuple[int, pa.Table] | None:
        with self._lock:
            row = self._db.execute("SELECT ts_ms, payload FROM snapshot WHERE name=?",
                                   (name,)).fetchone()
        if row is None:
            return None
        return int(row[0]), _from_ipc(row[1])

    # -- areas ---------------------------------------------------------------------------
    def put_area_stats(self, stats: AreaStats) -> None:
        table = pa.table({"cell": pa.array(stats.cell.tolist(), pa.string()),
                          "kw": stats.kw, "homes": stats.homes.astype(np.int32)})
        self._put_snapshot(f"area:{stats.precision}", stats.ts_ms, table)

    def get_area_stats(self, precision: int) -> AreaStats | None:
        got = self._get_snapshot(f"area:{precision}")
        if got is None:
            return None
        ts, t = got
        cells = np.array(t["cell"].to_pylist(), dtype=object)
        order = np.argsort(cells.astype(str), kind="stable")
        return AreaStats(ts, precision, cells[order], t["kw"].to_numpy()[order],
                         t["homes"].to_numpy().astype(np.int32)[order])

    # -- London total --------------------------------------------------------------------
    def put_total(self, ts_ms: int, kw: float, homes: int) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO totals VALUES (?,?,?)",
                             (int(ts_ms), float(kw), int(homes)))
            self._db.execute("DELETE FROM totals WHERE ts_ms < ?", (int(ts_ms) - self.keep_ms,))

    def get_totals(self, since_ms: int) -> pd.DataFrame:
        with self._lock:
            rows = self._db.execute("SELECT ts_ms, kw, homes FROM totals WHERE ts_ms >= ? "
                                    "ORDER BY ts_ms", (int(since_ms),)).fetchall()
        return pd.DataFrame(rows, columns=["ts_ms", "kw", "homes"]).astype(
            {"ts_ms": "int64", "kw": "float64", "homes": "int64"})

    # -- meters, their power series and the top consumers (one snapshot per writer) -------
    def put_meters(self, ts_ms: int, meter_id: Sequence[str] | Any, last_ts_ms: Any,
                   kw: Any, kwh_total: Any) -> None:
        table = pa.table({
            "meter_id": pa.array(list(meter_id), pa.string()),
            "last_ts_ms": np.asarray(last_ts_ms, np.int64),
            "kw": np.asarray(kw, np.float64),
            "kwh_total": np.asarray(kwh_total, np.float64),
        })
        self._put_snapshot(f"meters:{self.writer}", ts_ms, table)

    def _holders(self, meter_id: str) -> list[tuple[str, int, int, pa.Table]]:
        """(writer, position, snapshot time, snapshot) of every snapshot holding the meter."""
        with self._lock:
            names = [r[0] for r in self._db.execute(
                "SELECT name FROM snapshot WHERE name LIKE 'meters:%'").fetchall()]
        out = []
        for name in names:
            got = self._get_snapshot(name)
            if got is None:
                continue
            ts, t = got
            ids = t["meter_id"]
            index = self._meter_cache.get(name)
            i = None if index is None else index.get(meter_id)
            if i is None or i >= len(ids) or ids[i].as_py() != meter_id:
                index = self._meter_cache[name] = {m: j for j, m in enumerate(ids.to_pylist())}
                i = index.get(meter_id)
            if i is not None:
                out.append((name.split(":", 1)[1], i, ts, t))
        return out

    def _best(self, meter_id: str) -> tuple[str, int, dict[str, Any]] | None:
        """The holder with the newest reading of the meter, its position and its values."""
        best: tuple[str, int, dict[str, Any]] | None = None
        for writer, i, ts, t in self._holders(meter_id):
            row = dict(t.slice(i, 1).to_pylist()[0])
            row["snapshot_ts_ms"] = ts
            if best is None or (row["last_ts_ms"], ts) > (best[2]["last_ts_ms"],
                                                          best[2]["snapshot_ts_ms"]):
                best = (writer, i, row)
        return best

    def get_meter(self, meter_id: str) -> dict[str, Any] | None:
        best = self._best(meter_id)
        return None if best is None else best[2]

    def put_meter_power(self, ts_ms: int, kw: Any) -> None:
        blob = np.asarray(kw, np.float32).tobytes()
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meter_power VALUES (?,?,?)",
                             (self.writer, int(ts_ms), blob))
            self._db.execute("DELETE FROM meter_power WHERE ts_ms < ?",
                             (int(ts_ms) - self.series_keep_ms,))

    def get_meter_series(self, meter_id: str, since_ms: int) -> pd.DataFrame:
        best = self._best(meter_id)
        rows: list[tuple[int, float]] = []
        if best is not None:
            writer, i, _ = best
            with self._lock:
                got = self._db.execute("SELECT ts_ms, payload FROM meter_power WHERE writer=? "
                                       "AND ts_ms >= ? ORDER BY ts_ms",
                                       (writer, int(since_ms))).fetchall()
            rows = [(int(ts), float(np.frombuffer(b, np.float32, 1, 4 * i)[0]))
                    for ts, b in got if len(b) >= 4 * (i + 1)]
        return pd.DataFrame(rows, columns=["ts_ms", "kw"]).astype({"ts_ms": "int64",
                                                                   "kw": "float64"})

    def put_top_consumers(self, ts_ms: int, meter_id: Sequence[str], kw: Any) -> None:
        self._put_snapshot(f"top:{self.writer}", ts_ms, pa.table({
            "meter_id": pa.array([str(m) for m in meter_id], pa.string()),
            "kw": np.asarray(kw, np.float64)}))

    def get_top_consumers(self) -> pd.DataFrame:
        with self._lock:
            rows = self._db.execute("SELECT payload FROM snapshot WHERE name LIKE 'top:%'"
                                    ).fetchall()
        frames = [_from_ipc(r[0]).to_pandas() for r in rows]
        if not frames:
            return pd.DataFrame({"meter_id": pd.Series(dtype=str), "kw": pd.Series(dtype=float)})
        df = pd.concat(frames).groupby("meter_id", as_index=False)["kw"].max()
        return df.sort_values(["kw", "meter_id"], ascending=[False, True],
                              kind="stable").reset_index(drop=True)

    def put_alerts(self, alerts: Sequence[Alert]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO kv VALUES ('alerts', ?)",
                             (json.dumps([a.to_dict() for a in alerts]),))

    def get_active_alerts(self) -> list[Alert]:
        return [a for a in self.get_alerts() if a.active]

    def get_alerts(self) -> list[Alert]:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key='alerts'").fetchone()
        alerts = [] if row is None else [Alert.from_dict(d) for d in json.loads(row[0])]
        return sorted(alerts, key=lambda a: (a.start_ms, a.alert_id))

    def put_insights(self, ts_ms: int, insights: pd.DataFrame) -> None:
        body = json.dumps({r["meter_id"]: json.loads(insight_json(r))
                           for r in insights.to_dict("records")})
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO kv VALUES ('insights', ?)", (body,))
            self._db.execute("INSERT OR REPLACE INTO kv VALUES ('insights_ts', ?)",
                             (str(int(ts_ms)),))

    def get_insights(self, meter_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key='insights'").fetchone()
            ts = self._db.execute("SELECT value FROM kv WHERE key='insights_ts'").fetchone()
        if row is None:
            return None
        got = json.loads(row[0]).get(meter_id)
        return None if got is None else {**got, "ts_ms": int(ts[0])}

    # -- KPIs ----------------------------------------------------------------------------
    def put_kpis(self, kpis: dict[str, float | int | str]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO kv VALUES ('kpis', ?)",
                             (json.dumps(kpis),))

    def get_kpis(self) -> dict[str, Any]:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key='kpis'").fetchone()
        return {} if row is None else dict(json.loads(row[0]))

    def clear(self) -> None:
        with self._lock:
            for t in ("snapshot", "totals", "kv", "meter_power"):
                self._db.execute(f"DELETE FROM {t}")
        self._meter_cache = {}

    def close(self) -> None:
        with self._lock:
            self._db.close()
