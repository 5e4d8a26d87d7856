"""The least AWS permissions for the identity that runs `pulumi up` and for the preview role: one idea
read top to bottom, a table of what each resource type needs and the two policies built from it.

One idea, read top to bottom (a table with one entry per resource type the program creates), so it
runs past ~400 lines rather than being split across files.

    python -m components.aws.deploy_permissions deploy|preview [--state-bucket B] [--secrets-key-arn K]
        [--ebs-key-arn K]

prints an IAM policy document. What it holds is derived from what the program registers: one entry
per resource type the program can create (the AWS provider's create, read, update and delete calls,
terraform-provider-aws internal/service/<service>/<resource>.go) and per data source it invokes; a test
(tests/aws/test_deploy_permissions.py) runs the program under mocks in every mode and fails when a
type or data source has no entry, when an entry is for something the program no longer creates, or
when an action is not an operation of that service in botocore's model.

The deploy policy allows every action of every mode (one VM, S3, external stores, HA), so a stack
can change mode without a new policy; IAM writes are limited to the `/harbor-cache/` path the
program puts its roles under, roles may be passed only to EC2 and DLM, and service-linked roles
only for the services that need one. The preview policy is read-only: the data sources a preview
invokes and the reads a `--refresh` makes, never a write.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

from components.aws.vm import IAM_PATH as ROLE_PATH
from components.aws.watch_permissions import WATCH_ACTIONS


@dataclass(frozen=True)
class Actions:
    """`read`: what a refresh (and the provider after a write) calls; `write`: create, update, delete."""

    read: tuple[str, ...]
    write: tuple[str, ...] = ()


TAGS_EC2 = ("ec2:CreateTags", "ec2:DeleteTags")
TAGS_ELB = ("elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags")
TAGS_RDS = ("rds:AddTagsToResource", "rds:RemoveTagsFromResource")
TARGET_DRAIN = tuple(f"elasticloadbalancing:{a}" for a in ("DeregisterTargets", "RegisterTargets", "DescribeTargetHealth"))
TAGS_ELASTICACHE = ("elasticache:AddTagsToResource", "elasticache:RemoveTagsFromResource")

RESOURCE_ACTIONS: dict[str, Actions] = {
    "aws:ec2/instance:Instance": Actions(
        read=(
            "ec2:DescribeInstances",
            "ec2:DescribeInstanceAttribute",
            "ec2:DescribeInstanceCreditSpecifications",
            "ec2:DescribeInstanceTypes",
            "ec2:DescribeVolumes",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeImages",
            "ec2:DescribeTags",
        ),
        write=(
            "ec2:RunInstances",
            "ec2:TerminateInstances",
            "ec2:StopInstances",
            "ec2:StartInstances",
            "ec2:ModifyInstanceAttribute",
            "ec2:ModifyInstanceMetadataOptions",
            "ec2:ModifyInstanceCreditSpecification",
            "ec2:MonitorInstances",
            "ec2:UnmonitorInstances",
            *TAGS_EC2,
        ),
    ),
    "aws:ebs/volume:Volume": Actions(
        read=("ec2:DescribeVolumes", "ec2:DescribeVolumesModifications"),
        write=("ec2:CreateVolume", "ec2:ModifyVolume", "ec2:DeleteVolume", *TAGS_EC2),
    ),
    "aws:ec2/volumeAttachment:VolumeAttachment": Actions(
        read=("ec2:DescribeVolumes", "ec2:DescribeInstances"),
        write=("ec2:AttachVolume", "ec2:DetachVolume", "ec2:StopInstances"),
    ),
    "aws:ec2/eip:Eip": Actions(
        read=("ec2:DescribeAddresses", "ec2:DescribeAddressesAttribute"),
        write=("ec2:AllocateAddress", "ec2:ReleaseAddress", *TAGS_EC2),
    ),
    "aws:ec2/eipAssociation:EipAssociation": Actions(
        read=("ec2:DescribeAddresses",), write=("ec2:AssociateAddress", "ec2:DisassociateAddress")
    ),
    "aws:ec2/keyPair:KeyPair": Actions(
        read=("ec2:DescribeKeyPairs",), write=("ec2:ImportKeyPair", "ec2:DeleteKeyPair", *TAGS_EC2)
    ),
    "aws:ec2/securityGroup:SecurityGroup": Actions(
        read=("ec2:DescribeSecurityGroups", "ec2:DescribeSecurityGroupRules", "ec2:DescribeNetworkInterfaces"),
        write=(
            "ec2:CreateSecurityGroup",
            "ec2:DeleteSecurityGroup",
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:RevokeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
            "ec2:UpdateSecurityGroupRuleDescriptionsEgress",
            *TAGS_EC2,
        ),
    ),
    "aws:iam/role:Role": Actions(
        read=("iam:GetRole", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole"),
        write=(
            "iam:CreateRole",
            "iam:DeleteRole",
            "iam:UpdateRole",
            "iam:UpdateAssumeRolePolicy",
            "iam:TagRole",
            "iam:UntagRole",
        ),
    ),
    "aws:iam/rolePolicy:RolePolicy": Actions(read=("iam:GetRolePolicy",), write=("iam:PutRolePolicy", "iam:DeleteRolePolicy")),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": Actions(
        read=("iam:ListAttachedRolePolicies",), write=("iam:AttachRolePolicy", "iam:DetachRolePolicy")
    ),
    "aws:iam/instanceProfile:InstanceProfile": Actions(
        read=("iam:GetInstanceProfile",),
        write=(
            "iam:CreateInstanceProfile",
            "iam:DeleteInstanceProfile",
            "iam:AddRoleToInstanceProfile",
            "iam:RemoveRoleFromInstanceProfile",
            "iam:TagInstanceProfile",
            "iam:UntagInstanceProfile",
        ),
    ),
    "aws:dlm/lifecyclePolicy:LifecyclePolicy": Actions(
        read=("dlm:GetLifecyclePolicy",),
        write=(
            "dlm:CreateLifecyclePolicy",
            "dlm:UpdateLifecyclePolicy",
            "dlm:DeleteLifecyclePolicy",
            "dlm:TagResource",
            "dlm:UntagResource",
        ),
    ),
    "aws:route53/record:Record": Actions(
        read=("route53:ListResourceRecordSets", "route53:GetHostedZone", "route53:GetChange"),
        write=("route53:ChangeResourceRecordSets",),
    ),
    "aws:cloudwatch/metricAlarm:MetricAlarm": Actions(
        # EC2 actions on alarms (recover, reboot): CloudWatch checks the instance (PutMetricAlarm's
        # documented permissions) and makes its service-linked role once (SERVICE_LINKED_ROLES).
        read=(
            "cloudwatch:DescribeAlarms",
            "cloudwatch:ListTagsForResource",
            "ec2:DescribeInstanceStatus",
            "ec2:DescribeInstances",
        ),
        write=("cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:TagResource", "cloudwatch:UntagResource"),
    ),
    "aws:sns/topic:Topic": Actions(
        read=("sns:GetTopicAttributes", "sns:ListTagsForResource"),
        write=("sns:CreateTopic", "sns:DeleteTopic", "sns:SetTopicAttributes", "sns:TagResource", "sns:UntagResource"),
    ),
    "aws:sns/topicSubscription:TopicSubscription": Actions(
        read=("sns:GetSubscriptionAttributes", "sns:ListSubscriptionsByTopic"),
        write=("sns:Subscribe", "sns:Unsubscribe", "sns:SetSubscriptionAttributes"),
    ),
    "aws:s3/bucket:Bucket": Actions(
        # What the provider reads back for every bucket property (s3 IAM action names, which differ
        # from the API's: GetBucketLifecycleConfiguration is s3:GetLifecycleConfiguration, ...).
        read=(
            "s3:ListBucket",
            "s3:GetBucketLocation",
            "s3:GetBucketTagging",
            "s3:GetBucketPolicy",
            "s3:GetBucketAcl",
            "s3:GetBucketCORS",
            "s3:GetBucketWebsite",
            "s3:GetBucketVersioning",
            "s3:GetAccelerateConfiguration",
            "s3:GetBucketRequestPayment",
            "s3:GetBucketLogging",
            "s3:GetLifecycleConfiguration",
            "s3:GetReplicationConfiguration",
            "s3:GetEncryptionConfiguration",
            "s3:GetBucketObjectLockConfiguration",
        ),
        write=("s3:CreateBucket", "s3:DeleteBucket", "s3:PutBucketTagging"),
    ),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": Actions(
        read=("s3:GetLifecycleConfiguration",), write=("s3:PutLifecycleConfiguration",)
    ),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": Actions(
        read=("s3:GetBucketOwnershipControls",), write=("s3:PutBucketOwnershipControls",)
    ),
    "aws:s3/bucketPolicy:BucketPolicy": Actions(
        read=("s3:GetBucketPolicy",), write=("s3:PutBucketPolicy", "s3:DeleteBucketPolicy")
    ),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": Actions(
        read=("s3:GetBucketPublicAccessBlock",), write=("s3:PutBucketPublicAccessBlock",)
    ),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": Actions(
        read=("s3:GetEncryptionConfiguration",), write=("s3:PutEncryptionConfiguration",)
    ),
    "aws:rds/instance:Instance": Actions(
        read=("rds:DescribeDBInstances", "rds:ListTagsForResource", "rds:DescribeDBSnapshots"),
        # A final snapshot is taken on delete: DeleteDBInstance with FinalDBSnapshotIdentifier.
        write=("rds:CreateDBInstance", "rds:ModifyDBInstance", "rds:DeleteDBInstance", "rds:CreateDBSnapshot", *TAGS_RDS),
    ),
    # The snapshot before each Harbor version (kept on delete) and the database's events (issue 18).
    "aws:rds/snapshot:Snapshot": Actions(
        read=("rds:DescribeDBSnapshots", "rds:ListTagsForResource"), write=("rds:CreateDBSnapshot", *TAGS_RDS)
    ),
    "aws:rds/eventSubscription:EventSubscription": Actions(
        read=("rds:DescribeEventSubscriptions", "rds:ListTagsForResource"),
        write=("rds:CreateEventSubscription", "rds:ModifyEventSubscription", "rds:DeleteEventSubscription", *TAGS_RDS)
        + ("rds:AddSourceIdentifierToSubscription", "rds:RemoveSourceIdentifierFromSubscription"),
    ),
    "aws:rds/subnetGroup:SubnetGroup": Actions(
        read=("rds:DescribeDBSubnetGroups", "rds:ListTagsForResource"),
        write=("rds:CreateDBSubnetGroup", "rds:ModifyDBSubnetGroup", "rds:DeleteDBSubnetGroup", *TAGS_RDS),
    ),
    "aws:elasticache/replicationGroup:ReplicationGroup": Actions(
        read=("elasticache:DescribeReplicationGroups", "elasticache:DescribeCacheClusters", "elasticache:ListTagsForResource"),
        write=(
            "elasticache:CreateReplicationGroup",
            "elasticache:ModifyReplicationGroup",
            "elasticache:DeleteReplicationGroup",
            "elasticache:IncreaseReplicaCount",
            "elasticache:DecreaseReplicaCount",
            *TAGS_ELASTICACHE,
        ),
    ),
    "aws:elasticache/subnetGroup:SubnetGroup": Actions(
        read=("elasticache:DescribeCacheSubnetGroups", "elasticache:ListTagsForResource"),
        write=(
            "elasticache:CreateCacheSubnetGroup",
            "elasticache:ModifyCacheSubnetGroup",
            "elasticache:DeleteCacheSubnetGroup",
            *TAGS_ELASTICACHE,
        ),
    ),
    "aws:acm/certificate:Certificate": Actions(
        read=("acm:DescribeCertificate", "acm:ListTagsForCertificate"),
        write=("acm:RequestCertificate", "acm:DeleteCertificate", "acm:AddTagsToCertificate", "acm:RemoveTagsFromCertificate"),
    ),
    "aws:acm/certificateValidation:CertificateValidation": Actions(read=("acm:DescribeCertificate",)),
    "aws:lb/loadBalancer:LoadBalancer": Actions(
        read=(
            "elasticloadbalancing:DescribeLoadBalancers",
            "elasticloadbalancing:DescribeLoadBalancerAttributes",
            "elasticloadbalancing:DescribeTags",
            "ec2:DescribeNetworkInterfaces",
        ),
        write=(
            "elasticloadbalancing:CreateLoadBalancer",
            "elasticloadbalancing:DeleteLoadBalancer",
            "elasticloadbalancing:ModifyLoadBalancerAttributes",
            "elasticloadbalancing:SetSecurityGroups",
            "elasticloadbalancing:SetSubnets",
            "elasticloadbalancing:SetIpAddressType",
            *TAGS_ELB,
        ),
    ),
    "aws:lb/targetGroup:TargetGroup": Actions(
        read=(
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:DescribeTargetGroupAttributes",
            "elasticloadbalancing:DescribeTags",
        ),
        write=(
            "elasticloadbalancing:CreateTargetGroup",
            "elasticloadbalancing:DeleteTargetGroup",
            "elasticloadbalancing:ModifyTargetGroup",
            "elasticloadbalancing:ModifyTargetGroupAttributes",
            *TAGS_ELB,
        ),
    ),
    "aws:lb/targetGroupAttachment:TargetGroupAttachment": Actions(
        read=("elasticloadbalancing:DescribeTargetHealth",),
        write=("elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"),
    ),
    "aws:lb/listener:Listener": Actions(
        read=(
            "elasticloadbalancing:DescribeListeners",
            "elasticloadbalancing:DescribeListenerAttributes",
            "elasticloadbalancing:DescribeTags",
        ),
        write=(
            "elasticloadbalancing:CreateListener",
            "elasticloadbalancing:DeleteListener",
            "elasticloadbalancing:ModifyListener",
            "elasticloadbalancing:ModifyListenerAttributes",
            *TAGS_ELB,
        ),
    ),
    # The dynamic provider that pins the VM's SSH host key reads its console with boto3 (deploy only:
    # a preview never creates or reads it; a refresh keeps the stored key).
    "pulumi-python:dynamic/ec2:ConsoleHostKey": Actions(read=(), write=("ec2:GetConsoleOutput",)),
    # HA: the deploying machine takes a node out of the target group and back (components/aws/target_drain.py).
    "pulumi-python:dynamic/elbv2:TargetDrain": Actions(read=(), write=TARGET_DRAIN),
}
RESOURCE_ACTIONS.update({kind: Actions(*pair) for kind, pair in WATCH_ACTIONS.items()})

# Types that make no AWS call: components, SSH commands, Harbor's API, local generators.
NO_AWS_PREFIXES = ("harbor-cache:index:", "command:remote:", "pulumi-python:dynamic/harbor:", "random:index/", "tls:index/")

# What `scripts/deploy.sh` asks before a deploy (components/preflight.py): the hosted zone by name;
# sts:GetCallerIdentity needs no permission, kms:DescribeKey is in the secrets key's statement.
PREFLIGHT_ACTIONS = ("route53:ListHostedZonesByName",)

# What the policy pack reads at `up`, before each step, with the deploy's credentials (policy/aws_lookups.py: every
# reference a resource holds is looked up and must carry this stack's tag and the program's Name). The IAM reads fall
# under the /harbor-cache/ path statement like the provider's: a profile or role outside it is AccessDenied, which
# the pack refuses like any failed lookup. The preview runs no lookup.
POLICY_PACK_ACTIONS = (
    "ec2:DescribeAddresses",
    "ec2:DescribeInstances",
    "ec2:DescribeVolumes",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeKeyPairs",
    "ec2:DescribeImages",
    # What the data volume and the database are made from: this account's snapshots (review 22d S1, S2).
    "ec2:DescribeSnapshots",
    "rds:DescribeDBSnapshots",
    "iam:GetInstanceProfile",
    "iam:GetRole",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeLoadBalancers",
    "acm:ListTagsForCertificate",
    # ACM's validation record: which of this account's certificates asks for it (review 22f B2).
    "acm:ListCertificates",
    "acm:DescribeCertificate",
    "sns:ListTagsForResource",
    "s3:GetBucketTagging",
    # A bucket must be the account's own in the stack's region (S3 ListBuckets). The pack also asks
    # sts:GetCallerIdentity (the account ARNs must be of), which needs no permission (as for the preflight).
    "s3:ListAllMyBuckets",
)

# Data sources: what a preview and an up both invoke.
INVOKE_ACTIONS: dict[str, tuple[str, ...]] = {
    "aws:ec2/getSubnet:getSubnet": ("ec2:DescribeSubnets",),
    "aws:ec2/getSubnets:getSubnets": ("ec2:DescribeSubnets",),
    "aws:ec2/getVpc:getVpc": ("ec2:DescribeVpcs", "ec2:DescribeVpcAttribute"),
    "aws:ec2/getAmi:getAmi": ("ec2:DescribeImages",),
    "aws:route53/getZone:getZone": ("route53:ListHostedZones", "route53:GetHostedZone", "route53:ListTagsForResource"),
    # sts:GetCallerIdentity needs no permission; the partition is local.
    "aws:index/getCallerIdentity:getCallerIdentity": (),
    "aws:index/getPartition:getPartition": (),
}

# The path the program puts its roles and instance profile under (components/aws/vm.py).
IAM_PATH = ROLE_PATH.strip("/")
# Actions on the program's own roles and instance profiles, which live under /harbor-cache/.
IAM_PREFIX = "iam:"
# Made once per account by the service on first use: the load balancer, RDS, ElastiCache, and
# CloudWatch alarms with EC2 actions (AWSServiceRoleForCloudWatchEvents).
SERVICE_LINKED_ROLES = (
    "elasticloadbalancing.amazonaws.com",
    "rds.amazonaws.com",
    "elasticache.amazonaws.com",
    "events.amazonaws.com",
)
# The EBS encryption grants a customer-managed kmsKeyArn needs (docs/security.md, "Encryption").
EBS_KMS_ACTIONS = (
    "kms:CreateGrant",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:Decrypt",
    "kms:DescribeKey",
)


def needs_aws(resource_type: str) -> bool:
    return not resource_type.startswith(NO_AWS_PREFIXES)


def _statement(sid: str, actions: set[str], resources: list[str] | str, condition: dict | None = None) -> dict:
    statement: dict = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def _iam_resources() -> list[str]:
    return [f"arn:aws:iam::*:role/{IAM_PATH}/*", f"arn:aws:iam::*:instance-profile/{IAM_PATH}/*"]


def _state_statements(bucket: str | None, key_arn: str | None, write: bool) -> list[dict]:
    """The DIY backend's objects (pulumi pkg/backend/diy: .pulumi/stacks/<project>/<stack>.json,
    history/, backups/, locks/) and the stack's KMS secrets key."""
    statements = []
    if bucket:
        arn = f"arn:aws:s3:::{bucket}"
        statements.append(_statement("StateBucketList", {"s3:ListBucket"}, arn, {"StringLike": {"s3:prefix": [".pulumi/*"]}}))
        objects = [f"{arn}/.pulumi/meta.yaml", f"{arn}/.pulumi/stacks/harbor-cache/*"]
        actions = {"s3:GetObject"}
        if write:
            objects += [f"{arn}/.pulumi/{folder}/harbor-cache/*" for folder in ("history", "backups", "locks")]
            actions |= {"s3:PutObject", "s3:DeleteObject"}
        statements.append(_statement("StateObjects", actions, objects))
    if key_arn:
        actions = {"kms:Decrypt", "kms:Encrypt", "kms:DescribeKey"} if write else {"kms:Decrypt"}
        statements.append(_statement("StackSecretsKey", actions, key_arn))
    return statements


def deploy_policy(state_bucket: str | None = None, secrets_key_arn: str | None = None, ebs_key_arn: str | None = None) -> dict:
    actions = {a for entry in RESOURCE_ACTIONS.values() for a in (*entry.read, *entry.write)}
    actions |= {a for invoke in INVOKE_ACTIONS.values() for a in invoke} | set(PREFLIGHT_ACTIONS) | set(POLICY_PACK_ACTIONS)
    statements = [
        _statement("ProgramResources", {a for a in actions if not a.startswith(IAM_PREFIX)}, "*"),
        _statement("OwnRolesUnderHarborCachePath", {a for a in actions if a.startswith(IAM_PREFIX)}, _iam_resources()),
        # RunInstances passes the instance role (through its profile), CreateLifecyclePolicy the DLM
        # role, and AddRoleToInstanceProfile needs PassRole as well, where no service is named: the
        # path is the limit, not iam:PassedToService.
        _statement("PassOwnRoles", {"iam:PassRole"}, f"arn:aws:iam::*:role/{IAM_PATH}/*"),
        _statement(
            "ServiceLinkedRoles",
            {"iam:CreateServiceLinkedRole"},
            "*",
            {"StringEquals": {"iam:AWSServiceName": list(SERVICE_LINKED_ROLES)}},
        ),
    ]
    if ebs_key_arn:
        statements.append(_statement("EbsKey", set(EBS_KMS_ACTIONS), ebs_key_arn))
    statements += _state_statements(state_bucket, secrets_key_arn, write=True)
    return {"Version": "2012-10-17", "Statement": statements}


def preview_policy(state_bucket: str | None = None, secrets_key_arn: str | None = None) -> dict:
    actions = {a for entry in RESOURCE_ACTIONS.values() for a in entry.read}
    actions |= {a for invoke in INVOKE_ACTIONS.values() for a in invoke}
    statements = [
        _statement("ReadProgramResources", {a for a in actions if not a.startswith(IAM_PREFIX)}, "*"),
        _statement("ReadOwnRoles", {a for a in actions if a.startswith(IAM_PREFIX)}, _iam_resources()),
    ]
    statements += _state_statements(state_bucket, secrets_key_arn, write=False)
    return {"Version": "2012-10-17", "Statement": statements}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.aws.deploy_permissions", description=__doc__.split("\n\n")[0])
    parser.add_argument("role", choices=("deploy", "preview"))
    parser.add_argument("--state-bucket", help="the S3 bucket of PULUMI_BACKEND_URL (s3://<bucket>)")
    parser.add_argument("--secrets-key-arn", help="the stack's KMS key (its secrets provider)")
    parser.add_argument("--ebs-key-arn", help="kmsKeyArn, when the stack sets one (deploy only)")
    options = parser.parse_args(argv)
    if options.role == "deploy":
        policy = deploy_policy(options.state_bucket, options.secrets_key_arn, options.ebs_key_arn)
    else:
        policy = preview_policy(options.state_bucket, options.secrets_key_arn)
    json.dump(policy, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
