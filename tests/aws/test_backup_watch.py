"""Backups seen, not assumed (issue 19): DLM's ERROR state and a failed snapshot of the data volume
reach the alarm topic. The rules' patterns are checked against the example events AWS documents
(Amazon EBS User Guide: "Monitor Data Lifecycle Manager policies using EventBridge" and "Amazon
EventBridge events for Amazon EBS") with moto's EventBridge pattern matcher."""

from __future__ import annotations

import json

import pytest
from moto.events.models import EventPattern

from components.aws.backup_watch import dlm_error_pattern, snapshot_failed_pattern
from tests.standins.pulumi_harness import FAKE_ACCOUNT_ID, dev_config, run_program

POLICY_ARN = "arn:aws:dlm:us-east-1:123456789012:policy/policy-0123456789abcdef"
# The documented DLM event (the permissions example), verbatim but for formatting.
DLM_ERROR_EVENT = {
    "version": "0",
    "id": "01234567-0123-0123-0123-0123456789ab",
    "detail-type": "DLM Policy State Change",
    "source": "aws.dlm",
    "account": "123456789012",
    "time": "2018-05-25T13:12:22Z",
    "region": "us-east-1",
    "resources": [POLICY_ARN],
    "detail": {"state": "ERROR", "cause": "Role provided does not have sufficient permissions", "policy_id": POLICY_ARN},
}
# The documented createSnapshot event (its odd volume ARN included), with result failed.
SNAPSHOT_EVENT = {
    "version": "0",
    "id": "01234567-01234-0123-0123-012345678901",
    "detail-type": "EBS Snapshot Notification",
    "source": "aws.ec2",
    "account": "012345678901",
    "time": "yyyy-mm-ddThh:mm:ssZ",
    "region": "us-east-1",
    "resources": ["arn:aws:ec2::us-west-2:snapshot/snap-01234567"],
    "detail": {
        "event": "createSnapshot",
        "result": "failed",
        "cause": "",
        "request-id": "",
        "snapshot_id": "arn:aws:ec2::us-west-2:snapshot/snap-01234567",
        "source": "arn:aws:ec2::us-west-2:volume/vol-01234567",
        "startTime": "yyyy-mm-ddThh:mm:ssZ",
        "endTime": "yyyy-mm-ddThh:mm:ssZ",
    },
}


def matches(pattern: str, event: dict) -> bool:
    return EventPattern.load(pattern).matches_event(event)


def test_the_dlm_rule_matches_the_documented_error_of_its_policy_only():
    assert matches(dlm_error_pattern(POLICY_ARN), DLM_ERROR_EVENT)
    assert not matches(dlm_error_pattern(POLICY_ARN.replace("0123", "9999")), DLM_ERROR_EVENT)
    assert not matches(
        dlm_error_pattern(POLICY_ARN), {**DLM_ERROR_EVENT, "detail": {**DLM_ERROR_EVENT["detail"], "state": "ENABLED"}}
    )


def test_the_snapshot_rule_matches_a_failed_snapshot_of_the_data_volume_only():
    assert matches(snapshot_failed_pattern("vol-01234567"), SNAPSHOT_EVENT)
    assert not matches(snapshot_failed_pattern("vol-99999999"), SNAPSHOT_EVENT)
    succeeded = {**SNAPSHOT_EVENT, "detail": {**SNAPSHOT_EVENT["detail"], "result": "succeeded"}}
    assert not matches(snapshot_failed_pattern("vol-01234567"), succeeded)


@pytest.fixture(scope="module")
def run():
    return run_program(dev_config())


def test_both_rules_publish_to_the_alarm_topic_which_lets_only_them_and_this_accounts_alarms_publish(run):
    rules = {r.name: r for r in run.of_type("aws:cloudwatch/eventRule:EventRule")}
    assert set(rules) == {"harbor-backup-watch-dlm-error", "harbor-backup-watch-snapshot-failed"}
    dlm_policy = f"arn:aws:dlm:eu-central-1:{FAKE_ACCOUNT_ID}:policy/policy-0a1b2c3d4e5f60718"
    assert json.loads(rules["harbor-backup-watch-dlm-error"].inputs["eventPattern"])["resources"] == [dlm_policy]
    snapshot = json.loads(rules["harbor-backup-watch-snapshot-failed"].inputs["eventPattern"])
    assert snapshot["detail"]["source"] == [{"suffix": "volume/harbor-vm-data-id"}]
    topic_arn = run.outputs["alarmTopicArn"]
    targets = run.of_type("aws:cloudwatch/eventTarget:EventTarget")
    assert sorted(t.inputs["arn"] for t in targets) == [topic_arn, topic_arn]
    policy = json.loads(run.one("aws:sns/topicPolicy:TopicPolicy").inputs["policy"])
    alarms, events = policy["Statement"]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert alarms["Condition"]["ArnLike"]["aws:SourceArn"] == f"arn:aws:cloudwatch:eu-central-1:{FAKE_ACCOUNT_ID}:alarm:*"
    assert events["Principal"] == {"Service": "events.amazonaws.com"} and events["Action"] == "sns:Publish"
    assert sorted(events["Condition"]["ArnEquals"]["aws:SourceArn"]) == [
        f"arn:aws:events:eu-central-1:{FAKE_ACCOUNT_ID}:rule/{rule}" for rule in sorted(rules)
    ]
