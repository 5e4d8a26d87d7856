"""Review 22f (issue 22): the default AWS provider's inputs (L2: an allow-list, everything else refused; FR3: harmless
explicit "off" values pass) and an existing node's old launch image (FR2). Each runs through the pack as the engine
runs it (tests/standins/policy_engine.py `running_pack`: its entry point over the analyzer's gRPC protocol), as
tests/policy/test_policy_bypass.py does; each failed on main dad5a47's pack (the review's probes,
/work/notes/review22f/probe_provider_identity.py and probe_old_image.py, outside the repository)."""

from __future__ import annotations

import copy

import pytest

from tests.standins.policy_engine import (
    WITHOUT_AWS_LOOKUPS,
    EngineResource,
    changed,
    engine_resources,
    registration_of,
    run_program,
    running_pack,
)
from tests.standins.pulumi_harness import dev_config

AT_UP = "references-are-the-stacks-own-at-up"
PROVIDER_POLICY = "pulumi-providers-aws"


@pytest.fixture(scope="module")
def dev() -> list[EngineResource]:
    return engine_resources(run_program(dev_config()))


def mandatory(pack, resource: EngineResource) -> list[tuple[str, str]]:
    return [(d.policy, d.message) for d in pack.analyze(resource) if d.mandatory]


# ---------------------------------------------------------------------------------------------
# FR2: an existing node's launch image after vm.py (or Canonical's naming) moved on

# An image of Canonical's under a name today's UBUNTU_IMAGE_NAME (policy/aws_lookups.py, components/aws/vm.py) does not
# match: an earlier series on Canonical's earlier path (hvm-ssd, before hvm-ssd-gp3), as a node launched before the
# program moved on runs it.
OLD_IMAGE = "ami-0aaaaaaaaaaaaaaa1"
OLD_IMAGE_NAME = "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240207.1"
FOREIGN_OWNER = "210987654321"


def add_image(image_id: str, name: str, owner: str) -> None:
    """A public image of `owner` in moto's EC2 of the stack's account and region, as moto_stack.canonical_image adds
    Canonical's (moto's own `Ami` model of another account's image, moto/ec2/models/amis.py)."""
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.amis import Ami

    from tests.standins.moto_stack import MOTO_ACCOUNT, REGION

    backend = ec2_backends[MOTO_ACCOUNT][REGION]
    backend.amis[image_id] = Ami(
        backend,
        ami_id=image_id,
        name=name,
        owner_id=owner,
        public=True,
        architecture="x86_64",
        virtualization_type="hvm",
        root_device_type="ebs",
    )


def test_an_existing_nodes_old_image_passes_and_a_new_launch_of_it_does_not(dev, aws):
    """FR2: with ignore_changes=["ami"] (components/aws/vm.py) the engine hands Analyze, at every `up`, the image each
    instance was launched from (pulumi step_generator.go: processIgnoreChanges with the old inputs before analyzeAll).
    Canonical's image under a name today's pattern does not match passes where a live instance of this stack runs it;
    once none does (the instance terminated: a new launch would boot it) it is refused, and so is an image of another
    owner even where the stack's instance runs it (the owner check stays for every image AWS shows)."""
    from tests.standins.moto_stack import clients, in_aws, tag_specification

    stack = in_aws(dev, aws[0])
    ec2 = clients(aws[0])("ec2")
    add_image(OLD_IMAGE, OLD_IMAGE_NAME, "099720109477")
    instance = registration_of(stack, "harbor-vm-instance")
    launched = ec2.run_instances(
        ImageId=OLD_IMAGE, MinCount=1, MaxCount=1, TagSpecifications=tag_specification("instance", instance.inputs["tags"])
    )["Instances"][0]["InstanceId"]
    old = changed(stack, "harbor-vm-instance", lambda p: p.update(ami=OLD_IMAGE))
    with running_pack(dry_run=False, env=aws[1], config=dev_config()) as pack:
        assert mandatory(pack, old) == []
    ec2.terminate_instances(InstanceIds=[launched])
    with running_pack(dry_run=False, env=aws[1], config=dev_config()) as pack:
        found = mandatory(pack, old)
        assert [policy for policy, _ in found] == [AT_UP], found
        assert "no instance of stack 'dev' runs it" in found[0][1]
    foreign = "ami-0bbbbbbbbbbbbbbb2"
    add_image(foreign, OLD_IMAGE_NAME, FOREIGN_OWNER)
    ec2.run_instances(
        ImageId=foreign, MinCount=1, MaxCount=1, TagSpecifications=tag_specification("instance", instance.inputs["tags"])
    )
    with running_pack(dry_run=False, env=aws[1], config=dev_config()) as pack:
        found = mandatory(pack, changed(stack, "harbor-vm-instance", lambda p: p.update(ami=foreign)))
        assert [policy for policy, _ in found] == [AT_UP], found
        assert FOREIGN_OWNER in found[0][1]
