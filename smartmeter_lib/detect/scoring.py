"""Score alerts against a scenario's ground truth (pure functions over frames).

A *unit* of truth is what one correct alert stands for:

- an area outage: one (event, geohash-6 cell) pair, from its first to its last home's end;
- a comms loss, a theft (bypass or reversed) or a stuck meter: one (event, meter) pair.

An alert *matches* a unit of its kind when it names the unit's cell (area outages) or meter,
and the alert's span [start, end] overlaps the unit's span widened by ``slack_ms``.
Precision = alerts that match a unit / alerts; recall = units matched / units;
time to detect = the earliest matching alert's ``detected_ms`` minus the unit's start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from smartmeter_lib.model import Alert, AlertKind

#: which label kinds each alert kind answers
TRUTH = {AlertKind.AREA_OUTAGE: ("area_outage",), AlertKind.COMMS_LOSS: ("comms_loss",),
         AlertKind.SUSPECTED_THEFT: ("bypass", "reversed"), AlertKind.METER_FAULT: ("stuck",)}
ROW_NAMES = {AlertKind.AREA_OUTAGE: "area outage", AlertKind.COMMS_LOSS: "comms loss",
             AlertKind.SUSPECTED_THEFT: "theft", AlertKind.METER_FAULT: "stuck meter"}


@dataclass(frozen=True)
class Score:
    kind: AlertKind
    units: int
    alerts: int
    true_alerts: int
    detected: int
    ttd_s: tuple[float, ...]

    @property
    def precision(self) -> float:
        return self.true_alerts / self.alerts if self.alerts else float("nan")

    @property
    def recall(self) -> float:
        return self.detected / self.units if self.units else float("nan")

    @property
    def ttd_median_s(self) -> float:
        return float(np.median(self.ttd_s)) if self.ttd_s else float("nan")

    @property
    def ttd_p95_s(self) -> float:
        return float(np.percentile(self.ttd_s, 95)) if self.ttd_s else float("nan")


def truth_units(labels: pd.DataFrame, kind: AlertKind) -> pd.DataFrame:
    """Columns unit, key (cell or meter), start_ms, end_ms."""
    rows = labels[labels["kind"].isin(TRUTH[kind])]
    key = "area" if kind == AlertKind.AREA_OUTAGE else "meter_id"
    if rows.empty:
        return pd.DataFrame({"unit": [], "key": [], "start_ms": [], "end_ms": []})
    g = rows.groupby(["event_id", key], sort=True).agg(start_ms=("start_ms", "min"),
                                                      end_ms=("end_ms", "max")).reset_index()
    g["unit"] = g["event_id"].astype(str) + "/" + g[key].astype(str)
    return g.rename(columns={key: "key"})[["unit", "key", "start_ms", "end_ms"]]


def score(alerts: Sequence[Alert], labels: pd.DataFrame, kind: AlertKind,
          slack_ms: int = 60_000, end_of_run_ms: int | None = None) -> Score:
    """Precision, recall and time to detect of ``alerts`` of ``kind``."""
    units = truth_units(labels, kind)
    mine = [a for a in alerts if a.kind == kind]
    by_key: dict[str, list[int]] = {}
    for i, k in enumerate(units["key"].tolist()):
        by_key.setdefault(str(k), []).append(i)
    starts = units["start_ms"].to_numpy(np.int64)
    ends = units["end_ms"].to_numpy(np.int64)
    first: dict[int, float] = {}
    true_alerts = 0
    horizon = end_of_run_ms if end_of_run_ms is not None else np.iinfo(np.int64).max
    for a in mine:
        keys = [a.area] if kind == AlertKind.AREA_OUTAGE else list(a.meters)
        a_end = a.end_ms if a.end_ms is not None else horizon
        hit = False
        for k in keys:
            for u in by_key.get(k, []):
                if a.start_ms <= ends[u] + slack_ms and a_end >= starts[u] - slack_ms:
                    hit = True
                    t = (a.detected_ms if a.detected_ms is not None else a.start_ms)
                    ttd = max(0.0, (t - starts[u]) / 1000)
                    first[u] = min(first.get(u, ttd), ttd)
        true_alerts += hit
    return Score(kind, len(units), len(mine), true_alerts, len(first),
                 tuple(sorted(first.values())))


def comms_as_outage(alerts: Sequence[Alert], labels: pd.DataFrame) -> int:
    """Area-outage alerts that match no outage but whose cell holds a comms-loss meter."""
    out_units = truth_units(labels, AlertKind.AREA_OUTAGE)
    comms = labels[labels["kind"] == "comms_loss"]
    bad = 0
    for a in alerts:
        if a.kind != AlertKind.AREA_OUTAGE:
            continue
        u = out_units[out_units["key"] == a.area]
        matched = ((u["start_ms"] - 60_000 <= (a.end_ms or a.start_ms))
                   & (u["end_ms"] + 60_000 >= a.start_ms)).any()
        if not matched and (comms["area"] == a.area).any():
            bad += 1
    return bad


def score_table(scores: Sequence[Score], name: str) -> pd.DataFrame:
    return pd.DataFrame([{
        "detector": name, "class": ROW_NAMES[s.kind], "truth": s.units, "alerts": s.alerts,
        "precision": s.precision, "recall": s.recall,
        "ttd_median_s": s.ttd_median_s, "ttd_p95_s": s.ttd_p95_s} for s in scores])
