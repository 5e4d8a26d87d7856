"""harbor-cache: one `pulumi up` per environment stands up Harbor as a pull-through image cache."""

import pulumi

from components.harbor_cache import HarborCache, HarborCacheArgs
from components.settings.settings import load_settings

# Settings are read and validated in full before the first resource is registered.
settings = load_settings()
cache = HarborCache("harbor", HarborCacheArgs(settings=settings))
for key, value in cache.outputs.items():
    pulumi.export(key, value)
