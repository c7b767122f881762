"""The processor edge: bus → decode → windows → sinks (history, live store) → commit.

Offsets are committed only after the sinks hold the data: readings are buffered and written
to history every ``flush_interval_s``, and the commit follows that write. Bad messages go to
the dead-letter topic with the reason and never stop the loop.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from smartmeter_lib.adapters.base import Bus, HistoryStore, LiveStore, Message
from smartmeter_lib.codec import decode_batch, encode_batch
from smartmeter_lib.config import Settings
from smartmeter_lib.detect import Detectors, alert_rows
from smartmeter_lib.errors import SmartmeterError
from smartmeter_lib.model import Alert, Kind, MeterInfo, ReadingBatch
from smartmeter_lib.stream.checkpoint import drop_state, export_state, import_state
from smartmeter_lib.stream.clock import IDLE_STEP_SLACK_S, PartitionClock
from smartmeter_lib.stream.profiles import ProfileKeeper
from smartmeter_lib.stream.sinks import resilient
from smartmeter_lib.stream.validate import Limits, screen
from smartmeter_lib.stream.windows import LiveSecond, StepResult, WindowedAggregator

log = logging.getLogger(__name__)
TOP_N = 20  # top consumers kept in the live store
IDLE_BEFORE_FIRST_S = 30.0  # idle exit waits at least this long for the first message
FLAT_TARIFF = "flat_cap_2025q3"  # savings are against the price-cap flat tariff


def meter_events_frame(events: ReadingBatch) -> pd.DataFrame:
    """Last-gasp and power-restore messages as rows of the history's events table."""
    return pd.DataFrame({"ts_ms": events.ts_ms, "meter_id": events.meter_id,
                         "kind": [Kind(int(k)).name for k in events.kind],
                         "detail": "{}"})


@dataclass
class ProcessorStats:
    messages_in: int = 0
    readings_stored: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    rollups_written: int = 0
    live_seconds: int = 0
    commits: int = 0
    meter_events: int = 0
    insight_refreshes: int = 0
    alerts_raised: int = 0
    restored_meters: int = 0
    alert_updates: int = 0
    last_live_ts_ms: int | None = None

    def reject(self, reason: str, n: int = 1) -> None:
        head = reason.split(":")[0]
        self.rejected[head] = self.rejected.get(head, 0) + n


class Processor:
    """One member of the processor group."""

    def __init__(self, settings: Settings, bus: Bus, history: HistoryStore, live: LiveStore,
                 meters: MeterInfo | None = None, group_id: str = "smartmeter-processor",
                 flush_interval_s: float = 5.0, store_readings: bool = True) -> None:
        self.settings = settings
        self.bus = bus
        self.history, self.live = resilient(history, live, settings)  # retry / skip on failure
        self.meters = meters if meters is not None else history.meters()
        if len(self.meters) == 0:
            log.warning("processor: the meter registry is empty; every reading will be "
                        "refused as an unknown meter (register the fleet first)")
        self.agg = WindowedAggregator(self.meters, int(settings.allowed_lateness_s * 1000))
        self.agg.clock_from_caller = True  # the watermark waits for every partition held
        self.group_id = group_id
        self.flush_interval_s = flush_interval_s
        self.store_readings = store_readings
        self.stats = ProcessorStats()
        self._pending: list[ReadingBatch] = []
        self._last_flush = time.monotonic()
        self._last_meter_put = 0.0
        self.profiles = ProfileKeeper(self.meters)
        self.detectors = Detectors.for_meters(self.meters)
        self._tariffs: list[Any] | None = None
        self._insights_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="insights")
        self._insights_job: Future[None] | None = None
        self.clock = PartitionClock()  # the watermark's event clock
        self._seen_alerts: set[str] = set()
        self._partition_of = np.full(len(self.meters), -1, np.int64)  # learnt from messages
        self.agg.shard_of = self._partition_of  # area rollups are kept per partition
        self._held: set[int] = set()  # partitions whose state this processor holds
        self._consumer = bus.consumer([settings.topic_readings], group_id)
        self.limits = Limits.from_settings(settings)

    # -- loop ----------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None, duration_s: float | None = None,
            idle_exit_s: float | None = None) -> ProcessorStats:
        """Process until ``stop`` is set, ``duration_s`` passes, or nothing arrives for
        ``idle_exit_s``; then close all windows, flush and commit."""
        stop = stop or threading.Event()
        end = None if duration_s is None else time.monotonic() + duration_s
        poll_s = 0.2
        idle_s = 0.0  # time spent waiting on empty polls since the last message
        seen_any = False
        while not stop.is_set() and (end is None or time.monotonic() < end):
            t0 = time.monotonic()
            n = self.step(timeout_s=poll_s)
            if n:
                idle_s, seen_any = 0.0, True
            elif idle_exit_s is not None:
                # only the poll's wait counts as idle: a step that spent 30 s in a retried
                # history write (the database was down) saw no messages because it was not
                # polling, and the backlog that built up meanwhile is still to be read
                idle_s += min(time.monotonic() - t0, poll_s + IDLE_STEP_SLACK_S)
                # before the first message, allow time to join the group and get partitions
                limit = idle_exit_s if seen_any else max(idle_exit_s, IDLE_BEFORE_FIRST_S)
                if idle_s >= limit:
                    break
        self.finish()
        return self.stats

    def step(self, timeout_s: float = 0.2) -> int:
        t0 = time.monotonic()
        msgs = self._consumer.poll_batch(self.settings.batch_max, timeout_s)
        t1 = time.monotonic()
        self.clock.polled(t1 - t0, timeout_s)
        try:
            return self._step(msgs)
        finally:
            self.clock.worked(time.monotonic() - t1)

    def _step(self, msgs: list[Message]) -> int:
        lost = self._follow_assignment()
        if msgs and lost and any(m.partition not in self._held for m in msgs):
            # fetched before the partition was taken away in a rebalance: its new owner
            # reads them again from the committed offset, with the state stored there;
            # counting them here would write partial windows for meters no longer ours
            gone = len(msgs)
            msgs = [m for m in msgs if m.partition in self._held]
            log.info("processor %s: %d messages of revoked partitions left to their new owner",
                     self.group_id, gone - len(msgs))
        if msgs:
            self.stats.messages_in += len(msgs)
            keys, values = [m.key for m in msgs], [m.value for m in msgs]
            decoded = screen(decode_batch(keys, values), keys, values, self.limits)
            for r in decoded.rejects:
                self._dead_letter(msgs[r.index], r.reason)
            parts = np.fromiter((msgs[i].partition for i in decoded.index), np.int64,
                                len(decoded.index))
            clock = self._event_clock(parts, decoded.batch.ts_ms)
            idx = self.agg._index.get_indexer(pd.Index(decoded.batch.meter_id))
            self._partition_of[idx[idx >= 0]] = parts[idx >= 0]
            self._handle(self.agg.process(decoded.batch, clock))
        elif self.clock.tracking:
            self._handle(self.agg.process(ReadingBatch.empty(),
                                          self._event_clock(np.empty(0, np.int64), [])))
        if time.monotonic() - self._last_flush >= self.flush_interval_s:
            self._flush_and_commit()
        return len(msgs)

    def _follow_assignment(self) -> bool:
        """Restore the stored state of partitions newly assigned to this processor, and
        forget the meters of partitions it lost, before any of their messages count.
        True when it lost a partition (only then can a fetched batch hold stale messages)."""
        topic = self.settings.topic_readings
        assigned = {p for t, p in self._consumer.assignment() if t == topic}
        lost = self._held - assigned
        if lost:
            gone = np.flatnonzero(np.isin(self._partition_of, sorted(lost)))
            self._drop_pending(gone)
            drop_state(self.agg, self.detectors.outage, gone)
            self._partition_of[gone] = -1
            self.history.release_meters(self.meters.meter_id[gone].tolist())
            log.info("processor %s: partition(s) %s went to another member (%d meters)",
                     self.group_id, sorted(lost), len(gone))
        for p in sorted(assigned - self._held):
            blob = self.history.read_checkpoint(self.group_id, topic, p)
            if blob is not None:
                idx = import_state(self.agg, self.detectors.outage, blob,
                                   f"checkpoint of {topic}[{p}] for group {self.group_id}")
                self._partition_of[idx] = p
                # what this client cached for them (an earlier ownership) may be stale now
                self.history.release_meters(self.meters.meter_id[idx].tolist())
                self.stats.restored_meters += len(idx)
                log.info("processor %s: restored the state of %d meters of %s[%d]",
                         self.group_id, len(idx), topic, p)
        self._held = assigned
        return bool(lost)

    def _drop_pending(self, meters: npt.NDArray[np.intp]) -> None:
        """Forget the unwritten readings of ``meters`` (their partition was revoked): the new
        owner reads those messages again from the last committed offset, so writing them
        here too would race its writes of the same chunks."""
        if not self._pending or not len(meters):
            return
        mine = np.ones(len(self.meters), bool)
        mine[meters] = False
        kept = []
        for b in self._pending:
            idx = self.agg._index.get_indexer(pd.Index(b.meter_id))
            keep = (idx < 0) | mine[np.maximum(idx, 0)]
            kept.append(b if keep.all() else b.take(keep))
        self._pending = [b for b in kept if len(b)]

    def _checkpoint(self) -> None:
        """Store each held partition's state (just before the commit that matches it)."""
        if not self._held:
            return
        states = {p: export_state(self.agg, self.detectors.outage,
                                  np.flatnonzero(self._partition_of == p))
                  for p in sorted(self._held)}
        self.history.write_checkpoints(self.group_id, self.settings.topic_readings, states)

    def _event_clock(self, parts: Any, ts_ms: Any) -> int | None:
        """The watermark's clock over the partitions held (see :class:`PartitionClock`)."""
        topic = self.settings.topic_readings
        return self.clock.advance((p for t, p in self._consumer.assignment() if t == topic),
                                  parts, ts_ms)

    def finish(self) -> None:
        """Write everything and commit, then close every open window.

        The checkpoint that goes with the commit still holds the open windows: a processor
        that takes these partitions over (this one leaves, the others go on) restores them and
        completes them, rewriting the early rollups written here with their full counts."""
        self._flush_and_commit()
        self._handle(self.agg.flush(), final=True)  # closes windows: rollups, no new readings
        st = self.stats
        log.info("processor %s: %d messages in, %d readings stored, %d rollup rows, "
                 "rejected %s", self.group_id, st.messages_in, st.readings_stored,
                 st.rollups_written, st.rejected or "none")

    def close(self) -> None:
        self._insights_pool.shutdown(wait=True)
        self._consumer.close()

    # -- sinks ---------------------------------------------------------------------------
    def _handle(self, res: StepResult, final: bool = False) -> None:
        if len(res.accepted) and self.store_readings:
            self._pending.append(res.accepted)
        if len(res.late) and self.store_readings:
            # too late for the windows (dead-lettered below), but a valid reading: history
            # keeps it, so no reading is lost (the raw write is an idempotent upsert)
            self._pending.append(res.late)
        for name, rows in (("late", res.late), ("unknown meter", res.unknown),
                           ("timestamp in the future", res.future),
                           ("duplicate", res.dup_rows)):
            if len(rows):
                self._dead_letter_rows(rows, name)
        new_half_hours = 0
        for r in res.rollups:
            self.history.write_rollups(r)
            self.stats.rollups_written += len(r)
            new_half_hours += self.profiles.add(r)
        if new_half_hours:
            self._refresh_insights(wait=final)
        for ar in res.area_rollups:
            self.history.write_area_rollups(ar)
        if len(res.events):
            self.history.write_events(meter_events_frame(res.events))
            self.stats.meter_events += len(res.events)
        a = self.agg
        now = a.event_clock_ms if a.event_clock_ms is not None else a.max_event_ms
        changed = self.detectors.step(res.events, res.accepted, res.rollups, now)
        if changed:
            self._publish_alerts(changed)
        for s in res.seconds:
            self.live.put_total(s.ts_ms, s.total_kw, s.homes)
            self.stats.live_seconds += 1
        if res.seconds:
            self._publish_live(res.seconds[-1], force=final)

    def _publish_alerts(self, changed: list[Alert]) -> None:
        """Alerts that opened, changed or closed: to the alert topic (keyed by alert id),
        history (the events table, upserted) and the live store's board."""
        for a in changed:
            self.bus.produce(self.settings.topic_alerts, a.alert_id.encode(),
                             json.dumps(a.to_dict(), sort_keys=True).encode())
            if a.detected_ms is not None and a.active and a.alert_id not in self._seen_alerts:
                self._seen_alerts.add(a.alert_id)
                self.stats.alerts_raised += 1
                log.warning("alert %s %s area %s: %d meter(s) since %s", a.kind.value,
                            a.alert_id, a.area, len(a.meters),
                            pd.Timestamp(a.start_ms, unit="ms", tz="UTC").isoformat())
            elif not a.active:
                log.info("alert %s closed after %.0f s", a.alert_id,
                         ((a.end_ms or a.start_ms) - a.start_ms) / 1000)
        self.stats.alert_updates += len(changed)
        self.history.write_events(alert_rows(changed))
        self.live.put_alerts(self.detectors.board())

    def _refresh_insights(self, wait: bool = False) -> None:
        """Recompute every meter's insights and recommendation from the half-hourly
        profiles, in a background thread (one at a time), and write them to both stores."""
        if self._insights_job is not None and not self._insights_job.done():
            if not wait:
                return  # the previous refresh is still running; the next half-hour retries
            self._insights_job.result()
        keeper = self.profiles
        snapshot = ProfileKeeper.__new__(ProfileKeeper)
        snapshot.__dict__.update(keeper.__dict__, kwh=keeper.kwh.copy(),
                                 slot_start=keeper.slot_start.copy())
        self._insights_job = self._insights_pool.submit(self._write_insights, snapshot)
        if wait:
            self._insights_job.result()

    def _write_insights(self, keeper: ProfileKeeper) -> None:
        t0 = time.monotonic()
        if self._tariffs is None:
            try:
                from smartmeter_lib.insights.tariffs import load_catalogue

                self._tariffs = load_catalogue()
            except SmartmeterError as err:
                log.warning("no tariff recommendations: the catalogue did not load: %s", err)
                self._tariffs = []
        df = keeper.insights(self._tariffs, FLAT_TARIFF)
        ts = int(keeper.latest_ms or 0) + 1_800_000
        self.live.put_insights(ts, df)
        self.history.write_insights(ts, df)
        self.stats.insight_refreshes += 1
        log.info("insights for %d meters refreshed in %.1f s", len(df), time.monotonic() - t0)

    def _publish_live(self, last: LiveSecond, force: bool = False) -> None:
        for stats in last.areas.values():
            self.live.put_area_stats(stats)
        self.stats.last_live_ts_ms = last.ts_ms
        now = time.monotonic()
        if force or now - self._last_meter_put >= 1.0:
            # only the meters of the partitions held: other processors write theirs
            a, held = self.agg, np.flatnonzero(self._partition_of >= 0)
            kw = a.last_kw[held]
            self.live.put_meters(last.ts_ms, a.meters.meter_id[held], a.last_ts[held], kw,
                                 a.kwh_total[held])
            self.live.put_meter_power(last.ts_ms, kw)
            top = held[np.argsort(-kw, kind="stable")[:TOP_N]]
            self.live.put_top_consumers(last.ts_ms, a.meters.meter_id[top].tolist(),
                                        a.last_kw[top])
            self._last_meter_put = now
        self.live.put_kpis({
            "ts_ms": last.ts_ms, "homes_reporting": last.homes,
            "homes_total": len(self.meters), "total_mw": last.total_kw / 1000.0,
            "messages_in": self.stats.messages_in,
            "rejected": int(sum(self.stats.rejected.values())),
            **self.detectors.kpis(),
        })

    def _write_pending(self) -> None:
        if self._pending:
            batch = ReadingBatch.concat(self._pending)
            self.history.write_readings(batch)
            self.stats.readings_stored += len(batch)
            self._pending = []

    def _flush_and_commit(self) -> None:
        self._write_pending()
        self._checkpoint()
        self._consumer.commit()
        self.stats.commits += 1
        self._last_flush = time.monotonic()

    def _dead_letter(self, msg: Message, reason: str) -> None:
        self.stats.reject(reason)
        payload = {"reason": reason, "topic": msg.topic, "partition": msg.partition,
                   "offset": msg.offset,
                   "key": None if msg.key is None else msg.key.decode("utf-8", "replace"),
                   "value_hex": None if msg.value is None else msg.value[:4096].hex()}
        self.bus.produce(self.settings.topic_dlq, msg.key, json.dumps(payload).encode())

    def _dead_letter_rows(self, rows: ReadingBatch, reason: str) -> None:
        keys, values = encode_batch(rows)
        wm = self.agg.watermark_ms
        for k, v, ts in zip(keys, values, rows.ts_ms.tolist(), strict=True):
            why = reason
            if reason == "late" and wm is not None:
                why = f"late: {int(self.agg.closed_until_ms or 0) - ts} ms behind closed windows"
            self.stats.reject(why)
            payload = {"reason": why, "topic": self.settings.topic_readings, "key": k.decode(),
                       "value_hex": v.hex()}
            self.bus.produce(self.settings.topic_dlq, k, json.dumps(payload).encode())

