#!/usr/bin/env python3
"""Brings Harbor's periodic schedules back after its Redis lost them (ElastiCache failover, data loss).

Harbor v2.15.2 keeps a schedule twice: core's `schedule` table in the database, and jobservice's
periodic policy in Redis (src/jobservice/period/basic_scheduler.go Schedule: ZADD to
`<namespace>:period:policies`, src/jobservice/common/rds/keys.go KeyPeriodicPolicy; policy_store.go
Load reads them back from there and only there). A Redis that comes back empty has no policy, so
GC and retention never run again, and nothing in Harbor notices: core re-creates only what its
database lacks (src/controller/task/sweep.go ScheduleSweepJob).

So: when jobservice's policy set is empty (every running Harbor has at least its own execution
sweep there), save the schedules again through Harbor's API, which re-creates them in jobservice:
GC (PUT /system/gc/schedule: handler/gc.go updateSchedule deletes and creates the schedule) and each
project's retention (PUT /retentions/{id} schedules only when the cron changes: controller/retention
UpdateRetention; so once without the cron, then with it). Harbor's own system jobs (execution
sweep, system artifact cleanup) have no API and come back with nothing but a new database row.

Reads /opt/harbor/harbor.yml (root only): the Redis address, password and jobservice database of
`external_redis`, and the admin password. Talks to Harbor through this host's nginx on loopback,
as the load balancer and Traefik do. Prints what it did; exit 1 when a restore failed.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import sys
import urllib.error
import urllib.request

import yaml

HARBOR_YML = os.environ.get("HARBOR_YML", "/opt/harbor/harbor.yml")
HARBOR_API = os.environ.get("HARBOR_API", "http://127.0.0.1:8080/api/v2.0")
HARBOR_HOST = os.environ.get("HARBOR_HOST", "")
# prepare v2.15.2 templates/jobservice/config.yml.jinja: redis_pool namespace.
NAMESPACE = os.environ.get("JOBSERVICE_NAMESPACE", "harbor_job_service_namespace")
# Lets a test reach a Redis without TLS on loopback; ElastiCache always has TLS (harbor.yml says so).
REDIS_TLS_CA = os.environ.get("REDIS_TLS_CA", "")


class RestoreError(Exception):
    pass


def resp(*parts: str) -> bytes:
    """A Redis command in RESP: an array of bulk strings."""
    encoded = [part.encode() for part in parts]
    return b"".join([f"*{len(encoded)}\r\n".encode(), *(f"${len(p)}\r\n".encode() + p + b"\r\n" for p in encoded)])


def read_reply(stream) -> object:
    line = stream.readline()
    if not line:
        raise RestoreError("Redis closed the connection")
    kind, rest = line[:1], line[1:].rstrip(b"\r\n")
    if kind == b"-":
        raise RestoreError(f"Redis: {rest.decode(errors='replace')}")
    if kind == b":":
        return int(rest)
    if kind == b"+":
        return rest.decode()
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else stream.read(size + 2)[:-2].decode()
    raise RestoreError(f"Redis answered {line[:40]!r}")


def policy_count(redis: dict) -> int:
    """ZCARD of jobservice's periodic policies, over TLS when harbor.yml says so (ElastiCache)."""
    host, _, port = str(redis["host"]).rpartition(":")
    connection = socket.create_connection((host, int(port)), timeout=10)
    if (redis.get("tlsOptions") or {}).get("enable"):
        context = ssl.create_default_context(cafile=REDIS_TLS_CA or None)
        connection = context.wrap_socket(connection, server_hostname=host)
    with connection, connection.makefile("rwb") as stream:
        commands = []
        if redis.get("password"):
            commands.append(resp("AUTH", *([redis["username"]] if redis.get("username") else []), redis["password"]))
        commands += [resp("SELECT", str(redis.get("jobservice_db_index", 2))), resp("ZCARD", f"{NAMESPACE}:period:policies")]
        stream.write(b"".join(commands))
        stream.flush()
        replies = [read_reply(stream) for _ in commands]
    return int(replies[-1])


class Harbor:
    def __init__(self, password: str) -> None:
        self.auth = "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()

    def call(self, method: str, path: str, body: object = None) -> object:
        headers = {"Authorization": self.auth, "Accept": "application/json", "X-Forwarded-Proto": "https"}
        if HARBOR_HOST:
            headers["Host"] = HARBOR_HOST
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
        # HARBOR_API is this host's loopback nginx (the unit sets it), never a URL from input.
        request = urllib.request.Request(HARBOR_API + path, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                text = answer.read()
        except urllib.error.HTTPError as error:
            raise RestoreError(f"{method} {path}: HTTP {error.code} {error.read()[:200].decode(errors='replace')}") from None
        except OSError as error:
            raise RestoreError(f"{method} {path}: {error}") from None
        return json.loads(text) if text.strip() else None


def restore_gc(harbor: Harbor) -> list[str]:
    schedule = harbor.call("GET", "/system/gc/schedule")
    kind = ((schedule or {}).get("schedule") or {}).get("type", "None")
    if kind in ("None", "Manual"):
        return []
    # handler/model/gc.go: the parameters come back as a JSON string.
    parameters = json.loads(schedule.get("job_parameters") or "{}")
    body = {"schedule": {"type": kind, "cron": schedule["schedule"]["cron"]}, "parameters": parameters}
    harbor.call("PUT", "/system/gc/schedule", body)
    return [f"GC ({kind} {schedule['schedule']['cron']})"]


def restore_retentions(harbor: Harbor) -> list[str]:
    restored = []
    page = 1
    while True:
        projects = harbor.call("GET", f"/projects?page={page}&page_size=100") or []
        for project in projects:
            retention_id = (project.get("metadata") or {}).get("retention_id")
            if not retention_id:
                continue
            policy = harbor.call("GET", f"/retentions/{retention_id}")
            trigger = policy.get("trigger") or {}
            cron = (trigger.get("settings") or {}).get("cron", "")
            if trigger.get("kind") != "Schedule" or not cron:
                continue
            without = {**policy, "trigger": {**trigger, "settings": {**trigger.get("settings", {}), "cron": ""}}}
            harbor.call("PUT", f"/retentions/{retention_id}", without)
            harbor.call("PUT", f"/retentions/{retention_id}", policy)
            restored.append(f"retention of {project['name']} ({cron})")
        if len(projects) < 100:
            return restored
        page += 1


def main() -> int:
    with open(HARBOR_YML) as source:
        config = yaml.safe_load(source)
    redis = config.get("external_redis")
    if not redis:
        print("no external_redis in harbor.yml: nothing to watch")
        return 0
    try:
        count = policy_count(redis)
    except (OSError, RestoreError) as error:
        print(f"cannot read jobservice's policies from Redis: {error}", file=sys.stderr)
        return 1
    if count:
        print(f"jobservice holds {count} periodic policies")
        return 0
    print("jobservice holds no periodic policy: Redis lost them; saving Harbor's schedules again")
    harbor = Harbor(str(config["harbor_admin_password"]))
    try:
        restored = [*restore_gc(harbor), *restore_retentions(harbor)]
    except RestoreError as error:
        print(f"restore failed: {error}", file=sys.stderr)
        return 1
    print("restored: " + (", ".join(restored) if restored else "nothing was scheduled"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
