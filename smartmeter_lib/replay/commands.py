"""``smartmeter replay`` (real meter files into the pipeline) and ``smartmeter export`` (one
meter's history back out as CSV or Parquet)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
import pandas as pd

from smartmeter_lib.adapters import open_history
from smartmeter_lib.config import Settings
from smartmeter_lib.errors import ConfigError
from smartmeter_lib.export import FORMATS, RESOLUTIONS, export_meter, write_export
from smartmeter_lib.simulate.scenario import parse_time

log = logging.getLogger(__name__)
_EPILOG = ("Every option can also be set in the environment with the SMARTMETER_ prefix, "
           "e.g. SMARTMETER_DATA_DIR=/data/sm. File formats: docs/replay.md.")


def _time(value: str | None, what: str) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(parse_time(value, what), unit="s", tz="UTC")


def _meter_list(values: tuple[str, ...]) -> list[str] | None:
    ids = [m.strip() for v in values for m in v.split(",") if m.strip()]
    return ids or None


@click.command("replay", epilog=_EPILOG)
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--speedup", type=float, default=0.0, show_default=True,
              help="Seconds of event time per second of wall time (1800 plays a half-hour a "
                   "second); 0 = as fast as possible.")
@click.option("--start", default=None, metavar="ISO-TIME",
              help="Replay readings from this event time on (UTC if no offset is given).")
@click.option("--end", default=None, metavar="ISO-TIME",
              help="Replay readings before this event time only.")
@click.option("--meters", multiple=True, metavar="IDS",
              help="Replay only these meters (comma-separated; the option may be repeated).")
@click.option("--bad-rows", "bad_rows_path", type=click.Path(path_type=Path), default=None,
              help="Also write every skipped row (file, line, reason) to this CSV.")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Progress bars on stderr (shown only on a terminal).")
@click.pass_context
def replay(ctx: click.Context, files: tuple[Path, ...], speedup: float, start: str | None,
           end: str | None, meters: tuple[str, ...], bad_rows_path: Path | None,
           progress: bool) -> None:
    """Stream real meter files into the pipeline, each reading at its own event time.

    Reads the Low Carbon London formats (Kaggle 'LCLid,tstp,energy(kWh/hh)' and London
    Datastore 'LCLid,DateTime,KWH/hh (per half hour)') and a generic CSV
    (meter_id,timestamp,kwh[,interval_s]). Bad rows are reported with file, line and reason,
    counted and skipped; a file that is not a meter file is refused. Half-hourly data is
    replayed as half-hourly readings (interval_s=1800), so its 30-minute rollups equal the
    file's values. With the embedded default the pipeline runs in this process and the
    history under --data-dir keeps the result for `smartmeter export`.
    """
    from smartmeter_lib.replay.run import replay_files

    settings: Settings = ctx.obj["settings"]
    if speedup < 0:
        raise ConfigError(f"--speedup must be >= 0 (0 = as fast as possible), got {speedup:g}")
    t0, t1 = _time(start, "--start"), _time(end, "--end")
    if t0 is not None and t1 is not None and t1 <= t0:
        raise ConfigError(f"--end ({end}) must be after --start ({start})")
    result = replay_files(settings, list(files), speedup=speedup, start=t0, end=t1,
                          meters=_meter_list(meters), progress=progress)
    if bad_rows_path is not None:
        rows = [(b.file, b.line, b.reason) for f in result.files for b in f.bad_rows]
        bad_rows_path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows, columns=["file", "line", "reason"]).to_csv(bad_rows_path,
                                                                      index=False)
    proc = result.processor
    rejected = sum(proc.rejected.values()) if proc else 0
    click.echo(f"replayed {result.readings} readings of {len(result.meters)} meter(s) from "
               f"{len(files)} file(s) in {result.wall_s:.1f} s: {result.bad_rows} bad row(s) "
               f"skipped, {result.duplicates_across_files} repeated across files, "
               f"{rejected} refused by the processor; {result.registered} meter(s) newly "
               f"registered; history: {settings.history_dir}")


@click.command("export", epilog=_EPILOG)
@click.option("--meter", "meter_id", required=True, help="The meter id, e.g. MAC000002.")
@click.option("--from", "start", required=True, metavar="ISO-TIME",
              help="First interval start to include (UTC if no offset is given).")
@click.option("--to", "end", required=True, metavar="ISO-TIME",
              help="End of the range (exclusive).")
@click.option("--resolution", type=click.Choice(list(RESOLUTIONS)), default="30min",
              show_default=True,
              help="1s: raw readings; 1min / 30min: the processor's rollups; 1d: 30-minute "
                   "rollups summed per UTC day.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="csv or parquet [default: from the --output suffix, else csv].")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file [default: stdout, CSV only].")
@click.pass_context
def export(ctx: click.Context, meter_id: str, start: str, end: str, resolution: str,
           fmt: str | None, output: Path | None) -> None:
    """Read one meter's history back: a timestamp column (interval start, UTC) and kWh.

    Example: smartmeter export --meter MAC000002 --from 2013-01-01 --to 2013-02-01
    --resolution 30min --output mac2.csv
    """
    settings: Settings = ctx.obj["settings"]
    t0, t1 = _time(start, "--from"), _time(end, "--to")
    assert t0 is not None and t1 is not None
    if t1 <= t0:
        raise ConfigError(f"--to ({end}) must be after --from ({start})")
    if fmt is None:
        fmt = "parquet" if output is not None and output.suffix.lower() == ".parquet" else "csv"
    history = open_history(settings)
    try:
        known = history.meters().meter_id
        if meter_id not in set(known.tolist()):
            few = ", ".join(sorted(known.tolist())[:5]) or "none"
            raise ConfigError(f"meter {meter_id!r} is not in the history at "
                              f"{settings.history_dir} (known meters include: {few})")
        df = export_meter(history, meter_id, t0, t1, resolution)
    finally:
        history.close()
    if df.empty:
        log.warning("no data for %s between %s and %s at %s", meter_id, start, end, resolution)
    write_export(df, output, fmt, sys.stdout)
    if output is not None:
        click.echo(f"wrote {len(df)} rows to {output}", err=True)
