"""Paths of the providers that the full mutation run (scripts/mutation_providers.py) found no test
executing or telling apart: each input check, the fallbacks after a lost answer or a race with
another writer, what a refresh shows when Harbor holds no quota or retention policy, and errors
whose body is not Harbor's JSON. Through the real provider host against the emulator, like
test_provider_drift.py, whose fixtures these share."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable

import grpc
import pytest
from pulumi.runtime.proto.provider_pb2 import DiffResponse

from components.harbor.api import HarborApiError, HarborClient, MaybeSent
from tests.harbor.test_provider_drift import (  # noqa: F401 (fixtures)
    ADMIN_PASSWORD,
    FAST,
    KINDS,
    ROTATED_PASSWORD,
    connection,
    harbor,
    hosts,
    made,
    project_of,
    quota_of,
    registry_of,
    retention_of,
    robot_of,
)
from tests.standins.harbor_emulator import HarborEmulator
from tests.standins.provider_host import ProviderHost, as_engine_sends


def failures_of(hosts, harbor, kind: str, **changes) -> list[tuple[str, str]]:  # noqa: F811
    host = hosts(kind)
    _, failures = host.check(host.urn(kind, KINDS[kind].type_name), as_engine_sends({**KINDS[kind].inputs(harbor), **changes}))
    return failures


# Check: each refusal names the input (before anything reaches Harbor)


@pytest.mark.parametrize(
    ("kind", "changes", "key", "words"),
    [
        ("registry", {"url": "ftp://ghcr.io"}, "url", "not an http(s) URL"),
        ("registry", {"access_secret": ""}, "access_secret", "go together"),
        ("registry", {"ca_certificate": "not a certificate"}, "ca_certificate", "not a PEM certificate"),
        ("project", {"name": "Ghcr Proxy"}, "name", "not a Harbor project name"),
        ("project", {"registry_id": 0}, "registry_id", "1 or more"),
        ("project", {"speed_limit_kbps": -2}, "speed_limit_kbps", "-1 (unlimited) or 1.."),
        ("project", {"name": "g" * 256}, "name", "not a Harbor project name"),  # swagger ProjectReq maxLength 255
        ("oidc", {"oidc_endpoint": "http://dex.example.com"}, "oidc_endpoint", "not an https URL"),
        ("oidc", {"oidc_scope": "profile,email"}, "oidc_scope", "lacks openid"),
        ("robot", {"harbor_url": "ftp://harbor.example.com"}, "harbor_url", "not a Harbor URL"),
        ("robot", {"database": 5}, "database", "must be a string"),
        ("robot", {"projects": ["a-proxy", ""]}, "projects", "non-empty list of project names"),
        ("gc", {"database": 5}, "database", "must be a string"),
    ],
)
def test_check_refuses_each_bad_input_by_name(harbor, hosts, kind, changes, key, words):  # noqa: F811
    failures = failures_of(hosts, harbor, kind, **changes)
    assert [name for name, _ in failures] == [key] and words in failures[0][1], failures
    assert harbor.calls == []


# Refresh of what Harbor may lack


def test_refresh_of_oidc_after_harbor_left_oidc_says_it_is_gone(harbor, hosts):  # noqa: F811
    host, urn, inputs, oidc_id, outputs = made(harbor, hosts, "oidc")
    harbor.state.configurations["auth_mode"] = "db_auth"  # someone switched Harbor back by hand
    read_id, read = host.read(urn, oidc_id, outputs)
    assert read_id == "" and read == {}, "the next up sets OIDC again"


def test_refresh_of_a_project_whose_retention_policy_is_gone_shows_no_days(harbor, hosts):  # noqa: F811
    """Retention kept one day: the policy deleted in Harbor (its id left in the metadata, which
    GET /retentions/{id} answers 404) reads as 0 days, which no input equals."""
    host = hosts("project")
    urn = host.urn("project", "Project")
    inputs, _ = host.check(urn, as_engine_sends({**KINDS["project"].inputs(harbor), "retention_days": 1}))
    project_id, outputs = host.create(urn, inputs)
    harbor.state.retentions.pop(int(project_of(harbor)["metadata"]["retention_id"]))
    _, read = host.read(urn, project_id, outputs)
    assert read["retention_days"] == 0
    assert host.diff(urn, project_id, read, inputs).changes == DiffResponse.DIFF_SOME


def test_refresh_of_a_project_without_a_quota_shows_no_limit_and_up_says_why_it_fails(harbor, hosts):  # noqa: F811
    """A storage quota of 1 GB: the project's quota gone in Harbor reads as 0 GB (no input's value),
    and the update that would set it fails naming the project, since there is nothing to PUT."""
    host = hosts("project")
    urn = host.urn("project", "Project")
    inputs, _ = host.check(urn, as_engine_sends({**KINDS["project"].inputs(harbor), "storage_quota_gb": 1}))
    project_id, outputs = host.create(urn, inputs)
    harbor.state.quotas.pop(quota_of(harbor)["id"])
    _, read = host.read(urn, project_id, outputs)
    assert read["storage_quota_gb"] == 0
    assert host.diff(urn, project_id, read, inputs).changes == DiffResponse.DIFF_SOME
    with pytest.raises(grpc.RpcError) as failed:
        host.update(urn, project_id, read, inputs)
    assert f"(HTTP 200): project {project_id} has no quota" in failed.value.details()


# Retention: a lost answer and a race with another writer


def test_a_retention_post_whose_answer_was_lost_is_found_and_set(harbor, hosts):  # noqa: F811
    host, urn, inputs, project_id, outputs = made(harbor, hosts, "project")
    project = project_of(harbor)
    harbor.state.retentions.pop(int(project["metadata"].pop("retention_id")))  # Harbor holds none
    harbor.inject("POST", r"^/retentions$", "drop-after")
    host.update(urn, project_id, outputs, {**inputs, "retention_days": 7.0})
    assert harbor.count("POST", "/retentions") == 1
    assert retention_of(harbor)["rules"][0]["params"]["nDaysSinceLastPull"] == 7


def test_a_retention_made_by_another_writer_meanwhile_is_set_to_ours(harbor, hosts):  # noqa: F811
    """Our GET shows no policy; before our POST another writer makes one, and Harbor answers 400
    "already has retention policy" (handler/retention.go CreateRetention): ours is PUT over it."""
    host, urn, inputs, project_id, outputs = made(harbor, hosts, "project")
    metadata = project_of(harbor)["metadata"]
    theirs = metadata.pop("retention_id")
    route = harbor.route

    def another_writer_first(method, path, query, body, headers):
        if method == "POST" and path == "/retentions":
            metadata["retention_id"] = theirs
        return route(method, path, query, body, headers)

    harbor.route = another_writer_first
    harbor.reset_calls()
    host.update(urn, project_id, outputs, {**inputs, "retention_days": 7.0})
    assert [c for c in harbor.calls if c[0] != "GET"] == [("POST", "/retentions"), ("PUT", f"/retentions/{theirs}")]
    assert retention_of(harbor)["rules"][0]["params"]["nDaysSinceLastPull"] == 7


# Robots and registries: races, deletes and errors without a hint


def test_a_robot_create_that_races_another_adopts_what_harbor_answers_409_for(harbor, hosts):  # noqa: F811
    host, urn, inputs, first_id, first = made(harbor, hosts, "robot")
    harbor.inject("GET", r"^/robots$", "empty-list")
    again_id, outputs = host.create(urn, inputs)
    assert again_id == first_id and harbor.count("POST", "/robots") == 2
    assert outputs["secret"] and outputs["secret"] != first["secret"], "adopting issues a new secret"


def test_a_robot_adopted_without_a_new_secret_fails_saying_so(harbor, hosts):  # noqa: F811
    host, urn, inputs, robot_id, _ = made(harbor, hosts, "robot")
    harbor.inject("PATCH", r"^/robots/\d+$", 200)  # an answer without the secret
    with pytest.raises(grpc.RpcError) as failed:
        host.create(urn, inputs)
    assert f"PATCH /api/v2.0/robots/{robot_id} failed (HTTP 200): Harbor answered no new secret" in failed.value.details()


def test_a_robot_deleted_in_harbor_between_lookup_and_delete_is_gone(harbor, hosts):  # noqa: F811
    host, urn, inputs, robot_id, outputs = made(harbor, hosts, "robot")
    harbor.inject("DELETE", r"^/robots/\d+$", 404)
    host.delete(urn, robot_id, outputs)
    harbor.inject("DELETE", r"^/robots/\d+$", 403)
    with pytest.raises(grpc.RpcError) as failed:
        host.delete(urn, robot_id, outputs)
    assert "HTTP 403" in failed.value.details()


def test_a_registry_create_error_without_a_hint_is_harbors_own(harbor, hosts):  # noqa: F811
    host = hosts("registry")
    urn = host.urn("registry", "Registry")
    inputs, _ = host.check(urn, as_engine_sends(KINDS["registry"].inputs(harbor)))
    harbor.inject("POST", r"^/registries$", 403)
    with pytest.raises(grpc.RpcError) as failed:
        host.create(urn, inputs)
    # The host answers with the traceback; its last line is the error the user reads.
    last = failed.value.details().strip().splitlines()[-1]
    assert last == "components.harbor.api.HarborApiError: Harbor API POST /api/v2.0/registries failed (HTTP 403): injected"


def test_a_key_set_in_harbor_on_a_registry_without_credential_is_drift(harbor, hosts):  # noqa: F811
    host = hosts("registry")
    urn = host.urn("registry", "Registry")
    anonymous = {**KINDS["registry"].inputs(harbor), "access_key": "", "access_secret": ""}
    inputs, _ = host.check(urn, as_engine_sends(anonymous))
    registry_id, outputs = host.create(urn, inputs)
    registry_of(harbor)["credential"].update(type="basic", access_key="someone", access_secret="")
    _, read = host.read(urn, registry_id, outputs)
    assert host.diff(urn, registry_id, read, inputs).changes == DiffResponse.DIFF_SOME


# The client


def test_a_bad_number_in_an_environment_knob_falls_back_to_the_default(harbor):  # noqa: F811
    bad = {"HARBOR_CACHE_HTTP_TIMEOUT": "fast", "HARBOR_CACHE_RETRY_SECONDS": "soon"}  # each request reads both
    with ProviderHost(KINDS["gc"].provider(), env={**FAST, **bad}) as host:
        host.configure({})
        urn = host.urn("gc", "GcSchedule")
        inputs, _ = host.check(urn, as_engine_sends(KINDS["gc"].inputs(harbor)))
        assert host.create(urn, inputs)[0]


def test_the_client_shows_no_credential_in_its_repr():
    client = HarborClient("https://harbor.example.com/", "admin", ADMIN_PASSWORD)
    assert repr(client) == "HarborClient('https://harbor.example.com/api/v2.0')"


@pytest.fixture
def plain_server():
    """A server in front of Harbor that answers in its own words (a proxy's HTML page, a JSON body
    that is not Harbor's error form), as nginx or a load balancer can."""
    answers: dict[str, tuple[int, str, bytes]] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            status, kind, body = answers[self.path.split("?")[0].removeprefix("/api/v2.0")]
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", answers
    server.shutdown()
    server.server_close()


def test_an_error_page_that_is_not_harbors_json_is_quoted_in_the_error(plain_server):
    url, answers = plain_server
    page = "<html>" + "denied by the proxy " * 20 + "</html>"
    answers["/projects/1"] = (403, "text/html", page.encode())
    answers["/projects/2"] = (403, "application/json", b'{"message": "denied"}')
    client = HarborClient(url, "admin", ADMIN_PASSWORD, retry_seconds=0.5, base_delay=0.01)
    with pytest.raises(HarborApiError) as failed:
        client.get("/projects/1")
    assert failed.value.messages == [page[:200]], "the page's start, not all of it"
    with pytest.raises(HarborApiError) as failed:
        client.get("/projects/2")
    assert failed.value.messages == [] and "(HTTP 403): no message" in str(failed.value)


def test_a_registry_update_waits_for_harbors_upstream_ping_longer_than_other_calls(harbor):  # noqa: F811
    """Harbor pings the upstream inside a registry PUT too: the write gets its own, longer timeout,
    so a ping slower than every other call's timeout is one PUT, not retries until the client gives up."""
    env = {**FAST, "HARBOR_CACHE_HTTP_TIMEOUT": "0.5", "HARBOR_CACHE_REGISTRY_WRITE_TIMEOUT": "5"}
    with ProviderHost(KINDS["registry"].provider(), env=env) as host:
        host.configure({})
        urn = host.urn("registry", "Registry")
        inputs, _ = host.check(urn, as_engine_sends(KINDS["registry"].inputs(harbor)))
        registry_id, outputs = host.create(urn, inputs)
        harbor.ping_delay = 1.5
        host.update(urn, registry_id, outputs, {**inputs, "description": "GitHub's registry"})
    assert harbor.count("PUT", f"/registries/{registry_id}") == 1
    assert registry_of(harbor)["description"] == "GitHub's registry"


def test_a_registry_name_of_one_character_is_accepted(harbor, hosts):  # noqa: F811
    assert failures_of(hosts, harbor, "registry", name="g") == []


def test_a_retention_selector_whose_untagged_switch_changed_in_harbor_is_drift(harbor, hosts):  # noqa: F811
    """The tag selector's `extras` (the UI's "untagged artifacts" switch, pkg/retention/policy/rule/models.go
    Selector.Extras) changed by hand: the policy is no longer ours, so it reads as 0 days."""
    host, urn, inputs, project_id, outputs = made(harbor, hosts, "project")
    retention_of(harbor)["rules"][0]["tag_selectors"][0]["extras"] = '{"untagged":false}'
    _, read = host.read(urn, project_id, outputs)
    assert read["retention_days"] == 0
    assert host.diff(urn, project_id, read, inputs).changes == DiffResponse.DIFF_SOME


def test_a_robot_without_a_description_reads_back_without_drift(harbor, hosts):  # noqa: F811
    host = hosts("robot")
    urn = host.urn("robot", "Robot")
    bare = {k: v for k, v in KINDS["robot"].inputs(harbor).items() if k != "description"}
    inputs, failures = host.check(urn, bare)
    assert failures == [] and inputs["description"] == ""
    robot_id, outputs = host.create(urn, inputs)
    _, read = host.read(urn, robot_id, outputs, inputs)
    assert host.diff(urn, robot_id, read, inputs).changes == DiffResponse.DIFF_NONE


def test_a_retention_policy_harbor_shows_with_empty_extras_is_ours(harbor, hosts):  # noqa: F811
    """Harbor answers each selector with `extras` even when empty (pkg/retention/policy/rule/models.go
    Selector.Extras has no omitempty): that is still our policy, no drift."""
    host, urn, inputs, project_id, outputs = made(harbor, hosts, "project")
    rule = retention_of(harbor)["rules"][0]
    for selector in [*rule["tag_selectors"], *rule["scope_selectors"]["repository"]]:
        selector["extras"] = ""
    _, read = host.read(urn, project_id, outputs)
    assert read["retention_days"] == inputs["retention_days"]
    assert host.diff(urn, project_id, read, inputs).changes == DiffResponse.DIFF_NONE


def test_a_retention_rule_with_a_parameter_added_by_hand_is_drift(harbor, hosts):  # noqa: F811
    host, urn, inputs, project_id, outputs = made(harbor, hosts, "project")
    retention_of(harbor)["rules"][0]["params"]["latestPushedK"] = 3
    _, read = host.read(urn, project_id, outputs)
    assert read["retention_days"] == 0
    assert host.diff(urn, project_id, read, inputs).changes == DiffResponse.DIFF_SOME


def test_a_retention_rule_narrowed_to_some_repositories_by_hand_is_drift(harbor, hosts):  # noqa: F811
    host, urn, inputs, project_id, outputs = made(harbor, hosts, "project")
    retention_of(harbor)["rules"][0]["scope_selectors"]["repository"][0]["pattern"] = "library/**"
    _, read = host.read(urn, project_id, outputs)
    assert read["retention_days"] == 0
    assert host.diff(urn, project_id, read, inputs).changes == DiffResponse.DIFF_SOME


def test_an_oidc_400_about_something_else_is_not_blamed_on_the_auth_mode_lock(harbor, hosts):  # noqa: F811
    host = hosts("oidc")
    urn = host.urn("oidc", "OidcAuth")
    inputs, _ = host.check(urn, as_engine_sends(KINDS["oidc"].inputs(harbor)))
    harbor.inject("PUT", r"^/configurations$", 400)
    with pytest.raises(grpc.RpcError) as failed:
        host.create(urn, inputs)
    last = failed.value.details().strip().splitlines()[-1]
    assert last.endswith("PUT /api/v2.0/configurations failed (HTTP 400): injected"), last


def test_the_emulator_refuses_a_body_that_is_not_declared_json_as_harbor_does(harbor):  # noqa: F811
    """go-openapi/runtime (middleware/validation.go validateContentType): a body in a type the route
    does not consume is a 415, so a client that forgot its Content-Type fails here as with Harbor."""
    import base64
    import urllib.error
    import urllib.request

    authorization = "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    for content_type, status in (("application/x-www-form-urlencoded", 415), ("application/json; charset=utf-8", 201)):
        request = urllib.request.Request(  # noqa: S310 - loopback
            harbor.url + "/api/v2.0/projects",
            data=b'{"project_name": "typed", "metadata": {"public": "false"}}',
            method="POST",
            headers={"Authorization": authorization, "Content-Type": content_type},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                assert answer.status == status
        except urllib.error.HTTPError as error:
            assert error.code == status and b"unsupported media type" in error.read()
        harbor.state.projects = {k: v for k, v in harbor.state.projects.items() if v["name"] != "typed"}


def test_retries_back_off_doubling_from_the_base_delay(harbor):  # noqa: F811
    """Waits of 1 s then 2 s: within a 2.6 s budget that is two attempts (a third would start at 3 s),
    and the error says so."""
    harbor.inject("GET", r"^/projects$", 503, times=10)
    client = HarborClient(harbor.url, "admin", ADMIN_PASSWORD, timeout=2, retry_seconds=2.6, base_delay=1.0)
    with pytest.raises(HarborApiError) as failed:
        client.get("/projects")
    assert harbor.count("GET", "/projects") == 2
    assert "gave up after 2 attempts in 2.6 s, last: HTTP 503" in str(failed.value)


def test_a_gc_worker_count_harbor_holds_as_a_boolean_reads_as_none(harbor, hosts):  # noqa: F811
    """Harbor keeps workers only as an integer (controller/gc CreateSchedule): `true` is not 1 worker."""
    host = hosts("gc")
    urn = host.urn("gc", "GcSchedule")
    inputs, _ = host.check(urn, as_engine_sends({**KINDS["gc"].inputs(harbor), "workers": 1}))
    gc_id, outputs = host.create(urn, inputs)
    harbor.state.gc_schedule["parameters"]["workers"] = True
    _, read = host.read(urn, gc_id, outputs)
    assert read["workers"] == 0
    assert host.diff(urn, gc_id, read, inputs).changes == DiffResponse.DIFF_SOME


def test_a_post_to_a_name_that_does_not_resolve_is_retried_not_taken_as_maybe_sent():
    """A DNS failure (socket.gaierror inside URLError) means the request never left this machine
    (api.py _not_sent), like a refused connection: a plain error, not "may have reached Harbor"."""
    client = HarborClient("https://harbor.invalid", "admin", ADMIN_PASSWORD, retry_seconds=0.3, base_delay=0.01)
    with pytest.raises(HarborApiError) as failed:
        client.request("POST", "/registries", {"name": "x"})
    assert not isinstance(failed.value, MaybeSent) and "gave up after" in str(failed.value)
    assert "gaierror" in str(failed.value)


def test_a_robot_permission_widened_by_hand_is_shown_as_such_after_refresh(harbor, hosts):  # noqa: F811
    """A project permission with more than pull (push given by hand) is listed as what it is among
    the projects, so the next diff shows it; it is not taken for the robot's system access."""
    host, urn, inputs, robot_id, outputs = made(harbor, hosts, "robot")
    permission = robot_of(harbor)["permissions"][0]
    permission["access"].append({"resource": "repository", "action": "push"})
    _, read = host.read(urn, robot_id, outputs, inputs)
    assert read["system_access"] == []
    assert any(entry.startswith(f"project:{permission['namespace']}:") for entry in read["projects"]), read["projects"]
    assert host.diff(urn, robot_id, read, inputs).changes == DiffResponse.DIFF_SOME


def test_an_oidc_scope_written_with_spaces_is_taken_as_harbor_stores_it(harbor, hosts):  # noqa: F811
    """Harbor splits the scope at commas and trims each item (lib/config/userconfig.go SplitAndTrim)."""
    host = hosts("oidc")
    urn = host.urn("oidc", "OidcAuth")
    spaced = {**KINDS["oidc"].inputs(harbor), "oidc_scope": " openid, profile ,, email "}
    inputs, failures = host.check(urn, as_engine_sends(spaced))
    assert failures == [] and inputs["oidc_scope"] == "openid,profile,email"
    oidc_id, outputs = host.create(urn, inputs)
    _, read = host.read(urn, oidc_id, outputs)
    assert host.diff(urn, oidc_id, read, inputs).changes == DiffResponse.DIFF_NONE


def test_a_gateway_timeout_on_a_post_is_maybe_sent_and_on_a_get_retried(harbor):  # noqa: F811
    """504: the gateway gave up waiting for Harbor's core, so the request reached it. A POST is not
    sent again (the providers look the name up instead); a GET is simply asked again."""
    client = HarborClient(harbor.url, "admin", ADMIN_PASSWORD, retry_seconds=2, base_delay=0.01)
    harbor.inject("POST", r"^/projects$", 504)
    with pytest.raises(MaybeSent) as failed:
        client.request("POST", "/projects", {"project_name": "gateway", "metadata": {"public": "false"}})
    assert failed.value.status == 504 and harbor.count("POST", "/projects") == 1
    harbor.inject("GET", r"^/projects$", 504)
    assert client.get("/projects") is not None and harbor.count("GET", "/projects") == 2


def test_a_project_on_registry_id_one_passes_check(harbor, hosts):  # noqa: F811
    assert failures_of(hosts, harbor, "project", registry_id=1) == []


def test_a_new_robot_state_says_enabled_and_never_expiring_and_the_next_diff_is_empty(harbor, hosts):  # noqa: F811
    host, urn, inputs, robot_id, outputs = made(harbor, hosts, "robot")
    assert outputs["disable"] is False and outputs["duration"] == -1
    assert host.diff(urn, robot_id, outputs, inputs).changes == DiffResponse.DIFF_NONE


def test_a_registry_answer_without_insecure_reads_as_secure(harbor, hosts):  # noqa: F811
    """go-swagger leaves a false optional boolean out of Harbor's answer (omitempty on the generated
    Registry model): absent `insecure` is false, not drift."""
    host, urn, inputs, registry_id, outputs = made(harbor, hosts, "registry")
    registry_of(harbor).pop("insecure")
    _, read = host.read(urn, registry_id, outputs)
    assert read["insecure"] is False
    assert host.diff(urn, registry_id, read, inputs).changes == DiffResponse.DIFF_NONE


def test_a_project_moved_to_another_registry_is_deleted_before_its_replacement(harbor, hosts):  # noqa: F811
    """Same name, new registry: Harbor refuses the name while the old project exists, so the old one
    goes first; a new name can be created before the old one is deleted."""
    host, urn, inputs, project_id, outputs = made(harbor, hosts, "project")
    moved = host.diff(urn, project_id, outputs, {**inputs, "registry_id": inputs["registry_id"] + 100})
    assert list(moved.replaces) == ["registry_id"] and moved.deleteBeforeReplace
    renamed = host.diff(urn, project_id, outputs, {**inputs, "name": "ghcr-proxy-2"})
    assert list(renamed.replaces) == ["name"] and not renamed.deleteBeforeReplace


def test_a_registry_secret_removed_in_harbor_with_the_key_kept_is_drift(harbor, hosts):  # noqa: F811
    host, urn, inputs, registry_id, outputs = made(harbor, hosts, "registry")
    registry_of(harbor)["credential"].update(access_secret="")
    _, read = host.read(urn, registry_id, outputs)
    assert host.diff(urn, registry_id, read, inputs).changes == DiffResponse.DIFF_SOME


def test_a_retention_of_one_day_passes_check(harbor, hosts):  # noqa: F811
    assert failures_of(hosts, harbor, "project", retention_days=1) == []


def test_a_robot_of_our_name_changed_by_hand_is_set_back_when_adopted(harbor, hosts):  # noqa: F811
    host, urn, inputs, robot_id, _ = made(harbor, hosts, "robot")
    robot_of(harbor)["description"] = "by hand"
    again_id, _ = host.create(urn, inputs)  # state lost: create finds the robot by name
    assert again_id == robot_id and robot_of(harbor)["description"] == inputs["description"]


def test_a_registry_400_about_something_else_is_not_blamed_on_the_upstream(harbor, hosts):  # noqa: F811
    host = hosts("registry")
    urn = host.urn("registry", "Registry")
    inputs, _ = host.check(urn, as_engine_sends(KINDS["registry"].inputs(harbor)))
    harbor.inject("POST", r"^/registries$", 400)
    with pytest.raises(grpc.RpcError) as failed:
        host.create(urn, inputs)
    last = failed.value.details().strip().splitlines()[-1]
    assert last.endswith("POST /api/v2.0/registries failed (HTTP 400): injected"), last


def test_a_500_on_a_registry_that_is_not_docker_hub_gets_no_login_hint(harbor, hosts):  # noqa: F811
    host = hosts("registry")
    urn = host.urn("registry", "Registry")
    inputs, _ = host.check(urn, as_engine_sends(KINDS["registry"].inputs(harbor)))
    harbor.inject("POST", r"^/registries$", 500)
    with pytest.raises(grpc.RpcError) as failed:
        host.create(urn, inputs)
    last = failed.value.details().strip().splitlines()[-1]
    assert last.endswith("POST /api/v2.0/registries failed (HTTP 500): internal server error"), last


def test_a_rotation_of_an_object_gone_from_harbor_still_takes_the_new_password(harbor, hosts):  # noqa: F811
    """The authenticated call answers 404: the credential is proven, the next refresh sees it gone."""
    host, urn, inputs, registry_id, outputs = made(harbor, hosts, "registry")
    harbor.state.registries.pop(int(registry_id))
    harbor.state.admin_password = ROTATED_PASSWORD
    updated = host.update(urn, registry_id, outputs, {**inputs, "harbor_password": ROTATED_PASSWORD})
    assert updated["harbor_password"] == ROTATED_PASSWORD


# A setting an older state lacks: announced by diff, so written by update


# (kind, the setting, its default as the input, Harbor holding another value). The default is what
# `typed()` fills in for a key the state lacks: an update comparing typed olds would see no change.
UNAPPLIED: list[tuple[str, str, object, Callable[[HarborEmulator], None]]] = [
    ("gc", "workers", 1, lambda h: h.state.gc_schedule["parameters"].update(workers=2)),
    ("settings", "self_registration", False, lambda h: h.state.configurations.update(self_registration=True)),
    ("settings", "robot_name_prefix", "robot$", lambda h: h.state.configurations.update(robot_name_prefix="bot$")),
    ("oidc", "oidc_auto_onboard", False, lambda h: h.state.configurations.update(oidc_auto_onboard=True)),
    ("registry", "insecure", False, lambda h: registry_of(h).update(insecure=True)),
    ("project", "local_on_not_found", True, lambda h: project_of(h)["metadata"].update(proxy_cache_local_on_not_found="false")),
]


@pytest.mark.parametrize(("kind", "key", "default", "elsewhere"), UNAPPLIED, ids=[f"{k}-{f}" for k, f, _, _ in UNAPPLIED])
def test_a_setting_an_older_state_lacks_is_written_at_its_default(harbor, hosts, kind, key, default, elsewhere):  # noqa: F811
    """diff calls a FIELDS key missing from the state "never applied yet" (its default proves nothing
    about Harbor); update must then write it, not only verify the connection, or the state records
    the default as applied while Harbor keeps another value until someone refreshes."""
    host = hosts(kind)
    urn = host.urn(kind, KINDS[kind].type_name)
    inputs, failures = host.check(urn, as_engine_sends({**KINDS[kind].inputs(harbor), key: default}))
    assert failures == [] and inputs[key] == default
    id_, outputs = host.create(urn, inputs)
    elsewhere(harbor)  # Harbor holds another value; the state below was written before `key` existed
    older = {k: v for k, v in outputs.items() if k != key}
    assert host.diff(urn, id_, older, inputs).changes == DiffResponse.DIFF_SOME
    updated = host.update(urn, id_, older, inputs)
    assert updated[key] == default
    _, read = host.read(urn, id_, updated)
    assert read[key] == default, f"Harbor must hold the {key} the state now records"
    assert host.diff(urn, id_, read, inputs).changes == DiffResponse.DIFF_NONE


# What the second mutation run (scripts/mutation_providers.py) found: conflicts, races with another
# writer, and what a refresh reads where Harbor holds something other than ours


def first_registry(harbor) -> int:  # noqa: F811
    """A registry at id 1, as Harbor numbers the first registry it holds (its own table's sequence;
    the emulator's ids are shared by every kind and start above 1)."""
    harbor.state.registries[1] = {
        "id": 1,
        "name": "ghcr-upstream",
        "type": "github-ghcr",
        "url": "https://ghcr.io",
        "description": "",
        "insecure": False,
        "credential": {"type": "basic", "access_key": "", "access_secret": ""},
        "status": "healthy",
    }
    return 1


def project_on(harbor, hosts, registry_id: int, **changes) -> tuple:  # noqa: F811
    host = hosts("project")
    urn = host.urn("project", "Project")
    inputs, failures = host.check(
        urn, as_engine_sends({**KINDS["project"].inputs(harbor), "registry_id": registry_id, **changes})
    )
    assert failures == []
    return host, urn, inputs


def last_line(error: grpc.RpcError) -> str:
    """The error the user reads: the last line of the traceback the provider host answers with."""
    return error.details().strip().splitlines()[-1]


def ordinary_project(harbor, name: str) -> int:  # noqa: F811
    """A project made in Harbor without registry_id (not a proxy cache), through the API."""
    client = HarborClient(harbor.url, "admin", ADMIN_PASSWORD)
    answer = client.request("POST", "/projects", {"project_name": name, "metadata": {"public": "false"}})
    return int(answer.location_id())


def test_a_registry_of_our_name_pointing_elsewhere_is_refused_as_harbor_refuses_a_duplicate(harbor, hosts):  # noqa: F811
    """Harbor answers a second registry of one name with 409 (pkg/reg/dao/dao.go Create: "registry %s
    already exists"); the provider, which finds the name before posting, refuses with that status and
    says what differs, and leaves the other registry alone."""
    host = hosts("registry")
    urn = host.urn("registry", "Registry")
    inputs, _ = host.check(urn, as_engine_sends(KINDS["registry"].inputs(harbor)))
    theirs = harbor.state.new_id()
    harbor.state.registries[theirs] = {
        **harbor.state.registries[harbor.project_by_name("a-proxy")["registry_id"]],
        "id": theirs,
        "name": "ghcr",
        "type": "github-ghcr",
        "url": "https://elsewhere.example.com",
    }
    with pytest.raises(grpc.RpcError) as failed:
        host.create(urn, inputs)
    assert last_line(failed.value) == (
        "components.harbor.api.HarborApiError: Harbor API POST /api/v2.0/registries failed (HTTP 409): registry 'ghcr' "
        "already exists with URL 'https://elsewhere.example.com' (wanted 'https://ghcr.io') - rename the upstream, or "
        "change or delete that registry in Harbor"
    )
    assert harbor.count("PUT") == 0 and harbor.state.registries[theirs]["url"] == "https://elsewhere.example.com"


def test_an_ordinary_project_of_our_name_is_not_taken_for_a_proxy_of_registry_one(harbor, hosts):  # noqa: F811
    """A project of our name made by hand without a registry (Harbor keeps registry_id 0 and leaves it
    out of the answer: handler/project.go CreateProject, lib.Int64Value of an absent registry_id)
    cannot become our proxy cache: Harbor's PUT never changes a project's registry (UpdateProject
    does not look at registry_id). Our upstream being registry 1, Harbor's first, changes nothing."""
    registry_id = first_registry(harbor)
    ordinary_project(harbor, "ghcr-proxy")
    host, urn, inputs = project_on(harbor, hosts, registry_id)
    harbor.reset_calls()
    with pytest.raises(grpc.RpcError) as failed:
        host.create(urn, inputs)
    assert last_line(failed.value) == (
        "components.harbor.api.HarborApiError: Harbor API POST /api/v2.0/projects failed (HTTP 409): project "
        "'ghcr-proxy' already exists with registry id none (wanted 1) - its registry cannot be changed: rename the "
        "project, or delete it in Harbor"
    )
    assert [call for call in harbor.calls if call[0] != "GET"] == [], "the ordinary project is left as it is"


def test_a_project_harbor_refuses_with_a_400_shows_harbors_words_alone(harbor, hosts):  # noqa: F811
    """A registry type Harbor does not proxy: validateProjectReq answers 400 "unsupported registry
    type" (handler/project.go). Only a 500 gets the hint about a missing registry."""
    registry_id = harbor.state.new_id()
    harbor.state.registries[registry_id] = {
        "id": registry_id,
        "name": "gitlab",
        "type": "gitlab",
        "url": "https://gitlab.example.com",
        "description": "",
        "insecure": False,
        "credential": {"type": "basic", "access_key": "", "access_secret": ""},
        "status": "healthy",
    }
    host, urn, inputs = project_on(harbor, hosts, registry_id)
    with pytest.raises(grpc.RpcError) as failed:
        host.create(urn, inputs)
    assert last_line(failed.value) == (
        "components.harbor.api.HarborApiError: Harbor API POST /api/v2.0/projects failed (HTTP 400): "
        "unsupported registry type gitlab"
    )


def test_a_refresh_that_meets_an_ordinary_project_at_our_id_reads_no_registry(harbor, hosts):  # noqa: F811
    """Harbor on a new database numbers projects again from its sequence's start, so our id can hold
    another team's ordinary project there. Harbor's answer has no registry_id (0, left out): the
    refresh says so, and the next diff replaces the project for its registry as for its name,
    although our upstream is registry 1."""
    host, urn, inputs = project_on(harbor, hosts, first_registry(harbor))
    project_id, outputs = host.create(urn, inputs)
    harbor.switch_database()
    harbor.state.next_id = int(project_id) - 1
    assert ordinary_project(harbor, "team-a") == int(project_id)
    read_id, read = host.read(urn, project_id, outputs)
    assert read_id == project_id and read["name"] == "team-a" and read["registry_id"] == 0
    assert sorted(host.diff(urn, project_id, read, inputs).replaces) == ["name", "registry_id"]


def delete_retention_as_harbor_does(harbor) -> None:  # noqa: F811
    """DELETE /retentions/{id}: Harbor deletes the policy and the project's retention_id metadata
    (handler/retention.go DeleteRetention -> proMetaMgr.Delete)."""
    metadata = project_of(harbor)["metadata"]
    harbor.state.retentions.pop(int(metadata.pop("retention_id")))


def test_a_retention_policy_deleted_in_harbor_reads_as_no_days_and_up_makes_it_again(harbor, hosts):  # noqa: F811
    """Kept one day, the policy deleted in Harbor: the refresh reads 0 days (no input's value, not
    1), so the next diff shows it and `up` makes the policy again."""
    host, urn, inputs = project_on(harbor, hosts, harbor.project_by_name("a-proxy")["registry_id"], retention_days=1)
    project_id, outputs = host.create(urn, inputs)
    delete_retention_as_harbor_does(harbor)
    _, read = host.read(urn, project_id, outputs)
    assert read["retention_days"] == 0
    assert host.diff(urn, project_id, read, inputs).changes == DiffResponse.DIFF_SOME
    updated = host.update(urn, project_id, read, inputs)
    assert retention_of(harbor)["rules"][0]["params"] == {"nDaysSinceLastPull": 1}
    _, again = host.read(urn, project_id, updated)
    assert again["retention_days"] == 1 and host.diff(urn, project_id, again, inputs).changes == DiffResponse.DIFF_NONE


def test_a_retention_days_parameter_harbor_holds_as_true_is_not_one_day(harbor, hosts):  # noqa: F811
    """Harbor stores a rule's params as given (RetentionRule.params is a free map; handler/retention.go
    UpdateRetention checks only rule count, conflicts and the cron), and its evaluator takes `true`
    for no number at all and keeps 30 days (pkg/retention/policy/rule/dayspl/evaluator.go New:
    ParseJSONInt fails -> DefaultN). Though Python's True == 1, that is not our one day: drift."""
    host, urn, inputs = project_on(harbor, hosts, harbor.project_by_name("a-proxy")["registry_id"], retention_days=1)
    project_id, outputs = host.create(urn, inputs)
    policy = retention_of(harbor)
    policy["rules"][0]["params"]["nDaysSinceLastPull"] = True
    client = HarborClient(harbor.url, "admin", ADMIN_PASSWORD)
    client.request("PUT", f"/retentions/{policy['id']}", policy)  # as a person or a script would
    assert retention_of(harbor)["rules"][0]["params"] == {"nDaysSinceLastPull": True}
    _, read = host.read(urn, project_id, outputs)
    assert read["retention_days"] == 0
    assert host.diff(urn, project_id, read, inputs).changes == DiffResponse.DIFF_SOME


@pytest.mark.parametrize(
    ("kind", "collection", "table"), [("project", "/projects", "projects"), ("registry", "/registries", "registries")]
)
def test_an_object_deleted_by_another_writer_just_before_our_delete_is_gone(harbor, hosts, kind, collection, table):  # noqa: F811
    """Between our lookup (still ours?) and our DELETE another writer deletes it: Harbor answers 404
    (handler/project.go DeleteProject -> getProject; controller/registry Delete -> dao Delete "registry
    %d not found"), which means what we wanted is done."""
    host, urn, inputs, id_, outputs = made(harbor, hosts, kind)
    route = harbor.route

    def another_writer_first(method, path, query, body, headers):
        if method == "DELETE" and path == f"{collection}/{id_}":
            getattr(harbor.state, table).pop(int(id_))
        return route(method, path, query, body, headers)

    harbor.route = another_writer_first
    host.delete(urn, id_, outputs)
    assert int(id_) not in getattr(harbor.state, table)
    assert harbor.count("DELETE", f"{collection}/{id_}") == 1


# An input left out is the provider's default (Field), and Harbor ends up holding it


DEFAULTS = [
    ("registry", "insecure", lambda h: registry_of(h)["insecure"] is False),
    ("project", "public", lambda h: project_of(h)["metadata"]["public"] == "true"),
    ("project", "storage_quota_gb", lambda h: quota_of(h)["hard"]["storage"] == -1),
    ("project", "speed_limit_kbps", lambda h: project_of(h)["metadata"]["proxy_speed_kb"] == "-1"),
    ("project", "local_on_not_found", lambda h: project_of(h)["metadata"]["proxy_cache_local_on_not_found"] == "true"),
    ("project", "max_upstream_conn", lambda h: project_of(h)["metadata"]["max_upstream_conn"] == "-1"),
    ("oidc", "oidc_verify_cert", lambda h: h.state.configurations["oidc_verify_cert"] is True),
    ("oidc", "oidc_auto_onboard", lambda h: h.state.configurations["oidc_auto_onboard"] is False),
    ("gc", "delete_untagged", lambda h: h.state.gc_schedule["parameters"]["delete_untagged"] is True),
    ("gc", "workers", lambda h: h.state.gc_schedule["parameters"]["workers"] == 1),
    ("settings", "self_registration", lambda h: h.state.configurations["self_registration"] is False),
    ("settings", "robot_name_prefix", lambda h: h.state.configurations["robot_name_prefix"] == "robot$"),
]


@pytest.mark.parametrize(("kind", "key", "held"), DEFAULTS, ids=[f"{kind}-{key}" for kind, key, _ in DEFAULTS])
def test_an_input_left_out_takes_the_providers_default_in_harbor(harbor, hosts, kind, key, held):  # noqa: F811
    """The SDK leaves an input whose value is None out of what it sends (pulumi/runtime/rpc.py
    serialize_properties: "properties that serialize to None as if they don't exist"), so each
    setting has a default: the safe one for a cache (verify certificates,
    never let strangers register, delete untagged artifacts, no limit Harbor would enforce). Check
    passes, Harbor holds the default after create, and the next refresh shows no drift."""
    host = hosts(kind)
    urn = host.urn(kind, KINDS[kind].type_name)
    inputs, failures = host.check(urn, as_engine_sends({k: v for k, v in KINDS[kind].inputs(harbor).items() if k != key}))
    assert failures == []
    id_, outputs = host.create(urn, inputs)
    assert held(harbor), f"Harbor holds the default {key}"
    _, read = host.read(urn, id_, outputs)
    assert host.diff(urn, id_, read, inputs).changes == DiffResponse.DIFF_NONE


def test_a_project_state_without_force_destroy_keeps_what_is_cached(harbor, hosts):  # noqa: F811
    """A state written before forceDestroy existed: the delete of a project that still holds
    repositories is refused (Harbor's 412), nothing cached is deleted."""
    host, urn, inputs, project_id, outputs = made(harbor, hosts, "project")
    harbor.add_repository("ghcr-proxy", "library/alpine")
    older = {k: v for k, v in outputs.items() if k != "force_destroy"}
    with pytest.raises(grpc.RpcError) as failed:
        host.delete(urn, project_id, older)
    assert "still holds cached repositories" in failed.value.details()
    assert project_of(harbor)["repositories"] == ["ghcr-proxy/library/alpine"]
