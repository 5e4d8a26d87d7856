"""The smoke and prewarm steps and the probe timer under Pulumi mocks: they exist, run after
Harbor's configuration, carry no secret, and re-run only when what they prove changes."""

from __future__ import annotations

import json

import pytest

from components.settings.settings import parse_settings
from components.vm import operate_files
from components.vm.files import FILES_DIR
from components.vm.probe import parse_results
from tests.settings.test_settings import dev_raw, problems_of
from tests.standins.pulumi_harness import FAKE_PUBLIC_IP, dev_config, run_program

COMMAND = "command:remote:Command"
PREWARM = ["docker.io/library/nginx:1.27", "registry.k8s.io/coredns/coredns:v1.11.3"]


def steps(run) -> dict:
    return {r.name.removeprefix("harbor-probe-"): r for r in run.of_type(COMMAND) if r.name.startswith("harbor-probe-")}


@pytest.fixture(scope="module")
def run():
    return run_program({**dev_config(), "harbor-cache:prewarm": PREWARM})


def depends(run, name: str) -> set[str]:
    urns = {r.urn: r.name for r in run.registrations}
    return {urns.get(urn, urn) for urn in steps(run)[name].dependencies}


def test_smoke_pulls_one_image_per_proxy_project_from_the_vm_host(run):
    smoke = steps(run)["smoke"]
    assert smoke.inputs["create"] == (
        "PROBE_CONNECT_HOST=127.0.0.1 METRICS_NAMESPACE=HarborCache/dev HARBOR_CACHE_STACK=dev AWS_REGION=eu-central-1 "
        "DATA_MOUNT=/data HEALTH_URL=http://127.0.0.1:8080/api/v2.0/health "
        "PROBE_METRICS_REPORTER=/opt/harbor/bin/harbor-metrics.py "
        f"python3 - --expect-address {FAKE_PUBLIC_IP} --verify-stored --metric SmokeFailures https://harbor.dev.example.com "
        "dockerhub-proxy/library/busybox:1.37 ghcr-proxy/containerd/busybox:1.36 quay-proxy/prometheus/busybox:latest "
        "k8s-proxy/pause:3.10 gcr-proxy/distroless/static-debian12:nonroot"
    )
    assert smoke.inputs["stdin"] == (FILES_DIR / "harbor-probe.py").read_text()
    assert smoke.inputs["connection"]["user"] == "ubuntu"
    assert smoke.secret_keys() == {"connection"}, "only the SSH key is secret; no credential in the pulls"


def test_smoke_runs_after_every_project_and_registry_exists(run):
    after = depends(run, "smoke")
    for upstream in ("dockerhub", "ghcr", "quay", "k8s", "gcr"):
        assert f"harbor-config-project-{upstream}" in after and f"harbor-config-registry-{upstream}" in after


def test_prewarm_pulls_every_blob_after_the_smoke(run):
    prewarm = steps(run)["prewarm"]
    assert "--all-blobs" in prewarm.inputs["create"]
    assert prewarm.inputs["create"].endswith("dockerhub-proxy/library/nginx:1.27 k8s-proxy/coredns/coredns:v1.11.3")
    assert "harbor-probe-smoke" in depends(run, "prewarm")
    assert "prewarm" not in steps(run_program(dev_config())), "no list, no step"


def test_the_probe_timer_is_installed_after_the_deploy_pulls(run):
    found = steps(run)
    settings = parse_settings({**dev_raw(), "prewarm": PREWARM}, stack="dev", region="eu-central-1")
    for path, content in operate_files.probe_files(settings).items():
        step = found[f"file-{path.rsplit('/', 1)[1]}"]
        assert step.inputs["stdin"] == content and path in step.inputs["create"]
        assert "harbor-probe-prewarm" in depends(run, step.name.removeprefix("harbor-probe-"))
    service = found["file-harbor-probe.service"].inputs["stdin"]
    assert "--metric SmokeFailures" in service and "--metric PrewarmFailures --all-blobs" in service
    assert found["timer"].inputs["create"] == "sudo bash -s -- harbor-probe.timer"
    assert "OnUnitActiveSec=6h" in found["file-harbor-probe.timer"].inputs["stdin"]


def test_triggers_follow_what_they_prove():
    def triggers(config: dict) -> dict:
        return {name: step.inputs["triggers"] for name, step in steps(run_program(config)).items()}

    base = triggers({**dev_config(), "harbor-cache:prewarm": PREWARM})
    again = triggers({**dev_config(), "harbor-cache:prewarm": PREWARM})
    assert again == base, "an unchanged up re-runs nothing"
    changed = steps(run_program({**dev_config(), "harbor-cache:prewarm": [*PREWARM, "quay.io/prometheus/node-exporter:v1.8.2"]}))
    assert changed["smoke"].inputs["triggers"] == base["smoke"]
    assert changed["prewarm"].inputs["triggers"] != base["prewarm"]
    for trigger_list in base.values():
        assert "harbor-vm-instance-id" in trigger_list, "a new VM is proved again"


def test_smoke_images_and_prewarm_are_validated():
    assert any("smokeImages" in p and "'nope'" in p for p in problems_of(smokeImages={"nope": "busybox:1"}))
    assert any("smokeImages.dockerhub" in p and "'Busybox'" in p for p in problems_of(smokeImages={"dockerhub": "Busybox"}))
    assert any("prewarm" in p and "'docker.io/nginx'" in p for p in problems_of(prewarm=["docker.io/nginx"]))
    assert any("prewarm" in p and "example.org" in p for p in problems_of(prewarm=["example.org/x:1"]))
    run = run_program({**dev_config(), "harbor-cache:smokeImages": {"gcr": "", "dockerhub": "library/alpine:3.20"}})
    create = steps(run)["smoke"].inputs["create"]
    assert "dockerhub-proxy/library/alpine:3.20" in create and "gcr-proxy" not in create


def test_the_smoke_output_lists_what_was_pulled_and_how_long():
    stdout = json.dumps({"image": "dockerhub-proxy/library/busybox:1.37", "ok": True, "seconds": 1.5}) + "\nnoise\n"
    assert parse_results(stdout) == [{"image": "dockerhub-proxy/library/busybox:1.37", "ok": True, "seconds": 1.5}]
    assert "smoke" in run_program(dev_config()).outputs


def test_no_smoke_images_no_smoke_step_and_a_zero_metric():
    config = {**dev_config(), "harbor-cache:smokeImages": {name: "" for name in ("dockerhub", "ghcr", "quay", "k8s", "gcr")}}
    found = steps(run_program(config))
    assert "smoke" not in found and "timer" in found
    service = found["file-harbor-probe.service"].inputs["stdin"]
    assert "harbor-metrics.py put SmokeFailures 0" in service and "harbor-metrics.py put PrewarmFailures 0" in service
