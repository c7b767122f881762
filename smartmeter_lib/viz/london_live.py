"""The london_live dashboard, for executives: geohash cells coloured by live load, KPIs,
London's total load over the last hour, and the top areas.

The notebook in ``dashboards/london_live.ipynb`` only calls :func:`show`. The updater
(:mod:`smartmeter_lib.viz.live`) is an asyncio task on the kernel's loop; reads from the stores
run in an executor so the widgets never freeze, and every update sends the whole state
(updates sent before the page attaches are not lost that way).

The hover's "same time yesterday" is the cell's average load in the half-hour 24 hours
earlier, from the history's 30-minute area rollups; ``n/a`` when history has none.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from bokeh.layouts import column, row
from bokeh.models import (
    ColorBar,
    ColumnDataSource,
    DataTable,
    Div,
    HoverTool,
    LinearColorMapper,
    NumberFormatter,
    TableColumn,
)
from bokeh.palettes import Viridis256
from bokeh.plotting import figure

from smartmeter_lib.adapters.base import HistoryStore, LiveStore
from smartmeter_lib.model import Alert, AreaStats
from smartmeter_lib.viz.common import (
    NA,
    TOOLS,
    CellGeometry,
    fmt_time,
    kpi_html,
    map_bounds,
    map_figure,
    summarise_alerts,
    time_axis,
)

log = logging.getLogger(__name__)
HALF_HOUR_MS = 1_800_000
DAY_MS = 86_400_000
TOP_AREAS = 10


class Yesterday:
    """Each cell's average kW in the half-hour 24 h before a time, from the history's
    30-minute area rollups (read once per half-hour; None when history has none)."""

    def __init__(self, history: HistoryStore | None, precision: int) -> None:
        self.history = history
        self.precision = precision
        self._slot: int | None = None
        self._kw: dict[str, float] | None = None

    def get(self, ts_ms: int) -> dict[str, float] | None:
        if self.history is None:
            return None
        slot = (ts_ms - DAY_MS) // HALF_HOUR_MS * HALF_HOUR_MS
        if slot != self._slot:
            try:
                r = self.history.read_area_rollups(1800, self.precision, None, slot,
                                                   slot + HALF_HOUR_MS)
                kw = {str(c): float(k) * 2.0 for c, k, w in
                      zip(r.cell, r.kwh, r.window_start_ms, strict=True) if int(w) == slot}
                self._kw = kw or None
            except Exception:  # history down: the hover says n/a, the page lives on
                log.warning("yesterday's area rollups unavailable", exc_info=True)
                self._kw = None
            self._slot = slot
        return self._kw


@dataclass
class Snapshot:
    areas: AreaStats | None
    totals: pd.DataFrame
    kpis: dict[str, Any]
    alerts: list[Alert] = field(default_factory=list)
    yesterday: dict[str, float] | None = None


def read_snapshot(live: LiveStore, precision: int, window_s: int,
                  yesterday: Yesterday | None = None) -> Snapshot:
    """Everything the dashboard shows, read from the stores (blocking)."""
    areas = live.get_area_stats(precision)
    now = areas.ts_ms if areas else int(time.time() * 1000)
    since = now - window_s * 1000
    return Snapshot(areas, live.get_totals(since), live.get_kpis(), live.get_active_alerts(),
                    yesterday.get(now) if yesterday is not None and areas else None)


def kpi_items(k: dict[str, Any], alerts: list[Alert]) -> list[tuple[str, str]]:
    """The KPI strip: homes reporting, total MW, active outages, customers affected."""
    if not k:
        return [("Status", "Waiting for the first readings…")]
    a = summarise_alerts(alerts)
    return [("Homes reporting", f"{int(k['homes_reporting']):,} / {int(k['homes_total']):,}"),
            ("London load", f"{float(k['total_mw']):.3f} MW"),
            ("Active outages", f"{a.active_outages:,}"),
            ("Customers affected", f"{a.customers_affected:,}"),
            ("As of", fmt_time(k.get("ts_ms")))]


def _kpi_html(k: dict[str, Any], alerts: list[Alert] | None = None) -> str:
    return kpi_html(kpi_items(k, alerts or []))


class LondonLive:
    """The Bokeh layout and its data sources; :meth:`apply` puts a snapshot on them."""

    def __init__(self, precision: int = 5, window_s: int = 3600) -> None:
        self.precision = precision
        self.window_s = window_s
        self.cells = ColumnDataSource(
            {"xs": [], "ys": [], "cell": [], "kw": [], "homes": [], "yesterday": []},
            name="cells")
        self.labels = ColumnDataSource({"x": [], "y": [], "text": []}, name="labels")
        self.total = ColumnDataSource({"t": [], "mw": []}, name="total")
        self.top = ColumnDataSource({"cell": [], "kw": [], "homes": [], "kw_per_home": [],
                                     "yesterday": []}, name="top_areas")
        self.kpis = Div(text=_kpi_html({}), name="kpis", sizing_mode="stretch_width")
        self.mapper = LinearColorMapper(palette=Viridis256, low=0, high=1)
        self.geometry = CellGeometry()
        self.layout = self._build()

    def _build(self) -> Any:
        m = map_figure(f"Live load by area (geohash {self.precision}, kW)", map_bounds(None),
                       "map")
        r = m.patches("xs", "ys", source=self.cells, line_color="white", line_width=0.5,
                      fill_alpha=0.85, fill_color={"field": "kw", "transform": self.mapper})
        m.add_tools(HoverTool(renderers=[r], tooltips=[
            ("cell", "@cell"), ("homes reporting", "@homes"), ("load now", "@kw{0,0.0} kW"),
            ("same time yesterday", "@yesterday")]))
        m.add_layout(ColorBar(color_mapper=self.mapper, title="Load (kW)", width=12), "right")
        m.text("x", "y", "text", source=self.labels, text_font_size="7pt",
               text_align="center", text_baseline="middle", text_color="#222")
        ts = figure(title="London total load, last hour", x_axis_type="datetime", width=760,
                    height=240, tools=TOOLS, name="total_plot")
        ts.line("t", "mw", source=self.total, line_width=2, legend_label="total load")
        time_axis(ts, "Load (MW)")
        ts.legend.location = "top_left"
        table = DataTable(source=self.top, name="top_areas_table", width=400, height=290,
                          index_position=None, columns=[
                              TableColumn(field="cell", title="Area", width=60),
                              TableColumn(field="kw", title="Load (kW)", width=75,
                                          formatter=NumberFormatter(format="0,0.0")),
                              TableColumn(field="homes", title="Homes", width=55),
                              TableColumn(field="kw_per_home", title="kW per home", width=90,
                                          formatter=NumberFormatter(format="0.000")),
                              TableColumn(field="yesterday", title="Yesterday (kW)",
                                          width=120)])
        top_title = Div(text=f"<b>Top {TOP_AREAS} areas (geohash 5) by live load</b>")
        return column(self.kpis, row(m, column(top_title, table)), ts)

    def apply(self, snap: Snapshot) -> None:
        """Replace every source's data with the snapshot (whole state each time)."""
        a = snap.areas
        if a is not None and len(a.cell):
            cells = [str(c) for c in a.cell]
            xs, ys, cx, cy = self.geometry.get(cells)
            kw = np.round(a.kw.astype(float), 2)
            y = snap.yesterday
            yest = [NA if y is None or c not in y else f"{y[c]:,.1f} kW" for c in cells]
            homes = a.homes.astype(int)
            self.cells.data = {"xs": xs, "ys": ys, "cell": cells, "kw": kw.tolist(),
                               "homes": homes.tolist(), "yesterday": yest}
            self.labels.data = {"x": cx, "y": cy, "text": [f"{v:.0f}" for v in kw]}
            self.mapper.high = float(max(kw.max(), 1.0))
            top = np.argsort(-kw, kind="stable")[:TOP_AREAS]
            self.top.data = {"cell": [cells[i] for i in top], "kw": kw[top].tolist(),
                             "homes": homes[top].tolist(),
                             "kw_per_home": (kw[top] / np.maximum(homes[top], 1)).tolist(),
                             "yesterday": [yest[i] for i in top]}
        t = snap.totals
        if len(t):
            self.total.data = {"t": pd.to_datetime(t["ts_ms"], unit="ms").tolist(),
                               "mw": (t["kw"] / 1000.0).round(4).tolist()}
        self.kpis.text = _kpi_html(snap.kpis, snap.alerts)


def show(precision: int = 5, interval_s: float = 1.0) -> Any:
    """Build the dashboard from the settings' stores, start updating, return the widget.

    Meant for a notebook cell: the returned widget displays itself. The updater stops when
    the page has sent no heartbeat for ``settings.dashboard_page_timeout_s``.
    """
    from smartmeter_lib.viz.common import mount
    from smartmeter_lib.viz.stores import open_dashboard_stores

    stores = open_dashboard_stores()
    view = LondonLive(precision=precision)
    yesterday = Yesterday(stores.history, precision)

    def read() -> Snapshot:
        return read_snapshot(stores.live, precision, view.window_s, yesterday)

    view.apply(read())
    return mount(view, read, interval_s, stores.settings.dashboard_page_timeout_s,
                 name="london_live")
