"""Renders every file that lands on the Harbor VM, from settings to text.

Pure functions: the remote commands deploy exactly what `python -m components.render` shows a
reviewer. Structured files are built as data and serialised, never templated as strings.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from components.settings.settings import Settings
from components.vm.compose_override import ComposeDumper, compose_override, with_registry_redis_tls
from components.vm.envrc import render_envrc
from components.vm.ha_node import (
    NGINX_KEEPALIVE_PATH,
    ha_node_override,
    render_nginx_keepalive,
    shared_secret_files,
    with_nginx_keepalive,
    with_shared_secrets,
)
from components.vm.harbor_yml import render_harbor_yml
from components.vm.imds_guard import IMDS_GUARD_PATH, imds_guarded, render_imds_guard_unit, with_imds_client_addresses
from components.vm.node_ready import NGINX_READY_PATH, render_nginx_ready, with_nginx_ready
from components.vm.paths import (
    COMPOSE_OVERRIDE_PATH,
    DOCKER_DROPIN_PATH,
    ENVRC_PATH,
    HARBOR_YML_PATH,
    SYSTEMD_UNIT_PATH,
    TRAEFIK_DYNAMIC_PATH,
)
from components.vm.secret_values import HarborSecrets, SharedSecretValues
from components.vm.systemd import render_docker_dropin, render_systemd_unit
from components.vm.traefik import render_traefik_dynamic_config

FILES_DIR = Path(__file__).resolve().parents[2] / "files"
# Scripts in files/ and the order the install runs them in.
SCRIPTS = ("install-docker.sh", "harbor-user.sh", "data-volume.sh", "install-harbor.sh", "start-harbor.sh", "wait-healthy.sh")


def render_compose_override(settings: Settings, zone_id: str, shared: SharedSecretValues | None = None) -> str:
    document = with_registry_redis_tls(with_imds_client_addresses(compose_override(settings, zone_id), settings), settings)
    if settings.high_availability:
        document = with_nginx_ready(with_nginx_keepalive(ha_node_override(document, settings)))
    if shared is not None:
        document = with_shared_secrets(document, shared)
    return yaml.dump(document, Dumper=ComposeDumper, sort_keys=False, default_flow_style=False, width=1000)


def script(name: str) -> str:
    return (FILES_DIR / name).read_text()


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def vm_files(
    settings: Settings, secrets: HarborSecrets, zone_id: str, shared: SharedSecretValues | None = None
) -> dict[str, str]:
    """Every file that lands on the VM (on each node in HA mode, with `shared`), keyed by its path there."""
    files = {
        HARBOR_YML_PATH: render_harbor_yml(settings, secrets),
        COMPOSE_OVERRIDE_PATH: render_compose_override(settings, zone_id, shared),
        TRAEFIK_DYNAMIC_PATH: render_traefik_dynamic_config(settings),
        ENVRC_PATH: render_envrc(settings),
        SYSTEMD_UNIT_PATH: render_systemd_unit(settings),
        DOCKER_DROPIN_PATH: render_docker_dropin(settings),
        **({IMDS_GUARD_PATH: render_imds_guard_unit(settings)} if imds_guarded(settings) else {}),
    }
    if settings.high_availability:
        del files[TRAEFIK_DYNAMIC_PATH]
        files[NGINX_KEEPALIVE_PATH] = render_nginx_keepalive()
        files[NGINX_READY_PATH] = render_nginx_ready()
        files.update(shared_secret_files(settings, shared) if shared is not None else {})
    return files


# Every script a remote command sends on stdin: the install's steps in order, then the timer enabler
# (vm/install.py, vm/probe.py), the ACME account reader (aws/caa.py) and, in HA, the upgrade hold
# (vm/upgrade_hold.py).
REMOTE_SCRIPTS = (*SCRIPTS, "enable-timers.sh", "acme-account-uri.sh", "hold-harbor.sh")


def remote_commands() -> dict[str, str]:
    """Every script the remote commands run, keyed by name. They are not files on the VM: each
    arrives on the stdin of `sudo bash -s` and is gone when it ends."""
    return {name: script(name) for name in REMOTE_SCRIPTS}
