"""Health of a running pipeline: consumer lag per partition, readings/s in and out, how fresh
the live store is, the Cassandra write rate, alerts and dead letters.

:func:`measure` looks twice, ``interval_s`` apart, and returns a :class:`HealthReport`;
:func:`evaluate` (pure) turns its figures and the :class:`Thresholds` into checks;
:func:`require_healthy` raises :class:`~smartmeter_lib.errors.UnhealthyError` naming each
failed check and what to look at.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from smartmeter_lib.config import Settings
from smartmeter_lib.errors import BackendError, UnhealthyError
from smartmeter_lib.ops.offsets import Offsets, committed_total_of, read_offsets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Thresholds:
    """Limits of a healthy pipeline."""

    max_lag_s: float = 30.0  #: lag, in seconds of input at the current rate
    min_rate_in: float = 1.0  #: readings/s arriving; below it the producers look stopped
    min_out_ratio: float = 0.5  #: readings/s committed over readings/s in (when lag grows)
    max_live_age_s: float = 60.0  #: age of the live store's last second
    max_dlq_ratio: float = 0.05  #: dead letters per reading in
    max_active_alerts: int | None = None  #: None: alerts are reported, never unhealthy


@dataclass
class HealthReport:
    """The figures of one health check."""

    interval_s: float
    lag: pd.DataFrame  #: partition, end_offset, committed, lag (at the second look)
    rate_in: float  #: readings/s appended to the readings topic
    rate_out: float  #: readings/s committed by the processor group
    lag_growth: int  #: total lag at the second look minus at the first
    live_age_s: float | None  #: now minus the event time of the live store's last second
    kpis: dict[str, Any]
    cassandra_rate: float | None  #: readings/s written to Cassandra (estimated, see measure)
    cassandra_sampled: int
    active_alerts: int
    alerts_in_topic: int
    dlq_rate: float
    checks: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def total_lag(self) -> int:
        return int(self.lag["lag"].sum())

    @property
    def healthy(self) -> bool:
        return bool(self.checks["ok"].all()) if len(self.checks) else False

    def summary(self) -> pd.DataFrame:
        """The checks: check, value, limit, ok, detail."""
        return self.checks


def _rate(a: int, b: int, dt: float) -> float:
    return max(0, b - a) / dt if dt > 0 else 0.0


def lag_table(o: Offsets) -> pd.DataFrame:
    """Per partition: end offset, committed offset and lag."""
    return pd.DataFrame([{"partition": p, "end_offset": o.end[p],
                          "committed": o.committed.get(p), "lag": o.lag(p)}
                         for p in sorted(o.end)])


def evaluate(r: HealthReport, th: Thresholds) -> pd.DataFrame:
    """One row per check: check, value, limit, ok, detail (what to look at when not ok)."""
    rows: list[tuple[str, Any, Any, bool, str]] = []
    lag_s = r.total_lag / r.rate_in if r.rate_in > 0 else (0.0 if r.total_lag == 0 else np.inf)
    rows.append(("readings in /s", round(r.rate_in, 1), f">= {th.min_rate_in:g}",
                 r.rate_in >= th.min_rate_in,
                 "no readings arrive: are the producers running? (pipeline logs)"))
    rows.append(("readings out /s", round(r.rate_out, 1),
                 f">= {th.min_out_ratio:g} x in while lag grows",
                 not (r.lag_growth > 0 and r.rate_out < th.min_out_ratio * r.rate_in),
                 "the processors fall behind: add workers (up to 6) or look at their logs"))
    rows.append(("consumer lag (s of input)", round(float(lag_s), 1), f"<= {th.max_lag_s:g}",
                 bool(lag_s <= th.max_lag_s),
                 f"{r.total_lag} readings wait; processors down or too few?"))
    age = r.live_age_s
    rows.append(("live store age (s)", None if age is None else round(age, 1),
                 f"<= {th.max_live_age_s:g}", age is not None and age <= th.max_live_age_s,
                 "the live store is not updated: processors stopped, or Redis unreachable"))
    cass_ok = r.cassandra_rate is not None and (r.cassandra_rate > 0 or r.rate_out == 0)
    rows.append(("cassandra writes /s (est.)",
                 None if r.cassandra_rate is None else round(r.cassandra_rate, 1),
                 "> 0 while readings flow", cass_ok,
                 "readings are consumed but not in Cassandra: look at the processor logs"))
    dlq_ratio = r.dlq_rate / r.rate_in if r.rate_in > 0 else 0.0
    rows.append(("dead letters per reading", round(dlq_ratio, 4), f"<= {th.max_dlq_ratio:g}",
                 dlq_ratio <= th.max_dlq_ratio,
                 "many readings are refused (late, unknown meter, malformed): read the DLQ"))
    alerts_ok = th.max_active_alerts is None or r.active_alerts <= th.max_active_alerts
    rows.append(("active alerts", r.active_alerts,
                 "reported" if th.max_active_alerts is None else f"<= {th.max_active_alerts}",
                 alerts_ok, "outages, comms losses or theft: see the alerts on the dashboard"))
    df = pd.DataFrame(rows, columns=["check", "value", "limit", "ok", "detail"])
    df["value"] = pd.Series([r[1] for r in rows], dtype=object)  # ints stay ints
    df["ok"] = df["ok"].astype(bool)
    return df


class CassandraSample:
    """Counts the stored readings of ``sample`` registered meters (picked at random) over a
    window of event time; two counts ``dt`` apart give the readings/s landing in Cassandra,
    scaled to the whole registry. Counting what arrives *between* two looks holds for a
    pipeline that has just started and for one whose event time is far from the wall clock
    (a replay), where a fixed window of recent event time would hold nothing yet."""

    def __init__(self, settings: Settings, sample: int = 50, seed: int = 0) -> None:
        from smartmeter_lib.adapters.cassandra_history import CassandraHistory

        self.h = CassandraHistory(settings)
        ids = np.asarray(self.h.meters().meter_id)
        self.registry = len(ids)
        rng = np.random.default_rng(seed)
        self.picked = (rng.choice(ids, size=min(sample, len(ids)), replace=False)
                       if len(ids) else ids)

    def count(self, start_ms: int, end_ms: int) -> int:
        return sum(len(self.h.read_readings(str(m), start_ms, end_ms)) for m in self.picked)

    def rate(self, before: int, after: int, dt: float) -> float | None:
        if not len(self.picked) or dt <= 0:
            return None
        return max(0, after - before) * self.registry / len(self.picked) / dt

    def close(self) -> None:
        self.h.close()


def cassandra_look_s(settings: Settings) -> float:
    """The shortest time over which the Cassandra write rate is judged: two of the
    processors' history writes (``flush_interval_s``) and a second.

    >>> from smartmeter_lib.config import build_settings
    >>> cassandra_look_s(build_settings(flush_interval_s=5))
    11.0
    """
    return 2 * float(settings.flush_interval_s) + 1.0


def measure(settings: Settings, group: str = "smartmeter-processor", interval_s: float = 15.0,
            thresholds: Thresholds | None = None, cassandra_sample: int = 50) -> HealthReport:
    """Look at the pipeline twice, ``interval_s`` apart, and evaluate the figures."""
    from smartmeter_lib.adapters.redis_live import RedisLive

    th = thresholds or Thresholds()
    try:
        live = RedisLive(settings)
    except BackendError as err:
        raise UnhealthyError(f"the live store does not answer: {err}") from err
    try:
        cass = CassandraSample(settings, cassandra_sample)
    except BaseException:
        live.close()
        raise
    try:
        # the event time the pipeline is at (its last closed second), else the wall clock
        now_ms = int(live.get_kpis().get("ts_ms", time.time() * 1000))
        window = (now_ms - 600_000, now_ms + int(interval_s * 1000) + 600_000)
        a = read_offsets(settings, settings.topic_readings, group)
        dlq_a = read_offsets(settings, settings.topic_dlq)
        stored_a, t_a = cass.count(*window), time.monotonic()
        time.sleep(interval_s)  # the measuring interval itself, not a wait for a condition
        b = read_offsets(settings, settings.topic_readings, group)
        dlq_b = read_offsets(settings, settings.topic_dlq)
        # processors write history every flush_interval_s: a shorter look can fall between
        # two writes and see none while readings flow; look at Cassandra over two flushes
        time.sleep(max(0.0, cassandra_look_s(settings) - (time.monotonic() - t_a)))
        stored_b, t_b = cass.count(*window), time.monotonic()
        alerts = read_offsets(settings, settings.topic_alerts)
        kpis = live.get_kpis()
        active = len(live.get_active_alerts())
    finally:
        live.close()
        cass.close()
    dt = b.t - a.t
    age = time.time() - kpis["ts_ms"] / 1000.0 if "ts_ms" in kpis else None
    rate, sampled = cass.rate(stored_a, stored_b, t_b - t_a), len(cass.picked)
    report = HealthReport(
        interval_s=dt, lag=lag_table(b), rate_in=_rate(a.total_end, b.total_end, dt),
        rate_out=_rate(committed_total_of(a), committed_total_of(b), dt),
        lag_growth=b.total_lag - a.total_lag, live_age_s=age, kpis=kpis,
        cassandra_rate=rate, cassandra_sampled=sampled, active_alerts=active,
        alerts_in_topic=alerts.total_end - sum(alerts.start.values()),
        dlq_rate=_rate(dlq_a.total_end, dlq_b.total_end, dt))
    report.checks = evaluate(report, th)
    return report


def require_healthy(report: HealthReport) -> None:
    """Raise UnhealthyError naming each failed check, its value and what to look at."""
    bad = report.checks[~report.checks["ok"]]
    if len(bad):
        raise UnhealthyError("the pipeline is unhealthy: " + "; ".join(
            f"{r.check} = {r.value} (limit {r.limit}): {r.detail}" for r in bad.itertuples()))


def lag_figure(report: HealthReport) -> Any:
    """A small Bokeh bar chart of the consumer lag per partition."""
    from bokeh.plotting import figure

    parts = [str(p) for p in report.lag["partition"]]
    fig = figure(x_range=parts, height=220, width=420, toolbar_location=None,
                 title=f"consumer lag per partition (total {report.total_lag})",
                 x_axis_label="partition", y_axis_label="readings not yet committed")
    fig.vbar(x=parts, top=report.lag["lag"].to_list(), width=0.8)
    fig.y_range.start = 0
    return fig
