"""The registry harness (tests/standins/registry_go) runs the libraries Harbor v2.15.2's binaries are
built from, read off the built binaries themselves (`go version -m`: the module versions the Go
linker recorded), not off go.mod.

registry: goharbor/distribution v2.8.3-harbor.1 vendors aws-sdk-go 1.15.11
(vendor/github.com/aws/aws-sdk-go/aws/version.go SDKVersion), gopkg.in/yaml.v2 v2.2.1 and redigo at
a83ebbee (vendor.conf; its redis/ files are those of v1.8.8); its s3-aws driver, driver factory and
configuration parser are those of docker/distribution v2.8.3. registryctl: Harbor's src/go.mod
(github.com/docker/distribution => github.com/distribution/distribution v2.8.2+incompatible,
aws-sdk-go v1.55.8, redigo => v1.9.2, yaml.v2 v2.4.0).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.standins.registry_harness import REGISTRY, REGISTRYCTL, harness_binary

EXPECTED = {
    REGISTRY: {
        "github.com/aws/aws-sdk-go": "v1.15.11",
        "github.com/docker/distribution": "v2.8.3+incompatible",
        "github.com/gomodule/redigo": "v1.8.8",
        "gopkg.in/yaml.v2": "v2.2.1",
    },
    REGISTRYCTL: {
        "github.com/aws/aws-sdk-go": "v1.55.8",
        "github.com/docker/distribution": "github.com/distribution/distribution v2.8.2+incompatible",
        "github.com/gomodule/redigo": "v1.9.2",
        "gopkg.in/yaml.v2": "v2.4.0",
    },
}


def linked_modules(binary) -> dict[str, str]:
    """module path -> version the binary was linked with (`=> path version` for a replacement)."""
    output = subprocess.run([shutil.which("go"), "version", "-m", str(binary)], capture_output=True, text=True, check=True).stdout
    modules: dict[str, str] = {}
    last = ""
    for line in output.splitlines():
        fields = line.split("\t")
        if len(fields) >= 4 and fields[1] == "dep":
            last = fields[2]
            modules[last] = fields[3]
        elif len(fields) >= 4 and fields[1] == "=>":
            modules[last] = fields[3] if fields[2] == last else f"{fields[2]} {fields[3]}"
    return modules


@pytest.mark.parametrize("modfile", [REGISTRY, REGISTRYCTL])
def test_the_harness_links_exactly_the_libraries_harbor_builds_with(modfile):
    modules = linked_modules(harness_binary(modfile))
    assert {path: modules.get(path) for path in EXPECTED[modfile]} == EXPECTED[modfile]
