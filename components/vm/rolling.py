"""HA nodes (replicas > 1): what keeps a node's Harbor from stopping while the load balancer still
sends it pulls (issue 18 points 5 and 6).

A deploy takes the node out of the target group first and puts it back once the ALB calls it
healthy (RollingHooks, made by components/aws/target_drain.py: the deploying machine does it).
Outside a deploy, Docker restarting stops every container: Ubuntu's unattended-upgrades installs
the security updates of noble-security, docker.io (universe) among them, on every node within the
same hour (apt-daily-upgrade.timer, RandomizedDelaySec=60m), and an upgrade of docker.io stops
docker.service in its prerm and starts it in its postinst (`deb-systemd-invoke stop
'docker.service' 'docker.socket'`; read in Debian's docker.io 20.10.24+dfsg1-1+deb12u1, the
packaging Ubuntu's derives from). Nothing could drain the node then, so the nodes
hold Docker's packages back from unattended-upgrades; they are upgraded by a deploy, one drained
node at a time (README, "Scale past one VM").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pulumi

# apt.conf.d sorts by name: after 50unattended-upgrades, whose lists ours extends (apt appends the
# entries of a list given in several files; apt.conf(5) "#clear" is needed to replace one).
UNATTENDED_HOLD_PATH = "/etc/apt/apt.conf.d/51harbor-cache-hold-docker"
# docker.io (its upgrade stops and starts docker.service), and containerd and runc, which every
# container runs on and which move with it. Anchored regular expressions: unattended-upgrades matches each entry with
# re.match against the package name (unattended-upgrade is_pkgname_in_blacklist), so a bare
# `docker.io` would also hold `dockerXio` and `docker.io-doc`.
HELD_PACKAGES = ("docker.io", "containerd", "runc")


def unattended_hold_patterns() -> list[str]:
    return [f"^{name.replace('.', '[.]')}$" for name in HELD_PACKAGES]


def render_apt_conf(values: dict[str, list[str]]) -> str:
    """apt.conf(5) lists: `Scope::Name { "value"; ... };`, values quoted (no quote inside: ours are patterns)."""
    lines = ["// Managed by harbor-cache (pulumi): Docker is upgraded by a deploy that drains the node first."]
    for key, items in values.items():
        assert all('"' not in item for item in items), items
        lines.append(f"{key} {{")
        lines += [f'  "{item}";' for item in items]
        lines.append("};")
    return "\n".join(lines) + "\n"


def render_unattended_hold() -> str:
    return render_apt_conf({"Unattended-Upgrade::Package-Blacklist": unattended_hold_patterns()})


# A step that leaves or rejoins the load balancer: (name, triggers, options) -> the resource.
RollingStep = Callable[[str, list, pulumi.ResourceOptions], pulumi.Resource]


@dataclass(frozen=True)
class RollingHooks:
    """How an HA node's install leaves the load balancer before Harbor stops and rejoins it after.

    `leave` runs whenever the given triggers change (what restarts Harbor), before the installer and
    the start; `rejoin` runs after the readiness gate, and the next node waits for it."""

    leave: RollingStep
    rejoin: RollingStep
