"""Issue 18 point 7: HA stores that survive an AZ by default, touched only in their windows, watched,
and the secrets that cannot be drawn again protected."""

from __future__ import annotations

import re

import pytest

from components.aws.data_services import (
    DATABASE_BACKUP_WINDOW,
    DATABASE_EVENT_CATEGORIES,
    DATABASE_MAINTENANCE_WINDOW,
    REDIS_MAINTENANCE_WINDOW,
)
from components.settings.scale_settings import MAX_REPLICAS
from components.vm.harbor_yml import EXTERNAL_DB_CONNECTION_BUDGET, EXTERNAL_DB_POOLS_PER_NODE, external_db_max_open_conns
from tests.settings.test_settings import parse
from tests.standins.pulumi_harness import dev_config, run_program

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def config(**overrides) -> dict:
    return {**dev_config(), **{f"harbor-cache:{key}": value for key, value in overrides.items()}}


@pytest.fixture(scope="module")
def ha():
    # databaseMultiAz as the CLI hands it when the stack does not set it: the Pulumi.yaml default, false.
    return run_program(config(replicas=2, databaseMultiAz=False))


def test_several_nodes_get_multi_az_stores_whatever_the_key_says():
    assert parse(replicas=2).database_multi_az is True
    assert parse(replicas=2, databaseMultiAz=False).database_multi_az is True
    # One VM on RDS: still a choice, off by default.
    assert parse(externalServices=True).database_multi_az is False
    assert parse(externalServices=True, databaseMultiAz=True).database_multi_az is True


def test_ha_stores_have_a_standby_and_a_replica_in_another_az(ha):
    assert ha.one("aws:rds/instance:Instance").inputs["multiAz"] is True
    redis = ha.one("aws:elasticache/replicationGroup:ReplicationGroup").inputs
    assert redis["numCacheClusters"] == 2 and redis["automaticFailoverEnabled"] is True and redis["multiAzEnabled"] is True


def minutes(moment: str) -> int:
    """Minutes into the week of 'sun:02:00' (Sunday first), or into the day of '01:00'."""
    days = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
    *day, hours, mins = moment.split(":")
    return (days.index(day[0]) * 1440 if day else 0) + int(hours) * 60 + int(mins)


def window(text: str) -> tuple[int, int]:
    start, end = text.split("-")
    return minutes(start), minutes(end)


def test_maintenance_windows_are_set_at_least_30_minutes_and_never_overlap(ha):
    db = ha.one("aws:rds/instance:Instance").inputs
    redis = ha.one("aws:elasticache/replicationGroup:ReplicationGroup").inputs
    assert db["backupWindow"] == DATABASE_BACKUP_WINDOW and db["maintenanceWindow"] == DATABASE_MAINTENANCE_WINDOW
    assert redis["maintenanceWindow"] == REDIS_MAINTENANCE_WINDOW
    # RDS API: hh24:mi-hh24:mi and ddd:hh24:mi-ddd:hh24:mi, each at least 30 minutes, backup outside maintenance.
    assert re.fullmatch(r"\d\d:\d\d-\d\d:\d\d", DATABASE_BACKUP_WINDOW)
    for text in (DATABASE_MAINTENANCE_WINDOW, REDIS_MAINTENANCE_WINDOW):
        assert re.fullmatch(r"(sun|mon|tue|wed|thu|fri|sat):\d\d:\d\d-(sun|mon|tue|wed|thu|fri|sat):\d\d:\d\d", text)
    backup = window(DATABASE_BACKUP_WINDOW)
    rds, cache = window(DATABASE_MAINTENANCE_WINDOW), window(REDIS_MAINTENANCE_WINDOW)
    assert all(end - start >= 30 for start, end in (backup, rds, cache))
    # The daily backup window, on Sunday, lies before RDS's maintenance; ElastiCache's starts after RDS's ends.
    assert backup[1] <= rds[0] % 1440 and rds[1] <= cache[0]


def test_the_secret_key_and_the_token_key_are_protected(ha):
    assert ha.named("harbor-shared-secret-key").protect is True
    assert ha.named("harbor-shared-token-key").protect is True
    # What prepare would simply draw again stays unprotected (a switch away from HA deletes it).
    assert ha.named("harbor-shared-core-secret").protect is False


def alarms(run) -> dict:
    return {r.name.removeprefix("harbor-alarms-"): r.inputs for r in run.of_type(ALARM)}


def test_the_stores_are_watched_against_the_connection_budget_storage_memory_and_evictions(ha):
    found = alarms(ha)
    database = ha.one("aws:rds/instance:Instance")
    identifier = "harbor-cache-20261128000000000000000002"
    connections = found["database-connections"]
    assert (connections["namespace"], connections["metricName"]) == ("AWS/RDS", "DatabaseConnections")
    assert connections["dimensions"] == {"DBInstanceIdentifier": identifier}
    assert connections["threshold"] == EXTERNAL_DB_CONNECTION_BUDGET
    assert found["database-storage"]["metricName"] == "FreeStorageSpace"
    assert found["database-storage"]["comparisonOperator"] == "LessThanThreshold"
    # Every node of the replication group (two with Multi-AZ) has its memory and evictions alarms.
    clusters = [found[f"redis{i}-memory"]["dimensions"]["CacheClusterId"] for i in range(2)]
    assert clusters == ["harbor-data-redis-id-001", "harbor-data-redis-id-002"]
    for i in range(2):
        assert found[f"redis{i}-memory"]["metricName"] == "DatabaseMemoryUsagePercentage"
        assert found[f"redis{i}-evictions"]["metricName"] == "Evictions"
        assert found[f"redis{i}-evictions"]["threshold"] == 0
    topic = "arn:aws:sns:eu-central-1:123456789012:harbor-alarms-topic"
    assert all(spec["alarmActions"] == [topic] for key, spec in found.items() if key.startswith(("database-", "redis")))
    assert database.inputs["identifierPrefix"] == "harbor-cache-"


@pytest.mark.parametrize("replicas", range(1, MAX_REPLICAS + 1))
def test_harbors_own_pools_never_trip_the_connections_alarm(replicas):
    """Every pool of every node full is at most the budget the alarm watches."""
    assert EXTERNAL_DB_POOLS_PER_NODE * replicas * external_db_max_open_conns(replicas) <= EXTERNAL_DB_CONNECTION_BUDGET


def test_failover_and_other_store_events_reach_the_stores_topic(ha):
    topic = ha.named("harbor-data-events")
    arn = "arn:aws:sns:eu-central-1:123456789012:harbor-data-events"
    subscription = ha.one("aws:rds/eventSubscription:EventSubscription").inputs
    assert subscription["snsTopic"] == arn and subscription["sourceType"] == "db-instance"
    assert subscription["sourceIds"] == ["harbor-cache-20261128000000000000000002"]
    assert "failover" in subscription["eventCategories"] and list(DATABASE_EVENT_CATEGORIES) == subscription["eventCategories"]
    assert ha.one("aws:elasticache/replicationGroup:ReplicationGroup").inputs["notificationTopicArn"] == arn
    assert topic.type == "aws:sns/topic:Topic"
    # What lets RDS and ElastiCache publish to it at all (AWS's documents, not a call we can make here):
    # - RDS User Guide, "Granting permissions to publish notifications to an Amazon SNS topic"
    #   (USER_Events.GrantingPermissions): "By default, an Amazon SNS topic has a policy that allows all
    #   Amazon RDS resources within the same account to publish notifications to it." A custom topic
    #   policy would have to grant events.rds.amazonaws.com itself;
    # - ElastiCache User Guide, "Event Notifications and Amazon SNS" (ElastiCacheSNS) and "Managing
    #   ElastiCache Amazon SNS notifications" (ECEvents.SNS): the topic is in the cluster's account and
    #   Region, is not encrypted (an encrypted topic shows inactive and is dropped), and its policy uses
    #   aws:SourceOwner (the default policy does), not aws:SourceAccount.
    # So the stores' topic keeps SNS's default policy and no KMS key.
    assert not topic.inputs.get("kmsMasterKeyId") and not topic.inputs.get("policy")
    policies = [r.inputs for r in ha.of_type("aws:sns/topicPolicy:TopicPolicy")]
    assert all(policy.get("arn") != arn for policy in policies), "a topic policy replaces the default that RDS relies on"
    # alarmEmail hears the store events too.
    with_email = run_program(config(replicas=2, alarmEmail="ops@cache-fixture.net"))
    emails = {r.name: r.inputs for r in with_email.of_type("aws:sns/topicSubscription:TopicSubscription")}
    email = emails["harbor-data-events-email"]
    assert email["topic"] == arn and email["endpoint"] == "ops@cache-fixture.net"
