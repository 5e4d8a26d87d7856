"""The tree shows the architecture and keeps it (issue 17).

- Every registration is what it was before the layout by idea: tests/data/registrations.json was
  recorded by main b2a642c's code (the flat components/), and the moved code registers the same
  rows (type, name, parent, options, inputs), so a `pulumi up` after the move changes nothing.
- Imports point only down: settings at the bottom, then vm and nodes, then aws and harbor, then the
  composition (harbor_cache.py, render.py).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil

import pytest
from pulumi.dynamic import ResourceProvider

import components
from components import STATE_PROVIDER_PATHS
from tests.paths import DATA, ROOT
from tests.standins.registrations import record

# A package may import from its own floor or lower. Floors, bottom first.
FLOORS = {"settings": 0, "vm": 1, "nodes": 1, "aws": 2, "harbor": 2, "harbor_cache": 3, "render": 3, "preflight": 3}


def test_every_registration_is_as_recorded():
    recorded = json.loads((DATA / "registrations.json").read_text())
    current = record()
    for label, rows in recorded.items():
        missing = sorted(set(rows) - set(current[label]))
        added = sorted(set(current[label]) - set(rows))
        changed = sorted(key for key in set(rows) & set(current[label]) if rows[key] != current[label][key])
        assert not (missing or added or changed), (
            f"{label}: registrations differ from tests/data/registrations.json: missing {missing}, added {added}, "
            f"changed {changed}. A deliberate change: re-record (tests/standins/registrations.py says how)."
        )


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "components" and len(parts) > 1 else None


def component_imports() -> list[tuple[str, str]]:
    found = []
    for path in (ROOT / "components").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("components"):
                targets = [node.module] if node.module != "components" else [f"components.{a.name}" for a in node.names]
                found += [(module, target) for target in targets]
    return found


def test_imports_point_only_down():
    upward = []
    for module, target in component_imports():
        source, dest = package_of(module), package_of(target)
        if source is None or dest is None or source not in FLOORS:
            continue
        assert dest in FLOORS, f"{module} imports {target}: a package this test does not know; give it a floor"
        if FLOORS[dest] > FLOORS[source]:
            upward.append(f"{module} -> {target}")
    assert upward == []


@pytest.mark.parametrize("package", ["settings", "vm", "nodes", "aws", "harbor"])
def test_each_package_is_a_folder_of_small_modules(package):
    folder = ROOT / "components" / package
    assert (folder / "__init__.py").exists()
    for path in folder.glob("*.py"):
        lines = path.read_text().count("\n")
        # ~400 lines at most, unless the module's opening says why it is one idea read top to bottom.
        assert lines <= 420 or "one idea" in path.read_text()[:2000].lower(), f"{path.name}: {lines} lines"


# Provider classes that only others derive from: never pickled into a state.
BASE_PROVIDERS = {"components.harbor.provider_base.HarborProvider"}


def provider_classes() -> set[str]:
    found = set()
    for module_info in pkgutil.walk_packages(components.__path__, "components."):
        module = importlib.import_module(module_info.name)
        for _name, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, ResourceProvider) and value.__module__ == module.__name__:
                found.add(f"{value.__module__}.{value.__qualname__}")
    return found - BASE_PROVIDERS


def test_every_provider_path_a_state_may_name_resolves():
    """A state names its provider by module path and class (Pulumi pickles by reference): today's path of
    every provider is listed, and every listed path, old or new, still loads that provider."""
    assert provider_classes() <= set(STATE_PROVIDER_PATHS), "a provider whose path is not in STATE_PROVIDER_PATHS"
    for path in STATE_PROVIDER_PATHS:
        module, _, name = path.rpartition(".")
        assert issubclass(getattr(importlib.import_module(module), name), ResourceProvider), path
