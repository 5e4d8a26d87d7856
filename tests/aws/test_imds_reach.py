"""Who on the VM reaches the instance metadata service, with the hop limit the program sets.

Namespaces stand for: `nitro` (IMDS at 169.254.169.254 behind the instance's interface, see
tests/standins/imds_stand_in.py for how the hop limit works), `host` (the VM; a process on it and a
container with `network_mode: host`, like Traefik, share this stack), and `bridged` (a container on
a Docker bridge network, like Harbor's: a veth on a Linux bridge, forwarded and masqueraded by the
host with Docker's own rule `-s <bridge subnet> ! -o <bridge> -j MASQUERADE`).

storage: s3 keeps hop limit 1 too: the registry gets the role's credentials from the host's relay,
and every other container is refused (tests/vm/test_registry_s3.py, with the registry's own code).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from components.aws.vm import IMDS_HOP_LIMIT
from tests.paths import ROOT
from tests.settings.test_settings import parse
from tests.standins.netns import link, namespaces, require_netns

IMDS = "169.254.169.254"
STAND_IN = ROOT / "tests" / "standins" / "imds_stand_in.py"
S3_SETTINGS = parse(storage="s3")


# A container with `network_mode: host`: its own PID, mount, UTS and IPC namespaces, the host's network.
HOST_NETWORK_CONTAINER = ["unshare", "--pid", "--fork", "--mount-proc", "--uts", "--ipc"]


def fetch_credentials(namespace, prefix: tuple[str, ...] = ()) -> dict:
    """What an AWS SDK does: a token, then the role's credentials; bounded by curl's --max-time."""
    curl = [*prefix, "curl", "--silent", "--show-error", "--fail", "--max-time", "3"]
    token = namespace.run(
        *curl, "-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60", f"http://{IMDS}/latest/api/token", check=False
    )
    if token.returncode != 0:
        return {"token": False, "error": token.stderr.strip()}
    header = f"X-aws-ec2-metadata-token: {token.stdout}"
    base = f"http://{IMDS}/latest/meta-data/iam/security-credentials/"
    role = namespace.run(*curl, "-H", header, base).stdout
    credentials = json.loads(namespace.run(*curl, "-H", header, base + role).stdout)
    return {"token": True, "role": role, "credentials": credentials}


def reach(hop_limit: int, tmp_path: Path) -> dict[str, dict]:
    with namespaces("nitro", "host", "bridged") as ns:
        nitro, host, bridged = ns["nitro"], ns["host"], ns["bridged"]
        link(host, "10.254.0.2/24", nitro, "10.254.0.1/24")
        nitro.run("ip", "addr", "add", f"{IMDS}/32", "dev", "lo")
        host.run("ip", "route", "add", "default", "via", "10.254.0.1")

        # Docker's default bridge: the host's end on a bridge with the gateway address.
        host.run("ip", "link", "add", "docker0", "type", "bridge")
        host.run("ip", "addr", "add", "172.17.0.1/16", "dev", "docker0")
        host.run("ip", "link", "set", "docker0", "up")
        host_end, _ = link(host, "", bridged, "172.17.0.2/16")
        host.run("ip", "link", "set", host_end, "master", "docker0")
        bridged.run("ip", "route", "add", "default", "via", "172.17.0.1")
        host.run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        host.run("iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "172.17.0.0/16", "!", "-o", "docker0", "-j", "MASQUERADE")

        nitro.start(sys.executable, str(STAND_IN), IMDS, str(hop_limit), log=tmp_path / f"imds-{hop_limit}.log")
        deadline = time.monotonic() + 10
        while nitro.run("curl", "-s", "-o", "/dev/null", "--max-time", "1", f"http://{IMDS}/", check=False).returncode:
            assert time.monotonic() < deadline, (tmp_path / f"imds-{hop_limit}.log").read_text()
            time.sleep(0.1)

        # A container can always open the connection: the handshake is not TTL-limited.
        connect = bridged.run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3", f"http://{IMDS}/")
        assert connect.stdout == "401", "the bridged container must reach IMDS at the TCP level for this test to mean anything"
        return {
            "host": fetch_credentials(host),
            "host-network": fetch_credentials(host, tuple(HOST_NETWORK_CONTAINER)),
            "bridged": fetch_credentials(bridged),
        }


@pytest.fixture(autouse=True)
def _requirements():
    require_netns("curl", "unshare")


def test_with_the_programs_hop_limit_only_the_host_network_gets_the_role(tmp_path):
    result = reach(IMDS_HOP_LIMIT, tmp_path)
    # The VM itself, and Traefik with network_mode: host (same network stack), get the credentials.
    for who in ("host", "host-network"):
        assert result[who]["token"] and result[who]["role"] == "harbor-vm-role", who
        assert result[who]["credentials"]["AccessKeyId"].startswith("ASIA"), who
    # Harbor's containers on their bridge network never get a token: no credentials, no user data.
    assert result["bridged"] == {"token": False, "error": result["bridged"]["error"]}
    assert "timed out" in result["bridged"]["error"]


def test_with_hop_limit_two_a_bridged_container_gets_the_role(tmp_path):
    """The old setting: shows the test above fails when the hop limit lets a container in."""
    result = reach(2, tmp_path)
    assert result["bridged"]["token"] and result["bridged"]["credentials"]["Token"] == "stand-in-session-token"


# --- storage: s3 keeps hop limit 1; its registry's credentials come from the host's relay, shown with
# the registry's own code in tests/vm/test_registry_s3.py, which sets the chain up as below ---------


def docker_user_chain_as_dockerd_sets_it_up(host) -> None:
    """What dockerd does at every start (moby daemon/libnetwork/firewall_linux.go setupUserChain and
    iptables/iptables.go NewChain, EnsureJumpRule; v24.0.7..v27.5.1 also AddReturnRule): create
    DOCKER-USER only when `-L` does not find it (its rules are kept), append a `-j RETURN` if there
    is none (older versions), and move the FORWARD jump to the top."""
    if host.run("iptables", "-w", "-n", "-L", "DOCKER-USER", check=False).returncode:
        host.run("iptables", "-w", "-N", "DOCKER-USER")
    if host.run("iptables", "-w", "-C", "DOCKER-USER", "-j", "RETURN", check=False).returncode:
        host.run("iptables", "-w", "-A", "DOCKER-USER", "-j", "RETURN")
    if not host.run("iptables", "-w", "-C", "FORWARD", "-j", "DOCKER-USER", check=False).returncode:
        host.run("iptables", "-w", "-D", "FORWARD", "-j", "DOCKER-USER")
    host.run("iptables", "-w", "-I", "FORWARD", "-j", "DOCKER-USER")
