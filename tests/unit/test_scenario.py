"""Scenario files, grid events, and the agreement of labels with what the meters send."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from smartmeter_lib.adapters.embedded_history import EmbeddedHistory
from smartmeter_lib.config import build_settings
from smartmeter_lib.errors import ConfigError
from smartmeter_lib.model import Kind
from smartmeter_lib.simulate.commands import simulate
from smartmeter_lib.simulate.households import HouseholdFleet
from smartmeter_lib.simulate.pipeline import check_start, default_start
from smartmeter_lib.simulate.scenario import (
    load_scenario,
    packaged_scenarios,
    parse_duration,
    parse_scenario,
    parse_time,
    resolve_events,
)

START = 1_736_960_400  # 2025-01-15 17:00 UTC


def _run(scenario_name: str | dict[str, Any], seconds: int | None = None) -> tuple[
        HouseholdFleet, pd.DataFrame, dict[str, np.ndarray]]:
    """Step a scenario second by second: the labels, and per meter and second what was
    recorded (NaN when silent), the true energy and the event messages."""
    sc = (load_scenario(scenario_name) if isinstance(scenario_name, str)
          else parse_scenario(scenario_name))
    assert sc.homes and sc.start_s is not None and sc.duration_s
    fleet = HouseholdFleet(sc.homes, seed=sc.seed or 0, bounds=sc.bounds, mix=sc.mix)
    fleet.set_events(resolve_events(sc, fleet, sc.start_s))
    n, secs = fleet.n, seconds or sc.duration_s
    rec = np.full((secs, n), np.nan)
    true = np.zeros((secs, n))
    msgs = []
    index = pd.Index(fleet.meters.meter_id)
    for k in range(secs):
        step = fleet.step(sc.start_s + k)
        b = step.batch
        true[k] = step.true_kwh
        r = b.kind == Kind.READING
        rec[k, index.get_indexer(pd.Index(b.meter_id[r]))] = b.kwh[r]
        ev = ~r
        msgs += [(str(m), int(t) // 1000, int(kd)) for m, t, kd in
                 zip(b.meter_id[ev], b.ts_ms[ev], b.kind[ev], strict=True)]
        assert (b.ts_ms == (sc.start_s + k) * 1000).all()
    return fleet, fleet.labels, {"rec": rec, "true": true,
                                 "msgs": np.array(msgs, dtype=object).reshape(-1, 3)}


def test_durations_and_times() -> None:
    assert parse_duration("20m") == 1200 and parse_duration("1h30m") == 5400
    assert parse_duration(90) == 90 and parse_duration("90s") == 90
    assert parse_time("2025-01-15T17:00:00Z") == START == parse_time("2025-01-15 17:00")
    assert parse_time("2025-01-15T18:00:00+01:00") == START
    for bad in ("soon", "-5m", True):
        with pytest.raises(ConfigError):
            parse_duration(bad)
    with pytest.raises(ConfigError, match="ISO 8601"):
        parse_time("next tuesday")


@pytest.mark.parametrize(("doc", "match"), [
    ({"events": [{"kind": "blackout", "duration": 5}]}, "kind must be one of"),
    ({"events": [{"kind": "comms_loss"}]}, "give a duration"),
    ({"events": [{"kind": "bypass", "duration": 5, "factor": [0.6, 0.2]}]}, "low <= high"),
    ({"events": [{"kind": "stuck", "duration": 5, "colour": "red"}]}, "unknown key"),
    ({"homez": 5}, "unknown key"),
    ({"fleet": {"bounds": [51.5, 0.1, 51.4, 0.2]}}, "south, west, north, east"),
    ({"fleet": {"mix": {"mansion": 1}}}, "fleet.mix"),
    ({"homes": 0}, "homes must be"),
    ({"events": [{"kind": "comms_loss", "duration": 5, "meters": 0}]}, "count"),
    ({"events": [{"kind": "comms_loss", "at": "2025-01-01T00:00Z", "duration": 5}]},
     "needs the scenario's 'start'"),
    ([1, 2], "mapping"),
])
def test_bad_scenarios_say_what_is_wrong(doc: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_scenario(doc, "bad.yaml")


def test_packaged_scenarios_load_and_resolve() -> None:
    assert {"small", "london_evening"} <= set(packaged_scenarios())
    small = load_scenario("small")
    kinds = [e.kind for e in small.events]
    assert small.homes == 500 and small.duration_s == 1200
    assert kinds == ["area_outage", "comms_loss", "bypass", "stuck"]
    big = load_scenario("london_evening")
    fleet = HouseholdFleet(big.homes or 0, seed=big.seed or 0)
    events = resolve_events(big, fleet, big.start_s or 0)
    fleet.set_events(events)
    labels = fleet.labels
    outages = labels[labels["kind"] == "area_outage"]
    assert outages.groupby("event_id")["area"].nunique().to_dict() == {
        "outage-blip": 1, "outage-north": 3, "outage-small": 1}
    assert (labels.groupby("meter_id")["event_id"].nunique() == 1).all()  # no overlaps
    with pytest.raises(ConfigError, match="cannot read scenario"):
        load_scenario("no-such-scenario")


def test_small_scenario_labels_agree_with_the_readings() -> None:
    fleet, labels, out = _run("small")
    rec, true, msgs = out["rec"], out["true"], out["msgs"]
    ids = pd.Index(fleet.meters.meter_id)
    t = np.arange(rec.shape[0]) + START
    involved = set(labels["meter_id"])
    for _, row in labels.iterrows():
        i = ids.get_loc(row["meter_id"])
        during = (t >= row["start_ms"] // 1000) & (t < row["end_ms"] // 1000)
        assert during.any()
        if row["kind"] in ("area_outage", "comms_loss"):
            assert np.isnan(rec[during, i]).all()  # silent for the whole event
            assert not np.isnan(rec[~during, i]).any()  # and reporting otherwise
            if row["kind"] == "area_outage":
                assert (true[during, i] == 0).all()  # no power
            else:
                assert (true[during, i] > 0).all()  # powered, just not heard
        elif row["kind"] == "bypass":
            share = rec[during, i] / true[during, i]
            assert share.min() >= 0.1 and share.max() <= 0.5
            assert share == pytest.approx(row["factor"])
        elif row["kind"] == "stuck":
            assert np.unique(rec[during, i]).size == 1
            assert np.unique(true[during, i]).size > 10
        mine = msgs[msgs[:, 0] == row["meter_id"]] if len(msgs) else msgs
        gasps = [int(s) for _, s, k in mine if k == Kind.LAST_GASP]
        restores = [int(s) for _, s, k in mine if k == Kind.POWER_RESTORE]
        start, end = row["start_ms"] // 1000, row["end_ms"] // 1000
        if row["last_gasp"] == "sent":
            assert len(gasps) == 1 and 30 <= gasps[0] - start <= 45
        else:
            assert gasps == []
        if row["power_restore"] == "sent":
            assert len(restores) == 1 and 0 <= restores[0] - end <= 30
        else:
            assert restores == []
    outage = labels[labels["kind"] == "area_outage"]
    assert len(outage) >= 8 and outage["area"].nunique() == 1
    assert (outage["last_gasp"] == "sent").any() and (outage["last_gasp"] != "sent").any()
    assert (msgs[:, 2] == Kind.POWER_RESTORE).any()
    # every meter in the outage cell is labelled; meters not in any event read true use
    cell = outage["area"].iloc[0]
    assert set(outage["meter_id"]) == set(fleet.households.loc[
        fleet.households["area"] == cell, "meter_id"])
    others = np.array([m not in involved for m in fleet.meters.meter_id])
    assert np.array_equal(rec[:, others], true[:, others])
    assert {m for m, _, _ in msgs} <= set(outage["meter_id"])


def test_spike_and_reversed_meters() -> None:
    doc = {"homes": 60, "seed": 3, "start": "2025-01-15T17:00:00Z", "duration": "5m",
           "events": [{"kind": "spike", "at": 0, "duration": "5m", "meters": 2,
                       "probability": 0.05, "kw": [20, 60]},
                      {"kind": "reversed", "at": "1m", "duration": "2m", "meters": 1}]}
    fleet, labels, out = _run(doc)
    ids = pd.Index(fleet.meters.meter_id)
    rec, true = out["rec"], out["true"]
    for _, row in labels[labels["kind"] == "spike"].iterrows():
        kw = rec[:, ids.get_loc(row["meter_id"])] * 3600
        spikes = kw[kw > 15]
        assert 3 <= len(spikes) <= 40 and (spikes <= 60).all() and (spikes >= 20).all()
    row = labels[labels["kind"] == "reversed"].iloc[0]
    i = ids.get_loc(row["meter_id"])
    assert (rec[60:180, i] == -true[60:180, i]).all() and (rec[60:180, i] < 0).all()
    assert (rec[:60, i] > 0).all()
    assert labels["expected_alert"].tolist().count("SUSPECTED_THEFT") == 1


def test_too_many_cells_asked_is_a_config_error() -> None:
    doc = {"homes": 30, "start": "2025-01-15T17:00:00Z", "duration": "5m",
           "events": [{"kind": "area_outage", "duration": "1m", "cells": 3, "min_homes": 20}]}
    sc = parse_scenario(doc)
    fleet = HouseholdFleet(30, seed=1)
    with pytest.raises(ConfigError, match="free geohash-6 cell"):
        resolve_events(sc, fleet, START)


def test_start_times_never_send_future_readings() -> None:
    now = 1_800_000_000
    assert default_start(600, 1.0, now) == now
    assert default_start(600, 0, now) == now - 600
    check_start(default_start(3600, 10, now), 3600, 10, now)
    with pytest.raises(ConfigError, match="future"):
        check_start(now + 3600, 60, 1.0, now)
    with pytest.raises(ConfigError, match="future"):
        check_start(now, 3600, 0, now)


def test_simulate_command_writes_labels_and_history(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(yaml.safe_dump({
        "name": "tiny", "homes": 80, "seed": 5, "start": "2025-01-15T17:00:00Z",
        "duration": "3m", "fleet": {"bounds": [51.439, -0.097, 51.481, -0.036]},
        "events": [{"kind": "area_outage", "at": "1m", "duration": "1m", "cells": 1,
                    "min_homes": 2, "last_gasp": 1.0, "lost": 0.0},
                   {"kind": "bypass", "duration": "3m", "meters": 1}]}))
    settings = build_settings(data_dir=tmp_path / "data")
    res = CliRunner().invoke(simulate, ["--scenario", str(scenario), "--speedup", "0",
                                        "--labels", str(tmp_path / "truth.csv")],
                             obj={"settings": settings}, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "simulated 80 homes for 180 s" in res.output and "0 rejected" in res.output
    labels = pd.read_csv(tmp_path / "truth.csv")
    assert set(labels["kind"]) == {"area_outage", "bypass"}
    assert (labels.loc[labels["kind"] == "area_outage", "last_gasp"] == "sent").all()
    assert (tmp_path / "households.csv").exists()
    hist = EmbeddedHistory(settings.history_dir)
    try:
        assert len(hist.meters()) == 80
        out = labels[labels["kind"] == "area_outage"].iloc[0]
        raw = hist.read_readings(out["meter_id"], START * 1000, (START + 180) * 1000)
        reading_ts = raw.ts_ms[raw.kind == Kind.READING] // 1000 - START
        assert not ((reading_ts >= 60) & (reading_ts < 120)).any()
        r = hist.read_rollups(60, None, START * 1000, (START + 180) * 1000)
        assert len(set(r.window_start_ms.tolist())) == 3
    finally:
        hist.close()


def test_simulate_command_refuses_bad_options(tmp_path: Path) -> None:
    settings = build_settings(data_dir=tmp_path)
    for args, match in ((["--speedup", "-1"], "speedup"), (["--duration", "soon"], "duration"),
                        (["--start", "2999-01-01T00:00Z"], "future"),
                        (["--scenario", str(tmp_path / "nope.yaml")], "cannot read")):
        with pytest.raises(ConfigError, match=match):
            CliRunner().invoke(simulate, args, obj={"settings": settings},
                               catch_exceptions=False)
