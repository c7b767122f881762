"""Half-hourly settlement periods: the grid every tariff calculation works on.

Readings (the frame of :func:`smartmeter_lib.replay.read_meter_file`: ``meter_id``, ``ts`` (UTC
interval start), ``kwh``, ``interval_s``) are summed into half-hours on a UTC grid. A reading
belongs to the half-hour that contains its start and must not cross into the next one. Each
cell also records its *coverage*: the share of the half-hour's 1,800 seconds that readings
cover, so that missing data stays visible and is never read as zero use. Without an explicit
period the grid spans the whole UTC days of the readings.

>>> import pandas as pd
>>> frame = pd.DataFrame({"meter_id": ["a", "a", "b"],
...     "ts": pd.to_datetime(["2025-01-01 00:00", "2025-01-01 00:30", "2025-01-01 00:00"],
...                          utc=True),
...     "kwh": [0.2, 0.3, 0.1], "interval_s": [1800, 1800, 900]})
>>> hh = half_hour_matrix(frame, "2025-01-01 00:00", "2025-01-01 01:00")
>>> list(hh.meters), hh.n_slots, hh.kwh.tolist(), hh.covered.tolist()
(['a', 'b'], 2, [[0.2, 0.3], [0.1, 0.0]], [[1.0, 1.0], [0.5, 0.0]])
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from smartmeter_lib.errors import DataError

log = logging.getLogger(__name__)

SLOT_S = 1800
SLOT_NS = SLOT_S * 1_000_000_000
DAY_NS = 86_400 * 1_000_000_000
SLOTS_PER_DAY = 48
REQUIRED_COLUMNS = ("meter_id", "ts", "kwh", "interval_s")


def to_utc(value: Any) -> pd.Timestamp:
    """A timestamp in UTC; naive values are read as UTC."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def ts_ns(values: Any) -> npt.NDArray[np.int64]:
    """UTC nanoseconds of a datetime column (naive values are read as UTC)."""
    idx = pd.DatetimeIndex(values)
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    return np.asarray(idx.as_unit("ns").asi8, dtype=np.int64)


def slot_floor_ns(ns: int) -> int:
    return ns - ns % SLOT_NS


def slot_ceil_ns(ns: int) -> int:
    return -((-ns) // SLOT_NS) * SLOT_NS


def slot_times(start_ns: int, n_slots: int) -> pd.DatetimeIndex:
    """The UTC starts of ``n_slots`` half-hours from ``start_ns``."""
    return pd.DatetimeIndex(
        (start_ns + np.arange(n_slots, dtype=np.int64) * SLOT_NS).view("datetime64[ns]")
    ).tz_localize("UTC")


def period_bounds(start: Any, end: Any) -> tuple[int, int]:
    """``[start, end)`` in UTC ns, widened to whole half-hours."""
    s = slot_floor_ns(int(to_utc(start).as_unit("ns").value))
    e = slot_ceil_ns(int(to_utc(end).as_unit("ns").value))
    if e <= s:
        raise DataError(f"empty period: {start} to {end}")
    return s, e


@dataclass(frozen=True)
class HalfHours:
    """Meters × half-hours: net import kWh and coverage (0..1) on a UTC grid ``[start, end)``."""

    meters: npt.NDArray[np.object_]
    start_ns: int
    kwh: npt.NDArray[np.float64]  #: (meters, slots); negative = net export
    covered: npt.NDArray[np.float32]  #: (meters, slots); share of the half-hour with readings

    @property
    def n_slots(self) -> int:
        return int(self.kwh.shape[1])

    @property
    def end_ns(self) -> int:
        return self.start_ns + self.n_slots * SLOT_NS

    @property
    def times(self) -> pd.DatetimeIndex:
        return slot_times(self.start_ns, self.n_slots)

    def take_meters(self, rows: slice | npt.NDArray[Any]) -> HalfHours:
        return HalfHours(self.meters[rows], self.start_ns, self.kwh[rows], self.covered[rows])


def _check_frame(frame: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"readings frame lacks columns {missing}; it needs "
                        f"{list(REQUIRED_COLUMNS)} (as read_meter_file(...).frame has)")


ROW_CHUNK = 1 << 20  #: readings per step: temporaries stay small (no page-fault storms)


def _kwh_array(frame: pd.DataFrame) -> npt.NDArray[np.float64]:
    col = frame["kwh"]
    if col.dtype == np.float64:
        return np.asarray(col.to_numpy(), dtype=np.float64)
    return np.asarray(col.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def _slots(t: npt.NDArray[np.int64], iv: npt.NDArray[Any], meter_of: Any
           ) -> npt.NDArray[np.int64]:
    """Absolute half-hour numbers of readings, after checking they fit in one half-hour."""
    slot = t // SLOT_NS  # (integer modulo is slow in numpy; floor division is not)
    if not len(t):
        return slot
    lo, hi = int(iv.min()), int(iv.max())

    def fail(mask: npt.NDArray[np.bool_], what: str) -> DataError:
        i = int(np.argmax(mask))
        return DataError(f"meter {meter_of(i)}: reading at {pd.Timestamp(int(t[i]), tz='UTC')} "
                         f"of {iv[i]} s {what}")

    if lo <= 0 or hi > SLOT_S:
        raise fail((iv <= 0) | (iv > SLOT_S), "; tariffs need readings of 1-1800 s")
    offset = t - slot * SLOT_NS
    if lo == hi == SLOT_S:
        if offset.any():
            raise fail(offset != 0, "crosses a half-hour boundary")
    else:
        offset += iv.astype(np.int64) * 1_000_000_000
        if offset.max() > SLOT_NS:
            raise fail(offset > SLOT_NS, "crosses a half-hour boundary")
    return slot


def _meter_codes(ids: pd.Series) -> tuple[npt.NDArray[Any], npt.NDArray[np.object_]]:
    """Codes 0..n-1 of the meter ids, and the sorted ids (categoricals need no hashing)."""
    if isinstance(ids.dtype, pd.CategoricalDtype):
        codes = ids.cat.codes.to_numpy()
        cats = np.asarray(ids.cat.categories, dtype=object)
        used = np.bincount(codes[codes >= 0], minlength=len(cats)) > 0
        keep = np.flatnonzero(used)
        order = keep[np.argsort(cats[keep], kind="stable")]
        if len(order) != len(cats) or (order != np.arange(len(cats))).any():
            remap = np.full(len(cats) + 1, -1, dtype=np.int64)
            remap[order] = np.arange(len(order))
            codes = remap[codes]  # -1 (missing id) maps to the extra last slot: -1
        meters = cats[order]
    else:
        codes, uniques = pd.factorize(ids, sort=True)
        meters = np.asarray(uniques, dtype=object)
    if len(codes) and codes.min() < 0:
        raise DataError("readings without a meter_id")
    return codes, meters


def _default_period(t: npt.NDArray[np.int64], start: Any, end: Any) -> tuple[int, int]:
    if start is not None and end is not None:
        return period_bounds(start, end)
    if len(t) == 0:
        raise DataError("no readings: give --from and --to or some data")
    lo = int(t.min()) // DAY_NS * DAY_NS
    hi = int(t.max()) // DAY_NS * DAY_NS + DAY_NS
    return period_bounds(start if start is not None else pd.Timestamp(lo, tz="UTC"),
                         end if end is not None else pd.Timestamp(hi, tz="UTC"))


def half_hour_matrix(frame: pd.DataFrame, start: Any = None, end: Any = None) -> HalfHours:
    """Sum readings into meters × half-hours over ``[start, end)`` (default: the data's span).

    Readings outside the period are left out; readings without a value count as missing.
    Exact duplicates (same meter and start) count once (the last wins); other overlaps raise
    :class:`DataError`. Works through the rows in steps of :data:`ROW_CHUNK`.
    """
    _check_frame(frame)
    kwh, t_all = _kwh_array(frame), ts_ns(frame["ts"])
    iv_all = frame["interval_s"].to_numpy()
    codes, meters = _meter_codes(frame["meter_id"])
    s, e = _default_period(t_all, start, end)
    n_slots = (e - s) // SLOT_NS
    size = len(meters) * n_slots
    energy = np.zeros(size)
    cover = np.zeros(size, dtype=np.float32)  # coverage needs no more precision
    whole = bool(len(iv_all)) and int(iv_all.min()) == int(iv_all.max()) == SLOT_S
    dropped = 0
    for i in range(0, len(kwh), ROW_CHUNK):
        k, t = kwh[i:i + ROW_CHUNK], t_all[i:i + ROW_CHUNK]
        iv, c = iv_all[i:i + ROW_CHUNK], codes[i:i + ROW_CHUNK]
        ok = np.isfinite(k)
        dropped += len(k) - int(ok.sum())
        ok &= (t >= s) & (t < e)
        if not ok.all():
            k, t, iv, c = k[ok], t[ok], iv[ok], c[ok]
        if not len(k):
            continue
        flat = c.astype(np.int64) * n_slots
        flat += _slots(t, iv, lambda j, c=c: meters[c[j]])
        flat -= s // SLOT_NS
        w = None if whole else iv / SLOT_S
        lo, hi = int(flat.min()), int(flat.max())
        if hi - lo <= 4 * len(flat) + 65536:  # rows sorted by meter: a compact range
            flat -= lo
            energy[lo:hi + 1] += np.bincount(flat, weights=k, minlength=hi - lo + 1)
            part = cover[lo:hi + 1]
            np.add(part, np.bincount(flat, weights=w, minlength=hi - lo + 1), out=part,
                   casting="unsafe")
        else:
            np.add.at(energy, flat, k)
            np.add.at(cover, flat, np.float32(1.0) if w is None else w.astype(np.float32))
    if dropped:
        log.info("%d readings without a value are ignored (they count as missing, not zero)",
                 dropped)
    if size and cover.max() > 1.0 + 1e-5:
        return _deduplicated(frame, start, end, meters, s, n_slots, cover)
    return HalfHours(meters, s, energy.reshape(len(meters), n_slots),
                     np.minimum(cover, 1.0, out=cover).reshape(len(meters), n_slots))


def _deduplicated(frame: pd.DataFrame, start: Any, end: Any, meters: npt.NDArray[np.object_],
                  s: int, n_slots: int, cover: npt.NDArray[np.float32]) -> HalfHours:
    """Drop exact duplicates (same meter, same start; the last wins), or name the overlap."""
    dup = frame.duplicated(["meter_id", "ts"], keep="last").to_numpy()
    if dup.any():
        log.warning("%d duplicated readings (same meter and start) counted once", dup.sum())
        return half_hour_matrix(frame[~dup], start, end)
    cell = int(np.argmax(cover))
    when = pd.Timestamp(s + (cell % n_slots) * SLOT_NS, tz="UTC")
    raise DataError(f"meter {meters[cell // n_slots]}: overlapping readings in the half-hour "
                    f"at {when}")


def half_hourly_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Readings summed per meter and half-hour, long: ``meter_id, ts, kwh, covered``.

    Only half-hours with readings appear (a sparse alternative to :func:`half_hour_matrix`).
    """
    _check_frame(frame)
    kwh, t, iv = _kwh_array(frame), ts_ns(frame["ts"]), frame["interval_s"].to_numpy()
    ids = frame["meter_id"].to_numpy()
    ok = np.isfinite(kwh)
    if not ok.all():
        kwh, t, iv, ids = kwh[ok], t[ok], iv[ok], ids[ok]
    slot = _slots(t, iv, lambda j: ids[j])
    out = pd.DataFrame({"meter_id": np.asarray(ids, dtype=object), "slot": slot * SLOT_NS,
                        "kwh": kwh, "covered": iv / SLOT_S})
    out = out.groupby(["meter_id", "slot"], sort=True, as_index=False).sum()
    if len(out) and out["covered"].max() > 1.0 + 1e-9:
        dup = frame.duplicated(["meter_id", "ts"], keep="last").to_numpy()
        if dup.any():
            log.warning("%d duplicated readings (same meter and start) counted once", dup.sum())
            return half_hourly_frame(frame[~dup])
        worst = out["meter_id"].to_numpy()[int(np.argmax(out["covered"].to_numpy()))]
        raise DataError(f"meter {worst}: overlapping readings in a half-hour")
    out["ts"] = pd.DatetimeIndex(out.pop("slot").to_numpy().view("datetime64[ns]")).tz_localize(
        "UTC")
    return out[["meter_id", "ts", "kwh", "covered"]]


def local_days(times: pd.DatetimeIndex, tz: str) -> tuple[npt.NDArray[np.int64],
                                                          npt.NDArray[np.int64]]:
    """Local date (days since 1970-01-01) and minute of the day of each UTC time in ``tz``."""
    wall = np.asarray(times.tz_convert(tz).tz_localize(None).as_unit("ns").asi8, np.int64)
    day = wall // DAY_NS
    minute = (wall - day * DAY_NS) // 60_000_000_000
    return day, minute


def day_types(day: npt.NDArray[np.int64], holidays: npt.NDArray[np.int64]) -> npt.NDArray[np.int8]:
    """0 weekday, 1 weekend (Sat/Sun), 2 bank holiday, for days since 1970-01-01."""
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    out = np.where(weekday >= 5, 1, 0).astype(np.int8)
    out[np.isin(day, holidays)] = 2
    return out
