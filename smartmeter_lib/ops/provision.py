"""Services, topics and schema: start or reach them, create them, and verify the result.

Every function is idempotent: run it again and it leaves a correct system alone (and brings a
topic's ``min.insync.replicas`` or a keyspace's replication to what was asked for).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import pandas as pd

from smartmeter_lib.config import Settings
from smartmeter_lib.errors import BackendError, OpsError, ServiceError
from smartmeter_lib.services.config import ServicesConfig

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- services


def start_local_services(config: ServicesConfig, timeout: float | None = None) -> pd.DataFrame:
    """``smartmeter services up`` for ``config`` (a no-op for services already running)."""
    from smartmeter_lib.services.manager import ServiceManager

    try:
        statuses = ServiceManager(config).up(timeout=timeout)
    except ServiceError as err:
        raise OpsError(f"the local services did not start under {config.base_dir}: {err}. "
                       "Run 00_check_prerequisites, read the service logs there, or point "
                       "the runbook at existing hosts (start_local=False)") from err
    return pd.DataFrame([s.to_dict() for s in statuses])


def check_reachable(settings: Settings) -> pd.DataFrame:
    """Kafka, Cassandra and Redis of ``settings`` answer; an OpsError naming those that
    do not, with what to check."""
    from smartmeter_lib.stack import check_hosts

    results = check_hosts(settings)
    df = pd.DataFrame([(n, ok, d) for n, (ok, d) in results.items()],
                      columns=["service", "ok", "detail"])
    bad = df[~df["ok"]]
    if len(bad):
        where = {"kafka": f"kafka_bootstrap={settings.kafka_bootstrap}",
                 "cassandra": f"cassandra_hosts={settings.cassandra_hosts} "
                              f"cassandra_port={settings.cassandra_port}",
                 "redis": f"redis_url={settings.redis_url}"}
        raise OpsError("unreachable: " + "; ".join(
            f"{r.service} ({where[str(r.service)]}) does not answer: {r.detail}"
            for r in bad.itertuples()) + ". Check the host names, ports, firewalls and "
            "credentials, or start local services (start_local=True)")
    return df


# --------------------------------------------------------------------------- topics


def _min_isr(admin: Any, topic: str, timeout_s: float = 30.0) -> str | None:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import ConfigResource

    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    end = time.monotonic() + timeout_s
    while True:  # bounded: a broker may learn of a new topic a moment later
        try:
            conf = admin.describe_configs([res])[res].result(timeout=30)
            entry = conf.get("min.insync.replicas")
            return None if entry is None else str(entry.value)
        except KafkaException:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def verify_topics(settings: Settings, replication: int = 3, min_isr: int = 2) -> pd.DataFrame:
    """One row per topic as the brokers describe it; an OpsError when one is missing or has
    other partitions, replication or min.insync.replicas than asked for."""
    from smartmeter_lib.adapters.kafka_bus import KafkaBus
    from smartmeter_lib.stack import topic_specs

    admin = KafkaBus(settings).admin()
    md = admin.list_topics(timeout=30)
    rows, problems = [], []
    for name, parts, rf, _conf in topic_specs(settings, replication, min_isr):
        t = md.topics.get(name)
        if t is None or t.error is not None:
            problems.append(f"topic {name} is missing")
            continue
        got_rf = min(len(p.replicas) for p in t.partitions.values())
        isr = min(len(p.isrs) for p in t.partitions.values())
        got_min = _min_isr(admin, name)
        rows.append({"topic": name, "partitions": len(t.partitions), "replication": got_rf,
                     "min_insync_replicas": got_min, "smallest_isr": isr})
        if len(t.partitions) != parts:
            problems.append(f"topic {name} has {len(t.partitions)} partitions, not {parts} (it "
                            "was created earlier with other settings: delete it or use "
                            "another topic name)")
        if got_rf != rf:
            problems.append(f"topic {name} has replication {got_rf}, not {rf} (delete it or "
                            "use another topic name)")
        if got_min != str(min_isr):
            problems.append(f"topic {name} has min.insync.replicas {got_min}, not {min_isr}")
    if problems:
        raise OpsError("; ".join(problems) + f" (cluster {settings.kafka_bootstrap})")
    return pd.DataFrame(rows)


def ensure_topics(settings: Settings, replication: int = 3, min_isr: int = 2) -> pd.DataFrame:
    """Create the readings (6 partitions), alert and dead-letter topics, bring their
    min.insync.replicas to ``min_isr``, and verify them with the admin client."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    from smartmeter_lib.adapters.kafka_bus import KafkaBus
    from smartmeter_lib.stack import create_topics, topic_specs

    if not 1 <= min_isr <= replication:
        raise OpsError(f"min_isr must be between 1 and replication ({replication}), "
                       f"got {min_isr}")
    admin = KafkaBus(settings).admin()
    try:
        brokers = len(admin.list_topics(timeout=30).brokers)
    except Exception as err:  # confluent_kafka.KafkaException and its transport errors
        raise OpsError(f"Kafka at {settings.kafka_bootstrap} does not answer ({err}): run "
                       "01_start_services first") from err
    if replication > brokers:
        raise OpsError(f"replication {replication} needs {replication} brokers, but the "
                       f"cluster at {settings.kafka_bootstrap} has {brokers}: lower the "
                       "replication parameter")
    try:
        create_topics(settings, replication, min_isr)
    except BackendError as err:
        raise OpsError(f"{err}; check the broker logs and the replication parameter") from err
    for name, _p, _rf, _conf in topic_specs(settings, replication, min_isr):
        if _min_isr(admin, name) != str(min_isr):
            res = ConfigResource(ConfigResource.Type.TOPIC, name, incremental_configs=[
                ConfigEntry("min.insync.replicas", str(min_isr),
                            incremental_operation=AlterConfigOpType.SET)])
            admin.incremental_alter_configs([res])[res].result(timeout=30)
            log.info("topic %s: min.insync.replicas set to %d", name, min_isr)
    return _wait_verified(settings, replication, min_isr)


def _wait_verified(settings: Settings, replication: int, min_isr: int,
                   timeout_s: float = 30.0) -> pd.DataFrame:
    end = time.monotonic() + timeout_s
    while True:  # bounded: metadata and configs reach every broker a moment later
        try:
            return verify_topics(settings, replication, min_isr)
        except OpsError:
            if time.monotonic() > end:
                raise
            time.sleep(0.5)


# --------------------------------------------------------------------------- schema


def expected_tables(keyspace: str) -> list[str]:
    """The tables ``schema create`` makes.

    >>> expected_tables("ks")[:3]
    ['meters', 'readings', 'rollups']
    """
    from smartmeter_lib.adapters.cassandra_history import schema_statements

    found = [re.search(rf"CREATE TABLE IF NOT EXISTS {keyspace}\.(\w+)", s)
             for s in schema_statements(keyspace)]
    return [m.group(1) for m in found if m]


def ensure_schema(settings: Settings, replication: int = 1) -> pd.DataFrame:
    """Create the keyspace and tables, bring the keyspace's replication factor to
    ``replication``, and verify both from Cassandra's system schema."""
    from smartmeter_lib.adapters.cassandra_history import CassandraHistory

    if replication < 1:
        raise OpsError(f"replication must be at least 1, got {replication}")
    ks = settings.cassandra_keyspace
    try:
        h = CassandraHistory(settings, replication=replication)
    except BackendError as err:
        raise OpsError(f"{err}: run 01_start_services first, or check cassandra_hosts and "
                       "cassandra_port") from err
    try:
        nodes = len(h.cluster.metadata.all_hosts())
        if replication > nodes:
            raise OpsError(f"replication {replication} needs {replication} Cassandra nodes, "
                           f"the cluster has {nodes}: writes at LOCAL_QUORUM would fail; "
                           "lower the replication parameter")
        row = h.session.execute("SELECT replication FROM system_schema.keyspaces WHERE "
                                "keyspace_name=%s", (ks,)).one()
        rf = int(dict(row.replication).get("replication_factor", 0))
        if rf != replication:
            h.session.execute(f"ALTER KEYSPACE {ks} WITH replication = {{'class': "
                              f"'SimpleStrategy', 'replication_factor': {replication}}}",
                              timeout=120)
            log.warning("keyspace %s: replication factor changed from %d to %d (run a repair "
                        "on a multi-node cluster)", ks, rf, replication)
            rf = replication
        tables = {r.table_name for r in h.session.execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name=%s", (ks,))}
    finally:
        h.close()
    missing = [t for t in expected_tables(ks) if t not in tables]
    if missing:
        raise OpsError(f"keyspace {ks} lacks tables {missing}; see the Cassandra log")
    return pd.DataFrame({"keyspace": ks, "table": expected_tables(ks), "replication": rf})


# --------------------------------------------------------------------------- teardown


def drop_data(settings: Settings) -> pd.DataFrame:
    """Delete the topics (with the replay and load-test ones), the keyspace and the Redis
    keys of ``settings``. Idempotent: what is already gone is skipped."""
    from smartmeter_lib.adapters.cassandra_history import CassandraHistory
    from smartmeter_lib.adapters.kafka_bus import KafkaBus
    from smartmeter_lib.adapters.redis_live import RedisLive

    rows = []
    bus = KafkaBus(settings, client_id="smartmeter-ops")
    existing = set(bus.admin().list_topics(timeout=30).topics)
    r = settings.topic_readings
    for t in (r, settings.topic_alerts, settings.topic_dlq, f"{r}_replay", f"{r}_load"):
        if t in existing:
            bus.delete_topic(t)
        rows.append(("topic", t, "deleted" if t in existing else "absent"))
    for ks in (settings.cassandra_keyspace, f"{settings.cassandra_keyspace}_load"[:48]):
        h = CassandraHistory(settings, keyspace=ks)  # (creates it if absent, then drops it)
        h.drop_keyspace()
        h.close()
        rows.append(("keyspace", ks, "dropped"))
    live = RedisLive(settings)
    live.clear()  # every key under the prefix, the replay's and load test's too
    live.close()
    rows.append(("redis keys", f"{settings.redis_prefix}*", "deleted"))
    return pd.DataFrame(rows, columns=["what", "name", "result"])
