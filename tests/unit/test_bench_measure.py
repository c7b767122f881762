"""The benchmark's measuring logic: percentiles, lag-bounded detection, the ramp search,
latencies from polls, machine details (no services)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from smartmeter_lib.bench.measure import (
    cpu_model,
    lag_bounded,
    latencies_from_polls,
    machine,
    percentile,
    ramp_search,
)
from smartmeter_lib.bench.suite import ratios


def test_percentile_is_nearest_rank_an_observed_value() -> None:
    xs = list(range(1, 101))  # 1..100
    assert percentile(xs, 50) == 50
    assert percentile(xs, 99) == 99
    assert percentile(xs, 100) == 100
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([0.2, 5.0], 99) == 5.0  # two samples: p99 is the slower one
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile([1.0], 101)


def _window(lag: list[float], rate: float = 10_000.0, offered: float = 1.0) -> dict:
    t = np.arange(len(lag), dtype=float)
    produced = (t * rate * offered).astype(int)
    return {"t_s": t, "lag": np.asarray(lag, int), "produced": produced, "target_rate": rate,
            "bound": rate * 30}


def test_a_sawtooth_lag_that_does_not_grow_is_bounded() -> None:
    lag = [(k % 10) * 5_000 for k in range(60)]  # commits every 10 s, drained each time
    v = lag_bounded(**_window(lag))
    assert v.bounded, v.reason
    assert abs(v.slope_per_s) < 200


def test_a_lag_growing_steadily_is_not_bounded_even_when_small() -> None:
    lag = [k * 500 for k in range(60)]  # 5% of 10,000/s
    v = lag_bounded(**_window(lag))
    assert not v.bounded and "grew" in v.reason
    assert v.slope_per_s == pytest.approx(500)


def test_a_lag_over_the_bound_is_not_bounded() -> None:
    v = lag_bounded(**_window([400_000] * 60))
    assert not v.bounded and "over the bound" in v.reason


def test_producers_that_fall_short_of_the_load_fail_the_trial() -> None:
    v = lag_bounded(**_window([0] * 60, offered=0.8))
    assert not v.bounded and "producers reached" in v.reason
    assert v.produce_rate == pytest.approx(8_000, rel=0.01)


def test_too_few_samples_are_not_judged_sustainable() -> None:
    assert not lag_bounded([0.0], [0], [0], 10.0, 100.0).bounded


def test_ramp_doubles_then_bisects_within_the_step_budget() -> None:
    seen: list[int] = []

    def ok(n: int) -> bool:
        seen.append(n)
        return n <= 37_000

    best, trials = ramp_search(ok, 10_000, 100_000, max_steps=6, resolution=5_000)
    assert [n for n, _ in trials] == seen == [10_000, 20_000, 40_000, 30_000, 35_000]
    assert best == 35_000


def test_ramp_stops_at_the_limit_and_when_the_first_trial_fails() -> None:
    best, trials = ramp_search(lambda n: True, 25_000, 100_000, 10, 5_000)
    assert best == 100_000 and [n for n, _ in trials] == [25_000, 50_000, 100_000]
    best, trials = ramp_search(lambda n: n <= 4_000, 20_000, 100_000, 3, 5_000)
    assert best is None and [n for n, _ in trials] == [20_000, 10_000, 5_000]
    with pytest.raises(ValueError):
        ramp_search(lambda n: True, 0, 10, 3, 1)


def test_latencies_count_every_second_that_became_visible_at_a_poll() -> None:
    polls = [(10_000.0, 7_000), (10_500.0, 7_000), (11_200.0, 9_000), (12_100.0, 10_000)]
    # the first value was visible for an unknown time: no sample; then 8 and 9 s appear at
    # 11.2 s, 10 s at 12.1 s
    assert latencies_from_polls(polls) == pytest.approx([3.2, 2.2, 2.1])
    assert latencies_from_polls(polls, seen_before_ms=6_000) == pytest.approx(
        [3.0, 3.2, 2.2, 2.1])


def test_machine_details_name_the_cpu_and_the_load(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU @ 2.0GHz\n")
    assert cpu_model(info) == "Test CPU @ 2.0GHz"
    m = machine()
    assert m["cores"] >= 1 and len(m["load_average"]) == 3


def test_ratios_come_from_the_same_run_and_tolerate_missing_figures() -> None:
    out = {"ramp": {"max_sustainable_homes": 30_000},
           "prototype": {"readings_per_s": 1_500}, "raw_kafka": {"end_to_end_per_s": 150_000}}
    assert ratios(out) == {"stack_vs_prototype": 20.0, "raw_kafka_vs_stack": 5.0,
                           "raw_kafka_vs_prototype": 100.0}
    assert ratios({"prototype": {"readings_per_s": 1_500}})["stack_vs_prototype"] is None


def test_table_bytes_count_sstable_files_of_the_table_only(tmp_path: Path) -> None:
    from smartmeter_lib.bench.storage import bytes_summary, table_dir_bytes
    from smartmeter_lib.errors import SmartmeterError

    t = tmp_path / "ks1" / "reading_chunks-0123abcd"
    t.mkdir(parents=True)
    (t / "nb-1-big-Data.db").write_bytes(b"x" * 1000)
    (t / "nb-1-big-Index.db").write_bytes(b"x" * 100)
    (t / "nb-2-big-Data.db").write_bytes(b"x" * 500)
    (t / "snapshots").mkdir()  # a directory: not counted
    (tmp_path / "ks1" / "rollups-99").mkdir()
    (tmp_path / "ks1" / "rollups-99" / "nb-1-big-Data.db").write_bytes(b"x" * 7)
    assert table_dir_bytes(tmp_path, "ks1", "reading_chunks") == (1600, 1500, 2)
    s = bytes_summary(1600, 1500, 2, readings=1000)
    assert s["bytes_per_reading"] == 1.6 and s["data_bytes_per_reading"] == 1.5
    with pytest.raises(SmartmeterError, match="no keyspace directory"):
        table_dir_bytes(tmp_path, "missing", "reading_chunks")
