"""``smartmeter simulate``: a realistic household fleet with scheduled grid events, through the
embedded pipeline, writing the ground truth of the events to a labels file."""

from __future__ import annotations

import logging
from pathlib import Path

import click
import pandas as pd

from smartmeter_lib.config import Settings
from smartmeter_lib.errors import ConfigError
from smartmeter_lib.simulate.households import HouseholdFleet
from smartmeter_lib.simulate.pipeline import check_start, default_start, run_simulation
from smartmeter_lib.simulate.scenario import (
    Scenario,
    load_scenario,
    packaged_scenarios,
    parse_duration,
    parse_time,
    resolve_events,
)

log = logging.getLogger(__name__)
DEFAULT_DURATION_S = 600
_EPILOG = ("Every option can also be set in the environment with the SMARTMETER_ prefix, "
           "e.g. SMARTMETER_HOMES=2000. Scenario format: docs/scenarios.md.")


def write_table(df: pd.DataFrame, path: Path) -> None:
    """Write a table as Parquet (``.parquet``) or CSV (anything else)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)


@click.command("simulate", epilog=_EPILOG)
@click.option("--scenario", "scenario_path", default=None, metavar="FILE",
              help="Scenario YAML (fleet, time span, grid events), or the name of a packaged "
                   "one: " + ", ".join(packaged_scenarios()) + ".")
@click.option("--homes", type=int, default=None,
              help="Homes in the fleet [default: the scenario's, else SMARTMETER_HOMES].")
@click.option("--duration", default=None, metavar="TIME",
              help="Event time to simulate: seconds, or 90s / 20m / 1h30m "
                   "[default: the scenario's, else 10m].")
@click.option("--speedup", type=float, default=1.0, show_default=True,
              help="Seconds of event time per second of wall time; 0 = as fast as possible.")
@click.option("--start", default=None, metavar="ISO-TIME",
              help="Event time of the first second, e.g. 2025-01-15T17:00:00Z [default: the "
                   "scenario's, else the latest start that keeps every reading in the past].")
@click.option("--seed", type=int, default=None,
              help="Random seed: the same seed gives the same fleet, events and readings "
                   "[default: the scenario's, else SMARTMETER_SEED].")
@click.option("--labels", "labels_path", type=click.Path(path_type=Path), default=None,
              help="Where to write the ground truth of the events (.csv or .parquet) "
                   "[default: DATA_DIR/labels.csv].")
@click.option("--producers", type=int, default=1, show_default=True,
              help="With the Kafka bus: producer processes, each sending a west-to-east "
                   "third (half, ...) of London; the processors run separately "
                   "(`smartmeter process --workers N`).")
@click.pass_context
def simulate(ctx: click.Context, scenario_path: str | None, homes: int | None,
             duration: str | None, speedup: float, start: str | None, seed: int | None,
             labels_path: Path | None, producers: int) -> None:
    """Simulate London households and grid events through the pipeline.

    Each home is an archetype (single flat, family, storage heaters, heat pump, EV, rooftop
    PV, ...) calibrated to Ofgem's typical annual consumption, sending one reading a second.
    A scenario schedules area outages (with LAST_GASP / POWER_RESTORE messages, some lost),
    communication losses, stuck or spiking meters, bypass theft and reversed meters. Their
    ground truth (event, kind, meter, area, start, end) goes to the labels file before the
    first reading, so detectors can be scored. On the default memory bus the readings are
    processed in-process into the history and live store under --data-dir; with
    SMARTMETER_BUS=kafka they go to Kafka from --producers processes, for the processors of
    `smartmeter process` to take.
    """
    settings: Settings = ctx.obj["settings"]
    if producers < 1:
        raise ConfigError(f"--producers must be at least 1, got {producers}")
    if producers > 1 and settings.bus != "kafka":
        raise ConfigError("--producers > 1 needs the Kafka bus: set SMARTMETER_BUS=kafka")
    scenario = load_scenario(scenario_path) if scenario_path else Scenario(name="default")
    if speedup < 0:
        raise ConfigError(f"--speedup must be >= 0 (0 = as fast as possible), got {speedup:g}")
    dur_s = (parse_duration(duration, "--duration") if duration is not None
             else scenario.duration_s or DEFAULT_DURATION_S)
    if dur_s < 1:
        raise ConfigError("--duration must be at least 1 s")
    settings = settings.with_overrides(homes=homes if homes is not None else scenario.homes,
                                       seed=seed if seed is not None else scenario.seed)
    if start is not None:
        start_s = parse_time(start, "--start")
    elif scenario.start_s is not None:
        start_s = scenario.start_s
    else:
        start_s = default_start(dur_s, speedup)
    check_start(start_s, dur_s, speedup)
    late = [e.event_id for e in scenario.events if e.at_s >= dur_s]
    if late:
        log.warning("event(s) %s start after the end of the run (%d s)", late, dur_s)

    fleet = HouseholdFleet(settings.homes, seed=settings.seed, mix=scenario.mix,
                           bounds=scenario.bounds)
    try:
        fleet.set_events(resolve_events(scenario, fleet, start_s))
    except ValueError as err:
        raise ConfigError(f"scenario {scenario.source}: {err}") from err
    labels_path = labels_path or Path(settings.data_dir) / "labels.csv"
    labels = fleet.labels
    write_table(labels, labels_path)
    write_table(fleet.households, labels_path.with_name("households.csv"))
    log.info("labels: %d rows for %d events -> %s", len(labels), len(scenario.events),
             labels_path)
    if settings.bus == "kafka":
        from smartmeter_lib.adapters import open_history
        from smartmeter_lib.stack import run_producers

        history = open_history(settings)
        history.register_meters(fleet.meters)
        history.close()
        sent = run_producers(settings, producers, start_s, dur_s, speedup, scenario_path)
        click.echo(f"sent {sent} messages from {fleet.n} homes through {producers} producers "
                   f"to {settings.topic_readings}; labels: {labels_path} ({len(labels)} rows)")
        return
    stats = run_simulation(settings, fleet, start_s, dur_s, speedup)
    proc = stats.processor
    rejected = sum(proc.rejected.values()) if proc else 0
    click.echo(
        f"simulated {fleet.n} homes for {stats.seconds} s of event time from "
        f"{pd.Timestamp(start_s, unit='s', tz='UTC'):%Y-%m-%dT%H:%M:%SZ}: {stats.readings} "
        f"readings and {stats.events} meter events sent, "
        f"{proc.messages_in if proc else 0} processed, {rejected} rejected, in "
        f"{stats.wall_s:.1f} s; labels: {labels_path} ({len(labels)} rows)")
