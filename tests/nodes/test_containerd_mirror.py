"""The generated hosts.toml, proven with Debian's containerd pulling through a loopback registry
that stands in for Harbor (TLS with a CA made here, images pushed under /v2/<project>/...), also
as the hosts.toml DaemonSet lays it down (its script under Debian's busybox, as in its image)."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import tomllib

import pytest
import tomli_w
import yaml

from components.nodes.containerd import render_containerd_hosts_toml
from components.nodes.daemonset import render_hosts_toml_daemonset
from components.nodes.mirrors import MirrorOptions
from components.settings.upstreams import Upstream
from tests.standins.daemons import Containerd, Registry, build_oci_image, make_test_ca, push_image, require_binaries

DOCKER_HUB = Upstream(
    name="dockerhub", type="docker-hub", url="https://hub.docker.com", project="dockerhub-proxy", registry_host="docker.io"
)
GHCR = Upstream(name="ghcr", type="github-ghcr", url="https://ghcr.io", project="ghcr-proxy", registry_host="ghcr.io")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require_binaries("containerd", "ctr", "docker-registry", "skopeo", "openssl")
    root = tmp_path_factory.mktemp("lab")
    ca = make_test_ca(root / "ca")
    cache = Registry(root / "cache", ca)  # plays Harbor: projects are path prefixes
    # Plays the real upstream when the cache lacks an image; plain HTTP so the fallback needs no CA.
    upstream = Registry(root / "upstream", ca, tls=False)
    containerd = Containerd(root / "containerd")
    try:
        push_image(build_oci_image(root / "img-hub", "1", "from the cache"), "1", cache, "dockerhub-proxy/library/hello")
        push_image(build_oci_image(root / "img-ghcr", "2", "ghcr via cache"), "2", cache, "ghcr-proxy/acme/tool")
        push_image(build_oci_image(root / "img-up", "3", "only upstream"), "3", upstream, "library/fallback")
        yield {"root": root, "ca": ca, "cache": cache, "upstream": upstream, "containerd": containerd}
    finally:
        containerd.stop()
        cache.stop()
        upstream.stop()


def hosts_dir(lab, name: str, files: dict[str, str]):
    directory = lab["root"] / name
    for registry_host, text in files.items():
        (directory / registry_host).mkdir(parents=True, exist_ok=True)
        (directory / registry_host / "hosts.toml").write_text(text)
    return directory


def with_loopback_fallback(lab, upstream: Upstream) -> Upstream:
    # Nodes fall back to `server`; here it is the loopback upstream, never the internet.
    return dataclasses.replace(upstream, server_url=f"http://{lab['upstream'].host}")


def test_pull_docker_hub_and_ghcr_images_through_the_cache_project(lab):
    options = MirrorOptions(ca_file=str(lab["ca"].ca_cert))
    cache_host = lab["cache"].host
    directory = hosts_dir(
        lab,
        "hosts-ok",
        {
            "docker.io": render_containerd_hosts_toml(cache_host, with_loopback_fallback(lab, DOCKER_HUB), options),
            "ghcr.io": render_containerd_hosts_toml(cache_host, with_loopback_fallback(lab, GHCR), options),
        },
    )
    for reference in ("docker.io/library/hello:1", "ghcr.io/acme/tool:2"):
        result = lab["containerd"].pull(reference, directory)
        assert result.returncode == 0, result.stderr
    requests = lab["cache"].requests()
    assert any(r.startswith("HEAD /v2/dockerhub-proxy/library/hello/manifests/1") for r in requests), requests
    assert any(r.startswith("HEAD /v2/ghcr-proxy/acme/tool/manifests/2") for r in requests), requests
    assert any(r.startswith("GET /v2/dockerhub-proxy/library/hello/blobs/sha256:") for r in requests), requests
    assert not [r for r in requests if "/v2/dockerhub-proxy/v2/" in r]
    listed = lab["containerd"].ctr("images", "ls", "-q").stdout.split()
    assert "docker.io/library/hello:1" in listed and "ghcr.io/acme/tool:2" in listed


def test_without_override_path_the_pull_fails(lab):
    upstream = with_loopback_fallback(lab, DOCKER_HUB)
    options = MirrorOptions(ca_file=str(lab["ca"].ca_cert))
    document = tomllib.loads(render_containerd_hosts_toml(lab["cache"].host, upstream, options))
    for host in document["host"].values():
        host.pop("override_path")
    directory = hosts_dir(lab, "hosts-no-override", {"docker.io": tomli_w.dumps(document)})
    lab["containerd"].ctr("images", "rm", "docker.io/library/hello:1")
    result = lab["containerd"].pull("docker.io/library/hello:1", directory)
    assert result.returncode != 0, "without override_path containerd must miss the project path"
    # containerd appended /v2/... after the project path, which the registry does not know.
    assert any("/v2/dockerhub-proxy/v2/library/hello/manifests/1" in r for r in lab["cache"].requests()), result.stderr


def test_fail_open_falls_back_to_the_upstream_and_fail_closed_does_not(lab):
    cache_host = lab["cache"].host
    ca = str(lab["ca"].ca_cert)
    upstream = with_loopback_fallback(lab, DOCKER_HUB)
    open_dir = hosts_dir(
        lab, "hosts-open", {"docker.io": render_containerd_hosts_toml(cache_host, upstream, MirrorOptions(ca_file=ca))}
    )
    before = len(lab["upstream"].requests())
    result = lab["containerd"].pull("docker.io/library/fallback:3", open_dir)
    assert result.returncode == 0, result.stderr
    assert len(lab["upstream"].requests()) > before, "the image came from the upstream"

    lab["containerd"].ctr("images", "rm", "docker.io/library/fallback:3")
    closed = render_containerd_hosts_toml(cache_host, upstream, MirrorOptions(ca_file=ca, fail_closed=True))
    closed_dir = hosts_dir(lab, "hosts-closed", {"docker.io": closed})
    cached = lab["containerd"].pull("docker.io/library/hello:1", closed_dir)
    assert cached.returncode == 0 and "failed to decode" not in cached.stderr, cached.stderr
    before = len(lab["upstream"].requests())
    result = lab["containerd"].pull("docker.io/library/fallback:3", closed_dir)
    assert result.returncode != 0
    assert len(lab["upstream"].requests()) == before, "fail closed must never ask the upstream"
    assert "docker.io/library/hello:1" in lab["containerd"].ctr("images", "ls", "-q").stdout.split()


def test_the_ca_option_is_what_makes_tls_verify(lab):
    directory = hosts_dir(
        lab,
        "hosts-no-ca",
        {
            "docker.io": render_containerd_hosts_toml(
                lab["cache"].host, with_loopback_fallback(lab, DOCKER_HUB), MirrorOptions()
            ),
        },
    )
    lab["containerd"].ctr("images", "rm", "docker.io/library/hello:1")
    result = lab["containerd"].pull("docker.io/library/hello:1", directory)
    assert result.returncode != 0
    assert "x509" in result.stderr.lower() and "failed to decode" not in result.stderr, result.stderr


def kubelet_config_map_volume(directory, config_map: dict, items: list[dict]):
    """The folder kubelet mounts for a ConfigMap volume with `items`: the files in a timestamped
    folder, `..data` pointing at it, and each top-level path a link through `..data`
    (kubernetes pkg/volume/util/atomic_writer.go, AtomicWriter.Write), so an update swaps one link."""
    stamp = directory / f"..{len(list(directory.glob('..2*')))}2026_12_06"
    for item in items:
        path = stamp / item["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(config_map["data"][item["key"]])
    data = directory / "..data"
    if data.is_symlink():
        data.unlink()
    data.symlink_to(stamp.name)
    for top in {item["path"].split("/")[0] for item in items}:
        if not (directory / top).is_symlink():
            (directory / top).symlink_to(f"..data/{top}")
    return directory


def run_sync_once(lab, daemon_set: dict, source, target):
    """The DaemonSet's container command under busybox, as in its image, until its first `sleep`."""
    require_binaries("busybox")
    container = daemon_set["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert env["SOURCE"] == mounts["hosts-toml"] and env["TARGET"] == mounts["certs-d"]
    tools = lab["root"] / "busybox-bin"
    if not tools.exists():
        tools.mkdir()
        for applet in ("sh", "cmp", "cp", "mv", "mkdir", "basename", "dirname"):
            (tools / applet).symlink_to(shutil.which("busybox"))
        # Ends the endless loop after one pass: `set -e` stops the script on the failing sleep.
        (tools / "sleep").write_text("#!/bin/sh\nexit 3\n")
        (tools / "sleep").chmod(0o755)
    shell, flag, script = container["command"]
    assert (shell, flag) == ("/bin/sh", "-c")
    env.update({"SOURCE": str(source), "TARGET": str(target), "PATH": str(tools)})
    return subprocess.run([str(tools / "sh"), "-c", script], env=env, capture_output=True, text=True, timeout=60)


def test_the_daemonset_lays_hosts_toml_down_and_containerd_pulls_through_it(lab):
    cache_host = lab["cache"].host
    options = MirrorOptions(ca_file=str(lab["ca"].ca_cert))
    upstreams = (with_loopback_fallback(lab, DOCKER_HUB), with_loopback_fallback(lab, GHCR))
    config_map, daemon_set = yaml.safe_load_all(render_hosts_toml_daemonset(cache_host, upstreams, options))
    volume = next(v for v in daemon_set["spec"]["template"]["spec"]["volumes"] if "configMap" in v)
    source = kubelet_config_map_volume(lab["root"] / "daemonset-volume", config_map, volume["configMap"]["items"])
    target = lab["root"] / "daemonset-certs.d"  # the hostPath, /etc/containerd/certs.d on a node
    first = run_sync_once(lab, daemon_set, source, target)
    assert first.returncode == 3, first.stderr
    assert sorted(first.stdout.split("\n")[:-1]) == [
        "wrote /etc/containerd/certs.d/docker.io/hosts.toml",
        "wrote /etc/containerd/certs.d/ghcr.io/hosts.toml",
    ]
    for upstream in upstreams:
        written = (target / upstream.registry_host / "hosts.toml").read_text()
        assert written == render_containerd_hosts_toml(cache_host, upstream, options)
    assert not list(target.glob("*/.hosts.toml.new")), "the copy is renamed into place"

    lab["containerd"].ctr("images", "rm", "docker.io/library/hello:1", "ghcr.io/acme/tool:2")
    for reference in ("docker.io/library/hello:1", "ghcr.io/acme/tool:2"):
        result = lab["containerd"].pull(reference, target)
        assert result.returncode == 0, result.stderr

    # A new output applied to the ConfigMap: kubelet swaps ..data; only the changed file is rewritten.
    closed = MirrorOptions(ca_file=str(lab["ca"].ca_cert), fail_closed=True)
    changed = {**config_map["data"], "ghcr.io": render_containerd_hosts_toml(cache_host, upstreams[1], closed)}
    kubelet_config_map_volume(source, {**config_map, "data": changed}, volume["configMap"]["items"])
    second = run_sync_once(lab, daemon_set, source, target)
    assert second.returncode == 3 and second.stdout == "wrote /etc/containerd/certs.d/ghcr.io/hosts.toml\n", second
    assert (target / "ghcr.io" / "hosts.toml").read_text() == changed["ghcr.io"]
