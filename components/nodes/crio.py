"""CRI-O and podman: a registries.conf.d drop-in per upstream."""

from __future__ import annotations

import tomli_w

from components.nodes.mirrors import DEFAULT_MIRRORS, MirrorOptions
from components.settings.upstreams import Upstream


def crio_dropin_name(upstream: Upstream) -> str:
    return f"harbor-cache-{upstream.name}.conf"


def render_crio_registries_conf(cache_host: str, upstream: Upstream, options: MirrorOptions = DEFAULT_MIRRORS) -> str:
    """/etc/containers/registries.conf.d/<name>.conf for CRI-O and podman.

    Fail closed points the registry itself at the cache, so there is no upstream to fall back to.
    """
    location = f"{cache_host}/{upstream.project}"
    if options.fail_closed:
        registry = {"prefix": upstream.registry_host, "location": location}
    else:
        registry = {"prefix": upstream.registry_host, "location": upstream.registry_host, "mirror": [{"location": location}]}
    return tomli_w.dumps({"registry": [registry]})
