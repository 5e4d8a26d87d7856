"""HA nodes: the load balancer's health check path on each node's nginx, which answers core's ping
unless the node is marked: by its end-to-end check (components/vm/node_check.py, issue 18 point 8)
or while it drains itself around an upgrade of the container runtime (components/vm/runtime_drain.py)."""

from __future__ import annotations

from components.vm.ha_node import NGINX_SNIPPET_DIR

# The load balancer's health check path: core's ping, unless the node is marked.
READY_PATH = "/harbor-cache/ready"
# Harbor's nginx upstream for core on 8080 without internal TLS (prepare v2.15.2
# templates/nginx/nginx.http.conf.jinja: `upstream core { server core:8080; }`) and core's ping
# (src/server/v2.0/handler/ping.go: 200 "Pong").
CORE_PING = "http://core/api/v2.0/ping"
# Where the mark lies: on the node beside the snippets, in the nginx container read-only.
NODE_STATE_DIR = f"{NGINX_SNIPPET_DIR}/state"
NGINX_STATE_MOUNT = "/run/harbor-cache"
STORAGE_FAILED = "storage-failed"
# Set by apt's hook before Docker, containerd or runc is upgraded, removed once Harbor is healthy again.
DRAINING = "draining"
# Every mark that takes the node out; nginx's `if` takes one condition, so one `if` per mark.
OUT_MARKS = (STORAGE_FAILED, DRAINING)
NGINX_READY_NAME = "harbor.http.ready.conf"
NGINX_READY_PATH = f"{NGINX_SNIPPET_DIR}/{NGINX_READY_NAME}"
NGINX_READY_MOUNT = f"/etc/nginx/conf.d/{NGINX_READY_NAME}"


def render_nginx_ready(state_dir: str = NGINX_STATE_MOUNT) -> str:
    """An exact location, so it wins over Harbor's `location /` in the same server; `if` with only a
    `return` inside is one of the two uses the nginx wiki calls safe in a location ("If is Evil")."""
    return "\n".join(
        [
            "# Managed by harbor-cache (pulumi): the load balancer's health check; 503 while this node is marked out.",
            f"location = {READY_PATH} {{",
            *(line for mark in OUT_MARKS for line in (f"  if (-f {state_dir}/{mark}) {{", "    return 503;", "  }")),
            f"  proxy_pass {CORE_PING};",
            "}",
            "",
        ]
    )


def with_nginx_ready(document: dict) -> dict:
    """The HA override with the ready location mounted into conf.d and the state folder read-only."""
    services = dict(document["services"])
    proxy = services["proxy"]
    mounts = [
        {"type": "bind", "source": NGINX_READY_PATH, "target": NGINX_READY_MOUNT, "read_only": True},
        {"type": "bind", "source": NODE_STATE_DIR, "target": NGINX_STATE_MOUNT, "read_only": True},
    ]
    services["proxy"] = {**proxy, "volumes": [*proxy.get("volumes", []), *mounts]}
    return {**document, "services": services}
