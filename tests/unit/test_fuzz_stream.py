"""Bad input through the real processor (memory bus, embedded stores): every bad message goes
to the dead-letter topic with a reason, is counted in the metrics, and the processor keeps
going; every good one is stored. Property tests (hypothesis) mix random bad messages into
good ones; example tests pin down each kind of bad input."""

from __future__ import annotations

import json
import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartmeter_lib.adapters.embedded_history import EmbeddedHistory
from smartmeter_lib.adapters.embedded_live import EmbeddedLive
from smartmeter_lib.adapters.memory_bus import MemoryBus
from smartmeter_lib.codec import MIN_TS_MS, encode_one
from smartmeter_lib.config import build_settings
from smartmeter_lib.simulate.fleet import Fleet
from smartmeter_lib.stream.runner import Processor
from smartmeter_lib.stream.validate import Limits, value_reasons

NOW_S = int(time.time()) // 60 * 60 - 3600  # an hour ago: neither late nor in the future
T0 = NOW_S * 1000
FLEET = Fleet(12, seed=3)
METERS = FLEET.meters.meter_id.tolist()


def pack(kwh: float, ts_ms: int = T0, version: int = 1, kind: int = 0,
         interval_s: int = 1) -> bytes:
    return struct.pack("<BBHIqd", version, kind, interval_s, 0, ts_ms, kwh)


@dataclass
class Outcome:
    stats: object
    dlq: list[dict[str, object]]
    stored: int


class Stack:
    """A processor on a memory bus and embedded stores in a directory of its own."""

    def __init__(self, root: Path) -> None:
        self.settings = build_settings(data_dir=root, allowed_lateness_s=120)
        self.bus = MemoryBus()
        for t in (self.settings.topic_readings, self.settings.topic_dlq,
                  self.settings.topic_alerts):
            self.bus.create_topic(t, partitions=3)
        self.history = EmbeddedHistory(self.settings.history_dir)
        self.history.register_meters(FLEET.meters)
        self.live = EmbeddedLive(self.settings.live_db_path)
        self.proc = Processor(self.settings, self.bus, self.history, self.live,
                              flush_interval_s=0.0)

    def send(self, msgs: list[tuple[bytes | None, bytes]]) -> None:
        self.bus.produce_batch(self.settings.topic_readings, [k for k, _ in msgs],
                               [v for _, v in msgs])

    def drain(self) -> None:
        while self.proc.step(timeout_s=0.01):
            pass

    def outcome(self) -> Outcome:
        self.drain()
        self.proc.finish()
        c = self.bus.consumer([self.settings.topic_dlq], "dlq-check")
        dlq = [json.loads(m.value or b"") for m in c.poll_batch(1_000_000, 0.01)]
        stored = sum(len(self.history.read_readings(m, T0 - 86_400_000, T0 + 86_400_000))
                     for m in METERS)
        return Outcome(self.proc.stats, dlq, stored)

    def close(self) -> None:
        self.proc.close()
        for x in (self.bus, self.history, self.live):
            x.close()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = Stack(tmp_path)
    yield s
    s.close()


def good_messages(n: int, first_s: int = 0) -> list[tuple[bytes | None, bytes]]:
    return [encode_one(METERS[i % len(METERS)], T0 + (first_s + i // len(METERS)) * 1000,
                       0.0002) for i in range(n)]


# -- one kind of bad input at a time -----------------------------------------------------
BAD = {
    "malformed bytes": [(b"M1", b"\x13\x37garbage"), (b"M1", b""), (b"M1", bytes(range(23)))],
    "wrong schema version": [(METERS[0].encode(), pack(0.0001, version=v)) for v in (0, 2, 255)],
    "missing fields": [(None, pack(0.0001)), (b"", pack(0.0001)),
                       (METERS[0].encode(), pack(0.0001)[:16])],
    "unknown kind": [(METERS[0].encode(), pack(0.0001, kind=7))],
    "zero interval": [(METERS[0].encode(), pack(0.0001, interval_s=0))],
    "not a number": [(METERS[1].encode(), pack(v, ts_ms=T0 + 5000 + i))
                     for i, v in enumerate((float("nan"), float("inf"), float("-inf")))],
    "impossible power": [(METERS[2].encode(), pack(0.03, ts_ms=T0 + 7000)),  # 108 kW
                         (METERS[2].encode(), pack(-0.03, ts_ms=T0 + 8000)),
                         (METERS[2].encode(), pack(1e300, ts_ms=T0 + 9000)),
                         (METERS[2].encode(), pack(2.0, ts_ms=T0, interval_s=60))],  # 120 kW
    "timestamp far in the past": [(METERS[3].encode(), pack(0.0001, ts_ms=5)),
                                  (METERS[3].encode(), pack(0.0001, ts_ms=-(2**62)))],
    "timestamp out of range": [(METERS[3].encode(), pack(0.0001, ts_ms=2**62))],
    "timestamp in the future": [(METERS[4].encode(), pack(0.0001, ts_ms=T0 + 10 * 86_400_000)),
                                (METERS[4].encode(), pack(0.0001, ts_ms=4_000_000_000_000))],
    "unknown meter": [(b"NOT-A-METER", pack(0.0001)), ("Ωmeter".encode(), pack(0.0001)),
                      (b"x' OR '1'='1", pack(0.0001))],
    "oversized": [(METERS[0].encode(), pack(0.0001) * 50_000),  # 1.2 MB
                  (b"m" * 10_000, pack(0.0001)), (b"\xff\xfe\xfd", pack(0.0001))],
}
REASON = {
    "malformed bytes": "", "wrong schema version": "unsupported schema version",
    "missing fields": "", "unknown kind": "unknown message kind",
    "zero interval": "interval_s is 0", "not a number": "not a finite number",
    "impossible power": "physically impossible", "timestamp far in the past": "out of range",
    "timestamp out of range": "out of range", "timestamp in the future": "in the future",
    "unknown meter": "unknown meter", "oversized": "",
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_each_kind_of_bad_input_is_dead_lettered_counted_and_the_processor_goes_on(
        stack: Stack, kind: str) -> None:
    bad = BAD[kind]
    stack.send(good_messages(24))
    stack.send(bad)
    stack.drain()
    stack.send(good_messages(24, first_s=2))  # the processor keeps running after them
    out = stack.outcome()
    assert out.stored == 48
    assert sum(out.stats.rejected.values()) == len(bad), out.stats.rejected  # type: ignore
    assert len(out.dlq) == len(bad)
    for d in out.dlq:
        assert REASON[kind] in str(d["reason"]) and d["reason"]
    assert out.stats.messages_in == 48 + len(bad)  # type: ignore[attr-defined]
    kpis = stack.live.get_kpis()
    assert kpis["rejected"] == len(bad) and kpis["messages_in"] == 48 + len(bad)


def test_negative_readings_and_80_kw_spikes_are_valid_readings(stack: Stack) -> None:
    """PV export, a reversed meter and a meter-fault spike are data the detectors need."""
    msgs = [encode_one(METERS[0], T0, -0.0012),            # -4.3 kW: PV export
            encode_one(METERS[1], T0, -0.0004),            # a reversed meter
            encode_one(METERS[2], T0, 80 / 3600),          # an 80 kW spike
            encode_one(METERS[3], T0, -99 / 3600),         # just inside the bound
            encode_one(METERS[4], T0, 40.0, interval_s=1800)]  # 80 kW over half an hour
    stack.send(msgs)
    out = stack.outcome()
    assert out.stats.rejected == {} and out.dlq == []  # type: ignore[attr-defined]
    assert out.stored == len(msgs)
    got = stack.history.read_readings(METERS[2], T0, T0 + 1000)
    assert got.kwh.tolist() == [pytest.approx(80 / 3600)]


def test_a_flood_of_duplicates_is_dead_lettered_and_counted_once_each(stack: Stack) -> None:
    one = encode_one(METERS[5], T0, 0.0003)
    stack.send(good_messages(24))
    stack.send([one] * 5000)
    out = stack.outcome()
    assert out.stored == 24  # METERS[5] at T0 is among the good ones: stored once
    assert out.stats.rejected == {"duplicate": 5000}  # type: ignore[attr-defined]
    assert len(out.dlq) == 5000 and {d["reason"] for d in out.dlq} == {"duplicate"}
    r = stack.history.read_rollups(60, [METERS[5]], T0, T0 + 60_000)
    assert r.readings.tolist() == [2] and r.kwh.tolist() == [pytest.approx(0.0004)]


def test_the_power_limit_is_a_setting(tmp_path: Path) -> None:
    s = build_settings(data_dir=tmp_path, max_abs_kw=50)
    assert Limits.from_settings(s).max_abs_kw == 50
    r = value_reasons([T0, T0], [60 / 3600, 40 / 3600], [1, 1], Limits.from_settings(s))
    assert r.tolist() == ["import above 50 kW (physically impossible)", None]


# -- properties ----------------------------------------------------------------------------
bad_message = st.one_of(
    st.tuples(st.binary(max_size=80), st.binary(max_size=60).filter(lambda v: len(v) != 24)),
    st.tuples(st.sampled_from(METERS).map(str.encode),
              st.builds(pack, st.floats(allow_nan=True).filter(lambda x: not abs(x) <= 0.0278),
                        st.just(T0))),
    st.tuples(st.sampled_from(METERS).map(str.encode),
              st.builds(pack, st.just(0.0001), st.one_of(  # before 2000, or days ahead
                  st.integers(-(2**63), MIN_TS_MS - 1),
                  st.integers(T0 + 2 * 86_400_000, 2**63 - 1)))),
    st.tuples(st.sampled_from(METERS).map(str.encode),
              st.builds(pack, st.just(0.0001), st.just(T0), st.integers(2, 255))),
    st.tuples(st.text(min_size=1, max_size=20).map(str.encode).filter(
        lambda k: k.decode() not in METERS), st.just(pack(0.0001))),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bad=st.lists(bad_message, max_size=40), n_good=st.integers(0, 60),
       kwh=st.floats(-0.0277, 0.0277))
def test_random_bad_messages_among_good_ones(bad: list[tuple[bytes, bytes]], n_good: int,
                                            kwh: float) -> None:
    with tempfile.TemporaryDirectory() as root:
        s = Stack(Path(root))
        try:
            good = [encode_one(METERS[i % len(METERS)], T0 + (i // len(METERS)) * 1000, kwh)
                    for i in range(n_good)]
            mixed = good + bad
            order = np.random.default_rng(len(bad) * 31 + n_good).permutation(len(mixed))
            s.send([mixed[i] for i in order])
            out = s.outcome()
            assert out.stats.messages_in == len(mixed)  # type: ignore[attr-defined]
            assert out.stored == n_good
            assert sum(out.stats.rejected.values()) == len(bad)  # type: ignore[attr-defined]
            assert len(out.dlq) == len(bad) and all(d["reason"] for d in out.dlq)
            assert sorted(str(d["value_hex"])[:48] for d in out.dlq) == sorted(
                v[:4096].hex()[:48] for _, v in bad)
        finally:
            s.close()


def test_the_processor_loop_survives_a_stream_of_garbage(stack: Stack) -> None:
    rng = np.random.default_rng(7)
    stop = threading.Event()
    garbage = [(rng.bytes(int(rng.integers(0, 40))), rng.bytes(int(rng.integers(0, 60))))
               for _ in range(3000)]
    stack.send(garbage + good_messages(24))
    stats = stack.proc.run(stop=stop, idle_exit_s=0.5)
    assert stats.messages_in == 3024
    assert sum(stats.rejected.values()) + stats.readings_stored == 3024
