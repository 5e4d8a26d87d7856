"""The VM's user data: cloud-init settings, no secret."""

from __future__ import annotations

import yaml


def cloud_init() -> dict:
    """User data: no secret in it. The VM makes its own SSH host key and prints the public half on
    its console, where the deploy reads and pins it (components/aws/host_key_provider.py).

    Keys of cloud-init's cc_ssh and cc_keys_to_console (the same in Debian's 22.4 and in 24.x+ on
    Ubuntu 24.04); `cloud-init schema` checks this document in the tests.
    """
    return {
        # Drop any host key baked into the image: the only key is the one this instance made.
        "ssh_deletekeys": True,
        # One key, the one that is pinned (the schema wants at least one type: minItems 1).
        "ssh_genkeytypes": ["ed25519"],
        # The console is how the key reaches the deploy: never let an image default hide it
        # (22.4 hides ssh-dss by default, newer versions nothing).
        "ssh": {"emit_keys_to_console": True},
        "ssh_key_console_blacklist": [],
    }


def render_cloud_init() -> str:
    body = yaml.safe_dump(cloud_init(), sort_keys=False, default_flow_style=False, width=1000)
    return "#cloud-config\n" + body
