"""Health-check verdicts from measured figures, offsets arithmetic, and the lag plot."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from smartmeter_lib.errors import UnhealthyError
from smartmeter_lib.ops.health import (
    HealthReport,
    Thresholds,
    evaluate,
    lag_figure,
    lag_table,
    require_healthy,
)
from smartmeter_lib.ops.offsets import Offsets, committed_total_of


def _report(**changes: object) -> HealthReport:
    o = Offsets("t", 0.0, {0: 1000, 1: 900}, {0: 900, 1: None}, {0: 0, 1: 800})
    r = HealthReport(interval_s=10.0, lag=lag_table(o), rate_in=500.0, rate_out=480.0,
                     lag_growth=20, live_age_s=8.0, kpis={"ts_ms": 1}, cassandra_rate=450.0,
                     cassandra_sampled=50, active_alerts=2, alerts_in_topic=3, dlq_rate=0.0)
    r = replace(r, **changes)  # type: ignore[arg-type]
    r.checks = evaluate(r, Thresholds())
    return r


def _failed(r: HealthReport) -> list[str]:
    return r.checks[~r.checks["ok"]]["check"].tolist()


def test_offsets_lag_and_committed() -> None:
    o = Offsets("t", 0.0, {0: 1000, 1: 900}, {0: 900, 1: None}, {0: 0, 1: 800})
    assert (o.lag(0), o.lag(1), o.total_lag, o.total_end) == (100, 100, 200, 1900)
    assert committed_total_of(o) == 1700
    assert lag_table(o)["lag"].tolist() == [100, 100]


def test_a_healthy_pipeline_passes_every_check() -> None:
    r = _report()
    assert r.healthy and _failed(r) == []
    require_healthy(r)
    assert r.checks.set_index("check").loc["active alerts", "value"] == 2  # reported, an int


@pytest.mark.parametrize(("changes", "failed", "says"), [
    ({"rate_in": 0.0, "rate_out": 0.0, "lag_growth": 0}, "readings in /s", "no readings arrive"),
    ({"rate_out": 100.0, "lag_growth": 4000}, "readings out /s", "add workers"),
    ({"lag": pd.DataFrame({"partition": [0], "lag": [50_000]})}, "consumer lag (s of input)",
     "50000 readings wait"),
    ({"live_age_s": 600.0}, "live store age (s)", "the live store is not updated"),
    ({"live_age_s": None}, "live store age (s)", "the live store is not updated"),
    ({"cassandra_rate": 0.0}, "cassandra writes /s (est.)", "not in Cassandra"),
    ({"dlq_rate": 100.0}, "dead letters per reading", "read the DLQ"),
])
def test_each_unhealthy_figure_fails_its_check_and_says_what_to_do(
        changes: dict[str, object], failed: str, says: str) -> None:
    r = _report(**changes)
    assert failed in _failed(r) and not r.healthy
    with pytest.raises(UnhealthyError) as err:
        require_healthy(r)
    assert failed in str(err.value) and says in str(err.value)


def test_no_cassandra_writes_is_fine_when_nothing_is_consumed() -> None:
    r = _report(rate_in=0.0, rate_out=0.0, lag_growth=0, cassandra_rate=0.0)
    assert "cassandra writes /s (est.)" not in _failed(r)


def test_alerts_fail_only_with_a_threshold() -> None:
    r = _report()
    r.checks = evaluate(r, Thresholds(max_active_alerts=1))
    assert _failed(r) == ["active alerts"]


def test_lag_figure_has_a_bar_per_partition() -> None:
    fig = lag_figure(_report())
    assert list(fig.x_range.factors) == ["0", "1"]
    assert "total 200" in fig.title.text
