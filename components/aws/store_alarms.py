"""What the alarms watch on Harbor's stores outside the VM (externalServices, always in HA; issue 18 point 7).

RDS (AWS/RDS, dimension DBInstanceIdentifier; RDS User Guide, "Amazon CloudWatch metrics for Amazon
RDS"): connections beyond the budget Harbor's pools share, and free storage running out (storage
autoscaling stops at DATABASE_MAX_STORAGE_GB). ElastiCache (AWS/ElastiCache, dimension CacheClusterId,
one per node of the replication group; ElastiCache User Guide, "Metrics for Valkey and Redis OSS"):
memory used against maxmemory and evictions, which for Harbor mean lost job queues and sessions.
Failover and other store events are not metrics: RDS and ElastiCache publish them to the stores'
SNS topic (components/aws/data_services.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.aws.alarm_specs import AlarmSpec
from components.vm.harbor_yml import EXTERNAL_DB_CONNECTION_BUDGET

# Storage autoscaling adds space when less than 10% is free (RDS User Guide, "Managing capacity
# automatically with Amazon RDS storage autoscaling"); below this, it did not or cannot (maximum reached).
DATABASE_FREE_STORAGE_ALARM_BYTES = 2 * 1024**3
# Harbor's Redis holds job queues, job stats and sessions: it should never come near maxmemory.
REDIS_MEMORY_ALARM_PERCENT = 80


@dataclass(frozen=True)
class StoreMetrics:
    """The CloudWatch dimensions of the stores: the RDS instance's identifier and each ElastiCache node's cluster id."""

    database_identifier: pulumi.Input[str]
    redis_clusters: list[pulumi.Input[str]]


def store_alarm_specs(stores: StoreMetrics) -> list[AlarmSpec]:
    database = {"DBInstanceIdentifier": stores.database_identifier}
    specs = [
        AlarmSpec(
            "database-connections",
            f"RDS holds more than the {EXTERNAL_DB_CONNECTION_BUDGET} connections Harbor's pools share: something "
            "else connects, or max_open_conns no longer fits the budget (README, Sizing beyond the table)",
            "AWS/RDS",
            "DatabaseConnections",
            database,
            "Maximum",
            "GreaterThanThreshold",
            EXTERNAL_DB_CONNECTION_BUDGET,
            60,
            5,
            "notBreaching",
        ),
        AlarmSpec(
            "database-storage",
            "RDS has less than 2 GiB free: storage autoscaling did not grow it (or reached its maximum)",
            "AWS/RDS",
            "FreeStorageSpace",
            database,
            "Minimum",
            "LessThanThreshold",
            DATABASE_FREE_STORAGE_ALARM_BYTES,
            300,
            1,
            "notBreaching",
        ),
    ]
    for index, cluster in enumerate(stores.redis_clusters):
        node = {"CacheClusterId": cluster}
        specs += [
            AlarmSpec(
                f"redis{index}-memory",
                f"ElastiCache node {index} uses more than {REDIS_MEMORY_ALARM_PERCENT}% of its memory: "
                "a larger redisNodeType, or jobs piling up in Harbor's queues",
                "AWS/ElastiCache",
                "DatabaseMemoryUsagePercentage",
                node,
                "Maximum",
                "GreaterThanThreshold",
                REDIS_MEMORY_ALARM_PERCENT,
                300,
                2,
                "notBreaching",
            ),
            AlarmSpec(
                f"redis{index}-evictions",
                f"ElastiCache node {index} evicted keys: Harbor lost queued jobs or sessions (check GC and retention ran)",
                "AWS/ElastiCache",
                "Evictions",
                node,
                "Sum",
                "GreaterThanThreshold",
                0,
                300,
                1,
                "notBreaching",
            ),
        ]
    return specs
