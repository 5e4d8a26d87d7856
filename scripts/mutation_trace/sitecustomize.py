"""Line tracer for scripts/mutation_providers.py: which test executes which line of the mutated modules.

Imported by every Python process started with this directory on PYTHONPATH (Python's `site` imports
`sitecustomize` at start-up), so it follows the provider host (`python -m pulumi.dynamic`) that the
tests start as a subprocess. coverage.py's subprocess measurement would need a dependency and its data
is written at exit, which a host ended with SIGKILL (tests/standins/provider_host.py `close`) never
reaches; this writes each newly seen (test, file, line) at once, line-buffered. Only frames of the
target files get a local tracer, so the rest of the process runs at nearly full speed.

The running test comes from the file the pytest plugin beside this (`mutation_trace_plugin.py`)
replaces atomically at each test's start: a host shared by a module's tests (a module-scoped
fixture) attributes each call to the test running at that moment, not the one that started it.
"""

import os

TRACE_DIR = os.environ.get("HARBOR_CACHE_MUTATION_TRACE")
if TRACE_DIR:
    import sys
    import threading

    _targets = frozenset(os.environ.get("HARBOR_CACHE_MUTATION_TARGETS", "").split(os.pathsep))
    _current_path = os.path.join(TRACE_DIR, "current_test")
    _out = open(os.path.join(TRACE_DIR, f"lines.{os.getpid()}"), "a", buffering=1)  # noqa: SIM115
    _seen: set = set()
    _test = [""]

    def _current_test() -> str:
        try:
            with open(_current_path) as file:
                return file.read()
        except FileNotFoundError:
            return ""

    def _record(filename: str, line: int) -> None:
        key = (_test[0], filename, line)
        if key not in _seen:
            _seen.add(key)
            _out.write(f"{key[0]}\t{filename}\t{line}\n")

    def _local(frame, event, arg):
        if event == "line":
            _record(frame.f_code.co_filename, frame.f_lineno)
        return _local

    def _global(frame, event, arg):
        if frame.f_code.co_filename in _targets:
            _test[0] = _current_test()  # once per call (and per resumed generator), not per line
            _record(frame.f_code.co_filename, frame.f_lineno)
            return _local
        return None

    sys.settrace(_global)
    threading.settrace(_global)
