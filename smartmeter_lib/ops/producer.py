"""One producer of a west-to-east band of the simulated fleet, as its own process.

``python -m smartmeter_lib.ops.producer --part 0 --parts 3 --start EPOCH --duration 600``
sends band 0 of 3 (the westernmost third of the homes) to the readings topic of the
``SMARTMETER_*`` settings, one reading per home per second of event time. The pipeline
runbook starts N of these, each with its own pid file and log. Ctrl-C or SIGTERM stops it
after the current second (the messages sent so far are flushed).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from typing import Any

import click

from smartmeter_lib.config import build_settings
from smartmeter_lib.errors import ConfigError, SmartmeterError

log = logging.getLogger("smartmeter.producer")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--part", type=int, required=True, help="Which band, 0 = westernmost.")
@click.option("--parts", type=int, required=True, help="How many bands the fleet is cut in.")
@click.option("--start", "start_s", type=int, default=None,
              help="Event time of the first second, Unix seconds [default: now].")
@click.option("--duration", type=float, required=True, help="Seconds of event time to send.")
@click.option("--speedup", type=float, default=1.0, show_default=True,
              help="Event seconds per wall second; 0 = as fast as possible.")
def band_producer(part: int, parts: int, start_s: int | None, duration: float,
                  speedup: float) -> None:
    """Send one west-to-east band of the simulated fleet (SMARTMETER_HOMES, SMARTMETER_SEED)
    to the readings topic on SMARTMETER_KAFKA_BOOTSTRAP."""
    from smartmeter_lib.adapters import open_bus
    from smartmeter_lib.simulate.producer import run_fleet_producer
    from smartmeter_lib.stack import Band, build_fleet

    if not 0 <= part < parts:
        raise ConfigError(f"--part must be in 0..{parts - 1}, got {part}")
    if duration <= 0 or speedup < 0:
        raise ConfigError("--duration must be positive and --speedup non-negative")
    settings = build_settings()
    if settings.bus != "kafka":
        raise ConfigError("the band producer writes Kafka: set SMARTMETER_BUS=kafka")
    logging.basicConfig(level=settings.log_level, stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)-7s producer-{part}: %(message)s")
    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        log.info("signal %d: stopping after the current second", signum)
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    start = int(time.time()) if start_s is None else start_s
    band = Band(build_fleet(settings, start), part, parts)
    bus = open_bus(settings)
    try:
        stats = run_fleet_producer(band, bus, settings.topic_readings, start_s=start,
                                   speedup=speedup, duration_s=duration, stop=stop)
    finally:
        bus.close()
    click.echo(f"producer {part}/{parts}: sent {stats.messages} messages from {band.n} homes "
               f"({stats.seconds} s of event time, {stats.behind_s:.1f} s behind schedule)")


def main(argv: list[str] | None = None) -> int:
    try:
        band_producer.main(args=argv, prog_name="smartmeter-band-producer",
                           standalone_mode=False)
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    except click.UsageError as e:
        click.echo(f"error: {e.format_message()} (see --help)", err=True)
        return 2
    except SmartmeterError as e:
        click.echo(f"error: {e}", err=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
