"""The event clock of one processor: the time its watermark may advance to.

Pure bookkeeping over the partitions a processor holds, separate from the processor's edge
(:mod:`smartmeter_lib.stream.runner`) so that it is tested on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

#: an empty step counts as idle for at most its poll plus this
IDLE_STEP_SLACK_S = 0.3
#: a step's work after its poll ages the partitions' idle timers by at most this: a processor
#: blocked in a commit during a rebalance, or in a retried write, was not reading, so its
#: partitions were not silent, and must not be judged idle (which would move the watermark
#: past their unread backlog and make it late)
STALL_SLACK_S = 1.0


class PartitionClock:
    """The smallest, over the partitions held, of their largest event time.

    A partition just assigned (after a rebalance, with a backlog) holds the clock back until
    its first messages arrive; a partition silent for ``idle_partition_s`` does not hold it
    back any more. So a lagging or newly assigned partition is not made late.

    Silence is measured on the *poll clock* (:attr:`poll_s`): the seconds spent polling, plus
    at most :data:`STALL_SLACK_S` of each step's work. Time the processor spent blocked
    elsewhere (a commit held up by a rebalance, a retried write) does not count.
    """

    def __init__(self, idle_partition_s: float = 30.0) -> None:
        self.idle_partition_s = idle_partition_s
        self.poll_s = 0.0
        self._max: dict[int, tuple[int, float]] = {}  # partition -> (max event ms, poll time)
        self._since: dict[int, float] = {}  # partition -> poll time it was assigned

    @property
    def tracking(self) -> bool:
        """True once any partition has delivered a message."""
        return bool(self._max)

    def polled(self, waited_s: float, timeout_s: float) -> None:
        """Count a poll that took ``waited_s`` of a ``timeout_s`` wait."""
        self.poll_s += min(waited_s, timeout_s + IDLE_STEP_SLACK_S)

    def worked(self, seconds: float) -> None:
        """Count a step's work after its poll (bounded: see :data:`STALL_SLACK_S`)."""
        self.poll_s += min(seconds, STALL_SLACK_S)

    def advance(self, assigned: Iterable[int], parts: Any, ts_ms: Any) -> int | None:
        """The clock after messages from ``parts`` with event times ``ts_ms`` (same length;
        both may be empty), for the partitions now ``assigned``; None holds the watermark."""
        now = self.poll_s
        held = set(assigned)
        for p in list(self._since):
            if p not in held:
                self._since.pop(p)
                self._max.pop(p, None)
        for p in held:
            self._since.setdefault(p, now)
        if len(parts):
            for p in np.unique(parts):
                top = int(ts_ms[parts == p].max())
                old = self._max.get(int(p), (top, now))[0]
                self._max[int(p)] = (max(old, top), now)
        clocks = []
        for p in held or set(self._max):
            if p in self._max:
                t, seen = self._max[p]
                if now - seen < self.idle_partition_s:
                    clocks.append(t)
            elif now - self._since.get(p, now) < self.idle_partition_s:
                return None  # assigned, nothing from it yet: hold the watermark
        return min(clocks) if clocks else None
