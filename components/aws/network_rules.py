"""The security-group rules of the VM, the HA nodes and the load balancer: who may reach what, and where the VM may go."""

from __future__ import annotations

from urllib.parse import urlsplit

import pulumi

from components.settings.settings import Settings
from components.vm.harbor_yml import EXTERNAL_DB_PORT, EXTERNAL_REDIS_PORT
from components.vm.operate_files import CACHE_METRICS_PORT, METRICS_PORT
from components.vm.paths import HARBOR_HTTP_PORT


def egress_ports(settings: Settings) -> list[int]:
    """Ports the VM dials out on: HTTP(S) for packages and registries, plus any custom upstream port."""
    ports = {80, 443}
    for upstream in settings.upstreams:
        port = urlsplit(upstream.url).port
        if port:
            ports.add(port)
    return sorted(ports)


def split_cidrs(cidrs: tuple[str, ...]) -> tuple[list[str], list[str]]:
    return [c for c in cidrs if ":" not in c], [c for c in cidrs if ":" in c]


def cidr_rule(description: str, port: int, cidrs: tuple[str, ...]) -> dict:
    """One tcp port from address blocks, IPv4 and IPv6 each in their own list (as EC2 wants them)."""
    v4, v6 = split_cidrs(cidrs)
    return {
        "description": description,
        "protocol": "tcp",
        "from_port": port,
        "to_port": port,
        "cidr_blocks": v4,
        "ipv6_cidr_blocks": v6,
    }


def web_ingress(settings: Settings) -> list[dict]:
    """443 (and 80, which only redirects) from allowedCidrs: who may use the cache, on the one VM or
    on the load balancer in front of several."""
    return [cidr_rule(f"{port} from allowedCidrs", port, settings.allowed_cidrs) for port in (443, 80)]


def ingress_rules(settings: Settings, load_balancer_security_group_id: pulumi.Input[str] | None = None) -> list[dict]:
    """One VM: 443/80 from allowedCidrs (Traefik). Nodes: Harbor's 8080 from the load balancer's group only."""
    if load_balancer_security_group_id is None:
        rules = web_ingress(settings)
    else:
        rules = [
            {
                "description": f"Harbor {HARBOR_HTTP_PORT} from the load balancer",
                "protocol": "tcp",
                "from_port": HARBOR_HTTP_PORT,
                "to_port": HARBOR_HTTP_PORT,
                "security_groups": [load_balancer_security_group_id],
            }
        ]
    rules.append(cidr_rule("SSH from sshAllowedCidrs", 22, settings.ssh_allowed_cidrs))
    if settings.metrics_allowed_cidrs:
        rules.append(
            cidr_rule(f"Harbor metrics {METRICS_PORT} from metricsAllowedCidrs", METRICS_PORT, settings.metrics_allowed_cidrs)
        )
        rules.append(
            cidr_rule(
                f"harbor-cache metrics {CACHE_METRICS_PORT} from metricsAllowedCidrs",
                CACHE_METRICS_PORT,
                settings.metrics_allowed_cidrs,
            )
        )
    return rules


def egress_rules(settings: Settings) -> list[dict]:
    # No port 53: security groups never filter the VPC resolver, NTP (169.254.169.123) or IMDS, and
    # Traefik's DNS-01 skips the direct queries to the zone's authoritative nameservers
    # (propagation.disableANSChecks; the route53 provider waits for INSYNC instead), so nothing
    # needs DNS to the internet (tests/aws/test_dns01_network.py proves it with pebble and lego).
    return [
        {
            "description": f"tcp {port} out (packages, upstream registries, OIDC, ACME)",
            "protocol": "tcp",
            "from_port": port,
            "to_port": port,
            "cidr_blocks": ["0.0.0.0/0"],
            "ipv6_cidr_blocks": ["::/0"],
        }
        for port in egress_ports(settings)
    ]


def store_egress(database_security_group_id: pulumi.Input[str], redis_security_group_id: pulumi.Input[str]) -> list[dict]:
    """externalServices: PostgreSQL and Redis out to the stores' own security groups, nothing else (never the VPC's
    blocks, which held every database of the VPC). The rules of the stores' client group
    (components/aws/data_services.py), which the VM (the nodes) joins: the VM's own group cannot name the stores'
    groups, which admit it, so they are made after it."""
    return [
        {
            "description": f"tcp {port} to {what} only",
            "protocol": "tcp",
            "from_port": port,
            "to_port": port,
            "security_groups": [group_id],
        }
        for port, what, group_id in (
            (EXTERNAL_DB_PORT, "the RDS PostgreSQL group", database_security_group_id),
            (EXTERNAL_REDIS_PORT, "the ElastiCache Redis group", redis_security_group_id),
        )
    ]
