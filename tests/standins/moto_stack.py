"""The program's stack as it stands in AWS after an `up`, for the policy pack's lookups at `up` (policy/aws_lookups.py).

moto's server on loopback (tests/standins/moto_server.py) holds, for each of the program's resources a reference may
name, the AWS object the provider would have made, with the tags the program registered for it (components/aws/
tagging.py resource_tags, read from the registration itself, so a tag the program stops setting is missing here too).
Where AWS chooses the identifier (an instance's, a volume's, a group's, an allocation's id, an Elastic IP's address, a
target group's and a certificate's ARN) the stack is rewritten with moto's, in every input and output that holds it:
the mocks' ids are of AWS's shape but AWS never made them. Names the program or its autonaming chooses (roles, the
instance profile, the key pair, topics, the bucket) are kept: moto builds the same ARNs from them (its account
123456789012 is the harness's FAKE_ACCOUNT_ID).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from tests.standins.moto_server import CREDENTIALS, moto_server
from tests.standins.policy_engine import EngineResource
from tests.standins.pulumi_harness import FAKE_ACCOUNT_ID

REGION = "eu-central-1"  # the fixture stack's aws:region (tests/stacks/Pulumi.dev.yaml)
# An image moto serves (moto/ec2/resources/amis.json); RunInstances wants an existing one.
MOTO_IMAGE = "ami-12c6146b"
# The image the program's AMI lookup answers in the harness (tests/standins/pulumi_harness.py, aws:ec2/getAmi), as
# Canonical publishes it (components/aws/vm.py UBUNTU_OWNER and UBUNTU_IMAGE_NAME): moto ships Canonical-owned images
# (moto/ec2/resources/amis.json: trusty and xenial only, no 24.04 hvm-ssd-gp3), and its RegisterImage makes the
# caller's account the owner (moto/ec2/models/amis.py AmiBackend.register_image), so canonical_image adds it.
PROGRAM_IMAGE = "ami-0123456789abcdef0"
PROGRAM_IMAGE_NAME = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20261101"
MOTO_ACCOUNT = "123456789012"  # moto's default account (moto/core/models.py DEFAULT_ACCOUNT_ID)


def clients(endpoint: str) -> Any:
    """boto3 clients on moto, as the pack makes them (its region, the test credentials)."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )
    return lambda service: session.client(service, endpoint_url=endpoint)


# Where else botocore's credential chain looks: unset, so only the test credentials count and no other host is asked.
ELSEWHERE = (
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)


def pack_environment(endpoint: str, home: str) -> dict[str, str | None]:
    """The environment the pack gets at `up` (the engine passes its own, analyzer_plugin.go constructEnv): credentials
    and, here, moto as every service's endpoint (botocore's AWS_ENDPOINT_URL); no profile or file from this machine."""
    return {
        **dict.fromkeys(ELSEWHERE),
        **CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_CONFIG_FILE": os.path.join(home, "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@contextmanager
def aws_on_loopback(tmp_dir: str) -> Iterator[tuple[str, dict[str, str | None]]]:
    """moto's server and the pack's environment for it."""
    assert MOTO_ACCOUNT == FAKE_ACCOUNT_ID  # the harness's ARNs are moto's
    with moto_server() as endpoint:
        yield endpoint, pack_environment(endpoint, tmp_dir)


def canonical_image() -> str:
    """Canonical's Ubuntu image of the program in moto's EC2 of the stack's account and region, as AWS shows it (owner
    099720109477, public). moto's server runs in this process (moto_server.py ThreadedMotoServer), so its backend is
    this process's `ec2_backends`; an `Ami` with `owner_id` is moto's own model of an image of another account, as
    it loads the images it ships (moto/ec2/models/amis.py AmiBackend._load_amis). Called after each reset."""
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.amis import Ami

    backend = ec2_backends[MOTO_ACCOUNT][REGION]
    backend.amis[PROGRAM_IMAGE] = Ami(
        backend,
        ami_id=PROGRAM_IMAGE,
        name=PROGRAM_IMAGE_NAME,
        owner_id="099720109477",
        public=True,
        architecture="x86_64",
        virtualization_type="hvm",
        root_device_type="ebs",
        image_location=f"amazon/{PROGRAM_IMAGE_NAME}",
        description="Canonical, Ubuntu, 24.04, amd64 noble image",
    )
    return PROGRAM_IMAGE


def own_snapshot(snapshot_id: str) -> str:
    """An EBS snapshot of the stack's account under the id the configuration names (dataVolumeSnapshotId), in moto's
    backend of this process as canonical_image adds the image: moto's CreateSnapshot chooses its own ids
    (moto/ec2/models/elastic_block_store.py EBSBackend.create_snapshot), the configuration's is given. Its `Snapshot`
    model, of a volume of the account (owner: the backend's account, as AWS shows the account's own snapshot)."""
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.elastic_block_store import Snapshot

    backend = ec2_backends[MOTO_ACCOUNT][REGION]
    source = backend.create_volume(size=1, zone_name=f"{REGION}a")
    backend.snapshots[snapshot_id] = Snapshot(backend, snapshot_id, source, "the operator's restore point")
    return snapshot_id


def tag_specification(kind: str, tags: Mapping[str, Any] | None) -> list[dict]:
    return [{"ResourceType": kind, "Tags": tag_list(tags)}] if tags else []


def tag_list(tags: Mapping[str, Any] | None) -> list[dict[str, str]]:
    return [{"Key": str(key), "Value": str(value)} for key, value in (tags or {}).items()]


def _replaced(value: Any, renamed: dict[str, str]) -> Any:
    if isinstance(value, str):
        for old, new in renamed.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [_replaced(item, renamed) for item in value]
    if isinstance(value, dict):
        return {key: _replaced(item, renamed) for key, item in value.items()}
    return value


def ed25519_public_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def create(client: Any, resource: EngineResource, renamed: dict[str, str]) -> None:
    """The AWS object of one of the program's resources, with its registered tags; moto's identifiers in `renamed`."""
    props, tags = resource.outputs, resource.inputs.get("tags")
    kind = resource.type
    if kind == "aws:ec2/eip:Eip":
        made = client("ec2").allocate_address(Domain="vpc", TagSpecifications=tag_specification("elastic-ip", tags))
        renamed[props["id"]], renamed[props["publicIp"]] = made["AllocationId"], made["PublicIp"]
    elif kind == "aws:ec2/instance:Instance":
        made = client("ec2").run_instances(
            ImageId=props["ami"], MinCount=1, MaxCount=1, TagSpecifications=tag_specification("instance", tags)
        )
        renamed[props["id"]] = made["Instances"][0]["InstanceId"]
    elif kind == "aws:ebs/volume:Volume":
        # dataVolumeSnapshotId names a snapshot of the stack's account (the pack's lookup at up: its OwnerId): the
        # snapshot the operator restores from, under the id the configuration names.
        snapshot = {"SnapshotId": own_snapshot(props["snapshotId"])} if props.get("snapshotId") else {}
        made = client("ec2").create_volume(
            AvailabilityZone=f"{REGION}a",
            Size=int(props.get("size") or 20),
            TagSpecifications=tag_specification("volume", tags),
            **snapshot,
        )
        renamed[props["id"]] = made["VolumeId"]
    elif kind == "aws:ec2/securityGroup:SecurityGroup":
        made = client("ec2").create_security_group(
            GroupName=resource.name,
            Description=str(props.get("description") or resource.name),
            TagSpecifications=tag_specification("security-group", tags),
        )
        renamed[props["id"]] = made["GroupId"]
    elif kind == "aws:ec2/keyPair:KeyPair":
        client("ec2").import_key_pair(
            KeyName=props["keyName"],
            PublicKeyMaterial=ed25519_public_key().encode(),
            TagSpecifications=tag_specification("key-pair", tags),
        )
    elif kind == "aws:iam/role:Role":
        client("iam").create_role(
            RoleName=props["name"],
            Path=props.get("path") or "/",
            AssumeRolePolicyDocument=props["assumeRolePolicy"],
            Tags=tag_list(tags),
        )
    elif kind == "aws:iam/instanceProfile:InstanceProfile":
        iam = client("iam")
        iam.create_instance_profile(InstanceProfileName=props["name"], Path=props.get("path") or "/", Tags=tag_list(tags))
        iam.add_role_to_instance_profile(InstanceProfileName=props["name"], RoleName=props["role"])
    elif kind == "aws:lb/targetGroup:TargetGroup":
        vpc = client("ec2").describe_vpcs()["Vpcs"][0]["VpcId"]
        made = client("elbv2").create_target_group(Name=resource.name, Protocol="HTTP", Port=8080, VpcId=vpc, Tags=tag_list(tags))
        renamed[props["arn"]] = made["TargetGroups"][0]["TargetGroupArn"]
    elif kind == "aws:lb/loadBalancer:LoadBalancer":
        ec2 = client("ec2")
        subnets = [subnet["SubnetId"] for subnet in ec2.describe_subnets()["Subnets"]][:2]
        made = client("elbv2").create_load_balancer(Name=resource.name, Subnets=subnets, Tags=tag_list(tags))
        balancer = made["LoadBalancers"][0]
        renamed[props["arn"]], renamed[props["dnsName"]] = balancer["LoadBalancerArn"], balancer["DNSName"]
    elif kind == "aws:acm/certificate:Certificate":
        acm = client("acm")
        made = acm.request_certificate(DomainName=props["domainName"], Tags=tag_list(tags), ValidationMethod="DNS")
        renamed[props["arn"]] = made["CertificateArn"]
        # ACM chooses the validation record (DescribeCertificate DomainValidationOptions[].ResourceRecord), which the
        # provider hands on as domainValidationOptions[] and the program writes as its validation CNAME.
        answered = acm.describe_certificate(CertificateArn=made["CertificateArn"])["Certificate"]
        shown = {option["DomainName"]: option["ResourceRecord"] for option in answered["DomainValidationOptions"]}
        for option in props.get("domainValidationOptions") or []:
            record = shown[option["domainName"]]
            renamed[option["resourceRecordName"]] = record["Name"]
            renamed[option["resourceRecordValue"]] = record["Value"]
    elif kind == "aws:sns/topic:Topic":
        arn = client("sns").create_topic(Name=props["arn"].rsplit(":", 1)[-1], Tags=tag_list(tags))["TopicArn"]
        assert arn == props["arn"], (arn, props["arn"])
    elif kind == "aws:s3/bucket:Bucket":
        s3 = client("s3")
        s3.create_bucket(Bucket=props["bucket"], CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_tagging(Bucket=props["bucket"], Tagging={"TagSet": tag_list(tags)})


def in_aws(stack: list[EngineResource], endpoint: str) -> list[EngineResource]:
    """The stack with its objects made in moto and every identifier AWS chose replaced by moto's."""
    client = clients(endpoint)
    canonical_image()
    renamed: dict[str, str] = {}
    for resource in stack:
        create(client, resource, renamed)
    result = copy.deepcopy(stack)
    for resource in result:
        resource.inputs = _replaced(resource.inputs, renamed)
        resource.outputs = _replaced(resource.outputs, renamed)
    for resource in result:
        if resource.type == "aws:ec2/eipAssociation:EipAssociation":
            # The EIP on its instance, as the association's Create leaves it (the provider's aws_eip_association calls
            # EC2 AssociateAddress with the allocation and the instance): DescribeAddresses then answers the instance
            # (review 22c F1).
            client("ec2").associate_address(
                AllocationId=resource.inputs["allocationId"], InstanceId=resource.inputs["instanceId"]
            )
    return result
