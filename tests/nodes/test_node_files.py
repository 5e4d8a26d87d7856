"""Every node-side file parses and names the right project and host."""

from __future__ import annotations

import dataclasses
import email
import tomllib

import pytest
import yaml

from components.nodes.containerd import containerd_hosts_path, render_containerd_config_snippet, render_containerd_hosts_toml
from components.nodes.crio import render_crio_registries_conf
from components.nodes.eks import render_eks_user_data
from components.nodes.k3s import render_k3s_registries_yaml
from components.nodes.mirrors import MirrorOptions
from components.nodes.outputs import mirror_summary, node_files
from components.nodes.talos import render_talos_patch
from tests.settings.test_settings import parse
from tests.standins.pulumi_harness import dev_config, run_program

HOST = "harbor.dev.example.com"


@pytest.fixture(scope="module")
def settings():
    return parse()


def test_hosts_toml_for_every_upstream(settings):
    for upstream in settings.upstreams:
        document = tomllib.loads(render_containerd_hosts_toml(HOST, upstream))
        assert document["server"] == upstream.server
        assert document["host"] == {
            f"https://{HOST}/v2/{upstream.project}": {"capabilities": ["pull", "resolve"], "override_path": True}
        }
    docker = tomllib.loads(render_containerd_hosts_toml(HOST, settings.upstreams[0]))
    assert docker["server"] == "https://registry-1.docker.io"


def test_hosts_toml_fail_closed_and_ca(settings):
    upstream = settings.upstreams[1]
    document = tomllib.loads(
        render_containerd_hosts_toml(HOST, upstream, MirrorOptions(ca_file="/etc/ca.crt", fail_closed=True))
    )
    assert document["server"] == f"https://{HOST}/v2/ghcr-proxy" and document["override_path"] is True
    assert document["ca"] == "/etc/ca.crt"
    assert list(document["host"]) == [f"https://{HOST}/v2/ghcr-proxy"]


def test_containerd_config_snippets_name_the_right_plugin():
    one = tomllib.loads(render_containerd_config_snippet(1))
    two = tomllib.loads(render_containerd_config_snippet(2))
    assert (
        one["version"] == 2
        and one["plugins"]["io.containerd.grpc.v1.cri"]["registry"]["config_path"] == "/etc/containerd/certs.d"
    )
    assert (
        two["version"] == 3
        and two["plugins"]["io.containerd.cri.v1.images"]["registry"]["config_path"] == "/etc/containerd/certs.d"
    )


def test_k3s_registries_yaml_rewrites_into_each_project(settings):
    document = yaml.safe_load(render_k3s_registries_yaml(HOST, settings.upstreams, MirrorOptions(ca_file="/etc/ca.crt")))
    assert document["mirrors"]["docker.io"] == {"endpoint": [f"https://{HOST}"], "rewrite": {"^(.*)$": "dockerhub-proxy/$1"}}
    assert document["mirrors"]["registry.k8s.io"]["rewrite"] == {"^(.*)$": "k8s-proxy/$1"}
    assert document["configs"][HOST]["tls"]["ca_file"] == "/etc/ca.crt"
    assert "configs" not in yaml.safe_load(render_k3s_registries_yaml(HOST, settings.upstreams))


def test_crio_dropins(settings):
    quay = next(u for u in settings.upstreams if u.registry_host == "quay.io")
    document = tomllib.loads(render_crio_registries_conf(HOST, quay))
    assert document["registry"] == [{"prefix": "quay.io", "location": "quay.io", "mirror": [{"location": f"{HOST}/quay-proxy"}]}]
    closed = tomllib.loads(render_crio_registries_conf(HOST, quay, MirrorOptions(fail_closed=True)))
    assert closed["registry"] == [{"prefix": "quay.io", "location": f"{HOST}/quay-proxy"}]


def test_talos_patch(settings):
    document = yaml.safe_load(render_talos_patch(HOST, settings.upstreams))
    mirror = document["machine"]["registries"]["mirrors"]["ghcr.io"]
    assert mirror == {"endpoints": [f"https://{HOST}/v2/ghcr-proxy"], "overridePath": True, "skipFallback": False}


def test_eks_user_data_writes_every_hosts_toml(settings):
    message = email.message_from_string(render_eks_user_data(HOST, settings.upstreams))
    assert message.is_multipart()
    (part,) = message.get_payload()
    assert part.get_content_type() == "text/cloud-config"
    body = part.get_payload(decode=True).decode()
    assert body.startswith("#cloud-config\n")
    files = {f["path"]: f["content"] for f in yaml.safe_load(body)["write_files"]}
    assert set(files) == {f"/etc/containerd/certs.d/{u.registry_host}/hosts.toml" for u in settings.upstreams}
    assert tomllib.loads(files["/etc/containerd/certs.d/docker.io/hosts.toml"])["server"] == "https://registry-1.docker.io"


def test_image_prefixes_and_summary(settings):
    summary = mirror_summary(HOST, settings.upstreams)
    assert summary["docker.io"]["exampleImage"] == f"{HOST}/dockerhub-proxy/library/alpine:3.20"
    assert summary["gcr.io"]["imagePrefix"] == f"{HOST}/gcr-proxy"
    assert summary["ghcr.io"]["mirrorUrl"] == f"https://{HOST}/v2/ghcr-proxy"


def test_node_files_paths(settings):
    files = node_files(HOST, settings.upstreams)
    assert "nodes/containerd/certs.d/docker.io/hosts.toml" in files
    assert "nodes/k3s/registries.yaml" in files
    assert "nodes/crio/registries.conf.d/harbor-cache-quay.conf" in files
    assert "nodes/talos/harbor-cache-mirrors.yaml" in files


def test_rendering_is_deterministic(settings):
    assert node_files(HOST, settings.upstreams) == node_files(HOST, settings.upstreams)


def test_stack_exports_the_node_outputs():
    config = {**dev_config(), "harbor-cache:mirrorFailClosed": True}
    run = run_program(config)
    assert run.outputs["mirrors"]["docker.io"]["project"] == "dockerhub-proxy"
    hosts = tomllib.loads(run.outputs["containerdHostsToml"]["ghcr.io"])
    assert hosts["server"] == "https://harbor.dev.example.com/v2/ghcr-proxy"
    assert yaml.safe_load(run.outputs["k3sRegistriesYaml"])["mirrors"]["quay.io"]["endpoint"] == [
        "https://harbor.dev.example.com"
    ]
    assert set(run.outputs["dockerImagePrefixes"]) == {"docker.io", "ghcr.io", "quay.io", "registry.k8s.io", "gcr.io"}
    assert "1.x" in run.outputs["containerdConfigSnippet"]


def test_eks_user_data_never_writes_outside_certs_d(settings):
    # Upstreams that settings would refuse, built directly: the file writers must refuse them too.
    escaping = dataclasses.replace(settings.upstreams[1], registry_host="x.example.com:1/../../../../etc/cron.d")
    with pytest.raises(ValueError, match="outside /etc/containerd/certs.d"):
        render_eks_user_data(HOST, (escaping,))
    with pytest.raises(ValueError, match="outside"):
        containerd_hosts_path(dataclasses.replace(settings.upstreams[1], registry_host=".."))


def test_renderer_never_writes_outside_its_folder(settings, tmp_path):
    from components import render

    out = tmp_path / "out"
    files = {"nodes/ok.txt": "fine", "nodes/containerd/certs.d/x.example.com:1/../../../../../escaped.txt": "no"}
    with pytest.raises(ValueError, match="not inside"):
        render.write_files(files, out)
    assert not (tmp_path / "escaped.txt").exists() and not out.exists(), "nothing is written when one path escapes"
    with pytest.raises(ValueError, match="not inside"):
        render.write_files({"/etc/passwd": "no"}, out)
    (tmp_path / "elsewhere").mkdir()
    out.mkdir()
    (out / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="not inside"):
        render.write_files({"link/file": "no"}, out)
    render.write_files({"nodes/a/b.txt": "fine"}, out)
    assert (out / "nodes/a/b.txt").read_text() == "fine"
