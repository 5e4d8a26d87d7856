"""Talos's own machine-config JSON schema, from the Talos machinery Go module pinned in talos_schema/.

Talos generates config/schemas/config.schema.json from its Go config types (docgen, `//docgen:jsonschema`
in pkg/machinery/config/types/...): every document kind, its fields, which are required and their
patterns, with no extra properties allowed. `go mod download` fetches the module from the Go module
proxy and checks it against talos_schema/go.sum, so the schema is the one of that release, byte for
byte. Nothing is built or run: the schema is data.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from tests.conftest import unavailable

MODULE_DIR = Path(__file__).resolve().with_name("talos_schema")
MODULE = "github.com/siderolabs/talos/pkg/machinery"


@cache
def _schema_path() -> Path | None:
    go = shutil.which("go")
    if go is None:
        return None
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GO", "CGO"))}
    env.update({"GOFLAGS": "-mod=readonly", "GOTOOLCHAIN": "local"})
    for key in ("GOPROXY", "GOPATH", "GOMODCACHE", "GONOSUMDB", "GOSUMDB"):
        if key in os.environ:
            env[key] = os.environ[key]
    done = subprocess.run(
        [go, "mod", "download", "-json", MODULE],
        cwd=MODULE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    answer = json.loads(done.stdout or "{}")
    if done.returncode != 0 or "Error" in answer:
        raise RuntimeError(f"go mod download {MODULE} failed: {answer.get('Error') or done.stderr}")
    return Path(answer["Dir"]) / "config" / "schemas" / "config.schema.json"


def talos_schema(name: str = "config.schema.json") -> dict[str, Any]:
    """config.schema.json: every document kind of this release (RegistryMirrorConfig, ...).
    v1alpha1_config.schema.json: the older machine-config schema, which still describes
    `machine.registries` (deprecated in 1.12, `docgen:nodoc`, so absent from the first)."""
    path = _schema_path()
    if path is None:
        unavailable("the Go toolchain (`go`) is not on PATH; it fetches Talos's config schema from the module proxy")
    return json.loads(path.with_name(name).read_text())


def talos_yaml_fields(struct: str) -> set[str]:
    """The YAML field names of a Go struct in Talos's v1alpha1 config types, read from the module's
    source (config/types/v1alpha1/v1alpha1_types.go): `machine.registries` is `docgen:nodoc` since
    1.12, so no shipped schema of that release describes it, but the decoder still reads these."""
    path = _schema_path()
    if path is None:
        unavailable("the Go toolchain (`go`) is not on PATH; it fetches Talos's config types from the module proxy")
    source = (path.parent.parent / "types" / "v1alpha1" / "v1alpha1_types.go").read_text()
    body = re.search(rf"^type {struct} struct {{\n(.*?)^}}", source, re.M | re.S)
    assert body, f"no struct {struct} in Talos's v1alpha1 types"
    return set(re.findall(r'`yaml:"([^",]+)', body.group(1)))
