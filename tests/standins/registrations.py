"""Every registration of the program under Pulumi's mocks, as a fingerprint a test compares.

A fingerprint row is one registration: type, name, parent, every resource option the engine receives
(protect, retainOnDelete, deleteBeforeReplace, ignoreChanges, additionalSecretOutputs, importId,
aliases, provider, replaceOnChanges, customTimeouts, deletedWith, ...), secret keys, dependencies and
all of its inputs, with each dynamic provider's pickle (`__provider`, which names a module path)
reduced to its class name and attributes; one more row holds the stack outputs and which are secret.
tests/data/registrations.json keeps a sha256 per row for a few configurations; a move or rename that
keeps every row's hash keeps every URN and input, so a `pulumi up` after it shows no change.

A deliberate change of what the program registers means recording again, and saying so in the commit:
    venv/bin/python -m tests.standins.registrations > tests/data/registrations.json
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from collections.abc import Callable
from typing import Any

import dill

CONFIGS: dict[str, dict[str, Any]] = {
    "dev": {},
    "stores": {"storage": "s3", "externalServices": True, "databaseMultiAz": True},
    "placed": {
        "availabilityZone": "eu-central-1b",
        "subnetId": "subnet-0b1b2c3d4e5f60719",
        "metricsAllowedCidrs": ["10.0.0.0/8"],
        "alarmEmail": "ops@example.com",
    },
    "ha": {"replicas": 3},
}


def without_module_paths(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "__provider" and isinstance(item, str):
                provider = dill.loads(base64.b64decode(item))  # noqa: S301 - the program's own pickle
                out[key] = {"class": type(provider).__qualname__, "vars": without_module_paths(vars(provider))}
            else:
                out[key] = without_module_paths(item)
        return out
    if isinstance(value, list):
        return [without_module_paths(item) for item in value]
    return value


def options_row(registration: Any, names: dict[str, str], types: dict[str, str]) -> dict[str, Any]:
    """A registration's parent and options, as both golden files record them."""
    r = registration
    return {
        "parent": f"{types.get(r.parent, '')}::{names.get(r.parent, '')}" if r.parent in names else "",
        "protect": r.protect,
        "retainOnDelete": r.retain_on_delete,
        "deleteBeforeReplace": r.delete_before_replace,
        "ignoreChanges": sorted(r.ignore_changes),
        "secretKeys": sorted(r.secret_keys()),
    }


def rows(run: Any) -> dict[str, dict[str, Any]]:
    """One row per registration, and one for the stack's outputs and which of them are secret."""
    names = {r.urn: r.name for r in run.registrations}
    types = {r.urn: r.type for r in run.registrations}
    found: dict[str, dict[str, Any]] = {
        f"{r.type}::{r.name}": {
            **options_row(r, names, types),
            "additionalSecretOutputs": sorted(r.additional_secret_outputs),
            "importId": r.import_id,
            "otherOptions": r.options,
            "inputs": without_module_paths(r.inputs),
            "dependencies": sorted(names.get(u, u) for u in r.dependencies),
        }
        for r in run.registrations
    }
    found["stack::outputs"] = {"outputs": without_module_paths(run.outputs), "secret": sorted(run.secret_outputs)}
    return found


def fingerprint(run: Any) -> dict[str, str]:
    return {
        key: hashlib.sha256(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()
        for key, row in sorted(rows(run).items())
    }


def record(configs: dict[str, dict[str, Any]] = CONFIGS, fingerprint_of: Callable[[Any], Any] = fingerprint) -> dict[str, Any]:
    """The fingerprint of the program's run for each configuration (the dev stack's values + overrides)."""
    from tests.standins.pulumi_harness import dev_config, run_program

    result = {}
    for label, overrides in configs.items():
        config = {**dev_config(), **{f"harbor-cache:{key}": value for key, value in overrides.items()}}
        result[label] = fingerprint_of(run_program(config))
    return result


if __name__ == "__main__":
    json.dump(record(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
