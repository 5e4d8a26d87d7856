"""Renders every file that lands on the Harbor VM, from settings to text.

Pure functions: the remote commands deploy exactly what `python -m components.render` shows a
reviewer. Structured files are built as data and serialised, never templated as strings.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass
from pathlib import Path

import yaml

from components.settings import Settings

FILES_DIR = Path(__file__).resolve().parent.parent / "files"

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
# The Application Load Balancer's idle timeout in HA mode (replicas > 1): components/harbor_load_balancer.py
# sets the ALB's attribute from this value (IDLE_TIMEOUT_SECONDS, where the reasons for 900 are); it
# lives here so each node's nginx is rendered from the same number without importing the AWS component.
LOAD_BALANCER_IDLE_TIMEOUT_SECONDS = 900
CERTIFICATE_RESOLVER = "letsencrypt"
# Traefik v3.6 defaults (pkg/config/static/static_config.go): readTimeout 60s for the whole request
# *including its body*, idleTimeout 180s, writeTimeout none. 60s cuts a blob upload slower than
# ~1 MB/s per 60 MB; 600s lets a 1 GB layer in at ~2 MB/s while a stalled or slow-loris request
# still ends. The write timeout stays off: a client downloading a multi-GB layer slowly is normal.
TRAEFIK_READ_TIMEOUT = "600s"
TRAEFIK_IDLE_TIMEOUT = "180s"
# Docker's json-file driver keeps Traefik's output (access log included) to 5 x 10 MB.
CONTAINER_LOGGING = {"driver": "json-file", "options": {"max-size": "10m", "max-file": "5"}}
# Harbor's own logs (every component through its syslog container) go to /var/log/harbor on the
# root disk; its logrotate runs hourly (goharbor/harbor make/photon/log/Dockerfile: cron.hourly)
# and compresses: 10 files of 50 MB per component are kept, not 50 x 200 MB.
HARBOR_LOG_ROTATE_COUNT = 10
HARBOR_LOG_ROTATE_SIZE = "50M"
HARBOR_LOG_DIR = "/var/log/harbor"
LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
# Scripts in files/ and the order the install runs them in.
SCRIPTS = ("install-docker.sh", "harbor-user.sh", "data-volume.sh", "install-harbor.sh", "start-harbor.sh", "wait-healthy.sh")


@dataclass(frozen=True)
class HarborSecrets:
    """Plain values of the secrets that go into harbor.yml (kept out of repr)."""

    admin_password: str
    database_password: str
    # externalServices only: RDS's master password and ElastiCache's AUTH token.
    external_database_password: str = ""
    redis_password: str = ""

    def __repr__(self) -> str:
        return "HarborSecrets(***)"


@dataclass(frozen=True)
class SharedSecretValues:
    """What every Harbor node must hold identically in HA mode (replicas > 1), generated once by
    components/harbor_shared_secrets.py. Harbor's prepare (v2.15.2) would otherwise make each of
    these per node, and per run for the env values. Plain values: kept out of repr.
    """

    # /data/secret/keys/secretkey: encrypts registry credentials stored in the shared database.
    secret_key: str
    # /data/secret/core/private_key.pem and /data/secret/registry/root.crt: core signs registry
    # tokens with the key, every node's registry verifies them with the certificate.
    token_private_key_pem: str
    token_certificate_pem: str
    # CORE_SECRET / JOBSERVICE_SECRET: core, jobservice and registryctl authenticate each other.
    core_secret: str
    jobservice_secret: str
    # CSRF_KEY: the portal's CSRF token must verify on whichever node the load balancer picks.
    csrf_key: str
    # REGISTRY_HTTP_SECRET: signs the registry's upload state (distribution http.secret).
    registry_http_secret: str
    # ROBOT_SCANNER_NAME_PREFIX: names of the scan robots core keeps in the shared database.
    scan_robot_prefix: str
    # harbor.yml's harbor_admin_password: the same on every node (only the first core that meets
    # the empty database applies it, and the provider logs in with it).
    admin_password: str

    def __repr__(self) -> str:
        return "SharedSecretValues(***)"


def cloud_init() -> dict:
    """User data: no secret in it. The VM makes its own SSH host key and prints the public half on
    its console, where the deploy reads and pins it (components/host_key_provider.py).

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


def harbor_config_version(harbor_version: str) -> str:
    """The `_version` harbor.yml carries: the release's minor line (v2.15.2 -> 2.15.0)."""
    major, minor, _patch = harbor_version.lstrip("v").split(".")
    return f"{major}.{minor}.0"


# Harbor v2.15.2 src/jobservice/logger: known_loggers.go registers DB with a logger, a sweeper and a
# getter (DBGetter.Retrieve reads the job_log table through Harbor's ORM, i.e. whatever database
# core and jobservice use, external_database included); base.go GetLogDataGetter takes the first
# logger with a getter in sorted name order, so with DB configured logs are read from the database;
# sweeper/db_sweeper.go deletes job_log rows older than logger_sweeper_duration days once the job
# context's DB init completed (job/impl/context.go initDBCompleted -> PrepareDBSweep).
SINGLE_VM_JOB_LOGGERS = ["STD_OUTPUT", "FILE"]
# HA: core asks its own node's jobservice for a job's log (core env JOBSERVICE_URL; FILE's getter,
# logger/getter/file_getter.go Retrieve, reads /var/log/jobs on that node only), so a log written
# to FILE on the node that ran the job is a 404 through the load balancer. In the shared database
# every node finds it. No FILE: nothing would read it, and it would only fill the node's disk.
HA_JOB_LOGGERS = ["STD_OUTPUT", "DB"]


def job_loggers(settings: Settings) -> list[str]:
    """harbor.yml's jobservice.job_loggers: the shared database in HA, files on the single VM."""
    return list(HA_JOB_LOGGERS if settings.high_availability else SINGLE_VM_JOB_LOGGERS)


def harbor_yml(settings: Settings, secrets: HarborSecrets) -> dict:
    """harbor.yml as data: plain HTTP on 8080 behind Traefik, no https block, public URL via external_url."""
    return {
        "hostname": settings.hostname,
        "http": {"port": HARBOR_HTTP_PORT},
        "external_url": settings.url,
        "harbor_admin_password": secrets.admin_password,
        "database": {
            "password": secrets.database_password,
            "max_idle_conns": 100,
            "max_open_conns": 900,
            "conn_max_lifetime": "5m",
            "conn_max_idle_time": 0,
        },
        "data_volume": settings.data_mount,
        "trivy": {
            "ignore_unfixed": False,
            "skip_update": False,
            "skip_java_db_update": False,
            "offline_scan": False,
            "security_check": "vuln",
            "insecure": False,
            "timeout": "5m0s",
        },
        "jobservice": {
            "max_job_workers": 10,
            "max_job_duration_hours": 24,
            "job_loggers": job_loggers(settings),
            "logger_sweeper_duration": 1,
        },
        "notification": {"webhook_job_max_retry": 3, "webhook_job_http_client_timeout": 3},
        "log": {
            "level": "info",
            "local": {
                "rotate_count": HARBOR_LOG_ROTATE_COUNT,
                "rotate_size": HARBOR_LOG_ROTATE_SIZE,
                "location": HARBOR_LOG_DIR,
            },
        },
        "_version": harbor_config_version(settings.harbor_version),
        "proxy": {"http_proxy": "", "https_proxy": "", "no_proxy": "", "components": ["core", "jobservice", "trivy"]},
        "upload_purging": {"enabled": True, "age": "168h", "interval": "24h", "dryrun": False},
        "cache": {"enabled": False, "expire_hours": 24},
        # Prometheus metrics: prepare adds the harbor-exporter service and publishes nginx's 9090 on
        # this host port (docker-compose.yml.jinja `{{metric.port}}:9090`); the security group
        # opens it to metricsAllowedCidrs only (operate_files.METRICS_PORT is the same number).
        "metric": {"enabled": True, "port": HARBOR_METRICS_PORT, "path": "/metrics"},
    }


def render_harbor_yml(settings: Settings, secrets: HarborSecrets, endpoints: DataEndpoints | None = None) -> str:
    document = with_data_services(harbor_yml(settings, secrets), settings, secrets, endpoints or DataEndpoints())
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=1000)


# --- Issue 13 steps 1 and 2: S3 storage, external database and Redis (modes chosen by settings) ---


@dataclass(frozen=True)
class DataEndpoints:
    """Where the external stores are; known only after `pulumi up` created them (placeholders
    for the offline renderer). Nothing secret: the passwords travel in HarborSecrets."""

    bucket: str = "<S3 bucket created by pulumi up>"
    database_host: str = "<RDS endpoint created by pulumi up>"
    redis_host: str = "<ElastiCache endpoint created by pulumi up>"


EXTERNAL_DB_PORT = 5432
EXTERNAL_DB_NAME = "registry"  # the name Harbor's own harbor-db uses
EXTERNAL_DB_USER = "harbor"
EXTERNAL_REDIS_PORT = 6379
# Harbor's core, jobservice and exporter each open a pool on every node, so the database sees up to
# 3 x replicas x max_open_conns. RDS PostgreSQL's default max_connections is
# LEAST(DBInstanceClassMemory / 9531392, 5000): about 200 on the default db.t4g.small (2 GiB, less
# what RDS reserves), of which superuser_reserved_connections and rdsadmin take a few. The budget
# leaves room for those and for an operator's psql session; it is what one VM used before HA
# (3 x 50), so a single VM keeps its 50 per pool.
EXTERNAL_DB_CONNECTION_BUDGET = 150
EXTERNAL_DB_POOLS_PER_NODE = 3  # core, jobservice, exporter
EXTERNAL_DB_MAX_OPEN_CONNS = 50  # what one VM gets: EXTERNAL_DB_CONNECTION_BUDGET // 3
# A pool smaller than this would queue Harbor's own concurrent requests (jobservice alone runs
# max_job_workers = 10 jobs); 8 x 3 x 6 (MAX_REPLICAS) still fits the budget.
EXTERNAL_DB_MIN_OPEN_CONNS = 8
EXTERNAL_DB_MAX_IDLE_CONNS = 10


def external_db_max_open_conns(replicas: int) -> int:
    """max_open_conns per pool: the budget shared by every pool of every node, never below the floor."""
    share = EXTERNAL_DB_CONNECTION_BUDGET // (EXTERNAL_DB_POOLS_PER_NODE * replicas)
    return max(EXTERNAL_DB_MIN_OPEN_CONNS, min(EXTERNAL_DB_MAX_OPEN_CONNS, share))


def s3_region_endpoint(region: str) -> str:
    """The bucket's regional endpoint, for the registry's s3 driver in every commercial region.

    Harbor 2.15.2's registry vendors aws-sdk-go 1.15.11, whose endpoint list has the 15 commercial
    regions of August 2018; distribution's s3 driver refuses any other region ("invalid region
    provided") unless `regionendpoint` is set, and then checks no region at all
    (registry/storage/driver/s3-aws/s3.go FromParameters). With it the driver sends every request
    to this endpoint, path-style (`New`: WithS3ForcePathStyle(true), WithEndpoint), signed with
    SigV4 for `region` (v4auth stays true; the driver refuses v2 signatures on *.amazonaws.com).
    `s3.<region>.amazonaws.com` is S3's regional endpoint in every commercial region, us-east-1
    included (AWS General Reference, "Amazon S3 endpoints"), and S3 still answers path-style
    requests there."""
    return f"https://s3.{region}.amazonaws.com"


def with_data_services(document: dict, settings: Settings, secrets: HarborSecrets, endpoints: DataEndpoints) -> dict:
    """harbor.yml with the blocks of the chosen modes; the default (EBS, local database and Redis)
    comes back unchanged. Shapes from Harbor v2.15.2's harbor.yml.tmpl and prepare's
    utils/configs.py (storage_service, external_database, external_redis)."""
    document = dict(document)
    if settings.storage == "s3":
        document["storage_service"] = {
            # No accesskey/secretkey: distribution's s3 driver then uses the instance role
            # (distribution docs/content/storage-drivers/s3.md). prepare writes each key as
            # `key: value` into the registry's config, so only scalars here.
            "s3": {
                "region": settings.region,
                "regionendpoint": s3_region_endpoint(settings.region),
                "bucket": endpoints.bucket,
                "encrypt": True,
                "secure": True,
                "v4auth": True,
            },
            # prepare copies `disable` into the registry's storage.redirect (templates/registry/config.yml.jinja).
            "redirect": {"disable": not settings.storage_redirect},
        }
    if settings.external_services:
        # prepare reads the local `database` block only when there is no external_database
        # (utils/configs.py): it goes, so its password is not left in the file for nothing.
        document.pop("database", None)
        document["external_database"] = {
            "harbor": {
                "host": endpoints.database_host,
                "port": EXTERNAL_DB_PORT,
                "db_name": EXTERNAL_DB_NAME,
                "username": EXTERNAL_DB_USER,
                "password": secrets.external_database_password,
                # RDS PostgreSQL 15+ forces TLS (rds.force_ssl=1); `require` encrypts without
                # needing the RDS CA bundle inside Harbor's containers.
                "ssl_mode": "require",
                "max_idle_conns": min(EXTERNAL_DB_MAX_IDLE_CONNS, external_db_max_open_conns(settings.replicas)),
                "max_open_conns": external_db_max_open_conns(settings.replicas),
                "conn_max_lifetime": "5m",
                "conn_max_idle_time": 0,
            }
        }
        document["external_redis"] = {
            "host": f"{endpoints.redis_host}:{EXTERNAL_REDIS_PORT}",
            "password": secrets.redis_password,
            # harbor.yml.tmpl: "tls configuration for redis connection, only server-authentication is
            # supported". rootCA empty: ElastiCache's certificate chains to a public CA; prepare
            # skips an empty path (utils/cert.py prepare_trust_ca) but needs the key present.
            "tlsOptions": {"enable": True, "rootCA": ""},
            "registry_db_index": 1,
            "jobservice_db_index": 2,
            "trivy_db_index": 5,
            "idle_timeout_seconds": 30,
        }
    return document


def traefik_command(settings: Settings) -> list[str]:
    """Traefik's static configuration. No API, dashboard or ping: any of them would open Traefik's
    internal entry point on :8080 of the host (static_config.go SetEffectiveConfiguration), where
    Harbor's nginx is published."""
    resolver = f"--certificatesresolvers.{CERTIFICATE_RESOLVER}.acme"
    command = [
        f"--providers.file.filename={TRAEFIK_DYNAMIC_MOUNT}/{Path(TRAEFIK_DYNAMIC_PATH).name}",
        "--providers.file.watch=true",
        "--entrypoints.web.address=:80",
        "--entrypoints.web.http.redirections.entrypoint.to=websecure",
        "--entrypoints.web.http.redirections.entrypoint.scheme=https",
        "--entrypoints.websecure.address=:443",
    ]
    for entrypoint in ("web", "websecure"):
        timeouts = f"--entrypoints.{entrypoint}.transport.respondingtimeouts"
        command += [f"{timeouts}.readtimeout={TRAEFIK_READ_TIMEOUT}", f"{timeouts}.idletimeout={TRAEFIK_IDLE_TIMEOUT}"]
    command += [
        "--log.level=INFO",
        # To stdout (no filePath): bounded by the container's json-file logging options.
        "--accesslog=true",
        f"{resolver}.email={settings.acme_email}",
        f"{resolver}.storage=/certificates/acme.json",
        f"{resolver}.dnschallenge=true",
        f"{resolver}.dnschallenge.provider=route53",
        # lego otherwise asks the zone's authoritative nameservers directly on port 53
        # (challenge/dns01/precheck.go), which the security group does not let out. Route53's
        # provider already waits until the change is INSYNC (lego v4.32.0 providers/dns/route53),
        # so the CA sees the record. Flag: traefik v3.6.9 pkg/provider/acme/provider.go Propagation.
        f"{resolver}.dnschallenge.propagation.disableANSChecks=true",
    ]
    if settings.acme_staging:
        command.append(f"{resolver}.caserver={LETSENCRYPT_STAGING}")
    return command


def traefik_dynamic_config(settings: Settings) -> dict:
    """The file provider's routes: the cache's name on :443 with a Let's Encrypt certificate, to
    Harbor's nginx on the host's loopback. Keys are the yaml tags of traefik v3.6.9
    pkg/config/dynamic/http_config.go (Router, RouterTLSConfig, ServersLoadBalancer, Server)."""
    return {
        "http": {
            "routers": {
                "harbor": {
                    "rule": f"Host(`{settings.hostname}`)",
                    "entryPoints": ["websecure"],
                    "service": "harbor",
                    "tls": {"certResolver": CERTIFICATE_RESOLVER},
                }
            },
            "services": {"harbor": {"loadBalancer": {"servers": [{"url": f"http://{HARBOR_LOOPBACK}"}], "passHostHeader": True}}},
        }
    }


def render_traefik_dynamic_config(settings: Settings) -> str:
    return yaml.safe_dump(traefik_dynamic_config(settings), sort_keys=False, default_flow_style=False, width=1000)


class ComposeOverride(list):
    """A sequence that replaces, not extends, the one in Harbor's compose file: YAML tag `!override`.

    Compose merges `ports` of an override file by union; only `!override` replaces them. The tag came
    with compose-go v2.0.0-rc.3 (commit 38547bf, loader/reset.go), i.e. Docker Compose 2.24.4 or
    later (docs.docker.com/reference/compose-file/merge/). files/install-docker.sh refuses a compose
    older than that, so an older one never reads this file (Ubuntu 24.04's docker-compose-v2 is
    newer: 2.24.6 at release, not verifiable from here).
    """


class ComposeDumper(yaml.SafeDumper):
    pass


ComposeDumper.add_representer(ComposeOverride, lambda dumper, data: dumper.represent_sequence("!override", list(data)))


def traefik_image(settings: Settings) -> str:
    """`traefik:<tag>`, or `traefik:<tag>@sha256:...`: with a digest Docker pulls exactly that image
    and the tag is only a label (distribution reference grammar: name[:tag][@digest])."""
    digest = f"@{settings.traefik_image_digest}" if settings.traefik_image_digest else ""
    return f"traefik:{settings.traefik_version}{digest}"


def metrics_port_binding(settings: Settings) -> str:
    """nginx's metrics port: on every address only when metricsAllowedCidrs lets someone in (the
    security group then admits just them); otherwise on loopback, where the VM's own reporter reads it."""
    address = "" if settings.metrics_allowed_cidrs else "127.0.0.1:"
    return f"{address}{HARBOR_METRICS_PORT}:{HARBOR_METRICS_PORT}"


def compose_override(settings: Settings, zone_id: str) -> dict:
    """docker-compose.override.yml next to Harbor's own compose file: Traefik, and nginx on loopback only."""
    return {
        "services": {
            "traefik": {
                "image": traefik_image(settings),
                "container_name": "traefik",
                "restart": "always",
                "command": traefik_command(settings),
                # With IMDS hop limit 1 only the host network reaches the instance role, which the
                # route53 provider needs for DNS-01; Traefik binds 80/443 on the host itself. No
                # Docker socket: routes come from the file provider.
                "network_mode": "host",
                # AWS_HOSTED_ZONE_ID: lego's route53 provider uses it instead of looking the zone up
                # (ListHostedZonesByName), lego v4.32.0 providers/dns/route53/route53.go getHostedZoneID.
                "environment": {"AWS_REGION": settings.region, "AWS_HOSTED_ZONE_ID": zone_id, "TZ": "UTC"},
                "volumes": [
                    # On the data volume, not a named volume: `down -v` would delete the certificates.
                    f"{settings.data_mount}/traefik:/certificates",
                    f"{TRAEFIK_DYNAMIC_DIR}:{TRAEFIK_DYNAMIC_MOUNT}:ro",
                ],
                "depends_on": ["proxy"],
                "security_opt": ["no-new-privileges:true"],
                "logging": CONTAINER_LOGGING,
            },
            # Harbor's compose publishes nginx (plain HTTP, basic auth) on every address.
            "proxy": {"ports": ComposeOverride([f"{HARBOR_LOOPBACK}:{HARBOR_HTTP_PORT}", metrics_port_binding(settings)])},
        }
    }


def render_compose_override(settings: Settings, zone_id: str, shared: SharedSecretValues | None = None) -> str:
    document = with_registry_redis_tls(with_imds_client_addresses(compose_override(settings, zone_id), settings), settings)
    if settings.high_availability:
        document = with_nginx_keepalive(ha_node_override(document, settings))
    if shared is not None:
        document = with_shared_secrets(document, shared)
    return yaml.dump(document, Dumper=ComposeDumper, sort_keys=False, default_flow_style=False, width=1000)


def with_registry_redis_tls(document: dict, settings: Settings) -> dict:
    """externalServices: the registry talks TLS to ElastiCache. Harbor's template writes
    `redis: enableTLS:` (templates/registry/config.yml.jinja), goharbor/distribution
    v2.8.3-harbor.1 reads `yaml:"enabletls"` (configuration/configuration.go) and yaml.v2 matches
    keys exactly, so from the file TLS stays off (goharbor/harbor#21913). distribution's environment
    override reaches the field by its name (configuration/parser.go overwriteStruct), and the fork's
    configureRedis (registry/handlers/app.go) then dials with redis.DialUseTLS(true)."""
    if not settings.external_services:
        return document
    services = dict(document["services"])
    services["registry"] = {**services.get("registry", {}), "environment": {"REGISTRY_REDIS_ENABLETLS": "true"}}
    return {**document, "services": services}


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


ENVRC_TRAEFIK_KEYS = ("TRAEFIK_VERSION", "ACME_PROVIDER", "ACME_EMAIL")


def envrc(settings: Settings) -> dict[str, str]:
    """The non-secret environment for operators who ssh in (direnv)."""
    return {
        "TZ": "UTC",
        "HARBOR_HOSTNAME": settings.hostname,
        "HARBOR_VERSION": settings.harbor_version,
        "HARBOR_DATA": settings.data_mount,
        "TRAEFIK_VERSION": settings.traefik_version,
        "ACME_PROVIDER": "route53",
        "ACME_EMAIL": settings.acme_email,
        "AWS_REGION": settings.region,
        "COMPOSE_PROJECT_NAME": "harbor",
    }


def render_envrc(settings: Settings) -> str:
    lines = ["# Managed by harbor-cache (pulumi). Non-secret settings of this Harbor host."]
    environment = envrc(settings)
    if settings.high_availability:
        # No Traefik and no ACME on an HA node: the load balancer's ACM certificate is the front.
        environment = {key: value for key, value in environment.items() if key not in ENVRC_TRAEFIK_KEYS}
    lines += [f"export {key}={shlex.quote(value)}" for key, value in environment.items()]
    return "\n".join(lines) + "\n"


def systemd_unit(settings: Settings) -> dict[str, dict[str, str]]:
    return {
        "Unit": {
            "Description": f"Harbor image cache {settings.hostname} (docker compose)",
            "Requires": "docker.service",
            "After": "docker.service network-online.target",
            "Wants": "network-online.target",
            "RequiresMountsFor": settings.data_mount,
        },
        "Service": {
            "Type": "oneshot",
            "RemainAfterExit": "yes",
            "WorkingDirectory": HARBOR_CURRENT,
            "ExecStart": "/usr/bin/docker compose up -d --remove-orphans",
            # Never `down -v`: nothing of Harbor's may live in a volume that a stop deletes.
            "ExecStop": "/usr/bin/docker compose down",
            "TimeoutStartSec": "600",
            "TimeoutStopSec": "300",
        },
        "Install": {"WantedBy": "multi-user.target"},
    }


def docker_dropin(settings: Settings) -> dict[str, dict[str, str]]:
    """docker.service waits for the data volume: its fstab entry has `nofail`, so nothing else
    orders dockerd after it, and after an unclean stop dockerd would restart Harbor's containers
    on the empty mount point."""
    return {"Unit": {"RequiresMountsFor": settings.data_mount}}


def _as_list(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


def render_unit(sections: dict[str, dict[str, str | list[str]]]) -> str:
    """A systemd unit or drop-in: INI sections of key=value lines (a list: the key once per value, as
    for several ExecStart= of a oneshot service)."""
    rendered = []
    for section, entries in sections.items():
        lines = [f"{key}={value}" for key, values in entries.items() for value in _as_list(values)]
        rendered.append("\n".join([f"[{section}]", *lines]))
    return "\n\n".join(rendered) + "\n"


def render_systemd_unit(settings: Settings) -> str:
    return render_unit(with_imds_guard_dependency(systemd_unit(settings), settings))


def render_docker_dropin(settings: Settings) -> str:
    return render_unit(docker_dropin(settings))


def script(name: str) -> str:
    return (FILES_DIR / name).read_text()


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def vm_files(
    settings: Settings, secrets: HarborSecrets, zone_id: str, shared: SharedSecretValues | None = None
) -> dict[str, str]:
    """Every file that lands on the VM (on each node in HA mode, with `shared`), keyed by its path there."""
    files = {
        HARBOR_YML_PATH: render_harbor_yml(settings, secrets),
        COMPOSE_OVERRIDE_PATH: render_compose_override(settings, zone_id, shared),
        TRAEFIK_DYNAMIC_PATH: render_traefik_dynamic_config(settings),
        ENVRC_PATH: render_envrc(settings),
        SYSTEMD_UNIT_PATH: render_systemd_unit(settings),
        DOCKER_DROPIN_PATH: render_docker_dropin(settings),
        **({IMDS_GUARD_PATH: render_imds_guard_unit(settings)} if imds_guarded(settings) else {}),
    }
    if settings.high_availability:
        del files[TRAEFIK_DYNAMIC_PATH]
        files[NGINX_KEEPALIVE_PATH] = render_nginx_keepalive()
        files.update(shared_secret_files(settings, shared) if shared is not None else {})
    return files


def remote_commands() -> dict[str, str]:
    """The scripts the install runs, in order, keyed by name. They are not files on the VM: each
    arrives on the stdin of `sudo bash -s` and is gone when it ends."""
    return {name: script(name) for name in SCRIPTS}


# --- Issue 13, storage: s3: the registry reaches the instance role, no other container does ---
#
# distribution's s3 driver, with no keys in its config, takes the instance role's credentials from
# IMDS. Two of Harbor's containers run it: `registry`, and `registryctl`, which builds the same
# driver from the registry's config.yml and deletes blobs and manifests with it when jobservice's
# garbage collection asks (goharbor/harbor v2.15.2 src/registryctl/config/config.go
# setStorageDriver, src/registryctl/main.go imports storage/driver/s3-aws,
# src/registryctl/api/registry/blob/blob.go). Both sit on Harbor's bridge network, one routed hop
# from IMDS, so the instance's hop limit goes to 2 in this mode (components/harbor_vm.py), and a
# host firewall rule keeps every other bridged container away from IMDS (the role also holds the
# DNS-01 and metrics permissions, and IMDS serves the user data).

# The network Harbor's compose file declares (prepare's docker-compose.yml.jinja `networks: harbor`)
# and the name compose gives it (<project>_<key>; the project is the folder's name, `harbor`).
HARBOR_NETWORK = "harbor"
HARBOR_NETWORK_NAME = "harbor_harbor"
# A fixed subnet, so the registry's address is known to the firewall. Outside Docker's default
# local pools (172.17.0.0/16 .. 172.28.0.0/14 and 192.168.0.0/16; moby
# daemon/libnetwork/ipamutils/utils.go), outside the default VPC (172.31.0.0/16) and the VPC
# wizard's 10.0.0.0/16. It must not overlap the VPC (subnetId's) or anything else the containers
# reach (RDS, ElastiCache): the host would route those addresses into the bridge.
HARBOR_SUBNET = "10.255.254.0/24"
HARBOR_GATEWAY = "10.255.254.1"
# Docker hands addresses to the other containers from ip_range only; a fixed address must lie in the
# subnet, not in the range (moby daemon/libnetwork/ipams/defaultipam: requestAddress checks the
# subnet, getAddress takes a preferred address as is and any other from the range), so the two
# fixed addresses below are never given to another container, whatever the start order.
HARBOR_DYNAMIC_RANGE = "10.255.254.128/25"
# The containers that run distribution's s3 driver, with their fixed addresses: one /31 together,
# so the firewall needs one rule.
IMDS_CLIENTS = {"registry": "10.255.254.2", "registryctl": "10.255.254.3"}
IMDS_CLIENT_BLOCK = "10.255.254.2/31"
IMDS_ADDRESS = "169.254.169.254"
IMDS_GUARD_UNIT = "harbor-imds-guard.service"
IMDS_GUARD_PATH = f"/etc/systemd/system/{IMDS_GUARD_UNIT}"
# dockerd creates DOCKER-USER when it is missing, never flushes it, and puts `-j DOCKER-USER` first
# in FORWARD at every start, so rules there run before Docker's own and outlive dockerd restarts
# (moby daemon/libnetwork/firewall_linux.go setupUserChain, iptables.go NewChain/EnsureJumpRule;
# the same in v24.0.7 .. v28.2.2 libnetwork/firewall_linux.go, which also appended a `-j RETURN`).
DOCKER_USER_CHAIN = "DOCKER-USER"


def imds_guarded(settings: Settings) -> bool:
    """Whether the registry needs the instance role (and the guard that keeps everyone else out)."""
    return settings.storage == "s3"


def imds_guard_rule() -> list[str]:
    """The DOCKER-USER rule: forwarded traffic to IMDS is refused unless it comes from the registry
    or registryctl. DOCKER-USER sees forwarded packets only (FORWARD), so the host and Traefik
    (host network) are untouched, and a container on any Docker network, Harbor's or not, is refused.
    IPv4 only: IMDS's IPv6 endpoint stays off (metadata_options http_protocol_ipv6 is not enabled)."""
    return ["-d", f"{IMDS_ADDRESS}/32", "!", "-s", IMDS_CLIENT_BLOCK, "-j", "REJECT", "--reject-with", "icmp-admin-prohibited"]


def imds_guard_unit(settings: Settings) -> dict[str, dict[str, str | list[str]]]:
    """harbor-imds-guard.service: puts the rule in place, idempotently (-C before -I).

    Ordered before docker.service, not after: at boot dockerd restarts the `restart: always`
    containers itself, after setting up DOCKER-USER and before it reports ready (moby
    daemon/daemon.go restore: initNetworkController, then the restart loop), so a guard started
    after dockerd would leave them a window. Run first, it creates DOCKER-USER the way dockerd would
    (-L, then -N if missing); dockerd keeps the chain and its rules and adds the jump from FORWARD.
    harbor.service requires it; PartOf makes `systemctl restart harbor` (the install's) re-run it.
    No ExecStop: stopping the unit leaves the rule in the kernel, nothing is opened.
    """
    rule = " ".join(imds_guard_rule())
    chain = DOCKER_USER_CHAIN
    return {
        "Unit": {
            "Description": f"Harbor image cache {settings.hostname}: only the registry reaches the instance metadata service",
            "Before": "docker.service harbor.service",
            "PartOf": "harbor.service",
        },
        "Service": {
            "Type": "oneshot",
            "RemainAfterExit": "yes",
            # iptables -w waits for the xtables lock (dockerd may hold it) instead of failing.
            "ExecStart": [
                f"/bin/sh -c 'iptables -w -n -L {chain} >/dev/null 2>&1 || iptables -w -N {chain}'",
                f"/bin/sh -c 'iptables -w -C {chain} {rule} 2>/dev/null || iptables -w -I {chain} {rule}'",
            ],
        },
    }


def render_imds_guard_unit(settings: Settings) -> str:
    return render_unit(imds_guard_unit(settings))


def with_imds_guard_dependency(unit: dict[str, dict[str, str]], settings: Settings) -> dict:
    """harbor.service in s3 mode: needs the guard, and never starts on a `harbor` network of other IPAM.

    Compose reuses an existing network whatever its subnet unless the network carries the config
    hash label that compose 2.31.0+ sets, and only then removes and recreates a diverged one
    (docker/compose v2.40.3 pkg/compose/create.go resolveOrCreateNetwork, removeDivergedNetwork;
    commit c21d4cf, first in v2.31.0). A network made in ebs mode, by an older compose or without
    the label, would be reused, and the registry's fixed address refused as outside its subnet. So
    before `up`, a `harbor_harbor` network of another subnet is taken down with the project
    (`docker compose down`: containers and networks; no volumes, Harbor's data is on the data volume).
    `down` finds the network by the project's labels whatever its IPAM (pkg/compose/down.go
    ensureNetworksDown, removeNetwork). `systemctl restart harbor` runs ExecStop (`down`) first
    anyway; this covers a start while harbor.service was inactive or failed and dockerd had
    restarted the containers on the old network.
    """
    if not imds_guarded(settings):
        return unit
    unit = {section: dict(entries) for section, entries in unit.items()}
    unit["Unit"]["Requires"] = f"{unit['Unit']['Requires']} {IMDS_GUARD_UNIT}"
    unit["Unit"]["After"] = f"{unit['Unit']['After']} {IMDS_GUARD_UNIT}"
    inspect = f'docker network inspect --format "{{{{range .IPAM.Config}}}}{{{{.Subnet}}}}{{{{end}}}}" {HARBOR_NETWORK_NAME}'
    # `$$` is systemd's escape for a `$` the shell gets (systemd.service(5), "Command lines").
    down = "/usr/bin/docker compose down"
    check = f'subnet=$$(/usr/bin/{inspect} 2>/dev/null) || exit 0; [ "$$subnet" = {HARBOR_SUBNET} ] || {down}'
    service = {}
    for key, value in unit["Service"].items():
        if key == "ExecStart":
            service["ExecStartPre"] = f"/bin/sh -c '{check}'"
        service[key] = value
    unit["Service"] = service
    return unit


def with_imds_client_addresses(document: dict, settings: Settings) -> dict:
    """The compose override in s3 mode: Harbor's network on the fixed subnet, the registry and
    registryctl on their fixed addresses (compose merges these into Harbor's `networks: [harbor]`)."""
    if not imds_guarded(settings):
        return document
    document = {**document, "services": dict(document["services"])}
    for service, address in IMDS_CLIENTS.items():
        document["services"][service] = {"networks": {HARBOR_NETWORK: {"ipv4_address": address}}}
    pool = {"subnet": HARBOR_SUBNET, "ip_range": HARBOR_DYNAMIC_RANGE, "gateway": HARBOR_GATEWAY}
    document["networks"] = {HARBOR_NETWORK: {"ipam": {"config": [pool]}}}
    return document
