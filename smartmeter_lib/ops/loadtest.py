"""Load test: ramp the number of simulated homes until the processors fall behind, and report
the largest rate they sustained.

The test runs beside the pipeline, never in it: its own topic (``<readings>_load``), keyspace
(``<keyspace>_load``), Redis prefix and consumer group, with its own processors in the
background. Each step sends one reading per home per second, in real time, for ``step_s``
seconds from this process; the step is sustained when the lag at its end is at most
``lag_limit_s`` seconds of input and the processors committed at least ``min_out_ratio`` of
the input rate during the step. The ramp stops at the first step that is not.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from smartmeter_lib.config import Settings
from smartmeter_lib.errors import OpsError
from smartmeter_lib.ops.background import Background
from smartmeter_lib.ops.context import settings_env
from smartmeter_lib.ops.offsets import committed_total_of, group_members, read_offsets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    homes: int
    seconds: float
    rate_in: float  #: readings/s appended during the step
    rate_out: float  #: readings/s committed by the processors during the step
    lag_end: int  #: readings not yet committed at the end of the step
    producer_behind_s: float  #: how far the producer fell behind real time

    def lag_s(self) -> float:
        """The end lag in seconds of input (inf when nothing came in but some waits)."""
        if self.rate_in > 0:
            return self.lag_end / self.rate_in
        return 0.0 if self.lag_end == 0 else float("inf")

    def sustained(self, lag_limit_s: float, min_out_ratio: float = 0.5) -> bool:
        """The lag stayed within ``lag_limit_s`` seconds of input and the processors
        committed at least ``min_out_ratio`` of the input rate."""
        return (self.lag_s() <= lag_limit_s
                and self.rate_out >= min_out_ratio * self.rate_in)


@dataclass(frozen=True)
class LoadTestResult:
    steps: list[Step]
    lag_limit_s: float
    min_out_ratio: float
    max_sustained_rate: float | None  #: readings/s of the best sustained step
    max_sustained_homes: int | None
    saturated: bool  #: False: every step was sustained, the limit is higher still

    def table(self) -> pd.DataFrame:
        df = pd.DataFrame([asdict(s) for s in self.steps])
        if len(df):
            df["lag_s"] = [round(s.lag_s(), 1) for s in self.steps]
            df["sustained"] = [s.sustained(self.lag_limit_s, self.min_out_ratio)
                               for s in self.steps]
        return df

    def verdict(self) -> str:
        if self.max_sustained_rate is None:
            return (f"not even the first step was sustained (lag over {self.lag_limit_s:g} s "
                    "or too little committed): look at the processor logs")
        rate = f"{self.max_sustained_rate:,.0f} readings/s ({self.max_sustained_homes} homes)"
        if self.saturated:
            return f"maximum sustainable rate: {rate}; the next step fell behind"
        return f"sustained every step, up to {rate}: the limit is higher (ramp further)"


def analyse(steps: Sequence[Step], lag_limit_s: float,
            min_out_ratio: float = 0.5) -> LoadTestResult:
    """The largest sustained step before the first one that was not.

    >>> ok = Step(100, 10, 100.0, 100.0, 300, 0.0)
    >>> bad = Step(200, 10, 200.0, 90.0, 1000, 0.0)  # lag 5 s, but out < half of in
    >>> r = analyse([ok, bad], 15.0)
    >>> r.max_sustained_rate, r.max_sustained_homes, r.saturated
    (100.0, 100, True)
    """
    best: Step | None = None
    saturated = False
    for s in steps:
        if not s.sustained(lag_limit_s, min_out_ratio):
            saturated = True
            break
        if best is None or s.rate_in > best.rate_in:
            best = s
    return LoadTestResult(list(steps), lag_limit_s, min_out_ratio,
                          None if best is None else best.rate_in,
                          None if best is None else best.homes, saturated)


def load_settings(settings: Settings, max_homes: int) -> Settings:
    """The load test's own topic, keyspace, Redis prefix, beside the pipeline's."""
    return settings.with_overrides(
        topic_readings=f"{settings.topic_readings}_load",
        cassandra_keyspace=f"{settings.cassandra_keyspace}_load"[:48],
        redis_prefix=f"{settings.redis_prefix}load:", homes=max_homes)


def out_rate(samples: Sequence[tuple[float, int]]) -> float:
    """Readings/s committed, from (time, committed total) samples. Processors commit every few
    seconds, so the rate is taken between the first and the last commit seen (a plain
    difference over the whole span would count a commit cycle more or less).

    >>> out_rate([(0.0, 0), (1.0, 0), (2.0, 500), (3.0, 500), (7.0, 2500), (8.0, 2500)])
    400.0
    >>> out_rate([(0.0, 10), (4.0, 10)])
    0.0
    """
    changes = [i for i in range(1, len(samples)) if samples[i][1] != samples[i - 1][1]]
    if len(changes) >= 2:
        (t0, c0), (t1, c1) = samples[changes[0]], samples[changes[-1]]
        return max(0, c1 - c0) / (t1 - t0)
    span = samples[-1][0] - samples[0][0]
    return max(0, samples[-1][1] - samples[0][1]) / span if span > 0 else 0.0


def run_step(settings: Settings, group: str, homes: int, step_s: float, seed: int,
             start_s: int | None = None) -> Step:
    """Send ``homes`` readings a second, in real time from event time ``start_s`` (default:
    now), for ``step_s`` seconds (in a thread), looking at the offsets every second."""
    from smartmeter_lib.adapters.kafka_bus import KafkaBus
    from smartmeter_lib.simulate.households import HouseholdFleet
    from smartmeter_lib.simulate.producer import ProducerStats, run_fleet_producer

    fleet = HouseholdFleet(homes, seed=seed, id_prefix="LT")
    bus = KafkaBus(settings, client_id="smartmeter-loadtest")
    stats, failed = ProducerStats(), []

    def produce() -> None:
        try:
            run_fleet_producer(fleet, bus, settings.topic_readings, start_s=start_s,
                               speedup=1.0, duration_s=step_s, stats=stats)
        except Exception as err:  # reported below, in the caller's thread
            failed.append(err)

    seen = [read_offsets(settings, settings.topic_readings, group)]
    worker = threading.Thread(target=produce, name=f"load-{homes}", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(timeout=1.0)
            seen.append(read_offsets(settings, settings.topic_readings, group))
    finally:
        worker.join(timeout=60)
        bus.close()
    if failed:
        raise OpsError(f"the load producer failed at {homes} homes: {failed[0]}")
    a, b = seen[0], seen[-1]
    dt = max(b.t - a.t, 1e-9)
    step = Step(homes, round(dt, 1), (b.total_end - a.total_end) / dt,
                out_rate([(o.t, committed_total_of(o)) for o in seen]), b.total_lag,
                round(stats.behind_s, 1))
    log.info("load step %d homes: in %.0f/s, out %.0f/s, lag %d (%.1f s)", homes,
             step.rate_in, step.rate_out, step.lag_end, step.lag_s())
    return step


def run_load_test(settings: Settings, run_dir: str | Path, steps: Sequence[int] = (250, 500,
                  1000), step_s: float = 20.0, workers: int = 1, lag_limit_s: float = 10.0,
                  min_out_ratio: float = 0.5,
                  replication: int = 3, min_isr: int = 2, cleanup: bool = True,
                  ready_timeout_s: float = 180.0) -> LoadTestResult:
    """Ramp through ``steps`` (homes) until one is not sustained; bounded by
    ``len(steps) * step_s`` seconds plus the processors' start-up."""
    from smartmeter_lib.adapters import open_history
    from smartmeter_lib.ops.pipeline import PROCESSOR_GRACE_S, processor_argv
    from smartmeter_lib.ops.provision import ensure_topics
    from smartmeter_lib.simulate.households import HouseholdFleet

    if not steps or any(h < 1 for h in steps) or list(steps) != sorted(steps):
        raise OpsError(f"steps must be increasing numbers of homes, got {list(steps)}")
    if step_s < 5 or not 1 <= workers <= 6:
        raise OpsError("step_s must be at least 5 s and workers 1..6")
    ls = load_settings(settings, max(steps))
    group = f"{ls.topic_readings}-processors"
    ensure_topics(ls, replication, min_isr)
    history = open_history(ls)
    try:
        history.register_meters(HouseholdFleet(max(steps), seed=ls.seed, id_prefix="LT").meters)
    finally:
        history.close()
    bg = Background(run_dir)
    names = [f"load-processor-{i}" for i in range(workers)]
    budget = len(steps) * (step_s + 10) + PROCESSOR_GRACE_S + ready_timeout_s
    env = {**settings_env(ls), "PYTHONUNBUFFERED": "1"}
    results: list[Step] = []
    try:
        for n in names:
            bg.start(n, processor_argv(group, budget), env)
        end = time.monotonic() + ready_timeout_s
        while group_members(ls, group) < workers:
            bg.require_running(names)
            if time.monotonic() > end:
                raise OpsError(f"the load-test processors did not join {group} within "
                               f"{ready_timeout_s:.0f} s; see {bg.run_dir}")
            time.sleep(0.5)
        start = int(time.time())
        for homes in steps:
            bg.require_running(names)
            step = run_step(ls, group, homes, step_s, ls.seed, start)
            # the next step's event time follows on: its meters send no second twice
            start = max(int(time.time()), start + int(step_s))
            results.append(step)
            if not step.sustained(lag_limit_s, min_out_ratio):
                break
    finally:
        for n in names:
            bg.stop(n, timeout_s=10.0)  # its data is thrown away: no need to wait long
        if cleanup:
            _cleanup(ls)
    return analyse(results, lag_limit_s, min_out_ratio)


def _cleanup(ls: Settings) -> None:
    """Delete the load test's topic, keyspace and Redis keys."""
    from smartmeter_lib.adapters.cassandra_history import CassandraHistory
    from smartmeter_lib.adapters.kafka_bus import KafkaBus
    from smartmeter_lib.adapters.redis_live import RedisLive

    KafkaBus(ls).delete_topic(ls.topic_readings)
    h = CassandraHistory(ls)
    h.drop_keyspace()
    h.close()
    live = RedisLive(ls)
    live.clear()
    live.close()
