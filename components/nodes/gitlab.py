"""GitLab: CI/CD variables with each upstream's image prefix, and a runner config.toml snippet (docker executor).

Docker's `registry-mirrors` mirrors Docker Hub only and cannot carry a project path, so docker-executor
jobs name the cache in their images: `image: ${CACHE_PREFIX_DOCKERHUB}/library/alpine:3.20`. GitLab
expands CI/CD variables (group or project settings, or `variables:`) in `image:` and `services:`.
"""

from __future__ import annotations

import json
import re

import tomli_w

from components.nodes.mirrors import PullCredential, image_prefix
from components.settings.upstreams import Upstream

VARIABLE_PREFIX = "CACHE_PREFIX_"
# The job image a runner uses when a job names none: Docker Hub's alpine through the cache.
DEFAULT_JOB_IMAGE = "library/alpine:3.20"


def gitlab_ci_variables(cache_host: str, upstreams: tuple[Upstream, ...]) -> dict[str, str]:
    """`CACHE_PREFIX_<UPSTREAM NAME>` -> image prefix, one per upstream.

    GitLab variable keys take letters, digits and `_` only; Harbor names may hold `.` and `-`,
    which become `_` (a second name that maps to a taken key gets `_2`, `_3`, ... in list order).
    """
    variables: dict[str, str] = {}
    for upstream in upstreams:
        key = VARIABLE_PREFIX + re.sub(r"[^A-Z0-9]", "_", upstream.name.upper())
        candidate, suffix = key, 2
        while candidate in variables:
            candidate, suffix = f"{key}_{suffix}", suffix + 1
        variables[candidate] = image_prefix(cache_host, upstream)
    return variables


def render_gitlab_runner_config_toml(
    cache_host: str, upstreams: tuple[Upstream, ...], credential: PullCredential | None = None
) -> str:
    """A `[[runners]]` entry to merge into the runner's config.toml (after `gitlab-runner register`).

    Field names are gitlab-runner's (common/config.go: RunnerSettings `executor`, `environment`;
    DockerConfig `image`). `environment` hands every job the prefixes as variables (for scripts
    that pull or build); with a credential it also carries DOCKER_AUTH_CONFIG, which the docker
    executor uses to pull job and service images from private projects (the file is then a secret).
    """
    variables = gitlab_ci_variables(cache_host, upstreams)
    environment = [f"{name}={value}" for name, value in variables.items()]
    if credential is not None:
        auth = {"auths": {cache_host: {"auth": credential.basic}}}
        environment.append("DOCKER_AUTH_CONFIG=" + json.dumps(auth, separators=(",", ":")))
    runner: dict = {"executor": "docker", "environment": environment}
    docker_hub = next((u for u in upstreams if u.registry_host == "docker.io"), None)
    if docker_hub is not None:
        runner["docker"] = {"image": f"{image_prefix(cache_host, docker_hub)}/{DEFAULT_JOB_IMAGE}"}
    return tomli_w.dumps({"runners": [runner]})
