"""Stacks deployed before the layout by idea (issue 17) keep working after it.

Their state names each dynamic provider by the old flat module path (`components.harbor_provider.
HarborRegistryProvider`, `components.harbor_robot_provider.HarborRobotProvider`): Pulumi pickles a
provider by reference, and the provider host unpickles the one stored in the state for Read and Delete
(pulumi/dynamic/__main__.py); Diff and Update get the old state as olds but run the program's provider,
so those steps show that today's diff ignores the changed `__provider` (no change on the next `up`). tests/data/
state_before_layout.json was written by main b2a642c's code through the real provider host (one of
each Harbor object, against the emulator). Here today's provider host gets that state exactly as the
engine sends it on refresh, on the next `up` (Diff, then an Update) and on destroy.
"""

from __future__ import annotations

import base64
import json

import dill
import pytest
from pulumi.runtime.proto.provider_pb2 import DiffResponse

from components.harbor.providers import (
    HarborGcScheduleProvider,
    HarborOidcProvider,
    HarborProjectProvider,
    HarborRegistryProvider,
    HarborRobotProvider,
)
from tests.paths import DATA
from tests.standins.harbor_emulator import HarborEmulator
from tests.standins.provider_host import ProviderHost

STATE = json.loads((DATA / "state_before_layout.json").read_text())
PROVIDERS = {
    "Registry": HarborRegistryProvider,
    "Project": HarborProjectProvider,
    "Robot": HarborRobotProvider,
    "OidcAuth": HarborOidcProvider,
    "GcSchedule": HarborGcScheduleProvider,
}
# One managed field per kind that the next `up` may change.
UPDATES = {
    "Registry": {"description": "Docker Hub, described anew"},
    "Project": {"public": True},
    "Robot": {"description": "a new description"},
    "OidcAuth": {"oidc_endpoint": "https://dex.example.org"},
    "GcSchedule": {"cron": "0 30 2 * * *"},
}
# Outputs a refresh adds to a state written before issue 20, with their values for that state
# (issue 19: the system access Harbor holds for the robot, none for these).
READ_SINCE = {"Robot": {"disable": False, "duration": -1, "system_access": []}}
ADMIN_PASSWORD = STATE["resources"][0]["outputs"]["harbor_password"]


def here(values: dict, harbor: HarborEmulator) -> dict:
    """The recorded properties with the recording's emulator address replaced by this one's."""
    return {key: harbor.url if value == STATE["harbor_url"] else value for key, value in values.items()}


@pytest.fixture
def harbor():
    emulator = HarborEmulator(admin_password=ADMIN_PASSWORD)
    yield emulator
    emulator.stop()
    assert emulator.violations == []


def test_the_recorded_state_names_the_old_module_paths():
    """The premise: the recording holds the pre-move paths, and they load today's classes."""
    for resource in STATE["resources"]:
        pickled = base64.b64decode(resource["provider"])
        assert b"components.harbor_provider" in pickled or b"components.harbor_robot_provider" in pickled
        loaded = dill.loads(pickled)  # noqa: S301 - our own recorded state
        assert type(loaded) is PROVIDERS[resource["kind"]]


def test_an_old_state_refreshes_updates_and_destroys_through_todays_provider_host(harbor):
    hosts = {kind: ProviderHost(provider()) for kind, provider in PROVIDERS.items()}
    try:
        state = {}
        for resource in STATE["resources"]:
            kind, host = resource["kind"], hosts[resource["kind"]]
            host.configure({"harbor-cache:hostname": "harbor.dev.example.com"})
            urn = host.urn(resource["name"], kind)
            # Harbor holds what the old `up` made: the same creates, replayed (ids come out the same).
            id_, _ = host.create(urn, here(resource["inputs"], harbor))
            assert id_ == resource["id"]
            host.state_provider = resource["provider"]
            state[kind] = (urn, id_, here(resource["outputs"], harbor), here(resource["inputs"], harbor))

        for kind, (urn, id_, outputs, inputs) in state.items():
            host = hosts[kind]
            # refresh: Read with the old state.
            read_id, read = host.read(urn, id_, outputs, inputs)
            assert read_id == id_, f"{kind}: refresh of an old state"
            # What Harbor holds, as the old state says it; plus what a refresh reads today and an old
            # state never had (issue 20: a robot's disable and duration).
            assert {key: read[key] for key in outputs} == outputs, f"{kind}: refresh of an old state"
            assert {key: read[key] for key in set(read) - set(outputs)} == READ_SINCE.get(kind, {}), kind
            # the next `up`, unchanged: today's provider diffs against the old state and finds nothing.
            assert host.diff(urn, id_, read, inputs).changes == DiffResponse.DIFF_NONE, kind
            # and a real change updates in place.
            changed = {**inputs, **UPDATES[kind]}
            assert host.diff(urn, id_, read, changed).changes == DiffResponse.DIFF_SOME, kind
            updated = host.update(urn, id_, read, changed)
            assert all(updated[key] == value for key, value in UPDATES[kind].items()), kind
            state[kind] = (urn, id_, {**read, **updated}, changed)

        assert harbor.state.registries[int(state["Registry"][1])]["description"] == "Docker Hub, described anew"
        # destroy: Delete with the old state's provider, dependents first.
        for kind in ("Robot", "Project", "Registry", "OidcAuth", "GcSchedule"):
            urn, id_, outputs, _ = state[kind]
            hosts[kind].delete(urn, id_, outputs)
        assert not harbor.state.robots and not harbor.state.registries
        assert not [p for p in harbor.state.projects.values() if p["name"] == "dockerhub-proxy"]
        assert harbor.state.configurations["auth_mode"] == "db_auth" and harbor.state.gc_schedule is None
    finally:
        for host in hosts.values():
            host.close()
