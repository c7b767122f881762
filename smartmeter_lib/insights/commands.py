"""``smartmeter tariffs``: list tariffs, compare costs, recommend, make the synthetic price file.

Register in the main CLI with ``cli.add_command(tariffs)``. Settings come from
``ctx.obj["settings"]`` when the main group put them there; user tariffs are read from
``<data_dir>/tariffs/*.yaml`` in addition to the built-in catalogue.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
from collections.abc import Sequence, Sized
from pathlib import Path
from typing import Any

import click
import pandas as pd

from smartmeter_lib.config import Settings, build_settings
from smartmeter_lib.errors import ConfigError
from smartmeter_lib.insights.halfhours import to_utc
from smartmeter_lib.insights.tariffs import Tariff, catalogue_files, resolve_tariffs

log = logging.getLogger(__name__)

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SHOWN = ["meter_id", "tariff", "kwh", "export_kwh", "unit_cost_gbp", "standing_charge_gbp",
          "export_credit_gbp", "total_gbp", "coverage", "est_total_gbp"]


def _settings(ctx: click.Context) -> Settings:
    obj = ctx.obj if isinstance(ctx.obj, dict) else {}
    settings = obj.get("settings")
    return settings if isinstance(settings, Settings) else build_settings()


def user_tariff_dir(settings: Settings) -> Path:
    """Where a user's own tariff YAML files are picked up: ``<data_dir>/tariffs``."""
    return settings.data_dir / "tariffs"


def parse_schedules(items: Sequence[str]) -> dict[str, Path]:
    """``NAME=PATH`` pairs of ``--schedule``."""
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ConfigError(f"--schedule takes NAME=PATH (e.g. LCL_DTOU_SCHEDULE=dtou.csv), "
                              f"got {item!r}")
        out[name.strip()] = Path(path.strip()).expanduser()
    return out


def parse_period(start: str | None, end: str | None) -> tuple[Any, Any]:
    """``--from`` / ``--to``: a bare ``--to`` date includes that whole day (UTC)."""
    try:
        s = to_utc(start) if start else None
        e = to_utc(end) if end else None
    except ValueError as err:
        raise ConfigError(f"--from/--to must be dates or ISO times: {err}") from None
    if e is not None and end is not None and _DATE_ONLY.match(end.strip()):
        e = e + pd.Timedelta(days=1)
    if s is not None and e is not None and e <= s:
        raise ConfigError(f"--to ({end}) must be after --from ({start})")
    return s, e


def read_readings(path: Path, meters: list[str] | None) -> pd.DataFrame:
    """The readings frame of a meter file, via :func:`smartmeter_lib.replay.read_meter_file`."""
    try:
        replay = importlib.import_module("smartmeter_lib.replay")
        read_meter_file = replay.read_meter_file
    except (ImportError, AttributeError) as err:  # pragma: no cover - ships with the library
        raise ConfigError(f"reading meter files needs smartmeter_lib.replay: {err}") from None
    result = read_meter_file(path, meters=meters)
    bad = getattr(result, "bad_rows", None)
    n_bad = len(bad) if isinstance(bad, Sized) else int(bad or 0)
    if n_bad:
        log.warning("%s: %d rows could not be read and are left out", path, n_bad)
    frame: pd.DataFrame = result.frame
    if frame.empty:
        raise ConfigError(f"{path}: no readings" + (f" for meters {meters}" if meters else ""))
    return frame


def read_history(settings: Settings, meters: list[str]) -> pd.DataFrame:
    """The meters' half-hourly energy from the history store (30-minute rollups)."""
    from smartmeter_lib.adapters import open_history

    history = open_history(settings)
    try:
        r = history.read_rollups(1800, meters, 0, 2**62)
    finally:
        history.close()
    if len(r) == 0:
        raise ConfigError(f"no half-hourly history for meters {', '.join(meters)} in "
                          f"{settings.history} history; replay or simulate them first, or "
                          "pass --readings FILE")
    return pd.DataFrame({"meter_id": r.meter_id.astype(str),
                         "ts": pd.to_datetime(r.window_start_ms, unit="ms", utc=True),
                         "kwh": r.kwh, "interval_s": 1800})


def _load(ctx: click.Context, readings: Path | None, meters: str | None,
          tariff: Sequence[str], schedule: Sequence[str]) -> tuple[pd.DataFrame, list[Tariff]]:
    settings = _settings(ctx)
    ids = [m.strip() for m in meters.split(",") if m.strip()] if meters else None
    tariffs = resolve_tariffs(list(tariff), parse_schedules(schedule),
                              [user_tariff_dir(settings)])
    if readings is None:
        if not ids:
            raise ConfigError("give --readings FILE, or --meters IDS to read from history")
        return read_history(settings, ids), tariffs
    return read_readings(readings, ids), tariffs


def _write_or_echo(table: pd.DataFrame, output: Path | None, shown: list[str]) -> None:
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(output, index=False)
        click.echo(f"wrote {len(table)} rows to {output}")
        return
    with pd.option_context("display.width", 200, "display.max_columns", 30,
                           "display.max_rows", 500):
        view = table[shown].copy()
        numbers = view.select_dtypes("number").columns
        view[numbers] = view[numbers].round(3)
        click.echo(view.to_string(index=False))


_READINGS = click.option("--readings", type=click.Path(exists=True, dir_okay=False,
                                                       path_type=Path), default=None,
                         help="Meter readings file (LCL kaggle/datastore CSV, or our format). "
                              "Without it, --meters are read from the history store.")
_METERS = click.option("--meters", default=None, metavar="IDS",
                       help="Comma-separated meter ids: taken from --readings [default: all], "
                            "or read from history when no file is given.")
_TARIFF = click.option("--tariff", "tariff", multiple=True, metavar="FILE|ID",
                       help="A tariff YAML file or a catalogue id; repeat for several "
                            "[default: the whole catalogue].")
_SCHEDULE = click.option("--schedule", multiple=True, metavar="NAME=PATH",
                         help="Path of an external price schedule a tariff names as ${NAME}, "
                              "e.g. LCL_DTOU_SCHEDULE=dtou_tariffs_2013.csv.")
_FROM = click.option("--from", "start", default=None, metavar="DATE",
                     help="Start (UTC date or ISO time) [default: first reading's day].")
_TO = click.option("--to", "end", default=None, metavar="DATE",
                   help="End: a date includes that whole day; an ISO time is exclusive "
                        "[default: last reading's day].")
_OUTPUT = click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
                       default=None, metavar="CSV", help="Write the table as CSV instead.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def tariffs() -> None:
    """Tariff costs, recommendations and the tariff catalogue.

    A tariff is a YAML file (docs/tariffs.md): standing charge, unit rates by time window,
    day type and dates or a half-hourly price file, and an export rate. Built-in tariffs
    are listed by `smartmeter tariffs list`; your own files in DATA_DIR/tariffs are added.
    """


@tariffs.command("list")
@_SCHEDULE
@click.pass_context
def list_cmd(ctx: click.Context, schedule: tuple[str, ...]) -> None:
    """List the catalogue: built-in tariffs and those in DATA_DIR/tariffs."""
    sched = parse_schedules(schedule)
    for f in catalogue_files([user_tariff_dir(_settings(ctx))]):
        try:
            (t,) = resolve_tariffs([str(f)], sched)
        except Exception as err:  # listing shows why a tariff cannot load
            click.echo(f"{f.stem:<18} (not loaded: {err})")
            continue
        n = len(t.rules)
        kind = "price file" if t.prices is not None else f"{n} rule{'' if n == 1 else 's'}"
        click.echo(f"{t.id:<18} {t.name}  [{kind}; {t.timezone}; "
                   f"{t.standing[0].p_per_day:g} p/day]")


@tariffs.command()
@_READINGS
@_METERS
@_TARIFF
@_SCHEDULE
@_FROM
@_TO
@click.option("--by", type=click.Choice(["day", "week", "month"]), default=None,
              help="One row per UTC day, ISO week or month [default: the whole period].")
@_OUTPUT
@click.pass_context
def compare(ctx: click.Context, readings: Path | None, meters: str | None, tariff: tuple[str, ...],
            schedule: tuple[str, ...], start: str | None, end: str | None, by: str | None,
            output: Path | None) -> None:
    """Cost of each meter under each tariff: kWh, unit cost, standing charge, export credit,
    total and coverage (£; est_total_gbp scales the observed energy cost up for missing data).
    """
    from smartmeter_lib.insights.cost import cost_table

    s, e = parse_period(start, end)
    frame, tl = _load(ctx, readings, meters, tariff, schedule)
    table = cost_table(frame, tl, s, e, by=by)  # type: ignore[arg-type]
    shown = _SHOWN if by is None else ["period_start", *_SHOWN]
    _write_or_echo(table, output, shown)


@tariffs.command()
@_READINGS
@_METERS
@_TARIFF
@_SCHEDULE
@_FROM
@_TO
@click.option("--reference", default=None, metavar="ID",
              help="The current tariff savings are measured against [default: "
                   "flat_cap_2025q3].")
@click.option("--year", type=int, default=None,
              help="Calendar year to project onto [default: the year of the history's middle].")
@click.option("--bootstrap", type=click.IntRange(0, 5000), default=200, show_default=True,
              help="Resamples of the history behind the confidence.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the resampling.")
@_OUTPUT
@click.option("--annual-output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="CSV", help="Also write the meter × tariff annual costs as CSV.")
@click.pass_context
def recommend(ctx: click.Context, readings: Path | None, meters: str | None,
              tariff: tuple[str, ...],
              schedule: tuple[str, ...], start: str | None, end: str | None,
              reference: str | None, year: int | None, bootstrap: int, seed: int,
              output: Path | None, annual_output: Path | None) -> None:
    """Recommend the cheapest tariff per meter from its history (even a few weeks).

    The history is scaled to a year with a seasonal profile; the confidence is the share of
    resamples of the history in which the recommendation stays the cheapest; flip_kwh is the
    smallest load a year moved between blocks of the day (flip_from → flip_to) that would
    make flip_tariff the cheapest instead.
    """
    from smartmeter_lib.insights.recommend import recommend as run

    s, e = parse_period(start, end)
    frame, tl = _load(ctx, readings, meters, tariff, schedule)
    rec = run(frame, tl, reference=reference, year=year, n_boot=bootstrap, seed=seed,
              start=s, end=e)
    if annual_output is not None:
        annual_output.parent.mkdir(parents=True, exist_ok=True)
        rec.annual.to_csv(annual_output, index=False)
    _write_or_echo(rec.summary, output, [
        "meter_id", "observed_days", "annual_kwh", "recommended", "recommended_cost_gbp",
        "reference", "saving_gbp", "confidence", "runner_up", "peak_share", "flip_tariff",
        "flip_kwh", "flip_from", "flip_to"])


@tariffs.command("make-prices")
@click.option("--from", "start", default="2025-01-01", show_default=True, metavar="DATE")
@click.option("--to", "end", default="2026-01-01", show_default=True, metavar="DATE",
              help="Exclusive end.")
@click.option("--seed", type=int, default=2025, show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              metavar="CSV")
def make_prices(start: str, end: str, seed: int, output: Path) -> None:
    """Write a SYNTHETIC Agile-style half-hourly price file (not market data)."""
    from smartmeter_lib.insights.prices import synthetic_agile_prices, write_price_file

    prices = synthetic_agile_prices(to_utc(start), to_utc(end), seed)
    write_price_file(prices, output)
    click.echo(f"wrote {len(prices)} synthetic half-hourly prices to {output}")


@tariffs.command()
@click.option("--meters", "n_meters", type=click.IntRange(1), default=10_000, show_default=True)
@click.option("--days", type=click.IntRange(1, 3660), default=365, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench(n_meters: int, days: int, as_json: bool) -> None:
    """Time the cost engine and the recommendation on synthetic meters × the catalogue."""
    from smartmeter_lib.insights.bench import bench_tariffs

    figures = bench_tariffs(n_meters, days)
    if as_json:
        click.echo(json.dumps(figures, indent=2))
    else:
        for k, v in figures.items():
            click.echo(f"{k:>28}: {v}")
