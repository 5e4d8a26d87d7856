"""What every node-side file shares: where an upstream's project lives on the cache, the node-side
options, and the pull credential.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from components.settings.settings import Settings
from components.settings.upstreams import Upstream


@dataclass(frozen=True)
class MirrorOptions:
    """Node-side choices: a CA bundle for a private CA, and whether to fall back to the upstream."""

    ca_file: str = ""
    fail_closed: bool = False


DEFAULT_MIRRORS = MirrorOptions()


def mirror_options(settings: Settings) -> MirrorOptions:
    return MirrorOptions(ca_file=settings.mirror_ca_file, fail_closed=settings.mirror_fail_closed)


def mirror_url(cache_host: str, upstream: Upstream) -> str:
    """The project's registry API root on the cache, as containerd and Talos address it."""
    return f"https://{cache_host}/v2/{upstream.project}"


def image_prefix(cache_host: str, upstream: Upstream) -> str:
    """What Docker and GitLab docker-executor jobs put before an image name."""
    return f"{cache_host}/{upstream.project}"


def example_image(cache_host: str, upstream: Upstream) -> str:
    # Harbor serves Docker Hub's official images under library/, like Docker Hub itself.
    name = "library/alpine:3.20" if upstream.registry_host == "docker.io" else "<org>/<image>:<tag>"
    return f"{image_prefix(cache_host, upstream)}/{name}"


@dataclass(frozen=True)
class PullCredential:
    """The pull-only robot account nodes log in to the cache with (private proxy projects)."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"PullCredential({self.username!r}, ***)"

    @property
    def basic(self) -> str:
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
