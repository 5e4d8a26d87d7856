"""What the deploying identity needs for the resources that watch the cache (issue 19): the
dashboard, the EventBridge rules that send DLM's errors to the alarm topic, the topic's policy (an
attribute of the topic: SetTopicAttributes Policy), and InstanceRunning, which starts the VM a
data-volume swap stopped. (read, write) per resource type; components/aws/deploy_permissions.py
merges them into its RESOURCE_ACTIONS."""

from __future__ import annotations

WATCH_ACTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "aws:sns/topicPolicy:TopicPolicy": (("sns:GetTopicAttributes",), ("sns:SetTopicAttributes",)),
    "aws:cloudwatch/dashboard:Dashboard": (
        ("cloudwatch:GetDashboard",),
        ("cloudwatch:PutDashboard", "cloudwatch:DeleteDashboards"),
    ),
    "aws:cloudwatch/eventRule:EventRule": (
        ("events:DescribeRule", "events:ListTagsForResource", "events:ListTargetsByRule"),
        ("events:PutRule", "events:DeleteRule", "events:TagResource", "events:UntagResource"),
    ),
    "aws:cloudwatch/eventTarget:EventTarget": (("events:ListTargetsByRule",), ("events:PutTargets", "events:RemoveTargets")),
    "pulumi-python:dynamic/ec2:InstanceRunning": ((), ("ec2:DescribeInstances", "ec2:StartInstances")),
}
