"""The smoke/prewarm probe against real pieces on loopback: Debian's docker-registry (distribution
2.8) with `auth: token`, standing in for Harbor's registry behind its token service, a token
service made here that signs JWTs the way distribution verifies them (RS256, `x5c` chain to the
configured `rootcertbundle`; distribution registry/auth/token/token.go), and TLS certificates from
a test CA. Each failure mode names its link."""

from __future__ import annotations

import base64
import http.server
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from components.vm.files import FILES_DIR
from tests.standins.daemons import (
    Registry,
    build_oci_image,
    free_port,
    make_test_ca,
    push_image,
    require_binaries,
    stop_process,
    wait_until,
)
from tests.standins.loopback_http import LoopbackHttp

SERVICE = "harbor-registry"
ISSUER = "harbor-token-issuer"
IMAGE = "dockerhub-proxy/library/busybox"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenService:
    """Harbor core's /service/token as a registry client sees it: anonymous pull tokens."""

    def __init__(self, directory: Path, ca, deny: bool = False) -> None:
        self.ca = ca
        self.deny = deny
        leaf_der = subprocess.run(
            ["openssl", "x509", "-in", str(ca.server_cert), "-outform", "DER"], check=True, capture_output=True
        ).stdout
        self.x5c = [base64.b64encode(leaf_der).decode()]
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                query = parse_qs(urlsplit(self.path).query)
                if outer.deny or not self.path.startswith("/service/token"):
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"token": outer.sign(query.get("scope", [""])[0])}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(ca.server_cert), str(ca.server_key))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sign(self, scope: str) -> str:
        kind, name, actions = scope.split(":") if scope.count(":") == 2 else ("", "", "")
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": "",
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": str(now),
            "access": [{"type": kind, "name": name, "actions": ["pull"]}] if "pull" in actions.split(",") else [],
        }
        header = {"typ": "JWT", "alg": "RS256", "x5c": self.x5c}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.ca.server_key)],
            input=signing_input.encode(),
            check=True,
            capture_output=True,
        ).stdout
        return f"{signing_input}.{b64url(signature)}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class TokenRegistry:
    """docker-registry serving `storage` with token auth whose realm is the token service."""

    def __init__(self, directory: Path, ca, storage: Path, realm: str) -> None:
        self.port = free_port()
        config = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text"},
            "storage": {"filesystem": {"rootdirectory": str(storage)}},
            "http": {"addr": f"127.0.0.1:{self.port}", "tls": {"certificate": str(ca.server_cert), "key": str(ca.server_key)}},
            "auth": {"token": {"realm": realm, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": str(ca.ca_cert)}},
        }
        path = directory / "token-registry.yml"
        path.write_text(yaml.safe_dump(config))
        self.log = (directory / "token-registry.log").open("wb")
        self.process = subprocess.Popen(["docker-registry", "serve", str(path)], stdout=self.log, stderr=self.log)
        context = ssl.create_default_context(cafile=str(ca.ca_cert))

        def challenged() -> bool:
            import urllib.error
            import urllib.request

            try:
                urllib.request.urlopen(f"https://localhost:{self.port}/v2/", context=context, timeout=2)  # noqa: S310
            except urllib.error.HTTPError as error:
                return error.code == 401
            return False

        wait_until(challenged, 20, "docker-registry with token auth")

    def stop(self) -> None:
        stop_process(self.process, self.log)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require_binaries("docker-registry", "skopeo", "openssl")
    directory = tmp_path_factory.mktemp("probe")
    ca = make_test_ca(directory / "ca")
    # Push with an open registry, then serve the same storage behind token auth.
    seed = Registry(directory / "seed", ca)
    try:
        layout = build_oci_image(directory / "image", "1.37", "hello from the cache")
        push_image(layout, "1.37", seed, IMAGE)
    finally:
        seed.stop()
    tokens = TokenService(directory, ca)
    registry = TokenRegistry(directory, ca, directory / "seed" / "storage", f"https://localhost:{tokens.port}/service/token")
    yield {"ca": ca, "url": f"https://localhost:{registry.port}", "directory": directory, "tokens": tokens}
    registry.stop()
    tokens.stop()


def probe(*args: str, ca_file: Path | None = None, **env: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    environment = {**os.environ, **({"PROBE_CA_FILE": str(ca_file)} if ca_file else {}), "PROBE_TIMEOUT": "10", **env}
    result = subprocess.run(
        [sys.executable, str(FILES_DIR / "harbor-probe.py"), *args], env=environment, capture_output=True, text=True, timeout=120
    )
    return result, [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_an_image_is_pulled_through_the_token_flow_and_its_blobs_verified(lab):
    result, (line,) = probe(
        "--expect-address", "127.0.0.1", "--all-blobs", lab["url"], f"{IMAGE}:1.37", ca_file=lab["ca"].ca_cert
    )
    assert result.returncode == 0, result.stderr
    assert line["ok"] is True and line["image"] == f"{IMAGE}:1.37"
    assert line["manifest"].startswith("sha256:") and line["blobs"] == 2 and line["bytes"] > 0
    assert line["seconds"] >= 0


def test_the_smoke_pull_takes_one_blob(lab):
    result, (line,) = probe(lab["url"], f"{IMAGE}:1.37", ca_file=lab["ca"].ca_cert)
    assert result.returncode == 0 and line["blobs"] == 1, result.stderr


def test_dns_failure_names_dns(lab):
    result, (line,) = probe("https://harbor.invalid", f"{IMAGE}:1.37", ca_file=lab["ca"].ca_cert)
    assert result.returncode == 1
    assert line["error"].startswith("DNS: harbor.invalid does not resolve")


def test_a_name_pointing_elsewhere_names_dns(lab):
    result, (line,) = probe("--expect-address", "192.0.2.10", lab["url"], f"{IMAGE}:1.37", ca_file=lab["ca"].ca_cert)
    assert result.returncode == 1
    assert line["error"].startswith("DNS: localhost resolves to") and "not to this cache's address 192.0.2.10" in line["error"]


def test_an_untrusted_certificate_names_tls(lab):
    other = make_test_ca(lab["directory"] / "other-ca")
    result, (line,) = probe(lab["url"], f"{IMAGE}:1.37", ca_file=other.ca_cert)
    assert result.returncode == 1
    assert line["error"].startswith("TLS: the certificate of localhost:") and "does not verify" in line["error"]


def test_nothing_listening_names_connect(lab):
    result, (line,) = probe(f"https://localhost:{free_port()}", f"{IMAGE}:1.37", ca_file=lab["ca"].ca_cert)
    assert result.returncode == 1 and line["error"].startswith("connect: cannot reach localhost:")


def test_a_refused_token_names_auth(lab):
    lab["tokens"].deny = True
    try:
        result, (line,) = probe(lab["url"], f"{IMAGE}:1.37", ca_file=lab["ca"].ca_cert)
    finally:
        lab["tokens"].deny = False
    assert result.returncode == 1
    assert line["error"].startswith("auth: the token service https://localhost:") and "answered 401" in line["error"]


def test_a_missing_image_names_the_upstream(lab):
    result, (missing, present) = probe(lab["url"], f"{IMAGE}:9.99", f"{IMAGE}:1.37", ca_file=lab["ca"].ca_cert)
    assert result.returncode == 1
    assert missing["error"].startswith(f"upstream: {IMAGE}:9.99 not found (404 MANIFEST_UNKNOWN")
    assert present["ok"] is True, "one failure does not stop the others"


class FaultyHarbor:
    """A TLS endpoint that challenges, issues a token, then answers manifests with `status` and a
    registry error body ({"errors": [{"code", "message"}]}, the v2 error format Harbor and
    distribution share). It stands in for answers a loopback registry cannot give (a rate limit,
    an upstream timeout); the status-to-message mapping under test is the probe's own."""

    def __init__(self, ca, status: int, code: str, message: str) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path == "/v2/":
                    realm = f"https://localhost:{outer.port}/service/token"
                    return self.answer(401, b"{}", {"WWW-Authenticate": f'Bearer realm="{realm}",service="{SERVICE}"'})
                if self.path.startswith("/service/token"):
                    return self.answer(200, b'{"token": "t"}', {})
                body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
                return self.answer(status, body, {"Content-Type": "application/json"})

            def answer(self, code: int, body: bytes, headers: dict) -> None:
                self.send_response(code)
                for key, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(ca.server_cert), str(ca.server_key))
        self.server = LoopbackHttp(Handler, tls=context)
        self.port = self.server.port

    def stop(self) -> None:
        self.server.stop()


@pytest.mark.parametrize(
    ("status", "code", "message", "expected"),
    [
        (429, "TOOMANYREQUESTS", "You have reached your pull rate limit", "rate limited: "),
        (500, "UNKNOWN", "dial tcp 44.219.3.189:443: i/o timeout", "upstream: Harbor answered 500"),
        (401, "UNAUTHORIZED", "unauthorized to access repository", "auth: anonymous pull of "),
    ],
)
def test_upstream_faults_name_their_link(lab, status, code, message, expected):
    harbor = FaultyHarbor(lab["ca"], status, code, message)
    try:
        result, (line,) = probe(f"https://localhost:{harbor.port}", f"{IMAGE}:1.37", ca_file=lab["ca"].ca_cert)
    finally:
        harbor.stop()
    assert result.returncode == 1
    assert line["error"].startswith(expected) and message in line["error"], line["error"]


def test_connect_host_sends_the_public_name_to_another_address(lab):
    # On the VM the probe asks its own Traefik: the name (SNI, Host, certificate) stays public,
    # the address is local. Here the registry listens on 127.0.0.1 only: sent to 127.0.0.2, the
    # same URL finds nobody, so the override is what decides where the connection goes.
    result, (line,) = probe(lab["url"], f"{IMAGE}:1.37", ca_file=lab["ca"].ca_cert, PROBE_CONNECT_HOST="127.0.0.2")
    assert line["error"].startswith("connect: cannot reach localhost:"), line
    result, (line,) = probe(lab["url"], f"{IMAGE}:1.37", ca_file=lab["ca"].ca_cert, PROBE_CONNECT_HOST="127.0.0.1")
    assert line["ok"] is True, line


def test_the_failure_count_goes_to_cloudwatch(lab):
    from tests.aws.test_alarms import Loopback

    cloud = Loopback(health=None)
    harbor = FaultyHarbor(lab["ca"], 429, "TOOMANYREQUESTS", "You have reached your pull rate limit")
    try:
        result, lines = probe(
            "--metric",
            "PrewarmFailures",
            f"https://localhost:{harbor.port}",
            f"{IMAGE}:1.37",
            f"{IMAGE}:1.36",
            ca_file=lab["ca"].ca_cert,
            IMDS_ENDPOINT=cloud.url,
            CLOUDWATCH_ENDPOINT=f"{cloud.url}/",
            AWS_REGION="eu-central-1",
            HARBOR_CACHE_STACK="dev",
        )
    finally:
        harbor.stop()
        cloud.stop()
    assert result.returncode == 1 and len(lines) == 2
    (request,) = cloud.requests
    (datum,) = json.loads(request["body"])["MetricData"]
    assert datum["MetricName"] == "PrewarmFailures" and datum["Value"] == 2.0
    assert datum["Dimensions"] == [{"Name": "Stack", "Value": "dev"}]


class PlainNginx(LoopbackHttp):
    """Harbor's nginx as an HA node publishes it to the load balancer: plain HTTP on one port,
    /service/ to core's token service, the rest to the registry (templates/nginx/nginx.http.conf.jinja
    `location /service/` and `location /v2/`). It records the Host and X-Forwarded-Proto each request
    arrived with, and forwards over TLS to the lab's token service and registry."""

    def __init__(self, ca, token_port: int, registry_port: int) -> None:
        self.seen: list[tuple[str, str, str]] = []
        outer = self
        context = ssl.create_default_context(cafile=str(ca.ca_cert))

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                import http.client

                outer.seen.append((self.path, self.headers.get("Host", ""), self.headers.get("X-Forwarded-Proto", "")))
                port = token_port if self.path.startswith("/service/") else registry_port
                upstream = http.client.HTTPSConnection("localhost", port, context=context, timeout=10)
                forwarded = {key: value for key, value in self.headers.items() if key.lower() not in ("host", "connection")}
                upstream.request("GET", self.path, headers=forwarded)
                answer = upstream.getresponse()
                body = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                upstream.close()

        super().__init__(Handler)


def test_plain_port_reaches_harbors_nginx_as_the_load_balancer_does(lab):
    # HA node: no Traefik; the probe plays the load balancer (TLS ended) towards the node's nginx.
    registry_port = int(lab["url"].rsplit(":", 1)[1])
    nginx = PlainNginx(lab["ca"], lab["tokens"].port, registry_port)
    try:
        result, (line,) = probe(
            "--all-blobs",
            lab["url"],
            f"{IMAGE}:1.37",
            ca_file=lab["ca"].ca_cert,
            PROBE_CONNECT_HOST="127.0.0.1",
            PROBE_CONNECT_PLAIN_PORT=str(nginx.port),
        )
    finally:
        nginx.stop()
    assert result.returncode == 0 and line["ok"] is True, (line, result.stderr)
    paths = [path for path, _host, _proto in nginx.seen]
    assert paths[0] == "/v2/" and any(path.startswith("/service/token") for path in paths)
    assert any("/blobs/" in path for path in paths), "every request went through nginx"
    # The public name and scheme travel as the load balancer sends them.
    assert {proto for _path, _host, proto in nginx.seen} == {"https"}
    assert all(host.startswith("localhost:") for _path, host, _proto in nginx.seen)
