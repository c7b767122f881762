"""The three adapter interfaces: message bus, history store and live store.

Each has an embedded implementation (the laptop default) and a real one (Kafka, Cassandra,
Redis). One contract test suite per interface runs against every implementation, so they
behave the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from smartmeter_lib.model import Alert, AreaRollup, AreaStats, MeterInfo, ReadingBatch, Rollup

#: columns of an events frame (meter events such as last gasps, and alerts)
EVENT_COLUMNS = ["ts_ms", "meter_id", "kind", "detail"]


@dataclass(frozen=True)
class Message:
    """One message read from the bus."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@runtime_checkable
class BusConsumer(Protocol):
    """A member of a consumer group. Offsets move only when :meth:`commit` is called."""

    def poll_batch(self, max_messages: int, timeout_s: float) -> list[Message]:
        """Up to ``max_messages`` messages; waits at most ``timeout_s`` for the first one."""
        ...

    def commit(self, offsets: dict[tuple[str, int], int] | None = None) -> None:
        """Commit (synchronously) everything returned by poll_batch so far, or, with
        ``offsets``, the next offset to read of each (topic, partition) given (assigned
        partitions only)."""
        ...

    def assignment(self) -> list[tuple[str, int]]:
        """The (topic, partition) pairs this member holds now."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Bus(Protocol):
    """A partitioned, keyed message log (Kafka, or the in-process memory bus)."""

    def create_topic(self, name: str, partitions: int = 6, replication: int = 1,
                     config: dict[str, str] | None = None) -> None:
        """Create a topic; a no-op when it exists already."""
        ...

    def produce(self, topic: str, key: bytes | None, value: bytes) -> None: ...

    def produce_batch(self, topic: str, keys: Sequence[bytes | None],
                      values: Sequence[bytes]) -> None: ...

    def flush(self, timeout_s: float = 30.0) -> int:
        """Wait until produced messages are acknowledged; returns how many are still pending."""
        ...

    def consumer(self, topics: Sequence[str], group_id: str,
                 from_beginning: bool = True) -> BusConsumer: ...

    def close(self) -> None: ...


@runtime_checkable
class HistoryStore(Protocol):
    """Long-term storage: the meter registry, readings, rollups and alerts.

    Every write is idempotent: writing the same reading or window twice stores it once.
    """

    def init_schema(self) -> None: ...

    def register_meters(self, meters: MeterInfo) -> None: ...

    def meters(self) -> MeterInfo: ...

    def write_readings(self, batch: ReadingBatch) -> None: ...

    def release_meters(self, meter_ids: Sequence[str]) -> None:
        """Forget anything this client holds to merge later writes of these meters' readings:
        another writer owns them now (their bus partition moved in a rebalance), so the next
        write merges with what is stored."""
        ...

    def read_readings(self, meter_id: str, start_ms: int, end_ms: int) -> ReadingBatch:
        """Readings of one meter with ``start_ms <= ts < end_ms``, in time order."""
        ...

    def write_rollups(self, rollup: Rollup) -> None: ...

    def read_rollups(self, resolution_s: int, meter_ids: Sequence[str] | None,
                     start_ms: int, end_ms: int) -> Rollup:
        """Windows starting in ``[start_ms, end_ms)``, ordered by meter then time."""
        ...

    def write_area_rollups(self, rollup: AreaRollup) -> None: ...

    def read_area_rollups(self, resolution_s: int, precision: int, cells: Sequence[str] | None,
                          start_ms: int, end_ms: int) -> AreaRollup:
        """Area windows starting in ``[start_ms, end_ms)``, ordered by cell then time."""
        ...

    def write_events(self, events: pd.DataFrame) -> None:
        """Rows of :data:`EVENT_COLUMNS`; keyed by (ts_ms, meter_id, kind)."""
        ...

    def read_events(self, start_ms: int, end_ms: int) -> pd.DataFrame:
        """Events with ``start_ms <= ts_ms < end_ms``, ordered by time then meter."""
        ...

    def write_checkpoints(self, group_id: str, topic: str, states: dict[int, bytes]) -> None:
        """Store the processor state of each partition (replacing the previous one)."""
        ...

    def read_checkpoint(self, group_id: str, topic: str, partition: int) -> bytes | None:
        """The state stored for a partition, or None."""
        ...

    def write_insights(self, ts_ms: int, insights: pd.DataFrame) -> None:
        """Per-meter insights (``stream.profiles.INSIGHT_COLUMNS``) as of ``ts_ms``."""
        ...

    def read_insights(self, meter_id: str, start_ms: int, end_ms: int) -> pd.DataFrame:
        """The meter's insights rows (with ``ts_ms``) in ``[start_ms, end_ms)``, in time order."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class LiveStore(Protocol):
    """The latest state, for dashboards: area loads, London's total, each meter, KPIs."""

    def put_area_stats(self, stats: AreaStats) -> None:
        """Replace the snapshot for ``stats.precision``."""
        ...

    def get_area_stats(self, precision: int) -> AreaStats | None:
        """The latest snapshot, cells in sorted order."""
        ...

    def put_total(self, ts_ms: int, kw: float, homes: int) -> None:
        """Append one point of London's total load (kept for at least an hour)."""
        ...

    def get_totals(self, since_ms: int) -> pd.DataFrame:
        """Columns ts_ms, kw, homes; ``ts_ms >= since_ms``; ascending."""
        ...

    def put_meters(self, ts_ms: int, meter_id: Sequence[str] | Any, last_ts_ms: Any,
                   kw: Any, kwh_total: Any) -> None:
        """Replace this client's per-meter snapshot (the meters its processor holds): last
        reading time, live kW and running kWh. Other clients' snapshots stay: several
        processors each write their own, and readers see them all."""
        ...

    def get_meter(self, meter_id: str) -> dict[str, Any] | None:
        """The meter's ``last_ts_ms``, ``kw``, ``kwh_total`` and ``snapshot_ts_ms`` from the
        snapshot with its newest reading (two hold it while a partition changes hands)."""
        ...

    def put_meter_power(self, ts_ms: int, kw: Any) -> None:
        """One second of power of this client's meters, in the order of its last
        :meth:`put_meters` (kept for ``series_keep_s``), for :meth:`get_meter_series`."""
        ...

    def get_meter_series(self, meter_id: str, since_ms: int) -> pd.DataFrame:
        """Columns ts_ms, kw: the meter's recent power, second by second, ascending."""
        ...

    def put_top_consumers(self, ts_ms: int, meter_id: Sequence[str], kw: Any) -> None:
        """Replace this client's top consumers; readers merge every client's."""
        ...

    def get_top_consumers(self) -> pd.DataFrame:
        """Columns meter_id, kw, largest first."""
        ...

    def put_alerts(self, alerts: Sequence[Alert]) -> None:
        """Replace the alert board: the open alerts and the recently closed ones."""
        ...

    def get_active_alerts(self) -> list[Alert]:
        """The open alerts (``end_ms`` is None), oldest first."""
        ...

    def get_alerts(self) -> list[Alert]:
        """The whole board, open and recently closed, oldest first."""
        ...

    def put_insights(self, ts_ms: int, insights: pd.DataFrame) -> None:
        """Replace the per-meter insights (``stream.profiles.INSIGHT_COLUMNS``)."""
        ...

    def get_insights(self, meter_id: str) -> dict[str, Any] | None: ...

    def put_kpis(self, kpis: dict[str, float | int | str]) -> None: ...

    def get_kpis(self) -> dict[str, Any]: ...

    def clear(self) -> None:
        """Remove everything this store holds (under its prefix)."""
        ...

    def close(self) -> None: ...
