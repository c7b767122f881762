"""``smartmeter bench-stack``: the real-stack part of ``make bench``, in one run.

Starts its own services (a dedicated base dir and port offset), then measures, in order: the
raw Kafka ceiling, the prototype's approach, the ramp of fleet sizes at 1 Hz (lag bounded for
the window, latency to Redis), and the storage cost of readings in Cassandra. Ratios are taken
between figures of this same run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from smartmeter_lib.bench.measure import load_average, machine, ramp_search
from smartmeter_lib.config import Settings
from smartmeter_lib.services import ServiceManager, ServicesConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SuiteOptions:
    base_dir: Path
    port_offset: int = 0
    producers: int = 3
    workers: int = 2
    start_homes: int = 5_000
    max_homes: int = 100_000
    max_trials: int = 4
    resolution: int = 2_500
    warmup_s: float = 20.0
    window_s: float = 60.0
    lag_bound_s: float = 30.0  #: lag allowed beyond one flush interval's worth
    flush_interval_s: float = 30.0
    lateness_s: float = 1.0
    prototype_readings: int = 10_000
    raw_kafka_messages: int = 300_000
    storage_homes: int = 10_000
    storage_minutes: int = 5
    keep_services: bool = False


def services_config(opts: SuiteOptions) -> ServicesConfig:
    d = ServicesConfig()
    o = opts.port_offset
    k, c = d.kafka_ports, d.kafka_controller_ports
    return ServicesConfig(
        base_dir=opts.base_dir, kafka_ports=(k[0] + o, k[1] + o, k[2] + o),
        kafka_controller_ports=(c[0] + o, c[1] + o, c[2] + o),
        cassandra_port=d.cassandra_port + o, cassandra_storage_port=d.cassandra_storage_port + o,
        redis_port=d.redis_port + o)


def stack_settings(base: Settings, cfg: ServicesConfig, opts: SuiteOptions) -> Settings:
    return base.with_overrides(
        kafka_bootstrap=cfg.kafka_bootstrap, cassandra_hosts=cfg.host,
        cassandra_port=cfg.cassandra_port, redis_url=cfg.redis_url,
        redis_password=cfg.redis_password, allowed_lateness_s=opts.lateness_s,
        flush_interval_s=opts.flush_interval_s, bus="kafka", history="cassandra",
        live="redis")


def run_suite(base: Settings, opts: SuiteOptions) -> dict[str, Any]:
    from smartmeter_lib.bench import baselines, storage
    from smartmeter_lib.bench.realstack import run_trial

    out: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                           "machine": machine(), "options": _jsonable(asdict(opts))}
    cfg = services_config(opts)
    manager = ServiceManager(cfg)
    t0 = time.monotonic()
    manager.up()
    out["services_up_s"] = round(time.monotonic() - t0, 1)
    s = stack_settings(base, cfg, opts)
    try:
        log.info("bench: raw Kafka ceiling, %d messages", opts.raw_kafka_messages)
        out["raw_kafka"] = baselines.raw_kafka(s, opts.raw_kafka_messages)
        from smartmeter_lib.bench.realstack import live_snapshot_cost

        log.info("bench: the live per-meter view, 100,000 meters, one processor's second")
        out["live_snapshot"] = live_snapshot_cost(s, 100_000)
        log.info("bench: the prototype's approach, %d readings", opts.prototype_readings)
        out["prototype"] = baselines.prototype(s, opts.prototype_readings)

        trials: list[dict[str, Any]] = []

        def sustainable(n: int) -> bool:
            log.info("bench: trial with %d homes at 1 Hz", n)
            t = run_trial(s, n, opts.producers, opts.workers, opts.warmup_s, opts.window_s,
                          opts.flush_interval_s + opts.lag_bound_s)
            d = asdict(t)
            d.pop("samples")
            d["lag_samples"] = [(round(a, 1), b, c) for a, b, c in t.samples]
            trials.append(d)
            return t.sustainable

        best, steps = ramp_search(sustainable, opts.start_homes, opts.max_homes,
                                  opts.max_trials, opts.resolution)
        out["ramp"] = {"max_sustainable_homes": best, "steps": steps, "trials": trials}

        log.info("bench: storage, %d homes x %d minutes", opts.storage_homes,
                 opts.storage_minutes)
        import uuid

        ks = "s" + uuid.uuid4().hex[:8]
        ss = s.with_overrides(cassandra_keyspace=ks)
        start_s = int(time.time()) // 86_400 * 86_400 - 86_400  # yesterday 00:00 UTC
        w = storage.write_fleet(ss, opts.storage_homes, opts.storage_minutes,
                                int(opts.flush_interval_s), start_s)
        manager.down(["cassandra"])  # SIGTERM: Cassandra drains, flushing every memtable
        sizes = storage.table_dir_bytes(cfg.service_dir("cassandra") / "data", ks,
                                        "reading_chunks")
        out["storage"] = {**w, **storage.bytes_summary(*sizes, w["readings"]),
                          "homes": opts.storage_homes, "minutes": opts.storage_minutes}
        manager.up(["cassandra"])
        from smartmeter_lib.adapters.cassandra_history import CassandraHistory

        h = CassandraHistory(ss)
        h.drop_keyspace()
        h.close()
    finally:
        out["load_average_end"] = load_average()
        if not opts.keep_services:
            manager.down()
    out["ratios"] = ratios(out)
    return out


def ratios(out: dict[str, Any]) -> dict[str, float | None]:
    """Ratios between figures of one run (None where a figure is missing)."""
    best = (out.get("ramp") or {}).get("max_sustainable_homes")
    proto = (out.get("prototype") or {}).get("readings_per_s")
    raw = (out.get("raw_kafka") or {}).get("end_to_end_per_s")
    return {
        "stack_vs_prototype": round(best / proto, 1) if best and proto else None,
        "raw_kafka_vs_stack": round(raw / best, 1) if best and raw else None,
        "raw_kafka_vs_prototype": round(raw / proto, 1) if raw and proto else None,
    }


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in d.items()}
