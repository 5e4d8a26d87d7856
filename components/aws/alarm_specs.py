"""The alarms that watch the cache itself, as data: the scheduled probe (per proxy project, silence
over the probe's interval counts as failure) and what the reporter reads beyond disk and health
(upstream health, quota, retention, GC, the public path and its certificate, the daily snapshot,
whether anyone confirmed a subscription to the alarm topic). The
AlarmSpec shape every alarm of HarborAlarms is built from lives here too."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.settings.settings import Settings
from components.vm.operate_files import metrics_namespace


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


# Traefik (lego) renews a Let's Encrypt certificate 30 days before it expires: 21 days left means
# renewal has failed for 9 days (DNS-01 permissions, CAA, rate limits), well before clients break.
CERTIFICATE_DAYS_LEFT = 21
# DLM takes one snapshot a day (03:30 UTC): 26 h without a completed one means a day was missed.
SNAPSHOT_HOURS = 26
# CloudWatch: Period x EvaluationPeriods at most 7 days (PutMetricAlarm, Period).
MAX_EVALUATION_SECONDS = 7 * 86400


def probe_period(settings: Settings) -> int:
    """The probe runs every prewarmIntervalHours (plus up to 5 min of randomized delay): one period
    of that plus an hour holds at least one run, so an empty period means the probe stopped, hung
    or could not report."""
    return min((settings.prewarm_interval_hours + 1) * 3600, MAX_EVALUATION_SECONDS)


def probe_alarm_specs(settings: Settings) -> list[AlarmSpec]:
    """The scheduled probe (files/harbor-probe.py, node 0): a failure, or no result for a whole
    period (the probe stopped, hung or could not report), alarms; silence never clears an alarm."""
    stack = {"Stack": settings.stack_id}
    hours = settings.prewarm_interval_hours
    period = probe_period(settings)
    specs = [
        AlarmSpec(
            "smoke-failed",
            f"A scheduled pull through a proxy project failed, or the probe reported nothing for {hours + 1} h: "
            "journalctl -u harbor-probe names the broken link",
            metrics_namespace(settings),
            "SmokeFailures",
            stack,
            "Maximum",
            "GreaterThanThreshold",
            0,
            period,
            1,
            "breaching",
        ),
        AlarmSpec(
            "prewarm-failed",
            f"An image of the prewarm list could not be pulled into the cache, or no report for {hours + 1} h: "
            "journalctl -u harbor-probe",
            metrics_namespace(settings),
            "PrewarmFailures",
            stack,
            "Maximum",
            "GreaterThanThreshold",
            0,
            period,
            1,
            "breaching",
        ),
    ]
    for upstream_name, image in settings.smoke_images:
        project = image.split("/", 1)[0]
        specs.append(
            AlarmSpec(
                f"probe-{upstream_name}",
                f"Project {project}: the probe's pull of {image} failed or Harbor did not store it (streamed "
                f"only), or no result for {hours + 1} h: journalctl -u harbor-probe says what Harbor answered",
                metrics_namespace(settings),
                "ProbeFailed",
                {**stack, "Project": project},
                "Maximum",
                "GreaterThanThreshold",
                0,
                period,
                1,
                "breaching",
            )
        )
    return specs


def watch_alarm_specs(settings: Settings) -> list[AlarmSpec]:
    """What the reporter reads beyond disk and health (files/harbor-metrics.py): upstream health,
    quota use, retention runs per project, GC, the public path and its certificate (one VM: Traefik's;
    HA: the load balancer's own alarms, ACM's days left among them: components/aws/alarms.py), and the
    daily snapshot (one VM: DLM)."""
    stack = {"Stack": settings.stack_id}
    percent = settings.alarm_disk_used_percent
    specs = []
    for upstream in settings.upstreams:
        specs.append(
            AlarmSpec(
                f"upstream-{upstream.name}",
                f"Harbor marks upstream {upstream.name} ({upstream.registry_host}) unhealthy for 15 minutes (or no "
                f"report): project {upstream.project} serves only what it cached; check egress, credentials, rate limits",
                metrics_namespace(settings),
                "UpstreamHealthy",
                {**stack, "Upstream": upstream.name},
                "Minimum",
                "LessThanThreshold",
                1,
                300,
                3,
                "breaching",
            )
        )
        specs.append(
            AlarmSpec(
                f"quota-{upstream.name}",
                f"Project {upstream.project} has used more than {percent}% of its storage quota: at 100% Harbor stops "
                "caching (pulls are streamed, nothing kept); raise upstreams[].storageQuotaGb or tighten retention",
                metrics_namespace(settings),
                "QuotaUsedPercent",
                {**stack, "Project": upstream.project},
                "Maximum",
                "GreaterThanThreshold",
                percent,
                300,
                1,
                # No limit, no metric: nothing to say.
                "missing",
            )
        )
        specs.append(
            AlarmSpec(
                f"retention-{upstream.name}",
                f"Project {upstream.project}: the last retention run ended in Error or was stopped, or the reporter "
                "cannot see the project's retention policy (monitor robot): nothing is removed and GC frees nothing; "
                "Harbor's UI, the project's Policy tab, has the run's log",
                metrics_namespace(settings),
                "RetentionFailed",
                {**stack, "Project": upstream.project},
                "Maximum",
                "GreaterThanThreshold",
                0,
                3600,
                1,
                "missing",
            )
        )
    specs.append(
        AlarmSpec(
            "gc-failed",
            "Harbor's last garbage collection ended in Error: the disk only grows; Harbor's UI, Clean Up, GC history has the log",
            metrics_namespace(settings),
            "GcFailed",
            stack,
            "Maximum",
            "GreaterThanThreshold",
            0,
            3600,
            1,
            "missing",
        )
    )
    specs.append(
        AlarmSpec(
            "no-alarm-subscriber",
            "Nobody has confirmed a subscription to the alarm topic (or no report): every alarm reaches nobody; "
            "confirm the mail AWS sent (its link expires after 3 days) or subscribe to the output alarmTopicArn",
            metrics_namespace(settings),
            "ConfirmedAlarmSubscribers",
            stack,
            # Every node counts the same topic (HA): the highest count.
            "Maximum",
            "LessThanThreshold",
            1,
            3600,
            1,
            # A reporter that stops, or cannot read the topic, must not look as if someone listened.
            "breaching",
        )
    )
    if settings.high_availability:
        # Every node checks the load balancer's path and sends the same series (no Node dimension):
        # the Maximum over them is 1 while any node gets through, so one node's own egress trouble
        # does not page and all failing (or none reporting) does.
        specs.append(
            AlarmSpec(
                "public-path",
                f"https://{settings.hostname}/api/v2.0/health through the load balancer (DNS, its listener and ACM "
                "certificate) fails from every node (or no report) for 5 minutes: see the load balancer's target "
                "health, its security group and the name's alias record",
                metrics_namespace(settings),
                "PublicPathHealthy",
                stack,
                "Maximum",
                "LessThanThreshold",
                1,
                60,
                5,
                "breaching",
            )
        )
    if not settings.high_availability:
        specs += [
            AlarmSpec(
                "public-path",
                f"https://{settings.hostname}/api/v2.0/health through Traefik and TLS fails (or no report) for 5 minutes: "
                "see docker logs traefik and the certificate",
                metrics_namespace(settings),
                "PublicPathHealthy",
                stack,
                "Minimum",
                "LessThanThreshold",
                1,
                60,
                5,
                "breaching",
            ),
            AlarmSpec(
                "certificate-expiry",
                f"The certificate of {settings.hostname} expires in less than {CERTIFICATE_DAYS_LEFT} days (or no longer "
                "verifies): renewal is failing; see docker logs traefik (ACME, DNS-01)",
                metrics_namespace(settings),
                "CertificateDaysLeft",
                stack,
                "Minimum",
                "LessThanThreshold",
                CERTIFICATE_DAYS_LEFT,
                3600,
                1,
                "missing",
            ),
            AlarmSpec(
                "snapshot-overdue",
                f"No snapshot of the data volume completed in {SNAPSHOT_HOURS} h (or no report): the daily recovery point "
                "is missing; see the DLM policy's state and the stack's alarm topic for DLM errors",
                metrics_namespace(settings),
                "HoursSinceSnapshot",
                stack,
                "Minimum",
                "GreaterThanThreshold",
                SNAPSHOT_HOURS,
                3600,
                1,
                "breaching",
            ),
        ]
    return specs
