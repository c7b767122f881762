"""Producer bands split a second's messages by meter, whatever rows the second holds."""

from __future__ import annotations

from collections import Counter

import numpy as np

from smartmeter_lib.config import build_settings
from smartmeter_lib.model import Kind
from smartmeter_lib.stack import Band, build_fleet

START = 1_764_288_000  # the "small" scenario's outage starts 5 minutes in


def test_bands_cover_every_message_once_during_an_outage() -> None:
    settings = build_settings(homes=500)
    fleets = [build_fleet(settings, START, "small") for _ in range(4)]  # one per process
    whole = fleets[0]
    bands = [Band(f, part, 3) for part, f in enumerate(fleets[1:])]
    assert sum(b.n for b in bands) == 500
    kinds_seen: Counter[int] = Counter()
    for ts in range(START + 300, START + 360):  # outage meters fall silent, some gasp
        full = whole.readings(ts)
        parts = [b.readings(ts) for b in bands]
        got = sorted(zip(np.concatenate([p.meter_id for p in parts]).tolist(),
                         np.concatenate([p.kind for p in parts]).tolist(), strict=True))
        assert got == sorted(zip(full.meter_id.tolist(), full.kind.tolist(), strict=True))
        kinds_seen.update(full.kind.tolist())
    assert kinds_seen[Kind.LAST_GASP] > 0, "the window should hold last-gasp messages"
