"""Review 22d probes (issue 22): the 22c fixes and the two group policies, run through the analyzer protocol.

Each test asserts the FINDING on today's main: a bypass test asserts the probe passes every mandatory policy; a
false-refusal test asserts the pack refuses what the real engine would send for the program's own resource. So a
green test = finding confirmed; once the pack is fixed, flip the assertion (the probe belongs in the bypass corpus).
Run: nice -n 10 venv/bin/python -m pytest -q -p no:cacheprovider tests/policy/test_review22d_probes.py -s
"""

from __future__ import annotations

import copy

import pytest

from tests.policy.test_policy_bypass import AT_UP, UNKNOWN, in_aws, stack_config, tcp, with_probe
from tests.standins.policy_engine import (
    changed,
    engine_resources,
    registration_of,
    replaced_at_preview,
    run_program,
    running_pack,
)

FOREIGN_NET = "198.51.100.0/24"  # not in any stack's allowedCidrs/sshAllowedCidrs


@pytest.fixture(scope="module")
def stacks():
    return {label: engine_resources(run_program(stack_config(label))) for label in ("dev", "s3", "ha")}


def mandatory(found):
    return [(d.policy, d.message[-300:]) for d in found if d.mandatory]


def judged(stack, label, probes=(), aws=None):
    """(preview, up Analyze of the probes) mandatory diagnostics of the stack with `probes` in it."""
    whole = with_probe(stack, list(probes))
    with running_pack(dry_run=True, config=stack_config(label), disabled=() if aws else (AT_UP,)) as pack:
        pre = mandatory(pack.analyze_all(whole))
    up = []
    if aws is not None:
        with running_pack(dry_run=False, env=aws[1], config=stack_config(label)) as pack:
            up = [m for p in probes for m in mandatory(pack.analyze(p))]
    return pre, up


# ------------------------------------------------------------------------------------------------------------------
# G1: vm-group-admits-exactly-the-settings judges only harbor-vm-sg; the instance's second group (the stores' client
# group, allowed by GROUP_REFERENCES and the up-time lookup in EVERY mode) admits whatever the per-group resource check
# lets through: a foreign /24 on 22, 443 or 80, metrics from a /16 when metricsAllowedCidrs is unset.


def test_g1_client_group_admits_a_foreign_network_on_ssh_and_https(stacks):
    stack = stacks["s3"]

    def open_it(p):
        p["ingress"] = [tcp(22, FOREIGN_NET), tcp(443, FOREIGN_NET), tcp(9090, "203.0.0.0/16")]

    probe = changed(stack, "harbor-data-client-sg", open_it)
    pre, _ = judged(stack, "s3", [probe])
    print("G1 preview:", pre)
    assert pre == []


def test_g1b_one_vm_stack_instance_joins_a_new_client_group(stacks):
    """The same without externalServices: the pull request adds harbor-data-client-sg under a HarborDataServices
    component (components-are-the-programs accepts it in any mode) with a foreign /24 on 22 and 443, and the instance
    joins it (GROUP_REFERENCES allows the client group whatever the mode). Only the VM's own group is compared with the
    settings."""
    from tests.policy.test_policy_bypass import CACHE_URN, made
    from tests.standins.policy_engine import EngineResource, engine_urn

    stack = stacks["dev"]
    vm_sg = registration_of(stack, "harbor-vm-sg")
    group = made(
        "aws:ec2/securityGroup:SecurityGroup",
        "harbor-data-client-sg",
        {
            "vpcId": vm_sg.inputs.get("vpcId"),
            "ingress": [tcp(22, FOREIGN_NET), tcp(443, FOREIGN_NET)],
            "egress": [],
            "tags": {"Name": "harbor-data-client-sg", "harbor-cache:stack": "dev"},
        },
        under="HarborDataServices",
        outputs={
            "id": "sg-0c1e17c1e17c1e17c",
            "vpcId": vm_sg.inputs.get("vpcId"),
            "ingress": [tcp(22, FOREIGN_NET), tcp(443, FOREIGN_NET)],
            "egress": [],
            "tags": {"Name": "harbor-data-client-sg", "harbor-cache:stack": "dev"},
        },
    )
    kind = "harbor-cache:index:HarborDataServices"
    component = EngineResource(kind, "harbor-data", engine_urn("dev", CACHE_URN, kind, "harbor-data"), {}, {}, CACHE_URN)
    group.urn = engine_urn("dev", component.urn, group.type, group.name)
    group.parent = component.urn
    instance = changed(stack, "harbor-vm-instance", lambda p: p["vpcSecurityGroupIds"].append("sg-0c1e17c1e17c1e17c"))
    instance.property_dependencies["vpcSecurityGroupIds"] = [
        *instance.property_dependencies["vpcSecurityGroupIds"],
        group.urn,
    ]
    pre, _ = judged(stack, "dev", [component, group, instance])
    print("G1b preview:", pre)
    assert pre == []


# ------------------------------------------------------------------------------------------------------------------
# A1 (the up-time lookups judge only values that are THERE): a reference unknown at the preview (made through
# `apply` from a replaced source, so the stack check judges its dependency alone) that is ABSENT at `up` gets no
# lookup (values_at returns nothing) and no resource check requires it. vpcSecurityGroupIds absent: EC2 puts the
# instance in the VPC's default security group (EC2 API RunInstances: "If you don't specify a security group ID, we
# use the default security group for the VPC"): all egress (every database of the VPC, every port), ingress from every
# other member of that group; the same gap the type table closes for DefaultSecurityGroup.


def test_a1_instance_security_groups_unknown_at_preview_absent_at_up(stacks, aws):
    stack = in_aws(stacks, "dev", aws)
    preview = replaced_at_preview(stack, ["harbor-vm-sg"])
    assert registration_of(preview, "harbor-vm-instance").inputs["vpcSecurityGroupIds"] == UNKNOWN
    with running_pack(dry_run=True, config=stack_config("dev")) as pack:
        pre = mandatory(pack.analyze_all(preview))
    probe = changed(stack, "harbor-vm-instance", lambda p: p.pop("vpcSecurityGroupIds"))
    with running_pack(dry_run=False, env=aws[1], config=stack_config("dev")) as pack:
        up = mandatory(pack.analyze(probe))
    print("A1 preview:", pre, "\nA1 up:", up)
    assert pre == [] and up == []


# ------------------------------------------------------------------------------------------------------------------
# G2: vm-reaches-only-the-programs-stores covers 5432 and 6379 only, and the resource check refuses egress to "the
# world" only (too_wide counts public addresses): the VM's group may let any other single tcp port out to the VPC's
# private blocks: MySQL/Aurora 3306, NFS/EFS 2049, MongoDB 27017, OpenSearch 9200, SQL Server 1433, Redshift 5439, a
# PostgreSQL on 5433. Issue 22's low finding ("the VM may reach every database in the VPC") holds for every store but
# the program's own kind; the program itself has no egress to private blocks at all.


def test_g2_vm_reaches_other_databases_of_the_vpc(stacks):
    stack = stacks["s3"]
    vpc = "172.31.0.0/16"

    def more_egress(p):
        p["egress"] = [*p["egress"], *(tcp(port, vpc) for port in (3306, 2049, 27017, 9200, 1433, 5439, 5433))]

    probe = changed(stack, "harbor-vm-sg", more_egress)
    pre, _ = judged(stack, "s3", [probe])
    print("G2 preview:", pre)
    assert pre == []


# ------------------------------------------------------------------------------------------------------------------
# L1: the load balancer's 443 may hold blocks unknown at preview (a node's Elastic IP created or replaced in the same
# update: a scale-up makes one every time), judged there by their origin only (stack_checks._node_address: an unknown
# block of a 443 rule made from a program EIP passes; resource_checks._rules leaves it out). At `up`, Analyze looks up
# only the /32s (aws_lookups._node_addresses: `network.prefixlen == 32`) and the resource check refuses only what
# too_wide calls the world (more than a /16 of public addresses). So eip.public_ip.apply(lambda _: "198.51.0.0/16") on
# 443 passes every check that runs before the step: a foreign /16 (or a /31, two foreign hosts) reaches the cache
# through the load balancer, outside allowedCidrs.


def test_l1_load_balancer_443_block_unknown_at_preview_is_a_foreign_network_at_up(stacks, aws):
    stack = in_aws(stacks, "ha", aws)
    original = copy.deepcopy(registration_of(stack, "harbor-lb-sg").inputs["ingress"])
    preview = replaced_at_preview(stack, ["harbor-vm-1-eip"])
    group = registration_of(preview, "harbor-lb-sg")
    at_preview = copy.deepcopy(original)
    at_preview[3]["cidrBlocks"] = [UNKNOWN]  # node 1's EIP, replaced: as the program's own rule is at that preview
    at_preview.append(tcp(443, UNKNOWN, description="443 from node 1 (the pull request's)"))
    for props in (group.inputs, group.outputs):
        props["ingress"] = copy.deepcopy(at_preview)
    with running_pack(dry_run=True, config=stack_config("ha")) as pack:
        pre = mandatory(pack.analyze_all(preview))
    probe = changed(stack, "harbor-lb-sg", lambda p: p["ingress"].append(tcp(443, "198.51.0.0/16")))
    with running_pack(dry_run=False, env=aws[1], config=stack_config("ha")) as pack:
        up = mandatory(pack.analyze(probe))
    print("L1 preview:", pre, "\nL1 up:", up)
    assert pre == [] and up == []
