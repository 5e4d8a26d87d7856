"""Harbor's objects are made again when Harbor's database changes (issue 13: switching a stack from
one VM to RDS / HA).

Through the real provider host, as the engine calls it (pulumi sdk/python/lib/pulumi/dynamic/__main__.py
Diff passes the provider's `replaces` and `delete_before_replace` on unchanged; for a replace with
deleteBeforeReplace the engine sends Delete with the old outputs, then Create with the new inputs),
against the Harbor emulator whose `switch_database` stands for Harbor restarted on an empty database.
Under mocks: the identity the program passes for each data mode."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pulumi.runtime import rpc
from pulumi.runtime.proto.provider_pb2 import DiffResponse

from components.harbor.gc_schedule import HarborGcScheduleProvider
from components.harbor.oidc import HarborOidcProvider
from components.harbor.project import HarborProjectProvider
from components.harbor.registry import HarborRegistryProvider
from components.harbor.robot import HarborRobotProvider
from tests.standins.harbor_emulator import HarborEmulator
from tests.standins.provider_host import ProviderHost, as_engine_sends
from tests.standins.pulumi_harness import dev_config, run_program, unwrap_secrets

ADMIN_PASSWORD = "Admin-Passw0rd"
FAST_RETRIES = {"HARBOR_CACHE_RETRY_BASE_DELAY": "0.01", "HARBOR_CACHE_HTTP_TIMEOUT": "2", "HARBOR_CACHE_SETTLE_SECONDS": "1"}
RDS = "rds:harbor-cache-data-db-id"
KINDS = ("Registry", "Project", "Robot", "OidcAuth", "GcSchedule")


@pytest.fixture
def harbor():
    emulator = HarborEmulator(admin_password=ADMIN_PASSWORD)
    yield emulator
    emulator.stop()
    assert emulator.violations == [], "every request and response must fit Harbor's spec"


@pytest.fixture
def hosts():
    started = {}
    for kind, provider in (
        ("Registry", HarborRegistryProvider()),
        ("Project", HarborProjectProvider()),
        ("Robot", HarborRobotProvider()),
        ("OidcAuth", HarborOidcProvider()),
        ("GcSchedule", HarborGcScheduleProvider()),
    ):
        started[kind] = ProviderHost(provider, env=FAST_RETRIES)
        started[kind].configure({"harbor-cache:hostname": "harbor.dev.example.com"})
    yield started
    for host in started.values():
        host.close()


def connection(harbor, database: str | None) -> dict:
    values = {"harbor_url": harbor.url, "harbor_username": "admin", "harbor_password": ADMIN_PASSWORD}
    return values if database is None else {**values, "database": database}


def inputs(kind: str, harbor, database: str | None, **overrides) -> dict:
    """The inputs components/harbor/config.py registers for each kind (dev stack values)."""
    values = {
        "Registry": {"name": "dockerhub", "type": "docker-hub", "url": "https://hub.docker.com", "description": "Docker Hub"},
        "Project": {"name": "dockerhub-proxy", "public": False, "retention_days": 7},
        "Robot": {"name": "harbor-cache-pull", "description": "pull", "projects": ["dockerhub-proxy"]},
        "OidcAuth": {
            "oidc_name": "dex",
            "oidc_endpoint": "https://dex.dev.example.com",
            "oidc_client_id": "harbor-cache-oidc-dex",
            "oidc_client_secret": "Y2xpZW50LXNlY3JldC0yMGJ5dGVz",
        },
        "GcSchedule": {"cron": "0 0 3 * * 0", "delete_untagged": True, "workers": 1},
    }[kind]
    return as_engine_sends({**connection(harbor, database), **values, **overrides})


@dataclass
class Made:
    urn: str
    id: str
    outputs: dict
    inputs: dict


def make(hosts, harbor, database: str | None) -> dict[str, Made]:
    """Every kind of object, created in Harbor's current database, in the program's order."""
    made: dict[str, Made] = {}
    for kind in KINDS:
        host = hosts[kind]
        urn = host.urn(kind.lower(), kind)
        extra = {}
        if kind == "Project":
            extra = {"registry_id": int(made["Registry"].id)}
        elif kind == "Robot":
            extra = {"project_ids": [made["Project"].id]}
        checked, failures = host.check(urn, inputs(kind, harbor, database, **extra))
        assert failures == []
        object_id, outputs = host.create(urn, checked)
        made[kind] = Made(urn, object_id, outputs, checked)
    return made


def test_a_new_database_replaces_every_object_deleting_the_old_one_first(harbor, hosts):
    old = make(hosts, harbor, "local")
    harbor.switch_database()
    for kind, was in old.items():
        news, _ = hosts[kind].check(was.urn, {**was.inputs, "database": RDS}, olds=was.inputs)
        diff = hosts[kind].diff(was.urn, was.id, was.outputs, news)
        assert diff.changes == DiffResponse.DIFF_SOME, kind
        assert list(diff.replaces) == ["database"] and diff.deleteBeforeReplace, kind
    # The engine deletes dependents first (robot, project, registry), each tolerating a missing object.
    for kind in reversed(KINDS):
        hosts[kind].delete(old[kind].urn, old[kind].id, old[kind].outputs)
    new = make(hosts, harbor, RDS)

    state = harbor.state
    registry = next(iter(state.registries.values()))
    project = harbor.project_by_name("dockerhub-proxy")
    assert registry["name"] == "dockerhub" and project["registry_id"] == int(new["Registry"].id)
    assert [p["namespace"] for p in next(iter(state.robots.values()))["permissions"]] == ["dockerhub-proxy"]
    assert state.configurations["auth_mode"] == "oidc_auth" and state.gc_schedule["schedule"]["cron"] == "0 0 3 * * 0"
    for kind, now in new.items():
        assert now.outputs["database"] == RDS, kind
        again, _ = hosts[kind].check(now.urn, now.inputs, olds=now.inputs)
        assert hosts[kind].diff(now.urn, now.id, now.outputs, again).changes == DiffResponse.DIFF_NONE, kind


def test_a_state_from_before_the_database_input_is_local_and_changes_nothing(harbor, hosts):
    made = make(hosts, harbor, None)
    for kind, was in made.items():
        older = {key: value for key, value in was.outputs.items() if key != "database"}
        news, failures = hosts[kind].check(was.urn, inputs(kind, harbor, "local", **_links(made, kind)), olds=older)
        assert failures == [] and news["database"] == "local", kind
        assert hosts[kind].diff(was.urn, was.id, older, news).changes == DiffResponse.DIFF_NONE, kind
        moved = hosts[kind].diff(was.urn, was.id, older, {**news, "database": RDS})
        assert moved.changes == DiffResponse.DIFF_SOME and list(moved.replaces) == ["database"], kind


def test_a_preview_that_creates_the_database_shows_the_replace_up_does(harbor, hosts):
    made = make(hosts, harbor, "local")
    for kind, was in made.items():
        # The RDS instance is created by the same `up`: its id, hence the identity, is unknown.
        diff = hosts[kind].diff(was.urn, was.id, was.outputs, {**was.inputs, "database": rpc.UNKNOWN})
        assert diff.changes == DiffResponse.DIFF_SOME and list(diff.replaces) == ["database"], kind


def test_the_old_registrys_delete_leaves_alone_what_the_new_database_holds_at_its_id(harbor, hosts):
    host = hosts["Registry"]
    urns = {name: host.urn(name, "Registry") for name in ("quay", "ghcr")}
    old = {}
    for name, url in (("quay", "https://quay.io"), ("ghcr", "https://ghcr.io")):
        checked, _ = host.check(urns[name], inputs("Registry", harbor, "local", name=name, type="docker-registry", url=url))
        old[name] = host.create(urns[name], checked)
    harbor.switch_database()
    # The engine runs other resources' steps in parallel: ghcr is made again before quay's old
    # object is deleted, and a new database hands it quay's old id.
    checked, _ = host.check(
        urns["ghcr"], inputs("Registry", harbor, RDS, name="ghcr", type="docker-registry", url="https://ghcr.io")
    )
    ghcr_id, _ = host.create(urns["ghcr"], checked)
    assert ghcr_id == old["quay"][0]
    host.delete(urns["quay"], *old["quay"])
    assert harbor.state.registries[int(ghcr_id)]["name"] == "ghcr", "quay's delete must not remove ghcr"


def add_project(harbor, name: str = "dockerhub-proxy") -> None:
    project_id = harbor.state.new_id()
    harbor.state.projects[project_id] = {
        "project_id": project_id,
        "name": name,
        "registry_id": 0,
        "metadata": {"public": "false"},
        "repositories": [],
    }


def test_the_old_robots_delete_leaves_alone_a_robot_the_new_database_holds_at_its_id(harbor, hosts):
    robots = hosts["Robot"]
    urn = robots.urn("pull", "Robot")
    add_project(harbor)
    checked, _ = robots.check(urn, inputs("Robot", harbor, "local"))
    robot_id, robot = robots.create(urn, checked)
    harbor.switch_database()
    add_project(harbor)
    # Someone's robot in the new database, at the id our robot had in the old one.
    stranger, _ = robots.check(urn, inputs("Robot", harbor, RDS, name="someone-else"))
    assert robots.create(urn, stranger)[0] == robot_id
    robots.delete(urn, robot_id, robot)
    assert harbor.state.robots[int(robot_id)]["name"] == "someone-else"


def _links(made: dict[str, Made], kind: str) -> dict:
    if kind == "Project":
        return {"registry_id": int(made["Registry"].id)}
    if kind == "Robot":
        return {"project_ids": [made["Project"].id]}
    return {}


# --- under mocks: the identity the program passes ---


def config(**overrides) -> dict:
    return {**dev_config(), **{f"harbor-cache:{key}": value for key, value in overrides.items()}}


def databases(run) -> dict[str, str]:
    """The `database` input of every Harbor object the program registers, by resource name."""
    found = {
        r.name: unwrap_secrets(r.inputs).get("database")
        for r in run.registrations
        if r.type.startswith("pulumi-python:dynamic/harbor:")
    }
    assert {r.type.rsplit(":", 1)[1] for r in run.registrations if r.name in found} >= {"Registry", "Project", "GcSchedule"}
    return found


def test_the_database_input_follows_the_data_mode_and_only_it():
    local = databases(run_program(config()))
    assert set(local.values()) == {"local"}
    assert databases(run_program(config())) == local, "an unchanged config changes nothing"
    assert databases(run_program(config(storage="s3"))) == local, "S3 storage leaves the database where it is"

    external = run_program(config(externalServices=True))
    instance = external.one("aws:rds/instance:Instance")
    assert set(databases(external).values()) == {f"rds:{instance.name}-id"}, "the RDS instance's id (AwsMocks)"
    assert databases(external).keys() == local.keys(), "the same objects, made again in the new database"
    several = run_program(config(replicas=3, storage="s3", externalServices=True))
    assert set(databases(several).values()) == set(databases(external).values()), "more nodes share the same database"


def test_check_names_a_database_that_is_not_a_string(harbor, hosts):
    for kind in ("Registry", "Robot"):
        _, failures = hosts[kind].check(hosts[kind].urn("x", kind), {**inputs(kind, harbor, "local"), "database": 5.0})
        assert [key for key, _ in failures] == ["database"] and "must be a string" in failures[0][1], kind


def test_a_renamed_project_on_a_new_database_is_still_deleted_first(harbor, hosts):
    made = make(hosts, harbor, "local")
    was = made["Project"]
    news, _ = hosts["Project"].check(was.urn, {**was.inputs, "name": "hub-proxy", "database": RDS}, olds=was.inputs)
    diff = hosts["Project"].diff(was.urn, was.id, was.outputs, news)
    assert sorted(diff.replaces) == ["database", "name"] and diff.deleteBeforeReplace
