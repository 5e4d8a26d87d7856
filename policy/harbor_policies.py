"""harbor-cache's promises as mandatory policies: deny by default, one check per resource type.

`ALLOWED` is the table of every resource type the program creates (tests derive the list from the
program under mocks and compare), each with the one function that judges it. Any other type is
refused by `only-the-programs-resource-types`, with the reason for the types a review tried
(`REFUSED_WITH_REASON`). Values a check needs but cannot read fail closed and say why: an
unparseable policy document or CIDR always, a value unknown at preview too, except the few fields
(`KNOWN_ONLY_AT_UP`) that the program's own resources take from resources created in the same
update; those are judged at `up` (where the engine hands the analyzer known inputs and a mandatory
violation stops the resource before it is created) and their origin at preview by the stack checks
(property dependencies, known at preview). Exemptions belong to resources the program creates,
recognised by their URN (component and name), never by a tag alone: `tags` may not carry the
program's `harbor-cache:` prefix (components/settings/readers.py), and a tag on any other resource counts
for nothing.

Here: the table and the wiring. reading.py: how the pack reads what the engine sends and fails
closed (`KNOWN_ONLY_AT_UP`); resource_checks.py: the checks; stack_checks.py: the checks across
resources; aws_lookups.py: at `up`, the same references looked up in AWS before each step. Every
message says what to change. tests/policy/test_policies.py and tests/policy/test_policy_bypass.py run
the pack through the analyzer's gRPC protocol as the engine does.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from aws_lookups import POLICY as AWS_LOOKUPS_POLICY
from aws_lookups import STACK_TAG_POLICY, references_are_the_stacks_own, the_stack_tag_marks_the_programs_own
from fields import POLICY as FIELDS_POLICY
from fields import only_the_programs_fields
from group_checks import GROUP_CHECKS
from pulumi_policy import (
    EnforcementLevel,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from reading import PROJECT, Resource, Review, Violation, component, plain
from resource_checks import (
    acm_certificate,
    cloudwatch_dashboard,
    cloudwatch_metric_alarm,
    default_provider,
    dlm_lifecycle_policy,
    ebs_volume,
    ec2_eip,
    ec2_eip_association,
    ec2_instance,
    ec2_key_pair,
    ec2_security_group,
    elasticache_replication_group,
    event_target,
    harbor_api_client,
    harbor_oidc_auth,
    harbor_registry,
    harbor_robot,
    harbor_system_settings,
    iam_role,
    iam_role_policy,
    iam_role_policy_attachment,
    load_balancer,
    load_balancer_listener,
    nothing_to_check,
    program_tags_from_elsewhere,
    programs_component,
    random_bytes,
    random_password,
    rds_instance,
    rds_snapshot,
    remote_command,
    route53_record,
    s3_bucket,
    s3_bucket_policy,
    s3_encryption,
    s3_lifecycle,
    s3_ownership,
    s3_public_access_block,
    sns_topic,
    sns_topic_policy,
    sns_topic_subscription,
    tls_private_key,
    tls_self_signed_cert,
)
from stack_checks import STACK_CHECKS as CHECKS_ACROSS_RESOURCES
from stack_checks import StackCheck, StackResource

# Every stack check: where values come from (stack_checks.py), the VM's groups exact against the settings (group_checks.py).
STACK_CHECKS: dict[str, tuple[str, StackCheck]] = {**CHECKS_ACROSS_RESOURCES, **GROUP_CHECKS}

# Every type the program creates (tests/policy/test_policies.py derives the list from the program under
# mocks in each mode and compares), and the engine's own, each with its one check.
ALLOWED: dict[str, Callable[[Review], None]] = {
    # The engine's: the stack, the default providers of the packages the program uses.
    "pulumi:pulumi:Stack": nothing_to_check,
    "pulumi:providers:aws": default_provider,
    "pulumi:providers:command": default_provider,
    "pulumi:providers:random": default_provider,
    "pulumi:providers:tls": default_provider,
    "pulumi:providers:pulumi-python": default_provider,
    # The program's components (no inputs of their own).
    **{
        component(name): nothing_to_check
        for name in (
            "HarborCache",
            "HarborVm",
            "HarborInstall",
            "HarborConfig",
            "HarborDns",
            "HarborCaa",
            "HarborProbe",
            "HarborAlarms",
            "HarborStorage",
            "HarborDataServices",
            "HarborSharedSecrets",
            "HarborLoadBalancer",
            "HarborUpgradeHold",
            "HarborBackupWatch",
            "HarborDashboard",
        )
    },  # fmt: skip
    # The VM.
    "aws:ec2/instance:Instance": ec2_instance,
    "aws:ebs/volume:Volume": ebs_volume,
    "aws:ec2/volumeAttachment:VolumeAttachment": nothing_to_check,
    "aws:ec2/securityGroup:SecurityGroup": ec2_security_group,
    "aws:ec2/eip:Eip": ec2_eip,
    "aws:ec2/eipAssociation:EipAssociation": ec2_eip_association,
    "aws:ec2/keyPair:KeyPair": ec2_key_pair,
    "aws:iam/role:Role": iam_role,
    "aws:iam/rolePolicy:RolePolicy": iam_role_policy,
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": iam_role_policy_attachment,
    "aws:iam/instanceProfile:InstanceProfile": nothing_to_check,  # its role: stack check
    "aws:dlm/lifecyclePolicy:LifecyclePolicy": dlm_lifecycle_policy,
    "pulumi-python:dynamic/ec2:ConsoleHostKey": nothing_to_check,
    "pulumi-python:dynamic/ec2:InstanceRunning": nothing_to_check,  # starts the VM after a volume swap
    "tls:index/privateKey:PrivateKey": tls_private_key,
    "command:remote:Command": remote_command,
    # DNS, alarms.
    "aws:route53/record:Record": route53_record,
    "aws:cloudwatch/metricAlarm:MetricAlarm": cloudwatch_metric_alarm,
    "aws:sns/topic:Topic": sns_topic,
    "aws:sns/topicSubscription:TopicSubscription": sns_topic_subscription,
    # Backups seen, and the dashboard (issue 19).
    "aws:sns/topicPolicy:TopicPolicy": sns_topic_policy,
    "aws:cloudwatch/eventRule:EventRule": nothing_to_check,  # a pattern; what it may reach: its target
    "aws:cloudwatch/eventTarget:EventTarget": event_target,
    "aws:cloudwatch/dashboard:Dashboard": cloudwatch_dashboard,
    # Harbor's configuration (dynamic providers) and generated secrets.
    "pulumi-python:dynamic/harbor:Registry": harbor_registry,
    "pulumi-python:dynamic/harbor:Project": harbor_api_client,
    "pulumi-python:dynamic/harbor:OidcAuth": harbor_oidc_auth,
    "pulumi-python:dynamic/harbor:GcSchedule": harbor_api_client,
    "pulumi-python:dynamic/harbor:Robot": harbor_robot,
    "pulumi-python:dynamic/harbor:SystemSettings": harbor_system_settings,
    "random:index/randomPassword:RandomPassword": random_password,
    "random:index/randomBytes:RandomBytes": random_bytes,
    "random:index/randomId:RandomId": nothing_to_check,  # a snapshot name's suffix, no secret
    "tls:index/selfSignedCert:SelfSignedCert": tls_self_signed_cert,
    # storage: s3.
    "aws:s3/bucket:Bucket": s3_bucket,
    "aws:s3/bucketPolicy:BucketPolicy": s3_bucket_policy,
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": s3_public_access_block,
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": s3_encryption,
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": s3_ownership,
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": s3_lifecycle,
    # externalServices.
    "aws:rds/instance:Instance": rds_instance,
    "aws:rds/subnetGroup:SubnetGroup": nothing_to_check,
    # A snapshot of the (encrypted) instance is encrypted with its key and shared with no one; the events go to an
    # SNS topic.
    "aws:rds/snapshot:Snapshot": rds_snapshot,
    "aws:rds/eventSubscription:EventSubscription": nothing_to_check,
    "aws:elasticache/replicationGroup:ReplicationGroup": elasticache_replication_group,
    "aws:elasticache/subnetGroup:SubnetGroup": nothing_to_check,
    # replicas > 1: the load balancer.
    "aws:lb/loadBalancer:LoadBalancer": load_balancer,
    "aws:lb/listener:Listener": load_balancer_listener,
    "aws:lb/targetGroup:TargetGroup": nothing_to_check,
    "aws:lb/targetGroupAttachment:TargetGroupAttachment": nothing_to_check,
    # The deploying machine takes a node out of the target group and back (components/aws/target_drain.py).
    "pulumi-python:dynamic/elbv2:TargetDrain": nothing_to_check,
    "aws:acm/certificate:Certificate": acm_certificate,
    "aws:acm/certificateValidation:CertificateValidation": nothing_to_check,
}

# Types reviews used to get around the rules, with why they are refused (any other unknown type is
# refused as well, with the generic message).
_IMDS = "carries its own instance metadata options, which would bypass the IMDS rules of instances"
_RULES = "stand-alone rules are judged one by one; the program writes its rules inline in the group"
REFUSED_WITH_REASON: dict[str, str] = {
    "aws:ec2/launchTemplate:LaunchTemplate": _IMDS,
    "aws:ec2/spotInstanceRequest:SpotInstanceRequest": _IMDS,
    "aws:ec2/spotFleetRequest:SpotFleetRequest": _IMDS,
    "aws:ec2/fleet:Fleet": _IMDS,
    "aws:autoscaling/group:Group": _IMDS,
    "aws:ec2/instanceMetadataDefaults:InstanceMetadataDefaults": "sets every new instance's metadata defaults in the region",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "rewrites the VPC's default group, which any instance may join",
    "aws:ec2/managedPrefixList:ManagedPrefixList": "its entries are invisible to the rules that name it",
    "aws:ec2/securityGroupRule:SecurityGroupRule": _RULES,
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": _RULES,
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": _RULES,
    "aws:lb/listenerRule:ListenerRule": "may forward plain HTTP; the program's listeners have only default actions",
    "aws:alb/listener:Listener": "the program uses aws:lb/listener:Listener",
    "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive": "attaches managed policies to any role",
    "aws:iam/policyAttachment:PolicyAttachment": "attaches a managed policy exclusively across roles, users and groups",
    "aws:iam/policy:Policy": "a managed policy can be attached anywhere; the program's permissions are role policies",
    "aws:iam/user:User": "the program creates no IAM users",
    "command:local:Command": "runs on the machine that runs pulumi, with its credentials; the program runs nothing locally",
}


def only_the_programs_types(resource: Resource) -> list[Violation]:
    if resource.type in ALLOWED:
        return []
    reason = REFUSED_WITH_REASON.get(resource.type, "the program does not create this type")
    return [
        f"{resource.type} is not a type harbor-cache creates ({reason}): the pack refuses every type outside its "
        "reviewed table (policy/harbor_policies.py ALLOWED); add the type there with its check if the program needs it"
    ]


def review_resource(resource: Resource) -> list[Violation]:
    """The one check of the resource's type (refused types are `only_the_programs_types`' business)."""
    check = ALLOWED.get(resource.type)
    if check is None:
        return []
    review = Review(resource)
    check(review)
    return review.problems


# ---------------------------------------------------------------------------------------------
# The pack


def _slug(resource_type: str) -> str:
    return re.sub(
        r"[^a-z0-9]+",
        "-",
        resource_type.split(":")[-1].lower() if resource_type.startswith(f"{PROJECT}:") else resource_type.lower(),
    ).strip("-")


def _resource_policy(name: str, description: str, judge: Callable[[Resource], list[Violation]]) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation) -> None:
        provider = plain(args.provider.props) if args.provider is not None else None
        resource = Resource(args.resource_type, args.name, args.urn, plain(args.props), bool(args.opts.protect), provider)
        for message in judge(resource):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=EnforcementLevel.MANDATORY
    )


def _type_policy(resource_type: str, check: Callable[[Review], None]) -> ResourceValidationPolicy:
    def judge(resource: Resource) -> list[Violation]:
        return review_resource(resource) if resource.type == resource_type else []

    description = (check.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    return _resource_policy(_slug(resource_type), f"{resource_type}: {description}", judge)


def _stack_policy(name: str, description: str, check: StackCheck) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation) -> None:
        resources = [
            StackResource(
                r.resource_type,
                r.name,
                r.urn,
                plain(r.props),
                {key: [dep.urn for dep in deps] for key, deps in (r.property_dependencies or {}).items()},
            )
            for r in args.resources
        ]
        for message in check(resources):
            report_violation(message, None)

    return StackValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=EnforcementLevel.MANDATORY
    )


POLICIES = [
    _resource_policy(
        "only-the-programs-resource-types",
        "Every resource is of a type the program creates (the reviewed table ALLOWED); any other type is refused.",
        only_the_programs_types,
    ),
    _resource_policy(
        FIELDS_POLICY,
        "Every field a resource sets is one the program sets (the reviewed table policy/fields.py FIELDS), or one its "
        "provider fills itself; any other field is refused.",
        only_the_programs_fields,
    ),
    _resource_policy(
        "components-are-the-programs",
        "A component of the program's types is the program's one, under HarborCache, named as the program names it.",
        programs_component,
    ),
    _resource_policy(
        "program-tags-come-from-the-program",
        "No provider default tag and no tagsAll entry carries the program's harbor-cache: tag keys.",
        program_tags_from_elsewhere,
    ),
    *(_type_policy(kind, check) for kind, check in ALLOWED.items() if check is not nothing_to_check),
    _resource_policy(
        AWS_LOOKUPS_POLICY,
        "At up, before the step: every reference to another AWS object (a remote command's host, an instance profile, "
        "security groups, instances, volumes, Elastic IPs, key pairs, target groups, certificates, topics, roles, the "
        "registry's bucket) names one AWS shows tagged as this stack's own, with the program's Name for it.",
        references_are_the_stacks_own,
    ),
    _resource_policy(
        STACK_TAG_POLICY,
        "Only the program's own resources carry the harbor-cache:stack tag, with their own name and stack (the lookups at up "
        "trust it).",
        the_stack_tag_marks_the_programs_own,
    ),
    *(_stack_policy(name, description, check) for name, (description, check) in STACK_CHECKS.items()),
]
