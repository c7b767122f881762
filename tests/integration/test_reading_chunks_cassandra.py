"""Readings stored as per-minute chunks in Cassandra: merging across writes and clients."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from smartmeter_lib.adapters.cassandra_history import CassandraHistory
from smartmeter_lib.model import ReadingBatch
from smartmeter_lib.services import ServicesConfig
from tests.contract.conftest import real_settings

T0 = 1_764_300_000_000  # a whole minute


def test_a_minute_written_in_parts_by_two_clients_keeps_every_reading_once(
        services: ServicesConfig) -> None:
    ks = "t" + uuid.uuid4().hex[:10]
    s = real_settings(services, cassandra_keyspace=ks)
    first = CassandraHistory(s)
    try:
        ts = T0 + np.arange(90) * 1000  # a minute and a half of one meter, and another meter
        kwh = 1e-4 + np.arange(90) * 1e-7
        first.write_readings(ReadingBatch.readings(["m1"] * 20, ts[:20], kwh[:20]))
        first.write_readings(ReadingBatch.readings(["m1"] * 30 + ["m2"],
                                                   np.r_[ts[20:50], T0], np.r_[kwh[20:50], 1.0]))
        # a new process (empty cache) gets part of it again, then the rest: a re-delivery
        second = CassandraHistory(s)
        second.write_readings(ReadingBatch.readings(["m1"] * 40, ts[40:80], kwh[40:80]))
        second.write_readings(ReadingBatch.readings(["m1"] * 10, ts[80:], kwh[80:]))
        got = second.read_readings("m1", T0, T0 + 120_000)
        second.close()
        assert got.ts_ms.tolist() == ts.tolist()
        assert got.kwh == pytest.approx(kwh, abs=0.5e-7)
        assert first.read_readings("m2", T0, T0 + 1).kwh.tolist() == [1.0]
        rows = first.session.execute(f"SELECT minute FROM {ks}.reading_chunks WHERE "
                                     "meter_id='m1' AND day='2025-11-28'").all()
        assert [r.minute for r in rows] == [200, 201]  # 03:20 and 03:21: one row a minute
        assert first._chunks.reads >= 1  # the new minutes were looked up before writing
    finally:
        first.drop_keyspace()
        first.close()
