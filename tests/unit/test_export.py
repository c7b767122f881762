"""`smartmeter export`: one meter's history at 1 s, 1 min, 30 min and 1 day, CSV or Parquet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from smartmeter_lib.adapters.embedded_history import EmbeddedHistory
from smartmeter_lib.config import Settings, build_settings
from smartmeter_lib.errors import ConfigError
from smartmeter_lib.export import export_meter, to_csv_text
from smartmeter_lib.model import Kind, ReadingBatch
from smartmeter_lib.replay.commands import export
from smartmeter_lib.simulate.households import HouseholdFleet
from smartmeter_lib.simulate.pipeline import run_simulation

START = 1_736_985_000  # 2025-01-15 23:50 UTC: the run crosses midnight
SECONDS = 20 * 60
T0 = pd.Timestamp(START - 3600, unit="s", tz="UTC")
T1 = pd.Timestamp(START + 7200, unit="s", tz="UTC")


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, HouseholdFleet]:
    """20 minutes of 30 homes through the embedded pipeline."""
    settings = build_settings(data_dir=tmp_path_factory.mktemp("export"))
    fleet = HouseholdFleet(30, seed=2)
    stats = run_simulation(settings, fleet, START, SECONDS, speedup=0)
    assert stats.processor is not None and stats.processor.rejected == {}
    return settings, fleet


def test_every_resolution_sums_to_the_raw_readings(
        simulated: tuple[Settings, HouseholdFleet]) -> None:
    settings, fleet = simulated
    meter = str(fleet.meters.meter_id[3])
    hist = EmbeddedHistory(settings.history_dir)
    try:
        raw = export_meter(hist, meter, T0, T1, "1s")
        assert len(raw) == SECONDS
        assert raw["timestamp"].iloc[0] == pd.Timestamp(START, unit="s", tz="UTC")
        total = raw["kwh"].sum()
        minute = export_meter(hist, meter, T0, T1, "1min")
        assert len(minute) == 20 and minute["kwh"].sum() == pytest.approx(total)
        assert (minute["timestamp"].diff().dropna() == pd.Timedelta(minutes=1)).all()
        half = export_meter(hist, meter, T0, T1, "30min")
        assert half["timestamp"].tolist() == [pd.Timestamp("2025-01-15T23:30Z"),
                                              pd.Timestamp("2025-01-16T00:00Z")]
        assert half["kwh"].sum() == pytest.approx(total)
        day = export_meter(hist, meter, T0, T1, "1d")
        assert day["timestamp"].tolist() == [pd.Timestamp("2025-01-15T00:00Z"),
                                             pd.Timestamp("2025-01-16T00:00Z")]
        before = raw["timestamp"] < pd.Timestamp("2025-01-16T00:00Z")
        assert day["kwh"].tolist() == pytest.approx([raw.loc[before, "kwh"].sum(),
                                                     raw.loc[~before, "kwh"].sum()])
        with pytest.raises(ConfigError, match="resolution"):
            export_meter(hist, meter, T0, T1, "5min")
        with pytest.raises(ConfigError, match="after"):
            export_meter(hist, meter, T1, T0, "1s")
    finally:
        hist.close()


def test_raw_readings_without_rollups(tmp_path: Path) -> None:
    hist = EmbeddedHistory(tmp_path)
    ts = START * 1000 + np.arange(0, 7200_000, 60_000)  # a reading a minute for 2 h
    b = ReadingBatch.readings(np.full(len(ts), "X", object), ts, np.full(len(ts), 0.01), 60)
    gasp = ReadingBatch(np.array(["X"], object), np.array([ts[5] + 1000]), np.zeros(1),
                        np.ones(1, np.uint16), np.array([int(Kind.LAST_GASP)], np.uint8))
    hist.write_readings(ReadingBatch.concat([b, gasp]))
    try:
        assert len(export_meter(hist, "X", T0, T1, "1s")) == 120  # the event is not energy
        half = export_meter(hist, "X", T0, T1, "30min")
        assert half["kwh"].sum() == pytest.approx(1.2) and len(half) == 5
        day = export_meter(hist, "X", T0, T1, "1d")
        assert day["kwh"].tolist() == pytest.approx([0.1, 1.1])
    finally:
        hist.close()


def test_csv_text_format() -> None:
    df = pd.DataFrame({"timestamp": pd.to_datetime([0, 1800], unit="s", utc=True),
                       "kwh": [0.1 + 0.2, 0.219]})
    assert to_csv_text(df) == ("timestamp,kwh\n1970-01-01T00:00:00Z,0.30000000000000004\n"
                               "1970-01-01T00:30:00Z,0.219\n")


def test_export_command_csv_parquet_and_errors(simulated: tuple[Settings, HouseholdFleet],
                                               tmp_path: Path) -> None:
    settings, fleet = simulated
    obj = {"settings": settings}
    meter = str(fleet.meters.meter_id[0])
    args = ["--meter", meter, "--from", "2025-01-15T23:00", "--to", "2025-01-16T01:00"]
    runner = CliRunner()
    res = runner.invoke(export, [*args, "--resolution", "1min"], obj=obj,
                        catch_exceptions=False)
    assert res.exit_code == 0
    lines = res.output.strip().splitlines()
    assert lines[0] == "timestamp,kwh" and len(lines) == 21
    assert lines[1].startswith("2025-01-15T23:50:00Z,")
    out = tmp_path / "m.parquet"
    res = runner.invoke(export, [*args, "--output", str(out)], obj=obj, catch_exceptions=False)
    assert res.exit_code == 0
    t = pq.read_table(out)
    assert t.column_names == ["timestamp", "kwh"] and t.num_rows == 2
    assert str(t.schema.field("timestamp").type) == "timestamp[ms, tz=UTC]"
    for bad, match in (([*args[:1], "NOPE", *args[2:]], "not in the history"),
                       (["--meter", meter, "--from", "2025-01-16", "--to", "2025-01-15"],
                        "must be after"),
                       ([*args, "--format", "parquet"], "needs --output"),
                       (["--meter", meter, "--from", "whenever", "--to", "2025-01-15"],
                        "ISO 8601")):
        with pytest.raises(ConfigError, match=match):
            runner.invoke(export, bad, obj=obj, catch_exceptions=False)
