"""k3s and RKE2: registries.yaml with a mirror and rewrite per upstream."""

from __future__ import annotations

import yaml

from components.nodes.mirrors import DEFAULT_MIRRORS, MirrorOptions, PullCredential
from components.settings.upstreams import Upstream


def render_k3s_registries_yaml(
    cache_host: str,
    upstreams: tuple[Upstream, ...],
    options: MirrorOptions = DEFAULT_MIRRORS,
    credential: PullCredential | None = None,
) -> str:
    """/etc/rancher/{k3s,rke2}/registries.yaml: one mirror per upstream, rewritten into its project.

    With a credential, `configs.<cache host>.auth` carries it (k3s and RKE2 log in to the endpoint
    with it): the file is then a secret.
    """
    mirrors = {
        upstream.registry_host: {
            "endpoint": [f"https://{cache_host}"],
            "rewrite": {"^(.*)$": f"{upstream.project}/$1"},
        }
        for upstream in upstreams
    }
    document: dict = {"mirrors": mirrors}
    config: dict = {}
    if credential is not None:
        config["auth"] = {"username": credential.username, "password": credential.password}
    if options.ca_file:
        config["tls"] = {"ca_file": options.ca_file}
    if config:
        document["configs"] = {cache_host: config}
    return yaml.safe_dump(document, sort_keys=False)
