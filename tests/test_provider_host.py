"""The dynamic providers driven through the real provider host over gRPC against the Harbor emulator:
Configure -> Check -> Create -> Read -> Diff -> Update -> Delete for every resource, with call
counts, faults and secrets checked."""

from __future__ import annotations

import base64

import grpc
import pytest
from pulumi.output import Unknown
from pulumi.runtime import rpc

from components.harbor_provider import (
    HarborGcScheduleProvider,
    HarborOidcProvider,
    HarborProjectProvider,
    HarborRegistryProvider,
    secret_hash,
)
from tests.harbor_emulator import HarborEmulator
from tests.provider_host import ProviderHost, as_engine_sends

ADMIN_PASSWORD = "Admin-Passw0rd"
FAST_RETRIES = {"HARBOR_CACHE_RETRY_BASE_DELAY": "0.01", "HARBOR_CACHE_HTTP_TIMEOUT": "2"}


@pytest.fixture
def harbor():
    emulator = HarborEmulator(admin_password=ADMIN_PASSWORD)
    yield emulator
    emulator.stop()
    assert emulator.violations == [], "every request and response must fit Harbor's spec"


def connection(harbor) -> dict:
    return {"harbor_url": harbor.url, "harbor_username": "admin", "harbor_password": ADMIN_PASSWORD}


@pytest.fixture
def host_for():
    hosts = []

    def start(provider, env=None):
        host = ProviderHost(provider, env={**FAST_RETRIES, **(env or {})})
        host.configure({"harbor-cache:hostname": "harbor.dev.example.com"})
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        host.close()


def registry_inputs(harbor, **overrides) -> dict:
    return {
        **connection(harbor),
        "name": "dockerhub",
        "type": "docker-hub",
        "url": "https://hub.docker.com",
        "description": "Docker Hub",
        "insecure": False,
        "access_key": "bot",
        "access_secret": "s3cret-token",
        **overrides,
    }


def create_registry(host, harbor, **overrides):
    urn = host.urn("dockerhub", "Registry")
    inputs, failures = host.check(urn, as_engine_sends(registry_inputs(harbor, **overrides)))
    assert failures == []
    return urn, inputs, *host.create(urn, inputs)


# Registries


def test_registry_lifecycle(harbor, host_for):
    host = host_for(HarborRegistryProvider())
    urn, inputs, registry_id, outputs = create_registry(host, harbor)
    assert harbor.count() == 1, "create is one call"
    stored = harbor.state.registries[int(registry_id)]
    assert stored["credential"] == {"type": "basic", "access_key": "bot", "access_secret": "s3cret-token"}
    assert outputs["registry_id"] == int(registry_id)
    assert "access_secret" not in outputs and "s3cret-token" not in str(outputs)
    assert outputs["credential_hash"] == secret_hash("bot", "s3cret-token")

    harbor.reset_calls()
    read_id, read = host.read(urn, registry_id, outputs)
    assert read_id == registry_id and harbor.calls == [("GET", f"/registries/{registry_id}")]
    assert read["url"] == "https://hub.docker.com" and read["credential_hash"] == outputs["credential_hash"]

    harbor.reset_calls()
    same, _ = host.check(urn, as_engine_sends(registry_inputs(harbor)), olds=outputs)
    assert host.diff(urn, registry_id, outputs, same).changes == 1  # DIFF_NONE
    assert harbor.calls == [], "a no-op diff makes no call"

    rotated, _ = host.check(urn, as_engine_sends(registry_inputs(harbor, access_secret="new-token")), olds=outputs)
    diff = host.diff(urn, registry_id, outputs, rotated)
    assert diff.changes == 2 and list(diff.replaces) == [], "a changed secret is seen through its hash"
    new_url, _ = host.check(urn, as_engine_sends(registry_inputs(harbor, url="https://registry-1.docker.io")), olds=outputs)
    updated = host.update(urn, registry_id, outputs, new_url)
    stored = harbor.state.registries[int(registry_id)]
    assert stored["url"] == "https://registry-1.docker.io"
    assert stored["credential"]["access_secret"] == "s3cret-token", "the secret is re-sent so a URL change keeps it"
    assert harbor.calls[-1] == ("PUT", f"/registries/{registry_id}")

    new_type, _ = host.check(urn, as_engine_sends(registry_inputs(harbor, type="docker-registry")), olds=updated)
    assert list(host.diff(urn, registry_id, updated, new_type).replaces) == ["type"]

    host.delete(urn, registry_id, updated)
    assert int(registry_id) not in harbor.state.registries
    assert host.read(urn, registry_id, updated)[0] == "", "404 on refresh means gone"


def test_registry_check_names_the_bad_property(harbor, host_for):
    host = host_for(HarborRegistryProvider())
    urn = host.urn("q", "Registry")
    _, failures = host.check(urn, registry_inputs(harbor, type="quay", url="https://quay.io"))
    assert failures and failures[0][0] == "type" and "docker-registry" in failures[0][1]
    _, failures = host.check(urn, registry_inputs(harbor, type="nexus"))
    assert failures[0][0] == "type" and "docker-hub" in failures[0][1]
    _, failures = host.check(urn, registry_inputs(harbor, harbor_url="http://harbor.example.com"))
    assert failures[0][0] == "harbor_url" and "https" in failures[0][1]
    _, failures = host.check(urn, {k: v for k, v in registry_inputs(harbor).items() if k != "url"})
    assert failures == [("url", "url is required")]
    assert harbor.calls == []


def test_preview_copes_with_unknowns(harbor, host_for):
    host = host_for(HarborProjectProvider())
    urn = host.urn("dockerhub-proxy", "Project")
    inputs, failures = host.check(urn, {**connection(harbor), "name": "dockerhub-proxy", "registry_id": rpc.UNKNOWN})
    assert failures == [] and isinstance(inputs["registry_id"], Unknown), "the unknown travels on"
    olds = {
        **connection(harbor),
        "name": "dockerhub-proxy",
        "registry_id": 3.0,
        "public": True,
        "storage_quota_gb": -1.0,
        "speed_limit_kbps": -1.0,
        "force_destroy": False,
        "project_id": 4.0,
    }
    diff = host.diff(urn, "4", olds, inputs)
    assert diff.changes == 2 and list(diff.replaces) == ["registry_id"]
    assert diff.deleteBeforeReplace, "same name, new registry: the old project goes first"
    assert harbor.calls == []


def test_registry_409_says_how_to_import_and_import_by_name_works(harbor, host_for):
    host = host_for(HarborRegistryProvider())
    urn, inputs, registry_id, _ = create_registry(host, harbor)
    with pytest.raises(grpc.RpcError) as error:
        host.create(urn, inputs)
    assert "already exists" in error.value.details() and "harborImports" in error.value.details()
    assert "s3cret-token" not in error.value.details() and ADMIN_PASSWORD not in error.value.details()

    original = harbor.state.registries.pop(int(registry_id))
    for index in range(150):  # names that a fuzzy match would also find, filling the first page
        harbor.state.registries[1000 + index] = {**original, "id": 1000 + index, "name": f"dockerhub-{index}"}
    harbor.state.registries[int(registry_id)] = original  # listed last: on the second page
    harbor.reset_calls()
    imported_id, imported = host.read(urn, "dockerhub", {}, inputs=inputs)
    assert imported_id == registry_id and imported["name"] == "dockerhub"
    assert harbor.queries[0] == ("GET", "/registries", {"q": "name=dockerhub", "page": "1", "page_size": "100"})
    # The emulator's q=name= is exact, so one page; the client follows pages while X-Total-Count says so.
    assert len(harbor.queries) == 1


def test_name_lookups_follow_pagination(harbor):
    from components.harbor_api import HarborClient

    client = HarborClient(harbor.url, "admin", ADMIN_PASSWORD)
    for index in range(230):
        harbor.state.registries[5000 + index] = {
            "id": 5000 + index,
            "name": f"mirror-{index}",
            "type": "docker-registry",
            "url": "https://r.example.com",
            "description": "",
            "insecure": False,
            "credential": {"type": "basic"},
        }
    items = client.list_all("/registries")
    assert len(items) == 230 and [q[2]["page"] for q in harbor.queries] == ["1", "2", "3"]
    harbor.reset_calls()
    assert client.find_by_name("/registries", "mirror-229")["id"] == 5229
    assert harbor.queries == [("GET", "/registries", {"q": "name=mirror-229", "page": "1", "page_size": "100"})]
    assert harbor.filter_name(list(harbor.state.registries.values()), {"name": "mirror-22"}) != [], "name= is fuzzy"


def test_unhealthy_upstream_and_401_are_reported_without_secrets(harbor, host_for):
    host = host_for(HarborRegistryProvider())
    urn = host.urn("broken", "Registry")
    inputs, _ = host.check(urn, registry_inputs(harbor, name="broken", url="https://unreachable.example.com"))
    with pytest.raises(grpc.RpcError) as error:
        host.create(urn, inputs)
    assert "the registry is unhealthy" in error.value.details() and "POST /api/v2.0/registries" in error.value.details()

    wrong, _ = host.check(urn, registry_inputs(harbor, harbor_password="wrong-password"))
    with pytest.raises(grpc.RpcError) as error:
        host.create(urn, wrong)
    assert "HTTP 401" in error.value.details() and "wrong-password" not in error.value.details()
    assert harbor.count("POST") == 2, "no retry on 4xx"


# Faults


def test_retries_on_500s_dropped_connections_and_slow_answers(harbor, host_for):
    host = host_for(HarborRegistryProvider())
    harbor.inject("POST", "^/registries$", 503, times=2)
    harbor.inject("POST", "^/registries$", "drop", times=1)
    harbor.inject("POST", "^/registries$", 200, times=1, delay=3.0)  # slower than the 2 s timeout
    urn, _inputs, registry_id, _ = create_registry(host, harbor)
    assert harbor.count("POST", "/registries") == 5
    assert int(registry_id) in harbor.state.registries


def test_gives_up_after_bounded_retries_with_the_last_reason(harbor, host_for):
    host = host_for(HarborRegistryProvider())
    harbor.inject("GET", "^/registries/", 502, times=100)
    with pytest.raises(grpc.RpcError) as error:
        host.read(host.urn("x", "Registry"), "7", registry_inputs(harbor))
    assert harbor.count("GET") == 5
    assert "HTTP 502" in error.value.details()


def test_500_is_not_retried(harbor, host_for):
    host = host_for(HarborRegistryProvider())
    harbor.inject("POST", "^/registries$", 500, times=1)
    with pytest.raises(grpc.RpcError) as error:
        create_registry(host, harbor)
    assert "internal server error" in error.value.details()
    assert harbor.count("POST") == 1


# Projects


def project_inputs(harbor, registry_id: int, **overrides) -> dict:
    return {
        **connection(harbor),
        "name": "dockerhub-proxy",
        "registry_id": registry_id,
        "public": True,
        "storage_quota_gb": -1,
        "speed_limit_kbps": -1,
        "force_destroy": False,
        **overrides,
    }


@pytest.fixture
def registry_id(harbor, host_for):
    host = host_for(HarborRegistryProvider())
    return int(create_registry(host, harbor)[2])


def test_project_lifecycle(harbor, host_for, registry_id):
    host = host_for(HarborProjectProvider())
    urn = host.urn("dockerhub-proxy", "Project")
    inputs, failures = host.check(urn, as_engine_sends(project_inputs(harbor, registry_id, storage_quota_gb=50)))
    assert failures == [] and inputs["registry_id"] == registry_id
    harbor.reset_calls()
    project_id, outputs = host.create(urn, inputs)
    assert harbor.calls == [("POST", "/projects")], "create is one call"
    stored = harbor.state.projects[int(project_id)]
    assert stored["registry_id"] == registry_id and stored["metadata"] == {"public": "true", "proxy_speed_kb": "-1"}
    quota = next(q for q in harbor.state.quotas.values() if q["ref"]["id"] == int(project_id))
    assert quota["hard"]["storage"] == 50 * 1024**3

    harbor.reset_calls()
    _, read = host.read(urn, project_id, outputs)
    assert harbor.calls == [("GET", f"/projects/{project_id}")]
    assert read["public"] is True and read["registry_id"] == registry_id and read["storage_quota_gb"] == 50

    changed, _ = host.check(
        urn,
        as_engine_sends(project_inputs(harbor, registry_id, public=False, storage_quota_gb=-1, speed_limit_kbps=2048)),
        olds=outputs,
    )
    diff = host.diff(urn, project_id, outputs, changed)
    assert diff.changes == 2 and list(diff.replaces) == []
    updated = host.update(urn, project_id, outputs, changed)
    assert stored["metadata"] == {"public": "false", "proxy_speed_kb": "2048"}
    assert quota["hard"]["storage"] == -1
    assert updated["speed_limit_kbps"] == 2048

    renamed, _ = host.check(urn, project_inputs(harbor, registry_id, name="hub-proxy"), olds=updated)
    assert list(host.diff(urn, project_id, updated, renamed).replaces) == ["name"]

    host.delete(urn, project_id, updated)
    assert int(project_id) not in harbor.state.projects


def test_project_with_cached_repositories(harbor, host_for, registry_id):
    host = host_for(HarborProjectProvider())
    urn = host.urn("dockerhub-proxy", "Project")
    inputs, _ = host.check(urn, project_inputs(harbor, registry_id))
    project_id, outputs = host.create(urn, inputs)
    harbor.add_repository("dockerhub-proxy", "library/alpine")
    harbor.add_repository("dockerhub-proxy", "bitnami/redis")
    with pytest.raises(grpc.RpcError) as error:
        host.delete(urn, project_id, outputs)
    assert "still holds cached repositories" in error.value.details() and "forceDestroy" in error.value.details()
    assert int(project_id) in harbor.state.projects

    forced, _ = host.check(urn, project_inputs(harbor, registry_id, force_destroy=True), olds=outputs)
    outputs = host.update(urn, project_id, outputs, forced)
    host.delete(urn, project_id, outputs)
    assert int(project_id) not in harbor.state.projects
    assert harbor.count("DELETE", "/projects/dockerhub-proxy/repositories/") == 2


def test_registry_still_used_by_a_project_cannot_be_deleted(harbor, host_for, registry_id):
    projects = host_for(HarborProjectProvider())
    urn = projects.urn("dockerhub-proxy", "Project")
    inputs, _ = projects.check(urn, project_inputs(harbor, registry_id))
    projects.create(urn, inputs)
    registries = host_for(HarborRegistryProvider())
    with pytest.raises(grpc.RpcError) as error:
        registries.delete(registries.urn("dockerhub", "Registry"), str(registry_id), registry_inputs(harbor))
    assert "HTTP 412" in error.value.details() and "still used by a proxy-cache project" in error.value.details()


def test_unsupported_proxy_type_is_refused_by_harbor(harbor, host_for):
    registry = harbor.state.new_id()
    harbor.state.registries[registry] = {
        "id": registry,
        "name": "gitlab",
        "type": "gitlab",
        "url": "https://gitlab.example.com",
        "description": "",
        "insecure": False,
        "credential": {"type": "basic"},
    }
    host = host_for(HarborProjectProvider())
    urn = host.urn("gitlab-proxy", "Project")
    inputs, _ = host.check(urn, project_inputs(harbor, registry, name="gitlab-proxy"))
    with pytest.raises(grpc.RpcError) as error:
        host.create(urn, inputs)
    assert "unsupported registry type" in error.value.details()


def test_project_import_by_exact_name(harbor, host_for, registry_id):
    host = host_for(HarborProjectProvider())
    for name in ("dockerhub-proxy-old", "dockerhub-proxy"):
        inputs, _ = host.check(host.urn(name, "Project"), project_inputs(harbor, registry_id, name=name))
        host.create(host.urn(name, "Project"), inputs)
    wanted = harbor.project_by_name("dockerhub-proxy")
    imported_id, imported = host.read(
        host.urn("dockerhub-proxy", "Project"), "dockerhub-proxy", {}, inputs=project_inputs(harbor, registry_id)
    )
    assert imported_id == str(wanted["project_id"]) and imported["name"] == "dockerhub-proxy"


# OIDC


def oidc_inputs(harbor, **overrides) -> dict:
    return {
        **connection(harbor),
        "oidc_name": "dex",
        "oidc_endpoint": "https://dex.dev.example.com",
        "oidc_client_id": "harbor-cache-oidc-dex",
        "oidc_client_secret": "Y2xpZW50LXNlY3JldC0yMGJ5dGVz",
        "oidc_groups_claim": "groups",
        "oidc_admin_group": "cluster_admins",
        "oidc_scope": "openid,profile,email,groups",
        "oidc_verify_cert": True,
        "oidc_auto_onboard": False,
        "oidc_user_claim": "",
        **overrides,
    }


def test_oidc_lifecycle(harbor, host_for):
    host = host_for(HarborOidcProvider())
    urn = host.urn("oidc", "OidcAuth")
    inputs, failures = host.check(urn, oidc_inputs(harbor))
    assert failures == []
    harbor.reset_calls()
    oidc_id, outputs = host.create(urn, inputs)
    assert harbor.calls == [("PUT", "/configurations")]
    config = harbor.state.configurations
    assert config["auth_mode"] == "oidc_auth" and config["oidc_client_secret"] == "Y2xpZW50LXNlY3JldC0yMGJ5dGVz"
    assert config["oidc_admin_group"] == "cluster_admins" and config["oidc_verify_cert"] is True
    assert "oidc_client_secret" not in outputs and outputs["client_secret_hash"] == secret_hash("Y2xpZW50LXNlY3JldC0yMGJ5dGVz")

    harbor.reset_calls()
    _, read = host.read(urn, oidc_id, outputs)
    assert harbor.calls == [("GET", "/configurations")] and read["oidc_endpoint"] == "https://dex.dev.example.com"
    same, _ = host.check(urn, oidc_inputs(harbor), olds=read)
    assert host.diff(urn, oidc_id, read, same).changes == 1 and harbor.calls == [("GET", "/configurations")]

    new_secret, _ = host.check(urn, oidc_inputs(harbor, oidc_client_secret="bmV3LXNlY3JldA=="), olds=read)
    assert host.diff(urn, oidc_id, read, new_secret).changes == 2
    updated = host.update(urn, oidc_id, read, new_secret)
    assert config["oidc_client_secret"] == "bmV3LXNlY3JldA=="
    host.delete(urn, oidc_id, updated)
    assert config["auth_mode"] == "db_auth"


def test_oidc_says_exactly_why_it_cannot_be_switched_on(harbor, host_for):
    harbor.add_user("alice")
    host = host_for(HarborOidcProvider())
    urn = host.urn("oidc", "OidcAuth")
    inputs, _ = host.check(urn, oidc_inputs(harbor))
    with pytest.raises(grpc.RpcError) as error:
        host.create(urn, inputs)
    details = error.value.details()
    assert "OIDC cannot be switched on" in details and "any user other than admin exists" in details
    assert "Y2xpZW50" not in details


# GC


def test_gc_schedule_lifecycle(harbor, host_for):
    host = host_for(HarborGcScheduleProvider())
    urn = host.urn("gc", "GcSchedule")
    inputs, failures = host.check(
        urn, as_engine_sends({**connection(harbor), "cron": "0 0 3 * * 0", "delete_untagged": True, "workers": 2})
    )
    assert failures == [] and inputs["workers"] == 2
    harbor.reset_calls()
    gc_id, outputs = host.create(urn, inputs)
    assert harbor.calls == [("POST", "/system/gc/schedule")]
    assert harbor.state.gc_schedule["parameters"] == {"delete_untagged": True, "workers": 2}
    assert harbor.state.gc_schedule["schedule"] == {"type": "Custom", "cron": "0 0 3 * * 0"}

    _, read = host.read(urn, gc_id, outputs)
    assert read["cron"] == "0 0 3 * * 0" and read["workers"] == 2
    changed, _ = host.check(urn, {**inputs, "cron": "0 30 2 * * *"}, olds=read)
    assert host.diff(urn, gc_id, read, changed).changes == 2
    updated = host.update(urn, gc_id, read, changed)
    assert harbor.state.gc_schedule["schedule"]["cron"] == "0 30 2 * * *"
    host.delete(urn, gc_id, updated)
    assert harbor.state.gc_schedule is None
    assert host.read(urn, gc_id, updated)[0] == "", "no schedule means gone"


def test_gc_check_failures(harbor, host_for):
    host = host_for(HarborGcScheduleProvider())
    _, failures = host.check(host.urn("gc", "GcSchedule"), {**connection(harbor), "cron": "0 3 * * 0", "workers": 11})
    assert {f[0] for f in failures} == {"cron", "workers"}


def test_providers_carry_no_state_into_the_pickle():
    """Pulumi pickles the provider into every resource's state: nothing may ride along."""
    from pulumi.dynamic.dynamic import serialize_provider

    for provider in (HarborRegistryProvider(), HarborProjectProvider(), HarborOidcProvider(), HarborGcScheduleProvider()):
        assert vars(provider) == {}
        pickled = base64.b64decode(serialize_provider(provider))
        # By reference: the module path and class name, not the class's code.
        assert b"components.harbor_provider" in pickled and type(provider).__name__.encode() in pickled
        assert len(pickled) < 1000 and b"HarborClient" not in pickled
