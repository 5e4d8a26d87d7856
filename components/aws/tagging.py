"""Tags every AWS resource of a stack carries, so cost reports and DLM can find them."""

from __future__ import annotations

import re

from components.settings.settings import Settings

SNAPSHOT_TAG = "harbor-cache:snapshot"
PUBLIC_ACCESS_TAG = "harbor-cache:allow-public-access"
# On the data volume of Harbor nodes 1..N-1 (replicas > 1): unprotected on purpose, deleted with its node.
NODE_SCRATCH_TAG = "harbor-cache:node-scratch"


def resource_tags(settings: Settings, name: str, **extra: str) -> dict[str, str]:
    """`name` is the resource's own Pulumi name: at `up` the policy pack looks references up in AWS and trusts these two
    tags, so it refuses them on any resource that is not the program's or whose Name is not its own name
    (policy/aws_lookups.py)."""
    return {**settings.tags, "Name": name, "harbor-cache:stack": settings.stack, **extra}


# What AWS accepts in a DLM lifecycle policy's description (CreateLifecyclePolicy, Description:
# ^[0-9A-Za-z _-]+$, 1..500); the AWS provider checks it at preview. A Pulumi stack name may hold
# '.', which the pattern refuses.
DLM_DESCRIPTION_DISALLOWED = re.compile(r"[^0-9A-Za-z _-]")


def dlm_description(settings: Settings) -> str:
    """The snapshot policy's description: the stack named in the only characters DLM accepts."""
    stack = DLM_DESCRIPTION_DISALLOWED.sub("-", settings.stack)
    return f"harbor-cache {stack} daily data volume snapshots"[:500]
