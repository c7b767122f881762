"""``smartmeter evaluate``: run a scenario through the embedded pipeline, faster than real time,
and score the alerts against the simulator's labels, beside the 2020 prototype's rule."""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from smartmeter_lib import geo
from smartmeter_lib.adapters import open_history
from smartmeter_lib.config import Settings
from smartmeter_lib.detect import alerts_from_events
from smartmeter_lib.detect.scoring import comms_as_outage, score, score_table
from smartmeter_lib.errors import ConfigError
from smartmeter_lib.model import Alert, AlertKind, Kind, MeterInfo, ReadingBatch
from smartmeter_lib.simulate.households import HouseholdFleet
from smartmeter_lib.simulate.pipeline import RunStats, run_simulation
from smartmeter_lib.simulate.scenario import Scenario, resolve_events

log = logging.getLogger(__name__)
KINDS = (AlertKind.AREA_OUTAGE, AlertKind.COMMS_LOSS, AlertKind.SUSPECTED_THEFT,
         AlertKind.METER_FAULT)


class PrototypeRule:
    """The 2020 prototype: per meter, a 5-s tumbling window averaging at most 0.0001 kWh per
    reading means "outage", at least 0.00065 means "theft". Consecutive flagged windows of a
    meter make one alert."""

    def __init__(self, meters: MeterInfo, window_s: int = 5, outage_max: float = 0.0001,
                 theft_min: float = 0.00065) -> None:
        self.meters, self.window_ms = meters, window_s * 1000
        self.outage_max, self.theft_min = outage_max, theft_min
        self.n = len(meters)
        self._index = pd.Index(meters.meter_id)
        self.cells = geo.truncate(meters.geohash, 6)
        self._win: int | None = None
        self._sum = np.zeros(self.n)
        self._count = np.zeros(self.n)
        self._open: dict[tuple[str, int], list[int]] = {}  # (flag, meter) -> [start, end, seen]
        self.episodes: list[tuple[str, int, int, int, int]] = []  # flag, meter, start, end, det

    def observe(self, batch: ReadingBatch) -> None:
        b = batch.take(batch.kind == Kind.READING)
        if len(b) == 0:
            return
        w = int(b.ts_ms.min()) // self.window_ms * self.window_ms
        if self._win is not None and w != self._win:
            self._close_window()
        self._win = w
        idx = self._index.get_indexer(pd.Index(b.meter_id))
        ok = idx >= 0
        self._sum += np.bincount(idx[ok], weights=b.kwh[ok], minlength=self.n)
        self._count += np.bincount(idx[ok], minlength=self.n)

    def _close_window(self) -> None:
        assert self._win is not None
        start, end = self._win, self._win + self.window_ms
        has = self._count > 0
        mean = np.divide(self._sum, self._count, out=np.zeros(self.n), where=has)
        for flag, hit in (("outage", has & (mean <= self.outage_max)),
                          ("theft", has & (mean >= self.theft_min))):
            for m in np.flatnonzero(hit).tolist():
                ep = self._open.get((flag, m))
                if ep is not None and ep[1] == start:
                    ep[1] = end
                else:
                    if ep is not None:
                        self.episodes.append((flag, m, ep[0], ep[1], ep[2]))
                    self._open[(flag, m)] = [start, end, end]
        self._sum[:] = 0
        self._count[:] = 0

    def alerts(self) -> dict[AlertKind, list[Alert]]:
        """The rule's verdicts as alerts of each class it claims to answer."""
        if self._win is not None and self._count.any():
            self._close_window()
            self._win = None
        eps = self.episodes + [(f, m, e[0], e[1], e[2]) for (f, m), e in self._open.items()]
        out: dict[AlertKind, list[Alert]] = {k: [] for k in KINDS}
        for flag, m, s, e, det in eps:
            mid, cell = str(self.meters.meter_id[m]), str(self.cells[m])
            if flag == "outage":  # the rule cannot tell an area outage from a comms loss
                for kind in (AlertKind.AREA_OUTAGE, AlertKind.COMMS_LOSS):
                    out[kind].append(Alert(f"p-{kind}-{mid}-{s}", kind, cell, (mid,), s, e,
                                           detected_ms=det))
            else:
                out[AlertKind.SUSPECTED_THEFT].append(Alert(
                    f"p-theft-{mid}-{s}", AlertKind.SUSPECTED_THEFT, cell, (mid,), s, e,
                    detected_ms=det))
        return out


class _Tap:
    """A fleet whose every second is also shown to the prototype's rule."""

    def __init__(self, fleet: HouseholdFleet, rule: PrototypeRule) -> None:
        self.fleet, self.rule = fleet, rule
        self.n, self.meters = fleet.n, fleet.meters

    def readings(self, ts_s: int) -> ReadingBatch:
        batch = self.fleet.readings(ts_s)
        self.rule.observe(batch)
        return batch


@dataclass
class Evaluation:
    scenario: str
    homes: int
    seconds: int
    table: pd.DataFrame
    alerts: list[Alert]
    labels: pd.DataFrame
    comms_as_outage: int
    prototype_comms_as_outage: int
    run: RunStats
    wall_s: float


def scenario_fleet(scenario: Scenario, homes: int, seed: int,
                   start_s: int) -> HouseholdFleet:
    """The scenario's fleet with its events resolved (seeded)."""
    fleet = HouseholdFleet(homes, seed=seed, mix=scenario.mix, bounds=scenario.bounds)
    try:
        fleet.set_events(resolve_events(scenario, fleet, start_s))
    except ValueError as err:
        raise ConfigError(f"scenario {scenario.source}: {err}") from err
    return fleet


def evaluate(settings: Settings, scenario: Scenario, homes: int | None = None,
             duration_s: int | None = None, data_dir: Path | None = None,
             batch_seconds: int = 1) -> Evaluation:
    """Run ``scenario`` through the embedded pipeline as fast as possible and score it.

    The processor takes ``batch_seconds`` seconds of the fleet's messages per micro-batch, as
    it would when running that far behind; 1 matches a live feed (time to detect is then as
    in production), more runs faster and delays detection by up to that much."""
    if scenario.start_s is None:
        raise ConfigError(f"scenario {scenario.source}: evaluate needs a fixed 'start' time")
    homes = homes or scenario.homes or settings.homes
    seed = scenario.seed if scenario.seed is not None else settings.seed
    dur = duration_s or scenario.duration_s or 600
    t0 = time.monotonic()
    fleet = scenario_fleet(scenario, homes, seed, scenario.start_s)
    rule = PrototypeRule(fleet.meters)
    with tempfile.TemporaryDirectory(prefix="smartmeter-eval-") as tmp:
        s = settings.with_overrides(
            homes=homes, seed=seed, bus="memory", history="embedded", live="embedded",
            data_dir=str(data_dir or tmp), batch_max=max(homes, 100) * max(1, batch_seconds))
        run = run_simulation(s, _Tap(fleet, rule), scenario.start_s, dur, speedup=0.0)
        history = open_history(s)
        try:
            events = history.read_events(scenario.start_s * 1000 - 86_400_000,
                                         (scenario.start_s + dur) * 1000 + 86_400_000)
        finally:
            history.close()
    alerts = alerts_from_events(events)
    labels = fleet.labels
    end_ms = (scenario.start_s + dur) * 1000
    labels = labels[labels["start_ms"] < end_ms]
    proto = rule.alerts()
    mine = [score(alerts, labels, k, end_of_run_ms=end_ms) for k in KINDS]
    theirs = [score(proto[k], labels, k, end_of_run_ms=end_ms) for k in KINDS]
    table = pd.concat([score_table(mine, "smartmeter"), score_table(theirs, "prototype")],
                      ignore_index=True)
    return Evaluation(scenario.name, homes, dur, table, alerts, labels,
                      comms_as_outage(alerts, labels),
                      comms_as_outage(proto[AlertKind.AREA_OUTAGE], labels), run,
                      time.monotonic() - t0)


def format_table(ev: Evaluation) -> str:
    """The results as a Markdown table."""
    lines = [f"scenario {ev.scenario}: {ev.homes} homes, {ev.seconds} s of event time, "
             f"{ev.run.readings} readings, evaluated in {ev.wall_s:.0f} s "
             f"({ev.run.readings / max(ev.wall_s, 1e-9):,.0f} readings/s end to end)", "",
             "| detector | class | truth | alerts | precision | recall | TTD median s | "
             "TTD p95 s |", "|---|---|---:|---:|---:|---:|---:|---:|"]

    def f(x: float, nd: int = 2) -> str:
        return "n/a" if x != x else f"{x:.{nd}f}"

    for r in ev.table.to_dict("records"):
        lines.append(
            f"| {r['detector']} | {r['class']} | {r['truth']} | {r['alerts']} | "
            f"{f(float(r['precision']))} | {f(float(r['recall']))} | "
            f"{f(float(r['ttd_median_s']), 1)} | {f(float(r['ttd_p95_s']), 1)} |")
    lines += ["", f"comms losses reported as area outages: smartmeter {ev.comms_as_outage}, "
                  f"prototype {ev.prototype_comms_as_outage}"]
    return "\n".join(lines)
