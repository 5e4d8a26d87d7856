"""The mode each file gets on the VM, in one place: the remote commands write every file with it
(install.py, probe.py) and the offline renderer gives its copy the same (render.py), so a reviewer
sees which files hold secrets."""

from __future__ import annotations

from components.settings.settings import Settings
from components.vm.ha_node import HARBOR_KEY_FILE, PREPARE_FILE_MODE, SIGNING_CERT_FILE, SIGNING_KEY_FILE
from components.vm.operate_files import BIN_DIR
from components.vm.paths import COMPOSE_OVERRIDE_PATH, HARBOR_YML_PATH

SECRET_MODE = "0600"  # noqa: S105 - a file mode, not a password
EXECUTABLE_MODE = "0755"
PLAIN_MODE = "0644"
# cloud-init keeps the user data it was given as instance/user-data.txt, 0600 (cloudinit/stages.py,
# Init._store_rawdata); nothing in ours is secret, but that is the mode the file has there.
USER_DATA_PATH = "/var/lib/cloud/instance/user-data.txt"


def shared_file_paths(settings: Settings) -> tuple[str, ...]:
    """Where an HA node keeps the files prepare would otherwise generate (ha_node.shared_secret_files)."""
    return tuple(f"{settings.data_mount}/{relative}" for relative in (HARBOR_KEY_FILE, SIGNING_KEY_FILE, SIGNING_CERT_FILE))


def file_mode(path: str, settings: Settings, shared: bool = False) -> str:
    """The mode of `path` on the VM; `shared`: the node gets the values every HA node shares."""
    if path in (HARBOR_YML_PATH, USER_DATA_PATH):
        return SECRET_MODE  # harbor.yml holds the admin and database passwords
    if path in shared_file_paths(settings):
        return PREPARE_FILE_MODE  # as prepare's mark_file leaves its own
    if path == COMPOSE_OVERRIDE_PATH and shared and settings.high_availability:
        return SECRET_MODE  # an HA node's override carries CORE_SECRET, CSRF_KEY, ... (shared_secret_environment)
    if path.startswith(f"{BIN_DIR}/"):
        return EXECUTABLE_MODE
    return PLAIN_MODE
