"""storage: s3 gives the registry the instance role and nobody else on Harbor's bridge network: the
files that make it so, checked by the real tools that read them on the VM (the Compose v2 binary
merging Harbor's own prepare output with the override, `systemd-analyze verify`, /bin/sh running
what systemd runs). The packets themselves: tests/aws/test_imds_reach.py."""

from __future__ import annotations

import ipaddress
import os
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from components.vm.compose_override import ComposeDumper, compose_override
from components.vm.files import content_hash, render_compose_override, vm_files
from components.vm.harbor_yml import DataEndpoints, render_harbor_yml
from components.vm.imds_guard import (
    HARBOR_DYNAMIC_RANGE,
    HARBOR_GATEWAY,
    HARBOR_NETWORK,
    HARBOR_NETWORK_NAME,
    HARBOR_SUBNET,
    IMDS_CLIENT_BLOCK,
    IMDS_CLIENTS,
    IMDS_GUARD_PATH,
    IMDS_GUARD_UNIT,
    IMDS_RELAY_UNIT,
    render_imds_guard_unit,
)
from components.vm.imds_relay import IMDS_RELAY_SCRIPT_PATH, IMDS_RELAY_UNIT_PATH, imds_relay_files, render_imds_relay_unit
from components.vm.systemd import render_docker_dropin, render_systemd_unit, systemd_unit
from components.vm.unit_file import render_unit
from tests.settings.test_settings import parse
from tests.vm.test_real_compose import SECRETS, ZONE_ID, compose_config, prepare, systemd_root, vm_layout

S3 = parse(storage="s3")
EBS = parse()
ENDPOINTS = DataEndpoints(bucket="harbor-cache-20261128000000000000000001")


def unit_values(text: str, section: str, key: str) -> list[str]:
    """Every `key=` line of one section of a rendered unit, in order."""
    values, current = [], None
    for line in text.splitlines():
        if line.startswith("["):
            current = line.strip("[]")
        elif current == section and line.startswith(f"{key}="):
            values.append(line.split("=", 1)[1])
    return values


def shell_of(exec_line: str) -> str:
    """The script of `/bin/sh -c '...'` as the shell receives it: systemd unquotes it like a shell
    and turns `$$` into `$` (systemd.service(5), "Command lines"); the guard uses no `%` specifier."""
    assert "%" not in exec_line
    argv = shlex.split(exec_line.replace("$$", "$"))
    assert argv[:2] == ["/bin/sh", "-c"] and len(argv) == 3, argv
    return argv[2]


# --- the addresses -------------------------------------------------------------------------------


def test_the_fixed_addresses_are_the_one_block_the_rule_admits_and_outside_the_dynamic_range():
    subnet = ipaddress.ip_network(HARBOR_SUBNET)
    dynamic = ipaddress.ip_network(HARBOR_DYNAMIC_RANGE)
    block = ipaddress.ip_network(IMDS_CLIENT_BLOCK)
    addresses = [ipaddress.ip_address(a) for a in IMDS_CLIENTS.values()]
    assert set(block) == set(addresses), "the rule's source block is exactly the registry's containers"
    assert dynamic.subnet_of(subnet) and all(a in subnet and a not in dynamic for a in addresses)
    assert ipaddress.ip_address(HARBOR_GATEWAY) in subnet and ipaddress.ip_address(HARBOR_GATEWAY) not in block
    # Not the default VPC, not Docker's default local pools (moby daemon/libnetwork/ipamutils/utils.go).
    for taken in ("172.31.0.0/16", "172.16.0.0/12", "192.168.0.0/16", "10.0.0.0/16"):
        assert not subnet.overlaps(ipaddress.ip_network(taken)), taken


# --- compose: Harbor's prepare output merged with the override ----------------------------------


@pytest.fixture(scope="module")
def merged_s3(tmp_path_factory) -> dict:
    prepared = prepare(render_harbor_yml(S3, SECRETS, ENDPOINTS), tmp_path_factory.mktemp("prepare-s3"))
    return compose_config(vm_layout(prepared, render_compose_override(S3, ZONE_ID), tmp_path_factory.mktemp("vm-s3")))


@pytest.fixture(scope="module")
def merged_ebs(tmp_path_factory) -> dict:
    prepared = prepare(render_harbor_yml(EBS, SECRETS), tmp_path_factory.mktemp("prepare-ebs"))
    return compose_config(vm_layout(prepared, render_compose_override(EBS, ZONE_ID), tmp_path_factory.mktemp("vm-ebs")))


def test_s3_puts_harbors_network_on_the_fixed_subnet_and_the_registry_on_its_addresses(merged_s3):
    network = merged_s3["networks"][HARBOR_NETWORK]
    # The name the guard's network check inspects is the one compose creates.
    assert network["name"] == HARBOR_NETWORK_NAME
    assert network["ipam"]["config"] == [{"subnet": HARBOR_SUBNET, "ip_range": HARBOR_DYNAMIC_RANGE, "gateway": HARBOR_GATEWAY}]
    for service, address in IMDS_CLIENTS.items():
        # Harbor's `networks: [harbor]` list and our mapping merge into one attachment, with the address.
        assert merged_s3["services"][service]["networks"] == {HARBOR_NETWORK: {"ipv4_address": address}}, service
    # Nobody else has a fixed address: they take theirs from the dynamic range.
    for name, service in merged_s3["services"].items():
        if name not in IMDS_CLIENTS:
            assert all(not (attachment or {}).get("ipv4_address") for attachment in (service.get("networks") or {}).values())


def test_ebs_has_neither_subnet_nor_fixed_address(merged_ebs):
    assert not merged_ebs["networks"][HARBOR_NETWORK].get("ipam"), "Docker picks the subnet"
    for name, service in merged_ebs["services"].items():
        assert all(not (attachment or {}).get("ipv4_address") for attachment in (service.get("networks") or {}).values()), name
    assert IMDS_GUARD_PATH not in vm_files(EBS, SECRETS, ZONE_ID)
    assert IMDS_GUARD_UNIT not in render_systemd_unit(EBS)


def test_ebs_files_are_the_builders_output_unchanged():
    """ebs mode renders exactly what it rendered before issue 13's guard (same builders, nothing added)."""
    assert render_systemd_unit(EBS) == render_unit(systemd_unit(EBS))
    assert render_compose_override(EBS, ZONE_ID) == yaml.dump(
        compose_override(EBS, ZONE_ID),
        Dumper=ComposeDumper,
        sort_keys=False,
        default_flow_style=False,
        width=1000,
    )


# --- systemd ---------------------------------------------------------------------------------------


def verify_s3_units(tmp_path: Path, guard: str, relay: str | None = None) -> subprocess.CompletedProcess:
    root = systemd_root(tmp_path, S3)
    (root / IMDS_GUARD_PATH.lstrip("/")).write_text(guard)
    (root / IMDS_RELAY_UNIT_PATH.lstrip("/")).write_text(render_imds_relay_unit(S3) if relay is None else relay)
    for executable in ("/bin/sh", "/usr/sbin/iptables", "/usr/bin/python3"):
        target = root / executable.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("#!/bin/sh\n")
        target.chmod(0o755)
    return subprocess.run(
        [
            "systemd-analyze",
            "verify",
            "--man=no",
            f"--root={root}",
            "harbor.service",
            IMDS_GUARD_UNIT,
            IMDS_RELAY_UNIT,
            "docker.service",
        ],
        capture_output=True,
        text=True,
    )


def test_systemd_analyze_verifies_the_guard_and_harbor_service_in_s3_mode(tmp_path):
    result = verify_s3_units(tmp_path, render_imds_guard_unit(S3))
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


def test_systemd_analyze_reads_the_guard(tmp_path):
    """The check above has teeth: a broken guard unit is reported."""
    broken = render_imds_guard_unit(S3).replace("Type=oneshot", "Type=one-shot")
    result = verify_s3_units(tmp_path / "broken", broken)
    assert IMDS_GUARD_UNIT in result.stderr and "one-shot" in result.stderr


def test_systemd_analyze_reads_the_relay_unit(tmp_path):
    broken = render_imds_relay_unit(S3).replace("Restart=always", "Restart=forever")
    result = verify_s3_units(tmp_path / "broken-relay", render_imds_guard_unit(S3), broken)
    assert IMDS_RELAY_UNIT in result.stderr and "forever" in result.stderr


def test_systemd_analyze_security_rates_the_relay_sandbox_ok(tmp_path):
    """systemd's own review of the relay's sandbox, offline (`systemd-analyze security`): exposure
    at most 2.0 of 10 ("OK"); the unit with DynamicUser and ProtectSystem only was 7.9 ("EXPOSED").
    What it cannot have: a private network (it serves the bridge and asks IMDS)."""
    root = systemd_root(tmp_path, S3)
    (root / IMDS_RELAY_UNIT_PATH.lstrip("/")).write_text(render_imds_relay_unit(S3))
    python = root / "usr" / "bin" / "python3"
    python.parent.mkdir(parents=True, exist_ok=True)
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    # --threshold counts in tenths: exit 1 above 2.0.
    command = ["systemd-analyze", "security", "--offline=true", "--threshold=20", f"--root={root}", IMDS_RELAY_UNIT]
    result = subprocess.run(command, capture_output=True, text=True)
    overall = [line for line in result.stdout.splitlines() if "Overall exposure level" in line]
    assert result.returncode == 0 and overall, result.stdout + result.stderr
    assert float(overall[0].split(":")[1].split()[0]) <= 2.0, overall[0]


def test_the_relay_starts_before_dockerd_unprivileged_and_harbor_needs_it():
    relay = render_imds_relay_unit(S3)
    assert unit_values(relay, "Unit", "Before") == ["docker.service harbor.service"]
    assert unit_values(relay, "Unit", "PartOf") == ["harbor.service"]
    assert unit_values(relay, "Service", "DynamicUser") == ["yes"] and unit_values(relay, "Service", "Restart") == ["always"]
    assert unit_values(relay, "Service", "ExecStart") == [f"/usr/bin/python3 {IMDS_RELAY_SCRIPT_PATH}"]
    harbor = render_systemd_unit(S3)
    assert IMDS_RELAY_UNIT in unit_values(harbor, "Unit", "Requires")[0].split()
    assert IMDS_RELAY_UNIT in unit_values(harbor, "Unit", "After")[0].split()


def test_the_guard_runs_before_dockerd_and_harbor_needs_it():
    guard = render_imds_guard_unit(S3)
    # Before dockerd: dockerd restarts `restart: always` containers before it reports ready.
    assert unit_values(guard, "Unit", "Before") == ["docker.service harbor.service"]
    assert unit_values(guard, "Unit", "PartOf") == ["harbor.service"]
    assert unit_values(guard, "Service", "ExecStop") == [], "stopping the guard must not remove the rule"
    harbor = render_systemd_unit(S3)
    assert IMDS_GUARD_UNIT in unit_values(harbor, "Unit", "Requires")[0].split()
    assert IMDS_GUARD_UNIT in unit_values(harbor, "Unit", "After")[0].split()


# --- harbor.service's network check, as /bin/sh runs it ----------------------------------------


# docker's CLI: `network inspect --format` prints the template's result and a newline per network,
# and exits 1 when a network does not exist (docker/cli cli/command/inspect/inspector.go Inspect,
# cli/command/network/inspect.go). `compose down` is only recorded.
DOCKER_STAND_IN = """#!/bin/sh
echo "$*" >> "$DOCKER_CALLS"
if [ "$1 $2" = "network inspect" ]; then
  [ -n "$EXISTING_SUBNET" ] || { echo "Error response from daemon: network $5 not found" >&2; exit 1; }
  printf '%s\\n' "$EXISTING_SUBNET"
fi
"""


@pytest.mark.parametrize(
    ("existing", "down"),
    [("", False), (HARBOR_SUBNET, False), ("172.18.0.0/16", True), ("192.168.0.0/20", True)],
)
def test_a_harbor_network_of_another_subnet_is_taken_down_before_up(tmp_path, existing, down):
    (pre,) = unit_values(render_systemd_unit(S3), "Service", "ExecStartPre")
    script = shell_of(pre)
    usr_bin = tmp_path / "usr" / "bin"
    usr_bin.mkdir(parents=True)
    (usr_bin / "docker").write_text(DOCKER_STAND_IN)
    (usr_bin / "docker").chmod(0o755)
    calls = tmp_path / "calls"
    calls.touch()
    # The unit names /usr/bin/docker; here it is the stand-in.
    script = script.replace("/usr/bin/docker", str(usr_bin / "docker"))
    env = {"PATH": os.environ["PATH"], "DOCKER_CALLS": str(calls), "EXISTING_SUBNET": existing}
    result = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = calls.read_text().splitlines()
    assert lines[0].startswith("network inspect --format") and lines[0].endswith(HARBOR_NETWORK_NAME)
    assert ("compose down" in lines) is down, lines


# --- laid down by the install, under mocks --------------------------------------------------------


def install_steps(config: dict) -> dict:
    from tests.standins.pulumi_harness import run_program
    from tests.vm.test_install_mocks import commands

    return commands(run_program(config))


def test_s3_install_writes_the_guard_before_the_start_and_restarts_harbor_when_it_changes():
    from tests.standins.pulumi_harness import dev_config

    s3 = install_steps({**dev_config(), "harbor-cache:storage": "s3"})
    guard = s3["imds-guard"]
    assert guard.inputs["stdin"] == render_imds_guard_unit(S3)
    assert guard.inputs["create"].endswith(f"-m 0644 -o root -g root /dev/stdin {IMDS_GUARD_PATH}")
    # Written before harbor.service restarts (start-harbor.sh: daemon-reload, restart; Requires= starts it).
    assert guard.urn in s3["start"].dependencies
    assert content_hash(render_imds_guard_unit(S3)) in s3["start"].inputs["triggers"]
    assert s3["systemd-unit"].inputs["stdin"] == render_systemd_unit(S3)
    # The relay: its script (executable) and unit, before the start, which restarts when either changes.
    for path, content in imds_relay_files(S3).items():
        step = s3[f"imds-relay-{path.rsplit('/', 1)[1]}"]
        mode = "0755" if path == IMDS_RELAY_SCRIPT_PATH else "0644"
        assert step.inputs["stdin"] == content and step.inputs["create"].endswith(f"-m {mode} -o root -g root /dev/stdin {path}")
        assert step.urn in s3["start"].dependencies and content_hash(content) in s3["start"].inputs["triggers"]


def test_ebs_install_has_no_guard_and_the_same_start_triggers_as_before():
    from tests.standins.pulumi_harness import dev_config

    ebs = install_steps(dev_config())
    assert "imds-guard" not in ebs and not any(step.startswith("imds-relay") for step in ebs)
    # The start step's triggers as before: the machine, the version and its five files.
    triggers = ebs["start"].inputs["triggers"]
    assert len(triggers) == 7 and content_hash(render_imds_guard_unit(EBS)) not in triggers
    assert triggers[5:] == [
        content_hash(render_systemd_unit(EBS)),
        content_hash(render_docker_dropin(EBS)),
    ]


def test_the_offline_render_shows_the_guard_in_s3_mode_only():
    from components import render

    assert render.render_all(S3)[IMDS_GUARD_PATH.lstrip("/")] == render_imds_guard_unit(S3)
    assert IMDS_GUARD_PATH.lstrip("/") not in render.render_all(EBS)
    for path, content in imds_relay_files(S3).items():
        assert render.render_all(S3)[path.lstrip("/")] == content
        assert path.lstrip("/") not in render.render_all(EBS)
