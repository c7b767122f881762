"""`smartmeter demo` end to end: the live dashboard in a real browser, then Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from smartmeter_lib.adapters.embedded_live import EmbeddedLive
from smartmeter_lib.viz.serve import free_port

from .conftest import ATTACHED_JS, BOKEH_STATE_JS, LIVE_DOC_JS


class Demo:
    """`smartmeter demo` in a subprocess, with its stderr collected by a thread."""

    def __init__(self, data_dir: Path, homes: int, port: int) -> None:
        self.port = port
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "smartmeter_lib.cli", "--data-dir", str(data_dir), "demo",
             "--homes", str(homes), "--port", str(port)],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1",
                            "SMARTMETER_DASHBOARD_PAGE_TIMEOUT_S": "4",
                            "SMARTMETER_DASHBOARD_CULL_S": "6"})
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())
            if "dashboard ready" in line:
                self.ready.set()
        self.ready.set()

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []


def test_demo_serves_a_live_map_and_stops_cleanly(browser: Any, tmp_path: Path,
                                                 test_output_dir: Path) -> None:
    port = free_port()
    demo = Demo(tmp_path / "data", homes=800, port=port)
    try:
        assert demo.ready.wait(180), "demo not ready in 180 s:\n" + "\n".join(demo.lines)
        assert demo.proc.poll() is None, "\n".join(demo.lines)
        assert f"http://127.0.0.1:{port}/" in "\n".join(demo.lines)
        page = browser.new_page(viewport={"width": 1100, "height": 1000})
        t0 = time.monotonic()
        page.goto(f"http://127.0.0.1:{port}/", timeout=120_000)
        page.wait_for_function(
            "() => window.Bokeh && Bokeh.documents.length > 0 && "
            "[..." + LIVE_DOC_JS + "._all_models.values()].some("
            "  m => m.name === 'cells' && m.data.kw && m.data.kw.length > 0)",
            timeout=120_000)
        first_render_s = time.monotonic() - t0
        page.wait_for_function("() => " + ATTACHED_JS, timeout=60_000)  # live from here
        before = page.evaluate(BOKEH_STATE_JS)
        # wait on the condition "the page's state changed", bounded
        page.wait_for_function(
            "(old) => { const m = [..." + LIVE_DOC_JS + "._all_models.values()]"
            "  .find(m => m.name === 'total'); return m && m.data.t.length > old; }",
            arg=len(before["total"]["data"]["t"]), timeout=60_000)
        page.wait_for_function(
            "(old) => { const m = [..." + LIVE_DOC_JS + "._all_models.values()]"
            "  .find(m => m.name === 'cells'); return JSON.stringify(Array.from(m.data.kw))"
            "  !== JSON.stringify(old); }", arg=before["cells"]["data"]["kw"], timeout=60_000)
        after = page.evaluate(BOKEH_STATE_JS)
        page.screenshot(path=str(test_output_dir / "demo_london_live.png"), full_page=True)

        cells = after["cells"]["data"]
        assert len(cells["cell"]) >= 50, "London should be covered by many geohash-5 cells"
        assert all(len(c) == 5 for c in cells["cell"])
        assert sum(cells["homes"]) == 800  # every home reports, each in exactly one cell
        assert before["cells"]["data"]["kw"] != cells["kw"], "map values did not change"
        # the first state may come before London's total has its first point
        t_before, t_after = before["total"]["data"]["t"], after["total"]["data"]["t"]
        assert len(t_after) > len(t_before) and (not t_before or t_after[-1] > t_before[-1])
        assert "800 / 800" in after["kpis"]["text"]
        # the page agrees with the live store the pipeline writes
        live = EmbeddedLive(tmp_path / "data" / "live.sqlite")
        mw = live.get_totals(0)["kw"].iloc[-1] / 1000
        live.close()
        assert after["total"]["data"]["mw"][-1] == pytest.approx(mw, rel=0.2)
        assert first_render_s < 60

        def kernels() -> list[psutil.Process]:
            return [p for p in demo.descendants() if "ipykernel" in " ".join(p.cmdline())]

        assert len(kernels()) == 1
        # the browser goes away without `beforeunload` (a crash, a dropped network): the page
        # heartbeat stops, the updater stops, and Voila's culler shuts the idle kernel down
        page.close(run_before_unload=False)
        _gone, alive = psutil.wait_procs(kernels(), timeout=90)
        assert alive == [], "the kernel of a closed page is still running"

        family = demo.descendants()
        assert any("voila" in " ".join(p.cmdline()) for p in family)
        demo.proc.send_signal(signal.SIGINT)  # Ctrl-C
        try:  # bounded; on a loaded CI machine the final flush and Voila's exit took > 90 s
            code = demo.proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            pytest.fail("demo still running 180 s after Ctrl-C:\n" + "\n".join(demo.lines[-30:]))
        assert code == 0, "\n".join(demo.lines[-20:])
        _gone, alive = psutil.wait_procs(family, timeout=30)
        assert alive == [], f"left behind: {[p.cmdline() for p in alive]}"
        assert any(re.search(r"demo stopped: \d+ readings produced", x) for x in demo.lines)
    finally:
        if demo.proc.poll() is None:
            demo.proc.kill()
        for p in demo.descendants():
            p.kill()
