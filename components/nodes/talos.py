"""Talos: the machine config patch with a mirror per upstream."""

from __future__ import annotations

import yaml

from components.nodes.mirrors import DEFAULT_MIRRORS, MirrorOptions, mirror_url
from components.settings.upstreams import Upstream


def render_talos_patch(cache_host: str, upstreams: tuple[Upstream, ...], options: MirrorOptions = DEFAULT_MIRRORS) -> str:
    """A Talos machine-config patch with one mirror per upstream (overridePath keeps the project path).

    Talos takes a private CA as PEM content, not a path: add `machine.registries.config.<host>.tls.ca`
    yourself in that case (Let's Encrypt needs nothing).
    """
    mirrors = {
        upstream.registry_host: {
            "endpoints": [mirror_url(cache_host, upstream)],
            "overridePath": True,
            "skipFallback": options.fail_closed,
        }
        for upstream in upstreams
    }
    return yaml.safe_dump({"machine": {"registries": {"mirrors": mirrors}}}, sort_keys=False)
