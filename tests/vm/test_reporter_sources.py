"""What files/harbor-metrics.py `report` reads beyond disk and health, each from a real piece or a
stand-in that answers as the real one does:
- Harbor's logs: nginx's access lines written by **real nginx** with Harbor's own `timed_combined`
  log_format (taken from Harbor's prepare template in shared/reference), core's lines in lib/log's
  format with the miss warning's exact text (repoproxy/proxy.go), both behind the prefix Harbor's
  rsyslog writes (RSYSLOG_TraditionalFileFormat);
- Harbor's exporter text (project_collector.go), the registries and GC history of Harbor's API
  (swagger v2.15.2), a TLS endpoint for the public path with a test CA, and EC2's DescribeSnapshots
  (query protocol; the request checked against botocore's signer and serializer).
"""

from __future__ import annotations

import contextlib
import datetime
import http.server
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs

import pytest

from components.vm.files import FILES_DIR
from tests.aws.test_alarms import CREDENTIALS, Loopback
from tests.conftest import unavailable
from tests.paths import REFERENCE
from tests.standins.daemons import free_port, make_test_ca, wait_until
from tests.standins.loopback_http import LoopbackHttp

NGINX_TEMPLATE = REFERENCE / "harbor-v2.15.2-prepare" / "templates" / "nginx" / "nginx.http.conf.jinja"
PROJECT = "dockerhub-proxy"
# goharbor/harbor v2.15.2 src/server/middleware/repoproxy/proxy.go handleManifest, verbatim:
MISS_FORMAT = "Artifact: %v:%v, digest:%v is not found in proxy cache, fetch it from remote repo"
# src/controller/proxy/controller.go ProxyBlob's goroutine, verbatim:
WRITE_BACK_FORMAT = "error while putting blob to local repo, %v"


def go_format(format_: str, *values: str) -> str:
    for value in values:
        format_ = format_.replace("%v", value, 1)
    return format_


def syslog_line(tag: str, message: str) -> str:
    """RSYSLOG_TraditionalFileFormat (make/photon/log/rsyslog.conf): '%TIMESTAMP% %HOSTNAME% %syslogtag%%msg%';
    the host is the Docker bridge the syslog driver sends from, the tag the compose logging tag."""
    return f"{time.strftime('%b %e %H:%M:%S')} 172.18.0.1 {tag}[4242]:{'' if message.startswith(' ') else ' '}{message}"


def core_line(level: str, source: str, message: str) -> str:
    """lib/log TextFormatter: '<RFC3339> [<LEVEL>] [<file>:<line>]: <message>'."""
    return syslog_line("core", f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} [{level}] [{source}]: {message}")


def harbor_log_format() -> str:
    if not NGINX_TEMPLATE.exists():
        unavailable(f"{NGINX_TEMPLATE} is missing (shared/reference beside the checkout)")
    match = re.search(r"log_format timed_combined .*?;", NGINX_TEMPLATE.read_text(), re.DOTALL)
    assert match, "Harbor's nginx template has no timed_combined log_format"
    return match[0]


class Backend(LoopbackHttp):
    """What nginx proxies to: manifests and blobs of one repository, and one path that fails."""

    def __init__(self) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self, with_body: bool) -> None:
                status, body = 404, b"{}"
                if self.path.startswith("/v2/broken"):
                    status, body = 500, b"{}"
                elif "/manifests/" in self.path:
                    status, body = 200, b"m" * 500
                elif "/blobs/" in self.path:
                    status, body = 200, b"b" * 1000
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if with_body:
                    self.wfile.write(body)

            def do_GET(self):  # noqa: N802
                self.answer(True)

            def do_HEAD(self):  # noqa: N802
                self.answer(False)

        super().__init__(Handler)


def nginx_access_lines(work: Path, requests: list[tuple[str, ...]]) -> list[str]:
    """Real nginx with Harbor's log_format, proxying to the backend; returns the access log lines.
    A request is (method, path) or (method, path, User-Agent)."""
    if shutil.which("nginx") is None:
        unavailable("nginx is missing (Debian package nginx)")
    log_format = harbor_log_format()
    backend = Backend()
    port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    access = work / "access.log"
    conf = work / "nginx.conf"
    conf.write_text(
        f"""daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{}}
http {{
  client_body_temp_path {work}/body; proxy_temp_path {work}/proxy; fastcgi_temp_path {work}/fastcgi;
  uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;
  {log_format}
  access_log {access} timed_combined;
  server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://127.0.0.1:{backend.port}; }}
  }}
}}
"""
    )
    process = subprocess.Popen(["nginx", "-p", str(work), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        ready = f"http://127.0.0.1:{port}/v2/ready/manifests/1"
        wait_until(lambda: urllib.request.urlopen(ready).status == 200, 20, "nginx")  # noqa: S310
        for method, path, *agent in requests:
            request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
            if agent:
                request.add_header("User-Agent", agent[0])
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(request).read()  # noqa: S310 - loopback
        served = lambda: [line for line in access.read_text().splitlines() if "/v2/ready/" not in line]  # noqa: E731
        wait_until(lambda: len(served()) >= len(requests), 10, "nginx's access log")
    finally:
        process.terminate()
        process.wait(10)
        backend.stop()
    return served()


class StandIns:
    """Harbor's exporter and API (monitor robot), the public TLS path and EC2, on loopback."""

    def __init__(self, ca, *, registries: list[dict], gc: list[dict], snapshots: list[str], quota: str) -> None:
        self.ec2_requests: list[dict] = []
        self.api_auth: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path == "/metrics":
                    return self.answer(200, quota.encode(), "text/plain; version=0.0.4")
                if self.path == "/api/v2.0/health":
                    return self.answer(200, json.dumps({"status": "healthy", "components": []}).encode())
                outer.api_auth.append(self.headers.get("Authorization", ""))
                if self.headers.get("Authorization") != "Basic cm9ib3QkbW9uaXRvcjptb25pdG9yLXNlY3JldA==":
                    return self.answer(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized"}]}')
                if self.path.startswith("/api/v2.0/registries"):
                    return self.answer(200, json.dumps(registries).encode())
                if self.path.startswith("/api/v2.0/system/gc"):
                    return self.answer(200, json.dumps(gc).encode())
                return self.answer(404, b"{}")

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.ec2_requests.append({"headers": dict(self.headers), "body": body})
                items = "".join(
                    f"<item><snapshotId>snap-{i}</snapshotId><status>completed</status><startTime>{start}</startTime></item>"
                    for i, start in enumerate(snapshots)
                )
                xml = (
                    '<?xml version="1.0" encoding="UTF-8"?>\n<DescribeSnapshotsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
                    f"<requestId>r-1</requestId><snapshotSet>{items}</snapshotSet></DescribeSnapshotsResponse>"
                )
                return self.answer(200, xml.encode(), "text/xml;charset=UTF-8")

            def answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.tls = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(ca.server_cert), str(ca.server_key))
        self.tls.socket = context.wrap_socket(self.tls.socket, server_side=True)
        self.url = f"http://127.0.0.1:{self.plain.server_address[1]}"
        self.public_url = f"https://localhost:{self.tls.server_address[1]}"
        for server in (self.plain, self.tls):
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        for server in (self.plain, self.tls):
            server.shutdown()
            server.server_close()


def run_report(cloud: Loopback, state: Path, **env: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    environment = {
        **os.environ,
        "IMDS_ENDPOINT": cloud.url,
        "CLOUDWATCH_ENDPOINT": f"{cloud.url}/",
        "HEALTH_URL": f"{cloud.url}/api/v2.0/health",
        "AWS_REGION": "eu-central-1",
        "HARBOR_CACHE_STACK": "dev",
        "DATA_MOUNT": "/nonexistent",
        "STATE_DIRECTORY": str(state),
        **env,
    }
    before = len(cloud.requests)
    result = subprocess.run(
        [sys.executable, str(FILES_DIR / "harbor-metrics.py"), "report"], env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    (request,) = cloud.requests[before:]
    return result, json.loads(request["body"])["MetricData"]


def by_key(data: list[dict]) -> dict[tuple, float]:
    return {
        (item["MetricName"], *(f"{d['Name']}={d['Value']}" for d in item["Dimensions"] if d["Name"] != "Stack")): item["Value"]
        for item in data
    }


@pytest.fixture
def cloud():
    server = Loopback(health={"status": "healthy", "components": []})
    yield server
    server.stop()


def test_hits_misses_bytes_write_backs_and_5xx_from_harbors_logs(cloud, tmp_path):
    access = nginx_access_lines(
        tmp_path / "nginx",
        [
            ("GET", f"/v2/{PROJECT}/library/busybox/manifests/1.37"),
            ("GET", f"/v2/{PROJECT}/library/busybox/manifests/1.37"),
            ("GET", f"/v2/{PROJECT}/library/busybox/manifests/sha256:{'a' * 64}"),
            ("HEAD", f"/v2/{PROJECT}/library/busybox/manifests/1.37"),
            ("GET", f"/v2/{PROJECT}/library/busybox/blobs/sha256:{'b' * 64}"),
            ("GET", f"/v2/{PROJECT}/library/busybox/blobs/sha256:{'c' * 64}"),
            ("GET", "/v2/broken/x/manifests/1"),
            ("GET", "/v2/other-project/x/manifests/1"),
            # harbor-cache's own probe (files/harbor-probe.py's User-Agent): its blobs are not counted.
            ("GET", f"/v2/{PROJECT}/library/busybox/blobs/sha256:{'b' * 64}", "harbor-cache-probe"),
            ("GET", f"/v2/{PROJECT}/library/busybox/blobs/sha256:{'c' * 64}", "harbor-cache-probe"),
        ],
    )
    assert '"harbor-cache-probe"' in access[-1] and (FILES_DIR / "harbor-probe.py").read_text().count('"harbor-cache-probe"') == 1
    assert len(access) == 10 and '"GET /v2/dockerhub-proxy/library/busybox/manifests/1.37 HTTP/1.1" 200 500' in access[0]
    logs = tmp_path / "harbor"
    logs.mkdir()
    core, proxy = logs / "core.log", logs / "proxy.log"
    core.write_text(core_line("INFO", "/server/middleware/log/log.go:1", "old line") + "\n")
    proxy.write_text("")
    env = {"HARBOR_LOG_DIR": str(logs), "PROXY_PROJECTS": f"{PROJECT},ghcr-proxy"}
    state = tmp_path / "state"
    _, first = run_report(cloud, state, **env)
    assert by_key(first)[("ProxyManifestRequests", f"Project={PROJECT}")] == 0, "no history at the first run"

    miss = go_format(MISS_FORMAT, f"{PROJECT}/library/busybox", "1.37", "")
    failed = go_format(WRITE_BACK_FORMAT, "http status code: 405, body: UNSUPPORTED")
    with core.open("a") as handle:
        handle.write(core_line("WARNING", "/server/middleware/repoproxy/proxy.go:270", miss) + "\n")
        handle.write(core_line("ERROR", "/controller/proxy/controller.go:225", failed) + "\n")
    proxy.write_text("".join(syslog_line("proxy", line) + "\n" for line in access))
    _, second = run_report(cloud, state, **env)
    found = by_key(second)
    assert found[("ProxyManifestRequests", f"Project={PROJECT}")] == 3, "GETs answered 200; HEAD not counted"
    assert found[("ProxyManifestMisses", f"Project={PROJECT}")] == 1
    assert found[("ProxyBlobRequests", f"Project={PROJECT}")] == 2
    assert found[("ProxyBytesServed", f"Project={PROJECT}")] == 3 * 500 + 2 * 1000
    assert found[("ProxyManifestRequests", "Project=ghcr-proxy")] == 0, "a quiet project still has its series"
    assert not any("other-project" in str(key) for key in found), "only the stack's proxy projects"
    assert found[("WriteBackFailures",)] == 1 and found[("Harbor5xx",)] == 1
    units = {item["MetricName"]: item["Unit"] for item in second}
    assert units["ProxyBytesServed"] == "Bytes" and units["ProxyManifestRequests"] == "Count"

    # logrotate's copytruncate: the file starts again, shorter than the offset.
    proxy.write_text(syslog_line("proxy", access[0]) + "\n")
    _, third = run_report(cloud, state, **env)
    assert by_key(third)[("ProxyManifestRequests", f"Project={PROJECT}")] == 1

    text = (state / "harbor-cache.prom").read_text()
    assert "# TYPE harbor_cache_proxy_manifest_requests_total counter" in text
    assert f'harbor_cache_proxy_manifest_requests_total{{project="{PROJECT}",stack="dev"}} 4' in text
    assert f'harbor_cache_proxy_manifest_misses_total{{project="{PROJECT}",stack="dev"}} 1' in text
    assert "# TYPE harbor_cache_disk_used_percent gauge" in text

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(FILES_DIR / "harbor-metrics.py"), "serve", str(port)],
        env={**os.environ, "STATE_DIRECTORY": str(state)},
    )
    try:
        wait_until(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").status == 200, 10, "serve")  # noqa: S310
        served = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()  # noqa: S310
    finally:
        server.terminate()
        server.wait(10)
    assert served == text


QUOTA_TEXT = """# HELP harbor_project_quota_byte The quota of a project
# TYPE harbor_project_quota_byte gauge
harbor_project_quota_byte{project_name="dockerhub-proxy"} 1.073741824e+09
harbor_project_quota_byte{project_name="ghcr-proxy"} -1
# HELP harbor_project_quota_usage_byte The used resource of a project
# TYPE harbor_project_quota_usage_byte gauge
harbor_project_quota_usage_byte{project_name="dockerhub-proxy"} 9.66367641e+08
harbor_project_quota_usage_byte{project_name="ghcr-proxy"} 5e+06
"""


def test_quota_public_path_upstreams_gc_and_snapshots(cloud, tmp_path, monkeypatch):
    ca = make_test_ca(tmp_path / "ca")
    now = datetime.datetime.now(datetime.UTC)
    stand_ins = StandIns(
        ca,
        registries=[
            {"id": 1, "name": "dockerhub", "type": "docker-hub", "status": "healthy"},
            {"id": 2, "name": "ghcr", "type": "github-ghcr", "status": "unhealthy"},
        ],
        gc=[{"id": 7, "job_name": "GARBAGE_COLLECTION", "job_kind": "SCHEDULE", "job_status": "Error"}],
        snapshots=[(now - datetime.timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%S.000Z") for h in (50, 30)],
        quota=QUOTA_TEXT,
    )
    monitor = tmp_path / "monitor"
    monitor.write_text("robot$monitor:monitor-secret\n")
    try:
        result, data = run_report(
            cloud,
            tmp_path / "state",
            EXPORTER_URL=f"{stand_ins.url}/metrics",
            PUBLIC_URL=stand_ins.public_url,
            PUBLIC_CONNECT_HOST="127.0.0.1",
            PUBLIC_CA_FILE=str(ca.ca_cert),
            HARBOR_API_URL=f"{stand_ins.url}/api/v2.0",
            MONITOR_CREDENTIALS=str(monitor),
            SNAPSHOT_TAG="harbor-cache-dev-123456789012",
            EC2_ENDPOINT=f"{stand_ins.url}/",
        )
        other = make_test_ca(tmp_path / "other")
        _, untrusted = run_report(
            cloud,
            tmp_path / "state2",
            PUBLIC_URL=stand_ins.public_url,
            PUBLIC_CONNECT_HOST="127.0.0.1",
            PUBLIC_CA_FILE=str(other.ca_cert),
        )
    finally:
        stand_ins.stop()
    found = by_key(data)
    assert found[("QuotaUsedPercent", f"Project={PROJECT}")] == 90.0
    assert ("QuotaUsedPercent", "Project=ghcr-proxy") not in found, "no limit, no percentage"
    assert found[("PublicPathHealthy",)] == 1
    assert 1.5 < found[("CertificateDaysLeft",)] <= 2, "the test CA's certificate lives 2 days"
    assert found[("UpstreamHealthy", "Upstream=dockerhub")] == 1 and found[("UpstreamHealthy", "Upstream=ghcr")] == 0
    assert found[("GcFailed",)] == 1
    assert 29.9 < found[("HoursSinceSnapshot",)] < 30.1, "the newest completed snapshot counts"
    assert "monitor-secret" not in result.stdout + result.stderr
    assert by_key(untrusted)[("PublicPathHealthy",)] == 0 and by_key(untrusted)[("CertificateDaysLeft",)] == 0

    (request,) = stand_ins.ec2_requests
    assert_ec2_request_as_botocore_sends(request, stand_ins.url, monkeypatch)


def assert_ec2_request_as_botocore_sends(request: dict, url: str, monkeypatch) -> None:
    """DescribeSnapshots as the AWS SDK sends it: botocore's ec2 serializer gives the same form, and
    its SigV4 signer (service ec2) the same Authorization at the same instant."""
    import botocore.auth
    from botocore import serialize
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from botocore.loaders import Loader
    from botocore.model import ServiceModel

    model = ServiceModel(Loader().load_service_model("ec2", "service-2"))
    params = {
        "OwnerIds": ["self"],
        "Filters": [
            {"Name": "tag:harbor-cache:snapshot", "Values": ["harbor-cache-dev-123456789012"]},
            {"Name": "status", "Values": ["completed"]},
        ],
        "MaxResults": 1000,
    }
    built = serialize.create_serializer("ec2").serialize_to_request(params, model.operation_model("DescribeSnapshots"))
    assert parse_qs(request["body"].decode()) == {key: [str(value)] for key, value in built["body"].items()}
    headers = {key.lower(): value for key, value in request["headers"].items()}
    when = datetime.datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ")
    aws_request = AWSRequest(
        method="POST", url=f"{url}/", data=request["body"], headers={"Content-Type": headers["content-type"]}
    )
    signer = SigV4Auth(
        Credentials(CREDENTIALS["AccessKeyId"], CREDENTIALS["SecretAccessKey"], CREDENTIALS["Token"]), "ec2", "eu-central-1"
    )
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *args, **kwargs: when)
    signer.add_auth(aws_request)
    assert headers["authorization"] == aws_request.headers["Authorization"]


class HealthHandler(http.server.BaseHTTPRequestHandler):
    """Harbor's /api/v2.0/health behind a TLS listener (a load balancer's, here on loopback)."""

    hosts: ClassVar[list[str]] = []

    def do_GET(self):  # noqa: N802
        self.hosts.append(self.headers.get("Host", ""))
        body = json.dumps({"status": "healthy", "components": []}).encode() if self.path == "/api/v2.0/health" else b"{}"
        self.send_response(200 if self.path == "/api/v2.0/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def tls_listener(ca) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(ca.server_cert), str(ca.server_key))
    return context


def test_each_ha_node_checks_the_load_balancers_path_as_a_client_does(cloud, tmp_path):
    """HA: the reporter unit of a node (as rendered) names the cache's URL and no connect host, so the
    reporter resolves the name and verifies the listener's certificate against the system CAs (here the
    test CA through SSL_CERT_FILE, which OpenSSL's default paths read; no PUBLIC_CA_FILE). Healthy, a
    certificate for another name, and nothing listening; the series has no Node dimension, so the alarm's
    Maximum is taken over the nodes (components/aws/alarm_specs.py)."""
    from components.settings.settings import parse_settings
    from components.vm.operate_files import reporter_environment
    from tests.settings.test_settings import dev_raw

    settings = parse_settings({**dev_raw(), "replicas": 3}, stack="dev", region="eu-central-1")
    rendered = reporter_environment(settings, 1)
    assert rendered["PUBLIC_URL"] == settings.url and rendered["HARBOR_CACHE_NODE"] == "1"
    assert "PUBLIC_CONNECT_HOST" not in rendered and "PUBLIC_CA_FILE" not in rendered
    ca = make_test_ca(tmp_path / "ca")
    elsewhere = make_test_ca(tmp_path / "elsewhere", names=("elsewhere.example",), loopback=False)
    # The name "localhost" stands for the cache's name: the resolver gives loopback, where the listener is.
    node = {"HARBOR_CACHE_NODE": "1", "PUBLIC_URL": "", "SSL_CERT_FILE": ""}
    results = {}
    for case, trusted, served in (("healthy", ca, ca), ("wrong name", elsewhere, elsewhere), ("down", ca, None)):
        listener = LoopbackHttp(HealthHandler, tls=tls_listener(served)) if served else None
        port = listener.port if listener else free_port()
        try:
            _, data = run_report(
                cloud,
                tmp_path / case,
                **{**node, "PUBLIC_URL": f"https://localhost:{port}", "SSL_CERT_FILE": str(trusted.ca_cert)},
            )
        finally:
            if listener:
                listener.stop()
        results[case] = by_key(data)
    healthy = results["healthy"]
    assert healthy[("PublicPathHealthy",)] == 1 and 1.5 < healthy[("CertificateDaysLeft",)] <= 2
    assert healthy[("HarborHealthy", "Node=1")] == 1, "the node's own health keeps its Node dimension"
    assert HealthHandler.hosts and all(host.startswith("localhost:") for host in HealthHandler.hosts), "the name in Host"
    assert results["wrong name"][("PublicPathHealthy",)] == 0 and results["wrong name"][("CertificateDaysLeft",)] == 0
    assert results["down"][("PublicPathHealthy",)] == 0 and ("CertificateDaysLeft",) not in results["down"]
