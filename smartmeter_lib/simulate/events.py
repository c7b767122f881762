"""Grid events with ground truth, applied to a fleet's readings second by second.

Kinds (the ``kind`` of a label row, and what the meters do):

=============== ===========================================================================
area_outage     every home of one or several geohash-6 cells loses power: no readings
                from start to end. Meters able to (``last_gasp`` share) send LAST_GASP 30-45 s
                after the start and POWER_RESTORE 0-30 s after the end; a share of those
                messages (``lost``) never arrives. On return all fridge compressors start at once.
comms_loss      one meter goes silent but the home stays powered (true use continues)
stuck           the meter repeats the reading of the second the fault began
spike           now and then (``probability`` per second) a reading jumps to 15-80 kW
bypass          theft: the meter records ``factor`` (10-50%) of true use
reversed        tampering: the meter records minus the true use (negative readings)
=============== ===========================================================================

Label rows (one per meter and event) carry the expected alert: AREA_OUTAGE, COMMS_LOSS or
SUSPECTED_THEFT (bypass, reversed); meter faults (stuck, spike) carry none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from smartmeter_lib.model import Kind, MeterInfo
from smartmeter_lib.simulate.weather import hash_uniform

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
KINDS = ("area_outage", "comms_loss", "stuck", "spike", "bypass", "reversed")
EXPECTED_ALERT = {"area_outage": "AREA_OUTAGE", "comms_loss": "COMMS_LOSS",
                  "bypass": "SUSPECTED_THEFT", "reversed": "SUSPECTED_THEFT",
                  "stuck": "", "spike": ""}
#: a last gasp or a restore message: not capable, sent, or sent and lost
NONE, SENT, LOST = 0, 1, 2
_STATUS = np.array(["none", "sent", "lost"], dtype=object)


@dataclass(frozen=True)
class GridEvent:
    """One scheduled event over some homes (arrays are per affected home)."""

    event_id: str
    kind: str
    homes: IntArray
    start_s: IntArray
    end_s: IntArray
    cells: tuple[str, ...] = ()
    factor: FloatArray | None = None  #: bypass: share of true use that is recorded
    gasp: npt.NDArray[np.int8] | None = None  #: area_outage: NONE, SENT or LOST
    gasp_s: IntArray | None = None
    restore: npt.NDArray[np.int8] | None = None
    restore_s: IntArray | None = None
    probability: float = 0.0  #: spike: chance per second
    spike_kw: tuple[float, float] = (15.0, 80.0)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown event kind {self.kind!r}; known: {', '.join(KINDS)}")
        if not (len(self.homes) == len(self.start_s) == len(self.end_s)):
            raise ValueError(f"event {self.event_id}: homes, start_s and end_s differ in length")

    @property
    def first_s(self) -> int:
        return int(self.start_s.min()) if len(self.homes) else 0

    @property
    def last_s(self) -> int:
        return int(self.end_s.max()) if len(self.homes) else 0

    def active(self, t: int) -> npt.NDArray[np.bool_] | None:
        """Which of this event's homes are affected at second ``t`` (None if none)."""
        if not len(self.homes) or t < self.first_s or t >= self.last_s:
            return None
        on = (self.start_s <= t) & (self.end_s > t)
        return on if on.any() else None


@dataclass
class GridEventSet:
    """The events of a fleet, compiled for fast per-second application."""

    n: int
    seed: int
    events: list[GridEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        homes, ts, kinds = [], [], []
        for e in self.events:
            if e.kind != "area_outage" or e.gasp is None or e.restore is None:
                continue
            assert e.gasp_s is not None and e.restore_s is not None
            g = e.gasp == SENT
            r = e.restore == SENT
            homes += [e.homes[g], e.homes[r]]
            ts += [e.gasp_s[g], e.restore_s[r]]
            kinds += [np.full(int(g.sum()), int(Kind.LAST_GASP), np.uint8),
                      np.full(int(r.sum()), int(Kind.POWER_RESTORE), np.uint8)]
        def cat(xs: list[npt.NDArray[Any]], dt: type) -> npt.NDArray[Any]:
            return np.concatenate(xs).astype(dt) if xs else np.empty(0, dt)

        t = cat(ts, np.int64)
        order = np.argsort(t, kind="stable")
        self._msg_ts = t[order]
        self._msg_home = cat(homes, np.int64)[order]
        self._msg_kind = cat(kinds, np.uint8)[order]
        self._stuck: dict[str, FloatArray] = {}
        self._outages = sorted((e for e in self.events if e.kind == "area_outage"),
                               key=lambda e: e.last_s)

    def _mask(self, t: int, kinds: tuple[str, ...]) -> npt.NDArray[np.bool_] | None:
        mask = None
        for e in self.events:
            if e.kind in kinds:
                on = e.active(t)
                if on is not None:
                    mask = np.zeros(self.n, bool) if mask is None else mask
                    mask[e.homes[on]] = True
        return mask

    def powered_off(self, t: int) -> npt.NDArray[np.bool_] | None:
        """Homes without power at ``t`` (None when every home has power)."""
        return self._mask(t, ("area_outage",))

    def silent(self, t: int) -> npt.NDArray[np.bool_] | None:
        """Meters that send no reading at ``t``: no power, or no communications."""
        return self._mask(t, ("area_outage", "comms_loss"))

    def messages(self, t: int) -> tuple[IntArray, npt.NDArray[np.uint8]]:
        """Homes and kinds of the LAST_GASP / POWER_RESTORE messages sent at ``t``."""
        i0, i1 = np.searchsorted(self._msg_ts, [t, t + 1])
        return self._msg_home[i0:i1], self._msg_kind[i0:i1]

    def fridge_phase(self, t: int, phase: IntArray, period: IntArray) -> IntArray:
        """Compressor phases at ``t``: after an outage every fridge in it starts afresh."""
        out = phase
        for e in self._outages:
            if e.last_s > t:
                break
            if out is phase:
                out = phase.copy()
            h = e.homes
            out[h] = (-e.end_s) % period[h]
        return out

    def metered(self, t: int, true_kwh: FloatArray) -> FloatArray:
        """What the meters record at ``t`` given the true energy of every home."""
        kwh = true_kwh
        for e in self.events:
            if e.kind in ("area_outage", "comms_loss"):
                continue
            on = e.active(t)
            if on is None:
                continue
            if kwh is true_kwh:
                kwh = true_kwh.copy()
            h = e.homes[on]
            if e.kind == "bypass":
                assert e.factor is not None
                kwh[h] = true_kwh[h] * e.factor[on]
            elif e.kind == "reversed":
                kwh[h] = -true_kwh[h]
            elif e.kind == "stuck":
                frozen = self._stuck.setdefault(e.event_id, np.full(len(e.homes), np.nan))
                fresh = on & np.isnan(frozen)
                frozen[fresh] = true_kwh[e.homes[fresh]]
                kwh[h] = frozen[on]
            elif e.kind == "spike":
                u = hash_uniform(self.seed ^ 0x5B1C, h, t)
                hit = u < e.probability
                if hit.any():
                    lo, hi = e.spike_kw
                    size = lo + (hi - lo) * hash_uniform(self.seed ^ 0x5B1D, h[hit], t)
                    kwh[h[hit]] = size / 3600.0
        return kwh

    def labels(self, meters: MeterInfo, area_precision: int = 6) -> pd.DataFrame:
        """Ground truth: one row per (event, meter)."""
        rows = [label_frame(e, meters, area_precision) for e in self.events]
        if not rows:
            return label_frame(None, meters, area_precision)
        return pd.concat(rows, ignore_index=True)


LABEL_COLUMNS = ("event_id", "kind", "meter_id", "area", "start", "end", "start_ms", "end_ms",
                 "factor", "last_gasp", "power_restore", "expected_alert")


def _iso(ts_s: IntArray) -> npt.NDArray[np.object_]:
    return np.asarray(pd.to_datetime(ts_s, unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%SZ")
                      .to_numpy(object))


def label_frame(e: GridEvent | None, meters: MeterInfo, area_precision: int) -> pd.DataFrame:
    """The label rows of one event (an empty, typed frame for None)."""
    if e is None:
        return pd.DataFrame({c: pd.Series(dtype=object if c not in (
            "start_ms", "end_ms", "factor") else (np.float64 if c == "factor" else np.int64))
            for c in LABEL_COLUMNS})
    k = len(e.homes)
    gh = meters.geohash[e.homes]

    def status(a: npt.NDArray[np.int8] | None) -> npt.NDArray[np.object_]:
        return np.full(k, "", object) if a is None else np.asarray(_STATUS[a])

    return pd.DataFrame({
        "event_id": np.full(k, e.event_id, object), "kind": np.full(k, e.kind, object),
        "meter_id": meters.meter_id[e.homes],
        "area": np.array([g[:area_precision] for g in gh], dtype=object),
        "start": _iso(e.start_s), "end": _iso(e.end_s),
        "start_ms": e.start_s * 1000, "end_ms": e.end_s * 1000,
        "factor": np.full(k, np.nan) if e.factor is None else e.factor,
        "last_gasp": status(e.gasp), "power_restore": status(e.restore),
        "expected_alert": np.full(k, EXPECTED_ALERT[e.kind], object),
    })
