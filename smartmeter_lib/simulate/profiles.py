"""Daily load profiles: simulated archetypes against real meter files.

A *profile* is the mean power (kW) in each of the 48 half-hours of a UTC day (LCL timestamps
are GMT). The evening-peak ratio compares 17:00-20:00 with 01:00-05:00.

Simulated profiles are estimated by sampling the fleet's true power at random instants of a set
of days spread over a year (:meth:`HouseholdFleet.power_kw` is a pure function of time, so the
instants need not be consecutive). :func:`write_lcl_file` writes simulated homes in the LCL
Kaggle format, so the same reader and notebook work where the real samples are absent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from smartmeter_lib.simulate.households import HouseholdFleet

SLOTS = 48
EVENING = range(34, 40)  # 17:00-20:00
OVERNIGHT = range(2, 10)  # 01:00-05:00
#: evening/overnight ratios of the LCL sample households (MAC000002, MAC000147), month by month
#: over 2013: 1.58-5.0. Used when ../shared/data/lcl-samples is not present.
DOCUMENTED_RATIO_RANGE = (1.5, 5.0)


def slot_labels() -> list[str]:
    return [f"{h // 2:02d}:{30 * (h % 2):02d}" for h in range(SLOTS)]


def days_across_year(year: int, count: int) -> list[int]:
    """UTC seconds of ``count`` day starts spread evenly over ``year`` (weekdays and weekends
    both included)."""
    first = int(dt.datetime(year, 1, 1, tzinfo=dt.UTC).timestamp())
    step = 365 / max(count, 1)
    return [first + int(i * step) * 86400 for i in range(count)]


def sample_profile(fleet: HouseholdFleet, day_starts: Iterable[int], per_slot: int = 2,
                   by: str = "archetype", net: bool = True, seed: int = 0) -> pd.DataFrame:
    """Mean power (kW) per half-hour of the day, per group of homes (``by`` column of
    ``fleet.households``) and for the whole fleet (column ``fleet``)."""
    rng = np.random.default_rng(seed)
    groups, codes = np.unique(fleet.households[by].to_numpy(object), return_inverse=True)
    acc = np.zeros((SLOTS, len(groups)))
    total = np.zeros(SLOTS)
    count = np.zeros(SLOTS)
    size = np.bincount(codes, minlength=len(groups))
    for d in day_starts:
        for s in range(SLOTS):
            for off in rng.integers(0, 1800, per_slot):
                kw = fleet.power_kw(int(d) + s * 1800 + int(off), net=net)
                acc[s] += np.bincount(codes, weights=kw, minlength=len(groups)) / size
                total[s] += kw.mean()
                count[s] += 1
    out = pd.DataFrame(acc / count[:, None], columns=[str(g) for g in groups])
    out["fleet"] = total / count
    out.index = pd.Index(slot_labels(), name="time")
    return out


def file_profiles(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean power (kW) per half-hour of the day for each meter of a meter-file frame
    (columns meter_id, ts, kwh, interval_s, as from ``read_meter_file``)."""
    ts = frame["ts"]
    slot = (ts.dt.hour * 2 + ts.dt.minute // 30).to_numpy()
    kw = frame["kwh"].to_numpy(np.float64) * 3600.0 / frame["interval_s"].to_numpy(np.float64)
    df = pd.DataFrame({"meter_id": frame["meter_id"].to_numpy(object), "slot": slot, "kw": kw})
    out = df.pivot_table(index="slot", columns="meter_id", values="kw", aggfunc="mean")
    out = out.reindex(range(SLOTS))
    out.index = pd.Index(slot_labels(), name="time")
    out.columns = [str(c) for c in out.columns]
    return out


def peak_ratio(profile: pd.Series | Sequence[float]) -> float:
    """Mean of 17:00-20:00 over mean of 01:00-05:00."""
    p = np.asarray(profile, dtype=np.float64)
    return float(p[list(EVENING)].mean() / p[list(OVERNIGHT)].mean())


def monthly_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """The evening-peak ratio of each meter in each month of a meter-file frame."""
    rows = []
    for (meter, month), g in frame.groupby([frame["meter_id"],
                                            frame["ts"].dt.strftime("%Y-%m")]):
        prof = file_profiles(g)[str(meter)]
        if prof.notna().all():
            rows.append({"meter_id": meter, "month": month, "ratio": peak_ratio(prof)})
    return pd.DataFrame(rows, columns=["meter_id", "month", "ratio"])


def ratio_range(frame: pd.DataFrame | None) -> tuple[float, float]:
    """The range of monthly evening-peak ratios of real households (the documented one when
    ``frame`` is None)."""
    if frame is None or frame.empty:
        return DOCUMENTED_RATIO_RANGE
    r = monthly_ratios(frame)["ratio"]
    return float(r.min()), float(r.max())


def half_hourly_kwh(fleet: HouseholdFleet, homes: Sequence[int], start_s: int, days: int,
                    samples: int = 30) -> pd.DataFrame:
    """Half-hourly energy of some homes (kWh, from ``samples`` instants per half-hour)."""
    n_slots = days * SLOTS
    kwh = np.zeros((n_slots, len(homes)))
    idx = np.asarray(homes)
    for k in range(n_slots):
        t0 = start_s + k * 1800
        for j in range(samples):
            kwh[k] += fleet.power_kw(t0 + j * (1800 // samples))[idx]
    kwh *= 0.5 / samples
    ts = pd.to_datetime(start_s + 1800 * np.arange(n_slots), unit="s", utc=True)
    ids = fleet.meters.meter_id[idx]
    return pd.DataFrame({"meter_id": np.repeat(ids, n_slots), "ts": np.tile(ts, len(idx)),
                         "kwh": np.round(kwh.T.ravel(), 3), "interval_s": 1800})


def write_lcl_file(path: str | Path, frame: pd.DataFrame, quirks: bool = False) -> Path:
    """Write a meter frame in the LCL Kaggle format (``LCLid,tstp,energy(kWh/hh)``, values
    with a leading and trailing space). ``quirks`` adds what real files have: a ``Null``
    value at an off-grid time, a duplicated row and a blank line."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    lines = ["LCLid,tstp,energy(kWh/hh)"]
    lines += [f"{m},{t:%Y-%m-%d %H:%M:%S}, {k:.3f} " for m, t, k in
              zip(frame["meter_id"], frame["ts"], frame["kwh"], strict=True)]
    if quirks and len(frame) > 3:
        odd = frame["ts"].iloc[2] + pd.Timedelta(seconds=447)
        lines.insert(4, f"{frame['meter_id'].iloc[2]},{odd:%Y-%m-%d %H:%M:%S},Null")
        lines.insert(3, lines[2])
        lines.insert(6, "")
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def profile_figure(simulated: pd.DataFrame, real: pd.DataFrame, title: str = "") -> Any:
    """Two Bokeh panels: the simulated archetypes (and fleet), and the real households."""
    from bokeh.layouts import column
    from bokeh.palettes import Category10, Category20
    from bokeh.plotting import figure

    x = np.arange(SLOTS) / 2.0
    panels = []
    for name, df in (("simulated archetypes", simulated), ("real households (LCL)", real)):
        f = figure(title=f"{title}{name}: mean power by time of day (UTC)", height=320,
                   width=820, x_axis_label="hour of day", y_axis_label="kW",
                   x_range=(0, 24), name=name.split()[0])
        cols = list(df.columns)
        palette = Category20[20] if len(cols) > 10 else Category10[10]
        for i, c in enumerate(cols):
            thick = c == "fleet"
            f.line(x, df[c].to_numpy(np.float64), legend_label=c,
                   color="black" if thick else palette[i % len(palette)],
                   line_width=3 if thick else 1.5)
        f.legend.click_policy = "hide"
        f.legend.label_text_font_size = "8pt"
        f.add_layout(f.legend[0], "right")
        panels.append(f)
    return column(*panels)


def load_real_or_generated(lcl_dir: str | Path, fleet: HouseholdFleet, days: int = 14,
                           workdir: str | Path | None = None) -> tuple[pd.DataFrame, str]:
    """Every meter file in ``lcl_dir`` (other CSVs are skipped), as one frame; where the
    folder is absent, a few simulated homes written to an LCL-format file in ``workdir`` and
    read back (so the reader is exercised either way). Returns the frame and its source."""
    from smartmeter_lib.errors import DataError
    from smartmeter_lib.replay.readers import read_meter_file

    folder = Path(lcl_dir)
    frames = []
    if folder.is_dir():
        for p in sorted(folder.glob("*.csv")):
            try:
                frames.append(read_meter_file(p).frame)
            except DataError:
                continue
    if frames:
        frame = pd.concat(frames, ignore_index=True).drop_duplicates(["meter_id", "ts"])
        return frame, f"real LCL samples in {folder}"
    import tempfile

    out = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="lcl-"))
    start = days_across_year(2013, 1)[0]
    sim = half_hourly_kwh(fleet, list(range(min(3, fleet.n))), start, days)
    path = write_lcl_file(out / "generated_kaggle_format.csv", sim, quirks=True)
    return read_meter_file(path).frame, f"generated file {path} ({lcl_dir} is absent)"
