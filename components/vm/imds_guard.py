"""storage: s3: the registry gets the instance role's credentials, no other container does (fixed
addresses on Harbor's network, a nat rule to the host's credential relay, a host firewall rule).
"""

from __future__ import annotations

from components.settings.settings import Settings
from components.vm.unit_file import render_unit

# --- Issue 13, storage: s3: the registry reaches the instance role, no other container does ---
#
# distribution's s3 driver, with no keys in its config, takes the instance role's credentials from
# IMDS. Two of Harbor's containers run it: `registry`, and `registryctl`, which builds the same
# driver from the registry's config.yml and deletes blobs and manifests with it when jobservice's
# garbage collection asks (goharbor/harbor v2.15.2 src/registryctl/config/config.go
# setStorageDriver, src/registryctl/main.go imports storage/driver/s3-aws,
# src/registryctl/api/registry/blob/blob.go).
#
# Issue 18: the registry cannot use IMDS itself. Harbor v2.15.2 builds it from goharbor/distribution
# v2.8.3-harbor.1 with aws-sdk-go 1.15.11 vendored, whose ec2metadata client speaks IMDSv1 only
# (plain GETs, never `PUT /latest/api/token`); our instances require tokens, so IMDS answers 401
# and the driver's chain (static, env, shared file, EC2 role: registry/storage/driver/s3-aws/s3.go
# New) ends in NoCredentialProviders: S3 mode stored nothing. Design: the instance keeps IMDSv2
# required and hop limit 1 in every mode (no container reaches IMDS itself); a nat rule sends the
# registry's and registryctl's connections to 169.254.169.254:80, by their fixed source addresses,
# to a relay on the host (components/vm/imds_relay.py, files/imds-credential-relay.py) that fetches
# the role's credentials with a token and serves only the two paths EC2RoleProvider asks for. The
# DOCKER-USER rule below refuses IMDS to every container (the role also holds the DNS-01 and metrics
# permissions, and IMDS serves the user data), and INPUT rules let only redirected connections reach
# the relay's port. Rejected alternative: a bucket-scoped
# IAM user's keys in harbor.yml, long-lived secrets to store and rotate, with a registry restart
# at each rotation (the driver reads static keys once).

# The network Harbor's compose file declares (prepare's docker-compose.yml.jinja `networks: harbor`)
# and the name compose gives it (<project>_<key>; the project is the folder's name, `harbor`).
HARBOR_NETWORK = "harbor"
HARBOR_NETWORK_NAME = "harbor_harbor"
# A fixed subnet, so the registry's address is known to the firewall. Outside Docker's default
# local pools (172.17.0.0/16 .. 172.28.0.0/14 and 192.168.0.0/16; moby
# daemon/libnetwork/ipamutils/utils.go), outside the default VPC (172.31.0.0/16) and the VPC
# wizard's 10.0.0.0/16. It must not overlap the VPC (subnetId's) or anything else the containers
# reach (RDS, ElastiCache): the host would route those addresses into the bridge.
HARBOR_SUBNET = "10.255.254.0/24"
HARBOR_GATEWAY = "10.255.254.1"
# Docker hands addresses to the other containers from ip_range only; a fixed address must lie in the
# subnet, not in the range (moby daemon/libnetwork/ipams/defaultipam: requestAddress checks the
# subnet, getAddress takes a preferred address as is and any other from the range), so the two
# fixed addresses below are never given to another container, whatever the start order.
HARBOR_DYNAMIC_RANGE = "10.255.254.128/25"
# The containers that run distribution's s3 driver, with their fixed addresses: one /31 together,
# so the firewall needs one rule.
IMDS_CLIENTS = {"registry": "10.255.254.2", "registryctl": "10.255.254.3"}
IMDS_CLIENT_BLOCK = "10.255.254.2/31"
IMDS_ADDRESS = "169.254.169.254"
IMDS_GUARD_UNIT = "harbor-imds-guard.service"
IMDS_GUARD_PATH = f"/etc/systemd/system/{IMDS_GUARD_UNIT}"
# The credential relay (components/vm/imds_relay.py): on the Harbor network's gateway (the host's
# address on that bridge), where the nat rule sends the registry's packets, on a port nothing else
# on the VM uses (Harbor publishes 8080 and 9090, Traefik 80 and 443).
IMDS_RELAY_UNIT = "harbor-imds-relay.service"
IMDS_RELAY_PORT = 9169
# dockerd creates DOCKER-USER when it is missing, never flushes it, and puts `-j DOCKER-USER` first
# in FORWARD at every start, so rules there run before Docker's own and outlive dockerd restarts
# (moby daemon/libnetwork/firewall_linux.go setupUserChain, iptables.go NewChain/EnsureJumpRule;
# the same in v24.0.7 .. v28.2.2 libnetwork/firewall_linux.go, which also appended a `-j RETURN`).
DOCKER_USER_CHAIN = "DOCKER-USER"


def imds_guarded(settings: Settings) -> bool:
    """Whether the registry needs the instance role (and the guard that keeps everyone else out)."""
    return settings.storage == "s3"


def imds_guard_rule() -> list[str]:
    """The DOCKER-USER rule: forwarded traffic to IMDS is refused, from every container. DOCKER-USER
    sees forwarded packets only (FORWARD), so the host and Traefik (host network) are untouched, and a
    container on any Docker network, Harbor's or not, is refused. The registry's and registryctl's
    connections to IMDS port 80 are never forwarded: the nat rule below sends them to the host in
    PREROUTING, before FORWARD; anything else of theirs to IMDS is refused like everyone's.
    IPv4 only: IMDS's IPv6 endpoint stays off (metadata_options http_protocol_ipv6 is not enabled)."""
    return ["-d", f"{IMDS_ADDRESS}/32", "-j", "REJECT", "--reject-with", "icmp-admin-prohibited"]


def relay_input_rules() -> list[list[str]]:
    """The INPUT rules for the relay's port, in the order they must stand: only connections the nat
    rule redirected (conntrack: DNAT from 169.254.169.254, from the registry's block) are accepted,
    every other one (another container dialling the gateway's port directly, the host itself) gets a
    TCP reset. The accept also keeps the relay reachable under a host firewall of default deny (ufw's
    chains come after rules inserted first in INPUT)."""
    port = ["-d", f"{HARBOR_GATEWAY}/32", "-p", "tcp", "--dport", str(IMDS_RELAY_PORT)]
    redirected = ["-s", IMDS_CLIENT_BLOCK, "-m", "conntrack", "--ctstate", "DNAT", "--ctorigdst", IMDS_ADDRESS]
    return [[*port, *redirected, "-j", "ACCEPT"], [*port, "-j", "REJECT", "--reject-with", "tcp-reset"]]


def imds_relay_rule() -> list[str]:
    """The nat PREROUTING rule: the registry's and registryctl's connections to IMDS go to the relay.

    PREROUTING sees the packets from the bridge before routing; after DNAT their destination is the
    host's own address, so they are delivered locally, never forwarded: IMDS sees none of them, and
    conntrack turns the relay's answers back into 169.254.169.254:80 for the container. The source
    address is kept, so the relay checks it again.
    """
    return [
        "-s", IMDS_CLIENT_BLOCK,
        "-d", f"{IMDS_ADDRESS}/32",
        "-p", "tcp", "--dport", "80",
        "-j", "DNAT", "--to-destination", f"{HARBOR_GATEWAY}:{IMDS_RELAY_PORT}",
    ]  # fmt: skip


def imds_guard_unit(settings: Settings) -> dict[str, dict[str, str | list[str]]]:
    """harbor-imds-guard.service: puts the rules in place, idempotently (-C before -I): the
    DOCKER-USER guard, the nat rule to the relay, first in PREROUTING (before Docker's own
    `-m addrtype --dst-type LOCAL -j DOCKER` jump, which never matches IMDS anyway), and the relay
    port's INPUT rules (relay_input_rules).

    Ordered before docker.service, not after: at boot dockerd restarts the `restart: always`
    containers itself, after setting up DOCKER-USER and before it reports ready (moby
    daemon/daemon.go restore: initNetworkController, then the restart loop), so a guard started
    after dockerd would leave them a window. Run first, it creates DOCKER-USER the way dockerd would
    (-L, then -N if missing); dockerd keeps the chain and its rules and adds the jump from FORWARD.
    harbor.service requires it; PartOf makes `systemctl restart harbor` (the install's) re-run it.
    No ExecStop: stopping the unit leaves the rule in the kernel, nothing is opened.
    """
    rule = " ".join(imds_guard_rule())
    relay = " ".join(imds_relay_rule())
    accept, reject = (" ".join(rule) for rule in relay_input_rules())
    chain = DOCKER_USER_CHAIN
    return {
        "Unit": {
            "Description": f"Harbor image cache {settings.hostname}: the registry to the credential relay, no container to IMDS",
            "Before": "docker.service harbor.service",
            "PartOf": "harbor.service",
        },
        "Service": {
            "Type": "oneshot",
            "RemainAfterExit": "yes",
            # iptables -w waits for the xtables lock (dockerd may hold it) instead of failing.
            "ExecStart": [
                f"/bin/sh -c 'iptables -w -n -L {chain} >/dev/null 2>&1 || iptables -w -N {chain}'",
                f"/bin/sh -c 'iptables -w -C {chain} {rule} 2>/dev/null || iptables -w -I {chain} {rule}'",
                f"/bin/sh -c 'iptables -w -t nat -C PREROUTING {relay} 2>/dev/null || iptables -w -t nat -I PREROUTING {relay}'",
                # Both first in INPUT, the reject inserted before the accept so the accept ends above it.
                f"/bin/sh -c 'iptables -w -C INPUT {reject} 2>/dev/null || iptables -w -I INPUT {reject}'",
                f"/bin/sh -c 'iptables -w -C INPUT {accept} 2>/dev/null || iptables -w -I INPUT {accept}'",
            ],
        },
    }


def render_imds_guard_unit(settings: Settings) -> str:
    return render_unit(imds_guard_unit(settings))


def with_imds_guard_dependency(unit: dict[str, dict[str, str]], settings: Settings) -> dict:
    """harbor.service in s3 mode: needs the guard and the relay, and never starts on a `harbor`
    network of other IPAM.

    Compose reuses an existing network whatever its subnet unless the network carries the config
    hash label that compose 2.31.0+ sets, and only then removes and recreates a diverged one
    (docker/compose v2.40.3 pkg/compose/create.go resolveOrCreateNetwork, removeDivergedNetwork;
    commit c21d4cf, first in v2.31.0). A network made in ebs mode, by an older compose or without
    the label, would be reused, and the registry's fixed address refused as outside its subnet. So
    before `up`, a `harbor_harbor` network of another subnet is taken down with the project
    (`docker compose down`: containers and networks; no volumes, Harbor's data is on the data volume).
    `down` finds the network by the project's labels whatever its IPAM (pkg/compose/down.go
    ensureNetworksDown, removeNetwork). `systemctl restart harbor` runs ExecStop (`down`) first
    anyway; this covers a start while harbor.service was inactive or failed and dockerd had
    restarted the containers on the old network.
    """
    if not imds_guarded(settings):
        return unit
    unit = {section: dict(entries) for section, entries in unit.items()}
    unit["Unit"]["Requires"] = f"{unit['Unit']['Requires']} {IMDS_GUARD_UNIT} {IMDS_RELAY_UNIT}"
    unit["Unit"]["After"] = f"{unit['Unit']['After']} {IMDS_GUARD_UNIT} {IMDS_RELAY_UNIT}"
    inspect = f'docker network inspect --format "{{{{range .IPAM.Config}}}}{{{{.Subnet}}}}{{{{end}}}}" {HARBOR_NETWORK_NAME}'
    # `$$` is systemd's escape for a `$` the shell gets (systemd.service(5), "Command lines").
    down = "/usr/bin/docker compose down"
    check = f'subnet=$$(/usr/bin/{inspect} 2>/dev/null) || exit 0; [ "$$subnet" = {HARBOR_SUBNET} ] || {down}'
    service = {}
    for key, value in unit["Service"].items():
        if key == "ExecStart":
            service["ExecStartPre"] = f"/bin/sh -c '{check}'"
        service[key] = value
    unit["Service"] = service
    return unit


def with_imds_client_addresses(document: dict, settings: Settings) -> dict:
    """The compose override in s3 mode: Harbor's network on the fixed subnet, the registry and
    registryctl on their fixed addresses (compose merges these into Harbor's `networks: [harbor]`)."""
    if not imds_guarded(settings):
        return document
    document = {**document, "services": dict(document["services"])}
    for service, address in IMDS_CLIENTS.items():
        document["services"][service] = {"networks": {HARBOR_NETWORK: {"ipv4_address": address}}}
    pool = {"subnet": HARBOR_SUBNET, "ip_range": HARBOR_DYNAMIC_RANGE, "gateway": HARBOR_GATEWAY}
    document["networks"] = {HARBOR_NETWORK: {"ipam": {"config": [pool]}}}
    return document
