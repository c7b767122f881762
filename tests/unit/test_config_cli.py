from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from smartmeter_lib.cli import main
from smartmeter_lib.config import build_settings
from smartmeter_lib.errors import ConfigError


def test_env_prefix_and_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTMETER_HOMES", "1234")
    s = build_settings()
    assert s.homes == 1234
    with pytest.raises(Exception, match="frozen"):
        s.homes = 5  # type: ignore[misc]
    assert s.with_overrides(homes=7).homes == 7 and s.homes == 1234


def test_secrets_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTMETER_REDIS_PASSWORD", "hunter2-secret")
    s = build_settings()
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.model_dump())
    assert s.redis_password is not None
    assert s.redis_password.get_secret_value() == "hunter2-secret"


def test_bad_settings_say_how_to_fix_them() -> None:
    with pytest.raises(ConfigError, match=r"homes: .*greater than or equal to 1.*SMARTMETER_HOMES"):
        build_settings(homes=0)
    with pytest.raises(ConfigError, match="log_level"):
        build_settings(log_level="LOUD")
    with pytest.raises(ConfigError, match="bus"):
        build_settings(bus="carrier-pigeon")


def test_help_explains_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in ("demo", "bench"):
        assert cmd in out
    for cmd, words in {"demo": ["--homes", "--port", "--duration", "Ctrl-C"],
                       "bench": ["readings/s", "--seconds"]}.items():
        assert main([cmd, "--help"]) == 0
        text = capsys.readouterr().out
        for w in words:
            assert w in text, f"{cmd} --help lacks {w}"


@pytest.mark.parametrize("argv", [["demo", "--homes", "0"], ["demo", "--homes", "many"],
                                  ["demo", "--duration", "-1"], ["bench", "--seconds", "0"]])
def test_bad_options_give_one_line_and_exit_2(argv: list[str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("smartmeter: error:") and "\n" not in err


def test_port_in_use_is_a_clear_error(tmp_path: object) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "smartmeter_lib.cli", "--data-dir",
                            str(tmp_path), "demo", "--homes", "10", "--port", str(port)],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == (f"smartmeter: error: port {port} on 127.0.0.1 is already in "
                                "use; choose another with --port (or SMARTMETER_PORT)")


def _all_commands() -> list[list[str]]:
    import click

    from smartmeter_lib.cli import _register, cli

    _register()
    out: list[list[str]] = []

    def walk(group: click.Group, prefix: list[str]) -> None:
        for name, cmd in group.commands.items():
            out.append([*prefix, name])
            if isinstance(cmd, click.Group):
                walk(cmd, [*prefix, name])

    walk(cli, [])
    return out


@pytest.mark.parametrize("argv", _all_commands(), ids=" ".join)
def test_every_command_and_subcommand_has_a_real_help(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Usage: smartmeter " + " ".join(argv))
    description = text.split("\n\n")[1].strip()
    assert len(description) >= 30, f"`smartmeter {' '.join(argv)} --help` says too little"
