"""pytest plugin for the line tracer (sitecustomize.py beside it): publishes the running test's id."""

import os


def pytest_runtest_logstart(nodeid: str, location: object) -> None:
    directory = os.environ["HARBOR_CACHE_MUTATION_TRACE"]
    staging = os.path.join(directory, "current_test.new")
    with open(staging, "w") as file:
        file.write(nodeid)
    os.replace(staging, os.path.join(directory, "current_test"))  # atomic: a reader sees old or new


def pytest_runtest_logreport(report) -> None:
    """Each test's seconds (setup, call and teardown summed by the reader), to run the fast ones first."""
    path = os.path.join(os.environ["HARBOR_CACHE_MUTATION_TRACE"], "durations")
    with open(path, "a") as file:
        file.write(f"{report.nodeid}\t{report.when}\t{report.duration:.3f}\t{report.outcome}\n")
