"""Half-hourly price schedules (dynamic tariffs) and the synthetic Agile-style price file.

A price file is a CSV with a time column (the start of each half-hour) and a value column:
either a price in p/kWh, or a label (e.g. the LCL 2013 dToU ``High``/``Normal``/``Low``) that
the tariff maps to prices. Naive timestamps are read in the file's time zone (UTC unless the
tariff says otherwise); timestamps with an offset are honoured.

``repeat: yearly`` lets a one-year file price other years: a time is moved by a whole number
of weeks (the number closest to the whole years between it and the file) so that weekdays and
seasons line up, then wrapped by 52 weeks into the file's span.

The synthetic Agile-style file is **synthetic**, not Octopus data: a deterministic
wholesale-like price (seasonal level, a daily shape with overnight trough, morning shoulder,
summer solar dip and evening peak, weekend discount, windy spells that push prices below zero)
turned into a retail price with the published Agile formula shape
``min(2.2 × wholesale + 12p during 16:00-19:00 London time, 100p)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from smartmeter_lib.errors import DataError
from smartmeter_lib.insights.halfhours import DAY_NS, SLOT_NS, local_days, slot_times, ts_ns

log = logging.getLogger(__name__)

Repeat = Literal["none", "yearly"]
WEEK_NS = 7 * DAY_NS
AGILE_MULTIPLIER = 2.2
AGILE_PEAK_ADDER_P = 12.0  #: p/kWh added 16:00-19:00 London time
AGILE_CAP_P = 100.0  #: p/kWh cap (£1/kWh)
SYNTHETIC_AGILE_SEED = 2025


@dataclass(frozen=True)
class PriceSchedule:
    """Prices (p/kWh) on sorted UTC half-hour starts."""

    times_ns: npt.NDArray[np.int64]
    prices: npt.NDArray[np.float64]
    source: str
    repeat: Repeat = "none"

    def lookup(self, times: pd.DatetimeIndex) -> npt.NDArray[np.float64]:
        """The price of each half-hour starting at ``times`` (NaN where the file has none)."""
        t = ts_ns(times)
        if self.repeat == "yearly" and len(self.times_ns):
            t = self._fold(t)
        pos = np.searchsorted(self.times_ns, t).clip(0, max(len(self.times_ns) - 1, 0))
        out = np.full(len(t), np.nan)
        if len(self.times_ns):
            hit = self.times_ns[pos] == t
            out[hit] = self.prices[pos[hit]]
        return out

    def _fold(self, t: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        first, last = int(self.times_ns[0]), int(self.times_ns[-1])
        centre = (first + last) // 2
        years = np.round((centre - t) / (365.2425 * DAY_NS))
        t = t + np.round(years * 365.2425 / 7).astype(np.int64) * WEEK_NS
        span = 52 * WEEK_NS
        t = np.where(t < first, t + span * ((first - t + span - 1) // span), t)
        return np.where(t > last, t - span * ((t - last + span - 1) // span), t)


def _line_error(path: Path, line: int, msg: str) -> DataError:
    return DataError(f"{path}:{line}: {msg}")


def read_price_file(path: Path, *, time_column: str | None = None,
                    value_column: str | None = None, labels: dict[str, float] | None = None,
                    timezone: str = "UTC", repeat: Repeat = "none") -> PriceSchedule:
    """Read a half-hourly price (or label) CSV; :class:`DataError` names the file and line."""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read price file: {err}") from None
    if raw.shape[1] < 2:
        raise _line_error(path, 1, "a price file needs a time column and a price/label column")
    tcol = time_column or str(raw.columns[0])
    vcol = value_column or str(raw.columns[1])
    for col in (tcol, vcol):
        if col not in raw.columns:
            raise _line_error(path, 1, f"no column {col!r} (columns: {list(raw.columns)})")
    text = raw[vcol].str.strip()
    if labels:
        mapped = text.map(labels)
        bad = mapped.isna().to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            raise _line_error(path, i + 2, f"label {text.iloc[i]!r} is not one of "
                              f"{sorted(labels)}")
        values = mapped.to_numpy(dtype=np.float64)
    else:
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.argmax(bad))
            raise _line_error(path, i + 2, f"price {text.iloc[i]!r} is not a number (give "
                              "'labels' in the tariff if the file holds labels)")
    times = _parse_times(path, raw[tcol].str.strip(), timezone)
    if (times % SLOT_NS != 0).any():
        i = int(np.argmax(times % SLOT_NS != 0))
        raise _line_error(path, i + 2, f"time {raw[tcol].iloc[i]!r} is not the start of a "
                          "half-hour")
    order = np.argsort(times, kind="stable")
    st = times[order]
    dup = np.flatnonzero(st[1:] == st[:-1])
    if len(dup):
        i = int(order[dup[0] + 1])
        raise _line_error(path, i + 2, f"half-hour {raw[tcol].iloc[i]!r} appears twice")
    log.debug("read %d half-hourly prices from %s", len(st), path)
    return PriceSchedule(st, np.asarray(values[order], dtype=np.float64), str(path), repeat)


def _parse_times(path: Path, text: pd.Series, timezone: str) -> npt.NDArray[np.int64]:
    parsed = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=False)
    na = parsed.isna().to_numpy()
    if na.any():
        i = int(np.argmax(na))
        raise _line_error(path, i + 2, f"cannot read time {text.iloc[i]!r}")
    try:
        idx = pd.DatetimeIndex(parsed)
    except (TypeError, ValueError):
        raise _line_error(path, 2, "mixed time zones in the time column") from None
    if idx.tz is None:
        try:
            idx = idx.tz_localize(timezone, ambiguous="raise", nonexistent="raise")
        except (ValueError, TypeError) as err:
            raise DataError(f"{path}: naive times are not valid in {timezone}: {err}") from None
    return np.asarray(idx.tz_convert("UTC").as_unit("ns").asi8, dtype=np.int64)


# --- the synthetic Agile-style price file ------------------------------------------------

def synthetic_wholesale(times: pd.DatetimeIndex, seed: int = SYNTHETIC_AGILE_SEED
                        ) -> npt.NDArray[np.float64]:
    """A deterministic, wholesale-like price (p/kWh) per half-hour: synthetic, not market data."""
    day, minute = local_days(times, "Europe/London")
    hour = minute / 60.0
    first = int(day.min())
    n_days = int(day.max()) - first + 1
    rng = np.random.default_rng(seed)
    # windy spells: an AR(1) "wind" index per day; windy days are cheap, some below zero
    shocks = rng.standard_normal(n_days)
    wind = np.empty(n_days)
    level = 0.0
    for i in range(n_days):
        level = 0.7 * level + shocks[i]
        wind[i] = level
    wind /= wind.std() or 1.0
    doy = day % 365.2425  # day of the year, near enough (1970-01-01 is day 0)
    winter = np.cos(2 * np.pi * (doy - 15) / 365.2425)  # +1 mid-January, -1 mid-July
    summer = np.clip(-winter, 0, None)

    def bump(centre: float, width: float) -> npt.NDArray[np.float64]:
        return np.asarray(np.exp(-0.5 * ((hour - centre) / width) ** 2), dtype=np.float64)

    weekday = (day + 3) % 7
    shape = (-2.6 * bump(4.0, 2.0) + 1.2 * bump(8.0, 1.5) + 4.0 * bump(18.0, 1.4)
             - 3.5 * summer * bump(13.0, 2.2))
    w = wind[day - first]
    windy = np.clip(w - 0.8, 0, None)
    price = (8.5 + 2.2 * winter + shape - 0.8 * (weekday >= 5) - 1.8 * w
             - 3.0 * windy * (bump(3.5, 3.0) + summer * bump(13.0, 2.5))
             + 0.5 * rng.standard_normal(len(times)))
    return np.asarray(price, dtype=np.float64)


def agile_from_wholesale(times: pd.DatetimeIndex, wholesale: npt.NDArray[np.float64]
                         ) -> npt.NDArray[np.float64]:
    """``min(2.2 × wholesale + 12p in 16:00-19:00 London time, 100p)``, rounded to 0.01p."""
    _, minute = local_days(times, "Europe/London")
    peak = (minute >= 16 * 60) & (minute < 19 * 60)
    price = np.minimum(AGILE_MULTIPLIER * wholesale + AGILE_PEAK_ADDER_P * peak, AGILE_CAP_P)
    return np.asarray(np.round(price, 2), dtype=np.float64)


def synthetic_agile_prices(start: Any = "2025-01-01", end: Any = "2026-01-01",
                           seed: int = SYNTHETIC_AGILE_SEED) -> pd.DataFrame:
    """The synthetic Agile-style prices of ``[start, end)`` (UTC): ``ts_utc, p_per_kwh``."""
    s = ts_ns(pd.DatetimeIndex([start]))[0]
    e = ts_ns(pd.DatetimeIndex([end]))[0]
    times = slot_times(int(s), int((e - s) // SLOT_NS))
    prices = agile_from_wholesale(times, synthetic_wholesale(times, seed))
    return pd.DataFrame({"ts_utc": times, "p_per_kwh": prices})


def write_price_file(prices: pd.DataFrame, path: Path) -> Path:
    """Write ``ts_utc, p_per_kwh`` as CSV (ISO times with ``Z``, prices to 0.01p)."""
    text = prices["ts_utc"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    body = pd.DataFrame({"ts_utc": text, "p_per_kwh": prices["p_per_kwh"].map("{:.2f}".format)})
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        body.to_csv(fh, index=False)
    return path
