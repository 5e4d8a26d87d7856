"""Stored, not streamed: the real probe (files/harbor-probe.py --verify-stored) pulls through a
stand-in of Harbor's proxy path (tests/standins/proxy_cache_harbor.py: Harbor v2.15.2's repoproxy
middleware and proxy controller in front of two real docker-registry processes, the upstream and
Harbor's own store). A Harbor whose store refuses writes streams every pull and keeps nothing: the
plain pull passes, the verified one must fail naming the project and Harbor's answer. A Harbor that
stores passes, and the proof holds with the upstream unreachable from the moment it stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from components.vm.files import FILES_DIR
from tests.paths import ROOT
from tests.standins.daemons import build_oci_image, make_test_ca, require_binaries
from tests.standins.proxy_cache_harbor import PlainRegistry, Project, ProxyCacheHarbor

PROJECT = "dockerhub-proxy"
IMAGE = f"{PROJECT}/library/busybox:1.37"
PRIVATE = "private-proxy"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require_binaries("docker-registry", "skopeo", "openssl")
    directory = tmp_path_factory.mktemp("stored")
    ca = make_test_ca(directory / "ca")
    upstream = PlainRegistry(directory / "upstream")
    layout = build_oci_image(directory / "image", "1.37", "kept, not streamed")
    subprocess.run(
        [
            "skopeo",
            "--insecure-policy",
            "copy",
            "--dest-tls-verify=false",
            f"oci:{layout}:1.37",
            f"docker://127.0.0.1:{upstream.port}/library/busybox:1.37",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    yield {"ca": ca, "upstream": upstream, "directory": directory}
    upstream.stop()


@pytest.fixture
def harbor(lab, tmp_path):
    started = []

    def start(**options) -> ProxyCacheHarbor:
        projects = {PROJECT: Project(public=True), PRIVATE: Project(public=False)}
        # Harbor checks every 20 s (sleepIntervalSec), 10 times; the test's clock runs faster.
        directory = tmp_path / f"h{len(started)}"
        started.append(ProxyCacheHarbor(directory, lab["ca"], lab["upstream"], projects, interval=0.3, **options))
        return started[-1]

    yield start
    for harbor in started:
        harbor.stop()


def probe(lab, *args: str, **env: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    environment = {
        **os.environ,
        "PROBE_CA_FILE": str(lab["ca"].ca_cert),
        "PROBE_TIMEOUT": "10",
        "PROBE_STORE_WAIT": "8",
        "PROBE_STORE_POLL": "0.2",
        **env,
    }
    result = subprocess.run(
        [sys.executable, str(FILES_DIR / "harbor-probe.py"), *args], env=environment, capture_output=True, text=True, timeout=120
    )
    return result, [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_a_harbor_that_stores_passes_with_the_upstream_cut_once_stored(lab, harbor):
    stand_in = harbor(cut_upstream_once_stored=True)
    result, (line,) = probe(lab, "--verify-stored", stand_in.url, IMAGE)
    assert result.returncode == 0 and line["ok"] is True, (line, result.stderr)
    stored = line["stored"]
    assert stored["artifact"].startswith("sha256:") and stored["push_time"].endswith("Z")
    assert not stand_in.upstream_reachable, "the proof ran with the upstream unreachable"
    assert line["blobs"] == 2, "every blob of the image, so Harbor can store the manifest"
    # The first pull was a miss, as core logs it (repoproxy/proxy.go handleManifest).
    assert stand_in.core_log == [
        f"Artifact: {PROJECT}/library/busybox:1.37, digest: is not found in proxy cache, fetch it from remote repo"
    ]


def test_a_harbor_that_only_streams_fails_naming_the_project_and_harbors_answer(lab, harbor):
    stand_in = harbor(storing=False)
    plain, (line,) = probe(lab, "--all-blobs", stand_in.url, IMAGE)
    assert plain.returncode == 0 and line["ok"] is True, "a pull alone cannot tell: that is why the check exists"
    result, (line,) = probe(lab, "--verify-stored", stand_in.url, IMAGE)
    assert result.returncode == 1 and line["ok"] is False
    error = line["error"]
    assert error.startswith(f"cache: project {PROJECT}: Harbor served {IMAGE} but did not keep it"), error
    assert "answers 404 (NOT_FOUND artifact dockerhub-proxy/library/busybox@sha256:" in error
    assert "/api/v2.0/projects/dockerhub-proxy/repositories/library%252Fbusybox/artifacts/sha256:" in error
    assert any(entry.startswith("error while putting blob to local repo") for entry in stand_in.core_log)
    assert "waiting for Harbor to store" in result.stderr, "a long wait says what it waits for"


def test_a_blob_served_from_the_upstream_again_is_caught_by_the_range_request(lab, tmp_path):
    # Harbor's database lists the artifact, but its storage lost a blob and cannot write: the pull
    # passes (streamed), the API says stored; the Range request gets the whole blob with 200 from
    # Harbor's upstream path instead of 206 from the store.
    projects = {PROJECT: Project(public=True)}
    first = ProxyCacheHarbor(tmp_path / "h", lab["ca"], lab["upstream"], projects, interval=0.3)
    try:
        result, (line,) = probe(lab, "--verify-stored", first.url, IMAGE)
        assert line["ok"] is True, line
    finally:
        first.stop()
    layers = tmp_path / "h/store/storage/docker/registry/v2/repositories" / f"{PROJECT}/library/busybox" / "_layers/sha256"
    for link in layers.iterdir():
        for item in link.iterdir():
            item.unlink()
        link.rmdir()
    broken = ProxyCacheHarbor(tmp_path / "h", lab["ca"], lab["upstream"], projects, storing=False, interval=0.3)
    broken.artifacts = dict(first.artifacts)  # the database survives its storage
    try:
        result, (line,) = probe(lab, "--verify-stored", broken.url, IMAGE)
    finally:
        broken.stop()
    assert result.returncode == 1
    assert "was fetched from the upstream again (a Range request answered 200" in line["error"], line
    assert line["error"].startswith(f"cache: project {PROJECT}: blob sha256:")


def test_a_private_project_is_probed_with_the_pull_robot(lab, harbor, tmp_path):
    stand_in = harbor()
    image = f"{PRIVATE}/library/busybox:1.37"
    anonymous, (line,) = probe(lab, "--verify-stored", stand_in.url, image)
    assert line["error"].startswith(f"auth: anonymous pull of {image} refused (401"), line
    credentials = tmp_path / "probe-credentials"
    credentials.write_text("robot$probe:robot-secret\n")
    result, (line,) = probe(
        lab, "--verify-stored", "--private", PRIVATE, stand_in.url, image, PROBE_ROBOT_FILE=str(credentials)
    )
    assert result.returncode == 0 and line["ok"] is True, (line, result.stderr)
    assert "robot-secret" not in result.stdout + result.stderr


def test_a_robot_without_artifact_read_names_the_permission(lab, harbor, tmp_path):
    stand_in = harbor(robot_reads_artifacts=False)
    credentials = tmp_path / "probe-credentials"
    credentials.write_text("robot$probe:robot-secret\n")
    result, (line,) = probe(
        lab,
        "--verify-stored",
        "--private",
        PRIVATE,
        stand_in.url,
        f"{PRIVATE}/library/busybox:1.37",
        PROBE_ROBOT_FILE=str(credentials),
    )
    assert result.returncode == 1
    assert line["error"].startswith(f"cache: project {PRIVATE}: Harbor's API answered 403"), line
    assert "artifact read" in line["error"]


def test_each_projects_result_goes_to_cloudwatch(lab, harbor):
    from tests.aws.test_alarms import Loopback

    stand_in = harbor(storing=False)
    cloud = Loopback(health=None)
    try:
        started = time.monotonic()
        result, _lines = probe(
            lab,
            "--verify-stored",
            "--metric",
            "SmokeFailures",
            stand_in.url,
            IMAGE,
            PROBE_STORE_WAIT="2",
            IMDS_ENDPOINT=cloud.url,
            CLOUDWATCH_ENDPOINT=f"{cloud.url}/",
            AWS_REGION="eu-central-1",
            HARBOR_CACHE_STACK="dev",
        )
        assert time.monotonic() - started < 60
    finally:
        cloud.stop()
    assert result.returncode == 1
    (request,) = cloud.requests
    data = {d["MetricName"]: d for d in json.loads(request["body"])["MetricData"]}
    assert data["SmokeFailures"]["Value"] == 1.0
    assert data["ProbeFailed"]["Value"] == 1.0
    assert data["ProbeFailed"]["Dimensions"] == [{"Name": "Stack", "Value": "dev"}, {"Name": "Project", "Value": PROJECT}]


def test_the_standin_cites_harbor(lab):
    text = (ROOT / "tests" / "standins" / "proxy_cache_harbor.py").read_text()
    for source in ("src/server/middleware/repoproxy/proxy.go", "src/controller/proxy/controller.go", "manifestcache.go"):
        assert source in text


def test_the_scheduled_probe_checks_the_name_against_the_vms_own_address(lab, harbor):
    # --expect-address imds: the Elastic IP from IMDSv2 (public-ipv4), as the timer's unit cannot know it.
    from tests.aws.test_alarms import Loopback

    stand_in = harbor()
    imds = Loopback(health=None)
    try:
        result, (line,) = probe(lab, "--expect-address", "imds", stand_in.url, IMAGE, IMDS_ENDPOINT=imds.url)
        assert line["ok"] is True, line
        imds.public_ipv4 = "192.0.2.10"
        result, (line,) = probe(lab, "--expect-address", "imds", stand_in.url, IMAGE, IMDS_ENDPOINT=imds.url)
    finally:
        imds.stop()
    assert line["error"].startswith("DNS: localhost resolves to") and "not to this cache's address 192.0.2.10" in line["error"]
