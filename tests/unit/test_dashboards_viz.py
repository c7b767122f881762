"""The dashboards' figure builders against the embedded stores (no browser, no services):
what each view shows for a given live store, history and alert board."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smartmeter_lib import geo
from smartmeter_lib.adapters.embedded_history import EmbeddedHistory
from smartmeter_lib.adapters.embedded_live import EmbeddedLive
from smartmeter_lib.model import Alert, AlertKind, AreaRollup, AreaStats, MeterInfo, Rollup
from smartmeter_lib.viz import household, london_live, operations, pricing
from smartmeter_lib.viz.common import esc, fmt_duration, summarise_alerts

T0 = 1_736_960_400_000  # 2025-01-15 17:00 UTC
EVIL = "x'); DROP TABLE readings; --<script>alert(1)</script>"


def _meters() -> MeterInfo:
    lat = np.array([51.45, 51.451, 51.47, 51.46])
    lon = np.array([-0.09, -0.089, -0.05, -0.07])
    ids = np.array(["m1", "m2", "m3", "m4"], dtype=object)
    return MeterInfo(ids, lat, lon, geo.encode_many(lat, lon, 7))


def _alerts() -> list[Alert]:
    return [
        Alert("out-1", AlertKind.AREA_OUTAGE, "gcpuvp", ("m1", "m2", "m3"), T0 - 300_000),
        Alert("out-2", AlertKind.AREA_OUTAGE, "gcpuvq", ("m3", "m4"), T0 - 200_000),
        Alert("out-0", AlertKind.AREA_OUTAGE, "gcpuvr", ("m9",), T0 - 900_000, T0 - 600_000),
        Alert("com-1", AlertKind.COMMS_LOSS, "gcpuvx", ("m4",), T0 - 60_000),
        Alert("thf-1", AlertKind.SUSPECTED_THEFT, "gcpuvz", ("m2",), T0 - 3_600_000, None,
              0.87, {"expected_kwh": 4.0, "metered_kwh": 1.0}),
    ]


@pytest.fixture
def live(tmp_path: Path) -> EmbeddedLive:
    s = EmbeddedLive(tmp_path / "live.sqlite")
    yield s
    s.close()


@pytest.fixture
def history(tmp_path: Path) -> EmbeddedHistory:
    h = EmbeddedHistory(tmp_path / "history")
    h.register_meters(_meters())
    yield h
    h.close()


def _fill(live: EmbeddedLive, kw: tuple[float, float] = (1.0, 2.5)) -> None:
    cells = np.array(["gcpuv", "gcpuy"], dtype=object)
    live.put_area_stats(AreaStats(T0, 5, cells, np.array(kw), np.array([3, 1], np.int32)))
    live.put_area_stats(AreaStats(T0, 6, np.array(["gcputy", "gcpuyc"], dtype=object),
                                  np.array([0.6, 0.4]), np.array([2, 2], np.int32)))
    for i in range(5):
        live.put_total(T0 - 4000 + i * 1000, 3.5 + i, 4)
    live.put_kpis({"ts_ms": T0, "homes_reporting": 4, "homes_total": 4,
                   "total_mw": 0.0035, "messages_in": 10, "rejected": 0})
    m = _meters()
    live.put_meters(T0, m.meter_id, np.full(4, T0), np.array([0.2, 0.3, 0.4, 0.5]),
                    np.zeros(4))
    for i in range(3):
        live.put_meter_power(T0 - 2000 + i * 1000, np.array([0.1 * i, 0.3, 0.4, 0.5]))


def test_summary_counts_distinct_customers_of_open_outages_only() -> None:
    s = summarise_alerts(_alerts())
    assert s.active_outages == 2
    assert s.customers_affected == 4  # m1, m2, m3 and m4 (m3 is in both), not the closed m9
    assert (s.comms_loss_meters, s.suspected_theft, s.restored) == (1, 1, 1)
    assert fmt_duration(3_723_000) == "1 h 02 min" and fmt_duration(65_000) == "1 min 05 s"


def test_london_live_kpis_top_areas_and_yesterday(live: EmbeddedLive,
                                                  history: EmbeddedHistory) -> None:
    _fill(live)
    live.put_alerts(_alerts())
    day_ago = (T0 - 86_400_000) // 1_800_000 * 1_800_000
    history.write_area_rollups(AreaRollup(1800, 5, np.array(["gcpuv"], dtype=object),
                                          np.array([day_ago]), np.array([0.75]),
                                          np.array([3], np.int32)))
    view = london_live.LondonLive()
    snap = london_live.read_snapshot(live, 5, view.window_s,
                                     london_live.Yesterday(history, 5))
    view.apply(snap)
    d = view.cells.data
    assert d["cell"] == ["gcpuv", "gcpuy"] and d["homes"] == [3, 1]
    assert d["yesterday"] == ["1.5 kW", "n/a"]  # 0.75 kWh in half an hour = 1.5 kW
    assert view.top.data["cell"] == ["gcpuy", "gcpuv"]  # largest load first
    assert view.top.data["kw_per_home"] == [2.5, pytest.approx(1 / 3)]
    assert len(view.total.data["t"]) == 5 and view.total.data["mw"][-1] == 0.0075
    text = view.kpis.text
    for label, value in (("Homes reporting", "4 / 4"), ("Active outages", "2"),
                         ("Customers affected", "4"), ("London load", "0.004 MW")):
        assert f"{label}</div><div class='kpi-value' style='font-size:22px;" \
               f"font-weight:600'>{value}<" in text


def test_london_live_without_history_says_na(live: EmbeddedLive) -> None:
    _fill(live)
    view = london_live.LondonLive()
    view.apply(london_live.read_snapshot(live, 5, 3600, london_live.Yesterday(None, 5)))
    assert view.cells.data["yesterday"] == ["n/a", "n/a"]


def test_operations_board(live: EmbeddedLive) -> None:
    _fill(live)
    live.put_alerts(_alerts())
    view = operations.Operations(_meters())
    view.apply(operations.read_snapshot(live))
    rows = view.alerts.data
    assert rows["alert_id"][0] == "com-1" and len(rows["kind"]) == 5  # newest first
    i = rows["alert_id"].index("out-1")
    assert (rows["kind"][i], rows["meters"][i], rows["duration"][i], rows["status"][i]) == (
        "area outage", 3, "5 min 00 s", "open")
    j = rows["alert_id"].index("out-0")
    assert rows["status"][j].startswith("closed") and rows["duration"][j] == "5 min 00 s"
    assert view.outages.data["cell"] == ["gcpuvp", "gcpuvq"]
    assert view.comms.data["meter"] == ["m4"]
    x, _y = geo.to_mercator(51.46, -0.07)  # at the meter's own place, from the registry
    assert view.comms.data["x"][0] == pytest.approx(float(x))
    assert view.theft.data["meter"] == ["m2"]
    assert view.theft.data["missing"] == ["75%"]
    assert view.theft.data["expected_kwh"] == ["4.000"]
    tl = view.timeline.data
    assert tl["status"].count("restored") == 1 and tl["status"].count("still open") == 3
    assert list(view.timeline_plot.y_range.factors) == tl["label"]
    assert "Customers off supply" in view.kpis.text


def test_household_known_meter(live: EmbeddedLive, history: EmbeddedHistory) -> None:
    _fill(live)
    day0 = T0 // 86_400_000 * 86_400_000
    history.write_rollups(Rollup(60, np.array(["m1", "m1", "m2"], dtype=object),
                                 np.array([day0 + 60_000, T0 - 120_000, T0 - 60_000]),
                                 np.array([0.5, 0.25, 9.0]), np.array([60, 60, 60], np.int32)))
    m = _meters()
    geoh = dict(zip(m.meter_id.tolist(), m.geohash.tolist(), strict=True))
    today = household.TodayCost(history)
    snap = household.read_snapshot(live, "m1", geoh, today)
    assert snap.known and snap.today_kwh == pytest.approx(0.75)
    # 0.75 kWh at 25.73 p plus 34 half-hours of the 51.37 p/day standing charge
    slots = (T0 - day0) // 1_800_000 + 1
    assert snap.today_cost_gbp == pytest.approx((0.75 * 25.73 + 51.37 * slots / 48) / 100)
    view = household.Household("m1")
    view.apply(snap)
    assert view.power.data["kw"] == [0.0, 0.1, 0.2]
    assert view.compare.data["kw"][0] == pytest.approx(0.2)
    assert view.compare.data["kw"][1] == pytest.approx(0.3)  # 0.6 kW over 2 homes in m1's gcputy
    assert "0.75 kWh" in view.kpis.text and "n/a until" in view.tariff.text


def test_household_unknown_and_hostile_ids_are_messages_not_errors(
        live: EmbeddedLive, history: EmbeddedHistory) -> None:
    _fill(live)
    view = household.Household("")
    view.search.value = EVIL  # as the browser would: the callback runs, then an update
    assert view.meter_id == EVIL
    snap = household.read_snapshot(live, view.meter_id, {}, household.TodayCost(history))
    view.apply(snap)
    assert not snap.known and "<script>" not in view.message.text
    assert esc(EVIL) in view.message.text and "No meter with this id" in view.message.text
    assert view.power.data["t"] == []
    long = household.read_snapshot(live, "a" * 500)
    assert "not a meter id" in long.message
    assert len(history.meters()) == 4 and live.get_meter("m1") is not None  # stores intact
    view.search.value = "m2"
    view.apply(snap)  # a stale snapshot for the old id is dropped
    assert "Looking up m2" in view.message.text


def test_pricing_study_shares_and_areas() -> None:
    m = _meters()
    times = pd.date_range("2025-01-13", periods=48 * 2, freq="30min", tz="UTC")
    rows = []
    for mid, peaky in (("m1", True), ("m2", True), ("m3", False), ("m4", False)):
        for t in times:
            peak = 16 <= t.hour < 19
            rows.append((mid, t, (0.9 if peak else 0.1) if peaky else (0.05 if peak else 0.3)))
    frame = pd.DataFrame(rows, columns=["meter_id", "ts", "kwh"]).assign(interval_s=1800)
    from smartmeter_lib.insights.tariffs import load_catalogue

    a = pricing.analyse(frame, m, load_catalogue())
    assert a is not None and a.meters == 4 and a.half_hours == 96
    peak_tou = a.tariffs.set_index("tariff").loc["peak_offpeak"]
    # the peak/off-peak tariff suits the two flat-evening homes, not the two peaky ones
    assert peak_tou["share_better"] == pytest.approx(0.5)
    assert "flat_cap_2025q3" not in set(a.tariffs["tariff"])
    by_cell = a.areas.set_index("cell")
    assert by_cell["homes"].sum() == 4
    peaky_cell = str(m.geohash[0])[:5]
    assert by_cell.loc[peaky_cell, "peak_kwh_per_home"] > 0
    view = pricing.Pricing(m)
    view.apply(pricing.Snapshot(a, None, None, {}))
    assert view.savings.data["tariff"] == a.tariffs["tariff"].tolist()
    assert list(view.savings_plot.y_range.factors) == a.tariffs["tariff"].tolist()[::-1]
    assert sorted(view.share.data["share"], reverse=True) == view.share.data["share"]
    assert pricing.analyse(frame.iloc[0:0], m, load_catalogue()) is None


def test_serve_refuses_an_unknown_dashboard(capsys: pytest.CaptureFixture[str]) -> None:
    from smartmeter_lib.cli import main

    assert main(["serve", "--dashboard", "nope", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "no dashboard 'nope'" in err
    for name in ("household", "london_live", "operations", "pricing"):
        assert name in err


def test_kernels_get_the_stores_of_the_settings_and_preheat_is_awaited(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from smartmeter_lib.config import build_settings
    from smartmeter_lib.viz.common import announce_ready
    from smartmeter_lib.viz.serve import VoilaServer, dashboard_env, dashboards_dir

    env = dashboard_env(build_settings(live="redis", history="cassandra",
                                       redis_url="redis://h:1/0", cassandra_port=9999))
    assert env["SMARTMETER_LIVE"] == "redis" and env["SMARTMETER_HISTORY"] == "cassandra"
    assert env["SMARTMETER_REDIS_URL"] == "redis://h:1/0"
    assert env["SMARTMETER_CASSANDRA_PORT"] == "9999"
    assert not any("PASSWORD" in k for k in env)  # secrets are inherited, never copied
    log = tmp_path / "voila.log"
    server = VoilaServer(dashboards_dir(), "127.0.0.1", 1, {}, log, preheat=True)
    names = ("london_live", "operations", "household", "pricing")
    filled = "".join(f"[Voila] Kernel pool of {n}.ipynb is filled with 1 kernel(s)\n"
                     for n in names)
    # the kernels announce themselves on their stderr, which is Voila's log
    monkeypatch.setenv("VOILA_PREHEAT", "True")
    for n in names:
        announce_ready(n)
    announced = capfd.readouterr().err
    assert announced.count("preheated=True") == 4
    log.write_text(filled + announced)
    assert server.wait_preheated(timeout_s=1) == [
        "household.ipynb", "london_live.ipynb", "operations.ipynb", "pricing.ipynb"]
    from smartmeter_lib.errors import ServiceError

    # started, but one has not run its notebook yet: still waiting (here: no Voila at all)
    log.write_text(filled + announced.replace("name=pricing", "name=other"))
    with pytest.raises(ServiceError, match="voila stopped while preheating"):
        server.wait_preheated(timeout_s=1)
    log.write_text("[Voila] Kernel pool of london_live.ipynb is filled with 1 kernel(s)\n")
    with pytest.raises(ServiceError, match="voila stopped while preheating"):
        server.wait_preheated(timeout_s=1)  # not started: says so instead of waiting
