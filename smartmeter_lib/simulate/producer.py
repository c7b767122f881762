"""Stream a fleet's readings into a bus, paced in real time or faster (``speedup``)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from smartmeter_lib.adapters.base import Bus
from smartmeter_lib.codec import encode_batch
from smartmeter_lib.model import ReadingBatch

log = logging.getLogger(__name__)


class Source(Protocol):
    """A fleet: ``Fleet``, ``HouseholdFleet`` or a slice of one."""

    n: int

    def readings(self, ts_s: int) -> ReadingBatch: ...


@dataclass
class ProducerStats:
    seconds: int = 0
    messages: int = 0
    behind_s: float = 0.0  # how far behind its schedule the producer ended


def run_fleet_producer(fleet: Source, bus: Bus, topic: str, *, start_s: int | None = None,
                       speedup: float = 1.0, duration_s: float | None = None,
                       stop: threading.Event | None = None,
                       stats: ProducerStats | None = None) -> ProducerStats:
    """Send one reading per home per second of event time until ``duration_s`` of event time
    has been sent or ``stop`` is set. Event time starts at ``start_s`` (default: now) and
    advances one second per ``1/speedup`` seconds of wall time; ``speedup=0`` means as fast
    as possible.
    """
    if speedup < 0:
        raise ValueError(f"speedup must be >= 0, got {speedup}")
    stop = stop or threading.Event()
    stats = stats or ProducerStats()
    t0 = int(time.time()) if start_s is None else int(start_s)
    wall0 = time.monotonic()
    limit = None if duration_s is None else int(duration_s)
    k = 0
    log.info("producer: %d homes into %s from event time %d, speedup %s", fleet.n, topic, t0,
             speedup or "max")
    while not stop.is_set() and (limit is None or k < limit):
        if speedup > 0:
            delay = wall0 + k / speedup - time.monotonic()
            if delay > 0 and stop.wait(delay):
                break
        keys, values = encode_batch(fleet.readings(t0 + k))
        bus.produce_batch(topic, keys, values)
        k += 1
        stats.seconds = k
        stats.messages += len(keys)
    bus.flush()
    if speedup > 0:
        stats.behind_s = max(0.0, time.monotonic() - (wall0 + k / speedup))
    log.info("producer: sent %d messages (%d s of event time)", stats.messages, stats.seconds)
    return stats
