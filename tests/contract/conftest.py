"""Fixtures for the contract suites: one parameter per implementation of each interface.

Embedded implementations are marked ``unit``; real servers are added under ``integration``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from smartmeter_lib.adapters.base import Bus, HistoryStore, LiveStore

BUSES = [pytest.param("memory", marks=pytest.mark.unit)]
HISTORIES = [pytest.param("embedded", marks=pytest.mark.unit)]
LIVES = [pytest.param("embedded", marks=pytest.mark.unit)]


@pytest.fixture
def unique() -> str:
    """A prefix unique to the test (topics, keyspaces, keys)."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def bus(request: pytest.FixtureRequest) -> Iterator[Bus]:
    if request.param == "memory":
        from smartmeter_lib.adapters.memory_bus import MemoryBus

        b: Bus = MemoryBus()
    else:  # pragma: no cover - added with the real backends
        raise ValueError(request.param)
    yield b
    b.close()


@pytest.fixture
def history_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """A callable returning a new client of the same history store."""
    opened: list[HistoryStore] = []

    def make() -> HistoryStore:
        if request.param == "embedded":
            from smartmeter_lib.adapters.embedded_history import EmbeddedHistory

            h: HistoryStore = EmbeddedHistory(tmp_path / "history")
        else:  # pragma: no cover
            raise ValueError(request.param)
        opened.append(h)
        return h

    yield make
    for h in opened:
        h.close()


@pytest.fixture
def live_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """A callable returning a new client of the same live store."""
    opened: list[LiveStore] = []

    def make() -> LiveStore:
        if request.param == "embedded":
            from smartmeter_lib.adapters.embedded_live import EmbeddedLive

            s: LiveStore = EmbeddedLive(tmp_path / "live.sqlite")
        else:  # pragma: no cover
            raise ValueError(request.param)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()
