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


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _decode_chunk_from_the_docs(blob: bytes) -> list[tuple[int, float, int, int]]:
    """(ms in the minute, kWh, interval_s, kind) per reading, written from
    docs/data-contracts.md alone (not with smartmeter_lib's decoder)."""
    assert blob[0] == 1
    regular = blob[1] & 1
    n, pos = _varint(blob, 2)
    if regular:
        bits = int.from_bytes(blob[pos:pos + 8], "little")
        pos += 8
        offs = [s * 1000 for s in range(64) if bits >> s & 1]
        ivs, kinds = [1] * n, [0] * n
    else:
        offs, ivs, t = [], [], 0
        for _ in range(n):
            d, pos = _varint(blob, pos)
            t += d
            offs.append(t)
        for _ in range(n):
            v, pos = _varint(blob, pos)
            ivs.append(v)
        kinds = list(blob[pos:pos + n])
        pos += n
    out, fp = [], 0
    for i in range(n):
        z, pos = _varint(blob, pos)
        fp += (z >> 1) ^ -(z & 1)
        out.append((offs[i], fp / 1e7, ivs[i], kinds[i]))
    assert pos == len(blob)
    return out


def test_cqlsh_reads_the_reading_chunks_table(services: ServicesConfig) -> None:
    ks = "t" + uuid.uuid4().hex[:10]
    h = CassandraHistory(real_settings(services, cassandra_keyspace=ks))
    try:
        h.write_readings(ReadingBatch.readings(["MAC000002"] * 3, T0 + np.arange(3) * 1_800_000,
                                               [0.219, 0.241, 0.191], 1800))
        h.write_readings(ReadingBatch.readings(["SM0000042"] * 3, T0 + np.arange(3) * 1000,
                                               [0.0004, 0.00041, 0.00039], 1))
        cqlsh = shutil.which("cqlsh", path=str(Path(sys.executable).parent)) or "cqlsh"
        out = subprocess.run(
            [cqlsh, services.host, str(services.cassandra_port), "-e",
             f"SELECT meter_id, minute, chunk FROM {ks}.reading_chunks WHERE meter_id IN "
             "('MAC000002', 'SM0000042') AND day = '2026-11-02'"],
            capture_output=True, text=True, timeout=120)
    finally:
        h.drop_keyspace()
        h.close()
    assert out.returncode == 0, out.stderr
    rows = [[c.strip() for c in x.split("|")] for x in out.stdout.splitlines()
            if "0x" in x]
    got = {(m, int(minute)): _decode_chunk_from_the_docs(bytes.fromhex(blob[2:]))
           for m, minute, blob in rows}
    assert got == {("MAC000002", 1080): [(0, 0.219, 1800, 0)],
                   ("MAC000002", 1110): [(0, 0.241, 1800, 0)],
                   ("MAC000002", 1140): [(0, 0.191, 1800, 0)],
                   ("SM0000042", 1080): [(0, 0.0004, 1, 0), (1000, 0.00041, 1, 0),
                                         (2000, 0.00039, 1, 0)]}
    assert "(4 rows)" in out.stdout
