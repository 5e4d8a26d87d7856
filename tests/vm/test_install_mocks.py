"""HarborInstall under Pulumi mocks: the remote commands, their order, their secrets and triggers."""

from __future__ import annotations

import pytest
import yaml

from components.vm import operate_files
from components.vm.files import script
from tests.standins.mock_values import generated_password
from tests.standins.pulumi_harness import (
    FAKE_HOST_PUBLIC_KEY,
    FAKE_PUBLIC_IP,
    FAKE_SIGNED_INSTALLER_SHA256,
    FAKE_ZONE_ID,
    dev_config,
    run_program,
)

COMMAND = "command:remote:Command"
STEPS = [
    "docker",
    "harbor-user",
    "data-volume",
    "harbor-yml",
    "compose-override",
    "envrc",
    "traefik-routes",
    "systemd-unit",
    "docker-dropin",
    "installer",
    "start",
    "ready",
    # Operate (issue 12): the CloudWatch reporter and its timer.
    "file-harbor-metrics.py",
    "file-harbor-metrics.service",
    "file-harbor-metrics.timer",
    "file-harbor-cache-exporter.service",
    "timers",
]


def commands(run) -> dict:
    return {r.name.removeprefix("harbor-install-"): r for r in run.of_type(COMMAND) if r.name.startswith("harbor-install-")}


@pytest.fixture(scope="module")
def run():
    return run_program(
        {**dev_config(), "harbor-cache:adminPassword": "User-Set Pa#ss: 'w0rd'"}, secret_keys=("harbor-cache:adminPassword",)
    )


def test_every_step_exists_and_connects_to_the_vm_as_the_ssh_user(run):
    steps = commands(run)
    assert sorted(steps) == sorted(STEPS)
    for step in steps.values():
        connection = step.inputs["connection"]
        assert connection["host"] == FAKE_PUBLIC_IP and connection["user"] == "ubuntu"
        # The host key is pinned to the one the VM printed on its console: no trust on first use.
        assert connection["hostKey"] == FAKE_HOST_PUBLIC_KEY
        assert "harbor-vm-ssh-key" in connection["privateKey"]
        assert "connection" in step.secret_keys(), "the private key travels as a secret"


def depends(run, step: str) -> set[str]:
    urns = {r.urn: r.name.removeprefix("harbor-install-") for r in run.registrations}
    return {urns.get(urn, urn) for urn in commands(run)[step].dependencies}


def test_steps_run_in_order_after_the_vm_is_ready(run):
    first = depends(run, "docker")
    assert {"harbor-vm-data-attachment", "harbor-vm-eip-association", "harbor-dns-a", "harbor-dns-dns01"} <= first
    assert "docker" in depends(run, "harbor-user")
    assert "harbor-user" in depends(run, "data-volume")
    for write in ("harbor-yml", "compose-override", "traefik-routes", "envrc", "systemd-unit", "docker-dropin"):
        assert "data-volume" in depends(run, write)
        assert write in depends(run, "installer") and write in depends(run, "start")
    assert "installer" in depends(run, "start")
    assert "start" in depends(run, "ready")


def test_scripts_arrive_on_stdin_and_command_lines_carry_no_secret(run):
    steps = commands(run)
    for step, script_name in (
        ("docker", "install-docker.sh"),
        ("data-volume", "data-volume.sh"),
        ("installer", "install-harbor.sh"),
        ("start", "start-harbor.sh"),
        ("ready", "wait-healthy.sh"),
    ):
        assert steps[step].inputs["stdin"] == script(script_name)
    assert steps["data-volume"].inputs["create"] == (
        "sudo DATA_VOLUME_ID=harbor-vm-data-id DATA_MOUNT=/data DATA_VOLUME_SIZE_GB=200 bash -s"
    )
    assert steps["installer"].inputs["create"] == (
        f"sudo HARBOR_VERSION=v2.15.2 HARBOR_SHA256={FAKE_SIGNED_INSTALLER_SHA256} HARBOR_INSTALLER_URL="
        "https://github.com/goharbor/harbor/releases/download/v2.15.2/harbor-offline-installer-v2.15.2.tgz bash -s"
    )
    assert steps["ready"].inputs["create"] == "sudo ACME_STAGING=0 bash -s -- harbor.dev.example.com 900"
    generated = [generated_password(r) for r in run.of_type("random:index/randomPassword:RandomPassword")]
    assert generated
    for name, step in steps.items():
        assert "w0rd" not in step.inputs["create"], name
        assert not any(password in step.inputs["create"] for password in generated), name


def test_harbor_yml_goes_only_on_stdin_as_a_secret_and_lands_mode_0600(run):
    write = commands(run)["harbor-yml"]
    assert write.inputs["create"] == "sudo install -D -m 0600 -o root -g root /dev/stdin /opt/harbor/harbor.yml"
    assert "stdin" in write.secret_keys()
    harbor = yaml.safe_load(write.inputs["stdin"])
    assert harbor["harbor_admin_password"] == "User-Set Pa#ss: 'w0rd'"
    assert harbor["database"]["password"] == generated_password(run.named("harbor-install-database-password"))
    for name, step in commands(run).items():
        if name != "harbor-yml":
            assert "w0rd" not in str(step.inputs.get("stdin", "")), name


def test_generated_passwords_use_a_safe_charset_and_admin_password_is_a_secret_output():
    run = run_program(dev_config())
    passwords = {r.name: r.inputs for r in run.of_type("random:index/randomPassword:RandomPassword")}
    assert passwords["harbor-install-admin-password"]["special"] is False
    assert passwords["harbor-install-database-password"]["special"] is False
    assert "harborAdminPassword" in run.secret_outputs


def triggers(run) -> dict[str, list]:
    return {name: step.inputs.get("triggers") for name, step in commands(run).items()}


def test_unchanged_config_gives_identical_commands():
    first, second = run_program(dev_config()), run_program(dev_config())
    for name, step in commands(first).items():
        other = commands(second)[name]
        assert (step.inputs["create"], step.inputs["stdin"], step.inputs.get("triggers")) == (
            other.inputs["create"],
            other.inputs["stdin"],
            other.inputs.get("triggers"),
        ), name


def test_triggers_change_only_with_the_content_they_guard():
    base = triggers(run_program(dev_config()))
    unrelated = triggers(run_program({**dev_config(), "harbor-cache:gcSchedule": "0 0 4 * * *"}))
    assert unrelated == base, "a setting the VM does not use re-runs nothing"

    new_email = triggers(run_program({**dev_config(), "harbor-cache:acmeEmail": "ops@cache-fixture.net"}))
    assert new_email["start"] != base["start"], "a changed compose override restarts Harbor"
    assert {k: v for k, v in new_email.items() if k != "start"} == {k: v for k, v in base.items() if k != "start"}

    secret = ("harbor-cache:adminPassword",)  # a plain adminPassword is refused
    new_password = triggers(run_program({**dev_config(), "harbor-cache:adminPassword": "Another-Passw0rd"}, secret_keys=secret))
    assert new_password["start"] != base["start"] and new_password["docker"] == base["docker"]

    grown = commands(run_program({**dev_config(), "harbor-cache:dataVolumeSizeGb": 300}))
    assert "DATA_VOLUME_SIZE_GB=300" in grown["data-volume"].inputs["create"], "growing the volume re-runs the step"

    upgrade = run_program({**dev_config(), "harbor-cache:harborVersion": "v2.15.3"})
    assert triggers(upgrade)["start"] != base["start"]
    assert "HARBOR_VERSION=v2.15.3" in commands(upgrade)["installer"].inputs["create"]


def test_every_step_reruns_on_a_new_vm(run):
    for name, value in triggers(run).items():
        if name != "ready":
            assert "harbor-vm-instance-id" in value, name


def test_what_is_reviewed_is_what_is_deployed():
    """The remote commands carry exactly what `python -m components.render` shows for the same settings."""
    from components import render
    from components.settings.settings import parse_settings

    config = {**dev_config(), "harbor-cache:adminPassword": "Review-Me-Passw0rd"}
    run = run_program(config, secret_keys=("harbor-cache:adminPassword",))
    steps = commands(run)
    raw = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("harbor-cache:")}
    # The zone id comes from Route53 at deploy time; the offline render shows a placeholder unless told.
    rendered = render.render_all(parse_settings(raw, stack="dev", region="eu-central-1"), zone_id=FAKE_ZONE_ID)
    assert steps["compose-override"].inputs["stdin"] == rendered["opt/harbor/docker-compose.override.yml"]
    assert f"AWS_HOSTED_ZONE_ID: {FAKE_ZONE_ID}" in steps["compose-override"].inputs["stdin"]
    assert steps["traefik-routes"].inputs["stdin"] == rendered["opt/harbor/traefik/harbor.yml"]
    assert steps["systemd-unit"].inputs["stdin"] == rendered["etc/systemd/system/harbor.service"]
    assert steps["docker-dropin"].inputs["stdin"] == rendered["etc/systemd/system/docker.service.d/harbor-cache-data.conf"]
    assert steps["envrc"].inputs["stdin"] == rendered["opt/harbor/.envrc"]
    deployed = yaml.safe_load(steps["harbor-yml"].inputs["stdin"])
    reviewed = yaml.safe_load(rendered["opt/harbor/harbor.yml"])
    deployed["database"]["password"] = reviewed["database"]["password"]  # generated: a placeholder in review
    assert deployed == reviewed
    for name, script_name in (("docker", "install-docker.sh"), ("installer", "install-harbor.sh"), ("start", "start-harbor.sh")):
        assert steps[name].inputs["stdin"] == rendered[f"remote-commands/{script_name}"]
    # Every rendered VM path is written by a step; the scripts are shown as what they are: stdin.
    every_command = run.of_type(COMMAND)  # the install's, and the probe's files written after it
    written = {step.inputs["create"].rsplit(" ", 1)[1] for step in every_command if "/dev/stdin" in step.inputs["create"]}
    on_the_vm = {path for path in rendered if not path.startswith(("nodes/", "remote-commands/", "var/lib/cloud/"))}
    # The robots' logins are secrets the deploy writes once Harbor holds them: nothing to review.
    credentials = {operate_files.MONITOR_CREDENTIALS_PATH, operate_files.PROBE_CREDENTIALS_PATH}
    assert {path.lstrip("/") for path in written - credentials} == on_the_vm


def test_preview_registers_the_same_resources():
    names = sorted(r.name for r in run_program(dev_config()).registrations)
    assert sorted(r.name for r in run_program(dev_config(), preview=True).registrations) == names


def test_installed_digest_is_a_stack_output_read_from_the_installer_step():
    from components.vm.install import installed_digest

    run = run_program(dev_config())
    assert "harborInstallerSha256" in run.outputs
    assert run.outputs["harborInstallerSha256"] is None, "under mocks the installer printed nothing"
    digest = "ab" * 32
    assert installed_digest(f"downloading x\ninstaller-sha256={digest}\n") == digest
    assert installed_digest("installer checksum mismatch") is None
