"""The Kafka bus (confluent-kafka): keyed messages, acks=all, idempotent producers, consumer
groups with manual commits.

Security settings (SASL/TLS) pass through from the settings; the SASL password is a secret
and never logged.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from smartmeter_lib.adapters.base import Message
from smartmeter_lib.config import Settings
from smartmeter_lib.errors import BackendError

log = logging.getLogger(__name__)


def client_config(settings: Settings) -> dict[str, Any]:
    """Connection and security settings shared by producers, consumers and the admin."""
    conf: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "security.protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_sasl_mechanism:
        conf["sasl.mechanism"] = settings.kafka_sasl_mechanism
    if settings.kafka_sasl_username:
        conf["sasl.username"] = settings.kafka_sasl_username
    if settings.kafka_sasl_password is not None:
        conf["sasl.password"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        for key, path in (("ssl.ca.location", settings.kafka_ssl_ca_location),
                          ("ssl.certificate.location", settings.kafka_ssl_certificate_location),
                          ("ssl.key.location", settings.kafka_ssl_key_location)):
            if path is not None:
                conf[key] = str(path)
        if settings.kafka_ssl_key_password is not None:
            conf["ssl.key.password"] = settings.kafka_ssl_key_password.get_secret_value()
        conf["ssl.endpoint.identification.algorithm"] = (
            "https" if settings.kafka_ssl_check_hostname else "none")
    return conf


_SECRET_KEYS = ("sasl.password", "ssl.key.password")


def redacted(conf: dict[str, Any]) -> dict[str, Any]:
    """``conf`` with its secrets masked, for logs and error messages."""
    return {k: ("***" if k in _SECRET_KEYS else v) for k, v in conf.items()}


class KafkaBus:
    """An implementation of :class:`smartmeter_lib.adapters.base.Bus` on Apache Kafka."""

    def __init__(self, settings: Settings, client_id: str = "smartmeter") -> None:
        self.settings = settings
        self._conf = client_config(settings)
        self._producer: Producer | None = None
        self._client_id = client_id
        self._errors: list[str] = []
        self._admin: AdminClient | None = None
        # consumers still open when the bus closes are closed with it: a librdkafka consumer
        # left to the garbage collector leaves its group inside a destructor that holds up
        # whatever thread happens to free it
        self._consumers: weakref.WeakSet[KafkaConsumer] = weakref.WeakSet()

    # -- admin ---------------------------------------------------------------------------
    def admin(self) -> AdminClient:
        """The admin client (kept: its futures fail if it is garbage collected)."""
        if self._admin is None:
            self._admin = AdminClient({**self._conf, "client.id": self._client_id + "-admin"})
        return self._admin

    def create_topic(self, name: str, partitions: int = 6, replication: int = 1,
                     config: dict[str, str] | None = None) -> None:
        last = ""
        for attempt in range(1, ADMIN_ATTEMPTS + 1):
            futures = self.admin().create_topics(
                [NewTopic(name, num_partitions=partitions, replication_factor=replication,
                          config=config or {})], request_timeout=30)
            try:
                futures[name].result(timeout=60)
                log.info("created topic %s (%d partitions, RF %d)", name, partitions,
                         replication)
                return
            except KafkaException as err:
                kerr = err.args[0]
                if kerr.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    return  # also when an earlier attempt's reply was lost on the way back
                if kerr.code() not in _ADMIN_RETRY_CODES:
                    raise BackendError(f"cannot create topic {name!r} on "
                                       f"{self.settings.kafka_bootstrap}: {kerr.str()}") from err
                last = kerr.str()
            except FutureTimeout:
                last = "no reply within 60 s"
            # e.g. the bootstrap connection the request went out on was replaced once the
            # client learnt the brokers (_DESTROY_BROKER), or a fresh cluster is still electing
            # its controller: send it again on a new admin client
            log.warning("creating topic %s: %s (attempt %d of %d)", name, last, attempt,
                        ADMIN_ATTEMPTS)
            self._admin = None
        raise BackendError(f"cannot create topic {name!r} on {self.settings.kafka_bootstrap} "
                           f"after {ADMIN_ATTEMPTS} attempts: {last}")

    def delete_topic(self, name: str) -> None:
        try:
            self.admin().delete_topics([name], request_timeout=30)[name].result(timeout=60)
        except KafkaException as err:
            raise BackendError(f"cannot delete topic {name!r}: {err.args[0].str()}") from err

    # -- produce -------------------------------------------------------------------------
    def _get_producer(self) -> Producer:
        if self._producer is None:
            self._producer = Producer({
                **self._conf, "client.id": self._client_id,
                "acks": "all", "enable.idempotence": True,
                # a Python callback per delivered message costs as much as producing it:
                # report failures only (they still raise, see _raise_delivery_errors)
                "delivery.report.only.error": True,
                "partitioner": "murmur2_random",  # the Java clients' partitioner
                "linger.ms": 20, "batch.num.messages": 10000,
                "compression.type": "lz4",
                "queue.buffering.max.messages": 1_000_000,
                "queue.buffering.max.kbytes": 1_048_576,
            })
        return self._producer

    def _on_delivery(self, err: KafkaError | None, msg: Any) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err.str()}")

    def produce(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.produce_batch(topic, [key], [value])

    def produce_batch(self, topic: str, keys: Sequence[bytes | None],
                      values: Sequence[bytes]) -> None:
        p = self._get_producer()
        cb = self._on_delivery
        for k, v in zip(keys, values, strict=True):
            while True:
                try:
                    p.produce(topic, v, k, on_delivery=cb)
                    break
                except BufferError:  # the local queue is full: wait for deliveries
                    p.poll(0.1)
        p.poll(0)
        self._raise_delivery_errors()

    def flush(self, timeout_s: float = 30.0) -> int:
        if self._producer is None:
            return 0
        left = int(self._producer.flush(timeout_s))
        self._raise_delivery_errors()
        return left

    def _raise_delivery_errors(self) -> None:
        if self._errors:
            errs, self._errors = self._errors, []
            raise BackendError(f"{len(errs)} messages were not delivered; first: {errs[0]}")

    # -- consume -------------------------------------------------------------------------
    def consumer(self, topics: Sequence[str], group_id: str,
                 from_beginning: bool = True) -> KafkaConsumer:
        c = KafkaConsumer(self._conf, list(topics), group_id, from_beginning)
        self._consumers.add(c)
        return c

    def close(self) -> None:
        for c in list(self._consumers):
            c.close()
        if self._producer is not None:
            left = self._producer.flush(30)
            if left:
                log.error("closing the Kafka producer with %d messages undelivered", left)
            self._producer = None


_REBALANCE_CODES = {
    KafkaError.ILLEGAL_GENERATION, KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.UNKNOWN_MEMBER_ID, KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError._ASSIGNMENT_LOST, KafkaError._STATE,
}


ADMIN_ATTEMPTS = 4
_ADMIN_RETRY_CODES = {KafkaError._DESTROY_BROKER, KafkaError._TRANSPORT, KafkaError._TIMED_OUT,
                      KafkaError.REQUEST_TIMED_OUT, KafkaError.NOT_CONTROLLER,
                      KafkaError._ALL_BROKERS_DOWN}
_TRANSIENT_CODES = {
    KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT,
    KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError._MSG_TIMED_OUT, KafkaError.REQUEST_TIMED_OUT,
}


class KafkaConsumer:
    """A consumer-group member; offsets are committed only by :meth:`commit`."""

    def __init__(self, conf: dict[str, Any], topics: list[str], group_id: str,
                 from_beginning: bool) -> None:
        self.topics = topics
        self.group_id = group_id
        self._c = Consumer({
            **conf, "group.id": group_id, "enable.auto.commit": False,
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            "enable.partition.eof": False, "fetch.min.bytes": 1,
            "partition.assignment.strategy": "cooperative-sticky",
        })
        self._c.subscribe(topics)
        self._dirty = False
        self._closed = False
        self._committed: dict[tuple[str, int], int] = {}

    def poll_batch(self, max_messages: int, timeout_s: float) -> list[Message]:
        if self._closed:
            raise BackendError(f"consumer of group {self.group_id!r} is closed")
        msgs = self._c.consume(num_messages=max_messages, timeout=timeout_s)
        out: list[Message] = []
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                if err.retriable() or err.code() in _TRANSIENT_CODES:
                    # a broker went away or leadership moved: the client fails over by itself
                    log.warning("consuming %s [%s] for group %r: %s (transient; retrying)",
                                m.topic(), m.partition(), self.group_id, err.str())
                    continue
                raise BackendError(f"consuming {m.topic()} [{m.partition()}] for group "
                                   f"{self.group_id!r}: {err.str()}")
            out.append(Message(m.topic(), m.partition(), m.offset(), m.key(), m.value()))
        if out:
            self._dirty = True
        return out

    def commit(self, offsets: dict[tuple[str, int], int] | None = None) -> None:
        if offsets is not None:  # only what moved since the last commit
            offsets = {tp: o for tp, o in offsets.items() if self._committed.get(tp) != o}
            if not offsets:
                return
        elif not self._dirty:
            return
        try:
            if offsets is None:
                self._c.commit(asynchronous=False)
            elif offsets:
                self._c.commit(offsets=[TopicPartition(t, p, off)
                                        for (t, p), off in sorted(offsets.items())],
                               asynchronous=False)
        except KafkaException as err:
            code = err.args[0].code()
            if code == KafkaError._NO_OFFSET:
                return
            if code in _REBALANCE_CODES or err.args[0].retriable():
                # the group is rebalancing (a broker or a member came or went): these
                # offsets stay uncommitted, so the partition's next owner reads the messages
                # again and the idempotent sinks absorb them; nothing is lost
                log.warning("commit for group %r skipped during a rebalance: %s",
                            self.group_id, err.args[0].str())
                return
            raise BackendError(f"commit failed for group {self.group_id!r}: "
                               f"{err.args[0].str()}") from err
        if offsets:
            self._committed.update(offsets)
        self._dirty = False

    def assignment(self) -> list[tuple[str, int]]:
        return sorted((tp.topic, tp.partition) for tp in self._c.assignment())

    def close(self) -> None:
        """Leave the group (idempotent)."""
        if not self._closed:
            self._closed = True
            self._c.close()
