#!/usr/bin/env python3
"""Puts this Harbor host's health into CloudWatch with the instance role: no agent to install.

`report` (run every minute by harbor-metrics.timer) sends DiskUsedPercent for / and the data
volume and HarborHealthy (1 when /api/v2.0/health says healthy, else 0); `put NAME VALUE ...`
sends the given counts (the probe uses it for SmokeFailures, PrewarmFailures and, per project,
ProbeFailed@Project=<project>). Every metric
carries the dimension Stack, so the alarms survive a VM replacement; with several Harbor nodes the
`report` metrics also carry Node (HARBOR_CACHE_NODE, the node's index).

Python 3 standard library only. Credentials come from IMDSv2 (the instance role; the role may put
metrics into METRICS_NAMESPACE only). The request is CloudWatch's JSON protocol (awsJson1_0,
target GraniteServiceVersion20100801.PutMetricData, botocore's cloudwatch service-2.json) signed
with Signature Version 4 (AWS General Reference, "Create a signed AWS API request").
"""

# ruff: noqa: S310 - every URL is fixed here or set by the systemd unit (http/https only), never by a user.
from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
import sys
import urllib.error
import urllib.request
from urllib.parse import urlsplit

NAMESPACE = os.environ.get("METRICS_NAMESPACE", "HarborCache")
STACK = os.environ.get("HARBOR_CACHE_STACK", "")
# HA mode (replicas > 1): this node's index, set by harbor-metrics.service; empty on one VM.
NODE = os.environ.get("HARBOR_CACHE_NODE", "")
REGION = os.environ.get("AWS_REGION", "")
DATA_MOUNT = os.environ.get("DATA_MOUNT", "/data")
HEALTH_URL = os.environ.get("HEALTH_URL", "http://127.0.0.1:8080/api/v2.0/health")
IMDS = os.environ.get("IMDS_ENDPOINT", "http://169.254.169.254")
ENDPOINT = os.environ.get("CLOUDWATCH_ENDPOINT", f"https://monitoring.{REGION}.amazonaws.com/")
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
    method: str, url: str, headers: dict[str, str], body: bytes, credentials: dict, region: str, now: datetime.datetime
) -> dict:
    """Headers with X-Amz-Date, X-Amz-Security-Token and the SigV4 Authorization for service monitoring."""
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
    scope = f"{day}/{region}/monitoring/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + credentials["SecretAccessKey"]).encode()
    for part in (day, region, "monitoring", "aws4_request"):
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
        unit = "Percent" if name.startswith("DiskUsedPercent") else "Count"
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


def report() -> list[dict]:
    """Disk usage and health of this host; with several nodes each metric also names the node
    (dimension Node), so every node has its own series and its own alarms."""
    node = {"Node": NODE} if NODE else {}
    values = {"DiskUsedPercent@root": disk_used_percent("/"), "HarborHealthy": harbor_healthy()}
    extra = {"DiskUsedPercent@root": {**node, "Mount": "/"}, "HarborHealthy": node}
    if os.path.ismount(DATA_MOUNT):
        values["DiskUsedPercent@data"] = disk_used_percent(DATA_MOUNT)
        extra["DiskUsedPercent@data"] = {**node, "Mount": DATA_MOUNT}
    return metric_data(values, extra)


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
    if argv[:1] == ["report"]:
        data = report()
    elif argv[:1] == ["put"] and len(argv) >= 3 and len(argv) % 2 == 1:
        data = metric_data(*put_arguments(argv[1:]))
    else:
        print("usage: harbor-metrics.py report | put NAME VALUE [NAME VALUE ...]", file=sys.stderr)
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
