"""Figures for scoring the detectors: labelled outages against the alerts raised."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pandas as pd
from bokeh.layouts import column
from bokeh.models import ColumnDataSource, HoverTool, Legend
from bokeh.plotting import figure

from smartmeter_lib.detect.scoring import truth_units
from smartmeter_lib.model import Alert, AlertKind


def outage_frame(alerts: Sequence[Alert], labels: pd.DataFrame) -> pd.DataFrame:
    """One row per labelled outage cell and per AREA_OUTAGE alert: what, where, when."""
    units = truth_units(labels, AlertKind.AREA_OUTAGE)
    truth = pd.DataFrame({"row": units["key"], "what": "labelled outage",
                          "start": pd.to_datetime(units["start_ms"], unit="ms", utc=True),
                          "end": pd.to_datetime(units["end_ms"], unit="ms", utc=True),
                          "detected": pd.NaT, "meters": 0})
    mine = [a for a in alerts if a.kind == AlertKind.AREA_OUTAGE]
    det = pd.DataFrame({
        "row": [a.area for a in mine], "what": "AREA_OUTAGE alert",
        "start": pd.to_datetime([a.start_ms for a in mine], unit="ms", utc=True),
        "end": pd.to_datetime([a.end_ms or a.start_ms for a in mine], unit="ms", utc=True),
        "detected": pd.to_datetime([a.detected_ms or a.start_ms for a in mine], unit="ms",
                                   utc=True),
        "meters": [len(a.meters) for a in mine]})
    return pd.concat([truth, det], ignore_index=True).sort_values(["row", "what"])


def outage_timeline(alerts: Sequence[Alert], labels: pd.DataFrame,
                    ttd_s: Sequence[float] = ()) -> object:
    """A timeline of labelled outages (grey) and alerts (red, with the moment of detection),
    one row per geohash-6 cell; below it, the time to detect of each outage."""
    df = outage_frame(alerts, labels)
    rows = sorted(df["row"].unique().tolist())
    p = figure(y_range=rows or ["none"], x_axis_type="datetime", height=60 + 40 * len(rows),
               width=900, title="Area outages: labelled (grey) and detected (red)",
               x_axis_label="time (UTC)", y_axis_label="geohash-6 cell",
               tools="pan,wheel_zoom,reset,save")
    items = []
    for what, colour, height in (("labelled outage", "#9e9e9e", 0.7),
                                 ("AREA_OUTAGE alert", "#d62728", 0.35)):
        src = ColumnDataSource(df[df["what"] == what])
        r = p.hbar(y="row", left="start", right="end", height=height, color=colour, source=src)
        items.append((what, [r]))
    src = ColumnDataSource(df[df["what"] == "AREA_OUTAGE alert"])
    d = p.scatter(x="detected", y="row", marker="triangle", size=11, color="black", source=src)
    items.append(("detected at", [d]))
    p.add_tools(HoverTool(renderers=[d], tooltips=[
        ("cell", "@row"), ("meters", "@meters"), ("start", "@start{%H:%M:%S}"),
        ("detected", "@detected{%H:%M:%S}"), ("end", "@end{%H:%M:%S}")],
        formatters={"@start": "datetime", "@detected": "datetime", "@end": "datetime"}))
    p.add_layout(Legend(items=items, location="center"), "right")
    h = figure(height=220, width=900, title="Time to detect each outage",
               x_axis_label="seconds after power was lost", y_axis_label="outages",
               tools="save")
    values = list(ttd_s)
    if values:
        top = max(values) + 1.0
        edges = [top * k / 10 for k in range(11)]
        counts = [sum(1 for v in values if lo <= v < hi or (hi == top and v == top))
                  for lo, hi in itertools.pairwise(edges)]
        h.quad(top=counts, bottom=0, left=edges[:-1], right=edges[1:], color="#1f77b4",
               legend_label="outages")
    return column(p, h)
