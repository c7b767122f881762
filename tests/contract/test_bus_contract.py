"""The bus contract: every Bus implementation must pass these."""

from __future__ import annotations

import pytest

from smartmeter_lib.adapters.base import Bus, BusConsumer, Message

from .conftest import BUSES

pytestmark = pytest.mark.parametrize("bus", BUSES, indirect=True)


def drain(c: BusConsumer, want: int, timeout_s: float = 30.0) -> list[Message]:
    """Poll until ``want`` messages arrived (each poll waits on the bus, bounded)."""
    out: list[Message] = []
    polls = 0
    while len(out) < want and polls < int(timeout_s / 0.5):
        out += c.poll_batch(1000, 0.5)
        polls += 1
    return out


def test_create_topic_is_idempotent(bus: Bus, unique: str) -> None:
    bus.create_topic(unique, partitions=3)
    bus.create_topic(unique, partitions=3)
    bus.produce(unique, b"m1", b"v")
    bus.flush()
    c = bus.consumer([unique], unique + "g")
    assert [m.value for m in drain(c, 1)] == [b"v"]
    c.close()


def test_per_key_order_and_partitioning(bus: Bus, unique: str) -> None:
    bus.create_topic(unique, partitions=3)
    keys = [f"m{i % 7}".encode() for i in range(70)]
    values = [f"{i}".encode() for i in range(70)]
    bus.produce_batch(unique, keys, values)
    assert bus.flush() == 0
    c = bus.consumer([unique], unique + "g")
    msgs = drain(c, 70)
    assert len(msgs) == 70
    part_of: dict[bytes | None, set[int]] = {}
    for m in msgs:
        part_of.setdefault(m.key, set()).add(m.partition)
    assert all(len(p) == 1 for p in part_of.values()), "a key must stay on one partition"
    for k in set(keys):
        seq = [int(m.value or b"") for m in msgs if m.key == k]
        assert seq == sorted(seq), f"messages of key {k!r} out of order"
    c.close()


def test_uncommitted_messages_are_redelivered(bus: Bus, unique: str) -> None:
    bus.create_topic(unique, partitions=2)
    bus.produce_batch(unique, [b"a", b"b", b"c"], [b"1", b"2", b"3"])
    bus.flush()
    c1 = bus.consumer([unique], unique + "g")
    assert len(drain(c1, 3)) == 3
    c1.close()  # no commit
    c2 = bus.consumer([unique], unique + "g")
    assert sorted(m.value or b"" for m in drain(c2, 3)) == [b"1", b"2", b"3"]
    c2.commit()
    c2.close()
    bus.produce(unique, b"d", b"4")
    bus.flush()
    c3 = bus.consumer([unique], unique + "g")
    assert [m.value for m in drain(c3, 1)] == [b"4"]
    assert c3.poll_batch(10, 0.5) == []
    c3.close()


def test_groups_are_independent(bus: Bus, unique: str) -> None:
    bus.create_topic(unique, partitions=1)
    bus.produce_batch(unique, [b"k"] * 5, [b"x"] * 5)
    bus.flush()
    a = bus.consumer([unique], unique + "a")
    b = bus.consumer([unique], unique + "b")
    assert len(drain(a, 5)) == 5
    a.commit()
    assert len(drain(b, 5)) == 5
    a.close()
    b.close()


def test_offsets_increase_within_a_partition(bus: Bus, unique: str) -> None:
    bus.create_topic(unique, partitions=1)
    bus.produce_batch(unique, [b"k"] * 10, [bytes([i]) for i in range(10)])
    bus.flush()
    c = bus.consumer([unique], unique + "g")
    msgs = drain(c, 10)
    offsets = [m.offset for m in msgs]
    assert offsets == sorted(offsets) and len(set(offsets)) == 10
    assert [m.value for m in msgs] == [bytes([i]) for i in range(10)]
    c.close()


def test_poll_on_an_empty_topic_returns_nothing(bus: Bus, unique: str) -> None:
    bus.create_topic(unique, partitions=1)
    c = bus.consumer([unique], unique + "g")
    assert c.poll_batch(10, 0.2) == []
    c.close()


def test_closing_the_bus_closes_its_consumers(bus: Bus, unique: str) -> None:
    """A consumer left open would stay in its group (and, on Kafka, be left to the garbage
    collector, whose destructor may block while leaving the group)."""
    from smartmeter_lib.errors import BackendError

    bus.create_topic(unique, partitions=1)
    bus.produce(unique, b"k", b"v")
    bus.flush()
    c = bus.consumer([unique], unique + "g")
    assert [m.value for m in drain(c, 1)] == [b"v"]
    bus.close()
    with pytest.raises(BackendError, match="closed"):
        c.poll_batch(10, 0.1)
    c.close()  # closing again is harmless
