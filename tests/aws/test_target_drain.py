"""Issue 18 point 5: a node leaves the target group before its Harbor stops and rejoins it healthy,
driven through the real provider host against a stand-in ELBv2 API on loopback (moto's server, which
implements RegisterTargets, DeregisterTargets and DescribeTargetHealth: moto/elbv2/models.py
FakeTargetGroup.register / deregister / health_for).

moto finishes a deregistration at once (a deregistered target answers `unused`) and calls every
registered target `healthy`; real ELB keeps a target `draining` up to the deregistration delay while
requests are in flight, and a registered target is `initial`, then `unhealthy` or `healthy` as its
health checks go. The waits on those states are checked against a client that answers the sequences
ELB documents (ELB User Guide for Application Load Balancers, "Target health status" and
"Deregistration delay").
"""

from __future__ import annotations

import socket
import urllib.request
from typing import Any

import pytest

from components.aws.target_drain import (
    TargetDrainError,
    TargetDrainProvider,
    leave,
    rejoin,
)
from tests.standins.provider_host import ProviderHost, as_engine_sends

REGION = "eu-central-1"
INSTANCE = "i-0123456789abcdef0"
OTHER = "i-0fedcba9876543210"
PORT = 8080
URN = "urn:pulumi:test::harbor-cache::pulumi-python:dynamic/elbv2:TargetDrain::harbor-install-leave"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def elbv2():
    """moto's server on loopback with one VPC and one target group like the stack's (HTTP 8080, instances)."""
    moto_server = pytest.importorskip("moto.server")
    import boto3

    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto's servers in one process share one set of backends (moto/backends.py): start empty, whatever other tests
    # left there (the policy tests' stacks hold a target group of this name), as moto's /moto-api/reset does.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30).close()
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    vpc = session.client("ec2", endpoint_url=endpoint).create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    client = session.client("elbv2", endpoint_url=endpoint)
    group = client.create_target_group(
        Name="harbor-lb-nodes", Protocol="HTTP", Port=PORT, VpcId=vpc, TargetType="instance", HealthCheckPath="/api/v2.0/ping"
    )["TargetGroups"][0]["TargetGroupArn"]
    yield {"endpoint": endpoint, "client": client, "group": group}
    server.stop()


@pytest.fixture
def host(elbv2):
    # botocore's service-specific endpoint variable: the provider's own client goes to moto.
    env = {**CREDENTIALS, "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2": elbv2["endpoint"]}
    with ProviderHost(TargetDrainProvider(), env=env) as started:
        started.configure({})
        yield started


def inputs(elbv2, action: str, **overrides) -> dict:
    return as_engine_sends(
        {
            "action": action,
            "target_group_arn": elbv2["group"],
            "instance_id": INSTANCE,
            "port": PORT,
            "region": REGION,
            "triggers": ["i-0123456789abcdef0", "v2.15.2", "harbor-yml-hash"],
            "timeout_seconds": 20,
            "poll_seconds": 0.05,
            "result": None,
            **overrides,
        }
    )


def states(elbv2) -> dict[str, str]:
    answer = elbv2["client"].describe_target_health(TargetGroupArn=elbv2["group"])
    return {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in answer["TargetHealthDescriptions"]}


def test_leave_takes_only_this_node_out_and_rejoin_brings_it_back_healthy(elbv2, host):
    targets = [{"Id": INSTANCE, "Port": PORT}, {"Id": OTHER, "Port": PORT}]
    elbv2["client"].register_targets(TargetGroupArn=elbv2["group"], Targets=targets)
    assert states(elbv2) == {INSTANCE: "healthy", OTHER: "healthy"}

    checked, failures = host.check(URN, inputs(elbv2, "leave"))
    assert failures == []
    id_, outputs = host.create(URN, checked)
    assert id_ == f"leave-{INSTANCE}" and outputs["result"] == f"{INSTANCE} drained (unused)"
    assert states(elbv2) == {OTHER: "healthy"}, "the other node keeps serving"

    _, outputs = host.create(URN.replace("leave", "rejoin"), inputs(elbv2, "rejoin"))
    assert outputs["result"] == f"{INSTANCE} healthy"
    assert states(elbv2) == {INSTANCE: "healthy", OTHER: "healthy"}
    elbv2["client"].deregister_targets(TargetGroupArn=elbv2["group"], Targets=targets)


def test_a_node_that_is_not_registered_has_nothing_to_drain(elbv2, host):
    assert INSTANCE not in states(elbv2)
    _, outputs = host.create(URN, inputs(elbv2, "leave"))
    assert outputs["result"] == f"{INSTANCE} was not registered: nothing to drain"


def test_only_a_change_of_what_restarts_harbor_runs_the_action_again(elbv2, host):
    olds = inputs(elbv2, "leave", result="drained")
    same = host.diff(URN, f"leave-{INSTANCE}", olds, inputs(elbv2, "leave"))
    assert not same.replaces and same.changes != same.DIFF_SOME
    restarted = host.diff(URN, f"leave-{INSTANCE}", olds, inputs(elbv2, "leave", triggers=["i-0123456789abcdef0", "v2.15.3"]))
    assert list(restarted.replaces) == ["triggers"]
    bounds = host.diff(URN, f"leave-{INSTANCE}", olds, inputs(elbv2, "leave", timeout_seconds=300))
    assert not bounds.replaces and bounds.changes == bounds.DIFF_SOME
    # Delete calls nothing on the target group (the attachment's deletion deregisters a node that goes).
    elbv2["client"].register_targets(TargetGroupArn=elbv2["group"], Targets=[{"Id": OTHER, "Port": PORT}])
    host.delete(URN, f"leave-{OTHER}", inputs(elbv2, "leave", instance_id=OTHER))
    assert states(elbv2) == {OTHER: "healthy"}
    elbv2["client"].deregister_targets(TargetGroupArn=elbv2["group"], Targets=[{"Id": OTHER, "Port": PORT}])


def test_a_bad_action_or_bound_is_refused_at_check(elbv2, host):
    _, failures = host.check(URN, inputs(elbv2, "restart", timeout_seconds=0))
    assert {key for key, _ in failures} == {"action", "timeout_seconds"}


# --- the waits, on the state sequences ELB documents ---


class ScriptedElb:
    """DescribeTargetHealth answers `before` until the test's step (de)registers the target, then the
    states of `after`, one per call, keeping the last."""

    def __init__(self, before: str, after: list[str]) -> None:
        self.state, self.after, self.changed = before, list(after), False
        self.calls: list[str] = []

    def describe_target_health(self, TargetGroupArn: str, Targets: list[dict[str, Any]]) -> dict:  # noqa: N803 - boto3's names
        self.calls.append("describe")
        if self.changed and self.after:
            self.state = self.after.pop(0)
        return {"TargetHealthDescriptions": [{"Target": Targets[0], "TargetHealth": {"State": self.state, "Reason": "r"}}]}

    def deregister_targets(self, TargetGroupArn: str, Targets: list[dict[str, Any]]) -> None:  # noqa: N803
        self.calls.append("deregister")
        self.changed = True

    def register_targets(self, TargetGroupArn: str, Targets: list[dict[str, Any]]) -> None:  # noqa: N803
        self.calls.append("register")
        self.changed = True


def test_leave_waits_while_the_target_drains_and_stops_before_harbor_would():
    elb = ScriptedElb("healthy", ["draining", "draining", "unused"])
    assert leave(elb, "tg", INSTANCE, PORT, timeout=5, poll=0, sleep=lambda _: None) == f"{INSTANCE} drained (unused)"
    assert elb.calls[:2] == ["describe", "deregister"] and elb.calls.count("describe") >= 3
    # A target that never finishes draining: the step fails, so the start (and the installer) never run.
    stuck = ScriptedElb("healthy", ["draining"])
    with pytest.raises(TargetDrainError, match="still draining .* its Harbor was not stopped"):
        leave(stuck, "tg", INSTANCE, PORT, timeout=0, poll=0, sleep=lambda _: None)


def test_rejoin_waits_through_initial_and_unhealthy_until_healthy():
    elb = ScriptedElb("unused", ["initial", "unhealthy", "healthy"])
    assert rejoin(elb, "tg", INSTANCE, PORT, timeout=5, poll=0, sleep=lambda _: None) == f"{INSTANCE} healthy"
    never = ScriptedElb("unused", ["unhealthy"])
    with pytest.raises(TargetDrainError, match="is unhealthy .* the next node waits"):
        rejoin(never, "tg", INSTANCE, PORT, timeout=0, poll=0, sleep=lambda _: None)
