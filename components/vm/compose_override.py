"""docker-compose.override.yml beside Harbor's generated compose file: Traefik, and nginx published on loopback only."""

from __future__ import annotations

import yaml

from components.settings.settings import Settings
from components.vm.paths import HARBOR_HTTP_PORT, HARBOR_LOOPBACK, HARBOR_METRICS_PORT, TRAEFIK_DYNAMIC_DIR, TRAEFIK_DYNAMIC_MOUNT
from components.vm.traefik import CONTAINER_LOGGING, traefik_command, traefik_image


class ComposeOverride(list):
    """A sequence that replaces, not extends, the one in Harbor's compose file: YAML tag `!override`.

    Compose merges `ports` of an override file by union; only `!override` replaces them. The tag came
    with compose-go v2.0.0-rc.3 (commit 38547bf, loader/reset.go), i.e. Docker Compose 2.24.4 or
    later (docs.docker.com/reference/compose-file/merge/). files/install-docker.sh refuses a compose
    older than that, so an older one never reads this file (Ubuntu 24.04's docker-compose-v2 is
    newer: 2.24.6 at release, not verifiable from here).
    """


class ComposeDumper(yaml.SafeDumper):
    pass


ComposeDumper.add_representer(ComposeOverride, lambda dumper, data: dumper.represent_sequence("!override", list(data)))


def metrics_port_binding(settings: Settings) -> str:
    """nginx's metrics port: on every address only when metricsAllowedCidrs lets someone in (the
    security group then admits just them); otherwise on loopback, where the VM's own reporter reads it."""
    address = "" if settings.metrics_allowed_cidrs else "127.0.0.1:"
    return f"{address}{HARBOR_METRICS_PORT}:{HARBOR_METRICS_PORT}"


def compose_override(settings: Settings, zone_id: str) -> dict:
    """docker-compose.override.yml next to Harbor's own compose file: Traefik, and nginx on loopback only."""
    return {
        "services": {
            "traefik": {
                "image": traefik_image(settings),
                "container_name": "traefik",
                "restart": "always",
                "command": traefik_command(settings),
                # With IMDS hop limit 1 only the host network reaches the instance role, which the
                # route53 provider needs for DNS-01; Traefik binds 80/443 on the host itself. No
                # Docker socket: routes come from the file provider.
                "network_mode": "host",
                # AWS_HOSTED_ZONE_ID: lego's route53 provider uses it instead of looking the zone up
                # (ListHostedZonesByName), lego v4.32.0 providers/dns/route53/route53.go getHostedZoneID.
                "environment": {"AWS_REGION": settings.region, "AWS_HOSTED_ZONE_ID": zone_id, "TZ": "UTC"},
                "volumes": [
                    # On the data volume, not a named volume: `down -v` would delete the certificates.
                    f"{settings.data_mount}/traefik:/certificates",
                    f"{TRAEFIK_DYNAMIC_DIR}:{TRAEFIK_DYNAMIC_MOUNT}:ro",
                ],
                "depends_on": ["proxy"],
                "security_opt": ["no-new-privileges:true"],
                "logging": CONTAINER_LOGGING,
            },
            # Harbor's compose publishes nginx (plain HTTP, basic auth) on every address.
            "proxy": {"ports": ComposeOverride([f"{HARBOR_LOOPBACK}:{HARBOR_HTTP_PORT}", metrics_port_binding(settings)])},
            # Harbor's compose drops every capability of its services but the exporter's
            # (docker-compose.yml.jinja `exporter:` has no cap_drop), which so keeps Docker's default
            # set, NET_RAW too: raw packets on Harbor's network (ARP spoofing of core or the registry).
            # It runs as an unprivileged user on port 8080 and needs none (compose merges cap_drop by union).
            "exporter": {"cap_drop": ["ALL"], "security_opt": ["no-new-privileges:true"]},
        }
    }


def with_registry_redis_tls(document: dict, settings: Settings) -> dict:
    """externalServices: the registry talks TLS to ElastiCache. Harbor's template writes
    `redis: enableTLS:` (templates/registry/config.yml.jinja), goharbor/distribution
    v2.8.3-harbor.1 reads `yaml:"enabletls"` (configuration/configuration.go) and yaml.v2 matches
    keys exactly, so from the file TLS stays off (goharbor/harbor#21913). distribution's environment
    override reaches the field by its name (configuration/parser.go overwriteStruct), and the fork's
    configureRedis (registry/handlers/app.go) then dials with redis.DialUseTLS(true)."""
    if not settings.external_services:
        return document
    services = dict(document["services"])
    services["registry"] = {**services.get("registry", {}), "environment": {"REGISTRY_REDIS_ENABLETLS": "true"}}
    return {**document, "services": services}
