"""HA nodes: a node whose Harbor cannot serve from its bucket leaves the load balancer (issue 18 point 8).

The load balancer's health check asks Harbor's ping, which core answers whether or not the
registry can reach S3. So every node runs two checks every NODE_CHECK_MINUTES
(files/harbor-node-check.sh runs both, every time):
- the registry's storage write check (files/harbor-write-check.py): a fixed canary blob uploaded
  straight to this node's registry container with core's own credential, and read back. A pull
  proves no write: once a smoke image is stored it is only read, and Harbor streams from the
  upstream when its registry cannot store (proxy controller), so a node whose registry lost write
  access (credential relay down, bucket policy, KMS) would pass the probe while caching nothing;
- the end-to-end probe (files/harbor-probe.py --verify-stored: a pull through each proxy project
  that has a smoke image, as a client pulls, against this node's own nginx, then the proof that
  this node's Harbor serves it from its store: a Range request only the store answers with 206).
After NODE_CHECK_FAILURES failed runs in a row files/harbor-node-check.sh marks the node, and the
node's nginx then answers the load balancer's health check (READY_PATH, a location of ours in
Harbor's server on 8080) with 503 instead of core's ping. The ALB takes the node out after two such
answers (its unhealthy_threshold), the `unhealthy-node` alarm fires, and the other nodes serve. The
first good run clears the mark, and so does a restart of Harbor (start-harbor.sh): a fresh start is
checked again before it is judged. What the checks prove is in the scripts' docstrings; this
module says where, how often, and what a failure does.

No IAM for it: the node leaves by failing the check, not by calling ELB (see components/aws/target_drain.py).
When every node fails (the bucket itself is gone), the ALB fails open and sends to all of them.
"""

from __future__ import annotations

from components.settings.settings import Settings
from components.vm import operate_files
from components.vm.files import script
from components.vm.imds_guard import IMDS_CLIENTS
from components.vm.node_ready import NODE_STATE_DIR
from components.vm.paths import HARBOR_CURRENT
from components.vm.periodic_checks import ROOT_SANDBOX, periodic_check_files
from components.vm.unit_file import every_minutes_timer

NODE_CHECK_SCRIPT = "harbor-node-check.sh"
NODE_CHECK_SERVICE = "harbor-node-check.service"
NODE_CHECK_TIMER = "harbor-node-check.timer"
# How often and how many: a node with a broken bucket is out within about 2 x 10 minutes, and one
# failed pull (an upstream's blip) never takes it out.
NODE_CHECK_MINUTES = 10
NODE_CHECK_FAILURES = 2
NODE_CHECK_STATE = "harbor-node-check"


WRITE_CHECK_SCRIPT = "harbor-write-check.py"
# Where prepare writes core's env (REGISTRY_URL, REGISTRY_CREDENTIAL_USERNAME/PASSWORD): the
# check reads the credential there at every run (prepare draws a new password each time).
CORE_ENV_PATH = f"{HARBOR_CURRENT}/common/config/core/env"
# The registry's fixed address on Harbor's network (storage: s3, always so in HA): the host reaches
# it over the bridge; the registry's port is not published.
REGISTRY_ADDRESS = IMDS_CLIENTS["registry"]
# --verify-stored waits for Harbor to store what it served (files/harbor-probe.py, 300 s by default).
# The deploy's smoke step already waited for the first store, so here a stored image answers at once
# and a shorter wait keeps one run well inside the 10 minutes: a node that cannot store fails within
# 2 minutes per project, and the write check says why.
NODE_CHECK_STORE_WAIT = 120
# A run's bound: the write check's four requests (60 s each at most), then per smoke image the pull,
# the store wait and the proofs.
WRITE_CHECK_SECONDS = 300
PROBE_SECONDS_PER_IMAGE = 420


def write_check_command() -> list[str]:
    """The registry's storage write check against this node's registry container."""
    return ["/usr/bin/python3", f"{operate_files.BIN_DIR}/{WRITE_CHECK_SCRIPT}", CORE_ENV_PATH, REGISTRY_ADDRESS]


def probe_check_command(settings: Settings) -> list[str]:
    """The smoke pull of every proxy project that has a smoke image, against this node's own nginx,
    with the proof that this node's Harbor serves it from its store (and the pull robot for private
    projects): the scheduled probe's flags. Nothing when every smoke image is switched off."""
    images = [image for _name, image in settings.smoke_images]
    if not images:
        return []
    probe = ["/usr/bin/python3", f"{operate_files.BIN_DIR}/{operate_files.PROBE_SCRIPT}"]
    return [*probe, *operate_files.verify_flags(settings), settings.url, *images]


def node_check_command(settings: Settings) -> str:
    """harbor-node-check.sh with its checks, separated by `--`: the write check, then the probe."""
    probe = probe_check_command(settings)
    checks = [*write_check_command(), *(["--", *probe] if probe else [])]
    return " ".join([f"{operate_files.BIN_DIR}/{NODE_CHECK_SCRIPT}", *checks])


def node_check_service(settings: Settings) -> dict[str, dict[str, str | list[str]]]:
    images = len(settings.smoke_images)
    private = bool(images and operate_files.private_projects(settings))
    credential = f"{operate_files.PROBE_CREDENTIAL_NAME}:{operate_files.PROBE_CREDENTIALS_PATH}"
    return {
        "Unit": {
            "Description": "Harbor cache: this node's storage write and pull; out of the load balancer while they fail",
            "Wants": "network-online.target",
            "After": "network-online.target harbor.service",
        },
        "Service": {
            "Type": "oneshot",
            "Environment": [
                *(f"{key}={value}" for key, value in operate_files.probe_connection(settings).items()),
                f"PROBE_STORE_WAIT={NODE_CHECK_STORE_WAIT}",
                f"NODE_CHECK_STATE={NODE_STATE_DIR}",
                f"NODE_CHECK_FAILURES={NODE_CHECK_FAILURES}",
                f"NODE_CHECK_COUNT=/var/lib/{NODE_CHECK_STATE}/failures",
            ],
            "ExecStart": node_check_command(settings),
            # The pull robot for private projects, as the scheduled probe loads it (never argv).
            **({"LoadCredential": credential} if private else {}),
            # Root for core's env file (0600, UID 10000) and the mark beside Harbor's files;
            # everything else read-only.
            **ROOT_SANDBOX,
            "ReadWritePaths": NODE_STATE_DIR,
            "StateDirectory": NODE_CHECK_STATE,
            "TimeoutStartSec": str(WRITE_CHECK_SECONDS + PROBE_SECONDS_PER_IMAGE * images),
        },
    }


def node_check_timer() -> dict[str, dict[str, str | list[str]]]:
    description = f"Harbor cache: this node's storage write and end-to-end pull every {NODE_CHECK_MINUTES} min"
    return every_minutes_timer(description, NODE_CHECK_MINUTES, NODE_CHECK_SERVICE)


def node_check_files(settings: Settings) -> dict[str, str]:
    """What an HA node's probe step lays beside the probe (keyed by path on the node)."""
    service, timer = node_check_service(settings), node_check_timer()
    return {
        f"{operate_files.BIN_DIR}/{WRITE_CHECK_SCRIPT}": script(WRITE_CHECK_SCRIPT),
        **periodic_check_files(NODE_CHECK_SCRIPT, NODE_CHECK_SERVICE, service, NODE_CHECK_TIMER, timer),
    }
