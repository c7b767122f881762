"""Kafka offsets of a topic and a consumer group: end offsets, committed offsets, lag."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from smartmeter_lib.config import Settings
from smartmeter_lib.errors import OpsError


@dataclass(frozen=True)
class Offsets:
    """One look at a topic: per partition, its end offset and the group's committed offset
    (None when the group has committed nothing there yet), at wall time ``t``."""

    topic: str
    t: float
    end: dict[int, int]
    committed: dict[int, int | None] = field(default_factory=dict)
    start: dict[int, int] = field(default_factory=dict)

    def lag(self, partition: int) -> int:
        """Messages not yet committed by the group (all of them when nothing was committed).

        >>> Offsets("t", 0.0, {0: 10, 1: 5}, {0: 7, 1: None}, {0: 0, 1: 2}).lag(1)
        3
        """
        done = self.committed.get(partition)
        return self.end[partition] - (self.start.get(partition, 0) if done is None else done)

    @property
    def total_end(self) -> int:
        return sum(self.end.values())

    @property
    def total_lag(self) -> int:
        return sum(self.lag(p) for p in self.end)


def _consumer(settings: Settings, group: str) -> Any:
    from confluent_kafka import Consumer

    from smartmeter_lib.adapters.kafka_bus import client_config

    return Consumer({**client_config(settings), "group.id": group,
                     "enable.auto.commit": False})


def read_offsets(settings: Settings, topic: str, group: str | None = None,
                 timeout_s: float = 20.0) -> Offsets:
    """End (and start) offsets of every partition of ``topic``, and the committed offsets of
    ``group`` when given. The group is only read: nothing joins it."""
    from confluent_kafka import KafkaException, TopicPartition

    c = _consumer(settings, group or "smartmeter-ops-offsets")
    try:
        md = c.list_topics(topic, timeout=timeout_s)
        t = md.topics.get(topic)
        if t is None or t.error is not None or not t.partitions:
            raise OpsError(f"topic {topic} does not exist on {settings.kafka_bootstrap}: run "
                           "02_create_topics (or check the topic name)")
        parts = sorted(t.partitions)
        end, start = {}, {}
        for p in parts:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
            start[p], end[p] = int(lo), int(hi)
        committed: dict[int, int | None] = {}
        if group:
            for tp in c.committed([TopicPartition(topic, p) for p in parts], timeout=timeout_s):
                committed[tp.partition] = tp.offset if tp.offset >= 0 else None
        return Offsets(topic, time.time(), end, committed, start)
    except KafkaException as err:
        raise OpsError(f"cannot read offsets of {topic} on {settings.kafka_bootstrap}: "
                       f"{err}") from err
    finally:
        c.close()


def _not_yet() -> set[int]:
    from confluent_kafka import KafkaError

    return {KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE,
            KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.GROUP_ID_NOT_FOUND}


def group_members(settings: Settings, group: str, timeout_s: float = 20.0) -> int:
    """How many consumers are members of ``group`` now (0 when the group is empty)."""
    from confluent_kafka import KafkaException

    from smartmeter_lib.adapters.kafka_bus import KafkaBus

    admin = KafkaBus(settings, client_id="smartmeter-ops").admin()
    try:
        desc = admin.describe_consumer_groups([group], request_timeout=timeout_s)[group]
        return len(desc.result(timeout=timeout_s).members)
    except KafkaException as err:
        kerr = err.args[0]
        if kerr.retriable() or kerr.code() in _not_yet():
            return 0  # the group's coordinator is being chosen, or the group is new
        raise OpsError(f"cannot describe consumer group {group} on "
                       f"{settings.kafka_bootstrap}: {err}") from err


def committed_total_of(o: Offsets) -> int:
    """Messages committed by the group over all partitions (the start where none).

    >>> committed_total_of(Offsets("t", 0.0, {0: 10, 1: 5}, {0: 7, 1: None}, {0: 0, 1: 2}))
    9
    """
    return sum(o.start.get(p, 0) if o.committed.get(p) is None else int(o.committed[p] or 0)
               for p in o.end)
