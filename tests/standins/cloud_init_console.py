"""What cloud-init writes on a VM's console about its SSH host keys, produced by cloud-init itself.

Runs Debian's cloud-init module `cc_keys_to_console.handle` with our rendered user data as its
config. It runs cloud-init's own helper /usr/lib/cloud-init/write-ssh-key-fingerprints (which
`cat`s /etc/ssh/ssh_host_*key.pub and logs fingerprints through `logger -s`) and writes the result
with `util.multi_log(..., console=True)` to /dev/console. Here that happens in a private mount
namespace where /etc/ssh holds test keys, /dev/log is a datagram socket we hold (so `logger`
behaves as with journald) and /dev/console is a file we read back. The serial line then turns
each "\\n" into "\\r\\n" (the tty's ONLCR), which is what EC2 records.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
from pathlib import Path

from tests.conftest import unavailable

HELPER = Path("/usr/lib/cloud-init/write-ssh-key-fingerprints")
SYSTEM_PYTHON = "/usr/bin/python3"

# Calls the module as cloud-init's final stage does. `handle` took a logger argument up to 23.x.
RUN_MODULE = """
import inspect, logging, sys
import yaml
from cloudinit.config import cc_keys_to_console

class Distro:
    usr_lib_exec = "/usr/lib"

class Cloud:
    distro = Distro()

cfg = yaml.safe_load(open(sys.argv[1]))
extra = (logging.getLogger("cloud-init"),) if "log" in inspect.signature(cc_keys_to_console.handle).parameters else ()
cc_keys_to_console.handle("keys_to_console", cfg, Cloud(), *extra, [])
"""


def require_cloud_init_console() -> None:
    if os.geteuid() != 0:
        unavailable("running cloud-init's keys_to_console needs a private mount namespace (root); CI runs as root")
    if not HELPER.exists() or shutil.which("unshare") is None or shutil.which("logger") is None:
        unavailable("needs Debian's cloud-init package (write-ssh-key-fingerprints), unshare and logger")
    if subprocess.run([SYSTEM_PYTHON, "-c", "import cloudinit.config.cc_keys_to_console"], capture_output=True).returncode:
        unavailable("needs Debian's cloud-init package (python3 module cloudinit)")
    if subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode:
        unavailable("cannot create a mount namespace here (unshare --mount)")


def keys_to_console(keys_dir: Path, user_data: str, work: Path) -> str:
    """The serial console text cloud-init's keys_to_console produces for the host keys in keys_dir."""
    work.mkdir(parents=True, exist_ok=True)
    config = work / "user-data"
    config.write_text(user_data)
    console = work / "console"
    console.write_text("")
    syslog = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    syslog.bind(str(work / "log"))
    try:
        setup = " && ".join(
            [
                "mount -t tmpfs tmpfs /dev",
                "mknod -m 666 /dev/null c 1 3",
                f"ln -s {shlex.quote(str(work / 'log'))} /dev/log",
                f"ln -s {shlex.quote(str(console))} /dev/console",
                f"mount --bind {shlex.quote(str(keys_dir))} /etc/ssh",
                f"exec {SYSTEM_PYTHON} -c {shlex.quote(RUN_MODULE)} {shlex.quote(str(config))}",
            ]
        )
        result = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", setup], capture_output=True, text=True, timeout=60
        )
    finally:
        syslog.close()
    assert result.returncode == 0, result.stdout + result.stderr
    return console.read_text().replace("\n", "\r\n")


def host_key_files(directory: Path, types: tuple[str, ...], comment: str = "root@ip-10-0-1-23") -> dict[str, str]:
    """Host keys as cc_ssh makes them (ssh-keygen -t <type> -N '' -f ssh_host_<type>_key); type -> .pub line."""
    directory.mkdir(parents=True, exist_ok=True)
    public = {}
    for kind in types:
        path = directory / f"ssh_host_{kind}_key"
        subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", comment, "-f", str(path)], check=True)
        public[kind] = path.with_suffix(".pub").read_text().strip()
    return public
