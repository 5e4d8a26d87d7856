"""Reports how long the program takes to evaluate under Pulumi mocks for 5 and 50 upstreams.

Not a timed test: a number to watch when the program grows. Run: python scripts/benchmark_mocks.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.pulumi_harness import dev_config, run_program  # noqa: E402


def upstreams(count: int) -> list[dict]:
    return [{"name": f"mirror{i}", "type": "docker-registry", "url": f"https://registry{i}.example.com"} for i in range(count)]


def measure(count: int, repeats: int = 3) -> tuple[float, int]:
    config = {**dev_config(), "harbor-cache:upstreams": upstreams(count)}
    times, resources = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        run = run_program(config)
        times.append(time.perf_counter() - start)
        resources = len(run.registrations)
    return statistics.median(times), resources


if __name__ == "__main__":
    for count in (5, 50):
        seconds, resources = measure(count)
        print(f"{count:>3} upstreams: {resources:>4} resources registered, median {seconds * 1000:.0f} ms")
