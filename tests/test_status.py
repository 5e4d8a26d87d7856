"""`python -m components.status`: the stack's outputs (a stand-in of `pulumi stack output --json
--show-secrets`, as the CLI is absent here), the Harbor emulator behind TLS with a test CA, and
moto's server for CloudWatch and SNS on loopback (AWS_ENDPOINT_URL), run as the operator runs it."""

from __future__ import annotations

import datetime
import json
import os
import ssl
import subprocess
import sys

import boto3
import pytest

from tests.paths import ROOT
from tests.standins.daemons import make_test_ca, require_binaries
from tests.standins.harbor_emulator import HarborEmulator, default_retention
from tests.standins.moto_server import CREDENTIALS, moto_server

ADMIN = "Status-Passw0rd"
TOPIC = "arn:aws:sns:eu-central-1:123456789012:harbor-alarms-topic"


@pytest.fixture
def aws(monkeypatch):
    with moto_server() as url:
        env = {"AWS_ENDPOINT_URL": url, **CREDENTIALS, "AWS_DEFAULT_REGION": "eu-central-1"}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        yield env


@pytest.fixture
def harbor(tmp_path):
    require_binaries("openssl")
    ca = make_test_ca(tmp_path / "ca")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(ca.server_cert), str(ca.server_key))
    emulator = HarborEmulator(admin_password=ADMIN, tls=context)
    yield emulator, ca
    emulator.stop()
    assert emulator.violations == [], "every answer fits Harbor's spec"


def run_status(tmp_path, outputs: dict, ca, *flags: str) -> subprocess.CompletedProcess:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    command = [sys.executable, "-m", "components.status", "--stack", "acme/dev", "--outputs-file", str(path)]
    return subprocess.run(
        [*command, "--ca-file", str(ca.ca_cert), *flags], cwd=ROOT, env=os.environ, capture_output=True, text=True, timeout=120
    )


def seed(emulator: HarborEmulator, aws_env: dict) -> dict:
    state = emulator.state
    for name, url, status in (("dockerhub", "https://hub.docker.com", "healthy"), ("ghcr", "https://ghcr.io", "unhealthy")):
        registry_id = state.new_id()
        credential = {"type": "basic", "access_key": "", "access_secret": ""}
        state.registries[registry_id] = {"id": registry_id, "name": name, "url": url, "status": status, "credential": credential}
    for name, used in (("dockerhub-proxy", 19 * 2**30), ("ghcr-proxy", 2**30)):
        quota_id = state.new_id()
        hard, used_list = {"storage": 20 * 2**30}, {"storage": used}
        state.quotas[quota_id] = {"id": quota_id, "ref": {"id": quota_id, "name": name}, "hard": hard, "used": used_list}
    for name in ("dockerhub-proxy", "ghcr-proxy"):
        # A proxy project and the retention policy Harbor gives it (handler/project.go CreateProject).
        project_id = state.new_id()
        state.projects[project_id] = {
            "project_id": project_id,
            "name": name,
            "registry_id": 1,
            "metadata": {"public": "true"},
            "repositories": [],
        }
        state.projects[project_id]["metadata"]["retention_id"] = str(emulator.add_retention(default_retention(project_id, 7)))
    run = {"id": 9, "job_name": "GARBAGE_COLLECTION", "job_status": "Success", "creation_time": "2026-12-06T00:00:00Z"}
    state.gc_history.append(run)
    sns = boto3.client("sns", region_name="eu-central-1")
    topic = sns.create_topic(Name="harbor-alarms-topic")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com")
    cloudwatch = boto3.client("cloudwatch", region_name="eu-central-1")
    when = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)

    def put(metric: str, value: float, **dimensions: str) -> None:
        cloudwatch.put_metric_data(
            Namespace="HarborCache/dev",
            MetricData=[
                {
                    "MetricName": metric,
                    "Dimensions": [{"Name": "Stack", "Value": "dev"}, *({"Name": k, "Value": v} for k, v in dimensions.items())],
                    "Value": value,
                    "Timestamp": when,
                }
            ],
        )

    put("ProbeFailed", 0, Project="dockerhub-proxy")
    put("ProbeFailed", 1, Project="ghcr-proxy")
    put("ProxyManifestRequests", 40, Project="dockerhub-proxy")
    put("ProxyManifestMisses", 10, Project="dockerhub-proxy")
    put("ProxyBytesServed", 3 * 2**30, Project="dockerhub-proxy")
    put("DiskUsedPercent", 42, Mount="/data")
    cloudwatch.put_metric_alarm(
        AlarmName="harbor-alarms-probe-ghcr-1a2b3c",
        AlarmDescription=(
            "harbor-cache dev: Project ghcr-proxy: the probe's pull failed: journalctl -u harbor-probe says what Harbor answered"
        ),
        Namespace="HarborCache/dev",
        MetricName="ProbeFailed",
        Statistic="Maximum",
        Period=3600,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName="harbor-alarms-probe-ghcr-1a2b3c", StateValue="ALARM", StateReason="test")
    return {
        "url": emulator.url,
        "harborAdminPassword": ADMIN,
        "alarmTopicArn": topic,
        "projects": {"docker.io": "dockerhub-proxy", "ghcr.io": "ghcr-proxy"},
    }


def test_status_says_what_is_red_and_what_to_do(harbor, aws, tmp_path):
    emulator, ca = harbor
    outputs = seed(emulator, aws)
    emulator.add_retention_execution("dockerhub-proxy", "Error", "2026-12-05T00:00:00Z")
    emulator.add_retention_execution("dockerhub-proxy", "Running", "2026-12-06T00:00:00Z")
    emulator.add_retention_execution("ghcr-proxy", "Success", "2026-12-06T00:00:00Z")
    result = run_status(tmp_path, outputs, ca, "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    checks = {check["name"]: check for check in report["checks"]}
    assert report["stack"] == "dev" and report["healthy"] is False
    assert checks["harbor"]["state"] == "ok" and checks["version"]["detail"] == "v2.15.2-0ef2e4f3"
    assert checks["certificate"]["state"] == "red" and "days left" in checks["certificate"]["detail"], "the test CA's 2 days"
    assert checks["upstream dockerhub"]["state"] == "ok"
    assert checks["upstream ghcr"]["state"] == "red" and "egress" in checks["upstream ghcr"]["fix"]
    assert checks["quota dockerhub-proxy"]["state"] == "red" and "95.0%" in checks["quota dockerhub-proxy"]["detail"]
    assert checks["quota ghcr-proxy"]["state"] == "ok"
    assert checks["garbage collection"]["state"] == "ok"
    retention = checks["retention dockerhub-proxy"]
    assert retention["state"] == "red" and retention["detail"] == "last run 2026-12-05T00:00:00Z: Error", "the last finished"
    assert checks["retention ghcr-proxy"]["state"] == "ok"
    assert checks["probe dockerhub-proxy"]["state"] == "ok" and "stored and served" in checks["probe dockerhub-proxy"]["detail"]
    assert checks["probe ghcr-proxy"]["state"] == "red" and "journalctl -u harbor-probe" in checks["probe ghcr-proxy"]["fix"]
    assert checks["hit rate dockerhub-proxy"]["detail"] == "last day: 75% of 40 manifest pulls, 3.00 GiB served"
    assert checks["disk /data"]["state"] == "ok" and checks["disk /data"]["detail"] == "42% used"
    assert checks["alarm harbor-alarms-probe-ghcr-1a2b3c"]["state"] == "red"
    assert checks["alarm topic"]["state"] == "ok", "moto confirms e-mail subscriptions at once (AWS does not: below)"
    assert ADMIN not in result.stdout + result.stderr

    text = run_status(tmp_path, outputs, ca)
    assert text.stdout.startswith(f"harbor-cache dev: {emulator.url}: RED")
    assert "RED  upstream ghcr" in text.stdout and "-> Harbor serves only what it cached" in text.stdout


def test_a_healthy_stack_exits_zero(harbor, aws, tmp_path):
    emulator, ca = harbor
    outputs = seed(emulator, aws)
    emulator.state.registries = {k: {**v, "status": "healthy"} for k, v in emulator.state.registries.items()}
    for quota in emulator.state.quotas.values():
        quota["used"] = {"storage": 2**30}
    cloudwatch = boto3.client("cloudwatch", region_name="eu-central-1")
    cloudwatch.set_alarm_state(AlarmName="harbor-alarms-probe-ghcr-1a2b3c", StateValue="OK", StateReason="test")
    cloudwatch.put_metric_data(
        Namespace="HarborCache/dev",
        MetricData=[
            {
                "MetricName": "ProbeFailed",
                "Dimensions": [{"Name": "Stack", "Value": "dev"}, {"Name": "Project", "Value": "ghcr-proxy"}],
                "Value": 0,
                "Timestamp": datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1),
            }
        ],
    )
    report = json.loads(run_status(tmp_path, outputs, ca, "--json").stdout)
    red = [check for check in report["checks"] if check["state"] == "red"]
    # Only the test CA's 2-day certificate is red: everything else is healthy.
    assert [check["name"] for check in red] == ["certificate"]


def test_with_a_load_balancer_a_failing_renewal_points_at_acm_not_traefik(harbor, aws, tmp_path):
    emulator, ca = harbor
    outputs = {**seed(emulator, aws), "loadBalancerDnsName": "harbor-lb-0123456789.eu-central-1.elb.amazonaws.com"}
    checks = {check["name"]: check for check in json.loads(run_status(tmp_path, outputs, ca, "--json").stdout)["checks"]}
    certificate = checks["certificate"]
    assert certificate["state"] == "red", "the test CA's 2 days, as a client sees them through the load balancer"
    assert "ACM" in certificate["fix"] and "CNAME" in certificate["fix"] and "traefik" not in certificate["fix"]


PENDING = {
    # SNS ListSubscriptionsByTopic for an e-mail subscription nobody confirmed yet: no ARN exists until it
    # is confirmed, and SubscriptionArn is the text "PendingConfirmation" (as AWS answers it: e.g.
    # localstack/localstack#13666, mozilla/frost#428; Subscribe's own answer spells it "pending
    # confirmation", botocore's sns service-2.json SubscribeResponse). After 3 days unconfirmed it is
    # deleted and the list is empty.
    "SubscriptionArn": "PendingConfirmation",
    "Owner": "123456789012",
    "Protocol": "email",
    "Endpoint": "ops@cache-fixture.net",
    "TopicArn": TOPIC,
}


@pytest.mark.parametrize(
    ("subscriptions", "state", "said"),
    [
        ([PENDING], "red", "1 pending confirmation (ops@cache-fixture.net)"),
        ([], "red", "no subscriber"),
        ([{**PENDING, "SubscriptionArn": f"{TOPIC}:0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"}], "ok", "1 confirmed subscriber"),
    ],
)
def test_an_e_mail_left_unconfirmed_is_red_as_sns_answers_it(aws, monkeypatch, subscriptions, state, said):
    """moto confirms e-mail subscriptions at once; AWS does not. SNS is a botocore Stubber here, which
    checks the request and the answer against SNS's service model (ListSubscriptionsByTopic); CloudWatch
    is moto's. `status` runs its own AWS checks in this process, with the caller's usual boto3 clients."""
    from botocore.stub import Stubber

    from components.status import aws_checks

    made = boto3.client
    stubbers = []

    def client(service: str, **kwargs):
        answer = made(service, **kwargs)
        if service == "sns":
            stubber = Stubber(answer)
            stubber.add_response("list_subscriptions_by_topic", {"Subscriptions": subscriptions}, {"TopicArn": TOPIC})
            stubber.activate()
            stubbers.append(stubber)
        return answer

    monkeypatch.setattr(boto3, "client", client)
    checks = {check.name: check for check in aws_checks({"alarmTopicArn": TOPIC, "projects": {}}, "dev", "dev")}
    (stubber,) = stubbers
    stubber.assert_no_pending_responses()
    topic = checks["alarm topic"]
    assert topic.state == state and said in topic.detail, topic
    if subscriptions == [PENDING]:
        assert "nobody hears the alarms" in topic.detail and "3 days" in topic.fix


def test_status_reads_every_page_of_the_topics_subscriptions(aws, monkeypatch):
    """Up to 100 subscriptions a page (SNS API Reference, ListSubscriptionsByTopic): a confirmed one on
    the second page still counts."""
    from botocore.stub import Stubber

    from components.status import aws_checks

    made = boto3.client
    stubbers = []
    confirmed = {**PENDING, "SubscriptionArn": f"{TOPIC}:0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"}

    def client(service: str, **kwargs):
        answer = made(service, **kwargs)
        if service == "sns":
            stubber = Stubber(answer)
            stubber.add_response(
                "list_subscriptions_by_topic", {"Subscriptions": [PENDING], "NextToken": "page-2"}, {"TopicArn": TOPIC}
            )
            stubber.add_response(
                "list_subscriptions_by_topic", {"Subscriptions": [confirmed]}, {"TopicArn": TOPIC, "NextToken": "page-2"}
            )
            stubber.activate()
            stubbers.append(stubber)
        return answer

    monkeypatch.setattr(boto3, "client", client)
    checks = {check.name: check for check in aws_checks({"alarmTopicArn": TOPIC, "projects": {}}, "dev", "dev")}
    stubbers[0].assert_no_pending_responses()
    assert checks["alarm topic"].state == "ok" and "1 confirmed subscriber" in checks["alarm topic"].detail


def test_the_no_subscriber_alarm_shows_red_in_status_with_what_to_do(aws):
    """The alarm as the program makes it (alarm_specs.py), in ALARM in moto's CloudWatch."""
    from components.aws.alarm_specs import watch_alarm_specs
    from components.settings.settings import parse_settings
    from components.status import aws_checks
    from tests.settings.test_settings import dev_raw

    (spec,) = [
        s
        for s in watch_alarm_specs(parse_settings(dev_raw(), stack="dev", region="eu-central-1"))
        if s.key == "no-alarm-subscriber"
    ]
    cloudwatch = boto3.client("cloudwatch", region_name="eu-central-1")
    cloudwatch.put_metric_alarm(
        AlarmName="harbor-alarms-no-alarm-subscriber-5e6f7a8",
        AlarmDescription=f"harbor-cache dev: {spec.description}",
        Namespace=spec.namespace,
        MetricName=spec.metric,
        Dimensions=[{"Name": key, "Value": value} for key, value in spec.dimensions.items()],
        Statistic=spec.statistic,
        Period=spec.period,
        EvaluationPeriods=spec.evaluation_periods,
        Threshold=spec.threshold,
        ComparisonOperator=spec.comparison,
        TreatMissingData=spec.treat_missing_data,
    )
    cloudwatch.set_alarm_state(AlarmName="harbor-alarms-no-alarm-subscriber-5e6f7a8", StateValue="ALARM", StateReason="no data")
    topic = boto3.client("sns", region_name="eu-central-1").create_topic(Name="harbor-alarms-topic-nobody")["TopicArn"]
    try:
        checks = {check.name: check for check in aws_checks({"alarmTopicArn": topic, "projects": {}}, "dev", "dev")}
    finally:
        # moto's backends live in this process: leave no alarm in ALARM for the next test.
        cloudwatch.delete_alarms(AlarmNames=["harbor-alarms-no-alarm-subscriber-5e6f7a8"])
    alarm = checks["alarm harbor-alarms-no-alarm-subscriber-5e6f7a8"]
    assert alarm.state == "red" and "Nobody has confirmed a subscription to the alarm topic" in alarm.detail
    assert "confirm the mail" in alarm.fix and "alarmTopicArn" in alarm.fix
    assert checks["alarm topic"].state == "red"


def test_without_the_cli_or_a_file_it_says_how():
    result = subprocess.run(
        [sys.executable, "-m", "components.status", "--stack", "dev"],
        cwd=ROOT,
        env={**os.environ, "PATH": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "pulumi CLI is not on PATH" in result.stderr
