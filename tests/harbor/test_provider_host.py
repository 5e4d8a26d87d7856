"""The dynamic providers driven through the real provider host over gRPC against the Harbor emulator:
Configure -> Check -> Create -> Read -> Diff -> Update -> Delete for every resource, with call
counts, faults and secrets checked."""

from __future__ import annotations

import base64
import socket

import grpc
import pytest
from pulumi.output import Unknown
from pulumi.runtime import rpc

from components.harbor.api import HarborApiError, HarborClient, MaybeSent
from components.harbor.gc_schedule import HarborGcScheduleProvider
from components.harbor.oidc import HarborOidcProvider
from components.harbor.project import HarborProjectProvider
from components.harbor.provider_base import secret_hash
from components.harbor.registry import HarborRegistryProvider
from tests.standins.harbor_emulator import HarborEmulator, default_retention
from tests.standins.provider_host import ProviderHost, as_engine_sends, previewed_outputs

ADMIN_PASSWORD = "Admin-Passw0rd"
FAST_RETRIES = {
    "HARBOR_CACHE_RETRY_BASE_DELAY": "0.01",
    "HARBOR_CACHE_RETRY_SECONDS": "1",
    "HARBOR_CACHE_HTTP_TIMEOUT": "2",
    "HARBOR_CACHE_REGISTRY_WRITE_TIMEOUT": "2",
    "HARBOR_CACHE_SETTLE_SECONDS": "3",
}


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
    assert harbor.calls == [("GET", "/registries"), ("POST", "/registries")], "an exact name lookup, then one POST"
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
    harbor.reset_calls()
    new_url, _ = host.check(urn, as_engine_sends(registry_inputs(harbor, url="https://registry-1.docker.io")), olds=outputs)
    updated = host.update(urn, registry_id, outputs, new_url)
    stored = harbor.state.registries[int(registry_id)]
    assert stored["url"] == "https://registry-1.docker.io"
    assert stored["credential"]["access_secret"] == "s3cret-token", "Harbor keeps the stored secret when none is sent"
    assert harbor.bodies[-1][:2] == ("PUT", f"/registries/{registry_id}")
    assert "access_secret" not in harbor.bodies[-1][2], "an unchanged secret is not sent again"

    harbor.reset_calls()
    rotated, _ = host.check(urn, as_engine_sends(registry_inputs(harbor, access_secret="new-token")), olds=updated)
    updated = host.update(urn, registry_id, updated, rotated)
    assert harbor.state.registries[int(registry_id)]["credential"]["access_secret"] == "new-token"
    assert harbor.bodies[-1][2]["access_secret"] == "new-token"
    assert updated["credential_hash"] == secret_hash("bot", "new-token")

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


def foreign_registry(harbor, registry_id: int, **overrides) -> dict:
    """A registry made in Harbor by hand (or by a create whose answer was lost)."""
    registry = {
        "id": registry_id,
        "name": "dockerhub",
        "type": "docker-hub",
        "url": "https://hub.docker.com",
        "description": "by hand",
        "insecure": False,
        "credential": {"type": "basic", "access_key": "someone", "access_secret": "old"},
        "ca_certificate": "",
        "status": "healthy",
        **overrides,
    }
    harbor.state.registries[registry_id] = registry
    return registry


def test_import_is_a_read_with_the_id_only_and_the_host_cannot_serve_it(harbor, host_for):
    """The engine's import sends Read with the id only; the dynamic provider host then fails before
    our code runs. So adoption must happen inside create (nothing may rely on import)."""
    host = host_for(HarborRegistryProvider())
    with pytest.raises(grpc.RpcError) as error:
        host.import_read(host.urn("dockerhub", "Registry"), "7")
    assert "__provider" in error.value.details()
    assert harbor.calls == []


def test_create_adopts_a_matching_registry_found_by_exact_name_across_pages(harbor, host_for):
    original = foreign_registry(harbor, 500)
    harbor.state.registries.pop(500)
    for index in range(150):  # names that a fuzzy match would also find, filling the first page
        harbor.state.registries[1000 + index] = {**original, "id": 1000 + index, "name": f"dockerhub-{index}"}
    harbor.state.registries[500] = original
    host = host_for(HarborRegistryProvider())
    urn, _inputs, registry_id, outputs = create_registry(host, harbor)
    assert registry_id == "500" and harbor.count("POST") == 0, "taken over, not duplicated"
    assert harbor.queries[0] == ("GET", "/registries", {"q": "name=dockerhub", "page": "1", "page_size": "100"})
    assert original["description"] == "Docker Hub", "set to the desired state"
    assert original["credential"] == {"type": "basic", "access_key": "bot", "access_secret": "s3cret-token"}
    assert outputs["registry_id"] == 500 and outputs["credential_hash"] == secret_hash("bot", "s3cret-token")


def test_create_refuses_a_registry_of_the_same_name_that_points_elsewhere(harbor, host_for):
    foreign_registry(harbor, 500, type="docker-registry", url="https://mirror.example.com")
    host = host_for(HarborRegistryProvider())
    with pytest.raises(grpc.RpcError) as error:
        create_registry(host, harbor)
    details = error.value.details()
    assert "already exists" in details and "'docker-registry'" in details and "https://mirror.example.com" in details
    assert "harborImports" not in details and "s3cret-token" not in details
    assert harbor.count("POST") == 0 and harbor.count("PUT") == 0


def test_a_slow_upstream_ping_is_never_answered_by_a_second_post(harbor, host_for):
    """Harbor pings the upstream inside the POST (up to ~30 s); the client gives up first. The create
    still completes in Harbor: the provider finds it by name instead of POSTing again (409), looking
    again every 2 s (not in a tight loop against a Harbor that is busy) and no more once found."""
    harbor.ping_delay = 3.0  # longer than the test's 2 s registry write timeout
    host = host_for(HarborRegistryProvider(), env={"HARBOR_CACHE_SETTLE_SECONDS": "20"})
    _urn, _inputs, registry_id, outputs = create_registry(host, harbor)
    assert harbor.count("POST", "/registries") == 1
    assert list(harbor.state.registries) == [int(registry_id)] and outputs["registry_id"] == int(registry_id)
    # A lookup before the POST, one at ~2 s (not there yet), one at ~4 s (there); one more if load
    # made that one miss.
    lookups = sum(1 for call in harbor.calls if call == ("GET", "/registries"))
    assert 3 <= lookups <= 4, harbor.calls


def test_a_lost_answer_to_a_create_is_recovered_by_name(harbor, host_for):
    harbor.inject("POST", "^/registries$", "drop-after")
    host = host_for(HarborRegistryProvider())
    _urn, _inputs, registry_id, _ = create_registry(host, harbor)
    assert harbor.count("POST", "/registries") == 1 and len(harbor.state.registries) == 1
    assert int(registry_id) in harbor.state.registries


def test_a_post_without_answer_and_without_result_is_not_resent(harbor, host_for):
    harbor.inject("POST", "^/registries$", "drop")
    host = host_for(HarborRegistryProvider(), env={"HARBOR_CACHE_SETTLE_SECONDS": "0.5"})
    with pytest.raises(grpc.RpcError) as error:
        create_registry(host, harbor)
    assert "run `pulumi up` again" in error.value.details()
    assert harbor.count("POST") == 1 and harbor.state.registries == {}
    _urn, _inputs, registry_id, _ = create_registry(host, harbor)  # the next `up` converges
    assert list(harbor.state.registries) == [int(registry_id)]


def test_registry_writes_wait_longer_than_harbors_upstream_ping():
    from components.harbor.api import REGISTRY_WRITE_TIMEOUT

    assert REGISTRY_WRITE_TIMEOUT > 30 * 2, "Harbor's dialer waits up to 30 s (twice: token and ping)"


def test_name_lookups_follow_pagination(harbor):
    from components.harbor.api import HarborClient

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
    inputs, _ = host.check(
        urn, registry_inputs(harbor, name="broken", type="docker-registry", url="https://unreachable.example.com")
    )
    with pytest.raises(grpc.RpcError) as error:
        host.create(urn, inputs)
    details = error.value.details()
    assert "the registry is unhealthy" in details and "POST /api/v2.0/registries" in details
    assert "could not reach https://unreachable.example.com" in details and "egress" in details

    wrong, _ = host.check(urn, registry_inputs(harbor, harbor_password="wrong-password"))
    with pytest.raises(grpc.RpcError) as error:
        host.create(urn, wrong)
    assert "HTTP 401" in error.value.details() and "wrong-password" not in error.value.details()
    assert harbor.count("POST") == 1, "no retry on 4xx"


def test_docker_hub_login_failure_names_the_credential(harbor, host_for):
    host = host_for(HarborRegistryProvider())
    urn = host.urn("dockerhub", "Registry")
    inputs, _ = host.check(urn, registry_inputs(harbor, access_secret="bad-token"))
    with pytest.raises(grpc.RpcError) as error:
        host.create(urn, inputs)
    details = error.value.details()
    assert "HTTP 500" in details and "upstreamCredentials.dockerhub" in details and "access token" in details
    assert "bad-token" not in details and harbor.count("POST") == 1


def test_tls_verification_errors_are_not_retried(harbor, host_for, tmp_path):
    import shutil
    import socket
    import ssl
    import subprocess
    import threading

    from tests.conftest import unavailable

    if not shutil.which("openssl"):
        unavailable("openssl is needed for a self-signed test certificate")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    handshakes = []

    def serve():
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            handshakes.append(1)
            try:
                context.wrap_socket(connection, server_side=True).close()
            except (ssl.SSLError, OSError):
                connection.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        host = host_for(HarborRegistryProvider())
        urn = host.urn("dockerhub", "Registry")
        url = f"https://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(grpc.RpcError) as error:
            host.read(urn, "7", {**registry_inputs(harbor), "harbor_url": url})
        assert "certificate verif" in error.value.details()
        assert len(handshakes) == 1, "a TLS verification failure does not heal: no retry"
    finally:
        listener.close()


# Faults


def test_reads_retry_on_503s_dropped_connections_and_slow_answers_and_posts_only_on_503(harbor, host_for):
    host = host_for(HarborRegistryProvider(), env={"HARBOR_CACHE_RETRY_SECONDS": "10"})
    harbor.inject("GET", "^/registries$", 503, times=1)
    harbor.inject("GET", "^/registries$", "drop", times=1)
    harbor.inject("GET", "^/registries$", 200, times=1, delay=3.0)  # slower than the 2 s timeout
    harbor.inject("POST", "^/registries$", 503, times=2)  # Harbor's core not up: nothing was done
    urn, _inputs, registry_id, _ = create_registry(host, harbor)
    assert harbor.count("GET", "/registries") == 4 and harbor.count("POST", "/registries") == 3
    assert int(registry_id) in harbor.state.registries


def test_a_post_whose_connection_was_refused_is_retried_not_taken_as_maybe_sent():
    """Connection refused: the request never left this machine (api.py _not_sent), so a POST may be
    sent again, and when Harbor never comes the error is a plain one, not "may have reached Harbor"."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = HarborClient(f"http://127.0.0.1:{port}", "admin", ADMIN_PASSWORD, retry_seconds=0.3, base_delay=0.01)
    with pytest.raises(HarborApiError) as error:
        client.request("POST", "/registries", {"name": "x"})
    assert not isinstance(error.value, MaybeSent) and "gave up after" in str(error.value)
    assert "ConnectionRefusedError" in str(error.value)


def test_gives_up_after_bounded_retries_with_the_last_reason(harbor, host_for):
    host = host_for(HarborRegistryProvider())
    harbor.inject("GET", "^/registries/", 502, times=100)
    with pytest.raises(grpc.RpcError) as error:
        host.read(host.urn("x", "Registry"), "7", registry_inputs(harbor))
    assert harbor.count("GET") > 5, "retried for the whole window (HARBOR_CACHE_RETRY_SECONDS), not 5 times"
    assert "HTTP 502" in error.value.details() and "in 1 s" in error.value.details()


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
        "local_on_not_found": True,
        "max_upstream_conn": -1,
        "retention_days": 7,
        "force_destroy": False,
        **overrides,
    }


def retention_days_in_harbor(harbor, project_name: str) -> int:
    project = harbor.project_by_name(project_name)
    policy = harbor.state.retentions[int(project["metadata"]["retention_id"])]
    (rule,) = policy["rules"]
    assert rule["template"] == "nDaysSinceLastPull" and rule["action"] == "retain"
    assert policy["scope"] == {"level": "project", "ref": project["project_id"]}
    return rule["params"]["nDaysSinceLastPull"]


@pytest.fixture
def registry_id(harbor, host_for):
    host = host_for(HarborRegistryProvider())
    return int(create_registry(host, harbor)[2])


def test_project_lifecycle(harbor, host_for, registry_id):
    host = host_for(HarborProjectProvider())
    urn = host.urn("dockerhub-proxy", "Project")
    inputs, failures = host.check(
        urn, as_engine_sends(project_inputs(harbor, registry_id, storage_quota_gb=50, retention_days=14, max_upstream_conn=4))
    )
    assert failures == [] and inputs["registry_id"] == registry_id
    harbor.reset_calls()
    project_id, outputs = host.create(urn, inputs)
    assert [c for c in harbor.calls if c[0] != "GET"] == [
        ("POST", "/projects"),
        ("PUT", f"/retentions/{project_retention(harbor)}"),
    ]
    stored = harbor.state.projects[int(project_id)]
    assert stored["registry_id"] == registry_id
    assert {k: v for k, v in stored["metadata"].items() if k != "retention_id"} == {
        "public": "true",
        "proxy_speed_kb": "-1",
        "proxy_cache_local_on_not_found": "true",
        "max_upstream_conn": "4",
    }
    assert retention_days_in_harbor(harbor, "dockerhub-proxy") == 14, "Harbor's default 7 days replaced by ours"
    quota = next(q for q in harbor.state.quotas.values() if q["ref"]["id"] == int(project_id))
    assert quota["hard"]["storage"] == 50 * 1024**3

    harbor.reset_calls()
    _, read = host.read(urn, project_id, outputs)
    assert harbor.calls == [
        ("GET", f"/projects/{project_id}"),
        ("GET", "/quotas"),
        ("GET", f"/retentions/{project_retention(harbor)}"),
    ], "the project, its quota and its retention policy"
    assert read["public"] is True and read["registry_id"] == registry_id and read["storage_quota_gb"] == 50
    assert (read["retention_days"], read["max_upstream_conn"], read["local_on_not_found"]) == (14, 4, True)

    # Changed in Harbor by hand: refresh sees it.
    stored["metadata"]["proxy_cache_local_on_not_found"] = "false"
    harbor.state.retentions[project_retention(harbor)]["rules"][0]["params"]["nDaysSinceLastPull"] = 3
    _, drifted = host.read(urn, project_id, outputs)
    assert (drifted["retention_days"], drifted["local_on_not_found"]) == (3, False)

    changed, _ = host.check(
        urn,
        as_engine_sends(
            project_inputs(harbor, registry_id, public=False, storage_quota_gb=-1, speed_limit_kbps=2048, retention_days=30)
        ),
        olds=drifted,
    )
    diff = host.diff(urn, project_id, drifted, changed)
    assert diff.changes == 2 and list(diff.replaces) == []
    updated = host.update(urn, project_id, drifted, changed)
    assert stored["metadata"]["public"] == "false" and stored["metadata"]["proxy_speed_kb"] == "2048"
    assert stored["metadata"]["proxy_cache_local_on_not_found"] == "true" and stored["metadata"]["max_upstream_conn"] == "-1"
    assert quota["hard"]["storage"] == -1
    assert retention_days_in_harbor(harbor, "dockerhub-proxy") == 30
    assert updated["speed_limit_kbps"] == 2048 and updated["retention_days"] == 30

    renamed, _ = host.check(urn, project_inputs(harbor, registry_id, name="hub-proxy"), olds=updated)
    assert list(host.diff(urn, project_id, updated, renamed).replaces) == ["name"]

    host.delete(urn, project_id, updated)
    assert int(project_id) not in harbor.state.projects


def project_retention(harbor, name: str = "dockerhub-proxy") -> int:
    return int(harbor.project_by_name(name)["metadata"]["retention_id"])


def test_a_403_on_project_read_is_an_error_not_gone(harbor, host_for, registry_id):
    host = host_for(HarborProjectProvider())
    urn = host.urn("dockerhub-proxy", "Project")
    inputs, _ = host.check(urn, project_inputs(harbor, registry_id))
    project_id, outputs = host.create(urn, inputs)
    harbor.inject("GET", "^/projects/", 403)
    with pytest.raises(grpc.RpcError) as error:
        host.read(urn, project_id, outputs)
    assert "HTTP 403" in error.value.details()
    del harbor.state.projects[int(project_id)]
    assert host.read(urn, project_id, outputs)[0] == "", "404 means gone"


def test_project_create_with_a_missing_registry_explains_harbors_500(harbor, host_for):
    host = host_for(HarborProjectProvider())
    urn = host.urn("dockerhub-proxy", "Project")
    inputs, _ = host.check(urn, project_inputs(harbor, 99))
    with pytest.raises(grpc.RpcError) as error:
        host.create(urn, inputs)
    assert "HTTP 500" in error.value.details() and "registry id 99 does not exist" in error.value.details()


def test_project_create_adopts_one_with_our_registry_and_refuses_another(harbor, host_for, registry_id):
    host = host_for(HarborProjectProvider())
    urn = host.urn("dockerhub-proxy", "Project")
    # Half-finished earlier run: the project exists (Harbor's defaults), our state does not know it.
    harbor.state.projects[77] = {
        "project_id": 77,
        "name": "dockerhub-proxy",
        "registry_id": registry_id,
        "metadata": {"public": "false", "retention_id": str(harbor.add_retention(default_retention(77, 7)))},
        "repositories": [],
    }
    harbor.state.quotas[78] = {"id": 78, "ref": {"id": 77, "name": "dockerhub-proxy"}, "hard": {"storage": -1}, "used": {}}
    inputs, _ = host.check(urn, project_inputs(harbor, registry_id, storage_quota_gb=10, retention_days=5))
    harbor.reset_calls()
    project_id, _ = host.create(urn, inputs)
    assert project_id == "77" and harbor.count("POST") == 0 and len(harbor.state.projects) == 1
    assert harbor.state.projects[77]["metadata"]["public"] == "true"
    assert harbor.state.quotas[78]["hard"]["storage"] == 10 * 1024**3
    assert retention_days_in_harbor(harbor, "dockerhub-proxy") == 5

    other, _ = host.check(host.urn("other", "Project"), project_inputs(harbor, registry_id + 1000))
    with pytest.raises(grpc.RpcError) as error:
        host.create(host.urn("other", "Project"), other)
    assert f"already exists with registry id {registry_id}" in error.value.details()


def test_preview_of_a_registry_update_shows_the_project_updated_not_replaced(harbor, host_for, registry_id):
    """The engine previews a dynamic registry update with its new inputs as outputs (registry_id
    unknown). A project wired to that output would be replaced; wired to the id, it is not."""
    registries = host_for(HarborRegistryProvider())
    registry_urn = registries.urn("dockerhub", "Registry")
    new_registry_inputs, _ = registries.check(registry_urn, registry_inputs(harbor, description="rotated"))
    previewed = previewed_outputs(new_registry_inputs, ("registry_id", "credential_hash"))

    projects = host_for(HarborProjectProvider())
    urn = projects.urn("dockerhub-proxy", "Project")
    inputs, _ = projects.check(urn, project_inputs(harbor, registry_id))
    project_id, outputs = projects.create(urn, inputs)

    from_id, _ = projects.check(urn, project_inputs(harbor, int(str(registry_id))), olds=outputs)
    assert list(projects.diff(urn, project_id, outputs, from_id).replaces) == []
    from_output, _ = projects.check(urn, project_inputs(harbor, previewed["registry_id"]), olds=outputs)
    assert list(projects.diff(urn, project_id, outputs, from_output).replaces) == ["registry_id"], "why the id is used"


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


def test_oidc_scope_asks_for_a_refresh_token_by_default(harbor, host_for):
    host = host_for(HarborOidcProvider())
    inputs = {k: v for k, v in oidc_inputs(harbor).items() if k != "oidc_scope"}
    checked, _ = host.check(host.urn("oidc", "OidcAuth"), inputs)
    assert "offline_access" in checked["oidc_scope"].split(",")


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
    assert harbor.state.gc_schedule["parameters"] == {"delete_untagged": True, "delete_tag": False, "workers": 2}
    assert harbor.state.gc_schedule["schedule"] == {"type": "Custom", "cron": "0 0 3 * * 0"}

    _, read = host.read(urn, gc_id, outputs)
    assert read["cron"] == "0 0 3 * * 0" and read["workers"] == 2
    # Harbor reports the parameters as a JSON string (job_parameters): refresh reads them from it.
    harbor.state.gc_schedule["parameters"] = {"delete_untagged": False, "workers": 5}
    _, drifted = host.read(urn, gc_id, outputs)
    assert (drifted["workers"], drifted["delete_untagged"]) == (5, False)
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
    for cron, fragment in (("0 0 25 * * *", "hours '25'"), ("0 0 3 * * 7", "day of week '7'"), ("0 61 3 * * *", "minutes")):
        _, failures = host.check(host.urn("gc", "GcSchedule"), {**connection(harbor), "cron": cron})
        assert [f[0] for f in failures] == ["cron"] and fragment in failures[0][1], cron
    assert harbor.calls == []


def test_check_enforces_harbors_limits_at_preview(harbor, host_for):
    registries = host_for(HarborRegistryProvider())
    _, failures = registries.check(registries.urn("long", "Registry"), registry_inputs(harbor, name="r" * 65))
    assert [f[0] for f in failures] == ["name"] and "64" in failures[0][1]
    projects = host_for(HarborProjectProvider())
    urn = projects.urn("p", "Project")
    for key, bad in (
        ("speed_limit_kbps", 2**31),
        ("max_upstream_conn", 2**31),
        ("storage_quota_gb", 1024 * 1024 + 1),
        ("retention_days", 0),
        ("max_upstream_conn", 0),
    ):
        _, failures = projects.check(urn, as_engine_sends(project_inputs(harbor, 3, **{key: bad})))
        assert [f[0] for f in failures] == [key], (key, bad, failures)
    _, failures = projects.check(urn, as_engine_sends(project_inputs(harbor, 3, storage_quota_gb=1024 * 1024)))
    assert failures == [], "1024 TB is Harbor's maximum, and allowed"
    assert harbor.calls == []


def test_providers_carry_no_state_into_the_pickle():
    """Pulumi pickles the provider into every resource's state: nothing may ride along."""
    from pulumi.dynamic.dynamic import serialize_provider

    for provider in (HarborRegistryProvider(), HarborProjectProvider(), HarborOidcProvider(), HarborGcScheduleProvider()):
        assert vars(provider) == {}
        pickled = base64.b64decode(serialize_provider(provider))
        # By reference: the module path and class name, not the class's code.
        assert type(provider).__module__.encode() in pickled and type(provider).__name__.encode() in pickled
        assert len(pickled) < 1000 and b"HarborClient" not in pickled


def test_a_lost_answer_to_a_project_create_is_recovered_by_name(harbor, host_for, registry_id):
    harbor.inject("POST", "^/projects$", "drop-after")
    host = host_for(HarborProjectProvider())
    urn = host.urn("dockerhub-proxy", "Project")
    inputs, _ = host.check(urn, project_inputs(harbor, registry_id, retention_days=9))
    project_id, _ = host.create(urn, inputs)
    assert harbor.count("POST", "/projects") == 1 and list(harbor.state.projects) == [int(project_id)]
    assert retention_days_in_harbor(harbor, "dockerhub-proxy") == 9


# The emulator itself, against what Harbor's handlers do


def test_emulator_ignores_unknown_fields_as_harbors_go_swagger_server_does(harbor):
    from components.harbor.api import HarborClient

    client = HarborClient(harbor.url, "admin", ADMIN_PASSWORD)
    body = {"name": "r", "type": "docker-registry", "url": "https://r.example.com", "no_such_field": 1}
    registry_id = client.request("POST", "/registries", body).location_id()
    # RegistryUpdate has no nested `credential`: ignored, the stored secret stays.
    harbor.state.registries[int(registry_id)]["credential"]["access_secret"] = "kept"
    client.request("PUT", f"/registries/{registry_id}", {"url": "https://s.example.com", "credential": {"access_secret": "x"}})
    assert harbor.state.registries[int(registry_id)]["credential"]["access_secret"] == "kept"
    assert harbor.state.registries[int(registry_id)]["url"] == "https://s.example.com"
    with pytest.raises(Exception, match="422"):
        client.request("POST", "/registries", {"name": 5, "type": "docker-registry", "url": "https://x"})
    harbor.violations.clear()  # the type error above was the point


def test_emulator_registry_health_check_runs_on_after_the_client_left(harbor):
    import time

    from components.harbor.api import HarborClient, MaybeSent

    harbor.ping_delay = 1.0
    client = HarborClient(harbor.url, "admin", ADMIN_PASSWORD, timeout=0.2)
    with pytest.raises(MaybeSent):
        client.request("POST", "/registries", {"name": "slow", "type": "docker-registry", "url": "https://r.example.com"})
    assert harbor.state.registries == {}
    time.sleep(1.5)
    assert [r["name"] for r in harbor.state.registries.values()] == ["slow"]


def test_settings_missing_from_an_older_state_are_applied_once(harbor, host_for, registry_id):
    host = host_for(HarborProjectProvider())
    urn = host.urn("dockerhub-proxy", "Project")
    inputs, _ = host.check(urn, project_inputs(harbor, registry_id))
    project_id, outputs = host.create(urn, inputs)
    assert host.diff(urn, project_id, outputs, inputs).changes == 1, "nothing to do"
    older = {k: v for k, v in outputs.items() if k not in ("local_on_not_found", "max_upstream_conn", "retention_days")}
    diff = host.diff(urn, project_id, older, inputs)
    assert diff.changes == 2 and list(diff.replaces) == []
    harbor.project_by_name("dockerhub-proxy")["metadata"].pop("proxy_cache_local_on_not_found")
    harbor.state.retentions[project_retention(harbor)]["rules"][0]["params"]["nDaysSinceLastPull"] = 30
    host.update(urn, project_id, older, inputs)
    assert harbor.project_by_name("dockerhub-proxy")["metadata"]["proxy_cache_local_on_not_found"] == "true"
    assert retention_days_in_harbor(harbor, "dockerhub-proxy") == 7
