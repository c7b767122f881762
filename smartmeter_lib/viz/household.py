"""The household dashboard, for a customer or a call-centre agent: pick a meter in the search
box and see its live power second by second, today's kWh and cost, the baseload, a
comparison with similar homes nearby and the tariff recommendation with its saving.

The meter id is user input. It is only ever passed as a value to the stores (whose queries
are parameterised), and it is escaped wherever it is shown. An unknown id gives a clear
message, never a traceback.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource, Div, HoverTool, TextInput
from bokeh.plotting import figure

from smartmeter_lib.adapters.base import HistoryStore, LiveStore
from smartmeter_lib.viz.common import NA, TOOLS, esc, fmt_num, fmt_time, kpi_html, time_axis

log = logging.getLogger(__name__)
MAX_ID_LEN = 64
SERIES_S = 600  #: seconds of live power shown
DAY_MS = 86_400_000
COMPARE = ["this home", "average home nearby"]
DAILY = ["this home", "efficient neighbours"]


@dataclass
class Snapshot:
    meter_id: str
    known: bool = False
    message: str = ""
    meter: dict[str, Any] | None = None
    series: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"ts_ms": [], "kw": []}))
    today_kwh: float = float("nan")
    today_cost_gbp: float = float("nan")
    area: str | None = None
    area_kw_per_home: float = float("nan")
    insights: dict[str, Any] | None = None


def clean_id(raw: object) -> str:
    """The search box's text, stripped (at most :data:`MAX_ID_LEN` characters are looked up)."""
    return str(raw or "").strip()


class TodayCost:
    """Today's energy (UTC day, closed 1-minute windows from history) priced on the flat
    price-cap tariff, plus the day's standing charge so far."""

    def __init__(self, history: HistoryStore | None, tariff_id: str = "flat_cap_2025q3") -> None:
        self.history = history
        self.tariff: Any = None
        try:
            from smartmeter_lib.insights.tariffs import load_catalogue_tariff

            self.tariff = load_catalogue_tariff(tariff_id)
        except Exception:  # no price: the page says n/a for the cost
            log.warning("tariff %s unavailable; today's cost shows n/a", tariff_id,
                        exc_info=True)

    def get(self, meter_id: str, now_ms: int) -> tuple[float, float]:
        if self.history is None:
            return float("nan"), float("nan")
        day0 = now_ms // DAY_MS * DAY_MS
        r = self.history.read_rollups(60, [meter_id], day0, now_ms + 1)
        kwh = float(np.sum(r.kwh)) if len(r) else 0.0
        if self.tariff is None:
            return kwh, float("nan")
        slots = pd.DatetimeIndex(pd.to_datetime(
            np.arange(day0, now_ms + 1, 1_800_000), unit="ms", utc=True))
        standing_p = float(np.nansum(self.tariff.standing_per_slot(slots)))
        energy_p = 0.0
        if len(r):
            t = pd.DatetimeIndex(pd.to_datetime(r.window_start_ms // 1_800_000 * 1_800_000,
                                                unit="ms", utc=True))
            energy_p = float(np.nansum(r.kwh * self.tariff.unit_rates(t)))
        return kwh, (energy_p + standing_p) / 100.0


def read_snapshot(live: LiveStore, meter_id: str, geohash: dict[str, str] | None = None,
                  today: TodayCost | None = None) -> Snapshot:
    """Everything the page shows for one meter (blocking). ``meter_id`` is a value only."""
    if not meter_id:
        return Snapshot(meter_id, message="Enter a meter id in the search box.")
    if len(meter_id) > MAX_ID_LEN:
        return Snapshot(meter_id, message=f"That is not a meter id (ids have at most "
                                          f"{MAX_ID_LEN} characters).")
    meter = live.get_meter(meter_id)
    if meter is None:
        return Snapshot(meter_id, message="No meter with this id is reporting. Check the id "
                                          "(for example on the customer's bill) and try again.")
    now = int(meter.get("snapshot_ts_ms") or meter["last_ts_ms"])
    snap = Snapshot(meter_id, True, meter=meter,
                    series=live.get_meter_series(meter_id, now - SERIES_S * 1000),
                    insights=live.get_insights(meter_id))
    if today is not None:
        try:
            snap.today_kwh, snap.today_cost_gbp = today.get(meter_id, now)
        except Exception:
            log.warning("today's kWh for a meter unavailable", exc_info=True)
    cell = (geohash or {}).get(meter_id)
    if cell is None and snap.insights and snap.insights.get("area"):
        cell = str(snap.insights["area"])
    if cell:
        snap.area = cell[:6]
        stats = live.get_area_stats(6)
        if stats is not None:
            hit = np.flatnonzero(stats.cell == snap.area)
            if len(hit) and stats.homes[hit[0]] > 0:
                snap.area_kw_per_home = float(stats.kw[hit[0]] / stats.homes[hit[0]])
    return snap


def _gbp(value: Any, spec: str) -> str:
    got = fmt_num(value, spec)
    return got if got == NA else f"£{got}"


def _insight(ins: dict[str, Any] | None, key: str) -> Any:
    return None if ins is None else ins.get(key)


class Household:
    """The Bokeh layout, its sources and the search box; :meth:`apply` shows a snapshot."""

    def __init__(self, meter_id: str = "", examples: list[str] | None = None) -> None:
        self.meter_id = clean_id(meter_id)
        self.examples = examples or []
        self.search = TextInput(title="Meter id", value=self.meter_id, name="meter_search",
                                placeholder="e.g. " + (self.examples[0] if self.examples
                                                       else "a meter id"), width=360)
        self.search.on_change("value", self._searched)
        self.message = Div(text="", name="message", sizing_mode="stretch_width")
        self.kpis = Div(text="", name="kpis", sizing_mode="stretch_width")
        self.tariff = Div(text="", name="tariff", width=520)
        self.power = ColumnDataSource({"t": [], "kw": []}, name="power")
        self.compare = ColumnDataSource({"who": COMPARE, "kw": [0.0, 0.0]}, name="comparison")
        self.daily = ColumnDataSource({"who": DAILY, "kwh": [0.0, 0.0]},
                                      name="comparison_daily")
        self.layout = self._build()

    def _searched(self, _attr: str, _old: Any, new: Any) -> None:
        self.meter_id = clean_id(new)
        self.message.text = f"<i>Looking up {esc(self.meter_id[:MAX_ID_LEN])}…</i>"

    def _build(self) -> Any:
        p = figure(title="Live power, second by second", x_axis_type="datetime", width=760,
                   height=300, tools=TOOLS, name="power_plot")
        p.line("t", "kw", source=self.power, line_width=2, legend_label="this home")
        time_axis(p, "Power (kW)")
        p.legend.location = "top_left"
        c = figure(title="Now: this home vs the average home nearby", x_range=COMPARE,
                   width=380, height=300, tools="save", name="comparison_plot")
        c.vbar(x="who", top="kw", width=0.6, source=self.compare, color="#3182bd",
               legend_label="live power")
        c.yaxis.axis_label = "Power (kW)"
        c.xaxis.axis_label = "Home (area: geohash 6)"
        c.add_tools(HoverTool(tooltips=[("", "@who"), ("power", "@kw{0.000} kW")]))
        d = figure(title="Daily use: this home vs efficient neighbours", x_range=DAILY,
                   width=380, height=300, tools="save", name="daily_plot")
        d.vbar(x="who", top="kwh", width=0.6, source=self.daily, color="#31a354",
               legend_label="kWh per day")
        d.yaxis.axis_label = "Energy (kWh per day)"
        d.xaxis.axis_label = "Home (area: geohash 6)"
        for f in (c, d):
            f.y_range.start = 0
            f.add_layout(f.legend[0], "below")
            f.legend.orientation = "horizontal"
        hint = ", ".join(esc(e) for e in self.examples[:3])
        intro = Div(text="<b>Find a household</b>: type a meter id and press Enter."
                    + (f" Meters reporting now include {hint}." if hint else ""))
        return column(intro, row(self.search), self.message, self.kpis, p, row(c, d),
                      self.tariff)

    def apply(self, snap: Snapshot) -> None:
        if snap.meter_id != self.meter_id:
            return  # the search changed while this was read; the next update has the new one
        shown = esc(snap.meter_id[:MAX_ID_LEN]) + ("…" if len(snap.meter_id) > MAX_ID_LEN
                                                   else "")
        if not snap.known:
            quoted = f"Meter <code id='meter-echo'>{shown}</code>: " if snap.meter_id else ""
            self.message.text = f"<div style='color:#a94442'>{quoted}{esc(snap.message)}</div>"
            self.kpis.text = ""
            self.tariff.text = ""
            self.power.data = {"t": [], "kw": []}
            self.compare.data = {"who": COMPARE, "kw": [0.0, 0.0]}
            self.daily.data = {"who": DAILY, "kwh": [0.0, 0.0]}
            return
        m = snap.meter or {}
        ins = snap.insights
        self.message.text = (f"Meter <code id='meter-echo'>{shown}</code>"
                             + (f" in area {esc(snap.area)}" if snap.area else "")
                             + f", last reading {esc(fmt_time(m.get('last_ts_ms')))}")
        base = _insight(ins, "baseload_w")
        self.kpis.text = kpi_html([
            ("Power now", fmt_num(m.get("kw"), ".3f", " kW")),
            ("Today so far", fmt_num(snap.today_kwh, ",.2f", " kWh")),
            ("Cost today (price cap)", _gbp(snap.today_cost_gbp, ",.2f")),
            ("Baseload (always on)", fmt_num(base, ",.0f", " W")),
            ("Baseload cost a year", _gbp(_insight(ins, "baseload_annual_gbp"), ",.0f")),
            ("Use vs homes in the area", fmt_num(_insight(ins, "area_percentile"), ".0f",
                                                 "th percentile")),
        ])
        s = snap.series
        self.power.data = {"t": pd.to_datetime(s["ts_ms"].astype("int64"), unit="ms").tolist(),
                           "kw": s["kw"].astype(float).round(4).tolist()}
        self.compare.data = {"who": COMPARE, "kw": [
            float(m.get("kw") or 0.0),
            0.0 if np.isnan(snap.area_kw_per_home) else round(snap.area_kw_per_home, 4)]}
        per_day = _insight(ins, "kwh_per_day")
        eff = _insight(ins, "efficient_kwh_per_day")
        self.daily.data = {"who": DAILY, "kwh": [float(per_day or 0.0), float(eff or 0.0)]}
        self.tariff.text = self._tariff_html(ins)

    @staticmethod
    def _tariff_html(ins: dict[str, Any] | None) -> str:
        best = _insight(ins, "recommended_tariff")
        if not best:
            return ("<div id='tariff-advice'><b>Tariff recommendation</b>: n/a until the "
                    "first half-hours of this home's use are in (the processor refreshes "
                    "it as half-hours close).</div>")
        saving = _insight(ins, "annual_saving_gbp")
        days = fmt_num(_insight(ins, "days_seen"), ".1f")
        return (f"<div id='tariff-advice'><b>Tariff recommendation</b>: "
                f"<b>{esc(best)}</b>, saving about {esc(_gbp(saving, ',.0f'))} a year "
                f"against the flat price-cap tariff (from {esc(days)} days of this home's "
                f"half-hourly use).</div>")


def show(meter_id: str = "", interval_s: float = 1.0) -> Any:
    """Build the dashboard from the settings' stores, start updating, return the widget."""
    from smartmeter_lib.viz.common import mount
    from smartmeter_lib.viz.stores import open_dashboard_stores

    stores = open_dashboard_stores()
    meters = stores.meters()
    geohash = (dict(zip(meters.meter_id.tolist(), meters.geohash.tolist(), strict=True))
               if meters is not None else None)
    examples = stores.live.get_top_consumers()["meter_id"].astype(str).tolist()[:3]
    view = Household(meter_id, examples)
    today = TodayCost(stores.history)

    def read() -> Snapshot:
        return read_snapshot(stores.live, view.meter_id, geohash, today)

    view.apply(read())
    return mount(view, read, interval_s, stores.settings.dashboard_page_timeout_s,
                 name="household")
