"""Tariffs: the YAML spec (documented in docs/tariffs.md), loading, and the built-in catalogue.

A tariff is a daily standing charge plus a unit-rate schedule: either rules (time-of-day
windows, day types, date ranges; the first matching rule wins) or a half-hourly price file.
An export rate pays for each kWh of negative net import in a half-hour. Windows are read on
the tariff's clock: ``UTC`` (fixed all year, e.g. Economy 7 in GMT) or ``Europe/London``
(clock time, e.g. Octopus Go).

>>> t = load_catalogue_tariff("economy7")
>>> t.timezone, [r.p_per_kwh for r in t.rules]
('UTC', [14.0, 31.0])
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
import pandas as pd

from smartmeter_lib.errors import DataError
from smartmeter_lib.insights import holidays as hol
from smartmeter_lib.insights.halfhours import SLOTS_PER_DAY, day_types, local_days
from smartmeter_lib.insights.prices import PriceSchedule, read_price_file
from smartmeter_lib.insights.yamlspec import Ctx as _Ctx
from smartmeter_lib.insights.yamlspec import LinedMap as _Map
from smartmeter_lib.insights.yamlspec import load_yaml

log = logging.getLogger(__name__)

CATALOGUE_DIR = Path(__file__).parent / "catalogue"
DAY_TYPES = ("weekday", "weekend", "bank_holiday")
_DAY_CODE = {name: i for i, name in enumerate(DAY_TYPES)}
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_PLACEHOLDER = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_TOP_KEYS = {"id", "name", "description", "source", "notes", "timezone", "standing_charge",
             "export_rate", "bank_holidays", "rates", "prices"}
_RULE_KEYS = {"p_per_kwh", "windows", "days", "from", "to", "label"}
_PRICE_KEYS = {"file", "time_column", "value_column", "labels", "timezone", "repeat"}


@dataclass(frozen=True)
class Rule:
    """A unit rate for some half-hours: windows (minutes on the tariff's clock), days, dates."""

    p_per_kwh: float
    windows: tuple[tuple[int, int], ...] = ((0, 1440),)
    days: frozenset[str] = frozenset(DAY_TYPES)
    date_from: date | None = None
    date_to: date | None = None  #: inclusive
    label: str = ""
    line: int = 0

    def mask(self, day: npt.NDArray[np.int64], minute: npt.NDArray[np.int64],
             dtype: npt.NDArray[np.int8]) -> npt.NDArray[np.bool_]:
        """Which half-hours (local day number, minute of day, day type) the rule covers."""
        m = np.zeros(len(day), dtype=bool)
        for start, end in self.windows:
            m |= (minute >= start) & (minute < end) if start < end else \
                (minute >= start) | (minute < end)
        m &= np.isin(dtype, [_DAY_CODE[d] for d in self.days])
        return m & _date_mask(day, self.date_from, self.date_to)


def _date_mask(day: npt.NDArray[np.int64], lo: date | None, hi: date | None
               ) -> npt.NDArray[np.bool_]:
    m = np.ones(len(day), dtype=bool)
    if lo is not None:
        m &= day >= np.datetime64(lo, "D").astype(np.int64)
    if hi is not None:
        m &= day <= np.datetime64(hi, "D").astype(np.int64)
    return m


@dataclass(frozen=True)
class Standing:
    """A daily standing charge (p/day), optionally for a date range (inclusive)."""

    p_per_day: float
    date_from: date | None = None
    date_to: date | None = None


@dataclass(frozen=True)
class Tariff:
    """One tariff; build it with :func:`load_tariff` or directly (e.g. in tests)."""

    id: str
    name: str
    standing: tuple[Standing, ...]
    rules: tuple[Rule, ...] = ()
    prices: PriceSchedule | None = None
    export_p_per_kwh: float = 0.0
    timezone: str = "Europe/London"
    holidays: frozenset[date] = field(default_factory=hol.bank_holidays)
    description: str = ""
    source: str = ""

    def _features(self, times: pd.DatetimeIndex) -> tuple[npt.NDArray[np.int64], ...]:
        day, minute = local_days(times, self.timezone)
        if len(day):
            first = pd.Timestamp(int(day.min()), unit="D").year
            last = pd.Timestamp(int(day.max()), unit="D").year
            hol.warn_outside_known_years(first, last)
        return day, minute, day_types(day, hol.as_day_numbers(self.holidays)).astype(np.int64)

    def unit_rates(self, times: pd.DatetimeIndex) -> npt.NDArray[np.float64]:
        """p/kWh of each half-hour starting at ``times`` (UTC); NaN where none is defined."""
        if self.prices is not None:
            return self.prices.lookup(times)
        day, minute, dtype = self._features(times)
        out = np.full(len(times), np.nan)
        for rule in reversed(self.rules):  # the first matching rule wins
            out[rule.mask(day, minute, dtype.astype(np.int8))] = rule.p_per_kwh
        return out

    def standing_per_slot(self, times: pd.DatetimeIndex) -> npt.NDArray[np.float64]:
        """The standing charge (p) of each half-hour: 1/48 of the day's charge."""
        day, _ = local_days(times, self.timezone)
        out = np.full(len(times), np.nan)
        for st in reversed(self.standing):
            out[_date_mask(day, st.date_from, st.date_to)] = st.p_per_day / SLOTS_PER_DAY
        return out


def _window(ctx: _Ctx, where: _Map, text: Any) -> tuple[int, int]:
    m = _WINDOW.match(text) if isinstance(text, str) else None
    if not m:
        raise ctx.error(where, "windows", f"window {text!r} must be a quoted \"HH:MM-HH:MM\"")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start >= 1440 or end > 1440 or m1 % 30 or m2 % 30:
        raise ctx.error(where, "windows", f"window {text!r}: times must be on the half-hour "
                        "between 00:00 and 24:00")
    if start == end:
        raise ctx.error(where, "windows", f"window {text!r} is empty (use 00:00-24:00)")
    return start, end


def _rule(ctx: _Ctx, raw: Any) -> Rule:
    r = ctx.keys(raw, _RULE_KEYS, "a rate rule")
    windows = r.get("windows", ["00:00-24:00"])
    if isinstance(windows, str):
        windows = [windows]
    days = r.get("days", list(DAY_TYPES))
    days = [days] if isinstance(days, str) else days
    if not isinstance(days, list) or not days or any(d not in DAY_TYPES for d in days):
        raise ctx.error(r, "days", f"days must be a list of {', '.join(DAY_TYPES)}, got {days!r}")
    rule = Rule(ctx.number(r, "p_per_kwh"), tuple(_window(ctx, r, w) for w in windows),
                frozenset(days), ctx.date(r, "from"), ctx.date(r, "to"),
                str(r.get("label", "")), r.line)
    if rule.date_from and rule.date_to and rule.date_to < rule.date_from:
        raise ctx.error(r, "to", "'to' is before 'from'")
    return rule


def _standing(ctx: _Ctx, doc: _Map) -> tuple[Standing, ...]:
    raw = doc.get("standing_charge")
    if raw is None:
        raise ctx.error(doc, None, "missing 'standing_charge' (p/day; 0 if there is none)")
    if not isinstance(raw, list):
        return (Standing(ctx.number(doc, "standing_charge")),)
    out = []
    for item in raw:
        s = ctx.keys(item, {"p_per_day", "from", "to"}, "a standing charge")
        out.append(Standing(ctx.number(s, "p_per_day"), ctx.date(s, "from"), ctx.date(s, "to")))
    return tuple(out)


def _resolve_file(ctx: _Ctx, where: _Map, text: Any, schedules: Mapping[str, Path]) -> Path:
    if not isinstance(text, str) or not text.strip():
        raise ctx.error(where, "file", "prices.file must be a path")
    m = _PLACEHOLDER.match(text.strip())
    if m:
        name = m.group(1)
        found = schedules.get(name) or os.environ.get(name)
        if not found:
            raise ctx.error(where, "file", f"price file ${{{name}}} is not given: pass "
                            f"--schedule {name}=PATH (schedules={{'{name}': path}} in Python) "
                            f"or set the environment variable {name}")
        path = Path(found).expanduser()
    else:
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = ctx.path.parent / path
    if not path.is_file():
        raise ctx.error(where, "file", f"price file {path} does not exist")
    return path


def _prices(ctx: _Ctx, raw: Any, schedules: Mapping[str, Path]) -> PriceSchedule:
    p = ctx.keys(raw, _PRICE_KEYS, "prices")
    labels = p.get("labels")
    if labels is not None:
        labels = ctx.keys(labels, set(labels) if isinstance(labels, dict) else set(), "labels")
        labels = {str(k): ctx.number(labels, k) for k in labels}
    repeat = p.get("repeat", "none")
    if repeat not in ("none", "yearly"):
        raise ctx.error(p, "repeat", f"repeat must be none or yearly, got {repeat!r}")
    return read_price_file(_resolve_file(ctx, p, p.get("file"), schedules),
                           time_column=p.get("time_column"), value_column=p.get("value_column"),
                           labels=labels, timezone=_timezone(ctx, p, p.get("timezone", "UTC")),
                           repeat=repeat)


def _timezone(ctx: _Ctx, where: _Map, name: Any) -> str:
    name = "UTC" if name in ("GMT", "UTC", "Etc/UTC") else name
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ctx.error(where, "timezone", f"unknown time zone {name!r} (UTC or "
                        "Europe/London)") from None
    return str(name)


def _holidays(ctx: _Ctx, doc: _Map) -> frozenset[date]:
    raw = doc.get("bank_holidays", "england-and-wales")
    if raw in ("none", None, False):
        return frozenset()
    if raw == "england-and-wales":
        return hol.bank_holidays()
    if isinstance(raw, list):
        extra = _Map({f"#{i}": v for i, v in enumerate(raw)})
        extra.line, extra.key_lines = doc.key_lines.get("bank_holidays", doc.line), {}
        return hol.bank_holidays() | {d for k in extra if (d := ctx.date(extra, k))}
    raise ctx.error(doc, "bank_holidays", "bank_holidays must be england-and-wales, none or a "
                    "list of extra dates")


def load_tariff(path: str | Path, schedules: Mapping[str, str | Path] | None = None) -> Tariff:
    """Load a tariff YAML file; ``schedules`` resolves ``${NAME}`` price-file placeholders."""
    path = Path(path)
    ctx = _Ctx(path)
    doc = load_yaml(path)
    doc = ctx.keys(doc, _TOP_KEYS, "a tariff")
    if ("rates" in doc) == ("prices" in doc):
        raise ctx.error(doc, None, "a tariff needs exactly one of 'rates' (rules) or 'prices' "
                        "(a half-hourly price file)")
    sched = {k: Path(v) for k, v in (schedules or {}).items()}
    rules: tuple[Rule, ...] = ()
    prices = None
    if "rates" in doc:
        raw = doc["rates"]
        if not isinstance(raw, list) or not raw:
            raise ctx.error(doc, "rates", "rates must be a non-empty list of rules")
        rules = tuple(_rule(ctx, r) for r in raw)
    else:
        prices = _prices(ctx, doc["prices"], sched)
    export = ctx.number(doc, "export_rate", required=False)
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ctx.error(doc, "name" if "name" in doc else None, "missing 'name'")
    return Tariff(id=str(doc.get("id", path.stem)), name=name.strip(),
                  standing=_standing(ctx, doc), rules=rules, prices=prices,
                  export_p_per_kwh=export, timezone=_timezone(ctx, doc, doc.get("timezone",
                                                                              "Europe/London")),
                  holidays=_holidays(ctx, doc), description=str(doc.get("description", "")),
                  source=str(path))


def catalogue_files(extra_dirs: Sequence[str | Path] = ()) -> list[Path]:
    """The built-in tariff files, then ``*.yaml`` of ``extra_dirs`` (user tariffs)."""
    files = sorted(CATALOGUE_DIR.glob("*.yaml"))
    for d in extra_dirs:
        files += sorted(Path(d).glob("*.yaml")) + sorted(Path(d).glob("*.yml"))
    return files


def load_catalogue(schedules: Mapping[str, str | Path] | None = None,
                   extra_dirs: Sequence[str | Path] = (), *,
                   skip_unavailable: bool = True) -> list[Tariff]:
    """Every catalogue tariff; those whose external price file is not given are skipped."""
    out: dict[str, Tariff] = {}
    for f in catalogue_files(extra_dirs):
        try:
            t = load_tariff(f, schedules)
        except DataError as err:
            if not (skip_unavailable and "is not given" in str(err)):
                raise
            log.info("tariff %s skipped: %s", f.stem, err)
            continue
        out[t.id] = t  # a user's file with a built-in id replaces the built-in
    return list(out.values())


def load_catalogue_tariff(tariff_id: str,
                          schedules: Mapping[str, str | Path] | None = None) -> Tariff:
    """One built-in tariff by id (its file name without ``.yaml``)."""
    path = CATALOGUE_DIR / f"{tariff_id}.yaml"
    if not path.is_file():
        known = ", ".join(p.stem for p in catalogue_files())
        raise DataError(f"no built-in tariff {tariff_id!r} (known: {known})")
    return load_tariff(path, schedules)


def resolve_tariffs(specs: Sequence[str], schedules: Mapping[str, str | Path] | None = None,
                    extra_dirs: Sequence[str | Path] = ()) -> list[Tariff]:
    """Tariffs from paths or catalogue ids; with no ``specs``, the whole catalogue."""
    if not specs:
        return load_catalogue(schedules, extra_dirs)
    out = []
    user = {p.stem: p for p in catalogue_files(extra_dirs)}
    for spec in specs:
        path = Path(spec)
        if path.suffix in (".yaml", ".yml") or path.is_file():
            out.append(load_tariff(path, schedules))
        elif spec in user:
            out.append(load_tariff(user[spec], schedules))
        else:
            out.append(load_catalogue_tariff(spec, schedules))
    ids = [t.id for t in out]
    if len(set(ids)) != len(ids):
        raise DataError(f"two tariffs share an id: {ids}; give each file a distinct 'id'")
    return out
