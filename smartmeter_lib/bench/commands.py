"""``smartmeter bench-stack``: the real-stack benchmark (part of ``make bench``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from smartmeter_lib.errors import ConfigError


def _print(figures: dict[str, Any]) -> None:
    m = figures["machine"]
    click.echo(f"date: {figures['date']}")
    click.echo(f"machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, Python "
               f"{m['python']}; load average at start {m['load_average']}, at end "
               f"{figures['load_average_end']}")
    raw, proto = figures.get("raw_kafka", {}), figures.get("prototype", {})
    click.echo(f"raw Kafka (24-byte values, acks=all): produce {raw.get('produce_per_s')}/s, "
               f"end to end {raw.get('end_to_end_per_s')}/s")
    click.echo(f"prototype (JSON, one INSERT per reading): {proto.get('readings_per_s')} "
               "readings/s end to end")
    snap = figures.get("live_snapshot", {})
    click.echo(f"live per-meter view, {snap.get('meters')} meters: one second's snapshot "
               f"{snap.get('cpu_ms_per_s')} ms CPU, {snap.get('wall_ms_per_s')} ms wall; "
               f"get_meter {snap.get('get_meter_ms')} ms")
    ramp = figures.get("ramp", {})
    for t in ramp.get("trials", []):
        v = t["verdict"]
        click.echo(f"  {t['homes']:>7,} homes at 1 Hz: "
                   f"{'sustainable' if t['sustainable'] else 'NOT sustainable'} "
                   f"({v['reason']}); latency p50 {t['latency_p50_s']} s, p99 "
                   f"{t['latency_p99_s']} s ({t['latency_samples']} samples); load "
                   f"{t['load_average_start']} -> {t['load_average_end']}"
                   + (f"; error: {t['error']}" if t.get("error") else ""))
    click.echo(f"max sustainable: {ramp.get('max_sustainable_homes')} homes at 1 Hz")
    st = figures.get("storage", {})
    click.echo(f"storage: {st.get('bytes_per_reading')} bytes per reading on disk "
               f"({st.get('data_bytes_per_reading')} in Data.db, {st.get('sstables')} "
               f"SSTables); history writes {st.get('readings_per_s')} readings/s")
    click.echo(f"ratios: {figures.get('ratios')}")


@click.command("bench-stack")
@click.option("--base-dir", type=click.Path(path_type=Path), default=Path("/tmp/smartmeter-bench"),
              show_default=True, help="Where the benchmark's own services keep data and logs.")
@click.option("--port-offset", type=int, default=0, show_default=True,
              help="Shift every service port by this much (e.g. 4000: Kafka on 13092..).")
@click.option("--producers", type=int, default=3, show_default=True)
@click.option("--workers", type=int, default=2, show_default=True, help="Processor processes.")
@click.option("--start-homes", type=int, default=5_000, show_default=True,
              help="First fleet size of the ramp; it doubles while sustainable, then bisects.")
@click.option("--max-homes", type=int, default=100_000, show_default=True)
@click.option("--max-trials", type=int, default=4, show_default=True,
              help="Bound on the ramp's trials (each takes about warm-up + window + 1 min).")
@click.option("--window", type=float, default=60.0, show_default=True,
              help="Seconds the lag must stay bounded.")
@click.option("--warmup", type=float, default=20.0, show_default=True,
              help="Seconds before the window starts.")
@click.option("--flush-interval", type=float, default=30.0, show_default=True,
              help="Processors write raw readings and commit every this many seconds.")
@click.option("--lateness", type=float, default=1.0, show_default=True,
              help="Allowed lateness (s) of the processors' windows; a live second is shown "
                   "once the watermark passes it, so this adds to the latency.")
@click.option("--keep-services", is_flag=True, help="Leave the services running afterwards.")
@click.option("--output", type=click.Path(path_type=Path), default=None,
              help="Also write every figure (with the lag samples) to this JSON file.")
@click.pass_context
def bench_stack(ctx: click.Context, base_dir: Path, port_offset: int, producers: int,
                workers: int, start_homes: int, max_homes: int, max_trials: int,
                window: float, warmup: float, flush_interval: float, lateness: float,
                keep_services: bool, output: Path | None) -> None:
    """Measure the real stack: the most homes at 1 Hz it sustains end to end (consumer lag
    bounded for --window seconds), event time to Redis latency p50/p99, bytes on disk per
    reading in Cassandra, and, in the same run, the prototype's approach and raw Kafka.

    Starts its own Kafka (3 brokers, RF 3), Cassandra and Redis under --base-dir and stops
    them at the end. Takes about 15 to 25 minutes; prints progress as it goes.
    """
    from smartmeter_lib.bench.suite import SuiteOptions, run_suite
    from smartmeter_lib.cli import _settings

    if port_offset % 1000 or port_offset < 0:
        raise ConfigError(f"--port-offset must be a non-negative multiple of 1000, got "
                          f"{port_offset}")
    if min(producers, workers, start_homes, max_trials) < 1 or max_homes < start_homes:
        raise ConfigError("--producers, --workers, --start-homes and --max-trials must be at "
                          "least 1, and --max-homes at least --start-homes")
    opts = SuiteOptions(base_dir=base_dir, port_offset=port_offset, producers=producers,
                        workers=workers, start_homes=start_homes, max_homes=max_homes,
                        max_trials=max_trials, window_s=window, warmup_s=warmup,
                        flush_interval_s=flush_interval, lateness_s=lateness,
                        keep_services=keep_services)
    figures = run_suite(_settings(ctx), opts)
    if output is not None:
        output.write_text(json.dumps(figures, indent=2, default=str))
    _print(figures)
