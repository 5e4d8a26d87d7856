"""Private proxy projects: the pull-only robot under Pulumi mocks (registered with its secret kept
secret) and its login in the shapes nodes consume."""

from __future__ import annotations

import base64
import json

import pytest
import yaml

from components.nodes.credentials import render_containers_auth_json, render_docker_config_json, render_talos_auth_patch
from components.nodes.k3s import render_k3s_registries_yaml
from components.nodes.mirrors import MirrorOptions, PullCredential
from components.vm import operate_files
from tests.standins.pulumi_harness import AwsMocks, dev_config, run_program

ROBOT = "pulumi-python:dynamic/harbor:Robot"
HOST = "harbor.dev.example.com"
PRIVATE = [
    {"name": "dockerhub", "type": "docker-hub", "url": "https://hub.docker.com", "registryHost": "docker.io", "public": False},
    {"name": "ghcr", "type": "github-ghcr", "url": "https://ghcr.io"},
    {"name": "quay", "type": "docker-registry", "url": "https://quay.io", "public": False},
]
CREDENTIAL = PullCredential("robot$harbor-cache-pull", "Robot-Secret-0123456789abcdef")


@pytest.fixture(scope="module")
def run():
    config = {
        **dev_config(),
        "harbor-cache:upstreams": PRIVATE,
        "harbor-cache:upstreamCredentials": {"dockerhub": {"username": "bot", "password": "hub-Token-1"}},
    }
    return run_program(config, secret_keys=("harbor-cache:upstreamCredentials",))


def test_one_robot_pulls_only_the_private_projects_after_they_exist(run):
    robot = run.named("harbor-config-pull-robot")
    assert robot.inputs["projects"] == ["dockerhub-proxy", "quay-proxy"]
    assert robot.inputs["name"] == "harbor-cache-pull"
    assert robot.inputs["project_ids"] == ["harbor-config-project-dockerhub-id", "harbor-config-project-quay-id"]
    for project in ("harbor-config-project-dockerhub", "harbor-config-project-quay"):
        assert run.named(project).urn in robot.dependencies
    assert run.named("harbor-install-ready").urn in robot.dependencies


def test_every_robot_waits_for_the_system_settings_that_own_its_name_prefix(run):
    """Harbor shows and authenticates a robot under robot_name_prefix as configured at that moment
    (controller/robot populate): an `up` that writes `robot$` back must do so before any robot is
    created or updated under that name (tests/harbor/test_robot_name_prefix.py drives both steps)."""
    settings = run.named("harbor-config-system-settings")
    assert settings.inputs["robot_name_prefix"] == "robot$"
    robots = run.of_type(ROBOT)
    assert sorted(r.name for r in robots) == ["harbor-config-monitor-robot", "harbor-config-pull-robot"]
    for robot in robots:
        assert settings.urn in robot.dependencies, robot.name


def test_the_nodes_login_is_the_owned_prefix_not_the_name_a_refresh_recorded(monkeypatch):
    """After a refresh that saw an admin's interim prefix, the robot's state holds Harbor's name of
    that moment (`bot$...`) while the `up` writes `robot$` back (tests/harbor/test_robot_name_prefix.py):
    the logins the program hands out are built from the prefix the settings own, whatever the robot's
    `robot_name` output says (components/harbor/config.py robot_login_name)."""
    answer = AwsMocks.new_resource

    def refreshed_under_bot(self, args):
        id_, state = answer(self, args)
        if args.typ == ROBOT:
            state = {**state, "robot_name": f"bot${args.inputs['name']}"}
        return id_, state

    monkeypatch.setattr(AwsMocks, "new_resource", refreshed_under_bot)
    run = run_program({**dev_config(), "harbor-cache:upstreams": PRIVATE})
    assert run.outputs["registryPullCredentials"]["username"] == "robot$harbor-cache-pull"
    # The VM's probe and reporter log in from files the deploy writes (components/vm/probe.py _login_file).
    written = {
        path: registration.inputs["stdin"]
        for registration in run.of_type("command:remote:Command")
        for path in (operate_files.PROBE_CREDENTIALS_PATH, operate_files.MONITOR_CREDENTIALS_PATH)
        if registration.inputs.get("create", "").endswith(" " + path)
    }
    assert written == {
        operate_files.PROBE_CREDENTIALS_PATH: "robot$harbor-cache-pull:Robot-Secret-0123456789abcdef\n",
        operate_files.MONITOR_CREDENTIALS_PATH: "robot$harbor-cache-monitor:Robot-Secret-0123456789abcdef\n",
    }


def test_the_robot_secret_is_secret_in_state_and_in_outputs(run):
    robot = run.named("harbor-config-pull-robot")
    assert {"secret", "harbor_password"} <= set(robot.additional_secret_outputs)
    assert "harbor_password" in robot.secret_keys()
    assert "registryPullCredentials" in run.secret_outputs
    login = run.outputs["registryPullCredentials"]
    assert login["username"] == "robot$harbor-cache-pull" and login["password"] == "Robot-Secret-0123456789abcdef"
    assert login["privateProjects"] == ["dockerhub-proxy", "quay-proxy"]
    # The plain outputs never carry it.
    for key, value in run.outputs.items():
        if key not in run.secret_outputs:
            assert "Robot-Secret" not in json.dumps(value, default=str), key


def test_no_private_project_no_robot():
    run = run_program(dev_config())
    # Only the monitor robot (the reporter's; system permissions, no project).
    assert [r.name for r in run.of_type(ROBOT)] == ["harbor-config-monitor-robot"]
    assert "registryPullCredentials" not in run.outputs


def test_dockerconfigjson_is_what_kubernetes_and_docker_read():
    document = json.loads(render_docker_config_json(HOST, CREDENTIAL))
    entry = document["auths"][HOST]
    assert base64.b64decode(entry["auth"]).decode() == "robot$harbor-cache-pull:Robot-Secret-0123456789abcdef"
    assert (entry["username"], entry["password"]) == (CREDENTIAL.username, CREDENTIAL.password)


def test_containers_auth_json_has_the_base64_login():
    document = json.loads(render_containers_auth_json(HOST, CREDENTIAL))
    assert document == {"auths": {HOST: {"auth": CREDENTIAL.basic}}}


def test_k3s_registries_yaml_carries_auth_for_the_cache_host(run):
    settings = run.namespace["settings"]
    document = yaml.safe_load(
        render_k3s_registries_yaml(HOST, settings.upstreams, MirrorOptions("/etc/ca.pem"), CREDENTIAL)
    )
    assert document["configs"][HOST] == {
        "auth": {"username": CREDENTIAL.username, "password": CREDENTIAL.password},
        "tls": {"ca_file": "/etc/ca.pem"},
    }
    assert document["mirrors"]["docker.io"]["rewrite"] == {"^(.*)$": "dockerhub-proxy/$1"}
    plain = yaml.safe_load(render_k3s_registries_yaml(HOST, settings.upstreams))
    assert "configs" not in plain, "the plain k3s output carries no login"


def test_talos_patch_carries_auth():
    document = yaml.safe_load(render_talos_auth_patch(HOST, CREDENTIAL))
    assert document["machine"]["registries"]["config"][HOST]["auth"] == {
        "username": CREDENTIAL.username,
        "password": CREDENTIAL.password,
    }


def test_the_credential_hides_its_password_in_repr():
    assert "Robot-Secret" not in repr(CREDENTIAL)
