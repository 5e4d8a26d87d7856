"""Issue 18 point 10: where the stores live and what the nodes may reach, from the VPC AWS describes.

- Harbor's fixed container network (storage: s3) must not overlap any block of the VPC: an overlap
  stops the program, naming the key, before anything is created (preview runs the lookup too).
- HA: the stores' subnet groups are the nodes' subnets (the load balancer's egress names exactly those
  subnets' blocks); one VM keeps every subnet of its VPC. Either way the VM (the nodes) reach the stores
  through their client group, whose egress names the stores' own groups: no block of the VPC (issue 22),
  so a secondary block changes nothing.
"""

from __future__ import annotations

import pytest

from components.aws.placement import harbor_network_problems
from components.vm.imds_guard import HARBOR_SUBNET
from tests.settings.test_settings import parse
from tests.standins.pulumi_harness import FAKE_VPC_CIDR, FAKE_VPC_SUBNETS, AwsMocks, dev_config, run_program

STORE_PORTS = {5432, 6379}


def config(**overrides) -> dict:
    return {**dev_config(), **{f"harbor-cache:{key}": value for key, value in overrides.items()}}


def store_egress(run) -> list[dict]:
    """Every egress rule on the store ports of the groups the instances join."""
    groups = {f"{r.name}-id": r for r in run.of_type("aws:ec2/securityGroup:SecurityGroup")}
    joined = {group for instance in run.of_type("aws:ec2/instance:Instance") for group in instance.inputs["vpcSecurityGroupIds"]}
    return [rule for group in sorted(joined) for rule in groups[group].inputs["egress"] if rule["fromPort"] in STORE_PORTS]


def reach_only_the_stores_groups(rules: list[dict]) -> bool:
    wanted = {5432: ["harbor-data-db-sg-id"], 6379: ["harbor-data-redis-sg-id"]}
    return sorted(rule["fromPort"] for rule in rules) == sorted(STORE_PORTS) and all(
        rule["securityGroups"] == wanted[rule["fromPort"]] and not rule.get("cidrBlocks") for rule in rules
    )


@pytest.mark.parametrize(
    ("blocks", "overlapping"),
    [
        (["172.31.0.0/16"], []),
        (["10.0.0.0/16", "10.255.0.0/16"], ["10.255.0.0/16"]),
        (["10.255.254.128/25"], ["10.255.254.128/25"]),
        (["10.0.0.0/8"], ["10.0.0.0/8"]),
        (["10.255.253.0/24", "10.255.255.0/24"], []),
    ],
)
def test_a_vpc_block_that_overlaps_harbors_network_is_named(blocks, overlapping):
    settings = parse(storage="s3")
    problems = harbor_network_problems(settings, "vpc-0a1b2c3d", blocks)
    assert [p.message.split(" holds ")[1].split(",")[0] for p in problems] == overlapping
    assert all(p.key == "availabilityZone" and HARBOR_SUBNET in p.message for p in problems)
    # Without S3 Harbor's network is Docker's own pool: nothing to check.
    assert harbor_network_problems(parse(), "vpc-0a1b2c3d", blocks) == []


def test_an_overlapping_secondary_block_stops_the_program_before_any_instance(monkeypatch):
    monkeypatch.setattr(AwsMocks, "vpc_secondary_cidrs", ("10.255.0.0/16",))
    recorder: dict = {}
    with pytest.raises(Exception, match=r"harbor-cache:subnetIds: the VPC vpc-0a1b2c3d holds 10.255.0.0/16, which overlaps"):
        run_program(config(replicas=2, subnetIds=[FAKE_VPC_SUBNETS[0], FAKE_VPC_SUBNETS[1]]), recorder=recorder)
    created = {r.type for r in recorder["registrations"]}
    assert not created & {
        "aws:ec2/instance:Instance",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:rds/instance:Instance",
        "aws:lb/loadBalancer:LoadBalancer",
    }
    # The same VPC without S3 (one VM, EBS): nothing lands on the fixed network, nothing is refused.
    run_program(config())


def test_ha_stores_live_in_the_nodes_subnets_and_the_nodes_reach_only_their_groups():
    run = run_program(config(replicas=3))
    node_subnets = sorted(FAKE_VPC_SUBNETS[:2])
    assert run.one("aws:rds/subnetGroup:SubnetGroup").inputs["subnetIds"] == node_subnets
    assert run.one("aws:elasticache/subnetGroup:SubnetGroup").inputs["subnetIds"] == node_subnets
    assert reach_only_the_stores_groups(store_egress(run))
    assert all(len(r.inputs["vpcSecurityGroupIds"]) == 2 for r in run.of_type("aws:ec2/instance:Instance"))


def test_one_vm_on_rds_reaches_the_stores_groups_not_the_vpcs_blocks(monkeypatch):
    monkeypatch.setattr(AwsMocks, "vpc_secondary_cidrs", ("100.64.0.0/16",))
    run = run_program(config(externalServices=True))
    assert reach_only_the_stores_groups(store_egress(run))
    assert FAKE_VPC_CIDR not in str(store_egress(run))
    # Its one subnet cannot hold a subnet group (two AZs): the stores may be in any subnet of the VPC.
    assert run.one("aws:rds/subnetGroup:SubnetGroup").inputs["subnetIds"] == sorted(FAKE_VPC_SUBNETS)
