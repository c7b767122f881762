"""The dashboard updater: it applies snapshots, and stops when the page goes silent."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

from smartmeter_lib.viz.live import PageHeartbeat, Updater


def run_fresh(coro: Coroutine[Any, Any, Any]) -> None:
    """asyncio.run in a thread of its own (other tests may leave a loop running here)."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coro)
        except BaseException as err:
            errors.append(err)

    t = threading.Thread(target=target)
    t.start()
    t.join(timeout=30)
    assert not t.is_alive(), "the coroutine did not finish in 30 s"
    if errors:
        raise errors[0]


def test_updater_applies_snapshots_read_off_the_loop() -> None:
    seen: list[int] = []
    counter = iter(range(100))
    up = Updater(lambda: next(counter), seen.append, interval_s=0.01)
    run_fresh(up.run(max_updates=5))
    assert seen == [0, 1, 2, 3, 4] and up.stopped_because == "max_updates"


def test_updater_waits_for_the_page_to_attach_then_stops_when_it_goes_silent() -> None:
    hb = PageHeartbeat()
    up = Updater(lambda: 1, lambda _: None, interval_s=0.01, heartbeat=hb,
                 page_timeout_s=0.05, attach_timeout_s=10.0)

    async def scenario() -> None:
        task = asyncio.ensure_future(up.run())
        await asyncio.sleep(0.2)  # no beat yet, but within the attach time: still running
        assert not task.done() and up.updates > 3
        assert hb.ping_model.text == str(up.updates)  # every update pings the page
        hb.echo_model.tags = [123]  # the browser echoes once, then goes away
        await asyncio.wait_for(task, timeout=5)

    run_fresh(scenario())
    assert hb.beats == 1
    assert up.stopped_because == "no page heartbeat for 0 s"


def test_the_widget_holds_patches_until_the_page_attaches_then_sends_the_whole_document(
) -> None:
    from bokeh.core.json_encoder import serialize_json
    from bokeh.layouts import column
    from bokeh.models import Div

    from smartmeter_lib.viz.live import attached_widget

    hb = PageHeartbeat()
    kpis = Div(text="first", name="kpis")
    layout = column(kpis, *hb.models)
    widget = attached_widget(layout, hb)
    sent: list[Any] = []
    widget.send = lambda content, buffers=None: sent.append(content)
    # the page beats once its document is ready, with no patch from the kernel
    callbacks = layout.document.callbacks.js_event_callbacks["document_ready"]
    assert hb.echo_js in callbacks
    kpis.text = "changed before the page attached"
    hb.ping()
    # held: the page may not be listening yet, or only half of it; one single-message note
    # (which the page ignores) keeps the kernel from looking idle to Voila's culler
    assert sent == [{"msg": "held"}]
    hb.echo_model.tags = [1]  # the page's document is ready: the first beat
    assert "changed before the page attached" in serialize_json(widget.render_bundle)
    sent.clear()
    kpis.text = "after"
    assert sent and all(m["msg"] == "patch" for m in sent)  # live from now on
    assert any("after" in str(m.get("payload", "")) for m in sent)
