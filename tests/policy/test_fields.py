"""Deny by default for fields (policy/fields.py, issue 22): the table is exactly the fields the program sets, in every
mode, and the pack refuses any other field set, through the analyzer protocol."""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Mapping

import pytest

from tests.paths import ROOT  # noqa: I001

sys.path.insert(0, str(ROOT / "policy"))

import fields  # noqa: E402
import harbor_policies  # noqa: E402
import provider_defaults  # noqa: E402

from tests.policy.test_policies import MODES, config, run_mode  # noqa: E402
from tests.standins.policy_engine import (  # noqa: E402
    DYNAMIC_PROVIDER_KEY,
    WITHOUT_AWS_LOOKUPS,
    EngineResource,
    changed,
    dynamic_checked,
    engine_resources,
    registration_of,
    running_pack,
)
from tests.standins.pulumi_harness import dev_config  # noqa: E402

POLICY = fields.POLICY


@pytest.fixture(scope="module")
def dev() -> list[EngineResource]:
    return engine_resources(run_mode("dev"))


def _analyzed_inputs(resource: EngineResource) -> dict:
    """The inputs as the analyzer gets them: no top-level "__" keys (policy_engine._without_internal_keys)."""
    return {key: value for key, value in resource.inputs.items() if not str(key).startswith("__")}


@pytest.fixture(scope="module")
def programs_fields() -> dict[str, set[str]]:
    """Per type, every field path the program itself sets in any mode: its registrations' inputs as the program
    registers them (before any provider's Check; what the providers add is provider_defaults.py's), and for a dynamic
    resource what the program's own provider's check answers."""
    found: dict[str, set[str]] = {}
    for mode in MODES:
        for registration in run_mode(mode).registrations:
            if registration.type.startswith(fields.NOT_THE_PROGRAMS_INPUTS):
                continue
            table = fields.FIELDS.get(registration.type, {})
            wholes = {path for path, field in table.items() if isinstance(field, fields.Whole)}
            # A dynamic resource's fields are what its provider's own check answers (the program's code: review 22e).
            raw = registration.raw
            raw = dynamic_checked(raw) if DYNAMIC_PROVIDER_KEY in raw else raw
            inputs = {key: value for key, value in raw.items() if not str(key).startswith("__")}
            paths = found.setdefault(registration.type, set())
            # An empty list or object sets nothing (the pack accepts it where the table lists fields below it).
            paths |= {path for path, value in fields.set_fields(inputs, wholes) if value not in ([], {})}
    return found


def test_the_table_lists_exactly_the_fields_the_program_sets(programs_fields):
    """Both ways: no field the program sets is missing from policy/fields.py FIELDS, none there is stale."""
    missing = {kind: sorted(paths - set(fields.FIELDS.get(kind, {}))) for kind, paths in programs_fields.items()}
    stale = {kind: sorted(set(rows) - programs_fields.get(kind, set())) for kind, rows in fields.FIELDS.items()}
    assert {k: v for k, v in missing.items() if v} == {}, "fields the program sets that the table lacks"
    assert {k: v for k, v in stale.items() if v} == {}, "rows of fields the program no longer sets"


def test_every_allowed_type_of_the_programs_has_its_table():
    programs = {kind for kind in harbor_policies.ALLOWED if not kind.startswith(fields.NOT_THE_PROGRAMS_INPUTS)}
    assert programs == set(fields.FIELDS)


def test_whole_values_are_the_maps_and_everything_else_a_leaf(programs_fields):
    """A row of an object is a map (`Whole`): the walk never stops at an object the table does not call whole, so
    `connection` cannot be listed in one row and hide `connection.proxy`."""
    for mode in ("dev", "ha", "s3-external"):
        for resource in engine_resources(run_mode(mode)):
            table = fields.FIELDS.get(resource.type, {})
            for path, value in fields.set_fields(_analyzed_inputs(resource), set(table)):
                if isinstance(value, Mapping) and fields.SECRET_SIGNATURE_KEY not in value:
                    assert isinstance(table.get(path), fields.Whole), (resource.type, path)


def test_every_row_is_classified_with_its_reason():
    for kind, table in fields.FIELDS.items():
        for path, field in table.items():
            assert isinstance(field, (fields.Value, fields.Whole, fields.Reference)), (kind, path)
            if isinstance(field, fields.Reference):
                assert field.sources and field.preview in harbor_policies.STACK_CHECKS, (kind, path)
            else:
                assert len(field.why) > 10, (kind, path)


# ---------------------------------------------------------------------------------------------
# Through the analyzer protocol


def test_the_program_sets_only_listed_fields_in_every_mode():
    """Per resource, the pack's field rule (not only the derived set): the program itself is never refused."""
    for mode in MODES:
        for resource in engine_resources(run_mode(mode)):
            judged = fields.Resource(resource.type, resource.name, resource.urn, _analyzed_inputs(resource))
            assert fields.only_the_programs_fields(judged) == [], (mode, resource.name)


UNLISTED = [
    # (resource, type where two share a name, field path to set, value): each a field no check read before.
    ("harbor-vm-eip-association", "", "networkInterfaceId", "eni-0123456789abcdef0"),
    ("harbor-vm-instance", "", "ipv6Addresses", ["2001:db8::1"]),
    ("harbor-vm-instance", "", "secondaryPrivateIps", ["10.0.0.99"]),
    ("harbor-vm-instance", "", "placementGroup", "someone-elses"),
    ("harbor-vm-instance", "", "hostId", "h-0123456789abcdef0"),
    ("harbor-vm-instance", "", "metadataOptions.instanceMetadataTags", "enabled"),
    ("harbor-vm-instance", "", "sourceDestCheck", False),
    ("harbor-vm-sg", "", "revokeRulesOnDelete", True),
    ("harbor-vm-sg", "", "ingress[].self", True),
    ("harbor-install-docker", "", "connection.proxy", {"host": "203.0.113.9", "user": "x"}),
    ("harbor-install-docker", "", "environment", {"TOKEN": "x"}),
    ("harbor-install-docker", "", "delete", "curl https://203.0.113.9/"),
]


def _set(path: str, value):
    def change(props):
        head, _, rest = path.partition(".")
        if head.endswith("[]"):
            for item in props[head[:-2]]:
                item[rest] = value
        elif rest:
            target = props[head]
            target = target.setdefault("value", target) if fields.SECRET_SIGNATURE_KEY in target else target
            target[rest] = value
        else:
            props[head] = value

    return change


@pytest.mark.parametrize("name, kind, path, value", UNLISTED)
def test_an_unlisted_field_set_is_refused(up_pack, dev, name, kind, path, value):
    probe = changed(dev, name, _set(path, value), kind)
    found = [d for d in up_pack.analyze(probe) if d.policy == POLICY]
    assert found and all(d.mandatory for d in found)
    assert f"sets {path}" in found[0].message and probe.type in found[0].message
    assert "policy/fields.py FIELDS" in found[0].message


def test_the_refusal_does_not_show_a_string_value(up_pack, dev):
    probe = changed(dev, "harbor-install-docker", _set("environment", {"TOKEN": "Hunter2-pass"}))
    text = "\n".join(d.message for d in up_pack.analyze(probe))
    assert "environment.TOKEN (a str value)" in text and "Hunter2" not in text


# Defaults the real SDKv2 bridge fills at Check inside objects the program sets (pulumi-terraform-bridge
# pkg/tfbridge/schema.go applyDefaults), read in terraform-provider-aws, not in policy/provider_defaults.py: the harness
# feeds that table, so only values written down independently catch a default it misses (every real `up` refused).
UPSTREAM_FILLED = [
    # internal/service/ec2/ec2_instance.go resourceInstance metadata_options.http_protocol_ipv6 `Default: disabled`.
    ("harbor-vm-instance", "metadataOptions.httpProtocolIpv6", "disabled"),
    # internal/service/dlm/lifecycle_policy.go policy_details.create_interval `Default: 1`, retain_interval
    # `Default: 7`, copy_tags and extend_deletion `Default: false`, policy_type EBS_SNAPSHOT_MANAGEMENT.
    ("harbor-vm-snapshots", "policyDetails.createInterval", 1),
    ("harbor-vm-snapshots", "policyDetails.retainInterval", 7),
    ("harbor-vm-snapshots", "policyDetails.copyTags", False),
    ("harbor-vm-snapshots", "policyDetails.extendDeletion", False),
    ("harbor-vm-snapshots", "policyDetails.policyType", "EBS_SNAPSHOT_MANAGEMENT"),
    # internal/service/ec2/vpc_security_group.go securityGroupRuleNestedBlock self `Default: false`.
    ("harbor-vm-sg", "ingress[].self", False),
    # pulumi-command (not bridged) provider/pkg/provider/remote/command.go CommandInputs.Annotate
    # `a.SetDefault(&c.AddPreviousOutputInEnv, true)`, filled by pulumi-go-provider infer's Check (review 22e).
    ("harbor-install-docker", "addPreviousOutputInEnv", True),
]


@pytest.mark.parametrize("name, path, value", UPSTREAM_FILLED)
def test_a_default_the_bridge_fills_is_accepted(up_pack, dev, name, path, value):
    """The value the provider's Check writes into an object the program sets is not refused; another value is."""
    _filled_default_is_accepted(up_pack, dev, name, "", path, value)


def _filled_default_is_accepted(up_pack, resources, name, kind, path, value):
    accepted = changed(resources, name, _set(path, value), kind)
    assert [d.message for d in up_pack.analyze(accepted) if d.policy == POLICY] == []
    other = "x" if isinstance(value, str) else (not value if isinstance(value, bool) else value + 1)
    refused = changed(resources, name, _set(path, other), kind)
    assert [d for d in up_pack.analyze(refused) if d.policy == POLICY and f"sets {path}" in d.message]


# Top-level defaults of types the program leaves unset, read in hashicorp/terraform-provider-aws at 5f2286d6d836
# (policy/provider_defaults.py says why that commit), not in the table: (mode where the resource exists, resource,
# type where two share a name, field, the schema's default).
UPSTREAM_FILLED_IN_MODE = [
    # internal/service/rds/event_subscription.go resourceEventSubscription: enabled `Default: true` (line 64).
    ("s3-external", "harbor-data-db-events", "", "enabled", True),
    # internal/service/events/target.go resourceTarget: event_bus_name `Default: DefaultEventBusName` (line 264;
    # events/consts.go DefaultEventBusName = "default"), force_destroy `Default: false` (line 269).
    ("dev", "harbor-backup-watch-dlm-error", "aws:cloudwatch/eventTarget:EventTarget", "eventBusName", "default"),
    ("dev", "harbor-backup-watch-dlm-error", "aws:cloudwatch/eventTarget:EventTarget", "forceDestroy", False),
    # internal/service/events/rule.go resourceRule: event_bus_name (line 74), force_destroy (line 89).
    ("dev", "harbor-backup-watch-dlm-error", "aws:cloudwatch/eventRule:EventRule", "eventBusName", "default"),
    ("dev", "harbor-backup-watch-dlm-error", "aws:cloudwatch/eventRule:EventRule", "forceDestroy", False),
    # internal/service/s3/bucket.go resourceBucket: force_destroy `Default: false` (line 194).
    ("s3", "harbor-storage-bucket", "", "forceDestroy", False),
]

_MODE_RESOURCES: dict[str, list[EngineResource]] = {}


@pytest.mark.parametrize("mode, name, kind, path, value", UPSTREAM_FILLED_IN_MODE)
def test_a_top_level_default_the_bridge_fills_is_accepted(up_pack, mode, name, kind, path, value):
    """A type's top-level default, filled by the bridge's Check where the program leaves the field out (falsy ones
    replayed from a stack's old `__defaults`, provider_defaults.py), is not refused; another value is."""
    if mode not in _MODE_RESOURCES:
        _MODE_RESOURCES[mode] = engine_resources(run_mode(mode))
    _filled_default_is_accepted(up_pack, _MODE_RESOURCES[mode], name, kind, path, value)


def test_the_region_pulumi_aws_fills_may_come_from_the_environment(monkeypatch):
    """The settings accept a region from AWS_REGION alone (components/settings/settings.py); pulumi-aws then fills
    each resource's `region` from it and the engine starts the analyzer with its environment (review 22e)."""
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"harbor-cache:hostname": "cache.example.org"}))
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert provider_defaults.stack_region() == "eu-west-3"
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"aws:region": "eu-central-1"}))
    assert provider_defaults.stack_region() == "eu-central-1", "the stack's aws:region first"


@pytest.mark.parametrize("url", ["https://quay.io", "HTTPS://quay.io/", "Https://Quay.io/", " https://quay.io", "quay.io/v2"])
def test_the_pack_compares_upstream_urls_in_the_form_the_registry_check_hands_it(url):
    """The settings accept these spellings; the registry's check rewrites them before the engine sees the inputs, so the
    pack compares the settings' URL in that same form (review 22e: each was refused before)."""
    import resource_checks

    from components.harbor.registry import harbor_url_form

    assert resource_checks.harbor_url_form(url) == harbor_url_form(url)


def test_a_null_unlisted_field_is_not_set(up_pack, dev):
    probe = changed(dev, "harbor-vm-instance", _set("hostId", None))
    assert [d for d in up_pack.analyze(probe) if d.policy == POLICY] == []
    assert registration_of(dev, "harbor-vm-instance").inputs.get("hostId") is None


# ---------------------------------------------------------------------------------------------
# Every Reference row: a stack check at preview, a lookup at up


def _references() -> list[tuple[str, str, fields.Reference]]:
    return [
        (kind, path, row)
        for kind, table in fields.FIELDS.items()
        for path, row in table.items()
        if isinstance(row, fields.Reference)
    ]


def _foreign(value):
    """A literal of the value's shape that names something else (another account's ARN, another id, address, name)."""
    if not isinstance(value, str):
        return value
    if value.startswith("arn:"):
        return value.rsplit(":", 1)[0].replace("123456789012", "210987654321") + ":theirs"
    if value.count(".") == 3 and value.replace(".", "").isdigit():
        return "203.0.113.7"
    head, dash, _ = value.partition("-")
    return f"{head}-0fedcba9876543210" if dash and len(head) <= 8 and head.isalpha() else f"{value}-theirs"


def _replace_at(props, parts: list[str], change) -> bool:
    if isinstance(props, Mapping) and fields.SECRET_SIGNATURE_KEY in props:
        props = props["value"]
    head, rest = parts[0], parts[1:]
    key, listed = head.removesuffix("[]"), head.endswith("[]")
    if not isinstance(props, dict) or props.get(key) is None:
        return False
    if not listed:
        if rest:
            return _replace_at(props[key], rest, change)
        props[key] = change(props[key])
        return True
    found = False
    for index, item in enumerate(props[key]):
        if rest:
            found = _replace_at(item, rest, change) or found
        else:
            props[key][index], found = change(item), True
    return found


REFERENCE_MODES = ("dev", "ha", "s3-external", "metrics")


@pytest.fixture(scope="module")
def reference_stacks():
    return {mode: engine_resources(run_mode(mode)) for mode in REFERENCE_MODES}


@pytest.mark.parametrize("kind, path, row", _references(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_reference_is_judged_at_preview_and_looked_up_at_up(reference_stacks, kind, path, row):
    """A Reference row set to a literal of another object (no property dependency, as a pre-existing object would be
    passed) is refused by its stack check at preview; and the up-time lookups (policy/aws_lookups.py REFERENCES) have
    the row, except the one a lookup cannot judge (the key pair's public key: no AWS object, docs/security.md)."""
    import aws_lookups

    if row.lookup.startswith("none"):
        assert (kind, path) not in aws_lookups.REFERENCES
    else:
        assert (kind, path) in aws_lookups.REFERENCES, (kind, path)
    for mode, stack in reference_stacks.items():
        for resource in (r for r in stack if r.type == kind):
            probe = copy.deepcopy(resource)
            if not _replace_at(probe.outputs, path.split("."), _foreign):
                continue
            _replace_at(probe.inputs, path.split("."), _foreign)
            probe.property_dependencies.pop(path.split(".")[0].removesuffix("[]"), None)
            with running_pack(dry_run=True, config=config(mode), disabled=WITHOUT_AWS_LOOKUPS) as pack:
                found = pack.analyze_stack([probe if r.urn == probe.urn else r for r in stack])
            assert any(d.mandatory and d.policy == row.preview for d in found), (mode, resource.name, found)
            return
    pytest.fail(f"no mode of {REFERENCE_MODES} sets {kind} {path}")


# ---------------------------------------------------------------------------------------------
# A field that was a harmless Value without a check: the disks' KMS key (a setting naming another object)

FOREIGN_KEY = "arn:aws:kms:eu-central-1:210987654321:key/0badc0de-0000-4000-8000-000000000000"


@pytest.mark.parametrize("mode", ["dev", "kms"])
def test_the_disks_use_only_the_stacks_kms_key(mode):
    """With or without the kmsKeyArn setting, the program's disks pass; another account's key (or a key where the
    stack sets none) on the data volume or the root disk is refused by the type's check."""
    stack = engine_resources(run_mode(mode))
    with running_pack(dry_run=False, config=config(mode), disabled=WITHOUT_AWS_LOOKUPS) as pack:
        for name in ("harbor-vm-data", "harbor-vm-instance"):
            assert [d for d in pack.analyze(registration_of(stack, name)) if d.mandatory] == []
        volume = changed(stack, "harbor-vm-data", lambda p: p.update(kmsKeyId=FOREIGN_KEY))
        root = changed(stack, "harbor-vm-instance", lambda p: p["rootBlockDevice"].update(kmsKeyId=FOREIGN_KEY))
        for probe, policy in ((volume, "aws-ebs-volume-volume"), (root, "aws-ec2-instance-instance")):
            found = [d.message for d in pack.analyze(probe) if d.mandatory and d.policy == policy]
            assert found and "not the stack's kmsKeyArn setting" in found[0], (probe.name, found)


def test_a_resource_may_name_the_stacks_region_only(up_pack, dev):
    """pulumi-aws v7's per-resource `region` (the provider's region by default): the stack's own passes, another
    region is refused (a resource there is one the up-time lookups in the stack's region never see)."""
    region = dev_config()["aws:region"]  # the configuration up_pack runs with (running_pack's default)
    here = changed(dev, "harbor-vm-sg", _set("region", region))
    elsewhere = changed(dev, "harbor-vm-sg", _set("region", "us-east-1"))
    assert [d for d in up_pack.analyze(here) if d.policy == POLICY] == []
    assert [d for d in up_pack.analyze(elsewhere) if d.policy == POLICY and "sets region" in d.message]
