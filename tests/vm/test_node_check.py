"""Issue 18 point 8: every HA node proves its own path to the bucket, and a node that cannot serve
leaves the load balancer.

- real nginx with the ready location inside a server like Harbor's on 8080: core's ping passes
  through (200 "Pong") until the mark exists, then 503, which the ALB's matcher (200) counts as a
  failed check;
- files/harbor-node-check.sh marks the node after NODE_CHECK_FAILURES failed probes in a row and
  clears the mark on the first good one;
- under mocks, every node runs the probe and the check, and the target group asks the ready path.
"""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from components.aws.load_balancer import HEALTH_CHECK
from components.vm.node_check import NODE_CHECK_FAILURES, NODE_CHECK_TIMER, node_check_command, node_check_service
from components.vm.node_ready import (
    NGINX_READY_MOUNT,
    NGINX_STATE_MOUNT,
    NODE_STATE_DIR,
    READY_PATH,
    STORAGE_FAILED,
    render_nginx_ready,
)
from components.vm.operate_files import BIN_DIR, PROBE_TIMER
from tests.conftest import unavailable
from tests.settings.test_settings import parse
from tests.standins.pulumi_harness import dev_config, run_program
from tests.vm.test_scripts import run_script


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class CorePing(http.server.BaseHTTPRequestHandler):
    """core's ping as src/server/v2.0/handler/ping.go answers it: 200, body "Pong"."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b"Pong" if self.path == "/api/v2.0/ping" else b"not found"
        self.send_response(200 if self.path == "/api/v2.0/ping" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture
def node_nginx(tmp_path):
    """Real nginx: an `upstream core` on loopback (Harbor's name for core:8080) and a server that
    includes the ready location as Harbor's server on 8080 includes conf.d/harbor.http.*.conf."""
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None:
        unavailable("nginx is missing (Debian package nginx)")
    core = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CorePing)
    threading.Thread(target=core.serve_forever, daemon=True).start()
    state = tmp_path / "state"
    state.mkdir()
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "harbor.http.ready.conf").write_text(render_nginx_ready(str(state)))
    port = free_port()
    temp = {name: tmp_path / name for name in ("client", "proxy", "fastcgi", "uwsgi", "scgi")}
    (tmp_path / "nginx.conf").write_text(
        "\n".join(
            [
                "daemon off;",
                "user root;" if os.geteuid() == 0 else "",
                f"pid {tmp_path}/nginx.pid;",
                f"error_log {tmp_path}/error.log;",
                "events {}",
                "http {",
                "  access_log off;",
                *(f"  {name}_temp_path {path};" for name, path in temp.items() if name != "client"),
                f"  client_body_temp_path {temp['client']};",
                f"  upstream core {{ server 127.0.0.1:{core.server_address[1]}; }}",
                "  server {",
                f"    listen 127.0.0.1:{port};",
                f"    include {tmp_path}/conf.d/harbor.http.*.conf;",
                "    location / { return 404; }",
                "  }",
                "}",
            ]
        )
    )
    process = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        process.kill()
        raise AssertionError(f"nginx did not start: {process.stderr.read().decode()[-2000:]}")
    yield {"url": f"http://127.0.0.1:{port}{READY_PATH}", "mark": state / STORAGE_FAILED}
    process.terminate()
    process.wait(10)
    core.shutdown()


def answer(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def test_the_ready_location_passes_cores_ping_until_the_node_is_marked(node_nginx):
    assert answer(node_nginx["url"]) == (200, "Pong")
    node_nginx["mark"].touch()
    status, _ = answer(node_nginx["url"])
    assert status == 503 and HEALTH_CHECK["matcher"] == "200", "the load balancer counts this as a failed check"
    node_nginx["mark"].unlink()
    assert answer(node_nginx["url"]) == (200, "Pong")


@pytest.fixture
def check_lab(tmp_path):
    return {"NODE_CHECK_STATE": str(tmp_path / "state"), "NODE_CHECK_COUNT": str(tmp_path / "lib" / "failures")}


def check(env: dict, probe: str) -> subprocess.CompletedProcess:
    return run_script("harbor-node-check.sh", {**env, "NODE_CHECK_FAILURES": str(NODE_CHECK_FAILURES)}, probe)


def test_the_node_leaves_after_failures_in_a_row_and_comes_back_on_the_first_good_probe(check_lab):
    mark = Path(check_lab["NODE_CHECK_STATE"]) / STORAGE_FAILED
    first = check(check_lab, "false")
    assert first.returncode == 1 and not mark.exists(), "one failed pull (an upstream's blip) keeps the node in"
    assert check(check_lab, "true").returncode == 0 and not mark.exists()
    for _ in range(NODE_CHECK_FAILURES):
        result = check(check_lab, "false")
    assert result.returncode == 1 and mark.exists(), result.stderr
    assert "out of the load balancer" in result.stderr
    back = check(check_lab, "true")
    assert back.returncode == 0 and not mark.exists() and "answers the load balancer's health check again" in back.stdout


def test_a_restart_that_removed_the_mark_is_judged_on_its_own_failures(check_lab):
    mark = Path(check_lab["NODE_CHECK_STATE"]) / STORAGE_FAILED
    for _ in range(NODE_CHECK_FAILURES):
        check(check_lab, "false")
    assert mark.exists()
    mark.unlink()  # what a restart of Harbor does (install.py's node-state step before start-harbor.sh)
    assert check(check_lab, "false").returncode == 1 and not mark.exists(), "one failure of the fresh start keeps it in"
    for _ in range(NODE_CHECK_FAILURES - 1):
        check(check_lab, "false")
    assert mark.exists()


def test_the_check_runs_the_probe_against_this_nodes_own_nginx():
    settings = parse(replicas=2)
    service = node_check_service(settings)["Service"]
    assert "PROBE_CONNECT_HOST=127.0.0.1" in service["Environment"] and "PROBE_CONNECT_PLAIN_PORT=8080" in service["Environment"]
    assert f"NODE_CHECK_STATE={NODE_STATE_DIR}" in service["Environment"] and service["ReadWritePaths"] == NODE_STATE_DIR
    probe = node_check_command(settings).partition(" -- ")[2]
    assert probe.split()[:3] == ["/usr/bin/python3", f"{BIN_DIR}/harbor-probe.py", "--verify-stored"]
    assert probe.split()[3] == settings.url and all(image in probe for _name, image in settings.smoke_images)


@pytest.fixture(scope="module")
def ha():
    return run_program({**dev_config(), "harbor-cache:replicas": "3"})


def test_every_node_runs_the_probe_and_its_check(ha):
    for index, probe in enumerate(("harbor-probe", "harbor-probe-1", "harbor-probe-2")):
        host = ha.named(f"{probe}-smoke").inputs["connection"]["host"]
        assert host == ("192.0.2.10" if index == 0 else f"192.0.2.{10 + index}"), "each probe on its own node"
        timer = ha.named(f"{probe}-timer").inputs["create"]
        assert timer.endswith(f"{PROBE_TIMER} {NODE_CHECK_TIMER}")
        assert ha.named(f"{probe}-file-harbor-node-check.timer")


def test_the_ready_location_and_the_state_folder_reach_nginx_before_harbor_starts(ha):
    for node in ("harbor-install", "harbor-install-1"):
        start = {ha.named(f"{node}-start").urn}
        for step in ("nginx-ready", "node-state"):
            registration = ha.named(f"{node}-{step}")
            assert start <= {r.urn for r in ha.registrations if registration.urn in r.dependencies}
        assert ha.named(f"{node}-nginx-ready").inputs["stdin"] == render_nginx_ready()
        assert ha.named(f"{node}-node-state").inputs["triggers"] == ha.named(f"{node}-start").inputs["triggers"]
    assert ha.one("aws:lb/targetGroup:TargetGroup").inputs["healthCheck"]["path"] == READY_PATH
    assert NGINX_READY_MOUNT.startswith("/etc/nginx/conf.d/harbor.http.") and not NGINX_STATE_MOUNT.startswith("/etc/nginx")


def test_one_vm_has_no_node_check():
    single = run_program(dev_config())
    assert not [r for r in single.registrations if "node-check" in r.name or "nginx-ready" in r.name or "node-state" in r.name]
