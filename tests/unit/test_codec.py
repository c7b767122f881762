from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartmeter_lib.codec import VALUE_SIZE, decode_batch, encode_batch, encode_one
from smartmeter_lib.model import Kind, ReadingBatch
from smartmeter_lib.stream.validate import screen

T0 = 1_764_300_000_000


def test_value_layout_matches_the_data_contract() -> None:
    key, value = encode_one("MAC000002", T0, 0.000125, interval_s=1, kind=Kind.READING)
    assert key == b"MAC000002"
    # docs/data-contracts.md: <BBHIqd = version, kind, interval_s, reserved, ts_ms, kwh
    assert value == struct.pack("<BBHIqd", 1, 0, 1, 0, T0, 0.000125)
    assert len(value) == VALUE_SIZE == 24


def test_round_trip_of_a_batch() -> None:
    b = ReadingBatch(np.array(["a", "bé", "c"], dtype=object), np.array([T0, T0 + 1, T0 + 2]),
                     np.array([0.01, -0.002, 0.0]), np.array([1, 1800, 1], np.uint16),
                     np.array([0, 0, 1], np.uint8))
    d = decode_batch(*encode_batch(b))
    assert d.rejects == []
    assert d.batch.meter_id.tolist() == ["a", "bé", "c"]
    assert d.batch.ts_ms.tolist() == b.ts_ms.tolist()
    assert d.batch.kwh.tolist() == b.kwh.tolist()
    assert d.batch.interval_s.tolist() == [1, 1800, 1]
    assert d.batch.kind.tolist() == [0, 0, 1]
    assert d.index.tolist() == [0, 1, 2]


@pytest.mark.parametrize(("key", "value", "reason"), [
    (b"m", b"\x01" * 5, "value is 5 bytes"),
    (b"m", None, "value is 0 bytes"),
    (b"m", struct.pack("<BBHIqd", 2, 0, 1, 0, T0, 0.1), "unsupported schema version"),
    (b"m", struct.pack("<BBHIqd", 7, 0, 1, 0, T0, 0.1) + b"extra", "unsupported schema version"),
    (None, struct.pack("<BBHIqd", 1, 0, 1, 0, T0, 0.1), "missing key"),
    (b"\xff\xfe", struct.pack("<BBHIqd", 1, 0, 1, 0, T0, 0.1), "not UTF-8"),
    (b"m" * 65, struct.pack("<BBHIqd", 1, 0, 1, 0, T0, 0.1), "longer than 64"),
    (b"m", struct.pack("<BBHIqd", 1, 9, 1, 0, T0, 0.1), "unknown message kind"),
    (b"m", struct.pack("<BBHIqd", 1, 0, 0, 0, T0, 0.1), "interval_s is 0"),
    (b"m", struct.pack("<BBHIqd", 1, 0, 1, 0, T0, float("nan")), "not a finite number"),
    (b"m", struct.pack("<BBHIqd", 1, 0, 1, 0, 5, 0.1), "timestamp out of range"),
    (b"m", struct.pack("<BBHIqd", 1, 0, 1, 0, T0, 1.0), "import above 100 kW"),
    (b"m", struct.pack("<BBHIqd", 1, 0, 1, 0, T0, -1.0), "export above 100 kW"),
])
def test_bad_messages_are_rejected_with_a_reason(key: bytes | None, value: bytes | None,
                                                 reason: str) -> None:
    good_k, good_v = encode_one("ok", T0, 0.0001)
    keys, values = [good_k, key, good_k], [good_v, value, good_v]
    d = screen(decode_batch(keys, values), keys, values)  # format, then values: the processor
    assert len(d.batch) == 2
    assert d.index.tolist() == [0, 2]
    assert [r.index for r in d.rejects] == [1]
    assert reason in d.rejects[0].reason
    assert d.rejects[0].value == value


@given(st.lists(st.tuples(st.one_of(st.none(), st.binary(max_size=70)),
                          st.one_of(st.none(), st.binary(max_size=40))), max_size=30))
def test_decode_never_raises_and_accounts_for_every_message(
        msgs: list[tuple[bytes | None, bytes | None]]) -> None:
    keys = [k for k, _ in msgs]
    values = [v for _, v in msgs]
    d = decode_batch(keys, values)
    assert len(d.batch) + len(d.rejects) == len(msgs)
    assert sorted(d.index.tolist() + [r.index for r in d.rejects]) == list(range(len(msgs)))
