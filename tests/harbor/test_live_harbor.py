"""Opt-in: the providers against a real Harbor. Set HARBOR_URL, HARBOR_USERNAME and HARBOR_PASSWORD
(an admin); the test creates a throwaway registry and proxy-cache project (Harbor 2.15 settings and
an explicit retention policy), creates both again to see them adopted rather than duplicated, and
deletes both."""

from __future__ import annotations

import os
import uuid

import pytest

from components.harbor.project import HarborProjectProvider
from components.harbor.registry import HarborRegistryProvider
from tests.standins.provider_host import ProviderHost

LIVE = {key: os.environ.get(key) for key in ("HARBOR_URL", "HARBOR_USERNAME", "HARBOR_PASSWORD")}

pytestmark = [
    pytest.mark.live_harbor,
    pytest.mark.skipif(
        not all(LIVE.values()), reason="set HARBOR_URL, HARBOR_USERNAME and HARBOR_PASSWORD to run against a real Harbor"
    ),
]


def test_throwaway_registry_and_project_on_a_real_harbor():
    connection = {
        "harbor_url": LIVE["HARBOR_URL"],
        "harbor_username": LIVE["HARBOR_USERNAME"],
        "harbor_password": LIVE["HARBOR_PASSWORD"],
    }
    suffix = uuid.uuid4().hex[:8]
    with ProviderHost(HarborRegistryProvider()) as registries, ProviderHost(HarborProjectProvider()) as projects:
        registries.configure()
        projects.configure()
        registry_urn = registries.urn(f"hc-test-{suffix}", "Registry")
        inputs, failures = registries.check(
            registry_urn, {**connection, "name": f"hc-test-{suffix}", "type": "docker-registry", "url": "https://registry.k8s.io"}
        )
        assert failures == []
        registry_id, registry = registries.create(registry_urn, inputs)
        try:
            # A second create (a re-run after a half-finished `up`) adopts the registry.
            assert registries.create(registry_urn, inputs)[0] == registry_id
            project_urn = projects.urn(f"hc-test-{suffix}", "Project")
            project_inputs, failures = projects.check(
                project_urn,
                {
                    **connection,
                    "name": f"hc-test-{suffix}",
                    "registry_id": int(registry_id),
                    "retention_days": 3,
                    "max_upstream_conn": 4,
                },
            )
            assert failures == []
            project_id, project = projects.create(project_urn, project_inputs)
            try:
                read = projects.read(project_urn, project_id, project)[1]
                assert read["registry_id"] == int(registry_id)
                assert (read["retention_days"], read["max_upstream_conn"], read["local_on_not_found"]) == (3, 4, True)
                assert projects.create(project_urn, project_inputs)[0] == project_id
            finally:
                projects.delete(project_urn, project_id, project)
        finally:
            registries.delete(registry_urn, registry_id, registry)
        assert registries.read(registry_urn, registry_id, registry)[0] == ""
