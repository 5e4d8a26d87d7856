"""Issue 18 point 8: a node whose registry cannot write its storage leaves the load balancer, even
when every pull still passes (a stored smoke image is only read, and Harbor streams what its
registry cannot store).

The real check (files/harbor-write-check.py, run by files/harbor-node-check.sh as the unit runs it)
against a real registry on loopback: Debian's docker-registry (distribution 2.8.2; the upload path,
registry/handlers/blobupload.go, registry/storage/blobwriter.go and linkedblobstore.go, and the
htpasswd authenticator differ from goharbor/distribution's release/2.8 (ea065fef, the line of
Harbor's v2.8.3-harbor.1) only in import paths and io.ReadSeekCloser) started with the registry
config.yml, htpasswd file and core env that Harbor v2.15.2's own prepare renders for an HA node
(../shared/tools/harbor-prepare), only its storage swapped for the filesystem driver (no S3 here),
Redis's blob cache for the in-memory one and its address for loopback. The check reads core's
credential from prepare's core env, as on the node. The registry runs as an unprivileged user, so a
storage tree made read-only (chmod) refuses its writes while it still serves reads, the state of a
registry whose credentials can read the bucket but no longer write it.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import random
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from components.vm.files import FILES_DIR
from components.vm.imds_guard import HARBOR_GATEWAY, HARBOR_SUBNET, render_imds_guard_unit
from components.vm.node_check import (
    CORE_ENV_PATH,
    NODE_CHECK_FAILURES,
    REGISTRY_ADDRESS,
    WRITE_CHECK_SCRIPT,
    node_check_command,
    node_check_files,
    node_check_service,
)
from components.vm.node_ready import STORAGE_FAILED
from components.vm.operate_files import BIN_DIR
from tests.aws.test_imds_reach import docker_user_chain_as_dockerd_sets_it_up
from tests.settings.test_settings import parse
from tests.standins.daemons import require_binaries, stop_process, wait_until
from tests.standins.netns import link, namespaces, require_netns
from tests.vm.test_data_modes import rendered, run_prepare
from tests.vm.test_imds_guard import shell_of, unit_values
from tests.vm.test_real_compose import stock_systemd_root
from tests.vm.test_scripts import run_script

WRITE_CHECK = FILES_DIR / WRITE_CHECK_SCRIPT
CANARY_REPOSITORY = "harbor-cache--node-check/write-canary"
# The registry's user when the tests run as root (root writes through any mode bits).
UNPRIVILEGED = 65534


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))


def loopback_address() -> str:
    """A random address of 127.0.0.0/8 (all loopback on Linux): the registry must listen on the port
    of core's REGISTRY_URL (5000), which another process may hold on 127.0.0.1."""
    return f"127.{random.randint(1, 254)}.{random.randint(0, 254)}.{random.randint(1, 254)}"  # noqa: S311 - not a secret


def lab_registry_command(prepared: Path, directory: Path, listen: str) -> list[str]:
    """docker-registry with prepare's registry config.yml (auth: htpasswd with prepare's passwd file),
    listening on `listen`, storage on the filesystem under directory/storage; run as an unprivileged
    user when the tests run as root (root writes through any mode bits)."""
    storage_root = directory / "storage"
    storage_root.mkdir()
    config = yaml.safe_load((prepared / "config/registry/config.yml").read_text())
    assert config["auth"] == {"htpasswd": {"realm": "harbor-registry-basic-realm", "path": "/etc/registry/passwd"}}
    storage = {key: value for key, value in config["storage"].items() if key not in ("s3", "cache")}
    config["storage"] = {**storage, "filesystem": {"rootdirectory": str(storage_root)}, "cache": {"layerinfo": "inmemory"}}
    config.pop("redis")
    config["http"] = {"addr": listen, "secret": config["http"]["secret"]}
    shutil.copy(prepared / "config/registry/passwd", directory / "passwd")
    config["auth"]["htpasswd"]["path"] = str(directory / "passwd")
    (directory / "config.yml").write_text(yaml.safe_dump(config))
    runner: list[str] = []
    if os.geteuid() == 0:
        require_binaries("setpriv")
        for path in (directory, storage_root):
            os.chown(path, UNPRIVILEGED, UNPRIVILEGED)
        runner = ["setpriv", f"--reuid={UNPRIVILEGED}", f"--regid={UNPRIVILEGED}", "--clear-groups"]
    for path in (directory / "config.yml", directory / "passwd"):
        path.chmod(0o644)
    return [*runner, "docker-registry", "serve", str(directory / "config.yml")]


class LabRegistry:
    """lab_registry_command's registry on 127.x.y.z:<the port of core's REGISTRY_URL>."""

    def __init__(self, prepared: Path, directory: Path) -> None:
        self.directory = directory
        self.address = loopback_address()
        self.port = int(read_env(prepared / "config/core/env")["REGISTRY_URL"].rsplit(":", 1)[1])
        self.storage = directory / "storage"
        command = lab_registry_command(prepared, directory, f"{self.address}:{self.port}")
        self.log = (directory / "registry.log").open("wb")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=self.log)
        wait_until(lambda: self.process.poll() is None and self.status("/v2/") == 401, 20, "docker-registry")

    def status(self, path: str, login: tuple[str, str] | None = None) -> int:
        return self.get(path, login)[0]

    def get(self, path: str, login: tuple[str, str] | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(f"http://{self.address}:{self.port}{path}")
        if login:
            request.add_header("Authorization", "Basic " + base64.b64encode(":".join(login).encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def writable(self, allowed: bool) -> None:
        """Storage the registry's user may (not) write: every folder 0755 (0555), every file 0644 (0444)."""
        for root, folders, files in os.walk(self.storage):
            for name in folders:
                Path(root, name).chmod(0o755 if allowed else 0o555)
            for name in files:
                Path(root, name).chmod(0o644 if allowed else 0o444)
        self.storage.chmod(0o755 if allowed else 0o555)

    def files(self) -> list[str]:
        return sorted(str(path.relative_to(self.storage)) for path in self.storage.rglob("*") if path.is_file())

    def stop(self) -> None:
        stop_process(self.process, self.log)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """What Harbor v2.15.2's prepare renders for an HA node (s3, external stores)."""
    return run_prepare(rendered(replicas=2), tmp_path_factory.mktemp("prepare-ha"))


@pytest.fixture
def registry(prepared):
    require_binaries("docker-registry")
    # Not under pytest's tmp_path (0700, root's): the registry's unprivileged user must reach it.
    directory = Path(tempfile.mkdtemp(prefix="harbor-write-check-"))
    directory.chmod(0o755)
    lab = LabRegistry(prepared, directory)
    yield lab
    lab.stop()
    lab.writable(True)
    shutil.rmtree(directory, ignore_errors=True)


def node_check(registry: LabRegistry, prepared: Path, state: Path, probe: str = "true") -> subprocess.CompletedProcess:
    """harbor-node-check.sh as the unit runs it: the write check, `--`, then the probe (a stand-in
    here: the probe's own tests are tests/vm/test_probe*.py)."""
    env = {"NODE_CHECK_STATE": str(state / "nginx"), "NODE_CHECK_COUNT": str(state / "lib" / "failures")}
    env["NODE_CHECK_FAILURES"] = str(NODE_CHECK_FAILURES)
    write_check = [sys.executable, str(WRITE_CHECK), str(prepared / "config/core/env"), registry.address]
    return run_script("harbor-node-check.sh", env, *write_check, "--", probe)


def test_a_registry_that_cannot_write_takes_the_node_out_though_reads_still_work(registry, prepared, tmp_path):
    core = read_env(prepared / "config/core/env")
    login = (core["REGISTRY_CREDENTIAL_USERNAME"], core["REGISTRY_CREDENTIAL_PASSWORD"])
    mark = tmp_path / "nginx" / STORAGE_FAILED

    first = node_check(registry, prepared, tmp_path)
    assert first.returncode == 0 and not mark.exists(), first.stdout + first.stderr
    assert '"ok": true' in first.stdout and '"step": "done"' in first.stdout
    stored = registry.files()
    assert any(name.endswith("/data") and name.startswith("docker/registry/v2/blobs/") for name in stored), stored
    assert any(f"repositories/{CANARY_REPOSITORY}/_layers/sha256/" in name for name in stored), stored

    # A fixed canary: further runs write again (below) yet leave exactly what the first left.
    for _ in range(2):
        assert node_check(registry, prepared, tmp_path).returncode == 0
    assert registry.files() == stored, "upload folders removed, one blob and one link whatever the number of runs"

    registry.writable(False)
    canary = f"/v2/{CANARY_REPOSITORY}/blobs/sha256:"
    digest = next(name.split("/")[-2] for name in stored if "/_layers/sha256/" in name)
    status, body = registry.get(f"{canary}{digest}", login)
    assert status == 200 and b"write check" in body, "reads still work: the pull probe alone would pass"

    failed = node_check(registry, prepared, tmp_path)
    assert failed.returncode == 1 and not mark.exists(), "one failed run keeps the node in"
    assert "write check failed (storage write)" in failed.stderr and "cannot write to its storage" in failed.stderr
    # The driver's own error: EACCES (13) creating the upload's folder.
    assert "POST answered 500" in failed.stderr and '"Op": "mkdir"' in failed.stderr and '"Err": 13' in failed.stderr
    assert "harbor-write-check.py (exit 1)" in failed.stderr
    for _ in range(NODE_CHECK_FAILURES - 1):
        failed = node_check(registry, prepared, tmp_path)
    assert failed.returncode == 1 and mark.exists(), failed.stderr
    assert "out of the load balancer" in failed.stderr
    for output in (failed.stdout, failed.stderr, first.stdout, first.stderr, (registry.directory / "registry.log").read_text()):
        assert login[1] not in output, "the registry's password is never printed"

    registry.writable(True)
    back = node_check(registry, prepared, tmp_path)
    assert back.returncode == 0 and not mark.exists(), back.stderr
    assert "answers the load balancer's health check again" in back.stdout


def test_a_failing_probe_still_counts_when_the_write_check_passes(registry, prepared, tmp_path):
    mark = tmp_path / "nginx" / STORAGE_FAILED
    for _ in range(NODE_CHECK_FAILURES):
        result = node_check(registry, prepared, tmp_path, probe="false")
    assert result.returncode == 1 and mark.exists()
    assert "failed: false (exit 1)" in result.stderr and "harbor-write-check" not in result.stderr


def check_alone(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(WRITE_CHECK), *args], capture_output=True, text=True, timeout=60, env={**os.environ, **env}
    )


def test_a_wrong_credential_is_named_as_auth(registry, prepared, tmp_path):
    core = (prepared / "config/core/env").read_text()
    password = read_env(prepared / "config/core/env")["REGISTRY_CREDENTIAL_PASSWORD"]
    stale = tmp_path / "env"
    stale.write_text(
        core.replace(f"REGISTRY_CREDENTIAL_PASSWORD={password}", "REGISTRY_CREDENTIAL_PASSWORD=drawn-by-a-later-prepare")
    )
    result = check_alone(str(stale), registry.address)
    assert result.returncode == 1 and "write check failed (auth)" in result.stderr and "401" in result.stderr
    assert "drawn-by-a-later-prepare" not in result.stdout + result.stderr


def test_a_registry_that_is_down_is_named_as_connect(prepared):
    # A loopback address nothing listens on (the lab's registries pick their own at random).
    result = check_alone(str(prepared / "config/core/env"), loopback_address(), WRITE_CHECK_TIMEOUT="5")
    assert result.returncode == 1 and "write check failed (connect)" in result.stderr, result.stderr
    assert "is the registry container up?" in result.stderr


def test_a_canary_that_reads_back_wrong_is_named_as_storage_read(registry, prepared, tmp_path):
    assert node_check(registry, prepared, tmp_path).returncode == 0
    # The stored canary altered in place: the upload still succeeds (moveBlob keeps an existing
    # blob), what the registry serves is not what was written.
    data = next(path for path in registry.storage.rglob("data") if "/blobs/sha256/" in str(path))
    data.write_bytes(b"x" * len(data.read_bytes()))
    result = check_alone(str(prepared / "config/core/env"), registry.address)
    assert result.returncode == 1 and "write check failed (storage read)" in result.stderr, result.stderr
    assert "83 bytes of other content" in result.stderr


def test_a_missing_env_file_is_named_as_config(tmp_path):
    result = check_alone(str(tmp_path / "absent"), "127.0.0.1")
    assert result.returncode == 1 and "write check failed (config)" in result.stderr and "absent" in result.stderr


# The node's network: the host reaches the registry's fixed address


def test_the_units_command_reaches_the_registry_at_its_fixed_address_through_the_nodes_firewall(prepared, tmp_path):
    """The unit's own write-check arguments (core env, REGISTRY_ADDRESS) from the host, over Harbor's
    bridge on the fixed subnet, to the registry listening on prepare's `:5000` in its own network
    namespace (the container's), with the host's firewall as a node has it: a default-deny INPUT as
    ufw leaves it (established connections accepted), the guard unit's ExecStart lines, Docker's
    DOCKER-USER chain and masquerade rule. The registry's port is published nowhere; the host reaches
    it as a peer on the bridge."""
    require_netns("curl")
    require_binaries("docker-registry")
    directory = Path(tempfile.mkdtemp(prefix="harbor-write-check-netns-"))
    directory.chmod(0o755)
    settings = parse(replicas=2)
    write, _, _probe = node_check_command(settings).partition(" -- ")
    script, core_env, address = write.split()[2:]
    assert (script, core_env, address) == (f"{BIN_DIR}/{WRITE_CHECK_SCRIPT}", CORE_ENV_PATH, REGISTRY_ADDRESS)
    listen = yaml.safe_load((prepared / "config/registry/config.yml").read_text())["http"]["addr"]
    assert listen == ":5000"
    subnet = ipaddress.ip_network(HARBOR_SUBNET)
    try:
        with namespaces("host", "reg") as ns:
            host, reg = ns["host"], ns["reg"]
            host.run("iptables", "-w", "-A", "INPUT", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
            host.run("iptables", "-w", "-P", "INPUT", "DROP")
            for line in unit_values(render_imds_guard_unit(settings), "Service", "ExecStart"):
                assert host.run("/bin/sh", "-c", shell_of(line), check=False).returncode == 0, line
            docker_user_chain_as_dockerd_sets_it_up(host)
            bridge = "harbor0"
            host.run("ip", "link", "add", bridge, "type", "bridge")
            host.run("ip", "addr", "add", f"{HARBOR_GATEWAY}/{subnet.prefixlen}", "dev", bridge)
            host.run("ip", "link", "set", bridge, "up")
            host_end, _ = link(host, "", reg, f"{address}/{subnet.prefixlen}")
            host.run("ip", "link", "set", host_end, "master", bridge)
            reg.run("ip", "route", "add", "default", "via", HARBOR_GATEWAY)
            host.run("iptables", "-t", "nat", "-A", "POSTROUTING", "-s", str(subnet), "!", "-o", bridge, "-j", "MASQUERADE")
            log = directory / "registry.log"
            reg.start(*lab_registry_command(prepared, directory, listen), log=log)
            url = f"http://{address}:5000/v2/"

            def challenged() -> bool:
                return (
                    host.run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "1", url, check=False).stdout
                    == "401"
                )

            wait_until(challenged, 20, f"docker-registry in its namespace ({log.read_text() if log.exists() else ''})")
            env = {
                "PATH": os.environ["PATH"],
                "NODE_CHECK_STATE": str(tmp_path / "nginx"),
                "NODE_CHECK_COUNT": str(tmp_path / "lib" / "failures"),
                "NODE_CHECK_FAILURES": str(NODE_CHECK_FAILURES),
            }
            write_check = [sys.executable, str(WRITE_CHECK), str(prepared / "config/core/env"), address]
            node = FILES_DIR / "harbor-node-check.sh"
            result = host.run("bash", str(node), *write_check, "--", "true", env=env, check=False, timeout=120)
            assert result.returncode == 0 and '"ok": true' in result.stdout, result.stdout + result.stderr
            requests = log.read_text()
            assert f"{HARBOR_GATEWAY} " in requests or f"{HARBOR_GATEWAY}:" in requests, "from the host's end of the bridge"
            assert f"PUT /v2/{CANARY_REPOSITORY}/blobs/uploads/" in requests, requests[-2000:]
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# The unit


def test_the_unit_runs_the_write_check_then_the_verified_probe_with_no_secret_on_its_command_line():
    settings = parse(replicas=2)
    command = node_check_command(settings)
    write, _, probe = command.partition(" -- ")
    assert write.split()[1:] == ["/usr/bin/python3", f"{BIN_DIR}/{WRITE_CHECK_SCRIPT}", CORE_ENV_PATH, REGISTRY_ADDRESS]
    assert CORE_ENV_PATH == "/opt/harbor/harbor/common/config/core/env" and REGISTRY_ADDRESS == "10.255.254.2"
    assert probe.split()[:3] == ["/usr/bin/python3", f"{BIN_DIR}/harbor-probe.py", "--verify-stored"]
    assert probe.split()[3] == settings.url and all(image in probe for _name, image in settings.smoke_images)
    service = node_check_service(settings)["Service"]
    assert "PROBE_STORE_WAIT=120" in service["Environment"] and "LoadCredential" not in service
    assert int(service["TimeoutStartSec"]) >= 300 + 420 * len(settings.smoke_images)


def test_private_projects_are_pulled_with_the_robot_and_no_smoke_image_leaves_the_write_check():
    private = parse(
        replicas=2, upstreams=[{"name": "quay", "type": "docker-registry", "url": "https://quay.io", "public": False}]
    )
    service = node_check_service(private)["Service"]
    assert (
        "--private quay-proxy" in service["ExecStart"]
        and service["LoadCredential"] == "probe:/etc/harbor-cache/probe-credentials"
    )
    silent = parse(replicas=2, smokeImages={name: "" for name, _image in parse(replicas=2).smoke_images})
    assert silent.smoke_images == ()
    assert " -- " not in node_check_command(silent) and "harbor-probe.py" not in node_check_command(silent)


def test_the_node_check_units_pass_systemd_analyze_verify(tmp_path):
    # The host's stock units and the files the node gets, at their paths (ExecStart's script exists).
    root = stock_systemd_root(tmp_path)
    names = []
    for path, content in node_check_files(parse(replicas=2)).items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        target.chmod(0o755 if path.startswith(f"{BIN_DIR}/") else 0o644)
        if path.endswith((".service", ".timer")):
            names.append(Path(path).name)
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", f"--root={root}", *names], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
