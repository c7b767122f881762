"""The london_live dashboard: geohash cells coloured by live load, and London's total load.

The notebook in ``dashboards/london_live.ipynb`` only calls :func:`show`. The updater
(:mod:`smartmeter_lib.viz.live`) is an asyncio task on the kernel's loop; reads from the live
store run in an executor so the widgets never freeze, and every update sends the whole state
(updates sent before the page attaches are not lost that way).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from bokeh.layouts import column, row
from bokeh.models import (
    ColorBar,
    ColumnDataSource,
    DatetimeTickFormatter,
    Div,
    HoverTool,
    LinearColorMapper,
)
from bokeh.palettes import Viridis256
from bokeh.plotting import figure

from smartmeter_lib import geo
from smartmeter_lib.adapters.base import LiveStore
from smartmeter_lib.model import AreaStats
from smartmeter_lib.viz.live import PageHeartbeat, Updater

log = logging.getLogger(__name__)


@dataclass
class Snapshot:
    areas: AreaStats | None
    totals: pd.DataFrame
    kpis: dict[str, Any]


def read_snapshot(live: LiveStore, precision: int, window_s: int) -> Snapshot:
    """Everything the dashboard shows, read from the live store (blocking)."""
    areas = live.get_area_stats(precision)
    since = (areas.ts_ms if areas else int(time.time() * 1000)) - window_s * 1000
    return Snapshot(areas, live.get_totals(since), live.get_kpis())


def _kpi_html(k: dict[str, Any]) -> str:
    if not k:
        return "<b>Waiting for the first readings…</b>"
    ts = pd.Timestamp(int(k["ts_ms"]), unit="ms", tz="UTC").strftime("%H:%M:%S UTC")
    items = [("Homes reporting", f"{int(k['homes_reporting']):,} / {int(k['homes_total']):,}"),
             ("London load", f"{float(k['total_mw']):.3f} MW"),
             ("Messages in", f"{int(k['messages_in']):,}"),
             ("Rejected", f"{int(k['rejected']):,}"),
             ("As of", ts)]
    cells = "".join(f"<div style='display:inline-block;margin-right:28px'>"
                    f"<div style='color:#666;font-size:12px'>{a}</div>"
                    f"<div style='font-size:22px;font-weight:600'>{b}</div></div>"
                    for a, b in items)
    return f"<div id='kpis'>{cells}</div>"


class LondonLive:
    """The Bokeh layout and its data sources; :meth:`apply` puts a snapshot on them."""

    def __init__(self, precision: int = 5, window_s: int = 900) -> None:
        self.precision = precision
        self.window_s = window_s
        self.cells = ColumnDataSource(
            {"xs": [], "ys": [], "cell": [], "kw": [], "homes": []}, name="cells")
        self.labels = ColumnDataSource({"x": [], "y": [], "text": []}, name="labels")
        self.total = ColumnDataSource({"t": [], "mw": []}, name="total")
        self.kpis = Div(text=_kpi_html({}), name="kpis", sizing_mode="stretch_width")
        self.mapper = LinearColorMapper(palette=Viridis256, low=0, high=1)
        self._cell_order: list[str] = []
        self.layout = self._build()

    def _build(self) -> Any:
        s, w, n, e = geo.LONDON_BOUNDS
        x0, y0 = geo.to_mercator(s - 0.03, w - 0.03)
        x1, y1 = geo.to_mercator(n + 0.03, e + 0.03)
        m = figure(title=f"Live load by area (geohash {self.precision}, kW)",
                   x_range=(float(x0), float(x1)), y_range=(float(y0), float(y1)),
                   x_axis_type="mercator", y_axis_type="mercator", width=760, height=520,
                   tools="pan,wheel_zoom,reset,save", name="map")
        m.xaxis.axis_label = "Longitude"
        m.yaxis.axis_label = "Latitude"
        r = m.patches("xs", "ys", source=self.cells, line_color="white", line_width=0.5,
                      fill_alpha=0.85, fill_color={"field": "kw", "transform": self.mapper})
        m.add_tools(HoverTool(renderers=[r], tooltips=[
            ("cell", "@cell"), ("homes reporting", "@homes"), ("load", "@kw{0,0.0} kW")]))
        m.add_layout(ColorBar(color_mapper=self.mapper, title="kW", width=12), "right")
        m.text("x", "y", "text", source=self.labels, text_font_size="7pt",
               text_align="center", text_baseline="middle", text_color="#222")
        ts = figure(title="London total load", x_axis_type="datetime", width=760, height=240,
                    tools="pan,wheel_zoom,reset,save", name="total_plot")
        ts.line("t", "mw", source=self.total, line_width=2, legend_label="total load")
        ts.xaxis.axis_label = "Time (UTC)"
        ts.yaxis.axis_label = "Load (MW)"
        ts.xaxis.formatter = DatetimeTickFormatter(minutes="%H:%M", minsec="%H:%M:%S",
                                                   seconds="%H:%M:%S")
        ts.legend.location = "top_left"
        return column(self.kpis, row(m), ts)

    def apply(self, snap: Snapshot) -> None:
        """Replace every source's data with the snapshot (whole state each time)."""
        a = snap.areas
        if a is not None and len(a.cell):
            cells = [str(c) for c in a.cell]
            if cells != self._cell_order:
                xs, ys = geo.cell_polygons_mercator(cells)
                cx = [float(np.mean(x)) for x in xs]
                cy = [float(np.mean(y)) for y in ys]
                self._geometry = (xs, ys, cx, cy)
                self._cell_order = cells
            xs, ys, cx, cy = self._geometry
            kw = np.round(a.kw.astype(float), 2)
            self.cells.data = {"xs": xs, "ys": ys, "cell": cells, "kw": kw.tolist(),
                               "homes": a.homes.astype(int).tolist()}
            self.labels.data = {"x": cx, "y": cy, "text": [f"{v:.0f}" for v in kw]}
            self.mapper.high = float(max(kw.max(), 1.0))
        t = snap.totals
        if len(t):
            self.total.data = {"t": pd.to_datetime(t["ts_ms"], unit="ms").tolist(),
                               "mw": (t["kw"] / 1000.0).round(4).tolist()}
        self.kpis.text = _kpi_html(snap.kpis)


def show(precision: int = 5, interval_s: float = 1.0) -> Any:
    """Build the dashboard from the settings' live store, start updating, return the widget.

    Meant for a notebook cell: the returned widget displays itself. The updater stops when
    the page has sent no heartbeat for ``settings.dashboard_page_timeout_s``.
    """
    from bokeh.io import output_notebook
    from bokeh.resources import INLINE
    from jupyter_bokeh.widgets import BokehModel

    from smartmeter_lib.adapters import open_live
    from smartmeter_lib.config import build_settings

    output_notebook(resources=INLINE, hide_banner=True)
    settings = build_settings()
    live = open_live(settings)
    view = LondonLive(precision=precision)
    view.apply(read_snapshot(live, precision, view.window_s))
    heartbeat = PageHeartbeat()
    view.layout.children.extend(heartbeat.models)
    updater = Updater(lambda: read_snapshot(live, precision, view.window_s), view.apply,
                      interval_s, heartbeat, settings.dashboard_page_timeout_s)
    updater.start()
    return BokehModel(view.layout)
