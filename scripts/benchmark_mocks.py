"""Reports how long the program takes to evaluate under Pulumi mocks.

- Single VM, 5 and 50 upstreams: a number to watch when the program grows.
- HA (issue 13), 50 upstreams at `replicas: 1` and `replicas: 5`, both with S3 and the external
  database and Redis (what several nodes need), so only the number of nodes differs. Verdict:
  evaluation time grows no worse than linearly in nodes, t(5) <= 5 * t(1) * (1 + TOLERANCE), the
  tolerance absorbing timer noise on a shared machine. The registered resource count is reported
  too: it has no noise. Exits 1 when the verdict fails.

Run: python scripts/benchmark_mocks.py [--repeats N]  (median of N evaluations each, default 3)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.standins.pulumi_harness import dev_config, run_program  # noqa: E402

HA_UPSTREAMS = 50
HA_NODES = (1, 5)
# Timing noise between two medians of a few runs on a busy CI machine stays well under this.
TOLERANCE = 0.25


def upstreams(count: int) -> list[dict]:
    return [{"name": f"mirror{i}", "type": "docker-registry", "url": f"https://registry{i}.example.com"} for i in range(count)]


def single_vm_config(count: int) -> dict:
    return {**dev_config(), "harbor-cache:upstreams": upstreams(count)}


def ha_config(nodes: int, count: int = HA_UPSTREAMS) -> dict:
    """The same stack at any number of nodes: the stores several nodes need are set explicitly, so
    `replicas: 1` evaluates them too and only the nodes differ."""
    return {
        **single_vm_config(count),
        "harbor-cache:replicas": nodes,
        "harbor-cache:storage": "s3",
        "harbor-cache:externalServices": True,
    }


def measure(config: dict, repeats: int = 3) -> tuple[float, int]:
    """Median seconds of `repeats` evaluations, and the number of resources registered."""
    times, resources = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        run = run_program(config)
        times.append(time.perf_counter() - start)
        resources = len(run.registrations)
    return statistics.median(times), resources


def grows_at_most_linearly(base: float, scaled: float, factor: float, tolerance: float = TOLERANCE) -> bool:
    """Whether `scaled` (measured at `factor` times the nodes of `base`) stays within linear growth."""
    return scaled <= base * factor * (1 + tolerance)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="evaluations per case; the median is reported")
    repeats = parser.parse_args(argv).repeats

    for count in (5, 50):
        seconds, resources = measure(single_vm_config(count), repeats)
        print(f"single VM, {count:>2} upstreams: {resources:>4} resources registered, median {seconds * 1000:.0f} ms")

    results = {}
    for nodes in HA_NODES:
        results[nodes] = measure(ha_config(nodes), repeats)
        seconds, resources = results[nodes]
        print(
            f"HA, {nodes} node(s), {HA_UPSTREAMS} upstreams: {resources:>4} resources registered, median {seconds * 1000:.0f} ms"
        )

    (few, (t_few, r_few)), (many, (t_many, r_many)) = sorted(results.items())
    factor = many / few
    linear = grows_at_most_linearly(t_few, t_many, factor)
    print(
        f"HA {few} -> {many} nodes: time x{t_many / t_few:.2f}, resources x{r_many / r_few:.2f} "
        f"(linear bound x{factor:.0f}, tolerance {TOLERANCE:.0%}): " + ("no worse than linear" if linear else "WORSE THAN LINEAR")
    )
    return 0 if linear else 1


if __name__ == "__main__":
    sys.exit(main())
