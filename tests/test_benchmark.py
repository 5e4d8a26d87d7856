"""scripts/benchmark_mocks.py: it runs, covers HA at 1 and 5 nodes, and its verdict means linear growth."""

from __future__ import annotations

import re
import subprocess
import sys

from scripts.benchmark_mocks import TOLERANCE, grows_at_most_linearly, ha_config
from tests.paths import ROOT


def test_the_linear_bound_allows_five_times_and_the_tolerance_but_not_more():
    assert grows_at_most_linearly(1.0, 5.0, 5)
    assert grows_at_most_linearly(1.0, 5.0 * (1 + TOLERANCE), 5)
    assert not grows_at_most_linearly(1.0, 5.0 * (1 + TOLERANCE) + 0.01, 5)
    assert not grows_at_most_linearly(0.2, 2.0, 5), "ten times the time for five times the nodes is a regression"


def test_ha_cases_differ_only_in_replicas():
    one, five = ha_config(1), ha_config(5)
    assert (one.pop("harbor-cache:replicas"), five.pop("harbor-cache:replicas")) == (1, 5)
    assert one == five and len(one["harbor-cache:upstreams"]) == 50


def test_the_benchmark_reports_both_modes_and_a_verdict():
    done = subprocess.run(
        [sys.executable, "scripts/benchmark_mocks.py", "--repeats", "1"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for label in (
        "single VM,  5 upstreams",
        "single VM, 50 upstreams",
        "HA, 1 node(s), 50 upstreams",
        "HA, 5 node(s), 50 upstreams",
    ):
        assert any(re.match(rf"{re.escape(label)}: +\d+ resources registered, median \d+ ms$", line) for line in lines), label
    assert re.search(
        r"HA 1 -> 5 nodes: time x[\d.]+, resources x[\d.]+ \(linear bound x5, tolerance 25%\): no worse than linear", lines[-1]
    )
