"""What the node's periodic checks (components/vm/node_check.py, schedules_check.py) share: the
sandbox of a root oneshot service and the three files each lays (script, service, timer)."""

from __future__ import annotations

from components.vm import operate_files
from components.vm.files import script
from components.vm.unit_file import render_unit

# Root for what only root may read or write on the host; everything else read-only and private.
ROOT_SANDBOX = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes"}


def periodic_check_files(script_name: str, service_name: str, service: dict, timer_name: str, timer: dict) -> dict[str, str]:
    """The script under BIN_DIR and its units under SYSTEMD_DIR, keyed by their paths on the node."""
    return {
        f"{operate_files.BIN_DIR}/{script_name}": script(script_name),
        f"{operate_files.SYSTEMD_DIR}/{service_name}": render_unit(service),
        f"{operate_files.SYSTEMD_DIR}/{timer_name}": render_unit(timer),
    }
