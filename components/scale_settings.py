"""Settings of where Harbor's data lives and how many Harbor nodes serve it (issue 13).

`storage` (EBS or S3), `externalServices` (RDS PostgreSQL and ElastiCache instead of containers
on the VM) and their sizing keys. Split from settings.py: these choose the deployment's shape.
"""

from __future__ import annotations

import re
from typing import Any

from components.config_reader import ConfigReader

STORAGE_MODES = ("ebs", "s3")
DB_INSTANCE_CLASS_RE = re.compile(r"^db\.[a-z][a-z0-9-]*\.[a-z0-9]+$")
CACHE_NODE_TYPE_RE = re.compile(r"^cache\.[a-z][a-z0-9-]*\.[a-z0-9]+$")


# An ALB spreads over AZs and Harbor's nodes share nothing local; more than this many nodes is a
# sign the cache wants bigger nodes, not more of them (every node holds database connections).
MAX_REPLICAS = 6


def parse_scale(reader: ConfigReader) -> dict[str, Any]:
    """storage / externalServices / replicas and their sizing keys (issue 13)."""
    replicas = reader.integer("replicas", 1, MAX_REPLICAS)
    storage = reader.string("storage", required=True)
    external_services = reader.boolean("externalServices")
    if replicas > 1:
        # Several nodes share nothing local: replicas > 1 turns S3 and the external stores on. Only
        # a value the stack sets itself can contradict that; the defaults give way.
        if "storage" in reader.raw and storage != "s3":
            reader.fail("storage", f"{storage!r} cannot serve replicas: {replicas}; several nodes need s3 (or leave it unset)")
        if "externalServices" in reader.raw and not external_services:
            reader.fail(
                "externalServices", f"false cannot serve replicas: {replicas}; several nodes need true (or leave it unset)"
            )
        storage, external_services = "s3", True
    if storage not in STORAGE_MODES:
        reader.fail("storage", f"{storage!r} is not a storage mode; accepted: {', '.join(STORAGE_MODES)}")
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
        database_multi_az=reader.boolean("databaseMultiAz"),
        database_instance_class=db_class,
        # RDS accepts 1..35 days of automated backups; 0 (no backups) is refused on purpose.
        database_backup_retention_days=reader.integer("databaseBackupRetentionDays", 1, 35),
        redis_node_type=node_type,
    )
