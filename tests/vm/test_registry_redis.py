"""externalServices: the registry talks TLS to ElastiCache (issue 18), shown with the registry's own
configuration parser and redis client (tests/standins/registry_go) against a TLS-only redis-server on loopback.

Harbor's template writes `redis: enableTLS:`; the registry's field is `yaml:"enabletls"` and yaml.v2
matches keys exactly, so from the file TLS stays off and the registry sends AUTH in plain text to a
port that speaks only TLS (ElastiCache with in-transit encryption). distribution's environment
override REGISTRY_REDIS_ENABLETLS (configuration/parser.go overwriteStruct: the path's parts match
field names, upper-cased) reaches the field; the compose override sets it on the registry.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from components.vm.files import render_compose_override
from components.vm.harbor_yml import render_harbor_yml
from tests.settings.test_settings import parse
from tests.standins.daemons import free_port, make_test_ca, require_binaries, stop_process, wait_until
from tests.standins.registry_harness import harness_binary, harness_environment, parse_result
from tests.vm.test_data_modes import ENDPOINTS, SECRETS
from tests.vm.test_real_compose import ZONE_ID, compose_config, prepare, vm_layout

EXTERNAL = parse(externalServices=True)


@pytest.fixture(scope="module")
def harness() -> Path:
    return harness_binary()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    return prepare(render_harbor_yml(EXTERNAL, SECRETS, ENDPOINTS), tmp_path_factory.mktemp("prepare-external"))


@pytest.fixture(scope="module")
def registry_environment(prepared, tmp_path_factory) -> dict[str, str]:
    """The registry container's environment as compose gives it: Harbor's compose file merged with
    our override by the Compose v2 binary."""
    install = vm_layout(prepared, render_compose_override(EXTERNAL, ZONE_ID), tmp_path_factory.mktemp("vm-external"))
    return {key: str(value) for key, value in (compose_config(install)["services"]["registry"].get("environment") or {}).items()}


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory):
    """redis-server with TLS only (`port 0`), a certificate for `localhost` from a test CA, and
    the AUTH password of our harbor.yml. Yields (address, CA file)."""
    require_binaries("redis-server", "openssl")
    work = tmp_path_factory.mktemp("redis-tls")
    ca = make_test_ca(work)
    port = free_port()
    log = (work / "redis.log").open("w")
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(ca.server_cert), "--tls-key-file", str(ca.server_key),
         "--tls-ca-cert-file", str(ca.ca_cert), "--tls-auth-clients", "no",
         "--requirepass", SECRETS.redis_password, "--save", "", "--appendonly", "no", "--dir", str(work)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_until(
            lambda: server.poll() is None and "Ready to accept connections" in (work / "redis.log").read_text(),
            10,
            "redis-server",
        )
        yield f"localhost:{port}", ca.ca_cert
    finally:
        stop_process(server, log)


def run_redis(harness: Path, config: Path, tmp_path: Path, environment: dict[str, str], tls_redis) -> dict:
    address, ca = tls_redis
    # The test's own overrides: the address of the loopback server, and its CA as the one trusted
    # root (Go reads SSL_CERT_FILE on Linux); the registry verifies ElastiCache's certificate
    # against its image's roots, with the host name of `addr` (redigo DialUseTLS: ServerName = host).
    env = harness_environment(tmp_path, **environment, REGISTRY_REDIS_ADDR=address, SSL_CERT_FILE=str(ca))
    return parse_result(subprocess.run([str(harness), "redis", str(config)], env=env, capture_output=True, text=True, timeout=60))


def test_harbors_config_says_enabletls_but_the_registry_does_not_read_it(prepared):
    """The bug as prepare writes it: the key is there, spelled as the registry does not read it."""
    text = (prepared / "config" / "registry" / "config.yml").read_text()
    assert "  enableTLS: true\n" in text and "enabletls" not in text


def test_the_compose_override_turns_tls_on_for_the_registry(registry_environment):
    assert registry_environment.get("REGISTRY_REDIS_ENABLETLS") == "true"


def test_ebs_and_local_redis_leave_the_registry_environment_alone(tmp_path):
    """Harbor's own Redis container speaks plain text: no TLS switch there."""
    local = parse()
    install = vm_layout(
        prepare(render_harbor_yml(local, SECRETS), tmp_path / "p"),
        render_compose_override(local, ZONE_ID),
        tmp_path / "vm",
    )
    registry = compose_config(install)["services"]["registry"]
    assert "REGISTRY_REDIS_ENABLETLS" not in (registry.get("environment") or {})


def test_the_registry_negotiates_tls_with_a_tls_only_redis(harness, prepared, registry_environment, tls_redis, tmp_path):
    result = run_redis(harness, prepared / "config" / "registry" / "config.yml", tmp_path, registry_environment, tls_redis)
    assert result["enabletls"] is True
    # AUTH with our password and SELECT of the registry's db index went over the TLS connection.
    assert result["ok"] and result["reply"] == "PONG" and result["db"] == 1, result


def test_without_the_override_the_registry_speaks_plain_text_and_fails(harness, prepared, tls_redis, tmp_path):
    """Today's compose: the registry reads enableTLS as absent and its AUTH never gets an answer."""
    result = run_redis(harness, prepared / "config" / "registry" / "config.yml", tmp_path, {}, tls_redis)
    assert result["enabletls"] is False
    assert not result["ok"] and result["stage"] == "dial", result
