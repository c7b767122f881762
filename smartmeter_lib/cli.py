"""The ``smartmeter`` command line. Thin: every command calls the library."""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import click

from smartmeter_lib.config import Settings, build_settings
from smartmeter_lib.errors import ConfigError, SmartmeterError

log = logging.getLogger("smartmeter")

_EPILOG = ("Every option can also be set in the environment with the SMARTMETER_ prefix, "
           "e.g. SMARTMETER_HOMES=2000. Docs: README.md and docs/.")


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    base: Settings = ctx.obj["settings"]
    return base.with_overrides(**overrides)


@click.group(epilog=_EPILOG, context_settings={"help_option_names": ["-h", "--help"],
                                               "max_content_width": 100})
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Where the embedded history and live store live [default: .smartmeter].")
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR [default: INFO].")
@click.version_option(package_name="smartmeter")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, log_level: str | None) -> None:
    """Real-time analytics of London's household smart-meter data.

    Readings flow from meters (simulated or replayed) through a bus (in-process, or Kafka),
    are aggregated per home and per geohash area, and land in a history store and a live
    store that the Voila dashboards read.

    Start with `smartmeter demo`: it needs no servers.
    """
    settings = build_settings(**{k: v for k, v in
                                 {"data_dir": data_dir, "log_level": log_level}.items() if v})
    _setup_logging(settings.log_level)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # started as a background job ('&' in a script): SIGINT came ignored, yet Ctrl-C and
        # `kill -INT` are how the long-running commands are stopped cleanly
        signal.signal(signal.SIGINT, signal.default_int_handler)
    ctx.obj = {"settings": settings}


@cli.command(epilog=_EPILOG)
@click.option("--homes", type=int, default=None,
              help="Number of simulated homes, placed over Greater London [default: 10000].")
@click.option("--port", type=int, default=None,
              help="Port for the dashboard on 127.0.0.1 [default: 8866].")
@click.option("--duration", type=float, default=None,
              help="Stop after this many seconds [default: run until Ctrl-C].")
@click.option("--no-serve", is_flag=True, help="Run the pipeline only, without Voila.")
@click.pass_context
def demo(ctx: click.Context, homes: int | None, port: int | None, duration: float | None,
         no_serve: bool) -> None:
    """Run the live pipeline on embedded backends and serve the London dashboard.

    A simulated fleet sends one reading per home per second; the processor aggregates it
    per geohash area and writes the live store and history under --data-dir; Voila serves
    dashboards/london_live.ipynb on http://127.0.0.1:PORT. Ctrl-C stops everything.
    """
    from smartmeter_lib.demo import run_demo

    if duration is not None and duration <= 0:
        raise ConfigError(f"--duration must be positive, got {duration:g}")
    settings = _settings(ctx, homes=homes, port=port)
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)  # `kill` stops it as cleanly as Ctrl-C
    result = run_demo(settings, duration_s=duration, serve=not no_serve)
    log.info("demo stopped: %d readings produced, %d processed, %d rejected in %.0f s",
             result.producer.messages, result.processor.messages_in,
             sum(result.processor.rejected.values()), result.wall_s)


@cli.command(epilog=_EPILOG)
@click.option("--homes", type=int, default=None, help="Homes in the fleet [default: 10000].")
@click.option("--seconds", type=int, default=60, show_default=True,
              help="Seconds of event time to push through.")
@click.option("--processor", "processor_only", is_flag=True,
              help="Measure the processor alone: the readings are on the bus first, and the "
                   "figure is readings per CPU-second of its thread (one core), with its "
                   "memory per meter.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.pass_context
def bench(ctx: click.Context, homes: int | None, seconds: int, processor_only: bool,
          as_json: bool) -> None:
    """Measure the embedded pipeline: readings/s through simulate, process and the sinks.

    The producer runs as fast as it can (no real-time pacing) while the processor consumes
    in parallel, writing the live store and history under a temporary --data-dir. With
    --processor, only the processor is timed.
    """
    from smartmeter_lib.bench import bench_embedded
    from smartmeter_lib.bench.processor import bench_processor

    if seconds < 1:
        raise ConfigError(f"--seconds must be at least 1, got {seconds}")
    settings = _settings(ctx, homes=homes)
    figures = (bench_processor(settings, seconds) if processor_only
               else bench_embedded(settings, seconds))
    if as_json:
        click.echo(json.dumps(figures, indent=2))
    else:
        for k, v in figures.items():
            click.echo(f"{k:>28}: {v}")


def _register() -> None:
    from smartmeter_lib.bench.commands import bench_stack
    from smartmeter_lib.detect.commands import evaluate
    from smartmeter_lib.insights.commands import tariffs
    from smartmeter_lib.ops.commands import health
    from smartmeter_lib.replay.commands import export, replay
    from smartmeter_lib.services.commands import services
    from smartmeter_lib.simulate.commands import simulate
    from smartmeter_lib.stack_commands import check, process, run, schema, serve, topics

    if "check" not in services.commands:
        services.add_command(check)
    for cmd in (services, topics, schema, run, process, serve, simulate, replay, export,
                tariffs, evaluate, health, bench_stack):
        if cmd.name not in cli.commands:
            cli.add_command(cmd)


def main(argv: list[str] | None = None) -> int:
    """Entry point: one-line errors; exit 2 for bad usage or settings, 1 for failures."""
    _register()
    try:
        cli.main(args=argv, prog_name="smartmeter", standalone_mode=False)
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    except click.exceptions.Abort:
        click.echo("smartmeter: aborted", err=True)
        return 130
    except click.UsageError as e:
        click.echo(f"smartmeter: error: {e.format_message()} (see --help)", err=True)
        return 2
    except ConfigError as e:
        click.echo(f"smartmeter: error: {e}", err=True)
        return 2
    except SmartmeterError as e:
        click.echo(f"smartmeter: error: {e}", err=True)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
