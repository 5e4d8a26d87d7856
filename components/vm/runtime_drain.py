"""HA nodes: a node takes itself out of the load balancer around an unattended upgrade of the
container runtime, and back in once Harbor is healthy again (issue 18 point 5).

Why: Ubuntu's unattended-upgrades installs noble-security's updates, docker.io, containerd and runc
among them (universe). containerd's postinst restarts containerd.service on every upgrade
(`deb-systemd-invoke restart`, dh_installsystemd; read in Debian's containerd
1.6.20~ds1-1+deb12u3). Ubuntu's docker.io postinst restarts the daemon only when its debconf
question `docker.io/restart` says so (`invoke-rc.d docker restart`; the template's default is
false, and unattended-upgrades answers nothing), so a patched dockerd would otherwise wait for a
reboot. A restarted dockerd stops every container, and restarts harbor.service with it
(`Requires=docker.service`). Until now the nodes held these packages back
(Unattended-Upgrade::Package-Blacklist), so their security updates waited for a person.

How (files/harbor-runtime-drain.sh, called by apt itself; apt 2.7.14 apt-pkg/deb/dpkgpm.cc
pkgDPkgPM::Go, which every dpkg run of apt-get and of unattended-upgrades goes through: python-apt's
Cache.commit -> PackageManager.do_install -> pkgPackageManager::DoInstall -> Go):
- `DPkg::Pre-Install-Pkgs` runs before dpkg, with the `.deb` files about to be installed on stdin
  (RunScriptsWithPkgs, hook protocol version 1: one absolute path per line, only for Item::Install).
  When one of them is RUNTIME_PACKAGES (its Package field, read by dpkg-deb) and Harbor runs, the
  hook marks the node (node_ready.DRAINING), checks that the node's health check no longer passes
  (the ALB's matcher is 200: a 503, or no nginx at all, keeps it away),
  waits until the ALB must have stopped sending (unhealthy_threshold x interval + margin) and for
  pulls in flight (bounded by the deregistration delay, as a deregistered target gets). A hook that
  exits non-zero makes Go return before dpkg runs: nothing is installed, and the hook removes its
  mark first. unattended-upgrades then logs "Installing the upgrades failed!" and stops
  (upgrade_in_minimal_steps returns on the commit's error); the packages come again the next day.
- `DPkg::Post-Invoke` runs after dpkg, also when dpkg failed (Go reaches RunScripts("DPkg::Post-Invoke")
  with d->dpkg_error set and returns false only after it). When the mark is there, the hook
  restarts Docker if docker.io was upgraded (so the fix runs now, while the node is out), starts
  Harbor if a restart left it stopped, waits until Harbor's health is
  `healthy` locally (bounded), removes the mark and waits until the ALB must call the node healthy
  (healthy_threshold x interval + margin) before apt goes on.
- unattended-upgrades runs dpkg in "minimal steps" (Unattended-Upgrade::MinimalSteps, on by
  default): one cache.commit per smallest set of packages that installs on its own, so each
  commit runs both hooks. docker.io, containerd and runc may come in up to three sets: the node
  leaves and rejoins around each, never stays out between them with Harbor down. It runs every
  hook twice per commit: apt_pkg reads apt.conf.d when python-apt loads, and apt.Cache(rootdir="/")
  (which unattended-upgrade always makes) reads it again (apt/cache.py Cache.__init__), and apt
  appends list entries. The second drain finds the node out already and waits only what is left
  of the first one's wait; the second rejoin finds no mark. (tests/vm/test_runtime_drain.py runs
  the real unattended-upgrade and sees both.)
- What could still leave the mark behind: apt killed between the hooks, an internal apt error
  before Post-Invoke, another Pre-Install-Pkgs hook failing after ours (so ours is named to sort
  last), a reboot in between. apt-daily-upgrade.service (which runs unattended-upgrades) runs the
  same `rejoin` in ExecStopPost= (systemd runs it however the service ended), and a tmpfiles.d
  rule removes the mark at boot (systemd-tmpfiles-setup.service runs `--remove --boot`).

Never two nodes at once: each node's apt-daily-upgrade.timer fires at its own hour
(UPGRADE_FIRST_HOUR + STAGGER_HOURS x node index, UTC as on Ubuntu's cloud images) with a random delay
far below the stagger and no catch-up at boot (Persistent=false), so one node's drain is over before
the next one's can begin. What the nodes cannot see without new permissions (ELB
DescribeTargetHealth) or a path to each other: whether another node is already out for another
reason (its bucket check failed, or it is down). A node that drains then leaves the others, or
none: the ALB fails open when every target is unhealthy and sends to all of them, so pulls to this
node fail while its Docker restarts (docs/scale.md says so).

The single VM keeps Ubuntu's defaults: there is no other node to serve, so draining would change
nothing. Its containerd restarts itself on an upgrade (running containers carry on) and a patched
dockerd waits for the next reboot or Docker restart (docker.io/restart's default), as before.
"""

from __future__ import annotations

import shlex

from components.settings.settings import Settings
from components.vm.file_modes import file_mode
from components.vm.files import script
from components.vm.node_ready import DRAINING, NODE_STATE_DIR, READY_PATH
from components.vm.operate_files import BIN_DIR, SYSTEMD_DIR
from components.vm.paths import (
    HARBOR_HTTP_PORT,
    LOAD_BALANCER_CHECK_INTERVAL_SECONDS,
    LOAD_BALANCER_CHECK_TIMEOUT_SECONDS,
    LOAD_BALANCER_DEREGISTRATION_DELAY_SECONDS,
    LOAD_BALANCER_HEALTHY_THRESHOLD,
    LOAD_BALANCER_UNHEALTHY_THRESHOLD,
)
from components.vm.unit_file import render_unit

# The container runtime: what every Harbor container runs on, and what restarts with it.
RUNTIME_PACKAGES = ("docker.io", "containerd", "runc")
DRAIN_SCRIPT = "harbor-runtime-drain.sh"
DRAIN_SCRIPT_PATH = f"{BIN_DIR}/{DRAIN_SCRIPT}"
# apt reads apt.conf.d in name order and appends list entries in that order (apt.conf(5)): ours
# last, so no later Pre-Install-Pkgs hook can fail after we drained, and every other Post-Invoke
# (needrestart's restarts among them) runs while the node is still out.
APT_DRAIN_PATH = "/etc/apt/apt.conf.d/99zz-harbor-cache-runtime-drain"
# Where the nodes held the runtime back from unattended-upgrades before: the step that lays
# APT_DRAIN_PATH removes it.
PREVIOUS_HOLD_PATH = "/etc/apt/apt.conf.d/51harbor-cache-hold-docker"
HARBOR_UNIT = "harbor.service"
# Restarted by the rejoin when it was upgraded: its own postinst leaves the old daemon running.
DOCKER_PACKAGE = "docker.io"
DOCKER_UNIT = "docker.service"
UPGRADE_TIMER = "apt-daily-upgrade.timer"
UPGRADE_SERVICE = "apt-daily-upgrade.service"
TIMER_DROPIN_PATH = f"{SYSTEMD_DIR}/{UPGRADE_TIMER}.d/harbor-cache-stagger.conf"
SERVICE_DROPIN_PATH = f"{SYSTEMD_DIR}/{UPGRADE_SERVICE}.d/harbor-cache-rejoin.conf"
TMPFILES_PATH = "/etc/tmpfiles.d/harbor-cache-runtime-drain.conf"

# A check sent just before the mark may still pass: one more interval and its timeout on top.
CHECK_MARGIN_SECONDS = LOAD_BALANCER_CHECK_INTERVAL_SECONDS + LOAD_BALANCER_CHECK_TIMEOUT_SECONDS
OUT_SECONDS = LOAD_BALANCER_UNHEALTHY_THRESHOLD * LOAD_BALANCER_CHECK_INTERVAL_SECONDS + CHECK_MARGIN_SECONDS
IN_SECONDS = LOAD_BALANCER_HEALTHY_THRESHOLD * LOAD_BALANCER_CHECK_INTERVAL_SECONDS + CHECK_MARGIN_SECONDS
# Pulls already sent to the node get as long as a deregistered target's (the ALB's deregistration delay).
IN_FLIGHT_SECONDS = LOAD_BALANCER_DEREGISTRATION_DELAY_SECONDS
# Harbor back after the runtime restarted: as long as the deploy's readiness gate gives it.
HEALTHY_TIMEOUT_SECONDS = 900
# The longest one drain can take (one dpkg run), and at most three per unattended-upgrades run.
DRAIN_BOUND_SECONDS = OUT_SECONDS + IN_FLIGHT_SECONDS + HEALTHY_TIMEOUT_SECONDS + IN_SECONDS
DRAINS_PER_RUN = len(RUNTIME_PACKAGES)

# Ubuntu's apt-daily-upgrade.timer: `OnCalendar=*-*-* 6:00`, `RandomizedDelaySec=60m`,
# `Persistent=true` (apt's debian/apt-daily-upgrade.timer). Node i at 06:00 + 2 h x i: six nodes
# (MAX_REPLICAS) end by 16:xx.
UPGRADE_FIRST_HOUR = 6
STAGGER_HOURS = 2
RANDOM_DELAY_MINUTES = 15


def drain_environment() -> dict[str, str]:
    """What files/harbor-runtime-drain.sh reads: where the mark goes, what to ask, how long to wait."""
    local = f"http://127.0.0.1:{HARBOR_HTTP_PORT}"
    return {
        "DRAIN_STATE": NODE_STATE_DIR,
        "DRAIN_MARK": DRAINING,
        "DRAIN_PACKAGES": " ".join(RUNTIME_PACKAGES),
        "DRAIN_UNIT": HARBOR_UNIT,
        "DRAIN_DOCKER_PACKAGE": DOCKER_PACKAGE,
        "DRAIN_DOCKER_UNIT": DOCKER_UNIT,
        # This node's nginx: the health check the ALB asks, and Harbor's health behind it.
        "DRAIN_READY_URL": f"{local}{READY_PATH}",
        "DRAIN_HEALTH_URL": f"{local}/api/v2.0/health",
        "DRAIN_OUT_SECONDS": str(OUT_SECONDS),
        "DRAIN_IN_FLIGHT_SECONDS": str(IN_FLIGHT_SECONDS),
        "DRAIN_HEALTHY_TIMEOUT_SECONDS": str(HEALTHY_TIMEOUT_SECONDS),
        "DRAIN_IN_SECONDS": str(IN_SECONDS),
    }


def drain_command(action: str, environment: dict[str, str] | None = None, script_path: str = DRAIN_SCRIPT_PATH) -> str:
    """The hook as apt runs it (`/bin/sh -c <value>`, RunScripts/RunScriptsWithPkgs): settings first.
    `environment` and `script_path` other than the node's: a test's loopback stand-ins."""
    values = drain_environment() if environment is None else environment
    return " ".join([*(f"{key}={shlex.quote(value)}" for key, value in values.items()), script_path, action])


def render_apt_conf(values: dict[str, list[str]], why: str) -> str:
    """apt.conf(5) lists: `Scope::Name { "value"; ... };`, values quoted (apt.conf has no escape for a quote)."""
    lines = [f"// Managed by harbor-cache (pulumi): {why}"]
    for key, items in values.items():
        assert all('"' not in item for item in items), items
        lines.append(f"{key} {{")
        lines += [f'  "{item}";' for item in items]
        lines.append("};")
    return "\n".join(lines) + "\n"


def render_apt_drain_conf(environment: dict[str, str] | None = None, script_path: str = DRAIN_SCRIPT_PATH) -> str:
    hooks = {"DPkg::Pre-Install-Pkgs": "drain", "DPkg::Post-Invoke": "rejoin"}
    return render_apt_conf(
        {key: [drain_command(action, environment, script_path)] for key, action in hooks.items()},
        "this node leaves the load balancer before Docker, containerd or runc is upgraded (components/vm/runtime_drain.py).",
    )


def upgrade_timer_dropin(node_index: int) -> dict[str, dict[str, str | list[str]]]:
    """This node's hour for unattended-upgrades: an empty OnCalendar= clears Ubuntu's 6:00 first
    (systemd.timer(5): assigning the empty string resets the list)."""
    hour = (UPGRADE_FIRST_HOUR + STAGGER_HOURS * node_index) % 24
    return {
        "Timer": {
            "OnCalendar": ["", f"*-*-* {hour:02d}:00:00 UTC"],
            "RandomizedDelaySec": f"{RANDOM_DELAY_MINUTES}min",
            # A missed run waits for the node's next slot instead of running at boot in another's.
            "Persistent": "false",
        }
    }


def upgrade_service_dropin() -> dict[str, dict[str, str | list[str]]]:
    """However unattended-upgrades ended (killed, timed out), the node does not stay marked out."""
    return {
        "Service": {
            # Quoted: systemd splits an unquoted Environment= value at spaces (DRAIN_PACKAGES has some).
            "Environment": [f'"{key}={value}"' for key, value in drain_environment().items()],
            "ExecStopPost": f"{DRAIN_SCRIPT_PATH} rejoin",
        }
    }


def render_tmpfiles() -> str:
    """tmpfiles.d(5) `r`: removed when systemd-tmpfiles runs with --remove, which
    systemd-tmpfiles-setup.service does at every boot, before Docker starts Harbor's nginx."""
    return "\n".join(
        [
            "# Managed by harbor-cache (pulumi): a reboot in the middle of a runtime upgrade leaves no node marked out.",
            f"r {NODE_STATE_DIR}/{DRAINING}",
            "",
        ]
    )


# The apt hook's step: the last one, after everything it calls.
DRAIN_HOOK_STEP = "drain-apt-hook"


def runtime_drain_commands(settings: Settings) -> dict[str, tuple[str, str]]:
    """Step -> (path, command) laying each file of runtime_drain_files (content on stdin); each
    command also does what makes its file count, so a changed file re-runs only its own step."""

    def write_then(path: str, *commands: str) -> str:
        write = f"install -D -m {file_mode(path, settings)} -o root -g root /dev/stdin {shlex.quote(path)}"
        return f"sudo sh -c {shlex.quote(' && '.join([write, *commands]))}"

    return {
        "drain-script": (DRAIN_SCRIPT_PATH, write_then(DRAIN_SCRIPT_PATH)),
        "drain-tmpfiles": (TMPFILES_PATH, write_then(TMPFILES_PATH)),
        "drain-rejoin-dropin": (SERVICE_DROPIN_PATH, write_then(SERVICE_DROPIN_PATH, "systemctl daemon-reload")),
        # A changed OnCalendar= counts from the timer's next start: restart it if it runs.
        "upgrade-timer": (
            TIMER_DROPIN_PATH,
            write_then(TIMER_DROPIN_PATH, "systemctl daemon-reload", f"systemctl try-restart {UPGRADE_TIMER}"),
        ),
        # The hold it replaces goes once the drain is in place.
        DRAIN_HOOK_STEP: (APT_DRAIN_PATH, write_then(APT_DRAIN_PATH, f"rm -f {shlex.quote(PREVIOUS_HOLD_PATH)}")),
    }


def runtime_drain_files(node_index: int) -> dict[str, str]:
    """What an HA node gets for it, keyed by path on the node (the apt hook last: it calls the script)."""
    return {
        DRAIN_SCRIPT_PATH: script(DRAIN_SCRIPT),
        TMPFILES_PATH: render_tmpfiles(),
        SERVICE_DROPIN_PATH: render_unit(upgrade_service_dropin()),
        TIMER_DROPIN_PATH: render_unit(upgrade_timer_dropin(node_index)),
        APT_DRAIN_PATH: render_apt_drain_conf(),
    }
