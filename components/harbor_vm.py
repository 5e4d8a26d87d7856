"""HarborVm: the EC2 instance Harbor runs on, its kept data volume, network access and identity."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

import pulumi
import pulumi_aws as aws
import pulumi_tls as tls

from components.host_key_provider import ConsoleHostKey
from components.operate_files import METRICS_PORT
from components.settings import Settings
from components.tagging import IMDS_GUARD_TAG, PUBLIC_ACCESS_TAG, SNAPSHOT_TAG, dlm_description, resource_tags
from components.vm_files import EXTERNAL_DB_PORT, EXTERNAL_REDIS_PORT, imds_guarded, render_cloud_init

# Ubuntu 24.04 LTS (supported to 2029) from Canonical's own account: its archive carries Docker
# Engine (docker.io) and the compose v2 plugin (docker-compose-v2) as signed distribution packages.
UBUNTU_OWNER = "099720109477"
UBUNTU_IMAGE_NAME = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"
DATA_DEVICE_NAME = "/dev/sdf"
DLM_SERVICE_POLICY = "arn:aws:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole"
# cloud-init prints the host keys at the end of the first boot (about 1-3 minutes on Nitro, whose
# `Latest` console is live); other types post their buffered console later, up to ~20 minutes.
HOST_KEY_TIMEOUT_SECONDS = 1500
HOST_KEY_POLL_SECONDS = 10
IMDS_HOP_LIMIT = 1
# storage: s3 only: the registry and registryctl (Harbor's bridge network, one routed hop) need the
# role for the bucket; the host firewall guard (vm_files.imds_guard_unit) keeps every other
# container from IMDS, which hop limit 1 alone did (tests/test_imds_reach.py shows both).
IMDS_HOP_LIMIT_REGISTRY_GUARDED = 2
# Every IAM role and instance profile of the program lives under this path, so a deploy role can be
# limited to arn:aws:iam::<account>:role/harbor-cache/* (iam:CreateRole, iam:PassRole, ...).
IAM_PATH = "/harbor-cache/"


@dataclass(frozen=True)
class HarborVmArgs:
    settings: Settings


def egress_ports(settings: Settings) -> list[int]:
    """Ports the VM dials out on: HTTP(S) for packages and registries, plus any custom upstream port."""
    ports = {80, 443}
    for upstream in settings.upstreams:
        port = urlsplit(upstream.url).port
        if port:
            ports.add(port)
    return sorted(ports)


def _split_cidrs(cidrs: tuple[str, ...]) -> tuple[list[str], list[str]]:
    return [c for c in cidrs if ":" not in c], [c for c in cidrs if ":" in c]


def ingress_rules(settings: Settings) -> list[dict]:
    web_v4, web_v6 = _split_cidrs(settings.allowed_cidrs)
    ssh_v4, ssh_v6 = _split_cidrs(settings.ssh_allowed_cidrs)
    rules = [
        {
            "description": f"{port} from allowedCidrs",
            "protocol": "tcp",
            "from_port": port,
            "to_port": port,
            "cidr_blocks": web_v4,
            "ipv6_cidr_blocks": web_v6,
        }
        for port in (443, 80)
    ]
    rules.append(
        {
            "description": "SSH from sshAllowedCidrs",
            "protocol": "tcp",
            "from_port": 22,
            "to_port": 22,
            "cidr_blocks": ssh_v4,
            "ipv6_cidr_blocks": ssh_v6,
        }
    )
    if settings.metrics_allowed_cidrs:
        metrics_v4, metrics_v6 = _split_cidrs(settings.metrics_allowed_cidrs)
        rules.append(
            {
                "description": f"Harbor metrics {METRICS_PORT} from metricsAllowedCidrs",
                "protocol": "tcp",
                "from_port": METRICS_PORT,
                "to_port": METRICS_PORT,
                "cidr_blocks": metrics_v4,
                "ipv6_cidr_blocks": metrics_v6,
            }
        )
    return rules


def egress_rules(settings: Settings) -> list[dict]:
    # No port 53: security groups never filter the VPC resolver, NTP (169.254.169.123) or IMDS, and
    # Traefik's DNS-01 skips the direct queries to the zone's authoritative nameservers
    # (propagation.disableANSChecks; the route53 provider waits for INSYNC instead), so nothing
    # needs DNS to the internet (tests/test_dns01_network.py proves it with pebble and lego).
    return [
        {
            "description": f"tcp {port} out (packages, upstream registries, OIDC, ACME)",
            "protocol": "tcp",
            "from_port": port,
            "to_port": port,
            "cidr_blocks": ["0.0.0.0/0"],
            "ipv6_cidr_blocks": ["::/0"],
        }
        for port in egress_ports(settings)
    ]


def data_store_egress(settings: Settings, vpc_id: pulumi.Input[str], parent: pulumi.Resource) -> list[dict]:
    """externalServices: PostgreSQL and Redis out to the VPC, where RDS and ElastiCache live (their
    own groups admit only this one). A CIDR, not their groups: they reference this group already."""
    if not settings.external_services:
        return []
    cidr = aws.ec2.get_vpc_output(id=vpc_id, opts=pulumi.InvokeOutputOptions(parent=parent)).cidr_block
    return [
        {
            "description": f"tcp {port} to {what} in the VPC",
            "protocol": "tcp",
            "from_port": port,
            "to_port": port,
            "cidr_blocks": [cidr],
        }
        for port, what in ((EXTERNAL_DB_PORT, "RDS PostgreSQL"), (EXTERNAL_REDIS_PORT, "ElastiCache Redis"))
    ]


def assume_role_policy(service: str, condition: dict | None = None) -> str:
    statement: dict = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def dlm_assume_role_policy(partition: str, region: str, account_id: str) -> str:
    """DLM may assume the role only for this account's lifecycle policies in this region.

    The confused-deputy conditions AWS recommends for service roles (IAM User Guide, "The confused
    deputy problem": aws:SourceAccount and aws:SourceArn); a DLM policy's ARN is
    arn:<partition>:dlm:<region>:<account>:policy/<id> (Service Authorization Reference, Amazon
    Data Lifecycle Manager). The id is not known before the policy exists, hence policy/*.
    """
    return assume_role_policy(
        "dlm.amazonaws.com",
        {
            "StringEquals": {"aws:SourceAccount": account_id},
            "ArnLike": {"aws:SourceArn": f"arn:{partition}:dlm:{region}:{account_id}:policy/*"},
        },
    )


class HarborVm(pulumi.ComponentResource):
    """The VM, with everything that must outlive it (data volume, Elastic IP) as separate resources."""

    def __init__(self, name: str, args: HarborVmArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("harbor-cache:index:HarborVm", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)

        self.ssh_key = tls.PrivateKey(f"{name}-ssh-key", algorithm="ED25519", opts=child)
        key_pair = aws.ec2.KeyPair(
            f"{name}-key-pair",
            public_key=self.ssh_key.public_key_openssh,
            tags=resource_tags(settings, f"{name}-key-pair"),
            opts=child,
        )

        subnet = aws.ec2.get_subnet_output(
            id=settings.subnet_id or None,
            default_for_az=None if settings.subnet_id else True,
            availability_zone=None if settings.subnet_id else settings.availability_zone,
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            description=f"harbor-cache {settings.hostname}: HTTPS from allowedCidrs, SSH from sshAllowedCidrs",
            vpc_id=subnet.vpc_id,
            ingress=ingress_rules(settings),
            egress=[*egress_rules(settings), *data_store_egress(settings, subnet.vpc_id, self)],
            # The policy pack reads this tag: an open 443/80 is a decision, stated where reviewers see it.
            tags=resource_tags(settings, f"{name}-sg", **({PUBLIC_ACCESS_TAG: "true"} if settings.allow_public_access else {})),
            opts=child,
        )

        self.role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
            description=f"harbor-cache {settings.hostname}: Traefik's DNS-01 challenge",
            path=IAM_PATH,
            tags=resource_tags(settings, f"{name}-role"),
            opts=child,
        )
        profile = aws.iam.InstanceProfile(f"{name}-profile", role=self.role.name, path=IAM_PATH, opts=child)

        ami = aws.ec2.get_ami_output(
            most_recent=True,
            owners=[UBUNTU_OWNER],
            filters=[
                {"name": "name", "values": [UBUNTU_IMAGE_NAME]},
                {"name": "architecture", "values": ["x86_64"]},
                {"name": "virtualization-type", "values": ["hvm"]},
            ],
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        self.instance = aws.ec2.Instance(
            f"{name}-instance",
            ami=ami.id,
            instance_type=settings.instance_type,
            subnet_id=subnet.id,
            availability_zone=settings.availability_zone,
            vpc_security_group_ids=[self.security_group.id],
            iam_instance_profile=profile.name,
            key_name=key_pair.key_name,
            # Nothing secret: the VM makes its own SSH host key (user data is readable through
            # ec2:DescribeInstanceAttribute and IMDS).
            user_data=render_cloud_init(),
            # Tokens only, hop limit 1: IMDS sends the token response with IP TTL = hop limit, so
            # a container behind Docker's bridge (one routed hop) never gets a token, hence neither
            # the role's credentials nor the user data. Traefik, the one process that needs the role
            # (DNS-01), runs on the host network (tests/test_imds_reach.py shows both). storage s3:
            # hop limit 2 for the registry, the firewall guard for everyone else (IMDS_GUARD_TAG).
            metadata_options={
                "http_endpoint": "enabled",
                "http_tokens": "required",
                "http_put_response_hop_limit": IMDS_HOP_LIMIT_REGISTRY_GUARDED if imds_guarded(settings) else IMDS_HOP_LIMIT,
            },
            root_block_device={
                "encrypted": True,
                # Empty: the account's default EBS key (aws/ebs).
                "kms_key_id": settings.kms_key_arn or None,
                "volume_type": "gp3",
                "volume_size": settings.root_volume_size_gb,
                "delete_on_termination": True,
            },
            tags=resource_tags(settings, f"{name}-instance", **({IMDS_GUARD_TAG: "true"} if imds_guarded(settings) else {})),
            # A newer Ubuntu image must not replace the VM on an unrelated `pulumi up`; roll it on
            # purpose with `pulumi up --replace <instance urn>` (the data volume survives).
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["ami"]),
        )

        # Harbor's data (cached layers, database, Traefik's certificates) lives here. It is its own
        # resource so it survives instance replacement; protect stops a replace or destroy, and
        # retain_on_delete keeps it in AWS even after an unprotect + destroy.
        # dataVolumeSnapshotId restores the volume from a snapshot. In the AWS provider snapshot_id is
        # Optional+Computed+ForceNew (terraform-provider-aws internal/service/ec2/ebs_volume.go): set
        # on an existing volume it plans a replacement, which `protect` refuses; removed again later
        # it plans nothing (the computed value stays). So it acts only when the volume is created.
        self.data_volume = aws.ebs.Volume(
            f"{name}-data",
            availability_zone=settings.availability_zone,
            snapshot_id=settings.data_volume_snapshot_id or None,
            size=settings.data_volume_size_gb,
            type="gp3",
            encrypted=True,
            # A snapshot of an encrypted volume is encrypted with the volume's key, so DLM's daily
            # snapshots use this key too. Changing it later means a new volume (protect stops that).
            kms_key_id=settings.kms_key_arn or None,
            tags=resource_tags(settings, f"{name}-data", **{SNAPSHOT_TAG: settings.stack}),
            opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
        )
        self.data_attachment = aws.ec2.VolumeAttachment(
            f"{name}-data-attachment",
            device_name=DATA_DEVICE_NAME,
            volume_id=self.data_volume.id,
            instance_id=self.instance.id,
            # Stop the VM before detaching so the filesystem is unmounted cleanly on replacement.
            stop_instance_before_detaching=True,
            # A volume attaches to one instance at a time: detach from the old VM before the new.
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )

        # The host key the VM printed on its console, read by the deploying identity and pinned by
        # the remote commands: they never send secrets to a host they have not verified.
        self.host_key = ConsoleHostKey(
            f"{name}-host-key",
            instance_id=self.instance.id,
            region=settings.region,
            timeout_seconds=HOST_KEY_TIMEOUT_SECONDS,
            poll_seconds=HOST_KEY_POLL_SECONDS,
            opts=child,
        )
        self.host_public_key = self.host_key.public_key

        self.eip = aws.ec2.Eip(f"{name}-eip", domain="vpc", tags=resource_tags(settings, f"{name}-eip"), opts=child)
        self.eip_association = aws.ec2.EipAssociation(
            f"{name}-eip-association", allocation_id=self.eip.id, instance_id=self.instance.id, opts=child
        )

        invoke = pulumi.InvokeOutputOptions(parent=self)
        caller = aws.get_caller_identity_output(opts=invoke)
        partition = aws.get_partition_output(opts=invoke)
        dlm_role = aws.iam.Role(
            f"{name}-dlm-role",
            assume_role_policy=pulumi.Output.all(partition.partition, caller.account_id).apply(
                lambda values: dlm_assume_role_policy(values[0], settings.region, values[1])
            ),
            path=IAM_PATH,
            tags=resource_tags(settings, f"{name}-dlm-role"),
            opts=child,
        )
        aws.iam.RolePolicyAttachment(f"{name}-dlm-policy", role=dlm_role.name, policy_arn=DLM_SERVICE_POLICY, opts=child)
        self.snapshot_policy = aws.dlm.LifecyclePolicy(
            f"{name}-snapshots",
            description=dlm_description(settings),
            execution_role_arn=dlm_role.arn,
            state="ENABLED",
            policy_details={
                "resource_types": ["VOLUME"],
                "target_tags": {SNAPSHOT_TAG: settings.stack},
                "schedules": [
                    {
                        "name": "daily",
                        "create_rule": {"interval": 24, "interval_unit": "HOURS", "times": "03:30"},
                        "retain_rule": {"interval": settings.snapshot_retention_days, "interval_unit": "DAYS"},
                        "copy_tags": True,
                    }
                ],
            },
            tags=resource_tags(settings, f"{name}-snapshots"),
            opts=child,
        )

        self.vpc_id = subnet.vpc_id
        self.public_ip = self.eip.public_ip
        self.ssh_private_key = pulumi.Output.secret(self.ssh_key.private_key_openssh)
        self.register_outputs(
            {
                "instanceId": self.instance.id,
                "dataVolumeId": self.data_volume.id,
                "publicIp": self.public_ip,
            }
        )
