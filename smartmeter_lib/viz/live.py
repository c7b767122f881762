"""Live updating for dashboards: an asyncio updater that stops when the page goes away.

Voila shuts a page's kernel down on the browser's ``beforeunload``; when that never comes (a
crashed browser, a dropped network), the page heartbeat does the job. Each update sets a hidden
Bokeh ``ping`` model; a ``CustomJS`` callback in the browser echoes it into a second hidden
model, whose change comes back to the kernel. When no echo has arrived for
``page_timeout_s``, the updater stops, the kernel goes idle, and Voila's idle culler shuts it
down. (An ipywidgets ``Play`` cannot do this: it does not tick until a user clicks it.)

The page also beats once when its Bokeh document is ready (``document_ready``), and that first
beat is the *attach*: until then the widget sends no document patches, and at the attach it
sends the whole current document once (:class:`AttachedWidget`). Two reasons. A kernel Voila
preheats runs its updater for minutes before anyone opens the page, and the page starts from
the state the notebook had when it ran; only later changes would reach it. And jupyter_bokeh
sends each patch as three or more comm messages that the page reassembles in order: a page
whose view starts listening in the middle of one patch stays out of step for good and never
updates again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


#: before the page attaches, the widget sends a one-message note this often (kernel activity)
KEEPALIVE_S = 1.0


class PageHeartbeat:
    """Two hidden Bokeh models; the browser echoes every ``ping()`` back as a beat.

    Put :attr:`models` in the page's layout and call :meth:`ping` on every update.
    """

    def __init__(self) -> None:
        from bokeh.models import CustomJS, Div

        self.ping_model = Div(text="0", visible=False, name="heartbeat_ping")
        self.echo_model = Div(text="", visible=False, tags=[0], name="heartbeat_echo")
        self.echo_js = CustomJS(args={"echo": self.echo_model}, code="echo.tags = [Date.now()]")
        self.ping_model.js_on_change("text", self.echo_js)
        self.echo_model.on_change("tags", self._beat)
        self.models = [self.ping_model, self.echo_model]
        self.last_beat = time.monotonic()
        self.beats = 0
        #: called once, on the kernel loop, at the first beat (the page is attached)
        self.on_attach: list[Callable[[], None]] = []
        self._pings = 0

    def watch_document(self, doc: Any) -> None:
        """Beat when the page's copy of ``doc`` is ready (a ``document_ready`` JS callback):
        the first beat comes without any patch from the kernel."""
        doc.js_on_event("document_ready", self.echo_js)

    def ping(self) -> None:
        self._pings += 1
        self.ping_model.text = str(self._pings)

    def _beat(self, _attr: str, _old: Any, _new: Any) -> None:
        self.last_beat = time.monotonic()
        self.beats += 1
        if self.beats == 1:
            log.info("page attached: first heartbeat, after %d updates", self._pings)
            for fn in self.on_attach:
                fn()

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
                if hb is not None:
                    hb.ping()
            except Exception:  # keep the page alive; the log says why
                log.exception("dashboard update failed")
            await asyncio.sleep(self.interval_s)
        self.stopped_because = "max_updates"

    def start(self) -> None:
        log.info("dashboard updater started: every %.1f s; stops after %.0f s without the "
                 "page heartbeat", self.interval_s, self.page_timeout_s)
        self._task = asyncio.ensure_future(self.run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
            self.stopped_because = "stopped"


def attached_widget(layout: Any, heartbeat: PageHeartbeat) -> Any:
    """A jupyter_bokeh ``BokehModel`` of ``layout`` that holds its document patches until the
    page attaches (the heartbeat's first beat), then sends the whole document once and every
    patch after it (see the module docstring for why)."""
    from bokeh.document import Document
    from jupyter_bokeh.widgets import BokehModel

    class AttachedWidget(BokehModel):
        _last_keepalive = -1e18

        def _document_patched(self, event: Any) -> None:
            if heartbeat.beats:
                super()._document_patched(event)
                return
            # before the attach the page would miss or split a patch; but the kernel must
            # not look idle (Voila culls idle kernels, even one whose page is loading): a
            # one-message "held" note at most every KEEPALIVE_S, which the page ignores
            now = time.monotonic()
            if now - self._last_keepalive >= KEEPALIVE_S:
                self._last_keepalive = now
                self.send({"msg": "held"})

        def resync(self) -> None:
            """Send the whole current document; the page renders it afresh."""
            self.render_bundle = self._model_to_traits(self._model)

    if layout.document is None:
        Document().add_root(layout)
    heartbeat.watch_document(layout.document)
    widget = AttachedWidget(layout)
    heartbeat.on_attach.append(widget.resync)
    return widget
