"""The bypass corpus: every way around the policy pack a review found, as resources (or pairs) a
pull request could add to the program, each run through the pack as the engine runs it (its own
entry point over the analyzer's gRPC protocol, tests/standins/policy_engine.py: Analyze for each resource,
AnalyzeStack for the whole stack), at preview and at up. Each probe must be refused.

The probes are the independent review's 39 fabricated resources in its 11 gaps (issue 22), then
the earlier reviews' (IAM spellings, NotAction, widening attachments, split CIDRs, hop limits,
credential shapes, local commands). The program's own stack with no probe passes (so a refusal is
the probe's), see tests/policy/test_policies.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.standins.policy_engine import (
    EngineResource,
    changed,
    engine_resources,
    engine_urn,
    registration_of,
    run_program,
    running_pack,
)
from tests.standins.pulumi_harness import FAKE_ACCOUNT_ID, dev_config

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
        lambda s: [changed(s, "harbor-vm-instance", lambda p: p.update(launchTemplate={"id": "lt-0123456789abcdef0"}))],
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
        lambda s: halves_rules("aws:ec2/securityGroupRule:SecurityGroupRule", 443, "harbor-vm-sg-id"),
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
    Probe(
        "credentials",
        "curl -u user:pass",
        "dev",
        in_command("curl -u admin:Harbor12345 https://127.0.0.1/api/v2.0/users"),
        refused_by="command-remote-command",
    ),
    Probe(
        "credentials",
        "an Authorization header",
        "dev",
        in_command("curl -H 'Authorization: Bearer eyJhbGciOi' https://x"),
        refused_by="command-remote-command",
    ),
    Probe(
        "credentials",
        "URL user info",
        "dev",
        in_command("skopeo copy docker://robot:hunter2@harbor.example.com/a b"),
        refused_by="command-remote-command",
    ),
    Probe(
        "credentials",
        "redis-cli -a",
        "dev",
        in_command("redis-cli -a hunter2 -h redis FLUSHALL"),
        refused_by="command-remote-command",
    ),
    Probe(
        "credentials",
        "htpasswd -b",
        "dev",
        in_command("htpasswd -b /etc/registry/passwd admin hunter2"),
        refused_by="command-remote-command",
    ),
    Probe(
        "credentials",
        "docker login -p",
        "dev",
        in_command("docker login -u admin -p hunter2 harbor.example.com"),
        refused_by="command-remote-command",
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
    Probe(
        "promises",
        "RDS publicly accessible",
        "s3",
        lambda s: [changed(s, "harbor-data-db", lambda p: p.update(publiclyAccessible=True))],
        refused_by="aws-rds-instance-instance",
    ),
    Probe(
        "promises",
        "RDS unencrypted",
        "s3",
        lambda s: [changed(s, "harbor-data-db", lambda p: p.update(storageEncrypted=False))],
        refused_by="aws-rds-instance-instance",
    ),
    Probe(
        "promises",
        "ElastiCache without TLS",
        "s3",
        lambda s: [changed(s, "harbor-data-redis", lambda p: p.update(transitEncryptionEnabled=False))],
        refused_by="aws-elasticache-replicationgroup-replicationgroup",
    ),
    Probe(
        "promises",
        "ElastiCache unencrypted at rest",
        "s3",
        lambda s: [changed(s, "harbor-data-redis", lambda p: p.update(atRestEncryptionEnabled=False))],
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
    Probe(
        "earlier",
        "route53:Change* instead of the exact action",
        "dev",
        dns01_changed(lambda st: st[0].update(Action="route53:Change*")),
        refused_by="aws-iam-rolepolicy-rolepolicy",
    ),
    Probe(
        "earlier",
        "the exact action in lower case",
        "dev",
        dns01_changed(lambda st: st[0].update(Action="route53:changeresourcerecordsets")),
        refused_by="aws-iam-rolepolicy-rolepolicy",
    ),
    Probe(
        "earlier",
        "NotAction iam:*",
        "dev",
        dns01_changed(lambda st: st.append({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})),
        refused_by="aws-iam-rolepolicy-rolepolicy",
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
        lambda s: [changed(s, "harbor-config-gc", lambda p: p.update(harbor_url="https://harbor.attacker.example"))],
        refused_by="pulumi-python-dynamic-harbor-gcschedule",
    ),
    Probe(
        "earlier",
        "a password in a command's environment",
        "dev",
        lambda s: [changed(s, "harbor-install-docker", lambda p: p.update(environment={"HARBOR_PASSWORD": "hunter2"}))],
        refused_by="command-remote-command",
    ),
]
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


@pytest.fixture(scope="module")
def stacks():
    modes = {
        "dev": {},
        "ha": {"harbor-cache:replicas": 2},
        "s3": {"harbor-cache:storage": "s3", "harbor-cache:externalServices": True},
    }
    return {label: engine_resources(run_program({**dev_config(), **mode})) for label, mode in modes.items()}


def with_probe(stack: list[EngineResource], probe: list[EngineResource]) -> list[EngineResource]:
    replaced = {r.urn: r for r in probe}
    kept = [replaced.pop(r.urn, r) for r in stack]
    return [*kept, *replaced.values()]


def test_the_corpus_covers_every_gap_of_the_review():
    """The 11 gaps, at least the review's 39 fabricated resources, and the earlier reviews' probes."""
    gaps = [probe.gap for probe in PROBES]
    assert set(ISSUE_GAPS) <= set(gaps)
    assert sum(gaps.count(gap) for gap in ISSUE_GAPS) >= 39 and "earlier" in gaps
    assert FAKE_ACCOUNT_ID  # the stacks are the harness's


@pytest.mark.parametrize("dry_run", [True, False], ids=["preview", "up"])
def test_every_probe_is_refused(stacks, dry_run):
    passed = []
    with running_pack(dry_run=dry_run) as pack:
        for probe in PROBES:
            stack = stacks[probe.stack]
            added = probe.build(stack)
            found = [d for r in added for d in pack.analyze(r)] + pack.analyze_stack(with_probe(stack, added))
            if not any(d.mandatory and d.policy == probe.refused_by for d in found):
                passed.append(f"{probe.gap}: {probe.what} (expected {probe.refused_by}, got {sorted({d.policy for d in found})})")
    assert passed == []
