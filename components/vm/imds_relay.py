"""storage: s3: the credential relay that gives Harbor's registry and registryctl the instance role
while the instance keeps IMDSv2 required and hop limit 1 (issue 18; the design and its reasons are
in components/vm/imds_guard.py, the service itself is files/imds-credential-relay.py).

The nat rule of harbor-imds-guard.service sends the registry's and registryctl's connections to
169.254.169.254:80 here; the relay fetches the role's credentials from IMDS with a token and
answers only `GET /latest/meta-data/iam/security-credentials/` and `.../<role>`.
"""

from __future__ import annotations

from components.settings.settings import Settings
from components.vm.files import script
from components.vm.imds_guard import HARBOR_GATEWAY, IMDS_ADDRESS, IMDS_CLIENT_BLOCK, IMDS_RELAY_PORT, IMDS_RELAY_UNIT
from components.vm.operate_files import BIN_DIR
from components.vm.unit_file import render_unit

IMDS_RELAY_SCRIPT = "imds-credential-relay.py"
IMDS_RELAY_SCRIPT_PATH = f"{BIN_DIR}/{IMDS_RELAY_SCRIPT}"
IMDS_RELAY_UNIT_PATH = f"/etc/systemd/system/{IMDS_RELAY_UNIT}"


def imds_relay_environment() -> dict[str, str]:
    """What files/imds-credential-relay.py reads: where to listen, whom to answer, IMDS's address."""
    return {
        "RELAY_LISTEN": HARBOR_GATEWAY,
        "RELAY_PORT": str(IMDS_RELAY_PORT),
        "RELAY_CLIENTS": IMDS_CLIENT_BLOCK,
        "IMDS_URL": f"http://{IMDS_ADDRESS}",
    }


def imds_relay_unit(settings: Settings) -> dict[str, dict[str, str | list[str]]]:
    """harbor-imds-relay.service. Ordered like the guard: before docker.service (at boot dockerd
    restarts the registry before it reports ready), pulled in by harbor.service (Requires=) and
    restarted with it (PartOf=), so a changed script runs from the install's restart on. No
    privilege: a port above 1024, and IP_FREEBIND for the gateway address dockerd adds later."""
    return {
        "Unit": {
            "Description": f"Harbor image cache {settings.hostname}: the instance role's credentials for the registry",
            "Wants": "network-online.target",
            "After": "network-online.target",
            "Before": "docker.service harbor.service",
            "PartOf": "harbor.service",
        },
        "Service": {
            "Type": "simple",
            "Environment": [f"{key}={value}" for key, value in imds_relay_environment().items()],
            "ExecStart": f"/usr/bin/python3 {IMDS_RELAY_SCRIPT_PATH}",
            "Restart": "always",
            "RestartSec": "2",
            "DynamicUser": "yes",
            "NoNewPrivileges": "yes",
            "ProtectSystem": "strict",
            "ProtectHome": "yes",
            "PrivateTmp": "yes",
            "RestrictAddressFamilies": "AF_INET AF_UNIX",
            # The rest of systemd.exec(5)'s sandbox a plain network service needs none of: no
            # capabilities, devices, kernel or cgroup tunables, namespaces, realtime, personality
            # changes or foreign system calls (`systemd-analyze security` reviews it in the tests).
            "CapabilityBoundingSet": "",
            "PrivateDevices": "yes",
            "ProtectKernelTunables": "yes",
            "ProtectKernelModules": "yes",
            "ProtectKernelLogs": "yes",
            "ProtectControlGroups": "yes",
            "ProtectClock": "yes",
            "ProtectHostname": "yes",
            "ProtectProc": "invisible",
            "ProcSubset": "pid",
            "RestrictNamespaces": "yes",
            "RestrictRealtime": "yes",
            "LockPersonality": "yes",
            "MemoryDenyWriteExecute": "yes",
            "SystemCallArchitectures": "native",
            "SystemCallFilter": ["@system-service", "~@privileged @resources"],
            "SystemCallErrorNumber": "EPERM",
            "UMask": "0077",
            "MemoryMax": "64M",
        },
    }


def render_imds_relay_unit(settings: Settings) -> str:
    return render_unit(imds_relay_unit(settings))


def imds_relay_files(settings: Settings) -> dict[str, str]:
    """The relay's files on the VM in s3 mode, keyed by path: the script and its unit."""
    return {IMDS_RELAY_SCRIPT_PATH: script(IMDS_RELAY_SCRIPT), IMDS_RELAY_UNIT_PATH: render_imds_relay_unit(settings)}
