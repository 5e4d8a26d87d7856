"""Issue 18 point 9: after Redis lost jobservice's periodic jobs, GC and retention come back without a person.

A real redis-server on loopback (with a password, as ElastiCache has its AUTH token) holds
jobservice's policies where Harbor v2.15.2 keeps them (`harbor_job_service_namespace:period:policies`
in the jobservice database; src/jobservice/period/basic_scheduler.go, common/rds/keys.go). The Harbor
emulator adds and removes a policy there whenever Harbor would (pkg/scheduler via handler/gc.go
updateSchedule and controller/retention CreateRetention/UpdateRetention). files/harbor-schedules.py
runs against both, as its unit runs it on node 0.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from components.vm.files import FILES_DIR
from components.vm.schedules_check import SCHEDULES_TIMER, schedules_service
from tests.conftest import unavailable
from tests.settings.test_settings import parse
from tests.standins.harbor_emulator import HarborEmulator
from tests.standins.pulumi_harness import dev_config, run_program
from tests.vm.test_data_modes import SECRETS
from tests.vm.test_registry_redis import tls_redis as tls_only_redis

POLICIES = "harbor_job_service_namespace:period:policies"
JOBSERVICE_DB = 2
REDIS_PASSWORD = "AuthToken0123456789abcdef"  # noqa: S105 - a test server's
ADMIN_PASSWORD = "Harbor12345"  # noqa: S105


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def redis(tmp_path):
    server = shutil.which("redis-server")
    if server is None or shutil.which("redis-cli") is None:
        unavailable("redis-server is missing (Debian package redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", REDIS_PASSWORD, "--save", ""]
        + ["--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def cli(*args: str) -> str:
        command = ["redis-cli", "-p", str(port), "-n", str(JOBSERVICE_DB), "--no-auth-warning", "-a", REDIS_PASSWORD, *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=10, check=True).stdout.strip()

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if cli("PING") == "PONG":
                break
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.05)
    yield {"port": port, "cli": cli}
    process.terminate()
    process.wait(10)


@pytest.fixture
def harbor(redis):
    """The emulator, with jobservice's side of each schedule kept in the real Redis, and Harbor's own
    execution sweep scheduled as core schedules it at start (controller/task/sweep.go)."""
    emulator = HarborEmulator(admin_password=ADMIN_PASSWORD)
    scores: dict[str, int] = {}
    # basic_scheduler.go Schedule: the policy's score (its numeric id) is the Unix second it was
    # scheduled in; UnSchedule removes by that score. Here one second per schedule, never reused.
    clock = itertools.count(int(time.time()))

    def jobservice(action: str, vendor: str) -> None:
        if action == "schedule":
            scores[vendor] = next(clock)
            redis["cli"]("ZADD", POLICIES, str(scores[vendor]), json.dumps({"id": vendor, "job_name": "SCHEDULER"}))
        else:
            score = scores.pop(vendor)
            redis["cli"]("ZREMRANGEBYSCORE", POLICIES, str(score), str(score))

    emulator.on_schedule = jobservice
    jobservice("schedule", "EXECUTION_SWEEP")
    yield emulator
    emulator.stop()


def harbor_call(emulator: HarborEmulator, method: str, path: str, body: object) -> None:
    import base64
    import urllib.request

    request = urllib.request.Request(
        f"{emulator.url}/api/v2.0{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode(),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


def configure(emulator: HarborEmulator) -> None:
    """What the stack's provider configures: a weekly GC schedule and a proxy project (whose default retention is scheduled)."""
    weekly = {"schedule": {"type": "Custom", "cron": "0 0 3 * * 6"}, "parameters": {"delete_untagged": True}}
    harbor_call(emulator, "PUT", "/system/gc/schedule", weekly)
    registry = {"name": "dockerhub", "type": "docker-hub", "url": "https://hub.docker.com", "insecure": False}
    harbor_call(emulator, "POST", "/registries", registry)
    registry_id = next(iter(emulator.state.registries))
    project = {"project_name": "dockerhub-proxy", "registry_id": registry_id, "metadata": {"public": "true"}}
    harbor_call(emulator, "POST", "/projects", project)


def run_check(tmp_path: Path, emulator: HarborEmulator, redis_port: int) -> subprocess.CompletedProcess:
    harbor_yml = tmp_path / "harbor.yml"
    harbor_yml.write_text(
        yaml.safe_dump(
            {
                "harbor_admin_password": ADMIN_PASSWORD,
                "external_redis": {
                    "host": f"127.0.0.1:{redis_port}",
                    "password": REDIS_PASSWORD,
                    "jobservice_db_index": JOBSERVICE_DB,
                    "registry_db_index": 1,
                    "tlsOptions": {"enable": False},
                },
            }
        )
    )
    env = {**os.environ, "HARBOR_YML": str(harbor_yml), "HARBOR_API": f"{emulator.url}/api/v2.0"}
    return subprocess.run(
        [sys.executable, str(FILES_DIR / "harbor-schedules.py")], env=env, capture_output=True, text=True, timeout=60
    )


def test_a_harbor_whose_redis_holds_its_schedules_is_left_alone(tmp_path, redis, harbor):
    configure(harbor)
    assert redis["cli"]("ZCARD", POLICIES) == "3"
    puts = harbor.count("PUT")
    result = run_check(tmp_path, harbor, redis["port"])
    assert result.returncode == 0, result.stderr
    assert "jobservice holds 3 periodic policies" in result.stdout
    assert harbor.count("PUT") == puts


def test_after_redis_lost_everything_gc_and_retention_are_scheduled_again(tmp_path, redis, harbor):
    configure(harbor)
    gc_before = json.dumps(harbor.state.gc_schedule, sort_keys=True)
    retention_before = json.dumps(harbor.state.retentions, sort_keys=True)
    redis["cli"]("FLUSHALL")
    assert redis["cli"]("ZCARD", POLICIES) == "0", "what a failover to an empty replica leaves"

    result = run_check(tmp_path, harbor, redis["port"])
    assert result.returncode == 0, result.stderr
    assert "Redis lost them" in result.stdout
    assert "GC (Custom 0 0 3 * * 6)" in result.stdout and "retention of dockerhub-proxy (0 0 0 * * *)" in result.stdout
    members = [json.loads(m)["id"] for m in redis["cli"]("ZRANGE", POLICIES, "0", "-1").splitlines()]
    assert sorted(members) == sorted(["GARBAGE_COLLECTION", f"RETENTION:{next(iter(harbor.state.retentions))}"])
    # Harbor's configuration itself is as it was: only jobservice's side was made again.
    assert json.dumps(harbor.state.gc_schedule, sort_keys=True) == gc_before
    assert json.dumps(harbor.state.retentions, sort_keys=True) == retention_before
    # The next run finds them and does nothing.
    again = run_check(tmp_path, harbor, redis["port"])
    assert "jobservice holds 2 periodic policies" in again.stdout


def test_a_redis_it_cannot_read_fails_the_unit_without_touching_harbor(tmp_path, harbor):
    puts = harbor.count("PUT")
    result = run_check(tmp_path, harbor, free_port())
    assert result.returncode == 1 and "cannot read jobservice's policies from Redis" in result.stderr
    assert harbor.count("PUT") == puts


def test_node_0_with_external_stores_runs_the_check_and_no_other_node_does():
    ha = run_program({**dev_config(), "harbor-cache:replicas": "2"})
    assert ha.named("harbor-install-timers").inputs["create"].endswith(SCHEDULES_TIMER)
    assert not ha.named("harbor-install-1-timers").inputs["create"].endswith(SCHEDULES_TIMER)
    assert ha.named("harbor-install-file-harbor-schedules.py").inputs["stdin"] == (FILES_DIR / "harbor-schedules.py").read_text()
    single = run_program(dev_config())
    assert not single.named("harbor-install-timers").inputs["create"].endswith(SCHEDULES_TIMER)
    service = schedules_service(parse(replicas=2))["Service"]
    assert "HARBOR_API=http://127.0.0.1:8080/api/v2.0" in service["Environment"]


tls_redis = tls_only_redis  # the TLS-only redis-server fixture of the registry's own test


def test_elasticache_is_read_over_tls_with_its_auth_token_and_never_in_plain_text(tmp_path, tls_redis):
    """ElastiCache has in-transit encryption: harbor.yml's tlsOptions.enable makes the check speak TLS
    (server authentication, as Harbor does); a TLS-only redis-server on loopback stands for it."""
    address, ca = tls_redis
    emulator = HarborEmulator(admin_password=ADMIN_PASSWORD)
    try:

        def check(tls: bool) -> subprocess.CompletedProcess:
            harbor_yml = tmp_path / "harbor.yml"
            redis = {"host": address, "password": SECRETS.redis_password, "jobservice_db_index": JOBSERVICE_DB}
            document = {"harbor_admin_password": ADMIN_PASSWORD, "external_redis": {**redis, "tlsOptions": {"enable": tls}}}
            harbor_yml.write_text(yaml.safe_dump(document))
            env = {
                **os.environ,
                "HARBOR_YML": str(harbor_yml),
                "HARBOR_API": f"{emulator.url}/api/v2.0",
                "REDIS_TLS_CA": str(ca),
            }
            script = str(FILES_DIR / "harbor-schedules.py")
            return subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, timeout=60)

        over_tls = check(True)
        assert over_tls.returncode == 0, over_tls.stderr
        assert "jobservice holds no periodic policy" in over_tls.stdout and "nothing was scheduled" in over_tls.stdout
        plain = check(False)
        assert plain.returncode == 1 and "cannot read jobservice's policies from Redis" in plain.stderr
    finally:
        emulator.stop()
