"""Scoring what a running stack raised (for notebooks/02_outage_analysis with stack="real")."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from smartmeter_lib.adapters import open_history
from smartmeter_lib.config import Settings
from smartmeter_lib.detect import alerts_from_events
from smartmeter_lib.detect.evaluate import KINDS
from smartmeter_lib.detect.scoring import score, score_table
from smartmeter_lib.errors import ConfigError
from smartmeter_lib.model import Alert
from smartmeter_lib.simulate.scenario import Scenario


def read_labels(path: str | Path) -> pd.DataFrame:
    """The labels file of ``smartmeter simulate`` (.csv or .parquet)."""
    p = Path(path)
    if not str(path) or not p.exists():
        raise ConfigError(f"labels file {path!r} not found: write it with `smartmeter simulate "
                          "--scenario ... --labels FILE` and pass labels_path=FILE")
    return pd.read_parquet(p) if p.suffix.lower() == ".parquet" else pd.read_csv(p)


def real_stack_scores(settings: Settings, scenario: Scenario, labels_path: str | Path
                      ) -> tuple[list[Alert], pd.DataFrame, pd.DataFrame]:
    """Alerts from the history store over the labels' time span, and their scores."""
    labels = read_labels(labels_path)
    if labels.empty:
        raise ConfigError(f"labels file {labels_path}: no events in it (scenario "
                          f"{scenario.name} has {len(scenario.events)})")
    start = int(labels["start_ms"].min()) - 3_600_000
    end = int(labels["end_ms"].max()) + 3_600_000
    history = open_history(settings)
    try:
        alerts = alerts_from_events(history.read_events(start, end))
    finally:
        history.close()
    table = score_table([score(alerts, labels, k) for k in KINDS], "smartmeter")
    return alerts, labels, table
