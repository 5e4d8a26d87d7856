"""The Harbor emulator answers as Harbor v2.15.2's handlers do, no more leniently and no more
strictly: each case names the Go function whose check it mirrors (the citations are in
tests/harbor_emulator.py). Plain HTTP against the emulator, without our client or providers, so a
fault in our code cannot hide one in the stand-in."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest

from tests.standins.harbor_emulator import HarborEmulator, cron_problem, default_retention, is_valid_robot_secret

ADMIN_PASSWORD = "Admin-Passw0rd"
# A self-signed certificate made for these tests (openssl req -x509, P-256); its key was discarded.
TEST_CA = """-----BEGIN CERTIFICATE-----
MIIBqDCCAU2gAwIBAgIUECw+2+NOcdpcQNXNORILLUOsscQwCgYIKoZIzj0EAwIw
KDEmMCQGA1UEAwwdaGFyYm9yLWNhY2hlIHRlc3QgdXBzdHJlYW0gQ0EwIBcNMjYx
MjA2MDQ0NzUxWhgPMjEyNjExMTIwNDQ3NTFaMCgxJjAkBgNVBAMMHWhhcmJvci1j
YWNoZSB0ZXN0IHVwc3RyZWFtIENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
jgMO9g+LdPEJa/hyUJLavNeLvLlPNbZU4zUhQ4MQNKrYQUCd65PcE9MpNcmmCjK/
b4u5jGoTwL7UP/s58f41m6NTMFEwHQYDVR0OBBYEFCYnttYRVLsTAKIr91/I5BiT
EAN1MB8GA1UdIwQYMBaAFCYnttYRVLsTAKIr91/I5BiTEAN1MA8GA1UdEwEB/wQF
MAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAKnx0REYH5puNeW2G5tjdOlvIEfLAFRR
WHz8edDaaqyTAiEAiPIsSu0xR5FkVQsDYuFSwq81/VB4WbVuc5d4A5q+7oM=
-----END CERTIFICATE-----
"""
PULL = {"resource": "repository", "action": "pull"}


@pytest.fixture(scope="module")
def harbor():
    emulator = HarborEmulator(admin_password=ADMIN_PASSWORD)
    yield emulator
    emulator.stop()


def call(harbor, method: str, path: str, body=None, raw_path: bool = False) -> tuple[int, object]:
    url = harbor.url + ("" if raw_path else "/api/v2.0") + path
    data = json.dumps(body).encode() if body is not None else None
    authorization = "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    headers = {"Authorization": authorization, "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            text = answer.read()
            return answer.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        text = error.read()
        return error.code, json.loads(text) if text else None


def registry(harbor, name: str, **overrides) -> int:
    body = {"name": name, "type": "docker-registry", "url": "https://registry.example.com", **overrides}
    status, _ = call(harbor, "POST", "/registries", body)
    assert status == 201, body
    return next(r["id"] for r in harbor.state.registries.values() if r["name"] == name)


def proxy_project(harbor, name: str, registry_id: int, **overrides) -> dict:
    status, answer = call(harbor, "POST", "/projects", {"project_name": name, "registry_id": registry_id, **overrides})
    assert status == 201, answer
    return harbor.project_by_name(name)


# Registries: controller/registry validate -> lib.ValidateHTTPURL; handler/registry.go ValidateCACertificate


def test_registry_url_is_normalised_as_harbor_stores_it(harbor):
    registry_id = registry(harbor, "norm", url="  HTTPS://Registry.Example.com/v2/?x=1#f/ ")
    assert harbor.state.registries[registry_id]["url"] == "https://Registry.Example.com/v2/"
    registry_id = registry(harbor, "noscheme", url="registry.example.com/")
    assert harbor.state.registries[registry_id]["url"] == "http://registry.example.com"


@pytest.mark.parametrize("url", ["ftp://registry.example.com", "", "   /"])
def test_registry_url_must_be_http(harbor, url):
    assert call(harbor, "POST", "/registries", {"name": "bad-url", "type": "docker-registry", "url": url})[0] == 400


def test_registry_ca_certificate_must_parse(harbor):
    body = {"name": "ca", "type": "docker-registry", "url": "https://r.example.com"}
    assert call(harbor, "POST", "/registries", {**body, "ca_certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n"})[0] == 400
    fake = "-----BEGIN CERTIFICATE-----\nTUlJQg==\n-----END CERTIFICATE-----\n"
    assert call(harbor, "POST", "/registries", {**body, "ca_certificate": fake})[0] == 400
    registry_id = registry(harbor, "ca", ca_certificate=TEST_CA)
    assert call(harbor, "PUT", f"/registries/{registry_id}", {"ca_certificate": "junk"})[0] == 400
    assert call(harbor, "PUT", f"/registries/{registry_id}", {"ca_certificate": ""})[0] == 200


def test_registry_shows_the_access_key_and_masks_the_secret(harbor):
    credential = {"type": "basic", "access_key": "bot", "access_secret": "s3cret"}
    registry_id = registry(harbor, "cred", credential=credential)
    shown = call(harbor, "GET", f"/registries/{registry_id}")[1]
    assert shown["credential"] == {"type": "basic", "access_key": "bot", "access_secret": "*****"}


# Projects: handler/project.go CreateProject, validateProjectReq, UpdateProject


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"metadata": {"public": "yes"}}, 400),
        ({"metadata": {"public": "true", "retention_id": "5"}}, 400),
        ({"storage_limit": -5}, 400),
        ({"storage_limit": 1125899906842625}, 400),
        ({"metadata": {"proxy_speed_kb": "fast"}}, 400),
        ({"metadata": {"max_upstream_conn": "2147483648"}}, 400),
        ({"registry_id": 0}, 400),
        ({"registry_id": 99999}, 500),
    ],
)
def test_project_create_checks(harbor, overrides, status):
    registry_id = registry(harbor, f"pc-{len(harbor.state.registries)}")
    body = {"project_name": f"pc-{len(harbor.state.projects)}", "registry_id": registry_id, **overrides}
    assert call(harbor, "POST", "/projects", body)[0] == status


def test_project_create_defaults_and_drops_unknown_metadata(harbor):
    registry_id = registry(harbor, "defaults")
    project = proxy_project(
        harbor, "defaults", registry_id, storage_limit=0, metadata={"publik": "true", "enable_content_trust": "true"}
    )
    assert project["metadata"]["public"] == "false", "absent public is false; a misspelled key is dropped"
    assert "publik" not in project["metadata"] and "enable_content_trust" not in project["metadata"]
    quota = next(q for q in harbor.state.quotas.values() if q["ref"]["id"] == project["project_id"])
    assert quota["hard"] == {"storage": -1}, "0 takes storage_per_project (unlimited)"
    assert project["metadata"]["retention_id"], "a proxy project gets Harbor's default retention"


def test_a_project_answer_has_registry_id_only_for_a_proxy_cache(harbor):
    """handler/model/project.go ToSwagger: an ordinary project's registry_id is 0, which the generated
    model's omitempty leaves out of the GET and the list alike."""
    proxy = proxy_project(harbor, "shown-proxy", registry(harbor, "shown-upstream"))
    assert call(harbor, "GET", f"/projects/{proxy['project_id']}")[1]["registry_id"] == proxy["registry_id"]
    assert call(harbor, "POST", "/projects", {"project_name": "shown-ordinary"})[0] == 201
    ordinary = harbor.project_by_name("shown-ordinary")
    assert "registry_id" not in call(harbor, "GET", f"/projects/{ordinary['project_id']}")[1]
    listed = call(harbor, "GET", "/projects?q=name%3Dshown-ordinary")[1]
    assert [sorted(p) for p in listed] == [sorted(p for p in harbor.shown_project(ordinary))]
    assert "registry_id" not in listed[0]


def test_project_update_is_as_lenient_as_harbor_and_keeps_retention_id(harbor):
    registry_id = registry(harbor, "put")
    other = registry(harbor, "put-other")
    project = proxy_project(harbor, "put", registry_id)
    path = f"/projects/{project['project_id']}"
    # No value checks on PUT: Harbor stores what it is given.
    assert call(harbor, "PUT", path, {"metadata": {"proxy_speed_kb": "fast", "public": "maybe"}})[0] == 200
    assert project["metadata"]["proxy_speed_kb"] == "fast" and project["metadata"]["public"] == "maybe"
    # registry_id is not looked at.
    assert call(harbor, "PUT", path, {"registry_id": other, "metadata": {"typo": "1"}})[0] == 200
    assert project["registry_id"] == registry_id and "typo" not in project["metadata"]
    assert call(harbor, "PUT", path, {"metadata": {"retention_id": "424242"}})[0] == 400
    same = project["metadata"]["retention_id"]
    assert call(harbor, "PUT", path, {"metadata": {"retention_id": same}})[0] == 200


# Quotas: handler/quota.go UpdateQuota, controller/quota/driver/project Validate


@pytest.mark.parametrize(
    ("body", "status"),
    [({"hard": {}}, 400), ({"hard": {"count": 5}}, 400), ({"hard": {"storage": -2}}, 400), ({"hard": {"storage": 0}}, 400)],
)
def test_quota_update_checks(harbor, body, status):
    quota_id = next(iter(harbor.state.quotas)) if harbor.state.quotas else None
    if quota_id is None:
        proxy_project(harbor, "quota", registry(harbor, "quota"))
        quota_id = next(iter(harbor.state.quotas))
    assert call(harbor, "PUT", f"/quotas/{quota_id}", body)[0] == status


# Configurations: handler/config.go toCfgMap, controller/config validateCfg


def test_configuration_keys_and_values(harbor):
    shown = call(harbor, "GET", "/configurations")[1]
    assert shown["project_creation_restriction"]["value"] == "everyone", "Harbor's default"
    assert "oidc_client_secret" not in shown, "password items are never shown"
    assert call(harbor, "PUT", "/configurations", {"auth_mode": "local"})[0] == 400
    assert call(harbor, "PUT", "/configurations", {"project_creation_restriction": "nobody"})[0] == 400
    assert call(harbor, "PUT", "/configurations", {"project_creation_restrictoin": "adminonly"})[0] == 200
    assert "project_creation_restrictoin" not in harbor.state.configurations, "a misspelled key is dropped"
    assert call(harbor, "PUT", "/configurations", {"self_registration": "no"})[0] == 422, "swagger types"


# GC: handler/gc.go kick, updateSchedule, utils.ValidateCronString


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"schedule": {"type": "Custom", "cron": "0 0 3 * *"}}, 400),
        ({"schedule": {"type": "Custom", "cron": "1 0 3 * * *"}}, 400),
        ({"schedule": {"type": "Custom", "cron": "0 0 3 * * 7"}}, 400),
        ({"schedule": {"type": "Custom", "cron": "@daily"}}, 400),
        ({"schedule": {"type": "Custom", "cron": "0 0 3 * * *"}, "parameters": {"workers": 11}}, 400),
        ({"schedule": {"type": "Custom", "cron": "0 0 3 * * *"}, "parameters": {"workers": 1.5}}, 400),
        ({"schedule": {"type": "Custom", "cron": "0 0 3 * * *"}, "parameters": {"workers": 0}}, 400),
    ],
)
def test_gc_schedule_checks(harbor, body, status):
    assert call(harbor, "PUT", "/system/gc/schedule", body)[0] == status


def test_gc_schedule_keeps_only_typed_parameters_and_ignores_unknown_types(harbor):
    body = {"schedule": {"type": "Custom", "cron": "0 0 3 * * *"}, "parameters": {"delete_untagged": "true", "workers": "2"}}
    assert call(harbor, "PUT", "/system/gc/schedule", body)[0] == 200
    shown = call(harbor, "GET", "/system/gc/schedule")[1]
    assert json.loads(shown["job_parameters"]) == {"delete_tag": False, "delete_untagged": False, "workers": 0}
    assert call(harbor, "PUT", "/system/gc/schedule", {"schedule": {"type": "Sometimes", "cron": "x"}})[0] == 200
    assert call(harbor, "GET", "/system/gc/schedule")[1]["schedule"]["cron"] == "0 0 3 * * *", "a no-op"


def test_cron_parser_matches_robfig_positions():
    assert cron_problem("0 0 3 * * sun") is None and cron_problem("0 */5 1-3 1,15 jan-mar ?") is None
    for bad in ("0 60 * * * *", "0 0 24 * * *", "0 0 0 0 * *", "0 0 0 * 13 *", "0 0 0 * * 7", "0 0 0 * * mon-sun/0"):
        assert cron_problem(bad), bad


# Robots: handler/robot.go CreateRobot, validate, updateV2Robot, RefreshSec; controller toScope


def robot_body(**overrides) -> dict:
    permissions = [{"kind": "project", "namespace": "robots", "access": [dict(PULL)]}]
    return {"name": "bot", "level": "system", "duration": -1, "permissions": permissions, **overrides}


@pytest.fixture
def robot_project(harbor):
    if not any(p["name"] == "robots" for p in harbor.state.projects.values()):
        proxy_project(harbor, "robots", registry(harbor, "robots"))


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"duration": None}, 400),
        ({"duration": 0}, 400),
        ({"duration": -2}, 400),
        ({"level": "global"}, 400),
        ({"permissions": []}, 400),
        ({"permissions": [{"kind": "project", "namespace": "robots", "access": []}]}, 400),
        (
            {
                "permissions": [
                    {"kind": "project", "namespace": "robots", "access": [{"resource": "repository", "action": "fly"}]}
                ]
            },
            400,
        ),
        ({"permissions": [{"kind": "cluster", "namespace": "robots", "access": [dict(PULL)]}]}, 400),
        ({"permissions": [{"kind": "system", "namespace": "x", "access": [{"resource": "project", "action": "list"}]}]}, 400),
        ({"permissions": [{"kind": "project", "namespace": "nope", "access": [dict(PULL)]}]}, 404),
        ({"name": "Bot"}, 400),
    ],
)
def test_robot_create_checks(harbor, robot_project, overrides, status):
    body = {k: v for k, v in robot_body(**overrides).items() if v is not None}
    assert call(harbor, "POST", "/robots", body)[0] == status
    assert not any(r["name"] == body["name"] for r in harbor.state.robots.values())


def test_robot_update_and_secret_refresh(harbor, robot_project):
    status, created = call(harbor, "POST", "/robots", robot_body(name="upd", disable=True))
    assert status == 201 and is_valid_robot_secret(created["secret"])
    path = f"/robots/{created['id']}"
    assert call(harbor, "GET", path)[1]["disable"] is False, "create does not take disable"
    assert call(harbor, "PUT", path, robot_body(name="upd"))[0] == 400, "the name is shown with its prefix"
    assert call(harbor, "PUT", path, robot_body(name="robot$upd", duration=0))[0] == 400
    assert call(harbor, "PUT", path, robot_body(name="robot$upd", disable=True, duration=30, description="d"))[0] == 200
    shown = call(harbor, "GET", path)[1]
    assert (shown["disable"], shown["duration"], shown["description"]) == (True, 30, "d")
    no_duration = {k: v for k, v in robot_body(name="robot$upd").items() if k != "duration"}
    assert call(harbor, "PUT", path, no_duration)[0] == 200
    shown = call(harbor, "GET", path)[1]
    assert (shown["disable"], shown["duration"]) == (False, 30), "absent disable is false, absent duration kept"
    status, refreshed = call(harbor, "PATCH", path, {})
    assert status == 200 and is_valid_robot_secret(refreshed["secret"]) and refreshed["secret"] != created["secret"]
    assert harbor.state.robots[created["id"]]["secret"] == refreshed["secret"]
    assert call(harbor, "PATCH", path, {"secret": "weak"})[0] == 400
    assert call(harbor, "PATCH", path, {"secret": "Str0ngEnough"}) == (200, {"secret": ""})
    listed = call(harbor, "GET", "/robots?q=name%3Dupd")[1]
    assert [r["name"] for r in listed] == ["robot$upd"], "the exact name is the stored one, without prefix"


def test_robot_permissions_are_shown_one_per_scope(harbor, robot_project):
    """controller/robot createPermission stores one policy per access under the permission's scope;
    populatePermissions groups them back by scope: two system permissions sent show as one."""
    registries = {"resource": "registry", "action": "list"}
    gc_runs = {"resource": "garbage-collection", "action": "list"}
    body = {
        **robot_body(name="twice", level="system"),
        "permissions": [
            {"kind": "system", "namespace": "/", "access": [registries]},
            {"kind": "project", "namespace": "robots", "access": [dict(PULL)]},
            {"kind": "system", "namespace": "/", "access": [gc_runs]},
        ],
    }
    status, created = call(harbor, "POST", "/robots", body)
    assert status == 201
    shown = call(harbor, "GET", f"/robots/{created['id']}")[1]["permissions"]
    assert shown == [
        {"kind": "system", "namespace": "/", "access": [registries, gc_runs]},
        {"kind": "project", "namespace": "robots", "access": [PULL]},
    ]


def test_robot_permissions_follow_the_project_id_not_its_name(harbor):
    """Harbor keeps a robot's project permission under the project's *id* (controller/robot toScope:
    /project/<id>) and turns it back into a name by that id (populatePermissions -> convertScope ->
    proMgr.Get(id); NotFound: not listed). Deleting a project leaves the policy (nothing deletes a
    system robot's rbac_policy rows), but a project made again under the same name has a new id:
    the robot is shown no permission there, and its security context (the same populated
    permissions, middleware/security/robot.go) lists it no such project (handler/project.go
    ListProjects, robot branch: Names from its permissions)."""
    registries = {"resource": "registry", "action": "list"}
    assert call(harbor, "POST", "/projects", {"project_name": "again"})[0] == 201
    body = {
        **robot_body(name="by-id"),
        "permissions": [
            {"kind": "project", "namespace": "again", "access": [dict(PULL)]},
            {"kind": "system", "namespace": "/", "access": [registries]},
        ],
    }
    status, created = call(harbor, "POST", "/robots", body)
    assert status == 201

    def as_robot(path: str) -> list:
        authorization = "Basic " + base64.b64encode(f"{created['name']}:{created['secret']}".encode()).decode()
        request = urllib.request.Request(harbor.url + "/api/v2.0" + path, headers={"Authorization": authorization})  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return json.loads(answer.read())

    assert [p["name"] for p in as_robot("/projects?name=again")] == ["again"]
    first_id = harbor.project_by_name("again")["project_id"]
    assert call(harbor, "DELETE", f"/projects/{first_id}")[0] == 200
    assert call(harbor, "POST", "/projects", {"project_name": "again"})[0] == 201
    assert harbor.project_by_name("again")["project_id"] != first_id
    shown = call(harbor, "GET", f"/robots/{created['id']}")[1]["permissions"]
    assert shown == [{"kind": "system", "namespace": "/", "access": [registries]}], "the old id's permission is gone"
    assert as_robot("/projects?name=again") == [], "the new project of that name is not the robot's"


# Retention: handler/retention.go CreateRetention, UpdateRetention, requirePolicyAccess, checkRuleConflict


def test_retention_checks(harbor):
    project = proxy_project(harbor, "ret", registry(harbor, "ret"))
    project_id, retention_id = project["project_id"], int(project["metadata"]["retention_id"])
    policy = default_retention(project_id, 7)
    assert call(harbor, "POST", "/retentions", policy)[0] == 400, "one policy per project"
    path = f"/retentions/{retention_id}"
    assert call(harbor, "PUT", path, {**policy, "scope": {"level": "system", "ref": 0}})[0] == 404
    other = proxy_project(harbor, "ret-other", registry(harbor, "ret-other"))
    assert call(harbor, "PUT", path, default_retention(other["project_id"], 7))[0] == 404, "only through its own project"
    rule = policy["rules"][0]
    assert call(harbor, "PUT", path, {**policy, "rules": [rule, {**rule, "id": 2}]})[0] == 409
    many = [{**rule, "params": {"nDaysSinceLastPull": n}} for n in range(16)]
    assert call(harbor, "PUT", path, {**policy, "rules": many})[0] == 400
    bad_cron = {**policy, "trigger": {"kind": "Schedule", "settings": {"cron": "0 0 0 * *"}}}
    assert call(harbor, "PUT", path, bad_cron)[0] == 400
    assert call(harbor, "PUT", path, {**policy, "extra": 1, "rules": [{**rule, "note": "x"}]})[0] == 200
    stored = call(harbor, "GET", path)[1]
    assert "extra" not in stored and "note" not in stored["rules"][0], "the typed model drops unknown keys"
    bare = {"project_name": "ret-plain"}
    assert call(harbor, "POST", "/projects", bare)[0] == 201
    plain = harbor.project_by_name("ret-plain")
    assert call(harbor, "POST", "/retentions", {**policy, "scope": {"level": "system", "ref": plain["project_id"]}})[0] == 400


# Lists and paths: swagger page_size maximum, lib/q parseKeywords, the repository route


def test_lists_refuse_pages_over_100_and_bad_queries(harbor):
    assert call(harbor, "GET", "/registries?page_size=101")[0] == 422
    assert call(harbor, "GET", "/registries?page_size=100")[0] == 200
    assert call(harbor, "GET", "/registries?q=name")[0] == 400
    assert call(harbor, "GET", "/registries?q=name%3D")[0] == 400


def test_repository_delete_needs_the_name_encoded(harbor):
    proxy_project(harbor, "repos", registry(harbor, "repos"))
    harbor.add_repository("repos", "library/alpine")
    assert call(harbor, "DELETE", "/projects/repos/repositories/library/alpine")[0] == 404
    assert call(harbor, "DELETE", "/projects/repos/repositories/library%252Falpine")[0] == 200


def test_robot_names_are_shown_with_the_prefix_harbor_is_configured_with(harbor, robot_project):
    """controller/robot populate shows a v2 robot as config.RobotPrefix (the configuration
    robot_name_prefix, which an admin may change) + its stored name: in create's answer, GET and the
    list, in the name a PUT must repeat (updateV2Robot) and in the login (middleware/security/robot.go
    Generate: the user name must start with the prefix, the rest is the stored name)."""
    assert call(harbor, "PUT", "/configurations", {"robot_name_prefix": "bot-"})[0] == 200
    try:
        status, created = call(harbor, "POST", "/robots", robot_body(name="prefixed"))
        assert status == 201 and created["name"] == "bot-prefixed"
        path = f"/robots/{created['id']}"
        assert call(harbor, "GET", path)[1]["name"] == "bot-prefixed"
        assert [r["name"] for r in call(harbor, "GET", "/robots?q=name%3Dprefixed")[1]] == ["bot-prefixed"]
        assert call(harbor, "PUT", path, robot_body(name="robot$prefixed"))[0] == 400
        assert call(harbor, "PUT", path, robot_body(name="bot-prefixed"))[0] == 200

        def as_robot(user: str) -> int:
            authorization = "Basic " + base64.b64encode(f"{user}:{created['secret']}".encode()).decode()
            request = urllib.request.Request(harbor.url + "/api/v2.0/registries", headers={"Authorization": authorization})  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                    return answer.status
            except urllib.error.HTTPError as error:
                return error.code

        # Known by its prefixed name (403: logged in, but may not list registries); unknown by the old one.
        assert (as_robot("bot-prefixed"), as_robot("robot$prefixed")) == (403, 401)
    finally:
        call(harbor, "PUT", "/configurations", {"robot_name_prefix": "robot$"})
