"""Benchmarks (``make bench``), never part of ``make test``.

- :mod:`.embedded`: readings/s through the embedded pipeline and peak RSS.
- :mod:`.measure`: the pure maths (percentiles, lag-bounded detection, the ramp search) and
  the machine's details.
- :mod:`.realstack`: the real stack (Kafka, Cassandra, Redis) under a ramp of fleet sizes.
- :mod:`.baselines`: the prototype's approach and raw Kafka throughput, on the same services.
- :mod:`.storage`: bytes on disk per stored reading in Cassandra and the write rate.
"""

from smartmeter_lib.bench.embedded import bench_embedded
from smartmeter_lib.bench.measure import machine

__all__ = ["bench_embedded", "machine"]
