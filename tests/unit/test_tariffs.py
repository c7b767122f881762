"""Tariff spec: YAML loading and errors, the catalogue, windows, day types, clocks, holidays."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dateutil.easter import easter

from smartmeter_lib.errors import DataError
from smartmeter_lib.insights import holidays as hol
from smartmeter_lib.insights.halfhours import ts_ns
from smartmeter_lib.insights.prices import (
    PriceSchedule,
    read_price_file,
    synthetic_agile_prices,
)
from smartmeter_lib.insights.tariffs import (
    CATALOGUE_DIR,
    load_catalogue,
    load_catalogue_tariff,
    load_tariff,
    resolve_tariffs,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "lcl-samples"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/lcl-samples is "
                                  "absent (the real LCL samples are not part of the project)")


def rate_at(tariff_id: str, *utc: str) -> list[float]:
    t = load_catalogue_tariff(tariff_id)
    return t.unit_rates(pd.DatetimeIndex(list(utc), tz="UTC")).tolist()


def write(tmp_path: Path, text: str, name: str = "t.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# --- the catalogue -----------------------------------------------------------------------

def test_catalogue_loads_with_the_design_facts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LCL_DTOU_SCHEDULE", raising=False)
    tariffs = {t.id: t for t in load_catalogue()}
    assert {"flat_cap_2025q3", "economy7", "go_style", "cosy_style", "peak_offpeak",
            "agile_synthetic"} <= set(tariffs)
    assert "lcl_dtou_2013" not in tariffs  # its schedule is external and was not given
    flat = tariffs["flat_cap_2025q3"]
    assert flat.rules[0].p_per_kwh == 25.73 and flat.standing[0].p_per_day == 51.37
    assert "Jul-Sep 2025" in flat.name
    assert tariffs["economy7"].timezone == "UTC"
    assert tariffs["go_style"].timezone == "Europe/London"


def test_catalogue_rates_by_time_of_day() -> None:
    # winter: London clock = UTC
    assert rate_at("go_style", "2025-01-15T00:00Z", "2025-01-15T00:30Z", "2025-01-15T05:00Z",
                   "2025-01-15T05:30Z") == [27.0, 8.5, 8.5, 27.0]
    assert rate_at("cosy_style", "2025-01-15T03:30Z", "2025-01-15T04:00Z", "2025-01-15T13:30Z",
                   "2025-01-15T16:00Z", "2025-01-15T18:30Z", "2025-01-15T19:00Z") == \
        [27.0, 14.0, 14.0, 38.0, 38.0, 27.0]
    assert rate_at("economy7", "2025-01-15T06:30Z", "2025-01-15T07:00Z") == [14.0, 31.0]


def test_day_types_weekday_weekend_bank_holiday() -> None:
    # 2025-12-24 Wednesday, 2025-12-25 Thursday (Christmas Day), 2025-12-27 Saturday
    assert rate_at("peak_offpeak", "2025-12-24T16:30Z", "2025-12-25T16:30Z",
                   "2025-12-27T16:30Z", "2025-12-24T15:30Z") == [36.0, 23.0, 23.0, 23.0]


def test_economy7_is_fixed_in_gmt_and_go_follows_the_clock() -> None:
    # summer (BST = UTC+1): E7 night is 01:00-08:00 clock time, Go stays 00:30-05:30 clock
    assert rate_at("economy7", "2025-07-01T23:30Z", "2025-07-02T00:00Z",
                   "2025-07-02T06:30Z") == [31.0, 14.0, 14.0]
    # 23:30 UTC is 00:30 BST: Go's cheap window has started; 04:30 UTC is 05:30 BST: ended
    assert rate_at("go_style", "2025-07-01T23:00Z", "2025-07-01T23:30Z", "2025-07-02T04:00Z",
                   "2025-07-02T04:30Z") == [27.0, 8.5, 8.5, 27.0]


def test_first_matching_rule_wins_windows_wrap_midnight_and_date_ranges(tmp_path: Path) -> None:
    t = load_tariff(write(tmp_path, """
name: test
timezone: UTC
standing_charge: [{p_per_day: 40, to: 2025-03-31}, {p_per_day: 50, from: 2025-04-01}]
rates:
  - {p_per_kwh: 5, windows: ["23:30-01:00"], from: 2025-04-01}
  - {p_per_kwh: 10, windows: ["23:30-01:00"]}
  - {p_per_kwh: 20, windows: "00:00-24:00", days: [weekend]}
  - {p_per_kwh: 30}
"""))
    got = t.unit_rates(pd.DatetimeIndex(["2025-03-05T23:00Z", "2025-03-05T23:30Z",
                                         "2025-03-06T00:30Z", "2025-03-06T01:00Z",
                                         "2025-03-08T12:00Z", "2025-04-02T23:30Z"]))
    assert got.tolist() == [30, 10, 10, 30, 20, 5]
    st = t.standing_per_slot(pd.DatetimeIndex(["2025-03-31T12:00Z", "2025-04-01T12:00Z"]))
    assert st.tolist() == pytest.approx([40 / 48, 50 / 48])


def test_tariff_without_a_rule_for_a_slot_gives_nan(tmp_path: Path) -> None:
    t = load_tariff(write(tmp_path, "name: n\nstanding_charge: 0\nrates:\n"
                          "  - {p_per_kwh: 1, from: 2025-01-01, to: 2025-01-31}\n"))
    got = t.unit_rates(pd.DatetimeIndex(["2025-01-31T12:00Z", "2025-02-01T12:00Z"]))
    assert got[0] == 1 and np.isnan(got[1])


@pytest.mark.parametrize(("text", "line", "words"), [
    ("name: x\nstanding_charge: 1\nrates:\n  - {p_per_kwh: 1}\ncolour: red\n", 5,
     "unknown key 'colour'"),
    ("name: x\nstanding_charge: 1\nrates:\n  - p_per_kwh: 1\n    windows: [\"7-9\"]\n", 5,
     "HH:MM-HH:MM"),
    ("name: x\nstanding_charge: 1\nrates:\n  - p_per_kwh: 1\n    windows: [\"07:15-09:00\"]\n",
     5, "half-hour"),
    ("name: x\nstanding_charge: 1\nrates:\n  - p_per_kwh: cheap\n", 4, "must be a number"),
    ("name: x\nrates:\n  - p_per_kwh: 1\n", 1, "standing_charge"),
    ("name: x\nstanding_charge: 1\nrates:\n  - {p_per_kwh: 1, days: [monday]}\n", 4, "days"),
    ("name: x\nstanding_charge: 1\nrates:\n  - {p_per_kwh: 1, from: 2025-13-01}\n", 4,
     "YYYY-MM-DD"),
    ("name: x\nstanding_charge: 1\ntimezone: Mars/Olympus\nrates:\n  - {p_per_kwh: 1}\n", 3,
     "time zone"),
    ("name: x\nstanding_charge: 1\n", 1, "exactly one of 'rates'"),
    ("name: x\nstanding_charge: 1\nprices:\n  file: ${NOT_SET_ANYWHERE_42}\n", 4,
     "--schedule NOT_SET_ANYWHERE_42=PATH"),
    ("name: [x\n", 2, "not valid YAML"),
])
def test_bad_tariff_files_name_file_and_line(tmp_path: Path, text: str, line: int,
                                             words: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(DataError) as err:
        load_tariff(p)
    assert f"{p}:{line}:" in str(err.value) and words in str(err.value)


def test_resolve_by_path_or_id_and_user_dir(tmp_path: Path) -> None:
    user = tmp_path / "tariffs"
    user.mkdir()
    write(user, "name: Mine\nstanding_charge: 45\nrates: [{p_per_kwh: 20}]\n", "mine.yaml")
    got = resolve_tariffs(["economy7", "mine", str(CATALOGUE_DIR / "go_style.yaml")],
                          extra_dirs=[user])
    assert [t.id for t in got] == ["economy7", "mine", "go_style"]
    assert "mine" in {t.id for t in load_catalogue(extra_dirs=[user])}
    with pytest.raises(DataError, match="no built-in tariff 'nope'"):
        resolve_tariffs(["nope"])


# --- price files -------------------------------------------------------------------------

def test_label_schedule_hand_made(tmp_path: Path) -> None:
    sched = write(tmp_path, "TariffDateTime,Tariff\n2013-01-01 00:00:00,Normal\n"
                  "2013-01-01 00:30:00,High\n2013-01-01 01:00:00,Low\n", "s.csv")
    t = load_tariff(CATALOGUE_DIR / "lcl_dtou_2013.yaml", {"LCL_DTOU_SCHEDULE": sched})
    got = t.unit_rates(pd.DatetimeIndex(["2013-01-01T00:00Z", "2013-01-01T00:30Z",
                                         "2013-01-01T01:00Z", "2013-01-01T01:30Z"]))
    assert got[:3].tolist() == [11.76, 67.20, 3.99] and np.isnan(got[3])


@pytest.mark.parametrize(("body", "line", "words"), [
    ("t,v\n2013-01-01 00:00:00,High\n2013-01-01 00:30:00,Medium\n", 3, "'Medium'"),
    ("t,v\n2013-01-01 00:00:00,High\nyesterday,High\n", 3, "cannot read time"),
    ("t,v\n2013-01-01 00:00:00,High\n2013-01-01 00:10:00,High\n", 3, "start of a half-hour"),
    ("t,v\n2013-01-01 00:00:00,High\n2013-01-01 00:00:00,Low\n", 3, "appears twice"),
])
def test_bad_price_files_name_file_and_line(tmp_path: Path, body: str, line: int,
                                            words: str) -> None:
    p = write(tmp_path, body, "p.csv")
    with pytest.raises(DataError) as err:
        read_price_file(p, labels={"High": 1.0, "Low": 0.5})
    assert f"{p}:{line}:" in str(err.value) and words in str(err.value)


def test_shipped_agile_file_is_the_documented_synthetic_generator() -> None:
    shipped = pd.read_csv(CATALOGUE_DIR / "agile_synthetic_2025.csv")
    made = synthetic_agile_prices("2025-01-01", "2026-01-01", seed=2025)
    assert len(shipped) == len(made) == 17520
    assert np.abs(shipped["p_per_kwh"].to_numpy() - made["p_per_kwh"].to_numpy()).max() < 0.011
    p = made["p_per_kwh"]
    assert (p < 0).sum() > 20 and p.max() <= 100.0
    local = made["ts_utc"].dt.tz_convert("Europe/London").dt.hour
    assert p[(local >= 16) & (local < 19)].mean() > p[(local < 16) | (local >= 19)].mean() + 10


def test_yearly_repeat_aligns_weekdays_and_seasons() -> None:
    t = load_catalogue_tariff("agile_synthetic")
    assert t.prices is not None
    times = pd.date_range("2013-01-01", "2014-01-01", freq="30min", inclusive="left", tz="UTC")
    assert not np.isnan(t.unit_rates(times)).any()
    sched = t.prices
    folded = pd.to_datetime(sched._fold(ts_ns(times)), utc=True)
    assert (folded.year == 2025).all()
    assert (folded.day_of_week == times.day_of_week).all()
    gap = np.abs(folded.day_of_year - times.day_of_year)
    assert np.minimum(gap, 365 - gap).max() <= 4
    assert np.isnan(PriceSchedule(np.array([0]), np.array([1.0]), "x").lookup(times[:2])).all()


@needs_shared
def test_real_dtou_schedule_labels_and_prices() -> None:
    t = load_tariff(CATALOGUE_DIR / "lcl_dtou_2013.yaml",
                    {"LCL_DTOU_SCHEDULE": SHARED / "dtou_tariffs_2013.csv"})
    assert t.prices is not None and len(t.prices.times_ns) == 17520
    counts = pd.Series(t.prices.prices).value_counts().to_dict()
    assert counts == {11.76: 15072, 3.99: 1660, 67.20: 788}


# --- bank holidays -----------------------------------------------------------------------

def test_bank_holidays_are_weekdays_and_follow_the_rules() -> None:
    days = hol.bank_holidays()
    assert all(d.weekday() < 5 for d in days)
    for y in range(2012, 2028):
        e = easter(y)
        assert e - timedelta(days=2) in days and e + timedelta(days=1) in days, y
        last_aug = max(date(y, 8, d) for d in range(25, 32) if date(y, 8, d).weekday() == 0)
        assert last_aug in days
    assert {date(2022, 9, 19), date(2023, 5, 8), date(2012, 6, 5), date(2020, 5, 8)} <= days
    assert date(2020, 5, 4) not in days  # the 2020 early May holiday moved to VE day


@needs_shared
def test_bank_holidays_match_the_shared_list() -> None:
    shared = pd.read_csv(SHARED / "uk_bank_holidays.csv")
    ours = hol.bank_holidays()
    for text in shared["Bank holidays"]:
        y, a, b = (int(x) for x in text.split("-"))
        # the shared file writes some 2012-2013 dates as year-day-month (2013-01-04 = 1 April)
        assert date(y, a, b) in ours or (b <= 12 and date(y, b, a) in ours), text
    years = pd.Series([int(t[:4]) for t in shared["Bank holidays"]]).value_counts()
    for y, n in years.items():
        assert len(hol.bank_holidays(int(y))) == n
