"""The VM's SSH host key: user data that cloud-init accepts and that holds no key, the console
output cloud-init really writes, and the dynamic provider that reads it from EC2 and pins it."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import grpc
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pulumi.output import Unknown
from pulumi.runtime import rpc

from components.aws.host_key_provider import BEGIN_KEYS, END_KEYS, ConsoleHostKeyProvider, HostKeyError, ed25519_host_key
from components.vm.cloud_init import cloud_init, render_cloud_init
from tests.conftest import unavailable
from tests.paths import DATA
from tests.standins.cloud_init_console import host_key_files, keys_to_console, require_cloud_init_console
from tests.standins.ec2_console_emulator import Console, Ec2ConsoleEmulator, Refusal
from tests.standins.provider_host import ProviderHost, as_engine_sends

INSTANCE_ID = "i-0123456789abcdef0"
REGION = "eu-central-1"
URN = "urn:pulumi:dev::harbor-cache::pulumi-python:dynamic/ec2:ConsoleHostKey::harbor-vm-host-key"
BOOT = "".join(
    f"{line}\r\n"
    for line in (
        "[    0.000000] Linux version 6.8.0-1018-aws (buildd@lcy02-amd64-047) #19-Ubuntu SMP",
        "[    0.000000] Command line: BOOT_IMAGE=/vmlinuz-6.8.0-1018-aws root=PARTUUID=1 ro console=tty1 console=ttyS0",
        "[   12.345678] cloud-init[612]: Cloud-init v. 24.4-0ubuntu1~24.04.2 running 'init' at Sat, 28 Nov 2026 06:40:01 +0000.",
    )
)
LOGIN = "\r\nUbuntu 24.04.1 LTS ip-10-0-1-23 ttyS0\r\n\r\nip-10-0-1-23 login: "


# User data


def schema_check(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    if shutil.which("cloud-init") is None:
        unavailable("needs Debian's cloud-init package (cloud-init schema)")
    path = tmp_path / "user-data"
    path.write_text(text)
    return subprocess.run(["cloud-init", "schema", "--config-file", str(path)], capture_output=True, text=True, timeout=120)


def test_user_data_passes_cloud_inits_own_schema_check(tmp_path):
    result = schema_check(tmp_path, render_cloud_init())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout
    # The same check refuses what the user data held before (no key type to generate).
    broken = schema_check(tmp_path, "#cloud-config\n" + yaml.safe_dump({**cloud_init(), "ssh_genkeytypes": []}))
    assert broken.returncode != 0 and "ssh_genkeytypes" in broken.stdout + broken.stderr


def test_user_data_holds_no_key_and_lets_the_vm_make_and_show_its_own():
    text = render_cloud_init()
    assert "PRIVATE KEY" not in text and "ssh_keys" not in text
    document = yaml.safe_load(text.removeprefix("#cloud-config\n"))
    assert document["ssh_genkeytypes"] == ["ed25519"] and document["ssh_deletekeys"] is True
    assert document["ssh"]["emit_keys_to_console"] is True and document["ssh_key_console_blacklist"] == []


# The console, as cloud-init writes it


@pytest.fixture(scope="module")
def cloud_init_console():
    require_cloud_init_console()


@pytest.mark.parametrize("types", [("ed25519",), ("rsa", "ecdsa", "ed25519")])
def test_the_key_cloud_init_prints_on_the_console_is_the_one_pinned(cloud_init_console, tmp_path, types):
    public = host_key_files(tmp_path / "etc-ssh", types)
    console = keys_to_console(tmp_path / "etc-ssh", render_cloud_init(), tmp_path / "run")
    assert BEGIN_KEYS in console and "BEGIN SSH HOST KEY FINGERPRINTS" in console, console
    key = ed25519_host_key(BOOT + console + LOGIN)
    assert key == " ".join(public["ed25519"].split()[:2])
    # OpenSSH reads the pinned line as the same key.
    pinned = tmp_path / "pinned.pub"
    pinned.write_text(key + "\n")
    fingerprint = subprocess.run(["ssh-keygen", "-l", "-f", str(pinned)], capture_output=True, text=True, check=True).stdout
    original = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(tmp_path / "etc-ssh" / "ssh_host_ed25519_key.pub")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert fingerprint.split()[1] == original.split()[1]


def test_keys_hidden_from_the_console_are_not_found(cloud_init_console, tmp_path):
    host_key_files(tmp_path / "etc-ssh", ("ed25519",))
    hidden = "#cloud-config\n" + yaml.safe_dump({**cloud_init(), "ssh_key_console_blacklist": ["ssh-ed25519"]})
    console = keys_to_console(tmp_path / "etc-ssh", hidden, tmp_path / "run")
    assert ed25519_host_key(BOOT + console + LOGIN) is None


# The parser on console text around a real block

REAL_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDUk9grdco30xPt6cY3mqXqsAFyhbRTQM4qtk39M/wXN"
OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE6clO8YcFhKYcswnN+ZgVArbkw/qDSoOCBTn2m40vt1"


def block(*lines: str) -> str:
    return "".join(f"{line}\r\n" for line in (BEGIN_KEYS, *lines, END_KEYS))


def test_a_console_cut_inside_the_block_or_without_it_gives_no_key():
    assert ed25519_host_key(BOOT) is None
    assert ed25519_host_key(BOOT + f"{BEGIN_KEYS}\r\n{REAL_KEY} root@x\r\n") is None, "no END yet: wait for the whole block"
    assert ed25519_host_key(BOOT + f"{REAL_KEY} root@x\r\n" + LOGIN) is None, "a key outside the block is not cloud-init's"


def test_lines_that_are_not_a_well_formed_ed25519_key_are_ignored():
    flipped = REAL_KEY.replace("AAAAC3NzaC1lZDI1NTE5", "AAAAC3NzaC1lZDI1NTE4")  # the wire type no longer says ssh-ed25519
    short = REAL_KEY[:-8]
    console = (
        BOOT + block(f"{flipped} root@x", f"{short} root@x", "[   31.5] random: crng init done", f"{REAL_KEY} root@x") + LOGIN
    )
    assert ed25519_host_key(console) == REAL_KEY


def test_the_same_key_printed_twice_is_one_key_and_two_different_keys_are_refused():
    assert ed25519_host_key(BOOT + block(f"{REAL_KEY} root@x") + block(f"{REAL_KEY} root@x") + LOGIN) == REAL_KEY
    with pytest.raises(HostKeyError, match="2 different ed25519 host keys"):
        ed25519_host_key(BOOT + block(f"{REAL_KEY} root@x") + block(f"{OTHER_KEY} root@x"))


console_noise = st.lists(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=80).filter(
        lambda line: "SSH HOST KEY" not in line
    ),
    max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(before=console_noise, after=console_noise)
def test_any_console_text_around_the_block_does_not_change_the_key(before, after):
    text = "".join(f"{line}\r\n" for line in before) + block(f"{REAL_KEY} root@ip-10-0-1-23") + "\r\n".join(after)
    assert ed25519_host_key(text) == REAL_KEY


# The dynamic provider through the real provider host, against a stand-in of EC2


@pytest.fixture
def ec2():
    emulators = []

    def start(answers, latest_supported=True):
        emulator = Ec2ConsoleEmulator(INSTANCE_ID, answers, latest_supported=latest_supported)
        emulators.append(emulator)
        return emulator

    yield start
    for emulator in emulators:
        emulator.stop()


@pytest.fixture
def host_for():
    hosts = []

    def start(emulator):
        env = {
            "HARBOR_CACHE_EC2_ENDPOINT": emulator.url,
            "AWS_ACCESS_KEY_ID": "AKIAFAKEFORTESTS0001",
            "AWS_SECRET_ACCESS_KEY": "fake-secret-for-tests",
            "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        host = ProviderHost(ConsoleHostKeyProvider(), env=env)
        host.configure({"harbor-cache:hostname": "harbor.dev.example.com"})
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        host.close()


def inputs(**overrides) -> dict:
    return as_engine_sends(
        {"instance_id": INSTANCE_ID, "region": REGION, "timeout_seconds": 20, "poll_seconds": 0.05, **overrides}
    )


def test_create_polls_the_console_until_the_key_shows_then_pins_it(ec2, host_for):
    emulator = ec2([Console(None), Console(BOOT), Console(BOOT + block(f"{REAL_KEY} root@ip-10-0-1-23") + LOGIN)])
    host = host_for(emulator)
    checked, failures = host.check(URN, inputs())
    assert failures == []
    id_, outputs = host.create(URN, checked)
    assert id_ == INSTANCE_ID and outputs["public_key"] == REAL_KEY
    assert len(emulator.requests) == 3
    for request in emulator.requests:
        assert request["InstanceId"] == INSTANCE_ID and request["Latest"] == "true"
        # Signed by the deploying identity's credentials, for the stack's region.
        assert "Credential=AKIAFAKEFORTESTS0001/" in request["Authorization"]
        assert f"/{REGION}/ec2/aws4_request" in request["Authorization"]

    # A refresh keeps the pinned key without asking EC2; only another instance reads again.
    assert host.read(URN, id_, outputs, checked)[1]["public_key"] == REAL_KEY
    assert len(emulator.requests) == 3
    same = host.diff(URN, id_, outputs, inputs(timeout_seconds=60))
    assert same.changes == same.DIFF_NONE
    other = host.diff(URN, id_, outputs, inputs(instance_id="i-0fedcba9876543210"))
    assert other.changes == other.DIFF_SOME and list(other.replaces) == ["instance_id"]


def test_an_instance_type_without_the_live_console_reads_the_buffered_one(ec2, host_for):
    emulator = ec2([Console(None), Console(BOOT + block(f"{REAL_KEY} root@x"))], latest_supported=False)
    host = host_for(emulator)
    _id, outputs = host.create(URN, host.check(URN, inputs())[0])
    assert outputs["public_key"] == REAL_KEY
    assert [r["Latest"] for r in emulator.requests] == ["true", "false", "false"]


def test_a_console_that_never_shows_the_key_fails_with_a_clear_error_in_bounded_time(ec2, host_for):
    emulator = ec2([Console(None), Console(BOOT)])
    host = host_for(emulator)
    with pytest.raises(grpc.RpcError) as error:
        host.create(URN, host.check(URN, inputs(timeout_seconds=1, poll_seconds=0.1))[0])
    message = error.value.details()
    assert f"instance {INSTANCE_ID} did not show its ed25519 SSH host key on its console within 1 s" in message
    assert "without cloud-init's host key block yet" in message and "aws ec2 get-console-output --latest" in message
    assert 5 <= len(emulator.requests) <= 12


def test_a_deployer_without_the_permission_is_told_so_at_once(ec2, host_for):
    emulator = ec2([Refusal("UnauthorizedOperation", "You are not authorized to perform this operation.")])
    host = host_for(emulator)
    with pytest.raises(grpc.RpcError) as error:
        host.create(URN, host.check(URN, inputs())[0])
    assert "needs ec2:GetConsoleOutput" in error.value.details() and "UnauthorizedOperation" in error.value.details()
    assert len(emulator.requests) == 1


def test_an_instance_not_yet_visible_to_the_api_is_waited_for(ec2, host_for):
    emulator = ec2(
        [Refusal("InvalidInstanceID.NotFound", f"The instance ID '{INSTANCE_ID}' does not exist"), Console(block(REAL_KEY))]
    )
    host = host_for(emulator)
    assert host.create(URN, host.check(URN, inputs())[0])[1]["public_key"] == REAL_KEY


def test_check_refuses_what_is_not_an_instance_id_or_a_bound(ec2, host_for):
    host = host_for(ec2([Console(None)]))
    _inputs, failures = host.check(URN, inputs(instance_id="vol-0123", timeout_seconds=0))
    assert {name for name, _reason in failures} == {"instance_id", "timeout_seconds"}


def test_a_preview_with_the_instance_not_yet_known_checks_and_plans_a_new_read(ec2, host_for):
    emulator = ec2([Console(None)])
    host = host_for(emulator)
    checked, failures = host.check(URN, {**inputs(), "instance_id": rpc.UNKNOWN})
    assert failures == [] and isinstance(checked["instance_id"], Unknown)
    planned = host.diff(URN, INSTANCE_ID, {**inputs(), "public_key": REAL_KEY}, {**inputs(), "instance_id": rpc.UNKNOWN})
    assert list(planned.replaces) == ["instance_id"]
    assert emulator.requests == [], "a preview asks EC2 nothing"


def test_a_state_from_before_the_layout_move_refreshes_and_destroys(ec2, host_for):
    """A state written before issue 17 names `components.host_key_provider` (the single-VM golden file
    holds main's); the provider host loads that path for Read and Delete (components/__init__.py
    LEGACY_MODULES) and keeps the pinned key without asking EC2."""
    golden = json.loads((DATA / "single_vm_main.json").read_text())
    row = next(r for r in golden["dev"] if r["type"] == "pulumi-python:dynamic/ec2:ConsoleHostKey")
    legacy = row["inputs"]["__provider"]
    assert b"components.host_key_provider" in base64.b64decode(legacy)
    emulator = ec2([Console(BOOT + block(f"{REAL_KEY} root@ip-10-0-1-23") + LOGIN)])
    host = host_for(emulator)
    checked, _ = host.check(URN, inputs())
    id_, outputs = host.create(URN, checked)
    host.state_provider = legacy
    asked = len(emulator.requests)
    read_id, read = host.read(URN, id_, outputs, checked)
    assert read_id == id_ and read["public_key"] == REAL_KEY and len(emulator.requests) == asked
    host.delete(URN, id_, outputs)
