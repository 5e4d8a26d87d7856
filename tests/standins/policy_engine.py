"""Drives the policy pack as the Pulumi engine does, over the analyzer's gRPC protocol.

The pack's own entry point (`policy/__main__.py`) is started as the engine starts a Python policy
pack: a process with PULUMI_PROJECT/PULUMI_STACK/PULUMI_DRY_RUN (and PULUMI_CONFIG) in its
environment (pulumi sdk/go/common/resource/plugin/analyzer_plugin.go constructEnv) that prints the
port it serves on. It is asked what the engine asks it:
- `Analyze` once per resource, before the step, with the resource's checked inputs, its options and
  its provider (pkg/resource/deploy/step_generator.go analyzeAll), marshalled with
  KeepUnknowns and KeepSecrets (analyzer_plugin.go Analyze): unknowns as the engine's sentinel
  strings, secrets wrapped in the secret signature;
- `AnalyzeStack` once at the end, with every resource's outputs, parent, dependencies and
  property dependencies (step_generator.go AnalyzeResources).

A program run under the mocks (tests/standins/pulumi_harness.py) is turned into those requests: URNs as
the engine makes them (sdk/go/common/resource/urn/urn.go New: the parent's qualified type, the
root stack left out; the mocks keep only the parent's last type), the root stack resource and
the default providers the engine registers itself (pkg/resource/deploy/providers/provider.go
DefaultName: `default_<major>_<minor>_<patch>`), and the names the AWS provider's autonaming puts
into a role's and an instance profile's checked inputs.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from tests.paths import ROOT
from tests.standins import pulumi_harness
from tests.standins.pulumi_harness import ProgramRun, Registration

POLICY_DIR = ROOT / "policy"
PROJECT = "harbor-cache"
ROOT_STACK_TYPE = "pulumi:pulumi:Stack"
# The package of each type's provider, and the Python distribution that pins its version.
PROVIDER_PACKAGES = {
    "aws": "pulumi-aws",
    "command": "pulumi-command",
    "random": "pulumi-random",
    "tls": "pulumi-tls",
    "pulumi-python": "pulumi",
}
# Autonaming: the AWS provider fills `name` with `<logical name>-<7 random hex>` during Check
# (pulumi-aws autonaming), so the checked inputs the analyzer sees carry it.
AUTONAMED = ("aws:iam/role:Role", "aws:iam/instanceProfile:InstanceProfile")


def autoname(name: str) -> str:
    return f"{name}-1a2b3c4"


class AutonamingMocks(pulumi_harness.AwsMocks):
    """The harness's mocks plus the instance profile's `name` output, which the AWS provider's autonaming
    fills (the instance's iam_instance_profile is that name, and its property dependency the profile)."""

    fresh_preview = False

    def new_resource(self, args):
        identifier, state = super().new_resource(args)
        if self.fresh_preview:
            # A preview of a fresh stack: the provider's preview of a create answers the inputs, every computed
            # output unknown and no id (pkg/resource/deploy/step.go CreateStep.Apply with preview).
            return "", dict(args.inputs)
        if args.typ in AUTONAMED:
            state.setdefault("name", autoname(args.name))
        return identifier, state


def run_program(config: dict[str, Any], fresh_preview: bool = False, **options: Any) -> ProgramRun:
    """tests.pulumi_harness.run_program with AutonamingMocks (and, for `fresh_preview`, a preview of a new stack)."""
    original = pulumi_harness.AwsMocks
    mocks = type("Mocks", (AutonamingMocks,), {"fresh_preview": fresh_preview})
    pulumi_harness.AwsMocks = mocks
    try:
        return pulumi_harness.run_program(config, preview=fresh_preview, **options)
    finally:
        pulumi_harness.AwsMocks = original


@dataclass
class EngineResource:
    """One resource as the engine hands it to the analyzer."""

    type: str
    name: str
    urn: str
    inputs: dict[str, Any]  # marshalled: unknown sentinels, secret wrappers
    outputs: dict[str, Any]
    parent: str = ""
    protect: bool = False
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    provider: EngineResource | None = None


def _qualified_type(urn: str) -> str:
    return urn.split("::")[2]


def engine_urn(stack: str, parent_urn: str, resource_type: str, name: str) -> str:
    """urn.New: the parent's qualified type joined with `$`, except under the root stack."""
    qualified = resource_type
    if parent_urn and _qualified_type(parent_urn) != ROOT_STACK_TYPE:
        qualified = f"{_qualified_type(parent_urn)}${resource_type}"
    return f"urn:pulumi:{stack}::{PROJECT}::{qualified}::{name}"


def _provider_package(resource_type: str) -> str:
    return resource_type.split(":")[0]


def _default_provider(stack: str, package: str, region: str) -> EngineResource:
    version = metadata.version(PROVIDER_PACKAGES[package]).split("+")[0]
    major, minor, patch = (version.split(".") + ["0", "0"])[:3]
    name = f"default_{major}_{minor}_{patch}"
    inputs: dict[str, Any] = {"version": version}
    if package == "aws":
        inputs["region"] = region  # the stack's aws:region, which the engine passes to the default provider
    return EngineResource(
        f"pulumi:providers:{package}", name, engine_urn(stack, "", f"pulumi:providers:{package}", name), inputs, inputs
    )


def _remap(value: Any, urns: dict[str, str]) -> Any:
    if isinstance(value, str):
        return urns.get(value, value)
    if isinstance(value, list):
        return [_remap(v, urns) for v in value]
    return value


def engine_resources(run: ProgramRun, stack: str = "dev", region: str = "eu-central-1") -> list[EngineResource]:
    """The program's registrations as the engine would analyze them, in registration order, after the
    root stack and the default providers."""
    root = EngineResource(
        ROOT_STACK_TYPE, f"{PROJECT}-{stack}", engine_urn(stack, "", ROOT_STACK_TYPE, f"{PROJECT}-{stack}"), {}, {}
    )
    urns: dict[str, str] = {}
    providers: dict[str, EngineResource] = {}
    resources = [root]
    for registration in run.registrations:
        parent = urns.get(registration.parent, root.urn) if registration.parent else root.urn
        urn = engine_urn(stack, parent, registration.type, registration.name)
        urns[registration.urn] = urn
        inputs, outputs = dict(registration.raw), {**registration.outputs}
        if registration.type in AUTONAMED:
            inputs.setdefault("name", autoname(registration.name))
            outputs.setdefault("name", autoname(registration.name))
        provider = None
        package = _provider_package(registration.type)
        if package in PROVIDER_PACKAGES:
            if package not in providers:
                providers[package] = _default_provider(stack, package, region)
                resources.append(providers[package])
            provider = providers[package]
        resources.append(
            EngineResource(
                registration.type,
                registration.name,
                urn,
                inputs,
                outputs,
                parent=parent,
                protect=registration.protect,
                dependencies=_remap(list(registration.dependencies), urns),
                property_dependencies={key: _remap(deps, urns) for key, deps in registration.property_dependencies.items()},
                provider=provider,
            )
        )
    return resources


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    json_format.ParseDict(json.loads(json.dumps(value)), struct)
    return struct


def _provider_message(provider: EngineResource | None) -> analyzer_pb2.AnalyzerProviderResource | None:
    if provider is None:
        return None
    return analyzer_pb2.AnalyzerProviderResource(
        type=provider.type, properties=_struct(provider.inputs), urn=provider.urn, name=provider.name
    )


def _described(resource: EngineResource, properties: dict[str, Any]) -> dict[str, Any]:
    """The fields AnalyzeRequest and AnalyzerResource share (pulumi/proto/pulumi/analyzer.proto)."""
    return {
        "type": resource.type,
        "properties": _struct(properties),
        "urn": resource.urn,
        "name": resource.name,
        "options": analyzer_pb2.AnalyzerResourceOptions(protect=resource.protect, parent=resource.parent),
        "provider": _provider_message(resource.provider),
    }


@dataclass(frozen=True)
class Diagnostic:
    policy: str
    message: str
    urn: str
    mandatory: bool


class Analyzer:
    """A running pack and the two calls the engine makes."""

    def __init__(self, stub: analyzer_pb2_grpc.AnalyzerStub) -> None:
        self.stub = stub

    def analyze(self, resource: EngineResource) -> list[Diagnostic]:
        request = analyzer_pb2.AnalyzeRequest(**_described(resource, resource.inputs))
        return self._diagnostics(self.stub.Analyze(request).diagnostics, resource.urn)

    def analyze_stack(self, resources: Iterable[EngineResource]) -> list[Diagnostic]:
        messages = []
        for resource in resources:
            messages.append(
                analyzer_pb2.AnalyzerResource(
                    **_described(resource, resource.outputs),
                    parent=resource.parent,
                    dependencies=resource.dependencies,
                    propertyDependencies={
                        key: analyzer_pb2.AnalyzerPropertyDependencies(urns=urns)
                        for key, urns in resource.property_dependencies.items()
                    },
                )
            )
        response = self.stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=messages))
        return self._diagnostics(response.diagnostics, "")

    def analyze_all(self, resources: list[EngineResource]) -> list[Diagnostic]:
        """What a preview or an up reports: every resource, then the stack."""
        return [d for r in resources for d in self.analyze(r)] + self.analyze_stack(resources)

    @staticmethod
    def _diagnostics(diagnostics: Iterable[Any], urn: str) -> list[Diagnostic]:
        return [
            Diagnostic(d.policyName, d.message, d.urn or urn, d.enforcementLevel == analyzer_pb2.MANDATORY) for d in diagnostics
        ]


@contextmanager
def running_pack(
    dry_run: bool = True, stack: str = "dev", config: dict[str, Any] | None = None, policy_dir: Path = POLICY_DIR
) -> Iterator[Analyzer]:
    """The pack's entry point started as the engine starts it (from `policy_dir`, the checkout's by default); stopped on exit."""
    # The stack's configuration as the engine passes it (analyzer_plugin.go constructConfig: "project:key" ->
    # string; structured values as their JSON text); the dev stack's by default.
    config = pulumi_harness.dev_config() if config is None else config
    env = {
        **os.environ,
        "PULUMI_PROJECT": PROJECT,
        "PULUMI_STACK": stack,
        "PULUMI_DRY_RUN": "true" if dry_run else "false",
        "PULUMI_CONFIG": json.dumps(
            {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}
        ),
    }
    process = subprocess.Popen(
        [sys.executable, "__main__.py"], cwd=policy_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        port = process.stdout.readline().decode().strip()
        assert port.isdigit(), process.stderr.read().decode()[-2000:]
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = analyzer_pb2_grpc.AnalyzerStub(channel)
        stub.GetAnalyzerInfo(empty_pb2.Empty())
        yield Analyzer(stub)
        channel.close()
    finally:
        process.kill()
        process.wait(10)


def registration_of(resources: list[EngineResource], name: str) -> EngineResource:
    (found,) = [r for r in resources if r.name == name]
    return found


def changed(resources: list[EngineResource], name: str, change: Callable[[dict], None]) -> EngineResource:
    """A copy of the program's resource `name` with `change` applied to its inputs and its outputs."""
    resource = copy.deepcopy(registration_of(resources, name))
    change(resource.inputs)
    change(resource.outputs)
    return resource


def refusals(pack: Analyzer, resource: EngineResource) -> str:
    """Every message the pack answers Analyze with, one a line."""
    return "\n".join(diagnostic.message for diagnostic in pack.analyze(resource))


__all__ = ["Analyzer", "Diagnostic", "EngineResource", "Registration", "engine_resources", "engine_urn", "running_pack"]
