"""At `up`, before the step: a reference names one of this stack's own AWS objects (review 22b H1).

The stack checks (stack_checks.py) judge where a reference comes from and, where both are known, that it holds its
source's value. Where the source is replaced in the same update, the reference is unknown at the preview (a literal
made through `apply` from that source too), and at `up` the stack checks run only after every step (pulumi
pkg/resource/deploy/deployment_executor.go: AnalyzeStack once the steps are done); the only call that blocks a step is
`Analyze` (step_generator.go generateSteps -> analyzeAll: a mandatory diagnostic makes the step invalid). `Analyze`
sees one resource, without the others, so it asks AWS instead: at `up` every input is known (the program's SDK awaits
its dependencies' outputs before it registers the resource), and every object the references name was made earlier
in this update or before it. Each one must carry this stack's `harbor-cache:stack` tag and the `Name` the program
gives that object (components/aws/tagging.py resource_tags: `Name` = the program's resource name, `harbor-cache:stack`
= the Pulumi stack, the stack of the resource's URN). Only the program's code sets those keys: the settings refuse
`harbor-cache:` in `tags` and `aws:defaultTags`, the pack refuses them from any provider's default tags and in
`tagsAll` beside `tags` (resource_checks.py program_tags_from_elsewhere).

The lookups use the deploy's credentials: the engine starts the analyzer with its own environment
(sdk/go/common/resource/plugin/analyzer_plugin.go constructEnv: `env := os.Environ()` plus PULUMI_CONFIG and
PULUMI_* variables), where the deploy job's AWS credentials are; the region is the stack's `aws:region` (PULUMI_CONFIG).
Any failure (no credentials, access denied, not found, no such tag, another Name) is a violation that names the
field, the value and the fix. The policy can be switched off only by a policy pack config that disables it
(`pulumi up --policy-pack-config`, the engine's Configure call): the deploy workflow passes none.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from fields import FIELDS, Reference, Source
from reading import PROGRAM_COMPONENTS, Resource, Urn, Violation, dns_name, is_unknown
from stack_checks import stores_configured

POLICY = "references-are-the-stacks-own-at-up"
STACK_TAG = "harbor-cache:stack"

# The program's names for the objects references name (components/aws/vm.py node_prefix: node 0 keeps harbor-vm-*,
# node i is harbor-vm-<i>-*; load_balancer.py, data_services.py, alarms.py, storage.py).
_VM = PROGRAM_COMPONENTS["HarborVm"]
_NODE = f"{_VM}(?:-[1-9][0-9]*)?"
EIP = f"{_NODE}-eip"
INSTANCE = f"{_NODE}-instance"
DATA_VOLUME = f"{_NODE}-data"
KEY_PAIR = f"{_VM}-key-pair"
INSTANCE_PROFILE = f"{_VM}-profile"
INSTANCE_ROLE = f"{_VM}-role"
DLM_ROLE = f"{_VM}-dlm-role"
TARGET_GROUP, CERTIFICATE, LOAD_BALANCER = "harbor-lb-nodes", "harbor-lb-certificate", "harbor-lb-alb"
ALARM_TOPIC = "harbor-alarms-topic"
BUCKET = "harbor-storage-bucket"


class LookupFailed(Exception):
    """AWS could not show the object (an error, or not exactly one answer), or showed one that is not allowed: the check
    fails closed. `fix`: what to change, where it is not "pass the program's own resource" (_problem)."""

    def __init__(self, why: str, fix: str = "") -> None:
        super().__init__(why)
        self.fix = fix


@dataclass(frozen=True)
class Found:
    """An object AWS showed: what it is, its tags, and the program's Name it must carry."""

    what: str
    tags: Mapping[str, str]
    name_re: str


def _region() -> str:
    """The stack's aws:region (the engine's PULUMI_CONFIG, analyzer_plugin.go constructConfig), else the environment's."""
    try:
        config = json.loads(os.environ.get("PULUMI_CONFIG") or "{}")
    except ValueError:
        config = {}
    region = (config.get("aws:region") if isinstance(config, dict) else None) or os.environ.get("AWS_REGION")
    region = region or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise LookupFailed("no region: the stack sets no aws:region and the environment no AWS_REGION")
    return str(region)


@cache
def _client(service: str) -> Any:
    import boto3  # the deploy's credentials from the environment (or AWS_ENDPOINT_URL's service, in tests)
    from botocore.config import Config

    # botocore's "standard" retry mode (botocore/retries/standard.py): throttling and transient errors are retried
    # with backoff, where the default "legacy" mode retries fewer errors (review 22c F8).
    retries = Config(retries={"mode": "standard", "max_attempts": 6})
    return boto3.client(service, region_name=_region(), config=retries)


@cache
def _account() -> str:
    """The deploy's account (STS GetCallerIdentity, which needs no permission): asked once per pack process."""
    return str(_client("sts").get_caller_identity()["Account"])


def _in_this_account(arn: str, what: str) -> None:
    """Review 22c F5: an ARN of another account or region names no object of this stack, even where its owner lets
    this account read its tags (an SNS topic policy can grant sns:ListTagsForResource). ARN: arn:partition:service:
    region:account:resource."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise LookupFailed(f"{arn!r} is no {what} ARN")
    region, account = parts[3], parts[4]
    if account != _account() or region != _region():
        wanted = f"this stack's {_account()!r} in {_region()!r}"
        raise LookupFailed(f"the {what} is of account {account!r} in {region!r}, not {wanted}")


def _tags(pairs: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    return {str(pair.get("Key")): str(pair.get("Value")) for pair in pairs or []}


def _one(items: list, what: str, value: str) -> Mapping[str, Any]:
    if len(items) != 1:
        raise LookupFailed(f"AWS shows {len(items)} {what}s for {value!r}, not one")
    return items[0]


# Each lookup: the value a reference holds -> what AWS shows (EC2 API Describe* answer an object's `Tags`; IAM
# GetInstanceProfile/GetRole the profile's and role's `Tags`; ELBv2 DescribeTags, ACM ListTagsForCertificate, SNS
# ListTagsForResource and S3 GetBucketTagging the tags of an ARN or bucket). An id, address or name that does not
# exist in the account and region is an error (InvalidAddress.NotFound, InvalidInstanceID.NotFound,
# InvalidGroup.NotFound, NoSuchEntity, ResourceNotFound...), which fails closed like any other.
def _elastic_ip(found: Mapping[str, Any], address: str, on_an_instance: bool) -> list[Found]:
    """The Elastic IP, and the instance AWS routes it to (review 22c F1): an EIP tagged as this stack's leads to the
    stack's VM only while it is associated with that VM's instance, so the instance must look up as the stack's too,
    the one of the EIP's node (harbor-vm-1-eip on harbor-vm-1-instance). DescribeAddresses answers InstanceId (also
    for an ENI attached to an instance), NetworkInterfaceId and AssociationId of the association (EC2 API Reference,
    Address). `on_an_instance`: the address must be associated (a remote command's host: every command depends on
    its node's EipAssociation, components/harbor_cache.py, so at up that step is done before the command's
    Analyze); else it may be associated with nothing yet (the DNS record and the load balancer's /32 do not wait for
    the association), but never with a network interface or instance that is not the stack's."""
    eip = Found("Elastic IP", _tags(found.get("Tags")), EIP)
    instance_id = found.get("InstanceId")
    if not instance_id:
        if on_an_instance or found.get("AssociationId") or found.get("NetworkInterfaceId"):
            where = f"network interface {found.get('NetworkInterfaceId')!r}" if found.get("NetworkInterfaceId") else "nothing"
            raise LookupFailed(f"the Elastic IP {address} is associated with {where}, not with this stack's instance")
        return [eip]
    node = re.escape(eip.tags.get("Name", "").removesuffix("-eip"))
    return [eip, *instance(str(instance_id), f"{node}-instance" if re.fullmatch(EIP, eip.tags.get("Name", "")) else INSTANCE)]


def elastic_ip_by_address(address: str) -> list[Found]:
    """An address the program takes from its EIP: associated with nothing or with the EIP's own instance."""
    found = _one(_client("ec2").describe_addresses(PublicIps=[address])["Addresses"], "Elastic IP", address)
    return _elastic_ip(found, address, on_an_instance=False)


def elastic_ip_on_its_instance(address: str) -> list[Found]:
    """A remote command's host: the stack's EIP, associated with its node's instance (the stack's)."""
    found = _one(_client("ec2").describe_addresses(PublicIps=[address])["Addresses"], "Elastic IP", address)
    return _elastic_ip(found, address, on_an_instance=True)


def elastic_ip_by_allocation(allocation: str) -> list[Found]:
    found = _one(_client("ec2").describe_addresses(AllocationIds=[allocation])["Addresses"], "Elastic IP", allocation)
    return [Found("Elastic IP", _tags(found.get("Tags")), EIP)]


def instance(instance_id: str, name_re: str = INSTANCE) -> list[Found]:
    answer = _client("ec2").describe_instances(InstanceIds=[instance_id])
    found = _one([i for r in answer["Reservations"] for i in r["Instances"]], "instance", instance_id)
    return [Found(f"instance {instance_id}", _tags(found.get("Tags")), name_re)]


def data_volume(volume_id: str) -> list[Found]:
    found = _one(_client("ec2").describe_volumes(VolumeIds=[volume_id])["Volumes"], "volume", volume_id)
    return [Found("volume", _tags(found.get("Tags")), DATA_VOLUME)]


def key_pair(name: str) -> list[Found]:
    found = _one(_client("ec2").describe_key_pairs(KeyNames=[name])["KeyPairs"], "key pair", name)
    return [Found("key pair", _tags(found.get("Tags")), KEY_PAIR)]


def security_group(name_re: str) -> Callable[[str], list[Found]]:
    def lookup(group_id: str) -> list[Found]:
        found = _one(_client("ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"], "group", group_id)
        return [Found("security group", _tags(found.get("Tags")), name_re)]

    return lookup


def _role(name: str, name_re: str) -> Found:
    return Found(f"role {name}", _tags(_client("iam").get_role(RoleName=name)["Role"].get("Tags")), name_re)


def instance_profile(name: str) -> list[Found]:
    """The profile and the one role in it: the program's profile of the program's instance role."""
    profile = _client("iam").get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    role = _one(profile.get("Roles") or [], "role in instance profile", name)
    return [Found("instance profile", _tags(profile.get("Tags")), INSTANCE_PROFILE), _role(role["RoleName"], INSTANCE_ROLE)]


def role_by_name(name_re: str) -> Callable[[str], list[Found]]:
    return lambda name: [_role(name, name_re)]


def role_by_arn(name_re: str) -> Callable[[str], list[Found]]:
    def lookup(arn: str) -> list[Found]:
        name = arn.rsplit("/", 1)[-1]
        role = _client("iam").get_role(RoleName=name)["Role"]
        if role.get("Arn") != arn:
            raise LookupFailed(f"the role named {name!r} is {role.get('Arn')!r}, not {arn!r}")
        return [Found(f"role {name}", _tags(role.get("Tags")), name_re)]

    return lookup


def load_balancer_by_dns_name(name: str) -> list[Found]:
    """The load balancer whose DNSName the alias holds (ELBv2 DescribeLoadBalancers has no DNS-name filter: every page
    is read), and its tags (DescribeTags)."""
    wanted = name.lower().rstrip(".").removeprefix("dualstack.")
    pages = _client("elbv2").get_paginator("describe_load_balancers").paginate()
    found = [lb for page in pages for lb in page["LoadBalancers"] if str(lb.get("DNSName", "")).lower().rstrip(".") == wanted]
    arn = _one(found, "load balancer", name)["LoadBalancerArn"]
    tags = _one(_client("elbv2").describe_tags(ResourceArns=[arn])["TagDescriptions"], "load balancer", arn).get("Tags")
    return [Found("load balancer", _tags(tags), LOAD_BALANCER)]


def target_group(arn: str) -> list[Found]:
    _in_this_account(arn, "target group")
    found = _one(_client("elbv2").describe_tags(ResourceArns=[arn])["TagDescriptions"], "target group", arn)
    return [Found("target group", _tags(found.get("Tags")), TARGET_GROUP)]


def certificate(arn: str) -> list[Found]:
    _in_this_account(arn, "certificate")
    return [Found("certificate", _tags(_client("acm").list_tags_for_certificate(CertificateArn=arn).get("Tags")), CERTIFICATE)]


def topic(name_re: str) -> Callable[[str], list[Found]]:
    def lookup(arn: str) -> list[Found]:
        _in_this_account(arn, "SNS topic")
        return [Found("SNS topic", _tags(_client("sns").list_tags_for_resource(ResourceArn=arn).get("Tags")), name_re)]

    return lookup


def bucket(arn: str) -> list[Found]:
    """A bucket name is global and a bucket policy can grant s3:GetBucketTagging to anyone (review 22c F5): the
    bucket must be one this account owns in the stack's region (S3 ListBuckets lists only the caller's own buckets,
    with each one's BucketRegion; Prefix and BucketRegion narrow it), and its tags are read with ExpectedBucketOwner
    (S3 answers 403 for a bucket of another account)."""
    name = arn.removeprefix("arn:aws:s3:::").split("/", 1)[0]
    pages = _client("s3").get_paginator("list_buckets").paginate(Prefix=name, BucketRegion=_region())
    if name not in {str(found.get("Name")) for page in pages for found in page.get("Buckets") or []}:
        raise LookupFailed(f"the bucket {name!r} is not one of this account's ({_account()}) in {_region()!r}")
    tags = _client("s3").get_bucket_tagging(Bucket=name, ExpectedBucketOwner=_account()).get("TagSet")
    return [Found("bucket", _tags(tags), BUCKET)]


# The image the program boots (components/aws/vm.py UBUNTU_OWNER, UBUNTU_IMAGE_NAME and get_ami's other filters; a
# test keeps them equal): Canonical's Ubuntu 24.04 amd64 (docs/security.md "Choices: Image").
UBUNTU_OWNER = "099720109477"
UBUNTU_IMAGE_NAME = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"
UBUNTU_IMAGE = {"Architecture": "x86_64", "VirtualizationType": "hvm"}


# DescribeImages answers these for an image this account cannot see (EC2 API Reference, "Error codes": InvalidAMIID.
# NotFound "The specified AMI doesn't exist", InvalidAMIID.Unavailable "The specified AMI has been deregistered or is
# in a transitional state"); a recently deregistered image gives an empty answer instead (DescribeImages: "Recently
# deregistered images appear in the returned results for a short interval and then return empty results").
INVISIBLE_IMAGE_ERRORS = ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable")
# Instances that exist (EC2 API Reference, InstanceState): a terminated one no longer runs anything.
LIVE_INSTANCE_STATES = ["pending", "running", "stopping", "stopped"]


def _visible_image(image_id: str) -> Mapping[str, Any] | None:
    """The image as DescribeImages shows it to this account, or None where the account cannot see it. IncludeDeprecated:
    Canonical deprecates every release serial but the newest within weeks, and the parameter's default is "No
    deprecated AMIs are included in the response" (botocore's ec2 model, DescribeImages IncludeDeprecated; the EC2 User
    Guide says an id is answered anyway, the API reference does not), so the pack asks for them explicitly. Any other
    error (AccessDenied, throttling after botocore's retries, no credentials) is raised: the check fails closed."""
    from botocore.exceptions import ClientError

    try:
        images = _client("ec2").describe_images(ImageIds=[image_id], IncludeDeprecated=True)["Images"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in INVISIBLE_IMAGE_ERRORS:
            return None
        raise
    if not images:
        return None
    return _one(images, "image", image_id)


def launch_image(image_id: str, stack: str) -> list[Found]:
    """Review 22c F2: the image an instance boots is Canonical's Ubuntu, as the program's AMI lookup chooses it
    (EC2 DescribeImages by id: `OwnerId`, `Name`, `Architecture`, `VirtualizationType`); its owner controls the OS
    that receives the install commands' stdin and the instance role's credentials. An image carries no stack tag, so
    nothing is left for the tag check (an empty answer).

    Review 22d FR1: the program sets ignore_changes=["ami"] (components/aws/vm.py), so at every `up` the engine hands
    Analyze the image the instance was launched from (pulumi step_generator.go: processIgnoreChanges puts the old
    input back before analyzeAll), possibly years old. Canonical deprecates old serials and makes unused ones private
    (Ubuntu on AWS, "EC2 image retention policy"), and a private or deregistered image is invisible to this account:
    InvalidAMIID.NotFound/Unavailable or an empty answer. Such an image boots nothing: RunInstances launches only an
    image the caller may launch (its own, a public one, or one shared with it: exactly what DescribeImages shows,
    "public images, private images that you own, and private images owned by other Amazon Web Services accounts for
    which you have explicit launch permissions"; a deregistered or disabled image launches nothing). So an invisible
    image passes where a live instance of this stack already runs it (DescribeInstances by image-id and the stack
    tag): the instance the engine reports unchanged. Anywhere else (a new instance, or an attacker's image it could
    share with this account between this Analyze and the step's RunInstances) it is refused."""
    found = _visible_image(image_id)
    if found is None:
        running = _stack_instances_running(image_id, stack)
        if not running:
            raise LookupFailed(
                f"AWS shows this account no image {image_id!r} (private, deregistered or never public) and no instance of "
                f"stack {stack!r} runs it",
                fix="a new instance boots the image the program's AMI lookup chooses (components/aws/vm.py); one this "
                "account cannot see cannot be launched",
            )
        return [Found(f"instance {i.get('InstanceId')} (runs {image_id})", _tags(i.get("Tags")), INSTANCE) for i in running]
    shown = {key: found.get(key) for key in ("OwnerId", "Name", *UBUNTU_IMAGE)}
    wanted = {"OwnerId": UBUNTU_OWNER, **UBUNTU_IMAGE}
    named = fnmatch.fnmatchcase(str(shown["Name"]), UBUNTU_IMAGE_NAME)  # get_ami's name filter: `*` is any text
    canonical = all(shown[key] == value for key, value in wanted.items())
    if canonical and not named:
        # Review 22f FR2: an image of Canonical's that no longer matches today's name (vm.py moved to another series,
        # or Canonical renamed its path, as hvm-ssd became hvm-ssd-gp3) is still the one an existing node was launched
        # from: the engine hands it back at every `up` (ignore_changes=["ami"], see above). It passes where a live
        # instance of this stack runs it (FR1's argument: only a new launch boots an image, and this one is already
        # booted); a new instance still needs today's name.
        running = _stack_instances_running(image_id, stack)
        if running:
            return [Found(f"instance {i.get('InstanceId')} (runs {image_id})", _tags(i.get("Tags")), INSTANCE) for i in running]
    if not named or not canonical:
        raise LookupFailed(
            f"the image is {shown}, not Canonical's ({UBUNTU_OWNER}) {UBUNTU_IMAGE_NAME!r} {UBUNTU_IMAGE}"
            + (f", and no instance of stack {stack!r} runs it" if canonical else ""),
            fix="boot the image the program's AMI lookup chooses (components/aws/vm.py get_ami), never a literal or "
            "another image",
        )
    return []


def _stack_instances_running(image_id: str, stack: str) -> list[Mapping[str, Any]]:
    """The live instances of `stack` (its stack tag) that run `image_id` (EC2 DescribeInstances filters image-id,
    tag:<key>, instance-state-name)."""
    filters = [
        {"Name": "image-id", "Values": [image_id]},
        {"Name": f"tag:{STACK_TAG}", "Values": [stack]},
        {"Name": "instance-state-name", "Values": LIVE_INSTANCE_STATES},
    ]
    pages = _client("ec2").get_paginator("describe_instances").paginate(Filters=filters)
    return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]


# What a new disk or database is made from (review 22d S1, S2): a snapshot whose owner chose its content (Harbor's
# database with its admin and robot accounts, Traefik's ACME account, the cached blobs the cache then serves) is a
# snapshot of this account only.
SNAPSHOT_FIX = (
    "a volume is restored only from a snapshot this account owns (dataVolumeSnapshotId, docs/configuration.md): copy a "
    "snapshot into this account first (ec2 copy-snapshot) or use the stack's own DLM snapshots"
)
DB_SNAPSHOT_FIX = (
    "the database is created from a snapshot of this account in the stack's region only (the program sets no "
    "snapshotIdentifier: a restore is an operator's deliberate change)"
)


def own_ebs_snapshot(snapshot_id: str, stack: str) -> list[Found]:
    """EC2 DescribeSnapshots by id shows public snapshots and those shared with this account as well as its own (the
    EC2 API Reference: "public snapshots, private snapshots that you own, and private snapshots owned by other Amazon
    Web Services accounts for which you have explicit create volume permissions"), each with its `OwnerId`, which
    must be the deploy's account (STS). The engine hands Analyze the data volume at every `up`, with its
    snapshotId as long as dataVolumeSnapshotId stays set, and DLM deletes old snapshots (snapshotRetentionDays): a
    snapshot this account no longer sees (InvalidSnapshot.NotFound, or no answer: "If you specify a snapshot ID for
    which you do not have access, it is not included") passes where a volume of this stack was made from it
    (DescribeVolumes by snapshot-id and the stack tag: the volume the engine reports unchanged; CreateVolume cannot
    use a snapshot the account cannot see), as the launch image does (launch_image). Any other error fails closed."""
    from botocore.exceptions import ClientError

    try:
        snapshots = _client("ec2").describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "InvalidSnapshot.NotFound":
            raise
        snapshots = []
    if not snapshots:
        filters = [{"Name": "snapshot-id", "Values": [snapshot_id]}, {"Name": f"tag:{STACK_TAG}", "Values": [stack]}]
        pages = _client("ec2").get_paginator("describe_volumes").paginate(Filters=filters)
        volumes = [volume for page in pages for volume in page["Volumes"]]
        if not volumes:
            raise LookupFailed(
                f"AWS shows this account no snapshot {snapshot_id!r} and no volume of stack {stack!r} made from it",
                fix=SNAPSHOT_FIX,
            )
        return [Found(f"volume {v.get('VolumeId')} (from {snapshot_id})", _tags(v.get("Tags")), DATA_VOLUME) for v in volumes]
    owner = str(_one(snapshots, "snapshot", snapshot_id).get("OwnerId"))
    if owner != _account():
        raise LookupFailed(f"the snapshot is owned by account {owner!r}, not by this stack's {_account()!r}", fix=SNAPSHOT_FIX)
    return []


def own_db_snapshot(identifier: str) -> list[Found]:
    """RDS restores an instance from a snapshot named by its identifier (this account's) or by the ARN of another
    account's shared or public one (RDS API RestoreDBInstanceFromDBSnapshot, DBSnapshotIdentifier). DescribeDBSnapshots
    by identifier answers this account's snapshots only, unless IncludeShared/IncludePublic are asked (they are not);
    the answer's DBSnapshotArn must be of the deploy's account and the stack's region."""
    try:
        name = identifier
        if identifier.startswith("arn:"):
            # arn:aws:rds:<region>:<account>:snapshot:<name>: this account's, then asked for by its name.
            _in_this_account(identifier, "DB snapshot")
            name = identifier.split(":", 6)[-1]
        answer = _client("rds").describe_db_snapshots(DBSnapshotIdentifier=name)["DBSnapshots"]
        found = _one(answer, "DB snapshot", identifier)
        _in_this_account(str(found.get("DBSnapshotArn")), "DB snapshot")
    except LookupFailed as problem:
        raise LookupFailed(str(problem), fix=DB_SNAPSHOT_FIX) from None
    return []


@dataclass(frozen=True)
class OfTheStack:
    """A lookup that needs the stack of the resource it judges (its URN's): `lookup(value, stack)`."""

    lookup: Callable[[str, str], list[Found]]


@cache
def _for_stack(lookup: Callable[[str, str], list[Found]], stack: str) -> Callable[[str], list[Found]]:
    # One function per (lookup, stack), so what AWS showed is kept (_SHOWN) as for the other lookups.
    return lambda value: lookup(value, stack)


@dataclass(frozen=True)
class OfTheResource:
    """A lookup that needs the resource it judges (its other fields) and the stack: `lookup(resource, stack)` gives the
    lookup of one value."""

    lookup: Callable[[Resource, str], Callable[[str], list[Found]]]


# Every key type ACM issues or imports (ACM API Reference, Filters keyTypes): ListCertificates "Default filtering returns
# only RSA_1024 and RSA_2048 certificates", so the lookup asks for all of them.
ACM_KEY_TYPES = ("RSA_1024", "RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1", "EC_secp521r1")


@cache
def acm_validation(name: str, kind: str, stack: str) -> Callable[[str], list[Found]]:
    """Review 22f B2: ACM's validation record (`name`, `kind`, the value looked up) is the validation CNAME of one of
    this stack's certificates (harbor-lb-certificate), in this account and region. At a preview of a new certificate
    its values are unknown (judged by their origin, stack_checks.py _validation_problems); here they are known and
    AWS answers which certificate asks for them: ACM ListCertificates lists this account's certificates of the region
    (each with its DomainName), DescribeCertificate gives each one's DomainValidationOptions[].ResourceRecord (Name,
    Type, Value: ACM API Reference, DomainValidation and ResourceRecord; the pulumi-aws certificate's
    domainValidationOptions[] resourceRecordName/Type/Value are these), ListTagsForCertificate its tags. A record that
    no certificate of this account for the cache's name asks for (another account's pair validates that account's
    request) is refused. ACM gives every certificate of one account for one name the same record (so the program
    sets allow_overwrite), so a replaced certificate and its successor both match: one tagged as this stack's
    harbor-lb-certificate suffices."""

    def lookup(value: str) -> list[Found]:
        from resource_checks import _stack_hostname

        domain = _stack_hostname()
        wanted = (dns_name(name), str(kind).strip().upper(), dns_name(value))
        pages = _client("acm").get_paginator("list_certificates").paginate(Includes={"keyTypes": list(ACM_KEY_TYPES)})
        arns = [
            str(summary.get("CertificateArn"))
            for page in pages
            for summary in page.get("CertificateSummaryList") or []
            if dns_name(summary.get("DomainName")) == domain
        ]
        matching = []
        for arn in arns:
            found = _client("acm").describe_certificate(CertificateArn=arn)["Certificate"]
            records = [option.get("ResourceRecord") or {} for option in found.get("DomainValidationOptions") or []]
            if any((dns_name(r.get("Name")), str(r.get("Type")).upper(), dns_name(r.get("Value"))) == wanted for r in records):
                tags = _tags(_client("acm").list_tags_for_certificate(CertificateArn=arn).get("Tags"))
                matching.append(Found(f"certificate {arn}", tags, CERTIFICATE))
        if not matching:
            raise LookupFailed(
                f"no certificate of this account ({_account()}) in {_region()!r} for {domain!r} asks ACM for the "
                f"validation record {name} {kind} {value} (DescribeCertificate DomainValidationOptions): it validates a "
                "certificate someone else requested",
                fix="ACM's validation record holds the program's certificate's resourceRecordName, resourceRecordType "
                "and resourceRecordValue (components/aws/load_balancer.py), never a literal",
            )
        own = [f for f in matching if f.tags.get(STACK_TAG) == stack and re.fullmatch(f.name_re, f.tags.get("Name", ""))]
        return (own or matching)[:1]

    return lookup


def _nothing_to_look_up(_value: str) -> list[Found]:
    """A CAA value names no AWS object (one VM: the stack's ACME account, judged at preview by
    the-caches-name-is-the-programs against the account command's output; docs/security.md residuals)."""
    return []


def record_values(resource: Resource, stack: str) -> Callable[[str], list[Found]]:
    """The lookup of a record's values (`records[]`) by the record's type: a CAA value nothing; ACM's validation CNAME
    one of this stack's certificates' validation records (acm_validation); any other value, whatever its shape
    (review 22c F4: only IPv4-shaped values were looked up, so an AAAA's passed), an Elastic IP of the stack's nodes
    (components/aws/dns.py: the cache's address record holds the EIP's address)."""
    kind = str(resource.props.get("type")).strip().upper()
    if kind == "CAA":
        return _nothing_to_look_up
    if kind == "CNAME":
        return acm_validation(str(resource.props.get("name")), kind, stack)
    return elastic_ip_by_address


def instance_group(group_id: str) -> list[Found]:
    """An instance's group: the VM's and, only where the program makes it (externalServices, replicas > 1:
    stack_checks.py stores_configured), the stores' client group (review 22d G1b)."""
    row = FIELDS["aws:ec2/instance:Instance"]["vpcSecurityGroupIds[]"]
    assert isinstance(row, Reference)  # the table's row for this field (policy/fields.py)
    client = ("HarborDataServices", "client-sg")
    sources = row.sources if stores_configured() else tuple(s for s in row.sources if s[1:3] != client)
    return security_group(_names(sources))(group_id)


Lookup = Callable[[str], list[Found]]

# The lookups the Reference rows of fields.py FIELDS name: made for the row's sources' names, or fixed (their Name
# is the one object of that kind the program makes).
_FOR_NAMES: dict[str, Callable[[str], Lookup]] = {
    "security_group": security_group,
    "role_by_name": role_by_name,
    "role_by_arn": role_by_arn,
    "topic": topic,
}
_FIXED: dict[str, Lookup] = {
    "instance": instance,
    "data_volume": data_volume,
    "key_pair": key_pair,
    "instance_profile": instance_profile,
    "elastic_ip_by_allocation": elastic_ip_by_allocation,
    "elastic_ip_on_its_instance": elastic_ip_on_its_instance,
    "target_group": target_group,
    "certificate": certificate,
    "bucket": bucket,
    "load_balancer_by_dns_name": load_balancer_by_dns_name,
}


def _names(sources: tuple[Source, ...]) -> str:
    """The program's names of the sources (components/aws/tagging.py: Name = the resource's name), as one pattern."""
    names = [f"{PROGRAM_COMPONENTS[owner]}-{part}" for _, owner, part, _ in sources]
    return names[0] if len(names) == 1 else f"(?:{'|'.join(names)})"


# Lookups that need the resource they judge (its other fields).
_OF_THE_RESOURCE: dict[str, OfTheResource] = {"record_values": OfTheResource(record_values)}


def _lookup(row: Reference) -> Lookup | OfTheResource:
    if row.lookup in _OF_THE_RESOURCE:
        return _OF_THE_RESOURCE[row.lookup]
    return _FOR_NAMES[row.lookup](_names(row.sources)) if row.lookup in _FOR_NAMES else _FIXED[row.lookup]


# (type, field path) -> the lookup of what the field names. A path's `[]` walks a list, `.` a mapping's key. Every
# Reference row of fields.py FIELDS (each also judged at a preview by its stack check), but the one whose object
# has no tags to look up: the key pair's public key (docs/security.md, residuals; nor are the SSH host key, the CAA
# record's account and a public project's registry AWS objects with tags: a record's values are looked up by the
# record's type, record_values, the CAA record's not at all).
REFERENCES: dict[tuple[str, str], Lookup | OfTheStack | OfTheResource] = {
    (kind, path): _lookup(row)
    for kind, table in FIELDS.items()
    for path, row in table.items()
    if isinstance(row, Reference) and not row.lookup.startswith("none")
}
# Not the program's source but a data source's answer (components/aws/vm.py: Canonical's image), a Value row; judged
# with the stack (review 22d FR1: an image AWS no longer shows passes only where this stack's instance runs it).
REFERENCES[("aws:ec2/instance:Instance", "ami")] = OfTheStack(launch_image)
# What the data volume and the database are made from (review 22d S1, S2): this account's snapshots only. Value rows
# (the settings' dataVolumeSnapshotId) or a field the program does not set (snapshotIdentifier), looked up all the same.
REFERENCES[("aws:ebs/volume:Volume", "snapshotId")] = OfTheStack(own_ebs_snapshot)
REFERENCES[("aws:rds/instance:Instance", "snapshotIdentifier")] = own_db_snapshot
# A field the program does not set (only-the-programs-fields refuses it), looked up all the same.
REFERENCES[("aws:cloudwatch/metricAlarm:MetricAlarm", "insufficientDataActions[]")] = topic(ALARM_TOPIC)
# The VM's group and, only where the configuration makes the stores, their client group (review 22d G1b;
# stack_checks.py group_references): the row's two sources in every mode were too many.
REFERENCES[("aws:ec2/instance:Instance", "vpcSecurityGroupIds[]")] = instance_group
# Review 22d A1: at `up` a reference the program always sets must be there and not empty, as at a preview an unknown
# one is judged (its dependency must be the program's resource): absent, no lookup ran, and AWS filled the gap with
# its default (EC2 RunInstances and ELBv2 CreateLoadBalancer without security groups use the VPC's default group;
# RDS and ElastiCache too). Every field of REFERENCES is required but those the program leaves out somewhere: -> when
# it may be absent (the resource's properties -> True where the program sets none).
MAY_BE_ABSENT: dict[tuple[str, str], Callable[[Mapping[str, Any]], bool]] = {
    # A rule names groups only where the program's does (the nodes' 8080, the stores' ports): judged by the lookups
    # when present, and by group_checks.py for what the rules admit.
    ("aws:ec2/securityGroup:SecurityGroup", "ingress[].securityGroups[]"): lambda _: True,
    ("aws:ec2/securityGroup:SecurityGroup", "egress[].securityGroups[]"): lambda _: True,
    # components/aws/load_balancer.py: the HTTPS listener has the certificate and forwards to the target group, the
    # HTTP listener redirects.
    ("aws:lb/listener:Listener", "certificateArn"): lambda props: str(props.get("protocol")).upper() != "HTTPS",
    ("aws:lb/listener:Listener", "defaultActions[].targetGroupArn"): lambda props: str(props.get("protocol")).upper() != "HTTPS",
    # components/aws/alarms.py sets alarm_actions and ok_actions (the alarm topic) on every alarm, no insufficient-data
    # action.
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "insufficientDataActions[]"): lambda _: True,
    # components/aws/dns.py: the A record's alias with replicas > 1 only; the CAA and validation records have none.
    ("aws:route53/record:Record", "aliases[].name"): lambda _: True,
    # The address record with replicas > 1 is an alias (looked up above), without values; every other record has them.
    ("aws:route53/record:Record", "records[]"): lambda props: props.get("aliases") not in (None, []),
    # Looked up where set (review 22d S1, S2), set only where dataVolumeSnapshotId is (node 0's volume), never by the
    # program for the database: components/aws/vm.py (the data volume's snapshot_id), components/aws/data_services.py.
    ("aws:ebs/volume:Volume", "snapshotId"): lambda _: True,
    ("aws:rds/instance:Instance", "snapshotIdentifier"): lambda _: True,
}
# Fields whose values include others than AWS objects of one kind: only the values `wanted` matches are looked up
# (an alarm's recover and reboot actions are `arn:aws:automate:...`, judged by the alarm's own check).
ONLY: dict[tuple[str, str], re.Pattern] = {
    ("aws:cloudwatch/metricAlarm:MetricAlarm", f"{key}[]"): re.compile(r"arn:aws[a-z-]*:sns:")
    for key in ("alarmActions", "okActions", "insufficientDataActions")
}


def values_at(props: Any, path: str) -> list[Any]:
    """The values at `path` ("connection.host", "ingress[].securityGroups[]"); an unknown on the way is returned as
    such; an absent key or None gives nothing."""
    found = [props]
    for step in path.split("."):
        key, walk = step.removesuffix("[]"), step.endswith("[]")
        following = []
        for value in found:
            if is_unknown(value):
                following.append(value)
                continue
            inner = value.get(key) if isinstance(value, Mapping) else None
            if walk and isinstance(inner, list):
                following += inner
            elif inner is not None:
                following.append(inner)
        found = following
    return [value for value in found if value not in (None, "")]


def _policy_resources(resource: Resource, service: str) -> list[str]:
    """The resources a role policy's statements with `service` actions name: the registry's grant (storage.py, its
    bucket and the bucket's objects), the reporter's ListSubscriptionsByTopic (alarms.py, the alarm topic)."""
    from reading import Undecidable, statements

    try:
        found = statements(resource.props.get("policy"), "policy")
    except Undecidable:
        return []  # refused by the role policy's own check
    named = []
    for statement in found:
        actions = statement.get("Action") if isinstance(statement.get("Action"), list) else [statement.get("Action")]
        if any(str(action).lower().startswith(f"{service}:") for action in actions):
            resources = statement.get("Resource") if isinstance(statement.get("Resource"), list) else [statement.get("Resource")]
            named += [str(arn) for arn in resources]
    return named


_SHOWN: dict[tuple[Lookup, str], list[Found]] = {}


def _looked_up(lookup: Lookup, value: str) -> tuple[list[Found], str, str]:
    """What AWS shows for `value`, or why it could not and what to change (LookupFailed.fix). What AWS showed is kept for
    the pack process, which lives for one update; a failure is not (review 22c F8): a later reference asks again, so a
    throttled or not yet consistent read refuses only the resource it was made for."""
    if (lookup, value) in _SHOWN:
        return _SHOWN[(lookup, value)], "", ""
    try:
        found = lookup(value)
    except LookupFailed as problem:
        return [], str(problem), problem.fix
    except Exception as problem:  # noqa: BLE001 - any error (credentials, permissions, not found) fails closed
        return [], f"{type(problem).__name__}: {problem}", ""
    _SHOWN[(lookup, value)] = found
    return found, "", ""


def _problem(resource: Resource, field: str, value: Any, why: str, fix: str = "") -> Violation:
    """A refused reference: by default one that is not the stack's own object; `fix` where the lookup judges something
    else (an image, a snapshot), so the message says what to change there (review 22d FR1)."""
    if fix:
        return (
            f"{resource.type} {resource.name!r}: {field} is {value!r}, which the pack refuses at `up` ({why}; it asks AWS "
            f"before the step with the deploy's credentials): {fix}; if the lookup itself failed, give the deploy role the "
            "read actions of docs/iam/deploy-policy.json"
        )
    return (
        f"{resource.type} {resource.name!r}: {field} is {value!r}, which is not shown by AWS as this stack's own object "
        f"({why}); at `up` the pack looks every reference up before the step (ec2/iam/elbv2/acm/sns/s3 reads with the "
        "deploy's credentials): pass the program's own resource (its output), never a literal or a pre-existing object; "
        "if the lookup itself failed, give the deploy role the read actions of docs/iam/deploy-policy.json"
    )


def _absent(resource: Resource, path: str) -> Violation:
    return (
        f"{resource.type} {resource.name!r}: {path} is absent or empty at up, where the program always sets it to its own "
        "object (review 22d A1: AWS then applies its default, e.g. the VPC's default security group); pass the program's "
        "own resource (its output)"
    )


def _judged(resource: Resource, field: str, value: Any, lookup: Lookup, stack: str) -> list[Violation]:
    if is_unknown(value) or not isinstance(value, str):
        return [_problem(resource, field, value, "it is not a known string at up")]
    found, why, fix = _looked_up(lookup, value)
    if why:
        return [_problem(resource, field, value, why, fix)]
    for item in found:
        name, owner = item.tags.get("Name", ""), item.tags.get(STACK_TAG)
        if owner != stack or re.fullmatch(item.name_re, name) is None:
            return [
                _problem(
                    resource,
                    field,
                    value,
                    f"the {item.what} is tagged {STACK_TAG}={owner!r} and Name={name!r}, not {STACK_TAG}={stack!r} and "
                    f"a Name matching {item.name_re!r}",
                )
            ]
    return []


def _dry_run() -> bool:
    return os.environ.get("PULUMI_DRY_RUN") == "true"


def references_are_the_stacks_own(resource: Resource) -> list[Violation]:
    """At `up` (never at a preview, where the stack checks judge these references): every reference of REFERENCES,
    and the registry grant's buckets, name an object AWS shows tagged as this stack's and named as the program names
    it."""
    if _dry_run():
        return []
    urn = Urn.parse(resource.urn)
    stack = urn.stack if urn is not None else os.environ.get("PULUMI_STACK", "")
    problems: list[Violation] = []
    for (kind, path), entry in REFERENCES.items():
        if resource.type != kind:
            continue
        if isinstance(entry, OfTheStack):
            lookup = _for_stack(entry.lookup, stack)
        elif isinstance(entry, OfTheResource):
            lookup = entry.lookup(resource, stack)
        else:
            lookup = entry
        values = [
            value
            for value in values_at(resource.props, path)
            if (kind, path) not in ONLY or isinstance(value, str) and ONLY[(kind, path)].match(value)
        ]
        if not values and not MAY_BE_ABSENT.get((kind, path), lambda _: False)(resource.props):
            problems.append(_absent(resource, path))
        for value in values:
            problems += _judged(resource, path, value, lookup, stack)
    if resource.type == "aws:iam/rolePolicy:RolePolicy":
        for arn in _policy_resources(resource, "s3"):
            problems += _judged(resource, "policy (an S3 Resource)", arn, bucket, stack)
        for arn in _policy_resources(resource, "sns"):
            problems += _judged(resource, "policy (an SNS Resource)", arn, topic(ALARM_TOPIC), stack)
    node_addresses, refused = _load_balancer_admission(resource)
    problems += refused
    for field, address in node_addresses:
        problems += _judged(resource, field, address, elastic_ip_by_address, stack)
    return problems


def _load_balancer_admission(resource: Resource) -> tuple[list[tuple[str, str]], list[Violation]]:
    """At `up`, the whole of stack_checks.py load_balancer_admits_allowed_cidrs_and_its_nodes for one group, before
    the step (review 22d L1): the load balancer's group admits allowedCidrs and, on 443, each node's Elastic IP as a
    /32 (components/aws/load_balancer.py node_address_ingress). Every block on every port is in allowedCidrs (as
    networks, as the stack check reads them: "203.0.113.5" and "203.0.113.5/32" are one) or a /32 of a tcp 443 rule,
    which is looked up as an Elastic IP of this stack's nodes; anything else is refused here, whatever its prefix (at
    a preview a node's block made from a replaced EIP is unknown and judged by its origin only, so a /16 or a /31
    there reached the step when only /32s were looked up). Returns (the /32s to look up, the blocks refused)."""
    from resource_checks import NODE_CHECK_PORT, _stack_config

    if resource.type != "aws:ec2/securityGroup:SecurityGroup" or not resource.made_by("HarborLoadBalancer", "sg"):
        return [], []
    configured = _stack_config("allowedCidrs")
    if not isinstance(configured, list):
        return [], [f"the load balancer's group {resource.name!r} cannot be judged: the configuration has no allowedCidrs"]
    allowed = {_network(item) for item in configured} - {None}
    rules = resource.props.get("ingress")
    if is_unknown(rules):
        return [], [f"the load balancer's group {resource.name!r}: its ingress is unknown at up"]
    lookups: list[tuple[str, str]] = []
    refused: list[Violation] = []
    for index, rule in enumerate(rules if isinstance(rules, list) else []):
        if not isinstance(rule, Mapping):
            continue
        tcp = str(rule.get("protocol")).lower() in ("tcp", "6")
        on_443 = tcp and rule.get("fromPort") == rule.get("toPort") == NODE_CHECK_PORT
        for key in ("cidrBlocks", "ipv6CidrBlocks"):
            blocks = rule.get(key)
            for block in [blocks] if is_unknown(blocks) else blocks if isinstance(blocks, list) else []:
                network = None if is_unknown(block) else _network(block)
                if network is not None and network in allowed:
                    continue
                if on_443 and network is not None and network.prefixlen == network.max_prefixlen:
                    lookups.append((f"ingress[{index}].{key}", str(network.network_address)))
                    continue
                refused.append(
                    f"the load balancer's group {resource.name!r} admits {block!r} (ingress rule {index}, port "
                    f"{rule.get('fromPort')!r}): only allowedCidrs {sorted(str(n) for n in allowed)} and, on tcp 443, the /32 "
                    "of an Elastic IP of this stack's nodes (looked up at up before the step); remove the block"
                )
    return lookups, refused


def _network(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        return None


STACK_TAG_POLICY = "the-stack-tag-marks-the-programs-own"


# Other fields that put tags on AWS objects, of the types the pack allows (pulumi-aws schema: aws:ec2/instance:Instance
# volumeTags, InstanceRootBlockDevice and InstanceEbsBlockDevice `tags`; aws:dlm/lifecyclePolicy:LifecyclePolicy
# LifecyclePolicyPolicyDetailsSchedule tagsToAdd and variableTags; aws:cloudwatch/eventTarget:EventTarget
# EventTargetEcsTarget tags) and the tag specifications of the types that have them (LaunchTemplateTagSpecification
# tags; those types are refused by only-the-programs-resource-types anyway). The program sets none of them, so none
# may carry the stack tag (review 22c F6: an instance's volumeTags made its volumes pass the data volume's lookup).
OTHER_TAG_FIELDS: dict[str, tuple[str, ...]] = {
    "aws:ec2/instance:Instance": ("volumeTags", "rootBlockDevice.tags", "ebsBlockDevices[].tags"),
    "aws:dlm/lifecyclePolicy:LifecyclePolicy": ("policyDetails.schedules[].tagsToAdd", "policyDetails.schedules[].variableTags"),
    "aws:cloudwatch/eventTarget:EventTarget": ("ecsTarget.tags",),
}
EVERY_TYPES_TAG_FIELDS = ("tagSpecifications[].tags",)
# harbor-vm-<i>-...: node i of replicas (components/aws/vm.py node_prefix); node 0 keeps harbor-vm-*.
_NODE_INDEX = re.compile(f"{_VM}-([0-9]+)-")


def _other_tag_fields(resource: Resource) -> list[Violation]:
    problems = []
    for path in (*OTHER_TAG_FIELDS.get(resource.type, ()), *EVERY_TYPES_TAG_FIELDS):
        for value in values_at(resource.props, path):
            if is_unknown(value) or (isinstance(value, Mapping) and STACK_TAG in value):
                problems.append(
                    f"{resource.type} {resource.name!r} sets {path} to {value!r}: the program tags its objects only "
                    f"through `tags`, and only those may carry {STACK_TAG} (the lookups at up trust it); remove {path}"
                )
    return problems


def _beyond_the_replicas(urn: Urn) -> Violation | None:
    """A node's resource whose index is not below the stack's `replicas` (review 22c F7: harbor-vm-9-instance in a
    one-VM stack passed as one of the stack's nodes)."""
    from resource_checks import _stack_config

    index = _NODE_INDEX.match(urn.name)
    if index is None:
        return None
    configured = _stack_config("replicas")
    try:
        replicas = 1 if configured is None else int(str(configured))
    except ValueError:
        replicas = 0
    if int(index.group(1)) < replicas:
        return None
    return (
        f"{urn.name!r} carries {STACK_TAG} as node {index.group(1)}, but the stack's replicas is {configured or 1!r}: the "
        f"program makes nodes 0 to replicas-1 only (components/aws/vm.py node_prefix); remove the resource or the tag"
    )


def the_stack_tag_marks_the_programs_own(resource: Resource) -> list[Violation]:
    """The lookups trust the `harbor-cache:stack` tag, so only the program's own resources carry it, each with its own
    name and stack: under HarborCache and one of the program's components, named as the program names it (a URN is
    unique in a stack, so a second resource cannot take a program resource's Name), a node's index below the stack's
    `replicas`, `Name` its URN name and the tag its URN's stack (components/aws/tagging.py resource_tags), and only in
    `tags` (OTHER_TAG_FIELDS). At preview and at up."""
    problems = _other_tag_fields(resource)
    tags = resource.props.get("tags")
    if is_unknown(tags):
        return [
            *problems,
            f"{resource.type} {resource.name!r}: its tags are unknown, so the pack cannot tell whether it claims {STACK_TAG}",
        ]
    if not isinstance(tags, Mapping) or STACK_TAG not in tags:
        return problems
    urn = Urn.parse(resource.urn)
    programs = any(resource.made_by(owner, r".+") for owner in PROGRAM_COMPONENTS)
    if programs and urn is not None and tags.get(STACK_TAG) == urn.stack and tags.get("Name") == urn.name:
        beyond = _beyond_the_replicas(urn)
        return [*problems, beyond] if beyond else problems
    return [
        *problems,
        f"{resource.type} {resource.name!r} carries {STACK_TAG}={tags.get(STACK_TAG)!r} and Name={tags.get('Name')!r}: only "
        "the program's own resources carry that tag (components/aws/tagging.py resource_tags), each with its own name and "
        "stack, because the pack trusts it when it looks references up at up; remove the tag",
    ]
