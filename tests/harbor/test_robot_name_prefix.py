"""An admin changes Harbor's robot_name_prefix after our robots exist (issue 20), through the real
provider host against the emulator.

Harbor stores a robot's name without the prefix and shows and authenticates it under the prefix as
configured at that moment (controller/robot/controller.go populate, server/middleware/security/robot.go
Generate: lib/config/userconfig.go RobotPrefix). The system settings own `robot_name_prefix: robot$`
and the robots depend on them (components/harbor/config.py), so the program's `up` runs the settings'
step first and each robot's after it; this file drives those steps in that order, as the engine does,
and proves the outcome: the nodes' login is accepted by Harbor (the emulator), not that a call was made.
"""

from __future__ import annotations

import grpc
import pytest
from pulumi.runtime.proto.provider_pb2 import DiffResponse

from components.harbor.api import HarborApiError, HarborClient
from components.harbor.config import robot_login_name
from tests.harbor.test_provider_drift import (  # noqa: F401 (fixtures)
    ADMIN_PASSWORD,
    harbor,
    hosts,
    made,
)
from tests.standins.harbor_emulator import HarborEmulator
from tests.standins.provider_host import ProviderHost


def up_step(host: ProviderHost, urn: str, id_: str, state: dict, inputs: dict) -> dict:
    """One resource's step of `pulumi up`: the engine asks the provider for a diff of the state against
    the program's inputs and updates only when it shows a change (a same step keeps the state)."""
    diff = host.diff(urn, id_, state, inputs)
    assert list(diff.replaces) == [], "nothing here is replaced"
    return host.update(urn, id_, state, inputs) if diff.changes == DiffResponse.DIFF_SOME else state


def logs_in(emulator: HarborEmulator, login_name: str, secret: str) -> bool:
    """Whether Harbor takes the nodes' login: a robot's call answers 401 unless Harbor knows the robot
    under exactly this name and secret (middleware/security/robot.go Generate: no security context)."""
    try:
        listed = HarborClient(emulator.url, login_name, secret).get("/projects?name=a-proxy")
    except HarborApiError as error:
        if error.status == 401:
            return False
        raise
    return [p["name"] for p in listed] == ["a-proxy"]


def admin_sets_prefix(emulator: HarborEmulator, prefix: str) -> None:
    """As Harbor's UI does it (Configuration > System Settings > Robot Name Prefix)."""
    HarborClient(emulator.url, "admin", ADMIN_PASSWORD).request("PUT", "/configurations", {"robot_name_prefix": prefix})


@pytest.mark.parametrize("robot_changes", [{}, {"description": "nodes pull, and the probe reads artifacts"}])
def test_the_first_up_after_the_prefix_was_changed_restores_it_before_the_robot(harbor, hosts, robot_changes):  # noqa: F811
    """A stack from before the settings owned the prefix (their state lacks it), whose admin then set
    `bot$`: the nodes' login stops working. The next `up` writes `robot$` back in the settings' step
    (a setting the state lacks is applied), then the robot's step runs, also when it updates the robot
    (its PUT must repeat the name as Harbor shows it: handler/robot.go updateV2Robot), and the nodes log
    in with the robot name the state holds."""
    settings, settings_urn, settings_inputs, settings_id, settings_outputs = made(harbor, hosts, "settings")
    older_settings = {k: v for k, v in settings_outputs.items() if k != "robot_name_prefix"}
    robot, robot_urn, robot_inputs, robot_id, robot_state = made(harbor, hosts, "robot")
    assert robot_state["robot_name"] == "robot$harbor-cache-pull"
    assert logs_in(harbor, robot_state["robot_name"], robot_state["secret"])

    admin_sets_prefix(harbor, "bot$")
    assert not logs_in(harbor, robot_state["robot_name"], robot_state["secret"]), "the gap: renamed under the nodes"

    up_step(settings, settings_urn, settings_id, older_settings, settings_inputs)
    assert harbor.state.configurations["robot_name_prefix"] == "robot$"
    robot_state = up_step(robot, robot_urn, robot_id, robot_state, {**robot_inputs, **robot_changes})
    if robot_changes:
        assert harbor.state.robots[int(robot_id)]["description"] == robot_changes["description"], "the robot was updated"
    assert logs_in(harbor, robot_state["robot_name"], robot_state["secret"]), "nodes log in with the robot name in state"


def test_the_robot_step_before_the_settings_step_is_refused(harbor, hosts):  # noqa: F811
    """Why the robot depends on the settings: with Harbor still at `bot$`, the robot's update repeats
    the name the state holds, `robot$...`, which Harbor refuses (updateV2Robot: 400 "cannot update the
    level or name of robot"); the same update after the settings' step succeeds."""
    settings, settings_urn, settings_inputs, settings_id, settings_outputs = made(harbor, hosts, "settings")
    robot, robot_urn, robot_inputs, robot_id, robot_state = made(harbor, hosts, "robot")
    admin_sets_prefix(harbor, "bot$")
    changed = {**robot_inputs, "description": "by the next release"}
    with pytest.raises(grpc.RpcError, match="cannot update the level or name of robot"):
        robot.update(robot_urn, robot_id, robot_state, changed)
    _, refreshed = settings.read(settings_urn, settings_id, settings_outputs)
    up_step(settings, settings_urn, settings_id, refreshed, settings_inputs)
    robot_state = up_step(robot, robot_urn, robot_id, robot_state, changed)
    assert logs_in(harbor, robot_state["robot_name"], robot_state["secret"])


def test_a_refresh_then_up_after_the_prefix_was_changed_leaves_the_nodes_login_working(harbor, hosts):  # noqa: F811
    """`pulumi up --refresh` (or a refresh, then `up`) after an admin set `bot$`: the settings' refresh
    shows the drift and the robot's refresh records the name Harbor shows at that moment,
    `bot$harbor-cache-pull` (its provider, components/harbor/robot.py, takes the name only from
    Harbor). The up then writes `robot$` back; the robot, unchanged in our terms, gets no step and
    keeps the interim name in its state until the next refresh. The login the program hands the
    nodes is built from the prefix the settings own (robot_login_name), so Harbor takes it; the
    robot's stale `robot_name` is shown to be what a next refresh corrects."""
    settings, settings_urn, settings_inputs, settings_id, settings_state = made(harbor, hosts, "settings")
    robot, robot_urn, robot_inputs, robot_id, robot_state = made(harbor, hosts, "robot")
    nodes_login = robot_login_name(robot_inputs["name"])
    assert nodes_login == robot_state["robot_name"] == "robot$harbor-cache-pull"

    admin_sets_prefix(harbor, "bot$")
    _, settings_state = settings.read(settings_urn, settings_id, settings_state)
    _, robot_state = robot.read(robot_urn, robot_id, robot_state)
    assert settings_state["robot_name_prefix"] == "bot$" and robot_state["robot_name"] == "bot$harbor-cache-pull"

    up_step(settings, settings_urn, settings_id, settings_state, settings_inputs)
    robot_state = up_step(robot, robot_urn, robot_id, robot_state, robot_inputs)
    assert harbor.state.configurations["robot_name_prefix"] == "robot$"
    assert logs_in(harbor, nodes_login, robot_state["secret"]), "the nodes' login works after this one up"

    assert robot_state["robot_name"] == "bot$harbor-cache-pull", "the robot's own state lags (robot.py)"
    _, robot_state = robot.read(robot_urn, robot_id, robot_state)
    assert robot_state["robot_name"] == nodes_login, "the next refresh records the name again"
