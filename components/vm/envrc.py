"""/opt/harbor/.envrc: the non-secret environment for operators who ssh in."""

from __future__ import annotations

import shlex

from components.settings.settings import Settings

ENVRC_TRAEFIK_KEYS = ("TRAEFIK_VERSION", "ACME_PROVIDER", "ACME_EMAIL")


def envrc(settings: Settings) -> dict[str, str]:
    """The non-secret environment for operators who ssh in (direnv)."""
    return {
        "TZ": "UTC",
        "HARBOR_HOSTNAME": settings.hostname,
        "HARBOR_VERSION": settings.harbor_version,
        "HARBOR_DATA": settings.data_mount,
        "TRAEFIK_VERSION": settings.traefik_version,
        "ACME_PROVIDER": "route53",
        "ACME_EMAIL": settings.acme_email,
        "AWS_REGION": settings.region,
        "COMPOSE_PROJECT_NAME": "harbor",
    }


def render_envrc(settings: Settings) -> str:
    lines = ["# Managed by harbor-cache (pulumi). Non-secret settings of this Harbor host."]
    environment = envrc(settings)
    if settings.high_availability:
        # No Traefik and no ACME on an HA node: the load balancer's ACM certificate is the front.
        environment = {key: value for key, value in environment.items() if key not in ENVRC_TRAEFIK_KEYS}
    lines += [f"export {key}={shlex.quote(value)}" for key, value in environment.items()]
    return "\n".join(lines) + "\n"
