"""The remote commands' shapes, run for real through OpenSSH on loopback as pulumi-command runs
them: the command line as the SSH command, the script or file content on stdin."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from components.vm.install import write_file_command
from tests.conftest import unavailable
from tests.standins.daemons import free_port, require_binaries, stop_process, wait_until
from tests.standins.pulumi_harness import FAKE_SIGNED_INSTALLER_SHA256, dev_config, run_program

SECRET = "Harbor-Adm1n: 'pa#ss' & more"


class SshServer:
    """sshd on 127.0.0.1 with its own host key, accepting one generated client key for root."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.host_key = directory / "host_ed25519"
        self.client_key = directory / "client_ed25519"
        for key in (self.host_key, self.client_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        authorized = directory / "authorized_keys"
        authorized.write_text((directory / "client_ed25519.pub").read_text())
        authorized.chmod(0o600)
        self.port = free_port()
        config = directory / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.host_key}",
                    f"AuthorizedKeysFile {authorized}",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    f"PidFile {directory / 'sshd.pid'}",
                ]
            )
            + "\n"
        )
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
        self.log = (directory / "sshd.log").open("wb")
        self.process = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stdout=self.log, stderr=self.log)
        wait_until(lambda: self.run("true").returncode == 0, 20, "sshd")

    def argv(self, command: str) -> list[str]:
        options = ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "LogLevel=ERROR", "BatchMode=yes"]
        flags = [part for option in options for part in ("-o", option)]
        return ["ssh", "-i", str(self.client_key), "-p", str(self.port), *flags, "root@127.0.0.1", command]

    def run(self, command: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(command), input=stdin, capture_output=True, text=True, timeout=60)

    def stop(self) -> None:
        stop_process(self.process, self.log)


@pytest.fixture(scope="module")
def ssh(tmp_path_factory):
    if os.geteuid() != 0:
        unavailable("the SSH tests log in as root to a loopback sshd; CI runs as root")
    require_binaries("ssh", "ssh-keygen", "sudo", "/usr/sbin/sshd")
    server = SshServer(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


def test_a_file_with_secrets_lands_exactly_with_its_mode_and_never_on_the_command_line(ssh, tmp_path):
    target = tmp_path / "opt" / "harbor" / "harbor.yml"
    content = f"harbor_admin_password: {SECRET!r}\n"
    command = write_file_command(str(target), "0600")
    assert SECRET not in command
    result = ssh.run(command, stdin=content)
    assert result.returncode == 0, result.stderr
    assert target.read_text() == content
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert (target.stat().st_uid, target.stat().st_gid) == (0, 0)


def test_a_script_on_stdin_gets_its_environment_and_arguments(ssh):
    script = 'set -eu\necho "volume=${DATA_VOLUME_ID} mount=${DATA_MOUNT} args=$*"\n'
    command = "sudo DATA_VOLUME_ID=vol-0abc DATA_MOUNT=/data bash -s -- harbor.dev.example.com 900"
    result = ssh.run(command, stdin=script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "volume=vol-0abc mount=/data args=harbor.dev.example.com 900"


def test_the_programs_own_commands_run_through_ssh(ssh, tmp_path):
    """The exact create strings the program registers, with a harmless stand-in for the script body."""
    run = run_program(dev_config())
    commands = {r.name.removeprefix("harbor-install-"): r.inputs["create"] for r in run.of_type("command:remote:Command")}
    probe = 'echo "HARBOR_VERSION=${HARBOR_VERSION:-} HARBOR_SHA256=${HARBOR_SHA256:-} ACME_STAGING=${ACME_STAGING:-} args=$*"\n'
    installer = ssh.run(commands["installer"], stdin=probe)
    assert installer.returncode == 0, installer.stderr
    assert installer.stdout.strip() == f"HARBOR_VERSION=v2.15.2 HARBOR_SHA256={FAKE_SIGNED_INSTALLER_SHA256} ACME_STAGING= args="
    ready = ssh.run(commands["ready"], stdin=probe)
    assert ready.stdout.strip().endswith("ACME_STAGING=0 args=harbor.dev.example.com 900")


def test_a_secret_on_stdin_is_not_visible_in_ps_while_the_command_runs(ssh, tmp_path):
    marker = tmp_path / "started"
    script = f"touch {marker}\nsleep 3\ncat > /dev/null\n"
    process = subprocess.Popen(
        ssh.argv("sudo bash -s"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.stdin.write(script + f"# {SECRET}\n")
    process.stdin.close()
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    process.wait(30)
    assert marker.exists()
    assert SECRET not in listing and "pa#ss" not in listing
