"""The real stack under load: the largest fleet at 1 Hz whose consumer lag stays bounded, and
the latency from a reading's event time to its visibility in Redis.

Each trial runs the project's own stack (:func:`smartmeter_lib.stack.run_stack`: producer and
processor processes on Kafka, Cassandra and Redis) on a topic, keyspace and Redis prefix of its
own, while this process samples, once a second, the topic's end offsets and the processor
group's committed offsets (the lag), and, every 100 ms, the ``last_ts_ms`` of a few probe
meters in Redis (the latency).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from smartmeter_lib.bench.measure import (
    LagVerdict,
    lag_bounded,
    latencies_from_polls,
    load_average,
    percentile,
)
from smartmeter_lib.config import Settings
from smartmeter_lib.errors import BackendError, SmartmeterError

log = logging.getLogger(__name__)
GROUP = "smartmeter-processor"  # the processors' consumer group (stack.py's default)


@dataclass
class Trial:
    homes: int
    sustainable: bool
    verdict: dict[str, Any]
    latency_p50_s: float | None
    latency_p99_s: float | None
    latency_samples: int
    produced: int
    stored: int
    rejected: int
    wall_s: float
    load_average_start: tuple[float, float, float]
    load_average_end: tuple[float, float, float]
    error: str | None = None
    samples: list[tuple[float, int, int]] = field(default_factory=list, repr=False)


def trial_settings(base: Settings, homes: int) -> tuple[Settings, str]:
    """Settings of one trial: its own topics, keyspace and Redis prefix."""
    u = "b" + uuid.uuid4().hex[:8]
    s = base.with_overrides(homes=homes, bus="kafka", history="cassandra", live="redis",
                            topic_readings=f"{u}_readings", topic_alerts=f"{u}_alerts",
                            topic_dlq=f"{u}_dlq", cassandra_keyspace=u, redis_prefix=f"{u}:")
    return s, u


class LagProbe:
    """End offsets of the readings topic and the group's committed offsets."""

    def __init__(self, settings: Settings) -> None:
        from confluent_kafka import Consumer, TopicPartition

        from smartmeter_lib.adapters.kafka_bus import client_config

        self._tp = TopicPartition
        self.topic = settings.topic_readings
        self.c = Consumer({**client_config(settings), "group.id": GROUP,
                           "enable.auto.commit": False})
        self.partitions: list[int] = []

    def sample(self) -> tuple[int, int]:
        """(messages on the topic, messages committed by the processors)."""
        if not self.partitions:
            md = self.c.list_topics(self.topic, timeout=10)
            self.partitions = sorted(md.topics[self.topic].partitions)
        tps = [self._tp(self.topic, p) for p in self.partitions]
        end = sum(self.c.get_watermark_offsets(tp, timeout=10, cached=False)[1] for tp in tps)
        done = sum(max(0, tp.offset) for tp in self.c.committed(tps, timeout=10))
        return int(end), int(done)

    def close(self) -> None:
        self.c.close()


class LatencyProbe:
    """``last_ts_ms`` of a few meters in Redis, polled: when it moves, the readings between
    became visible."""

    def __init__(self, settings: Settings, meter_ids: list[str]) -> None:
        from smartmeter_lib.adapters.redis_live import RedisLive

        self.live = RedisLive(settings)
        self.meters = meter_ids
        self.polls: dict[str, list[tuple[float, int]]] = {m: [] for m in meter_ids}

    def poll(self) -> None:
        got = {m: self.live.get_meter(m) for m in self.meters}
        now_ms = time.time() * 1000
        for m, row in got.items():
            if row is not None and int(row["last_ts_ms"]) >= 0:
                self.polls[m].append((now_ms, int(row["last_ts_ms"])))

    def latencies(self, since_wall_ms: float) -> list[float]:
        out: list[float] = []
        for polls in self.polls.values():
            before = [ts for w, ts in polls if w < since_wall_ms]
            after = [(w, ts) for w, ts in polls if w >= since_wall_ms]
            out += latencies_from_polls(after, before[-1] if before else None)
        return out

    def close(self) -> None:
        self.live.close()


def run_trial(base: Settings, homes: int, producers: int, workers: int, warmup_s: float,
              window_s: float, lag_bound_s: float) -> Trial:
    """One fleet size: run the stack for ``warmup_s + window_s`` of event time at 1 Hz and
    judge the lag over the window (see :func:`lag_bounded`)."""
    import multiprocessing as mp

    from smartmeter_lib.adapters.cassandra_history import CassandraHistory
    from smartmeter_lib.adapters.kafka_bus import KafkaBus
    from smartmeter_lib.stack import create_topics, run_stack

    s, u = trial_settings(base, homes)
    la0 = load_average()
    create_topics(s)
    result: dict[str, Any] = {}
    stop = mp.get_context("spawn").Event()
    startup_s = 300.0  # registering the fleet and starting the processes, on a busy machine

    def go() -> None:
        try:
            # the producers' schedule is an upper bound: the trial sets ``stop`` when its
            # window is over
            result["run"] = run_stack(s, producers=producers, workers=workers,
                                      duration_s=startup_s + warmup_s + window_s,
                                      speedup=1.0, idle_exit_s=10.0, stop=stop)
        except Exception as err:  # recorded in the trial's figures, never lost
            log.exception("the stack run of the %d-home trial failed", homes)
            result["error"] = f"{type(err).__name__}: {err}"

    runner = threading.Thread(target=go, name=f"bench-stack-{homes}", daemon=True)
    t0 = time.monotonic()
    runner.start()
    lag_probe = LagProbe(s)
    rng = np.random.default_rng(homes)
    probes = [f"SM{i:07d}" for i in sorted(rng.choice(homes, min(homes, 24), replace=False))]
    lat = LatencyProbe(s, probes)
    samples: list[tuple[float, int, int]] = []
    first: float | None = None  # when the processors first committed: the warm-up starts
    window_wall_ms: float | None = None
    try:
        next_lag = 0.0
        while runner.is_alive() and time.monotonic() - t0 < startup_s + warmup_s + window_s:
            now = time.monotonic()
            if now >= next_lag:
                end, done = lag_probe.sample()
                if done > 0 and first is None:
                    first = now
                    log.info("trial %d homes: processors committed; warm-up %.0f s, then "
                             "the %.0f-s window", homes, warmup_s, window_s)
                if first is not None:
                    if now - first >= warmup_s and window_wall_ms is None:
                        window_wall_ms = time.time() * 1000
                    samples.append((now - first, end - done, end))
                    if now - first > warmup_s + window_s:
                        break
                next_lag = now + 1.0
            lat.poll()
            runner.join(0.1)
    finally:
        stop.set()
        lag_probe.close()
    runner.join(timeout=300)  # the processors finish: close windows, write, commit
    if runner.is_alive():
        result.setdefault("error", "the stack did not stop within 300 s of the trial's end")
    window = [x for x in samples if warmup_s <= x[0] <= warmup_s + window_s]
    rate = float(homes)
    verdict: LagVerdict = lag_bounded([x[0] for x in window], [x[1] for x in window],
                                      [x[2] for x in window], rate,
                                      bound=rate * lag_bound_s)
    lats = lat.latencies(window_wall_ms) if window_wall_ms is not None else []
    lat.close()
    run = result.get("run")
    trial = Trial(homes, verdict.bounded and "error" not in result, asdict(verdict),
                  percentile(lats, 50), percentile(lats, 99), len(lats),
                  run.produced if run else 0, run.stored if run else 0,
                  run.rejected if run else 0, round(time.monotonic() - t0, 1), la0,
                  load_average(), result.get("error"), samples)
    if not runner.is_alive():
        _cleanup(s, u, CassandraHistory, KafkaBus)
    else:
        log.warning("trial %d homes: the stack still runs; keyspace %s and topics %s_* kept",
                    homes, u, u)
    log.info("trial %d homes: %s (%s); latency p50 %s s p99 %s s", homes,
             "sustainable" if trial.sustainable else "NOT sustainable", verdict.reason,
             trial.latency_p50_s, trial.latency_p99_s)
    return trial


def _cleanup(s: Settings, u: str, history_cls: Any, bus_cls: Any) -> None:
    """Drop the trial's keyspace, topics and Redis keys (best effort, logged)."""
    try:
        h = history_cls(s)
        h.drop_keyspace()
        h.close()
    except (BackendError, SmartmeterError) as err:
        log.warning("could not drop keyspace %s: %s", u, err)
    bus = bus_cls(s)
    for t in (s.topic_readings, s.topic_alerts, s.topic_dlq):
        try:
            bus.delete_topic(t)
        except Exception as err:  # confluent_kafka raises KafkaException with various codes
            log.warning("could not delete topic %s: %s", t, err)
    bus.close()
    from smartmeter_lib.adapters.redis_live import RedisLive

    live = RedisLive(s)
    live.clear()
    live.close()


def live_snapshot_cost(settings: Settings, meters: int, repeats: int = 5) -> dict[str, Any]:
    """What one processor's per-second write of the per-meter live view costs in Redis for
    ``meters`` meters (the snapshot and the power vector), and one ``get_meter`` read."""
    from smartmeter_lib.adapters.redis_live import RedisLive

    live = RedisLive(settings, prefix=settings.redis_prefix + "snapbench:")
    try:
        ids = np.array([f"SM{i:07d}" for i in range(meters)], dtype=object)
        rng = np.random.default_rng(1)
        last, kw, tot = np.zeros(meters, np.int64), rng.random(meters), rng.random(meters)
        live.put_meters(0, ids, last, kw, tot)  # the first write also sends the ids
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for k in range(1, repeats + 1):
            live.put_meters(k * 1000, ids, last + k, kw, tot)
            live.put_meter_power(k * 1000, kw)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        t0 = time.perf_counter()
        sample = ids[:: max(1, meters // 100)]
        for m in sample:
            live.get_meter(str(m))
        return {"meters": meters, "cpu_ms_per_s": round(cpu / repeats * 1000, 1),
                "wall_ms_per_s": round(wall / repeats * 1000, 1),
                "get_meter_ms": round((time.perf_counter() - t0) / len(sample) * 1000, 2)}
    finally:
        live.clear()
        live.close()
