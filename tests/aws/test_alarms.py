"""Alarms and the metrics that feed them: the AWS resources under mocks, the VM's reporter script
against a loopback IMDSv2 and CloudWatch endpoint (its SigV4 signature checked with botocore, the
AWS SDK's own signer), and its systemd units with `systemd-analyze verify`."""

from __future__ import annotations

import datetime
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from components.settings.settings import parse_settings
from components.vm import operate_files
from components.vm.files import FILES_DIR
from tests.conftest import unavailable
from tests.settings.test_settings import dev_raw, problems_of
from tests.standins.pulumi_harness import dev_config, run_program

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC_ARN = "arn:aws:sns:eu-central-1:123456789012:harbor-alarms-topic"


@pytest.fixture(scope="module")
def run():
    return run_program({**dev_config(), "harbor-cache:alarmEmail": "ops@cache-fixture.net"})


def alarms(run) -> dict:
    return {r.name.removeprefix("harbor-alarms-"): r for r in run.of_type(ALARM)}


def test_one_topic_is_exported_and_mailed_when_configured(run):
    topic = run.one("aws:sns/topic:Topic")
    assert "kmsMasterKeyId" not in topic.inputs, "CloudWatch cannot publish to a topic under the AWS-managed SNS key"
    assert run.outputs["alarmTopicArn"] == TOPIC_ARN
    subscription = run.one("aws:sns/topicSubscription:TopicSubscription")
    assert subscription.inputs == {"topic": TOPIC_ARN, "protocol": "email", "endpoint": "ops@cache-fixture.net"}
    assert run_program(dev_config()).of_type("aws:sns/topicSubscription:TopicSubscription") == []


def test_ec2_status_checks_recover_and_reboot_the_instance(run):
    found = alarms(run)
    system, instance = found["system-status"], found["instance-status"]
    for alarm, action, metric in (
        (system, "recover", "StatusCheckFailed_System"),
        (instance, "reboot", "StatusCheckFailed_Instance"),
    ):
        assert alarm.inputs["namespace"] == "AWS/EC2" and alarm.inputs["metricName"] == metric
        assert alarm.inputs["dimensions"] == {"InstanceId": "harbor-vm-instance-id"}
        assert alarm.inputs["alarmActions"] == [f"arn:aws:automate:eu-central-1:ec2:{action}", TOPIC_ARN]
        assert alarm.inputs["comparisonOperator"] == "GreaterThanOrEqualToThreshold" and alarm.inputs["threshold"] == 1


def test_disk_health_and_probe_alarms_watch_the_stack_metrics(run):
    found = alarms(run)
    upstreams = ("dockerhub", "ghcr", "quay", "k8s", "gcr")
    assert set(found) == {
        "system-status",
        "instance-status",
        "data-disk",
        "root-disk",
        "data-inodes",
        "root-inodes",
        "write-back-failed",
        "harbor-5xx",
        "harbor-unhealthy",
        "smoke-failed",
        "prewarm-failed",
        *(f"probe-{name}" for name in upstreams),
        *(f"upstream-{name}" for name in upstreams),
        *(f"quota-{name}" for name in upstreams),
        *(f"retention-{name}" for name in upstreams),
        "gc-failed",
        "no-alarm-subscriber",
        "public-path",
        "certificate-expiry",
        "snapshot-overdue",
    }
    assert found["data-disk"].inputs["dimensions"] == {"Stack": "dev", "Mount": "/data"}
    assert found["root-disk"].inputs["dimensions"] == {"Stack": "dev", "Mount": "/"}
    for key in ("data-disk", "root-disk"):
        assert found[key].inputs["metricName"] == "DiskUsedPercent" and found[key].inputs["threshold"] == 85
    unhealthy = found["harbor-unhealthy"].inputs
    assert unhealthy["metricName"] == "HarborHealthy" and unhealthy["comparisonOperator"] == "LessThanThreshold"
    assert unhealthy["evaluationPeriods"] == 5 and unhealthy["period"] == 60
    assert unhealthy["treatMissingData"] == "breaching", "a VM that stops reporting is not healthy"
    retention = found["retention-quay"].inputs
    assert retention["metricName"] == "RetentionFailed" and retention["dimensions"] == {"Stack": "dev", "Project": "quay-proxy"}
    assert retention["comparisonOperator"] == "GreaterThanThreshold" and retention["threshold"] == 0
    for key in ("data-disk", "root-disk", "harbor-unhealthy", "smoke-failed", "prewarm-failed"):
        assert found[key].inputs["namespace"] == "HarborCache/dev"
        assert found[key].inputs["alarmActions"] == [TOPIC_ARN] and found[key].inputs["okActions"] == [TOPIC_ARN]
        assert found[key].secret_keys() == set()


def test_thresholds_follow_the_config_and_bad_values_are_refused():
    changed = alarms(
        run_program({**dev_config(), "harbor-cache:alarmDiskUsedPercent": 70, "harbor-cache:alarmHarborUnhealthyMinutes": 15})
    )
    assert changed["data-disk"].inputs["threshold"] == 70 and changed["harbor-unhealthy"].inputs["evaluationPeriods"] == 15
    assert any("alarmDiskUsedPercent" in p and "50..99" in p for p in problems_of(alarmDiskUsedPercent=100))
    assert any("alarmEmail" in p and "'not-a-mail'" in p for p in problems_of(alarmEmail="not-a-mail"))


def test_metric_alarms_come_after_the_reporter_and_its_permission(run):
    urns = {r.urn: r.name for r in run.registrations}
    for key, alarm in alarms(run).items():
        depends = {urns.get(urn) for urn in alarm.dependencies}
        if key.endswith("-status"):
            continue
        assert {"harbor-install-timers", "harbor-alarms-put-metrics"} <= depends, key


def test_the_instance_role_may_put_metrics_into_its_namespace_only(run):
    """HarborCache/<stack>: IAM's condition sees the namespace, not the dimensions, so with one shared
    namespace one stack's role could put the metrics that keep another stack's alarms green."""
    policy = run.named("harbor-alarms-put-metrics")
    assert policy.inputs["role"] == "harbor-vm-role"
    statement, snapshots, subscribers = json.loads(policy.inputs["policy"])["Statement"]
    assert statement["Action"] == "cloudwatch:PutMetricData"
    assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": "HarborCache/dev"}}
    # The reporter's HoursSinceSnapshot: read-only, and an action without resource-level permissions.
    assert snapshots == {"Effect": "Allow", "Action": "ec2:DescribeSnapshots", "Resource": "*"}
    # The reporter's ConfirmedAlarmSubscribers: this stack's topic and nothing else.
    assert subscribers == {"Effect": "Allow", "Action": "sns:ListSubscriptionsByTopic", "Resource": TOPIC_ARN}
    prod = run_program(dev_config(), stack="prod")
    statement, _snapshots, _subscribers = json.loads(prod.named("harbor-alarms-put-metrics").inputs["policy"])["Statement"]
    assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": "HarborCache/prod"}}
    prod_alarms = {r.inputs["namespace"] for r in prod.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert prod_alarms == {"HarborCache/prod", "AWS/EC2"}, "each stack's alarms watch its own namespace"


def test_the_reporter_and_its_timer_are_installed_after_harbor_is_ready(run):
    steps = {r.name.removeprefix("harbor-install-"): r for r in run.of_type("command:remote:Command")}
    urns = {r.urn: r.name.removeprefix("harbor-install-") for r in run.registrations}
    for name in ("file-harbor-metrics.py", "file-harbor-metrics.service", "file-harbor-metrics.timer"):
        assert "ready" in {urns.get(u) for u in steps[name].dependencies}
    assert steps["file-harbor-metrics.py"].inputs["stdin"] == (FILES_DIR / "harbor-metrics.py").read_text()
    assert "install -D -m 0755" in steps["file-harbor-metrics.py"].inputs["create"]
    assert steps["timers"].inputs["create"].endswith("-- harbor-metrics.timer harbor-cache-exporter.service")
    assert steps["timers"].inputs["stdin"] == (FILES_DIR / "enable-timers.sh").read_text()


def test_what_is_reviewed_is_what_is_deployed(run):
    from components import render

    rendered = render.render_all(parse_settings(dev_raw(), stack="dev", region="eu-central-1"), alarm_topic_arn=TOPIC_ARN)
    steps = {r.name.removeprefix("harbor-install-file-"): r for r in run.of_type("command:remote:Command")}
    units = ("etc/systemd/system/harbor-metrics.service", "etc/systemd/system/harbor-metrics.timer")
    for path in ("opt/harbor/bin/harbor-metrics.py", *units):
        assert steps[Path(path).name].inputs["stdin"] == rendered[path]


# The units


def units(tmp_path: Path, mutate=None) -> subprocess.CompletedProcess:
    if shutil.which("systemd-analyze") is None:
        unavailable("needs systemd-analyze (Debian package systemd)")
    settings = parse_settings(dev_raw(), stack="dev", region="eu-central-1")
    paths = []
    for path, content in operate_files.operate_files(settings).items():
        if path.endswith((".service", ".timer")):
            target = tmp_path / Path(path).name
            target.write_text(mutate(content) if mutate else content)
            paths.append(str(target))
    return subprocess.run(["systemd-analyze", "verify", "--man=no", *paths], capture_output=True, text=True, cwd=tmp_path)


def test_units_pass_systemd_analyze_verify(tmp_path):
    result = units(tmp_path)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_systemd_analyze_verify_would_catch_a_broken_unit(tmp_path):
    result = units(tmp_path, lambda text: text.replace("OnUnitActiveSec=1min", "OnUnitActiveSec=every minute"))
    assert "Failed to parse timer value" in result.stderr


# The reporter against loopback IMDSv2 and CloudWatch

CREDENTIALS = {"AccessKeyId": "ASIAEXAMPLE", "SecretAccessKey": "c2VjcmV0LWtleS1leGFtcGxl", "Token": "session-token-example"}


class Loopback:
    """IMDSv2 (token by PUT, then the role and its credentials, as in the EC2 user guide), a
    CloudWatch endpoint that records each request, and Harbor's health endpoint."""

    def __init__(self, health: dict | None) -> None:
        self.requests: list[dict] = []
        self.health = health
        self.public_ipv4 = "127.0.0.1"
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_PUT(self):  # noqa: N802 - http.server's name
                if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    return self.answer(200, b"imds-token")
                return self.answer(400, b"")

            def do_GET(self):  # noqa: N802
                if self.path == "/api/v2.0/health":
                    if outer.health is None:
                        return self.answer(503, b"")
                    return self.answer(200, json.dumps(outer.health).encode())
                if self.headers.get("X-aws-ec2-metadata-token") != "imds-token":
                    return self.answer(401, b"")
                if self.path == "/latest/meta-data/public-ipv4":
                    return self.answer(200, outer.public_ipv4.encode())
                if self.path == "/latest/meta-data/iam/security-credentials/":
                    return self.answer(200, b"harbor-vm-role")
                if self.path == "/latest/meta-data/iam/security-credentials/harbor-vm-role":
                    return self.answer(200, json.dumps({"Code": "Success", **CREDENTIALS}).encode())
                return self.answer(404, b"")

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                return self.answer(200, b"{}")

            def answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def loopback():
    servers = []

    def start(health):
        servers.append(Loopback(health))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def reporter(
    server: Loopback, *args: str, data_mount: str = "/nonexistent", unit_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """The reporter against the loopback; `unit_env`: the Environment= of a rendered harbor-metrics.service first."""
    env = {
        **os.environ,
        **(unit_env or {}),
        "IMDS_ENDPOINT": server.url,
        "CLOUDWATCH_ENDPOINT": f"{server.url}/",
        "HEALTH_URL": f"{server.url}/api/v2.0/health",
        "AWS_REGION": "eu-central-1",
        "HARBOR_CACHE_STACK": "dev",
        "DATA_MOUNT": data_mount,
    }
    return subprocess.run([sys.executable, str(FILES_DIR / "harbor-metrics.py"), *args], env=env, capture_output=True, text=True)


def test_report_puts_disk_usage_and_health_signed_as_the_aws_sdk_signs(loopback, monkeypatch):
    server = loopback({"status": "healthy", "components": []})
    result = reporter(server, "report", data_mount="/")
    assert result.returncode == 0, result.stderr
    (request,) = server.requests
    headers = {key.lower(): value for key, value in request["headers"].items()}
    assert headers["x-amz-target"] == "GraniteServiceVersion20100801.PutMetricData"
    assert headers["content-type"] == "application/x-amz-json-1.0"
    assert headers["x-amz-security-token"] == CREDENTIALS["Token"]
    body = json.loads(request["body"])
    assert body["Namespace"] == "HarborCache/dev"
    by_name = {(m["MetricName"], json.dumps(m["Dimensions"])): m for m in body["MetricData"]}
    healthy = by_name[("HarborHealthy", json.dumps([{"Name": "Stack", "Value": "dev"}]))]
    assert healthy["Value"] == 1.0 and healthy["Unit"] == "Count"
    root = by_name[("DiskUsedPercent", json.dumps([{"Name": "Stack", "Value": "dev"}, {"Name": "Mount", "Value": "/"}]))]
    assert 0 < root["Value"] < 100 and root["Unit"] == "Percent"
    assert "HarborHealthy=1" in result.stdout
    assert_as_botocore_sends(server, request, monkeypatch)


def assert_as_botocore_sends(server: Loopback, request: dict, monkeypatch) -> None:
    """The recorded request is what the AWS SDK would send: botocore's SigV4 signature at the same
    instant, and its JSON-protocol serializer's body for PutMetricData."""
    import botocore.auth
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = {key.lower(): value for key, value in request["headers"].items()}
    body = json.loads(request["body"])
    # The same request signed by botocore at the same instant gives the same Authorization.
    when = datetime.datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ")
    aws_request = AWSRequest(
        method="POST",
        url=f"{server.url}/",
        data=request["body"],
        headers={"Content-Type": headers["content-type"], "X-Amz-Target": headers["x-amz-target"]},
    )
    signer = SigV4Auth(
        Credentials(CREDENTIALS["AccessKeyId"], CREDENTIALS["SecretAccessKey"], CREDENTIALS["Token"]),
        "monitoring",
        "eu-central-1",
    )
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *args, **kwargs: when)  # botocore's clock, fixed
    signer.add_auth(aws_request)
    assert headers["authorization"] == aws_request.headers["Authorization"], botocore.__version__

    # botocore's own serializer for CloudWatch's JSON protocol builds the same body.
    from botocore import serialize
    from botocore.loaders import Loader
    from botocore.model import ServiceModel

    model = ServiceModel(Loader().load_service_model("cloudwatch", "service-2"))
    built = serialize.create_serializer("json").serialize_to_request(body, model.operation_model("PutMetricData"))
    assert json.loads(built["body"]) == body


def test_an_ha_nodes_report_names_the_node_as_its_unit_tells_it(loopback, monkeypatch):
    """replicas > 1: node 2's rendered harbor-metrics.service gives the reporter its index, and every
    disk and health metric carries Node=2 beside Stack (one series per node, one alarm each); the
    request still signs and serialises as botocore's. One VM: no Node anywhere (unit and metrics)."""
    settings = parse_settings({**dev_raw(), "replicas": 3}, stack="dev", region="eu-central-1")
    environment = operate_files.metrics_service(settings, 2)["Service"]["Environment"]
    unit_env = dict(line.split("=", 1) for line in environment)
    assert unit_env[operate_files.METRICS_NODE_VARIABLE] == "2"
    server = loopback({"status": "healthy", "components": []})
    result = reporter(server, "report", unit_env={"HARBOR_CACHE_NODE": unit_env["HARBOR_CACHE_NODE"]})
    assert result.returncode == 0, result.stderr
    (request,) = server.requests
    data = json.loads(request["body"])["MetricData"]
    node = [{"Name": "Stack", "Value": "dev"}, {"Name": "Node", "Value": "2"}]
    assert sorted((m["MetricName"], json.dumps(m["Dimensions"])) for m in data) == [
        ("DiskUsedPercent", json.dumps([*node, {"Name": "Mount", "Value": "/"}])),
        ("HarborHealthy", json.dumps(node)),
        ("InodesUsedPercent", json.dumps([*node, {"Name": "Mount", "Value": "/"}])),
    ]
    assert_as_botocore_sends(server, request, monkeypatch)

    single = parse_settings(dev_raw(), stack="dev", region="eu-central-1")
    assert not any("HARBOR_CACHE_NODE" in line for line in operate_files.metrics_service(single)["Service"]["Environment"])
    # The probe's counts stay per stack even on an HA node 0 (its alarms watch Stack only).
    assert not any("HARBOR_CACHE_NODE" in line for line in operate_files.probe_service(settings)["Service"]["Environment"])


@pytest.mark.parametrize("health", [{"status": "unhealthy"}, None])
def test_report_says_unhealthy_when_harbor_is_not_healthy_or_not_answering(loopback, health):
    server = loopback(health)
    result = reporter(server, "report")
    assert result.returncode == 0, result.stderr
    body = json.loads(server.requests[0]["body"])
    assert [m["Value"] for m in body["MetricData"] if m["MetricName"] == "HarborHealthy"] == [0.0]
    assert all(m["Dimensions"][-1]["Value"] != "/nonexistent" for m in body["MetricData"]), "no data mount, no data metric"


def test_put_sends_the_given_counts(loopback):
    server = loopback(None)
    result = reporter(server, "put", "SmokeFailures", "2", "PrewarmFailures", "0")
    assert result.returncode == 0, result.stderr
    body = json.loads(server.requests[0]["body"])
    assert [(m["MetricName"], m["Value"]) for m in body["MetricData"]] == [("SmokeFailures", 2.0), ("PrewarmFailures", 0.0)]
    assert reporter(server, "put", "SmokeFailures").returncode == 2
