"""Deny by default for fields (issue 22): every input field the program sets, per type, each classified.

The pack refuses every type outside its table (harbor_policies.py ALLOWED); `FIELDS` does the same one level down.
For each allowed type it lists every input field the program sets (a path down to the leaves of the nested objects
it sets: `metadataOptions.httpTokens`, `connection.host`; `[]` an element of a list, `ingress[].securityGroups[]`),
each classified:

- `Value(why)`: which check judges it, or why any value is harmless;
- `Whole(why)`: a map or free-shaped value taken whole (`tags`, an alarm's `dimensions`), with the same why;
- `Reference(sources, preview, lookup)`: it names another object; at preview the stack check `preview` judges that
  it comes from one of the program's `sources` (type, owner component, name part, the output it holds), at `up`
  the lookup `lookup` (policy/aws_lookups.py) finds it in AWS as this stack's own. These rows are the one place that
  names each reference: aws_lookups.py REFERENCES and stack_checks.py IDENTITY_SOURCES, NOTIFICATION_SOURCES and
  GROUP_REFERENCES are derived from them.

`only-the-programs-fields` refuses any other field that is set (not absent, not null), naming the type, the field
and the fix, except what the provider itself fills in Check before the engine hands the inputs to the analyzer
(pulumi pkg/resource/deploy/step_generator.go: `Analyze` gets the checked inputs): see `provider_filled`.
tests/policy/test_fields.py derives, from the program under mocks in every mode, the fields it sets per type and
compares them with this table both ways.

How to add a field: set it in the program, add its row here with the check that judges it (write the check first
when none does) or the reason any value is harmless; a field naming another object is a `Reference`, with its stack
check and its up-time lookup. The test then agrees.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import provider_defaults
from reading import Resource, Violation, is_unknown

POLICY = "only-the-programs-fields"
# sdk/go/common/resource/sig/sig.go Secret: a marshalled secret (pulumi_policy unwraps it; the mocks' view does not).
SECRET_SIGNATURE_KEY = "4dabf18193072939515e22adb298388d"  # noqa: S105 (a marker, no secret)


@dataclass(frozen=True)
class Value:
    why: str


@dataclass(frozen=True)
class Whole:
    """A map (or a free-shaped value) the walk does not descend into."""

    why: str


# A reference's source: the program's resource of that type, under that component, named <component's name>-<part>,
# and the output the reference holds.
Source = tuple[str, str, str, str]


@dataclass(frozen=True)
class Reference:
    sources: tuple[Source, ...]
    preview: str  # the stack check that judges the origin at preview (harbor_policies.py STACK_CHECKS)
    lookup: str  # the up-time lookup: aws_lookups.py REFERENCES has (type, path)


Field = Value | Whole | Reference

_NODE = r"(?:[1-9][0-9]*-)?"
INSTANCE: Source = ("aws:ec2/instance:Instance", "HarborVm", f"{_NODE}instance", "id")
VOLUME: Source = ("aws:ebs/volume:Volume", "HarborVm", f"{_NODE}data", "id")
EIP: Source = ("aws:ec2/eip:Eip", "HarborVm", f"{_NODE}eip", "id")
EIP_ADDRESS: Source = ("aws:ec2/eip:Eip", "HarborVm", f"{_NODE}eip", "publicIp")
KEY_PAIR: Source = ("aws:ec2/keyPair:KeyPair", "HarborVm", "key-pair", "keyName")
SSH_KEY: Source = ("tls:index/privateKey:PrivateKey", "HarborVm", "ssh-key", "publicKeyOpenssh")
TOKEN_KEY: Source = ("tls:index/privateKey:PrivateKey", "HarborSharedSecrets", "token-key", "privateKeyPem")
PROFILE: Source = ("aws:iam/instanceProfile:InstanceProfile", "HarborVm", "profile", "name")
INSTANCE_ROLE: Source = ("aws:iam/role:Role", "HarborVm", "role", "name")
DLM_ROLE: Source = ("aws:iam/role:Role", "HarborVm", "dlm-role", "name")
DLM_ROLE_ARN: Source = ("aws:iam/role:Role", "HarborVm", "dlm-role", "arn")
VM_GROUP: Source = ("aws:ec2/securityGroup:SecurityGroup", "HarborVm", "sg", "id")
LB_GROUP: Source = ("aws:ec2/securityGroup:SecurityGroup", "HarborLoadBalancer", "sg", "id")
DB_GROUP: Source = ("aws:ec2/securityGroup:SecurityGroup", "HarborDataServices", "db-sg", "id")
REDIS_GROUP: Source = ("aws:ec2/securityGroup:SecurityGroup", "HarborDataServices", "redis-sg", "id")
CLIENT_GROUP: Source = ("aws:ec2/securityGroup:SecurityGroup", "HarborDataServices", "client-sg", "id")
TARGET_GROUP: Source = ("aws:lb/targetGroup:TargetGroup", "HarborLoadBalancer", "nodes", "arn")
ISSUED: Source = (
    "aws:acm/certificateValidation:CertificateValidation",
    "HarborLoadBalancer",
    "certificate-issued",
    "certificateArn",
)
CERTIFICATE: Source = ("aws:acm/certificate:Certificate", "HarborLoadBalancer", "certificate", "arn")
# ACM's validation CNAME of the program's certificate: its domainValidationOptions[] (pulumi-aws acm.Certificate output,
# CertificateDomainValidationOption resourceRecordName/Type/Value; ACM DescribeCertificate DomainValidation
# ResourceRecord Name/Type/Value), which components/aws/load_balancer.py writes as the validation record (review 22f B2).
VALIDATION: Source = ("aws:acm/certificate:Certificate", "HarborLoadBalancer", "certificate", "domainValidationOptions")
# The stack's ACME account, which the one-VM CAA record names (components/aws/caa.py caa_records).
ACME_ACCOUNT: Source = ("command:remote:Command", "HarborCaa", "acme-account", "stdout")
ALARM_TOPIC: Source = ("aws:sns/topic:Topic", "HarborAlarms", "topic", "arn")
EVENTS_TOPIC: Source = ("aws:sns/topic:Topic", "HarborDataServices", "events", "arn")
BUCKET: Source = ("aws:s3/bucket:Bucket", "HarborStorage", "bucket", "id")
BALANCER_NAME: Source = ("aws:lb/loadBalancer:LoadBalancer", "HarborLoadBalancer", "alb", "dnsName")

IDENTITIES = "identities-come-from-the-program"
NOTIFICATIONS = "notifications-go-to-the-programs-topics"
GROUPS = "security-groups-are-the-programs"
ROLES = "role-grants-land-on-the-right-role"
RUN_AS = "instances-run-as-the-programs-role"
COMMANDS = "remote-commands-reach-the-programs-vms"
CACHE_NAME = "the-caches-name-is-the-programs"
ALARMS = "alarms-notify-the-programs-topic"
BUCKET_GRANT = "registry-grant-names-the-programs-bucket"

TAGS = Whole(
    "tags: no harbor-cache: key from settings (components/settings/readers.py), the stack tag only on the program's own "
    "resources with their Name (the-stack-tag-marks-the-programs-own), exemptions by URN, never by tag"
)
DESCRIPTION = Value("free text AWS shows; it grants nothing")
REGION = Value("the stack's region the provider's code calls (the dynamic provider's own boto3 client); no access")
SETTING_VPC = Value("the stack's VPC/subnets from settings (components/aws/placement.py checked_vpc_id); placement only")
HARBOR_URL = Value("where Harbor's admin password goes: harbor_api_client (the cache or loopback only)")
HARBOR_LOGIN = Value("the admin user and password sent to harbor_url, which harbor_api_client judges")
DATABASE = Value("the provider's record of which Harbor database it talks to (components/harbor/provider_base.py); no access")
TIMING = Value("how long / how often the provider's code polls; bounded by its Check")


def _harbor(**rows: Field) -> dict[str, Field]:
    return {
        "harbor_url": HARBOR_URL,
        "harbor_username": HARBOR_LOGIN,
        "harbor_password": HARBOR_LOGIN,
        "database": DATABASE,
        **rows,
    }


def _group_rules(direction: str) -> dict[str, Field]:
    judged = f"ec2_security_group (_rules, _{'ingress' if direction == 'ingress' else 'egress'}_problems), " + (
        "vm-group-admits-exactly-the-settings, load-balancer-admits-allowed-cidrs-and-its-nodes"
    )
    return {
        f"{direction}[].protocol": Value(judged),
        f"{direction}[].fromPort": Value(judged),
        f"{direction}[].toPort": Value(judged),
        f"{direction}[].cidrBlocks[]": Value(judged),
        f"{direction}[].ipv6CidrBlocks[]": Value(judged),
        f"{direction}[].description": DESCRIPTION,
        f"{direction}[].securityGroups[]": Reference(
            (VM_GROUP, LB_GROUP, DB_GROUP, REDIS_GROUP, CLIENT_GROUP), GROUPS, "security_group"
        ),
    }


_S3 = Reference((BUCKET,), IDENTITIES, "bucket")
_DIMENSION = Value("which metric the alarm reads; it grants nothing")

FIELDS: dict[str, dict[str, Field]] = {
    # The VM.
    "aws:ec2/instance:Instance": {
        "ami": Value(
            "ec2_instance reads it not; at up aws_lookups launch_image: Canonical's Ubuntu image as vm.py "
            "chooses it (review 22c F2)"
        ),
        "availabilityZone": SETTING_VPC,
        "iamInstanceProfile": Reference((PROFILE,), RUN_AS, "instance_profile"),
        "instanceType": Value("the settings' instance type; size and cost only"),
        "keyName": Reference((KEY_PAIR,), IDENTITIES, "key_pair"),
        "metadataOptions.httpEndpoint": Value("_imds_options (IMDS on; the rules bind the tokens and hop limit)"),
        "metadataOptions.httpPutResponseHopLimit": Value("_imds_options: 1; it grants nothing"),
        "metadataOptions.httpTokens": Value("_imds_options: required"),
        "rootBlockDevice.deleteOnTermination": Value("the root disk holds no data (the data volume does); cost only"),
        "rootBlockDevice.encrypted": Value("ec2_instance disks(): encrypted"),
        "rootBlockDevice.kmsKeyId": Value("ec2_instance disks() (stacks_kms_key): the stack's kmsKeyArn setting or none"),
        "rootBlockDevice.volumeSize": Value("size only; it grants nothing"),
        "rootBlockDevice.volumeType": Value("gp3; performance only"),
        "subnetId": SETTING_VPC,
        "tags": TAGS,
        "userData": Value("ec2_instance user_data(): no credential shapes"),
        "vpcSecurityGroupIds[]": Reference((VM_GROUP, CLIENT_GROUP), GROUPS, "security_group"),
    },
    "aws:ebs/volume:Volume": {
        "availabilityZone": SETTING_VPC,
        "encrypted": Value("ebs_volume: encrypted"),
        "kmsKeyId": Value("ebs_volume (stacks_kms_key): the stack's kmsKeyArn setting or none"),
        "size": Value("size only; it grants nothing"),
        "snapshotId": Value(
            "the settings' dataVolumeSnapshotId; ebs_volume: node 0's data volume only, protected; at up aws_lookups "
            "own_ebs_snapshot: a snapshot of this account"
        ),
        "tags": TAGS,
        "type": Value("gp3; performance only"),
    },
    "aws:ec2/volumeAttachment:VolumeAttachment": {
        "deviceName": Value("the device name on the program's instance; no access"),
        "instanceId": Reference((INSTANCE,), IDENTITIES, "instance"),
        "stopInstanceBeforeDetaching": Value("a clean detach of the program's volume; no access"),
        "volumeId": Reference((VOLUME,), IDENTITIES, "data_volume"),
    },
    "aws:ec2/securityGroup:SecurityGroup": {
        "description": DESCRIPTION,
        "tags": TAGS,
        "vpcId": SETTING_VPC,
        **_group_rules("ingress"),
        **_group_rules("egress"),
    },
    "aws:ec2/eip:Eip": {"domain": Value("vpc; ec2_eip: attached by the association only"), "tags": TAGS},
    "aws:ec2/eipAssociation:EipAssociation": {
        "allocationId": Reference((EIP,), IDENTITIES, "elastic_ip_by_allocation"),
        "instanceId": Reference((INSTANCE,), IDENTITIES, "instance"),
    },
    "aws:ec2/keyPair:KeyPair": {
        "publicKey": Reference((SSH_KEY,), IDENTITIES, "none: a public key cannot be looked up (docs/security.md)"),
        "tags": TAGS,
    },
    "aws:iam/role:Role": {
        "assumeRolePolicy": Value("iam_role trust(): EC2 or DLM only"),
        "description": DESCRIPTION,
        "path": Value("/; the name's prefix only"),
        "tags": TAGS,
    },
    "aws:iam/rolePolicy:RolePolicy": {
        "policy": Value("iam_role_policy: statements only DNS-01, metrics, the registry's bucket"),
        "role": Reference((INSTANCE_ROLE,), ROLES, "role_by_name"),
    },
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": {
        "policyArn": Value("iam_role_policy_attachment: the DLM service policy only"),
        "role": Reference((DLM_ROLE,), ROLES, "role_by_name"),
    },
    "aws:iam/instanceProfile:InstanceProfile": {
        "path": Value("/; the name's prefix only"),
        # Swapped in place, the role is what the running instance gets credentials for (IAM AddRoleToInstanceProfile).
        "role": Reference((INSTANCE_ROLE,), RUN_AS, "role_by_name"),
        "tags": TAGS,
    },
    "aws:dlm/lifecyclePolicy:LifecyclePolicy": {
        "description": DESCRIPTION,
        "executionRoleArn": Reference((DLM_ROLE_ARN,), ROLES, "role_by_arn"),
        "policyDetails.resourceTypes[]": Value("dlm_lifecycle_policy: volumes, snapshots only"),
        "policyDetails.schedules[].copyTags": Value("dlm_lifecycle_policy; tags of the program's volume only"),
        "policyDetails.schedules[].createRule.interval": Value("dlm_lifecycle_policy; when snapshots are taken"),
        "policyDetails.schedules[].createRule.intervalUnit": Value("dlm_lifecycle_policy; when snapshots are taken"),
        "policyDetails.schedules[].createRule.times": Value("dlm_lifecycle_policy; when snapshots are taken"),
        "policyDetails.schedules[].name": DESCRIPTION,
        "policyDetails.schedules[].retainRule.interval": Value("how long snapshots are kept; in this account"),
        "policyDetails.schedules[].retainRule.intervalUnit": Value("how long snapshots are kept; in this account"),
        "policyDetails.targetTags": Whole("which volumes: the program's data volume's tags (dlm_lifecycle_policy)"),
        "state": Value("ENABLED; off only stops snapshots"),
        "tags": TAGS,
    },
    "tls:index/privateKey:PrivateKey": {
        "algorithm": Value("tls_private_key, by name: the SSH key ED25519, Harbor's token signing key RSA"),
        "rsaBits": Value("tls_private_key: the token signing key's at least the program's (TOKEN_KEY_BITS, 4096)"),
    },
    # Harbor's token service certificate (HA, components/vm/shared_secrets.py): every node's registry trusts it to
    # verify the bearer tokens core signs with the token key.
    "tls:index/selfSignedCert:SelfSignedCert": {
        "allowedUses[]": Value("tls_self_signed_cert: the program's, digital_signature and cert_signing"),
        "isCaCertificate": Value("tls_self_signed_cert: true, as prepare's `req -x509` makes it"),
        # A literal key (one its author keeps) would make a certificate for tokens signed with another key than the
        # program's. No up-time lookup: the key is no AWS object; the stack check compares the value (at up, and at a
        # preview where the key is known) with the token key's. terraform-provider-tls v4.0.0 (CHANGELOG:
        # "tls_self_signed_cert: Attribute `private_key_pem` is stored (and returned) _as-is_") keeps the PEM itself in
        # the certificate's outputs, which AnalyzeStack gets (pulumi step_generator.go AnalyzeResources), not a hash.
        "privateKeyPem": Reference((TOKEN_KEY,), IDENTITIES, "none: a private key is no AWS object (docs/security.md)"),
        "validityPeriodHours": Value("tls_self_signed_cert: at least the program's 10 years (TOKEN_CERT_VALIDITY_HOURS)"),
    },
    "command:remote:Command": {
        "connection.host": Reference((EIP_ADDRESS,), COMMANDS, "elastic_ip_on_its_instance"),
        "connection.hostKey": Value("remote_command connection(): pinned; remote-commands-reach-the-programs-vms: the VM's"),
        "connection.privateKey": Value("the stack's SSH key (remote-commands-reach-the-programs-vms); a key, sent nowhere"),
        "connection.user": Value("the login user on the program's VM"),
        "connection.dialErrorLimit": TIMING,
        "connection.perDialTimeout": TIMING,
        "create": Value("remote_command credentials(): no credential shapes; runs on the program's VM only"),
        "stdin": Value("the sanctioned path for secrets (remote_command), to the pinned host only"),
        "triggers": Whole("values whose change reruns the command; remote_command credentials() reads them"),
    },
    # DNS, alarms.
    "aws:route53/record:Record": {
        "aliases[].evaluateTargetHealth": Value("alias health only; it grants nothing"),
        "aliases[].name": Reference((BALANCER_NAME,), CACHE_NAME, "load_balancer_by_dns_name"),
        "aliases[].zoneId": Value("the load balancer's canonical zone (the-caches-name-is-the-programs)"),
        "allowOverwrite": Value("route53_record; it grants nothing"),
        "name": Value(
            "route53_record: the cache's name (ACM's under it), never the DNS-01 name (dns01-names-the-programs-hostname); "
            "ACM's validation record's is its certificate's resourceRecordName (the-caches-name-is-the-programs; at up "
            "with records[]'s lookup)"
        ),
        # One row for the program's three records (review 22f B2): the A record holds the EIP's address (one VM), ACM's
        # validation CNAME its certificate's resourceRecordValue, the CAA record the stack's ACME account (one VM) or
        # the program's literal ACM set (replicas > 1, judged by shape). At up the lookup goes by the record's type:
        # an A value an Elastic IP of the stack's, the CNAME one of this stack's certificate's validation records, CAA
        # values nothing (no AWS object; docs/security.md residuals).
        "records[]": Reference((EIP_ADDRESS, VALIDATION, ACME_ACCOUNT), CACHE_NAME, "record_values"),
        "ttl": Value("caching time only; it grants nothing"),
        "type": Value(
            "route53_record (A for the cache's name, CAA, CNAME validation); the validation record's is its "
            "certificate's resourceRecordType (the-caches-name-is-the-programs; at up with records[]'s lookup)"
        ),
        "zoneId": Value("the settings' hosted zone (components/aws/dns.py); the names in it are route53_record's"),
    },
    "aws:cloudwatch/metricAlarm:MetricAlarm": {
        "alarmActions[]": Reference((ALARM_TOPIC,), ALARMS, "topic"),
        "okActions[]": Reference((ALARM_TOPIC,), ALARMS, "topic"),
        "alarmDescription": DESCRIPTION,
        "comparisonOperator": _DIMENSION,
        "datapointsToAlarm": _DIMENSION,
        "dimensions": Whole("which metric the alarm reads; it grants nothing"),
        "evaluationPeriods": _DIMENSION,
        "metricName": _DIMENSION,
        "namespace": _DIMENSION,
        "period": _DIMENSION,
        "statistic": _DIMENSION,
        "tags": TAGS,
        "threshold": _DIMENSION,
        "treatMissingData": _DIMENSION,
    },
    "aws:sns/topic:Topic": {"tags": TAGS},
    "aws:sns/topicSubscription:TopicSubscription": {
        "endpoint": Value("the settings' alarmEmail; sns_topic_subscription: e-mail only"),
        "protocol": Value("sns_topic_subscription: email"),
        "topic": Reference((ALARM_TOPIC, EVENTS_TOPIC), NOTIFICATIONS, "topic"),
    },
    "aws:sns/topicPolicy:TopicPolicy": {
        "arn": Reference((ALARM_TOPIC,), NOTIFICATIONS, "topic"),
        "policy": Value("sns_topic_policy: only EventBridge and the account publish"),
    },
    "aws:cloudwatch/eventRule:EventRule": {
        "description": DESCRIPTION,
        "eventPattern": Value("which events match; where they go is the target's (event_target)"),
        "tags": TAGS,
    },
    "aws:cloudwatch/eventTarget:EventTarget": {
        "arn": Reference((ALARM_TOPIC,), NOTIFICATIONS, "topic"),
        "rule": Value("the program's rule by name; which events reach the program's topic only"),
    },
    "aws:cloudwatch/dashboard:Dashboard": {
        "dashboardBody": Value(
            "cloudwatch_dashboard: JSON of the program's widget types only (metric, text, alarm; no custom widget, which "
            "runs a Lambda function for its viewer), metric math plain arithmetic (no LAMBDA data source); unknown only "
            "at a preview of the program's dashboard (the-dashboard-shows-the-programs-own), judged at up"
        ),
        "dashboardName": Value(
            "cloudwatch_dashboard: exactly the program's name for this stack (dashboard_name_of); another would replace, "
            "and destroy delete, a dashboard that is not the stack's (PutDashboard)"
        ),
    },
    # Harbor's configuration (dynamic providers).
    "pulumi-python:dynamic/harbor:Registry": _harbor(
        ca_certificate=Value("which CA Harbor trusts for this upstream only"),
        description=DESCRIPTION,
        insecure=Value("TLS verification of this upstream only (the settings' upstream)"),
        name=Value("the upstream's name in Harbor"),
        type=Value("the upstream's kind in Harbor"),
        url=Value("harbor_registry: the stack's `upstreams` entry of this name; public-projects-relay-no-credentials"),
        # The provider's own check fills every field it has (provider_base.py HarborProvider.check -> normalise), so
        # the engine hands Analyze these "" where the settings give no credential (review 22e).
        access_key=Value("the upstream's credential from upstreamCredentials (secret), sent only to `url`, judged above"),
        access_secret=Value("the upstream's credential from upstreamCredentials (secret), sent only to `url`"),
    ),
    "pulumi-python:dynamic/harbor:Project": _harbor(
        force_destroy=Value("whether the provider deletes a project with images (cache only)"),
        local_on_not_found=Value("proxy behaviour only; it grants nothing"),
        max_upstream_conn=Value("proxy behaviour only; it grants nothing"),
        name=Value("the project's name in Harbor"),
        public=Value("public-projects-relay-no-credentials: public only without a credential"),
        registry_id=Value("public-projects-relay-no-credentials: the program's registry's registry_id"),
        retention_days=Value("how long cached images stay"),
        speed_limit_kbps=Value("proxy behaviour only; it grants nothing"),
        storage_quota_gb=Value("size only; it grants nothing"),
    ),
    "pulumi-python:dynamic/harbor:OidcAuth": _harbor(
        oidc_client_secret=Value("the operator's OIDC secret, to Harbor (harbor_url) only"),
        **dict.fromkeys(
            (
                "oidc_admin_group",
                "oidc_auto_onboard",
                "oidc_client_id",
                "oidc_endpoint",
                "oidc_groups_claim",
                "oidc_name",
                "oidc_scope",
                "oidc_user_claim",
                "oidc_verify_cert",
            ),
            Value("the operator's OIDC settings, to Harbor only; who may log in is the operator's identity provider's"),
        ),
    ),
    "pulumi-python:dynamic/harbor:GcSchedule": _harbor(
        cron=Value("when Harbor collects garbage"),
        delete_untagged=Value("garbage collection of the cache only"),
        workers=Value("garbage collection of the cache only"),
    ),
    "pulumi-python:dynamic/harbor:Robot": _harbor(
        description=DESCRIPTION,
        name=Value("the robot's name in Harbor"),
        **{
            "project_ids[]": Value("the program's projects' ids (harbor_robot judges the access)"),
            "projects[]": Value("harbor_robot: the program's projects"),
            "project_access[].action": Value("harbor_robot: pull only"),
            "project_access[].resource": Value("harbor_robot: pull only"),
            "system_access[].action": Value("harbor_robot; it grants nothing"),
            "system_access[].resource": Value("harbor_robot; it grants nothing"),
        },
    ),
    "pulumi-python:dynamic/harbor:SystemSettings": _harbor(
        project_creation_restriction=Value("harbor_system_settings: adminonly"),
        robot_name_prefix=Value("harbor_system_settings: robot$, the prefix the nodes' robot logs in under"),
        self_registration=Value("harbor_system_settings: off"),
    ),
    "pulumi-python:dynamic/ec2:ConsoleHostKey": {
        "instance_id": Reference((INSTANCE,), IDENTITIES, "instance"),
        "poll_seconds": TIMING,
        "region": REGION,
        "timeout_seconds": TIMING,
    },
    "pulumi-python:dynamic/ec2:InstanceRunning": {
        "attachment_id": Value("a trigger: the attachment whose replacement restarts the instance; no access"),
        "instance_id": Reference((INSTANCE,), IDENTITIES, "instance"),
        "region": REGION,
    },
    "pulumi-python:dynamic/elbv2:TargetDrain": {
        "action": Value("leave or rejoin (the provider's Check)"),
        "instance_id": Reference((INSTANCE,), IDENTITIES, "instance"),
        "poll_seconds": TIMING,
        "port": Value("the target's port in the program's target group"),
        "region": REGION,
        "target_group_arn": Reference((TARGET_GROUP,), IDENTITIES, "target_group"),
        "timeout_seconds": TIMING,
        "triggers": Whole("values whose change reruns the drain; no access"),
    },
    # Generated secrets.
    "random:index/randomPassword:RandomPassword": {
        "length": Value("random_password, by name: at least the program's length (RANDOM_PASSWORDS)"),
        "minLower": Value("random_password, by name: at least the program's (RANDOM_PASSWORDS)"),
        "minNumeric": Value("random_password, by name: at least the program's (RANDOM_PASSWORDS)"),
        "minUpper": Value("random_password, by name: at least the program's (RANDOM_PASSWORDS)"),
        "special": Value("random_password: false, letters and digits as the program needs them"),
    },
    "random:index/randomBytes:RandomBytes": {
        "length": Value("random_bytes, by name: at least the program's bytes (RANDOM_BYTES)"),
    },
    "random:index/randomId:RandomId": {
        "byteLength": Value("the id's size; it grants nothing"),
        "keepers": Whole("values whose change makes a new id; no access"),
    },
    # storage: s3.
    "aws:s3/bucket:Bucket": {
        "bucketPrefix": Value("the name's prefix; s3_bucket judges acl and forceDestroy"),
        "tags": TAGS,
    },
    "aws:s3/bucketPolicy:BucketPolicy": {
        "bucket": _S3,
        "policy": Value("s3_bucket_policy: only denies"),
    },
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": {
        "blockPublicAcls": Value("s3_public_access_block: true"),
        "blockPublicPolicy": Value("s3_public_access_block: true"),
        "bucket": _S3,
        "ignorePublicAcls": Value("s3_public_access_block: true"),
        "restrictPublicBuckets": Value("s3_public_access_block: true"),
    },
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": {
        "bucket": _S3,
        "rules[].applyServerSideEncryptionByDefault.sseAlgorithm": Value("s3_encryption; it grants nothing"),
    },
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": {
        "bucket": _S3,
        "rule.objectOwnership": Value("s3_ownership: BucketOwnerEnforced"),
    },
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": {
        "bucket": _S3,
        "rules[].abortIncompleteMultipartUpload.daysAfterInitiation": Value("s3_lifecycle; removes abandoned uploads only"),
        "rules[].filter.prefix": Value("s3_lifecycle; it grants nothing"),
        "rules[].id": DESCRIPTION,
        "rules[].status": Value("s3_lifecycle; it grants nothing"),
    },
    # externalServices.
    "aws:rds/instance:Instance": {
        "allocatedStorage": Value("size only; it grants nothing"),
        "applyImmediately": Value("when changes apply; it grants nothing"),
        "autoMinorVersionUpgrade": Value("patch upgrades; it grants nothing"),
        "backupRetentionPeriod": Value("how long backups stay, in this account"),
        "backupWindow": Value("when backups run; it grants nothing"),
        "copyTagsToSnapshot": Value("tags on its snapshots"),
        "dbName": Value("the database's name; it grants nothing"),
        "dbSubnetGroupName": Value(
            "the program's subnet group by name (in the settings' VPC); the instance's groups (GROUPS) and "
            "publiclyAccessible=false (rds_instance) keep it private wherever it is placed"
        ),
        "deletionProtection": Value("rds_instance: true; it grants nothing"),
        "engine": Value("postgres; it grants nothing"),
        "engineVersion": Value("the engine's version; it grants nothing"),
        "finalSnapshotIdentifier": Value("the final snapshot's name, in this account"),
        "identifierPrefix": Value("the name's prefix; it grants nothing"),
        "instanceClass": Value("size and cost only; it grants nothing"),
        "maintenanceWindow": Value("when AWS patches; it grants nothing"),
        "maxAllocatedStorage": Value("size only; it grants nothing"),
        "multiAz": Value("availability only; it grants nothing"),
        "password": Value("the generated password (secret in state); to the database only"),
        "port": Value("5432; the groups decide who reaches it"),
        "publiclyAccessible": Value("rds_instance: false; it grants nothing"),
        "skipFinalSnapshot": Value("rds_instance: false; it grants nothing"),
        "storageEncrypted": Value("rds_instance: true; it grants nothing"),
        "storageType": Value("performance only; it grants nothing"),
        "tags": TAGS,
        "username": Value("the database's admin user"),
        "vpcSecurityGroupIds[]": Reference((DB_GROUP,), GROUPS, "security_group"),
    },
    "aws:rds/subnetGroup:SubnetGroup": {"description": DESCRIPTION, "subnetIds[]": SETTING_VPC, "tags": TAGS},
    "aws:rds/snapshot:Snapshot": {
        "dbInstanceIdentifier": Value("the program's database; rds_snapshot: the snapshot stays in the account"),
        "dbSnapshotIdentifier": Value("the snapshot's name, in this account"),
        "tags": TAGS,
    },
    "aws:rds/eventSubscription:EventSubscription": {
        "eventCategories[]": Value("which events; it grants nothing"),
        "snsTopic": Reference((EVENTS_TOPIC,), NOTIFICATIONS, "topic"),
        "sourceIds[]": Value("which database's events; they go to the program's topic only"),
        "sourceType": Value("which events; it grants nothing"),
        "tags": TAGS,
    },
    "aws:elasticache/replicationGroup:ReplicationGroup": {
        "applyImmediately": Value("when changes apply; it grants nothing"),
        "atRestEncryptionEnabled": Value("elasticache_replication_group: true"),
        "authToken": Value("elasticache_replication_group: set (the generated token, secret in state)"),
        "automaticFailoverEnabled": Value("availability only; it grants nothing"),
        "description": DESCRIPTION,
        "engine": Value("redis; it grants nothing"),
        "engineVersion": Value("the engine's version; it grants nothing"),
        "maintenanceWindow": Value("when AWS patches; it grants nothing"),
        "multiAzEnabled": Value("availability only; it grants nothing"),
        "nodeType": Value("size and cost only; it grants nothing"),
        "notificationTopicArn": Reference((EVENTS_TOPIC,), NOTIFICATIONS, "topic"),
        "numCacheClusters": Value("size only; it grants nothing"),
        "port": Value("6379; the groups decide who reaches it"),
        "securityGroupIds[]": Reference((REDIS_GROUP,), GROUPS, "security_group"),
        "subnetGroupName": Value("the program's subnet group by name (in the settings' VPC); the group decides who reaches it"),
        "tags": TAGS,
        "transitEncryptionEnabled": Value("elasticache_replication_group: true"),
    },
    "aws:elasticache/subnetGroup:SubnetGroup": {"description": DESCRIPTION, "subnetIds[]": SETTING_VPC, "tags": TAGS},
    # replicas > 1: the load balancer.
    "aws:lb/loadBalancer:LoadBalancer": {
        "dropInvalidHeaderFields": Value("header hygiene; it grants nothing"),
        "idleTimeout": Value("connection timing only"),
        "internal": Value("load_balancer and its group (load-balancer-admits-allowed-cidrs-and-its-nodes) decide who reaches it"),
        "loadBalancerType": Value("load_balancer: application"),
        "securityGroups[]": Reference((LB_GROUP,), GROUPS, "security_group"),
        "subnets[]": SETTING_VPC,
        "tags": TAGS,
    },
    "aws:lb/listener:Listener": {
        "certificateArn": Reference((ISSUED,), IDENTITIES, "certificate"),
        "defaultActions[].redirect.port": Value("load_balancer_listener: HTTP only redirects to HTTPS"),
        "defaultActions[].redirect.protocol": Value("load_balancer_listener: HTTPS"),
        "defaultActions[].redirect.statusCode": Value("load_balancer_listener"),
        "defaultActions[].targetGroupArn": Reference((TARGET_GROUP,), IDENTITIES, "target_group"),
        "defaultActions[].type": Value("load_balancer_listener: forward (HTTPS) or redirect (HTTP)"),
        "loadBalancerArn": Value("the program's load balancer; not looked up (docs/security.md residual)"),
        "port": Value("load_balancer_listener"),
        "protocol": Value("load_balancer_listener"),
        "sslPolicy": Value("load_balancer_listener: TLS 1.3"),
        "tags": TAGS,
    },
    "aws:lb/targetGroup:TargetGroup": {
        "deregistrationDelay": Value("drain timing only; it grants nothing"),
        **{
            f"healthCheck.{key}": Value("how the load balancer probes the program's nodes")
            for key in (
                "enabled",
                "healthyThreshold",
                "interval",
                "matcher",
                "path",
                "port",
                "protocol",
                "timeout",
                "unhealthyThreshold",
            )
        },
        "port": Value("the nodes' port (8443 behind the load balancer)"),
        "protocol": Value("HTTPS to the nodes; it grants nothing"),
        "tags": TAGS,
        "targetType": Value("instance: the attachments name the program's instances"),
        "vpcId": SETTING_VPC,
    },
    "aws:lb/targetGroupAttachment:TargetGroupAttachment": {
        "port": Value("the node's port; it grants nothing"),
        "targetGroupArn": Reference((TARGET_GROUP,), IDENTITIES, "target_group"),
        "targetId": Reference((INSTANCE,), IDENTITIES, "instance"),
    },
    "aws:acm/certificate:Certificate": {
        "domainName": Value("acm_certificate: exactly the stack's hostname (no wildcard, no other name)"),
        "tags": TAGS,
        "validationMethod": Value("acm_certificate: DNS; it grants nothing"),
    },
    "aws:acm/certificateValidation:CertificateValidation": {
        "certificateArn": Reference((CERTIFICATE,), IDENTITIES, "certificate"),
        "validationRecordFqdns[]": Value("which records the provider waits for; no access"),
    },
}


def references_judged_by(check: str) -> dict[tuple[str, str], tuple[Source, ...]]:
    """The Reference rows whose origin the stack check `check` judges: (type, path) -> their sources."""
    return {
        (kind, path): row.sources
        for kind, table in FIELDS.items()
        for path, row in table.items()
        if isinstance(row, Reference) and row.preview == check
    }


# Types whose inputs are not the program's: the engine's root stack and the program's components have none; a
# default provider's are the stack's own `<package>:*` configuration (the engine configures it,
# pkg/resource/deploy/providers/registry.go), judged by default_provider (resource_checks.py: declared providers,
# other endpoints, proxies and identities refused).
NOT_THE_PROGRAMS_INPUTS = ("pulumi:pulumi:Stack", "pulumi:providers:", "harbor-cache:index:")


# ---------------------------------------------------------------------------------------------
# Reading the fields a resource sets


def _container_prefixes(table: Mapping[str, Field]) -> set[str]:
    """Every path that holds rows below it: `metadataOptions` for `metadataOptions.httpTokens`, `ingress` and
    `ingress[]` for `ingress[].protocol`."""
    prefixes = set()
    for path in table:
        for index, char in enumerate(path):
            if char in ".[":
                prefixes.add(path[:index])
            if char == "]":
                prefixes.add(path[: index + 1])
    return prefixes - set(table)


def set_fields(props: Mapping[str, Any], stop: Mapping[str, Any] | set[str] = frozenset()) -> Iterator[tuple[str, Any]]:
    """Each field a resource sets, as (path, value): down to the leaves (scalars, empty containers, unknowns), except
    at a path of `stop` (a map or a whole value), whose value comes whole. Absent and null fields are not set; a
    marshalled secret is read as its value (pulumi_policy unwraps them; the mocks' view keeps the signature)."""

    def walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
        if isinstance(value, Mapping) and SECRET_SIGNATURE_KEY in value:
            value = value.get("value")
        if value is None:
            return
        if path in stop:
            yield path, value
        elif isinstance(value, Mapping) and value:
            for key, item in value.items():
                yield from walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, (list, tuple)):
            for item in value:
                yield from walk(item, f"{path}[]")
            if not value:
                yield f"{path}[]", value  # an empty list: its elements' path, with nothing in it
        else:
            yield path, value

    for key, value in props.items():
        yield from walk(value, str(key))


def _shown(value: Any) -> str:
    """A value for the message: scalars that cannot be secrets as they are, anything else by its kind only (the pack
    cannot see whether a value is marked secret: pulumi_policy unwraps them)."""
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if is_unknown(value):
        return "a value unknown at preview"
    return f"a {type(value).__name__} value"


def unlisted_fields(resource: Resource) -> list[tuple[str, Any]]:
    """The fields `resource` sets that its type's table does not list, and which its provider did not fill itself."""
    table = FIELDS.get(resource.type, {})  # a type without a table: every field it sets is refused
    containers = _container_prefixes(table)
    wholes = {path for path, field in table.items() if isinstance(field, Whole)} | {"tagsAll"}
    found = []
    for path, value in set_fields(resource.props, wholes):
        if path in table:
            continue
        if path in containers and (is_unknown(value) or value in ([], {})):
            continue  # a container of listed fields, empty, or unknown as a whole at preview (its fields judged at up)
        if provider_filled(resource, path, value, containers):
            continue
        found.append((path, value))
    return found


def provider_filled(resource: Resource, path: str, value: Any, containers: set[str]) -> bool:
    """Whether `path` = `value` is what the provider's Check adds to the program's inputs (policy/provider_defaults.py):
    pulumi-aws's `tagsAll` (provider/tags.go applyTags; judged by program-tags-come-from-the-program), the SDKv2
    bridge's `__defaults` key names (never read: it exempts nothing), the stack's own region, a name the provider's
    autonaming made for this resource, or a field's schema default with exactly the default value, at the top or
    inside an object the program sets."""
    aws = resource.type.startswith(provider_defaults.SDKV2_BRIDGED)
    if aws and path == "tagsAll":
        return True
    if aws and path == provider_defaults.REGION_FIELD and value == provider_defaults.stack_region():
        return True
    parent, _, key = path.rpartition(".")
    if aws and key == f"{provider_defaults.BRIDGE_DEFAULTS_KEY}[]" and (isinstance(value, str) or value == []):
        return True
    if path in provider_defaults.AUTONAMED.get(resource.type, ()) and provider_defaults.is_autoname(value, resource.name):
        return True
    defaults = provider_defaults.TERRAFORM_DEFAULTS.get(resource.type, {})
    return path in defaults and provider_defaults.same_value(value, defaults[path]) and (not parent or parent in containers)


def only_the_programs_fields(resource: Resource) -> list[Violation]:
    """Every field set is one the program sets (FIELDS), or what the provider fills itself."""
    if resource.type.startswith(NOT_THE_PROGRAMS_INPUTS):
        return []
    return [
        f"{resource.type} {resource.name!r} sets {path} ({_shown(value)}), a field harbor-cache does not set: the pack "
        "refuses every field outside its reviewed table (policy/fields.py FIELDS); remove it, or, if the program needs "
        "it, add it there with the check that judges it (or why any value is harmless)"
        for path, value in unlisted_fields(resource)
    ]
