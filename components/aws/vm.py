"""HarborVm: the EC2 instances Harbor runs on, their data volumes, network access and identity.

One VM (replicas: 1) or several Harbor nodes behind a load balancer (replicas > 1, issue 13 step 3).
What the nodes share (security group, instance role and profile, SSH key pair, snapshot policy) is
made once; each node has its instance, its console host key, its Elastic IP (SSH from the
deployer) and its data volume. Node 0 is the single VM: it keeps every name and input the single
VM had, so a stack that switches from 1 to N updates it in place and keeps its protected data volume.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_tls as tls

from components.aws.host_key_provider import ConsoleHostKey
from components.aws.instance_running import InstanceRunning
from components.aws.network_rules import egress_rules, ingress_rules
from components.aws.placement import checked_vpc_id, checked_zones, node_subnets
from components.aws.tagging import (
    NODE_SCRATCH_TAG,
    PUBLIC_ACCESS_TAG,
    SNAPSHOT_TAG,
    dlm_description,
    resource_tags,
)
from components.settings.settings import Settings
from components.vm.cloud_init import render_cloud_init
from components.vm.paths import HARBOR_HTTP_PORT

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
# In every mode. storage: s3's registry and registryctl get the role's credentials from the host's
# relay (components/vm/imds_guard.py, imds_relay.py), never from IMDS itself.
IMDS_HOP_LIMIT = 1
# Every IAM role and instance profile of the program lives under this path, so a deploy role can be
# limited to arn:aws:iam::<account>:role/harbor-cache/* (iam:CreateRole, iam:PassRole, ...).
IAM_PATH = "/harbor-cache/"
# Nodes 1..N-1 of replicas > 1: with S3 and the external stores, /data keeps only Harbor's secret
# files, job logs and Trivy's database (about 1 GiB), so a small volume that goes with its node.
# Unprotected on purpose: scaling down (replicas 3 -> 2) deletes node 2 and this volume with it.
NODE_SCRATCH_VOLUME_GB = 20


@dataclass(frozen=True)
class LoadBalancerTarget:
    """replicas > 1: the load balancer's security group (the only source of 8080) and its target group."""

    security_group_id: pulumi.Input[str]
    target_group_arn: pulumi.Input[str]


@dataclass(frozen=True)
class HarborVmArgs:
    settings: Settings
    # replicas > 1: the nodes' subnets (node_subnets) and the load balancer they serve.
    subnets: list[pulumi.Output[aws.ec2.GetSubnetResult]] | None = None
    load_balancer: LoadBalancerTarget | None = None
    # externalServices: the stores' client group (components/aws/data_services.py), whose egress goes to the stores'
    # groups only; every instance joins it besides the VM's group. Made after the stores' groups, which admit the
    # VM's group, hence after this component: a deferred output (components/harbor_cache.py).
    stores_security_group_id: pulumi.Input[str] | None = None


@dataclass
class HarborNode:
    """One Harbor node's own resources (plain data: a component here would rename node 0's resources)."""

    index: int
    instance: aws.ec2.Instance
    data_volume: aws.ebs.Volume
    data_attachment: aws.ec2.VolumeAttachment
    # Started again when a new attachment stopped it (components/aws/instance_running.py).
    running: InstanceRunning
    host_key: ConsoleHostKey
    host_public_key: pulumi.Output[str]
    eip: aws.ec2.Eip
    eip_association: aws.ec2.EipAssociation
    public_ip: pulumi.Output[str]
    target_attachment: aws.lb.TargetGroupAttachment | None = None


def node_prefix(name: str, index: int) -> str:
    """Node 0 keeps the single VM's names (harbor-vm-instance, ...); node i is harbor-vm-<i>-instance."""
    return name if index == 0 else f"{name}-{index}"


def assume_role_policy(service: str, condition: dict | None = None) -> str:
    statement: dict = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def dlm_assume_role_policy() -> str:
    """The trust AWS documents for DLM's own default role: "It trusts only the dlm.amazonaws.com
    service to assume the role" (Amazon EBS User Guide, "IAM service roles for Amazon Data Lifecycle
    Manager", AWSDataLifecycleManagerDefaultRole). No aws:SourceArn/aws:SourceAccount condition: no
    AWS document says DLM sends those keys when it assumes the role, and a condition on a key that
    is absent fails, so the policy would go to ERROR ("Role provided does not have sufficient
    permissions") and no snapshot would be taken (issue 19). DLM's errors reach the alarm topic
    (components/aws/backup_watch.py)."""
    return assume_role_policy("dlm.amazonaws.com")


class HarborVm(pulumi.ComponentResource):
    """The VM or the nodes, with everything that must outlive an instance (data volume, Elastic IP) as separate resources."""

    def __init__(self, name: str, args: HarborVmArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("harbor-cache:index:HarborVm", name, None, opts)
        settings = args.settings
        self._name = name
        self._settings = settings
        self._stores_security_group_id = args.stores_security_group_id
        child = pulumi.ResourceOptions(parent=self)
        load_balancer = args.load_balancer if settings.high_availability else None

        self.ssh_key = tls.PrivateKey(f"{name}-ssh-key", algorithm="ED25519", opts=child)
        self._key_pair = aws.ec2.KeyPair(
            f"{name}-key-pair",
            public_key=self.ssh_key.public_key_openssh,
            tags=resource_tags(settings, f"{name}-key-pair"),
            opts=child,
        )

        subnets = args.subnets or node_subnets(settings, self)
        self.subnets = subnets
        # storage: s3: the VPC's blocks must leave Harbor's fixed container network free (checked here,
        # before the security group, hence before any instance).
        self.vpc_id = checked_vpc_id(settings, subnets[0].vpc_id, self)
        if load_balancer is None:
            description = f"harbor-cache {settings.hostname}: HTTPS from allowedCidrs, SSH from sshAllowedCidrs"
        else:
            description = f"harbor-cache {settings.hostname}: Harbor nodes, {HARBOR_HTTP_PORT} from the load balancer, SSH"
        public = {PUBLIC_ACCESS_TAG: "true"} if settings.allow_public_access and load_balancer is None else {}
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            description=description,
            vpc_id=self.vpc_id,
            ingress=ingress_rules(settings, load_balancer.security_group_id if load_balancer else None),
            # The stores (externalServices) are reached through their client group (stores_security_group_id).
            egress=egress_rules(settings),
            # The policy pack reads this tag: an open 443/80 is a decision, stated where reviewers see it.
            tags=resource_tags(settings, f"{name}-sg", **public),
            opts=child,
        )

        # The description says what the role is for; on nodes (replicas > 1) there is no DNS-01.
        role_purpose = "Harbor nodes (S3, metrics)" if settings.high_availability else "Traefik's DNS-01 challenge"
        self.role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
            description=f"harbor-cache {settings.hostname}: {role_purpose}",
            path=IAM_PATH,
            tags=resource_tags(settings, f"{name}-role"),
            opts=child,
        )
        # Tagged like every object a reference may name: the policy pack looks the instance's profile up at `up`
        # (policy/aws_lookups.py) and wants this stack's tag and the program's Name on it.
        self._profile = aws.iam.InstanceProfile(
            f"{name}-profile",
            role=self.role.name,
            path=IAM_PATH,
            tags=resource_tags(settings, f"{name}-profile"),
            opts=child,
        )

        self._ami = aws.ec2.get_ami_output(
            most_recent=True,
            owners=[UBUNTU_OWNER],
            filters=[
                {"name": "name", "values": [UBUNTU_IMAGE_NAME]},
                {"name": "architecture", "values": ["x86_64"]},
                {"name": "virtualization-type", "values": ["hvm"]},
            ],
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        # subnetIds: their AZs are known only from AWS; a wrong first AZ stops the program here.
        zones: list[pulumi.Input[str]]
        if settings.high_availability and settings.subnet_ids:
            checked = checked_zones(settings, subnets)
            zones = [checked.apply(lambda values, i=i: values[i]) for i in range(len(subnets))]
        elif settings.high_availability:
            zones = list(settings.availability_zones)
        else:
            zones = [settings.availability_zone]
        self.nodes = [
            self._node(index, subnets[index % len(subnets)], zones[index % len(zones)], load_balancer)
            for index in range(settings.replicas)
        ]

        dlm_role = aws.iam.Role(
            f"{name}-dlm-role",
            assume_role_policy=dlm_assume_role_policy(),
            path=IAM_PATH,
            tags=resource_tags(settings, f"{name}-dlm-role"),
            opts=child,
        )
        aws.iam.RolePolicyAttachment(f"{name}-dlm-policy", role=dlm_role.name, policy_arn=DLM_SERVICE_POLICY, opts=child)
        # Snapshots of the volume tagged SNAPSHOT_TAG: the single VM's (node 0's) data volume only.
        self.snapshot_policy = aws.dlm.LifecyclePolicy(
            f"{name}-snapshots",
            description=dlm_description(settings),
            execution_role_arn=dlm_role.arn,
            state="ENABLED",
            policy_details={
                "resource_types": ["VOLUME"],
                "target_tags": {SNAPSHOT_TAG: settings.stack_id},
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

        # Node 0 under the single VM's attribute names: the single-VM wiring reads these.
        first = self.nodes[0]
        self.instance = first.instance
        self.data_volume = first.data_volume
        self.data_attachment = first.data_attachment
        self.host_key = first.host_key
        self.host_public_key = first.host_public_key
        self.eip = first.eip
        self.eip_association = first.eip_association
        self.public_ip = first.public_ip
        self.ssh_private_key = pulumi.Output.secret(self.ssh_key.private_key_openssh)
        outputs: dict[str, pulumi.Input] = {
            "instanceId": self.instance.id,
            "dataVolumeId": self.data_volume.id,
            "publicIp": self.public_ip,
        }
        if settings.high_availability:
            outputs["nodes"] = [{"instanceId": node.instance.id, "publicIp": node.public_ip} for node in self.nodes]
        self.register_outputs(outputs)

    def _node(
        self,
        index: int,
        subnet: pulumi.Output[aws.ec2.GetSubnetResult],
        zone: pulumi.Input[str],
        load_balancer: LoadBalancerTarget | None,
    ) -> HarborNode:
        settings = self._settings
        prefix = node_prefix(self._name, index)
        child = pulumi.ResourceOptions(parent=self)
        instance = aws.ec2.Instance(
            f"{prefix}-instance",
            ami=self._ami.id,
            instance_type=settings.instance_type,
            subnet_id=subnet.id,
            availability_zone=zone,
            vpc_security_group_ids=[
                self.security_group.id,
                *([self._stores_security_group_id] if self._stores_security_group_id is not None else []),
            ],
            iam_instance_profile=self._profile.name,
            key_name=self._key_pair.key_name,
            # Nothing secret: the VM makes its own SSH host key (user data is readable through
            # ec2:DescribeInstanceAttribute and IMDS).
            user_data=render_cloud_init(),
            # Tokens only, hop limit 1: IMDS sends the token response with IP TTL = hop limit, so
            # a container behind Docker's bridge (one routed hop) never gets a token, hence neither
            # the role's credentials nor the user data. Traefik, the one process that needs the role
            # (DNS-01), runs on the host network (tests/aws/test_imds_reach.py shows both). storage s3:
            # the registry's credentials come from the host's relay (components/vm/imds_relay.py).
            metadata_options={
                "http_endpoint": "enabled",
                "http_tokens": "required",
                "http_put_response_hop_limit": IMDS_HOP_LIMIT,
            },
            root_block_device={
                "encrypted": True,
                # Empty: the account's default EBS key (aws/ebs).
                "kms_key_id": settings.kms_key_arn or None,
                "volume_type": "gp3",
                "volume_size": settings.root_volume_size_gb,
                "delete_on_termination": True,
            },
            tags=resource_tags(settings, f"{prefix}-instance"),
            # A newer Ubuntu image must not replace the VM on an unrelated `pulumi up`; roll it on
            # purpose with `pulumi up --replace <instance urn>` (the data volume survives).
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["ami"]),
        )

        if index == 0:
            # Harbor's data (cached layers, database, Traefik's certificates) lives here. It is its own
            # resource so it survives instance replacement; protect stops a replace or destroy, and
            # retain_on_delete keeps it in AWS even after an unprotect + destroy. With replicas > 1 node
            # 0 keeps it unchanged (a stack switching from one VM must never lose it by surprise).
            # dataVolumeSnapshotId restores the volume from a snapshot. In the AWS provider snapshot_id is
            # Optional+Computed+ForceNew (terraform-provider-aws internal/service/ec2/ebs_volume.go): set
            # on an existing volume it plans a replacement, which `protect` refuses; removed again later
            # it plans nothing (the computed value stays). So it acts only when the volume is created.
            volume = aws.ebs.Volume(
                f"{prefix}-data",
                availability_zone=settings.availability_zone,
                snapshot_id=settings.data_volume_snapshot_id or None,
                size=settings.data_volume_size_gb,
                type="gp3",
                encrypted=True,
                # A snapshot of an encrypted volume is encrypted with the volume's key, so DLM's daily
                # snapshots use this key too. Changing it later means a new volume (protect stops that).
                kms_key_id=settings.kms_key_arn or None,
                tags=resource_tags(settings, f"{prefix}-data", **{SNAPSHOT_TAG: settings.stack_id}),
                opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
            )
        else:
            # Nodes 1..N-1: nothing on /data is precious (blobs in S3, database and Redis outside,
            # shared secrets laid by Pulumi), so no snapshots and no protect: scaling down deletes it.
            volume = aws.ebs.Volume(
                f"{prefix}-data",
                availability_zone=zone,
                size=NODE_SCRATCH_VOLUME_GB,
                type="gp3",
                encrypted=True,
                kms_key_id=settings.kms_key_arn or None,
                # The policy pack reads this tag: an unprotected volume is a decision, stated here.
                tags=resource_tags(settings, f"{prefix}-data", **{NODE_SCRATCH_TAG: "true"}),
                opts=child,
            )
        attachment = aws.ec2.VolumeAttachment(
            f"{prefix}-data-attachment",
            device_name=DATA_DEVICE_NAME,
            volume_id=volume.id,
            instance_id=instance.id,
            # Stop the VM before detaching so the filesystem is unmounted cleanly on replacement.
            stop_instance_before_detaching=True,
            # A volume attaches to one instance at a time: detach from the old VM before the new.
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        # ...and start it again afterwards: a same-AZ restore swaps the volume and keeps the instance.
        running = InstanceRunning(
            f"{prefix}-running",
            instance_id=instance.id,
            region=settings.region,
            attachment_id=attachment.id,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[attachment]),
        )

        # The host key the VM printed on its console, read by the deploying identity and pinned by
        # the remote commands: they never send secrets to a host they have not verified.
        host_key = ConsoleHostKey(
            f"{prefix}-host-key",
            instance_id=instance.id,
            region=settings.region,
            timeout_seconds=HOST_KEY_TIMEOUT_SECONDS,
            poll_seconds=HOST_KEY_POLL_SECONDS,
            opts=child,
        )

        # Every node keeps an Elastic IP: the install reaches each node over SSH from the deployer.
        eip = aws.ec2.Eip(f"{prefix}-eip", domain="vpc", tags=resource_tags(settings, f"{prefix}-eip"), opts=child)
        eip_association = aws.ec2.EipAssociation(
            f"{prefix}-eip-association", allocation_id=eip.id, instance_id=instance.id, opts=child
        )
        target = None
        if load_balancer is not None:
            # Here rather than in HarborLoadBalancer: the load balancer's group must exist before the
            # nodes' group (which admits it), and the nodes before their registration.
            target = aws.lb.TargetGroupAttachment(
                f"{prefix}-target",
                target_group_arn=load_balancer.target_group_arn,
                target_id=instance.id,
                port=HARBOR_HTTP_PORT,
                opts=child,
            )
        return HarborNode(
            index=index,
            instance=instance,
            data_volume=volume,
            data_attachment=attachment,
            running=running,
            host_key=host_key,
            host_public_key=host_key.public_key,
            eip=eip,
            eip_association=eip_association,
            public_ip=eip.public_ip,
            target_attachment=target,
        )
