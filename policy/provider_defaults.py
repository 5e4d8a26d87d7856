"""What the providers' Check adds to the program's inputs before the engine hands them to the analyzer.

The engine analyzes a resource's *checked* inputs: pulumi pkg/resource/deploy/step_generator.go (the stored
snapshot after v3.259.0) generateSteps calls `prov.Check`, sets `inputs = resp.Properties` and then
`sg.analyzeAll(ctx, analyzers, new, inputs, goal)`, which hands the analyzer those properties (an untargeted resource
under `--target` gets its old inputs, which were checked the same way). So a field the program never sets can reach
the pack because the provider filled it; the field rule (fields.py) must accept exactly that, and nothing more:

- pulumi-aws (the Terraform bridge, SDKv2 resources): pulumi-terraform-bridge pkg/tfbridge/provider.go
  (*Provider).Check builds the inputs twice with makeTerraformInputsWithOptions, the second time WITH the Terraform
  schema's defaults, and answers MakeTerraformOutputs of that. schema.go makeObjectTerraformInputs runs for every
  object, nested ones too, and ends with applyDefaults: first the Pulumi-side defaults (SchemaInfo.Default: here the
  provider's autonaming of `name`, provider/autonaming.go setAutonaming -> tfbridge.AutoName, `<urn name>-<7 hex>`),
  skipped where a conflicting field is set (buildConflictsWith: `bucketPrefix` stops `bucket`), then every Terraform
  `Default:` of a field not set and not deprecated (since bridge #3398, 2026-04, falsy ones are left out: both kinds
  are listed here), and it always writes `__defaults`, the list of the keys it filled. makeObjectTerraformInputs skips
  the bridge's reserved keys of the program's inputs (reservedkeys.IsBridgeReservedKey: `__defaults`, `__meta`,
  `__pulumi_raw_state_delta`), so a `__defaults` the program sets is replaced by the bridge's own (on an update,
applyDefaults takes a field listed in the *old* inputs' `__defaults` from the old inputs: a default an older provider
version filled differently would be refused until the field is set explicitly: a residual, docs/security.md); the engine drops
  top-level "__" keys before the analyzer (sdk/go/common/resource/plugin/rpc.go MarshalProperties with
  SkipInternalKeys), so the pack sees the nested ones only. The pack never reads them: a key listed there exempts
  nothing (fields.py accepts a filled field only by its value). The PreCheckCallback adds `tagsAll` (provider/tags.go).
- pulumi-random, pulumi-tls: the bridge's Plugin Framework side, pkg/pf/tfbridge/provider_check.go CheckWithContext:
  PreCheckCallback and the Pulumi-side defaults (defaults.ApplyDefaultInfoValues) only, no Terraform defaults and no
  `__defaults`; neither provider declares such defaults for the program's types: nothing added.
- pulumi-command v1.2.1 (not bridged): pulumi-go-provider v1.3.0 infer/resource.go derivedResourceController.Check
  decodes the inputs into the resource's Go type, applyDefaults from its annotations, and encodes them again; the
  connection's annotations (provider/pkg/provider/remote/connection.go Connection.Annotate) default user "root",
  port 22, dialErrorLimit 10 and perDialTimeout 15.
- dynamic providers (pulumi-python:dynamic): pulumi/dynamic/__main__.py Check answers the program's own provider's
  `check` (plus `__provider`, dropped before the analyzer as a top-level "__" key): components/aws/host_key_provider.py
  and harbor/robot.py pick their keys (absent ones as null), the others answer the inputs as they are.

The Terraform defaults below are those of terraform-provider-aws's resource schemas (internal/service/<service>/
<resource>.go, `Default:`), for the program's types, in Pulumi's names, every `Default:` at the top and inside the
objects the program sets (fields.py), falsy ones included (whether the bridge pulumi-aws 7.51.1 pins already has #3398
could not be read here; listing them is right either way). Read in the Terraform source (hashicorp/terraform-provider-aws,
the newest stored version of each file, v5.x to the 2026 v6 source: the exact upstream commit of pulumi-aws 7.51.1
could not be fetched here) for aws_instance, aws_security_group, aws_ebs_volume, aws_volume_attachment, aws_iam_role,
aws_dlm_lifecycle_policy, aws_route53_record, aws_cloudwatch_metric_alarm, aws_sns_topic(+_subscription),
aws_cloudwatch_event_rule, aws_db_instance, aws_elasticache_replication_group, aws_lb, aws_lb_listener,
aws_lb_target_group and aws_acm_certificate (none); the rest from pulumi-aws 7.51.1's own docs of each argument (the
installed SDK's `Defaults to ...` / `Default value is ...`, generated from the same upstream). aws_s3_bucket_lifecycle_
configuration is a Plugin Framework resource in Terraform AWS v6 (its Terraform defaults are not filled at Check, see
pulumi-random above). Pulumi renames `Managed by Terraform` to `Managed by Pulumi` (pulumi-aws provider/resources.go).
A default listed here that the provider does not fill changes nothing; a default missing would refuse a real `up`:
tests/policy/test_fields.py feeds the pack the program's inputs with these filled, as the engine does.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

# Per type: path (Pulumi names, `[]` a list element) -> the schema's default. A nested path's default counts only
# inside an object the program sets (fields.py: its parent is one of the table's containers).
TERRAFORM_DEFAULTS: dict[str, dict[str, Any]] = {
    # internal/service/ec2/ec2_instance.go resourceInstance: metadata_options.http_endpoint Default "enabled" and
    # http_protocol_ipv6 Default "disabled" (the program sets metadataOptions, so the bridge fills them inside it);
    # instance_metadata_tags is Computed there but pulumi-aws 7.51.1 documents `Defaults to disabled`: listed too.
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
    # internal/service/events/rule.go resourceRule: event_bus_name "default", force_destroy false; is_enabled is
    # Deprecated (the bridge fills no default of a deprecated field) and state has no `Default:` there, but pulumi-aws
    # 7.51.1 documents `Defaults to ENABLED`: kept.
    "aws:cloudwatch/eventRule:EventRule": {
        "eventBusName": "default",
        "forceDestroy": False,
        "state": "ENABLED",
    },
    "aws:cloudwatch/eventTarget:EventTarget": {"eventBusName": "default", "forceDestroy": False},
    # internal/service/sns/topic.go topicSchema: content_based_deduplication, fifo_topic (false). maximumMessageSize
    # is newer than the source read here; pulumi-aws 7.51.1 documents "The default is 262144": listed in case it is a
    # schema default (a default listed and not filled changes nothing).
    "aws:sns/topic:Topic": {"fifoTopic": False, "contentBasedDeduplication": False, "maximumMessageSize": 262144},
    "aws:sns/topicSubscription:TopicSubscription": {
        "confirmationTimeoutInMinutes": 1,
        "endpointAutoConfirms": False,
        "rawMessageDelivery": False,
    },
    "aws:s3/bucket:Bucket": {"forceDestroy": False, "bucketNamespace": "global"},
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
    "aws:rds/subnetGroup:SubnetGroup": {"description": "Managed by Pulumi"},
    "aws:rds/eventSubscription:EventSubscription": {"enabled": True},
    # internal/service/elasticache/replication_group.go resourceReplicationGroup (the 2026 source): only
    # automatic_failover_enabled and multi_az_enabled (false). auth_token_update_strategy lost its ROTATE default in
    # v6.0.0 (its StateUpgraders say so) and engine is Optional+Computed (no "redis" default since valkey).
    "aws:elasticache/replicationGroup:ReplicationGroup": {
        "automaticFailoverEnabled": False,
        "multiAzEnabled": False,
    },
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
        # provider/pkg/provider/remote/command.go CommandInputs.Annotate: a.SetDefault(&c.AddPreviousOutputInEnv, true)
        # (review 22e: filled by infer's Check on every command; the previous run's output in the next run's
        # environment, on the same pinned host).
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
