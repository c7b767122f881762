"""KafkaBus.create_topic against a scripted admin client: which errors it retries, and how."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from smartmeter_lib.adapters import kafka_bus
from smartmeter_lib.adapters.kafka_bus import KafkaBus
from smartmeter_lib.config import build_settings
from smartmeter_lib.errors import BackendError


class ScriptedAdmin:
    """Answers each create_topics call with the next outcome of ``script``."""

    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.calls = 0

    def create_topics(self, topics: list[Any], request_timeout: float) -> dict[str, Future]:
        outcome = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        f: Future = Future()
        if outcome is None:
            f.set_result(None)
        else:
            f.set_exception(KafkaException(KafkaError(outcome)))
        return {topics[0].topic: f}


def bus_with(monkeypatch: pytest.MonkeyPatch, script: list[Any]) -> tuple[KafkaBus, list]:
    admins: list[ScriptedAdmin] = []
    shared = ScriptedAdmin(script)

    def admin(self: KafkaBus) -> ScriptedAdmin:
        if self._admin is None:  # a new client per attempt after a failure
            admins.append(shared)
            self._admin = shared  # type: ignore[assignment]
        return shared

    monkeypatch.setattr(KafkaBus, "admin", admin)
    return KafkaBus(build_settings(kafka_bootstrap="127.0.0.1:1")), admins


def test_a_lost_bootstrap_connection_is_retried_on_a_new_client(
        monkeypatch: pytest.MonkeyPatch) -> None:
    bus, admins = bus_with(monkeypatch, [KafkaError._DESTROY_BROKER, None])
    bus.create_topic("t", 3)
    assert admins[0].calls == 2 and len(admins) == 2


def test_an_earlier_attempt_that_succeeded_unseen_counts_as_created(
        monkeypatch: pytest.MonkeyPatch) -> None:
    bus, admins = bus_with(monkeypatch, [KafkaError._TIMED_OUT, KafkaError.TOPIC_ALREADY_EXISTS])
    bus.create_topic("t", 3)
    assert admins[0].calls == 2


def test_a_permanent_error_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    bus, admins = bus_with(monkeypatch, [KafkaError.INVALID_REPLICATION_FACTOR])
    with pytest.raises(BackendError, match="cannot create topic 't'"):
        bus.create_topic("t", 3, replication=5)
    assert admins[0].calls == 1


def test_retries_are_bounded_and_the_error_names_the_topic(
        monkeypatch: pytest.MonkeyPatch) -> None:
    bus, admins = bus_with(monkeypatch, [KafkaError._DESTROY_BROKER])
    with pytest.raises(BackendError, match=r"'t' on 127\.0\.0\.1:1 after \d+ attempts"):
        bus.create_topic("t", 3)
    assert admins[0].calls == kafka_bus.ADMIN_ATTEMPTS


class _FailingCommit:
    def commit(self, **_kw: Any) -> None:
        raise KafkaException(KafkaError(KafkaError.COORDINATOR_LOAD_IN_PROGRESS))


def test_a_commit_refused_while_the_coordinator_loads_is_skipped_not_fatal() -> None:
    """A processor crashed on this in a fault test: the group coordinator moved and was still
    loading the offsets. The offsets stay uncommitted; the next commit carries them."""
    c = kafka_bus.KafkaConsumer.__new__(kafka_bus.KafkaConsumer)
    c.group_id, c._c, c._dirty, c._committed = "g", _FailingCommit(), True, {}
    c.commit({("t", 0): 10})
    assert c._committed == {} and c._dirty
