"""The benchmark's measuring logic, free of services: machine details, percentiles, whether a
consumer lag stayed bounded, and the bounded ramp search for the largest sustainable fleet."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name (Linux), else what :mod:`platform` knows."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15-minute load averages (the machine is shared: record them)."""
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "cpu": cpu_model(),
            "cores": psutil.cpu_count(), "memory_gib": round(psutil.virtual_memory().total
                                                               / 2**30, 1),
            "load_average": load_average()}


def percentile(samples: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) by the nearest-rank method (an observed value, never
    an interpolation between two); None without samples."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    if len(samples) == 0:
        return None
    xs = np.sort(np.asarray(samples, np.float64))
    rank = max(1, int(np.ceil(q / 100 * len(xs))))
    return float(xs[rank - 1])


@dataclass(frozen=True)
class LagVerdict:
    """Whether a consumer lag stayed bounded over a window, and the evidence."""

    bounded: bool
    slope_per_s: float  #: least-squares growth of the lag (messages per second)
    max_lag: int
    last_lag: int
    produce_rate: float  #: messages per second added to the topic in the window
    reason: str


def lag_bounded(t_s: Sequence[float], lag: Sequence[int], produced: Sequence[int],
                target_rate: float, bound: float, slope_tolerance: float = 0.02,
                rate_tolerance: float = 0.95) -> LagVerdict:
    """Judge a window of samples (time, consumer lag, total produced).

    Sustainable means all of: the producers put at least ``rate_tolerance`` of
    ``target_rate`` on the topic (else the consumers were never offered the load); the lag
    never exceeded ``bound`` messages; and it did not trend upwards: its least-squares slope
    is at most ``slope_tolerance`` of the target rate (a lag that grows by 2% of the input
    per second is falling behind, however small it still is).
    """
    t = np.asarray(t_s, np.float64)
    lg = np.asarray(lag, np.float64)
    pr = np.asarray(produced, np.float64)
    if len(t) < 3 or t[-1] - t[0] <= 0:
        return LagVerdict(False, 0.0, int(lg.max(initial=0)), int(lg[-1]) if len(lg) else 0,
                          0.0, "too few samples to judge")
    slope = float(np.polyfit(t - t[0], lg, 1)[0])
    rate = float((pr[-1] - pr[0]) / (t[-1] - t[0]))
    max_lag, last = int(lg.max()), int(lg[-1])
    if rate < rate_tolerance * target_rate:
        why, ok = (f"producers reached {rate:,.0f} msg/s, under {rate_tolerance:.0%} of "
                   f"{target_rate:,.0f}"), False
    elif max_lag > bound:
        why, ok = f"lag reached {max_lag:,} messages, over the bound {bound:,.0f}", False
    elif slope > slope_tolerance * target_rate:
        why, ok = (f"lag grew by {slope:,.0f} msg/s, over {slope_tolerance:.0%} of the "
                   "input"), False
    else:
        why, ok = f"lag at most {max_lag:,} messages and not growing ({slope:+,.0f} msg/s)", True
    return LagVerdict(ok, slope, max_lag, last, rate, why)


def ramp_search(sustainable: Callable[[int], bool], start: int, limit: int,
                max_steps: int, resolution: int) -> tuple[int | None, list[tuple[int, bool]]]:
    """The largest fleet for which ``sustainable(n)`` holds, searched with at most
    ``max_steps`` trials: double from ``start`` up to ``limit``, then bisect between the last
    success and the first failure until they are ``resolution`` apart. Returns (largest
    sustainable or None, the trials in order)."""
    if start < 1 or limit < start or max_steps < 1:
        raise ValueError(f"bad ramp: start {start}, limit {limit}, max_steps {max_steps}")
    trials: list[tuple[int, bool]] = []
    good: int | None = None
    bad: int | None = None
    n = start
    while len(trials) < max_steps:
        ok = sustainable(n)
        trials.append((n, ok))
        if ok:
            good = n
            if bad is None:
                if n >= limit:
                    break
                n = min(limit, n * 2)
                continue
        else:
            bad = n
        lo = good if good is not None else 0
        if bad - lo <= resolution:
            break
        n = (lo + bad) // 2 // resolution * resolution or resolution
        if n <= lo or n >= bad:
            break
    return good, trials


def latencies_from_polls(polls: Sequence[tuple[float, int]], seen_before_ms: int | None = None,
                         step_ms: int = 1000) -> list[float]:
    """Latencies (s) from polls of (wall time ms when polled, newest event second visible).

    When a poll finds the visible second moved from ``a`` to ``b``, every second in (a, b]
    became visible at that poll: each gives one sample, wall time minus its event time.
    """
    out: list[float] = []
    last = seen_before_ms
    for wall_ms, ts_ms in polls:
        if last is None:
            last = ts_ms  # the first value seen may have been visible for a while: no sample
            continue
        if ts_ms > last:
            for s in range(last + step_ms, ts_ms + 1, step_ms):
                out.append((wall_ms - s) / 1000.0)
            last = ts_ms
    return out
