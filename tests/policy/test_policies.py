"""The policy pack, asked as the engine asks it (tests/standins/policy_engine.py: the pack's own entry point
over the analyzer's gRPC protocol): the program passes in every mode, at `up` and at a preview of
a fresh stack; the pack knows exactly the types the program creates; each rule refuses what it
must and says what to change. The bypass corpus of the reviews is tests/policy/test_policy_bypass.py."""

from __future__ import annotations

import copy
import ipaddress
import json
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.paths import ROOT  # noqa: I001

sys.path.insert(0, str(ROOT / "policy"))

import harbor_policies  # noqa: E402
import reading  # noqa: E402
import resource_checks  # noqa: E402
from pulumi.runtime import rpc  # noqa: E402

from tests.standins.policy_engine import (  # noqa: E402
    WITHOUT_AWS_LOOKUPS,
    Analyzer,
    EngineResource,
    changed,
    engine_resources,
    refusals,
    registration_of,
    run_program,
    running_pack,
)
from tests.standins.pulumi_harness import dev_config  # noqa: E402
from tests.standins.registrations import CONFIGS as RECORDED_CONFIGS  # noqa: E402

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's unknown string (plugin/rpc.go UnknownStringValue)
PRIVATE_UPSTREAMS = [
    {"name": "dockerhub", "type": "docker-hub", "url": "https://hub.docker.com", "registryHost": "docker.io", "public": False},
    {"name": "ghcr", "type": "github-ghcr", "url": "https://ghcr.io"},
]
# Every mode of the program: what each registers is what the pack must know.
MODES = {
    "dev": {},
    "s3": {"storage": "s3"},
    "s3-external": {"storage": "s3", "externalServices": True},
    "ha": {"replicas": 3, "databaseMultiAz": True},
    "public": {"allowPublicAccess": True, "allowedCidrs": ["0.0.0.0/0"]},
    "ha-public": {"replicas": 2, "allowPublicAccess": True, "allowedCidrs": ["0.0.0.0/0", "::/0"]},
    "private-upstreams": {"upstreams": PRIVATE_UPSTREAMS},
    "metrics": {"metricsAllowedCidrs": ["10.0.0.0/8"], "alarmEmail": "ops@cache-fixture.net"},
    # The second review's (issue 22): settings that change what the program registers.
    "kms": {"kmsKeyArn": "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
    "snapshot": {"dataVolumeSnapshotId": "snap-0123456789abcdef0"},
    "tunnel": {"harborApiUrl": "http://127.0.0.1:18080"},
    "staging": {"acmeStaging": True},
    "ha-s3-redirect": {"replicas": 2, "storage": "s3", "storageRedirect": True},
    # The recorded registrations' "placed" stack: a fixed subnet, metrics and alarm e-mail.
    "placed": RECORDED_CONFIGS["placed"],
    # A private upstream with the credential Harbor pulls it with: the registry's access_key/access_secret are set
    # (components/harbor/config.py), as secrets (the settings refuse them plain: components/settings/readers.py).
    "credentials": {
        "upstreams": PRIVATE_UPSTREAMS,
        "upstreamCredentials": {"dockerhub": {"username": "cache-bot", "password": "hub-Token-1"}},
    },
}
# The keys each mode sets as secrets (`pulumi config set --secret`): the engine hands the program these wrapped.
MODE_SECRETS = {"credentials": ("harbor-cache:upstreamCredentials",)}


def config(mode: str) -> dict:
    return {**dev_config(), **{f"harbor-cache:{key}": value for key, value in MODES[mode].items()}}


def run_mode(mode: str, **options):
    """The program run with the mode's configuration, its secret keys given as secrets."""
    return run_program(config(mode), secret_keys=MODE_SECRETS.get(mode, ()), **options)


@pytest.fixture(scope="module")
def dev():
    return engine_resources(run_mode("dev"))


@pytest.fixture(scope="module")
def ha():
    return engine_resources(run_mode("ha"))


@pytest.fixture(scope="module")
def s3():
    return engine_resources(run_mode("s3-external"))


def messages(pack: Analyzer, resource: EngineResource) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for diagnostic in pack.analyze(resource):
        assert diagnostic.mandatory, diagnostic
        found.setdefault(diagnostic.policy, []).append(diagnostic.message)
    return found


def text(pack: Analyzer, resource: EngineResource) -> str:
    messages(pack, resource)  # every one mandatory
    return refusals(pack, resource)


def with_policy(change):
    def apply(props):
        policy = json.loads(props["policy"])
        change(policy["Statement"])
        props["policy"] = json.dumps(policy)

    return apply


# ---------------------------------------------------------------------------------------------
# The program as it is


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_mode_passes_at_up_and_at_a_fresh_preview(mode):
    """At `up` every input is known; at the preview of a new stack the values that come from resources
    created in the same update are unknown, and the pack still lets the program through."""
    resources = engine_resources(run_mode(mode))
    fresh = engine_resources(run_mode(mode, fresh_preview=True))
    assert any(reading.is_unknown(value) for r in fresh for value in r.inputs.values()), "the fresh preview has unknowns"
    # The engine hands the pack the stack's own configuration, which the load balancer's group (policy/stack_checks.py
    # load_balancer_admits_allowed_cidrs_and_its_nodes) and the VM's group (policy/group_checks.py
    # vm_group_admits_exactly_the_settings) are judged against.
    for dry_run, analyzed in ((False, resources), (True, fresh)):
        with running_pack(dry_run=dry_run, config=config(mode), disabled=WITHOUT_AWS_LOOKUPS) as pack:
            assert pack.analyze_all(analyzed) == []


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_mode_passes_at_up_with_its_objects_in_aws(aws, mode):
    """With the AWS lookups on (policy/aws_lookups.py): the program's objects made in moto with the tags the program
    registers and moto's ids in the stack (tests/standins/moto_stack.py), every reference of every mode is this
    stack's own, so the program passes every policy at up."""
    from tests.standins.moto_stack import in_aws

    resources = in_aws(engine_resources(run_mode(mode)), aws[0])
    with running_pack(dry_run=False, config=config(mode), env=aws[1]) as pack:
        assert pack.analyze_all(resources) == []


def test_the_users_own_aws_default_tags_pass(up_pack, preview_pack):
    """aws:defaultTags without the program's keys: pulumi-aws merges them into every resource (the harness models
    its Check, tests/standins/policy_engine.py with_aws_default_tags) and the pack lets the program through."""
    config = {**dev_config(), "aws:defaultTags": {"tags": {"team": "platform", "cost-center": "42"}}}
    resources = engine_resources(run_program(config), config=config)
    assert any((r.inputs.get("tagsAll") or {}).get("team") == "platform" for r in resources)
    assert up_pack.analyze_all(resources) == []
    fresh = engine_resources(run_program(config, fresh_preview=True), config=config)
    assert preview_pack.analyze_all(fresh) == []


def test_a_credentialed_upstream_passes_and_its_credential_goes_only_to_its_url():
    """With upstreamCredentials (secret) the program's registry carries access_key/access_secret, which reach the pack
    as secrets (the engine marshals them so, plugin/rpc.go MarshalPropertyValue KeepSecrets); the pack passes it, and
    refuses it where its url is not the upstream's (Harbor sends the credential there on every ping and pull), without
    showing the credential in the refusal."""
    config_ = config("credentials")
    stack = engine_resources(run_mode("credentials"))
    registry = registration_of(stack, "harbor-config-registry-dockerhub")
    assert registry.inputs["access_key"][rpc._special_sig_key] == rpc._special_secret_sig
    with running_pack(dry_run=False, config=config_, disabled=WITHOUT_AWS_LOOKUPS) as pack:
        assert pack.analyze(registry) == []
        elsewhere = changed(stack, registry.name, lambda p: p.update(url="https://registry.attacker.example"))
        refused = refusals(pack, elsewhere)
    assert "registry.attacker.example" in refused
    assert "hub-Token-1" not in refused and "cache-bot" not in refused


def test_the_pack_knows_exactly_the_types_the_program_creates():
    """ALLOWED is the program's types in every mode plus the engine's own (the stack, the default
    providers): a type the program stops creating leaves the table, a new one needs its check."""
    made = {r.type for mode in MODES for r in engine_resources(run_mode(mode))}
    assert made == set(harbor_policies.ALLOWED)
    assert not set(harbor_policies.REFUSED_WITH_REASON) & set(harbor_policies.ALLOWED)


def test_the_pack_serves_one_policy_per_checked_type_and_the_stack_checks(up_pack):
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import analyzer_pb2

    info = up_pack.stub.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "harbor-cache"
    names = {p.name for p in info.policies}
    checked = [kind for kind, check in harbor_policies.ALLOWED.items() if check is not harbor_policies.nothing_to_check]
    across_types = (
        "only-the-programs-resource-types",
        "only-the-programs-fields",
        "components-are-the-programs",
        "program-tags-come-from-the-program",
    )
    lookups = ("references-are-the-stacks-own-at-up", "the-stack-tag-marks-the-programs-own")  # policy/aws_lookups.py
    assert len(names) == len(info.policies) == len(across_types) + len(lookups) + len(checked) + len(harbor_policies.STACK_CHECKS)
    assert {*across_types, *lookups, "aws-ec2-instance-instance", *harbor_policies.STACK_CHECKS} <= names
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}


def test_pack_entry_point_only_starts_the_server():
    source = (Path(harbor_policies.__file__).parent / "__main__.py").read_text()
    assert "PolicyPack(" in source and "ResourceValidationPolicy" not in source


def test_a_type_outside_the_table_is_refused(up_pack, dev):
    probe = EngineResource(
        "aws:s3/bucketAcl:BucketAcl", "acl", dev[0].urn.replace("pulumi:pulumi:Stack", "aws:s3/bucketAcl:BucketAcl"), {}, {}
    )
    found = messages(up_pack, probe)
    assert (
        "not a type harbor-cache creates (the program does not create this type)" in found["only-the-programs-resource-types"][0]
    )


# ---------------------------------------------------------------------------------------------
# The instance


def test_imdsv1_fails(up_pack, dev):
    instance = changed(dev, "harbor-vm-instance", lambda p: p["metadataOptions"].update(httpTokens="optional"))
    assert "http_tokens='required'" in text(up_pack, instance)


def test_the_ipv6_imds_endpoint_fails(up_pack, dev):
    instance = changed(dev, "harbor-vm-instance", lambda p: p["metadataOptions"].update(httpProtocolIpv6="enabled"))
    assert "IPv6 IMDS endpoint" in text(up_pack, instance)


@pytest.mark.parametrize("hop_limit", [2, 3, None])
def test_imds_hop_limit_above_one_fails(up_pack, dev, hop_limit):
    def change(props):
        if hop_limit is None:
            del props["metadataOptions"]["httpPutResponseHopLimit"]
        else:
            props["metadataOptions"]["httpPutResponseHopLimit"] = hop_limit

    found = text(up_pack, changed(dev, "harbor-vm-instance", change))
    assert f"IMDS hop limit is {hop_limit}" in found and "http_put_response_hop_limit=1" in found


def test_s3_mode_has_hop_limit_one_too_and_the_old_guard_tag_allows_nothing(up_pack, s3):
    """storage s3 too (issue 18): the registry's credentials come from the host's relay, so the pack has
    no exception left; the tag that let s3 instances have hop limit 2 means nothing."""
    instance = registration_of(s3, "harbor-vm-instance")
    assert instance.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
    assert messages(up_pack, instance) == {}

    def old_s3_instance(props):
        props["metadataOptions"]["httpPutResponseHopLimit"] = 2
        props["tags"]["harbor-cache:imds-registry-only"] = "true"

    found = text(up_pack, changed(s3, "harbor-vm-instance", old_s3_instance))
    assert "IMDS hop limit is 2" in found and "http_put_response_hop_limit=1" in found


def test_unencrypted_disks_fail(up_pack, dev):
    assert "set encrypted=True" in text(up_pack, changed(dev, "harbor-vm-data", lambda p: p.update(encrypted=False)))
    root = changed(dev, "harbor-vm-instance", lambda p: p["rootBlockDevice"].update(encrypted=False))
    assert "root_block_device.encrypted=True" in text(up_pack, root)


def test_credentials_in_user_data_fail(up_pack, dev):
    instance = changed(dev, "harbor-vm-instance", lambda p: p.update(userData=p["userData"] + "password: Hunter2-pass\n"))
    assert "user data carries what looks like a password" in text(up_pack, instance)
    encoded = changed(dev, "harbor-vm-instance", lambda p: p.update(userDataBase64="I2Nsb3VkLWNvbmZpZw=="))
    assert "user_data_base64" in text(up_pack, encoded)


def test_unprotected_data_volume_fails_and_only_the_programs_node_volumes_are_scratch(up_pack, dev, ha):
    volume = copy.deepcopy(registration_of(dev, "harbor-vm-data"))
    volume.protect = False
    assert "protect=True" in text(up_pack, volume)
    scratch = registration_of(ha, "harbor-vm-1-data")
    # Node 1's volume judged against the HA stack's own configuration (replicas: 2; the tag rule bounds node indices).
    with running_pack(dry_run=False, config=config("ha"), disabled=WITHOUT_AWS_LOOKUPS) as ha_pack:
        assert not scratch.protect and messages(ha_pack, scratch) == {}
        restored = changed(ha, "harbor-vm-1-data", lambda p: p.update(snapshotId="snap-0123456789abcdef0"))
        assert "protect=True" in text(ha_pack, restored)


# ---------------------------------------------------------------------------------------------
# Security groups


def open_port(port: int, *blocks: str, protocol: str = "tcp", high: int | None = None):
    def change(props):
        v6 = [b for b in blocks if ":" in b]
        props["ingress"].append(
            {
                "protocol": protocol,
                "fromPort": port,
                "toPort": port if high is None else high,
                "cidrBlocks": [b for b in blocks if ":" not in b],
                "ipv6CidrBlocks": v6,
            }
        )

    return change


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0"])
def test_ssh_from_the_world_fails(up_pack, dev, cidr):
    assert "sshAllowedCidrs" in text(up_pack, changed(dev, "harbor-vm-sg", open_port(22, cidr)))


@pytest.mark.parametrize("port", [9090, 9091])
@pytest.mark.parametrize("blocks", [["0.0.0.0/0"], ["::/0"], ["0.0.0.0/1", "128.0.0.0/1"]])
def test_metrics_from_the_world_fail(up_pack, dev, port, blocks):
    """Harbor's exporter (9090) and the cache's own (9091) take address blocks like 22: never every address, by the
    union of the blocks (docs/security.md, "One check per type")."""

    def open_blocks(props):
        for block in blocks:
            open_port(port, block)(props)

    assert f"port {port} (metrics)" in text(up_pack, changed(dev, "harbor-vm-sg", open_blocks))


def test_public_web_fails_unless_the_program_allows_it(up_pack, dev):
    group = changed(dev, "harbor-vm-sg", open_port(443, "0.0.0.0/0"))
    assert "allowPublicAccess: true" in text(up_pack, group)
    group.inputs["tags"][resource_checks.PUBLIC_ACCESS_TAG] = "true"
    assert messages(up_pack, group) == {}, "the program's own web group with the program's tag"


def test_the_public_exemption_is_the_programs_group_only(up_pack, dev):
    """The same tag on any other group is not an exemption (the review set it from `tags` everywhere)."""
    group = changed(dev, "harbor-vm-sg", open_port(443, "0.0.0.0/0"))
    group.inputs["tags"][resource_checks.PUBLIC_ACCESS_TAG] = "true"
    group.urn = group.urn.replace("::harbor-vm-sg", "::harbor-vm-sg-extra").replace("HarborVm$", "HarborDns$")
    assert "allowPublicAccess: true" in text(up_pack, group)


HALVES = [["0.0.0.0/1", "128.0.0.0/1"], ["::/1", "8000::/1"], ["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/1"]]


@pytest.mark.parametrize("blocks", HALVES)
def test_blocks_that_together_cover_every_address_are_the_world(up_pack, dev, blocks):
    def one_rule_per_block(port):
        def change(props):
            for block in blocks:
                open_port(port, block)(props)

        return change

    assert "sshAllowedCidrs" in text(up_pack, changed(dev, "harbor-vm-sg", one_rule_per_block(22)))
    assert "allowPublicAccess" in text(up_pack, changed(dev, "harbor-vm-sg", one_rule_per_block(443)))


@settings(max_examples=25, deadline=None)
@given(prefix=st.integers(1, 6), missing=st.integers(0, 63), v6=st.booleans())
def test_coverage_is_judged_by_the_union(prefix, missing, v6):
    """Every /prefix subnet together is the world; leave one out and it is not."""
    world = ipaddress.ip_network("::/0" if v6 else "0.0.0.0/0")
    networks = list(world.subnets(new_prefix=prefix))
    assert reading.covers_everything(networks)
    del networks[missing % len(networks)]
    assert not reading.covers_everything(networks)


def test_harbors_port_and_the_databases_only_from_security_groups(up_pack, ha, s3):
    """8080 on the nodes' group (the review opened it to the world), 5432/6379 on the stores' groups."""
    assert "takes traffic only from the program's security groups" in text(
        up_pack, changed(ha, "harbor-vm-sg", open_port(8080, "0.0.0.0/0"))
    )
    assert "only from the program's security groups" in text(
        up_pack, changed(s3, "harbor-data-db-sg", open_port(5432, "10.0.0.0/8"))
    )


@pytest.mark.parametrize(
    "rule,message",
    [
        (open_port(0, "10.0.0.0/8", protocol="-1"), "single tcp ports"),
        (open_port(1000, "10.0.0.0/8", high=2000), "single tcp ports"),
        (open_port(3306, "10.0.0.0/8"), "admits only"),
        (open_port(22, "not-a-cidr"), "not a CIDR block"),
        (open_port(22, UNKNOWN), "unknown at preview"),
    ],
)
def test_other_rules_fail_closed(up_pack, dev, rule, message):
    assert message in text(up_pack, changed(dev, "harbor-vm-sg", rule))


def test_prefix_lists_fail(up_pack, dev):
    def prefix_list(props):
        props["ingress"].append({"protocol": "tcp", "fromPort": 443, "toPort": 443, "prefixListIds": ["pl-0123456789abcdef0"]})

    assert "prefix list" in text(up_pack, changed(dev, "harbor-vm-sg", prefix_list))


# ---------------------------------------------------------------------------------------------
# IAM


def test_broad_route53_permission_fails(up_pack, dev):
    def widen(statements):
        statements[0]["Resource"] = "*"

    def any_name(statements):
        del statements[0]["Condition"]

    def any_type(statements):
        del statements[0]["Condition"]["ForAllValues:StringEquals"][resource_checks.DNS01_TYPES_KEY]

    assert "exactly one hosted zone" in text(up_pack, changed(dev, "harbor-dns-dns01", with_policy(widen)))
    assert "_acme-challenge.<hostname>" in text(up_pack, changed(dev, "harbor-dns-dns01", with_policy(any_name)))
    assert "TXT records" in text(up_pack, changed(dev, "harbor-dns-dns01", with_policy(any_type)))


@pytest.mark.parametrize(
    "action", ["route53:changeresourcerecordsets", "ROUTE53:ChangeResourceRecordSets", "route53:Change*", "route53:*", "*"]
)
def test_iam_actions_in_another_spelling_or_with_wildcards_fail(up_pack, dev, action):
    """IAM matches actions case-insensitively and with wildcards: each of these grants the change."""

    def respell(statements):
        statements[0]["Action"] = action

    found = text(up_pack, changed(dev, "harbor-dns-dns01", with_policy(respell)))
    assert repr(action) in found
    assert ("another spelling" if "*" not in action else "no wildcards") in found


@pytest.mark.parametrize("field", ["NotAction", "NotResource"])
def test_not_action_fails(up_pack, dev, field):
    def add(statements):
        statements.append(
            {"Effect": "Allow", field: "iam:*", **({"Resource": "*"} if field == "NotAction" else {"Action": "s3:GetObject"})}
        )

    assert "NotAction/NotResource grants everything" in text(up_pack, changed(dev, "harbor-dns-dns01", with_policy(add)))


def test_managed_or_inline_policies_on_the_role_fail(up_pack, dev):
    managed = changed(dev, "harbor-vm-role", lambda p: p.update(managedPolicyArns=["arn:aws:iam::aws:policy/ReadOnlyAccess"]))
    assert "managed_policy_arns" in text(up_pack, managed)
    inline = [{"name": "more", "policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]})}]
    assert "inline_policies" in text(up_pack, changed(dev, "harbor-vm-role", lambda p: p.update(inlinePolicies=inline)))


def test_metrics_permission_only_into_the_stacks_namespace(up_pack, dev):
    """Without the condition the role could write any metric; with another stack's namespace it could
    keep that stack's alarms green."""
    put_metrics = registration_of(dev, "harbor-alarms-put-metrics")
    assert "HarborCache/dev" in put_metrics.inputs["policy"] and messages(up_pack, put_metrics) == {}
    for condition in (
        {},
        {"StringEquals": {"cloudwatch:namespace": "AWS/EC2"}},
        {"StringEquals": {"cloudwatch:namespace": "HarborCache/prod"}},
        {"StringEquals": {"cloudwatch:namespace": "HarborCache"}},
    ):

        def change(statements, condition=condition):
            statements[0]["Condition"] = condition

        assert "cloudwatch:namespace" in text(up_pack, changed(dev, "harbor-alarms-put-metrics", with_policy(change)))


def test_the_reporter_may_list_the_subscriptions_of_the_programs_alarm_topic_only(up_pack, dev):
    """ConfirmedAlarmSubscribers (issue 19): sns:ListSubscriptionsByTopic on one topic, the program's alarm
    topic passed as that resource's ARN; any other SNS grant widens the instance role."""
    put_metrics = registration_of(dev, "harbor-alarms-put-metrics")
    assert "sns:ListSubscriptionsByTopic" in put_metrics.inputs["policy"] and messages(up_pack, put_metrics) == {}
    assert up_pack.analyze_all(dev) == []
    two = ["arn:aws:sns:eu-central-1:123456789012:a", "arn:aws:sns:eu-central-1:123456789012:b"]
    for resource in ("*", "arn:aws:sns:*:*:*", two):

        def change(statements, resource=resource):
            statements[2]["Resource"] = resource

        refused = text(up_pack, changed(dev, "harbor-alarms-put-metrics", with_policy(change)))
        assert "sns:ListSubscriptionsByTopic must name exactly one SNS topic" in refused, resource

    def wider(statements):
        statements[2]["Action"] = "sns:*"

    assert "widens the instance role" in text(up_pack, changed(dev, "harbor-alarms-put-metrics", with_policy(wider)))

    def foreign(statements):
        statements[2]["Resource"] = "arn:aws:sns:eu-central-1:210987654321:someone-elses-topic"

    other = changed(dev, "harbor-alarms-put-metrics", with_policy(foreign))
    assert messages(up_pack, other) == {}, "one topic's ARN: which one is the stack check's"
    stack = [other if r.urn == other.urn else r for r in dev]
    assert "registry-grant-names-the-programs-bucket" in {d.policy for d in up_pack.analyze_all(stack)}


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
def test_s3_grants_beyond_the_registrys_fail(up_pack, s3, statement):
    def replace(statements):
        statements[:] = [statement]

    assert "S3" in text(up_pack, changed(s3, "harbor-storage-registry-access", with_policy(replace)))


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
    assert reading.action_matches(pattern, action) is matches


@pytest.mark.parametrize(
    "document,message",
    [
        (UNKNOWN, "unknown at preview"),
        ("{not json", "not a JSON policy document"),
        ('{"Statement": [], "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}', "duplicate keys"),
        (json.dumps({"Statement": [{"Effect": "allow", "Action": "*", "Resource": "*"}]}), "outside IAM's grammar"),
        (json.dumps({"Statements": []}), "not an IAM policy document"),
        (json.dumps(["Statement"]), "not an IAM policy document"),
    ],
)
def test_unknown_or_unparseable_documents_fail_closed(up_pack, preview_pack, dev, document, message):
    policy = changed(dev, "harbor-dns-dns01", lambda p: p.update(policy=document))
    assert message in text(up_pack, policy)
    assert message in text(preview_pack, policy), "the DNS-01 policy's document is known at preview: an unknown one fails"


# ---------------------------------------------------------------------------------------------
# Commands


CREDENTIAL_SHAPES = [
    "sudo HARBOR_ADMIN_PASSWORD=Hunter2-pass bash -s",
    "docker login -u robot -p s3cr3t harbor.example.com",
    "sshpass -p hunter2 ssh ubuntu@host",
    "mysql -uroot -phunter2 registry",
    "harbor-cli --password hunter2",
    "curl --password=hunter2 https://x",
    "sudo DB_PASS=hunter2 bash -s",
    "PASS=hunter2 ./run",
    "env PWD=hunter2 ./run",
    "curl -u admin:Harbor12345 https://127.0.0.1/api/v2.0/projects",
    "curl --user admin:Harbor12345 https://127.0.0.1/api",
    "curl -H 'Authorization: Basic YWRtaW46SGFyYm9yMTIzNDU=' https://127.0.0.1/api",
    "wget --header='Authorization: Bearer abc.def' https://x",
    "git clone https://robot:hunter2@git.example.com/repo",
    "redis-cli -a hunter2 ping",
    "htpasswd -bB /etc/registry/passwd admin hunter2",
    "aws configure set aws_access_key_id AKIAABCDEFGHIJKLMNOP",
]
NOT_CREDENTIALS = [
    "sudo mkdir -p /data/backup",
    "docker run -u 10000 -p 443:443 traefik",
    "docker login -u robot --password-stdin harbor.example.com",
    "sudo HARBOR_SHA256=0123abcd bash -s",
    "cp -p a b",
    "curl -fsS https://127.0.0.1/api/v2.0/health",
    "sudo -u harbor ./prepare",
    "htpasswd -B -i /etc/registry/passwd admin",
]


@pytest.mark.parametrize("command", CREDENTIAL_SHAPES)
def test_credential_shapes_in_commands_fail(up_pack, dev, command):
    found = text(up_pack, changed(dev, "harbor-install-docker", lambda p: p.update(create=command)))
    assert "remote command's create carries what looks like a password or token" in found


@pytest.mark.parametrize("command", NOT_CREDENTIALS)
def test_ordinary_flags_are_not_credentials(up_pack, dev, command):
    assert messages(up_pack, changed(dev, "harbor-install-docker", lambda p: p.update(create=command))) == {}


@pytest.mark.parametrize(
    "field,value",
    [
        ("environment", {"DOCKERHUB_TOKEN": "dckr_pat_abcdefghijklmnopqrstuvwx"}),
        ("triggers", ["-----BEGIN OPENSSH PRIVATE KEY-----"]),
        ("delete", "curl -u admin:hunter2 https://x"),
    ],
)
def test_credentials_anywhere_outside_stdin_fail(up_pack, dev, field, value):
    found = text(up_pack, changed(dev, "harbor-install-installer", lambda p: p.update({field: value})))
    assert f"remote command's {field}" in found


def test_secrets_on_stdin_are_the_sanctioned_path(up_pack, dev):
    write = registration_of(dev, "harbor-install-harbor-yml")
    assert "harbor_admin_password" in write.inputs["stdin"]["value"], "a secret, wrapped as the engine sends it"
    assert messages(up_pack, write) == {}


def connection_changed(change):
    def apply(props):
        change(props["connection"]["value"])  # the connection is a secret: {sig, value}

    return apply


def test_ssh_without_a_pinned_host_key_or_with_a_password_fails(up_pack, dev):
    unpinned = changed(dev, "harbor-install-docker", connection_changed(lambda c: c.pop("hostKey")))
    assert "no host_key" in text(up_pack, unpinned)
    password = changed(dev, "harbor-install-docker", connection_changed(lambda c: c.update(password="hunter2")))
    assert "password or a proxy" in text(up_pack, password)


def test_program_values_unknown_at_a_fresh_preview_are_judged_at_up(preview_pack, up_pack):
    """The fields KNOWN_ONLY_AT_UP may be unknown at preview on the program's own resources; the same
    resource on another URN, or at up, fails closed."""
    fresh = engine_resources(run_mode("s3-external", fresh_preview=True))
    command = registration_of(fresh, "harbor-install-docker")
    assert reading.is_unknown(command.inputs["connection"]["value"]), "a secret whose value is unknown"
    assert messages(preview_pack, command) == {}
    assert "connection is unknown at preview" in text(up_pack, command)
    stranger = copy.deepcopy(command)
    stranger.urn = stranger.urn.replace("HarborInstall$", "HarborDns$")
    assert "connection is unknown at preview" in text(preview_pack, stranger)
    registry = registration_of(fresh, "harbor-storage-registry-access")
    assert reading.is_unknown(registry.inputs["policy"]) and messages(preview_pack, registry) == {}


# ---------------------------------------------------------------------------------------------
# The stores, the load balancer, DNS, alarms


@pytest.mark.parametrize(
    "name,change,message",
    [
        ("harbor-data-db", lambda p: p.update(publiclyAccessible=True), "private, encrypted"),
        ("harbor-data-db", lambda p: p.update(storageEncrypted=False), "private, encrypted"),
        ("harbor-data-db", lambda p: p.update(skipFinalSnapshot=True), "snapshotted on delete"),
        ("harbor-data-redis", lambda p: p.update(transitEncryptionEnabled=False), "Redis must use TLS"),
        ("harbor-storage-public-access-block", lambda p: p.update(blockPublicPolicy=False), "set all four to true"),
        ("harbor-storage-encryption", lambda p: p.update(rules=[]), "default encryption is missing"),
        ("harbor-storage-bucket", lambda p: p.update(forceDestroy=True), "force_destroy"),
        ("harbor-storage-lifecycle", lambda p: p["rules"][0].update(expiration={"days": 1}), "expires or moves"),
        ("harbor-storage-ownership", lambda p: p.update(rule={"objectOwnership": "ObjectWriter"}), "BucketOwnerEnforced"),
    ],
)
def test_store_promises_fail_when_broken(up_pack, s3, name, change, message):
    assert message in text(up_pack, changed(s3, name, change))


def test_a_bucket_policy_only_denies(up_pack, s3):
    def allow(statements):
        statements.append({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"})

    assert "may only deny" in text(up_pack, changed(s3, "harbor-storage-tls-only", with_policy(allow)))


def test_listeners_serve_https_with_tls13_and_http_only_redirects(up_pack, ha):
    forward = [{"type": "forward", "targetGroupArn": "arn:aws:elasticloadbalancing:eu-central-1:1:targetgroup/x/1"}]
    assert "plain text" in text(up_pack, changed(ha, "harbor-lb-http", lambda p: p.update(defaultActions=forward)))
    old_tls = changed(ha, "harbor-lb-https", lambda p: p.update(sslPolicy="ELBSecurityPolicy-2016-08"))
    assert "TLS 1.2+" in text(up_pack, old_tls)


def test_snapshots_stay_in_the_account(up_pack, dev):
    def share(props):
        props["policyDetails"]["schedules"][0]["shareRules"] = [{"targetAccounts": ["210987654321"]}]

    assert "shares them with other accounts" in text(up_pack, changed(dev, "harbor-vm-snapshots", share))


def test_alarms_never_stop_or_terminate(up_pack, dev):
    terminate = changed(
        dev, "harbor-alarms-system-status", lambda p: p.update(alarmActions=["arn:aws:automate:eu-central-1:ec2:terminate"])
    )
    assert "recover/reboot" in text(up_pack, terminate)


def test_dns_records_never_write_the_dns01_name(up_pack, dev):
    txt = changed(dev, "harbor-dns-a", lambda p: p.update(type="TXT", name="_acme-challenge.harbor.dev.example.com"))
    assert "TXT record" in text(up_pack, txt)
    cname = changed(dev, "harbor-dns-a", lambda p: p.update(type="CNAME", name="_acme-challenge.harbor.dev.example.com"))
    assert "Traefik's alone" in text(up_pack, cname)


@pytest.mark.parametrize(
    "url,refused",
    [
        ("https://harbor.dev.example.com", False),
        ("https://127.0.0.1:8443", False),
        ("http://localhost:8080", False),
        ("https://attacker.example.com", True),
        ("http://harbor.dev.example.com", True),
        ("https://harbor.dev.example.com.attacker.example", True),
    ],
)
def test_harbors_admin_password_goes_only_to_the_cache_or_loopback(up_pack, dev, url, refused):
    """The Harbor objects carry the admin password to `harbor_url`; the pack reads the cache's name from the
    stack's configuration the engine hands it (PULUMI_CONFIG)."""
    registry = changed(dev, "harbor-config-registry-dockerhub", lambda p: p.update(harbor_url=url))
    assert ("admin password" in text(up_pack, registry)) is refused


def test_without_the_stacks_hostname_the_harbor_objects_fail_closed(dev):
    with running_pack(dry_run=False, config={}, disabled=WITHOUT_AWS_LOOKUPS) as pack:
        assert "has no harbor-cache:hostname" in refusals(pack, registration_of(dev, "harbor-config-gc"))


def test_every_s3_type_the_pack_allows_names_the_programs_bucket():
    """Review 22c F3: each aws:s3 type of ALLOWED but the bucket is in BUCKET_SETTINGS, so its `bucket` must come from
    the program's bucket at preview (identities-come-from-the-program) and is looked up at up."""
    import stack_checks

    s3_types = {kind for kind in harbor_policies.ALLOWED if kind.startswith("aws:s3/")} - {"aws:s3/bucket:Bucket"}
    assert set(stack_checks.BUCKET_SETTINGS) == s3_types


def test_the_image_the_pack_requires_is_the_one_the_program_looks_up():
    """Review 22c F2: at up the pack requires the instance's image to be the one components/aws/vm.py's get_ami would
    choose: its owner, its name pattern and its other filters (architecture, virtualization type)."""
    import aws_lookups

    from components.aws import vm

    assert (aws_lookups.UBUNTU_OWNER, aws_lookups.UBUNTU_IMAGE_NAME) == (vm.UBUNTU_OWNER, vm.UBUNTU_IMAGE_NAME)
    source = (ROOT / "components" / "aws" / "vm.py").read_text()
    for key, value in aws_lookups.UBUNTU_IMAGE.items():
        ec2_filter = {"Architecture": "architecture", "VirtualizationType": "virtualization-type"}[key]
        assert f'{{"name": "{ec2_filter}", "values": ["{value}"]}}' in source


def test_the_harbor_settings_the_pack_compares_are_the_programs_defaults():
    """Review 22d H1: where the stack sets no upstreams, the pack compares Harbor's registries with the settings'
    defaults, and the OIDC login with the oidc setting's defaults: the same values as components/settings."""
    from components.settings import oidc, upstreams

    keys = ("name", "type", "url")
    assert tuple({key: u[key] for key in keys} for u in upstreams.DEFAULT_UPSTREAMS) == resource_checks.DEFAULT_UPSTREAMS
    assert {key: oidc.OIDC_DEFAULTS[key] for key in resource_checks.OIDC_DEFAULTS} == resource_checks.OIDC_DEFAULTS
