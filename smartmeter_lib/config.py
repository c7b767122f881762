"""Typed settings: one frozen object, read from ``SMARTMETER_*`` environment variables.

Examples::

    SMARTMETER_HOMES=2000 SMARTMETER_DATA_DIR=/tmp/sm smartmeter demo
    SMARTMETER_BUS=kafka SMARTMETER_KAFKA_BOOTSTRAP=127.0.0.1:9092 smartmeter process

Secrets are :class:`pydantic.SecretStr`: they print as ``**********`` and are never logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from smartmeter_lib.errors import ConfigError
from smartmeter_lib.services.config import ServicesConfig

DEFAULT_DATA_DIR = Path(".smartmeter")


class Settings(BaseSettings):
    """All settings of smartmeter. Frozen; build a changed copy with :meth:`with_overrides`."""

    model_config = SettingsConfigDict(
        env_prefix="SMARTMETER_", frozen=True, extra="forbid", env_nested_delimiter="__"
    )

    # where the embedded backends keep their files
    data_dir: Path = Field(
        DEFAULT_DATA_DIR, description="Directory for the embedded history and live store."
    )
    # which backends
    bus: Literal["memory", "kafka"] = Field("memory", description="Message bus backend.")
    history: Literal["embedded", "cassandra"] = Field("embedded", description="History store.")
    live: Literal["embedded", "redis"] = Field("embedded", description="Live store backend.")

    # the fleet
    homes: int = Field(10_000, ge=1, le=1_000_000, description="Number of simulated homes.")
    seed: int = Field(42, description="Random seed of the simulated fleet.")

    # stream processing
    allowed_lateness_s: float = Field(
        5.0, ge=0, le=3600, description="How late (event time) a reading may arrive."
    )
    batch_max: int = Field(50_000, ge=1, description="Largest micro-batch the processor takes.")
    flush_interval_s: float = Field(
        5.0, gt=0, le=600, description="How often a processor writes raw readings to history "
        "and then commits its offsets (longer: fewer, larger history writes; more to re-read "
        "after a crash).")
    max_abs_kw: float = Field(
        100.0, gt=0, le=10_000, description="Readings whose average power is beyond this, in "
        "either direction, are physically impossible and go to the dead-letter topic.")
    sink_retry_initial_s: float = Field(
        0.5, gt=0, le=60, description="First wait before retrying a failed history write.")
    sink_retry_max_s: float = Field(
        10.0, gt=0, le=300, description="Longest wait between retries of a history write.")
    sink_retry_timeout_s: float = Field(
        240.0, gt=0, le=3600, description="A history write still failing after this long "
        "stops the processor (its offsets stay uncommitted, so nothing is lost).")

    # the dashboards
    host: str = Field("127.0.0.1", description="Address Voila binds to.")
    port: int = Field(8866, ge=1, le=65535, description="Port of the dashboards.")
    dashboard_page_timeout_s: float = Field(
        30.0, gt=0, description="A dashboard stops updating after this long without a page "
        "heartbeat (the browser went away).")
    dashboard_cull_s: int = Field(
        60, ge=5, description="Voila shuts down a dashboard kernel idle for this long.")

    # real stack (used by the kafka / cassandra / redis backends)
    kafka_bootstrap: str = Field("127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How the Kafka clients talk to the brokers.")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism (with SASL_PLAINTEXT or SASL_SSL).")
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: Path | None = Field(
        None, description="CA certificate (PEM) that signed the brokers' certificates.")
    kafka_ssl_certificate_location: Path | None = Field(
        None, description="Client certificate (PEM) for mutual TLS.")
    kafka_ssl_key_location: Path | None = Field(None, description="Client private key (PEM).")
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_check_hostname: bool = Field(
        True, description="Check that the broker's certificate names its host.")
    topic_readings: str = Field("fake_iot", description="Topic of meter readings and events.")
    topic_alerts: str = Field("smartmeter_alerts", description="Topic of alerts.")
    topic_dlq: str = Field("smartmeter_dlq", description="Dead-letter topic.")
    cassandra_hosts: str = Field("127.0.0.1")
    cassandra_port: int = Field(9042, ge=1, le=65535)
    cassandra_keyspace: str = Field("smartmeter")
    cassandra_request_timeout_s: float = Field(
        10.0, gt=0, le=300, description="A Cassandra request not answered in this long "
        "fails (and a history write is retried with backoff).")
    cassandra_username: str | None = None
    cassandra_password: SecretStr | None = None
    redis_url: str = Field("redis://127.0.0.1:6379/0")
    redis_username: str | None = Field(
        None, description="Redis ACL user (with redis_password); none: the default user.")
    redis_password: SecretStr | None = None
    redis_prefix: str = Field("sm:", description="Prefix of every Redis key we write.")

    log_level: str = Field("INFO", description="Logging level: DEBUG, INFO, WARNING, ERROR.")

    # the local services that `smartmeter services up` starts (SMARTMETER_SERVICES__BASE_DIR…)
    services: ServicesConfig = Field(default_factory=ServicesConfig)

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        up = v.upper()
        if up not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return up

    @field_validator("cassandra_keyspace")
    @classmethod
    def _keyspace(cls, v: str) -> str:
        if not v.replace("_", "").isalnum() or not v[0].isalpha() or len(v) > 48:
            raise ValueError("must be letters, digits and _ (starting with a letter), ≤48 chars")
        return v

    @model_validator(mode="after")
    def _security(self) -> Settings:
        proto = self.kafka_security_protocol
        if proto.startswith("SASL_"):
            missing = [n for n, v in (("kafka_sasl_mechanism", self.kafka_sasl_mechanism),
                                      ("kafka_sasl_username", self.kafka_sasl_username),
                                      ("kafka_sasl_password", self.kafka_sasl_password))
                       if not v]
            if missing:
                envs = ", ".join(f"SMARTMETER_{m.upper()}" for m in missing)
                raise ValueError(f"kafka_security_protocol {proto} needs {', '.join(missing)}"
                                 f" (set {envs})")
        elif self.kafka_sasl_mechanism or self.kafka_sasl_username:
            raise ValueError(f"SASL settings are set but kafka_security_protocol is {proto}; "
                             "set SMARTMETER_KAFKA_SECURITY_PROTOCOL=SASL_SSL (or "
                             "SASL_PLAINTEXT)")
        for name in ("kafka_ssl_ca_location", "kafka_ssl_certificate_location",
                     "kafka_ssl_key_location"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{name}: no such file {path} "
                                 f"(set SMARTMETER_{name.upper()} to a PEM file)")
        if self.redis_username and self.redis_password is None:
            raise ValueError("redis_username needs redis_password (set SMARTMETER_REDIS_PASSWORD)")
        if self.sink_retry_initial_s > self.sink_retry_max_s:
            raise ValueError("sink_retry_initial_s must not exceed sink_retry_max_s")
        return self

    @property
    def real_stack(self) -> bool:
        return self.bus == "kafka" or self.history == "cassandra" or self.live == "redis"

    def with_backends(self, name: str) -> Settings:
        """``embedded`` (memory bus, embedded stores) or ``real`` (Kafka, Cassandra, Redis)."""
        if name == "embedded":
            return self.with_overrides(bus="memory", history="embedded", live="embedded")
        if name in ("real", "kafka"):
            return self.with_overrides(bus="kafka", history="cassandra", live="redis")
        raise ConfigError(f"unknown backend {name!r}: use 'embedded' or 'real'")

    def with_overrides(self, **changes: Any) -> Settings:
        """A validated copy with some fields changed (``None`` values are ignored)."""
        data = self.model_dump()
        data["services"] = self.services  # keep the secret values (dump masks nothing here)
        data.update({k: v for k, v in changes.items() if v is not None})
        return build_settings(**data)

    @property
    def live_db_path(self) -> Path:
        return self.data_dir / "live.sqlite"

    @property
    def history_dir(self) -> Path:
        return self.data_dir / "history"


def _explain(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"])
        if not loc:  # a check across fields: its message names them and how to fix it
            parts.append(str(e["msg"]).removeprefix("Value error, "))
            continue
        env = f"SMARTMETER_{loc.upper().replace('.', '__')}"
        secret = any(w in loc for w in ("password", "secret", "token"))
        shown = "***" if secret else repr(e.get("input"))
        flag = loc.replace("_", "-")
        parts.append(f"{loc}: {e['msg']} (got {shown}; set --{flag} or {env})")
    return "invalid settings: " + "; ".join(parts)


def build_settings(**overrides: Any) -> Settings:
    """Settings from the environment plus ``overrides``; a :class:`ConfigError` if invalid."""
    try:
        return Settings(**overrides)
    except ValidationError as err:
        raise ConfigError(_explain(err)) from None
