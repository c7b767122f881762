"""Helpers shared by the dashboards: escaping, KPI strips, map figures, cell geometry,
alert summaries, and :func:`mount` (BokehJS inline, page heartbeat, live updater).

Every text that reaches the page through a Bokeh ``Div`` is HTML; anything that came from a
user or a store goes through :func:`esc` first.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from bokeh.models import DatetimeTickFormatter
from bokeh.plotting import figure

from smartmeter_lib import geo
from smartmeter_lib.model import Alert, AlertKind, MeterInfo
from smartmeter_lib.viz.serve import announce_ready, kernel_logging

log = logging.getLogger(__name__)

#: tools of every plot (the save tool gives a PNG)
TOOLS = "pan,wheel_zoom,reset,save"
NA = "n/a"
#: the BokehJS parts the dashboards use
JS_COMPONENTS = ["bokeh", "bokeh-widgets", "bokeh-tables"]


def esc(value: object) -> str:
    """``value`` as text that is safe inside HTML (quotes included)."""
    return html.escape(str(value), quote=True)


def kpi_html(items: Sequence[tuple[str, str]], element_id: str = "kpis") -> str:
    """A strip of big numbers with small labels; labels and values are escaped."""
    cells = "".join(
        f"<div style='display:inline-block;margin-right:28px;vertical-align:top'>"
        f"<div style='color:#666;font-size:12px'>{esc(a)}</div>"
        f"<div class='kpi-value' style='font-size:22px;font-weight:600'>{esc(b)}</div></div>"
        for a, b in items)
    return f"<div id='{esc(element_id)}'>{cells}</div>"


def fmt_time(ts_ms: int | float | None) -> str:
    """``HH:MM:SS UTC`` of an epoch-ms time (``n/a`` for None)."""
    if ts_ms is None or (isinstance(ts_ms, float) and np.isnan(ts_ms)):
        return NA
    return pd.Timestamp(int(ts_ms), unit="ms", tz="UTC").strftime("%H:%M:%S UTC")


def fmt_duration(ms: int | float) -> str:
    """``1 h 02 min``, ``4 min 05 s`` or ``12 s``."""
    s = max(int(ms // 1000), 0)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h} h {m:02d} min"
    if m:
        return f"{m} min {sec:02d} s"
    return f"{sec} s"


def fmt_num(value: Any, spec: str = ",.1f", unit: str = "") -> str:
    """A number with a format and unit, or ``n/a`` for None or NaN."""
    if value is None:
        return NA
    try:
        v = float(value)
    except (TypeError, ValueError):
        return NA
    if np.isnan(v):
        return NA
    return f"{v:{spec}}{unit}"


def time_axis(fig: Any, y_label: str) -> None:
    """A UTC time x axis with readable ticks, and the y axis title (with its unit)."""
    fig.xaxis.axis_label = "Time (UTC)"
    fig.yaxis.axis_label = y_label
    # a series only seconds long gets sub-second ticks: show them as times too, not "000ms"
    fig.xaxis.formatter = DatetimeTickFormatter(minutes="%H:%M", minsec="%H:%M:%S",
                                                seconds="%H:%M:%S", hours="%H:%M",
                                                milliseconds="%H:%M:%S.%3N")


def map_bounds(meters: MeterInfo | None, pad_deg: float = 0.01
               ) -> tuple[float, float, float, float]:
    """(south, west, north, east) around the fleet, or Greater London without one."""
    if meters is None or len(meters) == 0:
        s, w, n, e = geo.LONDON_BOUNDS
        return s - 0.03, w - 0.03, n + 0.03, e + 0.03
    return (float(meters.lat.min()) - pad_deg, float(meters.lon.min()) - pad_deg,
            float(meters.lat.max()) + pad_deg, float(meters.lon.max()) + pad_deg)


def map_figure(title: str, bounds: tuple[float, float, float, float], name: str,
               width: int = 760, height: int = 520) -> Any:
    """A Web-Mercator map figure with latitude/longitude axis titles (no tiles needed)."""
    s, w, n, e = bounds
    x0, y0 = geo.to_mercator(s, w)
    x1, y1 = geo.to_mercator(n, e)
    m = figure(title=title, x_range=(float(x0), float(x1)), y_range=(float(y0), float(y1)),
               x_axis_type="mercator", y_axis_type="mercator", width=width, height=height,
               tools=TOOLS, name=name, match_aspect=True)
    m.xaxis.axis_label = "Longitude (°)"
    m.yaxis.axis_label = "Latitude (°)"
    return m


class CellGeometry:
    """Polygons and centres of geohash cells in Web Mercator, cached by cell."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[list[float], list[float], float, float]] = {}

    def get(self, cells: Iterable[str]) -> tuple[list[list[float]], list[list[float]],
                                                 list[float], list[float]]:
        cells = [str(c) for c in cells]
        new = [c for c in cells if c not in self._cache]
        if new:
            xs, ys = geo.cell_polygons_mercator(new)
            for c, x, y in zip(new, xs, ys, strict=True):
                self._cache[c] = (list(x), list(y), float(np.mean(x)), float(np.mean(y)))
        got = [self._cache[c] for c in cells]
        return ([g[0] for g in got], [g[1] for g in got], [g[2] for g in got],
                [g[3] for g in got])


@dataclass(frozen=True)
class AlertSummary:
    """What the KPI strips say about the alert board."""

    active_outages: int
    customers_affected: int
    comms_loss_meters: int
    suspected_theft: int
    restored: int


def summarise_alerts(alerts: Sequence[Alert]) -> AlertSummary:
    """Counts over the board: open area outages and the distinct meters they cover, open
    comms-loss meters, open theft suspicions, and closed outages (restored)."""
    open_out = [a for a in alerts if a.active and a.kind == AlertKind.AREA_OUTAGE]
    comms = {m for a in alerts if a.active and a.kind == AlertKind.COMMS_LOSS for m in a.meters}
    theft = [a for a in alerts if a.active and a.kind == AlertKind.SUSPECTED_THEFT]
    restored = [a for a in alerts if not a.active and a.kind == AlertKind.AREA_OUTAGE]
    return AlertSummary(len(open_out), len({m for a in open_out for m in a.meters}),
                        len(comms), len(theft), len(restored))


class View(Protocol):
    """A dashboard: a Bokeh layout, and :meth:`apply` that puts a snapshot on it."""

    layout: Any

    def apply(self, snap: Any) -> None: ...


def mount(view: View, read: Callable[[], Any], interval_s: float = 1.0,
          page_timeout_s: float = 30.0, name: str = "dashboard") -> Any:
    """Show ``view`` in the notebook: BokehJS inline (offline), a page heartbeat, and an
    updater that reads in an executor and applies on the kernel loop every ``interval_s``
    until the page goes away. Returns the widget (a notebook cell displays it). Once the
    cell has finished, the kernel announces dashboard ``name`` ready (:data:`READY_MARKER`).
    """
    import asyncio

    from bokeh.io import output_notebook
    from bokeh.resources import Resources

    from smartmeter_lib.viz.live import PageHeartbeat, Updater, attached_widget

    kernel_logging(name)
    # BokehJS inline (offline pages), without the WebGL and MathJax parts no dashboard uses:
    # half the JavaScript a page loads (2 MB, not 4), so it renders sooner
    output_notebook(resources=Resources(mode="inline", components=JS_COMPONENTS),
                    hide_banner=True)
    heartbeat = PageHeartbeat()
    view.layout.children.extend(heartbeat.models)
    # a kernel Voila preheats waits for its page as long as it takes (the pool is bounded)
    attach_s = float("inf") if os.environ.get("VOILA_PREHEAT") == "True" else 180.0
    updater = Updater(read, view.apply, interval_s, heartbeat, page_timeout_s, attach_s)
    updater.start()
    # runs once the kernel's loop is free again, i.e. after the cell that called us
    asyncio.get_event_loop().call_soon(announce_ready, name)
    widget = attached_widget(view.layout, heartbeat)
    widget._smartmeter_updater = updater  # kept alive with the widget; handy in notebooks
    return widget
