"""Prerequisite checks of the runbooks: Java version, tools, disk, ports."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path

import pytest

from smartmeter_lib.errors import OpsError
from smartmeter_lib.ops import prereqs
from smartmeter_lib.ops.context import services_config


def _which(found: dict[str, str]):  # type: ignore[no-untyped-def]
    return lambda name: found.get(name)


def _says(text: str):  # type: ignore[no-untyped-def]
    def run(cmd: Sequence[str]) -> str:
        return text
    return run


@pytest.mark.parametrize(("text", "major"), [
    ('openjdk version "17.0.15" 2025-04-15', 17), ('openjdk version "21" 2023-09-19', 21),
    ('java version "1.8.0_402"', 8), ("command not found", None)])
def test_java_major(text: str, major: int | None) -> None:
    assert prereqs.java_major(text) == major


def test_java_missing_old_and_fine() -> None:
    missing = prereqs.check_java(which=_which({}), run=_says(""))
    assert not missing.ok and "no java on PATH" in missing.detail and "openjdk-17" in missing.fix
    old = prereqs.check_java(which=_which({"java": "/usr/bin/java"}),
                             run=_says('openjdk version "11.0.2"'))
    assert not old.ok and "Java 11, older than 17" in old.detail
    ok = prereqs.check_java(which=_which({"java": "/opt/java"}),
                            run=_says('openjdk version "17.0.1"'))
    assert ok.ok and ok.detail == "Java 17 at /opt/java"


def test_tool_missing_says_how_to_install() -> None:
    c = prereqs.check_tool("mvn", ["-v"], which=_which({}), run=_says(""))
    assert not c.ok and "apt-get install" in c.fix


def test_disk_check_against_the_real_free_space(tmp_path: Path) -> None:
    assert prereqs.check_disk(tmp_path / "not" / "yet", 0.0).ok  # nearest existing parent
    c = prereqs.check_disk(tmp_path, 1e9)
    assert not c.ok and "need 1e+09 GB" in c.detail and str(tmp_path) in c.fix


def test_ports_free_ours_or_taken_by_another_process(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        cfg = services_config(tmp_path, 0).model_copy(update={"redis_port": taken})
        checks = {c.name: c for c in prereqs.check_ports(cfg)}
        assert not checks[f"port {taken}"].ok
        assert "redis redis: in use by" in checks[f"port {taken}"].detail
        assert "port_offset" in checks[f"port {taken}"].fix
        ours = {c.name: c for c in prereqs.check_ports(cfg, running=["redis"])}
        assert ours[f"port {taken}"].ok and "our running redis" in ours[f"port {taken}"].detail
    assert len(checks) == len(cfg.all_ports())


def test_require_lists_every_failure_with_its_fix() -> None:
    checks = [prereqs.Check("java", False, "no java on PATH", "install Java 17"),
              prereqs.Check("disk", True, "fine"),
              prereqs.Check("port 9092", False, "kafka broker 1: in use by pid 7", "stop it")]
    with pytest.raises(OpsError) as err:
        prereqs.require(checks)
    assert "java: no java on PATH -> install Java 17" in str(err.value)
    assert "port 9092: kafka broker 1: in use by pid 7 -> stop it" in str(err.value)
    assert "disk" not in str(err.value)
    prereqs.require(checks[1:2])  # all fine: no error
    assert list(prereqs.table(checks).columns) == ["name", "ok", "detail", "fix"]
