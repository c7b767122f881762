"""The processor's event clock over its partitions (pure: no bus, no stores)."""

from __future__ import annotations

import numpy as np

from smartmeter_lib.stream.clock import STALL_SLACK_S, PartitionClock

T = 1_700_000_000_000


def arr(*v: int) -> np.ndarray:
    return np.array(v, dtype=np.int64)


def test_the_clock_is_the_slowest_partition_and_a_silent_one_holds_it_back() -> None:
    c = PartitionClock(idle_partition_s=10)
    assert c.advance([0, 1], arr(0), arr(T + 5_000)) is None  # 1 has sent nothing yet
    assert c.advance([0, 1], arr(1), arr(T + 2_000)) == T + 2_000
    assert c.advance([0, 1], arr(0, 1), arr(T + 9_000, T + 3_000)) == T + 3_000


def test_a_partition_silent_for_idle_partition_s_of_polling_stops_holding_the_clock() -> None:
    c = PartitionClock(idle_partition_s=10)
    c.advance([0, 1], arr(0, 1), arr(T + 5_000, T + 1_000))
    for _ in range(60):  # 12 s of empty 0.2-s polls; partition 0 keeps sending
        c.polled(0.2, 0.2)
        clock = c.advance([0, 1], arr(0), arr(T + 6_000))
    assert clock == T + 6_000


def test_time_blocked_outside_the_poll_is_not_silence() -> None:
    c = PartitionClock(idle_partition_s=10)
    c.advance([0, 1], arr(0, 1), arr(T + 5_000, T + 1_000))
    c.worked(40.0)  # a commit held up 40 s by a rebalance
    assert c.poll_s == STALL_SLACK_S
    assert c.advance([0, 1], arr(0), arr(T + 45_000)) == T + 1_000  # 1 still holds it


def test_a_revoked_partition_is_forgotten_and_a_new_one_holds_until_it_sends() -> None:
    c = PartitionClock(idle_partition_s=10)
    c.advance([0, 1], arr(0, 1), arr(T + 5_000, T + 1_000))
    assert c.advance([0], arr(), arr()) == T + 5_000  # 1 went to another processor
    assert c.advance([0, 2], arr(0), arr(T + 6_000)) is None  # 2 arrived with a backlog
    assert c.advance([0, 2], arr(2), arr(T + 2_000)) == T + 2_000
    assert c.tracking
