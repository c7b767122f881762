"""The operations dashboard, for the outage desk: a map of active area outages and comms-loss
meters, a live table of alerts, a restoration timeline and the suspected-theft list.

Everything comes from the live store's alert board (:meth:`LiveStore.get_alerts`: the open
alerts and the recently closed ones), written by the stream processor's detectors. Durations
are measured in event time, against the pipeline's latest second (the KPIs' ``ts_ms``).
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
    ColumnDataSource,
    DataTable,
    Div,
    FactorRange,
    HoverTool,
    NumberFormatter,
    TableColumn,
)
from bokeh.plotting import figure

from smartmeter_lib import geo
from smartmeter_lib.adapters.base import LiveStore
from smartmeter_lib.model import Alert, AlertKind, MeterInfo
from smartmeter_lib.viz.common import (
    TOOLS,
    CellGeometry,
    fmt_duration,
    fmt_num,
    fmt_time,
    kpi_html,
    map_bounds,
    map_figure,
    summarise_alerts,
    time_axis,
)

log = logging.getLogger(__name__)
TIMELINE_MAX = 25  #: most recent closed alerts on the restoration timeline


@dataclass
class Snapshot:
    alerts: list[Alert]
    now_ms: int


def read_snapshot(live: LiveStore) -> Snapshot:
    """The alert board and the pipeline's latest event time (blocking)."""
    alerts = live.get_alerts()
    k = live.get_kpis()
    now = int(k["ts_ms"]) if k and "ts_ms" in k else int(time.time() * 1000)
    return Snapshot(alerts, now)


def alert_rows(alerts: list[Alert], now_ms: int) -> dict[str, list[Any]]:
    """The alert table's columns, newest first: kind, area, meters affected, start,
    duration, status."""
    out: dict[str, list[Any]] = {k: [] for k in (
        "alert_id", "kind", "area", "meters", "start", "duration", "status")}
    for a in sorted(alerts, key=lambda a: (a.start_ms, a.alert_id), reverse=True):
        end = now_ms if a.end_ms is None else a.end_ms
        out["alert_id"].append(a.alert_id)
        out["kind"].append(a.kind.value.replace("_", " ").lower())
        out["area"].append(a.area)
        out["meters"].append(len(a.meters))
        out["start"].append(fmt_time(a.start_ms))
        out["duration"].append(fmt_duration(end - a.start_ms))
        out["status"].append("open" if a.active else f"closed {fmt_time(a.end_ms)}")
    return out


def theft_rows(alerts: list[Alert]) -> dict[str, list[Any]]:
    """Open suspected-theft alerts, most suspicious first, with their evidence."""
    out: dict[str, list[Any]] = {k: [] for k in (
        "meter", "area", "rule", "score", "expected_kwh", "metered_kwh", "missing", "other",
        "since")}
    theft = [a for a in alerts if a.kind == AlertKind.SUSPECTED_THEFT and a.active]
    for a in sorted(theft, key=lambda a: -a.score):
        ev = a.evidence or {}
        exp, met = ev.get("expected_kwh"), ev.get("metered_kwh")
        try:
            missing = (1.0 - float(met) / float(exp) if exp and met is not None
                       else float("nan"))
        except (TypeError, ValueError):
            missing = float("nan")
        out["meter"].append(", ".join(a.meters))
        out["area"].append(a.area)
        out["rule"].append(str(ev.get("rule", "")))
        out["score"].append(float(a.score))
        out["expected_kwh"].append(fmt_num(exp, ",.3f"))
        out["metered_kwh"].append(fmt_num(met, ",.3f"))
        out["missing"].append(fmt_num(100 * missing, ".0f", "%"))
        out["other"].append(", ".join(
            f"{k.replace('_', ' ')} {v}" for k, v in sorted(ev.items())
            if k not in ("rule", "expected_kwh", "metered_kwh")))
        out["since"].append(fmt_time(a.start_ms))
    return out


def _table(source: ColumnDataSource, name: str, cols: list[tuple[str, str]], width: int,
           height: int) -> DataTable:
    columns = [TableColumn(field=f, title=t, formatter=NumberFormatter(format="0.00"))
               if f == "score" else TableColumn(field=f, title=t) for f, t in cols]
    return DataTable(source=source, columns=columns, name=name, width=width, height=height,
                     index_position=None)


class Operations:
    """The Bokeh layout and its sources; :meth:`apply` puts a snapshot on them."""

    def __init__(self, meters: MeterInfo | None = None) -> None:
        self.meters = meters
        self._where: dict[str, tuple[float, float]] = {}
        if meters is not None:
            x, y = geo.to_mercator(meters.lat, meters.lon)
            self._where = dict(zip(meters.meter_id.tolist(),
                                   zip(x.tolist(), y.tolist(), strict=True), strict=True))
        self.geometry = CellGeometry()
        self.outages = ColumnDataSource({"xs": [], "ys": [], "cell": [], "meters": [],
                                         "since": []}, name="outage_cells")
        self.comms = ColumnDataSource({"x": [], "y": [], "meter": [], "since": []},
                                      name="comms_meters")
        self.theft_pts = ColumnDataSource({"x": [], "y": [], "meter": [], "score": []},
                                          name="theft_meters")
        self.alerts = ColumnDataSource(alert_rows([], 0), name="alerts")
        self.theft = ColumnDataSource(theft_rows([]), name="theft")
        self.timeline = ColumnDataSource({"label": [], "start": [], "end": [], "kind": [],
                                          "duration": [], "color": [], "status": []},
                                         name="timeline")
        self.kpis = Div(text=kpi_html([("Status", "Waiting for the alert board…")]),
                        name="kpis", sizing_mode="stretch_width")
        self.layout = self._build()

    def _build(self) -> Any:
        m = map_figure("Active area outages and comms-loss meters", map_bounds(self.meters),
                       "map", width=640, height=480)
        if self.meters is not None and len(self.meters):
            x, y = geo.to_mercator(self.meters.lat, self.meters.lon)
            m.scatter(x, y, size=2, color="#bbbbbb", legend_label="meter (reporting)")
        r = m.patches("xs", "ys", source=self.outages, fill_color="#d62728", fill_alpha=0.45,
                      line_color="#7f0000", legend_label="area outage (open)")
        c = m.scatter("x", "y", source=self.comms, size=9, marker="x", line_width=2,
                      color="#ff7f0e", legend_label="comms-loss meter")
        t = m.scatter("x", "y", source=self.theft_pts, size=9, marker="triangle",
                      color="#6a3d9a", legend_label="suspected theft")
        m.add_tools(HoverTool(renderers=[r], tooltips=[
            ("area", "@cell"), ("meters off supply", "@meters"), ("since", "@since")]))
        m.add_tools(HoverTool(renderers=[c, t], tooltips=[("meter", "@meter")]))
        m.legend.location = "top_left"
        m.legend.click_policy = "hide"
        alerts = _table(self.alerts, "alerts_table", [
            ("kind", "Kind"), ("area", "Area"), ("meters", "Meters affected"),
            ("start", "Start"), ("duration", "Duration"), ("status", "Status")], 680, 300)
        theft = _table(self.theft, "theft_table", [
            ("meter", "Meter"), ("area", "Area"), ("rule", "Rule"), ("score", "Score"),
            ("expected_kwh", "Expected kWh"), ("metered_kwh", "Metered kWh"),
            ("missing", "Unmetered"), ("other", "Other evidence"), ("since", "Since")],
            680, 200)
        tl = figure(title="Restoration timeline (alert start to end; open ones run to now)",
                    x_axis_type="datetime", y_range=FactorRange(factors=["none yet"]),
                    width=1280, height=260, tools=TOOLS, name="timeline_plot")
        tl.hbar(y="label", left="start", right="end", height=0.6, color="color",
                source=self.timeline, legend_field="status")
        tl.add_tools(HoverTool(tooltips=[("alert", "@label"), ("kind", "@kind"),
                                         ("duration", "@duration"), ("status", "@status")]))
        time_axis(tl, "Alert (kind: area)")
        tl.add_layout(tl.legend[0], "right")  # never over the bars
        self.timeline_plot = tl
        return column(self.kpis, row(m, column(Div(text="<b>Alerts</b>"), alerts,
                                               Div(text="<b>Suspected theft</b>"), theft)), tl)

    def _points(self, alerts: list[Alert], kind: AlertKind, cell_fallback: bool
                ) -> dict[str, list[Any]]:
        xs, ys, ids, extra = [], [], [], []
        for a in alerts:
            if a.kind != kind or not a.active:
                continue
            for mid in a.meters:
                if mid in self._where:
                    x, y = self._where[mid]
                elif cell_fallback and a.area:
                    _, _, cx, cy = self.geometry.get([a.area])
                    x, y = cx[0], cy[0]
                else:
                    continue
                xs.append(x)
                ys.append(y)
                ids.append(mid)
                extra.append(fmt_time(a.start_ms) if kind == AlertKind.COMMS_LOSS
                             else round(float(a.score), 2))
        key = "since" if kind == AlertKind.COMMS_LOSS else "score"
        return {"x": xs, "y": ys, "meter": ids, key: extra}

    def apply(self, snap: Snapshot) -> None:
        alerts = snap.alerts
        out = [a for a in alerts if a.kind == AlertKind.AREA_OUTAGE and a.active and a.area]
        xs, ys, _, _ = self.geometry.get([a.area for a in out])
        self.outages.data = {"xs": xs, "ys": ys, "cell": [a.area for a in out],
                             "meters": [len(a.meters) for a in out],
                             "since": [fmt_time(a.start_ms) for a in out]}
        self.comms.data = self._points(alerts, AlertKind.COMMS_LOSS, True)
        self.theft_pts.data = self._points(alerts, AlertKind.SUSPECTED_THEFT, True)
        self.alerts.data = alert_rows(alerts, snap.now_ms)
        self.theft.data = theft_rows(alerts)
        self._apply_timeline(alerts, snap.now_ms)
        s = summarise_alerts(alerts)
        self.kpis.text = kpi_html([
            ("Open area outages", f"{s.active_outages:,}"),
            ("Customers off supply", f"{s.customers_affected:,}"),
            ("Comms-loss meters", f"{s.comms_loss_meters:,}"),
            ("Suspected theft", f"{s.suspected_theft:,}"),
            ("Outages restored (recent)", f"{s.restored:,}"),
            ("As of", fmt_time(snap.now_ms))])

    def _apply_timeline(self, alerts: list[Alert], now_ms: int) -> None:
        shown = [a for a in alerts if a.kind != AlertKind.SUSPECTED_THEFT]
        closed = [a for a in shown if not a.active][-TIMELINE_MAX:]
        rows = sorted(closed + [a for a in shown if a.active], key=lambda a: a.start_ms)
        labels: list[str] = []
        for a in rows:  # factors must be distinct
            label = f"{a.kind.value.replace('_', ' ').lower()}: {a.area} ({a.alert_id[-6:]})"
            while label in labels:
                label += "'"
            labels.append(label)
        ends = [now_ms if a.end_ms is None else a.end_ms for a in rows]
        self.timeline.data = {
            "label": labels,
            "start": pd.to_datetime(np.array([a.start_ms for a in rows], np.int64),
                                    unit="ms").tolist(),
            "end": pd.to_datetime(np.array(ends, np.int64), unit="ms").tolist(),
            "kind": [a.kind.value for a in rows],
            "duration": [fmt_duration(e - a.start_ms) for a, e in zip(rows, ends, strict=True)],
            "color": ["#2ca02c" if not a.active else "#d62728" for a in rows],
            "status": ["restored" if not a.active else "still open" for a in rows]}
        factors = labels or ["none yet"]
        if list(self.timeline_plot.y_range.factors) != factors:
            self.timeline_plot.y_range.factors = factors


def show(interval_s: float = 1.0) -> Any:
    """Build the dashboard from the settings' stores, start updating, return the widget."""
    from smartmeter_lib.viz.common import mount
    from smartmeter_lib.viz.stores import open_dashboard_stores

    stores = open_dashboard_stores()
    view = Operations(stores.meters())

    def read() -> Snapshot:
        return read_snapshot(stores.live)

    view.apply(read())
    return mount(view, read, interval_s, stores.settings.dashboard_page_timeout_s,
                 name="operations")
