"""Security on the real services: an ACL user on Redis, injection strings through the CLI into
Cassandra, and every service listening on 127.0.0.1 only."""

from __future__ import annotations

import uuid
from pathlib import Path

import psutil
import pytest
import redis

from smartmeter_lib.adapters.cassandra_history import CassandraHistory
from smartmeter_lib.adapters.redis_live import RedisLive
from smartmeter_lib.cli import main
from smartmeter_lib.errors import BackendError
from smartmeter_lib.services import ServiceManager, ServicesConfig
from smartmeter_lib.services.redis import RedisService
from smartmeter_lib.simulate.fleet import Fleet
from tests.contract.conftest import real_settings

INJECTIONS = ["x' OR '1'='1", "'; DROP KEYSPACE {ks}; --", "a'); INSERT INTO meters "
              "(meter_id) VALUES ('evil", "MAC1' ALLOW FILTERING; --"]


def test_redis_acl_user_with_a_password_is_used_and_limited_to_its_keys(
        services: ServicesConfig) -> None:
    admin = RedisService(services).client()
    u = "t" + uuid.uuid4().hex[:8]
    user, pw = f"{u}-app", f"pw-{uuid.uuid4().hex}"
    try:
        admin.acl_setuser(user, enabled=True, passwords=[f"+{pw}"], keys=[f"{u}:*"],
                          commands=["+@all", "-@dangerous"], reset=True)
        s = real_settings(services).with_overrides(redis_username=user, redis_password=pw,
                                                   redis_prefix=f"{u}:")
        live = RedisLive(s)
        live.put_kpis({"ts_ms": 1, "homes_reporting": 3})
        assert live.get_kpis()["homes_reporting"] == 3
        # the ACL holds: the user cannot touch keys outside its prefix
        other = redis.Redis(host=services.host, port=services.redis_port, username=user,
                            password=pw)
        with pytest.raises(redis.exceptions.NoPermissionError):
            other.set("sm:kpis", "x")
        other.close()
        live.clear()
        live.close()
        with pytest.raises(BackendError, match="refused user") as err:
            RedisLive(s.with_overrides(redis_password="wrong-pw"))
        assert "wrong-pw" not in str(err.value) and pw not in str(err.value)
    finally:
        admin.acl_deluser(user)
        admin.close()


def test_the_integration_redis_requires_its_password_when_one_is_set(
        services: ServicesConfig) -> None:
    if services.redis_password is None:
        pytest.skip("SMARTMETER_TEST_REDIS_PASSWORD is not set for this run")
    bare = redis.Redis(host=services.host, port=services.redis_port, socket_timeout=5)
    with pytest.raises(redis.exceptions.AuthenticationError):
        bare.get("sm:kpis")
    bare.close()


@pytest.mark.parametrize("meter", INJECTIONS)
def test_injection_strings_through_the_cli_reach_cassandra_as_plain_values(
        services: ServicesConfig, meter: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    u = "t" + uuid.uuid4().hex[:8]
    s = real_settings(services, cassandra_keyspace=u)
    h = CassandraHistory(s)
    fleet = Fleet(3, seed=1)
    h.register_meters(fleet.meters)
    evil = meter.format(ks=u)
    try:
        monkeypatch.setenv("SMARTMETER_HISTORY", "cassandra")
        monkeypatch.setenv("SMARTMETER_CASSANDRA_PORT", str(services.cassandra_port))
        monkeypatch.setenv("SMARTMETER_CASSANDRA_KEYSPACE", u)
        code = main(["--data-dir", str(tmp_path), "export", "--meter", evil, "--from",
                     "2026-11-01", "--to", "2026-11-02", "--output", str(tmp_path / "o.csv")])
        assert code == 2 and "is not in the history" in capsys.readouterr().err
        ids = sorted(h.meters().meter_id.tolist())
        assert ids == sorted(fleet.meters.meter_id.tolist())  # nothing dropped or inserted
        assert len(h.read_readings(evil, 0, 2**40)) == 0
    finally:
        h.drop_keyspace()
        h.close()


def test_every_service_listens_on_127_0_0_1_only(services: ServicesConfig) -> None:
    manager = ServiceManager(services)
    pids = [p for st in manager.status() for p in st.pids]
    assert pids
    listening = []
    for pid in pids:
        proc = psutil.Process(pid)
        for c in proc.net_connections(kind="inet"):
            if c.status == psutil.CONN_LISTEN:
                listening.append((pid, c.laddr.ip, c.laddr.port))
    assert {port for _, _, port in listening} >= set(services.all_ports())
    loopback = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}
    for pid, ip, port in listening:  # every socket, not only the configured ports (no JMX)
        assert ip in loopback, f"pid {pid} listens on {ip}:{port}"
