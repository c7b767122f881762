"""A local single-node Apache Cassandra 5.0 (JDK 17), with fast development start-up flags.

Layout under ``<base_dir>/cassandra``: ``conf/`` (cassandra.yaml, logback.xml, rendered at each
start), ``data/``, ``commitlog/``, ``saved_caches/``, ``hints/``, ``cdc_raw/``,
``logs/system.log`` (the node's log), ``logs/cassandra.out`` (console) and ``cassandra.pid``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from smartmeter_lib.errors import ServiceError
from smartmeter_lib.services import jars
from smartmeter_lib.services.base import port_open, render_template, write_text
from smartmeter_lib.services.process import Instance, ProcessService

log = logging.getLogger(__name__)

# The module exports and opens Cassandra 5.0 needs on JDK 17 (its conf/jvm17-server.options).
JDK17_MODULE_FLAGS: tuple[str, ...] = tuple(
    f"--add-exports={entry}=ALL-UNNAMED"
    for entry in (
        "java.base/jdk.internal.misc",
        "java.base/java.lang.ref",
        "java.management.rmi/com.sun.jmx.remote.internal.rmi",
        "java.rmi/sun.rmi.registry",
        "java.rmi/sun.rmi.server",
        "java.sql/java.sql",
        "jdk.unsupported/sun.misc",
        "jdk.compiler/com.sun.tools.javac.file",
        "jdk.attach/sun.tools.attach",
    )
) + tuple(
    f"--add-opens={entry}=ALL-UNNAMED"
    for entry in (
        "java.base/java.lang",
        "java.base/java.lang.module",
        "java.base/java.lang.reflect",
        "java.base/java.io",
        "java.base/java.util",
        "java.base/jdk.internal.loader",
        "java.base/jdk.internal.ref",
        "java.base/jdk.internal.reflect",
        "java.base/jdk.internal.math",
        "java.base/jdk.internal.module",
        "java.base/jdk.internal.util.jar",
        "java.base/sun.nio.ch",
        "jdk.management/com.sun.management.internal",
        "jdk.compiler/com.sun.tools.javac",
    )
)

# Skip the waits a multi-node cluster needs: one node, no bootstrap, no gossip to settle.
FAST_START_FLAGS: tuple[str, ...] = (
    "-Dcassandra.skip_wait_for_gossip_to_settle=0",
    "-Dcassandra.ring_delay_ms=1000",
    "-Dcassandra.superuser_setup_delay_ms=0",
)


class CassandraService(ProcessService):
    """One Cassandra JVM; ready when ``SELECT release_version FROM system.local`` answers."""

    name = "cassandra"

    @property
    def conf_dir(self) -> Path:
        return self.service_dir / "conf"

    @property
    def logs_dir(self) -> Path:
        return self.service_dir / "logs"

    def instances(self) -> list[Instance]:
        cfg = self.config
        return [
            Instance(
                key="cassandra",
                pid_file=self.service_dir / "cassandra.pid",
                console_log=self.logs_dir / "cassandra.out",
                main_log=self.logs_dir / "system.log",
                ports={
                    cfg.cassandra_port: "CQL native transport",
                    cfg.cassandra_storage_port: "storage (internode)",
                },
            )
        ]

    def template_values(self) -> dict[str, object]:
        cfg = self.config
        return {
            "host": cfg.host,
            "native_port": cfg.cassandra_port,
            "storage_port": cfg.cassandra_storage_port,
            "data_dir": self.service_dir,
            "log_dir": self.logs_dir,
        }

    def prepare(self, todo: list[Instance]) -> None:
        jars.resolve("cassandra", self.config.jar_cache_dir)
        values = self.template_values()
        for sub in ("data", "commitlog", "saved_caches", "hints", "cdc_raw", "logs", "triggers"):
            (self.service_dir / sub).mkdir(parents=True, exist_ok=True)
        write_text(self.conf_dir / "cassandra.yaml", render_template("cassandra.yaml", values))
        write_text(self.conf_dir / "logback.xml", render_template("cassandra-logback.xml", values))

    def command(self, instance: Instance) -> list[str]:
        lib = jars.lib_dir("cassandra", self.config.jar_cache_dir)
        heap = self.config.cassandra_heap_mb
        return [
            jars.java_executable(),
            f"-Xms{min(heap, 256)}m",
            f"-Xmx{heap}m",
            "-Xss256k",
            "-XX:+UseG1GC",
            "-XX:+ParallelRefProcEnabled",
            "-XX:MaxTenuringThreshold=1",
            "-XX:MaxGCPauseMillis=300",
            "-XX:+ExitOnOutOfMemoryError",
            "-XX:+PerfDisableSharedMem",
            "-Djava.net.preferIPv4Stack=true",
            "-Djdk.attach.allowAttachSelf=true",
            "-Dio.netty.tryReflectionSetAccessible=true",
            "-Dio.netty.allocator.useCacheForAllThreads=true",
            "-Dio.netty.allocator.maxOrder=11",
            *JDK17_MODULE_FLAGS,
            f"-javaagent:{jars.find_jar(lib, 'jamm')}",
            f"-Dcassandra.config={(self.conf_dir / 'cassandra.yaml').as_uri()}",
            f"-Dlogback.configurationFile={(self.conf_dir / 'logback.xml').as_uri()}",
            "-Dcassandra-foreground=yes",
            f"-Dcassandra.storagedir={self.service_dir}",
            f"-Dcassandra.logdir={self.logs_dir}",
            f"-Dcassandra.triggers_dir={self.service_dir / 'triggers'}",
            *FAST_START_FLAGS,
            "-Dsmartmeter.service=cassandra",
            "-cp",
            f"{lib}/*",
            "org.apache.cassandra.service.CassandraDaemon",
        ]

    def version(self) -> str | None:
        """The Cassandra version in the jar cache, or None before resolution."""
        try:
            return jars.jar_version(
                jars.lib_dir("cassandra", self.config.jar_cache_dir), "cassandra-all"
            )
        except ServiceError:
            return None

    def release_version(self, timeout: float = 5.0) -> str | None:
        """``release_version`` from ``system.local``, or None when CQL does not answer."""
        cfg = self.config
        if not port_open(cfg.host, cfg.cassandra_port):
            return None
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import WhiteListRoundRobinPolicy

        profile = ExecutionProfile(
            load_balancing_policy=WhiteListRoundRobinPolicy([cfg.host]), request_timeout=timeout
        )
        cluster = Cluster(
            [cfg.host],
            port=cfg.cassandra_port,
            protocol_version=5,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            connect_timeout=timeout,
            control_connection_timeout=timeout,
        )
        try:
            session = cluster.connect()
            row = session.execute("SELECT release_version FROM system.local").one()
            return str(row[0]) if row else None
        except Exception:  # the driver raises many kinds while the node starts
            return None
        finally:
            cluster.shutdown()

    def is_ready(self) -> bool:
        return self.release_version() is not None
