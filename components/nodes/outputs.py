"""Renders the registry-mirror configuration that clusters and runners use to pull through the cache.

Every function is pure: settings in, file text out. Structured files are built as data and
serialised (TOML with tomli_w, YAML with PyYAML), never templated as strings.
"""

from __future__ import annotations

from components.nodes.containerd import containerd_hosts_path, render_containerd_config_snippet, render_containerd_hosts_toml
from components.nodes.crio import crio_dropin_name, render_crio_registries_conf
from components.nodes.daemonset import render_hosts_toml_daemonset
from components.nodes.eks import render_eks_user_data
from components.nodes.gitlab import gitlab_ci_variables, render_gitlab_runner_config_toml
from components.nodes.k3s import render_k3s_config_yaml, render_k3s_registries_yaml
from components.nodes.mirrors import DEFAULT_MIRRORS, MirrorOptions, example_image, image_prefix, mirror_url
from components.nodes.talos import render_talos_patch, render_talos_registry_mirror_configs
from components.settings.upstreams import Upstream


def mirror_summary(cache_host: str, upstreams: tuple[Upstream, ...], options: MirrorOptions = DEFAULT_MIRRORS) -> dict:
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


def node_files(cache_host: str, upstreams: tuple[Upstream, ...], options: MirrorOptions = DEFAULT_MIRRORS) -> dict[str, str]:
    """Every node-side file, keyed by its path under the render output's nodes/ folder."""
    files = {
        f"nodes/containerd/certs.d/{u.registry_host}/hosts.toml": render_containerd_hosts_toml(cache_host, u, options)
        for u in upstreams
    }
    files["nodes/containerd/config-1.x.toml"] = render_containerd_config_snippet(1)
    files["nodes/containerd/config-2.x.toml"] = render_containerd_config_snippet(2)
    files["nodes/k3s/registries.yaml"] = render_k3s_registries_yaml(cache_host, upstreams, options)
    files["nodes/k3s/config.yaml"] = render_k3s_config_yaml(options)
    for upstream in upstreams:
        files[f"nodes/crio/registries.conf.d/{crio_dropin_name(upstream)}"] = render_crio_registries_conf(
            cache_host, upstream, options
        )
    files["nodes/talos/harbor-cache-mirrors.yaml"] = render_talos_patch(cache_host, upstreams, options)
    files["nodes/talos/registry-mirror-configs.yaml"] = render_talos_registry_mirror_configs(cache_host, upstreams, options)
    files["nodes/kubernetes/hosts-toml-daemonset.yaml"] = render_hosts_toml_daemonset(cache_host, upstreams, options)
    files["nodes/gitlab/runner-config.toml"] = render_gitlab_runner_config_toml(cache_host, upstreams)
    files["nodes/eks/user-data-mime.txt"] = render_eks_user_data(cache_host, upstreams, options)
    return files


def stack_outputs(cache_host: str, upstreams: tuple[Upstream, ...], options: MirrorOptions = DEFAULT_MIRRORS) -> dict:
    """The stack outputs cluster configuration consumes (StackReference or `pulumi stack output --json`)."""
    return {
        "mirrors": mirror_summary(cache_host, upstreams, options),
        "containerdHostsToml": {u.registry_host: render_containerd_hosts_toml(cache_host, u, options) for u in upstreams},
        "containerdConfigSnippet": {"1.x": render_containerd_config_snippet(1), "2.x": render_containerd_config_snippet(2)},
        "k3sRegistriesYaml": render_k3s_registries_yaml(cache_host, upstreams, options),
        "k3sConfigYaml": render_k3s_config_yaml(options),
        "crioRegistriesConf": {crio_dropin_name(u): render_crio_registries_conf(cache_host, u, options) for u in upstreams},
        "talosPatch": render_talos_patch(cache_host, upstreams, options),
        "talosRegistryMirrorConfig": render_talos_registry_mirror_configs(cache_host, upstreams, options),
        "dockerImagePrefixes": {u.registry_host: image_prefix(cache_host, u) for u in upstreams},
        "gitlabCiVariables": gitlab_ci_variables(cache_host, upstreams),
        "gitlabRunnerConfigToml": render_gitlab_runner_config_toml(cache_host, upstreams),
        "containerdHostsDaemonSet": render_hosts_toml_daemonset(cache_host, upstreams, options),
        "eksUserData": render_eks_user_data(cache_host, upstreams, options),
    }
