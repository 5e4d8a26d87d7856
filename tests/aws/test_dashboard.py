"""The CloudWatch dashboard and the Grafana dashboard (issue 19): built as data, showing only series
that the reporter and the probe really put (their names are read from the scripts), with the
dimensions they put them with; names unique per stack."""

from __future__ import annotations

import json
import re
import runpy

import pytest

from components.aws.dashboard import cloudwatch_body, dashboard_name_of, grafana_dashboard
from components.vm.files import FILES_DIR
from tests.settings.test_settings import parse
from tests.standins.pulumi_harness import dev_config, run_program

REPORTER = runpy.run_path(str(FILES_DIR / "harbor-metrics.py"))
SCRIPTS = (FILES_DIR / "harbor-metrics.py").read_text() + (FILES_DIR / "harbor-probe.py").read_text()


def series(body: dict) -> list[list]:
    return [m for w in body["widgets"] if w["type"] == "metric" for m in w["properties"]["metrics"]]


@pytest.mark.parametrize("overrides", [{}, {"replicas": 3}])
def test_every_harbor_cache_series_is_one_the_vm_puts(overrides):
    settings = parse(**overrides)
    certificate = "arn:aws:acm:eu-central-1:1:certificate/c" if settings.high_availability else None
    body = cloudwatch_body(
        settings, "eu-central-1", "app/harbor/0123456789abcdef", ["arn:aws:cloudwatch:x:1:alarm:a"], certificate
    )
    json.dumps(body)  # data all the way down
    for widget in body["widgets"]:
        assert {"type", "x", "y", "width", "height", "properties"} <= set(widget)
        assert widget["x"] >= 0 and widget["x"] + widget["width"] <= 24
    ids = set()
    for item in series(body):
        if isinstance(item[0], dict):  # metric math: what it reads must be on the widget
            assert set(re.findall(r"\b[rm]\d+\b", item[0]["expression"])) <= ids
            continue
        options = item[-1]
        ids |= {options["id"]} if "id" in options else set()
        namespace, name, *dimensions = item[:-1]
        if namespace != "HarborCache/dev":
            assert namespace == "AWS/ApplicationELB" or (namespace, name) == ("AWS/CertificateManager", "DaysToExpiry")
            continue
        assert f'"{name}' in SCRIPTS or f"{name}@" in SCRIPTS or f'"{name}"' in SCRIPTS, f"{name}: no script puts it"
        pairs = dict(zip(dimensions[0::2], dimensions[1::2], strict=True))
        assert pairs["Stack"] == "dev" and set(pairs) <= {"Stack", "Node", "Mount", "Project", "Upstream"}
        if settings.high_availability and name in ("HarborHealthy", "DiskUsedPercent"):
            assert "Node" in pairs, "HA: each node's own series"
    names = {item[1] for item in series(body) if not isinstance(item[0], dict)}
    assert {"ProbeFailed", "ProxyManifestRequests", "ProxyManifestMisses", "QuotaUsedPercent", "UpstreamHealthy"} <= names
    assert ("CertificateDaysLeft" in names) is not settings.high_availability
    (path,) = [item for item in series(body) if not isinstance(item[0], dict) and item[1] == "PublicPathHealthy"]
    assert path[-1]["stat"] == ("Maximum" if settings.high_availability else "Minimum"), "HA: any node through the path"


def test_the_grafana_dashboard_reads_what_the_reporter_serves():
    settings = parse()
    dashboard = grafana_dashboard(settings)
    json.dumps(dashboard)
    body_names = {item[1] for item in series(cloudwatch_body(settings, "eu-central-1")) if not isinstance(item[0], dict)}
    served = {REPORTER["prometheus_name"](name) for name in body_names}
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    for used in {name for expr in expressions for name in re.findall(r"\bharbor_cache_\w+", expr)}:
        assert used in served, f"{used} is not a series harbor-metrics.py serves"
    # Harbor's own exporter (src/pkg/exporter/project_collector.go: harbor_project_quota_usage_byte{project_name}).
    assert any("harbor_project_quota_usage_byte" in expr for expr in expressions)
    assert all(panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"} for panel in dashboard["panels"])


def test_dashboards_are_registered_and_output_with_a_name_unique_per_stack():
    run = run_program(dev_config())
    dashboard = run.one("aws:cloudwatch/dashboard:Dashboard")
    body = json.loads(dashboard.inputs["dashboardBody"])
    # The alarm widget lists the program's alarms by the ARN pulumi-aws answers for each (review 22g T1: the mocks
    # once answered none, and the widget held nulls).
    (listed,) = [widget["properties"]["alarms"] for widget in body["widgets"] if widget["type"] == "alarm"]
    alarms = run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert listed and sorted(listed) == sorted(alarm.outputs["arn"] for alarm in alarms)
    assert all(re.fullmatch(r"arn:aws:cloudwatch:eu-central-1:\d{12}:alarm:harbor-alarms-[\w-]+", arn) for arn in listed), listed
    assert dashboard.inputs["dashboardName"] == run.outputs["dashboardUrl"].rsplit("/", 1)[1]
    assert json.loads(run.outputs["grafanaDashboard"])["title"] == "harbor-cache dev"
    assert dashboard_name_of("dev", "acme", "harbor-cache") != dashboard_name_of("dev", "other", "harbor-cache")
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,255}", dashboard_name_of("team.dev", "acme", "harbor-cache"))
