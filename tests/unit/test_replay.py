"""Readers for real meter files, and replay into the embedded history (round trips)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from smartmeter_lib.adapters.embedded_history import EmbeddedHistory
from smartmeter_lib.adapters.memory_bus import MemoryBus
from smartmeter_lib.config import Settings, build_settings
from smartmeter_lib.errors import DataError
from smartmeter_lib.export import export_meter
from smartmeter_lib.model import MeterInfo
from smartmeter_lib.replay import read_meter_file
from smartmeter_lib.replay.commands import export, replay
from smartmeter_lib.replay.run import produce_frame, replay_files
from smartmeter_lib.simulate.households import HouseholdFleet
from smartmeter_lib.simulate.placement import pseudo_location
from smartmeter_lib.simulate.profiles import half_hourly_kwh, write_lcl_file

from ..conftest import SHARED_DATA

KAGGLE = SHARED_DATA / "MAC000002_2013_kaggle_format.csv"
TOU = SHARED_DATA / "MAC000147_ToU_2013_kaggle_format.csv"
DATASTORE = SHARED_DATA / "MAC000002_2012-10_to_2014-02_londondatastore_format.csv"
needs_samples = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=(
    f"the real LCL samples are not here ({SHARED_DATA}); the project alone does not ship them"))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A Kaggle-format file of 3 simulated homes over 2 days, with LCL's quirks."""
    fleet = HouseholdFleet(20, seed=4)
    frame = half_hourly_kwh(fleet, [0, 1, 2], 1_357_084_800, 2, samples=6)  # 2013-01-02
    path = write_lcl_file(tmp_path_factory.mktemp("gen") / "gen_kaggle_format.csv", frame,
                          quirks=True)
    return path, frame


def _roundtrip(settings: Settings, frame: pd.DataFrame) -> None:
    """Export every meter at 30 min and compare with the source rows."""
    hist = EmbeddedHistory(settings.history_dir)
    try:
        for meter, rows in frame.groupby("meter_id"):
            out = export_meter(hist, str(meter), rows["ts"].min(),
                               rows["ts"].max() + pd.Timedelta(minutes=30), "30min")
            assert out["timestamp"].tolist() == rows["ts"].tolist(), meter
            assert out["kwh"].to_numpy() == pytest.approx(rows["kwh"].to_numpy(), abs=1e-12)
    finally:
        hist.close()


# -- readers -----------------------------------------------------------------------------
@needs_samples
def test_real_lcl_files_with_their_quirks() -> None:
    k = read_meter_file(KAGGLE)
    assert k.format == "lcl_kaggle" and len(k.frame) == 17_520 and k.bad_rows == []
    assert list(k.frame.columns) == ["meter_id", "ts", "kwh", "interval_s"]
    assert str(k.frame["ts"].dtype) == "datetime64[ns, UTC]"
    assert k.frame["kwh"].dtype == np.float64 and (k.frame["interval_s"] == 1800).all()
    assert k.frame["kwh"].iloc[0] == 0.219 and k.frame["ts"].iloc[0] == pd.Timestamp(
        "2013-01-01T00:00Z")
    d = read_meter_file(DATASTORE)
    assert d.format == "lcl_datastore" and d.rows == 24_158 and len(d.frame) == 24_140
    reasons = [b.reason for b in d.bad_rows]
    assert sum("duplicate of line" in r for r in reasons) == 17
    null = [b for b in d.bad_rows if "Null" in b.reason]
    assert len(null) == 1 and null[0].line == 3242 and null[0].file == str(DATASTORE)
    assert str(null[0]).startswith(f"{DATASTORE}:3242: ")
    # the same household in both formats agrees where they overlap
    both = k.frame.merge(d.frame, on=["meter_id", "ts"])
    assert len(both) == 17_520 and (both["kwh_x"] == both["kwh_y"]).all()


@needs_samples
@pytest.mark.parametrize("name", ["dtou_tariffs_2013.csv", "informations_households.csv",
                                  "uk_bank_holidays.csv"])
def test_files_that_are_not_meter_files_are_refused(name: str) -> None:
    with pytest.raises(DataError, match="is not a meter file"):
        read_meter_file(SHARED_DATA / name)


def test_generated_kaggle_file_quirks(generated: tuple[Path, pd.DataFrame]) -> None:
    path, frame = generated
    m = read_meter_file(path)
    assert len(m.frame) == len(frame) == 3 * 96
    assert [(b.line, b.reason.split(" (")[0]) for b in m.bad_rows] == [
        (4, "duplicate of line 3"), (6, "no kWh value")]
    sel = read_meter_file(path, meters=[str(frame["meter_id"].iloc[0])])
    assert sel.meters == [frame["meter_id"].iloc[0]] and sel.other_meters == 2 * 96
    none = read_meter_file(path, meters=["NOPE"])
    assert none.frame.empty and list(none.frame.columns) == list(m.frame.columns)
    assert none.frame.dtypes.to_dict() == m.frame.dtypes.to_dict()


def test_generic_csv_and_bad_rows(tmp_path: Path) -> None:
    p = tmp_path / "generic.csv"
    p.write_bytes("\ufeffmeter_id,timestamp,kwh,interval_s\r\n"
                  "A,2024-06-01T12:00:00Z,0.5,1800\r\n"
                  "A,2024-06-01T13:30:00+01:00,-0.4,1800\r\n"  # 12:30 UTC; PV export
                  "B,2024-06-01 12:00:00,0.001,1\r\n"
                  "B,2024-06-01 12:00:01,0.0012,\r\n"  # empty interval: 1800, off grid
                  "B,2024-06-01 12:00:02,0.001,7\r\n"
                  ",2024-06-01 12:00:03,0.001,1\r\n"
                  "B,yesterday,0.001,1\r\n"
                  "B,2024-06-01 12:00:05,lots,1\r\n"
                  "B,2024-06-01 12:00:06,0.5,1\r\n"  # 1,800 kW in one second
                  "B,1990-06-01 12:00:00,0.1,1800\r\n"
                  "B,2024-06-01 12:00:08,0.001,1,extra\r\n"
                  "\r\n"
                  "B,2024-06-01 12:00:09,0.002,1\r\n".encode())
    m = read_meter_file(p)
    assert m.format == "generic"
    assert m.frame["meter_id"].tolist() == ["A", "A", "B", "B"]
    assert m.frame["kwh"].tolist() == [0.5, -0.4, 0.001, 0.002]
    assert m.frame["interval_s"].tolist() == [1800, 1800, 1, 1]
    assert m.frame["ts"].iloc[1] == pd.Timestamp("2024-06-01T12:30Z")
    why = {b.line: b.reason for b in m.bad_rows}
    assert "not on the 1800 s grid" in why[5]
    assert "must divide 1800" in why[6]
    assert why[7] == "missing meter id"
    assert "unreadable timestamp" in why[8]
    assert "not a number" in why[9]
    assert "above 100 kW" in why[10]
    assert "out of range" in why[11]
    assert "expected 4 fields, found 5" in why[12]
    assert sorted(why) == [5, 6, 7, 8, 9, 10, 11, 12]


def test_not_meter_files(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "bin.csv").write_bytes(b"PK\x03\x04\x00\x00binary")
    (tmp_path / "other.csv").write_text("name,price\nkettle,20\n")
    (tmp_path / "all_bad.csv").write_text("LCLid,tstp,energy(kWh/hh)\nX,2013-01-01,Null\n")
    for name, match in (("empty.csv", "empty"), ("bin.csv", "binary"),
                        ("other.csv", "not a meter file"), ("all_bad.csv", "no valid")):
        with pytest.raises(DataError, match=match):
            read_meter_file(tmp_path / name)
    with pytest.raises(DataError, match="cannot read"):
        read_meter_file(tmp_path / "missing.csv")


# -- replay ------------------------------------------------------------------------------
def test_generated_file_round_trips_through_replay_and_export(
        tmp_path: Path, generated: tuple[Path, pd.DataFrame]) -> None:
    path, frame = generated
    settings = build_settings(data_dir=tmp_path)
    res = replay_files(settings, [path])
    assert res.readings == len(frame) and res.bad_rows == 2 and res.registered == 3
    assert res.processor is not None and res.processor.rejected == {}
    assert res.processor.readings_stored == len(frame)
    _roundtrip(settings, frame)
    # meters get stable pseudo-locations; a second replay re-registers nothing
    hist = EmbeddedHistory(settings.history_dir)
    reg = hist.meters().to_pandas().set_index("meter_id")
    hist.close()
    lat, _ = pseudo_location(["SM0000000"])
    assert reg.loc["SM0000000", "lat"] == pytest.approx(lat[0])
    again = replay_files(settings, [path])
    assert again.registered == 0
    _roundtrip(settings, frame)  # idempotent: replaying twice does not double count


def test_replay_keeps_known_locations_and_filters(tmp_path: Path,
                                                  generated: tuple[Path, pd.DataFrame]) -> None:
    path, _ = generated
    settings = build_settings(data_dir=tmp_path)
    hist = EmbeddedHistory(settings.history_dir)
    hist.register_meters(MeterInfo(np.array(["SM0000001"], object), np.array([51.5]),
                                   np.array([-0.1]), np.array(["gcpvj0z"], object)))
    hist.close()
    start = pd.Timestamp("2013-01-02T12:00Z")
    res = replay_files(settings, [path], meters=["SM0000001"], start=start,
                       end=start + pd.Timedelta(hours=6))
    assert res.readings == 12 and res.registered == 0 and res.meters == ["SM0000001"]
    hist = EmbeddedHistory(settings.history_dir)
    assert hist.meters().to_pandas().set_index("meter_id").loc["SM0000001", "lat"] == 51.5
    hist.close()


def test_paced_replay_keeps_event_time(generated: tuple[Path, pd.DataFrame]) -> None:
    _, frame = generated
    part = frame[frame["meter_id"] == frame["meter_id"].iloc[0]].iloc[:10]  # 4.5 h
    bus = MemoryBus()
    bus.create_topic("t", partitions=1)
    t0 = time.monotonic()
    assert produce_frame(part, bus, "t", speedup=4.5 * 3600 / 0.6) == 10
    assert 0.5 < time.monotonic() - t0 < 5
    c = bus.consumer(["t"], "g")
    msgs = c.poll_batch(100, 1.0)
    ts = [int.from_bytes(m.value[8:16], "little") for m in msgs if m.value]
    assert ts == sorted(ts) and len(ts) == 10


@needs_samples
def test_real_samples_round_trip(tmp_path: Path) -> None:
    settings = build_settings(data_dir=tmp_path)
    res = replay_files(settings, [TOU, DATASTORE])
    files = {f.path.name: f for f in res.files}
    assert res.readings == 17_520 + 24_140
    assert res.processor is not None and res.processor.rejected == {}
    for f in files.values():
        _roundtrip(settings, f.frame)


def test_replay_and_export_commands(tmp_path: Path,
                                    generated: tuple[Path, pd.DataFrame]) -> None:
    path, frame = generated
    obj = {"settings": build_settings(data_dir=tmp_path / "d")}
    runner = CliRunner()
    bad = tmp_path / "bad.csv"
    res = runner.invoke(replay, [str(path), "--no-progress", "--bad-rows", str(bad)], obj=obj,
                        catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert f"replayed {len(frame)} readings of 3 meter(s)" in res.output
    assert pd.read_csv(bad)["line"].tolist() == [4, 6]
    meter = str(frame["meter_id"].iloc[0])
    res = runner.invoke(export, ["--meter", meter, "--from", "2013-01-02", "--to",
                                 "2013-01-04", "--resolution", "30min"], obj=obj,
                        catch_exceptions=False)
    assert res.exit_code == 0
    lines = res.output.strip().splitlines()
    assert lines[0] == "timestamp,kwh" and len(lines) == 97
    assert lines[1].startswith("2013-01-02T00:00:00Z,")
    rows = frame[frame["meter_id"] == meter]
    assert [float(x.split(",")[1]) for x in lines[1:]] == pytest.approx(rows["kwh"].tolist())
    res = runner.invoke(export, ["--meter", meter, "--from", "2013-01-02", "--to",
                                 "2013-01-04", "--resolution", "1d"], obj=obj,
                        catch_exceptions=False)
    days = [float(x.split(",")[1]) for x in res.output.strip().splitlines()[1:]]
    assert days == pytest.approx(rows.groupby(rows["ts"].dt.date)["kwh"].sum().tolist())
