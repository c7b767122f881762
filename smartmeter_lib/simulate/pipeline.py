"""Run a simulated fleet through the embedded pipeline (memory bus, processor, embedded stores).

The producer sends every message of one second of event time per step. With ``speedup=1`` event
time keeps pace with the wall clock; ``speedup=S`` plays S seconds per wall second; ``speedup=0``
runs as fast as possible. Event time always advances one second per step, so it stays
consistent whatever the pace.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from smartmeter_lib.adapters import open_history, open_live
from smartmeter_lib.adapters.base import Bus
from smartmeter_lib.codec import encode_batch
from smartmeter_lib.config import Settings
from smartmeter_lib.errors import ConfigError
from smartmeter_lib.model import Kind, MeterInfo
from smartmeter_lib.simulate.producer import Source
from smartmeter_lib.stream.inprocess import ProcessorThread, memory_bus
from smartmeter_lib.stream.runner import Processor, ProcessorStats

log = logging.getLogger(__name__)
FUTURE_SLACK_S = 300  # the processor refuses readings more than 5 minutes ahead of now
MAX_BACKLOG = 1_000_000  # messages produced but not yet consumed


class MeterSource(Source, Protocol):
    """A fleet with its meter registry (``Fleet`` and ``HouseholdFleet`` both fit)."""

    meters: MeterInfo


@dataclass
class RunStats:
    seconds: int = 0
    messages: int = 0
    readings: int = 0
    events: int = 0
    behind_s: float = 0.0
    wall_s: float = 0.0
    processor: ProcessorStats | None = None
    kinds: dict[str, int] = field(default_factory=dict)


def _lead_s(duration_s: int, speedup: float) -> float:
    """How far event time gets ahead of the start's wall time by the end of a run."""
    if speedup == 0:
        return float(duration_s)
    if speedup <= 1:
        return 0.0
    return duration_s * (1.0 - 1.0 / speedup)


def default_start(duration_s: int, speedup: float, now: float | None = None) -> int:
    """The latest start whose readings are never ahead of the wall clock: now for real time
    (or slower), earlier for faster runs."""
    now_s = time.time() if now is None else now
    return int(now_s - _lead_s(duration_s, speedup))


def check_start(start_s: int, duration_s: int, speedup: float, now: float | None = None) -> None:
    """ConfigError if the run would send readings from the future (the processor refuses
    readings more than 5 minutes ahead of its clock)."""
    now_s = time.time() if now is None else now
    if start_s + _lead_s(duration_s, speedup) > now_s + FUTURE_SLACK_S:
        raise ConfigError(
            "the run would send readings from the future, which the processor refuses: start "
            "earlier (--start), shorten --duration or lower --speedup")


def wait_for_room(sent: int, consumed: Callable[[], int] | None, stop: threading.Event,
                  max_backlog: int = MAX_BACKLOG) -> None:
    """Back-pressure: wait while more than ``max_backlog`` of the ``sent`` messages await the
    consumer (the memory bus keeps a bounded log per partition)."""
    while consumed is not None and sent - consumed() > max_backlog and not stop.is_set():
        stop.wait(0.02)


def produce(fleet: MeterSource, bus: Bus, topic: str, start_s: int, duration_s: int,
            speedup: float = 1.0, stop: threading.Event | None = None,
            stats: RunStats | None = None,
            consumed: Callable[[], int] | None = None) -> RunStats:
    """Send ``duration_s`` seconds of the fleet's messages, paced by ``speedup``;
    ``consumed()`` (messages processed so far) holds the producer back when it runs ahead."""
    if speedup < 0:
        raise ConfigError(f"--speedup must be >= 0 (0 = as fast as possible), got {speedup:g}")
    stop = stop or threading.Event()
    stats = stats or RunStats()
    wall0 = time.monotonic()
    for k in range(int(duration_s)):
        if stop.is_set():
            break
        if speedup > 0:
            delay = wall0 + k / speedup - time.monotonic()
            if delay > 0 and stop.wait(delay):
                break
        wait_for_room(stats.messages, consumed, stop)
        batch = fleet.readings(start_s + k)
        keys, values = encode_batch(batch)
        bus.produce_batch(topic, keys, values)
        stats.seconds = k + 1
        stats.messages += len(batch)
        events = int((batch.kind != Kind.READING).sum())
        stats.events += events
        stats.readings += len(batch) - events
    bus.flush()
    if speedup > 0:
        stats.behind_s = max(0.0, time.monotonic() - (wall0 + stats.seconds / speedup))
    return stats


def run_simulation(settings: Settings, fleet: MeterSource, start_s: int, duration_s: int,
                   speedup: float = 1.0, stop: threading.Event | None = None) -> RunStats:
    """Fleet → memory bus → processor → embedded history and live store, in this process.
    Returns when every produced message has been processed (or ``stop`` is set)."""
    stop = stop or threading.Event()
    t0 = time.monotonic()
    history = open_history(settings)
    live = open_live(settings)
    live.clear()
    bus = memory_bus(settings)
    stats = RunStats()
    try:
        history.register_meters(fleet.meters)
        proc = Processor(settings, bus, history, live, meters=fleet.meters)
        worker = ProcessorThread(proc, "sim-processor", on_error=stop).start()
        last = time.monotonic()
        try:
            gen = threading.Thread(target=produce, name="sim-producer", daemon=True, args=(
                fleet, bus, settings.topic_readings, start_s, duration_s, speedup, stop, stats,
                lambda: proc.stats.messages_in))
            gen.start()
            while gen.is_alive():
                gen.join(timeout=1.0)
                if time.monotonic() - last >= 10:
                    last = time.monotonic()
                    log.info("simulate: %d s of event time sent, %d messages, %d processed",
                             stats.seconds, stats.messages, proc.stats.messages_in)
        except KeyboardInterrupt:
            log.warning("interrupted: finishing with the messages sent so far")
            stop.set()
            gen.join()
        worker.drain(stats.messages)
        stats.processor = proc.stats
    finally:
        bus.close()
        history.close()
        live.close()
    stats.wall_s = time.monotonic() - t0
    return stats
