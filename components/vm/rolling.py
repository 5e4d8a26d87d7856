"""HA nodes (replicas > 1): what keeps a node's Harbor from stopping while the load balancer still
sends it pulls (issue 18 points 5 and 6).

A deploy takes the node out of the target group first and puts it back once the ALB calls it
healthy (RollingHooks, made by components/aws/target_drain.py: the deploying machine does it).
Outside a deploy, an unattended upgrade of the container runtime restarts Docker: the node drains
itself around it (components/vm/runtime_drain.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pulumi

# A step that leaves or rejoins the load balancer: (name, triggers, options) -> the resource.
RollingStep = Callable[[str, list, pulumi.ResourceOptions], pulumi.Resource]


@dataclass(frozen=True)
class RollingHooks:
    """How an HA node's install leaves the load balancer before Harbor stops and rejoins it after.

    `leave` runs whenever the given triggers change (what restarts Harbor), before the installer and
    the start; `rejoin` runs after the readiness gate, and the next node waits for it."""

    leave: RollingStep
    rejoin: RollingStep
