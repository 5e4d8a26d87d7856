"""What the providers' Check adds to the program's inputs before the engine hands them to the analyzer.

The engine analyzes a resource's *checked* inputs: pulumi pkg/resource/deploy/step_generator.go (the stored
snapshot after v3.259.0) generateSteps calls `prov.Check`, sets `inputs = resp.Properties` and then
`sg.analyzeAll(ctx, analyzers, new, inputs, goal)`, which hands the analyzer those properties (an untargeted resource
under `--target` gets its old inputs, which were checked the same way). So a field the program never sets can reach
the pack because the provider filled it; the field rule (fields.py) must accept exactly that, and nothing more:

- pulumi-aws (the Terraform bridge, SDKv2 resources): pulumi-terraform-bridge v3.131.0 pkg/tfbridge/provider.go
  (*Provider).Check (line 931) builds the inputs twice with makeTerraformInputsWithOptions, first with
  DisableTFDefaults (line 1024), then WITH the Terraform schema's defaults (line 1044), and answers
  MakeTerraformOutputs of that. schema.go makeObjectTerraformInputs (line 620) runs for every object, nested ones
  too, and ends with applyDefaults (line 742): first the Pulumi-side defaults (SchemaInfo.Default: here the
  provider's autonaming of `name`, provider/autonaming.go setAutonaming -> tfbridge.AutoName, `<urn name>-<7 hex>`,
  and the `Managed by Pulumi` descriptions, which pulumi-aws 7.51.1's SDK shows as its only Value defaults of the
  program's types: aws_security_group, aws_db_subnet_group, aws_elasticache_subnet_group), skipped where a
  conflicting field is set (buildConflictsWith: `bucketPrefix` stops `bucket`) and for a deprecated, not required
  field (aws_s3_bucket `acl`, documented `Defaults to private`, is deprecated: never filled); then every Terraform
  `Default:` of a field not set, not deprecated, not in conflict. Falsy ones (false, 0, "") are left out since
  bridge #3398 (commit 6e33544f9, 2026-04-21, in every tag from v3.127.0, not reverted up to v3.136.0; line 963
  shouldSuppressTFSchemaDefaultValue), but a default named in the *old* inputs' `__defaults` is still taken from
  the old inputs ("old default", lines 946-957), so a stack created before #3398 keeps getting its falsy ones on
  every update: both kinds are listed here. It always writes `__defaults`, the list of the keys it filled (line 986;
  only Read drops empty ones, provider.go line 1509). makeObjectTerraformInputs skips the bridge's reserved keys of
  the program's inputs (reservedkeys.IsBridgeReservedKey: `__defaults`, `__meta`, `__pulumi_raw_state_delta`), so a
  `__defaults` the program sets is replaced by the bridge's own (a default an older provider version filled
  differently would be refused until the field is set explicitly: a residual, docs/security.md); the engine drops
  top-level "__" keys before the analyzer (sdk/go/common/resource/plugin/rpc.go MarshalProperties with
  SkipInternalKeys), so the pack sees the nested ones only. The pack never reads them: a key listed there exempts
  nothing (fields.py accepts a filled field only by its value). The PreCheckCallback adds `tagsAll` (provider/tags.go).
  Which bridge pulumi-aws 7.51.1 pins could not be read (below), but it is at least v3.131.0: pulumi-aws #6392
  (2026-05-22, Terraform AWS v6.46.0) moved to bridge v3.130.0 and #6417 (2026-06-04, v6.48.0) to v3.131.0, and
  7.51.1 is newer still (its SDK has aws_sns_topic `maximum_message_size`, asked for upstream on 2026-09-22,
  hashicorp/terraform-provider-aws#50109): #3398 is in.
- Plugin Framework resources of pulumi-aws (aws_s3_bucket_lifecycle_configuration: `@FrameworkResource` in
  internal/service/s3/bucket_lifecycle_configuration.go line 54), pulumi-random, pulumi-tls: the bridge's Plugin
  Framework side, v3.131.0 pkg/pf/tfbridge/provider_check.go CheckWithContext: PreCheckCallback and the Pulumi-side
  defaults (defaults.ApplyDefaultInfoValues) only, no Terraform defaults (a Framework schema's defaults and plan
  modifiers, like transition_default_minimum_object_size's, act at plan) and no `__defaults`; pulumi-random and
  pulumi-tls serve every resource through it (pf.ShimProvider / pf tfbridge.Main) and declare no such defaults for
  the program's types: nothing added.
- pulumi-command v1.2.1 (not bridged): pulumi-go-provider v1.3.0 infer/resource.go derivedResourceController.Check
  decodes the inputs into the resource's Go type, applyDefaults from its annotations, and encodes them again; the
  connection's annotations (provider/pkg/provider/remote/connection.go Connection.Annotate) default user "root",
  port 22, dialErrorLimit 10 and perDialTimeout 15.
- dynamic providers (pulumi-python:dynamic): pulumi/dynamic/__main__.py Check answers the program's own provider's
  `check` (plus `__provider`, dropped before the analyzer as a top-level "__" key): components/aws/host_key_provider.py
  and harbor/robot.py pick their keys (absent ones as null), the others answer the inputs as they are.

The Terraform defaults below are those of terraform-provider-aws's resource schemas, for every aws type the program
creates (harbor_policies.py ALLOWED), in Pulumi's names: every `Default:` at the top and inside the objects the program
sets (fields.py), falsy ones included. Where they were read (issue 22, review of the defaults):

- The exact upstream commit pulumi-aws 7.51.1 builds from was not found: the Go module proxy here answers 403 ("not
  available") for github.com/pulumi/pulumi-aws/provider/v7@v7.51.1 (and for any pulumi-aws module), both
  repositories' snapshots are over the 500 MB fetch limit, the stored pulumi/terraform-provider-aws mirror ends in
  2023 (patched-v6.0.0) and PyPI's JSON API is not reachable. Read instead: hashicorp/terraform-provider-aws at
  commit 5f2286d6d836 (Go pseudo-version v1.60.1-0.20260602190131-5f2286d6d836, main of 2026-06-02, between v6.47.0
  and v6.48.0: the newest source the proxy serves), with pulumi-aws's upstream patch "Change default descriptions
  to Managed by Pulumi" (patches/0018-..., rds and elasticache subnet groups, security groups). Drift since then was
  checked against pulumi-aws 7.51.1 itself: every argument of the program's types in its SDK (the generated Args
  classes, nested ones of the objects the program sets) exists in that source except aws_sns_topic
  maximum_message_size, aws_cloudwatch_metric_alarm evaluation_window/warm_up_configuration (blocks the program does
  not set), aws_db_instance warning_event_categories and aws_elasticache_replication_group auth_token_wo(_version)/
  durability (documented without a default); and every `Defaults to`/`Default value is`/`The default is` in those
  SDK docs is either a schema default listed here, a field the program sets, or Optional+Computed in that source.
- internal/service/<file> (line of the schema function; the `Default:` lines): ec2/ec2_instance.go resourceInstance
  (59; 519, 524, 710, 716, 890, 1034, 1114), ec2/vpc_security_group.go resourceSecurityGroup (46; 74, 107, and
  securityGroupRuleNestedBlock 135: self 181), ec2/ebs_volume.go resourceEBSVolume (41; 80),
  ec2/ebs_volume_attachment.go resourceVolumeAttachment (38; none), iam/role.go resourceRole (57; 109, 168, 190),
  dlm/lifecycle_policy.go resourceLifecyclePolicy (34; 146, 153, 196, 268, 300, 666), route53/record.go
  resourceRecord (51; none), cloudwatch/metric_alarm.go resourceMetricAlarm (47; 63, 338), sns/topic.go topicSchema
  (41; 69, 85), sns/topic_subscription.go (39; 48, 73, 99), events/rule.go resourceRule (42; 74, 89),
  rds/instance.go resourceInstance (60; 132, 141, 204, 239, 244, 459, 517, 542, 644),
  elasticache/replication_group.go resourceReplicationGroup (52; 103, 237), elbv2/load_balancer.go
  resourceLoadBalancer (54; 115-396), elbv2/listener.go resourceListener (50; redirect 339-366),
  elbv2/target_group.go resourceTargetGroup (49; 80-150, 166, 255, 260, 403), acm/certificate.go resourceCertificate
  (67; only options.certificate_transparency_logging_preference, a block the program does not set): as the table
  had them. Newly verified: iam/instance_profile.go resourceInstanceProfile (42; path "/" 78), iam/role_policy.go
  (43), iam/role_policy_attachment.go (35), ec2/ec2_eip.go resourceEIP (39), ec2/ec2_eip_association.go (27),
  ec2/ec2_key_pair.go (33), rds/snapshot.go (33), elbv2/target_group_attachment.go (42),
  acm/certificate_validation.go (36), cloudwatch/dashboard.go (29), sns/topic_policy.go (31), s3/bucket_policy.go
  (31), s3/bucket_server_side_encryption_configuration.go (39), s3/bucket_ownership_controls.go (32): no `Default:`;
  rds/subnet_group.go (39; description 54) and elasticache/subnet_group.go (32; description 52), "Managed by
  Terraform" patched to "Managed by Pulumi"; rds/event_subscription.go (35; enabled true 64); s3/bucket.go
  resourceBucket (71; force_destroy false 194; the other defaults sit in deprecated blocks); s3/
  bucket_public_access_block.go (29; the four block/ignore/restrict flags false 40-60); events/target.go resourceTarget
  (47; event_bus_name "default" 264, force_destroy false 269, the rest inside ecs_target). No DefaultFunc in any of
  them; all SDKv2 (`@SDKResource`) but the lifecycle configuration (Framework, above). Every value matched the table:
  nothing was missing.
- Listed without being a schema default (Optional+Computed or not a field there, documented with a default; the
  provider does not fill them, and a listed default it does not fill changes nothing): aws_instance
  metadata_options.instance_metadata_tags, aws_cloudwatch_event_rule state, aws_s3_bucket bucket_namespace, and
  aws_sns_topic maximum_message_size (newer than the source read).
A default missing would refuse a real `up`: tests/policy/test_fields.py feeds the pack the program's inputs with these
filled, as the engine does, and UPSTREAM_FILLED there holds values written from the Terraform source, not from this
table.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

# Per type: path (Pulumi names, `[]` a list element) -> the schema's default. A nested path's default counts only
# inside an object the program sets (fields.py: its parent is one of the table's containers).
TERRAFORM_DEFAULTS: dict[str, dict[str, Any]] = {
    # internal/service/ec2/ec2_instance.go resourceInstance (5f2286d6d836): metadata_options.http_endpoint Default
    # "enabled" (710) and http_protocol_ipv6 Default "disabled" (716) (the program sets metadataOptions, so the bridge
    # fills them inside it); instance_metadata_tags is Optional+Computed there but pulumi-aws 7.51.1 documents
    # `Defaults to disabled`: listed too (not filled; harmless).
    "aws:ec2/instance:Instance": {
        "getPasswordData": False,
        "sourceDestCheck": True,
        "userDataReplaceOnChange": False,
        "forceDestroy": False,
        "metadataOptions.httpEndpoint": "enabled",
        "metadataOptions.httpProtocolIpv6": "disabled",
        "metadataOptions.instanceMetadataTags": "disabled",
        "rootBlockDevice.deleteOnTermination": True,
    },
    "aws:ec2/securityGroup:SecurityGroup": {
        "description": "Managed by Pulumi",
        "revokeRulesOnDelete": False,
        "ingress[].self": False,
        "egress[].self": False,
    },
    "aws:ebs/volume:Volume": {"finalSnapshot": False},
    "aws:iam/role:Role": {"forceDetachPolicies": False, "maxSessionDuration": 3600, "path": "/"},
    # internal/service/iam/instance_profile.go resourceInstanceProfile: path Default "/" (line 78).
    "aws:iam/instanceProfile:InstanceProfile": {"path": "/"},
    # internal/service/dlm/lifecycle_policy.go resourceLifecyclePolicy (the 2026 source): policy_details' default-policy
    # fields copy_tags (false), create_interval (1), extend_deletion (false) and retain_interval (7) carry `Default:`
    # although they conflict with `schedule`, which the program sets (the bridge's applyDefaults fills them all the
    # same unless a set field names them in its ConflictsWith; none does), policy_type EBS_SNAPSHOT_MANAGEMENT, state
    # ENABLED. schedule.copy_tags and create_rule.interval_unit are Optional+Computed there (no default any more).
    "aws:dlm/lifecyclePolicy:LifecyclePolicy": {
        "state": "ENABLED",
        "policyDetails.copyTags": False,
        "policyDetails.createInterval": 1,
        "policyDetails.extendDeletion": False,
        "policyDetails.policyType": "EBS_SNAPSHOT_MANAGEMENT",
        "policyDetails.retainInterval": 7,
    },
    "aws:cloudwatch/metricAlarm:MetricAlarm": {"actionsEnabled": True, "treatMissingData": "missing"},
    # internal/service/events/rule.go resourceRule: event_bus_name "default" (74), force_destroy false (89); is_enabled
    # is Deprecated (the bridge fills no default of a deprecated field) and state has no `Default:` there, but
    # pulumi-aws 7.51.1 documents `Defaults to ENABLED`: kept (not filled; harmless).
    "aws:cloudwatch/eventRule:EventRule": {
        "eventBusName": "default",
        "forceDestroy": False,
        "state": "ENABLED",
    },
    # internal/service/events/target.go resourceTarget: event_bus_name DefaultEventBusName = "default" (264,
    # events/consts.go), force_destroy false (269); its other defaults sit inside ecs_target, which the program does
    # not set.
    "aws:cloudwatch/eventTarget:EventTarget": {"eventBusName": "default", "forceDestroy": False},
    # internal/service/sns/topic.go topicSchema: content_based_deduplication (69), fifo_topic (85) (false).
    # maximum_message_size is newer than the source read (5f2286d6d836 has no such field); pulumi-aws 7.51.1 documents
    # "The default is 262144": listed in case it is a schema default (a default listed and not filled changes nothing).
    "aws:sns/topic:Topic": {"fifoTopic": False, "contentBasedDeduplication": False, "maximumMessageSize": 262144},
    "aws:sns/topicSubscription:TopicSubscription": {
        "confirmationTimeoutInMinutes": 1,
        "endpointAutoConfirms": False,
        "rawMessageDelivery": False,
    },
    # internal/service/s3/bucket.go resourceBucket: force_destroy false (194). bucket_namespace is Optional+Computed
    # there (pulumi-aws documents `Defaults to global (AWS)`, an AWS-side default): not filled, kept (harmless); acl
    # (documented `Defaults to private`) is Deprecated and Optional+Computed: never filled.
    "aws:s3/bucket:Bucket": {"forceDestroy": False, "bucketNamespace": "global"},
    # internal/service/s3/bucket_public_access_block.go: the four flags Default false (40, 45, 55, 60).
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": {
        "blockPublicAcls": False,
        "blockPublicPolicy": False,
        "ignorePublicAcls": False,
        "restrictPublicBuckets": False,
    },
    # internal/service/rds/instance.go resourceInstance: apply_immediately, copy_tags_to_snapshot,
    # performance_insights_enabled, publicly_accessible, skip_final_snapshot (false), auto_minor_version_upgrade,
    # delete_automated_backups (true), monitoring_interval (0); dedicated_log_volume (false) is newer.
    "aws:rds/instance:Instance": {
        "applyImmediately": False,
        "autoMinorVersionUpgrade": True,
        "copyTagsToSnapshot": False,
        "dedicatedLogVolume": False,
        "deleteAutomatedBackups": True,
        "monitoringInterval": 0,
        "performanceInsightsEnabled": False,
        "publiclyAccessible": False,
        "skipFinalSnapshot": False,
    },
    # internal/service/rds/subnet_group.go description Default "Managed by Terraform" (54), "Managed by Pulumi" after
    # pulumi-aws's patch (and its SDK's schema default).
    "aws:rds/subnetGroup:SubnetGroup": {"description": "Managed by Pulumi"},
    # internal/service/rds/event_subscription.go resourceEventSubscription: enabled Default true (64).
    "aws:rds/eventSubscription:EventSubscription": {"enabled": True},
    # internal/service/elasticache/replication_group.go resourceReplicationGroup (the 2026 source): only
    # automatic_failover_enabled and multi_az_enabled (false). auth_token_update_strategy lost its ROTATE default in
    # v6.0.0 (its StateUpgraders say so) and engine is Optional+Computed (no "redis" default since valkey).
    "aws:elasticache/replicationGroup:ReplicationGroup": {
        "automaticFailoverEnabled": False,
        "multiAzEnabled": False,
    },
    # internal/service/elasticache/subnet_group.go description (52), patched like rds's.
    "aws:elasticache/subnetGroup:SubnetGroup": {"description": "Managed by Pulumi"},
    # internal/service/elbv2/load_balancer.go resourceLoadBalancer: every top-level `Default:` (access_logs and
    # connection_logs `enabled` are inside blocks the program does not set).
    "aws:lb/loadBalancer:LoadBalancer": {
        "clientKeepAlive": 3600,
        "desyncMitigationMode": "defensive",
        "dnsRecordClientRoutingPolicy": "any_availability_zone",
        "dropInvalidHeaderFields": False,
        "enableCrossZoneLoadBalancing": False,
        "enableDeletionProtection": False,
        "enableHttp2": True,
        "enableTlsVersionAndCipherSuiteHeaders": False,
        "enableWafFailOpen": False,
        "enableXffClientPort": False,
        "enableZonalShift": False,
        "idleTimeout": 60,
        "loadBalancerType": "application",
        "preserveHostHeader": False,
        "xffHeaderProcessingMode": "append",
    },
    # internal/service/elbv2/listener.go: default_action.redirect's host/path/port/protocol/query (the program sets
    # redirect); forward.target_group.weight (1) and forward.stickiness.enabled sit in blocks the program does not set.
    "aws:lb/listener:Listener": {
        "defaultActions[].redirect.host": "#{host}",
        "defaultActions[].redirect.path": "/#{path}",
        "defaultActions[].redirect.port": "#{port}",
        "defaultActions[].redirect.protocol": "#{protocol}",
        "defaultActions[].redirect.query": "#{query}",
    },
    # internal/service/elbv2/target_group.go resourceTargetGroup: deregistration_delay (a nullable int, "300"),
    # lambda_multi_value_headers_enabled, proxy_protocol_v2 (false), slow_start (0), target_type, and health_check's
    # enabled/healthy_threshold/interval/port/protocol/unhealthy_threshold; connection_termination is
    # Optional+Computed (no default).
    "aws:lb/targetGroup:TargetGroup": {
        "deregistrationDelay": 300,
        "lambdaMultiValueHeadersEnabled": False,
        "proxyProtocolV2": False,
        "slowStart": 0,
        "targetType": "instance",
        "healthCheck.enabled": True,
        "healthCheck.healthyThreshold": 3,
        "healthCheck.interval": 30,
        "healthCheck.port": "traffic-port",
        "healthCheck.protocol": "HTTP",
        "healthCheck.unhealthyThreshold": 3,
    },
    "command:remote:Command": {
        "connection.user": "root",
        "connection.port": 22,
        "connection.dialErrorLimit": 10,
        "connection.perDialTimeout": 15,
        # Not filled at the pinned v1.2.1 (review 22f): its provider/pkg/provider/remote/command.go
        # CommandInputs.Annotate only describes "Defaults to true"; the a.SetDefault(&c.AddPreviousOutputInEnv, true)
        # review 22e cited is an older commit's (bdee8868, in v1.0.0). Accepted anyway: `true` is what the provider does
        # when it is absent (v1.2.1 remote/commandOutputs.go: `c.AddPreviousOutputInEnv == nil ||
        # *c.AddPreviousOutputInEnv`), the previous run's output in the next run's environment, on the same pinned host.
        "addPreviousOutputInEnv": True,
    },
}

# Fields pulumi-aws names itself when the program leaves them out (provider/autonaming.go setAutonaming: every resource
# with an input `name`; the types' own AutoName fields in provider/resources.go), `<the resource's name>-<7 hex>`
# (pulumi sdk resource.NewUniqueHex). A stack's `pulumi:autonaming` configuration would change the shape: refused.
AUTONAMED: dict[str, tuple[str, ...]] = {
    "aws:ec2/securityGroup:SecurityGroup": ("name",),
    "aws:ec2/keyPair:KeyPair": ("keyName",),
    "aws:iam/role:Role": ("name",),
    "aws:iam/instanceProfile:InstanceProfile": ("name",),
    "aws:iam/rolePolicy:RolePolicy": ("name",),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("name",),
    "aws:cloudwatch/eventRule:EventRule": ("name",),
    "aws:cloudwatch/eventTarget:EventTarget": ("targetId",),
    "aws:sns/topic:Topic": ("name",),
    "aws:rds/subnetGroup:SubnetGroup": ("name",),
    "aws:rds/eventSubscription:EventSubscription": ("name",),
    "aws:elasticache/replicationGroup:ReplicationGroup": ("replicationGroupId",),
    "aws:elasticache/subnetGroup:SubnetGroup": ("name",),
    "aws:lb/loadBalancer:LoadBalancer": ("name",),
    "aws:lb/targetGroup:TargetGroup": ("name",),
}

# The SDKv2 bridge's own key in every object it checks (schema.go applyDefaults), and pulumi-aws's merged tags.
BRIDGE_DEFAULTS_KEY = "__defaults"
SDKV2_BRIDGED = ("aws:",)


def stack_region() -> str | None:
    """The stack's `aws:region` as the engine passes the configuration (analyzer_plugin.go constructConfig), else the
    environment's AWS_REGION / AWS_DEFAULT_REGION: the settings accept a region from the environment alone
    (components/settings/settings.py), pulumi-aws then fills `region` from it, and the engine starts the analyzer with
    its own environment (analyzer_plugin.go constructEnv: os.Environ()). The same order as aws_lookups._region."""
    try:
        config = json.loads(os.environ.get("PULUMI_CONFIG") or "{}")
    except ValueError:
        config = {}
    region = config.get("aws:region") if isinstance(config, dict) else None
    return region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


# Terraform AWS v6 gave most resources a `region` argument ("Defaults to the Region set in the provider
# configuration", pulumi-aws 7.51.1's docs of every such argument): whether the provider fills it at Check or only at
# plan, the value it would fill is the stack's region. The pack accepts that value only: a resource in another region
# is one no lookup of this stack's region finds.
REGION_FIELD = "region"


def is_autoname(value: Any, name: str) -> bool:
    return isinstance(value, str) and re.fullmatch(f"{re.escape(name)}-[0-9a-f]{{7}}", value) is not None


def same_value(value: Any, default: Any) -> bool:
    """Equal as the bridge hands it back: a bool only to a bool, a number to the same number (300 == 300.0), a string
    default to the same text (Terraform keeps some numbers as strings: deregistration_delay "300")."""
    if isinstance(default, bool) or isinstance(value, bool):
        return value is default
    if isinstance(default, (int, float)) and isinstance(value, str):
        return value == str(default)
    return value == default
