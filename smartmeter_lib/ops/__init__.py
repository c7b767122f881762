"""Operations: the logic behind the papermill runbooks in ``runbooks/``.

Each module is small and has no side effects at import:

- :mod:`~smartmeter_lib.ops.context`: settings and service config of a runbook's parameters
- :mod:`~smartmeter_lib.ops.prereqs`: Java, Maven, redis-server, disk space, ports
- :mod:`~smartmeter_lib.ops.provision`: hosts reachable, topics and schema created and verified
- :mod:`~smartmeter_lib.ops.background`: processes in the background with pid files and logs
- :mod:`~smartmeter_lib.ops.pipeline`: producers over geographic bands and processors
- :mod:`~smartmeter_lib.ops.producer`: one band producer, as its own process
- :mod:`~smartmeter_lib.ops.offsets`: end and committed offsets, consumer lag, group members
- :mod:`~smartmeter_lib.ops.health`: lag, rates, live-store freshness, Cassandra writes, alerts
  (also ``smartmeter health``, :mod:`~smartmeter_lib.ops.commands`)
- :mod:`~smartmeter_lib.ops.loadtest`: ramp the homes until the processors fall behind
- :mod:`~smartmeter_lib.ops.replay`: real meter files into Kafka, Cassandra and Redis

Failures raise :class:`smartmeter_lib.errors.OpsError` (or its subclass
:class:`~smartmeter_lib.errors.UnhealthyError`) with what to do, so a runbook cell fails loudly
and ``papermill`` exits non-zero.
"""
