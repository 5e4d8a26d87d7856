"""The values AwsMocks generates for a registered resource, for tests that look for them downstream."""

from __future__ import annotations

from typing import Any

from pulumi.runtime.mocks import MockResourceArgs

from tests.standins.pulumi_harness import AwsMocks


def generated_password(registration: Any) -> str:
    """The `result` AwsMocks gave this RandomPassword (deterministic: its name and inputs decide it)."""
    assert registration.type == "random:index/randomPassword:RandomPassword", registration.type
    _, state = AwsMocks().new_resource(MockResourceArgs(registration.type, registration.name, dict(registration.inputs)))
    return state["result"]
