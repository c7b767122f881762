"""The in-process bus: Kafka's semantics (keyed partitions, offsets, consumer groups, commits)
without a server. Thread-safe; consumers wait on a condition, never poll with sleeps.

Messages below every group's committed offset, or beyond ``retention`` per partition, are
dropped, so a long demo does not grow without bound.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from smartmeter_lib.adapters.base import Message
from smartmeter_lib.errors import BackendError


@dataclass
class _Partition:
    """An append-only log; ``log[head:]`` holds offsets ``base ..``."""

    base: int = 0  # offset of log[head]
    head: int = 0
    log: list[tuple[bytes | None, bytes]] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.base + len(self.log) - self.head

    def get(self, offset: int) -> tuple[bytes | None, bytes]:
        return self.log[self.head + offset - self.base]

    def drop_before(self, offset: int) -> None:
        n = min(max(0, offset - self.base), len(self.log) - self.head)
        self.head += n
        self.base += n
        if self.head > 4096 and self.head * 2 > len(self.log):
            del self.log[: self.head]
            self.head = 0


@dataclass
class _Group:
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    members: list[MemoryConsumer] = field(default_factory=list)


def partition_for(key: bytes | None, partitions: int, counter: int = 0) -> int:
    """The partition of a key (CRC32, stable across runs); round-robin for no key."""
    if key is None:
        return counter % partitions
    return zlib.crc32(key) % partitions


class MemoryBus:
    """An in-process implementation of :class:`smartmeter_lib.adapters.base.Bus`."""

    def __init__(self, retention: int = 2_000_000) -> None:
        self._topics: dict[str, list[_Partition]] = {}
        self._groups: dict[str, _Group] = {}
        self._cond = threading.Condition()
        self._retention = retention
        self._rr = 0
        self._closed = False

    # -- admin ---------------------------------------------------------------------------
    def create_topic(self, name: str, partitions: int = 6, replication: int = 1,
                     config: dict[str, str] | None = None) -> None:
        if partitions < 1:
            raise BackendError(f"topic {name}: partitions must be >= 1, got {partitions}")
        with self._cond:
            self._topics.setdefault(name, [_Partition() for _ in range(partitions)])

    def topics(self) -> dict[str, int]:
        with self._cond:
            return {t: len(p) for t, p in self._topics.items()}

    def end_offsets(self, topic: str) -> list[int]:
        with self._cond:
            return [p.end for p in self._parts(topic)]

    def _parts(self, topic: str) -> list[_Partition]:
        try:
            return self._topics[topic]
        except KeyError:
            raise BackendError(f"unknown topic {topic!r}; create it first") from None

    # -- produce -------------------------------------------------------------------------
    def produce(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.produce_batch(topic, [key], [value])

    def produce_batch(self, topic: str, keys: Sequence[bytes | None],
                      values: Sequence[bytes]) -> None:
        if self._closed:
            raise BackendError("memory bus is closed")
        with self._cond:
            parts = self._parts(topic)
            n = len(parts)
            for k, v in zip(keys, values, strict=True):
                p = parts[partition_for(k, n, self._rr)]
                self._rr += 1
                p.log.append((k, v))
            for p in parts:
                if p.end - p.base > self._retention:
                    p.drop_before(p.end - self._retention)
            self._cond.notify_all()

    def flush(self, timeout_s: float = 30.0) -> int:
        return 0

    # -- consume -------------------------------------------------------------------------
    def consumer(self, topics: Sequence[str], group_id: str,
                 from_beginning: bool = True) -> MemoryConsumer:
        with self._cond:
            for t in topics:
                self._parts(t)
            c = MemoryConsumer(self, list(topics), group_id, from_beginning)
            g = self._groups.setdefault(group_id, _Group())
            g.members.append(c)
            self._rebalance(g)
            return c

    def _rebalance(self, g: _Group) -> None:
        """Spread the partitions of the group's topics over its members, round robin."""
        for m in g.members:
            m._assigned = {}
        if not g.members:
            return
        tps = sorted({(t, i) for m in g.members for t in m.topics
                      for i in range(len(self._topics[t]))})
        for j, tp in enumerate(tps):
            m = g.members[j % len(g.members)]
            if tp[0] not in m.topics:
                m = next(x for x in g.members if tp[0] in x.topics)
            start = g.committed.get(tp)
            if start is None:
                part = self._topics[tp[0]][tp[1]]
                start = part.base if m.from_beginning else part.end
            m._assigned[tp] = start

    def _trim(self) -> None:
        for t, parts in self._topics.items():
            for i, p in enumerate(parts):
                marks = [g.committed.get((t, i), 0) for g in self._groups.values()
                         if any(t in m.topics for m in g.members)]
                if marks:
                    p.drop_before(min(marks))

    def close(self) -> None:
        """Close every consumer made here (they leave their groups), then the bus."""
        with self._cond:
            for g in self._groups.values():
                for c in list(g.members):
                    c.close()
            self._closed = True
            self._cond.notify_all()


class MemoryConsumer:
    """A consumer-group member of a :class:`MemoryBus`."""

    def __init__(self, bus: MemoryBus, topics: list[str], group_id: str,
                 from_beginning: bool) -> None:
        self.bus = bus
        self.topics = topics
        self.group_id = group_id
        self.from_beginning = from_beginning
        self._assigned: dict[tuple[str, int], int] = {}  # next offset to read
        self._closed = False

    def assignment(self) -> list[tuple[str, int]]:
        with self.bus._cond:
            return sorted(self._assigned)

    def _take(self, max_messages: int) -> list[Message]:
        """Fair across partitions: each gets an equal share of ``max_messages``."""
        out: list[Message] = []
        share = max(1, max_messages // max(1, len(self._assigned)))
        for (t, i), pos in self._assigned.items():
            part = self.bus._topics[t][i]
            pos = max(pos, part.base)
            stop = min(part.end, pos + share, pos + max_messages - len(out))
            for off in range(pos, stop):
                k, v = part.get(off)
                out.append(Message(t, i, off, k, v))
            self._assigned[(t, i)] = stop
            if len(out) >= max_messages:
                break
        return out

    def poll_batch(self, max_messages: int, timeout_s: float) -> list[Message]:
        if self._closed:
            raise BackendError(f"consumer of group {self.group_id!r} is closed")
        with self.bus._cond:
            out = self._take(max_messages)
            if not out and timeout_s > 0 and not self.bus._closed:
                self.bus._cond.wait(timeout_s)
                out = self._take(max_messages)
            return out

    def commit(self, offsets: dict[tuple[str, int], int] | None = None) -> None:
        with self.bus._cond:
            g = self.bus._groups[self.group_id]
            if offsets is None:
                g.committed.update(self._assigned)
            else:
                g.committed.update({tp: min(off, self._assigned[tp])
                                    for tp, off in offsets.items() if tp in self._assigned})
            self.bus._trim()

    def close(self) -> None:
        with self.bus._cond:
            if self._closed:
                return
            self._closed = True
            g = self.bus._groups[self.group_id]
            g.members.remove(self)
            self.bus._rebalance(g)
