"""HarborDataServices: Harbor's PostgreSQL on RDS and its Redis on ElastiCache (`externalServices`, issue 13 step 2).

Both are private (no public address, in the VPC's subnets), encrypted at rest, and reachable only
from the Harbor VM's security group; the VM reaches them (and no other database) through their client
group, whose egress names the stores' two groups only. harbor.yml points at them through `external_database` and
`external_redis` (components/vm/files.py), and Harbor's prepare then leaves its harbor-db and
redis containers out of the compose file (templates/docker_compose/docker-compose.yml.jinja,
`{% if external_database == False %}` / `{% if external_redis == False %}`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.aws.network_rules import store_egress
from components.aws.store_alarms import StoreMetrics
from components.aws.tagging import resource_tags
from components.settings.settings import Settings
from components.vm.harbor_yml import EXTERNAL_DB_NAME as DATABASE_NAME
from components.vm.harbor_yml import EXTERNAL_DB_PORT as POSTGRES_PORT
from components.vm.harbor_yml import EXTERNAL_DB_USER as DATABASE_USER
from components.vm.harbor_yml import EXTERNAL_REDIS_PORT as REDIS_PORT

# PostgreSQL 16: supported by Harbor (its own harbor-db image ships PostgreSQL 15; Harbor needs 12+)
# and by RDS standard support until 2029. Minor versions are upgraded by RDS in the maintenance window.
POSTGRES_MAJOR_VERSION = "16"
DATABASE_STORAGE_GB = 20
DATABASE_MAX_STORAGE_GB = 200
# Valkey 8: ElastiCache's Redis-compatible engine (Redis OSS 7.2 protocol) at a lower price.
REDIS_ENGINE = "valkey"
REDIS_ENGINE_VERSION = "8.0"
# When the stores may be touched, in UTC (issue 18 point 7): RDS's daily backup before its weekly
# maintenance (the two must not overlap; each at least 30 minutes: RDS API CreateDBInstance
# PreferredBackupWindow / PreferredMaintenanceWindow), ElastiCache's maintenance after RDS's, so a
# Sunday night never restarts both stores at once. Both are outside European and American working
# hours; a Multi-AZ store fails over for its maintenance instead of going down.
DATABASE_BACKUP_WINDOW = "01:00-01:30"
DATABASE_MAINTENANCE_WINDOW = "sun:02:00-sun:03:00"
REDIS_MAINTENANCE_WINDOW = "sun:03:30-sun:04:30"
# What RDS tells the stores' topic (RDS User Guide, "Amazon RDS event categories and event messages"):
# a Multi-AZ failover, a failure, storage running low, maintenance, and RDS's notices.
DATABASE_EVENT_CATEGORIES = ("failover", "failure", "low storage", "maintenance", "notification")
# The final snapshot's random suffix: 4 bytes, 8 hex digits.
FINAL_SNAPSHOT_SUFFIX_BYTES = 4
# What the AWS provider's aws_db_instance accepts as final_snapshot_identifier (terraform-provider-aws
# internal/service/rds/instance.go, its ValidateFunc: "must begin with alphabetic character", "must
# only contain alphanumeric characters and hyphens" ^[0-9A-Za-z-]+$, "cannot contain two consecutive
# hyphens", "cannot end in a hyphen"), at most 255 characters (RDS API, DBSnapshotIdentifier).
FINAL_SNAPSHOT_MAX_LENGTH = 255


def snapshot_identifier(stack: str, what: str, suffix: str) -> str:
    """`harbor-cache-<stack>-<what>-<suffix>` in the characters RDS accepts, whatever the Pulumi stack
    name (letters, digits, '-', '_', '.') or Harbor version: every run of other characters becomes one '-'."""

    def safe(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")

    safe_stack, safe_what = safe(stack) or "stack", safe(what)
    fixed = len(f"harbor-cache--{safe_what}-") + len(suffix)
    safe_stack = safe_stack[: FINAL_SNAPSHOT_MAX_LENGTH - fixed].rstrip("-")
    return f"harbor-cache-{safe_stack}-{safe_what}-{suffix}"


def final_snapshot_identifier(stack: str, suffix: str) -> str:
    return snapshot_identifier(stack, "final", suffix)


def upgrade_snapshot_identifier(stack: str, harbor_version: str, suffix: str) -> str:
    """`harbor-cache-<stack>-before-v2-15-2-<suffix>`: the database as it was before that version started."""
    return snapshot_identifier(stack, f"before-{harbor_version}", suffix)


@dataclass(frozen=True)
class HarborDataServicesArgs:
    settings: Settings
    vpc_id: pulumi.Input[str]
    # The Harbor VM's security group: the only source allowed to reach either store.
    vm_security_group_id: pulumi.Input[str]
    # HA: the nodes' subnets (one per AZ, at least 2), which the subnet groups then hold; None on one VM.
    node_subnet_ids: list[pulumi.Input[str]] | None = None


def store_ingress(port: int, vm_security_group_id: pulumi.Input[str], what: str) -> list[dict]:
    """One rule: `port` from the VM's security group, no CIDR."""
    return [
        {
            "description": f"{what} from the Harbor VM",
            "protocol": "tcp",
            "from_port": port,
            "to_port": port,
            "security_groups": [vm_security_group_id],
        }
    ]


# The stores' generated passwords (the policy pack floors them: policy/resource_checks.py RANDOM_PASSWORDS).
STORE_PASSWORD_LENGTH = 32
STORE_PASSWORD_MIN_EACH = 2


def store_password(name: str, opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
    """A generated store password, secret: 32 letters and digits, which pass through harbor.yml, the
    env files prepare writes and compose unharmed, and which RDS ('/', '@', '"', spaces) and
    ElastiCache ('@', '"', '/') both accept."""
    password = random.RandomPassword(
        name,
        length=STORE_PASSWORD_LENGTH,
        special=False,
        min_upper=STORE_PASSWORD_MIN_EACH,
        min_lower=STORE_PASSWORD_MIN_EACH,
        min_numeric=STORE_PASSWORD_MIN_EACH,
        opts=opts,
    )
    return pulumi.Output.secret(password.result)


class HarborDataServices(pulumi.ComponentResource):
    def __init__(self, name: str, args: HarborDataServicesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("harbor-cache:index:HarborDataServices", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)

        # HA: the nodes' subnets, in at least two AZs (the load balancer needs them too), so the stores
        # live where the nodes are. One VM: its one subnet spans one AZ, and subnet groups want two
        # (RDS Multi-AZ and an ElastiCache replica need them anyway), so every subnet of its VPC.
        if args.node_subnet_ids:
            subnet_ids = pulumi.Output.all(*args.node_subnet_ids).apply(lambda ids: sorted(set(ids)))
        else:
            subnets = aws.ec2.get_subnets_output(
                filters=[{"name": "vpc-id", "values": [args.vpc_id]}], opts=pulumi.InvokeOutputOptions(parent=self)
            )
            subnet_ids = subnets.ids.apply(sorted)

        def store_security_group(key: str, port: int, what: str) -> aws.ec2.SecurityGroup:
            """A store's group: `port` in from the Harbor VM's group only, nothing out."""
            return aws.ec2.SecurityGroup(
                f"{name}-{key}-sg",
                description=f"harbor-cache {settings.hostname}: {what} from the Harbor VM only",
                vpc_id=args.vpc_id,
                ingress=store_ingress(port, args.vm_security_group_id, what),
                egress=[],
                tags=resource_tags(settings, f"{name}-{key}-sg"),
                opts=child,
            )

        self.database_security_group = store_security_group("db", POSTGRES_PORT, "PostgreSQL")
        self.redis_security_group = store_security_group("redis", REDIS_PORT, "Redis")
        # The VM's (the nodes') way to the stores: 5432 and 6379 out to these two groups only, no other database of
        # the VPC. Its own group, which the instances join besides the VM's: the VM's group cannot name the stores'
        # groups inline (they admit it, so they come after it), and stand-alone rules beside its inline ones would
        # fight them (the AWS provider's aws_security_group: in-line rules "cannot" be used with rule resources).
        # Inline rules here, read by the pack with the group: nothing in, no other way out.
        self.client_security_group = aws.ec2.SecurityGroup(
            f"{name}-client-sg",
            description=f"harbor-cache {settings.hostname}: the Harbor VM to PostgreSQL and Redis only",
            vpc_id=args.vpc_id,
            ingress=[],
            egress=store_egress(self.database_security_group.id, self.redis_security_group.id),
            tags=resource_tags(settings, f"{name}-client-sg"),
            opts=child,
        )

        # The stores' own events (failover, failure, maintenance): not metrics, so not alarms; RDS and
        # ElastiCache publish them here, and alarmEmail hears them as it hears the alarms.
        # SNS's default policy and no KMS key, on purpose: RDS publishes under the default policy
        # (RDS User Guide, USER_Events.GrantingPermissions) and ElastiCache drops an encrypted topic and
        # needs aws:SourceOwner in the policy (ElastiCache User Guide, ElastiCacheSNS, ECEvents.SNS).
        self.events_topic = aws.sns.Topic(f"{name}-events", tags=resource_tags(settings, f"{name}-events"), opts=child)
        if settings.alarm_email:
            aws.sns.TopicSubscription(
                f"{name}-events-email", topic=self.events_topic.arn, protocol="email", endpoint=settings.alarm_email, opts=child
            )

        self.database_password = store_password(f"{name}-db-password", child)
        db_subnets = aws.rds.SubnetGroup(
            f"{name}-db-subnets",
            subnet_ids=subnet_ids,
            description=f"harbor-cache {settings.hostname}: Harbor's database",
            tags=resource_tags(settings, f"{name}-db-subnets"),
            opts=child,
        )
        # A fixed name per stack would collide on the second destroy after a re-create (RDS keeps
        # the first final snapshot, and refuses a second one of the same name). A RandomId is drawn
        # when this database is created and goes with it on destroy; its keepers are the inputs
        # that replace the instance, so a replacement gets a fresh suffix too.
        final_snapshot_suffix = random.RandomId(
            f"{name}-db-final-snapshot-suffix",
            byte_length=FINAL_SNAPSHOT_SUFFIX_BYTES,
            keepers={
                "identifierPrefix": "harbor-cache-",
                "engine": "postgres",
                "dbName": DATABASE_NAME,
                "username": DATABASE_USER,
                "storageEncrypted": "true",
            },
            opts=child,
        )
        self.database = aws.rds.Instance(
            f"{name}-db",
            identifier_prefix="harbor-cache-",
            engine="postgres",
            engine_version=POSTGRES_MAJOR_VERSION,
            instance_class=settings.database_instance_class,
            allocated_storage=DATABASE_STORAGE_GB,
            max_allocated_storage=DATABASE_MAX_STORAGE_GB,
            storage_type="gp3",
            storage_encrypted=True,
            publicly_accessible=False,
            multi_az=settings.database_multi_az,
            db_name=DATABASE_NAME,
            username=DATABASE_USER,
            password=self.database_password,
            port=POSTGRES_PORT,
            db_subnet_group_name=db_subnets.name,
            vpc_security_group_ids=[self.database_security_group.id],
            backup_retention_period=settings.database_backup_retention_days,
            copy_tags_to_snapshot=True,
            # Harbor's registry credentials and users live here: a destroy leaves a final snapshot,
            # and deletion protection makes removing the database a deliberate two-step act.
            deletion_protection=True,
            skip_final_snapshot=False,
            final_snapshot_identifier=final_snapshot_suffix.hex.apply(
                lambda suffix: final_snapshot_identifier(settings.stack, suffix)
            ),
            auto_minor_version_upgrade=True,
            backup_window=DATABASE_BACKUP_WINDOW,
            maintenance_window=DATABASE_MAINTENANCE_WINDOW,
            apply_immediately=False,
            tags=resource_tags(settings, f"{name}-db"),
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )

        # Before a Harbor version first starts on this database (issue 18 point 6): its core migrates
        # the schema forward, and no older core runs on the result, so the way back is this snapshot.
        # Drawn again for every `harborVersion` (the keeper), so a new version is a new snapshot,
        # taken before any node's install (the installs wait for this component); the ones of
        # earlier versions stay in RDS (retain_on_delete) until deleted by hand. A new stack gets one
        # of its empty database.
        upgrade_suffix = random.RandomId(
            f"{name}-db-upgrade-snapshot-suffix",
            byte_length=FINAL_SNAPSHOT_SUFFIX_BYTES,
            keepers={"harborVersion": settings.harbor_version},
            opts=child,
        )
        self.upgrade_snapshot = aws.rds.Snapshot(
            f"{name}-db-before-upgrade",
            db_instance_identifier=self.database.identifier,
            db_snapshot_identifier=upgrade_suffix.hex.apply(
                lambda suffix: upgrade_snapshot_identifier(settings.stack, settings.harbor_version, suffix)
            ),
            tags=resource_tags(settings, f"{name}-db-before-upgrade"),
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )

        redis_subnets = aws.elasticache.SubnetGroup(
            f"{name}-redis-subnets",
            subnet_ids=subnet_ids,
            description=f"harbor-cache {settings.hostname}: Harbor's Redis",
            tags=resource_tags(settings, f"{name}-redis-subnets"),
            opts=child,
        )
        # AUTH token (ElastiCache: 16..128 printable characters without '@', '"' or '/'); it needs
        # transit encryption, which Harbor's client speaks (below).
        self.redis_password = store_password(f"{name}-redis-password", child)
        # Cluster mode disabled: one primary endpoint, which is Harbor's plain `redis` mode. Harbor
        # speaks redis (one host:port) or redis+sentinel, never Redis Cluster (harbor.yml.tmpl,
        # external_redis: "support redis, redis+sentinel"), and ElastiCache has no sentinel. Its TLS
        # ("tlsOptions ... only server-authentication is supported") is what ElastiCache's transit
        # encryption offers, with a certificate of a public CA that Harbor's images trust.
        self.redis = aws.elasticache.ReplicationGroup(
            f"{name}-redis",
            description=f"harbor-cache {settings.hostname}: Harbor's Redis",
            engine=REDIS_ENGINE,
            engine_version=REDIS_ENGINE_VERSION,
            node_type=settings.redis_node_type,
            port=REDIS_PORT,
            num_cache_clusters=2 if settings.database_multi_az else 1,
            automatic_failover_enabled=settings.database_multi_az,
            multi_az_enabled=settings.database_multi_az,
            subnet_group_name=redis_subnets.name,
            security_group_ids=[self.redis_security_group.id],
            at_rest_encryption_enabled=True,
            transit_encryption_enabled=True,
            auth_token=self.redis_password,
            maintenance_window=REDIS_MAINTENANCE_WINDOW,
            # ElastiCache sends its events (a failover, a node replaced, maintenance) to this topic
            # (ElastiCache User Guide, "Managing ElastiCache Amazon SNS notifications").
            notification_topic_arn=self.events_topic.arn,
            apply_immediately=False,
            tags=resource_tags(settings, f"{name}-redis"),
            opts=child,
        )

        # RDS publishes the events of this instance in these categories to the topic (an event
        # subscription: RDS's own SNS notification, which RDS may publish to in the topic's account).
        self.database_events = aws.rds.EventSubscription(
            f"{name}-db-events",
            sns_topic=self.events_topic.arn,
            source_type="db-instance",
            source_ids=[self.database.identifier],
            event_categories=list(DATABASE_EVENT_CATEGORIES),
            tags=resource_tags(settings, f"{name}-db-events"),
            opts=child,
        )

        self.database_host = self.database.address
        self.redis_host = self.redis.primary_endpoint_address
        clusters = 2 if settings.database_multi_az else 1
        self.metrics = StoreMetrics(
            database_identifier=self.database.identifier,
            # The replication group's nodes, one CacheClusterId each (member_clusters, in a stable order).
            redis_clusters=[self.redis.member_clusters.apply(lambda ids, i=i: sorted(ids)[i]) for i in range(clusters)],
        )
        self.register_outputs(
            {"databaseHost": self.database_host, "redisHost": self.redis_host, "eventsTopicArn": self.events_topic.arn}
        )
