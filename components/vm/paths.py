"""Where harbor-cache's files live on the VM and the ports Harbor is reached on."""

from __future__ import annotations

HARBOR_ROOT = "/opt/harbor"
HARBOR_CURRENT = f"{HARBOR_ROOT}/harbor"  # symlink to the unpacked installer of the running version
HARBOR_YML_PATH = f"{HARBOR_ROOT}/harbor.yml"
COMPOSE_OVERRIDE_PATH = f"{HARBOR_ROOT}/docker-compose.override.yml"
ENVRC_PATH = f"{HARBOR_ROOT}/.envrc"
SYSTEMD_UNIT_PATH = "/etc/systemd/system/harbor.service"
# dockerd restarts `restart: always` containers itself at boot: it must wait for the data volume.
DOCKER_DROPIN_PATH = "/etc/systemd/system/docker.service.d/harbor-cache-data.conf"
# Traefik's dynamic configuration (file provider): the one route to Harbor. The folder is mounted,
# not the file, so a rewritten file (new inode) is still what the container sees.
TRAEFIK_DYNAMIC_DIR = f"{HARBOR_ROOT}/traefik"
TRAEFIK_DYNAMIC_PATH = f"{TRAEFIK_DYNAMIC_DIR}/harbor.yml"
TRAEFIK_DYNAMIC_MOUNT = "/etc/traefik/dynamic"
HARBOR_HTTP_PORT = 8080
# Harbor's nginx, published on the host's loopback only: Traefik (host network) and the SSH tunnel
# (`ssh -L 18080:127.0.0.1:8080`) reach it there, nothing else does.
HARBOR_LOOPBACK = f"127.0.0.1:{HARBOR_HTTP_PORT}"
# Harbor's Prometheus metrics, published by nginx (prepare's docker-compose.yml.jinja `{{metric.port}}:9090`).
HARBOR_METRICS_PORT = 9090
# The Application Load Balancer's idle timeout in HA mode (replicas > 1): components/aws/load_balancer.py
# sets the ALB's attribute from this value (IDLE_TIMEOUT_SECONDS, where the reasons for 900 are); it
# lives here so each node's nginx is rendered from the same number without importing the AWS component.
LOAD_BALANCER_IDLE_TIMEOUT_SECONDS = 900
# The target group's health check timing and deregistration delay in HA mode: components/aws/load_balancer.py
# sets them (HEALTH_CHECK, DEREGISTRATION_DELAY_SECONDS, where the reasons are); they live here so a
# node that takes itself out (components/vm/runtime_drain.py) waits from the same numbers.
LOAD_BALANCER_CHECK_INTERVAL_SECONDS = 10
LOAD_BALANCER_CHECK_TIMEOUT_SECONDS = 5
LOAD_BALANCER_HEALTHY_THRESHOLD = 2
LOAD_BALANCER_UNHEALTHY_THRESHOLD = 2
LOAD_BALANCER_DEREGISTRATION_DELAY_SECONDS = 120
