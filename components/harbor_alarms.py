"""HarborAlarms: one SNS topic and the CloudWatch alarms that tell operators before the clusters do.

EC2's own status checks come from AWS/EC2; disk usage, Harbor's health and the probe's failures
are put into the HarborCache namespace by the VM itself (files/harbor-metrics.py, a systemd timer,
signed with the instance role; see README, Operate: why not the CloudWatch agent).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.operate_files import METRICS_NAMESPACE
from components.settings import Settings
from components.tagging import resource_tags


@dataclass(frozen=True)
class HarborAlarmsArgs:
    settings: Settings
    instance_id: pulumi.Input[str]
    instance_role_name: pulumi.Input[str]
    # The step that starts the reporter on the VM: alarms on its metrics come after it.
    reporting: list[pulumi.Resource]


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm as data: `actions` are added to the topic ("recover"/"reboot" = EC2 actions)."""

    key: str
    description: str
    namespace: str
    metric: str
    dimensions: dict[str, pulumi.Input[str]]
    statistic: str
    comparison: str
    threshold: float
    period: int
    evaluation_periods: int
    treat_missing_data: str
    ec2_action: str = ""


def put_metrics_policy() -> str:
    """The instance role may put metrics, into the HarborCache namespace only."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "cloudwatch:PutMetricData",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
                }
            ],
        }
    )


def ec2_action_arn(region: str, action: str) -> str:
    # CloudWatch's EC2 alarm actions (AWS docs "Create alarms to stop, terminate, reboot, or recover an instance").
    return f"arn:aws:automate:{region}:ec2:{action}"


def alarm_specs(settings: Settings, instance_id: pulumi.Input[str]) -> list[AlarmSpec]:
    stack = {"Stack": settings.stack}
    percent = settings.alarm_disk_used_percent
    minutes = settings.alarm_harbor_unhealthy_minutes
    return [
        AlarmSpec(
            "system-status",
            "EC2 system status check failed (AWS hardware or network): the instance is recovered onto other hardware",
            "AWS/EC2",
            "StatusCheckFailed_System",
            {"InstanceId": instance_id},
            "Maximum",
            "GreaterThanOrEqualToThreshold",
            1,
            60,
            2,
            "missing",
            ec2_action="recover",
        ),
        AlarmSpec(
            "instance-status",
            "EC2 instance status check failed (the OS does not answer): the instance is rebooted",
            "AWS/EC2",
            "StatusCheckFailed_Instance",
            {"InstanceId": instance_id},
            "Maximum",
            "GreaterThanOrEqualToThreshold",
            1,
            60,
            3,
            "missing",
            ec2_action="reboot",
        ),
        AlarmSpec(
            "data-disk",
            f"Data volume {settings.data_mount} more than {percent}% full: grow dataVolumeSizeGb or tighten GC/retention",
            METRICS_NAMESPACE,
            "DiskUsedPercent",
            {**stack, "Mount": settings.data_mount},
            "Maximum",
            "GreaterThanThreshold",
            percent,
            300,
            1,
            "missing",
        ),
        AlarmSpec(
            "root-disk",
            f"Root volume more than {percent}% full (Docker images, logs): grow rootVolumeSizeGb or prune",
            METRICS_NAMESPACE,
            "DiskUsedPercent",
            {**stack, "Mount": "/"},
            "Maximum",
            "GreaterThanThreshold",
            percent,
            300,
            1,
            "missing",
        ),
        AlarmSpec(
            "harbor-unhealthy",
            f"Harbor not healthy (or not reporting) for {minutes} minutes: see journalctl -u harbor and docker compose ps",
            METRICS_NAMESPACE,
            "HarborHealthy",
            stack,
            "Maximum",
            "LessThanThreshold",
            1,
            60,
            minutes,
            # No report at all means the VM or its reporter is down: that is unhealthy too.
            "breaching",
        ),
        AlarmSpec(
            "smoke-failed",
            "A scheduled pull through a proxy project failed: journalctl -u harbor-probe names the broken link",
            METRICS_NAMESPACE,
            "SmokeFailures",
            stack,
            "Maximum",
            "GreaterThanThreshold",
            0,
            3600,
            1,
            "notBreaching",
        ),
        AlarmSpec(
            "prewarm-failed",
            "An image of the prewarm list could not be pulled into the cache: journalctl -u harbor-probe",
            METRICS_NAMESPACE,
            "PrewarmFailures",
            stack,
            "Maximum",
            "GreaterThanThreshold",
            0,
            3600,
            1,
            "notBreaching",
        ),
    ]


class HarborAlarms(pulumi.ComponentResource):
    def __init__(self, name: str, args: HarborAlarmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("harbor-cache:index:HarborAlarms", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)

        # Not KMS-encrypted: CloudWatch cannot publish to a topic under the AWS-managed SNS key,
        # and nothing secret travels in an alarm.
        self.topic = aws.sns.Topic(f"{name}-topic", tags=resource_tags(settings, f"{name}-topic"), opts=child)
        if settings.alarm_email:
            aws.sns.TopicSubscription(
                f"{name}-email", topic=self.topic.arn, protocol="email", endpoint=settings.alarm_email, opts=child
            )
        self.put_metrics = aws.iam.RolePolicy(
            f"{name}-put-metrics", role=args.instance_role_name, policy=put_metrics_policy(), opts=child
        )

        after_reporter = pulumi.ResourceOptions(parent=self, depends_on=[*args.reporting, self.put_metrics])
        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
        for spec in alarm_specs(settings, args.instance_id):
            actions: list[pulumi.Input[str]] = [self.topic.arn]
            if spec.ec2_action:
                actions.insert(0, ec2_action_arn(settings.region, spec.ec2_action))
            self.alarms[spec.key] = aws.cloudwatch.MetricAlarm(
                f"{name}-{spec.key}",
                alarm_description=f"harbor-cache {settings.stack}: {spec.description}",
                namespace=spec.namespace,
                metric_name=spec.metric,
                dimensions=spec.dimensions,
                statistic=spec.statistic,
                comparison_operator=spec.comparison,
                threshold=spec.threshold,
                period=spec.period,
                evaluation_periods=spec.evaluation_periods,
                datapoints_to_alarm=spec.evaluation_periods,
                treat_missing_data=spec.treat_missing_data,
                alarm_actions=actions,
                ok_actions=[self.topic.arn],
                tags=resource_tags(settings, f"{name}-{spec.key}"),
                opts=child if spec.namespace == "AWS/EC2" else after_reporter,
            )

        self.topic_arn = self.topic.arn
        self.register_outputs({"alarmTopicArn": self.topic.arn})
