"""The pull robot's login in the shapes nodes consume: Docker's config.json, containers' auth.json, Talos, GitLab runners."""

from __future__ import annotations

import json

import yaml

from components.nodes.gitlab import render_gitlab_runner_config_toml
from components.nodes.k3s import render_k3s_registries_yaml
from components.nodes.mirrors import DEFAULT_MIRRORS, MirrorOptions, PullCredential
from components.settings.upstreams import Upstream


def render_docker_config_json(cache_host: str, credential: PullCredential) -> str:
    """The `.dockerconfigjson` of a Kubernetes `kubernetes.io/dockerconfigjson` Secret (imagePullSecrets),
    also Docker's ~/.docker/config.json."""
    entry = {"username": credential.username, "password": credential.password, "auth": credential.basic}
    return json.dumps({"auths": {cache_host: entry}}, indent=2)


def render_containers_auth_json(cache_host: str, credential: PullCredential) -> str:
    """containers-auth.json(5), the auth file of CRI-O (`global_auth_file`) and podman (`--authfile`)."""
    return json.dumps({"auths": {cache_host: {"auth": credential.basic}}}, indent=2)


def render_talos_auth_patch(cache_host: str, credential: PullCredential) -> str:
    """A Talos machine-config patch: `machine.registries.config.<cache host>.auth`."""
    auth = {"username": credential.username, "password": credential.password}
    return yaml.safe_dump({"machine": {"registries": {"config": {cache_host: {"auth": auth}}}}}, sort_keys=False)


def render_talos_registry_auth_config(cache_host: str, credential: PullCredential) -> str:
    """Talos 1.12+ RegistryAuthConfig document for the cache (siderolabs/talos
    pkg/machinery/config/types/cri/registry_auth.go: `name` is the endpoint's host, `username`, `password`)."""
    document = {
        "apiVersion": "v1alpha1",
        "kind": "RegistryAuthConfig",
        "name": cache_host,
        "username": credential.username,
        "password": credential.password,
    }
    return yaml.safe_dump(document, sort_keys=False)


def pull_credential_outputs(
    cache_host: str, upstreams: tuple[Upstream, ...], credential: PullCredential, options: MirrorOptions = DEFAULT_MIRRORS
) -> dict:
    """The `registryPullCredentials` stack output (a secret): the robot's login in every shape nodes take."""
    return {
        "registry": cache_host,
        "username": credential.username,
        "password": credential.password,
        "privateProjects": [u.project for u in upstreams if not u.public],
        "dockerConfigJson": render_docker_config_json(cache_host, credential),
        "containersAuthJson": render_containers_auth_json(cache_host, credential),
        "k3sRegistriesYaml": render_k3s_registries_yaml(cache_host, upstreams, options, credential),
        "talosAuthPatch": render_talos_auth_patch(cache_host, credential),
        "talosRegistryAuthConfig": render_talos_registry_auth_config(cache_host, credential),
        "gitlabRunnerConfigToml": render_gitlab_runner_config_toml(cache_host, upstreams, credential),
    }
