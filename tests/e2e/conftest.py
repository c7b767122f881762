"""Browser fixtures: Debian chromium driven by Playwright (never `playwright install`)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import output_root

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    path = os.environ.get("SMARTMETER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Debian chromium is needed for the browser tests: `apt-get install -y "
                    "chromium` (make test does this), or set SMARTMETER_CHROMIUM")
    return path


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        yield b
        b.close()


#: the page's live Bokeh document: when the page attaches, the kernel sends the whole
#: document once and the page renders it as a new one (the first is cleared)
LIVE_DOC_JS = "Bokeh.documents[Bokeh.documents.length - 1]"
#: true once the page has attached to its kernel and renders the document the kernel sent
ATTACHED_JS = "(window.Bokeh !== undefined && Bokeh.documents.length > 1)"

#: reads the model state of named Bokeh models on the page (its live document)
BOKEH_STATE_JS = """() => {
  if (!window.Bokeh || Bokeh.documents.length === 0) return null;
  const out = {};
  const doc = Bokeh.documents[Bokeh.documents.length - 1];
  for (const m of doc._all_models.values()) {
    if (!m.name) continue;
    if (m.data !== undefined) {
      const d = {};
      for (const [k, v] of Object.entries(m.data)) {
        d[k] = Array.from(v).map(x => (typeof x === 'object' && x !== null) ? Array.from(x) : x);
      }
      out[m.name] = {type: m.type, data: d};
    } else if (m.text !== undefined) {
      out[m.name] = {type: m.type, text: m.text};
    } else {
      out[m.name] = {type: m.type};
    }
  }
  return out;
}"""


# ------------------------------------------------------------------ diagnostics on failure
# A live dashboard that stops changing in CI is hard to explain after the fact: record what
# each page's console said, and on a failed test save the page (screenshot, Bokeh state, the
# console) and add the tail of Voila's log (the kernels log there) to the report.
_PAGES: list[tuple[Any, str, list[str]]] = []


def watch_page(page: Any, label: str) -> list[str]:
    """Collect ``page``'s console messages and uncaught errors; returns the list."""
    lines: list[str] = []
    page.on("console", lambda m: lines.append(f"{m.type}: {m.text}"[:500]))
    page.on("pageerror", lambda e: lines.append(f"pageerror: {e}"[:500]))
    _PAGES.append((page, label, lines))
    return lines


def _diagnose(item: pytest.Item, out: Path) -> str:
    import json

    out.mkdir(parents=True, exist_ok=True)
    parts: list[str] = []
    for page, label, lines in _PAGES:
        if page.is_closed():
            continue
        try:
            page.screenshot(path=str(out / f"{label}.png"), full_page=True)
            state = json.dumps(page.evaluate(BOKEH_STATE_JS))
            (out / f"{label}.bokeh.json").write_text(state[:2_000_000])
        except Exception as err:  # a hung page: say so, keep going
            parts.append(f"{label}: could not capture the page: {err}")
        (out / f"{label}.console.txt").write_text("\n".join(lines))
        notable = [x for x in lines if not x.startswith(("debug:", "log:", "info:"))]
        parts.append(f"{label}: {len(lines)} console lines, the notable ones:\n  "
                     + "\n  ".join(notable[-20:] or ["(none)"]))
    stack = getattr(item, "funcargs", {}).get("stack")
    log_file = getattr(getattr(stack, "server", None), "log_file", None)
    if log_file is not None and Path(log_file).exists():
        keep = [x for x in Path(log_file).read_text(errors="replace").splitlines()
                if "Kernel is running over TCP" not in x]
        parts.append(f"voila log {log_file} (last 60 lines):\n  " + "\n  ".join(keep[-60:]))
    parts.append(f"saved under {out}")
    return "\n".join(parts)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if report.when == "setup":
        _PAGES.clear()
    root = output_root()
    if report.when == "call" and _PAGES:  # every page's console, for the record
        (root / "console").mkdir(parents=True, exist_ok=True)
        for _page, label, lines in _PAGES:
            (root / "console" / f"{label}.txt").write_text("\n".join(lines))
    if report.when == "call" and report.failed and _PAGES:
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in item.name)
        try:
            report.sections.append(("dashboard diagnostics",
                                    _diagnose(item, root / "failures" / name)))
        except Exception as err:  # diagnostics must never hide the failure itself
            report.sections.append(("dashboard diagnostics", f"failed: {err!r}"))
