"""Bytes on disk per stored reading in Cassandra, and the history's write rate.

The fleet's readings are written through :class:`CassandraHistory` in the slices a processor
would flush (``flush_interval_s`` of event time each). Then Cassandra is stopped cleanly: on
SIGTERM it drains, flushing every memtable to SSTables, so the table's directory under the
service's data dir holds exactly what the readings cost on disk (no nodetool needed). A minute
overwritten by later flushes is merged in the memtable before it reaches the disk, so the one
SSTable written is already what compaction would leave; the number of SSTables is reported.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from smartmeter_lib.config import Settings
from smartmeter_lib.errors import SmartmeterError
from smartmeter_lib.model import ReadingBatch

log = logging.getLogger(__name__)


def table_dir_bytes(data_dir: Path, keyspace: str, table: str) -> tuple[int, int, int]:
    """(all bytes of the table's SSTable files, bytes of its ``*-Data.db`` files, SSTables)
    in ``data_dir/keyspace/table-<id>/`` (snapshots and backups excluded)."""
    total = data = sstables = 0
    ks = data_dir / keyspace
    if not ks.is_dir():
        raise SmartmeterError(f"no keyspace directory {ks}: was the keyspace flushed?")
    for d in ks.glob(f"{table}-*"):
        for f in d.iterdir():
            if f.is_file():
                total += f.stat().st_size
                if f.name.endswith("-Data.db"):
                    data += f.stat().st_size
                    sstables += 1
    return total, data, sstables


def write_fleet(settings: Settings, homes: int, minutes: int, flush_s: int,
                start_s: int) -> dict[str, Any]:
    """Write ``minutes`` of a fleet's 1-Hz readings to ``settings``' keyspace in slices of
    ``flush_s`` seconds, as processors do; returns the readings written and the rate."""
    from smartmeter_lib.adapters.cassandra_history import CassandraHistory
    from smartmeter_lib.simulate.households import HouseholdFleet

    fleet = HouseholdFleet(homes, seed=settings.seed)
    h = CassandraHistory(settings)
    written, busy = 0, 0.0
    try:
        for a in tqdm(range(0, minutes * 60, flush_s), desc="storage: writing readings",
                      unit="slice", leave=False):
            batch = ReadingBatch.concat([fleet.readings(start_s + a + k) for k in
                                         range(min(flush_s, minutes * 60 - a))])
            t0 = time.perf_counter()
            h.write_readings(batch)
            busy += time.perf_counter() - t0
            written += len(batch)
        reads, writes = h._chunks.reads, h._chunks.writes
    finally:
        h.close()
    return {"readings": written, "write_s": round(busy, 2),
            "readings_per_s": round(written / busy), "chunk_rows_written": writes,
            "merge_reads": reads}


def bytes_summary(total: int, data: int, sstables: int, readings: int) -> dict[str, Any]:
    return {"table_bytes": total, "data_db_bytes": data, "sstables": sstables,
            "bytes_per_reading": round(total / max(1, readings), 3),
            "data_bytes_per_reading": round(data / max(1, readings), 3)}
