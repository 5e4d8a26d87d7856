"""storage: s3: how Harbor's registry and registryctl get the instance role's credentials while the
instance keeps IMDSv2 required and hop limit 1 (issue 18).

Harbor v2.15.2's `registry` is goharbor/distribution v2.8.3-harbor.1 with aws-sdk-go 1.15.11
vendored; its EC2RoleProvider speaks IMDSv1 only (plain GETs, no token), so IMDS answers it 401 and
the s3 driver's chain (static, env, shared file, EC2 role: registry/storage/driver/s3-aws/s3.go New)
ends in NoCredentialProviders. A nat rule on the host sends the registry's and registryctl's
connections to 169.254.169.254:80, and only theirs (their fixed addresses), to a relay on the host
(files/imds-credential-relay.py) that fetches the role's credentials from IMDS with a token and
answers the two GETs EC2RoleProvider makes, nothing else. The rule lives in harbor-imds-guard.service
with the DOCKER-USER guard that refuses IMDS to every other container; the relay is its own service.

Pure functions: what lands on the VM is what `python -m components.render` shows.
"""

from __future__ import annotations

from components.settings import Settings
from components.vm_files import HARBOR_GATEWAY, IMDS_ADDRESS, IMDS_CLIENT_BLOCK

BIN_DIR = "/opt/harbor/bin"
RELAY_SCRIPT = "imds-credential-relay.py"
RELAY_SCRIPT_PATH = f"{BIN_DIR}/{RELAY_SCRIPT}"
RELAY_UNIT = "harbor-imds-relay.service"
RELAY_UNIT_PATH = f"/etc/systemd/system/{RELAY_UNIT}"
# The relay listens on the Harbor network's gateway (the host's address on that bridge), where the
# nat rule sends the registry's packets; a port no other part of the VM uses (Harbor publishes 8080
# and 9090, Traefik 80 and 443).
RELAY_PORT = 9169
IMDS_URL = f"http://{IMDS_ADDRESS}"


def relay_rule() -> list[str]:
    """The nat PREROUTING rule: the registry's and registryctl's connections to IMDS go to the relay.

    PREROUTING sees packets from the bridge before routing; after DNAT the destination is the
    host's own address, so they are delivered locally, never forwarded: IMDS sees none of them.
    conntrack turns the relay's answers back into 169.254.169.254:80 for the container. The source
    is kept, so the relay can check it again.
    """
    return [
        "-s", IMDS_CLIENT_BLOCK,
        "-d", f"{IMDS_ADDRESS}/32",
        "-p", "tcp", "--dport", "80",
        "-j", "DNAT", "--to-destination", f"{HARBOR_GATEWAY}:{RELAY_PORT}",
    ]  # fmt: skip


def relay_rule_commands() -> list[str]:
    """ExecStart= lines of harbor-imds-guard.service that put the rule in place idempotently (-C
    before -I; -w waits for the xtables lock dockerd may hold). First in PREROUTING, so Docker's
    own `-m addrtype --dst-type LOCAL -j DOCKER` jump (which never matches IMDS) cannot come first."""
    rule = " ".join(relay_rule())
    return [f"/bin/sh -c 'iptables -w -t nat -C PREROUTING {rule} 2>/dev/null || iptables -w -t nat -I PREROUTING {rule}'"]


def relay_environment() -> dict[str, str]:
    return {
        "RELAY_LISTEN": HARBOR_GATEWAY,
        "RELAY_PORT": str(RELAY_PORT),
        "RELAY_CLIENTS": IMDS_CLIENT_BLOCK,
        "IMDS_URL": IMDS_URL,
    }


def relay_unit(settings: Settings) -> dict[str, dict[str, str | list[str]]]:
    """harbor-imds-relay.service. Ordered like the guard: before docker.service (dockerd restarts
    the registry at boot before it reports ready), pulled in by harbor.service (Requires=), and
    restarted with it (PartOf=) so a changed script takes effect at the install's restart. It needs
    no privilege: a port above 1024, IP_FREEBIND for the gateway address that dockerd adds later."""
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
            "Environment": [f"{key}={value}" for key, value in relay_environment().items()],
            "ExecStart": f"/usr/bin/python3 {RELAY_SCRIPT_PATH}",
            "Restart": "always",
            "RestartSec": "2",
            "DynamicUser": "yes",
            "NoNewPrivileges": "yes",
            "ProtectSystem": "strict",
            "ProtectHome": "yes",
            "PrivateTmp": "yes",
            "RestrictAddressFamilies": "AF_INET AF_UNIX",
            "MemoryMax": "64M",
        },
    }
