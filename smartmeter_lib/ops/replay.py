"""Replay real meter files into the real stack: Kafka, Cassandra and Redis.

The files' readings go to their own topic (``<readings>_replay``) and are taken by a processor
of their own, which knows the replayed meters (registered at pseudo-locations when new; see
docs/replay.md) and writes the history keyspace of the pipeline. The replay never disturbs
the running pipeline: its old event times would be late there, and its meters unknown. Its
live figures go under their own Redis prefix (``<prefix>replay:``).

Replaying the same files again stores each reading once (history writes are upserts), and the
processor's group reads only what was produced since its last commit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from smartmeter_lib.config import Settings
from smartmeter_lib.errors import OpsError
from smartmeter_lib.ops.offsets import read_offsets

log = logging.getLogger(__name__)


@dataclass
class StackReplay:
    readings: int  #: sent to the replay topic
    bad_rows: int
    registered: int  #: meters new to the registry
    rejected: dict[str, int]  #: refused by the processor, by reason (in the dead-letter topic)
    lag_after: int  #: readings of the replay topic not committed at the end (0 when done)
    check: pd.DataFrame  #: per meter: readings in the files and in Cassandra

    def require_stored(self) -> None:
        short = self.check[self.check["in_cassandra"] < self.check["in_files"]]
        if len(short) or self.lag_after:
            raise OpsError(f"the replay is incomplete: {len(short)} meter(s) have fewer "
                           f"readings in Cassandra than in the files, {self.lag_after} "
                           "readings not processed; see the log above and rerun (it is "
                           "idempotent)")


def default_sample() -> Path:
    """One year of one London household (LCL, Kaggle format), beside the checkout:
    ``<repo>/../shared/data/lcl-samples/MAC000002_2013_kaggle_format.csv``."""
    from smartmeter_lib.services.config import find_project_root

    return (find_project_root().parent / "shared" / "data" / "lcl-samples"
            / "MAC000002_2013_kaggle_format.csv")


def replay_settings(settings: Settings) -> Settings:
    return settings.with_overrides(topic_readings=f"{settings.topic_readings}_replay",
                                   redis_prefix=f"{settings.redis_prefix}replay:")


def replay_into_stack(settings: Settings, files: Sequence[str | Path],
                      meters: Sequence[str] | None = None, start: str | None = None,
                      end: str | None = None, speedup: float = 0.0, replication: int = 3,
                      min_isr: int = 2, idle_exit_s: float = 10.0, timeout_s: float = 900.0,
                      progress: bool = True) -> StackReplay:
    """Replay ``files`` (readings from ``start`` to before ``end``) through Kafka into
    Cassandra, and check every reading is there. Bounded by ``timeout_s`` of processing."""
    from smartmeter_lib.adapters import open_history, open_live
    from smartmeter_lib.adapters.kafka_bus import KafkaBus
    from smartmeter_lib.ops.provision import ensure_topics
    from smartmeter_lib.replay.run import load_files, produce_frame, register_unknown
    from smartmeter_lib.stream.runner import Processor

    missing = [str(f) for f in files if not Path(f).is_file()]
    if not files or missing:
        raise OpsError(f"meter files not found: {missing or 'none given'}; pass existing "
                       "files (e.g. the LCL samples in ../shared/data/lcl-samples)")
    t0 = None if start is None else pd.Timestamp(start, tz="UTC")
    t1 = None if end is None else pd.Timestamp(end, tz="UTC")
    rs = replay_settings(settings)
    ensure_topics(rs, replication, min_isr)
    read, frame, _dups = load_files(files, meters, t0, t1, progress)
    bad = sum(len(f.bad_rows) for f in read)
    if frame.empty:
        raise OpsError(f"nothing to replay: no readings in {list(map(str, files))} for "
                       f"meters={meters}, start={start}, end={end}")
    ids = sorted(frame["meter_id"].unique().tolist())
    history, live, bus = open_history(rs), open_live(rs), KafkaBus(rs, "smartmeter-replay")
    group = f"{rs.topic_readings}-processor"
    try:
        reg, registered = register_unknown(history, ids)
        sent = produce_frame(frame, bus, rs.topic_readings, speedup, progress=progress)
        log.info("replay: %d readings of %d meter(s) sent to %s", sent, len(ids),
                 rs.topic_readings)
        proc = Processor(rs, bus, history, live, meters=reg, group_id=group)
        try:
            stats = proc.run(duration_s=timeout_s, idle_exit_s=idle_exit_s)
        finally:
            proc.close()
        lag = read_offsets(rs, rs.topic_readings, group).total_lag
        rows = []
        for m, g in frame.groupby("meter_id"):
            lo = int(g["ts"].min().value // 1_000_000)
            hi = int(g["ts"].max().value // 1_000_000) + 1
            rows.append({"meter_id": m, "in_files": len(g),
                         "in_cassandra": len(history.read_readings(str(m), lo, hi)),
                         "first": g["ts"].min(), "last": g["ts"].max()})
    finally:
        bus.close()
        history.close()
        live.close()
    return StackReplay(sent, bad, registered, dict(stats.rejected), lag, pd.DataFrame(rows))
