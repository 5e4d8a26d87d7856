"""containerd's registry hosts (certs.d/<upstream>/hosts.toml) and the config snippet that turns them on."""

from __future__ import annotations

import posixpath

import tomli_w

from components.nodes.mirrors import DEFAULT_MIRRORS, MirrorOptions, mirror_url
from components.settings.upstreams import Upstream

CERTS_DIR = "/etc/containerd/certs.d"
# The CRI plugin that owns the registry settings moved in containerd 2.0.
CONTAINERD_REGISTRY_PLUGIN = {1: "io.containerd.grpc.v1.cri", 2: "io.containerd.cri.v1.images"}
CONTAINERD_CONFIG_VERSION = {1: 2, 2: 3}


def containerd_hosts_path(upstream: Upstream) -> str:
    """/etc/containerd/certs.d/<host>/hosts.toml; refuses a host that would put it anywhere else.

    Settings already allow only host[:port] here; this keeps the EKS user data, which writes the
    path on every node, from leaving certs.d whatever an Upstream holds.
    """
    path = posixpath.normpath(f"{CERTS_DIR}/{upstream.registry_host}/hosts.toml")
    if posixpath.dirname(posixpath.dirname(path)) != CERTS_DIR or upstream.registry_host in ("", ".", ".."):
        raise ValueError(f"registry host {upstream.registry_host!r} would put hosts.toml outside {CERTS_DIR}")
    return path


def render_containerd_hosts_toml(cache_host: str, upstream: Upstream, options: MirrorOptions = DEFAULT_MIRRORS) -> str:
    """containerd's certs.d/<upstream>/hosts.toml for one upstream.

    Fail open (default): the cache first, then `server`, the real upstream, when the cache is down.
    Fail closed: `server` is the cache too, so containerd has no other host to try. The `[host]`
    table stays in both forms: containerd 1.6 rejects a hosts.toml without one ("invalid `host`
    tree") and then silently falls back to the upstream.
    """
    mirror = {"capabilities": ["pull", "resolve"], "override_path": True}
    if options.ca_file:
        mirror["ca"] = options.ca_file
    hosts = {"host": {mirror_url(cache_host, upstream): mirror}}
    if options.fail_closed:
        return tomli_w.dumps({"server": mirror_url(cache_host, upstream), **mirror, **hosts})
    return tomli_w.dumps({"server": upstream.server, **hosts})


def render_containerd_config_snippet(major_version: int) -> str:
    """The containerd config lines that make CRI read hosts.toml files from certs.d."""
    plugin = CONTAINERD_REGISTRY_PLUGIN[major_version]
    document = {
        "version": CONTAINERD_CONFIG_VERSION[major_version],
        "plugins": {plugin: {"registry": {"config_path": CERTS_DIR}}},
    }
    return tomli_w.dumps(document)
