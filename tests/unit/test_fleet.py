from __future__ import annotations

import numpy as np
import pytest

from smartmeter_lib import geo
from smartmeter_lib.simulate.fleet import SECONDS_PER_YEAR, Fleet, daily_shape

DAY0 = 1_764_288_000  # 2025-11-28 00:00 UTC


def test_same_seed_same_fleet_and_readings() -> None:
    a, b = Fleet(200, seed=7), Fleet(200, seed=7)
    assert a.meters.meter_id.tolist() == b.meters.meter_id.tolist()
    assert a.meters.lat.tolist() == b.meters.lat.tolist()
    for t in range(3):
        assert a.readings(DAY0 + t).kwh.tolist() == b.readings(DAY0 + t).kwh.tolist()
    assert Fleet(200, seed=8).meters.lat.tolist() != a.meters.lat.tolist()


def test_homes_are_in_london_with_matching_geohashes() -> None:
    f = Fleet(2000, seed=1)
    s, w, n, e = geo.LONDON_BOUNDS
    m = f.meters
    assert ((m.lat > s) & (m.lat < n) & (m.lon > w) & (m.lon < e)).all()
    assert len(set(m.meter_id.tolist())) == 2000
    for i in range(0, 2000, 97):
        assert m.geohash[i] == geo.encode(m.lat[i], m.lon[i], 7)
    # denser in inner London: more homes within 5 km of the centre than in an equal-area
    # share of the bounding box would give
    clat, clon = geo.LONDON_CENTRE
    near = sum(geo.haversine_km(a, o, clat, clon) < 5 for a, o in zip(m.lat, m.lon,
                                                                     strict=True))
    box_km2 = 46.7 * 58.3
    assert near / 2000 > 3 * (np.pi * 25 / box_km2)


def test_one_reading_per_home_per_second() -> None:
    f = Fleet(50, seed=3)
    b = f.readings(DAY0 + 5)
    assert len(b) == 50 and set(b.ts_ms.tolist()) == {(DAY0 + 5) * 1000}
    assert (b.interval_s == 1).all() and (b.kwh >= 0).all()
    assert (b.power_kw() < 20).all()


def test_annual_consumption_matches_ofgem_typical_values() -> None:
    f = Fleet(3000, seed=2)
    # the expected power integrated over a day, times 365.25, gives the target per home
    day = np.mean([f.expected_kw(DAY0 + s) for s in range(0, 86400, 300)], axis=0)
    annual = day * SECONDS_PER_YEAR / 3600
    assert annual == pytest.approx(f.annual_kwh, rel=0.02)
    assert 2300 < f.annual_kwh.mean() < 3100  # the fleet mix centres on 2,700 kWh
    assert ((f.base_kw >= 0.05) & (f.base_kw <= 0.2)).all()


def test_simulated_power_follows_the_expected_shape() -> None:
    f = Fleet(2000, seed=4)
    evening = np.mean([f.readings(DAY0 + 19 * 3600 + s).power_kw().sum() for s in range(60)])
    night = np.mean([f.readings(DAY0 + 3 * 3600 + s).power_kw().sum() for s in range(60)])
    assert 2.0 < evening / night < 5.0
    assert float(daily_shape(np.array([18.75]))[0]) > float(daily_shape(np.array([3.0]))[0])


def test_a_fleet_needs_homes() -> None:
    with pytest.raises(ValueError, match="at least one home"):
        Fleet(0)
