"""Pure tests of smartmeter_lib.services: nothing is started."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pydantic
import pytest
import yaml
from click.testing import CliRunner

from smartmeter_lib.errors import ServiceError
from smartmeter_lib.services import jars
from smartmeter_lib.services.base import (
    ServiceStatus,
    ensure_ports_free,
    live_pid,
    port_in_use,
    read_pid_file,
    render_template,
    wait_until,
    write_pid_file,
)
from smartmeter_lib.services.cassandra import JDK17_MODULE_FLAGS, CassandraService
from smartmeter_lib.services.commands import format_table, run_reporting_errors, services
from smartmeter_lib.services.config import ServicesConfig
from smartmeter_lib.services.kafka import KafkaService, new_cluster_id
from smartmeter_lib.services.manager import ServiceManager
from smartmeter_lib.services.redis import RedisService, redis_quote

pytestmark = pytest.mark.unit

PASSWORD = "hunter2-very-secret"


@pytest.fixture
def config(tmp_path: Path) -> ServicesConfig:
    """Non-default ports, so the tests see that rendering uses the configured ones."""
    return ServicesConfig(
        base_dir=tmp_path / "svc",
        jar_cache_dir=tmp_path / "jars",
        kafka_ports=(19092, 19093, 19094),
        kafka_controller_ports=(19192, 19193, 19194),
        cassandra_port=19042,
        cassandra_storage_port=17000,
        redis_port=16379,
    )


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def properties(text: str) -> dict[str, str]:
    result = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            result[key.strip()] = value.strip()
    return result


# ------------------------------------------------------------------ config


def test_defaults_and_helpers() -> None:
    cfg = ServicesConfig()
    assert cfg.host == "127.0.0.1"
    assert cfg.kafka_bootstrap == "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094"
    assert cfg.kafka_quorum_voters == "1@127.0.0.1:9192,2@127.0.0.1:9193,3@127.0.0.1:9194"
    assert cfg.base_dir.parts[-2:] == (".smartmeter", "services")
    assert cfg.jar_cache_dir.parts[-2:] == ("smartmeter", "jars")
    assert cfg.base_dir.is_absolute()
    with pytest.raises(pydantic.ValidationError):
        cfg.redis_port = 1


def test_ports_must_be_distinct_and_valid() -> None:
    with pytest.raises(pydantic.ValidationError, match="distinct"):
        ServicesConfig(redis_port=9092)
    with pytest.raises(pydantic.ValidationError, match="outside"):
        ServicesConfig(cassandra_port=70000)


def test_password_never_shows_in_repr_str_or_dump() -> None:
    cfg = ServicesConfig(redis_password=pydantic.SecretStr(PASSWORD))
    assert cfg.redis_password is not None
    assert cfg.redis_password.get_secret_value() == PASSWORD
    for text in (repr(cfg), str(cfg), cfg.model_dump_json(), str(cfg.model_dump())):
        assert PASSWORD not in text


# ------------------------------------------------------------------ templates


def test_kafka_server_properties(config: ServicesConfig) -> None:
    kafka = KafkaService(config)
    props = properties(render_template("kafka-server.properties", kafka.template_values(2)))
    assert props["node.id"] == "2"
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19093,CONTROLLER://127.0.0.1:19193"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19093"
    assert props["controller.quorum.voters"] == (
        "1@127.0.0.1:19192,2@127.0.0.1:19193,3@127.0.0.1:19194"
    )
    assert props["log.dirs"] == str(config.base_dir / "kafka" / "node-2" / "data")
    assert {
        "default.replication.factor": "3",
        "min.insync.replicas": "2",
        "offsets.topic.replication.factor": "3",
        "transaction.state.log.replication.factor": "3",
        "transaction.state.log.min.isr": "2",
        "unclean.leader.election.enable": "false",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
    }.items() <= props.items()


def test_kafka_log4j2_is_properties_with_absolute_log_file(config: ServicesConfig) -> None:
    kafka = KafkaService(config)
    props = properties(render_template("kafka-log4j2.properties", kafka.template_values(3)))
    assert props["appender.server.fileName"] == str(kafka.logs_dir / "kafka-3.log")
    assert props["rootLogger.level"] == "INFO"


def test_kafka_command_line(config: ServicesConfig) -> None:
    kafka = KafkaService(config)
    cmd = kafka.command(kafka.instances()[0])
    assert "-Xmx512m" in cmd
    assert cmd[-2:] == ["kafka.Kafka", str(kafka.config_file(1))]
    assert f"-Dlog4j2.configurationFile={kafka.log4j_file(1).as_uri()}" in cmd


def test_cassandra_yaml(config: ServicesConfig) -> None:
    cassandra = CassandraService(config)
    doc = yaml.safe_load(render_template("cassandra.yaml", cassandra.template_values()))
    assert doc["listen_address"] == doc["rpc_address"] == "127.0.0.1"
    assert doc["native_transport_port"] == 19042
    assert doc["storage_port"] == 17000
    assert doc["num_tokens"] == 1 and doc["auto_bootstrap"] is False
    assert doc["initial_token"] == 0
    assert doc["commitlog_sync"] == "periodic" and doc["commitlog_sync_period"] == "10000ms"
    seeds = doc["seed_provider"][0]["parameters"][0]["seeds"]
    assert seeds == "127.0.0.1:17000"
    base = config.base_dir / "cassandra"
    assert doc["data_file_directories"] == [str(base / "data")]
    for key, sub in [
        ("commitlog_directory", "commitlog"),
        ("hints_directory", "hints"),
        ("saved_caches_directory", "saved_caches"),
        ("cdc_raw_directory", "cdc_raw"),
    ]:
        assert doc[key] == str(base / sub)


def test_cassandra_logback_renders(config: ServicesConfig) -> None:
    cassandra = CassandraService(config)
    xml = render_template("cassandra-logback.xml", cassandra.template_values())
    assert f"<file>{cassandra.logs_dir}/system.log</file>" in xml
    assert "$" not in xml


def test_cassandra_jdk17_flags() -> None:
    assert "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED" in JDK17_MODULE_FLAGS
    assert "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED" in JDK17_MODULE_FLAGS
    assert len(set(JDK17_MODULE_FLAGS)) == len(JDK17_MODULE_FLAGS)


def test_redis_conf_without_password(config: ServicesConfig) -> None:
    conf = RedisService(config).render_config()
    assert "bind 127.0.0.1\n" in conf
    assert "port 16379\n" in conf
    assert "appendonly no\n" in conf
    assert "requirepass" not in conf.replace("# no requirepass", "")


def test_redis_conf_with_password(config: ServicesConfig) -> None:
    cfg = config.model_copy(update={"redis_password": pydantic.SecretStr('a "b" \\c $d')})
    conf = RedisService(cfg).render_config()
    assert 'requirepass "a \\"b\\" \\\\c $d"' in conf
    assert redis_quote("x") == '"x"'


# ------------------------------------------------------------------ kafka cluster id


def test_cluster_id_format() -> None:
    ids = {new_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    for cid in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cid), cid
        assert not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_cluster_id_is_kept(config: ServicesConfig) -> None:
    kafka = KafkaService(config)
    first = kafka.cluster_id()
    assert kafka.cluster_id() == first
    assert (config.base_dir / "kafka" / "cluster.id").read_text().strip() == first


# ------------------------------------------------------------------ ports and processes


def test_port_in_use_detection(listening_port: int) -> None:
    assert port_in_use("127.0.0.1", listening_port)
    with pytest.raises(ServiceError) as info:
        ensure_ports_free("redis", "127.0.0.1", {listening_port: "client port"})
    message = str(info.value)
    assert f"port {listening_port}" in message and "redis" in message
    assert "already in use" in message


def test_start_refuses_a_taken_port(config: ServicesConfig, listening_port: int) -> None:
    cfg = config.model_copy(update={"redis_port": listening_port})
    with pytest.raises(ServiceError, match=rf"redis: port {listening_port} \(client port\)"):
        ServiceManager(cfg).up(["redis"])
    assert not (cfg.base_dir / "redis" / "redis.pid").exists()


def test_cli_reports_service_error_in_one_line(config: ServicesConfig, listening_port: int) -> None:
    cfg = config.model_copy(update={"redis_port": listening_port})
    result = CliRunner().invoke(services, ["up", "redis"], obj=cfg)
    assert result.exit_code == 1
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1 and f"port {listening_port}" in error_lines[0]


def test_pid_files(tmp_path: Path) -> None:
    path = tmp_path / "x.pid"
    record = write_pid_file(path, os.getpid(), "me")
    assert read_pid_file(path) == record
    assert live_pid(path) == os.getpid()
    stale = json.dumps({"pid": os.getpid(), "create_time": 1.0, "name": "me"})
    path.write_text(stale)
    assert live_pid(path) is None  # same pid, other start time: a recycled pid, not ours
    assert not path.exists()
    path.write_text("garbage")
    assert read_pid_file(path) is None


def test_wait_until() -> None:
    calls = iter([False, False, True])
    assert wait_until(lambda: next(calls), timeout=5, what="x", interval=0.01) < 1
    t0 = time.monotonic()
    with pytest.raises(ServiceError, match="slow: not ready after"):
        wait_until(lambda: False, timeout=0.2, what="slow", interval=0.05)
    assert time.monotonic() - t0 < 1
    with pytest.raises(ServiceError, match="dead: it died"):
        wait_until(lambda: False, timeout=5, what="dead", abort=lambda: "it died")


# ------------------------------------------------------------------ jars, manager, CLI


def test_jar_lookup(tmp_path: Path) -> None:
    (tmp_path / "kafka_2.13-4.4.0.jar").write_bytes(b"")
    (tmp_path / "kafka-clients-4.4.0.jar").write_bytes(b"")
    (tmp_path / "jamm-0.4.0.jar").write_bytes(b"")
    assert jars.jar_version(tmp_path, "kafka_2.13") == "4.4.0"
    assert jars.find_jar(tmp_path, "jamm").name == "jamm-0.4.0.jar"
    with pytest.raises(ServiceError):
        jars.find_jar(tmp_path, "cassandra-all")
    assert not jars.is_resolved("kafka", tmp_path)
    for kind in jars.KINDS:
        pom = jars.pom_text(kind)
        assert "<packaging>pom</packaging>" in pom
    assert "<artifactId>slf4j-api</artifactId>" not in jars.pom_text("kafka")


def test_manager_rejects_unknown_names(config: ServicesConfig) -> None:
    manager = ServiceManager(config)
    assert manager.select(["redis", "KAFKA"]) == ["kafka", "redis"]
    with pytest.raises(ServiceError, match="unknown service"):
        manager.select(["zookeeper"])


def test_status_of_nothing_started(config: ServicesConfig) -> None:
    statuses = ServiceManager(config).status()
    assert [(st.name, st.state, st.pids) for st in statuses] == [
        ("kafka", "stopped", []),
        ("cassandra", "stopped", []),
        ("redis", "stopped", []),
    ]
    result = CliRunner().invoke(services, ["status", "--json"], obj=config)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [d["name"] for d in data] == ["kafka", "cassandra", "redis"]
    assert data[2]["ports"] == [16379]


def test_format_table() -> None:
    table = format_table(
        [ServiceStatus("redis", "running", [42], [6379], "/d/redis", "/d/redis/redis.log")]
    )
    header, row = table.splitlines()
    assert header.split() == ["SERVICE", "STATE", "PORTS", "PIDS", "DATA", "DIR"]
    assert row.split() == ["redis", "running", "6379", "42", "/d/redis"]


def test_cli_help() -> None:
    runner = CliRunner()
    for args in (["--help"], ["up", "--help"], ["down", "--help"], ["status", "--help"]):
        result = runner.invoke(services, args)
        assert result.exit_code == 0
        assert "Usage:" in result.output
    assert "Java 17 and Maven" in runner.invoke(services, ["--help"]).output


def test_cli_keeps_multiline_details_in_a_file(config: ServicesConfig) -> None:
    def fail() -> None:
        raise ServiceError("kafka: it broke (see x.log)\n--- last lines:\nstack trace")

    with pytest.raises(SystemExit) as info:
        run_reporting_errors(config, fail)
    assert info.value.code == 1
    details = config.base_dir / "last-error.log"
    assert "stack trace" in details.read_text()
