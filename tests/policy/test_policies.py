"""The policy pack, without the CLI: the dev stack's resources pass every policy; a mutated
resource for each policy fails with a message that says what to change, including the ways around
the rules a review found (IAM action spellings and wildcards, NotAction, widening attachments,
half-internet CIDR pairs, a hop limit above 1, credential shapes, local commands)."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pulumi_policy import (
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)

from tests.paths import ROOT

sys.path.insert(0, str(ROOT / "policy"))

import harbor_policies  # noqa: E402

from tests.standins.pulumi_harness import dev_config, run_program  # noqa: E402


def violations(registration_type: str, props: dict, protect: bool = False) -> dict[str, list[str]]:
    """Runs every resource policy of the pack the way the analyzer does, through ResourceValidationPolicy.validate."""
    options = PolicyResourceOptions(protect, [], False, [], None, [], None)
    args = ResourceValidationArgs(registration_type, props, "urn:test", "test", options, None, {}, {})
    found: dict[str, list[str]] = {}
    for policy in harbor_policies.POLICIES:
        if not isinstance(policy, ResourceValidationPolicy):
            continue
        messages: list[str] = []
        policy.validate(args, lambda message, _urn, messages=messages: messages.append(message))
        if messages:
            found[policy.name] = messages
    return found


def stack_violations(resources: list[tuple[str, dict]]) -> dict[str, list[str]]:
    """Runs the stack policies over (type, props) pairs through StackValidationPolicy.validate."""
    options = PolicyResourceOptions(False, [], False, [], None, [], None)
    policy_resources = [
        PolicyResource(kind, props, f"urn:{i}", str(i), options, None, None, [], {}) for i, (kind, props) in enumerate(resources)
    ]
    found: dict[str, list[str]] = {}
    for policy in harbor_policies.POLICIES:
        if isinstance(policy, ResourceValidationPolicy):
            continue
        messages: list[str] = []
        policy.validate(
            StackValidationArgs(policy_resources, {}), lambda message, _urn, messages=messages: messages.append(message)
        )
        if messages:
            found[policy.name] = messages
    return found


def as_designed(registration) -> dict:
    """The inputs as the program registers them (a copy a test may change)."""
    return copy.deepcopy(registration.inputs)


def stack_resources(run) -> list[tuple[str, dict]]:
    """The stack as the stack policies see it. A Role's `name` is filled in by the AWS provider's
    autonaming (in Check) for real; the mocks give the role its logical name, which is what the
    attachments' `role` inputs hold here."""
    resources = []
    for registration in run.registrations:
        props = as_designed(registration)
        if registration.type == "aws:iam/role:Role":
            props.setdefault("name", registration.name)
        resources.append((registration.type, props))
    return resources


@pytest.fixture(scope="module")
def run():
    return run_program(dev_config())


def resource(run, kind: str, name: str | None = None):
    found = [r for r in run.of_type(kind) if name is None or r.name == name]
    assert found, kind
    return found[0]


def test_the_dev_stack_passes_every_policy(run):
    assert len(harbor_policies.POLICIES) == len(harbor_policies.CHECKS) + len(harbor_policies.STACK_CHECKS) == 12
    kinds = {registration.type for registration in run.registrations}
    # The resources the IAM rules judge are really in the stack, so "no violation" means something.
    assert {"aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy", "aws:iam/rolePolicyAttachment:RolePolicyAttachment"} <= kinds
    assert {"aws:ec2/instance:Instance", "aws:ec2/securityGroup:SecurityGroup", "command:remote:Command"} <= kinds
    for registration in run.registrations:
        assert violations(registration.type, as_designed(registration), registration.protect) == {}, registration.name
    assert stack_violations(stack_resources(run)) == {}


def mutate(run, kind: str, change, name: str | None = None) -> tuple[str, dict, bool]:
    registration = resource(run, kind, name)
    props = as_designed(registration)
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
    assert f"remote command's {field}" in found["no-credentials-in-commands"][0]
    assert "stdin as a Pulumi secret" in found["no-credentials-in-commands"][0]


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
        assert sorted(p.name for p in info.policies) == sorted([*harbor_policies.CHECKS, *harbor_policies.STACK_CHECKS])
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
        designed = copy.deepcopy(instance.raw)
        assert list(analyze(instance, designed)) == []
        weakened = copy.deepcopy(designed)
        weakened["metadataOptions"]["httpTokens"] = "optional"
        (diagnostic,) = analyze(instance, weakened)
        assert diagnostic.policyName == "imdsv2-required" and "http_tokens='required'" in diagnostic.message
        assert diagnostic.enforcementLevel == analyzer_pb2.MANDATORY
    finally:
        process.kill()
        process.wait(10)


def dns01_statement_changed(change):
    def apply(props):
        policy = json.loads(props["policy"])
        change(policy["Statement"])
        props["policy"] = json.dumps(policy)

    return apply


@pytest.mark.parametrize(
    "action", ["route53:changeresourcerecordsets", "ROUTE53:ChangeResourceRecordSets", "route53:Change*", "route53:*", "*"]
)
def test_iam_actions_in_another_spelling_or_with_wildcards_fail(run, action):
    """IAM matches actions case-insensitively and with wildcards: each of these grants the change."""

    def respell(statements):
        statements[0]["Action"] = action

    found = violations(*mutate(run, "aws:iam/rolePolicy:RolePolicy", dns01_statement_changed(respell)))
    assert repr(action) in found["iam-grants-only-the-design"][0]
    assert ("another spelling" if "*" not in action else "no wildcards") in found["iam-grants-only-the-design"][0]

    def respell_unscoped(statements):
        statements[0].update(Action=[action], Resource="*")
        del statements[0]["Condition"]

    found = violations(*mutate(run, "aws:iam/rolePolicy:RolePolicy", dns01_statement_changed(respell_unscoped)))
    assert "exactly one hosted zone" in found["route53-dns01-scoped"][0]
    assert "_acme-challenge.<hostname>" in found["route53-dns01-scoped"][1]


@pytest.mark.parametrize("field", ["NotAction", "NotResource"])
def test_not_action_fails(run, field):
    def add(statements):
        statements.append(
            {"Effect": "Allow", field: "iam:*", **({"Resource": "*"} if field == "NotAction" else {"Action": "s3:GetObject"})}
        )

    found = violations(*mutate(run, "aws:iam/rolePolicy:RolePolicy", dns01_statement_changed(add)))
    assert "NotAction/NotResource grants everything" in found["iam-grants-only-the-design"][0]


@pytest.mark.parametrize(
    "kind,props,message",
    [
        (
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            {"role": "harbor-vm-role", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
            "managed policy arn:aws:iam::aws:policy/AdministratorAccess",
        ),
        (
            "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive",
            {"roleName": "harbor-vm-role", "policyArns": ["arn:aws:iam::aws:policy/AmazonS3FullAccess"]},
            "AmazonS3FullAccess",
        ),
        (
            "aws:iam/policyAttachment:PolicyAttachment",
            {"roles": ["harbor-vm-role"], "policyArn": "arn:aws:iam::123456789012:policy/anything"},
            "PolicyAttachment",
        ),
        (
            "aws:iam/rolePolicy:RolePolicy",
            {
                "role": "harbor-vm-role",
                "policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}),
            },
            "'s3:GetObject' widens the instance role",
        ),
    ],
)
def test_policies_that_widen_a_role_fail(kind, props, message):
    found = violations(kind, props)
    assert message in found["iam-grants-only-the-design"][0]


def test_managed_or_inline_policies_on_the_role_fail(run):
    found = violations(
        *mutate(
            run,
            "aws:iam/role:Role",
            lambda p: p.update(managedPolicyArns=["arn:aws:iam::aws:policy/ReadOnlyAccess"]),
            "harbor-vm-role",
        )
    )
    assert "managed_policy_arns" in found["iam-grants-only-the-design"][0]
    inline = [{"name": "more", "policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]})}]
    found = violations(*mutate(run, "aws:iam/role:Role", lambda p: p.update(inlinePolicies=inline), "harbor-vm-role"))
    assert "inline_policies" in found["iam-grants-only-the-design"][0]


def test_the_dlm_service_policy_lands_only_on_the_dlm_role(run):
    resources = stack_resources(run)
    ((_, attachment),) = [(k, p) for k, p in resources if k == "aws:iam/rolePolicyAttachment:RolePolicyAttachment"]
    assert attachment["policyArn"] == harbor_policies.DLM_SERVICE_POLICY and attachment["role"] == "harbor-vm-dlm-role"
    assert violations("aws:iam/rolePolicyAttachment:RolePolicyAttachment", attachment) == {}
    attachment["role"] = "harbor-vm-role"  # the instance role: snapshot and delete rights on every volume
    found = stack_violations(resources)
    assert "'harbor-vm-role', which not only dlm.amazonaws.com assumes" in found["dlm-policy-on-the-dlm-role"][0]


HALVES = [["0.0.0.0/1", "128.0.0.0/1"], ["::/1", "8000::/1"], ["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/1"]]


@pytest.mark.parametrize("blocks", HALVES)
def test_blocks_that_together_cover_every_address_are_the_world(run, blocks):
    def add_rules(port):
        def change(props):
            for block in blocks:  # one rule per block: the union across rules counts
                open_port(port, block)(props)

        return change

    assert "sshAllowedCidrs" in violations(*mutate(run, "aws:ec2/securityGroup:SecurityGroup", add_rules(22)))["no-world-ssh"][0]
    assert "web-not-public" in violations(*mutate(run, "aws:ec2/securityGroup:SecurityGroup", add_rules(443)))
    key = "ipv6CidrBlocks" if ":" in blocks[0] else "cidrBlocks"
    rule = {"type": "ingress", "protocol": "tcp", "fromPort": 22, "toPort": 22, key: blocks}
    assert "no-world-ssh" in violations("aws:ec2/securityGroupRule:SecurityGroupRule", rule)


@settings(max_examples=30, deadline=None)
@given(prefix=st.integers(1, 6), missing=st.integers(0, 63), v6=st.booleans())
def test_coverage_is_judged_by_the_union(prefix, missing, v6):
    """Every /prefix subnet together is the world; leave one out and it is not."""
    import ipaddress

    world = ipaddress.ip_network("::/0" if v6 else "0.0.0.0/0")
    subnets = [str(net) for net in world.subnets(new_prefix=prefix)]
    key = "ipv6CidrBlocks" if v6 else "cidrBlocks"
    rule = {"type": "ingress", "protocol": "tcp", "fromPort": 22, "toPort": 22, key: subnets}
    assert "no-world-ssh" in violations("aws:ec2/securityGroupRule:SecurityGroupRule", rule)
    del subnets[missing % len(subnets)]
    assert violations("aws:ec2/securityGroupRule:SecurityGroupRule", {**rule, key: subnets}) == {}


@pytest.mark.parametrize("hop_limit", [2, 3, None])
def test_imds_hop_limit_above_one_fails(run, hop_limit):
    def change(props):
        if hop_limit is None:
            del props["metadataOptions"]["httpPutResponseHopLimit"]
        else:
            props["metadataOptions"]["httpPutResponseHopLimit"] = hop_limit

    found = violations(*mutate(run, "aws:ec2/instance:Instance", change))
    assert f"IMDS hop limit is {hop_limit}" in found["imdsv2-required"][0]
    assert "http_put_response_hop_limit=1" in found["imdsv2-required"][0]


@pytest.fixture(scope="module")
def s3_run():
    return run_program({**dev_config(), "harbor-cache:storage": "s3"})


@pytest.mark.parametrize("mode", ["ebs", "s3"])
def test_every_mode_has_hop_limit_one_and_passes(run, s3_run, mode):
    """storage s3 too (issue 18): the registry's credentials come from the host's relay, so the
    policy has no exception left and the instance no tag for one."""
    program = s3_run if mode == "s3" else run
    instance = resource(program, "aws:ec2/instance:Instance")
    assert instance.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
    assert not any("imds" in key for key in instance.inputs["tags"]), instance.inputs["tags"]
    for registration in program.registrations:
        assert violations(registration.type, as_designed(registration), registration.protect) == {}, registration.name


def test_the_old_guard_tag_allows_nothing(s3_run):
    """The tag that let s3 instances have hop limit 2 until issue 18 no longer means anything."""

    def old_s3_instance(props):
        props["metadataOptions"]["httpPutResponseHopLimit"] = 2
        props["tags"]["harbor-cache:imds-registry-only"] = "true"

    found = violations(*mutate(s3_run, "aws:ec2/instance:Instance", old_s3_instance))
    assert "IMDS hop limit is 2" in found["imdsv2-required"][0]
    assert "http_put_response_hop_limit=1" in found["imdsv2-required"][0]


CREDENTIAL_SHAPES = [
    "docker login -u robot -p s3cr3t harbor.example.com",
    "sshpass -p hunter2 ssh ubuntu@host",
    "mysql -uroot -phunter2 registry",
    "harbor-cli --password hunter2",
    "curl --password=hunter2 https://x",
    "sudo DB_PASS=hunter2 bash -s",
    "PASS=hunter2 ./run",
    "env PWD=hunter2 ./run",
]
NOT_CREDENTIALS = [
    "sudo mkdir -p /data/backup",
    "docker run -u 10000 -p 443:443 traefik",
    "docker login -u robot --password-stdin harbor.example.com",
    "sudo HARBOR_SHA256=0123abcd bash -s",
    "cp -p a b",
]


@pytest.mark.parametrize("command", CREDENTIAL_SHAPES)
def test_credential_shapes_in_commands_fail(run, command):
    found = violations(*mutate(run, "command:remote:Command", lambda p: p.update(create=command), name="harbor-install-docker"))
    assert "remote command's create" in found["no-credentials-in-commands"][0]


@pytest.mark.parametrize("command", NOT_CREDENTIALS)
def test_ordinary_flags_are_not_credentials(run, command):
    assert (
        violations(*mutate(run, "command:remote:Command", lambda p: p.update(create=command), name="harbor-install-docker")) == {}
    )


@pytest.mark.parametrize(
    "props,field",
    [
        ({"create": "docker login -u robot -p s3cr3t harbor.example.com"}, "create"),
        ({"create": "./sync.sh", "environment": {"HARBOR_PASSWORD": "hunter2"}}, "environment"),
        ({"create": "./sync.sh", "triggers": ["dckr_pat_abcdefghijklmnopqrstuvwx"]}, "triggers"),
    ],
)
def test_local_commands_are_held_to_the_same_rule(props, field):
    found = violations("command:local:Command", props)
    assert f"local command's {field}" in found["no-credentials-in-commands"][0]
    assert violations("command:local:Command", {"create": "./sync.sh", "environment": {"REGION": "eu-central-1"}}) == {}


def test_separate_rule_resources_of_one_group_are_judged_together(run):
    def rule(block: str, group: str = "sg-1") -> tuple[str, dict]:
        props = {"type": "ingress", "securityGroupId": group, "protocol": "tcp", "fromPort": 22, "toPort": 22}
        return "aws:ec2/securityGroupRule:SecurityGroupRule", {**props, "cidrBlocks": [block]}

    halves = [rule("0.0.0.0/1"), rule("128.0.0.0/1")]
    assert all(violations(kind, props) == {} for kind, props in halves)  # each alone is fine
    found = stack_violations([*stack_resources(run), *halves])
    assert "security group sg-1 together open 22" in found["no-world-ssh-across-rules"][0]
    assert stack_violations([*stack_resources(run), rule("0.0.0.0/1"), rule("128.0.0.0/1", "sg-2")]) == {}


def test_metrics_permission_only_into_the_caches_namespace(run):
    """The reporter's PutMetricData passes only with its namespace condition; without it, or with another
    namespace, the instance role could write any metric (and so silence or fake other alarms)."""
    metrics = run.named("harbor-alarms-put-metrics")
    assert violations(metrics.type, metrics.inputs) == {}
    for condition in ({}, {"StringEquals": {"cloudwatch:namespace": "AWS/EC2"}}):
        props = copy.deepcopy(metrics.inputs)
        policy = json.loads(props["policy"])
        policy["Statement"][0]["Condition"] = condition
        props["policy"] = json.dumps(policy)
        found = violations(metrics.type, props)
        assert "cloudwatch:namespace" in found["iam-grants-only-the-design"][0]


@pytest.mark.parametrize(
    ("pattern", "action", "matches"),
    [
        ("route53:change*", "route53:ChangeResourceRecordSets", True),
        ("ROUTE53:ChangeResourceRecordSet?", "route53:ChangeResourceRecordSets", True),
        # IAM knows only `*` and `?` (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html):
        # brackets are literal characters, not fnmatch's character classes.
        ("route53:[c]hangeResourceRecordSets", "route53:ChangeResourceRecordSets", False),
        ("route53:[!x]hangeResourceRecordSets", "route53:ChangeResourceRecordSets", False),
    ],
)
def test_action_matching_is_iams_not_fnmatchs(pattern: str, action: str, matches: bool) -> None:
    assert harbor_policies._action_matches(pattern, action) is matches


def test_the_s3_and_external_services_stack_passes_every_policy():
    config = {**dev_config(), "harbor-cache:storage": "s3", "harbor-cache:externalServices": True}
    s3_run = run_program(config)
    assert s3_run.named("harbor-storage-registry-access")
    for registration in s3_run.registrations:
        assert violations(registration.type, as_designed(registration), registration.protect) == {}, registration.name
    assert stack_violations(stack_resources(s3_run)) == {}


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::*/*"},
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["s3:*"], "Resource": "arn:aws:s3:::harbor-cache-bucket/*"},
        {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject"], "Resource": "arn:aws:s3:::harbor-cache-bucket"},
        {"Effect": "Allow", "Action": ["s3:ListAllMyBuckets"], "Resource": "arn:aws:s3:::harbor-cache-bucket"},
    ],
)
def test_s3_grants_beyond_the_registrys_bucket_fail(statement):
    props = {"role": "harbor-vm-role", "policy": json.dumps({"Version": "2012-10-17", "Statement": [statement]})}
    assert "iam-grants-only-the-design" in violations("aws:iam/rolePolicy:RolePolicy", props)
