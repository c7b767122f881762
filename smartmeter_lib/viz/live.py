"""Live updating for dashboards: an asyncio updater that stops when the page goes away.

Voila shuts a page's kernel down on the browser's ``beforeunload``; when that never comes (a
crashed browser, a dropped network), the page heartbeat does the job: a hidden ipywidgets
``Play`` ticks in the browser once a second and syncs its value back to the kernel. When no
tick has arrived for ``page_timeout_s``, the updater stops, the kernel goes idle, and Voila's
idle culler shuts it down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class PageHeartbeat:
    """A hidden widget whose ticks prove that a browser still shows the page."""

    def __init__(self, interval_ms: int = 1000) -> None:
        import ipywidgets as w

        self.widget = w.Play(value=0, min=0, max=10**9, step=1, interval=interval_ms,
                             playing=True, layout=w.Layout(display="none"))
        self.last_beat = time.monotonic()
        self.beats = 0
        self.widget.observe(self._beat, names="value")

    def _beat(self, _change: Any) -> None:
        self.last_beat = time.monotonic()
        self.beats += 1

    def silent_for(self) -> float:
        return time.monotonic() - self.last_beat


class Updater:
    """Calls ``read`` in an executor (never blocking the kernel loop) and ``apply`` on the
    loop every ``interval_s`` until stopped, or until the page heartbeat goes silent."""

    def __init__(self, read: Callable[[], Any], apply: Callable[[Any], None],
                 interval_s: float = 1.0, heartbeat: PageHeartbeat | None = None,
                 page_timeout_s: float = 30.0, attach_timeout_s: float = 180.0) -> None:
        self.read, self.apply = read, apply
        self.interval_s = interval_s
        self.heartbeat = heartbeat
        self.page_timeout_s = page_timeout_s
        self.attach_timeout_s = max(attach_timeout_s, page_timeout_s)
        self.updates = 0
        self.stopped_because: str | None = None
        self._task: asyncio.Task[None] | None = None

    async def run(self, max_updates: int | None = None) -> None:
        loop = asyncio.get_running_loop()
        while max_updates is None or self.updates < max_updates:
            hb = self.heartbeat
            # before the first beat the page may still be loading (8 MB of BokehJS on a busy
            # machine): give it attach_timeout_s; after that, page_timeout_s of silence
            limit = self.page_timeout_s if hb is not None and hb.beats else self.attach_timeout_s
            if hb is not None and hb.silent_for() > limit:
                self.stopped_because = f"no page heartbeat for {limit:.0f} s"
                log.info("dashboard updater stopped: %s", self.stopped_because)
                return
            try:
                snap = await loop.run_in_executor(None, self.read)
                self.apply(snap)
                self.updates += 1
            except Exception:  # keep the page alive; the log says why
                log.exception("dashboard update failed")
            await asyncio.sleep(self.interval_s)
        self.stopped_because = "max_updates"

    def start(self) -> None:
        self._task = asyncio.ensure_future(self.run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
            self.stopped_because = "stopped"
