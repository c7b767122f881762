"""The pipeline in the background: M processors (``smartmeter process``) in one consumer
group and N producers, each sending a west-to-east band of the simulated fleet.

Every process has a pid file and a log in the run directory (:mod:`.background`). Starting is
idempotent: processes that run are left alone. The processors start first and the producers
only once the group has all its members, so that no reading waits for a rebalance.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from smartmeter_lib.config import Settings
from smartmeter_lib.errors import OpsError
from smartmeter_lib.ops.background import Background
from smartmeter_lib.ops.context import settings_env
from smartmeter_lib.ops.offsets import group_members, read_offsets

log = logging.getLogger(__name__)
PROCESSOR_GRACE_S = 60.0  #: processors outlive the producers by this much, to drain


def processor_names(workers: int) -> list[str]:
    return [f"processor-{i}" for i in range(workers)]


def producer_names(producers: int) -> list[str]:
    return [f"producer-{i}" for i in range(producers)]


def processor_argv(group: str, duration_s: float) -> list[str]:
    """``smartmeter process`` as one member of ``group``, for ``duration_s`` seconds."""
    return [sys.executable, "-m", "smartmeter_lib.cli", "process", "--group", group,
            "--duration", f"{duration_s:g}"]


def producer_argv(part: int, parts: int, start_s: int, duration_s: float,
                  speedup: float) -> list[str]:
    """The band producer of :mod:`smartmeter_lib.ops.producer`.

    >>> producer_argv(1, 3, 1700000000, 60, 1.0)[2:]
    ['smartmeter_lib.ops.producer', '--part', '1', '--parts', '3', '--start', '1700000000', \
'--duration', '60', '--speedup', '1']
    """
    return [sys.executable, "-m", "smartmeter_lib.ops.producer", "--part", str(part),
            "--parts", str(parts), "--start", str(start_s), "--duration", f"{duration_s:g}",
            "--speedup", f"{speedup:g}"]


def _wait(cond: str, check: Callable[[], bool], timeout_s: float, bg: Background,
          names: list[str]) -> None:
    end = time.monotonic() + timeout_s
    while not check():
        bg.require_running(names)  # fail at once, with the log, when one died
        if time.monotonic() > end:
            raise OpsError(f"{cond} not within {timeout_s:.0f} s; see the logs in "
                           f"{bg.run_dir}")
        time.sleep(0.5)


def start_pipeline(settings: Settings, run_dir: str | Path, producers: int = 3,
                   workers: int = 2, duration_s: float = 600.0, speedup: float = 1.0,
                   group: str = "smartmeter-processor", ready_timeout_s: float = 180.0,
                   start_s: int | None = None) -> pd.DataFrame:
    """Register the fleet, start ``workers`` processors and ``producers`` band producers in
    the background, and wait until the group has formed and readings arrive. Returns the
    status table of the run directory."""
    from smartmeter_lib.adapters import open_history
    from smartmeter_lib.simulate.households import HouseholdFleet

    if producers < 1 or not 1 <= workers <= 6:
        raise OpsError(f"producers must be >= 1 and workers 1..6 (fake_iot has 6 partitions), "
                       f"got producers={producers}, workers={workers}")
    if duration_s <= 0 or speedup < 0:
        raise OpsError("duration_s must be positive and speedup non-negative")
    bg = Background(run_dir)
    env = {**settings_env(settings), "PYTHONUNBUFFERED": "1"}
    procs, prods = processor_names(workers), producer_names(producers)
    if bg.running(prods):
        log.info("producers already run in %s: nothing to start", bg.run_dir)
        bg.require_running(procs)
        return bg.status()
    history = open_history(settings)
    try:
        history.register_meters(HouseholdFleet(settings.homes, seed=settings.seed).meters)
    finally:
        history.close()
    wall = duration_s / speedup if speedup > 0 else duration_s
    for name in procs:
        bg.start(name, processor_argv(group, wall + PROCESSOR_GRACE_S), env)
    _wait(f"consumer group {group} with {workers} members",
          lambda: group_members(settings, group) >= workers, ready_timeout_s, bg, procs)
    before = read_offsets(settings, settings.topic_readings).total_end
    start = int(time.time()) if start_s is None else start_s
    for i, name in enumerate(prods):
        bg.start(name, producer_argv(i, producers, start, duration_s, speedup), env)
    _wait(f"readings arriving in {settings.topic_readings}",
          lambda: read_offsets(settings, settings.topic_readings).total_end > before,
          ready_timeout_s, bg, prods + procs)
    log.info("pipeline runs: %d producers, %d processors in group %s (logs in %s)",
             producers, workers, group, bg.run_dir)
    return bg.status()


def stop_pipeline(run_dir: str | Path, timeout_s: float = 30.0) -> pd.DataFrame:
    """Stop the producers first, then the processors (they finish their windows, write and
    commit on SIGINT). One row per process: name and how it ended."""
    bg = Background(run_dir)
    order = {"producer": 0, "processor": 1}
    names = sorted(bg.names(), key=lambda n: (order.get(n.split("-")[0], 2), n))
    return pd.DataFrame([{"name": n, "result": bg.stop(n, timeout_s)} for n in names],
                        columns=["name", "result"])
