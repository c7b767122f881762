"""Backends behind three small interfaces: :class:`Bus`, :class:`HistoryStore`,
:class:`LiveStore`. ``open_*`` picks the implementation named in the settings."""

from __future__ import annotations

from smartmeter_lib.adapters.base import Bus, BusConsumer, HistoryStore, LiveStore, Message
from smartmeter_lib.config import Settings

__all__ = ["Bus", "BusConsumer", "HistoryStore", "LiveStore", "Message", "open_bus",
           "open_history", "open_live"]


def open_bus(settings: Settings) -> Bus:
    """The bus of the settings: the in-process memory bus, or Kafka."""
    if settings.bus == "kafka":
        from smartmeter_lib.adapters.kafka_bus import KafkaBus

        return KafkaBus(settings)
    from smartmeter_lib.adapters.memory_bus import MemoryBus

    return MemoryBus()


def open_history(settings: Settings) -> HistoryStore:
    """The history store of the settings: embedded files, or Cassandra."""
    if settings.history == "cassandra":
        from smartmeter_lib.adapters.cassandra_history import CassandraHistory

        return CassandraHistory(settings)
    from smartmeter_lib.adapters.embedded_history import EmbeddedHistory

    return EmbeddedHistory(settings.history_dir)


def open_live(settings: Settings) -> LiveStore:
    """The live store of the settings: the embedded SQLite file, or Redis."""
    if settings.live == "redis":
        from smartmeter_lib.adapters.redis_live import RedisLive

        return RedisLive(settings)
    from smartmeter_lib.adapters.embedded_live import EmbeddedLive

    return EmbeddedLive(settings.live_db_path)
