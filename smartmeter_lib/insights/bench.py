"""Benchmark of the tariff engine (``smartmeter tariffs bench``), never part of ``make test``.

Times, for ``n_meters`` synthetic homes × ``days`` of half-hourly readings × the catalogue:
building the meters × half-hours matrix from the long readings frame, pricing every tariff
(:func:`~smartmeter_lib.insights.cost.cost_table`), and the recommendation with its bootstrap.
"""

from __future__ import annotations

import gc
import resource
import time
from typing import Any

from smartmeter_lib.bench import machine
from smartmeter_lib.insights.cost import cost_table
from smartmeter_lib.insights.halfhours import half_hour_matrix
from smartmeter_lib.insights.recommend import recommend
from smartmeter_lib.insights.synthetic import synthetic_readings
from smartmeter_lib.insights.tariffs import load_catalogue


def bench_tariffs(n_meters: int = 10_000, days: int = 365, *, start: str = "2025-01-01",
                  n_boot: int = 100, recommend_days: int = 56) -> dict[str, Any]:
    """Wall-clock seconds of each step, with sizes and the process's peak memory."""
    tariffs = load_catalogue()
    t0 = time.perf_counter()
    frame = synthetic_readings(n_meters, start=start, days=days, categorical_ids=True)
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    hh = half_hour_matrix(frame)
    t_matrix = time.perf_counter() - t0
    rows = len(frame)
    del frame
    gc.collect()
    t0 = time.perf_counter()
    costs = cost_table(hh, tariffs)
    t_cost = time.perf_counter() - t0
    t0 = time.perf_counter()
    costs_monthly = cost_table(hh, tariffs, by="month")
    t_cost_month = time.perf_counter() - t0
    history = hh.take_meters(slice(None))
    if recommend_days < days:
        cut = recommend_days * 48
        history = type(hh)(hh.meters, hh.start_ns, hh.kwh[:, :cut], hh.covered[:, :cut])
    t0 = time.perf_counter()
    rec = recommend(history, tariffs, n_boot=n_boot)
    t_rec = time.perf_counter() - t0
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    return {
        **machine(),
        "meters": n_meters, "days": days, "tariffs": len(tariffs),
        "readings": rows, "cost_rows": len(costs), "monthly_cost_rows": len(costs_monthly),
        "generate_s": round(t_gen, 2),
        "matrix_s": round(t_matrix, 2),
        "cost_s": round(t_cost, 2),
        "cost_total_s": round(t_matrix + t_cost, 2),
        "cost_by_month_s": round(t_cost_month, 2),
        "recommend_history_days": min(recommend_days, days),
        "recommend_bootstrap": n_boot,
        "recommend_s": round(t_rec, 2),
        "recommended_meters": int(rec.summary["recommended"].notna().sum()),
        "peak_rss_gib": round(peak_rss, 2),
    }

