"""Processor state per partition, stored in history at each commit and restored on assignment.

A processor commits its offsets only after the sinks hold the data; just before each commit it
also stores, for every partition it holds, the state of that partition's meters: the open
one-second windows, the open 1-min, 30-min and daily windows, each meter's last reading and
running kWh, and the silence detector's memory (last reading, latest gap, last gasp). The
state and the committed offsets describe the same point of the stream, so a processor that
takes the partition over (after a crash, a restart or a rebalance) restores the state and
reads on from the committed offset: nothing is counted twice and nothing is missed.

Not restored: the theft detector's baseload history (it rebuilds in ``history_min``), and the
open alerts (they are raised again with the same ids, so the alert topic and history get
upserts, not duplicates).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from smartmeter_lib.detect.outage import OutageDetector
from smartmeter_lib.errors import DataError
from smartmeter_lib.stream.windows import WindowedAggregator, _Second, _Window

VERSION = 1
_OUTAGE = ("gasp_ms", "seen_ms", "gap_from", "gap_to")


def export_state(agg: WindowedAggregator, outage: OutageDetector,
                 idx: npt.NDArray[np.intp]) -> bytes:
    """The state of the meters at positions ``idx`` as compressed bytes."""
    arrays: dict[str, Any] = {
        "version": np.array([VERSION]),
        "meter_id": np.asarray(agg.meters.meter_id[idx], dtype=str),
        "clocks": np.array([-1 if v is None else v for v in
                            (agg.max_event_ms, agg.event_clock_ms, agg.closed_until_ms)],
                           np.int64),
        "last_ts": agg.last_ts[idx], "last_kw": agg.last_kw[idx],
        "kwh_total": agg.kwh_total[idx],
    }
    m = len(idx)
    secs = sorted(agg._seconds)
    arrays["sec_start"] = np.array(secs, np.int64)
    arrays["sec_kw"] = np.array([agg._seconds[s].kw[idx] for s in secs]).reshape(len(secs), m)
    arrays["sec_seen"] = np.array([agg._seconds[s].seen_ts[idx] for s in secs],
                                  np.int64).reshape(len(secs), m)
    for r, wins in agg._windows.items():
        starts = sorted(wins)
        arrays[f"w{r}_start"] = np.array(starts, np.int64)
        arrays[f"w{r}_kwh"] = np.array([wins[s].kwh[idx] for s in starts]).reshape(
            len(starts), m)
        arrays[f"w{r}_count"] = np.array([wins[s].count[idx] for s in starts],
                                         np.int32).reshape(len(starts), m)
    for name in _OUTAGE:
        arrays[f"o_{name}"] = getattr(outage, name)[idx]
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def import_state(agg: WindowedAggregator, outage: OutageDetector, blob: bytes,
                 where: str = "checkpoint") -> npt.NDArray[np.intp]:
    """Merge a stored state into ``agg`` and ``outage``; the positions of its meters."""
    try:
        z = np.load(io.BytesIO(blob), allow_pickle=False)
        version = int(z["version"][0])
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"{where}: unreadable processor state: {err}") from err
    if version != VERSION:
        raise DataError(f"{where}: processor state version {version}, this build reads "
                        f"{VERSION}; delete the checkpoint to start the windows afresh")
    pos = agg._index.get_indexer(pd.Index(z["meter_id"].astype(object)))
    known = pos >= 0
    idx = pos[known].astype(np.intp)
    max_ev, clock, closed = (int(v) for v in z["clocks"])

    def later(a: int | None, b: int) -> int | None:
        if b < 0:
            return a
        return b if a is None else max(a, b)

    agg.max_event_ms = later(agg.max_event_ms, max_ev)
    agg.event_clock_ms = later(agg.event_clock_ms, clock)
    agg.closed_until_ms = later(agg.closed_until_ms, closed)
    agg.last_ts[idx] = z["last_ts"][known]
    agg.last_kw[idx] = z["last_kw"][known]
    agg.kwh_total[idx] = z["kwh_total"][known]
    for k, s in enumerate(z["sec_start"].tolist()):
        w = agg._seconds.get(s)
        if w is None:
            w = agg._seconds[s] = _Second(np.zeros(agg.n), np.full(agg.n, -1, np.int64))
        w.kw[idx] = z["sec_kw"][k][known]
        w.seen_ts[idx] = z["sec_seen"][k][known]
    for r, wins in agg._windows.items():
        if f"w{r}_start" not in z:
            continue
        for k, s in enumerate(z[f"w{r}_start"].tolist()):
            w2 = wins.get(s)
            if w2 is None:
                w2 = wins[s] = _Window(np.zeros(agg.n), np.zeros(agg.n, np.int32))
            w2.kwh[idx] = z[f"w{r}_kwh"][k][known]
            w2.count[idx] = z[f"w{r}_count"][k][known]
    for name in _OUTAGE:
        getattr(outage, name)[idx] = z[f"o_{name}"][known]
    return idx


def drop_state(agg: WindowedAggregator, outage: OutageDetector,
               idx: npt.NDArray[np.intp]) -> None:
    """Forget the meters at ``idx`` (their partition went to another processor)."""
    for w in agg._seconds.values():
        w.kw[idx] = 0.0
        w.seen_ts[idx] = -1
    for wins in agg._windows.values():
        for w2 in wins.values():
            w2.kwh[idx] = 0.0
            w2.count[idx] = 0
    for name in _OUTAGE:
        getattr(outage, name)[idx] = -1
