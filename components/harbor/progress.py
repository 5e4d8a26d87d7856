"""Progress of long waits, shown in `pulumi up`, from inside a dynamic provider.

`pulumi.log` is silent in a dynamic provider: the SDK's provider host configures Settings without
an engine (pulumi/dynamic/__main__.py get_provider), so get_engine() is None. But the engine starts
every provider plugin with its own gRPC address as the first argument (pkg/resource/plugin/
provider_plugin.go: newPlugin(..., []string{host.ServerAddr()}, ...)), and the Python plugin script
passes it on (sdk/python/dist/pulumi-resource-pulumi-python: `python3 -u -m pulumi.dynamic $@`). So
the provider calls the engine's Log RPC itself (pulumi/runtime/proto engine.proto, LogRequest),
which is what `pulumi.log.info` does in a program. Without an engine (unit tests, a plain process)
the message goes to stderr. A log that fails never fails the operation.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

# A wait announces itself after this many seconds, then every EVERY seconds.
AFTER = float(os.environ.get("HARBOR_CACHE_PROGRESS_AFTER", "5"))
EVERY = float(os.environ.get("HARBOR_CACHE_PROGRESS_EVERY", "15"))
ADDRESS_RE = re.compile(r"^[\w.\-\[\]:]+:\d+$")


def engine_address() -> str:
    candidate = sys.argv[1] if len(sys.argv) > 1 else ""
    return candidate if ADDRESS_RE.match(candidate) else ""


def log(message: str) -> None:
    """An INFO line in `pulumi up`'s diagnostics (or stderr without an engine)."""
    address = engine_address()
    if not address:
        print(message, file=sys.stderr, flush=True)
        return
    try:
        import grpc
        from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc

        with grpc.insecure_channel(address) as channel:
            engine_pb2_grpc.EngineStub(channel).Log(engine_pb2.LogRequest(severity=engine_pb2.INFO, message=message), timeout=5)
    except Exception:  # noqa: BLE001 - progress is a courtesy, never a failure
        print(message, file=sys.stderr, flush=True)


@contextmanager
def waiting(what: str, limit: float | None = None, after: float | None = None, every: float | None = None) -> Iterator[None]:
    """While the block runs longer than `after` seconds, says every `every` seconds what it waits
    for and how long it has waited (and the limit, when there is one)."""
    after = AFTER if after is None else after
    every = EVERY if every is None else every
    done = threading.Event()
    started = time.monotonic()

    def report() -> None:
        if done.wait(after):
            return
        while True:
            waited = time.monotonic() - started
            log(f"{what}: waiting {waited:.0f} s" + (f" of at most {limit:.0f} s" if limit else ""))
            if done.wait(every):
                return

    thread = threading.Thread(target=report, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=1)
