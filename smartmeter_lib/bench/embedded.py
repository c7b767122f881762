"""The embedded pipeline's throughput: readings/s through simulate, process and sinks."""

from __future__ import annotations

import resource
import tempfile
import threading
import time
from typing import Any

from smartmeter_lib.bench.measure import load_average, machine
from smartmeter_lib.config import Settings
from smartmeter_lib.demo import EmbeddedPipeline


def bench_embedded(settings: Settings, seconds: int) -> dict[str, Any]:
    """Readings/s through the embedded pipeline (producer unpaced, processor, sinks)."""
    with tempfile.TemporaryDirectory(prefix="smartmeter-bench-") as tmp:
        s = settings.with_overrides(data_dir=tmp)
        load_start = load_average()
        pipe = EmbeddedPipeline(s, speedup=0.0, start_s=int(time.time()) - seconds - 60)
        total = s.homes * seconds
        t0 = time.perf_counter()
        pipe.start(duration_s=seconds)
        done = threading.Event()
        while not done.wait(0.05):
            if pipe.processor.stats.messages_in >= total or pipe.failed is not None:
                done.set()
        wall = time.perf_counter() - t0
        pipe.stop()
        if pipe.failed is not None:
            raise pipe.failed
        st = pipe.processor.stats
    return {
        "homes": s.homes, "event_seconds": seconds, "readings": st.messages_in,
        "wall_s": round(wall, 2), "readings_per_s": round(st.messages_in / wall),
        "realtime_factor": round(seconds / wall, 1),
        "rollup_rows": st.rollups_written, "readings_stored": st.readings_stored,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        **machine(), "load_average_start": load_start,
    }
