"""CLI commands for the real stack: ``topics``, ``schema``, ``process`` and ``run``."""

from __future__ import annotations

import json
import logging

import click

from smartmeter_lib.config import Settings
from smartmeter_lib.errors import ConfigError, SmartmeterError

log = logging.getLogger(__name__)


def _settings(ctx: click.Context, **overrides: object) -> Settings:
    base: Settings = ctx.obj["settings"]
    return base.with_overrides(**overrides)


@click.group()
def topics() -> None:
    """Kafka topics: the readings topic (fake_iot), the alert topic and the dead-letter topic."""


@topics.command("create")
@click.option("--replication", type=int, default=3, show_default=True,
              help="Replication factor of every topic.")
@click.option("--min-isr", type=int, default=2, show_default=True,
              help="min.insync.replicas: how many replicas must have a write (with acks=all).")
@click.pass_context
def topics_create(ctx: click.Context, replication: int, min_isr: int) -> None:
    """Create the topics on SMARTMETER_KAFKA_BOOTSTRAP (a no-op for topics that exist).

    fake_iot gets 6 partitions, keyed by meter id, so up to 6 processors share the work.
    """
    from smartmeter_lib.stack import create_topics, topic_specs

    if not 1 <= min_isr <= replication:
        raise ConfigError(f"--min-isr must be between 1 and --replication ({replication})")
    s = _settings(ctx, bus="kafka")
    create_topics(s, replication, min_isr)
    for name, parts, rf, conf in topic_specs(s, replication, min_isr):
        click.echo(f"{name}: {parts} partitions, replication {rf}, "
                   f"min.insync.replicas {conf['min.insync.replicas']}")


@click.group()
def schema() -> None:
    """The Cassandra keyspace and tables (documented in docs/data-contracts.md)."""


@schema.command("create")
@click.option("--replication", type=int, default=1, show_default=True,
              help="Replication factor of the keyspace (SimpleStrategy).")
@click.pass_context
def schema_create(ctx: click.Context, replication: int) -> None:
    """Create the keyspace SMARTMETER_CASSANDRA_KEYSPACE and its tables (idempotent)."""
    from smartmeter_lib.stack import create_schema

    if replication < 1:
        raise ConfigError("--replication must be at least 1")
    ks = create_schema(_settings(ctx, history="cassandra"), replication)
    click.echo(f"keyspace {ks}: tables meters, readings, rollups")


@click.command()
@click.option("--backend", type=click.Choice(["real", "embedded"]), default="real",
              show_default=True, help="real: Kafka, Cassandra and Redis.")
@click.option("--homes", type=int, default=None, help="Homes in the fleet [default: 10000].")
@click.option("--producers", type=int, default=3, show_default=True,
              help="Producer processes, each covering a west-to-east band of London.")
@click.option("--workers", type=int, default=2, show_default=True,
              help="Processor processes in the consumer group (at most 6 are useful).")
@click.option("--duration", type=float, default=60.0, show_default=True,
              help="Seconds of event time the producers send.")
@click.option("--speedup", type=float, default=1.0, show_default=True,
              help="Event seconds per wall second; 0 = as fast as possible.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def run(ctx: click.Context, backend: str, homes: int | None, producers: int, workers: int,
        duration: float, speedup: float, as_json: bool) -> None:
    """Run producers and processors on the real stack until the run is done.

    Registers the fleet in Cassandra, starts the producer processes (acks=all, idempotent,
    keyed by meter id) and a consumer group of processors that write Cassandra and Redis and
    commit offsets only after the sinks hold the data. Start the services first
    (`smartmeter services up`, `topics create`, `schema create`) or point the settings at
    your own hosts.
    """
    from smartmeter_lib.stack import run_stack

    if backend != "real":
        raise ConfigError("for the embedded pipeline use `smartmeter demo --no-serve`")
    if duration <= 0 or speedup < 0:
        raise ConfigError("--duration must be positive and --speedup non-negative")
    s = _settings(ctx, homes=homes).with_backends("real")
    res = run_stack(s, producers=producers, workers=workers, duration_s=duration,
                    speedup=speedup)
    figures = {"produced": res.produced, "stored": res.stored, "rejected": res.rejected,
               "wall_s": round(res.wall_s, 1),
               "readings_per_s": round(res.stored / max(res.wall_s, 1e-9))}
    click.echo(json.dumps(figures) if as_json else
               " ".join(f"{k}={v}" for k, v in figures.items()))


@click.command()
@click.option("--duration", type=float, default=None,
              help="Stop after this many seconds [default: until Ctrl-C].")
@click.option("--idle-exit", type=float, default=None,
              help="Stop after this many seconds without messages.")
@click.option("--group", default="smartmeter-processor", show_default=True,
              help="Kafka consumer group id.")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Processor processes in the group (up to the 6 partitions are useful).")
@click.pass_context
def process(ctx: click.Context, duration: float | None, idle_exit: float | None,
            group: str, workers: int) -> None:
    """Run processors of the consumer group on the configured backends.

    --workers N starts N processes that share the partitions; Kafka rebalances when one
    joins or leaves (more processes, on this or other machines, can join the same --group).
    Offsets are committed only after history and the live store hold the data.
    """
    from smartmeter_lib.adapters import open_bus, open_history, open_live
    from smartmeter_lib.stream.runner import Processor

    s: Settings = ctx.obj["settings"]
    if s.bus != "kafka":
        raise ConfigError("`process` reads Kafka: set SMARTMETER_BUS=kafka (and "
                          "SMARTMETER_HISTORY=cassandra, SMARTMETER_LIVE=redis)")
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    if workers > 1:
        from smartmeter_lib.stack import run_processors

        stored = run_processors(s, workers, duration, idle_exit)
        click.echo(f"{workers} processors wrote {stored} readings (messages re-read after a "
                   "rebalance are written again; the writes are idempotent)")
        return
    bus, history, live = open_bus(s), open_history(s), open_live(s)
    proc = Processor(s, bus, history, live, group_id=group)
    try:
        stats = proc.run(duration_s=duration, idle_exit_s=idle_exit)
    except KeyboardInterrupt:
        proc.finish()
        stats = proc.stats
    finally:
        proc.close()
        for x in (bus, history, live):
            x.close()
    click.echo(f"processed {stats.messages_in} messages, stored {stats.readings_stored} "
               f"readings, rejected {sum(stats.rejected.values())}")


@click.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Check that the configured Kafka, Cassandra and Redis hosts answer (starts nothing).

    Use it when the settings point at your own cluster instead of `smartmeter services up`.
    Exit code 1 when one does not answer.
    """
    from smartmeter_lib.stack import check_hosts

    s: Settings = ctx.obj["settings"]
    results = check_hosts(s)
    for name, (ok, detail) in results.items():
        click.echo(f"{name:10} {'ok' if ok else 'FAILED':7} {detail}")
    if not all(ok for ok, _ in results.values()):
        ctx.exit(1)


@click.command()
@click.option("--port", type=int, default=None, help="Port on 127.0.0.1 [default: 8866].")
@click.option("--dashboard", default=None,
              help="Serve only this dashboard (london_live, operations, household or "
                   "pricing) [default: all four, with a landing page listing them].")
@click.option("--preheat/--no-preheat", default=True, show_default=True,
              help="Keep one kernel per dashboard ready (runs the notebook before anyone "
                   "asks), so a page renders in seconds.")
@click.pass_context
def serve(ctx: click.Context, port: int | None, dashboard: str | None, preheat: bool) -> None:
    """Serve the dashboards with Voila, reading the stores of the settings.

    The landing page (http://127.0.0.1:PORT/) lists the four dashboards: london_live
    (executives), operations (the outage desk), household (a customer or call-centre agent)
    and pricing (analysts); each opens at /voila/render/NAME.ipynb. With SMARTMETER_LIVE=redis
    (and SMARTMETER_HISTORY=cassandra) they read the real stack; by default the embedded
    stores under --data-dir. Ctrl-C stops Voila and its kernels.
    """
    import signal
    import threading
    from pathlib import Path

    from smartmeter_lib.viz.serve import VoilaServer, dashboard_env, dashboards_dir

    s = _settings(ctx, port=port)
    target = dashboards_dir()
    if dashboard is not None:
        target = target / f"{dashboard}.ipynb"
        if not target.exists():
            names = sorted(p.stem for p in dashboards_dir().glob("*.ipynb"))
            raise ConfigError(f"no dashboard {dashboard!r}; choose one of {', '.join(names)}")
    server = VoilaServer(target, s.host, s.port, dashboard_env(s),
                         Path(s.data_dir) / "logs" / "voila.log", cull_idle_s=s.dashboard_cull_s,
                         preheat=preheat)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    log.info("serving %s on %s (Ctrl-C to stop)", dashboard or "the dashboards", server.url)
    if preheat:
        try:
            log.info("dashboard kernels ready: %s", ", ".join(server.wait_preheated()))
        except SmartmeterError as err:  # the pages still work, only slower to open
            log.warning("%s", err)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
