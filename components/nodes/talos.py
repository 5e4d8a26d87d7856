"""Talos: the machine-config patch (`machine.registries`) and, for Talos 1.12+, RegistryMirrorConfig documents."""

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


def render_talos_registry_mirror_configs(
    cache_host: str, upstreams: tuple[Upstream, ...], options: MirrorOptions = DEFAULT_MIRRORS
) -> str:
    """Talos 1.12+ RegistryMirrorConfig documents, one per upstream, to append to the machine config.

    The document kind replaces `machine.registries.mirrors` (siderolabs/talos
    pkg/machinery/config/types/cri/registry_mirror.go, RegistryMirrorConfigV1Alpha1: `name` is the
    registry, `endpoints[].url` and `overridePath`, `skipFallback`); where both name a registry,
    the document wins (pkg/machinery/config/container/container.go, RegistryMirrorConfigs).
    """
    documents = [
        {
            "apiVersion": "v1alpha1",
            "kind": "RegistryMirrorConfig",
            "name": upstream.registry_host,
            "endpoints": [{"url": mirror_url(cache_host, upstream), "overridePath": True}],
            "skipFallback": options.fail_closed,
        }
        for upstream in upstreams
    ]
    return yaml.safe_dump_all(documents, sort_keys=False)
