"""Kafka's and Cassandra's jars, resolved from Maven Central through the project's own poms.

Each pom (``poms/<kind>/pom.xml``) is resolved once with
``maven-dependency-plugin:copy-dependencies -DincludeScope=runtime`` into
``<jar_cache_dir>/<kind>-lib``; a marker file holding the pom's hash says the copy is complete,
so later starts reuse it and a changed pom (a version bump) is resolved again. Kafka and
Cassandra get separate lib dirs: their Jackson, SLF4J and logging versions conflict.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from smartmeter_lib.errors import ServiceError
from smartmeter_lib.services.base import PACKAGE_DIR

log = logging.getLogger(__name__)

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
KINDS = ("kafka", "cassandra")
MARKER = ".smartmeter-resolved"
NEEDS = "needs Java 17 and Maven (e.g. apt-get install -y openjdk-17-jre-headless maven)"

_LOCK = threading.Lock()


def java_executable() -> str:
    """The ``java`` of ``$JAVA_HOME``, else the one on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("java")
    if not found:
        raise ServiceError(f"no java found on PATH or in $JAVA_HOME: Kafka and Cassandra {NEEDS}")
    return found


def pom_text(kind: str) -> str:
    """The text of the project's pom for ``kind`` ("kafka" or "cassandra")."""
    if kind not in KINDS:
        raise ServiceError(f"no pom for {kind!r}; known: {', '.join(KINDS)}")
    return (PACKAGE_DIR / "poms" / kind / "pom.xml").read_text(encoding="utf-8")


def lib_dir(kind: str, cache_dir: Path) -> Path:
    """Where the jars of ``kind`` live (resolved or not)."""
    return cache_dir / f"{kind}-lib"


def is_resolved(kind: str, cache_dir: Path) -> bool:
    """True when ``lib_dir`` holds a complete copy for the current pom."""
    marker = lib_dir(kind, cache_dir) / MARKER
    try:
        return marker.read_text(encoding="utf-8").strip() == _digest(kind)
    except OSError:
        return False


def _digest(kind: str) -> str:
    return hashlib.sha256(pom_text(kind).encode("utf-8")).hexdigest()


@contextlib.contextmanager
def _cache_lock(cache_dir: Path) -> Iterator[None]:
    """Serialise resolutions across threads and processes (Maven's local repo is not safe)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _LOCK, open(cache_dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def resolve(kind: str, cache_dir: Path, timeout: float = 1800.0) -> Path:
    """Make sure the runtime jars of ``kind`` are in the cache; return their directory."""
    target = lib_dir(kind, cache_dir)
    if is_resolved(kind, cache_dir):
        return target
    with _cache_lock(cache_dir):
        if is_resolved(kind, cache_dir):
            return target
        mvn = shutil.which("mvn")
        if not mvn:
            raise ServiceError(f"no mvn on PATH: resolving the {kind} jars {NEEDS}")
        java_executable()
        work = cache_dir / f"{kind}-pom"
        work.mkdir(parents=True, exist_ok=True)
        (work / "pom.xml").write_text(pom_text(kind), encoding="utf-8")
        staging = cache_dir / f"{kind}-lib.partial"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            mvn,
            "-B",
            "--no-transfer-progress",
            "-f",
            str(work / "pom.xml"),
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ]
        log.info("resolving the %s jars from Maven Central into %s", kind, target)
        t0 = time.monotonic()
        try:
            proc = subprocess.run(
                cmd, cwd=work, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise ServiceError(f"resolving the {kind} jars took over {timeout:.0f} s") from exc
        if proc.returncode != 0 or not any(staging.glob("*.jar")):
            output = (proc.stdout + proc.stderr).strip().splitlines()
            raise ServiceError(
                f"Maven could not resolve the {kind} jars (exit {proc.returncode}); "
                f"this {NEEDS} and access to Maven Central. Last lines:\n" + "\n".join(output[-25:])
            )
        (staging / MARKER).write_text(_digest(kind) + "\n", encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        log.info(
            "resolved %d %s jars in %.1f s",
            len(list(target.glob("*.jar"))),
            kind,
            time.monotonic() - t0,
        )
    return target


def find_jar(lib: Path, artifact: str) -> Path:
    """The jar ``<artifact>-<version>.jar`` in ``lib``."""
    pattern = re.compile(rf"^{re.escape(artifact)}-(\d[^/]*)\.jar$")
    matches = sorted(p for p in lib.glob("*.jar") if pattern.match(p.name))
    if not matches:
        raise ServiceError(f"no {artifact} jar in {lib}; delete that directory to re-resolve")
    return matches[-1]


def jar_version(lib: Path, artifact: str) -> str:
    """The version of ``artifact`` in ``lib``, read from its file name."""
    jar = find_jar(lib, artifact)
    return jar.name[len(artifact) + 1 : -len(".jar")]
