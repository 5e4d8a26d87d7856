"""harbor.service (Harbor's compose stack as a unit) and the docker.service drop-in that waits for the data volume."""

from __future__ import annotations

from components.settings.settings import Settings
from components.vm.imds_guard import with_imds_guard_dependency
from components.vm.paths import HARBOR_CURRENT
from components.vm.unit_file import render_unit


def systemd_unit(settings: Settings) -> dict[str, dict[str, str]]:
    return {
        "Unit": {
            "Description": f"Harbor image cache {settings.hostname} (docker compose)",
            "Requires": "docker.service",
            "After": "docker.service network-online.target",
            "Wants": "network-online.target",
            "RequiresMountsFor": settings.data_mount,
        },
        "Service": {
            "Type": "oneshot",
            "RemainAfterExit": "yes",
            "WorkingDirectory": HARBOR_CURRENT,
            "ExecStart": "/usr/bin/docker compose up -d --remove-orphans",
            # Never `down -v`: nothing of Harbor's may live in a volume that a stop deletes.
            "ExecStop": "/usr/bin/docker compose down",
            "TimeoutStartSec": "600",
            "TimeoutStopSec": "300",
        },
        "Install": {"WantedBy": "multi-user.target"},
    }


def docker_dropin(settings: Settings) -> dict[str, dict[str, str]]:
    """docker.service waits for the data volume: its fstab entry has `nofail`, so nothing else
    orders dockerd after it, and after an unclean stop dockerd would restart Harbor's containers
    on the empty mount point."""
    return {"Unit": {"RequiresMountsFor": settings.data_mount}}


def render_systemd_unit(settings: Settings) -> str:
    return render_unit(with_imds_guard_dependency(systemd_unit(settings), settings))


def render_docker_dropin(settings: Settings) -> str:
    return render_unit(docker_dropin(settings))
