"""Settings of where Harbor's data lives and how many Harbor nodes serve it (issue 13).

`storage` (EBS or S3), `externalServices` (RDS PostgreSQL and ElastiCache instead of containers
on the VM) and their sizing keys. Split from settings.py: these choose the deployment's shape.
"""

from __future__ import annotations

import re
from typing import Any

from components.settings.config_reader import ConfigReader
from components.settings.validators import AZ_RE, SUBNET_RE

STORAGE_MODES = ("ebs", "s3")
DB_INSTANCE_CLASS_RE = re.compile(r"^db\.[a-z][a-z0-9-]*\.[a-z0-9]+\Z")
CACHE_NODE_TYPE_RE = re.compile(r"^cache\.[a-z][a-z0-9-]*\.[a-z0-9]+\Z")


# An ALB spreads over AZs and Harbor's nodes share nothing local; more than this many nodes is a
# sign the cache wants bigger nodes, not more of them (every node holds database connections).
MAX_REPLICAS = 6


def parse_scale(reader: ConfigReader) -> dict[str, Any]:
    """storage / externalServices / replicas and their sizing keys (issue 13)."""
    replicas = reader.integer("replicas", 1, MAX_REPLICAS)
    storage = reader.string("storage", required=True)
    external_services = reader.boolean("externalServices")
    if storage not in STORAGE_MODES:
        reader.fail("storage", f"{storage!r} is not a storage mode; accepted: {', '.join(STORAGE_MODES)}")
    multi_az = reader.boolean("databaseMultiAz")
    if replicas > 1:
        # Several nodes share nothing local: replicas > 1 turns S3 and the external stores on, whatever
        # `storage` and `externalServices` say. A contrary value cannot be told from the default: the
        # CLI copies every Pulumi.yaml default into the stack's config before the program runs
        # (pulumi/pulumi pkg/workspace/config.go, ValidateStackConfigAndApplyProjectConfig).
        # Multi-AZ stores too (issue 18 point 7): nodes in two AZs on stores in one survive no AZ, and
        # for the same reason an explicit `databaseMultiAz: false` cannot be told from the default.
        storage, external_services, multi_az = "s3", True, True
    db_class = reader.string("databaseInstanceClass", required=True)
    if db_class and not DB_INSTANCE_CLASS_RE.match(db_class):
        reader.fail("databaseInstanceClass", f"{db_class!r} is not an RDS instance class (e.g. db.t4g.small, db.m7g.large)")
    node_type = reader.string("redisNodeType", required=True)
    if node_type and not CACHE_NODE_TYPE_RE.match(node_type):
        reader.fail("redisNodeType", f"{node_type!r} is not an ElastiCache node type (e.g. cache.t4g.micro, cache.m7g.large)")
    redirect = reader.boolean("storageRedirect")
    if redirect and storage != "s3":
        reader.fail("storageRedirect", f"true needs storage: s3 (presigned URLs exist only for S3), storage is {storage!r}")
    return dict(
        replicas=replicas,
        storage=storage,
        storage_redirect=redirect,
        external_services=external_services,
        database_multi_az=multi_az,
        database_instance_class=db_class,
        # RDS accepts 1..35 days of automated backups; 0 (no backups) is refused on purpose.
        database_backup_retention_days=reader.integer("databaseBackupRetentionDays", 1, 35),
        redis_node_type=node_type,
    )


def _string_list(reader: ConfigReader, key: str) -> list[str] | None:
    """An optional list of strings; None when the stack does not set it."""
    value = reader.structured(key, None)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        reader.fail(key, f"{value!r} is not a list of strings")
        return None
    return value


def parse_placement(reader: ConfigReader, region: str, availability_zone: str, subnet_id: str, replicas: int) -> dict[str, Any]:
    """Where the Harbor nodes of replicas > 1 run: `availabilityZones` or `subnetIds`, round-robin (issue 13 step 3).

    An Application Load Balancer needs subnets in at least two AZs (ELB API CreateLoadBalancer:
    "You must specify subnets from at least two Availability Zones"), so both lists need two distinct
    entries. Node 0 is the former single VM and keeps its data volume, which lives in
    `availabilityZone`: the first AZ must be that one (a volume attaches only in its own AZ).
    Single-VM stacks keep `availabilityZone` / `subnetId`; the lists are refused there, so a value
    that would do nothing is never silently ignored.
    """
    zones = _string_list(reader, "availabilityZones")
    subnets = _string_list(reader, "subnetIds")
    if replicas == 1:
        for key, value in (("availabilityZones", zones), ("subnetIds", subnets)):
            if value is not None:
                single = "availabilityZone" if key == "availabilityZones" else "subnetId"
                reader.fail(key, f"{value!r} places Harbor nodes, which need replicas > 1; a single VM uses {single}")
        return dict(availability_zones=(), subnet_ids=())
    if zones is not None and subnets is not None:
        reader.fail("subnetIds", "set either availabilityZones or subnetIds, not both (the subnets name their AZs)")
    if subnets is not None:
        for item in subnets:
            if not SUBNET_RE.match(item):
                reader.fail("subnetIds", f"{item!r} is not a subnet id (subnet-0123abcd...)")
        if len(set(subnets)) < 2 or len(set(subnets)) != len(subnets):
            reader.fail(
                "subnetIds", f"{subnets!r}: accepted: at least 2 distinct subnets, in different AZs (the load balancer needs 2)"
            )
        elif subnet_id and subnets[0] != subnet_id:
            reader.fail("subnetIds", f"{subnets!r} must start with subnetId {subnet_id!r}: node 0 stays where the single VM was")
        return dict(availability_zones=(), subnet_ids=tuple(subnets))
    if subnet_id:
        reader.fail(
            "subnetId",
            f"{subnet_id!r} places one VM; with replicas: {replicas} list the nodes' subnets in subnetIds "
            f"(starting with {subnet_id}), in at least 2 AZs",
        )
    if zones is None:
        second = f"{region}b" if availability_zone != f"{region}b" else f"{region}a"
        zones = [availability_zone, second] if region and availability_zone else []
    for item in zones:
        if not AZ_RE.match(item):
            reader.fail("availabilityZones", f"{item!r} is not an availability zone name (e.g. eu-central-1a)")
        elif region and not item.startswith(region):
            reader.fail("availabilityZones", f"{item!r} is not in region {region!r}")
    if len(set(zones)) < 2 or len(set(zones)) != len(zones):
        reader.fail("availabilityZones", f"{zones!r}: accepted: at least 2 distinct AZs (the load balancer needs 2)")
    elif availability_zone and zones[0] != availability_zone:
        reader.fail(
            "availabilityZones",
            f"{zones!r} must start with availabilityZone {availability_zone!r}: node 0 keeps the data volume that lives there",
        )
    return dict(availability_zones=tuple(zones), subnet_ids=())
