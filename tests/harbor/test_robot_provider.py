"""The pull-only robot account's provider, driven through the real provider host against the Harbor
emulator (its /robots follows Harbor v2.15.2's handler/robot.go): create, read, diff, update, delete,
and the secret kept out of every error."""

from __future__ import annotations

import time

import grpc
import pytest
from pulumi.runtime import rpc
from pulumi.runtime.proto.provider_pb2 import DiffResponse

from components.harbor.api import HarborClient
from components.harbor.robot import HarborRobotProvider
from tests.standins.harbor_emulator import HarborEmulator
from tests.standins.provider_host import ProviderHost

ADMIN_PASSWORD = "Admin-Passw0rd"
FAST_RETRIES = {"HARBOR_CACHE_RETRY_BASE_DELAY": "0.01", "HARBOR_CACHE_RETRY_SECONDS": "1", "HARBOR_CACHE_HTTP_TIMEOUT": "2"}


@pytest.fixture
def harbor():
    emulator = HarborEmulator(admin_password=ADMIN_PASSWORD)
    for name in ("ghcr-proxy", "quay-proxy"):
        emulator.state.projects[emulator.state.new_id()] = {
            "project_id": emulator.state.next_id,
            "name": name,
            "registry_id": 0,
            "metadata": {"public": "false"},
            "repositories": [],
        }
    yield emulator
    emulator.stop()
    assert emulator.violations == [], "every request and response must fit Harbor's spec"


@pytest.fixture
def host():
    with ProviderHost(HarborRobotProvider(), env=FAST_RETRIES) as started:
        started.configure({})
        yield started


def inputs(harbor, **overrides) -> dict:
    return {
        "harbor_url": harbor.url,
        "harbor_username": "admin",
        "harbor_password": ADMIN_PASSWORD,
        "name": "harbor-cache-pull",
        "description": "nodes pull private proxy projects",
        "projects": ["ghcr-proxy", "quay-proxy"],
        "project_ids": ["2", "3"],
        **overrides,
    }


def test_create_read_update_delete(harbor, host):
    urn = host.urn("pull", "Robot")
    checked, failures = host.check(urn, inputs(harbor))
    assert failures == []
    robot_id, outputs = host.create(urn, checked)
    stored = harbor.state.robots[int(robot_id)]
    assert outputs["robot_name"] == "robot$harbor-cache-pull", "Harbor prefixes the name with robot$"
    assert outputs["secret"] == stored["secret"] and outputs["secret"]
    assert stored["level"] == "system" and stored["duration"] == -1
    assert stored["permissions"] == [
        {
            "kind": "project",
            "namespace": p,
            "access": [{"resource": "repository", "action": "pull"}, {"resource": "artifact", "action": "read"}],
        }
        for p in ("ghcr-proxy", "quay-proxy")
    ], "pull and read artifacts (the probe's proof), only on the listed projects"

    same_id, read = host.read(urn, robot_id, outputs)
    assert same_id == robot_id and read["secret"] == outputs["secret"], "the state keeps the secret GET never shows"
    assert read["projects"] == ["ghcr-proxy", "quay-proxy"]
    assert host.diff(urn, robot_id, read, checked).changes == DiffResponse.DIFF_NONE

    fewer, _ = host.check(urn, inputs(harbor, projects=["quay-proxy"]))
    diff = host.diff(urn, robot_id, read, fewer)
    assert diff.changes == DiffResponse.DIFF_SOME and not diff.replaces
    harbor.reset_calls()
    updated = host.update(urn, robot_id, read, fewer)
    assert harbor.calls == [("PUT", f"/robots/{robot_id}")], "the write proves the credential: no read after it"
    assert [p["namespace"] for p in harbor.state.robots[int(robot_id)]["permissions"]] == ["quay-proxy"]
    assert updated["secret"] == outputs["secret"], "an update keeps the credential nodes hold"

    recreated, _ = host.check(urn, inputs(harbor, projects=["quay-proxy"], project_ids=["99"]))
    diff = host.diff(urn, robot_id, updated, recreated)
    assert diff.changes == DiffResponse.DIFF_SOME, "a project re-created under its name (new id) needs the robot again"

    renamed, _ = host.check(urn, inputs(harbor, name="other"))
    assert list(host.diff(urn, robot_id, updated, renamed).replaces) == ["name"]

    host.delete(urn, robot_id, updated)
    assert harbor.state.robots == {}
    gone_id, _ = host.read(urn, robot_id, updated)
    assert gone_id == "", "a robot deleted in Harbor reads as gone"
    host.delete(urn, robot_id, updated)  # already gone: no error


def test_preview_with_unknown_projects_shows_an_update_not_a_failure(harbor, host):
    """In a preview the projects (and their ids) may not be known yet: check lets them through and
    diff says the robot changes, without calling Harbor."""
    urn = host.urn("pull", "Robot")
    checked, _ = host.check(urn, inputs(harbor))
    robot_id, outputs = host.create(urn, checked)
    harbor.reset_calls()
    unknown, failures = host.check(urn, inputs(harbor, projects=rpc.UNKNOWN, project_ids=rpc.UNKNOWN))
    assert failures == []
    diff = host.diff(urn, robot_id, outputs, unknown)
    assert diff.changes == DiffResponse.DIFF_SOME and list(diff.replaces) == []
    assert harbor.calls == []


def test_check_refuses_names_harbor_refuses(harbor, host):
    urn = host.urn("pull", "Robot")
    _, failures = host.check(urn, inputs(harbor, name="Pull+Bot", projects=[]))
    assert {prop for prop, _ in failures} == {"name", "projects"}


def test_a_robot_of_our_name_is_adopted_and_errors_never_carry_the_secret(harbor, host):
    urn = host.urn("pull", "Robot")
    checked, _ = host.check(urn, inputs(harbor))
    robot_id, outputs = host.create(urn, checked)
    secret = outputs["secret"]
    # A second create (the state lost it) takes the robot over and has Harbor issue a new secret.
    harbor.inject("PATCH", r"^/robots/", 500)
    with pytest.raises(grpc.RpcError) as refresh:
        host.create(urn, checked)
    assert "internal server error" in refresh.value.details() and len(harbor.state.robots) == 1
    adopted_id, adopted = host.create(urn, checked)
    assert adopted_id == robot_id and adopted["secret"] not in ("", secret)

    harbor.inject("PUT", r"^/robots/", 500)
    fewer, _ = host.check(urn, inputs(harbor, projects=["quay-proxy"]))
    with pytest.raises(grpc.RpcError) as failed:
        host.update(urn, robot_id, adopted, fewer)
    assert "internal server error" in failed.value.details()
    for error in (refresh.value, failed.value):
        for secret_value in (secret, adopted["secret"], ADMIN_PASSWORD):
            assert secret_value not in error.details()


def test_a_missing_project_fails_the_create_without_a_robot(harbor, host):
    urn = host.urn("pull", "Robot")
    checked, _ = host.check(urn, inputs(harbor, projects=["nope-proxy"]))
    with pytest.raises(grpc.RpcError, match="project nope-proxy not found"):
        host.create(urn, checked)
    assert harbor.state.robots == {}


def test_a_system_robot_lists_registries_and_gc_runs_and_harbor_refuses_more_than_its_rbac_allows(harbor, host):
    # The monitor robot: no project, system access only (kind "system", namespace "/").
    urn = host.urn("monitor", "Robot")
    access = [{"resource": "registry", "action": "list"}, {"resource": "garbage-collection", "action": "list"}]
    checked, failures = host.check(
        urn, inputs(harbor, name="harbor-cache-monitor", projects=[], project_ids=[], system_access=access)
    )
    assert failures == []
    robot_id, outputs = host.create(urn, checked)
    assert harbor.state.robots[int(robot_id)]["permissions"] == [{"kind": "system", "namespace": "/", "access": access}]
    assert outputs["secret"]
    # A refresh reads back exactly the access asked for (Harbor keeps no order): the next `up` finds nothing.
    harbor.state.robots[int(robot_id)]["permissions"][0]["access"].reverse()
    read_id, read = host.read(urn, robot_id, outputs, checked)
    assert read_id == robot_id and read["system_access"] == sorted(access, key=lambda a: (a["resource"], a["action"]))
    assert host.diff(urn, robot_id, read, checked).changes == DiffResponse.DIFF_NONE
    # One more system access, given by hand in Harbor, is drift the next `up` takes back.
    harbor.state.robots[int(robot_id)]["permissions"][0]["access"].append({"resource": "registry", "action": "read"})
    _, drifted = host.read(urn, robot_id, outputs, checked)
    assert host.diff(urn, robot_id, drifted, checked).changes == DiffResponse.DIFF_SOME
    # A permission Harbor's RBAC does not offer robots is a 400 (handler/robot.go validate), as the emulator says:
    # pulling is a project permission, never a system one (rbac/const.go PoliciesMap[ScopeSystem]).
    wrong, _ = host.check(
        host.urn("wrong", "Robot"),
        inputs(harbor, name="wrong", projects=[], project_ids=[], system_access=[{"resource": "repository", "action": "pull"}]),
    )
    with pytest.raises(grpc.RpcError, match="bad request permission: repository:pull"):
        host.create(host.urn("wrong", "Robot"), wrong)
    # A robot with neither projects nor system access is refused before Harbor is asked.
    _, failures = host.check(host.urn("none", "Robot"), inputs(harbor, projects=[], project_ids=[]))
    assert any("projects" in str(failure) for failure in failures)


def robot_lookups(harbor) -> int:
    """How often the robot was looked up by name (ListRobot), not GET /robots/{id}."""
    return sum(1 for call in harbor.calls if call == ("GET", "/robots"))


def test_a_create_harbor_completes_after_the_client_gave_up_is_found_by_looking_again_every_2_s(harbor):
    """Harbor is still working on our POST when the client's timeout ends (a slow core; the answer
    lost on the way): the robot shows only later. The provider looks the name up again until then,
    pausing between lookups rather than hammering a busy Harbor, and stops as soon as Harbor shows it.
    Harbor shows a system robot in ListRobot (handler/robot.go ListRobot, `q=name=` exact, ProjectID 0)
    from its create's commit on; the secret came only in the lost answer, so it is issued anew
    (PATCH, handler/robot.go RefreshSec)."""
    env = {**FAST_RETRIES, "HARBOR_CACHE_HTTP_TIMEOUT": "1", "HARBOR_CACHE_SETTLE_SECONDS": "20"}
    # Harbor acts 2 s after the POST arrived: the client gave up at 1 s and looks at ~1 s (empty),
    # then about 2 s later (found).
    harbor.inject("POST", r"^/robots$", "drop-after", delay=2.0)
    with ProviderHost(HarborRobotProvider(), env=env) as host:
        host.configure({})
        urn = host.urn("pull", "Robot")
        checked, _ = host.check(urn, inputs(harbor))
        started = time.monotonic()
        robot_id, outputs = host.create(urn, checked)
        took = time.monotonic() - started
    assert harbor.count("POST", "/robots") == 1, "the POST is never sent twice"
    stored = harbor.state.robots[int(robot_id)]
    assert list(harbor.state.robots) == [int(robot_id)] and outputs["secret"] == stored["secret"]
    # One lookup before the POST, one that finds nothing yet, one that finds it (one more if load
    # made it miss): never a lookup per millisecond, and none once found.
    assert 3 <= robot_lookups(harbor) <= 4, harbor.calls
    assert took < 10, "done when Harbor shows the robot, not at the end of the 20 s settle window"


def test_projects_listed_in_another_order_than_harbor_shows_them_are_no_change(harbor, host):
    """The program lists the projects in the upstreams' order; Harbor keeps no order (controller/robot
    populatePermissions walks a map) and a refresh keeps them sorted. Neither the diff nor a
    rotation of the admin password (nothing in Harbor changes) may take that for a change."""
    urn = host.urn("pull", "Robot")
    checked, _ = host.check(urn, inputs(harbor, projects=["quay-proxy", "ghcr-proxy"], project_ids=["3", "2"]))
    robot_id, outputs = host.create(urn, checked)
    _, read = host.read(urn, robot_id, outputs, checked)
    assert read["projects"] == ["ghcr-proxy", "quay-proxy"]
    assert host.diff(urn, robot_id, read, checked).changes == DiffResponse.DIFF_NONE

    harbor.state.admin_password = "Rotated-Passw0rd2"  # changed in Harbor first (README)
    harbor.reset_calls()
    host.update(urn, robot_id, read, {**checked, "harbor_password": "Rotated-Passw0rd2"})
    assert harbor.calls == [("GET", f"/robots/{robot_id}")], "one authenticated read proves the password; no write"


def test_a_state_from_before_disable_and_duration_were_read_shows_no_change(harbor, host):
    """States written before refresh read `disable` and `duration` lack them; our robot is enabled and
    never expires (robot_body), so an unchanged program after the upgrade changes nothing."""
    urn = host.urn("pull", "Robot")
    checked, _ = host.check(urn, inputs(harbor))
    robot_id, outputs = host.create(urn, checked)
    older = {key: value for key, value in outputs.items() if key not in ("disable", "duration")}
    assert host.diff(urn, robot_id, older, checked).changes == DiffResponse.DIFF_NONE


def test_a_robot_is_found_and_adopted_under_the_prefix_an_admin_set(harbor, host):
    """Harbor shows a robot as its robot_name_prefix + name (controller/robot populate), the prefix an
    admin may change from `robot$` (configuration robot_name_prefix). After a lost state, and after a
    POST that meets 409 because the lookup before it missed the robot, create must still recognise
    ours and adopt it, not fail; the name nodes log in with is the prefixed one."""
    HarborClient(harbor.url, "admin", ADMIN_PASSWORD).request("PUT", "/configurations", {"robot_name_prefix": "bot-"})
    urn = host.urn("pull", "Robot")
    checked, _ = host.check(urn, inputs(harbor))
    robot_id, outputs = host.create(urn, checked)
    assert outputs["robot_name"] == "bot-harbor-cache-pull"
    adopted_id, adopted = host.create(urn, checked)  # the state lost it: found by name before any POST
    assert adopted_id == robot_id and harbor.count("POST", "/robots") == 1
    harbor.inject("GET", r"^/robots$", "empty-list")  # another writer's create not yet visible: POST meets 409
    again_id, again = host.create(urn, checked)
    assert again_id == robot_id and harbor.count("POST", "/robots") == 2 and len(harbor.state.robots) == 1
    assert again["robot_name"] == "bot-harbor-cache-pull" and again["secret"] not in ("", adopted["secret"], outputs["secret"])
    robot = HarborClient(harbor.url, again["robot_name"], again["secret"])
    listed = robot.get("/projects?name=ghcr-proxy")  # 401 unless Harbor knows the robot by this name and secret
    assert [p["name"] for p in listed] == ["ghcr-proxy"], "the robot logs in with the name and secret the state holds"
