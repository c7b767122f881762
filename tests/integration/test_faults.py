"""Faults on the real stack, each followed by a count check.

Every test runs producer and processor *processes* against the integration services, injects
one fault while they run, then checks, from Cassandra, against the deterministic fleet:

- every produced reading is stored exactly once (each meter has one row per second, and the
  per-meter sums equal the fleet's);
- every 1-minute, 30-minute and daily rollup equals the sum of its readings, with the right
  number of readings (a reading counted twice would show as one too many).

The figures of each run (messages in and out, lost, duplicated) are logged as ``FIGURES``
lines and quoted in docs/reliability.md.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from confluent_kafka import Consumer, TopicPartition

from smartmeter_lib.adapters.base import Message
from smartmeter_lib.adapters.cassandra_history import CassandraHistory
from smartmeter_lib.adapters.kafka_bus import KafkaBus
from smartmeter_lib.adapters.redis_live import RedisLive
from smartmeter_lib.config import Settings
from smartmeter_lib.services import ServicesConfig
from smartmeter_lib.services.cassandra import CassandraService
from smartmeter_lib.services.kafka import KafkaService
from smartmeter_lib.services.redis import RedisService
from smartmeter_lib.simulate.households import HouseholdFleet
from smartmeter_lib.stack import READINGS_PARTITIONS, Band, _Flag, build_fleet, create_topics
from tests.contract.conftest import real_settings

log = logging.getLogger(__name__)
HOMES = 300
SECONDS = 60
# 20 s before a half hour: the run spans two minutes and two half hours, and its first
# windows began before the processors read anything (they are completed from history)
START = int(dt.datetime(2026, 11, 2, 16, 59, 40, tzinfo=dt.UTC).timestamp())


# -- child processes (module level: the spawn context imports them) --------------------------
def _producer_child(settings: Settings, part: int, parts: int, first_s: int, burst_s: int,
                    end_s: int, stop: Any, out: Any, scenario: str | None = None) -> None:
    """Send event seconds ``[first_s, end_s)`` of one band: the first ``burst_s`` of them at
    once (a restarted producer catching up), the rest one per wall-clock second."""
    from smartmeter_lib.adapters import open_bus
    from smartmeter_lib.simulate.producer import run_fleet_producer

    logging.basicConfig(level=logging.INFO,
                        format=f"%(asctime)s %(levelname)-7s producer-{part}: %(message)s")
    band = Band(build_fleet(settings, START, scenario), part, parts)
    bus = open_bus(settings)
    sent = 0
    if burst_s:
        sent += run_fleet_producer(band, bus, settings.topic_readings, start_s=first_s,
                                   speedup=0, duration_s=burst_s).messages
    sent += run_fleet_producer(band, bus, settings.topic_readings, start_s=first_s + burst_s,
                               speedup=1.0, duration_s=end_s - first_s - burst_s,
                               stop=_Flag(stop)).messages  # type: ignore[arg-type]
    bus.close()
    out.put(("producer", part, sent))


def _processor_child(settings: Settings, name: str, group: str, stop: Any, idle_exit_s: float,
                     out: Any) -> None:
    from smartmeter_lib.adapters import open_bus, open_history, open_live
    from smartmeter_lib.stream import runner
    from smartmeter_lib.stream.runner import Processor

    runner.IDLE_BEFORE_FIRST_S = 120.0  # a loaded machine may take long to join the group
    logging.basicConfig(level=logging.INFO,
                        format=f"%(asctime)s %(levelname)-7s {name}: %(message)s")
    bus, history, live = open_bus(settings), open_history(settings), open_live(settings)
    proc = Processor(settings, bus, history, live, group_id=group, flush_interval_s=2.0)
    stats = proc.run(stop=_Flag(stop), idle_exit_s=idle_exit_s)  # type: ignore[arg-type]
    proc.close()
    for x in (bus, history, live):
        x.close()
    out.put(("processor", name, stats.messages_in, stats.readings_stored,
             dict(stats.rejected), stats.restored_meters))


# -- the harness ---------------------------------------------------------------------------
@dataclass
class Run:
    """Producer and processor processes of one test, with their own topics and keyspace."""

    settings: Settings
    group: str
    ctx: Any = field(default_factory=lambda: mp.get_context("spawn"))
    procs: dict[str, Any] = field(default_factory=dict)
    stops: dict[str, Any] = field(default_factory=dict)
    results: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    wall0: float = 0.0
    scenario: str | None = None  #: a scenario file the producers' fleet follows

    def __post_init__(self) -> None:
        self.out = self.ctx.Queue()

    def note(self, what: str) -> None:
        self.events.append(f"{time.monotonic() - self.wall0:5.1f} s {what}")
        log.info("fault test: %s", what)

    def producer(self, part: int, parts: int = 2, first_s: int = START, burst_s: int = 0,
                 name: str | None = None) -> str:
        name = name or f"producer-{part}"
        stop = self.ctx.Event()
        p = self.ctx.Process(target=_producer_child, name=name, args=(
            self.settings, part, parts, first_s, burst_s, START + SECONDS, stop, self.out,
            self.scenario))
        p.start()
        self.procs[name], self.stops[name] = p, stop
        return name

    def processor(self, name: str, idle_exit_s: float = 20.0) -> str:
        stop = self.ctx.Event()
        p = self.ctx.Process(target=_processor_child, name=name, args=(
            self.settings, name, self.group, stop, idle_exit_s, self.out))
        p.start()
        self.procs[name], self.stops[name] = p, stop
        return name

    def kill(self, name: str) -> None:
        p = self.procs[name]
        os.kill(p.pid, signal.SIGKILL)
        p.join(timeout=30)
        self.note(f"SIGKILL {name} (pid {p.pid})")

    def when(self, produced: float, action: Callable[[], None],
             also: Callable[[], bool] | None = None) -> threading.Thread:
        """Run ``action`` in a thread once the producers have sent ``produced`` (a fraction)
        of the readings and ``also()`` holds (both waited for, bounded)."""
        def ready() -> bool:
            return (end_offsets(self.settings) >= produced * HOMES * SECONDS
                    and (also is None or also()))

        def go() -> None:
            deadline = time.monotonic() + 240
            while not ready():
                if time.monotonic() > deadline:
                    self.note(f"gave up waiting for {produced:.0%} produced")
                    return
                threading.Event().wait(0.5)
            action()
        th = threading.Thread(target=go, daemon=True)
        th.start()
        return th

    def wait(self, budget_s: float = 400.0) -> None:
        """Until every process that was not killed has reported and exited (bounded)."""
        deadline = time.monotonic() + budget_s
        while any(p.is_alive() for p in list(self.procs.values())):
            if time.monotonic() > deadline:
                for p in list(self.procs.values()):
                    if p.is_alive():
                        p.kill()
                raise AssertionError(f"the run did not finish in {budget_s:.0f} s: "
                                     f"{self.events}")
            try:
                self.results.append(self.out.get(timeout=1.0))
            except queue.Empty:
                continue
        while True:
            try:
                self.results.append(self.out.get(timeout=0.5))
            except queue.Empty:
                break
        for name, p in list(self.procs.items()):
            p.join(timeout=30)
            assert p.exitcode in (0, -signal.SIGKILL), f"{name} exited with {p.exitcode}"

    def processor_results(self) -> list[tuple[Any, ...]]:
        return [r for r in self.results if r[0] == "processor"]


@pytest.fixture
def run(services: ServicesConfig) -> Iterator[Run]:
    u = "f" + uuid.uuid4().hex[:8]
    s = real_settings(services, homes=HOMES, bus="kafka", history="cassandra", live="redis",
                      cassandra_keyspace=u, topic_readings=f"{u}_readings",
                      topic_alerts=f"{u}_alerts", topic_dlq=f"{u}_dlq", redis_prefix=f"{u}:",
                      allowed_lateness_s=20)
    create_topics(s)
    h = CassandraHistory(s)
    h.register_meters(HouseholdFleet(HOMES, seed=s.seed).meters)
    h.close()
    r = Run(s, group=f"{u}-processors")
    r.wall0 = time.monotonic()
    yield r
    for p in r.procs.values():
        if p.is_alive():
            p.kill()
    h = CassandraHistory(s)
    h.drop_keyspace()
    h.close()
    live = RedisLive(s)
    live.clear()
    live.close()


# -- the count check -----------------------------------------------------------------------
@dataclass
class Counts:
    produced: int
    stored: int
    lost: int
    duplicated: int
    rollups_checked: int


def count_check(s: Settings, run: Run | None = None, fleet: Any = None) -> Counts:
    """Every reading of the fleet stored exactly once; every rollup the sum of its readings.
    ``fleet``: the producers' fleet (default: the plain one; a scenario's silences meters)."""
    fleet = fleet or HouseholdFleet(HOMES, seed=s.seed)
    ids = fleet.meters.meter_id.tolist()
    index = pd.Index(ids)
    exp = np.zeros((len(ids), SECONDS))
    sent = np.zeros((len(ids), SECONDS), np.int64)  # 1 where a meter sent a reading
    for k in range(SECONDS):
        b = fleet.readings(START + k)
        rd = b.kind == 0  # readings; last gasps and restores go to the events table
        i = index.get_indexer(pd.Index(b.meter_id[rd]))
        exp[i, k], sent[i, k] = b.kwh[rd], 1
    h = CassandraHistory(s)
    try:
        got = [h.read_readings(m, START * 1000, (START + SECONDS) * 1000) for m in ids]
        counts = np.array([len(b) for b in got])
        sums = np.array([float(b.kwh.sum()) for b in got])
        rollups = {res: h.read_rollups(res, ids, START // res * res * 1000,
                                       (START + SECONDS) * 1000) for res in (60, 1800, 86400)}
        areas = {(res, p): h.read_area_rollups(res, p, None, START // res * res * 1000,
                                               (START + SECONDS) * 1000)
                 for res in (1800, 86400) for p in (5, 6)}
    finally:
        h.close()
    want = sent.sum(axis=1)
    lost = int(np.clip(want - counts, 0, None).sum())
    extra = int(np.clip(counts - want, 0, None).sum())
    assert lost == 0 and extra == 0, f"{lost} readings lost, {extra} extra; {run and run.events}"
    # raw readings are stored to 1e-7 kWh (reading_chunks), so sums match to 60 x 5e-8
    assert sums == pytest.approx(exp.sum(axis=1), rel=1e-9, abs=1e-5)

    # rollups: the expected (meter, window) -> (kwh, readings) from the fleet itself
    checked = 0
    pos = {m: i for i, m in enumerate(ids)}
    for res, r in rollups.items():
        wins = (START + np.arange(SECONDS)) // res * res * 1000
        expected: dict[tuple[str, int], tuple[float, int]] = {}
        for ws in np.unique(wins).tolist():
            sel = wins == ws
            col, n = exp[:, sel].sum(axis=1), sent[:, sel].sum(axis=1)
            for m, i in pos.items():
                if n[i]:
                    expected[(m, ws)] = (float(col[i]), int(n[i]))
        have = {(m, int(w)): (float(k), int(n)) for m, w, k, n in
                zip(r.meter_id, r.window_start_ms, r.kwh, r.readings, strict=True)}
        assert set(have) == set(expected), (
            f"{res}-s rollups: {len(set(expected) - set(have))} missing, "
            f"{len(set(have) - set(expected))} unexpected")
        wrong_n = [(key, have[key][1], n) for key, (_, n) in expected.items() if have[key][1] != n]
        if wrong_n:
            _report_wrong_rollups(s, run, res, wrong_n)
        assert not wrong_n, (f"{res}-s rollups with the wrong number of readings: {wrong_n[:5]} "
                             f"({len(wrong_n)} in all; report in test-output/faults)")
        for key, (kwh, _) in expected.items():
            assert have[key][0] == pytest.approx(kwh, rel=1e-9, abs=1e-12), (res, key)
        checked += len(expected)
    checked += _check_area_rollups(fleet, areas, exp, sent)
    c = Counts(int(want.sum()), int(counts.sum()), lost, extra, checked)
    log.warning("FIGURES %s: %s; events %s; processors %s",
                os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0], c,
                run.events if run else [], run.processor_results() if run else [])
    return c


def _check_area_rollups(fleet: Any, areas: dict[tuple[int, int], Any], exp: np.ndarray,
                        sent: np.ndarray) -> int:
    """Every area rollup (per geohash-5 and -6 cell, half-hour and day) is the sum of its
    meters' readings, and counts the meters that reported, with any number of processors
    (each writes the rows of the partitions it holds)."""
    checked = 0
    for (res, p), got in areas.items():
        cell_of = np.array([g[:p] for g in fleet.meters.geohash], dtype=object)
        wins = (START + np.arange(SECONDS)) // res * res * 1000
        want: dict[tuple[str, int], tuple[float, int]] = {}
        for w in np.unique(wins).tolist():
            sel = wins == w
            reported = sent[:, sel].sum(axis=1) > 0
            kwh = exp[:, sel].sum(axis=1)
            for c in np.unique(cell_of[reported]).tolist():
                mine = (cell_of == c) & reported
                want[(c, w)] = (float(kwh[mine].sum()), int(mine.sum()))
        have = {(str(c), int(w)): (float(k), int(n)) for c, w, k, n in
                zip(got.cell, got.window_start_ms, got.kwh, got.homes, strict=True)}
        assert set(have) == set(want), (
            f"{res}-s area rollups at precision {p}: {len(set(want) - set(have))} missing, "
            f"{len(set(have) - set(want))} unexpected")
        wrong = [(key, have[key], v) for key, v in want.items()
                 if have[key][1] != v[1] or have[key][0] != pytest.approx(v[0], rel=1e-9,
                                                                          abs=1e-9)]
        assert not wrong, (f"{res}-s area rollups at precision {p} that are not the sum of "
                           f"their meters (cell, window), (kwh, homes) got, want: {wrong[:5]} "
                           f"({len(wrong)} in all)")
        checked += len(want)
    return checked


def _report_wrong_rollups(s: Settings, run: Run | None, res: int,
                          wrong: list[tuple[tuple[str, int], int, int]]) -> None:
    """Write what a count check found wrong, with the run's timeline, each processor's
    result (its rejects by reason) and the dead-letter reasons, to test-output/faults/."""
    import json

    from tests.conftest import ROOT

    out = Path(os.environ.get("SMARTMETER_TEST_OUTPUT", ROOT / "test-output")) / "faults"
    out.mkdir(parents=True, exist_ok=True)
    name = os.environ.get("PYTEST_CURRENT_TEST", "fault").split(" ")[0].rsplit("::", 1)[-1]
    by_window: dict[int, list[Any]] = {}
    for (meter, ws), got, want in wrong:
        by_window.setdefault(ws, []).append([meter, got, want])
    report = {
        "resolution_s": res, "wrong": len(wrong),
        "by_window": {str(ws): {"meters": len(v), "examples": v[:10]}
                      for ws, v in sorted(by_window.items())},
        "events": run.events if run else [],
        "processors": [list(r) for r in run.processor_results()] if run else [],
        "dead_letters": dlq_reasons(s),
    }
    (out / f"{name}.json").write_text(json.dumps(report, indent=1, default=str))
    log.warning("count check of %s: %s", name, json.dumps(report, default=str)[:4000])


def committed(s: Settings, group: str) -> list[int]:
    """The group's committed offsets of the readings topic, by partition (-1: none)."""
    c = Consumer({"bootstrap.servers": s.kafka_bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        tps = c.committed([TopicPartition(s.topic_readings, p)
                           for p in range(READINGS_PARTITIONS)], timeout=20)
        return [tp.offset if tp.offset >= 0 else -1 for tp in tps]
    finally:
        c.close()


def end_offsets(s: Settings) -> int:
    """How many messages the readings topic holds (the sum of its high watermarks)."""
    c = Consumer({"bootstrap.servers": s.kafka_bootstrap, "group.id": "offsets-probe"})
    try:
        return sum(c.get_watermark_offsets(TopicPartition(s.topic_readings, p), timeout=20)[1]
                   for p in range(READINGS_PARTITIONS))
    finally:
        c.close()


def _count_topic(s: Settings, topic: str, label: Callable[[Message], str]) -> dict[str, int]:
    """Every message on ``topic``, counted by ``label``; done after 5 idle polls."""
    c = KafkaBus(s).consumer([topic], "reader-" + uuid.uuid4().hex[:6])
    out: dict[str, int] = {}
    idle = 0
    try:
        while idle < 5:
            msgs = c.poll_batch(10_000, 1.0)
            idle = 0 if msgs else idle + 1
            for m in msgs:
                k = label(m)
                out[k] = out.get(k, 0) + 1
    finally:
        c.close()
    return out


def alert_ids_on_topic(s: Settings) -> dict[str, int]:
    """Messages on the alert topic, counted by key (the alert id)."""
    return _count_topic(s, s.topic_alerts, lambda m: (m.key or b"").decode())


def dlq_reasons(s: Settings) -> dict[str, int]:
    """Dead-letter messages of the run, counted by the head of their reason."""
    import json

    return _count_topic(s, s.topic_dlq,
                        lambda m: json.loads(m.value or b"{}")["reason"].split(":")[0])


# -- the faults ----------------------------------------------------------------------------
def test_broker_sigkilled_and_restarted_mid_run(run: Run, services: ServicesConfig) -> None:
    kafka = KafkaService(services)
    killed: list[str] = []

    def kill_broker() -> None:
        name, pid = sorted((n, p) for n, p in kafka.live_pids().items() if p)[-1]
        os.kill(pid, signal.SIGKILL)
        killed.append(name)
        run.note(f"SIGKILL broker {name} (pid {pid})")

    def restart_broker() -> None:
        kafka.start()
        run.note(f"restarted broker {killed[0]}")

    run.processor("processor-0")
    run.processor("processor-1")
    run.producer(0)
    run.producer(1)
    def kill_then_restart() -> None:
        kill_broker()
        threading.Event().wait(15)  # down for 15 s while the producers go on
        restart_broker()

    t1 = run.when(0.25, kill_then_restart)
    run.wait()
    t1.join(120)
    assert killed and len(run.events) == 2, run.events
    assert kafka.broker_count() == 3
    c = count_check(run.settings, run)
    assert c.lost == 0 and c.duplicated == 0


def test_processor_sigkilled_and_restarted_resumes_from_committed_offsets(
        run: Run, services: ServicesConfig) -> None:
    seen: dict[str, list[int]] = {}
    run.processor("processor-0")
    run.processor("processor-1")
    run.producer(0)
    run.producer(1)

    def kill_and_restart() -> None:
        seen["before"] = committed(run.settings, run.group)
        run.kill("processor-0")
        seen["at_kill"] = committed(run.settings, run.group)
        run.processor("processor-0-restarted", idle_exit_s=25)
        run.note("started processor-0-restarted")

    # once a minute has closed and its offsets are committed (lateness 20 s)
    th = run.when(0.5, kill_and_restart,
                  also=lambda: sum(o > 0 for o in committed(run.settings, run.group)) >= 3)
    run.wait()
    th.join(5)
    assert sum(o > 0 for o in seen["at_kill"]) >= 3, f"offsets committed before the kill: {seen}"
    c = count_check(run.settings, run)
    restarted = [r for r in run.processor_results() if r[1] == "processor-0-restarted"]
    assert restarted and restarted[0][2] > 0, "the restarted processor read messages"
    # it resumed from the committed offsets: it did not re-read the whole topic
    assert restarted[0][2] < HOMES * SECONDS
    final = committed(run.settings, run.group)
    assert sum(final) == end_offsets(run.settings), "everything committed at the end"
    assert c.lost == 0 and c.duplicated == 0


def test_group_rebalances_when_a_worker_joins_and_leaves(run: Run) -> None:
    run.processor("processor-0")
    run.producer(0)
    run.producer(1)
    t1 = run.when(0.2, lambda: (run.processor("processor-1", idle_exit_s=25),
                                run.note("processor-1 joins")))

    def leave() -> None:
        run.stops["processor-0"].set()
        run.note("processor-0 leaves (stop)")

    th = run.when(0.6, leave)
    t1.join(300)
    run.wait()
    th.join(5)
    res = {r[1]: r for r in run.processor_results()}
    assert set(res) == {"processor-0", "processor-1"}
    assert res["processor-0"][2] > 0 and res["processor-1"][2] > 0, "both did work"
    c = count_check(run.settings, run)
    assert sum(committed(run.settings, run.group)) == end_offsets(run.settings)
    assert c.lost == 0 and c.duplicated == 0


def test_redis_restarted_live_state_rebuilt_within_60_s(run: Run,
                                                        services: ServicesConfig) -> None:
    redis_svc = RedisService(services)
    rebuilt: dict[str, float] = {}

    def restart_redis() -> None:
        pid = redis_svc.live_pids()["redis"]
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        run.note(f"SIGKILL redis (pid {pid})")
        redis_svc.start()
        t0 = time.monotonic()
        run.note("restarted redis (empty: no persistence)")
        live = RedisLive(run.settings)
        try:
            while time.monotonic() - t0 < 60:
                kpis = live.get_kpis()
                if (kpis.get("homes_total") == HOMES and live.get_area_stats(5) is not None
                        and len(live.get_top_consumers()) > 0
                        and live.get_meter(HouseholdFleet(HOMES).meters.meter_id[0])):
                    rebuilt["s"] = time.monotonic() - t0
                    run.note(f"live state rebuilt after {rebuilt['s']:.1f} s")
                    return
                threading.Event().wait(0.5)
        finally:
            live.close()

    run.processor("processor-0")
    run.processor("processor-1")
    run.producer(0)
    run.producer(1)
    th = run.when(0.3, restart_redis)
    run.wait()
    th.join(70)
    assert "s" in rebuilt and rebuilt["s"] < 60, run.events
    c = count_check(run.settings, run)
    assert c.lost == 0 and c.duplicated == 0


def test_cassandra_unavailable_30_s_processors_back_off_then_catch_up(
        run: Run, services: ServicesConfig, capfd: pytest.CaptureFixture[str]) -> None:
    cassandra = CassandraService(services)
    marks: dict[str, list[int]] = {}

    def outage() -> None:
        pid = next(p for p in cassandra.live_pids().values() if p)
        os.kill(pid, signal.SIGSTOP)
        run.note(f"SIGSTOP cassandra (pid {pid}): unavailable")
        try:
            threading.Event().wait(8)
            marks["early"] = committed(run.settings, run.group)
            threading.Event().wait(21)
            marks["late"] = committed(run.settings, run.group)
            threading.Event().wait(1)
        finally:
            os.kill(pid, signal.SIGCONT)
            run.note("SIGCONT cassandra: available again")

    run.processor("processor-0")
    run.processor("processor-1")
    run.producer(0)
    run.producer(1)
    th = run.when(0.2, outage)
    run.wait()
    th.join(60)
    err = capfd.readouterr().err
    assert "failed (attempt 1)" in err and "offsets stay uncommitted" in err, err[-3000:]
    assert "succeeded after" in err
    # no commits while history could not be written
    assert marks["early"] == marks["late"], marks
    # every message read (a processor that gave up early would leave some behind)
    assert sum(committed(run.settings, run.group)) == end_offsets(run.settings), err[-3000:]
    c = count_check(run.settings, run)
    assert c.lost == 0 and c.duplicated == 0


def test_producer_restarted_no_gaps_no_duplicates(run: Run) -> None:
    run.processor("processor-0")
    run.processor("processor-1")
    run.producer(0)
    run.producer(1)
    started: list[float] = []

    def restart() -> None:
        run.kill("producer-0")
        elapsed = int(time.monotonic() - started[0])
        # a restarted producer resumes from its last checkpoint, a few seconds back (what
        # it cannot know was delivered); it sends the overlap at once, then keeps pace
        resume = max(0, elapsed - 6)
        run.producer(0, first_s=START + resume, burst_s=elapsed - resume + 1,
                     name="producer-0-restarted")
        run.note(f"restarted producer-0 from event second {resume}")

    # the producers pace one event second per wall second from their first message
    run.when(1 / SECONDS, lambda: started.append(time.monotonic() - 1)).join(300)
    th = run.when(0.35, restart)
    run.wait()
    th.join(5)
    in_topic = end_offsets(run.settings)
    assert in_topic > HOMES * SECONDS, "the restart re-sent an overlap (duplicates on the bus)"
    c = count_check(run.settings, run)
    reasons = dlq_reasons(run.settings)
    log.warning("FIGURES producer restart: %d messages on the bus for %d readings; DLQ %s",
                in_topic, HOMES * SECONDS, reasons)
    assert c.lost == 0 and c.duplicated == 0


OUTAGE_SCENARIO = """\
name: fault-outage
description: one area outage in the middle of a fault test (SE London, dense enough)
fleet:
  bounds: [51.439, -0.097, 51.481, -0.036]
events:
  - id: outage
    kind: area_outage
    at: 12s
    duration: 25s
    cells: 1
    min_homes: 6
"""


def test_processor_killed_during_an_outage_alert_neither_lost_nor_duplicated(
        run: Run, tmp_path: Path) -> None:
    """One processor (a cell's meters in one detector), killed while an area outage is
    open and restarted: the outage is alerted once, under one id (the restarted detector
    re-reads the uncommitted minute and finds the same outage start, so the same id)."""
    from smartmeter_lib.detect import alerts_from_events
    from smartmeter_lib.model import AlertKind
    from smartmeter_lib.simulate.scenario import load_scenario, resolve_events
    from smartmeter_lib.stack import build_fleet

    path = tmp_path / "outage.yaml"
    path.write_text(OUTAGE_SCENARIO)
    run.scenario = str(path)
    fleet = build_fleet(run.settings, START, str(path))
    truth = [e for e in resolve_events(load_scenario(path), fleet, START)
             if e.kind == "area_outage"]
    h = CassandraHistory(run.settings)
    h.register_meters(fleet.meters)  # the scenario's fleet: same ids, its own locations
    h.close()
    run.processor("processor-0")
    run.producer(0)
    run.producer(1)

    def kill_and_restart() -> None:
        run.kill("processor-0")
        run.processor("processor-0-restarted", idle_exit_s=25)
        run.note("started processor-0-restarted (the outage is open)")

    th = run.when(0.4, kill_and_restart)  # event second ~24: the outage runs 12-37 s
    run.wait()
    th.join(5)
    c = count_check(run.settings, run, fleet=build_fleet(run.settings, START, str(path)))
    assert c.lost == 0 and c.duplicated == 0
    h = CassandraHistory(run.settings)
    try:
        events = h.read_events((START - 3600) * 1000, (START + SECONDS + 3600) * 1000)
    finally:
        h.close()
    alerts = alerts_from_events(events)
    outages = [a for a in alerts if a.kind == AlertKind.AREA_OUTAGE]
    # not lost, not duplicated: one alert, for the cell that lost power, under one id
    assert [a.area for a in outages] == [truth[0].cells[0]], [a.to_dict() for a in alerts]
    on_topic = alert_ids_on_topic(run.settings)
    area_ids = {k for k in on_topic if k.startswith("area_outage")}
    assert area_ids == {outages[0].alert_id}, on_topic
    log.warning("FIGURES alerts: %d alert messages on the topic for %d alert(s): %s",
                sum(on_topic.values()), len(on_topic), on_topic)
