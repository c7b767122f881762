"""Read one meter's history back at a chosen resolution, as CSV or Parquet.

=========== ==================================================================================
resolution  source
=========== ==================================================================================
1s          the raw readings (``HistoryStore.read_readings``), each at its own timestamp and
            interval (half-hourly readings of a replayed file stay half-hourly)
1min, 30min the processor's rollups (``read_rollups(60 | 1800)``); if the range has none, the
            raw readings binned (those whose interval fits the resolution)
1d          the 30-minute rollups summed per UTC day; a day without rollups is summed from its
            raw readings
=========== ==================================================================================

The output has two columns: ``timestamp`` (the interval start, UTC, ISO 8601 with a ``Z`` in
CSV) and ``kwh``. Rows cover windows that start in ``[start, end)``.
"""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from smartmeter_lib.adapters.base import HistoryStore
from smartmeter_lib.errors import ConfigError
from smartmeter_lib.model import Kind

log = logging.getLogger(__name__)
RESOLUTIONS = {"1s": 1, "1min": 60, "30min": 1800, "1d": 86400}
FORMATS = ("csv", "parquet")
_DAY_MS = 86_400_000


def _frame(ts_ms: np.ndarray, kwh: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame({"timestamp": pd.to_datetime(np.asarray(ts_ms, np.int64), unit="ms",
                                                   utc=True),
                       "kwh": np.asarray(kwh, np.float64)})
    return df.sort_values("timestamp", kind="stable").reset_index(drop=True)


def _raw(history: HistoryStore, meter_id: str, start_ms: int, end_ms: int,
         resolution_s: int) -> pd.DataFrame:
    """Raw readings summed into windows of ``resolution_s`` (those whose interval fits)."""
    b = history.read_readings(meter_id, start_ms, end_ms)
    b = b.take(b.kind == Kind.READING)
    if resolution_s <= 1:
        return _frame(b.ts_ms, b.kwh)
    fits = b.interval_s <= resolution_s
    if (~fits).any():
        log.warning("%d readings of %s are longer than %d s and left out", int((~fits).sum()),
                    meter_id, resolution_s)
    span = resolution_s * 1000
    win = b.ts_ms[fits] // span * span
    if not len(win):
        return _frame(np.empty(0, np.int64), np.empty(0))
    s = pd.Series(b.kwh[fits]).groupby(win).sum()
    return _frame(s.index.to_numpy(np.int64), s.to_numpy())


def export_meter(history: HistoryStore, meter_id: str, start: pd.Timestamp, end: pd.Timestamp,
                 resolution: str = "30min") -> pd.DataFrame:
    """One meter's energy per window: columns ``timestamp`` (UTC) and ``kwh``."""
    if resolution not in RESOLUTIONS:
        raise ConfigError(f"resolution must be one of {', '.join(RESOLUTIONS)}, "
                          f"got {resolution!r}")
    start_ms, end_ms = int(start.value // 1_000_000), int(end.value // 1_000_000)
    if end_ms <= start_ms:
        raise ConfigError(f"--to ({end}) must be after --from ({start})")
    res = RESOLUTIONS[resolution]
    if res == 1:
        return _raw(history, meter_id, start_ms, end_ms, 1)
    if res in (60, 1800):
        r = history.read_rollups(res, [meter_id], start_ms, end_ms)
        if len(r):
            return _frame(r.window_start_ms, r.kwh)
        log.info("no %s rollups of %s in range; summing raw readings", resolution, meter_id)
        return _raw(history, meter_id, start_ms, end_ms, res)
    r = history.read_rollups(1800, [meter_id], start_ms, end_ms)
    days = pd.Series(r.kwh).groupby(r.window_start_ms // _DAY_MS * _DAY_MS).sum()
    parts = [days]
    first, last = start_ms // _DAY_MS, (end_ms - 1) // _DAY_MS
    have = set((days.index // _DAY_MS).tolist())
    for d in range(int(first), int(last) + 1):
        if d in have:
            continue
        lo, hi = max(start_ms, d * _DAY_MS), min(end_ms, (d + 1) * _DAY_MS)
        raw = _raw(history, meter_id, lo, hi, 1)
        if len(raw):
            parts.append(pd.Series([raw["kwh"].sum()], index=[d * _DAY_MS]))
    out = pd.concat(parts) if len(parts) > 1 else days
    return _frame(out.index.to_numpy(np.int64), out.to_numpy())


def to_csv_text(df: pd.DataFrame) -> str:
    """CSV text: ``timestamp`` as ISO 8601 UTC with a ``Z``, ``kwh`` at full precision."""
    ts = df["timestamp"]
    fine = bool(len(ts)) and bool((ts.dt.microsecond != 0).any())
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if fine else "%Y-%m-%dT%H:%M:%SZ"
    kwh = [repr(float(x)) for x in df["kwh"].tolist()]
    out = pd.DataFrame({"timestamp": ts.dt.strftime(fmt), "kwh": kwh})
    buf = io.StringIO()
    out.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue()


def write_export(df: pd.DataFrame, output: Path | None, fmt: str,
                 stdout: TextIO | None = None) -> None:
    """Write the export to ``output`` (or stdout for CSV)."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be csv or parquet, got {fmt!r}")
    if fmt == "parquet":
        if output is None:
            raise ConfigError("--format parquet needs --output FILE")
        table = pa.table({"timestamp": pa.array(df["timestamp"].dt.tz_convert(None)
                                                .to_numpy("datetime64[ms]"),
                                                pa.timestamp("ms", tz="UTC")),
                          "kwh": pa.array(df["kwh"].to_numpy(np.float64))})
        output.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, output)
        return
    text = to_csv_text(df)
    if output is None:
        (stdout or sys.stdout).write(text)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
