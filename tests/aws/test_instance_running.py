"""A same-AZ restore swaps the data volume and keeps the instance: the attachment stops the VM before
it detaches, and InstanceRunning starts it again (issue 19). Driven through the real provider host
against moto's EC2 on loopback (HARBOR_CACHE_EC2_ENDPOINT, as the host-key provider's tests do)."""

from __future__ import annotations

import boto3
import grpc
import pytest
from pulumi.runtime.proto.provider_pb2 import DiffResponse

from components.aws.instance_running import InstanceRunningProvider
from tests.standins.moto_server import CREDENTIALS, moto_server
from tests.standins.provider_host import ProviderHost
from tests.standins.pulumi_harness import dev_config, run_program


@pytest.fixture
def ec2():
    with moto_server() as url:
        env = {"HARBOR_CACHE_EC2_ENDPOINT": url, **CREDENTIALS, "HARBOR_CACHE_PROGRESS_EVERY": "0.5"}
        client = boto3.client(
            "ec2", region_name="eu-central-1", endpoint_url=url, **{k.lower(): v for k, v in CREDENTIALS.items()}
        )
        image = client.describe_images()["Images"][0]["ImageId"]
        instance = client.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        yield client, instance, env


def state(client, instance: str) -> str:
    return client.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["State"]["Name"]


def inputs(instance: str, attachment: str = "vai-1111") -> dict:
    return {"instance_id": instance, "region": "eu-central-1", "attachment_id": attachment, "outcome": None}


def test_a_vm_stopped_by_the_volume_swap_runs_again(ec2):
    client, instance, env = ec2
    client.stop_instances(InstanceIds=[instance])
    assert state(client, instance) == "stopped"
    with ProviderHost(InstanceRunningProvider(), env=env) as host:
        host.configure({})
        urn = host.urn("harbor-vm-running", "InstanceRunning").replace("dynamic/harbor:", "dynamic/ec2:")
        checked, failures = host.check(urn, inputs(instance))
        assert failures == []
        _id, outputs = host.create(urn, checked)
        assert outputs["outcome"] == "started" and state(client, instance) == "running"
        # A new attachment (a new volume) replaces it: it runs again after every swap.
        diff = host.diff(urn, _id, outputs, {**checked, "attachment_id": "vai-2222"})
        assert diff.changes == DiffResponse.DIFF_SOME and list(diff.replaces) == ["attachment_id"]
        assert host.diff(urn, _id, outputs, checked).changes == DiffResponse.DIFF_NONE


def test_a_terminated_vm_says_which_runbook(ec2):
    client, instance, env = ec2
    client.terminate_instances(InstanceIds=[instance])
    with ProviderHost(InstanceRunningProvider(), env=env) as host:
        host.configure({})
        urn = host.urn("harbor-vm-running", "InstanceRunning")
        checked, _ = host.check(urn, inputs(instance))
        with pytest.raises(grpc.RpcError, match="is terminated: it cannot be started; see the runbook 'The VM is gone'"):
            host.create(urn, checked)


def test_the_install_waits_for_the_vm_to_run_after_its_attachment():
    run = run_program(dev_config())
    urns = {r.urn: r.name for r in run.registrations}
    running = run.named("harbor-vm-running")
    assert "harbor-vm-data-attachment" in {urns.get(u) for u in running.dependencies}
    docker = run.named("harbor-install-docker")
    assert "harbor-vm-running" in {urns.get(u) for u in docker.dependencies}
