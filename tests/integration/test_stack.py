"""The pipeline on the real stack: topics, schema, and the end-to-end count check with a
broker stopped in the middle of the run."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import threading
import uuid

import numpy as np
import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource

from smartmeter_lib.adapters.cassandra_history import CassandraHistory
from smartmeter_lib.adapters.redis_live import RedisLive
from smartmeter_lib.cli import main
from smartmeter_lib.services import ServicesConfig
from smartmeter_lib.services.kafka import KafkaService
from smartmeter_lib.simulate.households import HouseholdFleet
from smartmeter_lib.stack import run_stack
from tests.contract.conftest import real_settings


def test_topics_create_gives_fake_iot_6_partitions_rf3_min_isr_2(
        services: ServicesConfig, capsys: pytest.CaptureFixture[str]) -> None:
    os.environ["SMARTMETER_KAFKA_BOOTSTRAP"] = services.kafka_bootstrap
    try:
        assert main(["topics", "create"]) == 0
        assert main(["topics", "create"]) == 0  # idempotent
    finally:
        del os.environ["SMARTMETER_KAFKA_BOOTSTRAP"]
    assert "fake_iot: 6 partitions, replication 3, min.insync.replicas 2" in capsys.readouterr().out
    admin = AdminClient({"bootstrap.servers": services.kafka_bootstrap})
    md = admin.list_topics(timeout=30)
    for name in ("fake_iot", "smartmeter_alerts", "smartmeter_dlq"):
        assert name in md.topics
    t = md.topics["fake_iot"]
    assert len(t.partitions) == 6
    assert all(len(p.replicas) == 3 for p in t.partitions.values())
    res = ConfigResource(ConfigResource.Type.TOPIC, "fake_iot")
    conf = None
    for _ in range(50):  # bounded: a broker may learn of a new topic a moment later
        try:
            conf = admin.describe_configs([res])[res].result(timeout=30)
            break
        except KafkaException:
            threading.Event().wait(0.2)
    assert conf is not None and conf["min.insync.replicas"].value == "2"


def _stop_one_broker_for(config: ServicesConfig, seconds: float, started: threading.Event,
                         log: list[str]) -> None:
    kafka = KafkaService(config)
    started.wait(120)
    threading.Event().wait(15)  # into the run
    name, pid = sorted((n, p) for n, p in kafka.live_pids().items() if p)[-1]
    os.kill(pid, signal.SIGTERM)
    log.append(f"stopped {name} (pid {pid})")
    threading.Event().wait(seconds)
    kafka.start()
    log.append(f"restarted {name}")


def test_2000_homes_60s_3_producers_2_processors_every_reading_stored_once(
        services: ServicesConfig) -> None:
    u = "t" + uuid.uuid4().hex[:8]
    s = real_settings(services, homes=2000, bus="kafka", history="cassandra", live="redis",
                      cassandra_keyspace=u, topic_readings=f"{u}_readings",
                      topic_alerts=f"{u}_alerts", topic_dlq=f"{u}_dlq", redis_prefix=f"{u}:")
    from smartmeter_lib.stack import create_topics

    create_topics(s)
    start = int(dt.datetime(2026, 11, 2, 17, 0, tzinfo=dt.UTC).timestamp())
    started, events = threading.Event(), []
    chaos = threading.Thread(target=_stop_one_broker_for, args=(services, 20, started, events))
    chaos.start()
    started.set()
    res = run_stack(s, producers=3, workers=2, duration_s=60, speedup=1.0, start_s=start,
                    idle_exit_s=30)
    chaos.join(timeout=120)
    assert len(events) == 2 and events[0].startswith("stopped kafka")
    assert events[1].startswith("restarted")
    assert res.produced == 2000 * 60

    # what was produced: the same fleet, the same seed, the same seconds
    fleet = HouseholdFleet(2000, seed=s.seed)
    expected = np.zeros(2000)
    for k in range(60):
        expected += fleet.readings(start + k).kwh
    h = CassandraHistory(s)
    try:
        t_lo, t_hi = start * 1000, (start + 60) * 1000
        got = [h.read_readings(m, t_lo, t_hi) for m in fleet.meters.meter_id.tolist()]
        counts = np.array([len(g) for g in got])
        sums = np.array([g.kwh.sum() for g in got])
    finally:
        h.drop_keyspace()
        h.close()
    assert counts.tolist() == [60] * 2000, "every reading exactly once"
    # stored in fixed point of 1e-7 kWh (docs/data-contracts.md): each reading within 0.5e-7
    assert np.abs(sums - expected).max() <= 60 * 0.5e-7
    live = RedisLive(s)
    try:
        kpis = live.get_kpis()
        assert kpis["homes_total"] == 2000
        assert live.get_area_stats(5) is not None
    finally:
        live.clear()
        live.close()


def test_simulate_3_producers_then_process_2_workers_from_the_cli(
        services: ServicesConfig, tmp_path: object, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    u = "t" + uuid.uuid4().hex[:8]
    env = {"SMARTMETER_BUS": "kafka", "SMARTMETER_HISTORY": "cassandra",
           "SMARTMETER_LIVE": "redis", "SMARTMETER_KAFKA_BOOTSTRAP": services.kafka_bootstrap,
           "SMARTMETER_TOPIC_READINGS": f"{u}_r", "SMARTMETER_TOPIC_ALERTS": f"{u}_a",
           "SMARTMETER_TOPIC_DLQ": f"{u}_d", "SMARTMETER_CASSANDRA_KEYSPACE": u,
           "SMARTMETER_REDIS_PREFIX": f"{u}:",
           # the services may run on shifted ports (SMARTMETER_TEST_PORT_OFFSET)
           "SMARTMETER_CASSANDRA_PORT": str(services.cassandra_port),
           "SMARTMETER_REDIS_URL": f"redis://{services.host}:{services.redis_port}/0"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert main(["topics", "create"]) == 0
    assert main(["--data-dir", str(tmp_path), "simulate", "--homes", "300", "--duration",
                 "20", "--speedup", "0", "--producers", "3",
                 "--start", "2026-11-02T18:00:00Z"]) == 0
    assert "sent 6000 messages from 300 homes through 3 producers" in capsys.readouterr().out
    assert main(["process", "--workers", "2", "--idle-exit", "8"]) == 0
    written = re.search(r"2 processors wrote (\d+) readings", capsys.readouterr().out)
    assert written is not None and int(written.group(1)) >= 6000  # re-reads are written again
    h = CassandraHistory(real_settings(services, cassandra_keyspace=u))
    try:
        from smartmeter_lib.adapters.chunks import decode_chunk

        n = sum(len(decode_chunk(r.chunk))
                for r in h.session.execute(f"SELECT chunk FROM {u}.reading_chunks"))
    finally:
        h.drop_keyspace()
        h.close()
    assert n == 6000
