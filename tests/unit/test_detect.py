"""The detectors on hand-made fleets: one test per event kind, plus partition skew."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from smartmeter_lib.detect import Detectors
from smartmeter_lib.model import Alert, AlertKind, Kind, MeterInfo, ReadingBatch
from smartmeter_lib.stream.windows import WindowedAggregator

T0 = 1_736_960_400_000  # 2025-01-15 17:00 UTC: dark in London
NOON = 1_736_942_400_000  # 2025-01-15 12:00 UTC


def fleet(cells: dict[str, int]) -> MeterInfo:
    """``count`` meters in each geohash-6 cell (home geohash = cell + 'x')."""
    ids, gh = [], []
    for cell, count in cells.items():
        for k in range(count):
            ids.append(f"{cell}-{k:02d}")
            gh.append(cell + "0")
    n = len(ids)
    return MeterInfo(np.array(ids, object), np.full(n, 51.5), np.full(n, -0.1),
                     np.array(gh, object))


def run(meters: MeterInfo, seconds: int, kwh: Callable[[int], np.ndarray],
        present: Callable[[int], np.ndarray] | None = None, start_ms: int = T0,
        extra: Callable[[int], ReadingBatch | None] | None = None) -> dict[str, Alert]:
    """Feed ``seconds`` of readings through the windows and detectors; the last state of
    every alert raised, by id."""
    agg = WindowedAggregator(meters, 2000, now_ms=lambda: 2**62)
    det = Detectors.for_meters(meters)
    alerts: dict[str, Alert] = {}
    for s in range(seconds):
        mask = np.ones(len(meters), bool) if present is None else present(s)
        b = ReadingBatch.readings(meters.meter_id[mask], start_ms + s * 1000, kwh(s)[mask])
        more = extra(s) if extra else None
        if more is not None:
            b = ReadingBatch.concat([b, more])
        res = agg.process(b)
        for a in det.step(res.events, res.accepted, res.rollups, agg.max_event_ms):
            alerts[a.alert_id] = a
    res = agg.flush()
    for a in det.step(res.events, res.accepted, res.rollups, agg.max_event_ms):
        alerts[a.alert_id] = a
    return alerts


ALL = np.ones(64, bool)


def window(mask: np.ndarray, lo: int, hi: int) -> Callable[[int], np.ndarray]:
    """Present unless in ``mask`` during [lo, hi)."""
    return lambda s: ~mask if lo <= s < hi else ALL[: len(mask)]


def steady(n: int, seed: int = 1) -> Callable[[int], np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.1, 0.4, n) / 3600

    def f(s: int) -> np.ndarray:
        return base * (1 + 0.05 * np.sin(s / 7 + np.arange(n)))
    return f


def of(alerts: dict[str, Alert], kind: AlertKind) -> list[Alert]:
    return [a for a in alerts.values() if a.kind == kind]


def test_area_outage_is_one_alert_with_start_meters_and_duration() -> None:
    m = fleet({"gcpuwp": 10, "gcpuwq": 10})
    off = np.zeros(20, bool)
    off[:8] = True  # 8 of the 10 homes of gcpuwp lose power at 60 s for 30 s

    alerts = run(m, 150, steady(20), present=window(off, 60, 90))
    (a,) = of(alerts, AlertKind.AREA_OUTAGE)
    assert a.area == "gcpuwp"
    assert sorted(a.meters) == sorted(m.meter_id[:8])
    assert a.start_ms == T0 + 60_000
    assert a.detected_ms is not None and a.detected_ms - a.start_ms <= 5_000
    assert a.end_ms == T0 + 90_000
    assert a.evidence["duration_s"] == 30
    assert of(alerts, AlertKind.COMMS_LOSS) == []


def test_lone_silent_meter_is_comms_loss_never_an_outage() -> None:
    m = fleet({"gcpuwp": 10})
    gone = np.arange(10) == 3
    alerts = run(m, 200, steady(10), present=window(gone, 50, 150))
    assert of(alerts, AlertKind.AREA_OUTAGE) == []
    (a,) = of(alerts, AlertKind.COMMS_LOSS)
    assert a.meters == ("gcpuwp-03",)
    assert a.start_ms == T0 + 50_000
    assert 30_000 <= (a.detected_ms or 0) - a.start_ms <= 32_000
    assert a.end_ms == T0 + 150_000


def test_two_silent_meters_of_a_big_cell_are_not_an_outage() -> None:
    m = fleet({"gcpuwp": 12})
    gone = np.isin(np.arange(12), [2, 7])
    alerts = run(m, 120, steady(12), present=window(gone, 40, 10**9))
    assert of(alerts, AlertKind.AREA_OUTAGE) == []
    assert len(of(alerts, AlertKind.COMMS_LOSS)) == 2


def test_last_gasp_counts_as_power_lost_and_restore_closes() -> None:
    """Meters that send LAST_GASP are off at once, even before their silence is long."""
    m = fleet({"gcpuwp": 6})
    ids = m.meter_id

    def extra(s: int) -> ReadingBatch | None:
        if s == 30:  # three meters gasp at 30 s while still 'reporting' this second
            return ReadingBatch(ids[:3], np.full(3, T0 + 30_000), np.zeros(3),
                                np.ones(3, np.uint16), np.full(3, Kind.LAST_GASP, np.uint8))
        return None

    down = np.arange(6) < 3
    alerts = run(m, 90, steady(6), present=window(down, 31, 60),
                 extra=extra)
    (a,) = of(alerts, AlertKind.AREA_OUTAGE)
    assert a.detected_ms is not None and a.detected_ms <= T0 + 31_000
    assert a.evidence["last_gasps"] == 3
    assert a.end_ms == T0 + 60_000
    assert of(alerts, AlertKind.COMMS_LOSS) == []


def test_a_partition_running_ahead_does_not_hide_a_blip() -> None:
    """Half the meters arrive 100 s ahead of the others (a backlog): a 20-s outage of the
    whole cell is still seen as one, judged at the slow half's clock."""
    m = fleet({"gcpuwp": 10})
    agg = WindowedAggregator(m, 2000, now_ms=lambda: 2**62)
    det = Detectors.for_meters(m)
    fast, slow = np.arange(10) < 5, np.arange(10) >= 5
    f = steady(10)
    alerts: dict[str, Alert] = {}

    def batch(s: int, which: np.ndarray) -> ReadingBatch:
        on = which & (not 60 <= s < 80)
        return ReadingBatch.readings(m.meter_id[on], T0 + s * 1000, f(s)[on])

    for s in range(200):  # the fast half runs at twice the speed of the slow half
        ahead = [batch(t, fast) for t in (2 * s, 2 * s + 1) if t < 200]
        b = ReadingBatch.concat([batch(s, slow), *ahead])
        res = agg.process(b, event_clock_ms=T0 + s * 1000)  # the slow partition's clock
        for a in det.step(res.events, res.accepted, res.rollups, T0 + s * 1000):
            alerts[a.alert_id] = a
    (a,) = of(alerts, AlertKind.AREA_OUTAGE)
    assert len(a.meters) == 10
    assert a.start_ms == T0 + 60_000 and a.end_ms == T0 + 80_000
    assert of(alerts, AlertKind.COMMS_LOSS) == []


def test_stuck_register_is_a_meter_fault() -> None:
    m = fleet({"gcpuwp": 10})
    f = steady(10)

    def kwh(s: int) -> np.ndarray:
        v = f(s)
        if s >= 120:
            v[4] = f(120)[4]
        return v

    alerts = run(m, 600, kwh)
    (a,) = of(alerts, AlertKind.METER_FAULT)
    assert a.meters == ("gcpuwp-04",) and a.evidence["rule"] == "stuck"
    assert of(alerts, AlertKind.SUSPECTED_THEFT) == []


@pytest.mark.parametrize(("start", "flagged"), [(T0, True), (NOON, False)])
def test_reversed_meter_at_night_is_theft_not_pv_at_noon(start: int, flagged: bool) -> None:
    m = fleet({"gcpuwp": 10})
    f = steady(10)

    def kwh(s: int) -> np.ndarray:
        v = f(s)
        v[2] = -v[2]
        return v

    alerts = run(m, 15 * 60, kwh, start_ms=start)
    thefts = of(alerts, AlertKind.SUSPECTED_THEFT)
    if flagged:
        (a,) = thefts
        assert a.meters == ("gcpuwp-02",) and a.evidence["rule"] == "reversed"
    else:
        assert thefts == []


def _minute_fleet(n: int, minutes: int, drop: dict[int, tuple[int, float]],
                  seed: int = 3) -> tuple[MeterInfo, list[Alert]]:
    """Minute-resolution feed of a fleet whose homes have a steady baseload plus random
    appliance use; ``drop`` maps a home to (minute, factor) of a bypass."""
    m = fleet({"gcpuwp": n // 2, "gcpuwr": n - n // 2})
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.08, 0.3, n)
    agg = WindowedAggregator(m, 2000, now_ms=lambda: 2**62)
    det = Detectors.for_meters(m)
    out: list[Alert] = []
    for k in range(minutes):
        kw = base * rng.uniform(0.9, 1.1, n) + rng.exponential(0.3, n) * (rng.random(n) < 0.5)
        for h, (at, factor) in drop.items():
            if k >= at:
                kw[h] *= factor
        secs = np.repeat(np.arange(60), n)  # one batch per minute: 60 readings a meter
        b = ReadingBatch.readings(np.tile(m.meter_id, 60), T0 + (k * 60 + secs) * 1000,
                                  np.tile(kw / 3600, 60) * rng.uniform(0.97, 1.03, 60 * n))
        res = agg.process(b)
        out += det.step(res.events, res.accepted, res.rollups, agg.max_event_ms)
    return m, out


def test_bypass_is_a_sustained_baseload_drop_with_evidence() -> None:
    m, out = _minute_fleet(30, 260, {5: (200, 0.3)})
    thefts = [a for a in out if a.kind == AlertKind.SUSPECTED_THEFT]
    assert {a.meters for a in thefts} == {(m.meter_id[5],)}
    a = thefts[0]
    assert a.evidence["rule"] == "bypass"
    assert a.evidence["metered_kwh"] < a.evidence["expected_kwh"]
    assert 0.5 <= a.score <= 0.9
    assert a.detected_ms is not None and a.detected_ms - (T0 + 200 * 60_000) <= 45 * 60_000


def test_spikes_raise_no_alert() -> None:
    m = fleet({"gcpuwp": 10})
    f = steady(10)

    def kwh(s: int) -> np.ndarray:
        v = f(s)
        if s % 97 == 0:
            v[1] = 60.0 / 3600
        return v

    assert run(m, 900, kwh) == {}
