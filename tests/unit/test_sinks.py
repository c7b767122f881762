"""The processor's sinks under failure: history writes retried with a bounded exponential
backoff (then a clear error), live-store writes skipped and counted."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from smartmeter_lib.config import build_settings
from smartmeter_lib.errors import BackendError
from smartmeter_lib.stream.sinks import Backoff, RetryingHistory, TolerantLive


class Flaky:
    """A history store whose writes fail ``failures`` times, then succeed."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.written: list[Any] = []

    def write_readings(self, batch: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise BackendError("Cassandra write of readings to ks: NoHostAvailable")
        self.written.append(batch)

    def read_rollups(self, *args: Any) -> str:
        raise BackendError("reads are not retried")


def test_backoff_doubles_up_to_its_cap_and_stops_at_its_timeout() -> None:
    assert Backoff(0.5, 10, 240).delays()[:7] == [0.5, 1, 2, 4, 8, 10, 10]
    assert sum(Backoff(0.5, 10, 240).delays()) <= 240
    s = build_settings(sink_retry_initial_s=1, sink_retry_max_s=4, sink_retry_timeout_s=20)
    assert Backoff.from_settings(s).delays() == [1, 2, 4, 4, 4, 4]


def test_a_failing_history_write_is_retried_until_it_succeeds(
        caplog: pytest.LogCaptureFixture) -> None:
    waits: list[float] = []
    inner = Flaky(failures=4)
    h = RetryingHistory(inner, Backoff(0.5, 2, 60), wait=waits.append)  # type: ignore[arg-type]
    caplog.set_level(logging.WARNING)
    h.write_readings("batch-1")
    assert inner.written == ["batch-1"]
    assert waits == [0.5, 1, 2, 2]
    assert h.retries == 4
    assert "failed (attempt 1)" in caplog.text and "offsets stay uncommitted" in caplog.text
    assert "succeeded after 4 retries" in caplog.text


def test_a_history_write_failing_past_the_timeout_raises_with_the_cause() -> None:
    waits: list[float] = []
    h = RetryingHistory(Flaky(failures=100), Backoff(1, 2, 5),  # type: ignore[arg-type]
                        wait=waits.append)
    with pytest.raises(BackendError, match=r"write_readings failed .* NoHostAvailable"):
        h.write_readings("batch")
    assert waits == [1, 2, 2] and h.failures == 1


def test_reads_are_not_retried() -> None:
    h = RetryingHistory(Flaky(0), Backoff(), wait=lambda s: None)  # type: ignore[arg-type]
    with pytest.raises(BackendError, match="not retried"):
        h.read_rollups(60)


class DownLive:
    def put_kpis(self, kpis: dict[str, Any]) -> None:
        raise BackendError("Redis put_kpis at redis://127.0.0.1:6379/0: Connection refused")

    def get_kpis(self) -> dict[str, Any]:
        raise BackendError("Redis get_kpis: Connection refused")


def test_live_writes_are_skipped_and_counted_while_the_store_is_down(
        caplog: pytest.LogCaptureFixture) -> None:
    live = TolerantLive(DownLive())  # type: ignore[arg-type]
    caplog.set_level(logging.WARNING)
    for _ in range(5):
        assert live.put_kpis({"x": 1}) is None
    assert live.failures == 5
    assert caplog.text.count("live store:") == 1  # rate-limited
    with pytest.raises(BackendError):
        live.get_kpis()  # reads (dashboards) still see the error
