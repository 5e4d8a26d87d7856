"""Review 22f (issue 22): the default AWS provider's inputs (L2: an allow-list, everything else refused; FR3: harmless
explicit "off" values pass) and an existing node's old launch image (FR2). Each runs through the pack as the engine
runs it (tests/standins/policy_engine.py `running_pack`: its entry point over the analyzer's gRPC protocol), as
tests/policy/test_policy_bypass.py does; each failed on main dad5a47's pack (the review's probes, kept outside the
repository)."""

from __future__ import annotations

import copy

import pytest

from tests.standins.policy_engine import (
    WITHOUT_AWS_LOOKUPS,
    EngineResource,
    changed,
    engine_resources,
    registration_of,
    run_program,
    running_pack,
)
from tests.standins.pulumi_harness import dev_config

AT_UP = "references-are-the-stacks-own-at-up"
PROVIDER_POLICY = "pulumi-providers-aws"


@pytest.fixture(scope="module")
def dev() -> list[EngineResource]:
    return engine_resources(run_program(dev_config()))


def mandatory(pack, resource: EngineResource) -> list[tuple[str, str]]:
    return [(d.policy, d.message) for d in pack.analyze(resource) if d.mandatory]


def with_provider_inputs(stack: list[EngineResource], **values: str) -> EngineResource:
    """The default AWS provider as the engine hands it to Analyze when the stack's config sets `aws:<key>`: its
    CheckConfig answer (pulumi-terraform-bridge pkg/tfbridge/provider.go CheckConfig and pkg/x/muxer CheckConfig),
    every typed value JSON-encoded as a string (config_encoding.go jsonEncodePropertyValue), as inputs and outputs."""
    provider = copy.deepcopy(registration_of(stack, next(r.name for r in stack if r.type == "pulumi:providers:aws")))
    provider.inputs.update(values)
    provider.outputs.update(values)
    return provider


# ---------------------------------------------------------------------------------------------
# L2: the default provider's identity, deny by default

ANOTHER_IDENTITY = {
    "profile": "other-account",
    "sharedConfigFiles": '["./committed-aws-config"]',
    "sharedCredentialsFiles": '["./committed-aws-credentials"]',
    "ec2MetadataServiceEndpoint": "http://198.51.100.7:80",
    "ec2MetadataServiceEndpointMode": "IPv6",
}
# Keys the pack does not know as harmless: refused by the allow-list (a key pulumi-aws v5 had, a misspelling, the
# plugin's download location as an older engine put it at the top level).
UNKNOWN_KEYS = {
    "sharedCredentialsFile": "./committed-aws-credentials",
    "pluginDownloadURL": "https://plugins.example.net/",
    "regoin": "eu-central-1",
}
IGNORED_PROGRAM_TAGS = [
    '{"keyPrefixes": ["harbor-cache:"]}',
    '{"keyPrefixes": ["harbor"]}',
    '{"keyPrefixes": [""]}',
    '{"keys": ["harbor-cache:stack"]}',
    '{"keys": ["Harbor-Cache:allow-public-access"]}',
    "not json",
]


@pytest.mark.parametrize("key", sorted(ANOTHER_IDENTITY))
def test_the_default_provider_may_not_name_another_identity(dev, key):
    """L2: a profile (role_arn with credential_source, source_profile, credential_process), shared config or
    credentials files the pull request may commit itself, or another instance metadata endpoint let pulumi-aws act as
    another identity: refused at preview and at up, as the static keys and roles are."""
    probe = with_provider_inputs(dev, **{key: ANOTHER_IDENTITY[key]})
    for dry_run in (True, False):
        with running_pack(dry_run=dry_run, disabled=WITHOUT_AWS_LOOKUPS) as pack:
            found = mandatory(pack, probe)
            assert [policy for policy, _ in found] == [PROVIDER_POLICY], found
            assert key in found[0][1] and "deploying identity" in found[0][1]


@pytest.mark.parametrize("key", sorted(UNKNOWN_KEYS))
def test_a_provider_key_the_pack_does_not_know_is_refused(dev, key):
    probe = with_provider_inputs(dev, **{key: UNKNOWN_KEYS[key]})
    with running_pack(dry_run=True, disabled=WITHOUT_AWS_LOOKUPS) as pack:
        found = mandatory(pack, probe)
        assert [policy for policy, _ in found] == [PROVIDER_POLICY], found
        assert f"['{key}']" in found[0][1] and "does not know as harmless" in found[0][1]


@pytest.mark.parametrize("value", IGNORED_PROGRAM_TAGS)
def test_ignore_tags_may_not_drop_the_programs_tags(dev, value):
    """terraform-provider-aws drops ignored keys (exact) and key prefixes (strings.HasPrefix) from the tags it sends
    (internal/tags KeyValueTags.IgnoreConfig), so the program's harbor-cache: tags would never reach AWS."""
    with running_pack(dry_run=True, disabled=WITHOUT_AWS_LOOKUPS) as pack:
        found = mandatory(pack, with_provider_inputs(dev, ignoreTags=value))
        assert [policy for policy, _ in found] == [PROVIDER_POLICY], found
        assert "ignoreTags" in found[0][1]


# What the engine and pulumi-aws put there themselves, and harmless settings a stack may make: each passes at preview
# and at up. `version`: providers/registry.go SetProviderVersion; `region`, `skipCredentialsValidation` "false" and
# `skipRegionValidation` "true": pulumi-aws's config defaults, applied by the bridge's plugin-framework CheckConfig
# (pkg/pf/tfbridge/provider_checkconfig.go defaults.ApplyDefaultInfoValues) and JSON-encoded.
HARMLESS = {
    "skipCredentialsValidation": "false",
    "skipRegionValidation": "true",
    "skipMetadataApiCheck": "true",
    "skipRequestingAccountId": "false",
    "allowedAccountIds": '["123456789012"]',
    "forbiddenAccountIds": '["999999999999"]',
    "maxRetries": "25",
    "retryMode": "adaptive",
    "tokenBucketRateLimiterCapacity": "10000",
    "stsRegion": "eu-central-1",
    "useFipsEndpoint": "false",
    "useDualstackEndpoint": "true",
    "s3UsePathStyle": "false",
    "s3UsEast1RegionalEndpoint": "regional",
    "userAgents": '["acme-platform/1.0"]',
    "noProxy": "169.254.169.254",
    "tagPolicyCompliance": "warning",
    "defaultTags": '{"tags": {"owner": "platform"}}',
    "ignoreTags": '{"keys": ["CostCenter"], "keyPrefixes": ["kubernetes.io/", "aws-backup"]}',
    # FR3: explicit "off", as CheckConfig hands it back (config_encoding.go: a typed value JSON-encoded; a known null
    # of a schema key as "").
    "insecure": "false",
    "endpoints": "[]",
    "customCaBundle": "",
    "httpProxy": "",
    "httpsProxy": "",
}


def test_what_the_engine_and_the_provider_set_and_harmless_settings_pass(dev):
    provider = registration_of(dev, next(r.name for r in dev if r.type == "pulumi:providers:aws"))
    assert set(provider.inputs) == {"version", "region"}
    for dry_run in (True, False):
        with running_pack(dry_run=dry_run, disabled=WITHOUT_AWS_LOOKUPS) as pack:
            assert mandatory(pack, with_provider_inputs(dev, **HARMLESS)) == []
            for key, value in HARMLESS.items():
                assert mandatory(pack, with_provider_inputs(dev, **{key: value})) == [], key


@pytest.mark.parametrize(("key", "value"), [("insecure", "false"), ("insecure", False), ("endpoints", "[]"), ("endpoints", [])])
def test_an_explicit_off_is_off_and_on_is_refused(dev, key, value):
    """FR3: `aws:insecure: false` reaches Analyze as "false" and `aws:endpoints: []` as "[]"; both are off. Set, they
    are refused as before."""
    on = {"insecure": "true", "endpoints": '[{"ec2": "https://ec2.example.net"}]'}[key]
    with running_pack(dry_run=True, disabled=WITHOUT_AWS_LOOKUPS) as pack:
        assert mandatory(pack, with_provider_inputs(dev, **{key: value})) == []
        found = mandatory(pack, with_provider_inputs(dev, **{key: on}))
        assert [policy for policy, _ in found] == [PROVIDER_POLICY] and "go elsewhere" in found[0][1], found


def test_the_settings_and_the_pack_agree_on_the_providers_keys():
    """The settings refuse, with the key and the fix, what the pack would refuse later (components/settings/
    namespaces.py); the pack's own lists are read from its source, as the engine loads it."""
    import ast

    from components.settings import namespaces
    from tests.standins.policy_engine import POLICY_DIR

    tree = ast.parse((POLICY_DIR / "resource_checks.py").read_text())
    pack = {
        target.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    identity = set(ast.literal_eval(pack["PROVIDER_IDENTITY_KEYS"]))
    off_only = set(ast.literal_eval(pack["AWS_PROVIDER_OFF_ONLY_KEYS"]))
    allowed = {ast.literal_eval(e) for e in pack["AWS_PROVIDER_ALLOWED_KEYS"].args[0].elts if not isinstance(e, ast.Starred)}
    assert identity == {key.removeprefix("aws:") for key in namespaces.PROVIDER_ONLY_CREDENTIAL_KEYS}
    assert off_only == set(namespaces.AWS_PROVIDER_OFF_ONLY_KEYS)
    assert allowed | off_only == set(namespaces.AWS_PROVIDER_SETTABLE_KEYS) | {"version"}
    assert not identity & (allowed | off_only)


# ---------------------------------------------------------------------------------------------
# FR2: an existing node's launch image after vm.py (or Canonical's naming) moved on

# An image of Canonical's under a name today's UBUNTU_IMAGE_NAME (policy/aws_lookups.py, components/aws/vm.py) does not
# match: an earlier series on Canonical's earlier path (hvm-ssd, before hvm-ssd-gp3), as a node launched before the
# program moved on runs it.
OLD_IMAGE = "ami-0aaaaaaaaaaaaaaa1"
OLD_IMAGE_NAME = "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240207.1"
FOREIGN_OWNER = "210987654321"


def add_image(image_id: str, name: str, owner: str) -> None:
    """A public image of `owner` in moto's EC2 of the stack's account and region, as moto_stack.canonical_image adds
    Canonical's (moto's own `Ami` model of another account's image, moto/ec2/models/amis.py)."""
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.amis import Ami

    from tests.standins.moto_stack import MOTO_ACCOUNT, REGION

    backend = ec2_backends[MOTO_ACCOUNT][REGION]
    backend.amis[image_id] = Ami(
        backend,
        ami_id=image_id,
        name=name,
        owner_id=owner,
        public=True,
        architecture="x86_64",
        virtualization_type="hvm",
        root_device_type="ebs",
    )


def test_an_existing_nodes_old_image_passes_and_a_new_launch_of_it_does_not(dev, aws):
    """FR2: with ignore_changes=["ami"] (components/aws/vm.py) the engine hands Analyze, at every `up`, the image each
    instance was launched from (pulumi step_generator.go: processIgnoreChanges with the old inputs before analyzeAll).
    Canonical's image under a name today's pattern does not match passes where a live instance of this stack runs it;
    once none does (the instance terminated: a new launch would boot it) it is refused, and so is an image of another
    owner even where the stack's instance runs it (the owner check stays for every image AWS shows)."""
    from tests.standins.moto_stack import clients, in_aws, tag_specification

    stack = in_aws(dev, aws[0])
    ec2 = clients(aws[0])("ec2")
    add_image(OLD_IMAGE, OLD_IMAGE_NAME, "099720109477")
    instance = registration_of(stack, "harbor-vm-instance")
    launched = ec2.run_instances(
        ImageId=OLD_IMAGE, MinCount=1, MaxCount=1, TagSpecifications=tag_specification("instance", instance.inputs["tags"])
    )["Instances"][0]["InstanceId"]
    old = changed(stack, "harbor-vm-instance", lambda p: p.update(ami=OLD_IMAGE))
    with running_pack(dry_run=False, env=aws[1], config=dev_config()) as pack:
        assert mandatory(pack, old) == []
    ec2.terminate_instances(InstanceIds=[launched])
    with running_pack(dry_run=False, env=aws[1], config=dev_config()) as pack:
        found = mandatory(pack, old)
        assert [policy for policy, _ in found] == [AT_UP], found
        assert "no instance of stack 'dev' runs it" in found[0][1]
    foreign = "ami-0bbbbbbbbbbbbbbb2"
    add_image(foreign, OLD_IMAGE_NAME, FOREIGN_OWNER)
    ec2.run_instances(
        ImageId=foreign, MinCount=1, MaxCount=1, TagSpecifications=tag_specification("instance", instance.inputs["tags"])
    )
    with running_pack(dry_run=False, env=aws[1], config=dev_config()) as pack:
        found = mandatory(pack, changed(stack, "harbor-vm-instance", lambda p: p.update(ami=foreign)))
        assert [policy for policy, _ in found] == [AT_UP], found
        assert FOREIGN_OWNER in found[0][1]
