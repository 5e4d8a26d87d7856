"""k3s and RKE2: registries.yaml with a mirror and rewrite per upstream, and the config key that makes it fail closed."""

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


def render_k3s_config_yaml(options: MirrorOptions = DEFAULT_MIRRORS) -> str:
    """The k3s/RKE2 config-file key that decides whether a mirrored registry may fall back to itself.

    registries.yaml alone cannot fail closed: containerd always tries a registry's default endpoint
    last (k3s docs, Private Registry Configuration, "Default Endpoint Fallback"). The node option
    `--disable-default-registry-endpoint` (config key of the same name; k3s v1.26.13+k3s1,
    v1.27.10+k3s1, v1.28.6+k3s1, v1.29.1+k3s1 and later) removes that fallback for the registries
    registries.yaml names. Set on every node (server and agent) in /etc/rancher/{k3s,rke2}/config.yaml.
    """
    return yaml.safe_dump({"disable-default-registry-endpoint": options.fail_closed}, sort_keys=False)
