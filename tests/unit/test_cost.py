"""The cost engine against hand-computed bills, and the `smartmeter tariffs compare` command."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from smartmeter_lib.config import build_settings
from smartmeter_lib.errors import ConfigError, DataError
from smartmeter_lib.insights import commands
from smartmeter_lib.insights.cost import cheapest, cost_pivot, cost_table
from smartmeter_lib.insights.halfhours import half_hour_matrix
from smartmeter_lib.insights.tariffs import (
    CATALOGUE_DIR,
    Rule,
    Standing,
    Tariff,
    load_catalogue_tariff,
    load_tariff,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "lcl-samples"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/lcl-samples is "
                                  "absent (the real LCL samples are not part of the project)")


def read_lcl(path: Path) -> pd.DataFrame:
    """A kaggle-format LCL file as a readings frame (plain pandas, for these tests only)."""
    raw = pd.read_csv(path, dtype=str)
    return pd.DataFrame({
        "meter_id": raw.iloc[:, 0].str.strip(),
        "ts": pd.to_datetime(raw.iloc[:, 1].str.strip()).dt.tz_localize("UTC"),
        "kwh": pd.to_numeric(raw.iloc[:, 2].str.strip(), errors="coerce"),
        "interval_s": 1800,
    })


def frame(start: str, kwh: list[float] | np.ndarray, meter: str = "m1",
          interval_s: int = 1800) -> pd.DataFrame:
    ts = pd.date_range(start, periods=len(kwh), freq=f"{interval_s}s", tz="UTC")
    return pd.DataFrame({"meter_id": meter, "ts": ts, "kwh": np.asarray(kwh, dtype=float),
                         "interval_s": interval_s})


def flat(rate: float = 20.0, standing: float = 0.0, export: float = 0.0) -> Tariff:
    return Tariff("flat", "flat", (Standing(standing),), (Rule(rate),), export_p_per_kwh=export)


def one(costs: pd.DataFrame, tariff: str, meter: str = "m1") -> pd.Series:
    row = costs[(costs["tariff"] == tariff) & (costs["meter_id"] == meter)]
    assert len(row) == 1
    return row.iloc[0]


def test_flat_tariff_three_days_with_standing_charge() -> None:
    costs = cost_table(frame("2025-03-01", [0.5] * 144), [load_catalogue_tariff("flat_cap_2025q3")])
    r = one(costs, "flat_cap_2025q3")
    assert r["kwh"] == pytest.approx(72.0)
    assert r["unit_cost_gbp"] == pytest.approx(72 * 25.73 / 100)
    assert r["standing_charge_gbp"] == pytest.approx(3 * 51.37 / 100)
    assert r["total_gbp"] == pytest.approx((72 * 25.73 + 3 * 51.37) / 100)
    assert r["coverage"] == 1.0 and r["est_total_gbp"] == pytest.approx(r["total_gbp"])


def test_economy7_across_midnight() -> None:
    # 22:00-09:00 UTC in January, 1 kWh per half-hour: 14 night half-hours (00:00-07:00) at
    # 14p, 8 day half-hours (22:00-24:00, 07:00-09:00) at 31p; 11 hours of standing charge
    data = frame("2025-01-14T22:00", [1.0] * 22)
    costs = cost_table(data, [load_catalogue_tariff("economy7")], "2025-01-14T22:00",
                       "2025-01-15T09:00")
    r = one(costs, "economy7")
    assert r["unit_cost_gbp"] == pytest.approx((14 * 14 + 8 * 31) / 100)
    assert r["standing_charge_gbp"] == pytest.approx(11 / 24 * 51.37 / 100)


@pytest.mark.parametrize(("start", "end", "slots", "go_cheap", "e7_cheap"), [
    # spring forward: the London day of 2025-03-30 has 46 half-hours. Go (clock time) is cheap
    # at 00:30 GMT and 02:00-05:30 BST = 8 half-hours; E7 (GMT) 00:00-07:00 UTC = 14
    ("2025-03-30T00:00Z", "2025-03-30T23:00Z", 46, 8, 14),
    # fall back: the London day of 2025-10-26 has 50 half-hours; 01:00-02:00 happens twice, so
    # Go's 00:30-05:30 spans 12 half-hours; E7 is still 14
    ("2025-10-25T23:00Z", "2025-10-27T00:00Z", 50, 12, 14),
])
def test_clock_change_gmt_fixed_versus_local_windows(start: str, end: str, slots: int,
                                                     go_cheap: int, e7_cheap: int) -> None:
    data = frame(start, [1.0] * slots)
    costs = cost_table(data, [load_catalogue_tariff("go_style"),
                              load_catalogue_tariff("economy7")], start, end)
    go, e7 = one(costs, "go_style"), one(costs, "economy7")
    assert go["kwh"] == e7["kwh"] == slots
    assert go["unit_cost_gbp"] == pytest.approx((go_cheap * 8.5 + (slots - go_cheap) * 27) / 100)
    assert e7["unit_cost_gbp"] == pytest.approx((e7_cheap * 14 + (slots - e7_cheap) * 31) / 100)
    assert go["standing_charge_gbp"] == pytest.approx(slots / 48 * 51.37 / 100)


def test_pv_export_is_credited_per_half_hour_of_net_export() -> None:
    data = pd.concat([
        frame("2025-06-01T10:00", [1.0, -0.5, -0.25, 0.2]),
        frame("2025-06-01T12:00", [0.3, -0.5], interval_s=900),  # nets to -0.2 in one slot
    ])
    costs = cost_table(data, [flat(20.0, standing=0.0, export=15.0)], "2025-06-01T10:00",
                       "2025-06-01T12:30")
    r = one(costs, "flat")
    assert r["kwh"] == pytest.approx(1.2) and r["export_kwh"] == pytest.approx(0.95)
    assert r["unit_cost_gbp"] == pytest.approx(0.24)
    assert r["export_credit_gbp"] == pytest.approx(0.95 * 15 / 100)
    assert r["total_gbp"] == pytest.approx(0.24 - 0.1425)


def test_missing_data_is_reported_never_priced_as_zero() -> None:
    kwh = np.where(np.arange(48) % 2 == 0, 1.0, np.nan)  # every other half-hour has no value
    data = frame("2025-02-03", kwh)
    data = data[data.index % 4 != 1]  # and some rows are absent altogether
    costs = cost_table(data, [flat(20.0, standing=48.0)], "2025-02-03", "2025-02-04")
    r = one(costs, "flat")
    assert r["coverage"] == pytest.approx(24 / 48)
    assert r["unit_cost_gbp"] == pytest.approx(24 * 0.20)
    assert r["total_gbp"] == pytest.approx(24 * 0.20 + 0.48)
    assert r["est_total_gbp"] == pytest.approx(48 * 0.20 + 0.48)
    empty = cost_table(frame("2025-02-03", [1.0]), [flat()], "2025-02-05", "2025-02-06")
    assert one(empty, "flat")["coverage"] == 0 and np.isnan(one(empty, "flat")["est_total_gbp"])


def test_seconds_readings_sum_into_half_hours() -> None:
    secs = frame("2025-02-03T10:00", np.full(3600, 1 / 1800), interval_s=1)
    hh = half_hour_matrix(secs)
    assert hh.n_slots == 48 and hh.kwh[0, 20:22] == pytest.approx([1.0, 1.0])
    assert hh.covered[0, 20:22].tolist() == [1.0, 1.0] and hh.covered[0].sum() == 2
    costs = cost_table(secs.iloc[:-900], [flat(10.0)])
    assert one(costs, "flat")["coverage"] == pytest.approx(1.5 / 48)


def test_duplicates_count_once_and_overlaps_are_errors(caplog: pytest.LogCaptureFixture) -> None:
    data = frame("2025-02-03", [1.0, 2.0])
    with caplog.at_level(logging.WARNING):
        costs = cost_table(pd.concat([data, data.iloc[:1]]), [flat(10.0)])
    assert one(costs, "flat")["kwh"] == pytest.approx(3.0) and "duplicated" in caplog.text
    overlap = pd.concat([data, frame("2025-02-03T00:15", [0.1], interval_s=900)])
    with pytest.raises(DataError, match="overlapping"):
        cost_table(overlap, [flat()])
    with pytest.raises(DataError, match="1-1800 s"):
        cost_table(frame("2025-02-03", [1.0], interval_s=3600), [flat()])
    with pytest.raises(DataError, match="crosses a half-hour"):
        cost_table(frame("2025-02-03T00:20", [1.0], interval_s=900), [flat()])
    with pytest.raises(DataError, match="lacks columns"):
        cost_table(data.drop(columns="interval_s"), [flat()])


def test_periods_by_month_add_up_and_several_meters() -> None:
    rng = np.random.default_rng(1)
    data = pd.concat([frame("2025-01-20", rng.random(48 * 20), "a"),
                      frame("2025-01-25", rng.random(48 * 20), "b")])
    tariffs = [load_catalogue_tariff(t) for t in ("flat_cap_2025q3", "economy7", "go_style")]
    whole = cost_table(data, tariffs, "2025-01-20", "2025-02-14")
    monthly = cost_table(data, tariffs, "2025-01-20", "2025-02-14", by="month")
    assert sorted(monthly["period_start"].dt.month.unique()) == [1, 2]
    for col in ("kwh", "unit_cost_gbp", "standing_charge_gbp", "total_gbp"):
        assert cost_pivot(monthly, col).to_numpy() == pytest.approx(
            cost_pivot(whole, col).to_numpy())
    assert set(cheapest(whole, "total_gbp").index) == {"a", "b"}
    with pytest.raises(ConfigError):
        cost_table(data, tariffs, by="fortnight")  # type: ignore[arg-type]


def test_unpriced_half_hours_give_nan_not_a_cheap_bill(tmp_path: Path) -> None:
    sched = tmp_path / "s.csv"
    sched.write_text("TariffDateTime,Tariff\n2013-01-01 00:00:00,Low\n2013-01-01 00:30:00,High\n")
    t = load_tariff(CATALOGUE_DIR / "lcl_dtou_2013.yaml", {"LCL_DTOU_SCHEDULE": sched})
    costs = cost_table(frame("2013-01-01", [1.0, 2.0, 3.0]), [t], "2013-01-01",
                       "2013-01-01T01:30")
    r = one(costs, "lcl_dtou_2013")
    assert np.isnan(r["unit_cost_gbp"]) and r["unpriced_share"] == pytest.approx(1 / 3)
    ok = cost_table(frame("2013-01-01", [1.0, 2.0]), [t], "2013-01-01", "2013-01-01T01:00")
    assert one(ok, "lcl_dtou_2013")["unit_cost_gbp"] == pytest.approx((3.99 + 2 * 67.2) / 100)


@needs_shared
def test_lcl_dtou_on_the_real_tou_household() -> None:
    data = read_lcl(SHARED / "MAC000147_ToU_2013_kaggle_format.csv")
    sched = pd.read_csv(SHARED / "dtou_tariffs_2013.csv")
    price = sched["Tariff"].map({"High": 67.20, "Normal": 11.76, "Low": 3.99})
    when = pd.to_datetime(sched["TariffDateTime"]).dt.tz_localize("UTC")
    joined = data.merge(pd.DataFrame({"ts": when, "p": price}), on="ts", how="left")
    assert joined["p"].notna().all()
    expected_p = float((joined["kwh"] * joined["p"]).sum())

    t = load_tariff(CATALOGUE_DIR / "lcl_dtou_2013.yaml",
                    {"LCL_DTOU_SCHEDULE": SHARED / "dtou_tariffs_2013.csv"})
    costs = cost_table(data, [t, load_catalogue_tariff("flat_cap_2025q3")], "2013-01-01",
                       "2014-01-01")
    r = one(costs, "lcl_dtou_2013", "MAC000147")
    assert r["coverage"] == 1.0 and r["kwh"] == pytest.approx(data["kwh"].sum())
    assert r["unit_cost_gbp"] == pytest.approx(expected_p / 100, rel=1e-9)
    assert r["standing_charge_gbp"] == pytest.approx(365 * 51.37 / 100)
    f = one(costs, "flat_cap_2025q3", "MAC000147")
    assert f["unit_cost_gbp"] == pytest.approx(data["kwh"].sum() * 25.73 / 100)


# --- the CLI -------------------------------------------------------------------------------

@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[CliRunner, Path, dict]:
    def fake_read(path: Path, meters: list[str] | None) -> pd.DataFrame:
        df = pd.read_csv(path)
        df["ts"] = pd.to_datetime(df["ts"], utc=True)
        return df if meters is None else df[df["meter_id"].isin(meters)]

    monkeypatch.setattr(commands, "read_readings", fake_read)
    monkeypatch.delenv("LCL_DTOU_SCHEDULE", raising=False)
    data = pd.concat([frame("2025-01-06", [0.5] * 96, "m1"), frame("2025-01-06", [1.0] * 96,
                                                                    "m2")])
    path = tmp_path / "readings.csv"
    data.to_csv(path, index=False)
    return CliRunner(), path, {"settings": build_settings(data_dir=tmp_path / "data")}


def test_cli_compare_prints_and_exports(cli_env: tuple[CliRunner, Path, dict],
                                        tmp_path: Path) -> None:
    runner, path, obj = cli_env
    res = runner.invoke(commands.tariffs, ["compare", "--readings", str(path), "--tariff",
                                           "economy7", "--tariff", "flat_cap_2025q3",
                                           "--meters", "m2", "--from", "2025-01-06",
                                           "--to", "2025-01-07"], obj=obj)
    assert res.exit_code == 0, res.output
    assert "m2" in res.output and "m1" not in res.output and "coverage" in res.output
    out = tmp_path / "out.csv"
    res = runner.invoke(commands.tariffs, ["compare", "--readings", str(path), "--output",
                                           str(out)], obj=obj)
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    assert set(table["meter_id"]) == {"m1", "m2"} and "agile_synthetic" in set(table["tariff"])
    m2 = table[(table["meter_id"] == "m2") & (table["tariff"] == "flat_cap_2025q3")].iloc[0]
    assert m2["total_gbp"] == pytest.approx((96 * 25.73 + 2 * 51.37) / 100)


def test_cli_user_tariffs_schedule_option_and_errors(cli_env: tuple[CliRunner, Path, dict],
                                                     tmp_path: Path) -> None:
    runner, path, obj = cli_env
    user = obj["settings"].data_dir / "tariffs"
    user.mkdir(parents=True)
    (user / "mine.yaml").write_text("name: Mine\nstanding_charge: 0\nrates: [{p_per_kwh: 10}]\n")
    res = runner.invoke(commands.tariffs, ["list"], obj=obj)
    assert res.exit_code == 0 and "mine" in res.output and "lcl_dtou_2013" in res.output
    res = runner.invoke(commands.tariffs, ["compare", "--readings", str(path), "--tariff", "mine",
                                           "--by", "day"], obj=obj)
    assert res.exit_code == 0 and "period_start" in res.output
    res = runner.invoke(commands.tariffs, ["compare", "--readings", str(path), "--tariff",
                                           "lcl_dtou_2013"], obj=obj)
    assert isinstance(res.exception, DataError) and "--schedule" in str(res.exception)
    res = runner.invoke(commands.tariffs, ["compare", "--readings", str(path), "--schedule",
                                           "oops"], obj=obj)
    assert isinstance(res.exception, ConfigError)
    res = runner.invoke(commands.tariffs, ["compare", "--readings", str(path), "--from",
                                           "2025-02-01", "--to", "2025-01-01"], obj=obj)
    assert isinstance(res.exception, ConfigError)


def test_cli_make_prices(tmp_path: Path) -> None:
    out = tmp_path / "p.csv"
    res = CliRunner().invoke(commands.tariffs, ["make-prices", "--from", "2025-06-01", "--to",
                                                "2025-06-02", "--output", str(out)])
    assert res.exit_code == 0 and "synthetic" in res.output
    assert len(pd.read_csv(out)) == 48
