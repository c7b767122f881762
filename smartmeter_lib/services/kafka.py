"""A local 3-node Apache Kafka 4.x cluster in KRaft mode (combined broker + controller nodes).

Node ``n`` (1..3) listens on ``kafka_ports[n-1]`` (PLAINTEXT) and
``kafka_controller_ports[n-1]`` (CONTROLLER); the quorum is the static
``controller.quorum.voters`` list. Layout under ``<base_dir>/kafka``::

    cluster.id            the cluster id every node was formatted with
    node-<n>/config/      server.properties, log4j2.properties (rendered at each start)
    node-<n>/data/        log.dirs (formatted once with kafka.tools.StorageTool)
    logs/kafka-<n>.log    the broker log; logs/kafka-<n>.out its console output
    kafka-<n>.pid         pid file
"""

from __future__ import annotations

import base64
import logging
import subprocess
import uuid
from pathlib import Path
from typing import Any

from smartmeter_lib.errors import ServiceError
from smartmeter_lib.services import jars
from smartmeter_lib.services.base import port_open, render_template, write_text
from smartmeter_lib.services.process import Instance, ProcessService

log = logging.getLogger(__name__)

NODE_IDS = (1, 2, 3)


def new_cluster_id() -> str:
    """A random KRaft cluster id: 22-char url-safe base64 of a UUID, never starting with '-'."""
    while True:
        raw = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not raw.startswith("-"):
            return raw


def _read_meta_cluster_id(meta: Path) -> str | None:
    try:
        for line in meta.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "cluster.id" and value.strip():
                return value.strip()
    except OSError:
        return None
    return None


class KafkaService(ProcessService):
    """Three Kafka JVMs forming one KRaft cluster; ready when an AdminClient sees 3 brokers
    and a consumer group's coordinator answers."""

    name = "kafka"

    def node_dir(self, node_id: int) -> Path:
        return self.service_dir / f"node-{node_id}"

    def config_file(self, node_id: int) -> Path:
        return self.node_dir(node_id) / "config" / "server.properties"

    def log4j_file(self, node_id: int) -> Path:
        return self.node_dir(node_id) / "config" / "log4j2.properties"

    def data_dir(self, node_id: int) -> Path:
        return self.node_dir(node_id) / "data"

    @property
    def logs_dir(self) -> Path:
        return self.service_dir / "logs"

    def instances(self) -> list[Instance]:
        cfg = self.config
        result = []
        for node_id in NODE_IDS:
            broker = cfg.kafka_ports[node_id - 1]
            controller = cfg.kafka_controller_ports[node_id - 1]
            result.append(
                Instance(
                    key=f"kafka-{node_id}",
                    pid_file=self.service_dir / f"kafka-{node_id}.pid",
                    console_log=self.logs_dir / f"kafka-{node_id}.out",
                    main_log=self.logs_dir / f"kafka-{node_id}.log",
                    ports={broker: f"broker {node_id}", controller: f"controller {node_id}"},
                )
            )
        return result

    def ports(self) -> list[int]:
        """Broker ports first, then controller ports."""
        return [*self.config.kafka_ports, *self.config.kafka_controller_ports]

    @staticmethod
    def node_id_of(instance: Instance) -> int:
        return int(instance.key.rsplit("-", 1)[1])

    # ---------------------------------------------------------------- files

    def cluster_id(self) -> str:
        """The id of this cluster: kept in ``cluster.id``, made on first use."""
        path = self.service_dir / "cluster.id"
        try:
            existing = path.read_text(encoding="utf-8").strip()
        except OSError:
            existing = ""
        if not existing:
            for node_id in NODE_IDS:
                found = _read_meta_cluster_id(self.data_dir(node_id) / "meta.properties")
                if found:
                    existing = found
                    break
        if not existing:
            existing = new_cluster_id()
        write_text(path, existing + "\n")
        return existing

    def template_values(self, node_id: int) -> dict[str, object]:
        cfg = self.config
        return {
            "node_id": node_id,
            "host": cfg.host,
            "broker_port": cfg.kafka_ports[node_id - 1],
            "controller_port": cfg.kafka_controller_ports[node_id - 1],
            "quorum_voters": cfg.kafka_quorum_voters,
            "data_dir": self.data_dir(node_id),
            "log_dir": self.logs_dir,
        }

    def render_configs(self, node_id: int) -> None:
        values = self.template_values(node_id)
        write_text(self.config_file(node_id), render_template("kafka-server.properties", values))
        write_text(self.log4j_file(node_id), render_template("kafka-log4j2.properties", values))

    def prepare(self, todo: list[Instance]) -> None:
        lib = jars.resolve("kafka", self.config.jar_cache_dir)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        node_ids = [self.node_id_of(inst) for inst in todo]
        for node_id in node_ids:
            self.render_configs(node_id)
        unformatted = [n for n in node_ids if not (self.data_dir(n) / "meta.properties").exists()]
        if unformatted:
            self.format_storage(lib, unformatted)

    def format_storage(self, lib: Path, node_ids: list[int]) -> None:
        """Format the log dirs of ``node_ids`` with the cluster id (all at once, in parallel)."""
        cluster_id = self.cluster_id()
        procs = {}
        for node_id in node_ids:
            self.data_dir(node_id).mkdir(parents=True, exist_ok=True)
            cmd = [
                *self.java_prefix(lib, node_id, heap_mb=256),
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self.config_file(node_id)),
                "--ignore-formatted",
            ]
            procs[node_id] = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=self.service_dir,
            )
        failures = []
        for node_id, proc in procs.items():
            try:
                out, _ = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            if proc.returncode != 0:
                failures.append(f"node {node_id} (exit {proc.returncode}):\n{out.strip()[-2000:]}")
        if failures:
            raise ServiceError("kafka: formatting the storage failed: " + "\n".join(failures))
        log.info("kafka: formatted nodes %s with cluster id %s", node_ids, cluster_id)

    # ---------------------------------------------------------------- processes

    def java_prefix(self, lib: Path, node_id: int, heap_mb: int) -> list[str]:
        return [
            jars.java_executable(),
            f"-Xms{min(heap_mb, 256)}m",
            f"-Xmx{heap_mb}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent",
            "-Djava.awt.headless=true",
            f"-Dsmartmeter.service=kafka-{node_id}",
            f"-Dkafka.logs.dir={self.logs_dir}",
            f"-Dlog4j2.configurationFile={self.log4j_file(node_id).as_uri()}",
            "-cp",
            f"{lib}/*",
        ]

    def command(self, instance: Instance) -> list[str]:
        lib = jars.lib_dir("kafka", self.config.jar_cache_dir)
        node_id = self.node_id_of(instance)
        return [
            *self.java_prefix(lib, node_id, heap_mb=self.config.kafka_heap_mb),
            "kafka.Kafka",
            str(self.config_file(node_id)),
        ]

    def version(self) -> str | None:
        """The Kafka version in the jar cache, or None before resolution."""
        lib = jars.lib_dir("kafka", self.config.jar_cache_dir)
        try:
            return jars.jar_version(lib, "kafka_2.13")
        except ServiceError:
            return None

    # ---------------------------------------------------------------- readiness

    def broker_count(self, timeout: float = 3.0) -> int:
        """How many brokers an AdminClient sees in the cluster metadata (0 when unreachable)."""
        cfg = self.config
        if not any(port_open(cfg.host, port) for port in cfg.kafka_ports):
            return 0
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        conf: dict[str, Any] = {
            "bootstrap.servers": cfg.kafka_bootstrap,
            "socket.timeout.ms": int(timeout * 1000),
            "log_level": 0,
            "error_cb": lambda _err: None,
        }
        admin = AdminClient(conf)
        try:
            return len(admin.list_topics(timeout=timeout).brokers)
        except KafkaException:
            return 0

    def coordinator_ready(self, timeout: float = 5.0) -> bool:
        """Whether a consumer group's coordinator answers. On a fresh cluster the first group
        request creates ``__consumer_offsets``; until its leaders are elected, group requests
        fail with NOT_COORDINATOR, so a cluster that lists its brokers is not yet usable."""
        from confluent_kafka import Consumer, KafkaException, TopicPartition

        c = Consumer({"bootstrap.servers": self.config.kafka_bootstrap,
                      "group.id": "smartmeter-readiness", "log_level": 0,
                      "error_cb": lambda _err: None})
        try:
            c.committed([TopicPartition("smartmeter-readiness", 0)], timeout=timeout)
            return True
        except KafkaException:
            return False
        finally:
            c.close()

    def is_ready(self) -> bool:
        return self.broker_count() == len(NODE_IDS) and self.coordinator_ready()
