"""Where Harbor's nodes go: their subnets and availability zones, checked before anything is created."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.settings.config_reader import Problem, SettingsError
from components.settings.settings import Settings


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
