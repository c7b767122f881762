"""Browser fixtures: Debian chromium driven by Playwright (never `playwright install`)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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


#: reads the model state of named Bokeh models on the page
BOKEH_STATE_JS = """() => {
  if (!window.Bokeh || Bokeh.documents.length === 0) return null;
  const out = {};
  for (const doc of Bokeh.documents) {
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
  }
  return out;
}"""
