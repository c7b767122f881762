"""Bank holidays of England and Wales, 2012-2027, shipped as package data.

The list (``data/bank_holidays_england_wales.csv``) is ours: public facts, one row per
holiday, including the one-off days (2012 and 2022 jubilees, the 2022 state funeral, the 2023
coronation, the 2020 VE-day move) and substitute days. Tariffs use it for the ``bank_holiday``
day type; a tariff file may add dates of its own or switch holidays off.

>>> days = bank_holidays()
>>> date(2025, 12, 25) in days and date(2025, 12, 24) not in days
True
>>> KNOWN_YEARS
(2012, 2027)
"""

from __future__ import annotations

import csv
import functools
import logging
from datetime import date
from pathlib import Path

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

HOLIDAYS_FILE = Path(__file__).parent / "data" / "bank_holidays_england_wales.csv"
KNOWN_YEARS = (2012, 2027)  #: first and last year the shipped list covers


@functools.cache
def _table() -> tuple[tuple[date, str], ...]:
    with HOLIDAYS_FILE.open(newline="", encoding="utf-8") as fh:
        rows = [(date.fromisoformat(r["date"]), r["name"]) for r in csv.DictReader(fh)]
    return tuple(sorted(rows))


def bank_holidays(year: int | None = None) -> frozenset[date]:
    """England and Wales bank holidays (of one ``year``, or all years known)."""
    return frozenset(d for d, _ in _table() if year is None or d.year == year)


def bank_holiday_names() -> dict[date, str]:
    """Each known bank holiday with its name."""
    return dict(_table())


def as_day_numbers(days: frozenset[date] | set[date]) -> npt.NDArray[np.int64]:
    """Dates as sorted days since 1970-01-01 (what the vectorised day-type code compares)."""
    out = np.array(sorted(days), dtype="datetime64[D]").astype(np.int64)
    return out


@functools.cache
def warn_outside_known_years(first_year: int, last_year: int) -> None:
    """Log once that bank holidays are unknown for years outside :data:`KNOWN_YEARS`."""
    lo, hi = KNOWN_YEARS
    if first_year < lo or last_year > hi:
        log.warning("bank holidays are known for %d-%d only; days in %d-%d outside that range "
                    "are treated as ordinary weekdays or weekends (add them to the tariff's "
                    "bank_holidays list)", lo, hi, first_year, last_year)
