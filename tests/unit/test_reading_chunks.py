"""The per-minute reading chunk codec of the Cassandra history (no server needed)."""

from __future__ import annotations

import numpy as np
import pytest

from smartmeter_lib.adapters.chunks import (
    Chunk,
    decode_chunk,
    encode_chunk,
    encode_chunks,
    main,
    split_by_minute,
)
from smartmeter_lib.errors import DataError
from smartmeter_lib.simulate.households import HouseholdFleet

T0 = 1_764_300_000_000  # a whole minute


def _regular(seconds: list[int], kwh: list[float]) -> Chunk:
    n = len(seconds)
    return Chunk.build(np.array(seconds) * 1000, kwh, np.ones(n), np.zeros(n))


def test_a_regular_minute_round_trips_within_the_fixed_point() -> None:
    rng = np.random.default_rng(1)
    kwh = 1.7e-5 + rng.normal(0, 1e-7, 60)
    c = _regular(list(range(60)), kwh.tolist())
    blob = encode_chunk(c)
    assert blob[1] & 1  # the regular layout: a bitmap of seconds, no per-reading times
    got = decode_chunk(blob)
    assert got.offset_ms.tolist() == [s * 1000 for s in range(60)]
    assert np.abs(got.kwh - kwh).max() <= 0.5e-7
    assert got.interval_s.tolist() == [1] * 60 and got.kind.tolist() == [0] * 60
    assert len(blob) < 60 * 2  # a few units of 1e-7 kWh apart: about one byte a reading


def test_irregular_readings_keep_times_intervals_kinds_and_sign() -> None:
    c = Chunk.build([59_999, 0, 1_500], [-0.25, 5.0, 0.0000001], [1800, 1, 30], [0, 1, 2])
    got = decode_chunk(encode_chunk(c))
    assert got.offset_ms.tolist() == [0, 1_500, 59_999]
    assert got.kwh.tolist() == pytest.approx([5.0, 1e-7, -0.25])
    assert got.interval_s.tolist() == [1, 30, 1800]
    assert got.kind.tolist() == [1, 2, 0]


def test_merge_stores_a_repeated_reading_once_and_the_newer_value_wins() -> None:
    a = _regular([0, 1, 2], [0.1, 0.2, 0.3])
    b = _regular([2, 3], [0.35, 0.4])
    m = a.merge(b).merge(b)  # b delivered twice
    assert m.offset_ms.tolist() == [0, 1000, 2000, 3000]
    assert m.kwh.tolist() == pytest.approx([0.1, 0.2, 0.35, 0.4])


def test_split_by_minute_groups_per_meter_and_minute_in_time_order() -> None:
    mid = np.array(["b", "a", "a", "a", "b"], dtype=object)
    ts = np.array([T0 + 61_000, T0 + 2_000, T0 + 1_000, T0 + 2_000, T0 + 5_000])
    kwh = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    pieces = split_by_minute(mid, ts, kwh, np.ones(5, np.uint16), np.zeros(5, np.uint8))
    got = [(p.meter_id, p.minute - T0 // 60_000, p.chunk.offset_ms.tolist(),
            p.chunk.kwh.tolist()) for p in pieces]
    # meter a's repeated second 2: the later row of the batch wins
    assert got == [("a", 0, [1000, 2000], [3.0, 4.0]), ("b", 0, [5000], [5.0]),
                   ("b", 1, [1000], [1.0])]


@pytest.mark.parametrize("blob", [b"", b"\x02\x01\x01", bytes.fromhex("0101"),
                                  bytes.fromhex("01013c00"), bytes.fromhex("0100028000")])
def test_malformed_chunks_raise_a_data_error(blob: bytes) -> None:
    with pytest.raises(DataError, match="chunk"):
        decode_chunk(blob)


def test_trailing_bytes_are_refused() -> None:
    blob = encode_chunk(_regular([0], [0.5])) + b"\x00"
    with pytest.raises(DataError, match="after its last reading"):
        decode_chunk(blob)


def test_simulated_fleet_minutes_pack_to_under_two_bytes_a_reading() -> None:
    fleet = HouseholdFleet(200, seed=3)
    start = T0 // 1000
    batches = [fleet.readings(start + k) for k in range(60)]
    mid = np.concatenate([b.meter_id for b in batches])
    pieces = split_by_minute(mid, np.concatenate([b.ts_ms for b in batches]),
                             np.concatenate([b.kwh for b in batches]),
                             np.concatenate([b.interval_s for b in batches]),
                             np.concatenate([b.kind for b in batches]))
    readings = sum(len(p.chunk) for p in pieces)
    size = sum(len(encode_chunk(p.chunk)) for p in pieces)
    assert readings == len(mid)
    assert size / readings < 2.0, size / readings


def test_the_command_line_decoder_prints_readings(capsys: pytest.CaptureFixture[str]) -> None:
    blob = encode_chunk(_regular([0, 1], [0.5, 0.25]))
    assert main(["0x" + blob.hex()]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "offset_ms,kwh,interval_s,kind", "0,0.5000000,1,0", "1000,0.2500000,1,0"]
    assert main([]) == 2


def test_encoding_many_chunks_at_once_gives_the_same_bytes_as_one_by_one() -> None:
    fleet = HouseholdFleet(50, seed=5)
    start = T0 // 1000 + 30  # half a minute: chunks of 30 readings, then the next minute
    batches = [fleet.readings(start + k) for k in range(45)]

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(b, name) for b in batches])

    chunks = [p.chunk for p in split_by_minute(cat("meter_id"), cat("ts_ms"), cat("kwh"),
                                               cat("interval_s"), cat("kind"))]
    chunks.insert(3, Chunk.build([0, 1_500], [0.1, -0.2], [1, 30], [0, 1]))  # irregular
    chunks.append(Chunk.build(np.arange(200) * 250, np.full(200, 1e-3), np.ones(200),
                              np.zeros(200)))  # 200 readings: a two-byte count
    assert encode_chunks(chunks) == [encode_chunk(c) for c in chunks]
    assert [len(decode_chunk(b)) for b in encode_chunks(chunks)] == [len(c) for c in chunks]
