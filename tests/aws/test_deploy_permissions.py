"""The deploy and preview IAM policies, checked against what the program registers and invokes.

The program runs under Pulumi's mocks in every mode tests/standins/registrations.py records (one VM,
external stores with S3, a placed VM with alarm mail and metrics, HA); every resource type and data
source it touches must have an entry in components/aws/deploy_permissions.py, no entry may be for
something it no longer creates, and every action must be an operation of its service in botocore's
model (S3's IAM names through AWS's table of required permissions). docs/iam/*.json are the
generator's output, as committed.
"""

from __future__ import annotations

import json
import subprocess
import sys

import botocore.session
import pytest

from components.aws import deploy_permissions as permissions
from tests.paths import ROOT
from tests.standins import pulumi_harness
from tests.standins.registrations import CONFIGS

# IAM action -> S3 API operation, from "Required permissions for Amazon S3 API operations"
# (docs.aws.amazon.com/AmazonS3/latest/API/using-with-s3-policy-actions.html): S3's action names
# differ from its operation names, so botocore alone cannot check them.
S3_ACTION_OPERATIONS = {
    "s3:ListBucket": "ListObjectsV2",
    "s3:GetBucketLocation": "GetBucketLocation",
    "s3:GetBucketTagging": "GetBucketTagging",
    "s3:ListAllMyBuckets": "ListBuckets",
    "s3:PutBucketTagging": "PutBucketTagging",
    "s3:GetBucketPolicy": "GetBucketPolicy",
    "s3:PutBucketPolicy": "PutBucketPolicy",
    "s3:DeleteBucketPolicy": "DeleteBucketPolicy",
    "s3:GetBucketAcl": "GetBucketAcl",
    "s3:GetBucketCORS": "GetBucketCors",
    "s3:GetBucketWebsite": "GetBucketWebsite",
    "s3:GetBucketVersioning": "GetBucketVersioning",
    "s3:GetAccelerateConfiguration": "GetBucketAccelerateConfiguration",
    "s3:GetBucketRequestPayment": "GetBucketRequestPayment",
    "s3:GetBucketLogging": "GetBucketLogging",
    "s3:GetLifecycleConfiguration": "GetBucketLifecycleConfiguration",
    "s3:PutLifecycleConfiguration": "PutBucketLifecycleConfiguration",
    "s3:GetReplicationConfiguration": "GetBucketReplication",
    "s3:GetEncryptionConfiguration": "GetBucketEncryption",
    "s3:PutEncryptionConfiguration": "PutBucketEncryption",
    "s3:GetBucketObjectLockConfiguration": "GetObjectLockConfiguration",
    "s3:GetBucketOwnershipControls": "GetBucketOwnershipControls",
    "s3:PutBucketOwnershipControls": "PutBucketOwnershipControls",
    "s3:GetBucketPublicAccessBlock": "GetPublicAccessBlock",
    "s3:PutBucketPublicAccessBlock": "PutPublicAccessBlock",
    "s3:CreateBucket": "CreateBucket",
    "s3:DeleteBucket": "DeleteBucket",
    "s3:GetObject": "GetObject",
    "s3:PutObject": "PutObject",
    "s3:DeleteObject": "DeleteObject",
}
# IAM actions that are not one operation: PassRole is checked when a role is handed to a service;
# KMS splits ReEncrypt into its two sides (KMS developer guide, "Permissions reference").
NOT_OPERATIONS = {"iam:PassRole": None, "kms:ReEncryptFrom": "ReEncrypt", "kms:ReEncryptTo": "ReEncrypt"}
BOTOCORE_SERVICE = {"elasticloadbalancing": "elbv2"}
READ_VERBS = ("Describe", "Get", "List")


@pytest.fixture(scope="module")
def touched():
    """resource types and data-source tokens, per mode, as the program registers and invokes them."""
    invoked: dict[str, set[str]] = {}
    original = pulumi_harness.AwsMocks.call
    label = ""

    def recording_call(self, args):
        invoked.setdefault(label, set()).add(args.token)
        return original(self, args)

    pulumi_harness.AwsMocks.call = recording_call
    runs = {}
    try:
        for label, overrides in CONFIGS.items():  # noqa: B007 - read by recording_call
            config = {**pulumi_harness.dev_config(), **{f"harbor-cache:{key}": value for key, value in overrides.items()}}
            runs[label] = pulumi_harness.run_program(config)
    finally:
        pulumi_harness.AwsMocks.call = original
    return {
        label: {"types": {r.type for r in run.registrations}, "invokes": invoked.get(label, set()), "run": run}
        for label, run in runs.items()
    }


def all_policy_actions(policy: dict) -> set[str]:
    return {action for statement in policy["Statement"] for action in statement["Action"]}


def test_every_type_and_data_source_the_program_touches_has_an_entry(touched):
    for label, seen in touched.items():
        missing = sorted(t for t in seen["types"] if permissions.needs_aws(t) and t not in permissions.RESOURCE_ACTIONS)
        assert not missing, f"{label}: no IAM actions for {missing} (components/aws/deploy_permissions.py)"
        unknown = sorted(seen["invokes"] - set(permissions.INVOKE_ACTIONS))
        assert not unknown, f"{label}: no IAM actions for the data sources {unknown}"


def test_no_entry_is_for_something_the_program_does_not_touch(touched):
    types = set().union(*(seen["types"] for seen in touched.values()))
    invokes = set().union(*(seen["invokes"] for seen in touched.values()))
    assert sorted(set(permissions.RESOURCE_ACTIONS) - types) == []
    assert sorted(set(permissions.INVOKE_ACTIONS) - invokes) == []


def test_every_action_is_an_operation_of_its_service():
    session = botocore.session.get_session()
    models = {}
    policy_actions = all_policy_actions(permissions.deploy_policy("state", "arn:aws:kms:eu-central-1:1:key/k", "arn:aws:kms:x"))
    policy_actions |= {"iam:CreateServiceLinkedRole"}
    for action in sorted(policy_actions):
        service, name = action.split(":")
        if action in NOT_OPERATIONS:
            name = NOT_OPERATIONS[action]
            if name is None:
                continue
        if service == "s3":
            assert action in S3_ACTION_OPERATIONS, f"{action}: not an S3 action this test knows"
            name = S3_ACTION_OPERATIONS[action]
        model = models.setdefault(service, session.get_service_model(BOTOCORE_SERVICE.get(service, service)))
        assert name in model.operation_names, f"{action}: {name} is not an operation of {model.service_name}"


def test_the_deploy_policy_allows_what_every_mode_needs(touched):
    allowed = all_policy_actions(permissions.deploy_policy())
    for label, seen in touched.items():
        needed = set()
        for resource_type in seen["types"]:
            entry = permissions.RESOURCE_ACTIONS.get(resource_type)
            needed |= set(entry.read + entry.write) if entry else set()
        for token in seen["invokes"]:
            needed |= set(permissions.INVOKE_ACTIONS[token])
        assert needed <= allowed, f"{label}: {sorted(needed - allowed)}"
    assert "ec2:GetConsoleOutput" in allowed, "the host key is read from the console by the deploying identity"


def test_the_preview_policy_only_reads(touched):
    policy = permissions.preview_policy("state-bucket", "arn:aws:kms:eu-central-1:123456789012:key/k")
    actions = all_policy_actions(policy)
    writes = sorted(a for a in actions if not a.split(":")[1].startswith(READ_VERBS) and a != "kms:Decrypt")
    assert writes == [], f"the preview role must not write: {writes}"
    for seen in touched.values():
        for token in seen["invokes"]:
            assert set(permissions.INVOKE_ACTIONS[token]) <= actions, token
    state = next(s for s in policy["Statement"] if s["Sid"] == "StateObjects")
    assert state["Action"] == ["s3:GetObject"]


def test_iam_writes_are_limited_to_the_path_the_program_uses(touched):
    policy = permissions.deploy_policy()
    for statement in policy["Statement"]:
        if any(a.startswith("iam:") for a in statement["Action"]) and statement["Sid"] != "ServiceLinkedRoles":
            assert all(a.startswith("iam:") for a in statement["Action"])
            resources = [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
            assert all(
                f":role/{permissions.IAM_PATH}/" in r or f":instance-profile/{permissions.IAM_PATH}/" in r for r in resources
            )
    # ... and every role and instance profile the program makes lives there.
    for seen in touched.values():
        for registration in seen["run"].registrations:
            if registration.type in ("aws:iam/role:Role", "aws:iam/instanceProfile:InstanceProfile"):
                assert registration.inputs.get("path") == f"/{permissions.IAM_PATH}/", registration.name
    linked = next(s for s in policy["Statement"] if s["Sid"] == "ServiceLinkedRoles")
    assert linked["Action"] == ["iam:CreateServiceLinkedRole"] and linked["Condition"]["StringEquals"]["iam:AWSServiceName"]


@pytest.mark.parametrize("role", ["deploy", "preview"])
def test_the_committed_policy_files_are_the_generators_output(role):
    printed = subprocess.run(
        [sys.executable, "-m", "components.aws.deploy_permissions", role], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    committed = (ROOT / "docs" / "iam" / f"{role}-policy.json").read_text()
    assert json.loads(printed) == json.loads(committed), (
        f"docs/iam/{role}-policy.json is stale: "
        f"venv/bin/python -m components.aws.deploy_permissions {role} > docs/iam/{role}-policy.json"
    )


def test_the_deploy_policy_allows_what_the_preflight_asks(monkeypatch):
    """components/preflight.py asks AWS through the CLI; each call's operation (the CLI's command is
    botocore's operation name, xform_name'd) must be allowed, sts:GetCallerIdentity excepted (it
    needs no permission)."""
    from botocore import xform_name

    from components import preflight

    asked = []

    def answering_cli(*args, region=None):
        asked.append((args[0], args[1]))
        return {
            "sts": {"Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/deployer"},
            "route53": {"HostedZones": []},
            "kms": {"KeyMetadata": {"KeyState": "Enabled", "Arn": "arn:aws:kms:eu-central-1:123456789012:key/k"}},
        }[args[0]]

    monkeypatch.setattr(preflight, "aws_cli", answering_cli)
    monkeypatch.setattr(preflight.shutil, "which", lambda name: f"/stand-in/{name}")
    raw = {"zoneName": "platform.corp-cache.io"}
    preflight.aws_findings(raw, "eu-central-1", "awskms://alias/harbor-cache-trial?region=eu-central-1")
    assert {service for service, _ in asked} == {"sts", "route53", "kms"}
    key = "arn:aws:kms:eu-central-1:123456789012:key/k"
    policy = permissions.deploy_policy(secrets_key_arn=key)
    allowed = all_policy_actions(policy)
    session = botocore.session.get_session()
    for service, command in asked:
        model = session.get_service_model(service)
        operation = next(name for name in model.operation_names if xform_name(name, "-") == command)
        if (service, operation) == ("sts", "GetCallerIdentity"):
            continue
        assert f"{service}:{operation}" in allowed, f"the preflight's {service} {command} is not allowed"
    key_statement = next(s for s in policy["Statement"] if s["Sid"] == "StackSecretsKey")
    assert "kms:DescribeKey" in key_statement["Action"] and key_statement["Resource"] == key


def test_the_deploy_policy_allows_every_lookup_the_policy_pack_makes_at_up():
    """policy/aws_lookups.py calls AWS with the deploy's credentials: each call in its source (`_client("<service>")
    .<method>(`) is an operation of that service in botocore's model, listed in POLICY_PACK_ACTIONS and allowed by the
    deploy policy (S3's through AWS's table of required permissions); sts:GetCallerIdentity needs none."""
    import re

    source = (ROOT / "policy" / "aws_lookups.py").read_text()
    # A call, or a paginated one (`.get_paginator("<method>")`).
    found = re.findall(r'_client\("([a-z0-9]+)"\)\.([a-z_]+)\((?:"([a-z_]+)")?', source)
    calls = {(service, paginated or method) for service, method, paginated in found}
    assert {service for service, _ in calls} == {"ec2", "iam", "elbv2", "acm", "sns", "s3", "sts", "rds"}
    session = botocore.session.get_session()
    prefixes = {"elbv2": "elasticloadbalancing"}
    needed = set()
    for service, method in calls - {("sts", "get_caller_identity")}:  # needs no permission (as for the preflight)
        model = session.get_service_model(service)
        operation = next(name for name in model.operation_names if botocore.xform_name(name) == method)
        if service == "s3":
            needed.add(next(action for action, op in S3_ACTION_OPERATIONS.items() if op == operation))
        else:
            needed.add(f"{prefixes.get(service, service)}:{operation}")
    assert needed == set(permissions.POLICY_PACK_ACTIONS)
    assert needed <= all_policy_actions(permissions.deploy_policy())
