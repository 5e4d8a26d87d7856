"""Builds and runs tests/standins/registry_go: the registry's own Go code (see main.go there for what it pins
and why), compiled in the test run from the Go module proxy with go.mod and go.sum as committed.

The binary is cached under the user's cache folder by a hash of the module's files and the Go
version, so a second run of the suite does not build again; Go's own build cache makes a changed
harness quick to rebuild too. `-mod=readonly`: a go.mod or go.sum that does not match fails the
build instead of being rewritten, so the pinned versions are the ones that run.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import unavailable

MODULE = Path(__file__).resolve().with_name("registry_go")
# The same program against two sets of libraries: the registry's (go.mod) and registryctl's, which
# Harbor builds from its own src/go.mod (registryctl.mod, used with `go build -modfile`).
REGISTRY = "go.mod"
REGISTRYCTL = "registryctl.mod"


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harbor-cache" / "registry_go"


def build_environment(go: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GO", "CGO"))}
    # GOTOOLCHAIN=local: build with the installed Go, never fetch another toolchain.
    env.update({"GOFLAGS": "-mod=readonly -buildvcs=false", "CGO_ENABLED": "0", "GOTOOLCHAIN": "local"})
    for key in ("GOPROXY", "GOPATH", "GOMODCACHE", "GOCACHE", "GONOSUMDB", "GOPRIVATE", "GONOPROXY", "GOSUMDB"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def harness_binary(modfile: str = REGISTRY) -> Path:
    go = shutil.which("go")
    if go is None:
        unavailable("the Go toolchain (`go`) is not on PATH; tests/standins/registry_go is built with it")
    version = subprocess.run([go, "version"], capture_output=True, text=True, check=True).stdout.strip()
    digest = hashlib.sha256(f"{version}\0{modfile}".encode())
    for path in sorted(MODULE.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    folder = _cache_root() / digest.hexdigest()[:24]
    binary = folder / "registry_go"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.exists():
            partial = folder / "registry_go.partial"
            result = subprocess.run(
                [go, "build", f"-modfile={modfile}", "-trimpath", "-o", str(partial), "."],
                cwd=MODULE,
                env=build_environment(go),
                capture_output=True,
                text=True,
                timeout=900,
            )
            assert result.returncode == 0, (
                f"go build -modfile={modfile} of tests/standins/registry_go failed:\n{result.stdout}{result.stderr}"
            )
            partial.rename(binary)
    return binary


def parse_result(completed: subprocess.CompletedProcess) -> dict:
    """The harness's one JSON line on stdout (stderr has the driver's own log lines)."""
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result from the harness (exit {completed.returncode}):\n{completed.stdout}\n{completed.stderr}"
    result = json.loads(lines[-1])
    assert result["ok"] == (completed.returncode == 0), (result, completed.returncode)
    return result


def harness_environment(home: Path, **overrides: str) -> dict[str, str]:
    """The registry container's environment as far as the SDK and distribution read it: no AWS_*
    variables (the driver's chain would take them first), a HOME without ~/.aws, and the REGISTRY_*
    overrides the compose files give it plus the test's own (`overrides`)."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), **overrides}
