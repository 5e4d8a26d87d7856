"""HarborDashboard: one CloudWatch dashboard per stack, and a Grafana dashboard for those who scrape
Harbor's and harbor-cache's Prometheus endpoints; both built as data, serialised once.

What each shows and where it comes from: the reporter and the probe (files/harbor-metrics.py,
files/harbor-probe.py; namespace HarborCache, dimension Stack), EC2 and, with replicas > 1, the
load balancer (AWS/ApplicationELB). The CloudWatch body follows "Dashboard Body Structure and
Syntax" (CloudWatch API Reference): `widgets` of `type` metric/text/alarm with x, y, width, height
on a 24-column grid; a metric is [namespace, name, dimension name, value, ..., {options}] and a
metric-math expression [{"expression", "label", "id"}]. Hit rate = 100 * (1 - misses / requests)
of manifest GETs (files/harbor-metrics.py says how both are counted and what that leaves out).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.settings.settings import Settings
from components.vm.operate_files import METRICS_NAMESPACE_PREFIX, metrics_namespace

WIDTH = 24


@dataclass(frozen=True)
class HarborDashboardArgs:
    settings: Settings
    # replicas > 1: the load balancer's CloudWatch dimension (its ARN suffix).
    load_balancer: pulumi.Input[str] | None = None
    alarm_arns: tuple[pulumi.Input[str], ...] = ()
    # replicas > 1: the load balancer's ACM certificate (AWS/CertificateManager's dimension CertificateArn).
    certificate_arn: pulumi.Input[str] | None = None


def _metric(name: str, stack: str, label: str, stat: str = "Maximum", **dimensions: str) -> list:
    series: list = [METRICS_NAMESPACE_PREFIX, name, "Stack", stack]
    for key, value in dimensions.items():
        series += [key, value]
    return [*series, {"label": label, "stat": stat}]


def _widget(title: str, metrics: list, y: int, x: int = 0, width: int = 12, **properties: Any) -> dict:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": width,
        "height": 6,
        "properties": {"title": title, "view": "timeSeries", "stacked": False, "period": 300, "metrics": metrics, **properties},
    }


def cloudwatch_body(
    settings: Settings,
    region: str,
    load_balancer: str | None = None,
    alarm_arns: list[str] | None = None,
    certificate_arn: str | None = None,
) -> dict:
    stack = settings.stack_id
    projects = [upstream.project for upstream in settings.upstreams]
    nodes = [str(index) for index in range(settings.replicas)] if settings.high_availability else [None]

    hit_rate: list = []
    for index, project in enumerate(projects):
        requests, misses = f"r{index}", f"m{index}"
        hit_rate += [
            _metric("ProxyManifestRequests", stack, f"{project} requests", "Sum", Project=project)[:-1]
            + [{"id": requests, "visible": False, "stat": "Sum"}],
            _metric("ProxyManifestMisses", stack, f"{project} misses", "Sum", Project=project)[:-1]
            + [{"id": misses, "visible": False, "stat": "Sum"}],
            [{"expression": f"100 * (1 - {misses} / {requests})", "label": f"{project} hit rate %", "id": f"h{index}"}],
        ]
    widgets: list[dict] = [
        {
            "type": "text",
            "x": 0,
            "y": 0,
            "width": WIDTH,
            "height": 2,
            "properties": {
                "markdown": f"# harbor-cache {stack}\n{settings.url} · `python -m components.status --stack {stack}` "
                "says what is red and what to do"
            },
        },
        _widget(
            "Health (1 = healthy)",
            [
                *(
                    _metric("HarborHealthy", stack, f"Harbor{' node ' + n if n else ''}", "Minimum", **({"Node": n} if n else {}))
                    for n in nodes
                ),
                # HA: every node checks the load balancer's path into one series; its Maximum is the alarm's.
                _metric("PublicPathHealthy", stack, "public path (load balancer, any node)", "Maximum")
                if settings.high_availability
                else _metric("PublicPathHealthy", stack, "public path (TLS)", "Minimum"),
                # 0: every alarm reaches nobody (the alarm no-alarm-subscriber).
                _metric("ConfirmedAlarmSubscribers", stack, "confirmed alarm subscribers")[:-1]
                + [{"label": "confirmed alarm subscribers", "stat": "Maximum", "yAxis": "right"}],
            ],
            2,
            yAxis={"left": {"min": 0, "max": 1}},
        ),
        _widget(
            "Probe per upstream (1 = failed or not stored)",
            [_metric("ProbeFailed", stack, project, "Maximum", Project=project) for project in projects],
            2,
            x=12,
            period=3600,
        ),
        _widget("Hit rate of manifest pulls (%)", hit_rate, 8, yAxis={"left": {"min": 0, "max": 100}}, period=3600),
        _widget(
            "Bytes served, and manifests fetched upstream",
            [
                *(_metric("ProxyBytesServed", stack, f"{project} bytes served", "Sum", Project=project) for project in projects),
                *(
                    _metric("ProxyManifestMisses", stack, f"{project} fetched upstream", "Sum", Project=project)[:-1]
                    + [{"label": f"{project} fetched upstream", "stat": "Sum", "yAxis": "right"}]
                    for project in projects
                ),
            ],
            8,
            x=12,
            period=3600,
        ),
        _widget(
            "Disk and inodes used (%)",
            [
                _metric(
                    metric,
                    stack,
                    f"{metric.removesuffix('UsedPercent').lower()} {mount}{' node ' + n if n else ''}",
                    **({"Node": n} if n else {}),
                    Mount=mount,
                )
                for metric in ("DiskUsedPercent", "InodesUsedPercent")
                for mount in (settings.data_mount, "/")
                for n in nodes
            ],
            14,
            yAxis={"left": {"min": 0, "max": 100}},
        ),
        _widget(
            "Quota used per project (%)",
            [_metric("QuotaUsedPercent", stack, project, Project=project) for project in projects],
            14,
            x=12,
            yAxis={"left": {"min": 0, "max": 100}},
        ),
        _widget(
            "Upstream health (Harbor's registry status, 1 = healthy)",
            [
                _metric("UpstreamHealthy", stack, upstream.name, "Minimum", Upstream=upstream.name)
                for upstream in settings.upstreams
            ],
            20,
            yAxis={"left": {"min": 0, "max": 1}},
        ),
        _widget(
            "Failures: write-backs, 5xx, GC, retention",
            [
                _metric("WriteBackFailures", stack, "write-backs not kept", "Sum"),
                _metric("Harbor5xx", stack, "answers >= 500", "Sum"),
                _metric("GcFailed", stack, "last GC failed"),
                *(_metric("RetentionFailed", stack, f"retention {project} failed", Project=project) for project in projects),
            ],
            20,
            x=12,
        ),
    ]
    if not settings.high_availability:
        widgets.append(
            _widget(
                "Certificate days left, hours since the last snapshot",
                [
                    _metric("CertificateDaysLeft", stack, "certificate days left", "Minimum"),
                    _metric("HoursSinceSnapshot", stack, "hours since snapshot", "Maximum")[:-1]
                    + [{"label": "hours since snapshot", "stat": "Maximum", "yAxis": "right"}],
                ],
                26,
                width=WIDTH,
                period=3600,
            )
        )
    if load_balancer:
        widgets.append(
            _widget(
                "Load balancer: requests, 5xx, healthy nodes",
                [
                    ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", load_balancer, {"stat": "Sum", "label": "requests"}],
                    [
                        "AWS/ApplicationELB",
                        "HTTPCode_ELB_5XX_Count",
                        "LoadBalancer",
                        load_balancer,
                        {"stat": "Sum", "label": "5xx (ELB)"},
                    ],
                    [
                        "AWS/ApplicationELB",
                        "HTTPCode_Target_5XX_Count",
                        "LoadBalancer",
                        load_balancer,
                        {"stat": "Sum", "label": "5xx (Harbor)"},
                    ],
                ],
                26,
                width=WIDTH if not certificate_arn else 12,
            )
        )
    if certificate_arn:
        # ACM's own count of the load balancer's certificate (components/aws/alarms.py acm_certificate_alarm_spec).
        widgets.append(
            _widget(
                "Certificate days left (ACM)",
                [
                    [
                        "AWS/CertificateManager",
                        "DaysToExpiry",
                        "CertificateArn",
                        certificate_arn,
                        {"stat": "Minimum", "label": "certificate days left"},
                    ]
                ],
                26,
                x=12,
                period=86400,
            )
        )
    if alarm_arns:
        widgets.append(
            {
                "type": "alarm",
                "x": 0,
                "y": 32,
                "width": WIDTH,
                "height": 6,
                "properties": {"title": "Alarms", "alarms": alarm_arns},
            }
        )
    namespace = metrics_namespace(settings)  # each stack's own (HarborCache/<stack>)
    for widget in widgets:
        if widget["type"] == "metric":
            widget["properties"]["region"] = region
            for item in widget["properties"]["metrics"]:
                if item and item[0] == METRICS_NAMESPACE_PREFIX:
                    item[0] = namespace
    return {"widgets": widgets}


def grafana_dashboard(settings: Settings) -> dict:
    """Grafana's dashboard JSON model (schemaVersion 39) over Prometheus: harbor-cache's own series
    (harbor-metrics.py serve: harbor_cache_*, labels stack/project/upstream/mount/node) and Harbor's
    exporter (harbor_project_quota_usage_byte, src/pkg/exporter/project_collector.go)."""
    stack = settings.stack_id
    selector = f'stack="{stack}"'

    def panel(title: str, expressions: list[tuple[str, str]], x: int, y: int, unit: str = "short") -> dict:
        return {
            "type": "timeseries",
            "title": title,
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"x": x, "y": y, "w": 12, "h": 8},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [
                {"refId": chr(ord("A") + index), "expr": expr, "legendFormat": legend}
                for index, (expr, legend) in enumerate(expressions)
            ],
        }

    panels = [
        panel(
            "Health",
            [
                (f"harbor_cache_harbor_healthy{{{selector}}}", "harbor {{node}}"),
                (f"harbor_cache_public_path_healthy{{{selector}}}", "public path"),
            ],
            0,
            0,
        ),
        panel("Probe failed per project", [(f"harbor_cache_probe_failed{{{selector}}}", "{{project}}")], 12, 0),
        panel(
            "Hit rate of manifest pulls",
            [
                (
                    f"1 - sum by (project) (increase(harbor_cache_proxy_manifest_misses_total{{{selector}}}[1h]))"
                    f" / sum by (project) (increase(harbor_cache_proxy_manifest_requests_total{{{selector}}}[1h]))",
                    "{{project}}",
                )
            ],
            0,
            8,
            unit="percentunit",
        ),
        panel(
            "Bytes served per project",
            [(f"sum by (project) (rate(harbor_cache_proxy_bytes_served_total{{{selector}}}[5m]))", "{{project}}")],
            12,
            8,
            unit="Bps",
        ),
        panel("Disk used", [(f"harbor_cache_disk_used_percent{{{selector}}}", "{{mount}} {{node}}")], 0, 16, unit="percent"),
        panel(
            "Quota used per project",
            [
                (f"harbor_cache_quota_used_percent{{{selector}}}", "{{project}}"),
                ("harbor_project_quota_usage_byte", "{{project_name}} bytes"),
            ],
            12,
            16,
            unit="percent",
        ),
        panel("Upstream health", [(f"harbor_cache_upstream_healthy{{{selector}}}", "{{upstream}}")], 0, 24),
        panel("Certificate days left", [(f"harbor_cache_certificate_days_left{{{selector}}}", "days")], 12, 24),
    ]
    return {
        "title": f"harbor-cache {stack}",
        "uid": f"harbor-cache-{stack}"[:40],
        "tags": ["harbor-cache"],
        "timezone": "utc",
        "schemaVersion": 39,
        "time": {"from": "now-24h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"}]},
        "panels": panels,
    }


def dashboard_name_of(stack: str, organization: str, project: str) -> str:
    """Dashboard names are one namespace per account and region, and a PutDashboard of a taken name
    replaces that dashboard: the stack's name plus a hash of organization/project/stack keeps two
    stacks called alike apart. Up to 255 of A-Z a-z 0-9 - _ (PutDashboard, DashboardName)."""
    digest = hashlib.sha256(f"{organization}/{project}/{stack}".encode()).hexdigest()[:8]
    readable = "".join(c if c.isalnum() or c in "-_" else "-" for c in f"harbor-cache-{stack}")[:240]
    return f"{readable}-{digest}"


class HarborDashboard(pulumi.ComponentResource):
    def __init__(self, name: str, args: HarborDashboardArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("harbor-cache:index:HarborDashboard", name, None, opts)
        settings = args.settings
        body = pulumi.Output.all(
            pulumi.Output.from_input(args.load_balancer),
            pulumi.Output.from_input(args.certificate_arn),
            *[pulumi.Output.from_input(arn) for arn in args.alarm_arns],
        ).apply(
            lambda values: json.dumps(
                cloudwatch_body(settings, settings.region, values[0], list(values[2:]), certificate_arn=values[1])
            )
        )
        dashboard_name = dashboard_name_of(settings.stack, pulumi.get_organization(), pulumi.get_project())
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}", dashboard_name=dashboard_name, dashboard_body=body, opts=pulumi.ResourceOptions(parent=self)
        )
        console = f"https://{settings.region}.console.aws.amazon.com/cloudwatch/home?region={settings.region}"
        self.url = f"{console}#dashboards/dashboard/{dashboard_name}"
        self.grafana = json.dumps(grafana_dashboard(settings), indent=1)
        self.register_outputs({"url": self.url})
