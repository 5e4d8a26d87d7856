"""The AWS half under Pulumi mocks: what is registered, with which options, and nothing on bad input."""

from __future__ import annotations

import json

import pytest

from components.settings.config_reader import SettingsError
from tests.standins.pulumi_harness import (
    FAKE_ACCOUNT_ID,
    FAKE_HOST_PUBLIC_KEY,
    FAKE_PUBLIC_IP,
    FAKE_ZONE_ID,
    dev_config,
    run_program,
)


@pytest.fixture(scope="module")
def run():
    return run_program(dev_config())


def test_instance_requires_imdsv2_with_hop_limit_one_and_encrypted_root(run):
    instance = run.one("aws:ec2/instance:Instance")
    assert instance.inputs["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1,
    }
    assert instance.inputs["rootBlockDevice"]["encrypted"] is True
    assert instance.inputs["rootBlockDevice"]["volumeType"] == "gp3"
    assert instance.inputs["instanceType"] == "t3.large"
    assert instance.inputs["ami"] == "ami-0123456789abcdef0"
    assert instance.ignore_changes == ["ami"], "a new AMI must not replace the VM on an unrelated up"
    assert instance.inputs["availabilityZone"] == "eu-central-1a"
    assert instance.inputs["tags"]["environment"] == "dev"


def test_data_volume_is_encrypted_gp3_protected_and_retained(run):
    volume = run.one("aws:ebs/volume:Volume")
    assert volume.inputs["encrypted"] is True and volume.inputs["type"] == "gp3"
    assert volume.inputs["size"] == 200
    assert volume.inputs["availabilityZone"] == "eu-central-1a"
    assert volume.protect and volume.retain_on_delete
    attachment = run.one("aws:ec2/volumeAttachment:VolumeAttachment")
    assert attachment.inputs["volumeId"] == "harbor-vm-data-id"
    assert attachment.delete_before_replace, "the volume must be detached from the old VM before the new one takes it"
    assert not attachment.protect, "the attachment is replaced with the instance"


def test_snapshot_policy_targets_the_data_volume_and_keeps_the_configured_days(run):
    volume = run.one("aws:ebs/volume:Volume")
    policy = run.one("aws:dlm/lifecyclePolicy:LifecyclePolicy")
    details = policy.inputs["policyDetails"]
    ((tag_key, tag_value),) = details["targetTags"].items()
    assert volume.inputs["tags"][tag_key] == tag_value == "dev"
    schedule = details["schedules"][0]
    assert schedule["retainRule"] == {"interval": 7, "intervalUnit": "DAYS"}
    assert schedule["createRule"]["interval"] == 24
    role = run.named("harbor-vm-dlm-role")
    assert "dlm.amazonaws.com" in role.inputs["assumeRolePolicy"]


def test_security_group_opens_web_to_allowed_cidrs_and_ssh_to_ssh_cidrs_only(run):
    group = run.one("aws:ec2/securityGroup:SecurityGroup")
    by_port = {rule["fromPort"]: rule for rule in group.inputs["ingress"]}
    assert set(by_port) == {22, 80, 443}
    assert by_port[443]["cidrBlocks"] == ["10.20.0.0/16", "172.20.5.10/32"]
    assert by_port[80]["cidrBlocks"] == ["10.20.0.0/16", "172.20.5.10/32"]
    assert by_port[22]["cidrBlocks"] == ["172.20.5.10/32"]
    for rule in group.inputs["ingress"]:
        assert "0.0.0.0/0" not in rule.get("cidrBlocks", []) and "::/0" not in rule.get("ipv6CidrBlocks", [])
    assert sorted(rule["fromPort"] for rule in group.inputs["egress"]) == [80, 443]
    assert all(rule["protocol"] == "tcp" for rule in group.inputs["egress"])
    # No DNS out: the VPC resolver is never filtered, and DNS-01 skips the authoritative nameservers.
    assert not [rule for rule in group.inputs["egress"] if rule["fromPort"] <= 53 <= rule["toPort"]]


def test_custom_upstream_port_gets_an_egress_rule():
    config = {
        **dev_config(),
        "harbor-cache:upstreams": [
            {
                "name": "internal",
                "type": "docker-registry",
                "url": "https://registry.corp.example:5000",
                "allowCustomPortEgress": True,  # refused without: it opens tcp 5000 out to the world
            }
        ],
    }
    group = run_program(config).one("aws:ec2/securityGroup:SecurityGroup")
    assert sorted(rule["fromPort"] for rule in group.inputs["egress"]) == [80, 443, 5000]


def test_ipv6_cidrs_land_in_ipv6_blocks():
    config = {**dev_config(), "harbor-cache:allowedCidrs": ["fd12:3456:789a::/48", "10.30.0.0/16"]}
    group = run_program(config).one("aws:ec2/securityGroup:SecurityGroup")
    rule = next(r for r in group.inputs["ingress"] if r["fromPort"] == 443)
    assert rule["ipv6CidrBlocks"] == ["fd12:3456:789a::/48"] and rule["cidrBlocks"] == ["10.30.0.0/16"]


def test_dns_record_points_at_the_elastic_ip(run):
    record = run.named("harbor-dns-a")
    assert record.inputs["name"] == "harbor.dev.example.com"
    assert record.inputs["type"] == "A" and record.inputs["records"] == [FAKE_PUBLIC_IP]
    assert record.inputs["zoneId"] == FAKE_ZONE_ID


def test_dns01_policy_is_scoped_to_one_zone_and_the_challenge_name(run):
    policy = json.loads(run.named("harbor-dns-dns01").inputs["policy"])
    assert run.named("harbor-dns-dns01").inputs["role"] == "harbor-vm-role"
    statements = {s["Sid"]: s for s in policy["Statement"]}
    change = statements["ChangeOnlyTheAcmeChallengeRecord"]
    assert change["Action"] == "route53:ChangeResourceRecordSets"
    assert change["Resource"] == f"arn:aws:route53:::hostedzone/{FAKE_ZONE_ID}"
    condition = change["Condition"]["ForAllValues:StringEquals"]
    assert condition["route53:ChangeResourceRecordSetsNormalizedRecordNames"] == ["_acme-challenge.harbor.dev.example.com"]
    assert condition["route53:ChangeResourceRecordSetsRecordTypes"] == ["TXT"]
    actions = sorted(a for s in policy["Statement"] for a in [s["Action"]])
    assert actions == [
        "route53:ChangeResourceRecordSets",
        "route53:GetChange",
        "route53:ListResourceRecordSets",
    ]
    # Traefik is given the zone id, so nothing needs a permission on every resource.
    assert not [s for s in policy["Statement"] if s["Resource"] == "*"]


def test_no_static_aws_keys_anywhere(run):
    assert not run.of_type("aws:iam/accessKey:AccessKey")
    assert not run.of_type("aws:iam/user:User")


def test_instance_role_is_assumable_by_ec2_only(run):
    role = run.named("harbor-vm-role")
    statement = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert statement == [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    assert run.one("aws:iam/instanceProfile:InstanceProfile").inputs["role"] == "harbor-vm-role"


def test_children_are_parented_to_their_component(run):
    components = {r.name: r.urn for r in run.registrations if r.type.startswith("harbor-cache:")}
    for registration in run.registrations:
        if registration.name.startswith("harbor-vm-"):
            assert registration.parent == components["harbor-vm"], registration.name
        if registration.name.startswith("harbor-dns-"):
            assert registration.parent == components["harbor-dns"], registration.name


def test_outputs_for_operators(run):
    assert run.outputs["url"] == "https://harbor.dev.example.com"
    assert run.outputs["hostname"] == "harbor.dev.example.com"
    assert run.outputs["publicIp"] == run.outputs["sshHost"] == FAKE_PUBLIC_IP
    assert run.outputs["instanceId"] == "harbor-vm-instance-id"
    assert run.outputs["dataVolumeId"] == "harbor-vm-data-id"
    assert run.outputs["sshUser"] == "ubuntu"
    assert "sshPrivateKey" in run.secret_outputs


@pytest.mark.parametrize(
    "key,value",
    [
        ("harbor-cache:hostname", "not a hostname"),
        ("harbor-cache:allowedCidrs", ["0.0.0.0/0"]),
        ("harbor-cache:upstreams", [{"name": "q", "type": "quay", "url": "https://quay.io"}]),
        ("harbor-cache:dataVolumeSizeGb", "-3"),
    ],
)
def test_bad_config_registers_nothing(key, value):
    captured = {}
    with pytest.raises(SettingsError) as error:
        run_program({**dev_config(), key: value}, stack="bad", recorder=captured)
    assert key.split(":", 1)[1].split("[")[0] in str(error.value)
    assert captured["registrations"] == []


def test_missing_required_key_registers_nothing():
    config = {k: v for k, v in dev_config().items() if k != "harbor-cache:acmeEmail"}
    captured = {}
    with pytest.raises(SettingsError, match="acmeEmail: is required"):
        run_program(config, recorder=captured)
    assert captured["registrations"] == []


def test_the_host_key_is_made_on_the_vm_read_from_its_console_and_pinned_and_user_data_holds_no_private_key(run):
    import yaml

    from components.vm.cloud_init import render_cloud_init

    instance = run.one("aws:ec2/instance:Instance")
    text = instance.inputs["userData"]
    assert text == render_cloud_init() and text.startswith("#cloud-config\n")
    assert "PRIVATE KEY" not in text and "ssh_keys" not in yaml.safe_load(text)
    assert yaml.safe_load(text)["ssh_genkeytypes"] == ["ed25519"]
    assert not [r.name for r in run.of_type("tls:index/privateKey:PrivateKey") if "host" in r.name], "no host key made here"
    # What `python -m components.render` shows a reviewer is exactly what the VM gets.
    from components import render
    from components.settings.settings import parse_settings

    raw = {k.split(":", 1)[1]: v for k, v in dev_config().items() if k.startswith("harbor-cache:")}
    rendered = render.render_all(parse_settings(raw, stack="dev", region=dev_config()["aws:region"]))
    assert rendered["var/lib/cloud/instance/user-data.txt"] == text

    host_key = run.one("pulumi-python:dynamic/ec2:ConsoleHostKey")
    assert host_key.inputs["instance_id"] == "harbor-vm-instance-id"
    assert host_key.inputs["region"] == dev_config()["aws:region"]
    assert instance.urn in host_key.dependencies
    assert host_key.secret_keys() - {"__provider"} == set(), "only a public key: nothing secret in or out"
    for command in run.of_type("command:remote:Command"):
        assert command.inputs["connection"]["hostKey"] == FAKE_HOST_PUBLIC_KEY
        assert host_key.urn in command.dependencies, "no command connects before the key is pinned"


def test_iam_roles_and_profile_live_under_the_program_path(run):
    for role in run.of_type("aws:iam/role:Role"):
        assert role.inputs["path"] == "/harbor-cache/", role.name
    assert run.one("aws:iam/instanceProfile:InstanceProfile").inputs["path"] == "/harbor-cache/"


def test_dlm_assumes_its_role_as_aws_documents_for_its_default_role(run):
    # "It trusts only the dlm.amazonaws.com service" (EBS User Guide, IAM service roles for DLM): no
    # condition on keys no AWS document says DLM sends, which would leave the policy in ERROR.
    (statement,) = json.loads(run.named("harbor-vm-dlm-role").inputs["assumeRolePolicy"])["Statement"]
    assert statement == {"Effect": "Allow", "Principal": {"Service": "dlm.amazonaws.com"}, "Action": "sts:AssumeRole"}


def test_volumes_use_the_accounts_ebs_key_unless_a_key_is_set(run):
    assert "kmsKeyId" not in run.one("aws:ebs/volume:Volume").inputs
    assert "kmsKeyId" not in run.one("aws:ec2/instance:Instance").inputs["rootBlockDevice"]
    key = f"arn:aws:kms:eu-central-1:{FAKE_ACCOUNT_ID}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    keyed = run_program({**dev_config(), "harbor-cache:kmsKeyArn": key})
    volume = keyed.one("aws:ebs/volume:Volume")
    assert volume.inputs["kmsKeyId"] == key and volume.inputs["encrypted"] is True
    root = keyed.one("aws:ec2/instance:Instance").inputs["rootBlockDevice"]
    assert root["kmsKeyId"] == key and root["encrypted"] is True
    # DLM's snapshots of the data volume are encrypted with the volume's key and keep its tags.
    schedule = keyed.one("aws:dlm/lifecyclePolicy:LifecyclePolicy").inputs["policyDetails"]["schedules"][0]
    assert schedule["copyTags"] is True
