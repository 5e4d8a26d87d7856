"""harbor-cache: one `pulumi up` per environment stands up Harbor as a pull-through image cache."""

import pulumi

from components.harbor_cache import HarborCache, HarborCacheArgs
from components.settings.settings import load_settings
from components.vm import installer_signature

# Settings are read and validated in full before the first resource is registered, and so is
# Harbor's installer signature (when the bundle is fetched: components/vm/installer_signature.py).
settings = load_settings()
installer_sha256 = installer_signature.installer_sha256(settings, preview=pulumi.runtime.is_dry_run())
cache = HarborCache("harbor", HarborCacheArgs(settings=settings, installer_sha256=installer_sha256))
for key, value in cache.outputs.items():
    pulumi.export(key, value)
