"""`python -m components.status --stack <stack> [--json]`: is the cache healthy, in seconds, from the
deploying machine with the stack's credentials.

It reads the stack's outputs (`pulumi stack output --json --show-secrets --stack <stack>`, or
`--outputs-file` with that JSON), then asks Harbor's API as admin (health, version, each upstream's
status, quota use per project, the last garbage collection and each proxy project's last retention
run), the public name's TLS certificate, and CloudWatch and SNS with the caller's AWS credentials
(boto3's usual chain; AWS_ENDPOINT_URL is honoured): each proxy project's last probe and hit rate
over the last day, disk use, alarms in ALARM, and whether anyone receives the alarm topic. Every
check says ok, warn or red, what it saw, and for anything not ok what to do. Exit 1 when something
is red; `--json` prints the same as data.
"""

# ruff: noqa: S310 - the URLs are the stack's own https URL from its outputs.
from __future__ import annotations

import argparse
import base64
import datetime
import functools
import json
import runpy
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CERTIFICATE_RED_DAYS = 21
CERTIFICATE_WARN_DAYS = 30
# Each stack's own CloudWatch namespace (components/vm/operate_files.py metrics_namespace).
NAMESPACE_PREFIX = "HarborCache"
REPORTER_PATH = Path(__file__).resolve().parents[1] / "files" / "harbor-metrics.py"


@dataclass
class Check:
    name: str
    state: str  # ok | warn | red
    detail: str
    fix: str = ""


def stack_outputs(stack: str, outputs_file: str | None) -> dict[str, Any]:
    if outputs_file:
        with open(outputs_file) as handle:
            return json.load(handle)
    command = ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", stack]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError:
        raise SystemExit(
            "the pulumi CLI is not on PATH: install it, or pass --outputs-file with `pulumi stack output --json`"
        ) from None
    if done.returncode != 0:
        raise SystemExit(f"pulumi stack output --stack {stack} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


class Harbor:
    def __init__(self, url: str, password: str, ca_file: str | None) -> None:
        self.url = url.rstrip("/")
        self.auth = "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()
        self.context = ssl.create_default_context(cafile=ca_file)

    def get(self, path: str) -> Any:
        request = urllib.request.Request(
            f"{self.url}/api/v2.0{path}", headers={"Authorization": self.auth, "Accept": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=15, context=self.context) as answer:
            return json.loads(answer.read() or b"null")


def certificate_days(url: str, ca_file: str | None) -> float:
    parts = urlsplit(url)
    context = ssl.create_default_context(cafile=ca_file)
    with (
        socket.create_connection((parts.hostname, parts.port or 443), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=parts.hostname) as tls,
    ):
        expires = ssl.cert_time_to_seconds(tls.getpeercert()["notAfter"])
    return round((expires - datetime.datetime.now(datetime.UTC).timestamp()) / 86400, 1)


def certificate_fixes(outputs: dict[str, Any]) -> tuple[str, str]:
    """What to do when renewal fails, and when TLS does not verify: one VM's Traefik (ACME DNS-01), or,
    with a load balancer (HA: the output loadBalancerDnsName), ACM, which renews 60 days before expiry
    only while its validation CNAME is in the zone (ACM User Guide, "Renewal for domains validated by DNS")."""
    if outputs.get("loadBalancerDnsName"):
        renewal = (
            "ACM's renewal is failing: aws acm describe-certificate (RenewalSummary) says why; most often the "
            "validation CNAME is gone from the zone (pulumi up puts it back)"
        )
        return renewal, "TLS does not verify through the load balancer: does the name still lead to it? (dig, the CAA record)"
    return (
        "renewal is failing: docker logs traefik on the VM (ACME, DNS-01, CAA)",
        "TLS does not verify: Traefik's default certificate? docker logs traefik",
    )


def harbor_checks(outputs: dict[str, Any], ca_file: str | None) -> list[Check]:
    url = outputs["url"]
    checks: list[Check] = []
    renewal_fix, tls_fix = certificate_fixes(outputs)
    try:
        days = certificate_days(url, ca_file)
        state = "red" if days < CERTIFICATE_RED_DAYS else "warn" if days < CERTIFICATE_WARN_DAYS else "ok"
        checks.append(
            Check("certificate", state, f"{urlsplit(url).hostname}: {days} days left", "" if state == "ok" else renewal_fix)
        )
    except (OSError, ssl.SSLError) as error:
        checks.append(Check("certificate", "red", f"{url}: {error}", tls_fix))
    harbor = Harbor(url, outputs.get("harborAdminPassword", ""), ca_file)
    try:
        health = harbor.get("/health")
    except (OSError, ValueError) as error:
        return [
            *checks,
            Check(
                "harbor",
                "red",
                f"{url}/api/v2.0/health: {error}",
                "is the VM up? see the alarm topic; ssh in: journalctl -u harbor",
            ),
        ]
    broken = [c["name"] for c in health.get("components", []) if c.get("status") != "healthy"]
    checks.append(
        Check(
            "harbor",
            "ok" if health.get("status") == "healthy" else "red",
            "healthy" if not broken else f"unhealthy: {', '.join(broken)}",
            ""
            if not broken
            else "ssh to the VM: docker compose -f /opt/harbor/harbor/docker-compose.yml ps; journalctl -u harbor",
        )
    )
    try:
        checks.append(Check("version", "ok", str(harbor.get("/systeminfo").get("harbor_version", "unknown"))))
        for registry in harbor.get("/registries?page_size=100") or []:
            healthy = registry.get("status") == "healthy"
            checks.append(
                Check(
                    f"upstream {registry['name']}",
                    "ok" if healthy else "red",
                    f"{registry.get('url', '')}: {registry.get('status', 'unknown')}",
                    ""
                    if healthy
                    else "Harbor serves only what it cached: check the VM's egress, the upstream's credentials and rate limits",
                )
            )
        names = {project for project in (outputs.get("projects") or {}).values()}
        for quota in harbor.get("/quotas?page_size=100") or []:
            project = (quota.get("ref") or {}).get("name", "")
            if names and project not in names:
                continue
            hard, used = (quota.get("hard") or {}).get("storage", -1), (quota.get("used") or {}).get("storage", 0)
            if hard and hard > 0:
                percent = round(100.0 * used / hard, 1)
                state = "red" if percent >= 90 else "warn" if percent >= 80 else "ok"
                fix = (
                    "" if state == "ok" else "at 100% Harbor stops caching: raise upstreams[].storageQuotaGb or tighten retention"
                )
                checks.append(Check(f"quota {project}", state, f"{used / 2**30:.1f} of {hard / 2**30:.1f} GiB ({percent}%)", fix))
            else:
                checks.append(Check(f"quota {project}", "ok", f"{used / 2**30:.1f} GiB used, no limit"))
        history = harbor.get("/system/gc?page=1&page_size=1&sort=-creation_time") or []
        if history:
            last = history[0]
            failed = last.get("job_status") in ("Error", "Stopped")
            checks.append(
                Check(
                    "garbage collection",
                    "red" if failed else "ok",
                    f"last run {last.get('creation_time', '?')}: {last.get('job_status', '?')}",
                    "" if not failed else "Harbor's UI: Administration > Clean Up > GC history has the log",
                )
            )
        else:
            checks.append(Check("garbage collection", "warn", "never ran", "is gcSchedule set? (the disk only grows without GC)"))
        for project in sorted(names):
            checks.append(retention_check(harbor, project))
    except (OSError, ValueError, KeyError) as error:
        checks.append(Check("harbor api", "red", str(error), "the admin password in the stack outputs no longer works?"))
    return checks


def retention_check(harbor: Harbor, project: str) -> Check:
    """The project's last finished retention run (GET /retentions/{id}/executions, newest start first;
    an execution is Running until it ends Success, Error or Stopped: Harbor's pkg/task), the policy id
    from the project's metadata `retention_id`. Without retention nothing pulled is ever removed."""
    name = f"retention {project}"
    policy = ((harbor.get(f"/projects/{project}") or {}).get("metadata") or {}).get("retention_id", "")
    if not policy:
        return Check(name, "red", "no retention policy", "pulumi up sets it again (upstreams[].retentionDays)")
    runs = harbor.get(f"/retentions/{int(policy)}/executions?page=1&page_size=20") or []
    finished = [run for run in runs if run.get("status") in ("Success", "Error", "Stopped")]
    if not finished:
        return Check(name, "ok", "no finished run yet")
    last = finished[0]
    failed = last["status"] != "Success"
    return Check(
        name,
        "red" if failed else "ok",
        f"last run {last.get('start_time', '?')}: {last['status']}",
        "Harbor's UI: the project's Policy tab, Tag Retention, has the run's log" if failed else "",
    )


def subscription_confirmed(subscription_arn: str) -> bool:
    """The VM's reporter's own test (files/harbor-metrics.py subscription_confirmed), so `status` and
    the no-alarm-subscriber alarm never disagree. The reporter is a standalone script on the VM that
    cannot import the program: the program runs it from the checkout instead."""
    return reporter_functions()["subscription_confirmed"](subscription_arn)


@functools.cache
def reporter_functions() -> dict[str, Any]:
    return runpy.run_path(str(REPORTER_PATH))


def topic_check(subscriptions: list[dict]) -> Check:
    """SNS ListSubscriptionsByTopic: an unconfirmed subscription's SubscriptionArn is the text
    "PendingConfirmation" (SNS API Reference, Subscription); an e-mail one delivers nothing until
    confirmed, and its confirmation link expires after 3 days."""
    confirmed = [s for s in subscriptions if subscription_confirmed(s.get("SubscriptionArn", ""))]
    pending = [s for s in subscriptions if s.get("SubscriptionArn") == "PendingConfirmation"]
    if confirmed:
        return Check("alarm topic", "ok", f"{len(confirmed)} confirmed subscriber(s)")
    if pending:
        endpoints = ", ".join(s.get("Endpoint", "?") for s in pending)
        return Check(
            "alarm topic",
            "red",
            f"{len(pending)} pending confirmation ({endpoints}): nobody hears the alarms yet",
            "confirm the mail AWS sent; after 3 days the link expires: pulumi config rm alarmEmail, pulumi up, set it again",
        )
    return Check(
        "alarm topic",
        "red",
        "no subscriber: nobody hears the alarms",
        "pulumi config set alarmEmail you@example.com && pulumi up",
    )


def aws_checks(outputs: dict[str, Any], stack: str, stack_name: str) -> list[Check]:
    """CloudWatch and SNS, in the topic's region, with the caller's credentials. `stack`: the Stack
    dimension (the stack id); `stack_name`: the namespace's (HarborCache/<stack name>)."""
    namespace = f"{NAMESPACE_PREFIX}/{stack_name}"
    try:
        import boto3
    except ImportError:
        return [
            Check(
                "aws", "warn", "boto3 is not installed: no probe, hit rate, disk or alarm data", "pip install -r requirements.txt"
            )
        ]
    topic = outputs.get("alarmTopicArn", "")
    region = topic.split(":")[3] if topic.count(":") >= 5 else None
    cloudwatch, sns = boto3.client("cloudwatch", region_name=region), boto3.client("sns", region_name=region)
    now = datetime.datetime.now(datetime.UTC)
    checks: list[Check] = []
    try:
        # Up to 100 a page (SNS API Reference, ListSubscriptionsByTopic): every page.
        pages = sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
        checks.append(topic_check([item for page in pages for item in page.get("Subscriptions", [])]))
        alarms = cloudwatch.describe_alarms(StateValue="ALARM").get("MetricAlarms", [])
        mine = [a for a in alarms if (a.get("AlarmDescription") or "").startswith(f"harbor-cache {stack}:")]
        for alarm in mine:
            description = alarm["AlarmDescription"].removeprefix(f"harbor-cache {stack}: ")
            checks.append(Check(f"alarm {alarm['AlarmName']}", "red", description.split(": ")[0], description.split(": ", 1)[-1]))
        if not mine:
            checks.append(Check("alarms", "ok", "none in ALARM"))

        def latest(metric: str, dimensions: dict[str, str], statistic: str, hours: int) -> list[dict]:
            answer = cloudwatch.get_metric_statistics(
                Namespace=namespace,
                MetricName=metric,
                Dimensions=[{"Name": "Stack", "Value": stack}, *({"Name": k, "Value": v} for k, v in dimensions.items())],
                StartTime=now - datetime.timedelta(hours=hours),
                EndTime=now,
                Period=hours * 3600,
                Statistics=[statistic],
            )
            return answer.get("Datapoints", [])

        for host, project in sorted((outputs.get("projects") or {}).items()):
            probe = cloudwatch.get_metric_statistics(
                Namespace=namespace,
                MetricName="ProbeFailed",
                Dimensions=[{"Name": "Stack", "Value": stack}, {"Name": "Project", "Value": project}],
                StartTime=now - datetime.timedelta(days=2),
                EndTime=now,
                Period=60,
                Statistics=["Maximum"],
            ).get("Datapoints", [])
            if probe:
                last = max(probe, key=lambda point: point["Timestamp"])
                failed = last["Maximum"] > 0
                when = last["Timestamp"].strftime("%Y-%m-%d %H:%M UTC")
                checks.append(
                    Check(
                        f"probe {project}",
                        "red" if failed else "ok",
                        f"{host}: last probe {when} {'failed' if failed else 'stored and served'}",
                        "" if not failed else "ssh to the VM: journalctl -u harbor-probe says what Harbor answered",
                    )
                )
            else:
                checks.append(
                    Check(
                        f"probe {project}",
                        "red",
                        f"{host}: no probe result in 2 days",
                        "is harbor-probe.timer running? systemctl list-timers on the VM",
                    )
                )
            requests = sum(p["Sum"] for p in latest("ProxyManifestRequests", {"Project": project}, "Sum", 24))
            misses = sum(p["Sum"] for p in latest("ProxyManifestMisses", {"Project": project}, "Sum", 24))
            served = sum(p["Sum"] for p in latest("ProxyBytesServed", {"Project": project}, "Sum", 24))
            rate = (
                f"{100.0 * (requests - misses) / requests:.0f}% of {requests:.0f} manifest pulls"
                if requests
                else "no manifest pulls"
            )
            checks.append(Check(f"hit rate {project}", "ok", f"last day: {rate}, {served / 2**30:.2f} GiB served"))
        for mount in ("/data", "/"):
            points = latest("DiskUsedPercent", {"Mount": mount}, "Maximum", 1)
            if points:
                percent = max(p["Maximum"] for p in points)
                state = "red" if percent >= 85 else "warn" if percent >= 75 else "ok"
                fix = "" if state == "ok" else "grow the volume (dataVolumeSizeGb/rootVolumeSizeGb) or tighten GC and retention"
                checks.append(Check(f"disk {mount}", state, f"{percent:.0f}% used", fix))
    except Exception as error:  # noqa: BLE001 - any AWS error is reported as what it is, not a crash
        checks.append(Check("aws", "warn", f"{type(error).__name__}: {error}", "AWS credentials for the stack's account?"))
    return checks


def render(checks: list[Check]) -> str:
    marks = {"ok": "ok  ", "warn": "WARN", "red": "RED "}
    width = max(len(check.name) for check in checks)
    lines = []
    for check in checks:
        lines.append(f"{marks[check.state]} {check.name.ljust(width)}  {check.detail}")
        if check.fix:
            lines.append(f"     {' ' * width}  -> {check.fix}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.status", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="the Pulumi stack (as `pulumi stack ls` names it)")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.add_argument("--outputs-file", help="`pulumi stack output --json --show-secrets` saved to a file")
    parser.add_argument("--ca-file", help="trust this CA bundle for the cache's certificate (tests, private CAs)")
    args = parser.parse_args(argv)
    outputs = stack_outputs(args.stack, args.outputs_file)
    # Metrics and alarms name the stack by its id (organization/project/stack); older stacks: the name.
    stack = outputs.get("stackId") or args.stack.rsplit("/", 1)[-1]
    checks = [*harbor_checks(outputs, args.ca_file), *aws_checks(outputs, stack, args.stack.rsplit("/", 1)[-1])]
    red = any(check.state == "red" for check in checks)
    if args.json:
        print(
            json.dumps(
                {"stack": stack, "url": outputs.get("url"), "healthy": not red, "checks": [asdict(c) for c in checks]}, indent=1
            )
        )
    else:
        print(f"harbor-cache {stack}: {outputs.get('url')}: {'RED' if red else 'healthy'}")
        print(render(checks))
    return 1 if red else 0


if __name__ == "__main__":
    sys.exit(main())
