"""How the processor's sinks ride out failures.

- **History** (the system of record): a write that fails with :class:`BackendError` is retried
  with a bounded exponential backoff (``sink_retry_initial_s`` doubling up to
  ``sink_retry_max_s``). The processor waits in the retry, so it never commits offsets past
  data that is not written; when history is back it catches up from where it was. A write
  still failing after ``sink_retry_timeout_s`` raises, the processor stops with its offsets
  uncommitted, and a restart resumes without loss.
- **Live store** (a cache rebuilt every second): a failed write is logged (once per
  ``LIVE_LOG_EVERY_S``) and skipped; the next writes rebuild the live state once the server
  answers again. The Redis client itself reconnects after a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from smartmeter_lib.adapters.base import HistoryStore, LiveStore
from smartmeter_lib.errors import BackendError

log = logging.getLogger(__name__)
HISTORY_WRITES = frozenset({"write_readings", "write_rollups", "write_area_rollups",
                            "write_checkpoints", "write_events", "write_insights",
                            "register_meters"})
LIVE_LOG_EVERY_S = 10.0


@dataclass(frozen=True)
class Backoff:
    """A bounded exponential backoff."""

    initial_s: float = 0.5
    max_s: float = 10.0
    timeout_s: float = 240.0

    @classmethod
    def from_settings(cls, settings: Any) -> Backoff:
        return cls(settings.sink_retry_initial_s, settings.sink_retry_max_s,
                   settings.sink_retry_timeout_s)

    def delays(self) -> list[float]:
        """The waits between attempts, in order, until the timeout would be passed.

        >>> Backoff(0.5, 2.0, 6.0).delays()
        [0.5, 1.0, 2.0, 2.0]
        """
        out, d, total = [], self.initial_s, 0.0
        while total + d <= self.timeout_s:
            out.append(d)
            total += d
            d = min(d * 2, self.max_s)
        return out


class RetryingHistory:
    """A history store whose writes are retried on :class:`BackendError`; everything else
    passes through unchanged."""

    def __init__(self, inner: HistoryStore, backoff: Backoff,
                 wait: Callable[[float], object] | None = None) -> None:
        self.inner = inner
        self.backoff = backoff
        self._wait = wait or threading.Event().wait
        self.retries = 0
        self.failures = 0  # writes that exhausted the backoff

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in HISTORY_WRITES:
            return attr

        def retried(*args: Any, **kwargs: Any) -> Any:
            return self._call(name, attr, args, kwargs)

        return retried

    def _call(self, name: str, fn: Callable[..., Any], args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> Any:
        t0 = time.monotonic()
        delays = self.backoff.delays()
        attempt = 0
        while True:
            try:
                result = fn(*args, **kwargs)
            except BackendError as err:
                if attempt >= len(delays):
                    self.failures += 1
                    log.error("history %s still failing after %d attempts in %.0f s; stopping "
                              "with offsets uncommitted (a restart resumes where this "
                              "stopped): %s", name, attempt + 1, time.monotonic() - t0, err)
                    raise BackendError(f"history {name} failed for {time.monotonic() - t0:.0f} "
                                       f"s ({attempt + 1} attempts): {err}") from err
                delay = delays[attempt]
                attempt += 1
                self.retries += 1
                log.warning("history %s failed (attempt %d): %s; retrying in %.1f s; offsets "
                            "stay uncommitted until it succeeds", name, attempt, err, delay)
                self._wait(delay)
                continue
            if attempt:
                log.warning("history %s succeeded after %d retries (%.1f s); catching up",
                            name, attempt, time.monotonic() - t0)
            return result


class TolerantLive:
    """A live store whose failed writes are logged and skipped (reads pass through)."""

    def __init__(self, inner: LiveStore) -> None:
        self.inner = inner
        self.failures = 0
        self._last_log = -LIVE_LOG_EVERY_S
        self._since_log = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not name.startswith("put_"):
            return attr

        def tolerant(*args: Any, **kwargs: Any) -> Any:
            try:
                return attr(*args, **kwargs)
            except BackendError as err:
                self.failures += 1
                self._since_log += 1
                now = time.monotonic()
                if now - self._last_log >= LIVE_LOG_EVERY_S:
                    log.warning("live store: %d writes skipped (last: %s): %s; the live state "
                                "is rebuilt by the writes after it answers again",
                                self._since_log, name, err)
                    self._last_log, self._since_log = now, 0
                return None

        return tolerant


def resilient(history: HistoryStore, live: LiveStore,
              settings: Any) -> tuple[HistoryStore, LiveStore]:
    """``history`` with retried writes and ``live`` with skipped failed writes."""
    return (cast(HistoryStore, RetryingHistory(history, Backoff.from_settings(settings))),
            cast(LiveStore, TolerantLive(live)))
