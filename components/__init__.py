"""harbor-cache's program, by idea: settings -> vm and nodes (files rendered for the VM and for
clusters) -> aws and harbor (cloud resources, Harbor's objects) -> harbor_cache (the composition).
See docs/architecture.md.

Module paths that older stacks' states still name. Pulumi pickles a dynamic provider by reference
(module + class name), and the engine unpickles the provider stored in the state for refresh and
delete (pulumi/dynamic/__main__.py get_provider), so a stack deployed before the layout by idea
(issue 17) needs `components.harbor_provider.HarborRegistryProvider` and the others to import. Each
old path below names the module that holds those classes now: importing it gives a module with
that module's names (the same class objects, so old and new states load the same provider). Never remove
an entry; tests/harbor/test_legacy_state.py replays a state written before the move.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

LEGACY_MODULES = {
    "components.harbor_provider": "components.harbor.providers",
    "components.harbor_robot_provider": "components.harbor.robot",
    "components.host_key_provider": "components.aws.host_key_provider",
}

# Every `module.Class` that a stack's state may name for a dynamic provider: the paths written before
# issue 17 (resolved through LEGACY_MODULES) and today's. tests/test_layout.py fails when a provider's
# own path is missing here or an entry stops resolving: moving a provider needs an alias above first.
STATE_PROVIDER_PATHS = (
    "components.harbor_provider.HarborRegistryProvider",
    "components.harbor_provider.HarborProjectProvider",
    "components.harbor_provider.HarborOidcProvider",
    "components.harbor_provider.HarborGcScheduleProvider",
    "components.harbor_robot_provider.HarborRobotProvider",
    "components.host_key_provider.ConsoleHostKeyProvider",
    "components.harbor.registry.HarborRegistryProvider",
    "components.harbor.project.HarborProjectProvider",
    "components.harbor.oidc.HarborOidcProvider",
    "components.harbor.gc_schedule.HarborGcScheduleProvider",
    "components.harbor.robot.HarborRobotProvider",
    "components.harbor.system_settings.HarborSystemSettingsProvider",
    "components.aws.host_key_provider.ConsoleHostKeyProvider",
    "components.aws.instance_running.InstanceRunningProvider",
    "components.aws.target_drain.TargetDrainProvider",
)


class _LegacyModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old module path to the module that replaced it, imported on first use."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in LEGACY_MODULES:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # the default: a new, empty module

    def exec_module(self, module: ModuleType) -> None:
        current = importlib.import_module(LEGACY_MODULES[module.__name__])
        module.__dict__.update({name: value for name, value in vars(current).items() if not name.startswith("__")})


if not any(isinstance(finder, _LegacyModuleFinder) for finder in sys.meta_path):
    sys.meta_path.append(_LegacyModuleFinder())
