"""The domain model: readings as columnar batches, meter events, alerts and area stats.

The hot path never builds a Python object per reading. A :class:`ReadingBatch` holds one numpy
array per field; everything downstream (windows, detectors, sinks) works on whole arrays.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd


class Kind(enum.IntEnum):
    """What a message on the readings topic is."""

    READING = 0  #: energy used in an interval
    LAST_GASP = 1  #: the meter lost voltage (sent on its capacitor before it dies)
    POWER_RESTORE = 2  #: voltage came back


@dataclass(frozen=True)
class ReadingBatch:
    """A columnar batch of meter messages.

    ``ts_ms`` is the start of the interval in UTC milliseconds (event time), ``interval_s`` its
    length, ``kwh`` the energy imported in it (negative when a home exports, e.g. rooftop PV).
    """

    meter_id: npt.NDArray[np.object_]
    ts_ms: npt.NDArray[np.int64]
    kwh: npt.NDArray[np.float64]
    interval_s: npt.NDArray[np.uint16]
    kind: npt.NDArray[np.uint8]

    def __post_init__(self) -> None:
        n = len(self.meter_id)
        for name in ("ts_ms", "kwh", "interval_s", "kind"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"ReadingBatch column {name} has {len(getattr(self, name))} "
                                 f"rows, meter_id has {n}")

    def __len__(self) -> int:
        return len(self.meter_id)

    @classmethod
    def empty(cls) -> ReadingBatch:
        return cls(
            np.empty(0, dtype=object), np.empty(0, np.int64), np.empty(0, np.float64),
            np.empty(0, np.uint16), np.empty(0, np.uint8),
        )

    @classmethod
    def readings(
        cls, meter_id: Any, ts_ms: Any, kwh: Any, interval_s: int | Any = 1
    ) -> ReadingBatch:
        """A batch of plain readings; ``interval_s`` may be a scalar."""
        mid = np.asarray(meter_id, dtype=object)
        n = len(mid)
        ts = np.broadcast_to(np.asarray(ts_ms, dtype=np.int64), (n,)).copy()
        iv = np.broadcast_to(np.asarray(interval_s, dtype=np.uint16), (n,)).copy()
        return cls(mid, ts, np.asarray(kwh, dtype=np.float64), iv, np.zeros(n, np.uint8))

    def take(self, idx: npt.NDArray[Any]) -> ReadingBatch:
        """Rows selected by an index or boolean mask."""
        return ReadingBatch(self.meter_id[idx], self.ts_ms[idx], self.kwh[idx],
                            self.interval_s[idx], self.kind[idx])

    @staticmethod
    def concat(batches: list[ReadingBatch]) -> ReadingBatch:
        if not batches:
            return ReadingBatch.empty()
        if len(batches) == 1:
            return batches[0]
        return ReadingBatch(
            np.concatenate([b.meter_id for b in batches]),
            np.concatenate([b.ts_ms for b in batches]),
            np.concatenate([b.kwh for b in batches]),
            np.concatenate([b.interval_s for b in batches]),
            np.concatenate([b.kind for b in batches]),
        )

    def power_kw(self) -> npt.NDArray[np.float64]:
        """Average power over each interval in kW."""
        return self.kwh * 3600.0 / np.maximum(self.interval_s, 1)

    def to_pandas(self) -> pd.DataFrame:
        return pd.DataFrame({
            "meter_id": self.meter_id,
            "ts": pd.to_datetime(self.ts_ms, unit="ms", utc=True),
            "kwh": self.kwh,
            "interval_s": self.interval_s,
            "kind": self.kind,
        })


@dataclass(frozen=True)
class MeterInfo:
    """Static facts about the meters in a fleet (columnar)."""

    meter_id: npt.NDArray[np.object_]
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    geohash: npt.NDArray[np.object_]  #: precision 7

    def __len__(self) -> int:
        return len(self.meter_id)

    def to_pandas(self) -> pd.DataFrame:
        return pd.DataFrame({"meter_id": self.meter_id, "lat": self.lat, "lon": self.lon,
                             "geohash": self.geohash})

    @classmethod
    def from_pandas(cls, df: pd.DataFrame) -> MeterInfo:
        return cls(df["meter_id"].to_numpy(object), df["lat"].to_numpy(np.float64),
                   df["lon"].to_numpy(np.float64), df["geohash"].to_numpy(object))


@dataclass(frozen=True)
class Rollup:
    """Per-meter energy in tumbling windows of ``resolution_s`` (columnar)."""

    resolution_s: int
    meter_id: npt.NDArray[np.object_]
    window_start_ms: npt.NDArray[np.int64]
    kwh: npt.NDArray[np.float64]
    readings: npt.NDArray[np.int32]

    def __len__(self) -> int:
        return len(self.meter_id)

    def to_pandas(self) -> pd.DataFrame:
        return pd.DataFrame({
            "meter_id": self.meter_id,
            "window_start": pd.to_datetime(self.window_start_ms, unit="ms", utc=True),
            "kwh": self.kwh,
            "readings": self.readings,
        })


@dataclass(frozen=True)
class AreaRollup:
    """Energy per geohash cell in tumbling windows of ``resolution_s`` (columnar).

    ``homes`` is the number of meters that reported in the window. ``shard`` (written rows
    only) is the readings-topic partition whose meters a row sums: each partition has one
    owner at a time, and its state moves with it, so rows per partition are exact with any
    number of processors; a store keeps one row per (cell, window, shard) and reads return
    their sums (``shard`` None). None when writing means shard 0 (a single writer).
    """

    resolution_s: int
    precision: int
    cell: npt.NDArray[np.object_]
    window_start_ms: npt.NDArray[np.int64]
    kwh: npt.NDArray[np.float64]
    homes: npt.NDArray[np.int32]
    shard: npt.NDArray[np.int32] | None = None

    def shards(self) -> npt.NDArray[np.int32]:
        """``shard``, or zeros when not set."""
        return self.shard if self.shard is not None else np.zeros(len(self.cell), np.int32)

    def __len__(self) -> int:
        return len(self.cell)


@dataclass(frozen=True)
class AreaStats:
    """Live load per geohash cell for one second of event time."""

    ts_ms: int
    precision: int
    cell: npt.NDArray[np.object_]
    kw: npt.NDArray[np.float64]
    homes: npt.NDArray[np.int32]

    def to_pandas(self) -> pd.DataFrame:
        return pd.DataFrame({"cell": self.cell, "kw": self.kw, "homes": self.homes})


class AlertKind(enum.StrEnum):
    AREA_OUTAGE = "AREA_OUTAGE"  #: many meters of one geohash-6 cell lost power together
    COMMS_LOSS = "COMMS_LOSS"  #: one meter went silent, its area has power
    SUSPECTED_THEFT = "SUSPECTED_THEFT"  #: a bypass (sustained drop) or a reversed meter
    METER_FAULT = "METER_FAULT"  #: a stuck register (the same reading again and again)


@dataclass(frozen=True)
class Alert:
    """An outage, comms-loss, suspected-theft or meter-fault alert.

    ``start_ms`` is when the condition began (event time), ``end_ms`` when it ended (None while
    the alert is open), ``detected_ms`` the event-clock time the detector raised it.
    """

    alert_id: str
    kind: AlertKind
    area: str
    meters: tuple[str, ...]
    start_ms: int
    end_ms: int | None = None
    score: float = 1.0
    evidence: dict[str, Any] = field(default_factory=dict)
    detected_ms: int | None = None

    @property
    def active(self) -> bool:
        return self.end_ms is None

    def to_dict(self) -> dict[str, Any]:
        return {"alert_id": self.alert_id, "kind": self.kind.value, "area": self.area,
                "meters": list(self.meters), "start_ms": self.start_ms, "end_ms": self.end_ms,
                "score": self.score, "evidence": self.evidence,
                "detected_ms": self.detected_ms}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Alert:
        return cls(str(d["alert_id"]), AlertKind(d["kind"]), str(d["area"]),
                   tuple(d["meters"]), int(d["start_ms"]),
                   None if d.get("end_ms") is None else int(d["end_ms"]),
                   float(d.get("score", 1.0)), dict(d.get("evidence") or {}),
                   None if d.get("detected_ms") is None else int(d["detected_ms"]))
