"""``smartmeter health``: the health check of runbook 05 from the command line."""

from __future__ import annotations

import json

import click

from smartmeter_lib.config import Settings


@click.command("health")
@click.option("--group", default="smartmeter-processor", show_default=True,
              help="Consumer group of the processors.")
@click.option("--interval", type=float, default=15.0, show_default=True,
              help="Seconds between the two looks at the offsets (the rates are over it; the "
                   "Cassandra write rate over at least twice SMARTMETER_FLUSH_INTERVAL_S "
                   "plus 1 s).")
@click.option("--max-lag-s", type=float, default=30.0, show_default=True,
              help="Largest healthy lag, in seconds of input.")
@click.option("--max-live-age-s", type=float, default=60.0, show_default=True,
              help="Oldest healthy live store (now minus its last second).")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.pass_context
def health(ctx: click.Context, group: str, interval: float, max_lag_s: float,
           max_live_age_s: float, as_json: bool) -> None:
    """Check the running pipeline on Kafka, Cassandra and Redis; exit 1 when unhealthy.

    Looks twice, --interval seconds apart: consumer lag per partition, readings/s in and
    out, the live store's age, the Cassandra write rate (estimated from a sample of meters),
    active alerts and dead letters. Hosts and names come from the SMARTMETER_* settings
    (SMARTMETER_KAFKA_BOOTSTRAP, SMARTMETER_TOPIC_READINGS, ...). runbooks/05_health_check
    does the same and draws the lag.
    """
    from smartmeter_lib.errors import ConfigError
    from smartmeter_lib.ops.health import Thresholds, measure, require_healthy

    if interval <= 0:
        raise ConfigError(f"--interval must be positive, got {interval:g}")
    s: Settings = ctx.obj["settings"]
    report = measure(s.with_backends("real"), group, interval,
                     Thresholds(max_lag_s=max_lag_s, max_live_age_s=max_live_age_s))
    if as_json:
        click.echo(json.dumps(report.summary().to_dict("records"), default=str, indent=2))
    else:
        click.echo(report.summary()[["check", "value", "limit", "ok"]].to_string(index=False))
        click.echo(report.lag.to_string(index=False))
    require_healthy(report)
