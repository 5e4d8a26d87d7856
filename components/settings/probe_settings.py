"""What the smoke step and the prewarm timer pull: `smokeImages` and `prewarm`, checked against
the configured upstreams and turned into paths inside the cache (`<project>/<repository>:<tag>`)."""

from __future__ import annotations

import re

from components.settings.config_reader import ConfigReader
from components.settings.upstreams import Upstream

# A tiny, multi-arch, long-lived image per default upstream (path inside that upstream). Docker
# Hub's official images need `library/` through Harbor (>= 2.7 redirects to it anyway).
DEFAULT_SMOKE_IMAGES = {
    "docker.io": "library/busybox:1.37",
    "ghcr.io": "containerd/busybox:1.36",
    "quay.io": "prometheus/busybox:latest",
    "registry.k8s.io": "pause:3.10",
    "gcr.io": "distroless/static-debian12:nonroot",
}
# repository[:tag | @sha256:digest], the distribution reference grammar without the host.
REFERENCE_RE = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127}|@sha256:[0-9a-f]{64})\Z"
)


def smoke_images(reader: ConfigReader, upstreams: tuple[Upstream, ...]) -> tuple[tuple[str, str], ...]:
    """(upstream name, <project>/<image>) per upstream with a smoke image; '' in smokeImages skips one."""
    configured = reader.structured("smokeImages", {})
    names = [upstream.name for upstream in upstreams]
    if not isinstance(configured, dict):
        reader.fail("smokeImages", f"{configured!r} is not an object {{<upstream name>: '<repository>:<tag>'}}")
        return ()
    for key in sorted(set(configured) - set(names)):
        reader.fail("smokeImages", f"{key!r} is not an upstream; accepted: {names}")
    result = []
    for upstream in upstreams:
        image = configured.get(upstream.name, DEFAULT_SMOKE_IMAGES.get(upstream.registry_host, ""))
        if image == "":
            continue
        if not isinstance(image, str) or not REFERENCE_RE.match(image):
            reader.fail(f"smokeImages.{upstream.name}", f"{image!r} is not '<repository>:<tag>' inside {upstream.registry_host}")
            continue
        result.append((upstream.name, f"{upstream.project}/{image}"))
    return tuple(result)


def prewarm_images(reader: ConfigReader, upstreams: tuple[Upstream, ...]) -> tuple[str, ...]:
    """`prewarm` entries (`<upstream host>/<repository>:<tag>`) as paths inside the cache."""
    items = reader.structured("prewarm", [])
    if not isinstance(items, list):
        reader.fail("prewarm", f"{items!r} is not a list of images such as 'docker.io/library/nginx:1.27'")
        return ()
    by_host = {upstream.registry_host: upstream for upstream in upstreams}
    result = []
    for item in items:
        host, _, image = item.partition("/") if isinstance(item, str) else ("", "", "")
        if host not in by_host or not REFERENCE_RE.match(image):
            reader.fail(
                "prewarm",
                f"{item!r} is not '<upstream host>/<repository>:<tag>' with an upstream host of {sorted(by_host)} "
                "(e.g. 'docker.io/library/nginx:1.27')",
            )
            continue
        result.append(f"{by_host[host].project}/{image}")
    return tuple(result)
