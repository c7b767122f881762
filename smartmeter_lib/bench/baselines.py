"""Baselines on the same services, in the same run: the prototype's approach, and raw Kafka.

- **Prototype**: one JSON message per reading (``{"meter_id", "ts", "kwh"}``), produced one
  ``produce()`` call at a time; a consumer that decodes each message and runs one synchronous
  ``INSERT`` per reading (no batching, no concurrency) into a table keyed by timestamp, as the
  prototype did. Readings/s end to end.
- **Raw Kafka**: the project's producer settings (acks=all, idempotence) sending the 24-byte
  wire values keyed by meter id as fast as one producer can, with a plain consumer reading them
  back at the same time: the ceiling of anything built on this cluster.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any

from smartmeter_lib.config import Settings
from smartmeter_lib.errors import BackendError

log = logging.getLogger(__name__)


def _topic(settings: Settings, name: str) -> None:
    from smartmeter_lib.adapters.kafka_bus import KafkaBus

    bus = KafkaBus(settings)
    bus.create_topic(name, 6, 3, {"min.insync.replicas": "2"})
    bus.close()


def _drop_topic(settings: Settings, name: str) -> None:
    from smartmeter_lib.adapters.kafka_bus import KafkaBus

    bus = KafkaBus(settings)
    try:
        bus.delete_topic(name)
    except Exception as err:  # confluent_kafka raises KafkaException with various codes
        log.warning("could not delete topic %s: %s", name, err)
    bus.close()


def _consume(settings: Settings, topic: str, n: int, on_message: Any,
             budget_s: float) -> tuple[int, float]:
    """Consume ``n`` messages (bounded by ``budget_s``), calling ``on_message`` on each;
    returns (messages, wall time of the last)."""
    from confluent_kafka import Consumer

    from smartmeter_lib.adapters.kafka_bus import client_config

    c = Consumer({**client_config(settings), "group.id": f"bench-{uuid.uuid4().hex[:8]}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    got, last = 0, time.monotonic()
    end = time.monotonic() + budget_s
    try:
        while got < n and time.monotonic() < end:
            for m in c.consume(10_000, 0.5):
                if m.error():
                    continue
                on_message(m)
                got += 1
            last = time.monotonic()
    finally:
        c.close()
    return got, last


def prototype(settings: Settings, readings: int, homes: int = 1000,
              budget_s: float = 600.0) -> dict[str, Any]:
    """The prototype's approach end to end: readings/s (see the module docs)."""
    from confluent_kafka import Producer

    from smartmeter_lib.adapters.cassandra_history import CassandraHistory
    from smartmeter_lib.adapters.kafka_bus import client_config

    u = "p" + uuid.uuid4().hex[:8]
    topic = f"{u}_json"
    _topic(settings, topic)
    h = CassandraHistory(settings.with_overrides(cassandra_keyspace=u))
    h.session.execute(f"CREATE TABLE IF NOT EXISTS {u}.proto_readings (ts timestamp, "
                      "meter_id text, kwh double, PRIMARY KEY (ts, meter_id))", timeout=120)
    ins = h.session.prepare(f"INSERT INTO {u}.proto_readings (ts, meter_id, kwh) "
                            "VALUES (?,?,?)")
    start_ms = int(time.time()) * 1000

    def produce() -> None:
        p = Producer({**client_config(settings), "acks": "all", "enable.idempotence": True,
                      "linger.ms": 5})
        for i in range(readings):
            msg = {"meter_id": f"SM{i % homes:07d}", "ts": start_ms + (i // homes) * 1000,
                   "kwh": 0.0001 + (i % 97) * 1e-6}
            while True:
                try:
                    p.produce(topic, json.dumps(msg).encode())
                    break
                except BufferError:
                    p.poll(0.1)
            p.poll(0)
        p.flush(60)

    def insert(m: Any) -> None:
        d = json.loads(m.value())
        h.session.execute(ins, (_dt(d["ts"]), d["meter_id"], d["kwh"]))

    t0 = time.monotonic()
    producer = threading.Thread(target=produce, name="bench-prototype-producer", daemon=True)
    producer.start()
    try:
        got, last = _consume(settings, topic, readings, insert, budget_s)
        producer.join(timeout=60)
        n = h.session.execute(f"SELECT count(*) FROM {u}.proto_readings", timeout=120).one()[0]
    finally:
        h.drop_keyspace()
        h.close()
        _drop_topic(settings, topic)
    if got < readings:
        raise BackendError(f"prototype baseline: consumed {got} of {readings} messages from "
                           f"{topic} within {budget_s:.0f} s")
    wall = last - t0
    return {"readings": got, "rows": int(n), "wall_s": round(wall, 2),
            "readings_per_s": round(got / wall)}


def _dt(ms: int) -> Any:
    import datetime as dt

    return dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=ms)


def raw_kafka(settings: Settings, messages: int, homes: int = 100_000,
              budget_s: float = 600.0) -> dict[str, Any]:
    """One producer (acks=all, idempotent) and one consumer, concurrently, 24-byte values."""
    from smartmeter_lib.adapters.kafka_bus import KafkaBus

    topic = "k" + uuid.uuid4().hex[:8] + "_raw"
    _topic(settings, topic)
    value = bytes(24)
    keys = [f"SM{i:07d}".encode() for i in range(homes)]
    done: dict[str, float] = {}

    def produce() -> None:
        bus = KafkaBus(settings)
        t = time.monotonic()
        sent = 0
        while sent < messages:
            k = min(homes, messages - sent)
            bus.produce_batch(topic, keys[:k], [value] * k)
            sent += k
        bus.flush(120)
        done["produce_s"] = time.monotonic() - t
        bus.close()

    t0 = time.monotonic()
    producer = threading.Thread(target=produce, name="bench-raw-producer", daemon=True)
    producer.start()
    try:
        got, last = _consume(settings, topic, messages, lambda m: None, budget_s)
        producer.join(timeout=120)
    finally:
        _drop_topic(settings, topic)
    if got < messages:
        raise BackendError(f"raw Kafka baseline: consumed {got} of {messages} messages from "
                           f"{topic} within {budget_s:.0f} s")
    wall = last - t0
    return {"messages": got, "value_bytes": len(value), "wall_s": round(wall, 2),
            "produce_per_s": round(messages / done.get("produce_s", wall)),
            "end_to_end_per_s": round(got / wall)}
