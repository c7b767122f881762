"""Household archetypes and how each home's annual consumption is split and calibrated.

Every archetype starts from an Ofgem typical domestic consumption value for electricity
(low 1,800, medium 2,700, high 4,100 kWh a year) and adds what its technology uses:

============ =============================================================================
add-on       annual kWh (our assumptions, documented in docs/scenarios.md)
============ =============================================================================
storage      2,500: night-storage heaters (70%) and an immersion heater (30%) on Economy 7
heat_pump    3,500: an air-source heat pump for space heating and hot water (COP 2-4.5)
ev           2,000: a home charger (7 kW or 3.6 kW), about 7,000 miles a year
============ =============================================================================

Rooftop PV does not change consumption: it is generated on top (about 950 kWh per kWp a
year), so net import goes negative on sunny middays.

Each home's annual target is its archetype's target times a lognormal factor with mean 1. It is
split into an always-on baseload (about 27% of the band value, so 50-250 W), a fridge-freezer
compressor, lighting (9%), plug-in heaters on cold days (3%, gas-heated homes only),
scheduled appliance uses (at most what leaves 15% for the rest) and a smooth "activity"
remainder (TV, computers, chargers). Each part has a known expected annual energy, so the
expected annual consumption equals the target.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from smartmeter_lib.simulate.appliances import CATALOGUE, COMMUTER, HOME, expected_kwh

BAND_KWH = {"low": 1800.0, "medium": 2700.0, "high": 4100.0}
HEATING_KWH = {"gas": 0.0, "storage": 2500.0, "heat_pump": 3500.0}
EV_KWH = 2000.0
ACORN_GROUPS = ("Affluent", "Comfortable", "Adversity")
HOURS_PER_YEAR = 8760.0
EV_SESSION_KWH = (8.0, 20.0)
STORAGE_SPACE_SHARE = 0.7


@dataclass(frozen=True)
class Archetype:
    """A kind of household."""

    name: str
    share: float  #: share of London homes in the default mix
    band: str  #: Ofgem typical consumption value: low, medium or high
    occupants: tuple[int, int]  #: inclusive range
    acorn: tuple[float, float, float]  #: chances of Affluent, Comfortable, Adversity
    heating: str = "gas"  #: gas, storage or heat_pump
    ev: bool = False
    pv_kwp: float = 0.0
    wfh: float = 0.0  #: chance that someone is at home on weekdays (working from home)
    retired: bool = False
    description: str = ""

    @property
    def target_kwh(self) -> float:
        """Expected annual consumption (before any PV generation)."""
        return BAND_KWH[self.band] + HEATING_KWH[self.heating] + (EV_KWH if self.ev else 0.0)


ARCHETYPES: tuple[Archetype, ...] = (
    Archetype("single_flat", 0.24, "low", (1, 1), (0.25, 0.35, 0.40), wfh=0.15,
              description="one person in a flat, gas heating"),
    Archetype("retired", 0.10, "low", (1, 2), (0.30, 0.40, 0.30), retired=True,
              description="pensioners, at home in the day"),
    Archetype("couple", 0.20, "medium", (2, 2), (0.35, 0.40, 0.25), wfh=0.25,
              description="two adults, out at work on weekdays"),
    Archetype("wfh_couple", 0.08, "medium", (2, 2), (0.50, 0.35, 0.15), wfh=1.0,
              description="two adults, at least one working from home"),
    Archetype("family", 0.20, "high", (3, 5), (0.30, 0.40, 0.30), wfh=0.2,
              description="parents and children, gas heating"),
    Archetype("storage_flat", 0.05, "low", (1, 2), (0.10, 0.30, 0.60), heating="storage",
              description="night-storage heaters and immersion on Economy 7"),
    Archetype("heat_pump_home", 0.02, "medium", (2, 4), (0.60, 0.35, 0.05),
              heating="heat_pump", wfh=0.3, description="air-source heat pump"),
    Archetype("ev_family", 0.06, "high", (3, 5), (0.60, 0.35, 0.05), ev=True, wfh=0.2,
              description="family with an electric car and a home charger"),
    Archetype("solar_family", 0.04, "medium", (3, 4), (0.50, 0.40, 0.10), pv_kwp=3.5,
              wfh=0.2, description="family with rooftop PV"),
    Archetype("low_carbon_home", 0.01, "medium", (2, 4), (0.80, 0.20, 0.00),
              heating="heat_pump", ev=True, pv_kwp=4.0, wfh=0.5,
              description="heat pump, electric car and rooftop PV"),
)
BY_NAME = {a.name: a for a in ARCHETYPES}


def archetype_table() -> pd.DataFrame:
    """The archetypes with their targets, as a table."""
    return pd.DataFrame([{
        "archetype": a.name, "share": a.share, "band": a.band, "target_kwh": a.target_kwh,
        "occupants": f"{a.occupants[0]}-{a.occupants[1]}", "heating": a.heating, "ev": a.ev,
        "pv_kwp": a.pv_kwp, "wfh": a.wfh, "retired": a.retired, "description": a.description,
    } for a in ARCHETYPES])


def resolve_mix(mix: Mapping[str, float] | None) -> npt.NDArray[np.float64]:
    """Shares of each archetype (in ARCHETYPES order), normalised; ValueError if unknown."""
    if mix is None:
        w = np.array([a.share for a in ARCHETYPES])
    else:
        unknown = sorted(set(mix) - set(BY_NAME))
        if unknown:
            raise ValueError(f"unknown archetype(s) {unknown}; known: {sorted(BY_NAME)}")
        if any(float(v) < 0 for v in mix.values()):
            raise ValueError("archetype shares must be >= 0")
        w = np.array([float(mix.get(a.name, 0.0)) for a in ARCHETYPES])
    if w.sum() <= 0:
        raise ValueError("the archetype mix is empty")
    return np.asarray(w / w.sum())


@dataclass
class HouseholdParams:
    """Per-home parameters, one numpy array per field (index = home)."""

    archetype: npt.NDArray[np.int64]
    occupants: npt.NDArray[np.int64]
    acorn: npt.NDArray[np.int64]
    heating: npt.NDArray[np.object_]
    ev: npt.NDArray[np.bool_]
    pv_kwp: npt.NDArray[np.float64]
    weekday_type: npt.NDArray[np.int64]  #: COMMUTER or HOME
    annual_kwh: npt.NDArray[np.float64]  #: the calibrated target
    base_kw: npt.NDArray[np.float64]
    fridge_kw: npt.NDArray[np.float64]
    fridge_period_s: npt.NDArray[np.int64]
    fridge_on_s: npt.NDArray[np.int64]
    fridge_phase_s: npt.NDArray[np.int64]
    light_kwh: npt.NDArray[np.float64]
    plug_heat_kwh: npt.NDArray[np.float64]
    activity_kwh: npt.NDArray[np.float64]
    appliance_rate: npt.NDArray[np.float64]  #: (appliances, homes) uses a day, weekly mean
    heat_kwh: npt.NDArray[np.float64]  #: storage or heat pump, a year
    storage_kw: npt.NDArray[np.float64]
    ev_kwh: npt.NDArray[np.float64]
    ev_kw: npt.NDArray[np.float64]
    ev_smart: npt.NDArray[np.bool_]
    phase_min: npt.NDArray[np.int64]  #: this home keeps its hours shifted by so many minutes

    @property
    def fridge_kwh(self) -> npt.NDArray[np.float64]:
        return np.asarray(self.fridge_kw * self.fridge_on_s / self.fridge_period_s
                          * HOURS_PER_YEAR)

    @property
    def appliance_kwh(self) -> npt.NDArray[np.float64]:
        per_use = np.array([expected_kwh(a) for a in CATALOGUE])
        return np.asarray((self.appliance_rate * per_use[:, None]).sum(axis=0) * 365.0)


def sample_households(n: int, rng: np.random.Generator,
                      mix: Mapping[str, float] | None = None) -> HouseholdParams:
    """Draw ``n`` homes from the archetype mix and calibrate their parts (vectorised)."""
    arch = rng.choice(len(ARCHETYPES), size=n, p=resolve_mix(mix))
    table = ARCHETYPES
    lo = np.array([a.occupants[0] for a in table])[arch]
    hi = np.array([a.occupants[1] for a in table])[arch]
    occ = rng.integers(lo, hi + 1)
    acorn_p = np.array([a.acorn for a in table])[arch]
    acorn = (rng.random(n)[:, None] > np.cumsum(acorn_p, axis=1)).sum(axis=1)
    acorn = np.minimum(acorn, 2)
    heating = np.array([a.heating for a in table], dtype=object)[arch]
    ev = np.array([a.ev for a in table])[arch]
    home_day = (rng.random(n) < np.array([a.wfh for a in table])[arch]) | np.array(
        [a.retired for a in table])[arch]
    pv = np.array([a.pv_kwp for a in table])[arch] * rng.uniform(0.85, 1.15, n)

    sigma = 0.18
    r = rng.lognormal(0.0, sigma, n) / np.exp(sigma**2 / 2)
    band = np.array([BAND_KWH[a.band] for a in table])[arch] * r
    heat = np.array([HEATING_KWH[a.heating] for a in table])[arch] * r
    ev_kwh = np.where(ev, EV_KWH * r, 0.0)

    base_kw = np.clip(0.27 * band / HOURS_PER_YEAR * rng.uniform(0.75, 1.25, n), 0.035, 0.25)
    fridge_kw = rng.uniform(0.07, 0.11, n)
    period = rng.integers(2400, 3600, n)
    on = (period * rng.uniform(0.28, 0.42, n)).astype(np.int64)
    light = 0.09 * band
    plug = np.where(heating == "gas", 0.03 * band, 0.0)

    affluence = np.array([1.3, 1.0, 0.7])[acorn]
    rates = np.zeros((len(CATALOGUE), n))
    for k, a in enumerate(CATALOGUE):
        owns = rng.random(n) < np.minimum(a.ownership * (affluence if a.ownership < 0.9 else 1),
                                          1.0)
        rates[k] = owns * (a.per_day + a.per_occupant * occ)
    per_use = np.array([expected_kwh(a) for a in CATALOGUE])
    app = (rates * per_use[:, None]).sum(axis=0) * 365.0
    fixed = base_kw * HOURS_PER_YEAR + fridge_kw * on / period * HOURS_PER_YEAR + light + plug
    room = np.maximum(band - fixed - 0.15 * band, 0.0)
    scale = np.minimum(1.0, room / np.maximum(app, 1e-9))
    rates *= scale
    activity = np.maximum(band - fixed - app * scale, 0.0)

    storage_kw = np.where(heating == "storage",
                          np.maximum(2.0, 1.15 * 3.2 * STORAGE_SPACE_SHARE * heat / 365 / 7.0),
                          0.0)
    ev_kw = np.where(rng.random(n) < 0.8, 7.0, 3.6) * ev
    return HouseholdParams(
        archetype=arch, occupants=occ, acorn=acorn, heating=heating, ev=ev, pv_kwp=pv,
        weekday_type=np.where(home_day, HOME, COMMUTER).astype(np.int64),
        annual_kwh=band + heat + ev_kwh, base_kw=base_kw, fridge_kw=fridge_kw,
        fridge_period_s=period.astype(np.int64), fridge_on_s=on,
        fridge_phase_s=rng.integers(0, 3600, n).astype(np.int64), light_kwh=light,
        plug_heat_kwh=plug, activity_kwh=activity, appliance_rate=rates, heat_kwh=heat,
        storage_kw=storage_kw, ev_kwh=ev_kwh, ev_kw=ev_kw,
        ev_smart=ev & (rng.random(n) < 0.55),
        phase_min=np.rint(rng.normal(0.0, 30.0, n)).astype(np.int64))


def households_frame(p: HouseholdParams) -> pd.DataFrame:
    """The per-home attributes data scientists look at (one row per home)."""
    names = np.array([a.name for a in ARCHETYPES], dtype=object)
    return pd.DataFrame({
        "archetype": names[p.archetype], "occupants": p.occupants,
        "acorn_group": np.array(ACORN_GROUPS, dtype=object)[p.acorn],
        "heating": p.heating, "ev": p.ev, "pv_kwp": np.round(p.pv_kwp, 2),
        "home_in_day": p.weekday_type == HOME, "annual_kwh": p.annual_kwh,
        "target_kwh": np.array([a.target_kwh for a in ARCHETYPES])[p.archetype],
        "base_kw": p.base_kw,
    })
