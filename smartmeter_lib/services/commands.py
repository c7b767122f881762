"""``smartmeter services``: start, stop and check the local Kafka, Cassandra and Redis."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

import click

from smartmeter_lib.errors import ServiceError
from smartmeter_lib.services.base import ServiceStatus, write_text
from smartmeter_lib.services.config import SERVICE_NAMES, ServicesConfig
from smartmeter_lib.services.manager import ServiceManager

T = TypeVar("T")

NAMES_ARG = click.argument(
    "names", nargs=-1, type=click.Choice(SERVICE_NAMES, case_sensitive=False)
)
TIMEOUT_OPT = click.option(
    "--timeout",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Override the configured start/stop timeout of each service.",
)


def services_config(ctx: click.Context) -> ServicesConfig:
    """The ServicesConfig found in ``ctx.obj``, else the defaults.

    Accepted: a ServicesConfig itself, an object with a ``services`` attribute holding one,
    or a dict with such a value under ``"services"`` or ``"settings"``.
    """
    candidates: list[object] = [ctx.obj]
    if isinstance(ctx.obj, dict):
        candidates += [ctx.obj.get("services"), ctx.obj.get("settings")]
    for obj in candidates:
        if isinstance(obj, ServicesConfig):
            return obj
        nested = getattr(obj, "services", None)
        if isinstance(nested, ServicesConfig):
            return nested
    return ServicesConfig()


def run_reporting_errors(config: ServicesConfig, action: Callable[[], T]) -> T:
    """Run ``action``; on ServiceError print one line, keep the details in a file, exit 1."""
    try:
        return action()
    except ServiceError as exc:
        message = str(exc).strip() or exc.__class__.__name__
        first, _, rest = message.partition("\n")
        if rest.strip():
            details = config.base_dir / "last-error.log"
            try:
                write_text(details, message + "\n")
                first += f" (details in {details})"
            except OSError:
                pass
        click.echo(f"Error: {first}", err=True)
        sys.exit(1)


def format_table(statuses: Sequence[ServiceStatus]) -> str:
    """A small aligned table: service, state, ports, pid(s), data dir."""
    header = ("SERVICE", "STATE", "PORTS", "PIDS", "DATA DIR")
    rows = [header]
    for st in statuses:
        state = st.state + (f" ({st.detail})" if st.detail and st.state != "running" else "")
        rows.append(
            (
                st.name,
                state,
                ",".join(str(p) for p in st.ports),
                ",".join(str(p) for p in st.pids) or "-",
                st.data_dir,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]))
    return "\n".join(lines)


@click.group("services")
def services() -> None:
    """Run a local Kafka cluster, Cassandra node and Redis server for the real stack.

    \b
    kafka      3 brokers in KRaft mode (replication factor 3, min ISR 2)
    cassandra  one Apache Cassandra 5.0 node
    redis      Debian's redis-server
    All listen on 127.0.0.1 and keep data and logs under the services base directory
    (default: <repo>/.smartmeter/services). Kafka and Cassandra need Java 17 and Maven: their
    jars are resolved from Maven Central once, into ~/.cache/smartmeter/jars.
    """


@services.command("up", short_help="Start services and wait until they answer.")
@NAMES_ARG
@TIMEOUT_OPT
@click.pass_context
def up_cmd(ctx: click.Context, names: tuple[str, ...], timeout: float | None) -> None:
    """Start NAMES (default: all) and wait until each answers.

    Services that are already running and healthy are left alone, so this is safe to repeat.
    A port held by a process that smartmeter did not start is an error.
    """
    config = services_config(ctx)
    manager = ServiceManager(config)
    selected = manager.select(names) if names else list(SERVICE_NAMES)
    click.echo(f"starting {', '.join(selected)} (data in {config.base_dir}) ...", err=True)
    statuses = run_reporting_errors(config, lambda: manager.up(selected, timeout=timeout))
    click.echo(format_table(statuses))


@services.command("down", short_help="Stop services (SIGTERM, then SIGKILL).")
@NAMES_ARG
@TIMEOUT_OPT
@click.pass_context
def down_cmd(ctx: click.Context, names: tuple[str, ...], timeout: float | None) -> None:
    """Stop NAMES (default: all): SIGTERM, then SIGKILL after the timeout.

    Data stays in the base directory; stopping a stopped service does nothing.
    """
    config = services_config(ctx)
    manager = ServiceManager(config)
    run_reporting_errors(config, lambda: manager.down(names or None, timeout=timeout))
    click.echo(format_table(run_reporting_errors(config, lambda: manager.status(names or None))))


@services.command("status", short_help="Show state, ports, pids and data dirs.")
@NAMES_ARG
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.pass_context
def status_cmd(ctx: click.Context, names: tuple[str, ...], as_json: bool) -> None:
    """Show whether NAMES (default: all) are running, with ports, pids and data dirs.

    A service is "running" when its processes are alive and it answers (Kafka: all 3 brokers
    visible, Cassandra: CQL, Redis: PING), "unhealthy" when alive but not answering.
    """
    config = services_config(ctx)
    statuses = run_reporting_errors(config, lambda: ServiceManager(config).status(names or None))
    if as_json:
        click.echo(json.dumps([st.to_dict() for st in statuses], indent=2))
    else:
        click.echo(format_table(statuses))
