"""Issue 13 step 3, what lies on each Harbor node in HA mode, checked by the real tools: Harbor's own
`prepare` (../shared/tools/harbor-prepare, v2.15.2) runs twice, as two nodes, each after the shared
files were laid down by the very commands the deploy runs (components/vm/install.py write_file_command), and
the Docker Compose v2 binary merges each node's generated compose file with our override.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import secrets
import shlex
import shutil
import stat
import string
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.vm import operate_files
from components.vm import probe as harbor_probe
from components.vm.compose_override import ComposeDumper, compose_override
from components.vm.files import FILES_DIR, render_compose_override, vm_files
from components.vm.ha_node import (
    HARBOR_KEY_FILE,
    NGINX_KEEPALIVE_MOUNT,
    NGINX_KEEPALIVE_NAME,
    NGINX_KEEPALIVE_PATH,
    SIGNING_CERT_FILE,
    SIGNING_KEY_FILE,
    nginx_keepalive_timeout,
    render_nginx_keepalive,
    shared_secret_files,
)
from components.vm.harbor_yml import render_harbor_yml
from components.vm.install import PREVIOUS_KEY_SUFFIX, readiness_environment, shared_file_commands
from components.vm.paths import ENVRC_PATH, HARBOR_CURRENT, HARBOR_HTTP_PORT, TRAEFIK_DYNAMIC_PATH
from components.vm.secret_values import SharedSecretValues
from tests.conftest import unavailable
from tests.paths import REFERENCE
from tests.settings.test_settings import parse
from tests.standins.loopback_http import LoopbackHttp
from tests.vm.test_data_modes import ENDPOINTS, SECRETS
from tests.vm.test_real_compose import compose_config, published, tools, vm_layout

ZONE_ID = "Z0123456789EXAMPLE"
NODES = ("node-a", "node-b")
# Where prepare sees the data volume (g.py data_dir); the dev stack's dataMount is the same path,
# so the deploy's own commands, run inside prepare's mount namespace, write where prepare reads.
PREPARE_DATA = "/data"
# The services that read each value prepare would otherwise draw per node and per run.
READERS = {
    "CORE_SECRET": ("core", "jobservice", "registryctl"),
    "JOBSERVICE_SECRET": ("core", "jobservice", "registryctl"),
    "CSRF_KEY": ("core",),
    "ROBOT_SCANNER_NAME_PREFIX": ("core",),
    "REGISTRY_HTTP_SECRET": ("registry",),
}
# Host ports of an HA node: nginx for the load balancer, metrics and Harbor's syslog on loopback.
ALLOWED_PUBLISHED = {("proxy", "0.0.0.0", "8080"), ("proxy", "127.0.0.1", "9090"), ("log", "127.0.0.1", "1514")}
FIELDS = {
    "CORE_SECRET": "core_secret",
    "JOBSERVICE_SECRET": "jobservice_secret",
    "CSRF_KEY": "csrf_key",
    "ROBOT_SCANNER_NAME_PREFIX": "scan_robot_prefix",
    "REGISTRY_HTTP_SECRET": "registry_http_secret",
}


def alphanumeric(length: int) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(length))


def token_key_and_certificate(work: Path) -> tuple[str, str]:
    """An RSA key (PKCS#1 PEM, as pulumi_tls's private_key_pem) and a self-signed certificate, by openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is missing")
    key, cert = work / "token.key", work / "token.crt"
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(key), "2048"], check=True, capture_output=True)
    subprocess.run(
        ["openssl", "req", "-new", "-x509", "-key", str(key), "-out", str(cert), "-days", "3650", "-subj", "/CN=harbor-token"],
        check=True,
        capture_output=True,
    )
    return key.read_text(), cert.read_text()


@pytest.fixture(scope="module")
def ha_settings():
    settings = parse(replicas=2)
    assert settings.high_availability and settings.data_mount == PREPARE_DATA
    return settings


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> SharedSecretValues:
    key, cert = token_key_and_certificate(tmp_path_factory.mktemp("token"))
    return SharedSecretValues(
        secret_key=alphanumeric(16),
        token_private_key_pem=key,
        token_certificate_pem=cert,
        core_secret=alphanumeric(16),
        jobservice_secret=alphanumeric(16),
        csrf_key=alphanumeric(32),
        registry_http_secret=alphanumeric(32),
        scan_robot_prefix=alphanumeric(8),
        admin_password="Admin-Passw0rd",
    )


def seeding_python(work: Path, commands: list[tuple[str, str]]) -> Path:
    """A PYTHON for harbor-prepare that first runs the deploy's write commands (content on stdin, as
    pulumi-command sends it) inside prepare's mount namespace, then Harbor's prepare itself."""
    lines = ["#!/usr/bin/env bash", "set -euo pipefail", 'if [ "${1:-}" = main.py ]; then']
    for index, (command, content) in enumerate(commands):
        source = work / f"stdin-{index}"
        source.write_text(content)
        # Root already: the command as the deploy sends it, without its sudo.
        lines.append(f"  {command.removeprefix('sudo ')} < {shlex.quote(str(source))}")
    lines += ["fi", f"exec {shlex.quote(sys.executable)} " + '"$@"']
    wrapper = work / "python-seeding"
    wrapper.write_text("\n".join(lines) + "\n")
    wrapper.chmod(0o755)
    return wrapper


def prepare_node(settings, shared, work: Path) -> Path:
    """One node: the shared files laid down, then Harbor's prepare on the HA harbor.yml."""
    _, script = tools()
    work.mkdir(parents=True)
    files = shared_secret_files(settings, shared)
    commands = [(command, files[path]) for path, command in shared_file_commands(settings).values()]
    assert len(commands) == len(files)
    source = work / "harbor.yml"
    source.write_text(render_harbor_yml(settings, SECRETS, ENDPOINTS))
    out = work / "prepared"
    result = subprocess.run(
        ["bash", str(script), str(source), str(out)],
        env={**os.environ, "PYTHON": str(seeding_python(work, commands))},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture(scope="module")
def nodes(ha_settings, shared, tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """node -> (prepare's output, the merged compose model of that node)."""
    found = {}
    override = render_compose_override(ha_settings, ZONE_ID, shared)
    for node in NODES:
        root = tmp_path_factory.mktemp(node)
        prepared = prepare_node(ha_settings, shared, root / "prepare")
        found[node] = (prepared, compose_config(vm_layout(prepared, override, root / "vm")))
    return found


def env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))


def test_prepare_loads_the_laid_down_secret_key_and_keeps_the_token_key_and_certificate(nodes, shared):
    for prepared, _ in nodes.values():
        log = (prepared / "prepare.log").read_text()
        assert f"loaded secret from file: {PREPARE_DATA}/{HARBOR_KEY_FILE}" in log, log
        assert "Generated and saved secret" not in log
        data = prepared / "data"
        assert (data / HARBOR_KEY_FILE).read_bytes() == shared.secret_key.encode()
        assert (data / SIGNING_KEY_FILE).read_bytes() == shared.token_private_key_pem.encode()
        assert (data / SIGNING_CERT_FILE).read_bytes() == shared.token_certificate_pem.encode()
        for relative in (HARBOR_KEY_FILE, SIGNING_KEY_FILE, SIGNING_CERT_FILE):
            info = (data / relative).stat()
            # As prepare's mark_file leaves its own (utils/misc.py): 0600, 10000:10000.
            assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o600, 10000, 10000), relative


def test_every_reader_of_a_per_run_value_gets_the_shared_one_on_every_node(nodes, shared):
    for variable, services in READERS.items():
        expected = getattr(shared, FIELDS[variable])
        for node, (_prepared, merged) in nodes.items():
            for service in services:
                assert merged["services"][service]["environment"][variable] == expected, (node, service, variable)


def test_without_the_override_the_nodes_would_disagree(nodes, shared):
    """prepare draws its own values on every run: the env files of the two nodes differ from each
    other and from the shared values, so the override is what makes the nodes agree."""
    (first, _), (second, _) = nodes.values()
    for component in ("core", "jobservice", "registryctl"):
        one, two = env_file(first / "config" / component / "env"), env_file(second / "config" / component / "env")
        assert one["CORE_SECRET"] != two["CORE_SECRET"] and shared.core_secret not in (one["CORE_SECRET"], two["CORE_SECRET"])
    registry = yaml.safe_load((first / "config" / "registry" / "config.yml").read_text())
    assert registry["http"]["secret"] == "placeholder", "prepare's public word, replaced by REGISTRY_HTTP_SECRET"


def test_the_token_certificate_the_registry_mounts_and_the_key_core_mounts_are_the_shared_ones(nodes, ha_settings):
    for _, merged in nodes.values():
        mounts = {
            (service, volume["target"]): volume["source"]
            for service in ("core", "registry")
            for volume in merged["services"][service]["volumes"]
        }
        assert mounts[("core", "/etc/core/key")] == f"{ha_settings.data_mount}/{HARBOR_KEY_FILE}"
        assert mounts[("core", "/etc/core/private_key.pem")] == f"{ha_settings.data_mount}/{SIGNING_KEY_FILE}"
        assert mounts[("registry", "/etc/registry/root.crt")] == f"{ha_settings.data_mount}/{SIGNING_CERT_FILE}"


def test_an_ha_node_runs_no_traefik_and_publishes_nginx_for_the_load_balancer(nodes):
    for _, merged in nodes.values():
        services = merged["services"]
        assert "traefik" not in services
        assert ("0.0.0.0", "8080", 8080) in published(services["proxy"])
        # The rest of Harbor is published nowhere else (the syslog port stays on loopback).
        for name, service in services.items():
            for host_ip, port, _target in published(service):
                assert (name, host_ip, port) in {
                    ("proxy", "0.0.0.0", "8080"),
                    ("proxy", "127.0.0.1", "9090"),
                    ("log", "127.0.0.1", "1514"),
                }
        assert "postgresql" not in services and "redis" not in services


def test_single_vm_files_are_what_they_were():
    """One VM: the override is compose_override's data as before (Traefik, nginx on loopback) and no
    shared file lands; HA: no Traefik routes, and the three shared files."""
    settings = parse()
    text = render_compose_override(settings, ZONE_ID)
    before = yaml.dump(
        compose_override(settings, ZONE_ID),
        Dumper=ComposeDumper,
        sort_keys=False,
        default_flow_style=False,
        width=1000,
    )
    assert text == before and "CORE_SECRET" not in text
    single = set(vm_files(settings, SECRETS, ZONE_ID))
    assert TRAEFIK_DYNAMIC_PATH in single and not any("/secret/" in path for path in single)
    assert NGINX_KEEPALIVE_PATH not in single and NGINX_KEEPALIVE_NAME not in text


def test_ha_files_have_no_traefik_routes_and_the_shared_files(ha_settings, shared):
    files = vm_files(ha_settings, SECRETS, ZONE_ID, shared)
    assert TRAEFIK_DYNAMIC_PATH not in files
    assert files[NGINX_KEEPALIVE_PATH] == render_nginx_keepalive()
    assert {path for path in files if "/secret/" in path} == set(shared_secret_files(ha_settings, shared))
    assert "TRAEFIK" not in files[ENVRC_PATH] and "ACME" not in files[ENVRC_PATH]


# The remote commands in HA mode: start-harbor.sh keeps the override private, wait-healthy.sh asks nginx.


@pytest.mark.parametrize("mode", [0o644, 0o600])
def test_start_copies_the_override_with_the_mode_the_deploy_gave_it(tmp_path, mode):
    """start-harbor.sh against a scratch install (prepare and systemctl stubbed, install real): the
    HA override holds the shared secrets and stays 0600 in the install folder; the single VM's 0644."""
    if os.geteuid() != 0:
        unavailable("install -o 10000 needs root (CI runs as root)")
    root, bin_dir = tmp_path / "opt", tmp_path / "bin"
    (root / "harbor").mkdir(parents=True)
    bin_dir.mkdir()
    (root / "harbor.yml").write_text("hostname: x\n")
    override = root / "docker-compose.override.yml"
    override.write_text("services: {}\n")
    override.chmod(mode)
    for component in ("core", "registryctl", "db", "jobservice", "exporter"):
        (root / "harbor" / "common" / "config" / component).mkdir(parents=True)
        (root / "harbor" / "common" / "config" / component / "env").write_text("X=1\n")
    (root / "harbor" / "prepare").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sudo").write_text('#!/bin/sh\nshift 2\nexec "$@"\n')  # `sudo -u harbor cmd` -> cmd
    (bin_dir / "systemctl").write_text("#!/bin/sh\nexit 0\n")
    for executable in (root / "harbor" / "prepare", bin_dir / "sudo", bin_dir / "systemctl"):
        executable.chmod(0o755)
    env = {
        **os.environ,
        "HARBOR_ROOT": str(root),
        "HARBOR_DATA": str(tmp_path / "data"),
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
    }
    result = subprocess.run(["bash", str(FILES_DIR / "start-harbor.sh")], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    copied = (root / "harbor" / "docker-compose.override.yml").stat()
    assert (stat.S_IMODE(copied.st_mode), copied.st_uid) == (mode, 10000)


class PlainHealth(LoopbackHttp):
    """Harbor's nginx on an HA node's loopback (plain HTTP): healthy after `unhealthy_for` answers;
    records the Host and X-Forwarded-Proto of each request."""

    def __init__(self, unhealthy_for: int) -> None:
        self.seen: list[tuple[str, str, str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                outer.seen.append((self.path, self.headers.get("Host", ""), self.headers.get("X-Forwarded-Proto", "")))
                status = "unhealthy" if len(outer.seen) <= unhealthy_for else "healthy"
                body = json.dumps({"status": status}).encode()
                self.send_response(200 if self.path == "/api/v2.0/health" else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler)


def test_readiness_gate_of_an_ha_node_asks_its_own_nginx_under_the_public_name(ha_settings):
    if shutil.which("curl") is None:
        unavailable("curl is missing")
    nginx = PlainHealth(unhealthy_for=2)
    env = {**readiness_environment(ha_settings), "HEALTH_LOCAL_PORT": str(nginx.port), "HEALTH_INTERVAL": "0.2"}
    try:
        result = subprocess.run(
            ["bash", str(FILES_DIR / "wait-healthy.sh"), ha_settings.hostname, "30"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        nginx.stop()
    assert result.returncode == 0, result.stderr
    assert f"Harbor is healthy at http://127.0.0.1:{nginx.port}" in result.stdout
    assert nginx.seen == [("/api/v2.0/health", ha_settings.hostname, "https")] * 3
    assert readiness_environment(ha_settings)["HEALTH_LOCAL_PORT"] == "8080"
    assert "traefik" not in readiness_environment(ha_settings)["HEALTH_LOG_CONTAINERS"]


def test_the_probe_of_an_ha_node_asks_its_own_nginx_and_no_single_address(ha_settings):
    """Deploy step and timer alike: plain HTTP to the node's nginx under the public name; the name
    must resolve but is an alias of the load balancer, so no --expect-address. One VM: unchanged."""
    command = harbor_probe.probe_command(ha_settings, "192.0.2.10", ["dockerhub-proxy/library/busybox:1.37"], False)
    assert command.startswith("PROBE_CONNECT_HOST=127.0.0.1 PROBE_CONNECT_PLAIN_PORT=8080 ")
    assert " python3 - --verify-stored --metric SmokeFailures " in command
    assert "--expect-address" not in command
    unit = operate_files.probe_service(ha_settings)["Service"]["Environment"]
    assert {"PROBE_CONNECT_HOST=127.0.0.1", "PROBE_CONNECT_PLAIN_PORT=8080"} <= set(unit)
    single = parse()
    single_command = harbor_probe.probe_command(single, "192.0.2.10", ["a/b:1"], False)
    assert single_command.startswith("PROBE_CONNECT_HOST=127.0.0.1 ") and "PLAIN" not in single_command
    assert single_command.endswith(
        "python3 - --expect-address 192.0.2.10 --verify-stored --metric SmokeFailures https://harbor.dev.example.com a/b:1"
    )
    assert not any("PLAIN" in line for line in operate_files.probe_service(single)["Service"]["Environment"])


def test_the_secret_key_a_node_held_before_is_kept_once(ha_settings, tmp_path):
    """The harbor-key command as the deploy sends it (paths moved under a scratch folder, no sudo):
    node 0's own key (its local database's) is kept beside the shared one, once; a node that had
    none keeps nothing."""
    if os.geteuid() != 0:
        unavailable("install -o 10000 needs root (CI runs as root)")
    path, command = shared_file_commands(ha_settings)["harbor-key"]
    local = tmp_path / path.lstrip("/")
    command = command.removeprefix("sudo ").replace(path, str(local))

    def run(content: str) -> None:
        subprocess.run(["bash", "-c", command], input=content, text=True, check=True)

    run("SharedKey0000001")
    assert local.read_text() == "SharedKey0000001" and not Path(f"{local}{PREVIOUS_KEY_SUFFIX}").exists()
    local.write_text("NodeOwnKey000001")  # as if prepare had made it on the single VM
    run("SharedKey0000002")
    run("SharedKey0000003")
    assert local.read_text() == "SharedKey0000003"
    kept = Path(f"{local}{PREVIOUS_KEY_SUFFIX}")
    assert kept.read_text() == "NodeOwnKey000001", "the first key it replaced, not a later shared one"
    info = local.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o600, 10000)


# --- Keep-alive behind the load balancer: nginx keeps idle connections longer than the ALB does ---

REFERENCE_PREPARE = REFERENCE / "harbor-v2.15.2-prepare"


def nginx_mounts(proxy: dict, files: dict[str, str], scratch: Path) -> list[tuple[str, str, bool]]:
    """(source on this machine, target, read only) of the nginx container's binds under /etc/nginx, as
    compose resolved them; a source on the node (a file the deploy lays there) is its rendered copy."""
    mounts = []
    for volume in proxy["volumes"]:
        if volume["type"] != "bind" or not volume["target"].startswith("/etc/nginx"):
            continue
        source = volume["source"]
        if source in files:
            copy = scratch / source.lstrip("/")
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_text(files[source])
            source = str(copy)
        mounts.append((source, volume["target"], bool(volume.get("read_only"))))
    # As Docker mounts them: shallower targets first (moby daemon/volumes.go sortMounts).
    return sorted(mounts, key=lambda mount: mount[1].count("/"))


def upstream_hosts(nginx_conf: str) -> set[str]:
    """The container names Harbor's nginx proxies to (`server core:8080;` in its upstream blocks)."""
    return set(re.findall(r"^\s*server\s+([a-z][\w-]*):\d+;", nginx_conf, re.MULTILINE))


def block_containing(text: str, marker: str) -> str:
    """The innermost `{ ... }` block of nginx config text that contains `marker`."""
    at = text.index(marker)
    start = text.rindex("{", 0, at)
    while text.count("{", start + 1, at) > text.count("}", start + 1, at):  # a nested block closed before `marker`
        start = text.rindex("{", 0, start)
    depth, end = 0, start
    for end in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0:
            break
    return text[start : end + 1]


def nginx_dump(mounts: list[tuple[str, str, bool]], hosts: set[str], work: Path) -> subprocess.CompletedProcess:
    """`nginx -T` of the node's /etc/nginx in a private mount namespace: the binds the container gets,
    Harbor's upstream names resolving to loopback (on the node, Docker's DNS resolves them to the
    containers; nginx resolves upstream servers while it reads the configuration) and a private /tmp
    for the temp folders Harbor's nginx.conf names. Nothing outside the namespace changes."""
    hosts_file = work / "hosts"
    hosts_file.write_text("127.0.0.1 localhost " + " ".join(sorted(hosts)) + "\n")
    lines = ["set -eu", f"mount --bind {shlex.quote(str(hosts_file))} /etc/hosts"]
    for source, target, read_only in mounts:
        # A file bind needs a file to land on: Docker (runc) creates it the same way.
        if Path(source).is_file():
            lines.append(f"[ -e {shlex.quote(target)} ] || touch {shlex.quote(target)}")
        lines.append(f"mount {'-o bind,ro' if read_only else '--bind'} {shlex.quote(source)} {shlex.quote(target)}")
    lines += ["mount -t tmpfs tmpfs /tmp", "exec nginx -T -c /etc/nginx/nginx.conf"]
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "bash", "-c", "\n".join(lines)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def nginx_tools() -> None:
    if shutil.which("nginx") is None:
        unavailable("nginx is missing (Debian package nginx)")
    if os.geteuid() != 0 or shutil.which("unshare") is None or not Path("/etc/nginx").is_dir():
        unavailable("nginx -T on the node's files needs root, unshare and /etc/nginx to mount over")


def test_the_ha_override_mounts_the_keepalive_snippet_read_only_into_nginxs_conf_d(nodes):
    for _, merged in nodes.values():
        binds = {volume["target"]: volume for volume in merged["services"]["proxy"]["volumes"]}
        snippet = binds[NGINX_KEEPALIVE_MOUNT]
        assert (snippet["type"], snippet["source"], snippet.get("read_only")) == ("bind", NGINX_KEEPALIVE_PATH, True)
        # Beside harbor.yml and the override, not in the install folder an upgrade replaces.
        assert not snippet["source"].startswith(HARBOR_CURRENT + "/")
        # Inside the folder Harbor's nginx reads its configuration from, under the name its server block includes.
        assert binds["/etc/nginx"]["source"].endswith("/common/config/nginx")


def test_real_nginx_takes_the_keepalive_snippet_inside_harbors_server_block(nodes, ha_settings, shared, tmp_path):
    """Harbor's own nginx.conf (prepare's output) with the binds compose gives the nginx container:
    real nginx accepts it, and the snippet's keepalive_timeout is included in the server on 8080, the
    port the load balancer forwards to, and is longer than the load balancer's idle timeout."""
    from components.aws.load_balancer import IDLE_TIMEOUT_SECONDS

    nginx_tools()
    prepared, merged = nodes[NODES[0]]
    files = vm_files(ha_settings, SECRETS, ZONE_ID, shared)
    mounts = nginx_mounts(merged["services"]["proxy"], files, tmp_path / "node")
    nginx_conf = (prepared / "config" / "nginx" / "nginx.conf").read_text()
    hosts = upstream_hosts(nginx_conf)
    assert hosts and hosts <= set(merged["services"]), "nginx's upstreams are services on Harbor's network"
    result = nginx_dump(mounts, hosts, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr
    main, _, rest = result.stdout.partition(f"# configuration file {NGINX_KEEPALIVE_MOUNT}:")
    assert rest, f"nginx did not read {NGINX_KEEPALIVE_MOUNT}:\n{result.stdout[:3000]}"
    server = block_containing(main, f"listen {HARBOR_HTTP_PORT};")
    assert "include /etc/nginx/conf.d/harbor.http.*.conf;" in server
    snippet = rest.split("# configuration file ", 1)[0]
    (seconds,) = re.findall(r"^keepalive_timeout (\d+)s;$", snippet, re.MULTILINE)
    assert int(seconds) == nginx_keepalive_timeout() > IDLE_TIMEOUT_SECONDS
    assert "keepalive_timeout" not in main, "Harbor's own configuration sets none (nginx's default 75 s)"


def test_prepare_copies_no_nginx_snippet_itself(tmp_path):
    """Why the snippet is mounted: prepare v2.15.2's copy_nginx_location_configs_if_exist
    (utils/nginx.py) builds a lazy map(...) and never iterates it, so nothing is copied."""
    if not REFERENCE_PREPARE.is_dir():
        unavailable(f"{REFERENCE_PREPARE} is missing")
    source, destination = tmp_path / "ext", tmp_path / "conf.d"
    source.mkdir()
    destination.mkdir()
    (source / NGINX_KEEPALIVE_NAME).write_text(render_nginx_keepalive())
    code = (
        "import sys; from utils.nginx import copy_nginx_location_configs_if_exist as copy;"
        " copy(sys.argv[1], sys.argv[2], 'harbor.http.*.conf')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(source), str(destination)],
        cwd=REFERENCE_PREPARE,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert list(destination.iterdir()) == [] and "Copying nginx" not in result.stdout
