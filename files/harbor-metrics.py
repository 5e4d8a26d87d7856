#!/usr/bin/env python3
"""Puts this Harbor host's health into CloudWatch with the instance role: no agent to install.

`report` (run every minute by harbor-metrics.timer) sends, each only where the unit configures
its source:
- DiskUsedPercent and InodesUsedPercent for / and the data volume; HarborHealthy (1 when
  /api/v2.0/health says healthy, else 0);
- from Harbor's logs since the last run (HARBOR_LOG_DIR): per proxy project (dimension Project)
  ProxyManifestRequests (manifest GETs nginx answered 200), ProxyManifestMisses (manifests core
  fetched from the upstream), ProxyBlobRequests and ProxyBytesServed; per stack WriteBackFailures
  (core could not write what it fetched into its registry) and Harbor5xx (answers >= 500 of nginx);
- from Harbor's exporter (EXPORTER_URL): QuotaUsedPercent per project that has a storage limit;
- through the public path (PUBLIC_URL, connecting to PUBLIC_CONNECT_HOST: the VM's own Traefik):
  PublicPathHealthy (TLS verifies and /api/v2.0/health answers healthy) and CertificateDaysLeft;
- with the monitor robot's credentials (MONITOR_CREDENTIALS, a file `name:secret`): per upstream
  (dimension Upstream) UpstreamHealthy from GET /api/v2.0/registries (Harbor refreshes each
  registry's status every 5 minutes), GcFailed (the last garbage collection ended in Error) and, per
  proxy project of PROXY_PROJECTS (dimension Project), RetentionFailed (its last finished retention
  run ended in Error or Stopped, or Harbor shows no retention policy for it, or refuses to show it);
- with SNAPSHOT_TAG (the data volume's snapshot tag): HoursSinceSnapshot, hours since the newest
  completed snapshot of the stack started (EC2 DescribeSnapshots);
- with ALARM_TOPIC_ARN (the stack's alarm topic): ConfirmedAlarmSubscribers, how many of the topic's
  subscriptions are confirmed (SNS ListSubscriptionsByTopic): 0 means every alarm reaches nobody.
`put NAME VALUE ...` sends the given counts (the probe uses it for SmokeFailures, PrewarmFailures
and, per project, ProbeFailed@Project=<project>). Every metric carries the dimension Stack
(HARBOR_CACHE_STACK, unique per stack and account), so the alarms survive a VM replacement; with
several Harbor nodes the `report` metrics also carry Node (HARBOR_CACHE_NODE, the node's index).
`report` also writes the same numbers in Prometheus' text format to $STATE_DIRECTORY/harbor-cache.prom
(counters as totals since the first report), which `serve PORT` publishes on /metrics.

How the hit rate is counted (and its limits): every manifest GET Harbor fetches from the upstream
makes core log, at Warning, `Artifact: %v:%v, digest:%v is not found in proxy cache, fetch it
from remote repo` (goharbor/harbor v2.15.2 src/server/middleware/repoproxy/proxy.go
handleManifest); nginx logs every request in Harbor's `timed_combined` format
(make/photon/prepare/templates/nginx/nginx.http.conf.jinja). Manifest hits = manifest GETs answered
200 minus those warnings. A blob fetched upstream is logged only at debug (controller.go ProxyBlob),
so blobs are counted and their bytes summed, but not split into hits and misses. HEAD requests
(containerd resolves tags with HEAD) are not counted; a HEAD of a tag still asks the upstream.
Blob GETs of harbor-cache's own probe (User-Agent harbor-cache-probe) are not counted; its manifest
GETs are (core's miss warning cannot tell the probe from a client).

Python 3 standard library only. Credentials come from IMDSv2 (the instance role; the role may put
metrics into its stack's METRICS_NAMESPACE only). The request is CloudWatch's JSON protocol (awsJson1_0,
target GraniteServiceVersion20100801.PutMetricData, botocore's cloudwatch service-2.json) signed
with Signature Version 4 (AWS General Reference, "Create a signed AWS API request").
"""

# ruff: noqa: S310 - every URL is fixed here or set by the systemd unit (http/https only), never by a user.
from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import html
import http.client
import http.server
import json
import os
import re
import socket
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode, urlsplit

STACK = os.environ.get("HARBOR_CACHE_STACK", "")
# HarborCache/<stack>, set by harbor-metrics.service (components/vm/operate_files.py metrics_namespace).
NAMESPACE = os.environ.get("METRICS_NAMESPACE") or f"HarborCache/{STACK}"
# HA mode (replicas > 1): this node's index, set by harbor-metrics.service; empty on one VM.
NODE = os.environ.get("HARBOR_CACHE_NODE", "")
REGION = os.environ.get("AWS_REGION", "")
DATA_MOUNT = os.environ.get("DATA_MOUNT", "/data")
HEALTH_URL = os.environ.get("HEALTH_URL", "http://127.0.0.1:8080/api/v2.0/health")
IMDS = os.environ.get("IMDS_ENDPOINT", "http://169.254.169.254")
ENDPOINT = os.environ.get("CLOUDWATCH_ENDPOINT", f"https://monitoring.{REGION}.amazonaws.com/")
HARBOR_LOG_DIR = os.environ.get("HARBOR_LOG_DIR", "")
PROXY_PROJECTS = [p for p in os.environ.get("PROXY_PROJECTS", "").split(",") if p]
EXPORTER_URL = os.environ.get("EXPORTER_URL", "")
PUBLIC_URL = os.environ.get("PUBLIC_URL", "")
PUBLIC_CONNECT_HOST = os.environ.get("PUBLIC_CONNECT_HOST", "")
PUBLIC_CA_FILE = os.environ.get("PUBLIC_CA_FILE") or None
API_URL = os.environ.get("HARBOR_API_URL", "http://127.0.0.1:8080/api/v2.0")
MONITOR_CREDENTIALS = os.environ.get("MONITOR_CREDENTIALS", "")
SNAPSHOT_TAG = os.environ.get("SNAPSHOT_TAG", "")
SNAPSHOT_TAG_KEY = os.environ.get("SNAPSHOT_TAG_KEY", "harbor-cache:snapshot")
EC2_ENDPOINT = os.environ.get("EC2_ENDPOINT", f"https://ec2.{REGION}.amazonaws.com/")
ALARM_TOPIC_ARN = os.environ.get("ALARM_TOPIC_ARN", "")
SNS_ENDPOINT = os.environ.get("SNS_ENDPOINT", f"https://sns.{REGION}.amazonaws.com/")
# systemd's StateDirectory= (log offsets, counters, the Prometheus file); unset: nothing is kept.
STATE_DIR = Path(os.environ["STATE_DIRECTORY"]) if os.environ.get("STATE_DIRECTORY") else None
TARGET = "GraniteServiceVersion20100801.PutMetricData"
CONTENT_TYPE = "application/x-amz-json-1.0"


def instance_credentials() -> dict:
    """The instance role's temporary credentials through IMDSv2 (token first, then the role)."""
    token_request = urllib.request.Request(
        f"{IMDS}/latest/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"}
    )
    with urllib.request.urlopen(token_request, timeout=5) as answer:
        token = answer.read().decode()
    headers = {"X-aws-ec2-metadata-token": token}
    base = f"{IMDS}/latest/meta-data/iam/security-credentials/"
    with urllib.request.urlopen(urllib.request.Request(base, headers=headers), timeout=5) as answer:
        role = answer.read().decode().split()[0]
    with urllib.request.urlopen(urllib.request.Request(base + role, headers=headers), timeout=5) as answer:
        return json.loads(answer.read())


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    credentials: dict,
    region: str,
    now: datetime.datetime,
    service: str = "monitoring",
) -> dict:
    """Headers with X-Amz-Date, X-Amz-Security-Token and the SigV4 Authorization for `service`."""
    parts = urlsplit(url)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    signed = {key.lower(): value.strip() for key, value in headers.items()}
    signed["host"] = parts.netloc
    signed["x-amz-date"] = amz_date
    if credentials.get("Token"):
        signed["x-amz-security-token"] = credentials["Token"]
    names = sorted(signed)
    canonical = "\n".join(
        [
            method,
            parts.path or "/",
            parts.query,
            "".join(f"{name}:{signed[name]}\n" for name in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + credentials["SecretAccessKey"]).encode()
    for part in (day, region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    result = {name: value for name, value in signed.items() if name != "host"}
    credential = f"{credentials['AccessKeyId']}/{scope}"
    result["authorization"] = f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={';'.join(names)}, Signature={signature}"
    return result


def metric_data(values: dict[str, float], extra: dict[str, dict[str, str]] | None = None) -> list[dict]:
    data = []
    for name, value in values.items():
        dimensions = {"Stack": STACK, **(extra or {}).get(name, {})}
        metric = name.split("@")[0]
        unit = "Percent" if metric.endswith("Percent") else "Bytes" if "Bytes" in metric else "Count"
        data.append(
            {
                "MetricName": name.split("@")[0],
                "Dimensions": [{"Name": key, "Value": item} for key, item in dimensions.items()],
                "Value": float(value),
                "Unit": unit,
            }
        )
    return data


def put(data: list[dict], now: datetime.datetime | None = None) -> None:
    body = json.dumps({"Namespace": NAMESPACE, "MetricData": data}).encode()
    headers = {"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET}
    now = now or datetime.datetime.now(datetime.UTC)
    headers = sign("POST", ENDPOINT, headers, body, instance_credentials(), REGION, now)
    request = urllib.request.Request(ENDPOINT, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()
    except urllib.error.HTTPError as error:
        detail = error.read()[:300].decode(errors="replace")
        raise SystemExit(f"CloudWatch refused the metrics: HTTP {error.code} {detail}") from None


def disk_used_percent(path: str) -> float:
    """Used space as df shows it: used / (used + available to unprivileged users)."""
    stats = os.statvfs(path)
    used = (stats.f_blocks - stats.f_bfree) * stats.f_frsize
    available = stats.f_bavail * stats.f_frsize
    return round(100.0 * used / (used + available), 2) if used + available else 0.0


def harbor_healthy() -> int:
    try:
        with urllib.request.urlopen(HEALTH_URL, timeout=10) as answer:
            return int(json.loads(answer.read()).get("status") == "healthy")
    except (OSError, ValueError):
        return 0


def inodes_used_percent(path: str) -> float:
    """Used inodes: a volume full of small files stops writes with space to spare."""
    stats = os.statvfs(path)
    return round(100.0 * (stats.f_files - stats.f_ffree) / stats.f_files, 2) if stats.f_files else 0.0


# Harbor's logs (HARBOR_LOG_DIR, harbor.yml log.local.location): each component logs through
# Docker's syslog driver (tag = component) to Harbor's rsyslog, which writes
# /var/log/docker/<tag>.log with `$ActionFileDefaultTemplate RSYSLOG_TraditionalFileFormat`
# (make/photon/log/rsyslog.conf, rsyslog_docker.conf.jinja): "Mmm dd hh:mm:ss <host> <tag>[<pid>]: <message>".
# core's message is lib/log's TextFormatter: "<RFC3339 time> [<LEVEL>] [<file>:<line>]: <text>".
MISS_RE = re.compile(
    r"\[WARNING\] .*?Artifact: (?P<repository>[^\s:]+):(?P<tag>[^,]*), digest:(?P<digest>\S*) "
    r"is not found in proxy cache, fetch it from remote repo"
)
# Write-backs that failed (src/controller/proxy/controller.go ProxyBlob, manifestcache.go CacheContent
# and push): Harbor served the upstream's answer and did not keep it.
WRITE_BACK_FAILED = (
    "error while putting blob to local repo",
    "Failed to push blob to local repo",
    "error occurred on manifest push to local",
    "failed to push manifest list",
)
# nginx's timed_combined (nginx.http.conf.jinja): '$remote_addr - "$request" $status $body_bytes_sent
# "$http_referer" "$http_user_agent" $request_time $upstream_response_time $pipe'.
ACCESS_RE = re.compile(
    r'(?P<remote>\S+) - "(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3}) (?P<bytes>\d+) '
    r'"[^"]*" "(?P<agent>[^"]*)" \S+ \S+ \S+\s*$'
)
# files/harbor-probe.py's User-Agent. Its blob GETs (on HA nodes harbor-node-check.timer fetches every
# blob of each smoke image every 10 minutes) stay out of the blob and byte counts. Its manifest GETs
# still count: a miss of the probe's is in core's log, which cannot tell it from a client's, and a
# miss must never count without its request. Its 5xx count too.
PROBE_AGENT = "harbor-cache-probe"
V2_RE = re.compile(r"^/v2/(?P<project>[a-z0-9]+(?:[._-][a-z0-9]+)*)/(?P<rest>.+)/(?P<kind>manifests|blobs)/(?P<ref>[^/?]+)")


def read_new_lines(name: str, state: dict) -> list[str]:
    """Lines appended to HARBOR_LOG_DIR/<name> since the last run. The first run starts at the end
    (no history counted at once); logrotate's copytruncate makes the file shorter: start again at 0."""
    path = Path(HARBOR_LOG_DIR) / name
    try:
        size = path.stat().st_size
    except OSError:
        return []
    offset = state.get(name)
    state[name] = size
    if offset is None:
        return []
    if size < offset:
        offset = 0
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read(size - offset)
    return data.decode(errors="replace").splitlines()


def traffic(core_lines: list[str], proxy_lines: list[str]) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Per project: manifest requests and misses, blob requests and bytes; per stack: failed write-backs, 5xx."""
    projects: dict[str, dict[str, float]] = {
        project: dict.fromkeys(("ProxyManifestRequests", "ProxyManifestMisses", "ProxyBlobRequests", "ProxyBytesServed"), 0.0)
        for project in PROXY_PROJECTS
    }
    totals = {"WriteBackFailures": 0.0, "Harbor5xx": 0.0}
    for line in core_lines:
        miss = MISS_RE.search(line)
        if miss:
            project = miss["repository"].split("/", 1)[0]
            if project in projects:
                projects[project]["ProxyManifestMisses"] += 1
        elif any(marker in line for marker in WRITE_BACK_FAILED):
            totals["WriteBackFailures"] += 1
    for line in proxy_lines:
        access = ACCESS_RE.search(line)
        if not access:
            continue
        status = int(access["status"])
        if status >= 500:
            totals["Harbor5xx"] += 1
        target = V2_RE.match(access["path"])
        if access["method"] != "GET" or not target or target["project"] not in projects:
            continue
        counts = projects[target["project"]]
        if target["kind"] == "manifests" and status == 200:
            counts["ProxyManifestRequests"] += 1
        elif access["agent"] == PROBE_AGENT:
            continue
        elif target["kind"] == "blobs" and status in (200, 206, 307):
            counts["ProxyBlobRequests"] += 1
        counts["ProxyBytesServed"] += int(access["bytes"])
    return projects, totals


def prometheus_samples(text: str, name: str) -> dict[str, float]:
    """`name{project_name="x"} value` lines of Prometheus' text format, by project_name."""
    found = {}
    for match in re.finditer(rf'^{name}\{{[^}}]*project_name="([^"]+)"[^}}]*\}} (\S+)$', text, re.MULTILINE):
        found[match[1]] = float(match[2])
    return found


def quota_used_percent() -> dict[str, float]:
    """From Harbor's exporter (src/pkg/exporter/project_collector.go): harbor_project_quota_usage_byte
    and harbor_project_quota_byte per project_name; -1 (no limit) has no percentage."""
    with urllib.request.urlopen(EXPORTER_URL, timeout=10) as answer:
        text = answer.read().decode()
    used = prometheus_samples(text, "harbor_project_quota_usage_byte")
    limits = prometheus_samples(text, "harbor_project_quota_byte")
    return {project: round(100.0 * used.get(project, 0.0) / limit, 2) for project, limit in limits.items() if limit > 0}


def public_path() -> tuple[int, float]:
    """(healthy, certificate days left) of https://<name>/api/v2.0/health through Traefik, as a
    client sees it: the public name in SNI and Host, the certificate verified, no plain-HTTP shortcut."""
    parts = urlsplit(PUBLIC_URL)
    context = ssl.create_default_context(cafile=PUBLIC_CA_FILE)
    address = PUBLIC_CONNECT_HOST or parts.hostname
    try:
        with (
            socket.create_connection((address, parts.port or 443), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=parts.hostname) as tls,
        ):
            expires = ssl.cert_time_to_seconds(tls.getpeercert()["notAfter"])
            days = round((expires - datetime.datetime.now(datetime.UTC).timestamp()) / 86400, 1)
            connection = http.client.HTTPConnection(parts.hostname, parts.port or 443, timeout=10)
            connection.sock = tls
            connection.request("GET", "/api/v2.0/health", headers={"Host": parts.netloc})
            answer = connection.getresponse()
            body = answer.read()
    except ssl.SSLCertVerificationError:
        return 0, 0.0  # Traefik's default certificate or an expired one: as good as none
    except (OSError, http.client.HTTPException):
        return 0, -1.0
    try:
        healthy = answer.status == 200 and json.loads(body).get("status") == "healthy"
    except (ValueError, AttributeError):
        healthy = False
    return int(healthy), days


def monitor_login() -> str:
    """`name:secret`, or "" while the deploy has not written it yet (or without systemd's credentials)."""
    try:
        return Path(MONITOR_CREDENTIALS).read_text().strip()
    except OSError:
        return ""


def monitor_get(path: str) -> object:
    line = monitor_login()
    auth = "Basic " + base64.b64encode(line.encode()).decode()
    request = urllib.request.Request(f"{API_URL}{path}", headers={"Authorization": auth, "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=15) as answer:
        return json.loads(answer.read() or b"null")


def upstream_health() -> dict[str, int]:
    """Each registry's status as Harbor keeps it (GET /registries: `status` healthy/unhealthy/unknown,
    refreshed every 5 min by core's registry health checker): Harbor serves only its cache, or
    nothing, while an upstream is unhealthy (repoproxy/proxy.go canProxy)."""
    registries = monitor_get("/registries?page_size=100") or []
    return {item["name"]: int(item.get("status") == "healthy") for item in registries}


def gc_failed() -> int:
    """1 when the newest garbage collection ended in Error (GET /system/gc: job_status)."""
    history = monitor_get("/system/gc?page=1&page_size=1&sort=-creation_time") or []
    return int(bool(history) and history[0].get("job_status") in ("Error", "Stopped"))


# pkg/task/dao/execution.go refreshStatus: an execution is Running until it ends in one of these.
FINISHED = ("Success", "Error", "Stopped")


def retention_failed() -> dict[str, int]:
    """Per proxy project, 1 when its newest finished retention run failed (GET
    /retentions/{id}/executions, newest start first: pkg/task/dao Execution sorts by StartTime desc)
    or cannot be read; the policy id is the project's metadata `retention_id` (GET /projects lists
    the monitor robot the projects it has permissions in: handler/project.go ListProjects). No
    finished run yet is no failure."""
    listed: dict[str, dict] = {}
    page = 1
    while True:
        projects = monitor_get(f"/projects?page={page}&page_size=100&with_detail=false") or []
        listed |= {item["name"]: item for item in projects}
        if len(projects) < 100:
            break
        page += 1
    failed = {}
    for project in PROXY_PROJECTS:
        policy = ((listed.get(project) or {}).get("metadata") or {}).get("retention_id", "")
        if not policy:
            print(f"retention of {project}: Harbor shows the monitor robot no retention policy", file=sys.stderr)
            failed[project] = 1
            continue
        try:
            runs = monitor_get(f"/retentions/{int(policy)}/executions?page=1&page_size=20") or []
        except urllib.error.HTTPError as error:
            print(f"retention of {project}: GET /retentions/{policy}/executions answered {error.code}", file=sys.stderr)
            failed[project] = 1
            continue
        finished = [run for run in runs if run.get("status") in FINISHED]
        failed[project] = int(bool(finished) and finished[0]["status"] != "Success")
    return failed


START_TIME_RE = re.compile(r"<startTime>([^<]+)</startTime>")


def query(endpoint: str, service: str, form: dict[str, str], credentials: dict, now: datetime.datetime) -> str:
    """One request of AWS's query protocol (a signed form POST: EC2, SNS), its XML answer as text."""
    body = urlencode(form).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    headers = sign("POST", endpoint, headers, body, credentials, REGION, now, service=service)
    request = urllib.request.Request(endpoint, data=body, method="POST", headers=headers)
    with urllib.request.urlopen(request, timeout=15) as answer:
        return answer.read().decode()


def hours_since_snapshot(credentials: dict, now: datetime.datetime) -> float:
    """Hours since the newest *completed* snapshot of this stack's data volume started (EC2
    DescribeSnapshots, query protocol 2016-11-15, filtered by the snapshot tag). None at all: a large
    number, so the alarm fires."""
    form = {
        "Action": "DescribeSnapshots",
        "Version": "2016-11-15",
        "Owner.1": "self",
        "Filter.1.Name": f"tag:{SNAPSHOT_TAG_KEY}",
        "Filter.1.Value.1": SNAPSHOT_TAG,
        "Filter.2.Name": "status",
        "Filter.2.Value.1": "completed",
        "MaxResults": "1000",
    }
    text = query(EC2_ENDPOINT, "ec2", form, credentials, now)
    # <snapshotSet><item>... <startTime>2026-12-05T03:30:12.000Z</startTime> ...: read as text, no XML parser.
    times = [datetime.datetime.fromisoformat(found.replace("Z", "+00:00")) for found in START_TIME_RE.findall(text)]
    if not times:
        return 10000.0
    return round((now - max(times)).total_seconds() / 3600, 2)


def subscription_confirmed(subscription_arn: str) -> bool:
    """SNS's Subscription.SubscriptionArn (botocore's sns service-2.json, ListSubscriptionsByTopic):
    the subscription's ARN once confirmed, the text "PendingConfirmation" until then (an e-mail one
    delivers nothing, and its link expires after 3 days). components/status.py asks the same."""
    return subscription_arn.startswith("arn:")


SUBSCRIPTION_ARN_RE = re.compile(r"<SubscriptionArn>([^<]*)</SubscriptionArn>")
NEXT_TOKEN_RE = re.compile(r"<NextToken>([^<]*)</NextToken>")


def confirmed_alarm_subscribers(credentials: dict, now: datetime.datetime) -> int:
    """Confirmed subscriptions of ALARM_TOPIC_ARN: SNS ListSubscriptionsByTopic (query protocol
    2010-03-31), up to 100 a page, NextToken while there are more (SNS API Reference,
    ListSubscriptionsByTopic). The role may call it on this topic only (components/aws/alarms.py)."""
    confirmed = 0
    token = ""
    while True:
        form = {"Action": "ListSubscriptionsByTopic", "Version": "2010-03-31", "TopicArn": ALARM_TOPIC_ARN}
        if token:
            form["NextToken"] = token
        text = query(SNS_ENDPOINT, "sns", form, credentials, now)
        # <Subscriptions><member>... <SubscriptionArn>...</SubscriptionArn> ...</member></Subscriptions>
        # <NextToken>...</NextToken>: read as text, no XML parser (the token's XML escapes undone).
        confirmed += sum(subscription_confirmed(html.unescape(arn)) for arn in SUBSCRIPTION_ARN_RE.findall(text))
        more = NEXT_TOKEN_RE.search(text)
        token = html.unescape(more[1]) if more else ""
        if not token:
            return confirmed


def load_state() -> dict:
    if STATE_DIR is None:
        return {}
    try:
        return json.loads((STATE_DIR / "state.json").read_text())
    except (OSError, ValueError):
        return {}


def save_state(state: dict) -> None:
    if STATE_DIR is None:
        return
    try:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        (STATE_DIR / "state.json").write_text(json.dumps(state))
    except OSError as error:
        print(f"cannot keep state in {STATE_DIR}: {error}", file=sys.stderr)


def report(now: datetime.datetime | None = None) -> list[dict]:
    """This host's numbers (module docstring); with several nodes the host metrics also name the
    node (dimension Node), so every node has its own series and its own alarms. A source that
    cannot be read is said on stderr and reported as broken where a metric stands for it."""
    now = now or datetime.datetime.now(datetime.UTC)
    node = {"Node": NODE} if NODE else {}
    values: dict[str, float] = {
        "DiskUsedPercent@root": disk_used_percent("/"),
        "InodesUsedPercent@root": inodes_used_percent("/"),
        "HarborHealthy": harbor_healthy(),
    }
    extra: dict[str, dict[str, str]] = {
        "DiskUsedPercent@root": {**node, "Mount": "/"},
        "InodesUsedPercent@root": {**node, "Mount": "/"},
        "HarborHealthy": node,
    }
    if os.path.ismount(DATA_MOUNT):
        for metric, measure in (("DiskUsedPercent", disk_used_percent), ("InodesUsedPercent", inodes_used_percent)):
            values[f"{metric}@data"] = measure(DATA_MOUNT)
            extra[f"{metric}@data"] = {**node, "Mount": DATA_MOUNT}
    state = load_state()
    if HARBOR_LOG_DIR:
        offsets = state.setdefault("offsets", {})
        projects, totals = traffic(read_new_lines("core.log", offsets), read_new_lines("proxy.log", offsets))
        for project, counts in projects.items():
            for metric, value in counts.items():
                values[f"{metric}@{project}"] = value
                extra[f"{metric}@{project}"] = {"Project": project}
        for metric, value in totals.items():
            values[metric] = value
            extra[metric] = node
    if EXPORTER_URL:
        try:
            for project, percent in quota_used_percent().items():
                values[f"QuotaUsedPercent@{project}"] = percent
                extra[f"QuotaUsedPercent@{project}"] = {"Project": project}
        except (OSError, ValueError) as error:
            print(f"harbor's exporter {EXPORTER_URL}: {error}", file=sys.stderr)
    if PUBLIC_URL:
        values["PublicPathHealthy"], days = public_path()
        if days >= 0:
            values["CertificateDaysLeft"] = days
    if MONITOR_CREDENTIALS and monitor_login():
        try:
            for name, healthy in upstream_health().items():
                values[f"UpstreamHealthy@{name}"] = healthy
                extra[f"UpstreamHealthy@{name}"] = {"Upstream": name}
            values["GcFailed"] = gc_failed()
            for project, failed in retention_failed().items():
                values[f"RetentionFailed@{project}"] = failed
                extra[f"RetentionFailed@{project}"] = {"Project": project}
        except (OSError, ValueError) as error:
            print(f"Harbor's API with the monitor robot: {error}", file=sys.stderr)
    if SNAPSHOT_TAG:
        # Once an hour is enough for a 26-hour alarm; the value is kept for the minutes between.
        last = state.get("snapshot", {})
        if now.timestamp() - last.get("checked", 0) >= 3600:
            try:
                last = {"checked": now.timestamp(), "hours": hours_since_snapshot(instance_credentials(), now)}
                state["snapshot"] = last
            except (OSError, ValueError) as error:
                print(f"EC2 DescribeSnapshots: {error}", file=sys.stderr)
        if "hours" in last:
            values["HoursSinceSnapshot"] = round(last["hours"] + (now.timestamp() - last["checked"]) / 3600, 2)
    if ALARM_TOPIC_ARN:
        # Every node counts the same topic: the alarm takes the Maximum. Unreadable: no value, and the
        # alarm treats the silence as nobody listening.
        try:
            values["ConfirmedAlarmSubscribers"] = confirmed_alarm_subscribers(instance_credentials(), now)
        except (OSError, ValueError) as error:
            print(f"SNS ListSubscriptionsByTopic: {error}", file=sys.stderr)
    data = metric_data(values, extra)
    write_prometheus(data, state)
    save_state(state)
    return data


# Counters in the Prometheus file are totals since the first report; the rest are gauges.
COUNTERS = {
    "ProxyManifestRequests",
    "ProxyManifestMisses",
    "ProxyBlobRequests",
    "ProxyBytesServed",
    "WriteBackFailures",
    "Harbor5xx",
}


def prometheus_name(metric: str) -> str:
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", metric).lower()
    return f"harbor_cache_{snake}" + ("_total" if metric in COUNTERS else "")


def write_prometheus(data: list[dict], state: dict) -> None:
    """$STATE_DIRECTORY/harbor-cache.prom: the same numbers for Prometheus (labels = dimensions in
    snake case), counters accumulated in the state."""
    if STATE_DIR is None:
        return
    totals = state.setdefault("totals", {})
    lines: dict[str, list[str]] = {}
    for item in data:
        labels = {re.sub(r"(?<=[a-z])(?=[A-Z])", "_", d["Name"]).lower(): d["Value"] for d in item["Dimensions"]}
        label_text = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
        name = prometheus_name(item["MetricName"])
        value = item["Value"]
        if item["MetricName"] in COUNTERS:
            key = f"{name}{{{label_text}}}"
            totals[key] = totals.get(key, 0.0) + value
            value = totals[key]
        lines.setdefault(name, []).append(f"{name}{{{label_text}}} {value:g}")
    text = "".join(
        f"# TYPE {name} {'counter' if name.endswith('_total') else 'gauge'}\n" + "\n".join(samples) + "\n"
        for name, samples in sorted(lines.items())
    )
    try:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        temporary = STATE_DIR / "harbor-cache.prom.tmp"
        temporary.write_text(text)
        temporary.replace(STATE_DIR / "harbor-cache.prom")
    except OSError as error:
        print(f"cannot write {STATE_DIR}/harbor-cache.prom: {error}", file=sys.stderr)


def serve(port: int, address: str = "127.0.0.1") -> None:
    """GET /metrics: the last report's Prometheus text (harbor-cache-exporter.service)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            try:
                body = (STATE_DIR / "harbor-cache.prom").read_bytes() if self.path.split("?")[0] == "/metrics" else None
            except (OSError, TypeError):
                body = b""
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    http.server.ThreadingHTTPServer((address, port), Handler).serve_forever()


def put_arguments(pairs: list[str]) -> tuple[dict[str, float], dict[str, dict[str, str]]]:
    """`NAME VALUE ...`; a NAME of `Metric@Key=Value[,Key=Value]` adds those dimensions (the probe's
    ProbeFailed@Project=<project>), so one call can put several series of one metric."""
    values: dict[str, float] = {}
    extra: dict[str, dict[str, str]] = {}
    for name, value in zip(pairs[0::2], pairs[1::2], strict=True):
        metric, _, dimensions = name.partition("@")
        key = name if dimensions else metric
        values[key] = float(value)
        if dimensions:
            extra[key] = dict(item.split("=", 1) for item in dimensions.split(",") if "=" in item)
    return values, extra


def main(argv: list[str]) -> int:
    if argv[:1] == ["serve"] and len(argv) in (2, 3):
        serve(int(argv[1]), *argv[2:])
        return 0
    if argv[:1] == ["report"]:
        data = report()
    elif argv[:1] == ["put"] and len(argv) >= 3 and len(argv) % 2 == 1:
        data = metric_data(*put_arguments(argv[1:]))
    else:
        print("usage: harbor-metrics.py report | put NAME VALUE [NAME VALUE ...] | serve PORT [ADDRESS]", file=sys.stderr)
        return 2
    put(data)
    print("put " + " ".join(describe(item) for item in data))
    return 0


def describe(item: dict) -> str:
    mount = [dimension["Value"] for dimension in item["Dimensions"] if dimension["Name"] == "Mount"]
    other = [f"{d['Name']}={d['Value']}" for d in item["Dimensions"] if d["Name"] not in ("Stack", "Node", "Mount")]
    where = "[" + mount[0] + "]" if mount else ("[" + ",".join(other) + "]" if other else "")
    return f"{item['MetricName']}{where}={item['Value']:g}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
