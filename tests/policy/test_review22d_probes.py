"""Review 22d probes (issue 22): the 22c fixes and the two group policies, run through the analyzer protocol.

Each test asserts the FINDING on today's main: a bypass test asserts the probe passes every mandatory policy; a
false-refusal test asserts the pack refuses what the real engine would send for the program's own resource. So a
green test = finding confirmed; once the pack is fixed, flip the assertion (the probe belongs in the bypass corpus).
Run: nice -n 10 venv/bin/python -m pytest -q -p no:cacheprovider tests/policy/test_review22d_probes.py -s
"""

from __future__ import annotations

import pytest

from tests.policy.test_policy_bypass import AT_UP, in_aws, stack_config, with_probe
from tests.standins.policy_engine import (
    changed,
    engine_resources,
    registration_of,
    run_program,
    running_pack,
)

FOREIGN_NET = "198.51.100.0/24"  # not in any stack's allowedCidrs/sshAllowedCidrs


@pytest.fixture(scope="module")
def stacks():
    return {label: engine_resources(run_program(stack_config(label))) for label in ("dev", "s3", "ha")}


def mandatory(found):
    return [(d.policy, d.message[-300:]) for d in found if d.mandatory]


def judged(stack, label, probes=(), aws=None):
    """(preview, up Analyze of the probes) mandatory diagnostics of the stack with `probes` in it."""
    whole = with_probe(stack, list(probes))
    with running_pack(dry_run=True, config=stack_config(label), disabled=() if aws else (AT_UP,)) as pack:
        pre = mandatory(pack.analyze_all(whole))
    up = []
    if aws is not None:
        with running_pack(dry_run=False, env=aws[1], config=stack_config(label)) as pack:
            up = [m for p in probes for m in mandatory(pack.analyze(p))]
    return pre, up


# ------------------------------------------------------------------------------------------------------------------
# S1: what the VM's disks and the database are made FROM is read by no check and no lookup. A volume restored from
# another account's public (or shared) snapshot holds Harbor's database (its admin and robot accounts, password hashes
# the snapshot's owner chose), Traefik's ACME account and certificate, and the cached blobs the cache then serves as
# upstream content. ebs_volume reads snapshotId only to deny the node-scratch exemption; the protected data volume of
# node 0 may carry any snapshotId (dataVolumeSnapshotId is an operator setting, never compared with the account).

FOREIGN_SNAPSHOT = "snap-0f0e0d0c0b0a09081"  # a public snapshot of another account


def test_s1_data_volume_restored_from_another_accounts_snapshot(stacks, aws):
    stack = in_aws(stacks, "dev", aws)
    probe = changed(stack, "harbor-vm-data", lambda p: p.update(snapshotId=FOREIGN_SNAPSHOT))
    pre, up = judged(stack, "dev", [probe], aws)
    print("S1 preview:", pre, "\nS1 up:", up)
    assert pre == [] and up == []


def test_s1b_instance_boots_with_a_block_device_from_another_accounts_snapshot(stacks, aws):
    """The same on the instance (ebsBlockDevices[].snapshotId, encrypted as the check wants): a disk a second copy of
    Canonical's root file system label/PARTUUID can compete with the real root at boot, or any content at a device."""
    stack = in_aws(stacks, "dev", aws)

    def disk(p):
        p["ebsBlockDevices"] = [{"deviceName": "/dev/sdg", "snapshotId": FOREIGN_SNAPSHOT, "encrypted": True}]

    probe = changed(stack, "harbor-vm-instance", disk)
    pre, up = judged(stack, "dev", [probe], aws)
    print("S1b preview:", pre, "\nS1b up:", up)
    assert pre == [] and up == []


@pytest.mark.parametrize(
    "field, value",
    [
        ("snapshotIdentifier", "arn:aws:rds:eu-central-1:210987654321:snapshot:harbor-seed"),
        (
            "s3Import",
            {
                "bucketName": "seed-db",
                "ingestionRole": "arn:aws:iam::123456789012:role/x",
                "sourceEngine": "postgres",
                "sourceEngineVersion": "16.3",
            },
        ),
        ("replicateSourceDb", "arn:aws:rds:eu-west-1:210987654321:db:theirs"),
    ],
)
def test_s2_database_created_from_foreign_data(stacks, field, value):
    """Harbor's PostgreSQL restored from another account's shared snapshot (or S3 files, or a replica of another
    database): rds_instance reads four flags only."""
    stack = stacks["s3"]
    probe = changed(stack, "harbor-data-db", lambda p: p.update({field: value}))
    pre, _ = judged(stack, "s3", [probe])
    print("S2", field, "preview:", pre)
    assert pre == []


# ------------------------------------------------------------------------------------------------------------------
# FR1 (false refusal): the instance's `ami` the engine hands Analyze at every `up` is the one in the state, because the
# program sets ignore_changes=["ami"] (components/aws/vm.py) and the engine puts the old input back BEFORE Check and
# analyzeAll (pulumi pkg/resource/deploy/step_generator.go continueStepsFromImport: processIgnoreChanges(inputs,
# old.Inputs) ... analyzeAll(ctx, analyzers, new, inputs, goal)). Analyze runs for every registered resource, a `same`
# one included. Canonical deprecates release serials (still shown by id) but privatises or deletes images
# (documentation.ubuntu.com/aws ... ec2-image-retention-policy: "private images ... are invisible to the describe-images
# command ... functionally equivalent to deleted images"). Then DescribeImages(ImageIds=[the launch image]) answers
# nothing (InvalidAMIID.NotFound), canonical_ubuntu_image fails closed, and EVERY later `up` of the stack is refused
# ("resource ... is invalid"), although nothing about the instance changes and no new instance boots that image.


def test_fr1_existing_instance_refused_once_its_launch_image_is_gone(stacks, aws):
    from moto.ec2.models import ec2_backends

    from tests.standins.moto_stack import MOTO_ACCOUNT, PROGRAM_IMAGE, REGION

    stack = in_aws(stacks, "dev", aws)
    instance = registration_of(stack, "harbor-vm-instance")
    assert instance.inputs["ami"] == PROGRAM_IMAGE
    with running_pack(dry_run=False, env=aws[1], config=stack_config("dev")) as pack:
        before = mandatory(pack.analyze(instance))
    del ec2_backends[MOTO_ACCOUNT][REGION].amis[PROGRAM_IMAGE]  # Canonical privatised/deleted the serial
    with running_pack(dry_run=False, env=aws[1], config=stack_config("dev")) as pack:
        after = mandatory(pack.analyze(instance))
    print("FR1 before:", before, "\nFR1 after:", after)
    assert before == [] and after and all(policy == AT_UP for policy, _ in after)


# ------------------------------------------------------------------------------------------------------------------
# B1: the registry bucket's own inline settings (pulumi-aws 7.51 aws.s3.Bucket still takes the deprecated inline
# arguments: lifecycleRules, replicationConfiguration, versioning, serverSideEncryptionConfiguration, logging,
# objectLockConfiguration, accelerationStatus, requestPayer, region). s3_bucket reads acl, website, policy, grants,
# corsRules, forceDestroy only: an inline expiration deletes every blob the day after (the standalone
# BucketLifecycleConfiguration's check never sees it), an inline replication rule copies every object to another
# account's bucket (with a role S3 may assume).


@pytest.mark.parametrize(
    "field, value",
    [
        ("lifecycleRules", [{"enabled": True, "expirations": [{"days": 1}], "id": "gone"}]),
        (
            "replicationConfiguration",
            {
                "role": "arn:aws:iam::123456789012:role/existing-s3-replication",
                "rules": [{"status": "Enabled", "destination": {"bucket": "arn:aws:s3:::theirs", "account": "210987654321"}}],
            },
        ),
        (
            "serverSideEncryptionConfiguration",
            {
                "rule": {
                    "applyServerSideEncryptionByDefault": {
                        "sseAlgorithm": "aws:kms",
                        "kmsMasterKeyId": "arn:aws:kms:eu-central-1:210987654321:key/theirs",
                    }
                }
            },
        ),
    ],
)
def test_b1_registry_bucket_inline_settings(stacks, field, value):
    stack = stacks["s3"]
    probe = changed(stack, "harbor-storage-bucket", lambda p: p.update({field: value}))
    pre, _ = judged(stack, "s3", [probe])
    print("B1", field, "preview:", pre)
    assert pre == []


# ------------------------------------------------------------------------------------------------------------------
# B2: where the program's logs and notifications go, read by no check: the load balancer's access logs to another
# account's bucket (ELB delivers to any bucket whose policy lets the ELB log-delivery principal write: every request
# line, Harbor's /service/token?account=<user>&scope=... included, with client addresses), and the alarm topic's e-mail
# subscription to an address that is not alarmEmail (sns_topic_subscription reads only the protocol).


def test_b2_load_balancer_access_logs_to_another_accounts_bucket(stacks):
    stack = stacks["ha"]
    logs = {"bucket": "their-elb-logs", "enabled": True, "prefix": "x"}
    probe = changed(stack, "harbor-lb-alb", lambda p: p.update(accessLogs=logs, connectionLogs=logs))
    pre, _ = judged(stack, "ha", [probe])
    print("B2 access logs preview:", pre)
    assert pre == []


def test_b2b_alarm_mail_to_an_address_that_is_not_alarm_email(stacks):
    stack = engine_resources(run_program(stack_config("mail")))
    probe = changed(stack, "harbor-alarms-email", lambda p: p.update(endpoint="collector@attacker.example"))
    pre, _ = judged(stack, "mail", [probe])
    print("B2b subscription preview:", pre)
    assert pre == []


# ------------------------------------------------------------------------------------------------------------------
# H1-class for Harbor's objects: where Harbor itself sends secrets and whom it trusts as admin is read by no check,
# though the settings hold the wanted values (the pack already reads `upstreams` and could read `oidc`):
# - Registry `url` (Harbor sends the upstream credential, access_key/access_secret, to it on every ping and pull;
#   `insecure: true` skips its TLS check) - an upstream's token to a foreign host;
# - OidcAuth `oidc_endpoint` (Harbor sends the OIDC client secret there and trusts its ID tokens) with
#   `oidc_admin_group` (any group the foreign issuer puts in the token is Harbor admin) and `oidc_verify_cert: false`:
#   an admin identity for whoever runs that issuer.


def test_h1_registry_url_and_oidc_issuer_are_foreign(stacks):
    stack = stacks["dev"]
    registry = changed(
        stack,
        "harbor-config-registry-dockerhub",
        lambda p: p.update(url="https://registry.attacker.example", insecure=True),
    )
    oidc = changed(
        stack,
        "harbor-config-oidc",
        lambda p: p.update(oidc_endpoint="https://idp.attacker.example", oidc_verify_cert=False, oidc_admin_group="everyone"),
    )
    pre, _ = judged(stack, "dev", [registry, oidc])
    print("H1 preview:", pre)
    assert pre == []
