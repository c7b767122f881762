"""Detectors: outages and comms loss (per-meter silence, per cell), theft and tampering.

:class:`Detectors` is what the processor drives: it feeds each step's meter events, accepted
readings and closed one-minute rollups to the detectors, ticks the outage timer on the event
clock, and keeps the alert board (open alerts and those closed in the last hour).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from smartmeter_lib.detect.outage import OutageDetector, OutageRules
from smartmeter_lib.detect.theft import TheftDetector, TheftRules
from smartmeter_lib.model import Alert, AlertKind, MeterInfo, ReadingBatch, Rollup

__all__ = ["Detectors", "OutageRules", "TheftRules", "alert_rows", "alerts_from_events"]
BOARD_KEEP_MS = 3_600_000  # closed alerts stay on the board for an hour of event time


@dataclass
class Detectors:
    """The outage and theft detectors of one processor, and its alert board."""

    outage: OutageDetector
    theft: TheftDetector

    @classmethod
    def for_meters(cls, meters: MeterInfo, outage: OutageRules | None = None,
                   theft: TheftRules | None = None) -> Detectors:
        return cls(OutageDetector(meters, outage), TheftDetector(meters, theft))

    def __post_init__(self) -> None:
        self._closed: dict[str, Alert] = {}

    def step(self, events: ReadingBatch, accepted: ReadingBatch, rollups: Sequence[Rollup],
             now_ms: int | None) -> list[Alert]:
        """Feed one processor step; return the alerts opened, changed or closed by it.
        ``now_ms`` is the fleet's event clock (None before it is known)."""
        self.outage.on_events(events)
        self.outage.observe(accepted)
        self.theft.observe(accepted)
        changed: list[Alert] = []
        for r in rollups:
            if r.resolution_s == 60:
                changed += self.theft.on_rollup(r)
        if now_ms is not None:
            changed += self.outage.tick(now_ms)
        for a in changed:
            if not a.active:
                self._closed[a.alert_id] = a
        if now_ms is not None and self._closed:
            for k in [k for k, a in self._closed.items()
                      if (a.end_ms or 0) < now_ms - BOARD_KEEP_MS]:
                del self._closed[k]
        return changed

    def board(self) -> list[Alert]:
        """Open alerts and those closed within the last hour, oldest first."""
        alerts = self.outage.active() + self.theft.active() + list(self._closed.values())
        return sorted(alerts, key=lambda a: (a.start_ms, a.alert_id))

    def kpis(self) -> dict[str, int]:
        """Open alerts by kind, and the customers in open area outages."""
        active = self.outage.active() + self.theft.active()
        out = {f"open_{k.value.lower()}": 0 for k in AlertKind}
        for a in active:
            out[f"open_{a.kind.value.lower()}"] += 1
        out["active_outages"] = out["open_area_outage"]
        out["customers_affected"] = sum(len(a.meters) for a in active
                                        if a.kind == AlertKind.AREA_OUTAGE)
        return out


def alert_rows(alerts: Sequence[Alert]) -> pd.DataFrame:
    """Alerts as rows of the history's ``events`` table (one row per alert, upserted as it
    changes): ts = the alert's start, meter_id = its area (cell) or meter, kind = its kind,
    detail = the alert as JSON."""
    return pd.DataFrame({
        "ts_ms": [a.start_ms for a in alerts],
        "meter_id": [a.meters[0] if a.kind != AlertKind.AREA_OUTAGE else a.area
                     for a in alerts],
        "kind": [a.kind.value for a in alerts],
        "detail": [json.dumps(a.to_dict(), sort_keys=True) for a in alerts],
    })


def alerts_from_events(events: pd.DataFrame) -> list[Alert]:
    """The alerts among rows read back from the history's ``events`` table."""
    kinds = {k.value for k in AlertKind}
    rows = events[events["kind"].isin(kinds)]
    return [Alert.from_dict(json.loads(d)) for d in rows["detail"]]
