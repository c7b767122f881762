"""Compact per-meter, per-minute chunks of raw readings (the Cassandra ``reading_chunks`` blob).

One chunk holds every reading of one meter whose event time falls in one UTC minute. Layout
(version 1), all integers unsigned LEB128 varints unless said otherwise:

====================  =======================================================================
field                 meaning
====================  =======================================================================
``version``           1 byte, always 1
``flags``             1 byte; bit 0 set = *regular*: every reading is a plain 1-s reading
                      (kind 0, interval 1 s) starting on a whole second
``n``                 varint, number of readings
times                 regular: 8 bytes, a little-endian bitmap of the seconds 0..59 present;
                      otherwise ``n`` varints, the ms offset in the minute of the first reading
                      and then the (positive) differences between consecutive readings
interval, kind        only when not regular: ``n`` varints of ``interval_s``, then ``n`` bytes
                      of ``kind``
energy                ``n`` zig-zag varints: ``kwh`` in fixed point of 1e-7 kWh (0.1 mWh, i.e.
                      0.36 W resolution over one second), the first as is, each next one as
                      the difference from the one before
====================  =======================================================================

Readings are in time order with distinct timestamps. A household's consecutive 1-s readings
differ by a few units of 1e-7 kWh, so most energy values take one byte before the table's
zstd compression. Decode with :func:`decode_chunk` (``python -m smartmeter_lib.adapters.chunks
HEX`` prints a chunk copied from cqlsh).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from smartmeter_lib.errors import DataError

VERSION = 1
MINUTE_MS = 60_000
KWH_SCALE = 10_000_000  #: fixed point: units of 1e-7 kWh
_REGULAR = 1


@dataclass(frozen=True)
class Chunk:
    """The readings of one meter in one minute, in time order (``kwh_fp`` in 1e-7 kWh)."""

    offset_ms: npt.NDArray[np.int64]  #: ms since the start of the minute, 0..59999
    kwh_fp: npt.NDArray[np.int64]
    interval_s: npt.NDArray[np.uint16]
    kind: npt.NDArray[np.uint8]

    def __len__(self) -> int:
        return len(self.offset_ms)

    @property
    def kwh(self) -> npt.NDArray[np.float64]:
        return self.kwh_fp / KWH_SCALE

    def merge(self, newer: Chunk) -> Chunk:
        """This chunk's readings and ``newer``'s, one per timestamp (``newer`` wins a tie):
        writing the same reading twice stores it once."""
        if len(self) == 0:
            return newer
        if len(newer) == 0:
            return self
        if newer.offset_ms[0] > self.offset_ms[-1]:  # the usual case: later readings
            return Chunk(np.concatenate([self.offset_ms, newer.offset_ms]),
                         np.concatenate([self.kwh_fp, newer.kwh_fp]),
                         np.concatenate([self.interval_s, newer.interval_s]),
                         np.concatenate([self.kind, newer.kind]))
        off = np.concatenate([newer.offset_ms, self.offset_ms])
        _, first = np.unique(off, return_index=True)  # sorted; first hit = the newer copy
        return Chunk(off[first], np.concatenate([newer.kwh_fp, self.kwh_fp])[first],
                     np.concatenate([newer.interval_s, self.interval_s])[first],
                     np.concatenate([newer.kind, self.kind])[first])

    @staticmethod
    def build(offset_ms: npt.ArrayLike, kwh: npt.ArrayLike, interval_s: npt.ArrayLike,
              kind: npt.ArrayLike) -> Chunk:
        """A chunk from readings in any order; of equal timestamps the last one wins."""
        off = np.asarray(offset_ms, np.int64)
        if len(off) and (off.min() < 0 or off.max() >= MINUTE_MS):
            raise DataError(f"chunk offsets must be within one minute, got {off.min()} .. "
                               f"{off.max()} ms")
        rev = slice(None, None, -1)
        _, first = np.unique(off[rev], return_index=True)
        idx = (len(off) - 1 - first)
        return Chunk(off[idx], to_fixed(np.asarray(kwh, np.float64)[idx]),
                     np.asarray(interval_s, np.uint16)[idx], np.asarray(kind, np.uint8)[idx])


def to_fixed(kwh: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """kWh to the chunk's fixed point (1e-7 kWh), rounded to the nearest unit."""
    return np.rint(np.asarray(kwh, np.float64) * KWH_SCALE).astype(np.int64)


def _varints(values: npt.NDArray[np.uint64]) -> bytes:
    """Unsigned LEB128 of every value, concatenated (vectorised)."""
    v = np.asarray(values, np.uint64)
    if len(v) == 0:
        return b""
    groups = np.empty((len(v), 10), np.uint8)
    rest = v.copy()
    for i in range(10):
        groups[:, i] = (rest & np.uint64(0x7F)).astype(np.uint8)
        rest >>= np.uint64(7)
    nbytes = _varint_lengths(v)
    cols = np.arange(10)
    groups[cols[None, :] < (nbytes - 1)[:, None]] |= 0x80
    return groups[cols[None, :] < nbytes[:, None]].tobytes()


def _read_varints(buf: bytes, pos: int, n: int, where: str) -> tuple[npt.NDArray[np.uint64],
                                                                       int]:
    out = np.empty(n, np.uint64)
    for i in range(n):
        shift, value = 0, 0
        while True:
            if pos >= len(buf):
                raise DataError(f"chunk truncated in {where} (reading {i} of {n})")
            b = buf[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
            if shift > 63:
                raise DataError(f"chunk has a varint longer than 64 bits in {where}")
        out[i] = value
    return out, pos


def _zigzag(x: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
    return ((x << 1) ^ (x >> 63)).astype(np.uint64)


def _unzigzag(u: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    return ((u >> np.uint64(1)).astype(np.int64) ^ -(u & np.uint64(1)).astype(np.int64))


def encode_chunk(chunk: Chunk) -> bytes:
    """The blob of ``chunk`` (see the module docs)."""
    n = len(chunk)
    regular = bool(n) and bool(np.all(chunk.offset_ms % 1000 == 0)
                               and np.all(chunk.interval_s == 1) and np.all(chunk.kind == 0))
    parts = [bytes([VERSION, _REGULAR if regular else 0]), _varints(np.array([n], np.uint64))]
    if regular:
        bits = np.zeros(64, np.uint8)
        bits[chunk.offset_ms // 1000] = 1
        parts.append(np.packbits(bits, bitorder="little").tobytes())
    else:
        parts.append(_varints(np.diff(chunk.offset_ms, prepend=0).astype(np.uint64)))
        parts.append(_varints(chunk.interval_s.astype(np.uint64)))
        parts.append(chunk.kind.astype(np.uint8).tobytes())
    parts.append(_varints(_zigzag(np.diff(chunk.kwh_fp, prepend=0))))
    return b"".join(parts)


def encode_chunks(chunks: list[Chunk]) -> list[bytes]:
    """:func:`encode_chunk` of every chunk, vectorised over all of them (the same bytes)."""
    if not chunks:
        return []
    lens = np.fromiter((len(c) for c in chunks), np.int64, len(chunks))
    if (lens == 0).any():
        return [encode_chunk(c) for c in chunks]
    off = np.concatenate([c.offset_ms for c in chunks])
    fp = np.concatenate([c.kwh_fp for c in chunks])
    starts = np.r_[0, np.cumsum(lens)[:-1]]
    plain = ((off % 1000 == 0) & (np.concatenate([c.interval_s for c in chunks]) == 1)
             & (np.concatenate([c.kind for c in chunks]) == 0))
    regular = np.minimum.reduceat(plain.astype(np.int8), starts).astype(bool)
    bits = np.bitwise_or.reduceat(np.left_shift(np.uint64(1), (off // 1000).astype(
        np.uint64) % np.uint64(64)), starts).astype("<u8")
    d = np.diff(fp, prepend=0)
    d[starts] = fp[starts]
    z = _zigzag(d)
    nbytes = _varint_lengths(z)
    energy = _varints(z)
    ends = np.cumsum(np.add.reduceat(nbytes, starts))
    begins = np.r_[0, ends[:-1]]
    out: list[bytes] = []
    bitmaps = bits.tobytes()
    for i, c in enumerate(chunks):
        if not regular[i]:
            out.append(encode_chunk(c))
            continue
        n = int(lens[i])
        head = bytes((VERSION, _REGULAR, n)) if n < 128 else (
            bytes((VERSION, _REGULAR)) + _varints(np.array([n], np.uint64)))
        out.append(head + bitmaps[8 * i:8 * i + 8] + energy[begins[i]:ends[i]])
    return out


def _varint_lengths(v: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    nbytes = np.ones(len(v), np.int64)
    x = v >> np.uint64(7)
    while x.any():
        nbytes += x > 0
        x >>= np.uint64(7)
    return nbytes


def decode_chunk(blob: bytes) -> Chunk:
    """The readings of a chunk blob; raises :class:`DataError` when it is malformed."""
    if len(blob) < 3 or blob[0] != VERSION:
        raise DataError(f"not a version-{VERSION} reading chunk "
                           f"(starts {blob[:4].hex() or 'empty'})")
    regular = bool(blob[1] & _REGULAR)
    (n,), pos = _read_varints(blob, 2, 1, "the count")
    n = int(n)
    if regular:
        if pos + 8 > len(blob):
            raise DataError("chunk truncated in the seconds bitmap")
        bits = np.unpackbits(np.frombuffer(blob, np.uint8, 8, pos), bitorder="little")
        off = np.flatnonzero(bits).astype(np.int64) * 1000
        if len(off) != n:
            raise DataError(f"chunk bitmap has {len(off)} seconds, header says {n}")
        pos += 8
        iv = np.ones(n, np.uint16)
        kind = np.zeros(n, np.uint8)
    else:
        d, pos = _read_varints(blob, pos, n, "the times")
        off = np.cumsum(d.astype(np.int64))
        ivs, pos = _read_varints(blob, pos, n, "the intervals")
        iv = ivs.astype(np.uint16)
        if pos + n > len(blob):
            raise DataError("chunk truncated in the kinds")
        kind = np.frombuffer(blob, np.uint8, n, pos).copy()
        pos += n
    z, pos = _read_varints(blob, pos, n, "the energy")
    if pos != len(blob):
        raise DataError(f"chunk has {len(blob) - pos} bytes after its last reading")
    return Chunk(off, np.cumsum(_unzigzag(z)), iv, kind)


@dataclass(frozen=True)
class Piece:
    """The readings of one batch that fall into one meter's minute."""

    meter_id: str
    minute: int  #: minutes since the epoch (UTC)
    chunk: Chunk


def split_by_minute(meter_id: npt.NDArray[np.object_], ts_ms: npt.NDArray[np.int64],
                    kwh: npt.NDArray[np.float64], interval_s: npt.NDArray[np.uint16],
                    kind: npt.NDArray[np.uint8]) -> list[Piece]:
    """Group readings by (meter, minute), each group in time order with one reading per
    timestamp (of repeats within the input, the later one wins)."""
    n = len(ts_ms)
    if n == 0:
        return []
    ts = np.asarray(ts_ms, np.int64)
    codes, uniques = _factorize(meter_id)
    minute = ts // MINUTE_MS
    order = np.lexsort((ts, minute, codes))  # stable: equal keys keep their input order
    c, m, t = codes[order], minute[order], ts[order]
    keep = np.ones(n, bool)
    keep[:-1] = (c[1:] != c[:-1]) | (t[1:] != t[:-1])  # drop a row repeated by the next one
    order, c, m, t = order[keep], c[keep], m[keep], t[keep]
    fp = to_fixed(np.asarray(kwh, np.float64)[order])
    iv = np.asarray(interval_s, np.uint16)[order]
    kd = np.asarray(kind, np.uint8)[order]
    off = t - m * MINUTE_MS
    starts = np.flatnonzero(np.r_[True, (c[1:] != c[:-1]) | (m[1:] != m[:-1])])
    ends = np.r_[starts[1:], len(order)]
    return [Piece(str(uniques[c[a]]), int(m[a]),
                  Chunk(off[a:b], fp[a:b], iv[a:b], kd[a:b]))
            for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]


def _factorize(values: npt.NDArray[np.object_]) -> tuple[npt.NDArray[np.int64],
                                                          npt.NDArray[np.object_]]:
    """Codes ordered like the sorted values (so groups come out sorted by meter id)."""
    import pandas as pd

    codes, uniques = pd.factorize(np.asarray(values, dtype=object), sort=True)
    return codes.astype(np.int64), np.asarray(uniques, dtype=object)


def main(argv: list[str] | None = None) -> int:
    """Print the readings of chunk blobs given in hex (as cqlsh shows them, ``0x...``)."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m smartmeter_lib.adapters.chunks 0x0101...  (a chunk from cqlsh)",
              file=sys.stderr)
        return 2
    for h in args:
        c = decode_chunk(bytes.fromhex(h.removeprefix("0x")))
        print("offset_ms,kwh,interval_s,kind")
        for o, k, i, t in zip(c.offset_ms.tolist(), c.kwh.tolist(), c.interval_s.tolist(),
                              c.kind.tolist(), strict=True):
            print(f"{o},{k:.7f},{i},{t}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
