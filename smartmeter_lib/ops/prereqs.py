"""Prerequisites of the local real stack: Java 17+, Maven, redis-server, disk space, ports.

Each check gives a :class:`Check` (what, ok, detail, how to fix); :func:`require` raises one
:class:`~smartmeter_lib.errors.OpsError` that lists every failed check with its fix.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from smartmeter_lib.errors import OpsError
from smartmeter_lib.services.base import port_in_use, port_owner
from smartmeter_lib.services.config import ServicesConfig

APT = "apt-get install -y openjdk-17-jre-headless maven redis-server (or `make system-deps`)"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def java_major(version_text: str) -> int | None:
    """The major version in the output of ``java -version``.

    >>> java_major('openjdk version "17.0.15" 2025-04-15')
    17
    >>> java_major('java version "1.8.0_402"')
    8
    >>> java_major('no java here') is None
    True
    """
    m = re.search(r'version "(\d+)(?:\.(\d+))?', version_text)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def _run(cmd: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"error: {err}"
    return re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr).strip()  # no colours


def check_java(min_major: int = 17, which: Callable[[str], str | None] = shutil.which,
               run: Callable[[Sequence[str]], str] = _run) -> Check:
    """Java ``min_major`` or newer on PATH (Kafka and Cassandra run on it)."""
    fix = f"install Java {min_major}: {APT}; or put it on PATH / set JAVA_HOME"
    path = which("java")
    if not path:
        return Check("java", False, "no java on PATH", fix)
    text = run([path, "-version"])
    major = java_major(text)
    if major is None:
        return Check("java", False, f"{path}: cannot read the version from {text[:80]!r}", fix)
    if major < min_major:
        return Check("java", False, f"{path} is Java {major}, older than {min_major}", fix)
    return Check("java", True, f"Java {major} at {path}")


def check_tool(name: str, args: Sequence[str] = ("--version",),
               which: Callable[[str], str | None] = shutil.which,
               run: Callable[[Sequence[str]], str] = _run) -> Check:
    """``name`` is on PATH and answers ``name args`` (Maven resolves the jars once)."""
    path = which(name)
    if not path:
        return Check(name, False, f"no {name} on PATH", f"install it: {APT}")
    first = run([path, *args]).splitlines()
    return Check(name, True, f"{path}: {first[0] if first else 'found'}")


def check_disk(path: str | Path, min_free_gb: float) -> Check:
    """At least ``min_free_gb`` free where the services keep their data (the nearest existing
    parent of ``path``)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    free_gb = shutil.disk_usage(p).free / 1e9
    ok = free_gb >= min_free_gb
    return Check("disk", ok, f"{free_gb:.1f} GB free at {p} (need {min_free_gb:g} GB)",
                 "" if ok else f"free space under {p}, or set services_dir elsewhere")


def check_ports(config: ServicesConfig, running: Sequence[str] = (),
                in_use: Callable[[str, int], bool] = port_in_use,
                owner: Callable[[int], str] = port_owner) -> list[Check]:
    """Every port the local services need is free, or held by that very service already
    running under ``config.base_dir`` (``running``: names of our services that run)."""
    roles: dict[int, tuple[str, str]] = {}
    for i, p in enumerate(config.kafka_ports):
        roles[p] = ("kafka", f"broker {i + 1}")
    for i, p in enumerate(config.kafka_controller_ports):
        roles[p] = ("kafka", f"controller {i + 1}")
    roles[config.cassandra_port] = ("cassandra", "CQL")
    roles[config.cassandra_storage_port] = ("cassandra", "storage")
    roles[config.redis_port] = ("redis", "redis")
    checks = []
    for port, (service, role) in roles.items():
        name = f"port {port}"
        if not in_use(config.host, port):
            checks.append(Check(name, True, f"free ({service} {role})"))
        elif service in running:
            checks.append(Check(name, True, f"held by our running {service} ({role})"))
        else:
            who = owner(port) or "another process"
            checks.append(Check(name, False, f"{service} {role}: in use by {who}",
                                f"stop {who}, or shift every port with port_offset "
                                "(SMARTMETER_SERVICES__* settings)"))
    return checks


def check_all(config: ServicesConfig, min_free_gb: float = 2.0,
              running: Sequence[str] = ()) -> list[Check]:
    """Every prerequisite of ``smartmeter services up`` with ``config``."""
    return [check_java(), check_tool("mvn", ["-v"]), check_tool("redis-server", ["--version"]),
            check_disk(config.base_dir, min_free_gb), *check_ports(config, running)]


def table(checks: Sequence[Check]) -> pd.DataFrame:
    """The checks as a table (one row each)."""
    return pd.DataFrame([asdict(c) for c in checks], columns=["name", "ok", "detail", "fix"])


def require(checks: Sequence[Check]) -> None:
    """Raise an OpsError naming every failed check and how to fix it."""
    failed = [c for c in checks if not c.ok]
    if failed:
        raise OpsError("prerequisites missing: " + "; ".join(
            f"{c.name}: {c.detail} -> {c.fix}" for c in failed))


def running_services(config: ServicesConfig) -> list[str]:
    """Names of the local services under ``config.base_dir`` that run and answer."""
    from smartmeter_lib.services.manager import ServiceManager

    return [st.name for st in ServiceManager(config).status() if st.state == "running"]
