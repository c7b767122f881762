"""Scenario files: a fleet, a time span and scheduled grid events, in YAML (docs/scenarios.md).

>>> s = parse_scenario({"homes": 50, "duration": "10m", "start": "2025-01-15T17:00:00Z",
...                     "events": [{"kind": "comms_loss", "at": "2m", "duration": "3m",
...                                 "meters": 1}]})
>>> s.duration_s, s.events[0].kind, s.events[0].duration_s
(600, 'comms_loss', 180)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from smartmeter_lib import geo
from smartmeter_lib.errors import ConfigError
from smartmeter_lib.simulate.archetypes import BY_NAME
from smartmeter_lib.simulate.events import KINDS, LOST, NONE, SENT, GridEvent
from smartmeter_lib.simulate.households import HouseholdFleet

_DUR = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)d)?\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?"
                  r"\s*(?:(\d+(?:\.\d+)?)s?)?\s*$")
_EVENT_KEYS = {"kind", "at", "duration", "end", "cells", "min_homes", "meters", "stagger",
               "factor", "last_gasp", "lost", "probability", "kw", "id"}


def parse_duration(value: Any, what: str = "duration") -> int:
    """Seconds from ``90``, ``"90s"``, ``"5m"``, ``"1h30m"`` or ``"2d"``.

    >>> parse_duration("1h30m"), parse_duration(45), parse_duration("2d")
    (5400, 45, 172800)
    """
    if isinstance(value, bool):
        raise ConfigError(f"{what}: expected a duration like 90, '90s', '5m' or '1h30m', "
                          f"got {value!r}")
    if isinstance(value, int | float):
        secs = float(value)
    else:
        m = _DUR.match(str(value))
        if not m or not any(m.groups()):
            raise ConfigError(f"{what}: expected a duration like 90, '90s', '5m' or '1h30m', "
                              f"got {value!r}")
        d, h, mi, s = (float(x) if x else 0.0 for x in m.groups())
        secs = d * 86400 + h * 3600 + mi * 60 + s
    if secs < 0:
        raise ConfigError(f"{what} must not be negative, got {value!r}")
    return round(secs)


def parse_time(value: Any, what: str = "time") -> int:
    """UTC seconds from an ISO 8601 time (naive times are UTC)."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{what}: expected an ISO 8601 time like 2025-01-15T17:00:00Z, "
                          f"got {value!r}") from err
    if ts is pd.NaT:
        raise ConfigError(f"{what}: got an empty time")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.timestamp())


@dataclass(frozen=True)
class EventSpec:
    """One event as written in the scenario (meters and cells not yet chosen)."""

    kind: str
    at_s: int  #: seconds after the scenario start
    duration_s: int
    event_id: str = ""
    cells: int | tuple[str, ...] = 1
    min_homes: int = 3
    meters: int | tuple[str, ...] = 1
    stagger_s: int = 0
    factor: tuple[float, float] = (0.1, 0.5)
    last_gasp: float = 0.6
    lost: float = 0.3
    probability: float = 0.02
    kw: tuple[float, float] = (15.0, 80.0)


@dataclass(frozen=True)
class Scenario:
    name: str = "scenario"
    homes: int | None = None
    seed: int | None = None
    start_s: int | None = None
    duration_s: int | None = None
    bounds: tuple[float, float, float, float] | None = None
    mix: dict[str, float] | None = None
    events: tuple[EventSpec, ...] = field(default_factory=tuple)
    source: str = "<dict>"

    def with_overrides(self, **kw: Any) -> Scenario:
        return replace(self, **{k: v for k, v in kw.items() if v is not None})


def _range(v: Any, what: str, lo: float, hi: float) -> tuple[float, float]:
    vals = v if isinstance(v, list | tuple) else [v, v]
    try:
        a, b = (float(x) for x in vals)
    except (TypeError, ValueError):
        raise ConfigError(f"{what}: expected a number or [low, high], got {v!r}") from None
    if not (lo <= a <= b <= hi):
        raise ConfigError(f"{what}: expected {lo:g} <= low <= high <= {hi:g}, got {v!r}")
    return a, b


def _fraction(v: Any, what: str) -> float:
    return _range(v, what, 0.0, 1.0)[0]


def _count_or_list(v: Any, what: str) -> int | tuple[str, ...]:
    if isinstance(v, list):
        if not v or not all(isinstance(x, str) and x for x in v):
            raise ConfigError(f"{what}: expected a count or a list of names, got {v!r}")
        return tuple(v)
    if isinstance(v, int) and not isinstance(v, bool) and v >= 1:
        return v
    raise ConfigError(f"{what}: expected a count (>= 1) or a list of names, got {v!r}")


def _event(d: Any, where: str, start_s: int | None) -> EventSpec:
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a mapping with kind, at and duration")
    unknown = sorted(set(d) - _EVENT_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(_EVENT_KEYS)}")
    kind = d.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    at = d.get("at", 0)
    if isinstance(at, str) and re.match(r"^\d{4}-\d\d-\d\d", at):
        if start_s is None:
            raise ConfigError(f"{where}: an absolute 'at' needs the scenario's 'start'")
        at_s = parse_time(at, f"{where}.at") - start_s
    else:
        at_s = parse_duration(at, f"{where}.at")
    if "end" in d:
        if start_s is None:
            raise ConfigError(f"{where}: 'end' needs the scenario's 'start'")
        dur = parse_time(d["end"], f"{where}.end") - start_s - at_s
    elif "duration" in d:
        dur = parse_duration(d["duration"], f"{where}.duration")
    else:
        raise ConfigError(f"{where}: give a duration (e.g. duration: 10m) or an end time")
    if dur <= 0:
        raise ConfigError(f"{where}: the event must last at least 1 s")
    kw: dict[str, Any] = {"kind": kind, "at_s": at_s, "duration_s": dur,
                          "event_id": str(d.get("id", ""))}
    if "cells" in d:
        kw["cells"] = _count_or_list(d["cells"], f"{where}.cells")
    if "min_homes" in d:
        kw["min_homes"] = int(_range(d["min_homes"], f"{where}.min_homes", 1, 1e6)[0])
    if "meters" in d:
        kw["meters"] = _count_or_list(d["meters"], f"{where}.meters")
    if "stagger" in d:
        kw["stagger_s"] = parse_duration(d["stagger"], f"{where}.stagger")
    if "factor" in d:
        kw["factor"] = _range(d["factor"], f"{where}.factor", 0.0, 1.0)
    if "last_gasp" in d:
        kw["last_gasp"] = _fraction(d["last_gasp"], f"{where}.last_gasp")
    if "lost" in d:
        kw["lost"] = _fraction(d["lost"], f"{where}.lost")
    if "probability" in d:
        kw["probability"] = _fraction(d["probability"], f"{where}.probability")
    if "kw" in d:
        kw["kw"] = _range(d["kw"], f"{where}.kw", 0.0, 100.0)
    return EventSpec(**kw)


def parse_scenario(doc: Any, source: str = "<dict>") -> Scenario:
    """A :class:`Scenario` from a parsed YAML document; ConfigError saying what is wrong."""
    if not isinstance(doc, dict):
        raise ConfigError(f"scenario {source}: expected a mapping at the top level")
    known = {"name", "description", "homes", "seed", "start", "duration", "fleet", "events"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ConfigError(f"scenario {source}: unknown key(s) {unknown}; known: {sorted(known)}")
    start = parse_time(doc["start"], f"scenario {source}: start") if "start" in doc else None
    homes = doc.get("homes")
    if homes is not None and (not isinstance(homes, int) or isinstance(homes, bool)
                              or homes < 1):
        raise ConfigError(f"scenario {source}: homes must be a whole number >= 1, got {homes!r}")
    fleet = doc.get("fleet") or {}
    if not isinstance(fleet, dict) or set(fleet) - {"bounds", "mix"}:
        raise ConfigError(f"scenario {source}: fleet takes 'bounds' and 'mix' only")
    bounds = None
    if "bounds" in fleet:
        b = fleet["bounds"]
        if (not isinstance(b, list) or len(b) != 4
                or not all(isinstance(x, int | float) for x in b) or b[0] >= b[2]
                or b[1] >= b[3]):
            raise ConfigError(f"scenario {source}: fleet.bounds must be [south, west, north, "
                              f"east] in degrees, got {b!r}")
        bounds = (float(b[0]), float(b[1]), float(b[2]), float(b[3]))
    mix = fleet.get("mix")
    if mix is not None:
        if not isinstance(mix, dict) or set(mix) - set(BY_NAME):
            raise ConfigError(f"scenario {source}: fleet.mix maps archetypes ({', '.join(BY_NAME)})"
                              f" to shares, got {mix!r}")
        mix = {str(k): float(v) for k, v in mix.items()}
    events = doc.get("events") or []
    if not isinstance(events, list):
        raise ConfigError(f"scenario {source}: events must be a list")
    specs = []
    for i, e in enumerate(events):
        spec = _event(e, f"scenario {source}: events[{i}]", start)
        specs.append(replace(spec, event_id=spec.event_id or f"E{i + 1:03d}"))
    ids = [s.event_id for s in specs]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"scenario {source}: event ids must be unique, got {ids}")
    return Scenario(
        name=str(doc.get("name") or Path(source).stem), homes=homes,
        seed=None if doc.get("seed") is None else int(doc["seed"]), start_s=start,
        duration_s=None if doc.get("duration") is None else parse_duration(
            doc["duration"], f"scenario {source}: duration"),
        bounds=bounds, mix=mix, events=tuple(specs), source=source)


def packaged_scenarios() -> list[str]:
    """Names of the example scenarios shipped with the package."""
    folder = resources.files("smartmeter_lib.simulate") / "scenarios"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario file, or a packaged scenario by name (e.g. ``small``)."""
    p = Path(path)
    if not p.exists() and str(path) in packaged_scenarios():
        text = (resources.files("smartmeter_lib.simulate") / "scenarios"
                / f"{path}.yaml").read_text(encoding="utf-8")
        source = f"{path}.yaml (packaged)"
    else:
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"cannot read scenario {path}: {err} (packaged scenarios: "
                              f"{', '.join(packaged_scenarios())})") from err
        source = str(path)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"scenario {source} is not valid YAML: {err}") from err
    return parse_scenario(doc, source)


# -- resolution: which meters and cells ----------------------------------------------------
def _cells(fleet: HouseholdFleet, spec: EventSpec, used: np.ndarray, rng: np.random.Generator,
           where: str) -> tuple[tuple[str, ...], np.ndarray]:
    area = fleet.households["area"].to_numpy(object)
    if isinstance(spec.cells, tuple):
        cells = spec.cells
        missing = [c for c in cells if not (area == c).any()]
        if missing:
            raise ConfigError(f"{where}: no home of the fleet is in cell(s) {missing}")
    else:
        counts = pd.Series(area[~used]).value_counts()
        whole = pd.Series(area).value_counts()
        ok = [c for c in counts.index if counts[c] == whole[c] and whole[c] >= spec.min_homes]
        if len(ok) < spec.cells:
            raise ConfigError(f"{where}: the fleet has only {len(ok)} free geohash-6 cell(s) "
                              f"with at least {spec.min_homes} homes (asked for {spec.cells}); "
                              "add homes, narrow fleet.bounds or lower min_homes")
        first = ok[int(rng.integers(len(ok)))]
        c0 = geo.cell(first).centre
        dist = [geo.haversine_km(*c0, *geo.cell(c).centre) for c in ok]
        cells = tuple(ok[i] for i in np.argsort(dist, kind="stable")[: spec.cells])
    return cells, np.flatnonzero(np.isin(area, cells))


def _meters(fleet: HouseholdFleet, spec: EventSpec, used: np.ndarray,
            rng: np.random.Generator, where: str) -> np.ndarray:
    ids = fleet.meters.meter_id
    if isinstance(spec.meters, tuple):
        idx = pd.Index(ids).get_indexer(pd.Index(list(spec.meters)))
        if (idx < 0).any():
            bad = [m for m, i in zip(spec.meters, idx, strict=True) if i < 0]
            raise ConfigError(f"{where}: unknown meter(s) {bad}")
        return np.asarray(idx, dtype=np.int64)
    free = np.flatnonzero(~used)
    if len(free) < spec.meters:
        raise ConfigError(f"{where}: asked for {spec.meters} meters, only {len(free)} are free")
    return np.sort(rng.choice(free, size=spec.meters, replace=False)).astype(np.int64)


def resolve_events(scenario: Scenario, fleet: HouseholdFleet, start_s: int) -> list[GridEvent]:
    """Choose the cells and meters of every event (seeded) and fix its times."""
    rng = np.random.default_rng([fleet.seed, 0x5CE])
    used = np.zeros(fleet.n, bool)
    out = []
    for spec in scenario.events:
        where = f"scenario {scenario.source}: event {spec.event_id}"
        cells: tuple[str, ...] = ()
        if spec.kind == "area_outage":
            cells, homes = _cells(fleet, spec, used, rng, where)
        else:
            homes = _meters(fleet, spec, used, rng, where)
        used[homes] = True
        k = len(homes)
        t0 = start_s + spec.at_s
        start = t0 + (rng.integers(0, spec.stagger_s + 1, k) if spec.stagger_s else
                      np.zeros(k, np.int64))
        start = np.asarray(start, dtype=np.int64)
        end = start + spec.duration_s
        kw: dict[str, Any] = {}
        if spec.kind == "area_outage":
            capable = rng.random(k) < spec.last_gasp
            gasp = np.where(capable, np.where(rng.random(k) < spec.lost, LOST, SENT), NONE)
            rest = np.where(capable, np.where(rng.random(k) < spec.lost, LOST, SENT), NONE)
            gasp_s = start + rng.integers(30, 46, k)
            gasp[gasp_s >= end] = NONE  # power came back before the meter gave up
            kw = {"gasp": gasp.astype(np.int8), "gasp_s": gasp_s.astype(np.int64),
                  "restore": rest.astype(np.int8),
                  "restore_s": (end + rng.integers(0, 31, k)).astype(np.int64)}
        elif spec.kind == "bypass":
            kw = {"factor": rng.uniform(*spec.factor, k)}
        elif spec.kind == "spike":
            kw = {"probability": spec.probability, "spike_kw": spec.kw}
        out.append(GridEvent(spec.event_id, spec.kind, homes.astype(np.int64), start, end,
                             cells=cells, **kw))
    return out
