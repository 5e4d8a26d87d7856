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

Analyze gets the provider's `Check` output, as modelled by `checked_inputs` (policy/provider_defaults.py, with its
sources: the bridge's Terraform defaults, `__defaults` and autonaming, pulumi-command's connection defaults).
Not modelled (review 22b's harness notes): options beyond `protect` and the parent; reads
(`Resource.get`), which the engine neither analyzes nor hands to `AnalyzeStack`; `--target`, under which untargeted
resources keep their old inputs. A preview of an existing stack with some resources replaced: `replaced_at_preview`.

A program run under the mocks (tests/standins/pulumi_harness.py) is turned into those requests: URNs as
the engine makes them (sdk/go/common/resource/urn/urn.go New: the parent's qualified type, the
root stack left out; the mocks keep only the parent's last type), the root stack resource and
the default providers the engine registers itself (pkg/resource/deploy/providers/provider.go
DefaultName: `default_<major>_<minor>_<patch>`), the checked inputs (`checked_inputs`: autonamed names, the
providers' defaults), and the outputs as the providers return
them: a bridged resource's "id" among its outputs, ids in AWS's shapes (AutonamingMocks).
"""

from __future__ import annotations

import copy
import hashlib
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
from pulumi.runtime import rpc
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from tests.paths import ROOT
from tests.standins import pulumi_harness
from tests.standins.pulumi_harness import SECRET_SIG, ProgramRun, Registration, autoname, contains_secret

sys.path.insert(0, str(ROOT / "policy"))

import fields  # noqa: E402, I001  (the pack's table: which objects are maps)
import provider_defaults  # noqa: E402

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
# Autonaming: the AWS provider fills `name` with `<logical name>-<7 random hex>` during Check (pulumi-aws autonaming;
# the checked inputs: policy/provider_defaults.py AUTONAMED); the mocks' outputs carry it for a role and an instance
# profile, whose names other resources reference (and the harness's AwsMocks for an alarm, whose ARN holds it).
AUTONAMED = ("aws:iam/role:Role", "aws:iam/instanceProfile:InstanceProfile")


# A bridged provider's outputs carry the resource's id as a property "id" (and AnalyzeStack hands the analyzer the
# outputs, pkg/resource/deploy/step_generator.go AnalyzeResources: `Properties: v.Outputs`, marshalled with
# SkipInternalKeys, which drops only "__" keys, sdk/go/common/resource/plugin/rpc.go): pulumi-terraform-bridge
# pkg/tfbridge/provider.go Create returns MakeTerraformResult(newstate) (schema.go), the Terraform state object,
# whose "id" attribute the SDKv2 adds to every resource's schema (terraform-plugin-sdk helper/schema
# core_schema.go Resource.CoreConfigSchema "Add the implicitly required id field"; the bridge's
# pkg/tfshim/sdk-v2 instance_state.go Object fills it too). pulumi-command is not bridged and has no such key;
# a dynamic provider's outputs are its `outs`.
BRIDGED_PACKAGES = ("aws", "random", "tls")
# The ids AWS gives, as the provider's docs name them (Terraform AWS provider, attribute reference `id`): a
# security group's "sg-", an instance's "i-", a volume's "vol-", an Elastic IP's allocation id "eipalloc-"
# (also its `allocationId`), an association's "eipassoc-"; 17 hex digits after the prefix (EC2 User Guide,
# "Resource IDs"). A key pair's id is its name; an IAM role's and instance profile's their (autonamed) name.
EC2_ID_PREFIXES = {
    "aws:ec2/securityGroup:SecurityGroup": "sg",
    "aws:ec2/instance:Instance": "i",
    "aws:ebs/volume:Volume": "vol",
    "aws:ec2/eip:Eip": "eipalloc",
    "aws:ec2/eipAssociation:EipAssociation": "eipassoc",
}


def ec2_id(resource_type: str, name: str) -> str:
    """A stable id of AWS's shape for the program's resource `name` (the same on every run)."""
    return f"{EC2_ID_PREFIXES[resource_type]}-0{hashlib.sha256(name.encode()).hexdigest()[:16]}"


class AutonamingMocks(pulumi_harness.AwsMocks):
    """The harness's mocks plus what the analyzer reads in the outputs as the real providers give them: the
    autonamed `name` of a role and an instance profile (the AWS provider's autonaming fills it; the instance's
    iam_instance_profile is that name, its property dependency the profile), ids of AWS's shape, and the
    bridged providers' "id" output property."""

    fresh_preview = False

    def new_resource(self, args):
        identifier, state = super().new_resource(args)
        bridged = args.typ.split(":")[0] in BRIDGED_PACKAGES
        if self.fresh_preview:
            # A preview of a fresh stack: the provider's preview of a create answers the inputs, every computed
            # output unknown and no id (pkg/resource/deploy/step.go CreateStep.Apply with preview; the bridge's
            # Create with preview returns the proposed state, its "id" unknown).
            return "", {**args.inputs, **({"id": rpc.UNKNOWN} if bridged else {})}
        if args.typ in AUTONAMED:
            identifier = state["name"] = autoname(args.name)
            if args.typ == "aws:iam/role:Role":
                state["arn"] = f"arn:aws:iam::{pulumi_harness.FAKE_ACCOUNT_ID}:role{args.inputs.get('path', '/')}{identifier}"
        if args.typ in EC2_ID_PREFIXES:
            identifier = ec2_id(args.typ, args.name)
            if args.typ == "aws:ec2/eip:Eip":
                state["allocationId"] = identifier
        if args.typ == "aws:ec2/keyPair:KeyPair":
            identifier = state["keyName"]
        if args.typ == "pulumi-python:dynamic/harbor:Registry":
            # The provider keeps only the credential's hash, empty without one (components/harbor/registry.py
            # RegistryProvider.outputs: secret_hash(access_key, access_secret), provider_base.secret_hash).
            from components.harbor.provider_base import secret_hash

            # The provider host hands create its inputs with secrets unwrapped (pulumi/dynamic/__main__.py Create ->
            # rpc.deserialize_properties); the mocks hand them wrapped.
            inputs = pulumi_harness.unwrap_secrets(args.inputs)
            key, secret = inputs.get("access_key") or "", inputs.get("access_secret") or ""
            state.update(credential_hash=secret_hash(key, secret), access_key_hash=secret_hash(key))
            state.pop("access_key", None)
            state.pop("access_secret", None)
        if bridged:
            state["id"] = identifier
        return identifier, state


def run_program(
    config: dict[str, Any], fresh_preview: bool = False, existing_preview: bool = False, **options: Any
) -> ProgramRun:
    """tests.pulumi_harness.run_program with AutonamingMocks (and, for `fresh_preview`, a preview of a new stack; for
    `existing_preview`, a preview of the unchanged existing stack: every resource answers the outputs it has in the
    state, and an output the provider does not answer is unknown to the program, as the SDK resolves it in a dry run)."""
    original = pulumi_harness.AwsMocks
    mocks = type("Mocks", (AutonamingMocks,), {"fresh_preview": fresh_preview})
    pulumi_harness.AwsMocks = mocks
    try:
        return pulumi_harness.run_program(config, preview=fresh_preview or existing_preview, **options)
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


def with_aws_default_tags(
    resources: list[EngineResource], default_tags: Any, provider_major: int | None = None
) -> list[EngineResource]:
    """The stack as the engine hands it to the analyzer when the stack's config sets `aws:defaultTags`.

    The engine configures the default AWS provider from the stack's `aws:*` config (pulumi
    docs/architecture/providers/default.md), a structured value as its JSON text, as the CLI stores it
    and the engine passes config on (analyzer_plugin.go constructConfig). pulumi-aws then merges the
    provider's defaultTags into each resource's inputs during Check, before the analyzer sees them
    (provider/tags.go applyTags/mergeTags, a PreCheckCallback): defaults first, the resource's own
    tags win; the result goes to `tagsAll` (v7: tags.go sets ret["tagsAll"] only), and in v6 to
    `tags` as well (pulumi-aws#2655 "Compute tags in Check"). Modelled for the resources the program
    tags (every taggable one, components/aws/tagging.py); the version is the installed pulumi-aws's
    unless `provider_major` says which.
    """
    parsed = json.loads(default_tags) if isinstance(default_tags, str) else default_tags
    defaults = {str(k): str(v) for k, v in ((parsed or {}).get("tags") or {}).items()}
    major = provider_major or int(metadata.version(PROVIDER_PACKAGES["aws"]).split(".")[0])
    providers: dict[str, EngineResource] = {}
    result = []
    for resource in resources:
        if resource.type == "pulumi:providers:aws":
            provider = copy.deepcopy(resource)
            text = default_tags if isinstance(default_tags, str) else json.dumps(default_tags)
            provider.inputs["defaultTags"] = provider.outputs["defaultTags"] = text
            providers[resource.urn] = provider
            result.append(provider)
            continue
        if resource.provider is not None and resource.provider.urn in providers:
            resource = copy.deepcopy(resource)
            resource.provider = providers[resource.provider.urn]
            for properties in (resource.inputs, resource.outputs):
                if isinstance(properties.get("tags"), dict):
                    merged = {**defaults, **properties["tags"]}
                    properties["tagsAll"] = merged
                    if major < 7:
                        properties["tags"] = merged
        result.append(resource)
    return result


def _filled(value: Any, defaults: dict[str, Any], path: str, maps: set[str], bridged: bool) -> Any:
    """`value` (the object at `path`) with the provider's defaults of its fields filled where absent; for the SDKv2
    bridge every object it checks (not a map) also gets `__defaults`, the keys it filled (schema.go applyDefaults)."""
    if isinstance(value, dict) and SECRET_SIGNATURE_KEY in value:
        return {**value, "value": _filled(value.get("value"), defaults, path, maps, bridged)}
    if isinstance(value, list):
        return [_filled(item, defaults, f"{path}[]", maps, bridged) for item in value]
    if not isinstance(value, dict) or path in maps:
        return value
    result = {
        key: _filled(item, defaults, f"{path}.{key}" if path else key, maps, bridged)
        for key, item in value.items()
        if not (bridged and key in BRIDGE_RESERVED_KEYS)  # schema.go makeObjectTerraformInputs skips them
    }
    filled = []
    for default_path, default in defaults.items():
        parent, _, key = default_path.rpartition(".")
        if parent == path and result.get(key) is None:
            result[key] = default
            filled.append(key)
    if bridged:
        result[provider_defaults.BRIDGE_DEFAULTS_KEY] = sorted(filled)
    return result


DYNAMIC_PROVIDER_KEY = "__provider"


def dynamic_checked(inputs: dict[str, Any]) -> dict[str, Any]:
    """A dynamic resource's inputs as its provider host's Check answers them: pulumi/dynamic/__main__.py Check
    unpickles the program's provider from `__provider` (get_provider: dill.loads of the base64 text), answers
    `provider.check(olds, news).inputs` and puts `__provider` back (the engine drops that top-level "__" key before
    the analyzer). The program's own providers fill fields there (components/harbor/provider_base.py
    HarborProvider.check -> normalise: a registry's access_key/access_secret "" without a credential; review 22e),
    so the pack is judged on what the real Check answers, by the real provider code."""
    import base64

    import dill

    # The provider host deserializes with secrets unwrapped (pulumi/runtime/rpc.py deserialize_properties), as
    # pulumi_policy hands the pack its values.
    news = copy.deepcopy(pulumi_harness.unwrap_secrets(inputs))
    provider = dill.loads(base64.b64decode(news[DYNAMIC_PROVIDER_KEY]))  # noqa: S301 - the program's own pickle
    result = provider.check({}, news)
    checked = {key: value for key, value in result.inputs.items() if value is not None}
    checked[DYNAMIC_PROVIDER_KEY] = news[DYNAMIC_PROVIDER_KEY]
    # The dynamic host does not accept secrets (its Configure answers acceptSecrets: False), so the engine marks
    # secret again whatever was secret in the program's inputs (sdk/go/common/resource/plugin/provider_plugin.go
    # Check -> annotateSecrets(inputs, req.News)).
    return annotate_secrets(checked, inputs)


def annotate_secrets(outs: dict[str, Any], ins: dict[str, Any]) -> dict[str, Any]:
    """provider_plugin.go annotateSecrets: a key of `outs` whose value in `ins` holds a secret is made secret (objects
    on both sides are walked key by key)."""
    annotated = dict(outs)
    for key, in_value in ins.items():
        if key not in annotated:
            continue
        out_value = annotated[key]
        if _is_object(out_value) and _is_object(in_value):
            annotated[key] = annotate_secrets(out_value, in_value)
        elif not _is_secret(out_value) and contains_secret(in_value):
            annotated[key] = {rpc._special_sig_key: SECRET_SIG, "value": out_value}
    return annotated


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == SECRET_SIG


def _is_object(value: Any) -> bool:
    return isinstance(value, dict) and rpc._special_sig_key not in value


# pulumi-terraform-bridge pkg/reservedkeys/keys.go IsBridgeReservedKey.
BRIDGE_RESERVED_KEYS = ("__defaults", "__meta", "__pulumi_raw_state_delta")


def checked_inputs(resource_type: str, name: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The program's inputs as the provider's Check answers them, which is what the engine hands Analyze
    (pkg/resource/deploy/step_generator.go generateSteps: Check, then analyzeAll with its inputs), per
    policy/provider_defaults.py: pulumi-aws's autonaming, Terraform defaults and `__defaults` (the SDKv2 bridge's
    provider.go Check); pulumi-command's connection defaults (pulumi-go-provider infer Check -> applyDefaults);
    nothing for pulumi-random/tls (the Plugin Framework bridge's Check fills no Terraform defaults) and the dynamic
    providers whose `check` answers their inputs. The root stack and the providers are not the program's resources."""
    inputs = {key: value for key, value in raw.items() if value is not None}  # Check unmarshals with SkipNulls
    if DYNAMIC_PROVIDER_KEY in inputs:
        return dynamic_checked(inputs)
    bridged = resource_type.startswith(provider_defaults.SDKV2_BRIDGED)
    for named in provider_defaults.AUTONAMED.get(resource_type, ()):
        if inputs.get(named) is None:
            inputs[named] = autoname(name)
    defaults = provider_defaults.TERRAFORM_DEFAULTS.get(resource_type, {})
    if not (bridged or defaults):
        return inputs
    table = fields.FIELDS.get(resource_type, {})
    maps = {path for path, row in table.items() if isinstance(row, fields.Whole)} | {"tags", "tagsAll"}
    return _filled(inputs, defaults, "", maps, bridged)


def engine_resources(
    run: ProgramRun, stack: str = "dev", region: str = "eu-central-1", config: dict[str, Any] | None = None
) -> list[EngineResource]:
    """The program's registrations as the engine would analyze them, in registration order, after the
    root stack and the default providers (configured from `config`'s aws:defaultTags, when it sets them)."""
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
        inputs, outputs = checked_inputs(registration.type, registration.name, registration.raw), {**registration.outputs}
        if registration.type in AUTONAMED:
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
    if config and config.get("aws:defaultTags") is not None:
        return with_aws_default_tags(resources, config["aws:defaultTags"])
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


def _without_internal_keys(properties: dict[str, Any]) -> dict[str, Any]:
    """What the engine marshals for the analyzer: no top-level "__" keys (a dynamic resource's pickled `__provider`)
    (sdk/go/common/resource/plugin/analyzer_plugin.go Analyze and AnalyzeStack: MarshalOptions SkipInternalKeys;
    rpc.go MarshalProperties skips IsInternalPropertyKey, the "__" prefix, "Only skip top level internal keys")."""
    return {key: value for key, value in properties.items() if not str(key).startswith("__")}


def _described(resource: EngineResource, properties: dict[str, Any]) -> dict[str, Any]:
    """The fields AnalyzeRequest and AnalyzerResource share (pulumi/proto/pulumi/analyzer.proto)."""
    return {
        "type": resource.type,
        "properties": _struct(_without_internal_keys(properties)),
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


# The policy that looks references up in AWS at `up` (policy/aws_lookups.py). Tests of other rules over the mocks'
# stacks, whose ids AWS has never seen, switch it off explicitly, as an operator could only with a policy pack config.
AWS_LOOKUPS = "references-are-the-stacks-own-at-up"
WITHOUT_AWS_LOOKUPS = (AWS_LOOKUPS,)


@contextmanager
def running_pack(
    dry_run: bool = True,
    stack: str = "dev",
    config: dict[str, Any] | None = None,
    policy_dir: Path = POLICY_DIR,
    disabled: Iterable[str] = (),
    env: dict[str, str | None] | None = None,
    organization: str | None = None,
) -> Iterator[Analyzer]:
    """The pack's entry point started as the engine starts it (from `policy_dir`, the checkout's by default); stopped on exit.

    `disabled`: policies a policy pack config turns off (`pulumi up --policy-pack-config` with
    `{"<policy>": "disabled"}`), sent as the engine sends it: `Configure` after `GetAnalyzerInfo` (pulumi
    pkg/engine/plugins.go installAndLoadPolicyPlugins -> ReconcilePolicyPackConfig -> analyzer.Configure; pulumi_policy
    policy.py Analyze skips a policy whose level is DISABLED). `env`: more of the environment the engine passes on
    (analyzer_plugin.go: the CLI's own environment, where the deploy's AWS credentials are); None removes a variable.
    `organization`: the update target's organization, which the engine hands the program (run_program's) and the pack
    (PULUMI_ORGANIZATION, only when not empty: analyzer_plugin.go constructEnv maybeAppendEnv)."""
    # The stack's configuration as the engine passes it (analyzer_plugin.go constructConfig: "project:key" ->
    # string; structured values as their JSON text); the dev stack's by default.
    config = pulumi_harness.dev_config() if config is None else config
    inherited = {
        key: value
        for key, value in {**os.environ, **(env or {})}.items()
        if value is not None and key != "PULUMI_ORGANIZATION"  # the engine's own, below
    }
    environment = {
        **inherited,
        "PULUMI_PROJECT": PROJECT,
        "PULUMI_STACK": stack,
        "PULUMI_DRY_RUN": "true" if dry_run else "false",
        **({"PULUMI_ORGANIZATION": organization} if organization else {}),
        "PULUMI_CONFIG": json.dumps(
            {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}
        ),
    }
    process = subprocess.Popen(
        [sys.executable, "__main__.py"], cwd=policy_dir, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        port = process.stdout.readline().decode().strip()
        assert port.isdigit(), process.stderr.read().decode()[-2000:]
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = analyzer_pb2_grpc.AnalyzerStub(channel)
        stub.GetAnalyzerInfo(empty_pb2.Empty())
        off = analyzer_pb2.PolicyConfig(enforcementLevel=analyzer_pb2.DISABLED)
        stub.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={name: off for name in disabled}))
        yield Analyzer(stub)
        channel.close()
    finally:
        process.kill()
        process.wait(10)


# sdk/go/common/resource/sig/sig.go Secret: the key that marks a marshalled secret.
SECRET_SIGNATURE_KEY = "4dabf18193072939515e22adb298388d"


def replaced_at_preview(resources: list[EngineResource], names: Iterable[str]) -> list[EngineResource]:
    """The preview of an existing stack in which the resources `names` are replaced (or created): a mix of known and
    unknown values, as the engine sends it. The provider's preview of a create or replace answers the inputs with every
    computed output unknown (pkg/resource/deploy/step.go CreateStep/ReplaceStep with preview; the bridge's Create with
    preview returns the proposed state, its "id" unknown), and the program's SDK runs no apply on an unknown
    (sdk/python/lib/pulumi/output.py `apply`: an unknown input gives an unknown output), so every property made from
    one of those resources is unknown too, in the dependent's inputs and outputs. Every other resource keeps its known
    values. Whether a dependent is itself replaced is the provider's diff, not modelled: name it too."""
    result = copy.deepcopy(resources)
    replaced = {r.urn for r in result if r.name in set(names)}
    for resource in result:
        if resource.urn in replaced:
            resource.outputs = {
                key: value if key in resource.inputs and key != "id" else rpc.UNKNOWN for key, value in resource.outputs.items()
            }
            continue
        for key, urns in resource.property_dependencies.items():
            if replaced & set(urns):
                for properties in (resource.inputs, resource.outputs):
                    if isinstance(properties.get(key), dict) and SECRET_SIGNATURE_KEY in properties[key]:
                        properties[key] = {**properties[key], "value": rpc.UNKNOWN}  # a secret stays marked secret
                    elif key in properties:
                        properties[key] = rpc.UNKNOWN
    return result


def registration_of(resources: list[EngineResource], name: str, kind: str = "") -> EngineResource:
    """The one resource named `name` (of type `kind`, where two types share a name: an EventBridge rule and its target)."""
    (found,) = [r for r in resources if r.name == name and kind in ("", r.type)]
    return found


def changed(resources: list[EngineResource], name: str, change: Callable[[dict], None], kind: str = "") -> EngineResource:
    """A copy of the program's resource `name` (of type `kind`) with `change` applied to its inputs and its outputs."""
    resource = copy.deepcopy(registration_of(resources, name, kind))
    change(resource.inputs)
    change(resource.outputs)
    return resource


def refusals(pack: Analyzer, resource: EngineResource) -> str:
    """Every message the pack answers Analyze with, one a line."""
    return "\n".join(diagnostic.message for diagnostic in pack.analyze(resource))


__all__ = ["Analyzer", "Diagnostic", "EngineResource", "Registration", "engine_resources", "engine_urn", "running_pack"]
