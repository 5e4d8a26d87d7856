"""harbor.yml, the input of Harbor's installer (`prepare`), as data: the single VM's defaults and the
blocks of the S3 and external-store modes.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from components.settings.settings import Settings
from components.vm.paths import HARBOR_HTTP_PORT, HARBOR_METRICS_PORT
from components.vm.secret_values import HarborSecrets

# Harbor's own logs (every component through its syslog container) go to /var/log/harbor on the
# root disk; its logrotate runs hourly (goharbor/harbor make/photon/log/Dockerfile: cron.hourly)
# and compresses: 10 files of 50 MB per component are kept, not 50 x 200 MB.
HARBOR_LOG_ROTATE_COUNT = 10
HARBOR_LOG_ROTATE_SIZE = "50M"
HARBOR_LOG_DIR = "/var/log/harbor"


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
