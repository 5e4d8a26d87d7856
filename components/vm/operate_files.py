"""Renders the files that operate the cache on the VM: the CloudWatch metrics reporter and its
timer, from settings to text (pure functions, like components/vm/files.py)."""

from __future__ import annotations

import yaml

from components.settings.settings import Settings
from components.vm.files import script
from components.vm.harbor_yml import HARBOR_LOG_DIR
from components.vm.paths import HARBOR_HTTP_PORT, HARBOR_METRICS_PORT
from components.vm.unit_file import render_unit

BIN_DIR = "/opt/harbor/bin"
SYSTEMD_DIR = "/etc/systemd/system"
# CloudWatch namespace of everything a stack's VMs report, `HarborCache/<stack>`: the instance role
# may put metrics there only (IAM's cloudwatch:namespace condition cannot see dimensions), so one
# stack's role cannot feed, and keep green, another stack's alarms.
METRICS_NAMESPACE_PREFIX = "HarborCache"


def metrics_namespace(settings: Settings) -> str:
    return f"{METRICS_NAMESPACE_PREFIX}/{settings.stack}"


METRICS_SCRIPT = "harbor-metrics.py"
METRICS_SERVICE = "harbor-metrics.service"
METRICS_TIMER = "harbor-metrics.timer"
METRICS_SERVICE_PATH = f"{SYSTEMD_DIR}/{METRICS_SERVICE}"
# HA mode: the reporter's node index (files/harbor-metrics.py reads it) and the dimension it becomes.
METRICS_NODE_VARIABLE = "HARBOR_CACHE_NODE"
METRICS_NODE_DIMENSION = "Node"
PROBE_SCRIPT = "harbor-probe.py"
PROBE_SERVICE = "harbor-probe.service"
PROBE_TIMER = "harbor-probe.timer"
# Host port of Harbor's metrics (harbor.yml `metric.port`; nginx serves /metrics there, proxying to
# the exporter, or with ?comp=core|registry|jobservice to that component).
METRICS_PORT = HARBOR_METRICS_PORT
METRICS_COMPONENTS = ("exporter", "core", "registry", "jobservice")
# Harbor's own health, asked of its nginx on the host port (no DNS, no TLS: the smoke test covers those).
LOCAL_HEALTH_URL = "http://127.0.0.1:8080/api/v2.0/health"
# The pull robot's `name:secret` for the probe of private projects (0600 root; the probe's unit
# reads it with LoadCredential=, the deploy's smoke step with sudo). Never on a command line.
PROBE_CREDENTIALS_PATH = "/etc/harbor-cache/probe-credentials"
PROBE_CREDENTIAL_NAME = "probe"
# The monitor robot's `name:secret` (registry list, GC history) for the reporter: 0600 root, loaded
# with LoadCredential=. files/enable-timers.sh creates it empty before the reporter first starts
# (LoadCredential= fails on a missing file); the deploy fills it once Harbor holds the robot.
MONITOR_CREDENTIALS_PATH = "/etc/harbor-cache/monitor-credentials"
MONITOR_CREDENTIAL_NAME = "monitor"
# The reporter keeps log offsets, counter totals and its Prometheus file here (StateDirectory=).
METRICS_STATE_NAME = "harbor-metrics"
# The reporter's numbers for Prometheus (hit rate, probe, upstreams...): `harbor-metrics.py serve`
# publishes the last report's file on this port, opened to metricsAllowedCidrs like Harbor's 9090.
CACHE_METRICS_PORT = 9091
CACHE_EXPORTER_SERVICE = "harbor-cache-exporter.service"


# Every operating unit runs as a transient user on a read-only system (its StateDirectory aside).
UNPRIVILEGED = {
    "DynamicUser": "yes",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
}


def metrics_environment(settings: Settings) -> dict[str, str]:
    return {
        "METRICS_NAMESPACE": metrics_namespace(settings),
        "HARBOR_CACHE_STACK": settings.stack_id,
        "AWS_REGION": settings.region,
        "DATA_MOUNT": settings.data_mount,
        "HEALTH_URL": LOCAL_HEALTH_URL,
    }


def reporter_environment(settings: Settings, node_index: int = 0, alarm_topic_arn: str = "") -> dict[str, str]:
    """The reporter's settings. HA mode (replicas > 1): also this node's index, which
    files/harbor-metrics.py adds to its disk and health metrics as the dimension `Node`, so each
    node has its own series and alarms (components/aws/alarms.py). The index, not the instance
    id: it is known when the file is rendered, and a replaced node keeps its series and alarms.
    Not for the probe (node 0 only), whose counts stay per stack. `alarm_topic_arn`: the stack's alarm
    topic (components/aws/alarms.py), whose confirmed subscribers every node counts."""
    environment = metrics_environment(settings)
    if settings.high_availability:
        environment[METRICS_NODE_VARIABLE] = str(node_index)
    # What files/harbor-metrics.py reads beyond disk and health (its docstring says what each gives).
    environment |= {
        "HARBOR_LOG_DIR": HARBOR_LOG_DIR,
        "PROXY_PROJECTS": ",".join(upstream.project for upstream in settings.upstreams),
        "EXPORTER_URL": f"http://127.0.0.1:{METRICS_PORT}/metrics",
        "MONITOR_CREDENTIALS": f"%d/{MONITOR_CREDENTIAL_NAME}",
    }
    if not settings.high_availability:
        # One VM: the public path through its own Traefik, and the DLM snapshots of its data volume
        # (tag harbor-cache:snapshot = the stack, components/aws/vm.py). HA: S3 has no snapshot.
        environment |= {"PUBLIC_URL": settings.url, "PUBLIC_CONNECT_HOST": "127.0.0.1", "SNAPSHOT_TAG": settings.stack_id}
    else:
        # HA: each node walks the client's path, no PUBLIC_CONNECT_HOST: the name resolved, the load
        # balancer's listener and its ACM certificate verified against the system CAs, then a node.
        # The load balancer's group admits each node's Elastic IP for this (components/aws/load_balancer.py).
        environment["PUBLIC_URL"] = settings.url
    if alarm_topic_arn:
        environment["ALARM_TOPIC_ARN"] = alarm_topic_arn
    return environment


def metrics_service(
    settings: Settings, node_index: int = 0, alarm_topic_arn: str = ""
) -> dict[str, dict[str, str | list[str]]]:
    return {
        "Unit": {
            "Description": "Harbor cache: disk usage and Harbor health to CloudWatch",
            "Wants": "network-online.target",
            "After": "network-online.target",
        },
        "Service": {
            "Type": "oneshot",
            "Environment": [
                f"{key}={value}" for key, value in reporter_environment(settings, node_index, alarm_topic_arn).items()
            ],
            "ExecStart": f"/usr/bin/python3 {BIN_DIR}/{METRICS_SCRIPT} report",
            "LoadCredential": f"{MONITOR_CREDENTIAL_NAME}:{MONITOR_CREDENTIALS_PATH}",
            "StateDirectory": METRICS_STATE_NAME,
            # Reads statvfs, Harbor's logs (0644, rsyslog's $FileCreateMode), loopback URLs and IMDS:
            # no privileges needed.
            **UNPRIVILEGED,
            "TimeoutStartSec": "50",
        },
    }


def metrics_timer() -> dict[str, dict[str, str | list[str]]]:
    return {
        "Unit": {"Description": "Harbor cache: report to CloudWatch every minute"},
        "Timer": {"OnBootSec": "2min", "OnUnitActiveSec": "1min", "AccuracySec": "5s", "Unit": METRICS_SERVICE},
        "Install": {"WantedBy": "timers.target"},
    }


def cache_exporter_service(settings: Settings) -> dict[str, dict[str, str | list[str]]]:
    """The reporter's Prometheus file on CACHE_METRICS_PORT; loopback only unless metricsAllowedCidrs
    opens the port (as compose_override publishes Harbor's 9090)."""
    address = "0.0.0.0" if settings.metrics_allowed_cidrs else "127.0.0.1"  # noqa: S104 - the security group limits it
    return {
        "Unit": {"Description": "Harbor cache: the reporter's metrics for Prometheus", "After": "network-online.target"},
        "Service": {
            "Type": "simple",
            "ExecStart": f"/usr/bin/python3 {BIN_DIR}/{METRICS_SCRIPT} serve {CACHE_METRICS_PORT} {address}",
            # The same state directory the reporter writes (read only here).
            "StateDirectory": METRICS_STATE_NAME,
            **UNPRIVILEGED,
            "Restart": "always",
            "RestartSec": "5",
        },
        "Install": {"WantedBy": "multi-user.target"},
    }


def prometheus_scrape_configs(settings: Settings, hosts: list[str] | None = None) -> list[dict]:
    """One Prometheus job per Harbor component, as Harbor's metrics docs lay them out.

    `hosts`: the nodes' addresses with replicas > 1 (the hostname is then the load balancer, which
    does not carry the metrics port); default the hostname of the one VM.
    """
    targets = [f"{host}:{METRICS_PORT}" for host in (hosts or [settings.hostname])]
    jobs = []
    for component in METRICS_COMPONENTS:
        job = {
            "job_name": f"harbor-cache-{settings.stack}-{component}",
            "scheme": "http",
            "metrics_path": "/metrics",
            "static_configs": [{"targets": targets, "labels": {"stack": settings.stack_id}}],
        }
        if component != "exporter":
            job["params"] = {"comp": [component]}
        jobs.append(job)
    # harbor-cache's own numbers (hit rate per project, probe, upstream health, quota, snapshots).
    jobs.append(
        {
            "job_name": f"harbor-cache-{settings.stack}-cache",
            "scheme": "http",
            "metrics_path": "/metrics",
            "static_configs": [
                {
                    "targets": [f"{host}:{CACHE_METRICS_PORT}" for host in (hosts or [settings.hostname])],
                    "labels": {"stack": settings.stack_id},
                }
            ],
        }
    )
    return jobs


def render_prometheus_scrape_configs(settings: Settings, hosts: list[str] | None = None) -> str:
    """`scrape_configs:` entries to paste into prometheus.yml."""
    document = {"scrape_configs": prometheus_scrape_configs(settings, hosts)}
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def probe_connection(settings: Settings) -> dict[str, str]:
    """Where the probe sends connections for the cache's name (files/harbor-probe.py): the VM's own
    Traefik (the security group admits 443 only from allowedCidrs); on an HA node, which runs no
    Traefik, its own nginx on 8080 in plain HTTP, the load balancer's way once TLS has ended."""
    connection = {"PROBE_CONNECT_HOST": "127.0.0.1"}
    if settings.high_availability:
        connection["PROBE_CONNECT_PLAIN_PORT"] = str(HARBOR_HTTP_PORT)
    return connection


def private_projects(settings: Settings) -> list[str]:
    """Proxy projects that are not public: the probe pulls them with the pull robot."""
    return [upstream.project for upstream in settings.upstreams if not upstream.public]


def verify_flags(settings: Settings) -> list[str]:
    """The smoke pull proves that Harbor stored what it served (files/harbor-probe.py --verify-stored)."""
    return ["--verify-stored", *(flag for project in private_projects(settings) for flag in ("--private", project))]


def probe_command(settings: Settings, metric: str, images: list[str], all_blobs: bool) -> str:
    """One ExecStart line; `-` so a failing smoke run does not skip the prewarm run after it. The
    smoke run verifies what Harbor stored and, on one VM, that the name resolves to this VM's
    Elastic IP (`imds`: the unit is rendered before the address exists; HA: the load balancer's
    addresses change, no check)."""
    flags = ["--metric", metric, *(["--all-blobs"] if all_blobs else [])]
    if not all_blobs:
        flags += [*verify_flags(settings), *([] if settings.high_availability else ["--expect-address", "imds"])]
    return " ".join([f"-/usr/bin/python3 {BIN_DIR}/{PROBE_SCRIPT}", *flags, settings.url, *images])


def probe_service(settings: Settings) -> dict[str, dict[str, str | list[str]]]:
    commands = []
    for metric, images, all_blobs in (
        ("SmokeFailures", [image for _name, image in settings.smoke_images], False),
        ("PrewarmFailures", list(settings.prewarm), True),
    ):
        # An empty list reports zero failures, so the alarm's metric exists all the same.
        zero = f"/usr/bin/python3 {BIN_DIR}/{METRICS_SCRIPT} put {metric} 0"
        commands.append(probe_command(settings, metric, images, all_blobs) if images else zero)
    return {
        "Unit": {
            "Description": "Harbor cache: pull the smoke images and the prewarm list through the cache",
            "Wants": "network-online.target",
            "After": "network-online.target harbor.service",
        },
        "Service": {
            "Type": "oneshot",
            "Environment": [
                # Ask the local Traefik (HA: the local nginx) under the public name (the security
                # group admits 443 only from allowedCidrs); DNS is still checked.
                *(f"{key}={value}" for key, value in probe_connection(settings).items()),
                *(f"{key}={value}" for key, value in metrics_environment(settings).items()),
            ],
            "ExecStart": commands,
            **({"LoadCredential": f"{PROBE_CREDENTIAL_NAME}:{PROBE_CREDENTIALS_PATH}"} if private_projects(settings) else {}),
            **UNPRIVILEGED,
            "TimeoutStartSec": "3600",
        },
    }


def probe_timer(settings: Settings) -> dict[str, dict[str, str | list[str]]]:
    return {
        "Unit": {"Description": f"Harbor cache: probe and prewarm every {settings.prewarm_interval_hours} h"},
        "Timer": {
            "OnActiveSec": "15min",
            "OnUnitActiveSec": f"{settings.prewarm_interval_hours}h",
            "RandomizedDelaySec": "5min",
            "Persistent": "false",
            "Unit": PROBE_SERVICE,
        },
        "Install": {"WantedBy": "timers.target"},
    }


def metrics_unit(settings: Settings, node_index: int = 0, alarm_topic_arn: str = "") -> str:
    """harbor-metrics.service as it lands on node `node_index`."""
    return render_unit(metrics_service(settings, node_index, alarm_topic_arn))


def metrics_files(settings: Settings, node_index: int = 0, alarm_topic_arn: str = "") -> dict[str, str]:
    """The CloudWatch reporter and its timer, keyed by path on the VM (on node `node_index` in HA
    mode), installed once Harbor is ready."""
    return {
        f"{BIN_DIR}/{METRICS_SCRIPT}": script(METRICS_SCRIPT),
        METRICS_SERVICE_PATH: metrics_unit(settings, node_index, alarm_topic_arn),
        f"{SYSTEMD_DIR}/{METRICS_TIMER}": render_unit(metrics_timer()),
        f"{SYSTEMD_DIR}/{CACHE_EXPORTER_SERVICE}": render_unit(cache_exporter_service(settings)),
    }


def probe_files(settings: Settings) -> dict[str, str]:
    """The probe and its timer (installed once Harbor's projects exist)."""
    return {
        f"{BIN_DIR}/{PROBE_SCRIPT}": script(PROBE_SCRIPT),
        f"{SYSTEMD_DIR}/{PROBE_SERVICE}": render_unit(probe_service(settings)),
        f"{SYSTEMD_DIR}/{PROBE_TIMER}": render_unit(probe_timer(settings)),
    }


def operate_files(settings: Settings, alarm_topic_arn: str = "") -> dict[str, str]:
    """Every file of this module, keyed by its path on the VM."""
    return {**metrics_files(settings, alarm_topic_arn=alarm_topic_arn), **probe_files(settings)}
