"""Traefik in front of Harbor on the single VM: its static configuration (command line), its one route, its image."""

from __future__ import annotations

from pathlib import Path

import yaml

from components.settings.settings import Settings
from components.vm.paths import HARBOR_LOOPBACK, TRAEFIK_DYNAMIC_MOUNT, TRAEFIK_DYNAMIC_PATH

CERTIFICATE_RESOLVER = "letsencrypt"
# Traefik v3.6 defaults (pkg/config/static/static_config.go): readTimeout 60s for the whole request
# *including its body*, idleTimeout 180s, writeTimeout none. 60s cuts a blob upload slower than
# ~1 MB/s per 60 MB; 600s lets a 1 GB layer in at ~2 MB/s while a stalled or slow-loris request
# still ends. The write timeout stays off: a client downloading a multi-GB layer slowly is normal.
TRAEFIK_READ_TIMEOUT = "600s"
TRAEFIK_IDLE_TIMEOUT = "180s"
# Docker's json-file driver keeps Traefik's output (access log included) to 5 x 10 MB.
CONTAINER_LOGGING = {"driver": "json-file", "options": {"max-size": "10m", "max-file": "5"}}
LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"


def traefik_command(settings: Settings) -> list[str]:
    """Traefik's static configuration. No API, dashboard or ping: any of them would open Traefik's
    internal entry point on :8080 of the host (static_config.go SetEffectiveConfiguration), where
    Harbor's nginx is published."""
    resolver = f"--certificatesresolvers.{CERTIFICATE_RESOLVER}.acme"
    command = [
        f"--providers.file.filename={TRAEFIK_DYNAMIC_MOUNT}/{Path(TRAEFIK_DYNAMIC_PATH).name}",
        "--providers.file.watch=true",
        "--entrypoints.web.address=:80",
        "--entrypoints.web.http.redirections.entrypoint.to=websecure",
        "--entrypoints.web.http.redirections.entrypoint.scheme=https",
        "--entrypoints.websecure.address=:443",
    ]
    for entrypoint in ("web", "websecure"):
        timeouts = f"--entrypoints.{entrypoint}.transport.respondingtimeouts"
        command += [f"{timeouts}.readtimeout={TRAEFIK_READ_TIMEOUT}", f"{timeouts}.idletimeout={TRAEFIK_IDLE_TIMEOUT}"]
    command += [
        "--log.level=INFO",
        # To stdout (no filePath): bounded by the container's json-file logging options.
        "--accesslog=true",
        f"{resolver}.email={settings.acme_email}",
        f"{resolver}.storage=/certificates/acme.json",
        f"{resolver}.dnschallenge=true",
        f"{resolver}.dnschallenge.provider=route53",
        # lego otherwise asks the zone's authoritative nameservers directly on port 53
        # (challenge/dns01/precheck.go), which the security group does not let out. Route53's
        # provider already waits until the change is INSYNC (lego v4.32.0 providers/dns/route53),
        # so the CA sees the record. Flag: traefik v3.6.9 pkg/provider/acme/provider.go Propagation.
        f"{resolver}.dnschallenge.propagation.disableANSChecks=true",
    ]
    if settings.acme_staging:
        command.append(f"{resolver}.caserver={LETSENCRYPT_STAGING}")
    return command


def traefik_dynamic_config(settings: Settings) -> dict:
    """The file provider's routes: the cache's name on :443 with a Let's Encrypt certificate, to
    Harbor's nginx on the host's loopback. Keys are the yaml tags of traefik v3.6.9
    pkg/config/dynamic/http_config.go (Router, RouterTLSConfig, ServersLoadBalancer, Server)."""
    return {
        "http": {
            "routers": {
                "harbor": {
                    "rule": f"Host(`{settings.hostname}`)",
                    "entryPoints": ["websecure"],
                    "service": "harbor",
                    "tls": {"certResolver": CERTIFICATE_RESOLVER},
                }
            },
            "services": {"harbor": {"loadBalancer": {"servers": [{"url": f"http://{HARBOR_LOOPBACK}"}], "passHostHeader": True}}},
        }
    }


def render_traefik_dynamic_config(settings: Settings) -> str:
    return yaml.safe_dump(traefik_dynamic_config(settings), sort_keys=False, default_flow_style=False, width=1000)


def traefik_image(settings: Settings) -> str:
    """`traefik:<tag>`, or `traefik:<tag>@sha256:...`: with a digest Docker pulls exactly that image
    and the tag is only a label (distribution reference grammar: name[:tag][@digest])."""
    digest = f"@{settings.traefik_image_digest}" if settings.traefik_image_digest else ""
    return f"traefik:{settings.traefik_version}{digest}"
