"""Records tests/data/state_before_layout.json: one of each Harbor object created through the real
provider host against the emulator, and the state the engine keeps of it (id, inputs, outputs and the
pickled `__provider`, which names the provider's module path).

The committed file was recorded in a checkout of main b2a642c (the flat layout, before issue 17), with
this script copied there:  venv/bin/python tests/standins/record_legacy_state.py > state.json
It runs in both layouts: the provider classes are imported by their pre-issue-17 paths (which today's
components/__init__.py still resolves), the test stand-ins from wherever the checkout keeps them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] if Path(__file__).parent.name == "standins" else Path.cwd()))

from components.harbor_provider import (  # noqa: E402
    HarborGcScheduleProvider,
    HarborOidcProvider,
    HarborProjectProvider,
    HarborRegistryProvider,
)
from components.harbor_robot_provider import HarborRobotProvider  # noqa: E402

try:  # today's layout
    from tests.standins.harbor_emulator import HarborEmulator
    from tests.standins.provider_host import ProviderHost, as_engine_sends
except ImportError:  # b2a642c's
    from tests.harbor_emulator import HarborEmulator
    from tests.provider_host import ProviderHost, as_engine_sends

ADMIN_PASSWORD = "Admin-Passw0rd"


def main() -> None:
    harbor = HarborEmulator(admin_password=ADMIN_PASSWORD)
    connection = {"harbor_url": harbor.url, "harbor_username": "admin", "harbor_password": ADMIN_PASSWORD}
    state = {"recorded_from": "main b2a642c (before issue 17's layout move)", "harbor_url": harbor.url, "resources": []}

    def make(provider, kind: str, name: str, inputs: dict) -> str:
        with ProviderHost(provider) as host:
            host.configure({"harbor-cache:hostname": "harbor.dev.example.com"})
            urn = host.urn(name, kind)
            checked, failures = host.check(urn, as_engine_sends({**connection, **inputs}))
            assert not failures, failures
            id_, outputs = host.create(urn, checked)
            state["resources"].append(
                {"kind": kind, "name": name, "id": id_, "inputs": checked, "outputs": outputs, "provider": host.serialized}
            )
            return id_

    local = {"database": "local"}
    registry = make(
        HarborRegistryProvider(), "Registry", "dockerhub",
        {"name": "dockerhub", "type": "docker-hub", "url": "https://hub.docker.com", "description": "Docker Hub",
         "insecure": False, "access_key": "bot", "access_secret": "s3cret-token", **local},
    )  # fmt: skip
    project = make(
        HarborProjectProvider(), "Project", "dockerhub-proxy",
        {"name": "dockerhub-proxy", "registry_id": int(registry), "public": False, "storage_quota_gb": -1,
         "speed_limit_kbps": -1, "local_on_not_found": True, "max_upstream_conn": -1, "retention_days": 7,
         "force_destroy": False, **local},
    )  # fmt: skip
    make(
        HarborRobotProvider(), "Robot", "pull",
        {"name": "harbor-cache-pull", "description": "nodes pull private proxy projects", "projects": ["dockerhub-proxy"],
         "project_ids": [project], **local},
    )  # fmt: skip
    make(
        HarborOidcProvider(), "OidcAuth", "oidc",
        {"oidc_name": "dex", "oidc_endpoint": "https://dex.dev.example.com", "oidc_client_id": "harbor-cache-oidc-dex",
         "oidc_client_secret": "Y2xpZW50LXNlY3JldC0yMGJ5dGVz", "oidc_groups_claim": "groups",
         "oidc_admin_group": "cluster_admins", "oidc_scope": "openid,profile,email,groups,offline_access",
         "oidc_verify_cert": True, "oidc_auto_onboard": False, "oidc_user_claim": "", **local},
    )  # fmt: skip
    make(HarborGcScheduleProvider(), "GcSchedule", "gc", {"cron": "0 0 3 * * 0", "delete_untagged": True, "workers": 1, **local})
    harbor.stop()
    json.dump(state, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
