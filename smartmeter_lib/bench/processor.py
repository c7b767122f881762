"""The processor alone: readings per CPU-second on one core, and its memory per meter.

The fleet's messages are generated and put on a memory bus first; then one processor (windows,
detectors, both embedded sinks) takes them in columnar micro-batches. CPU time is that of the
processor's thread, so the figure holds on a busy machine; wall time is reported beside it.
"""

from __future__ import annotations

import resource
import tempfile
import time
from typing import Any

import psutil

from smartmeter_lib.adapters import open_history, open_live
from smartmeter_lib.bench.measure import load_average, machine
from smartmeter_lib.codec import encode_batch
from smartmeter_lib.config import Settings
from smartmeter_lib.simulate.households import HouseholdFleet
from smartmeter_lib.stream.inprocess import memory_bus
from smartmeter_lib.stream.runner import Processor


def _rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


def bench_processor(settings: Settings, seconds: int) -> dict[str, Any]:
    """Run one processor over ``seconds`` of the fleet's readings, already on the bus."""
    homes = settings.homes
    with tempfile.TemporaryDirectory(prefix="smartmeter-bench-proc-") as tmp:
        s = settings.with_overrides(data_dir=tmp)
        load_start = load_average()
        fleet = HouseholdFleet(homes, seed=s.seed)
        bus = memory_bus(s)
        start = int(time.time()) - seconds - 120
        for k in range(seconds):
            keys, values = encode_batch(fleet.readings(start + k))
            bus.produce_batch(s.topic_readings, keys, values)
        history, live = open_history(s), open_live(s)
        history.register_meters(fleet.meters)
        rss0 = _rss_mib()
        proc = Processor(s, bus, history, live, meters=fleet.meters)
        total = homes * seconds
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        while proc.stats.messages_in < total:
            proc.step(timeout_s=0.05)
        cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
        state_mib = _rss_mib() - rss0
        proc.finish()
        proc.close()
        st = proc.stats
        for x in (bus, history, live):
            x.close()
    return {
        "homes": homes, "event_seconds": seconds, "readings": st.messages_in,
        "batch_max": s.batch_max, "cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
        "readings_per_cpu_s": round(st.messages_in / max(cpu, 1e-9)),
        "readings_per_wall_s": round(st.messages_in / max(wall, 1e-9)),
        "processor_state_mib": round(state_mib), "bytes_per_meter": round(
            state_mib * 2**20 / homes),
        "alerts_raised": st.alerts_raised, "rejected": sum(st.rejected.values()),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        **machine(), "load_average_start": load_start, "load_average_end": load_average(),
    }
