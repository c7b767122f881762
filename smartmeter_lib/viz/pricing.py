"""The pricing dashboard, for analysts: the distribution of annual savings per tariff across
the fleet, the share of homes better off on each tariff, and a map of load-shifting
opportunity (kWh a year each home uses in the 16:00-19:00 peak, which a time-of-use tariff
rewards moving).

The fleet analysis runs the tariff recommendation (:func:`smartmeter_lib.insights.recommend`)
on the running pipeline's half-hourly history (30-minute rollups, the last ``days`` days, at
most ``max_meters`` meters) and is refreshed every ``refresh_s`` in the updater's executor;
the live part (load now per area, the KPIs) updates every second from the live store.
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
    Div,
    FactorRange,
    HoverTool,
    LinearColorMapper,
)
from bokeh.palettes import Plasma256
from bokeh.plotting import figure

from smartmeter_lib.adapters.base import HistoryStore, LiveStore
from smartmeter_lib.model import AreaStats, MeterInfo
from smartmeter_lib.viz.common import (
    CellGeometry,
    fmt_time,
    kpi_html,
    map_bounds,
    map_figure,
)

log = logging.getLogger(__name__)
REFERENCE = "flat_cap_2025q3"
PRECISION = 5


@dataclass
class Analysis:
    """The fleet's tariff study from history: per tariff and per area."""

    tariffs: pd.DataFrame  #: tariff, meters, share_better, p10, p25, median, p75, p90, mean
    areas: pd.DataFrame  #: cell, homes, peak_kwh_per_home, peak_share
    meters: int
    half_hours: int
    as_of_ms: int


def analyse(rollups: pd.DataFrame, meters: MeterInfo, tariffs: list[Any],
            reference: str = REFERENCE) -> Analysis | None:
    """The study from half-hourly rows (``meter_id, ts, kwh, interval_s``); None without
    any. Savings are against ``reference`` (positive: the tariff is cheaper)."""
    from smartmeter_lib.insights.recommend import recommend
    from smartmeter_lib.insights.study import savings_vs_reference

    if rollups.empty or not tariffs:
        return None
    rec = recommend(rollups, tariffs, reference=reference, n_boot=0)
    sav = savings_vs_reference(rec.annual, reference).dropna(subset=["saving_gbp"])
    sav = sav[sav["tariff"] != reference]
    g = sav.groupby("tariff")["saving_gbp"]
    per_tariff = pd.DataFrame({
        "meters": g.size(), "share_better": g.apply(lambda s: float((s > 0).mean())),
        "p10": g.quantile(0.1), "p25": g.quantile(0.25), "median": g.median(),
        "p75": g.quantile(0.75), "p90": g.quantile(0.9), "mean": g.mean(),
    }).sort_values("median", ascending=False).reset_index()
    s = rec.summary
    cell_of = pd.Series(meters.geohash, index=meters.meter_id).astype(str).str[:PRECISION]
    s = s.assign(cell=s["meter_id"].map(cell_of)).dropna(subset=["cell"])
    areas = s.groupby("cell").agg(homes=("meter_id", "size"),
                                  peak_kwh_per_home=("peak_kwh", "mean"),
                                  peak_share=("peak_share", "mean")).reset_index()
    end = int(rollups["ts"].max().value // 1_000_000) + 1_800_000
    return Analysis(per_tariff, areas, int(s["meter_id"].nunique()),
                    int(rollups["ts"].nunique()), end)


class FleetStudy:
    """Reads the half-hourly history and runs :func:`analyse`, at most every ``refresh_s``."""

    def __init__(self, history: HistoryStore | None, meters: MeterInfo | None,
                 days: int = 7, max_meters: int = 2000, refresh_s: float = 30.0) -> None:
        self.history, self.meters = history, meters
        self.days, self.max_meters, self.refresh_s = days, max_meters, refresh_s
        self.result: Analysis | None = None
        self.error: str | None = None
        self._last = -1e18
        self._tariffs: list[Any] | None = None

    def get(self, now_ms: int) -> Analysis | None:
        if self.history is None or self.meters is None:
            self.error = "no history store: the fleet study needs the pipeline's history"
            return None
        if time.monotonic() - self._last < self.refresh_s:
            return self.result
        self._last = time.monotonic()
        try:
            if self._tariffs is None:
                from smartmeter_lib.insights.tariffs import load_catalogue

                self._tariffs = load_catalogue()
            ids = sorted(self.meters.meter_id.tolist())[: self.max_meters]
            r = self.history.read_rollups(1800, ids, now_ms - self.days * 86_400_000,
                                          now_ms + 1)
            frame = pd.DataFrame({"meter_id": r.meter_id.astype(str),
                                  "ts": pd.to_datetime(r.window_start_ms, unit="ms", utc=True),
                                  "kwh": r.kwh, "interval_s": 1800})
            t0 = time.monotonic()
            self.result = analyse(frame, self.meters, self._tariffs) or self.result
            self.error = None if self.result else ("waiting for the first half-hour of "
                                                   "history (30-minute rollups)")
            log.info("pricing study of %d half-hourly rows in %.1f s", len(frame),
                     time.monotonic() - t0)
        except Exception as err:  # keep the last result; say why on the page
            log.warning("pricing study failed", exc_info=True)
            self.error = f"the study could not be refreshed: {type(err).__name__}"
        return self.result


@dataclass
class Snapshot:
    analysis: Analysis | None
    status: str | None
    areas: AreaStats | None
    kpis: dict[str, Any]


def read_snapshot(live: LiveStore, study: FleetStudy) -> Snapshot:
    kpis = live.get_kpis()
    now = int(kpis["ts_ms"]) if kpis else int(time.time() * 1000)
    analysis = study.get(now)
    return Snapshot(analysis, study.error, live.get_area_stats(PRECISION), kpis)


class Pricing:
    """The Bokeh layout and sources; :meth:`apply` shows a snapshot."""

    def __init__(self, meters: MeterInfo | None = None) -> None:
        self.meters = meters
        self.savings = ColumnDataSource({k: [] for k in (
            "tariff", "p10", "p25", "median", "p75", "p90", "mean", "meters")},
            name="savings")
        self.share = ColumnDataSource({"tariff": [], "share": [], "meters": []},
                                      name="share_better")
        self.cells = ColumnDataSource({"xs": [], "ys": [], "cell": [], "homes": [],
                                       "peak_kwh": [], "peak_share": [], "kw_now": []},
                                      name="shift_cells")
        self.mapper = LinearColorMapper(palette=Plasma256, low=0, high=1)
        self.kpis = Div(text=kpi_html([("Status", "Waiting for history…")]), name="kpis",
                        sizing_mode="stretch_width")
        self.geometry = CellGeometry()
        self._analysis: Analysis | None = None
        self.layout = self._build()

    def _build(self) -> Any:
        d = figure(title="Annual saving against the flat price-cap tariff, across homes",
                   y_range=FactorRange(factors=["(none yet)"]), width=640, height=320,
                   tools="save", name="savings_plot")
        d.hbar(y="tariff", left="p10", right="p90", height=0.15, source=self.savings,
               color="#9ecae1", legend_label="10-90% of homes")
        d.hbar(y="tariff", left="p25", right="p75", height=0.5, source=self.savings,
               color="#3182bd", legend_label="25-75% of homes")
        d.scatter(x="median", y="tariff", size=9, source=self.savings, color="black",
                  legend_label="median")
        d.scatter(x="mean", y="tariff", size=9, marker="diamond", source=self.savings,
                  color="#e6550d", legend_label="mean")
        d.add_tools(HoverTool(tooltips=[("tariff", "@tariff"), ("median", "£@median{0}"),
                                        ("10-90%", "£@p10{0} to £@p90{0}"),
                                        ("homes", "@meters")]))
        d.xaxis.axis_label = "Saving (£ a year; positive = cheaper than the flat tariff)"
        d.yaxis.axis_label = "Tariff"
        d.legend.location = "bottom_right"
        d.legend.label_text_font_size = "8pt"
        self.savings_plot = d
        s = figure(title="Share of homes better off than on the flat tariff",
                   x_range=FactorRange(factors=["(none yet)"]), width=640, height=320,
                   tools="save", name="share_plot")
        s.vbar(x="tariff", top="share", width=0.7, source=self.share, color="#31a354",
               legend_label="homes better off")
        s.add_tools(HoverTool(tooltips=[("tariff", "@tariff"), ("better off", "@share{0.0}%"),
                                        ("homes", "@meters")]))
        s.xaxis.axis_label = "Tariff"
        s.yaxis.axis_label = "Homes better off (%)"
        s.y_range.start, s.y_range.end = 0, 100
        s.xaxis.major_label_orientation = 0.5
        s.add_layout(s.legend[0], "below")  # bars reach 100%: the legend goes under
        s.legend.orientation = "horizontal"
        self.share_plot = s
        m = map_figure(f"Load-shifting opportunity by area (geohash {PRECISION})",
                       map_bounds(self.meters), "map", width=640, height=480)
        r = m.patches("xs", "ys", source=self.cells, line_color="white", line_width=0.5,
                      fill_alpha=0.85,
                      fill_color={"field": "peak_kwh", "transform": self.mapper})
        m.add_tools(HoverTool(renderers=[r], tooltips=[
            ("cell", "@cell"), ("homes studied", "@homes"),
            ("peak use per home", "@peak_kwh{0,0} kWh a year"),
            ("peak share", "@peak_share{0.0%}"), ("load now", "@kw_now")]))
        m.add_layout(ColorBar(color_mapper=self.mapper, width=12,
                              title="kWh a year in the 16-19 peak, per home"), "right")
        return column(self.kpis, row(d, s), m)

    def apply(self, snap: Snapshot) -> None:
        a = snap.analysis
        if a is not None and a is not self._analysis:
            self._apply_analysis(a)
        live_kw = {} if snap.areas is None else dict(zip(
            [str(c) for c in snap.areas.cell], snap.areas.kw.tolist(), strict=True))
        cells = list(self.cells.data["cell"])
        if cells:  # the live column changes every second
            new = dict(self.cells.data)
            new["kw_now"] = [f"{live_kw[c]:,.1f} kW" if c in live_kw else "n/a" for c in cells]
            self.cells.data = new
        k = snap.kpis
        items = [("London load now", f"{float(k['total_mw']):.3f} MW" if k else "n/a"),
                 ("Homes reporting", f"{int(k['homes_reporting']):,}" if k else "n/a"),
                 ("As of", fmt_time(k.get("ts_ms")) if k else "n/a")]
        if a is not None:
            items[2:2] = [("Homes studied", f"{a.meters:,}"),
                          ("Half-hours of history", f"{a.half_hours:,}"),
                          ("Study up to", fmt_time(a.as_of_ms))]
        if snap.status:
            items.append(("Study status", snap.status))
        self.kpis.text = kpi_html(items)

    def _apply_analysis(self, a: Analysis) -> None:
        t = a.tariffs
        names = t["tariff"].astype(str).tolist()
        self.savings.data = {"tariff": names, **{c: t[c].astype(float).round(2).tolist()
                                                 for c in ("p10", "p25", "median", "p75",
                                                           "p90", "mean")},
                             "meters": t["meters"].astype(int).tolist()}
        self.savings_plot.y_range.factors = names[::-1] or ["(none yet)"]
        order = t.sort_values("share_better", ascending=False)
        share_names = order["tariff"].astype(str).tolist()
        self.share.data = {"tariff": share_names,
                           "share": (100 * order["share_better"]).round(1).tolist(),
                           "meters": order["meters"].astype(int).tolist()}
        self.share_plot.x_range.factors = share_names or ["(none yet)"]
        ar = a.areas
        xs, ys, _, _ = self.geometry.get(ar["cell"].astype(str).tolist())
        peak = ar["peak_kwh_per_home"].astype(float)
        self.cells.data = {"xs": xs, "ys": ys, "cell": ar["cell"].astype(str).tolist(),
                           "homes": ar["homes"].astype(int).tolist(),
                           "peak_kwh": peak.round(1).tolist(),
                           "peak_share": ar["peak_share"].astype(float).round(3).tolist(),
                           "kw_now": ["n/a"] * len(ar)}
        self.mapper.low = float(np.nanmin(peak)) if len(peak) else 0.0
        self.mapper.high = float(max(np.nanmax(peak), self.mapper.low + 1)) if len(peak) \
            else 1.0
        self._analysis = a


def show(interval_s: float = 2.0, days: int = 7, max_meters: int = 2000,
         refresh_s: float = 30.0) -> Any:
    """Build the dashboard from the settings' stores, start updating, return the widget."""
    from smartmeter_lib.viz.common import mount
    from smartmeter_lib.viz.stores import open_dashboard_stores

    stores = open_dashboard_stores()
    meters = stores.meters()
    view = Pricing(meters)
    study = FleetStudy(stores.history, meters, days, max_meters, refresh_s)

    def read() -> Snapshot:
        return read_snapshot(stores.live, study)

    view.apply(read())
    return mount(view, read, interval_s, stores.settings.dashboard_page_timeout_s,
                 name="pricing")
