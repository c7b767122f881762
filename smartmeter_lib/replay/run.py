"""Replay real meter files into the configured bus, with their own event time.

With the embedded default (memory bus) the replay runs the processor in-process, so the
readings land in the embedded history (and its rollups) on disk, for later commands such as
``smartmeter export``. Readings are produced in event-time order (so per meter too), as fast as
possible (``speedup=0``) or paced: ``speedup=S`` plays S seconds of event time per second.

LCL meters have no known location. A meter that the history registry does not know yet is
registered at a pseudo-location derived from its id (:func:`smartmeter_lib.simulate.placement.
pseudo_location`: a stable point within 10 km of Charing Cross); a meter already registered
keeps its location.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from smartmeter_lib.adapters import open_history, open_live
from smartmeter_lib.adapters.base import Bus, HistoryStore
from smartmeter_lib.codec import encode_batch
from smartmeter_lib.config import Settings
from smartmeter_lib.errors import ConfigError
from smartmeter_lib.model import MeterInfo, ReadingBatch
from smartmeter_lib.replay.readers import MeterFile, read_meter_file
from smartmeter_lib.simulate.pipeline import wait_for_room
from smartmeter_lib.simulate.placement import encode_geohash, pseudo_location
from smartmeter_lib.stream.inprocess import ProcessorThread, memory_bus
from smartmeter_lib.stream.runner import Processor, ProcessorStats

log = logging.getLogger(__name__)
_CHUNK = 20_000


@dataclass
class ReplayResult:
    files: list[MeterFile]
    readings: int = 0  #: messages produced
    meters: list[str] = field(default_factory=list)
    registered: int = 0  #: meters added to the registry at a pseudo-location
    duplicates_across_files: int = 0
    processor: ProcessorStats | None = None
    wall_s: float = 0.0

    @property
    def bad_rows(self) -> int:
        return sum(len(f.bad_rows) for f in self.files)


def load_files(paths: Sequence[str | Path], meters: Iterable[str] | None = None,
               start: pd.Timestamp | None = None, end: pd.Timestamp | None = None,
               progress: bool = False) -> tuple[list[MeterFile], pd.DataFrame, int]:
    """Read the files; one frame in event-time order, and how many rows repeated a
    (meter, time) of an earlier file (the first file wins)."""
    if not paths:
        raise ConfigError("give at least one meter file to replay")
    wanted = None if meters is None else list(meters)
    files = [read_meter_file(p, wanted, progress=progress) for p in paths]
    for f in files:
        log.info("%s", f.summary())
    frame = pd.concat([f.frame for f in files], ignore_index=True)
    if start is not None:
        frame = frame[frame["ts"] >= start]
    if end is not None:
        frame = frame[frame["ts"] < end]
    dup = frame.duplicated(["meter_id", "ts"], keep="first")
    if dup.any():
        log.warning("%d readings repeat a meter and time of an earlier file; the first is kept",
                    int(dup.sum()))
    frame = frame[~dup].sort_values(["ts", "meter_id"], kind="stable").reset_index(drop=True)
    return files, frame, int(dup.sum())


def register_unknown(history: HistoryStore, meter_ids: Sequence[str]) -> tuple[MeterInfo, int]:
    """The registry entries of ``meter_ids``, registering unknown ones at a pseudo-location."""
    known = history.meters().to_pandas().set_index("meter_id")
    new = [m for m in meter_ids if m not in known.index]
    if new:
        lat, lon = pseudo_location(new)
        history.register_meters(MeterInfo(np.array(new, dtype=object), lat, lon,
                                           encode_geohash(lat, lon, 7)))
        log.info("registered %d new meter(s) at pseudo-locations in London", len(new))
    reg = history.meters().to_pandas().set_index("meter_id").loc[list(meter_ids)]
    return MeterInfo.from_pandas(reg.reset_index()), len(new)


def to_batch(frame: pd.DataFrame) -> ReadingBatch:
    """Readings from a meter-file frame (columns meter_id, ts, kwh, interval_s)."""
    ts_ms = frame["ts"].dt.tz_convert(None).to_numpy("datetime64[ms]").astype(np.int64)
    return ReadingBatch.readings(frame["meter_id"].to_numpy(object), ts_ms,
                                 frame["kwh"].to_numpy(np.float64),
                                 frame["interval_s"].to_numpy(np.uint16))


def produce_frame(frame: pd.DataFrame, bus: Bus, topic: str, speedup: float = 0.0,
                  stop: threading.Event | None = None, progress: bool = False,
                  consumed: Callable[[], int] | None = None) -> int:
    """Send the frame's readings in event-time order; paced when ``speedup > 0``;
    held back while many are not yet ``consumed()``."""
    if speedup < 0:
        raise ConfigError(f"--speedup must be >= 0 (0 = as fast as possible), got {speedup:g}")
    stop = stop or threading.Event()
    batch = to_batch(frame)
    n = len(batch)
    sent = 0
    t0 = int(batch.ts_ms[0]) if n else 0
    wall0 = time.monotonic()
    with tqdm(total=n, unit="reading", file=sys.stderr, disable=None if progress else True,
              desc="replay", leave=False) as bar:
        while sent < n and not stop.is_set():
            if speedup > 0:
                due_ms = t0 + (time.monotonic() - wall0) * speedup * 1000.0
                upto = int(np.searchsorted(batch.ts_ms, due_ms, side="right"))
                if upto <= sent:
                    wait = (int(batch.ts_ms[sent]) - due_ms) / 1000.0 / speedup
                    stop.wait(min(max(wait, 0.001), 1.0))
                    continue
                upto = min(upto, sent + _CHUNK)
            else:
                upto = min(n, sent + _CHUNK)
            wait_for_room(sent, consumed, stop)
            keys, values = encode_batch(batch.take(np.arange(sent, upto)))
            bus.produce_batch(topic, keys, values)
            bar.update(upto - sent)
            sent = upto
    bus.flush()
    return sent


def replay_files(settings: Settings, paths: Sequence[str | Path], *, speedup: float = 0.0,
                 start: pd.Timestamp | None = None, end: pd.Timestamp | None = None,
                 meters: Iterable[str] | None = None, progress: bool = False,
                 stop: threading.Event | None = None) -> ReplayResult:
    """Replay meter files through the embedded pipeline into the history under
    ``settings.data_dir``."""
    if settings.bus != "memory":  # pragma: no cover - other buses are not wired here yet
        raise ConfigError(f"replay supports the memory bus only for now, got {settings.bus!r}")
    t_start = time.monotonic()
    files, frame, dups = load_files(paths, meters, start, end, progress)
    result = ReplayResult(files, duplicates_across_files=dups)
    if frame.empty:
        log.warning("nothing to replay: no readings in the chosen files, meters and times")
        return result
    ids = sorted(frame["meter_id"].unique().tolist())
    stop = stop or threading.Event()
    history = open_history(settings)
    live = open_live(settings)
    bus = memory_bus(settings)
    try:
        reg, result.registered = register_unknown(history, ids)
        # the processor tracks the replayed meters only: its windows stay small
        proc = Processor(settings, bus, history, live, meters=reg, group_id="smartmeter-replay")
        worker = ProcessorThread(proc, "replay-processor", on_error=stop).start()
        try:
            result.readings = produce_frame(
                frame, bus, settings.topic_readings, speedup, stop, progress,
                consumed=lambda: proc.stats.messages_in)
        except KeyboardInterrupt:
            log.warning("interrupted: stopping the replay after the readings sent so far")
        worker.drain(result.readings)
        result.processor = proc.stats
        result.meters = ids
    finally:
        bus.close()
        history.close()
        live.close()
    result.wall_s = time.monotonic() - t_start
    if result.processor and result.processor.rejected:
        log.warning("the processor refused some readings: %s", result.processor.rejected)
    return result


__all__ = ["ReplayResult", "load_files", "produce_frame", "register_unknown",
           "replay_files", "to_batch"]
