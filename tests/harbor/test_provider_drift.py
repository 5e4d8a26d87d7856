"""What refresh and rotation must do for every Harbor object, through the real provider host:

- drift: each managed field changed in Harbor (the emulator) one at a time; refresh (Read) must
  report Harbor's value and the next diff must show a change, which update then undoes; an
  untouched object reads back with no diff at all (no false drift);
- rotation: a new admin password (or API URL) updates every object's connection without writing to
  Harbor, with one authenticated call that proves the new credential; a wrong one fails there.

A provider whose read returned the stored state, or whose update crashed on a connection-only
change, fails here."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import pytest
from pulumi.runtime import rpc
from pulumi.runtime.proto.provider_pb2 import DiffResponse

from components.harbor.api import HarborClient
from components.harbor.gc_schedule import HarborGcScheduleProvider
from components.harbor.oidc import HarborOidcProvider
from components.harbor.project import HarborProjectProvider
from components.harbor.registry import HarborRegistryProvider
from components.harbor.robot import HarborRobotProvider
from components.harbor.system_settings import HarborSystemSettingsProvider
from tests.harbor.test_harbor_emulator import TEST_CA
from tests.standins.harbor_emulator import HarborEmulator, default_retention
from tests.standins.provider_host import ProviderHost, as_engine_sends

ADMIN_PASSWORD = "Admin-Passw0rd"
ROTATED_PASSWORD = "Rotated-Passw0rd2"
FAST = {
    "HARBOR_CACHE_RETRY_BASE_DELAY": "0.01",
    "HARBOR_CACHE_RETRY_SECONDS": "0.5",
    "HARBOR_CACHE_HTTP_TIMEOUT": "2",
    "HARBOR_CACHE_REGISTRY_WRITE_TIMEOUT": "2",
    "HARBOR_CACHE_SETTLE_SECONDS": "1",
}
WRITES = ("POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class Kind:
    provider: type
    type_name: str
    inputs: Callable[[HarborEmulator], dict]


def connection(harbor: HarborEmulator, password: str = ADMIN_PASSWORD) -> dict:
    return {"harbor_url": harbor.url, "harbor_username": "admin", "harbor_password": password}


def add_registry(harbor: HarborEmulator, name: str) -> int:
    registry_id = harbor.state.new_id()
    harbor.state.registries[registry_id] = {
        "id": registry_id,
        "name": name,
        "type": "docker-registry",
        "url": "https://upstream.example.com",
        "description": "",
        "insecure": False,
        "credential": {"type": "basic", "access_key": "", "access_secret": ""},
        "ca_certificate": "",
        "status": "healthy",
    }
    return registry_id


def add_project(harbor: HarborEmulator, name: str) -> None:
    """A proxy project made in Harbor beforehand, with the quota Harbor gives every project."""
    project_id = harbor.state.new_id()
    harbor.state.projects[project_id] = {
        "project_id": project_id,
        "name": name,
        "registry_id": add_registry(harbor, f"{name}-upstream"),
        "metadata": {"public": "false"},
        "repositories": [],
    }
    quota_id = harbor.state.new_id()
    harbor.state.quotas[quota_id] = {
        "id": quota_id,
        "ref": {"id": project_id, "name": name, "owner_name": "admin"},
        "hard": {"storage": -1},
        "used": {"storage": 0},
    }


KINDS = {
    "registry": Kind(
        HarborRegistryProvider,
        "Registry",
        lambda harbor: {
            **connection(harbor),
            "name": "ghcr",
            "type": "github-ghcr",
            "url": "https://ghcr.io",
            "description": "GitHub",
            "insecure": False,
            "ca_certificate": "",
            "access_key": "bot",
            "access_secret": "token-1",
        },
    ),
    "project": Kind(
        HarborProjectProvider,
        "Project",
        lambda harbor: {
            **connection(harbor),
            "name": "ghcr-proxy",
            "registry_id": add_registry(harbor, "ghcr-upstream"),
            "public": False,
            "storage_quota_gb": 20,
            "speed_limit_kbps": 1000,
            "local_on_not_found": True,
            "max_upstream_conn": 8,
            "retention_days": 14,
            "force_destroy": False,
        },
    ),
    "oidc": Kind(
        HarborOidcProvider,
        "OidcAuth",
        lambda harbor: {
            **connection(harbor),
            "oidc_name": "dex",
            "oidc_endpoint": "https://dex.example.com",
            "oidc_client_id": "harbor",
            "oidc_client_secret": "Y2xpZW50LXNlY3JldA==",
            "oidc_groups_claim": "groups",
            "oidc_admin_group": "admins",
            "oidc_scope": "openid,profile,email,groups,offline_access",
            "oidc_verify_cert": True,
            "oidc_auto_onboard": False,
            "oidc_user_claim": "",
        },
    ),
    "gc": Kind(
        HarborGcScheduleProvider,
        "GcSchedule",
        lambda harbor: {**connection(harbor), "cron": "0 0 3 * * 0", "delete_untagged": True, "workers": 2},
    ),
    "robot": Kind(
        HarborRobotProvider,
        "Robot",
        lambda harbor: {
            **connection(harbor),
            "name": "harbor-cache-pull",
            "description": "nodes pull",
            "projects": ["a-proxy", "b-proxy"],
            "project_ids": ["1", "2"],
        },
    ),
    "settings": Kind(
        HarborSystemSettingsProvider,
        "SystemSettings",
        lambda harbor: {
            **connection(harbor),
            "project_creation_restriction": "adminonly",
            "self_registration": False,
            "robot_name_prefix": "robot$",
        },
    ),
}


@pytest.fixture
def harbor():
    emulator = HarborEmulator(admin_password=ADMIN_PASSWORD)
    add_project(emulator, "a-proxy")
    add_project(emulator, "b-proxy")
    add_project(emulator, "c-proxy")
    yield emulator
    emulator.stop()
    assert emulator.violations == [], "every request and response must fit Harbor's spec"


@pytest.fixture(scope="module")
def hosts():
    started: dict[str, ProviderHost] = {}

    def host(kind: str) -> ProviderHost:
        if kind not in started:
            started[kind] = ProviderHost(KINDS[kind].provider(), env=FAST)
            started[kind].configure({})
        return started[kind]

    yield host
    for each in started.values():
        each.close()


def made(harbor, hosts, kind: str) -> tuple[ProviderHost, str, dict, str, dict]:
    """The object created through the host: (host, urn, checked inputs, id, outputs)."""
    host = hosts(kind)
    urn = host.urn(kind, KINDS[kind].type_name)
    inputs, failures = host.check(urn, as_engine_sends(KINDS[kind].inputs(harbor)))
    assert failures == []
    id_, outputs = host.create(urn, inputs)
    return host, urn, inputs, id_, outputs


def the(items: dict) -> dict:
    (item,) = items.values()
    return item


def registry_of(harbor) -> dict:
    return next(r for r in harbor.state.registries.values() if r["type"] == "github-ghcr")


def project_of(harbor) -> dict:
    return harbor.project_by_name("ghcr-proxy")


def retention_of(harbor) -> dict:
    return harbor.state.retentions[int(project_of(harbor)["metadata"]["retention_id"])]


def quota_of(harbor) -> dict:
    project_id = project_of(harbor)["project_id"]
    return next(q for q in harbor.state.quotas.values() if q["ref"]["id"] == project_id)


def robot_of(harbor) -> dict:
    return the(harbor.state.robots)


def extra_rule(harbor) -> None:
    rules = retention_of(harbor)["rules"]
    rules.append({**json.loads(json.dumps(rules[0])), "id": 2, "template": "latestPushedK", "params": {"latestPushedK": 1}})


# One change in Harbor per case: (kind, what changed, how).
DRIFT: list[tuple[str, str, Callable[[HarborEmulator], None]]] = [
    ("registry", "name", lambda h: registry_of(h).update(name="ghcr-renamed")),
    ("registry", "url", lambda h: registry_of(h).update(url="https://elsewhere.example.com")),
    ("registry", "description", lambda h: registry_of(h).update(description="by hand")),
    ("registry", "insecure", lambda h: registry_of(h).update(insecure=True)),
    ("registry", "ca_certificate", lambda h: registry_of(h).update(ca_certificate=TEST_CA)),
    ("registry", "access_key", lambda h: registry_of(h)["credential"].update(access_key="someone")),
    ("registry", "credential removed", lambda h: registry_of(h)["credential"].update(access_key="", access_secret="")),
    ("project", "public", lambda h: project_of(h)["metadata"].update(public="true")),
    ("project", "public unreadable", lambda h: project_of(h)["metadata"].update(public="maybe")),
    ("project", "proxy_speed_kb", lambda h: project_of(h)["metadata"].update(proxy_speed_kb="50")),
    ("project", "proxy_speed_kb not a number", lambda h: project_of(h)["metadata"].update(proxy_speed_kb="fast")),
    ("project", "local_on_not_found", lambda h: project_of(h)["metadata"].update(proxy_cache_local_on_not_found="false")),
    ("project", "max_upstream_conn", lambda h: project_of(h)["metadata"].update(max_upstream_conn="-1")),
    ("project", "max_upstream_conn not a number", lambda h: project_of(h)["metadata"].update(max_upstream_conn="")),
    ("project", "storage quota", lambda h: quota_of(h)["hard"].update(storage=-1)),
    ("project", "storage quota not whole GiB", lambda h: quota_of(h)["hard"].update(storage=20 * 1024**3 + 1)),
    ("project", "retention days", lambda h: retention_of(h)["rules"][0]["params"].update(nDaysSinceLastPull=3)),
    ("project", "retention rule disabled", lambda h: retention_of(h)["rules"][0].update(disabled=True)),
    ("project", "retention second rule", extra_rule),
    ("project", "retention tag selector", lambda h: retention_of(h)["rules"][0]["tag_selectors"][0].update(pattern="v*")),
    ("project", "retention schedule", lambda h: retention_of(h)["trigger"]["settings"].update(cron="0 0 5 * * *")),
    ("project", "retention policy removed", lambda h: project_of(h)["metadata"].pop("retention_id")),
    ("oidc", "oidc_name", lambda h: h.state.configurations.update(oidc_name="other")),
    ("oidc", "oidc_endpoint", lambda h: h.state.configurations.update(oidc_endpoint="https://evil.example.com")),
    ("oidc", "oidc_client_id", lambda h: h.state.configurations.update(oidc_client_id="x")),
    ("oidc", "oidc_groups_claim", lambda h: h.state.configurations.update(oidc_groups_claim="roles")),
    ("oidc", "oidc_admin_group", lambda h: h.state.configurations.update(oidc_admin_group="everyone")),
    ("oidc", "oidc_scope", lambda h: h.state.configurations.update(oidc_scope="openid")),
    ("oidc", "oidc_verify_cert", lambda h: h.state.configurations.update(oidc_verify_cert=False)),
    ("oidc", "oidc_auto_onboard", lambda h: h.state.configurations.update(oidc_auto_onboard=True)),
    ("oidc", "oidc_user_claim", lambda h: h.state.configurations.update(oidc_user_claim="email")),
    ("gc", "cron", lambda h: h.state.gc_schedule["schedule"].update(cron="0 0 4 * * *")),
    ("gc", "delete_untagged", lambda h: h.state.gc_schedule["parameters"].update(delete_untagged=False)),
    ("gc", "workers", lambda h: h.state.gc_schedule["parameters"].update(workers=5)),
    ("robot", "description", lambda h: robot_of(h).update(description="by hand")),
    ("robot", "a project dropped", lambda h: robot_of(h)["permissions"].pop()),
    (
        "robot",
        "push added",
        lambda h: robot_of(h)["permissions"][0]["access"].append({"resource": "repository", "action": "push"}),
    ),
    (
        "robot",
        "another project",
        lambda h: robot_of(h)["permissions"].append(
            {"kind": "project", "namespace": "c-proxy", "access": [{"resource": "repository", "action": "pull"}]}
        ),
    ),
    ("robot", "disabled", lambda h: robot_of(h).update(disable=True)),
    ("robot", "duration", lambda h: robot_of(h).update(duration=30, expires_at=1800000000)),
    (
        "settings",
        "project_creation_restriction",
        lambda h: h.state.configurations.update(project_creation_restriction="everyone"),
    ),
    ("settings", "self_registration", lambda h: h.state.configurations.update(self_registration=True)),
    ("settings", "robot_name_prefix", lambda h: h.state.configurations.update(robot_name_prefix="bot$")),
]


@pytest.mark.parametrize(("kind", "field", "change"), DRIFT, ids=[f"{k}-{f}" for k, f, _ in DRIFT])
def test_refresh_sees_every_managed_field_and_up_restores_it(harbor, hosts, kind, field, change):
    host, urn, inputs, id_, outputs = made(harbor, hosts, kind)
    read_id, read = host.read(urn, id_, outputs)
    assert read_id == id_
    assert host.diff(urn, id_, read, inputs).changes == DiffResponse.DIFF_NONE, "an untouched object shows no drift"

    change(harbor)
    read_id, drifted = host.read(urn, id_, read)
    assert read_id == id_
    diff = host.diff(urn, id_, drifted, inputs)
    assert diff.changes == DiffResponse.DIFF_SOME, f"refresh must see {field} changed in Harbor"
    assert list(diff.replaces) == [], "drift is undone in place"

    updated = host.update(urn, id_, drifted, inputs)
    _, again = host.read(urn, id_, updated)
    assert host.diff(urn, id_, again, inputs).changes == DiffResponse.DIFF_NONE, f"up must set {field} back"


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_new_admin_password_updates_the_connection_only(harbor, hosts, kind):
    host, urn, inputs, id_, outputs = made(harbor, hosts, kind)
    harbor.state.admin_password = ROTATED_PASSWORD  # changed in Harbor first (README)
    with pytest.raises(grpc.RpcError, match="401"):
        host.read(urn, id_, outputs)  # refresh before up: the state still holds the old password
    rotated = {**inputs, "harbor_password": ROTATED_PASSWORD}
    diff = host.diff(urn, id_, outputs, rotated)
    assert diff.changes == DiffResponse.DIFF_SOME and list(diff.replaces) == []
    before = json.dumps(harbor.state.__dict__, sort_keys=True, default=str)
    harbor.reset_calls()
    updated = host.update(urn, id_, outputs, rotated)
    assert [c for c in harbor.calls if c[0] in WRITES] == [], "nothing in Harbor changes"
    assert len(harbor.calls) == 1 and harbor.calls[0][0] == "GET", "one authenticated call proves the credential"
    assert json.dumps(harbor.state.__dict__, sort_keys=True, default=str) == before
    assert updated["harbor_password"] == ROTATED_PASSWORD
    _, read = host.read(urn, id_, updated)
    assert host.diff(urn, id_, read, rotated).changes == DiffResponse.DIFF_NONE


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_wrong_new_password_fails_the_update_and_says_so(harbor, hosts, kind):
    host, urn, inputs, id_, outputs = made(harbor, hosts, kind)
    with pytest.raises(grpc.RpcError) as error:
        host.update(urn, id_, outputs, {**inputs, "harbor_password": "Wrong-Passw0rd3"})
    assert "401" in error.value.details() and "adminPassword" in error.value.details()
    assert "Wrong-Passw0rd3" not in error.value.details()


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_new_api_url_updates_the_connection_only(harbor, hosts, kind):
    host, urn, inputs, id_, outputs = made(harbor, hosts, kind)
    moved = {**inputs, "harbor_url": harbor.url.replace("127.0.0.1", "localhost")}
    assert host.diff(urn, id_, outputs, moved).changes == DiffResponse.DIFF_SOME
    harbor.reset_calls()
    updated = host.update(urn, id_, outputs, moved)
    assert [c for c in harbor.calls if c[0] in WRITES] == [] and len(harbor.calls) == 1
    assert updated["harbor_url"] == moved["harbor_url"]


# Robots: adopt by name, recover a lost secret, survive a lost answer


def robot_inputs(harbor) -> dict:
    return KINDS["robot"].inputs(harbor)


def test_robot_of_our_name_is_adopted_with_a_fresh_secret(harbor, hosts):
    host = hosts("robot")
    urn = host.urn("robot", "Robot")
    inputs, _ = host.check(urn, robot_inputs(harbor))
    robot_id, first = host.create(urn, inputs)
    old_secret = first["secret"]
    # The state is lost (or the robot was made by hand): the next create finds it by name.
    harbor.reset_calls()
    adopted_id, outputs = host.create(urn, inputs)
    assert adopted_id == robot_id and len(harbor.state.robots) == 1, "no second robot"
    assert ("POST", "/robots") not in harbor.calls
    stored = robot_of(harbor)
    assert outputs["secret"] == stored["secret"] != old_secret, "Harbor issued a new secret (PATCH /robots/{id})"
    assert ("PATCH", f"/robots/{robot_id}") in harbor.calls
    assert sorted(p["namespace"] for p in stored["permissions"]) == ["a-proxy", "b-proxy"]


def test_a_robot_whose_create_answer_was_lost_is_found_and_given_a_secret(harbor, hosts):
    host = hosts("robot")
    urn = host.urn("robot", "Robot")
    inputs, _ = host.check(urn, robot_inputs(harbor))
    harbor.inject("POST", r"^/robots$", "drop-after")
    robot_id, outputs = host.create(urn, inputs)
    assert harbor.count("POST", "/robots") == 1, "the POST is never sent twice"
    stored = robot_of(harbor)
    assert int(robot_id) == stored["id"] and outputs["secret"] == stored["secret"]


def test_a_secret_lost_from_the_state_is_refreshed_by_up(harbor, hosts):
    host, urn, inputs, robot_id, outputs = made(harbor, hosts, "robot")
    lost = {**outputs, "secret": ""}
    diff = host.diff(urn, robot_id, lost, inputs)
    assert diff.changes == DiffResponse.DIFF_SOME and list(diff.replaces) == []
    harbor.reset_calls()
    updated = host.update(urn, robot_id, lost, inputs)
    assert updated["secret"] == robot_of(harbor)["secret"] and updated["secret"] != outputs["secret"]
    assert ("PATCH", f"/robots/{robot_id}") in harbor.calls
    assert host.diff(urn, robot_id, updated, inputs).changes == DiffResponse.DIFF_NONE


# Smaller findings


@pytest.mark.parametrize(
    ("kind", "overrides", "stored"),
    [
        # Harbor lower-cases the scheme and trims the slash (src/lib/endpoint.go ValidateHTTPURL).
        ("registry", {"url": "HTTPS://ghcr.io/"}, lambda h: registry_of(h)["url"] == "https://ghcr.io"),
        # Harbor splits the scope at commas and trims each item (lib/config/userconfig.go SplitAndTrim).
        ("oidc", {"oidc_scope": "openid, profile , offline_access"}, lambda h: h.state.configurations["oidc_scope"]),
    ],
    ids=["registry-url", "oidc-scope"],
)
def test_an_input_harbor_normalises_reads_back_equal(harbor, hosts, kind, overrides, stored):
    """Taken in Harbor's own form, so the next `up` does not write it again (nor refuse it)."""
    host = hosts(kind)
    urn = host.urn(kind, KINDS[kind].type_name)
    inputs, failures = host.check(urn, {**KINDS[kind].inputs(harbor), **overrides})
    assert failures == []
    id_, outputs = host.create(urn, inputs)
    assert stored(harbor)
    _, read = host.read(urn, id_, outputs)
    assert host.diff(urn, id_, read, inputs).changes == DiffResponse.DIFF_NONE


@pytest.mark.parametrize("field", ["oidc_scope", "oidc_admin_group", "oidc_verify_cert", "oidc_user_claim"])
def test_an_oidc_setting_changed_in_the_program_is_applied(harbor, hosts, field):
    host, urn, inputs, oidc_id, outputs = made(harbor, hosts, "oidc")
    value = {"oidc_scope": "openid,email", "oidc_admin_group": "ops", "oidc_verify_cert": False, "oidc_user_claim": "sub"}
    changed, _ = host.check(urn, {**inputs, field: value[field]})
    updated = host.update(urn, oidc_id, outputs, changed)
    assert harbor.state.configurations[field] == value[field] and updated[field] == value[field]


def test_oidc_removal_refused_by_harbor_is_an_error_not_a_silent_success(harbor, hosts):
    host, urn, inputs, oidc_id, outputs = made(harbor, hosts, "oidc")
    harbor.add_user("alice")
    with pytest.raises(grpc.RpcError) as error:
        host.delete(urn, oidc_id, outputs)
    assert "auth mode cannot be modified" in error.value.details() and "state delete" in error.value.details()
    assert harbor.state.configurations["auth_mode"] == "oidc_auth"


def test_system_settings_are_set_and_left_on_delete(harbor, hosts):
    host, urn, inputs, settings_id, outputs = made(harbor, hosts, "settings")
    assert harbor.state.configurations["project_creation_restriction"] == "adminonly"
    assert harbor.state.configurations["self_registration"] is False
    host.delete(urn, settings_id, outputs)
    assert harbor.state.configurations["project_creation_restriction"] == "adminonly", "never opened up by a delete"


def test_a_robot_name_prefix_changed_in_harbor_is_drift_and_up_writes_robot_dollar_back(harbor, hosts):
    """An admin changes robot_name_prefix (PUT /configurations, as Harbor's UI does) after the
    settings were applied: the refresh reports Harbor's value, the diff shows a change, and the
    update's PUT /configurations makes Harbor hold `robot$` again (what every robot is shown and
    logs in under: controller/robot populate, middleware/security/robot.go Generate)."""
    host, urn, inputs, settings_id, outputs = made(harbor, hosts, "settings")
    assert harbor.state.configurations["robot_name_prefix"] == "robot$" and outputs["robot_name_prefix"] == "robot$"
    admin = HarborClient(harbor.url, "admin", ADMIN_PASSWORD)
    admin.request("PUT", "/configurations", {"robot_name_prefix": "bot$"})
    _, drifted = host.read(urn, settings_id, outputs)
    assert drifted["robot_name_prefix"] == "bot$", "refresh reports the prefix Harbor holds"
    diff = host.diff(urn, settings_id, drifted, inputs)
    assert diff.changes == DiffResponse.DIFF_SOME and list(diff.replaces) == []
    unchanged = host.diff(urn, settings_id, {**drifted, "robot_name_prefix": "robot$"}, inputs)
    assert unchanged.changes == DiffResponse.DIFF_NONE, "the prefix alone is the change"
    updated = host.update(urn, settings_id, drifted, inputs)
    assert updated["robot_name_prefix"] == "robot$"
    assert admin.get("/configurations")["robot_name_prefix"]["value"] == "robot$", "Harbor holds robot$ again"


def test_system_settings_accept_any_robot_name_prefix_as_harbor_does(harbor, hosts):
    """PUT /configurations checks robot_name_prefix only as a string (pkg/config/manager.go ValidateCfg
    -> lib/config/metadata/type.go StringType.validate accepts every string, the empty one too):
    check refuses no string Harbor takes, and refuses what Harbor's typed body cannot decode."""
    host = hosts("settings")
    urn = host.urn("settings", "SystemSettings")
    for prefix in ("", "bot-", "robot$"):
        _, failures = host.check(urn, as_engine_sends({**KINDS["settings"].inputs(harbor), "robot_name_prefix": prefix}))
        assert failures == [], prefix
        HarborClient(harbor.url, "admin", ADMIN_PASSWORD).request("PUT", "/configurations", {"robot_name_prefix": prefix})
    _, failures = host.check(urn, {**KINDS["settings"].inputs(harbor), "robot_name_prefix": 5})
    assert [name for name, _ in failures] == ["robot_name_prefix"]


def test_retries_outlast_a_harbor_core_restart(harbor, hosts):
    """Harbor's core answers 502 through nginx for a while when it restarts: more than 5 tries."""
    host = ProviderHost(HarborGcScheduleProvider(), env={**FAST, "HARBOR_CACHE_RETRY_SECONDS": "5"})
    try:
        host.configure({})
        urn = host.urn("gc", "GcSchedule")
        inputs, _ = host.check(urn, as_engine_sends(KINDS["gc"].inputs(harbor)))
        gc_id, outputs = host.create(urn, inputs)
        harbor.inject("GET", r"^/system/gc/schedule$", 502, times=8)
        assert host.read(urn, gc_id, outputs)[0] == gc_id
    finally:
        host.close()


# What the mutation run (scripts/mutation_providers.py) showed untested


def test_metadata_harbor_leaves_out_means_its_default_not_drift(harbor, hosts):
    """Absent metadata is false or no limit in Harbor (pkg/project/models/project.go): a project whose
    inputs are those defaults reads back equal when Harbor does not hold the keys at all (and an
    unlimited quota reads back as unlimited)."""
    host = hosts("project")
    urn = host.urn("project", "Project")
    defaults = {
        "public": False,
        "speed_limit_kbps": -1,
        "local_on_not_found": False,
        "max_upstream_conn": -1,
        "storage_quota_gb": -1,
    }
    inputs, _ = host.check(urn, as_engine_sends({**KINDS["project"].inputs(harbor), **defaults}))
    project_id, outputs = host.create(urn, inputs)
    metadata = project_of(harbor)["metadata"]
    for key in ("public", "proxy_speed_kb", "proxy_cache_local_on_not_found", "max_upstream_conn"):
        metadata.pop(key)
    _, read = host.read(urn, project_id, outputs)
    assert host.diff(urn, project_id, read, inputs).changes == DiffResponse.DIFF_NONE


def test_the_retention_policy_is_harbors_own_proxy_default_with_our_days(harbor, hosts):
    host, urn, inputs, project_id, outputs = made(harbor, hosts, "project")
    expected = default_retention(int(project_id), 14)
    assert {**retention_of(harbor), "id": 0} == {**expected, "id": 0}


def test_a_registry_preview_with_an_unknown_credential_shows_an_update(harbor, hosts):
    host, urn, inputs, registry_id, outputs = made(harbor, hosts, "registry")
    harbor.reset_calls()
    unknown, failures = host.check(urn, {**inputs, "access_secret": rpc.UNKNOWN})
    assert failures == []
    diff = host.diff(urn, registry_id, outputs, unknown)
    assert diff.changes == DiffResponse.DIFF_SOME and list(diff.replaces) == [] and harbor.calls == []


def test_system_settings_check_refuses_a_value_harbor_refuses(harbor, hosts):
    host = hosts("settings")
    _, failures = host.check(
        host.urn("settings", "SystemSettings"), {**KINDS["settings"].inputs(harbor), "project_creation_restriction": "nobody"}
    )
    assert [name for name, _ in failures] == ["project_creation_restriction"] and "adminonly" in failures[0][1]


def test_a_robot_state_from_before_disable_and_duration_rotates_without_a_write(harbor, hosts):
    host, urn, inputs, robot_id, outputs = made(harbor, hosts, "robot")
    older = {k: v for k, v in outputs.items() if k not in ("disable", "duration")}
    harbor.state.admin_password = ROTATED_PASSWORD
    harbor.reset_calls()
    host.update(urn, robot_id, older, {**inputs, "harbor_password": ROTATED_PASSWORD})
    assert [c for c in harbor.calls if c[0] in WRITES] == []


@pytest.mark.parametrize("kind", ["registry", "project"])
def test_a_create_that_races_another_adopts_what_harbor_answers_409_for(harbor, hosts, kind):
    """Another create made the object between our name lookup and our POST: Harbor answers 409 and
    the provider takes that object over (registry: same type and URL; project: same registry)."""
    host, urn, inputs, first_id, _ = made(harbor, hosts, kind)
    collection = {"registry": "/registries", "project": "/projects"}[kind]
    harbor.inject("GET", f"^{collection}$", "empty-list")
    harbor.reset_calls()
    again_id, outputs = host.create(urn, inputs)
    assert again_id == first_id and harbor.count("POST", collection) == 1
    assert outputs[{"registry": "registry_id", "project": "project_id"}[kind]] == int(first_id)


def test_an_oidc_scope_of_the_wrong_type_is_a_check_failure_not_a_crash(harbor, hosts):
    host = hosts("oidc")
    _, failures = host.check(host.urn("oidc", "OidcAuth"), {**KINDS["oidc"].inputs(harbor), "oidc_scope": 5})
    assert failures == [("oidc_scope", "oidc_scope must be a str, got float")], "the engine sends numbers as floats"
