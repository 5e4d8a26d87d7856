"""InstanceRunning: the VM runs again after its data volume was swapped.

The data volume's attachment stops the instance before it detaches (`stop_instance_before_detaching`:
a clean unmount), and nothing starts it again: a restore into the same AZ (a new volume from
`dataVolumeSnapshotId`, the same instance) left the VM stopped, and the install's SSH steps then
failed to connect (issue 19). This resource is replaced with every new attachment (its id is an
input) and starts the instance if it is stopped, waiting until EC2 reports it running
(DescribeInstances `State.Name`: pending | running | stopping | stopped | shutting-down |
terminated, EC2 API Reference InstanceState), saying how long it waits in `pulumi up`.

Its module path is part of the state of every stack that holds one (a dynamic provider is pickled
by reference): keep it.
"""

from __future__ import annotations

import time
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, ResourceProvider

from components.aws.host_key_provider import ec2_client
from components.harbor import progress

TIMEOUT_SECONDS = 600
POLL_SECONDS = 5


class InstanceNotRunning(Exception):
    pass


def instance_state(client: Any, instance_id: str) -> str:
    reservations = client.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"]


def ensure_running(instance_id: str, region: str, timeout: float = TIMEOUT_SECONDS, poll: float = POLL_SECONDS) -> str:
    """Starts a stopped instance (after a stop in progress ends) and waits for `running`."""
    client = ec2_client(region)
    started = time.monotonic()
    announced = started - progress.EVERY
    started_it = False
    while True:
        state = instance_state(client, instance_id)
        if state == "running":
            return "started" if started_it else "was running"
        if state in ("shutting-down", "terminated"):
            raise InstanceNotRunning(f"instance {instance_id} is {state}: it cannot be started; see the runbook 'The VM is gone'")
        if state == "stopped" and not started_it:
            client.start_instances(InstanceIds=[instance_id])
            started_it = True
        waited = time.monotonic() - started
        if waited > timeout:
            raise InstanceNotRunning(f"instance {instance_id} is still {state} after {timeout:g} s")
        if time.monotonic() - announced >= progress.EVERY:
            announced = time.monotonic()
            doing = "starting it again after its data volume was swapped" if started_it else f"it is {state}"
            progress.log(f"instance {instance_id}: {doing}: waiting {waited:.0f} s of at most {timeout:g} s")
        time.sleep(poll)


class InstanceRunningProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        outcome = ensure_running(props["instance_id"], props["region"], float(props.get("timeout_seconds") or TIMEOUT_SECONDS))
        return CreateResult(f"{props['instance_id']}-running", {**props, "outcome": outcome})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in ("instance_id", "attachment_id") if olds.get(key) != news.get(key)]
        return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=True)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        # Nothing to refresh: the state it ensured belongs to the moment of the swap.
        return ReadResult(id_, props)


class InstanceRunning(pulumi.dynamic.Resource, module="ec2", name="InstanceRunning"):
    outcome: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        instance_id: pulumi.Input[str],
        region: str,
        attachment_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {"instance_id": instance_id, "region": region, "attachment_id": attachment_id, "outcome": None}
        super().__init__(InstanceRunningProvider(), name, props, opts)
