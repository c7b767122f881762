"""The household simulator: calibration, shapes, placement, determinism and speed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from smartmeter_lib import geo
from smartmeter_lib.model import Kind
from smartmeter_lib.replay.readers import read_meter_file
from smartmeter_lib.simulate import weather as wx
from smartmeter_lib.simulate.archetypes import ARCHETYPES, BAND_KWH, archetype_table
from smartmeter_lib.simulate.households import HouseholdFleet, generation_rate
from smartmeter_lib.simulate.placement import encode_geohash, place_homes, pseudo_location
from smartmeter_lib.simulate.profiles import (
    DOCUMENTED_RATIO_RANGE,
    days_across_year,
    peak_ratio,
    ratio_range,
    sample_profile,
)

from ..conftest import SHARED_DATA

JAN_EVENING = 1_736_960_400  # 2025-01-15 17:00 UTC (a Wednesday)
JUL_NOON = 1_752_235_200  # 2025-07-11 12:00 UTC (a Friday; BST)
EVERY_ARCHETYPE = {a.name: 1.0 for a in ARCHETYPES}


def test_archetype_targets_are_ofgem_values_plus_documented_add_ons() -> None:
    t = archetype_table().set_index("archetype")
    assert set(BAND_KWH.values()) == {1800.0, 2700.0, 4100.0}
    assert t.loc["single_flat", "target_kwh"] == 1800
    assert t.loc["couple", "target_kwh"] == 2700
    assert t.loc["family", "target_kwh"] == 4100
    assert t.loc["ev_family", "target_kwh"] == 4100 + 2000
    assert t["share"].sum() == pytest.approx(1.0)


def test_mean_annual_kwh_of_each_archetype_is_within_10_percent_of_target() -> None:
    fleet = HouseholdFleet(1000, seed=11, mix=EVERY_ARCHETYPE)
    hh = fleet.households
    # the calibration itself: each home's expected consumption averages to its target
    cal = hh.groupby("archetype").agg(cal=("annual_kwh", "mean"), target=("target_kwh", "first"))
    assert (cal["cal"] / cal["target"]).between(0.93, 1.07).all(), cal
    # and the simulated consumption (before PV), sampled over days spread across the year
    prof = sample_profile(fleet, days_across_year(2025, 30), per_slot=1, net=False, seed=3)
    annual = prof.drop(columns="fleet").mean() * 8760
    target = cal["target"].reindex(annual.index)
    ratio = annual / target
    assert ratio.between(0.9, 1.1).all(), pd.DataFrame({"sim": annual, "target": target})


def _lcl_frame() -> pd.DataFrame | None:
    files = sorted(SHARED_DATA.glob("*_kaggle_format.csv")) if SHARED_DATA.is_dir() else []
    if not files:
        return None
    return pd.concat([read_meter_file(p).frame for p in files], ignore_index=True)


def test_fleet_evening_to_overnight_ratio_is_in_the_range_of_real_lcl_households() -> None:
    real = _lcl_frame()
    lo, hi = ratio_range(real)  # monthly ratios of the real homes, or the documented range
    if real is None:
        assert (lo, hi) == DOCUMENTED_RATIO_RANGE
    else:
        assert 1.4 < lo < 2.0 and 4.0 < hi < 6.0  # MAC000002 and MAC000147 in 2013
    fleet = HouseholdFleet(1500, seed=12)
    prof = sample_profile(fleet, days_across_year(2025, 24), per_slot=2, seed=5)
    ratio = peak_ratio(prof["fleet"])
    assert lo <= ratio <= hi, (ratio, lo, hi)
    # plain gas-heated homes have the pronounced peak of the real LCL homes (2.3 and 2.9)
    for name in ("couple", "family", "single_flat"):
        assert 2.0 < peak_ratio(prof[name]) < 4.0, name


def test_same_seed_same_fleet_and_readings_at_any_start() -> None:
    a, b = HouseholdFleet(300, seed=7), HouseholdFleet(300, seed=7)
    assert a.meters.meter_id.tolist() == b.meters.meter_id.tolist()
    assert a.meters.lat.tolist() == b.meters.lat.tolist()
    pd.testing.assert_frame_equal(a.households, b.households)
    seq = [a.readings(JAN_EVENING + k).kwh for k in range(6)]
    # a reading does not depend on when the simulation started
    assert b.readings(JAN_EVENING + 5).kwh.tolist() == seq[5].tolist()
    assert HouseholdFleet(300, seed=8).readings(JAN_EVENING).kwh.tolist() != seq[0].tolist()


def test_homes_in_london_denser_inside_with_feeder_areas() -> None:
    fleet = HouseholdFleet(4000, seed=1)
    m, hh = fleet.meters, fleet.households
    s, w, n, e = geo.LONDON_BOUNDS
    assert ((m.lat > s) & (m.lat < n) & (m.lon > w) & (m.lon < e)).all()
    for i in range(0, 4000, 173):
        assert m.geohash[i] == geo.encode(m.lat[i], m.lon[i], 7)
        assert hh["area"].iloc[i] == m.geohash[i][:6]
    clat, clon = geo.LONDON_CENTRE
    km = np.array([geo.haversine_km(a, o, clat, clon) for a, o in zip(m.lat, m.lon,
                                                                     strict=True)])
    inner = (km < 7).sum() / (np.pi * 49)
    outer = ((km >= 7) & (km < 20)).sum() / (np.pi * (400 - 49))
    assert inner > 1.5 * outer
    lat, lon = place_homes(500, np.random.default_rng(1), (51.439, -0.097, 51.481, -0.036))
    assert lat.min() >= 51.439 and lat.max() <= 51.481 and lon.min() >= -0.097


def test_vectorised_geohash_and_pseudo_locations() -> None:
    rng = np.random.default_rng(2)
    lat, lon = rng.uniform(51.3, 51.7, 300), rng.uniform(-0.5, 0.3, 300)
    assert encode_geohash(lat, lon, 6).tolist() == geo.encode_many(lat, lon, 6).tolist()
    a = pseudo_location(["MAC000002", "MAC000147"])
    b = pseudo_location(["MAC000147", "MAC000002"])
    assert a[0][0] == b[0][1] and a[1][1] == b[1][0]
    for la, lo in zip(*a, strict=True):
        assert geo.haversine_km(la, lo, *geo.LONDON_CENTRE) <= 10.0


def test_readings_are_one_per_home_per_second_with_realistic_power() -> None:
    fleet = HouseholdFleet(400, seed=4)
    b = fleet.readings(JAN_EVENING)
    assert len(b) == 400 and set(b.ts_ms.tolist()) == {JAN_EVENING * 1000}
    assert (b.interval_s == 1).all() and (b.kind == Kind.READING).all()
    kw = np.array([fleet.readings(JAN_EVENING + k).power_kw() for k in range(1, 300)])
    assert np.isfinite(kw).all() and kw.max() < 25.0
    assert kw.min() > 0.0  # no PV at 17:00 in January
    assert (kw > 2.0).any()  # appliance cycles: kettles, ovens, showers
    night = fleet.power_kw(JAN_EVENING + 10 * 3600)  # 03:00
    hh = fleet.households
    gas = (hh["heating"] == "gas").to_numpy() & ~hh["ev"].to_numpy()
    assert 0.05 < float(np.median(night[gas])) < 0.35  # baseload + fridge + standby
    storage = (hh["heating"] == "storage").to_numpy()
    assert night[storage].mean() > 3 * night[gas].mean()  # Economy 7 night storage


def test_rooftop_pv_exports_on_a_summer_noon() -> None:
    fleet = HouseholdFleet(300, seed=5, mix={"solar_family": 1.0, "couple": 1.0})
    solar = (fleet.households["pv_kwp"] > 0).to_numpy()
    net = np.mean([fleet.power_kw(JUL_NOON + k) for k in range(0, 600, 30)], axis=0)
    gross = np.mean([fleet.power_kw(JUL_NOON + k, net=False) for k in range(0, 600, 30)],
                    axis=0)
    assert (net[solar] < 0).mean() > 0.5
    assert (gross >= 0).all() and (net[~solar] > 0).all()


def test_weekday_weekend_and_season_shapes() -> None:
    fleet = HouseholdFleet(800, seed=6, mix={"couple": 1.0})
    wed = sample_profile(fleet, [1_736_899_200], per_slot=4)["fleet"]  # Wed 2025-01-15
    sat = sample_profile(fleet, [1_737_158_400], per_slot=4)["fleet"]  # Sat 2025-01-18
    assert sat.iloc[22:26].mean() > 1.3 * wed.iloc[22:26].mean()  # 11:00-13:00 at home
    july = sample_profile(fleet, [1_752_192_000], per_slot=4)["fleet"]  # Fri 2025-07-11
    jan_fri = sample_profile(fleet, [1_737_072_000], per_slot=4)["fleet"]  # Fri 2025-01-17
    assert jan_fri.mean() > july.mean()  # lighting and heaters in winter


def test_uk_clock() -> None:
    start, end = wx.bst_bounds(2025)
    assert pd.Timestamp(start, unit="s", tz="UTC") == pd.Timestamp("2025-03-30 01:00Z")
    assert pd.Timestamp(end, unit="s", tz="UTC") == pd.Timestamp("2025-10-26 01:00Z")
    assert wx.uk_offset_s(JUL_NOON) == 3600 and wx.uk_offset_s(JAN_EVENING) == 0
    day = wx.local_day(JUL_NOON)
    assert wx.local_midnight(day) == JUL_NOON - 12 * 3600 - 3600
    assert not wx.is_weekend(day) and wx.is_weekend(day + 1)


def test_generation_is_much_faster_than_real_time() -> None:
    fleet = HouseholdFleet(5000, seed=9)
    rate = generation_rate(fleet, JAN_EVENING, 60)
    assert rate["readings"] == 5000 * 60
    assert rate["realtime_factor"] > 20, rate  # 100,000 homes: see docs/scenarios.md
