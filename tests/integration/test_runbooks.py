"""Every runbook in runbooks/ executed with papermill against the real stack, in order: start
services, topics, schema, pipeline, health check, load test, replay, teardown; and the
failures a runbook must report loudly (an unreachable host, an unhealthy pipeline).

The tests run in file order and share one set of names (topics, keyspace, Redis prefix, run
directory) unique to the module. The teardown runbook never stops the session's services
(``stop_services=False``): other integration tests use them. Executed notebooks go to
``test-output/runbooks/``.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import papermill as pm
import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from smartmeter_lib.adapters.cassandra_history import CassandraHistory
from smartmeter_lib.cli import main
from smartmeter_lib.config import Settings
from smartmeter_lib.ops.background import Background
from smartmeter_lib.ops.context import services_config, settings_env, stack_settings
from smartmeter_lib.ops.pipeline import stop_pipeline
from smartmeter_lib.ops.provision import drop_data
from smartmeter_lib.services import ServicesConfig
from tests.conftest import ROOT, SHARED_DATA

RUNBOOKS = ROOT / "runbooks"
SAMPLE = SHARED_DATA / "MAC000002_2013_kaggle_format.csv"


class Ctx:
    def __init__(self, services: ServicesConfig, out: Path, run_dir: Path) -> None:
        u = "rb" + uuid.uuid4().hex[:8]
        self.out, self.run_dir = out, run_dir
        self.conn = {"services_dir": str(services.base_dir),
                     "port_offset": services.kafka_ports[0] - 9092}
        self.names = {"topic_readings": f"{u}_iot", "topic_alerts": f"{u}_alerts",
                      "topic_dlq": f"{u}_dlq", "cassandra_keyspace": u, "redis_prefix": f"{u}:"}
        self.settings: Settings = stack_settings(
            services_config(services.base_dir, self.conn["port_offset"]), **self.names)

    def run(self, runbook: str, label: str = "", **params: Any) -> str:
        """Execute ``runbook`` with the connection (and names) parameters; its text output."""
        out = self.out / f"{runbook}{label}.ipynb"
        pm.execute_notebook(str(RUNBOOKS / f"{runbook}.ipynb"), str(out), kernel_name="python3",
                            cwd=str(RUNBOOKS), progress_bar=False,
                            parameters={**self.conn, **params})
        return _text(nbformat.read(str(out), as_version=4))


def _text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            parts.append(o.get("text", ""))
            parts += [str(v) for v in o.get("data", {}).values()]  # html, js, bokeh docs
    return "\n".join(parts)


@pytest.fixture(scope="module")
def ctx(services: ServicesConfig, test_output_dir: Path,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctx]:
    if services.redis_password is not None:  # the kernels read it from the environment
        os.environ["SMARTMETER_REDIS_PASSWORD"] = services.redis_password.get_secret_value()
    out = test_output_dir / "runbooks"
    out.mkdir(parents=True, exist_ok=True)
    c = Ctx(services, out, tmp_path_factory.mktemp("pipeline"))
    yield c
    stop_pipeline(c.run_dir)  # a safety net when a test failed half-way
    drop_data(c.settings)


def test_00_check_prerequisites(ctx: Ctx) -> None:
    text = ctx.run("00_check_prerequisites")
    assert "all prerequisites are met" in text
    assert "held by our running kafka (broker 1)" in text
    assert re.search(r"Java \d+ at ", text)


def test_01_start_services_is_a_noop_when_they_run_and_every_host_answers(ctx: Ctx) -> None:
    text = ctx.run("01_start_services")
    assert "3 brokers at" in text and "answers PING" in text
    assert f"python: {sys.executable}" in text  # the kernel is the project's interpreter


def test_01_unreachable_host_fails_with_a_clear_message(ctx: Ctx) -> None:
    with pytest.raises(pm.PapermillExecutionError) as err:
        ctx.run("01_start_services", "_unreachable", start_local=False,
                kafka_bootstrap="127.0.0.1:1")
    assert err.value.ename == "OpsError"
    assert "kafka (kafka_bootstrap=127.0.0.1:1) does not answer" in err.value.evalue
    assert "start local services (start_local=True)" in err.value.evalue


def test_02_create_topics_twice_gives_the_same_verified_topics(ctx: Ctx) -> None:
    for label in ("", "_again"):
        text = ctx.run("02_create_topics", label, replication=3, min_isr=2, **ctx.names)
        assert "3 topics verified" in text
    admin = AdminClient({"bootstrap.servers": ctx.settings.kafka_bootstrap})
    md = admin.list_topics(timeout=30)
    t = md.topics[ctx.names["topic_readings"]]
    assert len(t.partitions) == 6 and all(len(p.replicas) == 3 for p in t.partitions.values())
    assert ctx.names["topic_alerts"] in md.topics and ctx.names["topic_dlq"] in md.topics
    res = ConfigResource(ConfigResource.Type.TOPIC, ctx.names["topic_readings"])
    assert admin.describe_configs([res])[res].result(timeout=30)["min.insync.replicas"].value == "2"


def test_03_create_schema(ctx: Ctx) -> None:
    ctx.run("03_create_schema", replication=1,
            cassandra_keyspace=ctx.names["cassandra_keyspace"])
    h = CassandraHistory(ctx.settings)
    try:
        rows = h.session.execute("SELECT table_name FROM system_schema.tables WHERE "
                                 "keyspace_name=%s", (ctx.names["cassandra_keyspace"],))
        assert {"meters", "reading_chunks", "rollups", "events"} <= {r.table_name for r in rows}
    finally:
        h.close()


def test_04_start_pipeline_runs_producers_and_processors_in_the_background(ctx: Ctx) -> None:
    ctx.run("04_start_pipeline", homes=300, producers=2, workers=2, duration_s=600.0,
            group=f"{ctx.names['topic_readings']}-g", run_dir=str(ctx.run_dir), **ctx.names)
    bg = Background(ctx.run_dir)
    assert bg.running() == ["processor-0", "processor-1", "producer-0", "producer-1"]
    for name in bg.running():
        assert (ctx.run_dir / f"{name}.pid").exists() and (ctx.run_dir / f"{name}.log").exists()


def _health_cli(ctx: Ctx, monkeypatch: pytest.MonkeyPatch, interval: float) -> int:
    for k, v in settings_env(ctx.settings).items():
        monkeypatch.setenv(k, v)
    return main(["health", "--group", f"{ctx.names['topic_readings']}-g", "--interval",
                 str(interval)])


def test_05_health_check_of_the_running_pipeline(
        ctx: Ctx, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    text = ctx.run("05_health_check", group=f"{ctx.names['topic_readings']}-g", interval_s=10.0,
                   **ctx.names)
    assert "healthy:" in text and "consumer lag (s of input)" in text
    assert "data-root-id" in text and "consumer lag per partition" in text  # the plot
    capsys.readouterr()
    code = _health_cli(ctx, monkeypatch, 5.0)  # `smartmeter health` agrees
    out = capsys.readouterr()
    assert code == 0, f"smartmeter health said unhealthy:\n{out.out}\n{out.err}"
    assert "live store age (s)" in out.out


def test_06_load_test_small(ctx: Ctx) -> None:
    text = ctx.run("06_load_test", steps=[100, 300], step_s=12.0, workers=1,
                   run_dir=str(ctx.run_dir), **ctx.names)
    # the verdict depends on the machine (the unit tests check the logic): any of the three
    assert re.search(r"maximum sustainable rate: [\d,]+ readings/s|sustained every step, up "
                     r"to [\d,]+ readings/s|not even the first step was sustained", text)
    assert re.search(r"0\s+100\s+[\d.]+\s+[1-9]\d*\.\d+", text)  # step 1 sent readings
    md = AdminClient({"bootstrap.servers": ctx.settings.kafka_bootstrap}).list_topics(timeout=30)
    assert f"{ctx.names['topic_readings']}_load" not in md.topics  # cleaned up


@pytest.mark.skipif(not SAMPLE.is_file(), reason=f"no LCL sample at {SAMPLE}")
def test_07_replay_history_small(ctx: Ctx) -> None:
    text = ctx.run("07_replay_history", files=[str(SAMPLE)], start="2013-06-01",
                   end="2013-06-03", **ctx.names)
    assert "every replayed reading is in Cassandra" in text
    h = CassandraHistory(ctx.settings)
    try:
        got = h.read_readings("MAC000002", 1370044800000, 1370217600000)  # 06-01 .. 06-03
    finally:
        h.close()
    assert len(got) == 96


def test_09_teardown_stops_the_pipeline_but_not_the_shared_services(
        ctx: Ctx, services: ServicesConfig) -> None:
    text = ctx.run("09_teardown", run_dir=str(ctx.run_dir), stop_services=False, **ctx.names)
    assert Background(ctx.run_dir).running() == []
    assert "producer-0" in text and "processor-1" in text
    from smartmeter_lib.services.manager import ServiceManager

    assert all(s.state == "running" for s in ServiceManager(services).status())


def test_05_health_check_fails_when_the_pipeline_is_stopped(
        ctx: Ctx, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(pm.PapermillExecutionError) as err:
        ctx.run("05_health_check", "_stopped", group=f"{ctx.names['topic_readings']}-g",
                interval_s=5.0, **ctx.names)
    assert err.value.ename == "UnhealthyError"
    assert "no readings arrive" in err.value.evalue
    capsys.readouterr()
    assert _health_cli(ctx, monkeypatch, 3.0) == 1
    assert "unhealthy: readings in /s = 0.0" in capsys.readouterr().err


def test_09_teardown_again_drops_the_data(ctx: Ctx) -> None:
    ctx.run("09_teardown", "_drop", run_dir=str(ctx.run_dir), stop_services=False,
            drop_data=True, **ctx.names)
    md = AdminClient({"bootstrap.servers": ctx.settings.kafka_bootstrap}).list_topics(timeout=30)
    assert not any(t.startswith(ctx.names["topic_readings"]) for t in md.topics)
