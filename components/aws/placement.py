"""Where Harbor's nodes go: their subnets and availability zones, checked before anything is created."""

from __future__ import annotations

import ipaddress

import pulumi
import pulumi_aws as aws

from components.settings.config_reader import Problem, SettingsError
from components.settings.settings import Settings
from components.vm.imds_guard import HARBOR_SUBNET, imds_guarded


def node_subnets(settings: Settings, parent: pulumi.Resource) -> list[pulumi.Output[aws.ec2.GetSubnetResult]]:
    """The subnets nodes are placed in, round-robin: node i in entry i % len.

    One VM: `subnetId` or the default subnet of `availabilityZone`, exactly as before. Several nodes:
    each of `subnetIds`, or the default subnet of each of `availabilityZones` (the first is
    `availabilityZone`, so node 0 looks up the same subnet the single VM had).
    """
    invoke = pulumi.InvokeOutputOptions(parent=parent)
    if not settings.high_availability:
        return [
            aws.ec2.get_subnet_output(
                id=settings.subnet_id or None,
                default_for_az=None if settings.subnet_id else True,
                availability_zone=None if settings.subnet_id else settings.availability_zone,
                opts=invoke,
            )
        ]
    if settings.subnet_ids:
        return [aws.ec2.get_subnet_output(id=subnet_id, opts=invoke) for subnet_id in settings.subnet_ids]
    zones = settings.availability_zones
    return [aws.ec2.get_subnet_output(default_for_az=True, availability_zone=zone, opts=invoke) for zone in zones]


def placement_problems(settings: Settings, zones: list[str]) -> list[Problem]:
    """What the subnets' AZs must satisfy, known only once AWS named them (subnetIds)."""
    problems = []
    if settings.high_availability and (len(set(zones)) < 2 or len(set(zones)) != len(zones)):
        # An ALB takes one subnet per AZ, in at least two AZs (ELB API CreateLoadBalancer, Subnets).
        problems.append(
            Problem("subnetIds", f"the subnets lie in {zones}; accepted: one subnet per AZ, in at least 2 AZs (load balancer)")
        )
    if zones and zones[0] != settings.availability_zone:
        problems.append(
            Problem(
                "subnetIds",
                f"the first subnet lies in {zones[0]!r}, but node 0's data volume lives in availabilityZone "
                f"{settings.availability_zone!r}: list a subnet of that AZ first",
            )
        )
    return problems


def checked_zones(settings: Settings, subnets: list[pulumi.Output[aws.ec2.GetSubnetResult]]) -> pulumi.Output[list[str]]:
    """The subnets' AZs, or the program stops with the problem named (before any node exists)."""

    def check(zones: list[str]) -> list[str]:
        problems = placement_problems(settings, zones)
        if problems:
            raise SettingsError(problems)
        return zones

    return pulumi.Output.all(*[subnet.availability_zone for subnet in subnets]).apply(check)


def vpc_ipv4_cidrs(vpc: aws.ec2.GetVpcResult) -> list[str]:
    """Every IPv4 block of the VPC: the primary and the secondary ones (get_vpc's cidr_block_associations
    lists them all, the primary included; a block being disassociated no longer counts)."""
    associated = [a.cidr_block for a in vpc.cidr_block_associations if a.state in ("associated", "associating")]
    return sorted(set([vpc.cidr_block, *associated]))


def placement_key(settings: Settings) -> str:
    """The key that chose the VPC: the subnets' key when set, else the AZ whose default subnet (default VPC) is used."""
    if settings.subnet_ids:
        return "subnetIds"
    if settings.subnet_id:
        return "subnetId"
    return "availabilityZones" if settings.high_availability else "availabilityZone"


def harbor_network_problems(settings: Settings, vpc_id: str, vpc_cidrs: list[str]) -> list[Problem]:
    """With storage: s3 Harbor's containers sit on the fixed HARBOR_SUBNET (components/vm/imds_guard.py),
    and the host routes that block into Docker's bridge: a VPC that holds any of it would lose those
    addresses (a node, RDS, ElastiCache, an endpoint there) to the bridge."""
    if not imds_guarded(settings):
        return []
    harbor = ipaddress.ip_network(HARBOR_SUBNET)
    return [
        Problem(
            placement_key(settings),
            f"the VPC {vpc_id} holds {cidr}, which overlaps {HARBOR_SUBNET}, the fixed network of Harbor's containers "
            "with storage: s3 (the host would route those VPC addresses into Docker's bridge); place Harbor in a VPC "
            f"whose CIDR blocks leave {HARBOR_SUBNET} free",
        )
        for cidr in vpc_cidrs
        if ipaddress.ip_network(cidr, strict=False).overlaps(harbor)
    ]


def checked_vpc_id(settings: Settings, vpc_id: pulumi.Output[str], parent: pulumi.Resource) -> pulumi.Output[str]:
    """The nodes' VPC id, once its CIDR blocks were checked against Harbor's fixed network (preview
    runs the lookup too, so an overlap stops `pulumi preview` before anything is created)."""
    if not imds_guarded(settings):
        return vpc_id
    vpc = aws.ec2.get_vpc_output(id=vpc_id, opts=pulumi.InvokeOutputOptions(parent=parent))

    def check(found: aws.ec2.GetVpcResult) -> str:
        problems = harbor_network_problems(settings, found.id, vpc_ipv4_cidrs(found))
        if problems:
            raise SettingsError(problems)
        return found.id

    return vpc.apply(check)
