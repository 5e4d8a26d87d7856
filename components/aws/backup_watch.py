"""HarborBackupWatch: the daily snapshot is seen, not assumed. DLM's own errors and a failed
snapshot of the data volume reach the stack's alarm topic through EventBridge (the "no snapshot
completed in 26 h" alarm is the reporter's HoursSinceSnapshot, components/aws/alarm_specs.py).

The events, as AWS documents them (Amazon EBS User Guide):
- "Monitor Data Lifecycle Manager policies using EventBridge": `DLM Policy State Change`, source
  `aws.dlm`, `resources` = [the policy's ARN], detail {"state": "ERROR", "cause": "Role provided
  does not have sufficient permissions", "policy_id"}; emitted when a policy enters the error state.
- "Amazon EventBridge events for Amazon EBS", snapshot events: `EBS Snapshot Notification`, source
  `aws.ec2`, detail {"event": "createSnapshot", "result": "succeeded" | "failed", "cause",
  "source": "arn:aws:ec2::<region>:volume/<volume id>", ...}. The volume ARN in `detail.source` has
  an unusual shape in AWS's own examples, so the rule matches its ending, `volume/<id>` (EventBridge
  suffix matching).
The topic lets EventBridge publish only for these rules (EventBridge User Guide, "Amazon SNS
permissions": principal events.amazonaws.com, aws:SourceArn = the rule) and CloudWatch only for
this account's alarms; the account's own principals keep their IAM access.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.tagging import resource_tags
from components.settings.settings import Settings


@dataclass(frozen=True)
class HarborBackupWatchArgs:
    settings: Settings
    topic: aws.sns.Topic
    snapshot_policy_arn: pulumi.Input[str]
    data_volume_id: pulumi.Input[str]


def dlm_error_pattern(policy_arn: str) -> str:
    return json.dumps(
        {
            "source": ["aws.dlm"],
            "detail-type": ["DLM Policy State Change"],
            "resources": [policy_arn],
            "detail": {"state": ["ERROR"]},
        }
    )


def snapshot_failed_pattern(volume_id: str) -> str:
    return json.dumps(
        {
            "source": ["aws.ec2"],
            "detail-type": ["EBS Snapshot Notification"],
            "detail": {"event": ["createSnapshot"], "result": ["failed"], "source": [{"suffix": f"volume/{volume_id}"}]},
        }
    )


def topic_policy(topic_arn: str, rule_arns: list[str], account_id: str, partition: str, region: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "CloudWatchAlarms",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": {"ArnLike": {"aws:SourceArn": f"arn:{partition}:cloudwatch:{region}:{account_id}:alarm:*"}},
                },
                {
                    "Sid": "BackupEvents",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": rule_arns}},
                },
            ],
        }
    )


class HarborBackupWatch(pulumi.ComponentResource):
    def __init__(self, name: str, args: HarborBackupWatchArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("harbor-cache:index:HarborBackupWatch", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)
        patterns = {
            "dlm-error": (
                "The data volume's snapshot policy (DLM) entered the ERROR state: no snapshot will be taken",
                pulumi.Output.from_input(args.snapshot_policy_arn).apply(dlm_error_pattern),
            ),
            "snapshot-failed": (
                "A snapshot of the data volume failed",
                pulumi.Output.from_input(args.data_volume_id).apply(snapshot_failed_pattern),
            ),
        }
        self.rules: dict[str, aws.cloudwatch.EventRule] = {}
        for key, (description, pattern) in patterns.items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-{key}",
                description=f"harbor-cache {settings.stack_id}: {description}"[:512],
                event_pattern=pattern,
                tags=resource_tags(settings, f"{name}-{key}"),
                opts=child,
            )
            aws.cloudwatch.EventTarget(f"{name}-{key}", rule=rule.name, arn=args.topic.arn, opts=child)
            self.rules[key] = rule
        invoke = pulumi.InvokeOutputOptions(parent=self)
        caller = aws.get_caller_identity_output(opts=invoke)
        partition = aws.get_partition_output(opts=invoke)
        self.topic_policy = aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            arn=args.topic.arn,
            policy=pulumi.Output.all(
                args.topic.arn, [rule.arn for rule in self.rules.values()], caller.account_id, partition.partition
            ).apply(lambda values: topic_policy(values[0], values[1], values[2], values[3], settings.region)),
            opts=child,
        )
        self.register_outputs({})
