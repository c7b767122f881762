"""Readers for real meter files: the Low Carbon London formats and a generic CSV.

Formats (told apart by the header, see docs/replay.md):

============== ======================================================= ===========
format         header                                                  interval
============== ======================================================= ===========
lcl_kaggle     ``LCLid,tstp,energy(kWh/hh)``                           1800 s
lcl_datastore  ``LCLid,DateTime,KWH/hh (per half hour)`` (extra        1800 s
               columns such as ``stdorToU`` or ``Acorn`` are ignored)
generic        ``meter_id,timestamp,kwh[,interval_s]``                 ``interval_s``
                                                                       (default 1800)
============== ======================================================= ===========

Timestamps are the start of the interval; naive ones are UTC (LCL data is in GMT). Values may
carry spaces. Every row that cannot be used is reported as a :class:`BadRow` (file, line,
reason), counted and skipped: a missing or ``Null`` value, a value that is not a number, an
unreadable timestamp, a timestamp off the interval grid (e.g. 12:37:27 in half-hourly data), a
power beyond what a household connection carries, a duplicate of an earlier row (the first is
kept) or a line with the wrong number of fields. A file whose header matches no format, a
binary file, or a file with rows but none valid, is refused with a :class:`DataError`.

Parsing is columnar: the file is read in blocks of lines, each block is split and trimmed by
pyarrow's string kernels and parsed and checked with vectorised pandas operations (about
400,000 rows a second on one core).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from smartmeter_lib.codec import MAX_EXPORT_KW, MAX_IMPORT_KW, MAX_KEY_BYTES, MAX_TS_MS, MIN_TS_MS
from smartmeter_lib.errors import DataError

log = logging.getLogger(__name__)
FRAME_COLUMNS = ("meter_id", "ts", "kwh", "interval_s")
DEFAULT_INTERVAL_S = 1800
_BLOCK_BYTES = 8 << 20
_NULLS = {"", "null", "nan", "na", "n/a", "none"}

#: format name -> (meter column, time column, kWh column, interval column or None)
FORMATS: dict[str, tuple[str, str, str, str | None]] = {
    "lcl_kaggle": ("lclid", "tstp", "energy(kwh/hh)", None),
    "lcl_datastore": ("lclid", "datetime", "kwh/hh (per half hour)", None),
    "generic": ("meter_id", "timestamp", "kwh", "interval_s"),
}


@dataclass(frozen=True)
class BadRow:
    """A row that was skipped, and why."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class MeterFile:
    """The valid readings of one file (``frame``) and the rows that were skipped."""

    path: Path
    format: str
    frame: pd.DataFrame
    bad_rows: list[BadRow] = field(default_factory=list)
    rows: int = 0  #: data lines read (header and blank lines excluded)
    other_meters: int = 0  #: rows skipped because their meter was not asked for

    @property
    def meters(self) -> list[str]:
        return sorted(self.frame["meter_id"].unique().tolist())

    def summary(self) -> str:
        f = self.frame
        span = ("" if f.empty else
                f", {f['ts'].min():%Y-%m-%d %H:%M} to {f['ts'].max():%Y-%m-%d %H:%M} UTC")
        return (f"{self.path.name}: {self.format}, {len(f)} readings of {f['meter_id'].nunique()} "
                f"meter(s){span}; {len(self.bad_rows)} bad row(s) skipped")


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame({"meter_id": pd.Series(dtype="str"),
                         "ts": pd.Series(dtype="datetime64[ns, UTC]"),
                         "kwh": pd.Series(dtype=np.float64),
                         "interval_s": pd.Series(dtype=np.int64)})


def detect_format(header: str, path: str = "<file>") -> tuple[str, list[int]]:
    """The format of a header line and the positions of its meter, time, kWh (and interval)
    columns; DataError if it is not a meter file."""
    cols = [c.strip().strip('"').strip().lower() for c in header.rstrip("\r\n").split(",")]
    for name, wanted in FORMATS.items():
        need = [w for w in wanted[:3]]
        if all(w in cols for w in need):
            pos = [cols.index(w) for w in need]
            iv = wanted[3]
            pos.append(cols.index(iv) if iv is not None and iv in cols else -1)
            return name, pos
    shown = header.strip()[:120]
    raise DataError(
        f"{path} is not a meter file: its header {shown!r} matches none of the formats "
        "(LCL Kaggle 'LCLid,tstp,energy(kWh/hh)', LCL London Datastore "
        "'LCLid,DateTime,KWH/hh (per half hour)', generic 'meter_id,timestamp,kwh[,interval_s]';"
        " see docs/replay.md)")


def _lines(path: Path, progress: bool) -> Iterable[tuple[int, list[str]]]:
    """Blocks of decoded lines after the header: (line number of the first, lines)."""
    size = path.stat().st_size
    with path.open("rb") as fh, tqdm(total=size, unit="B", unit_scale=True, desc=path.name,
                                     file=sys.stderr, disable=None if progress else True,
                                     leave=False) as bar:
        fh.readline()
        bar.update(fh.tell())
        line_no, rest = 2, b""
        while True:
            block = fh.read(_BLOCK_BYTES)
            bar.update(len(block))
            data = rest + block
            if not block:
                if data:
                    yield line_no, data.decode("utf-8", "replace").split("\n")
                return
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                continue
            rest = data[cut + 1:]
            lines = data[:cut].decode("utf-8", "replace").split("\n")
            yield line_no, lines
            line_no += len(lines)


def _reasons(block: pd.DataFrame, fmt: str) -> pd.Series:
    """The reason each parsed row is bad ("" when fine); texts are built for bad rows only."""
    why = np.full(len(block), "", dtype=object)
    done = np.zeros(len(block), dtype=bool)

    def mark(mask: pd.Series, text: str | Callable[[pd.DataFrame], pd.Series]) -> None:
        m = np.asarray(mask, dtype=bool) & ~done
        if m.any():
            why[m] = text if isinstance(text, str) else text(block[m]).to_numpy(object)
            done[m] = True

    def quoted(col: str) -> Callable[[pd.DataFrame], pd.Series]:
        return lambda b: b[col].astype(object).map(repr)

    mark(block["meter_id"] == "", "missing meter id")
    long = block["meter_id"].str.len() > MAX_KEY_BYTES // 4  # only these can be too long
    if long.any():
        size = pd.Series([len(str(m).encode()) for m in block.loc[long, "meter_id"]],
                         index=block.index[long])
        mark(long & (size.reindex(block.index, fill_value=0) > MAX_KEY_BYTES),
             f"meter id longer than {MAX_KEY_BYTES} bytes")
    mark(block["ts"].isna(), lambda b: "unreadable timestamp " + quoted("ts_raw")(b))
    mark(block["kwh_raw"].str.lower().isin(_NULLS),
         lambda b: "no kWh value (" + quoted("kwh_raw")(b) + ")")
    mark(block["kwh"].isna(), lambda b: "kWh is not a number: " + quoted("kwh_raw")(b))
    iv = block["interval_s"]
    mark(iv.isna() | (iv < 1) | (1800 % iv.fillna(1).clip(lower=1) != 0),
         lambda b: "interval_s must divide 1800 s, got " + quoted("iv_raw")(b))
    ok_ts = block["ts"].notna()
    naive = block["ts"].dt.tz_convert(None).to_numpy("datetime64[ns]").view(np.int64)
    ns = pd.Series(np.where(ok_ts, naive, 0), index=block.index)
    ivv = iv.fillna(1).clip(lower=1).astype(np.int64)
    mark(ok_ts & ((ns // 1_000_000 < MIN_TS_MS) | (ns // 1_000_000 >= MAX_TS_MS)),
         "timestamp out of range (2000-2100)")
    mark(ok_ts & (ns % (ivv * 1_000_000_000) != 0),
         lambda b: "timestamp " + quoted("ts_raw")(b) + " is not on the "
         + b["interval_s"].astype(np.int64).astype(str) + " s grid")
    kw = block["kwh"] * 3600.0 / ivv
    mark(kw > MAX_IMPORT_KW,
         lambda b: "kWh " + b["kwh_raw"].astype(object) + f" is above {MAX_IMPORT_KW:g} kW")
    mark(kw < -MAX_EXPORT_KW, lambda b: "kWh " + b["kwh_raw"].astype(object)
         + f" is an export above {MAX_EXPORT_KW:g} kW")
    if fmt != "generic":
        mark(block["kwh"] < 0,
             lambda b: "negative kWh in an LCL file: " + quoted("kwh_raw")(b))
    return pd.Series(why, index=block.index)


def _field(parts: pa.Array, k: int) -> pd.Series:
    """Field ``k`` of split lines, trimmed of spaces and double quotes."""
    f = pc.utf8_trim(pc.utf8_trim_whitespace(pc.list_element(parts, k)), '"')
    return pd.Series(f.to_pandas(types_mapper=lambda t: pd.StringDtype("pyarrow")),
                     dtype="str")


def _parse_block(lines: list[str], first_line: int, pos: list[int], n_cols: int, fmt: str,
                 meters: set[str] | None) -> tuple[pd.DataFrame, pd.DataFrame, int, int]:
    """Valid rows (with their line numbers), bad rows (line, reason), rows read, and rows of
    other meters. Splitting and trimming run in pyarrow's vectorised string kernels."""
    arr = pc.utf8_rtrim(pa.array(lines, pa.string()), "\r")
    line_no = np.arange(first_line, first_line + len(lines), dtype=np.int64)
    used = np.asarray(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(arr)), 0))
    arr, line_no = arr.filter(pa.array(used)), line_no[used]
    parts = pc.split_pattern(arr, ",")
    fields = np.asarray(pc.list_value_length(parts))
    wrong = fields != n_cols
    bad = [pd.DataFrame({"line": line_no[wrong],
                         "reason": [f"expected {n_cols} fields, found {k}"
                                    for k in fields[wrong].tolist()]})]
    parts, line_no = parts.filter(pa.array(~wrong)), line_no[~wrong]
    meter = _field(parts, pos[0])
    other = 0
    if meters is not None and len(meter):
        keep = meter.isin(meters).to_numpy(bool)
        other = int((~keep).sum())
        parts, line_no, meter = parts.filter(pa.array(keep)), line_no[keep], meter[keep]
    b = pd.DataFrame({"meter_id": meter.to_numpy(object)}, index=line_no)
    b["meter_id"] = b["meter_id"].astype("str")
    b["ts_raw"] = _field(parts, pos[1]).to_numpy()
    b["kwh_raw"] = _field(parts, pos[2]).to_numpy()
    b["ts"] = pd.to_datetime(b["ts_raw"], format="ISO8601", utc=True, errors="coerce")
    b["kwh"] = pd.to_numeric(b["kwh_raw"], errors="coerce")
    b.loc[~np.isfinite(b["kwh"].astype(float)), "kwh"] = np.nan
    if pos[3] >= 0:
        b["iv_raw"] = _field(parts, pos[3]).to_numpy(object)
        iv = pd.to_numeric(b["iv_raw"].replace("", str(DEFAULT_INTERVAL_S)), errors="coerce")
        b["interval_s"] = iv.where(iv == iv.round())
    else:
        b["iv_raw"] = str(DEFAULT_INTERVAL_S)
        b["interval_s"] = float(DEFAULT_INTERVAL_S)
    why = _reasons(b, fmt) if len(b) else pd.Series(dtype=object)
    ok = (why.str.len() == 0).to_numpy(bool) if len(b) else np.zeros(0, bool)
    bad.append(pd.DataFrame({"line": b.index[~ok], "reason": why[~ok].to_numpy()}))
    good = b[ok]
    out = pd.DataFrame({"meter_id": good["meter_id"], "ts": good["ts"],
                        "kwh": good["kwh"].astype(np.float64),
                        "interval_s": good["interval_s"].astype(np.int64),
                        "line": good.index.to_numpy(np.int64)})
    return out, pd.concat(bad, ignore_index=True), int(used.sum()), other


def _dedupe(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drop rows that repeat an earlier row's meter and timestamp; say which line they repeat."""
    frame = frame.sort_values(["meter_id", "ts", "line"], kind="stable")
    dup = frame.duplicated(["meter_id", "ts"], keep="first")
    if not dup.any():
        return frame, pd.DataFrame({"line": [], "reason": []})
    first = frame[~dup].set_index(["meter_id", "ts"])
    d = frame[dup]
    ref = first.loc[list(zip(d["meter_id"], d["ts"], strict=True))]
    same = ref["kwh"].to_numpy() == d["kwh"].to_numpy()
    reasons = [f"duplicate of line {ln} (same kWh)" if s else
               f"duplicate of line {ln} with a different kWh ({k!r} vs {k0!r}); the first is kept"
               for ln, s, k, k0 in zip(ref["line"].tolist(), same, d["kwh"].tolist(),
                                       ref["kwh"].tolist(), strict=True)]
    return frame[~dup], pd.DataFrame({"line": d["line"].to_numpy(), "reason": reasons})


def read_meter_file(path: str | Path, meters: Iterable[str] | None = None, *,
                    progress: bool = False) -> MeterFile:
    """Read one meter file (format detected from its header).

    ``meters``: keep only these meter ids (others are skipped, not reported). ``progress``:
    show a progress bar on stderr.
    """
    p = Path(path)
    name = str(path)
    try:
        with p.open("rb") as fh:
            head = fh.read(65536)
    except OSError as err:
        raise DataError(f"cannot read {name}: {err}") from err
    if not head.strip():
        raise DataError(f"{name} is empty: not a meter file")
    if b"\x00" in head:
        raise DataError(f"{name} is a binary file, not a meter file (CSV expected; see "
                        "docs/replay.md)")
    header = head.split(b"\n", 1)[0].decode("utf-8", "replace").lstrip("\ufeff")
    fmt, pos = detect_format(header, name)
    n_cols = header.count(",") + 1
    wanted = None if meters is None else {str(m) for m in meters}
    goods, bads, rows, other = [], [], 0, 0
    for first, lines in _lines(p, progress):
        g, b, r, o = _parse_block(lines, first, pos, n_cols, fmt, wanted)
        goods.append(g)
        bads.append(b)
        rows += r
        other += o
    frame = pd.concat(goods, ignore_index=True) if goods else _empty_frame().assign(line=0)
    frame, dups = _dedupe(frame)
    bad = pd.concat([*bads, dups], ignore_index=True).sort_values("line", kind="stable")
    bad_rows = [BadRow(name, int(ln), str(r)) for ln, r in zip(bad["line"], bad["reason"],
                                                                strict=True)]
    if rows - other > 0 and frame.empty:
        first_bad = f"; first: {bad_rows[0]}" if bad_rows else ""
        raise DataError(f"{name}: no valid readings in {rows - other} rows, so it is not a "
                        f"usable meter file ({len(bad_rows)} bad rows{first_bad})")
    out = frame.drop(columns="line").reset_index(drop=True)
    out["meter_id"] = out["meter_id"].astype("str")
    out["ts"] = out["ts"].astype("datetime64[ns, UTC]")
    out["interval_s"] = out["interval_s"].astype(np.int64)
    for br in bad_rows[:5]:
        log.warning("skipped %s", br)
    if len(bad_rows) > 5:
        log.warning("skipped %d more bad rows in %s", len(bad_rows) - 5, name)
    return MeterFile(p, fmt, out, bad_rows, rows, other)
