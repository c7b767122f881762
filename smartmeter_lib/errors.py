"""The one exception tree of smartmeter.

Every error raised on purpose by the library is a :class:`SmartmeterError`. Subclasses say
which part failed; the message says what was wrong and where (meter, topic, file, line, host),
and, for configuration errors, how to fix it.
"""

from __future__ import annotations


class SmartmeterError(Exception):
    """Base class of every error raised on purpose by smartmeter."""


class ConfigError(SmartmeterError):
    """Bad settings or command-line options. The message says how to fix them."""


class CodecError(SmartmeterError):
    """A message on the wire could not be decoded (malformed, wrong version, out of range)."""


class BackendError(SmartmeterError):
    """A bus, history or live store failed (server unreachable, write refused)."""


class ServiceError(SmartmeterError):
    """A local service (Kafka, Cassandra, Redis) could not be started, checked or stopped."""


class DataError(SmartmeterError):
    """A data file (meter readings, tariff) is not in a format we can read."""


class OpsError(SmartmeterError):
    """A runbook step found the system not as it should be (a missing prerequisite, a host
    that does not answer, a topic or keyspace unlike the one asked for). The message says what
    to do."""


class UnhealthyError(OpsError):
    """The health check found the running pipeline unhealthy (lag, stale live store, ...)."""
