"""The four live dashboards in Debian chromium, against a running pipeline, on both live
stores (the embedded SQLite file, and Redis from the integration services).

The pipeline is a simulated SE-London fleet with grid events (an area outage that stays out,
one that is restored, comms losses and bypass theft), played at 60× from twelve hours ago
through the memory bus and the real processor, so half-hours close every 30 s and the
pricing study and household insights have history to work on. One Voila server per backend
serves the dashboards folder, as `smartmeter serve` does.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from smartmeter_lib.adapters import open_history, open_live
from smartmeter_lib.adapters.base import HistoryStore, LiveStore
from smartmeter_lib.config import Settings, build_settings
from smartmeter_lib.simulate.households import HouseholdFleet
from smartmeter_lib.simulate.pipeline import produce
from smartmeter_lib.simulate.scenario import parse_scenario, resolve_events
from smartmeter_lib.stream.inprocess import ProcessorThread, memory_bus
from smartmeter_lib.stream.runner import Processor
from smartmeter_lib.viz.common import esc
from smartmeter_lib.viz.serve import VoilaServer, dashboard_env, dashboards_dir, free_port
from tests.contract.conftest import real_settings
from tests.integration.conftest import services  # noqa: F401  (the session fixture)

from .conftest import ATTACHED_JS, BOKEH_STATE_JS, LIVE_DOC_JS, watch_page

HOMES = 150
SPEEDUP = 60.0
#: event history played before the present: at 60x the fleet reaches "now" after 12 min of
#: wall time, which bounds how long the module may take (Voila's preheat included); past the
#: present the processor would refuse the readings as from the future and nothing would move
HISTORY_S = 12 * 3600
#: the acceptance bound on the first render; SMARTMETER_E2E_FIRST_RENDER_S relaxes it on a
#: machine shared with other heavy jobs (the measured figures are in docs/dashboards.md)
FIRST_RENDER_S = float(os.environ.get("SMARTMETER_E2E_FIRST_RENDER_S") or 10.0)
EVIL = "x'); DROP TABLE readings; --<script>alert(1)</script>"
SCENARIO = {
    "name": "dashboards", "homes": HOMES, "seed": 11,
    "fleet": {"bounds": [51.439, -0.097, 51.481, -0.036]},
    "events": [
        {"id": "out-long", "kind": "area_outage", "at": "2m", "duration": "24h", "cells": 1,
         "min_homes": 4, "last_gasp": 0.8, "lost": 0.2},
        {"id": "out-short", "kind": "area_outage", "at": "3m", "duration": "6m", "cells": 1,
         "min_homes": 4, "last_gasp": 0.8, "lost": 0.2},
        {"id": "comms", "kind": "comms_loss", "at": "1m", "duration": "24h", "meters": 3},
        {"id": "reversed", "kind": "reversed", "at": "4m", "duration": "24h", "meters": 2},
        {"id": "theft", "kind": "bypass", "at": "60m", "duration": "24h", "meters": 3,
         "factor": [0.1, 0.3]},
    ],
}


@dataclass
class Stack:
    backend: str
    settings: Settings
    live: LiveStore
    history: HistoryStore
    fleet: HouseholdFleet
    server: VoilaServer
    processor: Processor
    producer: threading.Thread

    def assert_live(self) -> None:
        """Fail clearly once the simulated fleet has stopped (it reached the present)."""
        assert self.producer.is_alive(), (
            f"the simulated fleet reached the present: this module ran longer than "
            f"{HISTORY_S / SPEEDUP:.0f} s, and the live parts can no longer change")

    def url(self, name: str) -> str:
        return f"{self.server.url}voila/render/{name}.ipynb"


def _settings(backend: str, data_dir: Path) -> tuple[Settings, dict[str, str]]:
    if backend == "embedded":
        return build_settings(data_dir=data_dir, homes=HOMES), {}
    from tests.integration.conftest import integration_config

    s = real_settings(integration_config(), data_dir=data_dir, homes=HOMES, live="redis",
                      redis_prefix=f"dash{uuid.uuid4().hex[:8]}:")
    extra = {}
    if s.redis_password is not None:  # the test's own password, for the kernels only
        extra["SMARTMETER_REDIS_PASSWORD"] = s.redis_password.get_secret_value()
    return s, extra


@pytest.fixture(scope="module", params=["embedded", "redis"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Stack]:
    backend = request.param
    if backend == "redis":
        request.getfixturevalue("services")
    data_dir = tmp_path_factory.mktemp(f"dash-{backend}")
    settings, extra_env = _settings(backend, data_dir)
    scenario = parse_scenario(SCENARIO)
    now = int(time.time())
    start_s = (now - HISTORY_S) // 1800 * 1800 - 600  # a half-hour closes 10 event-min in
    run_s = now - start_s + 120  # to 2 event-min past the present (inside the future bound)
    fleet = HouseholdFleet(HOMES, seed=11, bounds=scenario.bounds)
    fleet.set_events(resolve_events(scenario, fleet, start_s))
    history, live = open_history(settings), open_live(settings)
    live.clear()
    history.register_meters(fleet.meters)
    bus = memory_bus(settings)
    proc = Processor(settings, bus, history, live, meters=fleet.meters)
    stop = threading.Event()
    worker = ProcessorThread(proc, "dash-processor", on_error=stop).start()
    producer = threading.Thread(target=produce, daemon=True, name="dash-producer", args=(
        fleet, bus, settings.topic_readings, start_s, run_s, SPEEDUP, stop, None,
        lambda: proc.stats.messages_in))
    producer.start()
    env = {**dashboard_env(settings), **extra_env, "SMARTMETER_DASHBOARD_PAGE_TIMEOUT_S": "20"}
    server = VoilaServer(dashboards_dir(), "127.0.0.1", free_port(), env,
                         data_dir / "voila.log", cull_idle_s=30, preheat=True)
    try:
        server.start()
        server.wait_preheated(timeout_s=240)  # as `smartmeter serve` does before its pages
        # the dashboards need a live snapshot: wait (bounded) for the first one
        deadline = time.monotonic() + 60
        while not live.get_kpis() and time.monotonic() < deadline and not stop.is_set():
            stop.wait(0.2)
        assert live.get_kpis(), "the pipeline wrote no KPIs in 60 s"
        yield Stack(backend, settings, live, history, fleet, server, proc, producer)
    finally:
        server.stop()
        stop.set()
        producer.join(timeout=30)
        worker.drain(0, timeout_s=30)
        bus.close()
        live.clear()
        live.close()
        history.close()


def _open(browser: Any, stack: Stack, name: str, ready_js: str) -> tuple[Any, float, list[str]]:
    """Load a dashboard; return the page, the seconds to the first live render, and a list
    that collects any JS dialogs (there must be none)."""
    stack.assert_live()
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    watch_page(page, f"{name}_{stack.backend}")
    t0 = time.monotonic()
    page.goto(stack.url(name), timeout=120_000)
    page.wait_for_function(
        "() => window.Bokeh && Bokeh.documents.length > 0 && (" + ready_js + ")",
        timeout=120_000)
    first_s = time.monotonic() - t0
    # then the page attaches: the kernel sends its current document, the page renders it,
    # and live patches follow; the tests read that live document from here on
    page.wait_for_function("() => " + ATTACHED_JS + " && (" + ready_js + ")", timeout=60_000)
    return page, first_s, dialogs


def _model(name: str) -> str:
    return ("[..." + LIVE_DOC_JS + "._all_models.values()].find(m => m.name === '"
            + name + "')")


def _wait_changed(page: Any, name: str, prop: str, old: Any, timeout_ms: int = 30_000) -> None:
    """Wait (bounded) until the named model's ``prop`` (``data.<col>`` or ``text``) differs
    from ``old``."""
    page.wait_for_function(
        "([old, name, prop]) => { const m = [..." + LIVE_DOC_JS + "._all_models.values()]"
        ".find(m => m.name === name); if (!m) return false;"
        " let v = prop === 'text' ? m.text : m.data[prop.slice(5)];"
        " if (prop !== 'text') v = Array.from(v).map(x => (typeof x === 'object' && x !== null)"
        " ? Array.from(x) : x);"
        " return JSON.stringify(v) !== JSON.stringify(old); }",
        arg=[old, name, prop], timeout=timeout_ms)


def _shot(page: Any, out: Path, stack: Stack, name: str, first_s: float | None = None
          ) -> None:
    page.screenshot(path=str(out / f"dashboard_{name}_{stack.backend}.png"), full_page=True)
    if first_s is not None:  # the figures, for the record
        with open(out / "dashboards_first_render.tsv", "a") as f:
            f.write(f"{name}\t{stack.backend}\t{first_s:.1f}\n")


def _kpi(text: str, label: str) -> str:
    head = f"{label}</div><div class='kpi-value' style='font-size:22px;font-weight:600'>"
    assert head in text, f"KPI {label!r} missing in {text[:300]}"
    return text.split(head, 1)[1].split("<", 1)[0]


def _landing_lists_the_four(browser: Any, stack: Stack) -> None:
    """Voila's landing page (what `smartmeter serve` shows first) lists the dashboards."""
    page = browser.new_page()
    page.goto(stack.server.url, timeout=60_000)
    for name in ("london_live", "operations", "household", "pricing"):
        page.get_by_text(f"{name}.ipynb", exact=True).wait_for(timeout=60_000)
    page.close()


def test_london_live(browser: Any, stack: Stack, test_output_dir: Path) -> None:
    _landing_lists_the_four(browser, stack)
    page, first_s, dialogs = _open(browser, stack, "london_live",
                                   _model("cells") + ".data.kw.length > 0")
    before = page.evaluate(BOKEH_STATE_JS)
    _wait_changed(page, "total", "data.t", before["total"]["data"]["t"])
    _wait_changed(page, "kpis", "text", before["kpis"]["text"])
    after = page.evaluate(BOKEH_STATE_JS)
    _shot(page, test_output_dir, stack, "london_live", first_s)
    cells = after["cells"]["data"]
    areas = stack.live.get_area_stats(5)
    assert areas is not None
    assert sorted(cells["cell"]) == sorted(str(c) for c in areas.cell)  # one patch per cell
    assert all(len(c) == 5 for c in cells["cell"])
    assert sum(cells["homes"]) <= HOMES and len(cells["yesterday"]) == len(cells["cell"])
    assert set(cells["yesterday"]) == {"n/a"}  # the pipeline started today: no yesterday
    top = after["top_areas"]["data"]
    assert top["kw"] == sorted(top["kw"], reverse=True) and len(top["cell"]) >= 1
    k = after["kpis"]["text"]
    alerts = stack.live.get_active_alerts()
    reporting = _kpi(k, "Homes reporting")
    assert reporting.endswith(f"/ {HOMES}")
    assert float(_kpi(k, "London load").split()[0]) > 0
    outages = int(_kpi(k, "Active outages"))
    assert abs(outages - sum(a.kind == "AREA_OUTAGE" for a in alerts)) <= 1  # read at times
    # the total load line covers the pipeline's last hour (event time), second by second
    t = after["total"]["data"]["t"]
    assert len(t) > 60 and (t[-1] - t[0]) <= 3600 * 1000 + 1000
    assert after["total"]["data"]["t"][-1] > before["total"]["data"]["t"][-1]
    assert first_s <= FIRST_RENDER_S, f"first render took {first_s:.1f} s"
    assert dialogs == []
    page.close()


def test_operations(browser: Any, stack: Stack, test_output_dir: Path) -> None:
    # the detectors need a few event-minutes to see the outage: wait for it (bounded)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not any(
            a.kind == "AREA_OUTAGE" and a.active for a in stack.live.get_alerts()):
        time.sleep(0.5)
    page, first_s, dialogs = _open(browser, stack, "operations",
                                   _model("alerts") + ".data.kind.length > 0")
    before = page.evaluate(BOKEH_STATE_JS)
    _wait_changed(page, "kpis", "text", before["kpis"]["text"])
    _wait_changed(page, "alerts", "data.duration", before["alerts"]["data"]["duration"])
    after = page.evaluate(BOKEH_STATE_JS)
    _shot(page, test_output_dir, stack, "operations", first_s)
    board = stack.live.get_alerts()
    open_cells = {a.area for a in board if a.kind == "AREA_OUTAGE" and a.active}
    assert open_cells, "no open area outage on the board"
    assert set(after["outage_cells"]["data"]["cell"]) & open_cells
    rows = after["alerts"]["data"]
    assert {"area outage", "comms loss"} <= set(rows["kind"])
    assert set(rows["status"]) & {"open"}
    k = after["kpis"]["text"]
    assert int(_kpi(k, "Open area outages")) >= 1
    assert int(_kpi(k, "Customers off supply")) >= 4
    assert len(after["comms_meters"]["data"]["meter"]) >= 1
    assert len(after["timeline"]["data"]["label"]) >= 1
    thefts = [a for a in board if a.kind == "SUSPECTED_THEFT" and a.active]
    if thefts:  # a reversed meter is usually flagged by now; its evidence is listed
        assert after["theft"]["data"]["meter"], "suspected theft on the board, not in the list"
    assert first_s <= FIRST_RENDER_S, f"first render took {first_s:.1f} s"
    assert dialogs == []
    page.close()


def _search(page: Any, text: str) -> None:
    box = page.locator("input.bk-input").first
    box.wait_for(state="visible", timeout=90_000)
    box.fill(text, timeout=60_000)
    box.press("Enter", timeout=60_000)


def test_household(browser: Any, stack: Stack, test_output_dir: Path) -> None:
    page, first_s, dialogs = _open(browser, stack, "household",
                                   _model("meter_search") + " !== undefined")
    meter = str(stack.fleet.meters.meter_id[7])
    _search(page, meter)
    page.wait_for_function(_model("power") + ".data.kw.length > 1", timeout=30_000)
    before = page.evaluate(BOKEH_STATE_JS)
    _wait_changed(page, "power", "data.t", before["power"]["data"]["t"])
    _wait_changed(page, "kpis", "text", before["kpis"]["text"])
    after = page.evaluate(BOKEH_STATE_JS)
    _shot(page, test_output_dir, stack, "household", first_s)
    assert f"<code id='meter-echo'>{meter}</code>" in after["message"]["text"]
    k = after["kpis"]["text"]
    now_kw = float(_kpi(k, "Power now").split()[0])
    live_kw = stack.live.get_meter(meter)
    assert live_kw is not None and abs(now_kw - live_kw["kw"]) < 5.0
    assert float(_kpi(k, "Today so far").split()[0].replace(",", "")) > 0
    assert _kpi(k, "Cost today (price cap)").startswith("£")
    ins = stack.live.get_insights(meter)
    if ins is not None and ins.get("recommended_tariff"):
        assert str(ins["recommended_tariff"]) in after["tariff"]["text"]
    assert after["comparison"]["data"]["kw"][1] > 0  # the average home nearby, live
    assert first_s <= FIRST_RENDER_S, f"first render took {first_s:.1f} s"
    # an unknown meter: a clear message, no traceback, and the page keeps updating
    _search(page, "SM-NO-SUCH-METER")
    page.wait_for_function(_model("message") + ".text.includes('No meter with this id')",
                           timeout=30_000)
    assert "Traceback" not in page.content()
    _hostile_id_is_shown_escaped(page, stack, test_output_dir, dialogs)
    page.close()


def _hostile_id_is_shown_escaped(page: Any, stack: Stack, test_output_dir: Path,
                                 dialogs: list[str]) -> None:
    """A meter id with CQL and JS metacharacters: shown escaped, no dialog fires, the kernel
    keeps updating, and the stores are intact."""
    meters_before = len(stack.history.meters())
    _search(page, EVIL)
    page.wait_for_function(_model("message") + ".text.includes('DROP TABLE') && "
                           + _model("message") + ".text.includes('No meter with this id')",
                           timeout=30_000)
    shown = page.evaluate(BOKEH_STATE_JS)
    text = shown["message"]["text"]
    assert esc(EVIL) in text and "<script>" not in text
    assert "No meter with this id" in text
    # the page shows the id as text, and the kernel keeps updating (the heartbeat ping)
    assert page.get_by_text("DROP TABLE readings", exact=False).count() >= 1
    ping = shown["heartbeat_ping"]["text"]
    _wait_changed(page, "heartbeat_ping", "text", ping)
    _shot(page, test_output_dir, stack, "household_injection")
    assert dialogs == [], f"a JS dialog fired: {dialogs}"
    # the stores are intact: the registry, the live snapshot and history reads still work
    assert len(stack.history.meters()) == meters_before == HOMES
    assert stack.live.get_meter(str(stack.fleet.meters.meter_id[0])) is not None
    assert stack.live.get_meter(EVIL) is None


def test_pricing(browser: Any, stack: Stack, test_output_dir: Path) -> None:
    page, first_s, dialogs = _open(browser, stack, "pricing",
                                   _model("kpis") + ".text.includes('As of')")
    assert first_s <= FIRST_RENDER_S, f"first render took {first_s:.1f} s"
    # the study needs the first closed half-hour; at 60x that is within a minute
    live_now = (_model("shift_cells") + ".data.kw_now.some(v => v !== 'n/a')")
    page.wait_for_function("() => " + _model("savings") + ".data.tariff.length > 0 && "
                           + live_now, timeout=90_000)
    before = page.evaluate(BOKEH_STATE_JS)
    # the live column changes (and still holds live values: wait for both, bounded)
    page.wait_for_function(
        "(old) => JSON.stringify(Array.from(" + _model("shift_cells") + ".data.kw_now)) "
        "!== JSON.stringify(old) && " + live_now,
        arg=before["shift_cells"]["data"]["kw_now"], timeout=30_000)
    after = page.evaluate(BOKEH_STATE_JS)
    _shot(page, test_output_dir, stack, "pricing", first_s)
    sav = after["savings"]["data"]
    assert "flat_cap_2025q3" not in sav["tariff"] and len(sav["tariff"]) >= 3
    for lo, mid, hi in zip(sav["p10"], sav["median"], sav["p90"], strict=True):
        assert lo <= mid <= hi
    share = after["share_better"]["data"]
    assert all(0 <= s <= 100 for s in share["share"]), share
    assert sorted(share["tariff"]) == sorted(sav["tariff"])
    cells = after["shift_cells"]["data"]
    assert sum(cells["homes"]) == HOMES and all(len(c) == 5 for c in cells["cell"])
    assert any(v != "n/a" for v in cells["kw_now"]), cells["kw_now"]
    assert dialogs == []
    page.close()
