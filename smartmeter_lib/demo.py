"""``smartmeter demo``: the whole pipeline on embedded backends, and the live dashboard.

A simulated fleet streams one reading per home per second into the in-process bus; the
processor aggregates it into the embedded live store and history; Voila serves
``dashboards/london_live.ipynb``, whose kernel reads the live store file.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from smartmeter_lib.adapters import open_history, open_live
from smartmeter_lib.config import Settings
from smartmeter_lib.simulate.households import HouseholdFleet
from smartmeter_lib.simulate.producer import ProducerStats, run_fleet_producer
from smartmeter_lib.stream.inprocess import memory_bus
from smartmeter_lib.stream.runner import Processor, ProcessorStats
from smartmeter_lib.viz.serve import VoilaServer, check_port_free, dashboards_dir

log = logging.getLogger(__name__)


@dataclass
class DemoResult:
    producer: ProducerStats
    processor: ProcessorStats
    wall_s: float


class EmbeddedPipeline:
    """Producer and processor threads over a memory bus and the embedded stores."""

    def __init__(self, settings: Settings, speedup: float = 1.0,
                 start_s: int | None = None) -> None:
        self.settings = settings
        self.speedup = speedup
        self.start_s = start_s
        self.history = open_history(settings)
        self.live = open_live(settings)
        self.live.clear()
        t0 = time.monotonic()
        self.fleet = HouseholdFleet(settings.homes, seed=settings.seed)
        self.history.register_meters(self.fleet.meters)
        log.info("fleet of %d homes ready in %.1f s", settings.homes, time.monotonic() - t0)
        self.bus = memory_bus(settings)
        self.processor = Processor(settings, self.bus, self.history, self.live,
                                   meters=self.fleet.meters)
        self.stop_event = threading.Event()
        self.producer_stats = ProducerStats()
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []

    def _guard(self, fn: object, name: str) -> threading.Thread:
        def target() -> None:
            try:
                fn()  # type: ignore[operator]
            except BaseException as err:  # reported by the main thread
                log.exception("%s failed", name)
                self._errors.append(err)
                self.stop_event.set()
        return threading.Thread(target=target, name=name, daemon=True)

    def start(self, duration_s: float | None = None) -> None:
        s = self.settings
        self._threads = [
            self._guard(lambda: run_fleet_producer(
                self.fleet, self.bus, s.topic_readings, start_s=self.start_s,
                speedup=self.speedup, duration_s=duration_s, stop=self.stop_event,
                stats=self.producer_stats), "producer"),
            self._guard(lambda: self.processor.run(stop=self.stop_event), "processor"),
        ]
        for t in self._threads:
            t.start()

    @property
    def failed(self) -> BaseException | None:
        return self._errors[0] if self._errors else None

    def stop(self) -> None:
        self.stop_event.set()
        for t in self._threads:
            if t.ident is not None:  # Ctrl-C may come while start() is still starting them
                t.join(timeout=60)
        self.processor.close()
        self.bus.close()
        self.history.close()
        self.live.close()


def run_demo(settings: Settings, duration_s: float | None = None,
             serve: bool = True, stop: threading.Event | None = None) -> DemoResult:
    """Run until ``duration_s`` passes, ``stop`` is set, or Ctrl-C; then stop everything."""
    stop = stop or threading.Event()
    if serve:
        check_port_free(settings.host, settings.port)
        notebook = dashboards_dir() / "london_live.ipynb"
    t0 = time.monotonic()
    pipeline = EmbeddedPipeline(settings)
    server: VoilaServer | None = None
    try:
        pipeline.start()
        if serve:
            server = VoilaServer(notebook, settings.host, settings.port,
                                 {"SMARTMETER_DATA_DIR": str(Path(settings.data_dir).resolve()),
                                  "SMARTMETER_DASHBOARD_PAGE_TIMEOUT_S":
                                      str(settings.dashboard_page_timeout_s)},
                                 Path(settings.data_dir) / "logs" / "voila.log",
                                 cull_idle_s=settings.dashboard_cull_s)
            server.start()
            log.info("dashboard ready: %s  (Ctrl-C to stop)", server.url)
        end = None if duration_s is None else t0 + duration_s
        last = (time.monotonic(), 0)
        while not stop.is_set() and pipeline.failed is None:
            remaining = None if end is None else end - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            if stop.wait(min(10.0, remaining) if remaining is not None else 10.0):
                break
            now, n = time.monotonic(), pipeline.processor.stats.messages_in
            log.info("pipeline: %.0f readings/s processed, %d total, %d rejected",
                     (n - last[1]) / max(now - last[0], 1e-9), n,
                     sum(pipeline.processor.stats.rejected.values()))
            last = (now, n)
    except KeyboardInterrupt:
        log.info("Ctrl-C: stopping")
    finally:
        if server is not None:
            server.stop()
        pipeline.stop()
    if pipeline.failed is not None:
        raise pipeline.failed
    return DemoResult(pipeline.producer_stats, pipeline.processor.stats, time.monotonic() - t0)
