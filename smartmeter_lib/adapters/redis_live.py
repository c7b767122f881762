"""The Redis live store. Keys (all under the settings' prefix, ``sm:`` by default) are listed in
docs/data-contracts.md so that redis-cli users can read them. Writes are pipelined; state that
should expire has a TTL.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from smartmeter_lib.adapters.redis_meters import RedisMeterView
from smartmeter_lib.adapters.rows import default_writer, insight_json
from smartmeter_lib.config import Settings
from smartmeter_lib.errors import BackendError
from smartmeter_lib.model import Alert, AreaStats

log = logging.getLogger(__name__)
TOTALS_KEEP_MS = 2 * 3600 * 1000


def connection_kwargs(settings: Settings) -> dict[str, Any]:
    """Client options: the ACL user and password of the settings (a password alone
    authenticates the ``default`` user), timeouts, and a short retry of dropped
    connections (a restarted server is reconnected to; the writes after it rebuild the
    live state)."""
    password = (settings.redis_password.get_secret_value()
                if settings.redis_password is not None else None)
    return {"username": settings.redis_username, "password": password,
            "socket_timeout": 10, "socket_connect_timeout": 5,
            "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
            "retry_on_error": [redis.ConnectionError, redis.TimeoutError]}


class RedisLive:
    """An implementation of :class:`smartmeter_lib.adapters.base.LiveStore` on Redis."""

    def __init__(self, settings: Settings, prefix: str | None = None,
                 series_keep_s: int = 900, writer: str | None = None) -> None:
        """``writer``: this client's name in the per-meter view (default: host, pid and a
        random suffix); each processor writes the snapshot of the meters it holds under it."""
        self.p = settings.redis_prefix if prefix is None else prefix
        self.series_keep_s = series_keep_s
        self.where = _safe_url(settings.redis_url)
        self.r = redis.Redis.from_url(settings.redis_url, **connection_kwargs(settings))
        try:
            self.r.ping()
        except redis.AuthenticationError as err:
            who = f"user {settings.redis_username!r}" if settings.redis_username else "AUTH"
            raise BackendError(f"Redis at {self.where} refused {who}: {err} (check "
                               "SMARTMETER_REDIS_USERNAME and SMARTMETER_REDIS_PASSWORD)"
                               ) from err
        except redis.RedisError as err:
            raise BackendError(f"Redis at {self.where} does not answer: {err}") from err
        self.writer = writer or default_writer()
        self.meter_view = RedisMeterView(self.r, self.p, self.writer, series_keep_s)

    def k(self, *parts: object) -> str:
        return self.p + ":".join(str(x) for x in parts)

    # -- areas ---------------------------------------------------------------------------
    def put_area_stats(self, stats: AreaStats) -> None:
        kw_key, homes_key, ts_key = (self.k("area", stats.precision, "kw"),
                                     self.k("area", stats.precision, "homes"),
                                     self.k("area", stats.precision, "ts_ms"))
        cells = [str(c) for c in stats.cell]
        with self.r.pipeline(transaction=True) as pipe:
            pipe.delete(kw_key, homes_key)
            if cells:
                pipe.hset(kw_key, mapping=dict(zip(cells, np.round(stats.kw, 6).tolist(),
                                                    strict=True)))
                pipe.hset(homes_key, mapping=dict(zip(cells, stats.homes.tolist(),
                                                       strict=True)))
            pipe.set(ts_key, int(stats.ts_ms))
            pipe.execute()

    def get_area_stats(self, precision: int) -> AreaStats | None:
        with self.r.pipeline(transaction=True) as pipe:
            pipe.get(self.k("area", precision, "ts_ms"))
            pipe.hgetall(self.k("area", precision, "kw"))
            pipe.hgetall(self.k("area", precision, "homes"))
            ts, kw, homes = pipe.execute()
        if ts is None:
            return None
        cells = sorted(c.decode() for c in kw)
        return AreaStats(int(ts), precision, np.array(cells, dtype=object),
                         np.array([float(kw[c.encode()]) for c in cells]),
                         np.array([int(homes.get(c.encode(), 0)) for c in cells], np.int32))

    # -- London total --------------------------------------------------------------------
    def put_total(self, ts_ms: int, kw: float, homes: int) -> None:
        key = self.k("totals")
        with self.r.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(key, ts_ms, ts_ms)  # one point per timestamp
            pipe.zadd(key, {f"{int(ts_ms)}:{float(kw):.6f}:{int(homes)}": int(ts_ms)})
            pipe.zremrangebyscore(key, "-inf", f"({int(ts_ms) - TOTALS_KEEP_MS}")
            pipe.execute()

    def get_totals(self, since_ms: int) -> pd.DataFrame:
        rows = [m.decode().split(":") for m in
                self.r.zrangebyscore(self.k("totals"), int(since_ms), "+inf")]
        df = pd.DataFrame(rows, columns=["ts_ms", "kw", "homes"])
        return df.astype({"ts_ms": "int64", "kw": "float64", "homes": "int64"})

    # -- meters, their power series and the top consumers (one snapshot per writer) -------
    def put_meters(self, ts_ms: int, meter_id: Sequence[str] | Any, last_ts_ms: Any,
                   kw: Any, kwh_total: Any) -> None:
        self.meter_view.put_meters(ts_ms, meter_id, last_ts_ms, kw, kwh_total)

    def get_meter(self, meter_id: str) -> dict[str, Any] | None:
        return self.meter_view.get_meter(meter_id)

    def put_meter_power(self, ts_ms: int, kw: Any) -> None:
        self.meter_view.put_meter_power(ts_ms, kw)

    def get_meter_series(self, meter_id: str, since_ms: int) -> pd.DataFrame:
        return self.meter_view.get_meter_series(meter_id, since_ms)

    def put_top_consumers(self, ts_ms: int, meter_id: Sequence[str], kw: Any) -> None:
        self.meter_view.put_top_consumers(ts_ms, meter_id, kw)

    def get_top_consumers(self) -> pd.DataFrame:
        return self.meter_view.get_top_consumers()

    def put_alerts(self, alerts: Sequence[Alert]) -> None:
        key = self.k("alerts", "active")
        with self.r.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if alerts:
                pipe.hset(key, mapping={a.alert_id: json.dumps(a.to_dict()) for a in alerts})
            pipe.execute()

    def get_alerts(self) -> list[Alert]:
        got = self.r.hgetall(self.k("alerts", "active"))
        alerts = [Alert.from_dict(json.loads(v)) for v in got.values()]
        return sorted(alerts, key=lambda a: (a.start_ms, a.alert_id))

    def get_active_alerts(self) -> list[Alert]:
        return [a for a in self.get_alerts() if a.active]

    def put_insights(self, ts_ms: int, insights: pd.DataFrame) -> None:
        key = self.k("insights")
        recs = insights.to_dict("records")
        with self.r.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            for i in range(0, len(recs), 5000):
                pipe.hset(key, mapping={r["meter_id"]: insight_json(r)
                                        for r in recs[i:i + 5000]})
            pipe.set(self.k("insights", "ts_ms"), int(ts_ms))
            pipe.execute()

    def get_insights(self, meter_id: str) -> dict[str, Any] | None:
        with self.r.pipeline(transaction=False) as pipe:
            pipe.hget(self.k("insights"), meter_id)
            pipe.get(self.k("insights", "ts_ms"))
            body, ts = pipe.execute()
        return None if body is None else {**json.loads(body), "ts_ms": int(ts)}

    # -- KPIs ----------------------------------------------------------------------------
    def put_kpis(self, kpis: dict[str, float | int | str]) -> None:
        self.r.set(self.k("kpis"), json.dumps(kpis))

    def get_kpis(self) -> dict[str, Any]:
        raw = self.r.get(self.k("kpis"))
        return {} if raw is None else dict(json.loads(raw))

    def clear(self) -> None:
        keys = list(self.r.scan_iter(match=self.p + "*", count=1000))
        for i in range(0, len(keys), 1000):
            self.r.delete(*keys[i:i + 1000])

    def close(self) -> None:
        self.r.close()


def _backend_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Redis failures raised as :class:`BackendError` naming the operation and the server."""

    @functools.wraps(fn)
    def wrapper(self: RedisLive, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except redis.RedisError as err:
            raise BackendError(f"Redis {fn.__name__} at {self.where}: {err}") from err

    return wrapper


for _name, _fn in list(vars(RedisLive).items()):
    if _name.startswith(("put_", "get_")) or _name == "clear":
        setattr(RedisLive, _name, _backend_errors(_fn))


def _safe_url(url: str) -> str:
    """The URL without any password in it."""
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
