"""The wire format of the readings topic (version 1), documented in docs/data-contracts.md.

A message's **key** is the meter id in UTF-8 (so Kafka keeps each meter on one partition, in
order). Its **value** is 24 bytes, little-endian:

====== ====== ========== ====================================================
offset size   type       field
====== ====== ========== ====================================================
0      1      uint8      version, always 1
1      1      uint8      kind: 0 reading, 1 last gasp, 2 power restore
2      2      uint16     interval_s: length of the interval (1 live, 1800 half-hourly)
4      4      uint32     reserved, 0
8      8      int64      ts_ms: interval start, UTC milliseconds since the epoch
16     8      float64    kwh: energy imported in the interval (negative = export)
====== ====== ========== ====================================================

Decoding works on whole batches (``numpy.frombuffer``); messages that fail a check are
returned as :class:`Reject` with the reason, never raised, so one bad message cannot stop the
pipeline. The codec checks the *format* (size, version, kind, interval, key); whether the
*values* are physically possible is judged by :mod:`smartmeter_lib.stream.validate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from smartmeter_lib.errors import CodecError
from smartmeter_lib.model import Kind, ReadingBatch

VERSION = 1
WIRE_V1 = np.dtype([
    ("version", "u1"), ("kind", "u1"), ("interval_s", "<u2"), ("reserved", "<u4"),
    ("ts_ms", "<i8"), ("kwh", "<f8"),
])
VALUE_SIZE = WIRE_V1.itemsize  # 24
MAX_KEY_BYTES = 64
#: event times outside [2000-01-01, 2100-01-01) are refused
MIN_TS_MS = 946_684_800_000
MAX_TS_MS = 4_102_444_800_000
#: beyond this average power, in either direction, a value is physically impossible for a
#: household connection (the processor's limit is the setting ``max_abs_kw``). Negative
#: readings within it are valid: PV export, and reversed meters the theft detector must see.
DEFAULT_MAX_ABS_KW = 100.0
MAX_IMPORT_KW = DEFAULT_MAX_ABS_KW
MAX_EXPORT_KW = DEFAULT_MAX_ABS_KW


@dataclass(frozen=True)
class Reject:
    """A message that could not be accepted, with the reason (goes to the dead-letter topic)."""

    index: int
    key: bytes | None
    value: bytes | None
    reason: str


@dataclass(frozen=True)
class Decoded:
    batch: ReadingBatch
    rejects: list[Reject]
    index: npt.NDArray[np.intp]  #: position in the input of each row of ``batch``


def encode_batch(batch: ReadingBatch) -> tuple[list[bytes], list[bytes]]:
    """Keys and values for every row of ``batch``."""
    n = len(batch)
    arr = np.zeros(n, dtype=WIRE_V1)
    arr["version"] = VERSION
    arr["kind"] = batch.kind
    arr["interval_s"] = batch.interval_s
    arr["ts_ms"] = batch.ts_ms
    arr["kwh"] = batch.kwh
    buf = arr.tobytes()
    values = [buf[i:i + VALUE_SIZE] for i in range(0, n * VALUE_SIZE, VALUE_SIZE)]
    keys = [str(m).encode() for m in batch.meter_id]
    return keys, values


def encode_one(meter_id: str, ts_ms: int, kwh: float, interval_s: int = 1,
               kind: Kind = Kind.READING) -> tuple[bytes, bytes]:
    """Key and value of a single message (tests, tools; the hot path uses encode_batch)."""
    keys, values = encode_batch(ReadingBatch(
        np.array([meter_id], dtype=object), np.array([ts_ms], np.int64),
        np.array([kwh], np.float64), np.array([interval_s], np.uint16),
        np.array([int(kind)], np.uint8)))
    return keys[0], values[0]


def _check_rows(arr: npt.NDArray[np.void]) -> npt.NDArray[np.object_]:
    """The reason each row's format is invalid, or None where it is fine."""
    reasons = np.full(len(arr), None, dtype=object)
    checks = [
        (arr["version"] != VERSION, "unsupported schema version"),
        (arr["kind"] > max(Kind), "unknown message kind"),
        (arr["interval_s"] == 0, "interval_s is 0"),
    ]
    for mask, why in reversed(checks):  # the first failing check wins
        reasons[mask] = why
    return reasons


def decode_batch(keys: Sequence[bytes | None], values: Sequence[bytes | None]) -> Decoded:
    """Decode messages into a :class:`ReadingBatch`; bad ones come back as rejects."""
    n = len(values)
    if len(keys) != n:
        raise CodecError(f"decode_batch: {len(keys)} keys for {n} values")
    rejects: list[Reject] = []
    good_idx: list[int] = []
    meter_ids: list[str] = []
    for i, (k, v) in enumerate(zip(keys, values, strict=True)):
        reason = None
        if v is None or len(v) != VALUE_SIZE:
            if v and len(v) >= 1 and v[0] != VERSION:
                reason = f"unsupported schema version {v[0]}"
            else:
                reason = f"value is {0 if v is None else len(v)} bytes, expected {VALUE_SIZE}"
        elif not k:
            reason = "missing key (meter id)"
        elif len(k) > MAX_KEY_BYTES:
            reason = f"meter id longer than {MAX_KEY_BYTES} bytes"
        if reason is None:
            try:
                meter_ids.append(k.decode())  # type: ignore[union-attr]
            except UnicodeDecodeError:
                reason = "meter id is not UTF-8"
        if reason is not None:
            rejects.append(Reject(i, k, v, reason))
        else:
            good_idx.append(i)
    chosen = values if len(good_idx) == n else [values[i] for i in good_idx]
    buf = b"".join(chosen)  # type: ignore[arg-type]
    arr = np.frombuffer(buf, dtype=WIRE_V1)
    reasons = _check_rows(arr)
    bad = np.flatnonzero(reasons != None)  # noqa: E711  (element-wise)
    mids = np.array(meter_ids, dtype=object)
    pos = np.asarray(good_idx, dtype=np.intp)
    if len(bad):
        for j in bad:
            i = good_idx[j]
            rejects.append(Reject(i, keys[i], values[i], str(reasons[j])))
        keep = reasons == None  # noqa: E711
        arr = arr[keep]
        mids = mids[keep]
        pos = pos[keep]
    batch = ReadingBatch(mids, arr["ts_ms"].astype(np.int64), arr["kwh"].astype(np.float64),
                         arr["interval_s"].astype(np.uint16), arr["kind"].astype(np.uint8))
    rejects.sort(key=lambda r: r.index)
    return Decoded(batch, rejects, pos)
