"""The monitor robot reads each proxy project's retention runs, and nothing more, and the reporter
turns them into RetentionFailed per project (issue 19 point 6: retention job failures alarm).

Harbor is the emulator, whose robot logins and RBAC follow Harbor v2.15.2 for every call a robot
makes here (tests/standins/harbor_emulator.py robot_route: middleware/security/robot.go, handler/
project.go ListProjects, handler/retention.go ListRetentionExecutions, common/security/robot
Can); the robot is made by its real provider through the provider host, with the program's own
permissions (components/harbor/config.py); the reporter is files/harbor-metrics.py as it runs on the VM.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest
from pulumi.runtime.proto.provider_pb2 import DiffResponse

from components.harbor.api import HarborClient
from components.harbor.config import MONITOR_ACCESS, MONITOR_PROJECT_ACCESS, MONITOR_ROBOT_NAME
from components.harbor.robot import HarborRobotProvider
from tests.aws.test_alarms import Loopback
from tests.standins.harbor_emulator import HarborEmulator
from tests.standins.provider_host import ProviderHost
from tests.vm.test_reporter_sources import by_key, run_report

ADMIN_PASSWORD = "Admin-Passw0rd"
PROXY_PROJECTS = ("dockerhub-proxy", "ghcr-proxy")


@pytest.fixture
def harbor():
    """Two proxy projects (each with the retention policy Harbor gives a proxy project) and one
    project of someone else's, private, with a retention policy of its own."""
    emulator = HarborEmulator(admin_password=ADMIN_PASSWORD)
    admin = HarborClient(emulator.url, "admin", ADMIN_PASSWORD)
    for index, project in enumerate(PROXY_PROJECTS):
        answer = admin.request(
            "POST", "/registries", {"name": f"upstream-{index}", "type": "docker-registry", "url": "https://r.example"}
        )
        registry_id = int(answer.location_id())
        admin.request("POST", "/projects", {"project_name": project, "registry_id": registry_id, "metadata": {"public": "false"}})
    admin.request("POST", "/projects", {"project_name": "team-private", "metadata": {"public": "false"}})
    team = emulator.project_by_name("team-private")
    policy = {
        "algorithm": "or",
        "rules": [],
        "trigger": {"kind": "Schedule", "settings": {"cron": "0 0 1 * * *"}},
        "scope": {"level": "project", "ref": team["project_id"]},
    }
    admin.request("POST", "/retentions", policy)
    yield emulator
    emulator.stop()
    assert emulator.violations == [], "every request and response must fit Harbor's spec"


@pytest.fixture
def host():
    env = {"HARBOR_CACHE_RETRY_BASE_DELAY": "0.01", "HARBOR_CACHE_RETRY_SECONDS": "1", "HARBOR_CACHE_HTTP_TIMEOUT": "2"}
    with ProviderHost(HarborRobotProvider(), env=env) as started:
        started.configure({})
        yield started


def monitor_inputs(harbor: HarborEmulator, **overrides) -> dict:
    """What components/harbor/config.py gives the monitor robot, against this Harbor."""
    return {
        "harbor_url": harbor.url,
        "harbor_username": "admin",
        "harbor_password": ADMIN_PASSWORD,
        "name": MONITOR_ROBOT_NAME,
        "description": "monitor",
        "projects": list(PROXY_PROJECTS),
        "project_ids": [str(harbor.project_by_name(p)["project_id"]) for p in PROXY_PROJECTS],
        "system_access": MONITOR_ACCESS,
        "project_access": MONITOR_PROJECT_ACCESS,
        **overrides,
    }


def as_robot(harbor: HarborEmulator, login: str, method: str, path: str) -> tuple[int, object]:
    auth = "Basic " + base64.b64encode(login.encode()).decode()
    request = urllib.request.Request(f"{harbor.url}/api/v2.0{path}", method=method, headers={"Authorization": auth})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def retention_id(harbor: HarborEmulator, project: str) -> int:
    return int(harbor.project_by_name(project)["metadata"]["retention_id"])


def test_the_monitor_robot_lists_the_proxy_projects_retention_runs_and_nothing_more(harbor, host):
    urn = host.urn("monitor", "Robot")
    checked, failures = host.check(urn, monitor_inputs(harbor))
    assert failures == []
    robot_id, outputs = host.create(urn, checked)
    stored = harbor.state.robots[int(robot_id)]["permissions"]
    assert stored == [
        {"kind": "project", "namespace": "dockerhub-proxy", "access": MONITOR_PROJECT_ACCESS},
        {"kind": "project", "namespace": "ghcr-proxy", "access": MONITOR_PROJECT_ACCESS},
        {"kind": "system", "namespace": "/", "access": MONITOR_ACCESS},
    ], "by project name, never '*', and list only"
    login = f"{outputs['robot_name']}:{outputs['secret']}"

    # GET /projects lists the robot its projects, with the policy id; not the other private project.
    status, listed = as_robot(harbor, login, "GET", "/projects?page=1&page_size=100")
    assert status == 200 and sorted(p["name"] for p in listed) == sorted(PROXY_PROJECTS)
    for project in PROXY_PROJECTS:
        harbor.add_retention_execution(project, "Success", "2026-12-05T00:00:00Z")
        status, runs = as_robot(
            harbor, login, "GET", f"/retentions/{retention_id(harbor, project)}/executions?page=1&page_size=20"
        )
        assert status == 200 and [run["status"] for run in runs] == ["Success"]
    # Read-only, and only the proxy projects: another project's runs, reading or running a policy: 403.
    assert as_robot(harbor, login, "GET", f"/retentions/{retention_id(harbor, 'team-private')}/executions")[0] == 403
    assert as_robot(harbor, login, "GET", f"/retentions/{retention_id(harbor, 'ghcr-proxy')}")[0] == 403
    assert as_robot(harbor, login, "POST", f"/retentions/{retention_id(harbor, 'ghcr-proxy')}/executions")[0] == 403
    assert as_robot(harbor, login, "GET", "/retentions/999/executions")[0] == 400, "no such policy (handler wraps it as 400)"
    assert as_robot(harbor, login, "GET", "/system/gc?page=1&page_size=1")[0] == 200
    assert as_robot(harbor, login, "GET", "/registries?page_size=100")[0] == 200
    assert as_robot(harbor, login.replace(":", ":x"), "GET", "/projects")[0] == 401, "a wrong secret: no security context"

    # A refresh reads back exactly what was asked: the next `up` changes nothing.
    read_id, read = host.read(urn, robot_id, outputs, checked)
    assert read_id == robot_id and sorted(read["projects"]) == sorted(PROXY_PROJECTS)
    assert host.diff(urn, robot_id, read, checked).changes == DiffResponse.DIFF_NONE

    # Disabled by hand in Harbor: the login no longer works (robot.go Generate), and `up` enables it again.
    harbor.state.robots[int(robot_id)]["disable"] = True
    assert as_robot(harbor, login, "GET", "/projects")[0] == 401


def test_a_monitor_robot_from_before_cannot_see_retention_runs_and_the_next_up_gives_it_the_permission(harbor, host):
    """The monitor robot as deployed before this change (system access only): Harbor shows it no
    private project and refuses the runs; the `up` that brings the change updates it in place."""
    urn = host.urn("monitor", "Robot")
    before = monitor_inputs(harbor, projects=[], project_ids=[])
    del before["project_access"]
    checked, _ = host.check(urn, before)
    robot_id, outputs = host.create(urn, checked)
    login = f"{outputs['robot_name']}:{outputs['secret']}"
    assert as_robot(harbor, login, "GET", "/projects")[1] == []
    assert as_robot(harbor, login, "GET", f"/retentions/{retention_id(harbor, 'ghcr-proxy')}/executions")[0] == 403

    news, _ = host.check(urn, monitor_inputs(harbor))
    assert host.diff(urn, robot_id, outputs, news).changes == DiffResponse.DIFF_SOME
    updated = host.update(urn, robot_id, outputs, news)
    assert updated["secret"] == outputs["secret"], "the same robot, the same secret"
    assert as_robot(harbor, login, "GET", f"/retentions/{retention_id(harbor, 'ghcr-proxy')}/executions")[0] == 200


def test_the_reporter_alarms_on_a_failed_retention_run_per_project_and_on_runs_it_cannot_see(harbor, host, tmp_path):
    urn = host.urn("monitor", "Robot")
    checked, _ = host.check(urn, monitor_inputs(harbor))
    _, outputs = host.create(urn, checked)
    credentials = tmp_path / "monitor"
    credentials.write_text(f"{outputs['robot_name']}:{outputs['secret']}\n")
    # dockerhub-proxy: the newest run is still Running, the newest finished one failed.
    harbor.add_retention_execution("dockerhub-proxy", "Error", "2026-12-04T00:00:00Z")
    harbor.add_retention_execution("dockerhub-proxy", "Running", "2026-12-05T00:00:00Z")
    # ghcr-proxy: failed once, then succeeded.
    harbor.add_retention_execution("ghcr-proxy", "Success", "2026-12-05T00:00:00Z")
    harbor.add_retention_execution("ghcr-proxy", "Error", "2026-12-03T00:00:00Z")
    env = {
        "HARBOR_API_URL": f"{harbor.url}/api/v2.0",
        "MONITOR_CREDENTIALS": str(credentials),
        "PROXY_PROJECTS": ",".join(PROXY_PROJECTS),
    }
    cloud = Loopback(health={"status": "healthy", "components": []})
    try:
        result, data = run_report(cloud, tmp_path / "state", **env)
        found = by_key(data)
        assert found[("RetentionFailed", "Project=dockerhub-proxy")] == 1
        assert found[("RetentionFailed", "Project=ghcr-proxy")] == 0
        assert found[("GcFailed",)] == 0, "the same robot still reads the GC history"
        assert outputs["secret"] not in result.stdout + result.stderr

        # A robot that may not list the runs (as before this change): no false green, both alarm.
        before = monitor_inputs(harbor, name="old-monitor", projects=[], project_ids=[])
        del before["project_access"]
        old_checked, _ = host.check(host.urn("old", "Robot"), before)
        _, old = host.create(host.urn("old", "Robot"), old_checked)
        credentials.write_text(f"{old['robot_name']}:{old['secret']}\n")
        result, data = run_report(cloud, tmp_path / "state", **env)
        found = by_key(data)
        assert found[("RetentionFailed", "Project=dockerhub-proxy")] == 1
        assert found[("RetentionFailed", "Project=ghcr-proxy")] == 1
        assert "no retention policy" in result.stderr
    finally:
        cloud.stop()
