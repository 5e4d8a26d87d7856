"""HA nodes: a node whose Harbor cannot serve from its bucket leaves the load balancer (issue 18 point 8).

The load balancer's health check asks Harbor's ping, which core answers whether or not the
registry can reach S3. So every node runs the end-to-end probe (files/harbor-probe.py: a pull
through each proxy project that has a smoke image, as a client pulls) every NODE_CHECK_MINUTES;
after NODE_CHECK_FAILURES failed runs in a row files/harbor-node-check.sh marks the node, and the
node's nginx then answers the load balancer's health check (READY_PATH, a location of ours in
Harbor's server on 8080) with 503 instead of core's ping. The ALB takes the node out after two such
answers (its unhealthy_threshold), the `unhealthy-node` alarm fires, and the other nodes serve. The
first good run clears the mark, and so does a restart of Harbor (start-harbor.sh): a fresh start is
checked again before it is judged. The probe itself (what it pulls and proves) is
files/harbor-probe.py's; this module says where, how often, and what a failure does.

No IAM for it: the node leaves by failing the check, not by calling ELB (see components/aws/target_drain.py).
When every node fails (the bucket itself is gone), the ALB fails open and sends to all of them.
"""

from __future__ import annotations

from components.settings.settings import Settings
from components.vm import operate_files
from components.vm.node_ready import NODE_STATE_DIR
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


def node_check_command(settings: Settings) -> str:
    """The smoke pull of every proxy project that has a smoke image, against this node's own nginx."""
    images = [image for _name, image in settings.smoke_images]
    probe = f"/usr/bin/python3 {operate_files.BIN_DIR}/{operate_files.PROBE_SCRIPT}"
    return " ".join([f"{operate_files.BIN_DIR}/{NODE_CHECK_SCRIPT}", probe, settings.url, *images])


def node_check_service(settings: Settings) -> dict[str, dict[str, str | list[str]]]:
    return {
        "Unit": {
            "Description": "Harbor cache: this node's end-to-end pull; out of the load balancer while it fails",
            "Wants": "network-online.target",
            "After": "network-online.target harbor.service",
        },
        "Service": {
            "Type": "oneshot",
            "Environment": [
                *(f"{key}={value}" for key, value in operate_files.probe_connection(settings).items()),
                f"NODE_CHECK_STATE={NODE_STATE_DIR}",
                f"NODE_CHECK_FAILURES={NODE_CHECK_FAILURES}",
                f"NODE_CHECK_COUNT=/var/lib/{NODE_CHECK_STATE}/failures",
            ],
            "ExecStart": node_check_command(settings),
            # Root only for the mark beside Harbor's files; everything else read-only.
            **ROOT_SANDBOX,
            "ReadWritePaths": NODE_STATE_DIR,
            "StateDirectory": NODE_CHECK_STATE,
            "TimeoutStartSec": "900",
        },
    }


def node_check_timer() -> dict[str, dict[str, str | list[str]]]:
    description = f"Harbor cache: this node's end-to-end pull every {NODE_CHECK_MINUTES} min"
    return every_minutes_timer(description, NODE_CHECK_MINUTES, NODE_CHECK_SERVICE)


def node_check_files(settings: Settings) -> dict[str, str]:
    """What an HA node's probe step lays beside the probe (keyed by path on the node)."""
    service, timer = node_check_service(settings), node_check_timer()
    return periodic_check_files(NODE_CHECK_SCRIPT, NODE_CHECK_SERVICE, service, NODE_CHECK_TIMER, timer)
