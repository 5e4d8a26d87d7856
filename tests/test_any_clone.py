"""The suite passes on any clone, in any folder, whatever the user's own stack files say (issue 21).

Two ways it could not: a machine path written into a test (a default that exists on one machine
only), and a test that reads the Pulumi.<stack>.yaml the README tells the user to edit. The first is
found by looking for paths into this checkout's parent folder or the home folder in every file; the
second fails any test at once (tests/conftest.py watches opens), and is proved end to end here: a copy
of the repository in a folder of another name, its Pulumi.dev.yaml edited as the README says, runs a
representative set of tests, the recorded registrations among them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import find_tool, is_user_stack_file, unavailable
from tests.paths import REFERENCE, ROOT, SHARED

# What .gitignore keeps out of a clone: never copied, never scanned.
NOT_IN_A_CLONE = ("venv", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache", "render-out", ".git")

# The README's edits (Deploy: "your names, CIDRs and e-mail, and the real harborInstallerSha256"),
# with values a user could have: none of them the example's.
USER_EDITED_STACK = {
    "config": {
        "aws:region": "us-east-2",
        "harbor-cache:hostname": "registry-cache.platform.acme-widgets.io",
        "harbor-cache:zoneName": "platform.acme-widgets.io",
        "harbor-cache:instanceType": "m7i.xlarge",
        "harbor-cache:dataVolumeSizeGb": 500,
        "harbor-cache:allowedCidrs": ["81.2.69.0/24", "81.2.70.14/32"],
        "harbor-cache:sshAllowedCidrs": ["81.2.70.14/32"],
        "harbor-cache:acmeEmail": "platform-team@acme-widgets.io",
        "harbor-cache:harborVersion": "v2.15.2",
        "harbor-cache:harborInstallerSha256": "3f1a0c5e9b7d2468ace0f13579bdf2468ace0f13579bdf2468ace0f13579bdf2",
        "harbor-cache:snapshotRetentionDays": 14,
        "harbor-cache:tags": {"environment": "production", "owner": "platform-team", "cost-center": "4711"},
    }
}

# Tests whose result the stack file's values would decide: the recorded registrations of every
# configuration, the settings and their errors, the files for the VM and the nodes, the AWS host and
# Harbor's objects under mocks, the renderer; and the machine-path scan, from the copy's own place.
REPRESENTATIVE = [
    "tests/test_layout.py::test_every_registration_is_as_recorded",
    "tests/settings/test_settings.py",
    "tests/vm/test_vm_files.py",
    "tests/nodes/test_node_files.py",
    "tests/aws/test_aws_host.py",
    "tests/harbor/test_config_mocks.py",
    "tests/test_any_clone.py::test_no_file_names_a_path_on_this_machine",
]


def left_out(folder: str, names: list[str]) -> set[str]:
    """What a copy of the repository leaves out: what a clone does not have, and the user's own stack
    files at the root (the user's, not the suite's; tests/conftest.py fails a test that opens one)."""
    users = {name for name in names if Path(folder) == ROOT and is_user_stack_file(str(ROOT / name))}
    return {name for name in names if name in NOT_IN_A_CLONE} | users


def repository_files(root: Path) -> list[Path]:
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if name not in NOT_IN_A_CLONE]
        found += [Path(folder) / name for name in files if name not in left_out(folder, files)]
    return found


def machine_prefixes() -> list[str]:
    """Where a path written on one machine points: this checkout's parent folder and the home folder.

    Deliberately no fixed folder names: whatever folder this clone sits in is the one a
    path typed on this machine would name (the original bug: HARBOR_PREPARE_PYTHON defaulted to the
    venv's python of the clone it was written in, by absolute path)."""
    prefixes = []
    for folder in (ROOT.parent, Path.home()):
        # "/" or "/tmp" would match every absolute path; a checkout's parent is deeper than that.
        if len(folder.parts) > 2 or (len(folder.parts) == 2 and folder.parts[1] not in ("tmp", "root")):
            prefixes.append(str(folder).rstrip("/") + "/")
    return prefixes


def test_no_file_names_a_path_on_this_machine():
    offending = []
    for path in repository_files(ROOT):
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        for prefix in machine_prefixes():
            if prefix in text:
                line = next(n for n, row in enumerate(text.splitlines(), 1) if prefix in row)
                offending.append(f"{path.relative_to(ROOT)}:{line}: {prefix}")
    assert offending == [], "paths that exist only on this machine (find the file relative to tests/paths.py ROOT):\n" + (
        "\n".join(offending)
    )


def test_the_suite_passes_in_another_folder_with_the_user_s_own_stack(tmp_path):
    copy = tmp_path / "someone-elses-clone"
    shutil.copytree(ROOT, copy, ignore=left_out, symlinks=True)
    (copy / "Pulumi.dev.yaml").write_text(yaml.safe_dump(USER_EDITED_STACK, sort_keys=False))
    # ../shared is beside the checkout, not beside this copy: the documented way to point elsewhere.
    environment = {**os.environ, "HARBOR_CACHE_SHARED_DIR": str(SHARED), "HARBOR_CACHE_REFERENCE_DIR": str(REFERENCE)}
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *REPRESENTATIVE]
    result = subprocess.run(command, cwd=copy, env=environment, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout.splitlines()[-1] and "skipped" not in result.stdout.splitlines()[-1]


def test_ci_runs_the_test_command_in_a_clone_in_another_folder(tmp_path):
    """.ci/run runs scripts/test.sh in a fresh clone elsewhere, ../shared still found (a stand-in test.sh reports)."""
    if find_tool("git") is None:
        unavailable("git is not installed")
    checkout, shared = tmp_path / "harbor-cache", tmp_path / "shared"
    (checkout / ".ci").mkdir(parents=True)
    (checkout / "scripts").mkdir()
    (shared / "reference").mkdir(parents=True)
    shutil.copy(ROOT / ".ci" / "run", checkout / ".ci" / "run")
    report = tmp_path / "report"
    (checkout / "scripts" / "test.sh").write_text(
        f'printf "%s\\n" "$PWD" "$HARBOR_CACHE_SHARED_DIR" "$HARBOR_CACHE_REQUIRE_INTEGRATION" "$*" > {report}\n'
        f"if [ -d ../shared ]; then echo shared-beside; else echo no-shared-beside; fi >> {report}\n"
    )
    environment = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost", "GIT_COMMITTER_NAME": "t"}
    environment |= {"GIT_COMMITTER_EMAIL": "t@localhost", "GIT_CONFIG_GLOBAL": os.devnull}
    environment.pop("HARBOR_CACHE_SHARED_DIR", None)
    for command in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "ci"]):
        subprocess.run(["git", *command], cwd=checkout, env=environment, check=True, capture_output=True)
    subprocess.run(["bash", str(checkout / ".ci" / "run")], cwd=tmp_path, env=environment, check=True, timeout=60)
    where, shared_dir, required, arguments, beside = report.read_text().splitlines()
    assert Path(where).name != checkout.name and not Path(where).is_relative_to(checkout), where
    assert not Path(where).exists(), "the clone is removed afterwards"
    assert Path(shared_dir) == shared.resolve() and required == "1" and arguments == "-q"
    assert beside == "no-shared-beside", "the clone has no ../shared of its own: the variable is what finds it"
