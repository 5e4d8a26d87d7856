"""Renders the registry-mirror configuration that clusters and runners use to pull through the cache.

Every function is pure: settings in, file text out. Structured files are built as data and
serialised (TOML with tomli_w, YAML with PyYAML), never templated as strings.
"""

from __future__ import annotations

import base64
import json
import posixpath
from dataclasses import dataclass
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import tomli_w
import yaml

from components.settings import Settings
from components.upstreams import Upstream

CERTS_DIR = "/etc/containerd/certs.d"
# The CRI plugin that owns the registry settings moved in containerd 2.0.
CONTAINERD_REGISTRY_PLUGIN = {1: "io.containerd.grpc.v1.cri", 2: "io.containerd.cri.v1.images"}
CONTAINERD_CONFIG_VERSION = {1: 2, 2: 3}


@dataclass(frozen=True)
class MirrorOptions:
    """Node-side choices: a CA bundle for a private CA, and whether to fall back to the upstream."""

    ca_file: str = ""
    fail_closed: bool = False


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


def containerd_hosts_path(upstream: Upstream) -> str:
    """/etc/containerd/certs.d/<host>/hosts.toml; refuses a host that would put it anywhere else.

    Settings already allow only host[:port] here; this keeps the EKS user data, which writes the
    path on every node, from leaving certs.d whatever an Upstream holds.
    """
    path = posixpath.normpath(f"{CERTS_DIR}/{upstream.registry_host}/hosts.toml")
    if posixpath.dirname(posixpath.dirname(path)) != CERTS_DIR or upstream.registry_host in ("", ".", ".."):
        raise ValueError(f"registry host {upstream.registry_host!r} would put hosts.toml outside {CERTS_DIR}")
    return path


def render_containerd_hosts_toml(cache_host: str, upstream: Upstream, options: MirrorOptions = MirrorOptions()) -> str:
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


def render_k3s_registries_yaml(
    cache_host: str,
    upstreams: tuple[Upstream, ...],
    options: MirrorOptions = MirrorOptions(),
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


def pull_credential_outputs(
    cache_host: str, upstreams: tuple[Upstream, ...], credential: PullCredential, options: MirrorOptions = MirrorOptions()
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
    }


def crio_dropin_name(upstream: Upstream) -> str:
    return f"harbor-cache-{upstream.name}.conf"


def render_crio_registries_conf(cache_host: str, upstream: Upstream, options: MirrorOptions = MirrorOptions()) -> str:
    """/etc/containers/registries.conf.d/<name>.conf for CRI-O and podman.

    Fail closed points the registry itself at the cache, so there is no upstream to fall back to.
    """
    location = f"{cache_host}/{upstream.project}"
    if options.fail_closed:
        registry = {"prefix": upstream.registry_host, "location": location}
    else:
        registry = {"prefix": upstream.registry_host, "location": upstream.registry_host, "mirror": [{"location": location}]}
    return tomli_w.dumps({"registry": [registry]})


def render_talos_patch(cache_host: str, upstreams: tuple[Upstream, ...], options: MirrorOptions = MirrorOptions()) -> str:
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


def render_eks_user_data(cache_host: str, upstreams: tuple[Upstream, ...], options: MirrorOptions = MirrorOptions()) -> str:
    """A MIME part for EKS AL2023 (nodeadm) user data: cloud-init writes the hosts.toml files.

    The EKS AL2023 images already point containerd's config_path at /etc/containerd/certs.d, and
    containerd reads hosts.toml per pull, so no restart is needed. Add this part next to your
    NodeConfig part in the launch template's multipart user data.
    """
    cloud_config = {
        "write_files": [
            {
                "path": containerd_hosts_path(upstream),
                "permissions": "0644",
                "owner": "root:root",
                "content": render_containerd_hosts_toml(cache_host, upstream, options),
            }
            for upstream in upstreams
        ]
    }
    message = MIMEMultipart(boundary="HARBORCACHE")
    message.attach(MIMEText("#cloud-config\n" + yaml.safe_dump(cloud_config, sort_keys=False), "cloud-config"))
    return message.as_string()


def mirror_summary(cache_host: str, upstreams: tuple[Upstream, ...], options: MirrorOptions = MirrorOptions()) -> dict:
    """The `mirrors` stack output: upstream host -> what a cluster needs to know about its project."""
    return {
        upstream.registry_host: {
            "project": upstream.project,
            "mirrorUrl": mirror_url(cache_host, upstream),
            "imagePrefix": image_prefix(cache_host, upstream),
            "exampleImage": example_image(cache_host, upstream),
            "hostsTomlPath": containerd_hosts_path(upstream),
            "hostsToml": render_containerd_hosts_toml(cache_host, upstream, options),
        }
        for upstream in upstreams
    }


def node_files(cache_host: str, upstreams: tuple[Upstream, ...], options: MirrorOptions = MirrorOptions()) -> dict[str, str]:
    """Every node-side file, keyed by its path under the render output's nodes/ folder."""
    files = {
        f"nodes/containerd/certs.d/{u.registry_host}/hosts.toml": render_containerd_hosts_toml(cache_host, u, options)
        for u in upstreams
    }
    files["nodes/containerd/config-1.x.toml"] = render_containerd_config_snippet(1)
    files["nodes/containerd/config-2.x.toml"] = render_containerd_config_snippet(2)
    files["nodes/k3s/registries.yaml"] = render_k3s_registries_yaml(cache_host, upstreams, options)
    for upstream in upstreams:
        files[f"nodes/crio/registries.conf.d/{crio_dropin_name(upstream)}"] = render_crio_registries_conf(
            cache_host, upstream, options
        )
    files["nodes/talos/harbor-cache-mirrors.yaml"] = render_talos_patch(cache_host, upstreams, options)
    files["nodes/eks/user-data-mime.txt"] = render_eks_user_data(cache_host, upstreams, options)
    return files


def stack_outputs(cache_host: str, upstreams: tuple[Upstream, ...], options: MirrorOptions = MirrorOptions()) -> dict:
    """The stack outputs cluster configuration consumes (StackReference or `pulumi stack output --json`)."""
    return {
        "mirrors": mirror_summary(cache_host, upstreams, options),
        "containerdHostsToml": {u.registry_host: render_containerd_hosts_toml(cache_host, u, options) for u in upstreams},
        "containerdConfigSnippet": {"1.x": render_containerd_config_snippet(1), "2.x": render_containerd_config_snippet(2)},
        "k3sRegistriesYaml": render_k3s_registries_yaml(cache_host, upstreams, options),
        "crioRegistriesConf": {crio_dropin_name(u): render_crio_registries_conf(cache_host, u, options) for u in upstreams},
        "talosPatch": render_talos_patch(cache_host, upstreams, options),
        "dockerImagePrefixes": {u.registry_host: image_prefix(cache_host, u) for u in upstreams},
        "eksUserData": render_eks_user_data(cache_host, upstreams, options),
    }
