"""`smartmeter evaluate` end to end: the packaged detection scenario through the embedded
pipeline, scored against its labels; the issue's targets asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_detectors_meet_the_targets_on_the_detection_scenario(test_output_dir: Path) -> None:
    out = test_output_dir / "evaluate"
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "smartmeter_lib.cli", "evaluate", "--scenario", "detection",
         "--json", "--out", str(out / "detection.md"), "--alerts", str(out / "alerts.jsonl")],
        capture_output=True, text=True, timeout=1200, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout)
    rows = {(r["detector"], r["class"]): r for r in got["scores"]}
    outage = rows[("smartmeter", "area outage")]
    assert outage["truth"] == 4  # two outages (one over two cells) and a 20-s blip
    assert outage["precision"] >= 0.99 and outage["recall"] >= 0.99
    assert outage["ttd_median_s"] <= 10
    assert got["comms_as_outage"]["smartmeter"] == 0
    comms = rows[("smartmeter", "comms loss")]
    assert comms["precision"] >= 0.99 and comms["recall"] >= 0.99
    theft = rows[("smartmeter", "theft")]
    assert theft["precision"] >= 0.9 and theft["recall"] >= 0.8
    stuck = rows[("smartmeter", "stuck meter")]
    assert stuck["recall"] == 1.0 and stuck["precision"] == 1.0
    # the prototype's rule, scored the same way, is far off
    assert rows[("prototype", "area outage")]["precision"] < 0.5
    assert rows[("prototype", "theft")]["recall"] < 0.5
    alerts = [json.loads(line) for line in (out / "alerts.jsonl").read_text().splitlines()]
    assert {a["kind"] for a in alerts} >= {"AREA_OUTAGE", "COMMS_LOSS", "SUSPECTED_THEFT",
                                           "METER_FAULT"}
    assert all(a["detected_ms"] is not None for a in alerts)
    assert "| smartmeter | area outage |" in (out / "detection.md").read_text()
