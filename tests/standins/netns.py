"""Linux network namespaces for tests that need real routing, NAT and packet filters (root only).

Each namespace gets a name unique to this process and is deleted on exit, with the processes the
test started in it; `/etc/netns/<name>/` (files `ip netns exec` bind-mounts over /etc) goes too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.conftest import unavailable


def require_netns(*binaries: str) -> None:
    if os.geteuid() != 0:
        unavailable("network namespaces need root")
    missing = [name for name in ("ip", "iptables", *binaries) if shutil.which(name) is None]
    if missing:
        unavailable(f"needs {', '.join(missing)} (Debian packages; scripts/test.sh installs them as root)")


class Netns:
    def __init__(self, role: str, stack: ExitStack) -> None:
        self.role = role
        self.name = f"hc-{role}-{os.getpid()}"
        self._processes: list[subprocess.Popen] = []
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        stack.callback(self._delete)
        self.run("ip", "link", "set", "lo", "up")

    def run(self, *command: str, check: bool = True, timeout: float = 30, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ip", "netns", "exec", self.name, *command], check=check, timeout=timeout, capture_output=True, text=True, **kwargs
        )

    def start(self, *command: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
        handle = log.open("w")
        # Its own process group, so that whatever it starts ends with it.
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.name, *command],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        handle.close()
        self._processes.append(process)
        return process

    def etc_file(self, name: str, text: str) -> None:
        """A file `ip netns exec` shows at /etc/<name> inside this namespace (e.g. resolv.conf)."""
        directory = Path("/etc/netns") / self.name
        directory.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)

    def _delete(self) -> None:
        for process in self._processes:
            for signal_number in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(process.pid, signal_number)
                    process.wait(5)
                    break
                except ProcessLookupError:
                    break
                except subprocess.TimeoutExpired:
                    continue
        shutil.rmtree(Path("/etc/netns") / self.name, ignore_errors=True)
        subprocess.run(["ip", "netns", "del", self.name], check=False)


def link(left: Netns, left_address: str, right: Netns, right_address: str) -> tuple[str, str]:
    """A veth pair between two namespaces with one address (CIDR) on each end; returns the names."""
    # Interface names are at most 15 characters and live in one global namespace until moved.
    suffix = os.getpid() % 100000
    left_if, right_if = f"{left.role[:4]}{right.role[:4]}{suffix}", f"{right.role[:4]}{left.role[:4]}{suffix}"
    subprocess.run(
        ["ip", "link", "add", left_if, "netns", left.name, "type", "veth", "peer", "name", right_if, "netns", right.name],
        check=True,
    )
    for namespace, interface, address in ((left, left_if, left_address), (right, right_if, right_address)):
        if address:
            namespace.run("ip", "addr", "add", address, "dev", interface)
        namespace.run("ip", "link", "set", interface, "up")
    return left_if, right_if


@contextmanager
def namespaces(*roles: str) -> Iterator[dict[str, Netns]]:
    with ExitStack() as stack:
        yield {role: Netns(role, stack) for role in roles}
