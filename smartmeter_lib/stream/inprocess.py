"""The processor inside the current process, on a memory bus: shared by the demo,
``simulate`` and ``replay`` on the embedded default."""

from __future__ import annotations

import logging
import threading
import time

from smartmeter_lib.adapters.memory_bus import MemoryBus
from smartmeter_lib.config import Settings
from smartmeter_lib.stream.runner import Processor

log = logging.getLogger(__name__)


def memory_bus(settings: Settings, partitions: int = 6) -> MemoryBus:
    """A memory bus with the readings, alert and dead-letter topics of the settings."""
    bus = MemoryBus()
    for t in (settings.topic_readings, settings.topic_alerts, settings.topic_dlq):
        bus.create_topic(t, partitions=partitions)
    return bus


class ProcessorThread:
    """Runs ``proc`` in a daemon thread. A failure is kept (raised by :meth:`drain`) and
    sets ``on_error``, so the producer feeding it stops too."""

    def __init__(self, proc: Processor, name: str,
                 on_error: threading.Event | None = None) -> None:
        self.proc = proc
        self.on_error = on_error
        self.errors: list[BaseException] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self.proc.run(stop=self._done)
        except BaseException as err:  # raised again by drain()
            log.exception("processor failed")
            self.errors.append(err)
            if self.on_error is not None:
                self.on_error.set()

    def start(self) -> ProcessorThread:
        self._thread.start()
        return self

    def drain(self, produced: int, timeout_s: float | None = None) -> None:
        """Wait until the processor has taken ``produced`` messages (or failed, or
        ``timeout_s`` passed), then let it close its windows, flush, commit and stop."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while (self._thread.is_alive() and not self.errors
               and self.proc.stats.messages_in < produced
               and (deadline is None or time.monotonic() < deadline)):
            self._done.wait(0.05)  # a tick between looks at the processor's count
        self._done.set()
        self._thread.join()
        self.proc.close()
        if self.errors:
            raise self.errors[0]
