"""Every free-text AWS field the program sets, derived for odd stack names and checked against the
pattern and length AWS documents for it. The AWS provider applies these validators at preview, so a
value outside them fails `pulumi preview` before anything is created (DESIGN.md, "The VM and its
network": a DLM description with ':' or '.' does)."""

from __future__ import annotations

import re

import pytest

from components.settings.config_reader import SettingsError
from tests.standins.pulumi_harness import dev_config, run_program

# Pulumi's stack names: letters, digits, '-', '_', '.', at most 100 characters.
ODD_STACKS = ["dev", "prod.eu-central-1", "team_a.v2", "x" * 100, "1.2.3"]

# (pattern, min, max) per field, from the AWS API references:
# DLM CreateLifecyclePolicy Description: ^[0-9A-Za-z _-]+$, 1..500.
DLM_DESCRIPTION = (re.compile(r"^[0-9A-Za-z _-]+$"), 1, 500)
# EC2 CreateSecurityGroup GroupDescription and IpRange/Ipv6Range Description (VPC): up to 255 of
# a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=&;{}!$*
EC2_DESCRIPTION = (re.compile(r"^[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]*$"), 0, 255)
# IAM CreateRole Description: [\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*, up to 1000; Path:
# (\u002F)|(\u002F[\u0021-\u007E]+\u002F), 1..512.
IAM_DESCRIPTION = (re.compile(r"^[\t\n\r\x20-\x7e\xa1-\xff]*$"), 0, 1000)
IAM_PATH = (re.compile(r"^(/|/[\x21-\x7e]+/)$"), 1, 512)
# CloudWatch PutMetricAlarm AlarmDescription: 0..1024.
ALARM_DESCRIPTION = (re.compile(r"^.*$", re.S), 0, 1024)
# Tags (IAM's TagKey/TagValue, the strictest of the services tagged here): key 1..128, value 0..256.
TAG_TEXT = re.compile(r"^[\w\s.:/=+\-@]*$")

FIELDS = {
    "aws:dlm/lifecyclePolicy:LifecyclePolicy": {"description": DLM_DESCRIPTION},
    "aws:ec2/securityGroup:SecurityGroup": {"description": EC2_DESCRIPTION},
    "aws:iam/role:Role": {"description": IAM_DESCRIPTION, "path": IAM_PATH},
    "aws:iam/instanceProfile:InstanceProfile": {"path": IAM_PATH},
    "aws:cloudwatch/metricAlarm:MetricAlarm": {"alarmDescription": ALARM_DESCRIPTION},
}


def check(value: str, rule: tuple[re.Pattern, int, int], what: str) -> None:
    pattern, low, high = rule
    assert low <= len(value) <= high, f"{what}: {len(value)} characters, AWS accepts {low}..{high}: {value!r}"
    assert pattern.match(value), f"{what}: {value!r} does not match {pattern.pattern}"


@pytest.mark.parametrize("stack", ODD_STACKS)
def test_every_free_text_field_fits_what_aws_accepts(stack):
    run = run_program(dev_config(), stack=stack)
    seen = set()
    for registration in run.registrations:
        for field, rule in FIELDS.get(registration.type, {}).items():
            if field in registration.inputs:
                check(registration.inputs[field], rule, f"{registration.name}.{field}")
                seen.add((registration.type, field))
        if registration.type == "aws:ec2/securityGroup:SecurityGroup":
            for rule in [*registration.inputs["ingress"], *registration.inputs["egress"]]:
                check(rule.get("description", ""), EC2_DESCRIPTION, f"{registration.name} rule description")
        for key, value in (registration.inputs.get("tags") or {}).items():
            assert 1 <= len(key) <= 128 and len(value) <= 256, (registration.name, key, value)
            assert TAG_TEXT.match(key) and TAG_TEXT.match(value), (registration.name, key, value)
    # Every field above was set by the program: a field renamed away would not pass unnoticed.
    assert {(kind, field) for kind, fields in FIELDS.items() for field in fields} <= seen


def test_the_dlm_description_names_the_stack_in_characters_dlm_accepts():
    policy = run_program(dev_config(), stack="prod.eu-central-1").one("aws:dlm/lifecyclePolicy:LifecyclePolicy")
    assert policy.inputs["description"] == "harbor-cache prod-eu-central-1 daily data volume snapshots"


@pytest.mark.parametrize("value", ["cost,center", "a!b", "line\nbreak", "tab\there"])
def test_tag_values_iam_would_refuse_are_refused_before_anything_is_created(value):
    captured = {}
    with pytest.raises(SettingsError, match="tags.team"):
        run_program({**dev_config(), "harbor-cache:tags": {"team": value}}, recorder=captured)
    assert captured["registrations"] == []


# aws_db_instance final_snapshot_identifier, as the AWS provider validates it at preview
# (terraform-provider-aws internal/service/rds/instance.go): a letter first, only letters, digits and
# hyphens, no "--", no trailing "-"; at most 255 (RDS API DBSnapshotIdentifier).
RDS_SNAPSHOT_IDENTIFIER = (re.compile(r"^[A-Za-z](?!.*--)[0-9A-Za-z-]*(?<!-)$"), 1, 255)
STORES = {"harbor-cache:externalServices": True}


@pytest.mark.parametrize("stack", [*ODD_STACKS, "a_-_b", "-lead.", "ends_"])
def test_the_databases_final_snapshot_identifier_fits_what_rds_accepts(stack):
    database = run_program({**dev_config(), **STORES}, stack=stack).one("aws:rds/instance:Instance")
    check(database.inputs["finalSnapshotIdentifier"], RDS_SNAPSHOT_IDENTIFIER, f"{stack}: finalSnapshotIdentifier")


def test_the_final_snapshot_identifier_is_drawn_for_each_database_instance():
    run = run_program({**dev_config(), **STORES}, stack="prod.eu-central-1")
    database = run.one("aws:rds/instance:Instance")
    suffix = run.named("harbor-data-db-final-snapshot-suffix")
    assert suffix.parent == database.parent and suffix.name.startswith(database.name)
    assert suffix.urn in database.dependencies
    identifier = database.inputs["finalSnapshotIdentifier"]
    assert identifier.startswith("harbor-cache-prod-eu-central-1-final-")
    # The suffix is the RandomId's hex, 8 digits: another instance of the database draws another.
    assert re.fullmatch(r"harbor-cache-prod-eu-central-1-final-[0-9a-f]{8}", identifier), identifier
