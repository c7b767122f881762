"""Row encodings shared by the stores (JSON bodies readable with any client)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd


def _clean(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    if hasattr(v, "item"):  # numpy scalars
        return _clean(v.item())
    return v


def insight_json(row: Mapping[Any, Any]) -> str:
    """One meter's insights as compact JSON (NaN as null)."""
    return json.dumps({k: _clean(v) for k, v in row.items()}, separators=(",", ":"))


def insights_frame(rows: Iterable[tuple[int, str]]) -> pd.DataFrame:
    """(ts_ms, JSON body) rows as a frame with a ``ts_ms`` column first."""
    recs = [{"ts_ms": int(ts), **json.loads(body)} for ts, body in rows]
    return pd.DataFrame(recs) if recs else pd.DataFrame({"ts_ms": pd.Series(dtype="int64")})


def default_writer() -> str:
    """A name for one live-store client that writes per-meter snapshots: host, pid, random."""
    import os
    import secrets
    import socket

    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
