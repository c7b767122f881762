"""Security without services: prepared CQL only, injection strings through the CLI, SASL/TLS
and Redis ACL settings passed through, loopback by default, secrets never shown."""

from __future__ import annotations

import ast
import json
import logging
import re
from pathlib import Path

import pytest
from pydantic import SecretStr

from smartmeter_lib import adapters
from smartmeter_lib.adapters.kafka_bus import client_config, redacted
from smartmeter_lib.adapters.redis_live import RedisLive, _safe_url, connection_kwargs
from smartmeter_lib.cli import main
from smartmeter_lib.config import build_settings
from smartmeter_lib.errors import BackendError, ConfigError
from smartmeter_lib.services import ServicesConfig
from smartmeter_lib.services.cassandra import CassandraService
from smartmeter_lib.services.kafka import KafkaService
from smartmeter_lib.services.redis import RedisService
from smartmeter_lib.viz.serve import VoilaServer

ROOT = Path(__file__).resolve().parents[2]
CASSANDRA = Path(adapters.__file__).parent / "cassandra_history.py"
SECRETS = {"SMARTMETER_REDIS_PASSWORD": "redis-Pw-9f3a1c", "SMARTMETER_CASSANDRA_PASSWORD":
           "cass-Pw-77be02", "SMARTMETER_KAFKA_SASL_PASSWORD": "kafka-Pw-5d1e90"}
INJECTIONS = ["x' OR '1'='1", "'; DROP KEYSPACE smartmeter; --", "MAC000002\" ALLOW FILTERING",
              "a'); INSERT INTO meters (meter_id) VALUES ('evil", "\\x00\n'", "${jndi:ldap://x}"]
CQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|TRUNCATE)\b")


# -- CQL ---------------------------------------------------------------------------------
def _cql_strings(tree: ast.AST) -> list[ast.JoinedStr]:
    def text(n: ast.JoinedStr) -> str:
        return "".join(v.value for v in n.values
                       if isinstance(v, ast.Constant) and isinstance(v.value, str))

    return [n for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) and CQL_WORDS.search(text(n))]


def test_every_cql_statement_is_prepared_and_only_identifiers_are_interpolated() -> None:
    tree = ast.parse(CASSANDRA.read_text())
    # the only values built into CQL text are the keyspace (validated: letters, digits, _)
    # and an int() replication factor; everything else is a bound ? parameter
    for s in _cql_strings(tree):
        for v in s.values:
            if isinstance(v, ast.FormattedValue):
                assert ast.unparse(v.value) in {"ks", "self.keyspace", "int(replication)"}, (
                    f"line {s.lineno}: CQL built from {ast.unparse(v.value)!r}")
    ddl_only = {"init_schema", "drop_keyspace"}
    for fn in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
        for call in [c for c in ast.walk(fn) if isinstance(c, ast.Call)]:
            name = ast.unparse(call.func)
            if name.endswith("session.execute"):
                arg = call.args[0]
                prepared = isinstance(arg, ast.Subscript) and ast.unparse(arg.value) == "self._ps"
                assert prepared or fn.name in ddl_only, (
                    f"{fn.name} line {call.lineno}: session.execute of {ast.unparse(arg)!r}")
            if name in ("execute_concurrent_with_args",):
                assert ast.unparse(call.args[1]).startswith("self._ps["), call.lineno
            if name == "current.add":
                assert ast.unparse(call.args[0]) == "ps", call.lineno
    text = CASSANDRA.read_text()
    assert "SimpleStatement" not in text and ".format(" not in text and "%s" not in text


def test_the_keyspace_cannot_carry_cql() -> None:
    for bad in ("sm; DROP KEYSPACE x", "a b", "1abc", "x" * 49, "ks'--"):
        with pytest.raises(ConfigError, match="cassandra_keyspace"):
            build_settings(cassandra_keyspace=bad)


@pytest.mark.parametrize("meter", INJECTIONS)
def test_injection_strings_through_the_cli_are_just_unknown_meters(
        meter: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from smartmeter_lib.adapters.embedded_history import EmbeddedHistory
    from smartmeter_lib.simulate.fleet import Fleet

    h = EmbeddedHistory(tmp_path / "history")
    h.register_meters(Fleet(3, seed=1).meters)
    h.close()
    code = main(["--data-dir", str(tmp_path), "export", "--meter", meter, "--from",
                 "2026-11-01", "--to", "2026-11-02", "--output", str(tmp_path / "o.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "is not in the history" in err
    h = EmbeddedHistory(tmp_path / "history")
    assert len(h.meters()) == 3  # nothing was dropped or inserted
    h.close()


# -- Kafka SASL / TLS --------------------------------------------------------------------
def test_sasl_ssl_settings_reach_the_confluent_client_config(tmp_path: Path) -> None:
    pem = {n: tmp_path / f"{n}.pem" for n in ("ca", "cert", "key")}
    for p in pem.values():
        p.write_text("-----BEGIN CERTIFICATE-----\n")
    s = build_settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
                       kafka_sasl_username="meter-reader", kafka_sasl_password="s3cr3t-sasl",
                       kafka_ssl_ca_location=pem["ca"], kafka_ssl_certificate_location=pem["cert"],
                       kafka_ssl_key_location=pem["key"], kafka_ssl_key_password="k3y-pw",
                       kafka_bootstrap="broker.example:9094")
    conf = client_config(s)
    assert conf == {
        "bootstrap.servers": "broker.example:9094", "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "meter-reader",
        "sasl.password": "s3cr3t-sasl", "ssl.ca.location": str(pem["ca"]),
        "ssl.certificate.location": str(pem["cert"]), "ssl.key.location": str(pem["key"]),
        "ssl.key.password": "k3y-pw", "ssl.endpoint.identification.algorithm": "https"}
    shown = json.dumps(redacted(conf))
    assert "s3cr3t-sasl" not in shown and "k3y-pw" not in shown
    assert "s3cr3t-sasl" not in repr(s) and "s3cr3t-sasl" not in str(s.model_dump())


def test_plaintext_by_default_and_ssl_keys_only_with_ssl() -> None:
    conf = client_config(build_settings())
    assert conf["security.protocol"] == "PLAINTEXT"
    assert not any(k.startswith(("sasl.", "ssl.")) for k in conf)


@pytest.mark.parametrize(("overrides", "needle"), [
    ({"kafka_security_protocol": "SASL_SSL"}, "SMARTMETER_KAFKA_SASL_PASSWORD"),
    ({"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": "PLAIN",
      "kafka_sasl_username": "u"}, "SMARTMETER_KAFKA_SASL_PASSWORD"),
    ({"kafka_sasl_username": "u", "kafka_sasl_password": "hunter2"},
     "SMARTMETER_KAFKA_SECURITY_PROTOCOL"),
    ({"kafka_security_protocol": "SSL", "kafka_ssl_ca_location": "/nonexistent/ca.pem"},
     "/nonexistent/ca.pem"),
    ({"kafka_security_protocol": "TLS"}, "kafka_security_protocol"),
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "GSSAPI",
      "kafka_sasl_username": "u", "kafka_sasl_password": "hunter2"}, "kafka_sasl_mechanism"),
    ({"redis_username": "app"}, "SMARTMETER_REDIS_PASSWORD"),
])
def test_bad_security_settings_fail_fast_saying_how_to_fix_them(overrides: dict[str, str],
                                                                needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_settings(**overrides)
    assert needle in str(err.value)
    assert "hunter2" not in str(err.value)


# -- Redis password / ACL user -----------------------------------------------------------
def test_redis_acl_user_and_password_reach_the_client() -> None:
    s = build_settings(redis_username="smartmeter-app", redis_password="acl-Pw-1")
    kw = connection_kwargs(s)
    assert kw["username"] == "smartmeter-app" and kw["password"] == "acl-Pw-1"
    assert connection_kwargs(build_settings())["password"] is None


def test_a_redis_that_does_not_answer_is_a_backend_error_without_the_password() -> None:
    from smartmeter_lib.viz.serve import free_port

    s = build_settings(redis_url=f"redis://:inline-Pw-2@127.0.0.1:{free_port()}/0",
                       redis_password="acl-Pw-1")
    with pytest.raises(BackendError) as err:
        RedisLive(s)
    assert "acl-Pw-1" not in str(err.value) and "inline-Pw-2" not in str(err.value)
    assert _safe_url("redis://user:pw@h:1/0") == "redis://***@h:1/0"


# -- loopback by default -----------------------------------------------------------------
def test_services_bind_to_127_0_0_1_by_default(tmp_path: Path) -> None:
    cfg = ServicesConfig(base_dir=tmp_path)
    assert cfg.host == "127.0.0.1"
    redis_conf = RedisService(cfg).render_config()
    assert re.search(r"^bind 127\.0\.0\.1$", redis_conf, re.M)
    assert "protected-mode no" not in redis_conf
    kafka = KafkaService(cfg)
    from smartmeter_lib.services.base import render_template

    props = render_template("kafka-server.properties", kafka.template_values(1))
    listeners = re.search(r"^listeners=(.*)$", props, re.M)
    assert listeners is not None
    assert all("//127.0.0.1:" in x for x in listeners.group(1).split(","))
    cass = render_template("cassandra.yaml", CassandraService(cfg).template_values())
    assert "listen_address: 127.0.0.1" in cass and "rpc_address: 127.0.0.1" in cass
    for text in (redis_conf, props, cass):
        assert "0.0.0.0" not in text


def test_dashboards_are_served_on_127_0_0_1_by_default(tmp_path: Path) -> None:
    s = build_settings()
    assert s.host == "127.0.0.1"
    server = VoilaServer(tmp_path / "x.ipynb", s.host, s.port, {}, tmp_path / "v.log")
    assert server.url.startswith("http://127.0.0.1:")


# -- secrets never shown -----------------------------------------------------------------
def test_secrets_never_appear_in_help(monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.test_config_cli import _all_commands

    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    for argv in [[], *_all_commands()]:
        assert main([*argv, "--help"]) == 0
        out = capsys.readouterr()
        for v in SECRETS.values():
            assert v not in out.out + out.err, f"smartmeter {' '.join(argv)} --help shows {v}"


def test_secrets_never_appear_in_logs_or_errors(monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from smartmeter_lib.viz.serve import free_port

    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("SMARTMETER_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setenv("SMARTMETER_CASSANDRA_PORT", str(free_port()))
    monkeypatch.setenv("SMARTMETER_CASSANDRA_USERNAME", "cass-user")
    monkeypatch.setenv("SMARTMETER_KAFKA_BOOTSTRAP", f"127.0.0.1:{free_port()}")
    caplog.set_level(logging.DEBUG)
    s = build_settings()
    logging.getLogger("smartmeter_lib").debug("settings: %s %r", s, s)
    main(["--log-level", "DEBUG", "services", "check"])
    out = capsys.readouterr()
    seen = caplog.text + out.out + out.err + repr(s) + s.model_dump_json()
    assert "redis" in seen.lower()
    for v in SECRETS.values():
        assert v not in seen
    # a bad value of a secret setting is not echoed in the error either
    with pytest.raises(ConfigError) as err:
        build_settings(redis_password=123)
    assert "123" not in str(err.value)


def test_notebooks_hold_no_secrets_and_hide_them_in_outputs() -> None:
    """The committed notebooks carry no password, and a settings object shown in a notebook
    output (its repr, as Jupyter prints it) masks every secret."""
    books = [*ROOT.glob("dashboards/*.ipynb"), *ROOT.glob("notebooks/*.ipynb"),
             *ROOT.glob("runbooks/*.ipynb")]
    assert books
    for b in books:
        nb = json.loads(b.read_text())
        for cell in nb["cells"]:
            text = "".join(cell.get("source", [])) + json.dumps(cell.get("outputs", []))
            assert not re.search(r"password\s*[=:]\s*['\"][^'\"*]+['\"]", text, re.I), b
    s = build_settings(redis_password="nb-Pw-1", kafka_security_protocol="SASL_SSL",
                       kafka_sasl_mechanism="PLAIN", kafka_sasl_username="u",
                       kafka_sasl_password="nb-Pw-2")
    shown = repr(s) + str(s) + s.model_dump_json()
    assert "nb-Pw-1" not in shown and "nb-Pw-2" not in shown
    assert SecretStr("x").__repr__() == "SecretStr('**********')"
