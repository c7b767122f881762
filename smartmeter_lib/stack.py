"""The real stack: topics, schema, and producer / processor processes on Kafka, Cassandra and
Redis. ``smartmeter topics create``, ``schema create`` and ``run --backend real`` call this.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from smartmeter_lib.adapters import open_bus, open_history, open_live
from smartmeter_lib.adapters.kafka_bus import KafkaBus
from smartmeter_lib.config import Settings
from smartmeter_lib.errors import ConfigError, SmartmeterError
from smartmeter_lib.model import ReadingBatch
from smartmeter_lib.simulate.households import HouseholdFleet
from smartmeter_lib.simulate.producer import ProducerStats, run_fleet_producer
from smartmeter_lib.stream.runner import Processor

log = logging.getLogger(__name__)
READINGS_PARTITIONS = 6


def topic_specs(settings: Settings, replication: int = 3, min_isr: int = 2) -> list[
        tuple[str, int, int, dict[str, str]]]:
    """(name, partitions, replication, config) of every topic we use."""
    conf = {"min.insync.replicas": str(min_isr)}
    return [
        (settings.topic_readings, READINGS_PARTITIONS, replication,
         {**conf, "retention.ms": str(7 * 86_400_000)}),
        (settings.topic_alerts, 3, replication, {**conf, "cleanup.policy": "delete"}),
        (settings.topic_dlq, 3, replication, {**conf, "retention.ms": str(30 * 86_400_000)}),
    ]


def create_topics(settings: Settings, replication: int = 3, min_isr: int = 2) -> list[str]:
    """Create the readings, alert and dead-letter topics (idempotent); returns their names."""
    bus = KafkaBus(settings)
    for name, parts, rf, conf in topic_specs(settings, replication, min_isr):
        bus.create_topic(name, parts, rf, conf)
    return [t[0] for t in topic_specs(settings)]


def create_schema(settings: Settings, replication: int = 1) -> str:
    """Create the Cassandra keyspace and tables (idempotent); returns the keyspace."""
    from smartmeter_lib.adapters.cassandra_history import CassandraHistory

    h = CassandraHistory(settings, replication=replication)
    h.close()
    return h.keyspace


def geographic_slices(fleet: HouseholdFleet, parts: int) -> list[np.ndarray]:
    """Split the fleet into ``parts`` west-to-east bands of equal size (one per producer)."""
    order = np.argsort(fleet.meters.lon, kind="stable")
    return [np.sort(s) for s in np.array_split(order, parts)]


class Band:
    """The messages of one west-to-east band of a fleet. Rows are picked by meter id, since
    a second's batch need not hold one row per meter (silent meters, last-gasp events)."""

    def __init__(self, fleet: HouseholdFleet, part: int, parts: int) -> None:
        self.fleet = fleet
        self._index = pd.Index(fleet.meters.meter_id)
        self._in_band = np.zeros(len(fleet.meters), bool)
        self._in_band[geographic_slices(fleet, parts)[part]] = True
        self.n = int(self._in_band.sum())

    def readings(self, ts_s: int) -> ReadingBatch:
        batch = self.fleet.readings(ts_s)
        return batch.take(self._in_band[self._index.get_indexer(pd.Index(batch.meter_id))])


class _Flag:
    """A cross-process stop event seen through ``is_set`` and a local ``wait``.

    A child never blocks in ``multiprocessing.Event.wait``: a waiter that exits mid-wait
    leaves the event's condition counting a sleeper that is gone, and the parent's
    ``set()`` then hangs.
    """

    def __init__(self, event: Any) -> None:
        self.event = event
        self._local = threading.Event()

    def is_set(self) -> bool:
        return bool(self.event.is_set())

    def wait(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not self.event.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return False
            self._local.wait(min(left, 0.2))  # pacing tick; the flag is read between ticks
        return True


def build_fleet(settings: Settings, start_s: int,
                scenario_path: str | None = None) -> HouseholdFleet:
    """The fleet of the settings, with the scenario's events scheduled from ``start_s`` (every
    producer process builds the same one: it is deterministic)."""
    if scenario_path is None:
        return HouseholdFleet(settings.homes, seed=settings.seed)
    from smartmeter_lib.simulate.scenario import load_scenario, resolve_events

    sc = load_scenario(scenario_path)
    fleet = HouseholdFleet(settings.homes, seed=settings.seed, mix=sc.mix, bounds=sc.bounds)
    fleet.set_events(resolve_events(sc, fleet, start_s))
    return fleet


def _producer_main(settings: Settings, part: int, parts: int, start_s: int, duration_s: float,
                   speedup: float, stop: Any, out: Any, scenario_path: str | None = None) -> None:
    logging.basicConfig(level=settings.log_level,
                        format=f"%(asctime)s %(levelname)-7s producer-{part}: %(message)s")
    fleet = build_fleet(settings, start_s, scenario_path)
    bus = open_bus(settings)
    stats = run_fleet_producer(Band(fleet, part, parts), bus, settings.topic_readings,
                               start_s=start_s, speedup=speedup, duration_s=duration_s,
                               stop=_Flag(stop))  # type: ignore[arg-type]
    bus.close()
    out.put(("producer", part, stats.messages, 0))


def _processor_main(settings: Settings, worker: int, stop: Any, idle_exit_s: float | None,
                    out: Any) -> None:
    logging.basicConfig(level=settings.log_level,
                        format=f"%(asctime)s %(levelname)-7s processor-{worker}: %(message)s")
    bus, history, live = open_bus(settings), open_history(settings), open_live(settings)
    proc = Processor(settings, bus, history, live,
                     flush_interval_s=settings.flush_interval_s)
    stats = proc.run(stop=_Flag(stop), idle_exit_s=idle_exit_s)  # type: ignore[arg-type]
    proc.close()
    for x in (bus, history, live):
        x.close()
    out.put(("processor", worker, stats.readings_stored, sum(stats.rejected.values())))


def _collect(procs: list[Any], out: Any, budget: float,
             stop: Any) -> list[tuple[str, int, int, int]]:
    """Wait for every process's result (bounded by ``budget`` seconds), then stop them all."""
    results: list[tuple[str, int, int, int]] = []
    deadline = time.monotonic() + budget
    try:
        while len(results) < len(procs):
            if not any(p.is_alive() for p in procs) and out.empty():
                break
            if time.monotonic() > deadline:
                log.error("the run did not finish within %.0f s; stopping it", budget)
                break
            try:
                results.append(out.get(timeout=1.0))
            except queue.Empty:
                continue
    except KeyboardInterrupt:
        log.info("Ctrl-C: stopping the processes")
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    failed = [p.name for p in procs if p.exitcode != 0]
    if len(results) < len(procs) and not failed:
        failed = ["the run (it did not finish in time)"]
    if failed:
        raise SmartmeterError(f"{', '.join(failed)} failed; see the log above")
    return results


def run_producers(settings: Settings, producers: int, start_s: int, duration_s: float,
                  speedup: float, scenario_path: str | None = None) -> int:
    """``producers`` processes, each sending a west-to-east band of the fleet; returns the
    number of messages sent."""
    ctx = mp.get_context("spawn")
    stop, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_producer_main, args=(settings, p, producers, start_s,
                                                      duration_s, speedup, stop, out,
                                                      scenario_path), name=f"producer-{p}")
             for p in range(producers)]
    for p in procs:
        p.start()
    budget = (duration_s / speedup if speedup > 0 else duration_s) + 300
    return sum(r[2] for r in _collect(procs, out, budget, stop))


def run_processors(settings: Settings, workers: int, duration_s: float | None,
                   idle_exit_s: float | None) -> int:
    """``workers`` processor processes in one consumer group; returns readings stored."""
    ctx = mp.get_context("spawn")
    stop, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_processor_main, args=(settings, w, stop, idle_exit_s, out),
                         name=f"processor-{w}") for w in range(workers)]
    for p in procs:
        p.start()
    budget = float("inf") if duration_s is None else duration_s
    if duration_s is not None:
        # a bounded run: tell the workers to finish when the duration is over
        deadline = time.monotonic() + duration_s
        threading.Thread(target=_stop_at, args=(deadline, stop), daemon=True).start()
        budget = duration_s + 120
    return sum(r[2] for r in _collect(procs, out, budget, stop))


def _stop_at(deadline: float, stop: Any) -> None:
    if not _Flag(stop).wait(max(0.0, deadline - time.monotonic())):
        stop.set()


@dataclass
class RunResult:
    produced: int
    stored: int
    wall_s: float
    rejected: int = 0  #: late, unknown or malformed: in the dead-letter topic


def run_stack(settings: Settings, producers: int = 3, workers: int = 2,
              duration_s: float = 60.0, speedup: float = 1.0, start_s: int | None = None,
              idle_exit_s: float = 15.0, stop: Any = None) -> RunResult:
    """Register the fleet, then run producer and processor processes until the producers have
    sent ``duration_s`` of event time and the processors have been idle ``idle_exit_s``."""
    if producers < 1 or workers < 1:
        raise ConfigError("--producers and --workers must be at least 1")
    if settings.bus != "kafka":
        raise ConfigError("run_stack needs the Kafka bus (use --backend real)")
    t0 = time.monotonic()
    fleet = HouseholdFleet(settings.homes, seed=settings.seed)
    history = open_history(settings)
    history.register_meters(fleet.meters)
    history.close()
    ctx = mp.get_context("spawn")
    stop = stop or ctx.Event()
    out = ctx.Queue()
    start = int(time.time()) if start_s is None else start_s
    procs = [ctx.Process(target=_processor_main, args=(settings, w, stop, idle_exit_s, out),
                         name=f"processor-{w}") for w in range(workers)]
    procs += [ctx.Process(target=_producer_main, args=(settings, p, producers, start,
                                                       duration_s, speedup, stop, out),
                          name=f"producer-{p}") for p in range(producers)]
    for p in procs:
        p.start()
    # a bounded run: the producers' schedule, the processors' idle exit, and a margin
    budget = (duration_s / speedup if speedup > 0 else duration_s) + idle_exit_s + 300
    results = _collect(procs, out, budget, stop)
    produced = sum(r[2] for r in results if r[0] == "producer")
    stored = sum(r[2] for r in results if r[0] == "processor")
    rejected = sum(r[3] for r in results if r[0] == "processor")
    return RunResult(produced, stored, time.monotonic() - t0, rejected)


__all__ = ["ProducerStats", "RunResult", "create_schema", "create_topics", "geographic_slices",
           "run_stack"]


def check_hosts(settings: Settings) -> dict[str, tuple[bool, str]]:
    """Whether the configured Kafka, Cassandra and Redis answer, with a detail each."""
    from smartmeter_lib.errors import BackendError

    out: dict[str, tuple[bool, str]] = {}
    try:
        md = KafkaBus(settings).admin().list_topics(timeout=10)
        out["kafka"] = (True, f"{len(md.brokers)} brokers at {settings.kafka_bootstrap}")
    except Exception as err:  # confluent_kafka raises KafkaException with various codes
        out["kafka"] = (False, f"{settings.kafka_bootstrap}: {err}")
    try:
        from smartmeter_lib.adapters.cassandra_history import CassandraHistory

        CassandraHistory(settings).close()
        out["cassandra"] = (True, f"{settings.cassandra_hosts}:{settings.cassandra_port}, "
                                  f"keyspace {settings.cassandra_keyspace}")
    except BackendError as err:
        out["cassandra"] = (False, str(err))
    try:
        from smartmeter_lib.adapters.redis_live import RedisLive

        RedisLive(settings).close()
        out["redis"] = (True, "answers PING")
    except BackendError as err:
        out["redis"] = (False, str(err))
    return out
