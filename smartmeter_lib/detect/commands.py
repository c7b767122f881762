"""``smartmeter evaluate``: score the detectors on a scenario, beside the prototype's rule."""

from __future__ import annotations

import json
from pathlib import Path

import click

from smartmeter_lib.config import Settings
from smartmeter_lib.errors import ConfigError
from smartmeter_lib.simulate.scenario import load_scenario, packaged_scenarios, parse_duration

_EPILOG = ("Targets (docs/detection.md): area outages precision and recall >= 0.99 and median "
           "time to detect <= 10 s; comms loss never reported as an area outage; theft "
           "precision >= 0.9 and recall >= 0.8.")


@click.command("evaluate", epilog=_EPILOG)
@click.option("--scenario", "scenario_path", required=True, metavar="FILE",
              help="Scenario YAML with a fixed start, or a packaged one: "
                   + ", ".join(packaged_scenarios()) + ".")
@click.option("--homes", type=int, default=None, help="Override the scenario's homes.")
@click.option("--duration", default=None, metavar="TIME",
              help="Override the scenario's duration (e.g. 90m).")
@click.option("--batch-seconds", type=int, default=1, show_default=True,
              help="Seconds of messages per micro-batch: 1 is a live feed; more runs faster "
                   "but delays detection by up to that much.")
@click.option("--out", "out_path", type=click.Path(path_type=Path), default=None,
              help="Also write the table (Markdown) to this file.")
@click.option("--alerts", "alerts_path", type=click.Path(path_type=Path), default=None,
              help="Write every alert raised (JSON lines) to this file.")
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
@click.pass_context
def evaluate(ctx: click.Context, scenario_path: str, homes: int | None, duration: str | None,
             batch_seconds: int, out_path: Path | None, alerts_path: Path | None,
             as_json: bool) -> None:
    """Score outage, comms-loss, theft and stuck-meter detection against ground truth.

    Runs the scenario through the embedded pipeline (simulator -> memory bus -> processor
    with its detectors -> embedded stores, in a temporary folder) as fast as it can, reads
    the alerts back from history and matches them with the simulator's labels. Prints
    precision, recall and time to detect (median and p95) per class, for smartmeter and,
    side by side, for the 2020 prototype's rule (a 5-s window averaging <= 0.0001 kWh per
    reading is an outage, >= 0.00065 a theft).
    """
    from smartmeter_lib.detect.evaluate import evaluate as run_evaluation
    from smartmeter_lib.detect.evaluate import format_table

    settings: Settings = ctx.obj["settings"]
    if homes is not None and homes < 1:
        raise ConfigError(f"--homes must be at least 1, got {homes}")
    if batch_seconds < 1:
        raise ConfigError(f"--batch-seconds must be at least 1, got {batch_seconds}")
    scenario = load_scenario(scenario_path)
    dur = parse_duration(duration, "--duration") if duration is not None else None
    ev = run_evaluation(settings, scenario, homes=homes, duration_s=dur,
                        batch_seconds=batch_seconds)
    text = format_table(ev)
    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(text + "\n", encoding="utf-8")
    if alerts_path is not None:
        alerts_path.parent.mkdir(parents=True, exist_ok=True)
        with alerts_path.open("w", encoding="utf-8") as f:
            for a in ev.alerts:
                f.write(json.dumps(a.to_dict(), sort_keys=True) + "\n")
    if as_json:
        click.echo(json.dumps({
            "scenario": ev.scenario, "homes": ev.homes, "seconds": ev.seconds,
            "readings": ev.run.readings, "wall_s": round(ev.wall_s, 1),
            "scores": json.loads(ev.table.to_json(orient="records")),
            "comms_as_outage": {"smartmeter": ev.comms_as_outage,
                                "prototype": ev.prototype_comms_as_outage}}, indent=2))
    else:
        click.echo(text)
