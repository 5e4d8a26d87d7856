"""The policy pack, without the CLI: the dev stack's resources pass every policy; a mutated
resource for each policy fails with a message that says what to change."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest
from pulumi_policy import PolicyResourceOptions, ResourceValidationArgs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "policy"))

import harbor_policies  # noqa: E402

from tests.pulumi_harness import dev_config, run_program  # noqa: E402


def violations(registration_type: str, props: dict, protect: bool = False) -> dict[str, list[str]]:
    """Runs every policy of the pack the way the analyzer does, through ResourceValidationPolicy.validate."""
    options = PolicyResourceOptions(protect, [], False, [], None, [], None)
    args = ResourceValidationArgs(registration_type, props, "urn:test", "test", options, None, {}, {})
    found: dict[str, list[str]] = {}
    for policy in harbor_policies.POLICIES:
        messages: list[str] = []
        policy.validate(args, lambda message, _urn, messages=messages: messages.append(message))
        if messages:
            found[policy.name] = messages
    return found


@pytest.fixture(scope="module")
def run():
    return run_program(dev_config())


def resource(run, kind: str, name: str | None = None):
    found = [r for r in run.of_type(kind) if name is None or r.name == name]
    assert found, kind
    return found[0]


def test_the_dev_stack_passes_every_policy(run):
    assert len(harbor_policies.POLICIES) == 7
    for registration in run.registrations:
        assert violations(registration.type, registration.inputs, registration.protect) == {}, registration.name


def mutate(run, kind: str, change, name: str | None = None) -> tuple[str, dict, bool]:
    registration = resource(run, kind, name)
    props = copy.deepcopy(registration.inputs)
    change(props)
    return registration.type, props, registration.protect


def test_imdsv1_fails(run):
    found = violations(*mutate(run, "aws:ec2/instance:Instance", lambda p: p["metadataOptions"].update(httpTokens="optional")))
    assert "http_tokens='required'" in found["imdsv2-required"][0]


def test_unencrypted_volumes_fail(run):
    found = violations(*mutate(run, "aws:ebs/volume:Volume", lambda p: p.update(encrypted=False)))
    assert "set encrypted=True" in found["ebs-encrypted"][0]
    found = violations(*mutate(run, "aws:ec2/instance:Instance", lambda p: p["rootBlockDevice"].update(encrypted=False)))
    assert "root_block_device.encrypted=True" in found["ebs-encrypted"][0]


def open_port(port: int, cidr: str):
    def change(props):
        props["ingress"].append(
            {
                "protocol": "tcp",
                "fromPort": port,
                "toPort": port,
                "cidrBlocks": [],
                "ipv6CidrBlocks": [],
                **({"ipv6CidrBlocks": [cidr]} if ":" in cidr else {"cidrBlocks": [cidr]}),
            }
        )

    return change


def test_ssh_from_the_world_fails(run):
    for cidr in ("0.0.0.0/0", "::/0"):
        found = violations(*mutate(run, "aws:ec2/securityGroup:SecurityGroup", open_port(22, cidr)))
        assert "sshAllowedCidrs" in found["no-world-ssh"][0]
    rule = {"type": "ingress", "protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}
    assert "no-world-ssh" in violations("aws:ec2/securityGroupRule:SecurityGroupRule", rule)


def test_public_web_fails_unless_allowed(run):
    kind, props, protect = mutate(run, "aws:ec2/securityGroup:SecurityGroup", open_port(443, "0.0.0.0/0"))
    found = violations(kind, props, protect)
    assert "allowPublicAccess: true" in found["web-not-public"][0]
    props["tags"][harbor_policies.PUBLIC_ACCESS_TAG] = "true"
    assert violations(kind, props, protect) == {}


def test_the_program_states_public_access_as_the_policy_expects():
    config = {**dev_config(), "harbor-cache:allowPublicAccess": True, "harbor-cache:allowedCidrs": ["0.0.0.0/0"]}
    group = run_program(config).one("aws:ec2/securityGroup:SecurityGroup")
    assert violations(group.type, group.inputs) == {}


def test_unprotected_data_volume_fails(run):
    volume = resource(run, "aws:ebs/volume:Volume")
    found = violations(volume.type, volume.inputs, protect=False)
    assert "protect=True" in found["data-volume-protected"][0]


def test_broad_route53_permission_fails(run):
    def widen(props):
        policy = json.loads(props["policy"])
        policy["Statement"][0]["Resource"] = "*"
        props["policy"] = json.dumps(policy)

    def any_name(props):
        policy = json.loads(props["policy"])
        del policy["Statement"][0]["Condition"]
        props["policy"] = json.dumps(policy)

    found = violations(*mutate(run, "aws:iam/rolePolicy:RolePolicy", widen, "harbor-dns-dns01"))
    assert "exactly one hosted zone" in found["route53-dns01-scoped"][0]
    found = violations(*mutate(run, "aws:iam/rolePolicy:RolePolicy", any_name, "harbor-dns-dns01"))
    assert "_acme-challenge.<hostname>" in found["route53-dns01-scoped"][0]


@pytest.mark.parametrize(
    "field,value",
    [
        ("create", "sudo HARBOR_ADMIN_PASSWORD=Hunter2-pass bash -s"),
        ("environment", {"DOCKERHUB_TOKEN": "dckr_pat_abcdefghijklmnopqrstuvwx"}),
        ("triggers", ["-----BEGIN OPENSSH PRIVATE KEY-----"]),
        ("create", "aws configure set aws_access_key_id AKIAABCDEFGHIJKLMNOP"),
    ],
)
def test_credentials_in_remote_commands_fail(run, field, value):
    found = violations(
        *mutate(run, "command:remote:Command", lambda p: p.update({field: value}), name="harbor-install-installer")
    )
    assert f"command's {field}" in found["no-credentials-in-remote-commands"][0]
    assert "stdin as a Pulumi secret" in found["no-credentials-in-remote-commands"][0]


def test_secrets_on_stdin_are_the_sanctioned_path(run):
    write = resource(run, "command:remote:Command", "harbor-install-harbor-yml")
    assert "harbor_admin_password" in write.inputs["stdin"]
    assert "stdin" in write.secret_keys()
    assert violations(write.type, write.inputs) == {}


def test_pack_entry_point_only_starts_the_server():
    text = (Path(harbor_policies.__file__).parent / "__main__.py").read_text()
    assert "PolicyPack(" in text and "ResourceValidationPolicy" not in text


def test_the_pack_runs_as_an_analyzer_and_reports_violations(run):
    """The pack's own entry point, started as the engine starts it, answering over gRPC."""
    import subprocess

    import grpc
    from google.protobuf import empty_pb2, json_format, struct_pb2
    from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

    policy_dir = Path(harbor_policies.__file__).parent
    process = subprocess.Popen([sys.executable, "__main__.py"], cwd=policy_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        port = process.stdout.readline().decode().strip()
        assert port.isdigit(), process.stderr.read().decode()[-2000:]
        stub = analyzer_pb2_grpc.AnalyzerStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        info = stub.GetAnalyzerInfo(empty_pb2.Empty())
        assert info.name == "harbor-cache"
        assert sorted(p.name for p in info.policies) == sorted(harbor_policies.CHECKS)
        assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}

        def analyze(registration, props):
            properties = struct_pb2.Struct()
            json_format.ParseDict(props, properties)
            request = analyzer_pb2.AnalyzeRequest(
                type=registration.type,
                properties=properties,
                urn=registration.urn,
                name=registration.name,
                options=analyzer_pb2.AnalyzerResourceOptions(protect=registration.protect),
            )
            return stub.Analyze(request).diagnostics

        instance = resource(run, "aws:ec2/instance:Instance")
        assert list(analyze(instance, instance.raw)) == []
        weakened = copy.deepcopy(instance.raw)
        weakened["metadataOptions"]["httpTokens"] = "optional"
        (diagnostic,) = analyze(instance, weakened)
        assert diagnostic.policyName == "imdsv2-required" and "http_tokens='required'" in diagnostic.message
        assert diagnostic.enforcementLevel == analyzer_pb2.MANDATORY
    finally:
        process.kill()
        process.wait(10)
