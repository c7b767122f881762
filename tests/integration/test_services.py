"""The local real services: they run, answer, enforce durability settings and stop cleanly."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

import psutil
import pytest
import redis
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from pydantic import SecretStr

from smartmeter_lib.errors import ServiceError
from smartmeter_lib.services import ServiceManager, ServicesConfig
from smartmeter_lib.services.base import port_in_use, wait_until
from smartmeter_lib.services.cassandra import CassandraService
from smartmeter_lib.services.process import Instance
from smartmeter_lib.services.redis import RedisService

pytestmark = pytest.mark.integration


def admin_client(config: ServicesConfig) -> AdminClient:
    return AdminClient({"bootstrap.servers": config.kafka_bootstrap})


def process_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_status_reports_all_three_running(
    services: ServicesConfig, service_manager: ServiceManager
) -> None:
    statuses = {st.name: st for st in service_manager.status()}
    assert list(statuses) == ["kafka", "cassandra", "redis"]
    for st in statuses.values():
        assert st.state == "running", st
        assert st.pids and all(psutil.pid_exists(pid) for pid in st.pids)
        assert Path(st.data_dir).is_dir()
        assert Path(st.log_file).is_file()
        assert st.to_dict()["name"] == st.name
    assert len(statuses["kafka"].pids) == 3
    assert set(statuses["kafka"].ports) == {*services.kafka_ports, *services.kafka_controller_ports}
    assert set(statuses["cassandra"].ports) == {
        services.cassandra_port,
        services.cassandra_storage_port,
    }
    assert statuses["redis"].ports == [services.redis_port]


def test_kafka_admin_sees_three_brokers(services: ServicesConfig) -> None:
    metadata = admin_client(services).list_topics(timeout=10)
    assert sorted(metadata.brokers) == [1, 2, 3]
    assert {b.port for b in metadata.brokers.values()} == set(services.kafka_ports)
    assert {b.host for b in metadata.brokers.values()} == {"127.0.0.1"}


def test_kafka_topic_with_rf3_and_min_isr2(services: ServicesConfig) -> None:
    admin = admin_client(services)
    name = f"smartmeter-test-{uuid.uuid4().hex[:8]}"
    topic = NewTopic(
        name, num_partitions=3, replication_factor=3, config={"min.insync.replicas": "2"}
    )
    admin.create_topics([topic], operation_timeout=30)[name].result(timeout=60)
    try:
        # create_topics returns once the controller committed; brokers learn it a moment later.
        def fully_replicated() -> bool:
            found = admin.list_topics(topic=name, timeout=10).topics[name]
            return (
                found.error is None
                and len(found.partitions) == 3
                and all(len(p.isrs) == 3 for p in found.partitions.values())
            )

        wait_until(fully_replicated, timeout=30, what=f"metadata of {name}", interval=0.2)
        described = admin.list_topics(topic=name, timeout=10).topics[name]
        assert described.error is None
        assert len(described.partitions) == 3
        for partition in described.partitions.values():
            assert sorted(partition.replicas) == [1, 2, 3]
            assert sorted(partition.isrs) == [1, 2, 3]
        resource = ConfigResource("TOPIC", name)
        got: dict[str, dict] = {}

        def configs_known() -> bool:  # the broker asked may learn of the topic a bit later
            try:
                got["c"] = admin.describe_configs([resource])[resource].result(timeout=30)
            except KafkaException:
                return False
            return True

        wait_until(configs_known, timeout=30, what=f"configs of {name}", interval=0.2)
        configs = got["c"]
        assert configs["min.insync.replicas"].value == "2"
        assert configs["unclean.leader.election.enable"].value == "false"
    finally:
        admin.delete_topics([name], operation_timeout=30)[name].result(timeout=60)
    wait_until(
        lambda: name not in admin.list_topics(timeout=10).topics,
        timeout=30,
        what=f"deletion of {name}",
    )


def test_kafka_cluster_defaults_are_durable(services: ServicesConfig) -> None:
    admin = admin_client(services)
    resource = ConfigResource("BROKER", "1")
    configs = admin.describe_configs([resource])[resource].result(timeout=30)
    expected = {
        "default.replication.factor": "3",
        "min.insync.replicas": "2",
        "offsets.topic.replication.factor": "3",
        "transaction.state.log.replication.factor": "3",
        "transaction.state.log.min.isr": "2",
        "unclean.leader.election.enable": "false",
        "auto.create.topics.enable": "false",
        "group.initial.rebalance.delay.ms": "0",
    }
    assert {key: configs[key].value for key in expected} == expected


def test_cassandra_answers_cql(services: ServicesConfig) -> None:
    version = CassandraService(services).release_version(timeout=10)
    assert version is not None and version.startswith("5.0."), version


def test_redis_ping(services: ServicesConfig) -> None:
    client = RedisService(services).client()
    try:
        assert client.ping() is True
    finally:
        client.close()
    if services.redis_password is not None:
        anonymous = redis.Redis(host=services.host, port=services.redis_port)
        with pytest.raises(redis.AuthenticationError):
            anonymous.ping()
        anonymous.close()


def test_up_again_is_a_quick_noop(service_manager: ServiceManager) -> None:
    before = {st.name: st.pids for st in service_manager.status()}
    t0 = time.monotonic()
    statuses = service_manager.up()
    took = time.monotonic() - t0
    assert took < 10, f"idempotent up took {took:.1f} s"
    assert {st.name: st.pids for st in statuses} == before
    assert all(st.state == "running" for st in statuses)


def test_port_taken_by_another_base_dir_is_a_clear_error(
    services: ServicesConfig, tmp_path: Path
) -> None:
    other = ServiceManager(ServicesConfig(base_dir=tmp_path / "other",
                                         redis_port=services.redis_port))
    with pytest.raises(ServiceError, match=rf"redis: port {services.redis_port} \(client port\)"):
        other.up(["redis"])
    assert not (tmp_path / "other" / "redis" / "redis.pid").exists()


def test_redis_with_password_requires_auth(services: ServicesConfig, tmp_path: Path) -> None:
    config = ServicesConfig(
        base_dir=tmp_path / "pw", redis_port=free_port(), redis_password=SecretStr('s3cr€t "pw"')
    )
    server = RedisService(config)
    server.start(timeout=30)
    try:
        pid = server.status().pids[0]
        assert "s3cr" not in " ".join(psutil.Process(pid).cmdline())
        assert (server.conf_file.stat().st_mode & 0o777) == 0o600
        authed = server.client()
        assert authed.ping() is True
        authed.close()
        assert not server.answers_without_password()
    finally:
        server.stop(timeout=10)
    assert process_gone(pid)
    assert server.status().state == "stopped"


def test_redis_down_then_up(services: ServicesConfig, service_manager: ServiceManager) -> None:
    (before,) = service_manager.status(["redis"])
    assert before.state == "running"
    service_manager.down(["redis"])
    (after,) = service_manager.status(["redis"])
    assert after.state == "stopped"
    assert after.pids == []
    assert all(process_gone(pid) for pid in before.pids)
    assert not port_in_use(services.host, services.redis_port)
    assert not (services.base_dir / "redis" / "redis.pid").exists()
    service_manager.down(["redis"])  # stopping a stopped service is a no-op
    (again,) = service_manager.up(["redis"])
    assert again.state == "running"
    assert again.pids and again.pids != before.pids
    other = {st.name: st.state for st in service_manager.status(["kafka", "cassandra"])}
    assert other == {"kafka": "running", "cassandra": "running"}


class BrokenRedis(RedisService):
    """A redis-server that exits at once (unknown config directive)."""

    def command(self, instance: Instance) -> list[str]:
        return [*super().command(instance), "--no-such-directive", "yes"]


def test_process_dying_at_start_is_reported_with_its_log(tmp_path: Path) -> None:
    config = ServicesConfig(base_dir=tmp_path / "broken", redis_port=free_port())
    broken = BrokenRedis(config)
    t0 = time.monotonic()
    with pytest.raises(ServiceError, match="redis exited during start-up") as info:
        broken.start(timeout=60)
    assert time.monotonic() - t0 < 15
    assert "no-such-directive" in str(info.value)
    assert broken.status().state == "stopped"
    assert not broken.instances()[0].pid_file.exists()
