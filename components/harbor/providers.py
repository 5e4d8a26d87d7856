"""Every Harbor dynamic provider class by name: what the pre-issue-17 path `components.harbor_provider`
resolves to.

Pulumi pickles a dynamic provider by reference (module path and class name), and the engine
unpickles the provider stored in the *state* for refresh and delete (pulumi/dynamic/__main__.py
get_provider). Stacks deployed before the layout by idea (issue 17) name the four providers below
as `components.harbor_provider.<Class>`; `components/__init__.py` keeps that path resolvable as an
alias of this module. New states name each provider's own module (components/__init__.py
STATE_PROVIDER_PATHS). Never rename a class here, nor remove this module.
"""

from components.harbor.gc_schedule import HarborGcScheduleProvider
from components.harbor.oidc import HarborOidcProvider
from components.harbor.project import HarborProjectProvider
from components.harbor.registry import HarborRegistryProvider
from components.harbor.robot import HarborRobotProvider

__all__ = [
    "HarborGcScheduleProvider",
    "HarborOidcProvider",
    "HarborProjectProvider",
    "HarborRegistryProvider",
    "HarborRobotProvider",
]
