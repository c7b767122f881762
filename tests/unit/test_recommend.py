"""Recommendation: exact projection, confidence, load shifting, real LCL households, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from smartmeter_lib.config import build_settings
from smartmeter_lib.errors import ConfigError
from smartmeter_lib.insights import commands
from smartmeter_lib.insights.cost import cost_pivot, cost_table
from smartmeter_lib.insights.profiles import (
    MONTHLY_RELATIVE_USE,
    profile_bins,
    seasonal_factor,
)
from smartmeter_lib.insights.recommend import recommend
from smartmeter_lib.insights.tariffs import (
    CATALOGUE_DIR,
    Rule,
    Standing,
    Tariff,
    load_catalogue,
    load_catalogue_tariff,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "lcl-samples"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/lcl-samples is "
                                  "absent (the real LCL samples are not part of the project)")
YEAR = pd.date_range("2025-01-01", "2026-01-01", freq="30min", inclusive="left", tz="UTC")


def read_lcl(path: Path) -> pd.DataFrame:
    """A kaggle-format LCL file as a readings frame (plain pandas, for these tests only)."""
    raw = pd.read_csv(path, dtype=str)
    return pd.DataFrame({
        "meter_id": raw.iloc[:, 0].str.strip(),
        "ts": pd.to_datetime(raw.iloc[:, 1].str.strip()).dt.tz_localize("UTC"),
        "kwh": pd.to_numeric(raw.iloc[:, 2].str.strip(), errors="coerce"),
        "interval_s": 1800,
    })


def modelled(profile: np.ndarray, meter: str = "m1", times: pd.DatetimeIndex = YEAR
             ) -> pd.DataFrame:
    """Readings that follow the model exactly: profile[bin] × seasonal factor."""
    kwh = profile[profile_bins(times)] * seasonal_factor(times)
    return pd.DataFrame({"meter_id": meter, "ts": times, "kwh": kwh, "interval_s": 1800})


def tou(night: float = 10.0, peak: float = 40.0, other: float = 25.0) -> Tariff:
    return Tariff("tou", "tou", (Standing(30.0),), (
        Rule(night, windows=((0, 420),)), Rule(peak, windows=((960, 1140),)), Rule(other)))


def flat(rate: float = 25.0) -> Tariff:
    return Tariff("flat", "flat", (Standing(30.0),), (Rule(rate),))


def evening_profile() -> np.ndarray:
    hh = np.arange(96) % 48
    return np.where((hh >= 32) & (hh < 38), 1.0, 0.1) + 0.05 * (np.arange(96) >= 48)


def test_seasonal_fact_table() -> None:
    days = pd.date_range("2025-01-01", "2025-12-31", freq="D", tz="UTC")
    assert seasonal_factor(days).mean() == pytest.approx(1.0, abs=0.01)
    assert MONTHLY_RELATIVE_USE[1] / MONTHLY_RELATIVE_USE[7] == pytest.approx(1.41, abs=0.01)


def test_projection_from_eight_weeks_is_exact_when_the_model_holds() -> None:
    full = modelled(evening_profile())
    tariffs = [*load_catalogue(), tou()]
    truth = cost_pivot(cost_table(full, tariffs, "2025-01-01", "2026-01-01"), "total_gbp")
    history = full[full["ts"] < "2025-02-26"]
    rec = recommend(history, tariffs, n_boot=0)
    got = rec.annual.set_index("tariff")["annual_cost_gbp"]
    for t in truth.columns:
        assert got[t] == pytest.approx(truth.loc["m1", t], rel=1e-9), t
    s = rec.summary.iloc[0]
    assert s["year"] == 2025 and s["observed_days"] == pytest.approx(56)
    assert s["annual_kwh"] == pytest.approx(full["kwh"].sum(), rel=1e-9)
    assert s["recommended"] == truth.loc["m1"].idxmin()
    assert s["saving_gbp"] == pytest.approx(truth.loc["m1", "flat_cap_2025q3"]
                                            - truth.loc["m1"].min())


def test_load_shift_needed_to_flip_is_the_hand_computed_amount() -> None:
    data = modelled(evening_profile(), times=YEAR[: 48 * 28])
    rec = recommend(data, [flat(), tou()], n_boot=0, year=2025)
    s = rec.summary.iloc[0]
    assert s["recommended"] == "flat" and s["runner_up"] == "tou"
    blocks = rec.blocks[rec.blocks["tariff"] == "tou"].set_index("block")
    peak, night = blocks.loc["peak 16-19", "kwh"], blocks.loc["night 00-07", "kwh"]
    assert blocks.loc["peak 16-19", "avg_rate_p"] == pytest.approx(40.0)
    # ToU costs 15p/kWh more at peak and 15p less at night: Δ = 15 (P − N); moving a kWh from
    # peak to night saves 30p on ToU and nothing on flat, so (P − N) / 2 kWh flips the answer
    assert s["margin_gbp"] * 100 == pytest.approx(15 * (peak - night))
    assert s["flip_tariff"] == "tou" and s["flip_kwh"] == pytest.approx((peak - night) / 2)
    assert (s["flip_from"], s["flip_to"]) == ("peak 16-19", "night 00-07")
    assert s["peak_kwh"] == pytest.approx(peak)


def test_missing_half_hours_do_not_lower_the_forecast() -> None:
    full = modelled(evening_profile(), times=YEAR[: 48 * 42])
    rng = np.random.default_rng(3)
    gappy = full[rng.random(len(full)) > 0.5].copy()
    gappy.loc[gappy.index[::7], "kwh"] = np.nan
    a = recommend(full, [flat(), tou()], n_boot=0).annual
    b = recommend(gappy, [flat(), tou()], n_boot=0).annual
    assert b["annual_cost_gbp"].to_numpy() == pytest.approx(a["annual_cost_gbp"].to_numpy(),
                                                            rel=0.05)


def test_confidence_bootstrap_and_reference_per_meter() -> None:
    rng = np.random.default_rng(5)
    base = evening_profile()
    frames = [modelled(base * rng.uniform(0.8, 1.2, 96), f"m{i}", YEAR[: 48 * 35])
              for i in range(3)]
    frames[2] = frames[2].iloc[:48]  # a single day: too little to resample
    data = pd.concat(frames)
    data["kwh"] *= rng.uniform(0.5, 1.5, len(data))
    rec = recommend(data, [flat(), tou()], reference={"m0": "tou"}, n_boot=50, seed=1)
    s = rec.summary.set_index("meter_id")
    assert list(s["reference"]) == ["tou", "flat", "flat"]
    assert ((s["confidence"].iloc[:2] >= 0) & (s["confidence"].iloc[:2] <= 1)).all()
    assert np.isnan(s.loc["m2", "confidence"]) and s.loc["m2", "resampled_units"] == 1
    assert (s["saving_p10_gbp"].iloc[:2] <= s["saving_p90_gbp"].iloc[:2]).all()
    again = recommend(data, [flat(), tou()], reference={"m0": "tou"}, n_boot=50, seed=1)
    pd.testing.assert_frame_equal(rec.summary, again.summary)
    a = rec.annual
    assert (a["cost_p10_gbp"] <= a["cost_p90_gbp"]).all()
    assert a.groupby("meter_id")["prob_cheapest"].sum().iloc[:2].tolist() == pytest.approx([1, 1])
    with pytest.raises(ConfigError, match="reference"):
        recommend(data, [flat(), tou()], reference="nope")


def test_solar_export_is_forecast_and_credited() -> None:
    p = evening_profile().copy()
    p[[24, 25, 26, 72, 73, 74]] = -0.8  # midday net export
    data = modelled(p, times=YEAR[: 48 * 28])
    paid = Tariff("paid", "paid", (Standing(0.0),), (Rule(20.0),), export_p_per_kwh=15.0)
    rec = recommend(data, [paid], n_boot=0, year=2025)
    s, a = rec.summary.iloc[0], rec.annual.iloc[0]
    assert s["annual_export_kwh"] > 0
    assert a["export_credit_gbp"] == pytest.approx(s["annual_export_kwh"] * 0.15)


@needs_shared
def test_eight_weeks_of_2013_versus_the_whole_year_on_real_households() -> None:
    data = pd.concat([read_lcl(SHARED / "MAC000002_2013_kaggle_format.csv"),
                      read_lcl(SHARED / "MAC000147_ToU_2013_kaggle_format.csv")])
    tariffs = load_catalogue({"LCL_DTOU_SCHEDULE": SHARED / "dtou_tariffs_2013.csv"})
    assert "lcl_dtou_2013" in {t.id for t in tariffs}
    truth = cost_pivot(cost_table(data, tariffs, "2013-01-01", "2014-01-01"), "total_gbp")
    rec = recommend(data[data["ts"] < "2013-02-26"], tariffs, year=2013, n_boot=200)
    s = rec.summary.set_index("meter_id")
    predicted = rec.annual.pivot(index="meter_id", columns="tariff", values="annual_cost_gbp")
    for meter in ("MAC000002", "MAC000147"):
        assert s.loc[meter, "recommended"] == truth.loc[meter].idxmin() == "lcl_dtou_2013"
        assert s.loc[meter, "confidence"] >= 0.9
        others = truth.loc[meter].drop("lcl_dtou_2013")  # the 2025-priced tariffs alone
        assert predicted.loc[meter, others.index].idxmin() == others.idxmin()
        error = predicted.loc[meter] / truth.loc[meter] - 1
        assert error.abs().max() < 0.2, error


def test_cli_recommend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_read(path: Path, meters: list[str] | None) -> pd.DataFrame:
        df = pd.read_csv(path)
        df["ts"] = pd.to_datetime(df["ts"], utc=True)
        return df

    monkeypatch.setattr(commands, "read_readings", fake_read)
    path = tmp_path / "r.csv"
    modelled(evening_profile(), times=YEAR[: 48 * 14]).to_csv(path, index=False)
    obj = {"settings": build_settings(data_dir=tmp_path)}
    out, annual = tmp_path / "s.csv", tmp_path / "a.csv"
    res = CliRunner().invoke(commands.tariffs, [
        "recommend", "--readings", str(path), "--tariff", "flat_cap_2025q3", "--tariff",
        str(CATALOGUE_DIR / "cosy_style.yaml"), "--bootstrap", "20", "--output", str(out),
        "--annual-output", str(annual)], obj=obj)
    assert res.exit_code == 0, res.output
    assert pd.read_csv(out)["recommended"].iloc[0] in {"flat_cap_2025q3", "cosy_style"}
    assert len(pd.read_csv(annual)) == 2
    res = CliRunner().invoke(commands.tariffs, ["recommend", "--readings", str(path)], obj=obj)
    assert res.exit_code == 0 and "recommended" in res.output and "flip_kwh" in res.output
    assert load_catalogue_tariff("cosy_style").id == "cosy_style"
