"""Harbor's periodic schedules come back after its Redis lost them (issue 18 point 9).

jobservice keeps every periodic job only in Redis; an ElastiCache that fails over to a replica that
missed the last writes, or comes back empty, leaves GC and retention unscheduled while Harbor's
database still lists them, and nothing in Harbor repairs that (files/harbor-schedules.py says where
in Harbor's source). `harbor-schedules.timer` looks every SCHEDULES_CHECK_MINUTES on node 0 (one
node is enough: the schedules are shared) and saves the schedules again when jobservice holds none.
Only with externalServices: a local Redis lives and dies with the VM's own Harbor.
"""

from __future__ import annotations

from components.settings.settings import Settings
from components.vm import operate_files
from components.vm.paths import HARBOR_HTTP_PORT, HARBOR_YML_PATH
from components.vm.periodic_checks import ROOT_SANDBOX, periodic_check_files
from components.vm.unit_file import every_minutes_timer

SCHEDULES_SCRIPT = "harbor-schedules.py"
SCHEDULES_SERVICE = "harbor-schedules.service"
SCHEDULES_TIMER = "harbor-schedules.timer"
SCHEDULES_CHECK_MINUTES = 15


def schedules_checked(settings: Settings, node_index: int) -> bool:
    return settings.external_services and node_index == 0


def schedules_service(settings: Settings) -> dict[str, dict[str, str | list[str]]]:
    return {
        "Unit": {
            "Description": "Harbor cache: Harbor's GC and retention schedules back in jobservice after a Redis loss",
            "Wants": "network-online.target",
            "After": "network-online.target harbor.service",
        },
        "Service": {
            "Type": "oneshot",
            "Environment": [
                f"HARBOR_YML={HARBOR_YML_PATH}",
                # This host's nginx under the public name, as the load balancer (HA) or Traefik asks it.
                f"HARBOR_API=http://127.0.0.1:{HARBOR_HTTP_PORT}/api/v2.0",
                f"HARBOR_HOST={settings.hostname}",
            ],
            "ExecStart": f"/usr/bin/python3 {operate_files.BIN_DIR}/{SCHEDULES_SCRIPT}",
            # Root for harbor.yml (0600: the Redis and admin passwords); nothing is written.
            **ROOT_SANDBOX,
            "TimeoutStartSec": "300",
        },
    }


def schedules_timer() -> dict[str, dict[str, str | list[str]]]:
    description = f"Harbor cache: check Harbor's schedules in jobservice every {SCHEDULES_CHECK_MINUTES} min"
    return every_minutes_timer(description, SCHEDULES_CHECK_MINUTES, SCHEDULES_SERVICE)


def schedules_files(settings: Settings) -> dict[str, str]:
    service, timer = schedules_service(settings), schedules_timer()
    return periodic_check_files(SCHEDULES_SCRIPT, SCHEDULES_SERVICE, service, SCHEDULES_TIMER, timer)
