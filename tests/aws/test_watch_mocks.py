"""Issue 19 under Pulumi's mocks: the deploy's smoke step proves what Harbor stored and reports
it, private projects are probed with the pull robot (its login never on a command line or plain
in state), and the alarms do not go green by silence."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from components.aws.alarm_specs import CERTIFICATE_DAYS_LEFT, SNAPSHOT_HOURS
from components.settings.settings import parse_settings
from components.vm import operate_files
from tests.conftest import unavailable
from tests.harbor.test_pull_credentials import PRIVATE
from tests.settings.test_settings import dev_raw
from tests.standins.pulumi_harness import dev_config, run_program

COMMAND = "command:remote:Command"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


@pytest.fixture(scope="module")
def private_run():
    return run_program({**dev_config(), "harbor-cache:upstreams": PRIVATE})


@pytest.fixture(scope="module")
def run():
    return run_program(dev_config())


def probe_steps(run) -> dict:
    return {r.name.removeprefix("harbor-probe-"): r for r in run.of_type(COMMAND) if r.name.startswith("harbor-probe-")}


def alarms(run) -> dict:
    return {r.name.removeprefix("harbor-alarms-"): r for r in run.of_type(ALARM)}


def depends(run, resource) -> set[str]:
    urns = {r.urn: r.name for r in run.registrations}
    return {urns.get(urn, urn) for urn in resource.dependencies}


def test_private_projects_are_probed_with_the_pull_robot_from_a_root_only_file(private_run):
    steps = probe_steps(private_run)
    credentials = steps["credentials"]
    assert (
        credentials.inputs["create"]
        == f"sudo install -D -m 0600 -o root -g root /dev/stdin {operate_files.PROBE_CREDENTIALS_PATH}"
    )
    assert "stdin" in credentials.secret_keys(), "the robot's secret is secret in state"
    assert credentials.inputs["stdin"] == "robot$harbor-cache-pull:Robot-Secret-0123456789abcdef\n"
    smoke = steps["smoke"]
    create = smoke.inputs["create"]
    assert create.startswith("sudo env PROBE_CONNECT_HOST=127.0.0.1 ")
    assert f"PROBE_ROBOT_FILE={operate_files.PROBE_CREDENTIALS_PATH}" in create
    assert "--verify-stored --private dockerhub-proxy --private quay-proxy" in create
    assert "Robot-Secret" not in create and "robot$" not in create
    assert "harbor-probe-credentials" in depends(private_run, smoke)
    assert "harbor-install-timers" in depends(private_run, smoke), "the reporter it puts results with is installed"
    service = steps["file-harbor-probe.service"].inputs["stdin"]
    assert f"LoadCredential=probe:{operate_files.PROBE_CREDENTIALS_PATH}" in service
    assert "--verify-stored --private dockerhub-proxy --private quay-proxy --expect-address imds" in service


def test_public_projects_stay_anonymous(run):
    steps = probe_steps(run)
    assert "credentials" not in steps
    assert "sudo" not in steps["smoke"].inputs["create"] and "--private" not in steps["smoke"].inputs["create"]
    assert "LoadCredential" not in steps["file-harbor-probe.service"].inputs["stdin"]


def test_the_robot_may_read_artifacts_and_says_so(private_run):
    robot = private_run.named("harbor-config-pull-robot")
    # A changed description is what updates a robot made before (the provider diffs inputs).
    assert robot.inputs["description"] == "harbor-cache: nodes pull the private proxy projects; the probe reads their artifacts"


def test_probe_alarms_treat_silence_as_failure_and_start_after_the_deploys_smoke(run):
    found = alarms(run)
    for key in ("smoke-failed", "prewarm-failed", "probe-dockerhub", "probe-gcr"):
        alarm = found[key].inputs
        assert alarm["treatMissingData"] == "breaching", key
        assert alarm["period"] == 7 * 3600 and alarm["evaluationPeriods"] == 1, "the 6 h interval plus an hour"
        assert "harbor-probe-smoke" in depends(run, found[key]), key
    assert found["probe-dockerhub"].inputs["dimensions"] == {"Stack": "dev", "Project": "dockerhub-proxy"}
    assert "dockerhub-proxy" in found["probe-dockerhub"].inputs["alarmDescription"]
    weekly = alarms(run_program({**dev_config(), "harbor-cache:prewarmIntervalHours": 168}))
    assert weekly["smoke-failed"].inputs["period"] == 604800, "CloudWatch's 7-day limit"


def test_no_alarm_clears_itself_by_silence(run):
    for key, alarm in alarms(run).items():
        assert alarm.inputs["treatMissingData"] != "notBreaching", key


def test_what_the_reporter_watches_alarms(run):
    found = alarms(run)
    upstream = found["upstream-dockerhub"].inputs
    assert upstream["metricName"] == "UpstreamHealthy" and upstream["dimensions"] == {"Stack": "dev", "Upstream": "dockerhub"}
    assert upstream["treatMissingData"] == "breaching" and upstream["period"] * upstream["evaluationPeriods"] == 900
    quota = found["quota-quay"].inputs
    assert quota["dimensions"] == {"Stack": "dev", "Project": "quay-proxy"} and quota["threshold"] == 85
    assert found["certificate-expiry"].inputs["threshold"] == CERTIFICATE_DAYS_LEFT
    assert found["snapshot-overdue"].inputs["threshold"] == SNAPSHOT_HOURS
    assert found["snapshot-overdue"].inputs["treatMissingData"] == "breaching"
    assert found["public-path"].inputs["treatMissingData"] == "breaching"
    assert found["data-inodes"].inputs["dimensions"] == {"Stack": "dev", "Mount": "/data"}


def test_ha_nodes_watch_their_own_inodes_write_backs_and_5xx():
    found = alarms(run_program({**dev_config(), "harbor-cache:replicas": 3}))
    for index in (1, 2):
        for key in ("data-inodes", "root-inodes", "write-back-failed", "harbor-5xx"):
            assert found[f"node{index}-{key}"].inputs["dimensions"]["Node"] == str(index)
    assert "snapshot-overdue" not in found, "S3: no DLM"
    # The load balancer's path, checked by every node: one alarm on the Maximum over them (test_ha_mocks.py).
    assert found["public-path"].inputs["statistic"] == "Maximum" and "node1-public-path" not in found


def test_ha_alarms_on_the_load_balancers_acm_certificate_and_shows_its_days_left():
    """ACM renews the load balancer's certificate itself, but not once its validation CNAME is gone:
    its own count of days left (AWS/CertificateManager DaysToExpiry, dimension CertificateArn: ACM User
    Guide, "Supported CloudWatch metrics") alarms and is on the dashboard, for the certificate the
    HTTPS listener serves."""
    import json

    from components.aws.alarms import ACM_CERTIFICATE_DAYS_LEFT

    ha = run_program({**dev_config(), "harbor-cache:replicas": 3})
    arn = ha.one("aws:acm/certificate:Certificate").outputs["arn"]
    assert ha.named("harbor-lb-https").inputs["certificateArn"] == arn
    expiry = alarms(ha)["certificate-expiry"].inputs
    assert (expiry["namespace"], expiry["metricName"], expiry["dimensions"]) == (
        "AWS/CertificateManager",
        "DaysToExpiry",
        {"CertificateArn": arn},
    )
    assert expiry["statistic"] == "Minimum" and expiry["comparisonOperator"] == "LessThanThreshold"
    assert expiry["threshold"] == ACM_CERTIFICATE_DAYS_LEFT < 60, "ACM starts renewing 60 days before expiry"
    assert expiry["treatMissingData"] == "missing", "ACM stops the metric at expiry: silence keeps ALARM"
    assert "CNAME" in expiry["alarmDescription"]
    body = json.loads(ha.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    shown = [m for w in body["widgets"] if w["type"] == "metric" for m in w["properties"]["metrics"]]
    assert ["AWS/CertificateManager", "DaysToExpiry", "CertificateArn", arn] in [m[:-1] for m in shown]
    # One VM: Traefik's certificate, read through the public path by the VM itself; no ACM.
    assert alarms(run_program(dev_config()))["certificate-expiry"].inputs["namespace"].startswith("HarborCache/")


def test_the_probe_unit_with_the_robots_credential_passes_systemd_analyze_verify(tmp_path: Path):
    if shutil.which("systemd-analyze") is None:
        unavailable("needs systemd-analyze (Debian package systemd)")
    settings = parse_settings({**dev_raw(), "upstreams": PRIVATE}, stack="dev", region="eu-central-1")
    paths = []
    for path, content in operate_files.probe_files(settings).items():
        if path.endswith((".service", ".timer")):
            (tmp_path / Path(path).name).write_text(content)
            paths.append(str(tmp_path / Path(path).name))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *paths], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_the_monitor_robot_may_only_list_registries_gc_and_retention_runs_and_reaches_the_reporter(run):
    monitor = run.named("harbor-config-monitor-robot")
    assert monitor.inputs["name"] == "harbor-cache-monitor"
    # Each proxy project by name (never "*"), and in it only the list of retention runs.
    assert monitor.inputs["projects"] == ["dockerhub-proxy", "ghcr-proxy", "quay-proxy", "k8s-proxy", "gcr-proxy"]
    assert monitor.inputs["project_access"] == [{"resource": "tag-retention", "action": "list"}]
    assert monitor.inputs["system_access"] == [
        {"resource": "registry", "action": "list"},
        {"resource": "garbage-collection", "action": "list"},
    ]
    step = probe_steps(run)["monitor-credentials"]
    expected = f"sudo install -D -m 0600 -o root -g root /dev/stdin {operate_files.MONITOR_CREDENTIALS_PATH}"
    assert step.inputs["create"] == expected and "stdin" in step.secret_keys()
    assert step.inputs["stdin"].startswith("robot$harbor-cache-monitor:")
    # The upstream alarms need what the robot reads: they come after the file is written.
    assert "harbor-probe-monitor-credentials" in depends(run, alarms(run)["upstream-dockerhub"])


def test_the_reporter_unit_reads_every_source_and_enable_timers_makes_the_credential_first():
    from components.vm.files import FILES_DIR

    settings = parse_settings(dev_raw(), stack="dev", region="eu-central-1")
    service = operate_files.metrics_service(settings)["Service"]
    environment = dict(line.split("=", 1) for line in service["Environment"])
    assert environment["MONITOR_CREDENTIALS"] == "%d/monitor"
    assert service["LoadCredential"] == f"monitor:{operate_files.MONITOR_CREDENTIALS_PATH}"
    assert environment["PUBLIC_URL"] == "https://harbor.dev.example.com" and environment["SNAPSHOT_TAG"] == "dev"
    assert environment["PROXY_PROJECTS"] == "dockerhub-proxy,ghcr-proxy,quay-proxy,k8s-proxy,gcr-proxy"
    assert environment["HARBOR_LOG_DIR"] == "/var/log/harbor" and service["StateDirectory"] == "harbor-metrics"
    enable = (FILES_DIR / "enable-timers.sh").read_text()
    assert f"monitor_credentials={operate_files.MONITOR_CREDENTIALS_PATH}" in enable
    # The reporter's default tag key is the one the DLM policy targets.
    from components.aws.tagging import SNAPSHOT_TAG

    assert f'"SNAPSHOT_TAG_KEY", "{SNAPSHOT_TAG}"' in (FILES_DIR / "harbor-metrics.py").read_text()
    ha = operate_files.metrics_service(parse_settings({**dev_raw(), "replicas": 3}, stack="dev", region="eu-central-1"))
    assert not any(line.startswith(("PUBLIC_CONNECT_HOST", "SNAPSHOT_TAG")) for line in ha["Service"]["Environment"])
    assert "PUBLIC_URL=https://harbor.dev.example.com" in ha["Service"]["Environment"], "HA: the load balancer's path"


def test_up_says_loudly_when_nobody_hears_the_alarms(caplog):
    import logging

    with caplog.at_level(logging.WARNING):
        run_program(dev_config())
    assert any("the alarm topic has no subscriber" in record.getMessage() for record in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        run_program({**dev_config(), "harbor-cache:alarmEmail": "ops@cache-fixture.net"})
    said = [record.getMessage() for record in caplog.records]
    assert not any("no subscriber" in message for message in said)
    assert any("the alarm e-mail to ops@cache-fixture.net is not confirmed yet" in message for message in said), said


def test_metrics_alarms_and_snapshot_tags_name_the_stack_uniquely():
    # Two stacks called "dev" in one account (other organizations or projects) must not share a
    # metric series or a snapshot tag: they would hide each other's failures and cross-snapshot.
    run = run_program(dev_config(), organization="acme")
    assert run.outputs["stackId"] == "acme/harbor-cache/dev"
    volume = run.named("harbor-vm-data")
    assert volume.inputs["tags"]["harbor-cache:snapshot"] == "acme/harbor-cache/dev"
    policy = run.named("harbor-vm-snapshots").inputs["policyDetails"]
    assert policy["targetTags"] == {"harbor-cache:snapshot": "acme/harbor-cache/dev"}
    for alarm in alarms(run).values():
        if alarm.inputs["namespace"] == "HarborCache/dev":
            assert alarm.inputs["dimensions"]["Stack"] == "acme/harbor-cache/dev", alarm.name
    install = {r.name: r for r in run.of_type(COMMAND)}["harbor-install-file-harbor-metrics.service"]
    assert "HARBOR_CACHE_STACK=acme/harbor-cache/dev" in install.inputs["stdin"]
    assert "SNAPSHOT_TAG=acme/harbor-cache/dev" in install.inputs["stdin"]
    other = parse_settings(dev_raw(), stack="dev", region="eu-central-1", organization="other")
    assert other.stack_id != "acme/harbor-cache/dev"
    # Offline (no organization): the stack's name, as before.
    assert parse_settings(dev_raw(), stack="dev", region="eu-central-1").stack_id == "dev"


TOPIC_ARN = "arn:aws:sns:eu-central-1:123456789012:harbor-alarms-topic"


def test_nobody_confirmed_on_the_alarm_topic_alarms_and_shows_on_the_dashboard(run):
    """Issue 19 point 6: an alarm topic without a confirmed subscriber (none by default; an e-mail
    left unconfirmed) alarms, also when the reporter stops or cannot read the topic."""
    alarm = alarms(run)["no-alarm-subscriber"]
    assert {key: alarm.inputs[key] for key in ("namespace", "metricName", "dimensions", "statistic")} == {
        "namespace": "HarborCache/dev",
        "metricName": "ConfirmedAlarmSubscribers",
        "dimensions": {"Stack": "dev"},
        "statistic": "Maximum",
    }
    assert alarm.inputs["comparisonOperator"] == "LessThanThreshold" and alarm.inputs["threshold"] == 1
    assert alarm.inputs["treatMissingData"] == "breaching", "a reporter that stops must not look green"
    assert alarm.inputs["alarmActions"] == [TOPIC_ARN] and alarm.inputs["okActions"] == [TOPIC_ARN]
    assert "harbor-alarms-put-metrics" in depends(run, alarm), "after the permission that lets the reporter count"
    # The reporter is told which topic: its unit, written once the topic exists.
    unit = {r.name: r for r in run.of_type(COMMAND)}["harbor-install-file-harbor-metrics.service"]
    assert f"ALARM_TOPIC_ARN={TOPIC_ARN}" in unit.inputs["stdin"]
    assert "harbor-alarms-topic" in depends(run, unit)
    # The dashboard: the alarm in its alarm widget, the count beside Harbor's health.
    registered = run.one("aws:cloudwatch/dashboard:Dashboard")
    dashboard = json.loads(registered.inputs["dashboardBody"])
    assert [w for w in dashboard["widgets"] if w["type"] == "alarm"], "the alarm widget"
    # The mocks give alarms no ARN: that the widget's list holds this alarm's shows in where it came from.
    assert "harbor-alarms-no-alarm-subscriber" in {
        {r.urn: r.name for r in run.registrations}.get(urn) for urn in registered.property_dependencies["dashboardBody"]
    }
    health = [w for w in dashboard["widgets"] if w["properties"].get("title") == "Health (1 = healthy)"][0]
    assert any(item[1] == "ConfirmedAlarmSubscribers" for item in health["properties"]["metrics"])


def test_the_reporter_may_list_the_subscriptions_of_its_own_topic_only(run):
    policy = json.loads(run.named("harbor-alarms-put-metrics").inputs["policy"])
    sns = [s for s in policy["Statement"] if any(str(a).startswith("sns:") for a in [s["Action"]])]
    assert sns == [{"Effect": "Allow", "Action": "sns:ListSubscriptionsByTopic", "Resource": TOPIC_ARN}]


def test_ha_every_node_counts_the_topic_and_one_alarm_takes_the_maximum():
    run = run_program({**dev_config(), "harbor-cache:replicas": 3})
    found = alarms(run)
    assert [key for key in found if key.endswith("no-alarm-subscriber")] == ["no-alarm-subscriber"]
    assert found["no-alarm-subscriber"].inputs["statistic"] == "Maximum"
    assert "Node" not in found["no-alarm-subscriber"].inputs["dimensions"]
    units = [r for r in run.of_type(COMMAND) if r.name.endswith("-file-harbor-metrics.service")]
    assert len(units) == 3
    assert all(f"ALARM_TOPIC_ARN={TOPIC_ARN}" in unit.inputs["stdin"] for unit in units)
