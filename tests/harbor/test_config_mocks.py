"""HarborConfig under Pulumi mocks: what is registered for Harbor's configuration, with which secrets."""

from __future__ import annotations

import pytest

from components.settings.upstreams import DEFAULT_UPSTREAMS
from tests.standins.pulumi_harness import AwsMocks, dev_config, run_program

REGISTRY = "pulumi-python:dynamic/harbor:Registry"
PROJECT = "pulumi-python:dynamic/harbor:Project"
OIDC = "pulumi-python:dynamic/harbor:OidcAuth"
GC = "pulumi-python:dynamic/harbor:GcSchedule"


@pytest.fixture(scope="module")
def run():
    # A public project with a credential needs the opt-in (a read-only token, issue 11).
    upstreams = [{**u, "allowCredentialedPublic": True} if u["name"] == "dockerhub" else dict(u) for u in DEFAULT_UPSTREAMS]
    config = {
        **dev_config(),
        "harbor-cache:upstreams": upstreams,
        "harbor-cache:upstreamCredentials": {"dockerhub": {"username": "bot", "password": "hub-Token-1"}},
    }
    return run_program(config, secret_keys=("harbor-cache:upstreamCredentials",))


def test_one_registry_and_project_per_upstream(run):
    registries = {r.inputs["name"]: r for r in run.of_type(REGISTRY)}
    projects = {r.inputs["name"]: r for r in run.of_type(PROJECT)}
    assert sorted(registries) == ["dockerhub", "gcr", "ghcr", "k8s", "quay"]
    assert sorted(projects) == ["dockerhub-proxy", "gcr-proxy", "ghcr-proxy", "k8s-proxy", "quay-proxy"]
    assert registries["quay"].inputs["type"] == "docker-registry" and registries["quay"].inputs["url"] == "https://quay.io"
    assert projects["dockerhub-proxy"].inputs["public"] is True
    assert projects["dockerhub-proxy"].inputs["storage_quota_gb"] == 50, "defaultStorageQuotaGb"


def test_proxy_settings_favour_availability_and_retention_is_explicit(run):
    for project in run.of_type(PROJECT):
        assert project.inputs["local_on_not_found"] is True, project.name
        assert project.inputs["max_upstream_conn"] == -1, project.name
        assert project.inputs["retention_days"] == 7, project.name
    assert all(r.inputs["ca_certificate"] == "" for r in run.of_type(REGISTRY))


def test_per_upstream_proxy_settings_reach_the_resources():
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    upstream = {
        "name": "mirror",
        "type": "docker-registry",
        "url": "https://mirror.internal.example",
        "localOnNotFound": False,
        "maxUpstreamConn": 8,
        "retentionDays": 30,
        "caCertificate": pem,
    }
    run = run_program({**dev_config(), "harbor-cache:upstreams": [upstream]})
    project = run.one(PROJECT)
    assert (project.inputs["local_on_not_found"], project.inputs["max_upstream_conn"], project.inputs["retention_days"]) == (
        False,
        8,
        30,
    )
    assert run.one(REGISTRY).inputs["ca_certificate"] == pem


def test_preview_of_a_registry_update_keeps_the_project_registry_id_known(monkeypatch):
    """In a preview of an update the engine knows only a dynamic resource's inputs: registry_id
    (an output) is unknown there, and a project fed from it would show a replace. The id stays known."""
    monkeypatch.setattr(AwsMocks, "dynamic_update_preview", True)
    run = run_program(dev_config(), preview=True)
    for upstream in ("dockerhub", "ghcr", "quay", "k8s", "gcr"):
        project = run.named(f"harbor-config-project-{upstream}")
        assert project.inputs["registry_id"] == len(f"harbor-config-registry-{upstream}"), project.inputs["registry_id"]


def test_everything_waits_for_the_readiness_gate(run):
    ready = run.named("harbor-install-ready").urn
    for kind in (REGISTRY, PROJECT, OIDC, GC):
        for registration in run.of_type(kind):
            assert ready in registration.dependencies, registration.name
    registry_urn = run.named("harbor-config-registry-ghcr").urn
    assert registry_urn in run.named("harbor-config-project-ghcr").dependencies


def test_admin_and_upstream_credentials_are_secrets(run):
    hub = run.named("harbor-config-registry-dockerhub")
    assert {"access_key", "access_secret", "harbor_password"} <= hub.secret_keys()
    assert hub.inputs["access_secret"] == "hub-Token-1"
    assert "credential_hash" in hub.additional_secret_outputs
    assert "access_key" not in run.named("harbor-config-registry-ghcr").inputs
    for registration in run.registrations:
        if registration.type.startswith("pulumi-python:dynamic/harbor"):
            assert "harbor_password" in registration.secret_keys(), registration.name
            assert registration.inputs["harbor_url"] == "https://harbor.dev.example.com"
            assert registration.inputs["harbor_username"] == "admin"


def test_oidc_uses_the_generated_client_secret_and_exports_the_dex_client(run):
    secret = run.one("random:index/randomBytes:RandomBytes")
    assert secret.inputs["length"] == 20
    oidc = run.one(OIDC)
    assert oidc.inputs["oidc_client_secret"] == "c2VjcmV0LWNsaWVudC1ieXRlcy0yMA=="
    assert "oidc_client_secret" in oidc.secret_keys() and "client_secret_hash" in oidc.additional_secret_outputs
    assert oidc.inputs["oidc_endpoint"] == "https://dex.dev.example.com"
    assert oidc.inputs["oidc_client_id"] == "harbor-cache-oidc-dex"
    assert oidc.inputs["oidc_admin_group"] == "cluster_admins"
    assert run.outputs["dexStaticClient"] == {
        "id": "harbor-cache-oidc-dex",
        "name": "Harbor",
        "secret": "c2VjcmV0LWNsaWVudC1ieXRlcy0yMA==",
        "redirectURIs": ["https://harbor.dev.example.com/c/oidc/callback"],
    }
    assert "dexStaticClient" in run.secret_outputs


def test_gc_is_always_scheduled_with_delete_untagged(run):
    gc = run.one(GC)
    assert gc.inputs["cron"] == "0 0 3 * * 0" and gc.inputs["delete_untagged"] is True and gc.inputs["workers"] == 1


def test_projects_output_maps_upstream_to_project(run):
    assert run.outputs["projects"] == {
        "docker.io": "dockerhub-proxy",
        "ghcr.io": "ghcr-proxy",
        "quay.io": "quay-proxy",
        "registry.k8s.io": "k8s-proxy",
        "gcr.io": "gcr-proxy",
    }


def test_without_oidc_no_oidc_resource_and_no_dex_output():
    config = {k: v for k, v in dev_config().items() if k != "harbor-cache:oidc"}
    run = run_program(config)
    assert run.of_type(OIDC) == [] and "dexStaticClient" not in run.outputs
    assert len(run.of_type(GC)) == 1


def test_api_url_through_a_tunnel_and_no_imports():
    config = {**dev_config(), "harbor-cache:harborApiUrl": "http://127.0.0.1:18080"}
    run = run_program(config)
    assert {r.inputs["harbor_url"] for r in run.of_type(PROJECT)} == {"http://127.0.0.1:18080"}
    # The engine cannot import dynamic resources: existing objects are adopted by create instead.
    assert all(r.import_id == "" for r in run.registrations if r.type.startswith("pulumi-python:dynamic/harbor"))
