"""Which decoded readings are physically possible: the one place that judges values.

The codec checks the *format* of a message (size, version, kind, key); this module checks its
*values*. :func:`screen` is called from one place, the processor's step
(:mod:`smartmeter_lib.stream.runner`), on every decoded micro-batch; rows it refuses go to the
dead-letter topic with the reason and are counted in the processor's metrics.

What is refused, and what is not (on purpose):

- a kWh value that is not a finite number (NaN, ±inf);
- an event time outside [2000-01-01, 2100-01-01): a clock that was never set, or garbage;
- an average power beyond ``max_abs_kw`` (100 kW by default, ``SMARTMETER_MAX_ABS_KW``) in
  either direction. A household supply cannot carry that, so it is not a reading.

Negative readings within that bound are **valid**: rooftop PV exports, and a meter wired in
reverse reads negative too, which the theft detector has to see. Spikes up to ~80 kW are a
meter fault that the detectors must see as well, so they pass. Timestamps a little ahead of
the processor's clock, unknown meters, late readings and duplicates are judged by the windows
(:mod:`smartmeter_lib.stream.windows`), which know the fleet and the watermark.

>>> import numpy as np
>>> r = value_reasons(np.array([0, 1_764_300_000_000]), np.array([0.1, float("nan")]),
...                   np.array([1, 1]), Limits())
>>> [str(x) for x in r]
['timestamp out of range (2000-2100)', 'kwh is not a finite number']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from smartmeter_lib.codec import DEFAULT_MAX_ABS_KW, MAX_TS_MS, MIN_TS_MS, Decoded, Reject

__all__ = ["DEFAULT_LIMITS", "Limits", "screen", "value_reasons"]


@dataclass(frozen=True)
class Limits:
    """The bounds a reading's values must fall within."""

    max_abs_kw: float = DEFAULT_MAX_ABS_KW
    min_ts_ms: int = MIN_TS_MS
    max_ts_ms: int = MAX_TS_MS

    def __post_init__(self) -> None:
        if not (np.isfinite(self.max_abs_kw) and self.max_abs_kw > 0):
            raise ValueError(f"max_abs_kw must be a positive number, got {self.max_abs_kw}")
        if self.min_ts_ms >= self.max_ts_ms:
            raise ValueError("min_ts_ms must be below max_ts_ms")

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        """The limits of a :class:`smartmeter_lib.config.Settings`."""
        return cls(max_abs_kw=float(getattr(settings, "max_abs_kw", DEFAULT_MAX_ABS_KW)))


DEFAULT_LIMITS = Limits()


def value_reasons(ts_ms: npt.ArrayLike, kwh: npt.ArrayLike, interval_s: npt.ArrayLike,
                  limits: Limits = DEFAULT_LIMITS) -> npt.NDArray[np.object_]:
    """The reason each row's values are impossible, or None where they are fine.

    Vectorised over the batch; the first failing check wins.
    """
    ts = np.asarray(ts_ms, np.int64)
    k = np.asarray(kwh, np.float64)
    iv = np.maximum(np.asarray(interval_s, np.float64), 1.0)
    reasons = np.full(len(ts), None, dtype=object)
    with np.errstate(invalid="ignore", over="ignore"):
        kw = k * 3600.0 / iv
    lim = limits.max_abs_kw
    checks = [
        (~np.isfinite(k), "kwh is not a finite number"),
        ((ts < limits.min_ts_ms) | (ts >= limits.max_ts_ms), "timestamp out of range (2000-2100)"),
        (np.isfinite(kw) & (kw > lim), f"import above {lim:g} kW (physically impossible)"),
        (np.isfinite(kw) & (kw < -lim), f"export above {lim:g} kW (physically impossible)"),
        (np.isfinite(k) & ~np.isfinite(kw), f"power above {lim:g} kW (physically impossible)"),
    ]
    for mask, why in reversed(checks):
        reasons[mask] = why
    return reasons


def screen(decoded: Decoded, keys: Any, values: Any,
           limits: Limits = DEFAULT_LIMITS) -> Decoded:
    """``decoded`` without the rows whose values are impossible; those join its rejects
    (with the original key and value, for the dead-letter topic)."""
    b = decoded.batch
    if len(b) == 0:
        return decoded
    reasons = value_reasons(b.ts_ms, b.kwh, b.interval_s, limits)
    bad = np.flatnonzero(reasons != None)  # noqa: E711  (element-wise)
    if len(bad) == 0:
        return decoded
    rejects = list(decoded.rejects)
    for j in bad.tolist():
        i = int(decoded.index[j])
        rejects.append(Reject(i, keys[i], values[i], str(reasons[j])))
    rejects.sort(key=lambda r: r.index)
    keep = reasons == None  # noqa: E711
    return Decoded(b.take(keep.astype(bool)), rejects, decoded.index[keep.astype(bool)])
