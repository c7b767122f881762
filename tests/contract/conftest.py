"""Fixtures for the contract suites: one parameter per implementation of each interface.

Embedded implementations are marked ``unit``; real servers are added under ``integration``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from smartmeter_lib.adapters.base import Bus, HistoryStore, LiveStore
from smartmeter_lib.config import Settings, build_settings
from smartmeter_lib.services import ServicesConfig
from tests.integration.conftest import services  # noqa: F401  (the session fixture)

BUSES = [pytest.param("memory", marks=pytest.mark.unit),
         pytest.param("kafka", marks=pytest.mark.integration)]
HISTORIES = [pytest.param("embedded", marks=pytest.mark.unit),
             pytest.param("cassandra", marks=pytest.mark.integration)]
LIVES = [pytest.param("embedded", marks=pytest.mark.unit),
         pytest.param("redis", marks=pytest.mark.integration)]


def real_settings(cfg: ServicesConfig, **overrides: object) -> Settings:
    """Settings that reach the services the integration fixture started."""
    return build_settings(
        kafka_bootstrap=cfg.kafka_bootstrap, cassandra_port=cfg.cassandra_port,
        redis_url=f"redis://{cfg.host}:{cfg.redis_port}/0",
        redis_password=cfg.redis_password.get_secret_value() if cfg.redis_password else None,
        **overrides)


@pytest.fixture
def unique() -> str:
    """A prefix unique to the test (topics, keyspaces, keys)."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def bus(request: pytest.FixtureRequest) -> Iterator[Bus]:
    if request.param == "memory":
        from smartmeter_lib.adapters.memory_bus import MemoryBus

        b: Bus = MemoryBus()
    else:
        from smartmeter_lib.adapters.kafka_bus import KafkaBus

        b = KafkaBus(real_settings(request.getfixturevalue("services")))
    yield b
    b.close()


@pytest.fixture
def history_factory(request: pytest.FixtureRequest, tmp_path: Path,
                    unique: str) -> Iterator[object]:
    """A callable returning a new client of the same history store (a keyspace per test)."""
    opened: list[HistoryStore] = []
    cfg = request.getfixturevalue("services") if request.param == "cassandra" else None

    def make() -> HistoryStore:
        if request.param == "embedded":
            from smartmeter_lib.adapters.embedded_history import EmbeddedHistory

            h: HistoryStore = EmbeddedHistory(tmp_path / "history")
        else:
            from smartmeter_lib.adapters.cassandra_history import CassandraHistory

            h = CassandraHistory(real_settings(cfg, cassandra_keyspace=unique))
        opened.append(h)
        return h

    yield make
    if opened and request.param == "cassandra":
        opened[0].drop_keyspace()  # type: ignore[attr-defined]
    for h in opened:
        h.close()


@pytest.fixture
def live_factory(request: pytest.FixtureRequest, tmp_path: Path,
                 unique: str) -> Iterator[object]:
    """A callable returning a new client of the same live store (a key prefix per test)."""
    opened: list[LiveStore] = []
    cfg = request.getfixturevalue("services") if request.param == "redis" else None

    def make() -> LiveStore:
        if request.param == "embedded":
            from smartmeter_lib.adapters.embedded_live import EmbeddedLive

            s: LiveStore = EmbeddedLive(tmp_path / "live.sqlite")
        else:
            from smartmeter_lib.adapters.redis_live import RedisLive

            s = RedisLive(real_settings(cfg), prefix=f"{unique}:")
        opened.append(s)
        return s

    yield make
    if opened:
        opened[0].clear()
    for s in opened:
        s.close()
