"""The load test's verdict: the largest sustained step before the first that fell behind."""

from __future__ import annotations

import math

from smartmeter_lib.config import build_settings
from smartmeter_lib.ops.loadtest import Step, analyse, load_settings


def _step(homes: int, rate_in: float, rate_out: float, lag_end: int) -> Step:
    return Step(homes, 20.0, rate_in, rate_out, lag_end, 0.0)


def test_the_ramp_stops_at_the_first_step_that_falls_behind() -> None:
    steps = [_step(250, 250, 240, 1000), _step(500, 500, 480, 2000),
             _step(1000, 1000, 400, 30_000)]
    r = analyse(steps, lag_limit_s=10.0)
    assert (r.max_sustained_rate, r.max_sustained_homes, r.saturated) == (500, 500, True)
    assert "maximum sustainable rate: 500 readings/s (500 homes)" in r.verdict()
    t = r.table()
    assert t["sustained"].tolist() == [True, True, False]
    assert t["lag_s"].tolist() == [4.0, 4.0, 30.0]


def test_committing_too_little_is_falling_behind_even_with_a_small_lag() -> None:
    s = _step(1000, 1000, 300, 5000)  # 5 s of lag, but only 30 % committed
    assert not s.sustained(10.0, 0.5) and s.sustained(10.0, 0.2)


def test_every_step_sustained_means_the_limit_is_higher() -> None:
    r = analyse([_step(100, 100, 100, 100), _step(200, 200, 190, 300)], 10.0)
    assert not r.saturated and r.max_sustained_rate == 200
    assert "the limit is higher" in r.verdict()


def test_no_step_sustained() -> None:
    r = analyse([_step(100, 0.0, 0.0, 50)], 10.0)
    assert math.isinf(r.steps[0].lag_s()) and r.max_sustained_rate is None
    assert "not even the first step" in r.verdict()


def test_the_load_test_has_its_own_topic_keyspace_and_prefix() -> None:
    s = build_settings(topic_readings="fake_iot", cassandra_keyspace="smartmeter",
                       redis_prefix="sm:")
    ls = load_settings(s, 4000)
    assert (ls.topic_readings, ls.cassandra_keyspace, ls.redis_prefix, ls.homes) == (
        "fake_iot_load", "smartmeter_load", "sm:load:", 4000)
    assert ls.topic_dlq == s.topic_dlq
