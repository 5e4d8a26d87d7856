"""What differs on an HA node (replicas > 1): nginx published for the load balancer with a longer keep-
alive, and the secrets every node must share.
"""

from __future__ import annotations

from components.settings.settings import Settings
from components.vm.compose_override import ComposeOverride, metrics_port_binding
from components.vm.paths import HARBOR_HTTP_PORT, HARBOR_ROOT, LOAD_BALANCER_IDLE_TIMEOUT_SECONDS
from components.vm.secret_values import SharedSecretValues

# --- Issue 13 step 3: what lies on each Harbor node in HA mode (replicas > 1) ---

# The load balancer ends TLS and forwards plain HTTP to nginx on this port of every node; the
# node's security group admits it only from the load balancer's security group.
HARBOR_PUBLISHED_HA = f"0.0.0.0:{HARBOR_HTTP_PORT}:{HARBOR_HTTP_PORT}"
# prepare's fixed paths for what it loads instead of generating (g.py secret_key_dir,
# private_key_pem_path, root_crt_path), under the data volume it mounts at /data; Harbor's compose
# binds them from `{{data_volume}}/secret/...` (templates/docker_compose/docker-compose.yml.jinja).
HARBOR_KEY_FILE = "secret/keys/secretkey"
SIGNING_KEY_FILE = "secret/core/private_key.pem"
SIGNING_CERT_FILE = "secret/registry/root.crt"
# utils/misc.py mark_file: prepare leaves its secrets 0600, owned by Harbor's 10000:10000 (g.py
# DEFAULT_UID/GID); the containers read them as that user.
PREPARE_FILE_MODE = "0600"
PREPARE_FILE_OWNER = "10000"


def ha_node_override(document: dict, settings: Settings) -> dict:
    """The override of an HA node: no Traefik (the load balancer is the front, with its ACM
    certificate), and nginx published on every address for the load balancer."""
    services = {name: service for name, service in document["services"].items() if name != "traefik"}
    services["proxy"] = {
        **services["proxy"],
        "ports": ComposeOverride([HARBOR_PUBLISHED_HA, metrics_port_binding(settings)]),
    }
    return {**document, "services": services}


# Keep-alive between the load balancer and a node's nginx. The ALB reuses its connections to a target
# until they have been idle for its idle timeout, and AWS asks that the target's keep-alive timeout
# be longer, else the target may close a connection just as the ALB sends the next request on it,
# which the ALB answers with a 502 (ELB User Guide for Application Load Balancers, "Edit attributes
# for your Application Load Balancer", Connection idle timeout:
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html).
# Harbor's nginx sets no keepalive_timeout (prepare v2.15.2 templates/nginx/nginx.http.conf.jinja),
# so nginx's default 75 s applies. The margin lets the ALB close first even when its timer and
# nginx's start a moment apart.
NGINX_KEEPALIVE_MARGIN_SECONDS = 60
NGINX_KEEPALIVE_NAME = "harbor.http.keepalive.conf"
# Beside the other harbor-cache files, outside Harbor's install folder (an upgrade unpacks a new one).
NGINX_SNIPPET_DIR = f"{HARBOR_ROOT}/nginx"
NGINX_KEEPALIVE_PATH = f"{NGINX_SNIPPET_DIR}/{NGINX_KEEPALIVE_NAME}"
# Harbor's 8080 server block has `include /etc/nginx/conf.d/harbor.http.*.conf;` and the nginx
# container mounts ./common/config/nginx at /etc/nginx (prepare's docker-compose.yml.jinja). prepare's
# own way to fill conf.d, copy_nginx_location_configs_if_exist (utils/nginx.py), copies from its
# image's templates/nginx/ext with a bare `map(...)`, which Python 3 never iterates: it copies
# nothing. So the snippet is mounted into conf.d by the compose override.
NGINX_KEEPALIVE_MOUNT = f"/etc/nginx/conf.d/{NGINX_KEEPALIVE_NAME}"


def nginx_keepalive_timeout() -> int:
    """Seconds nginx keeps an idle connection of the load balancer open: longer than the ALB's idle timeout."""
    return LOAD_BALANCER_IDLE_TIMEOUT_SECONDS + NGINX_KEEPALIVE_MARGIN_SECONDS


def nginx_keepalive_directives() -> dict[str, str]:
    """The directives of the snippet, valid in nginx's server context (ngx_http_core_module keepalive_timeout)."""
    return {"keepalive_timeout": f"{nginx_keepalive_timeout()}s"}


def render_nginx_keepalive() -> str:
    lines = ["# Managed by harbor-cache (pulumi): idle keep-alive longer than the load balancer's idle timeout."]
    lines += [f"{name} {value};" for name, value in nginx_keepalive_directives().items()]
    return "\n".join(lines) + "\n"


def with_nginx_keepalive(document: dict) -> dict:
    """The HA override with the keep-alive snippet mounted read-only into nginx's conf.d. The long
    syntax without create_host_path: a missing file fails the start instead of becoming a folder."""
    services = dict(document["services"])
    proxy = services["proxy"]
    mount = {"type": "bind", "source": NGINX_KEEPALIVE_PATH, "target": NGINX_KEEPALIVE_MOUNT, "read_only": True}
    services["proxy"] = {**proxy, "volumes": [*proxy.get("volumes", []), mount]}
    return {**document, "services": services}


def shared_secret_files(settings: Settings, shared: SharedSecretValues) -> dict[str, str]:
    """The files prepare loads instead of generating, keyed by their path on the node. Laid down
    before prepare runs: get_secret_key (utils/cert.py) then prints "loaded secret from file" and
    prepare_registry_ca keeps a key and certificate that both exist. The secret key is exactly its
    16 characters, no newline: _get_secret reads the whole file and insists on 16."""
    return {
        f"{settings.data_mount}/{HARBOR_KEY_FILE}": shared.secret_key,
        f"{settings.data_mount}/{SIGNING_KEY_FILE}": shared.token_private_key_pem,
        f"{settings.data_mount}/{SIGNING_CERT_FILE}": shared.token_certificate_pem,
    }


def shared_secret_environment(shared: SharedSecretValues) -> dict[str, dict[str, str]]:
    """The values prepare draws afresh on every run, per Harbor service that reads them.

    Compose gives a service's `environment` precedence over its `env_file` (compose-go
    types/project.go WithServicesEnvironmentResolved: the env files' mapping `.OverrideBy(service.Environment)`),
    so these win over what prepare wrote to common/config/<service>/env. Readers: CORE_SECRET and
    JOBSERVICE_SECRET in templates/{core,jobservice,registryctl}/env.jinja; CSRF_KEY and
    ROBOT_SCANNER_NAME_PREFIX in templates/core/env.jinja; the registry has no env file and reads
    REGISTRY_HTTP_SECRET over its config's `http.secret` (distribution configuration/parser.go: any
    REGISTRY_<SECTION>_<KEY> variable overrides the YAML)."""
    component_secrets = {"CORE_SECRET": shared.core_secret, "JOBSERVICE_SECRET": shared.jobservice_secret}
    return {
        "core": {**component_secrets, "CSRF_KEY": shared.csrf_key, "ROBOT_SCANNER_NAME_PREFIX": shared.scan_robot_prefix},
        "jobservice": dict(component_secrets),
        "registryctl": dict(component_secrets),
        "registry": {"REGISTRY_HTTP_SECRET": shared.registry_http_secret},
    }


def with_shared_secrets(document: dict, shared: SharedSecretValues) -> dict:
    """The override with each service's shared values merged into its `environment`."""
    services = dict(document["services"])
    for name, environment in shared_secret_environment(shared).items():
        service = services.get(name, {})
        services[name] = {**service, "environment": {**service.get("environment", {}), **environment}}
    return {**document, "services": services}
