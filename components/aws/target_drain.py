"""A Harbor node out of the load balancer before its Harbor stops, and back in once the ALB calls it healthy (issue 18 point 5).

Who does it: the deploying machine, with the identity that runs `pulumi up` (boto3's default chain,
as the AWS provider and components/aws/host_key_provider.py use), not the node. ELBv2's
RegisterTargets and DeregisterTargets can be limited to a target group, never to a target (the
Service Authorization Reference lists no condition key for the target id), so a node allowed to
take itself out could take every other node out too; the deployer creates the target group and may
change it anyway. Outside a deploy (unattended upgrades of Docker), a node takes itself out by failing
the health check instead, which needs no permission (components/vm/runtime_drain.py).

`leave`: DeregisterTargets, then DescribeTargetHealth until the target is no longer `draining`.
ELB keeps a deregistered target `draining` for the group's deregistration delay while requests are
in flight, and finishes at once when none are (ELB User Guide for Application Load Balancers,
"Deregistration delay"); after that the target answers `unused` (Target.NotRegistered). A target
that is not registered (a new node) has nothing to drain. `rejoin`: RegisterTargets, then
DescribeTargetHealth until `healthy` (the ALB's own health check passed `healthy_threshold` times).

The resource runs its action when it is created; every change of `triggers` (what restarts Harbor on
the node: components/vm/install.py) replaces it, so the action runs again exactly when Harbor is
about to restart, and an unchanged `pulumi up` calls nothing. Delete calls nothing: a node that goes
away is deregistered by the deletion of its target group attachment. This module's path and class
name are in the state of every HA stack (Pulumi pickles a dynamic provider by reference).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ResourceProvider, UpdateResult
from pulumi.output import Unknown

from components.vm.rolling import RollingHooks

ACTIONS = ("leave", "rejoin")
# Beyond the deregistration delay: ELB's own bookkeeping after the delay ends.
DRAIN_MARGIN_SECONDS = 60
# A restarted node is healthy after healthy_threshold (2) checks 10 s apart once Harbor answers its
# ping; this bounds a node that never becomes healthy (the readiness gate passed, so it should).
REJOIN_TIMEOUT_SECONDS = 600
POLL_SECONDS = 5
# DescribeTargetHealth states (ELBv2 API TargetHealth.State).
DRAINING = ("draining", "unhealthy.draining")
NOT_REGISTERED = "unused"


class TargetDrainError(Exception):
    pass


def elbv2_client(region: str) -> Any:
    """ELBv2 with the deployer's credentials. botocore reads AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2
    (its service-specific endpoint variable) itself: the tests point it at a stand-in on loopback."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "elbv2",
        region_name=region,
        config=Config(connect_timeout=10, read_timeout=30, retries={"mode": "standard", "max_attempts": 5}),
    )


def target_health(client: Any, target_group_arn: str, instance_id: str, port: int) -> tuple[str, str]:
    """(state, reason) of one target; a target named explicitly is always described, `unused` when not registered."""
    answer = client.describe_target_health(TargetGroupArn=target_group_arn, Targets=[{"Id": instance_id, "Port": port}])
    descriptions = answer.get("TargetHealthDescriptions", [])
    if not descriptions:
        return NOT_REGISTERED, "Target.NotRegistered"
    health = descriptions[0].get("TargetHealth", {})
    return health.get("State", ""), health.get("Reason", "") or health.get("Description", "")


def poll_target(
    describe: Callable[[], tuple[str, str]],
    done: Callable[[str], bool],
    failure: Callable[[str, str], str],
    timeout: float,
    poll: float,
    sleep: Callable[[float], None],
) -> str:
    """Asks `describe` for (state, reason) every `poll` seconds until `done(state)`; returns that state,
    or raises TargetDrainError with `failure(state, reason)` once `timeout` has passed."""
    deadline = time.monotonic() + timeout
    while True:
        state, reason = describe()
        if done(state):
            return state
        if time.monotonic() >= deadline:
            raise TargetDrainError(failure(state, reason))
        sleep(poll)


def leave(
    client: Any,
    target_group_arn: str,
    instance_id: str,
    port: int,
    timeout: float,
    poll: float = POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Takes the node out and returns once ELB no longer sends it anything (or raises after `timeout`)."""
    state, _ = target_health(client, target_group_arn, instance_id, port)
    if state == NOT_REGISTERED:
        return f"{instance_id} was not registered: nothing to drain"
    if state not in DRAINING:
        client.deregister_targets(TargetGroupArn=target_group_arn, Targets=[{"Id": instance_id, "Port": port}])
    state = poll_target(
        lambda: target_health(client, target_group_arn, instance_id, port),
        lambda state: state not in DRAINING,
        lambda state, reason: (
            f"{instance_id} is still {state} in {target_group_arn} after {timeout:.0f}s ({reason}); "
            "its Harbor was not stopped. Run `pulumi up` again once the target is gone"
        ),
        timeout,
        poll,
        sleep,
    )
    return f"{instance_id} drained ({state})"


def rejoin(
    client: Any,
    target_group_arn: str,
    instance_id: str,
    port: int,
    timeout: float,
    poll: float = POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Puts the node back and returns once the load balancer calls it healthy (or raises after `timeout`)."""
    client.register_targets(TargetGroupArn=target_group_arn, Targets=[{"Id": instance_id, "Port": port}])
    poll_target(
        lambda: target_health(client, target_group_arn, instance_id, port),
        lambda state: state == "healthy",
        lambda state, reason: (
            f"{instance_id} is {state or 'not described'} in {target_group_arn} after {timeout:.0f}s ({reason}): "
            "the next node waits. See the node's `journalctl -u harbor` and the target group's health check"
        ),
        timeout,
        poll,
        sleep,
    )
    return f"{instance_id} healthy"


def run_action(props: dict[str, Any], client_factory: Callable[[str], Any] = elbv2_client) -> str:
    client = client_factory(props["region"])
    action = leave if props["action"] == "leave" else rejoin
    return action(
        client,
        props["target_group_arn"],
        props["instance_id"],
        int(props["port"]),
        float(props["timeout_seconds"]),
        float(props["poll_seconds"]),
    )


def _unknown(value: Any) -> bool:
    return isinstance(value, Unknown) or value is None


class TargetDrainProvider(ResourceProvider):
    """leave / rejoin one target; see the module's text."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        if news.get("action") not in ACTIONS:
            failures.append(CheckFailure("action", f"{news.get('action')!r}; accepted: {', '.join(ACTIONS)}"))
        for key in ("timeout_seconds", "poll_seconds", "port"):
            value = news.get(key)
            if not _unknown(value) and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                failures.append(CheckFailure(key, f"{value!r} is not a positive number"))
        return CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        result = run_action(props)
        return CreateResult(id_=f"{props['action']}-{props['instance_id']}", outs={**props, "result": result})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # A new trigger (Harbor restarts), another node, group or action: the action runs again.
        keys = ("triggers", "instance_id", "target_group_arn", "action", "port", "region")
        replaces = [key for key in keys if _unknown(news.get(key)) or news.get(key) != olds.get(key)]
        bounds = [key for key in ("timeout_seconds", "poll_seconds") if news.get(key) != olds.get(key)]
        return DiffResult(changes=bool(replaces or bounds), replaces=replaces, delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        # Only the bounds changed: nothing to do on the target.
        return UpdateResult(outs={**news, "result": olds.get("result", "")})


class TargetDrain(pulumi.dynamic.Resource, module="elbv2", name="TargetDrain"):
    """`result`: what the action found (drained, not registered, healthy)."""

    result: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        action: str,
        target_group_arn: pulumi.Input[str],
        instance_id: pulumi.Input[str],
        port: int,
        region: str,
        triggers: list[pulumi.Input[Any]],
        timeout_seconds: int,
        poll_seconds: int = POLL_SECONDS,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            TargetDrainProvider(),
            name,
            {
                "action": action,
                "target_group_arn": target_group_arn,
                "instance_id": instance_id,
                "port": port,
                "region": region,
                "triggers": triggers,
                "timeout_seconds": timeout_seconds,
                "poll_seconds": poll_seconds,
                "result": None,
            },
            opts,
        )


def rolling_hooks(
    target_group_arn: pulumi.Input[str], instance_id: pulumi.Input[str], port: int, region: str, deregistration_delay: int
) -> RollingHooks:
    """One node's leave and rejoin, for its install (components/vm/install.py) and its upgrade hold."""

    def leave_step(name: str, triggers: list, opts: pulumi.ResourceOptions) -> pulumi.Resource:
        timeout = deregistration_delay + DRAIN_MARGIN_SECONDS
        return TargetDrain(name, "leave", target_group_arn, instance_id, port, region, triggers, timeout, opts=opts)

    def rejoin_step(name: str, triggers: list, opts: pulumi.ResourceOptions) -> pulumi.Resource:
        timeout = REJOIN_TIMEOUT_SECONDS
        return TargetDrain(name, "rejoin", target_group_arn, instance_id, port, region, triggers, timeout, opts=opts)

    return RollingHooks(leave=leave_step, rejoin=rejoin_step)
