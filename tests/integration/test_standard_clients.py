"""Standard clients read our data knowing only docs/data-contracts.md."""

from __future__ import annotations

import datetime as dt
import shutil
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
from confluent_kafka import Consumer

from smartmeter_lib.adapters.cassandra_history import CassandraHistory
from smartmeter_lib.adapters.kafka_bus import KafkaBus
from smartmeter_lib.codec import encode_batch
from smartmeter_lib.model import ReadingBatch
from smartmeter_lib.services import ServicesConfig
from tests.contract.conftest import real_settings

T0 = int(dt.datetime(2026, 11, 2, 18, 0, tzinfo=dt.UTC).timestamp() * 1000)


def test_a_plain_kafka_consumer_decodes_the_topic(services: ServicesConfig) -> None:
    topic = "t" + uuid.uuid4().hex[:10]
    bus = KafkaBus(real_settings(services))
    bus.create_topic(topic, 3, 3, {"min.insync.replicas": "2"})
    batch = ReadingBatch.readings(["MAC000002", "SM0000042"], [T0, T0 + 1000], [0.219, 0.0004],
                                  [1800, 1])
    bus.produce_batch(topic, *encode_batch(batch))
    assert bus.flush() == 0
    c = Consumer({"bootstrap.servers": services.kafka_bootstrap, "group.id": topic,
                  "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got: dict[str, tuple[int, ...]] = {}
    for _ in range(60):  # bounded: up to 60 polls of 1 s
        m = c.poll(1.0)
        if m is not None and m.error() is None:
            # docs/data-contracts.md: key = meter id, value = struct "<BBHIqd"
            version, kind, interval_s, _, ts_ms, kwh = struct.unpack("<BBHIqd", m.value())
            got[m.key().decode()] = (version, kind, interval_s, ts_ms, round(kwh, 6))
        if len(got) == 2:
            break
    c.close()
    bus.delete_topic(topic)
    assert got == {"MAC000002": (1, 0, 1800, T0, 0.219), "SM0000042": (1, 0, 1, T0 + 1000, 0.0004)}


def test_cqlsh_reads_the_readings_table(services: ServicesConfig) -> None:
    ks = "t" + uuid.uuid4().hex[:10]
    h = CassandraHistory(real_settings(services, cassandra_keyspace=ks))
    try:
        h.write_readings(ReadingBatch.readings(["MAC000002"] * 3, T0 + np.arange(3) * 1_800_000,
                                               [0.219, 0.241, 0.191], 1800))
        cqlsh = shutil.which("cqlsh", path=str(Path(sys.executable).parent)) or "cqlsh"
        out = subprocess.run(
            [cqlsh, services.host, str(services.cassandra_port), "-e",
             f"SELECT ts, kwh, interval_s FROM {ks}.readings WHERE meter_id = 'MAC000002' "
             "AND day = '2026-11-02'"], capture_output=True, text=True, timeout=120)
    finally:
        h.drop_keyspace()
        h.close()
    assert out.returncode == 0, out.stderr
    lines = [x for x in out.stdout.splitlines() if "2026-11-02" in x]
    assert len(lines) == 3
    assert "18:00:00" in lines[0] and "0.219" in lines[0] and "1800" in lines[0]
    assert "(3 rows)" in out.stdout
