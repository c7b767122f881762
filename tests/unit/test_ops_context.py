"""Runbook settings: shifted ports, explicit hosts, the environment of child processes, and the
checks that fail before touching any server."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartmeter_lib.config import build_settings
from smartmeter_lib.errors import ConfigError, OpsError
from smartmeter_lib.ops.context import services_config, settings_env, stack_settings
from smartmeter_lib.ops.pipeline import producer_argv, start_pipeline
from smartmeter_lib.ops.provision import expected_tables
from smartmeter_lib.ops.replay import replay_into_stack


def test_ports_shift_and_bad_offsets_fail(tmp_path: Path) -> None:
    cfg = services_config(tmp_path, 2000)
    assert cfg.base_dir == tmp_path and cfg.cassandra_port == 11042 and cfg.redis_port == 8379
    with pytest.raises(ConfigError, match="multiple of 1000"):
        services_config(tmp_path, 1500)


def test_explicit_hosts_win_over_the_local_services(tmp_path: Path) -> None:
    s = stack_settings(services_config(tmp_path, 1000), kafka_bootstrap="k1:9092",
                       redis_url="redis://cache:6379/1", cassandra_keyspace="ks1")
    assert (s.kafka_bootstrap, s.redis_url, s.cassandra_port) == ("k1:9092",
                                                                  "redis://cache:6379/1", 10042)
    assert (s.bus, s.history, s.live, s.cassandra_keyspace) == ("kafka", "cassandra", "redis",
                                                                "ks1")


def test_a_child_process_gets_the_same_settings_from_its_environment(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    s = stack_settings(services_config(tmp_path, 1000), topic_readings="t_r", homes=123,
                       redis_password="s3cret")
    env = settings_env(s)
    assert env["SMARTMETER_REDIS_PASSWORD"] == "s3cret" and "s3cret" not in repr(s)
    assert Path(env["SMARTMETER_DATA_DIR"]).is_absolute()
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    child = build_settings()
    assert child.model_dump(exclude={"services", "data_dir"}) == s.model_dump(
        exclude={"services", "data_dir"})
    assert child.redis_password is not None
    assert child.redis_password.get_secret_value() == "s3cret"


def test_producers_cover_bands_and_bad_counts_fail_before_any_server(tmp_path: Path) -> None:
    argv = producer_argv(2, 3, 1_700_000_000, 60.0, 0.0)
    assert argv[-10:] == ["--part", "2", "--parts", "3", "--start", "1700000000",
                          "--duration", "60", "--speedup", "0"]
    s = stack_settings(services_config(tmp_path, 0), kafka_bootstrap="127.0.0.1:1")
    with pytest.raises(OpsError, match=r"workers 1\.\.6"):
        start_pipeline(s, tmp_path, producers=1, workers=7)
    with pytest.raises(OpsError, match="meter files not found"):
        replay_into_stack(s, [tmp_path / "missing.csv"])


def test_expected_tables() -> None:
    assert expected_tables("k") == ["meters", "reading_chunks", "rollups", "area_shard_rollups",
                                    "area_cells", "insights", "events", "checkpoints"]


def test_health_command_refuses_a_bad_interval(capsys: pytest.CaptureFixture[str]) -> None:
    from smartmeter_lib.cli import main

    assert main(["health", "--interval", "0"]) == 2
    assert "--interval must be positive" in capsys.readouterr().err
