"""Typed, validated settings for one harbor-cache stack.

One idea, read top to bottom (the Settings record and the one function that fills it, collecting every
problem before it raises), so it runs a little past ~400 lines rather than being split.

Everything the program needs from configuration is read, checked and frozen here before any
resource is registered: a bad value stops the program with every problem listed, each naming its
key, the value (never for secrets) and what is accepted.

Defaults of scalar keys live only in Pulumi.yaml (read from there, because Pulumi does not apply
them under mocks or in the offline renderer); defaults of structured keys live only here.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from components.settings.config_reader import PROJECT, ConfigReader, Problem, Secret, SettingsError
from components.settings.example_values import (
    refuse_documentation_cidrs,
    refuse_example_email,
    refuse_placeholder_digest,
)
from components.settings.instance_types import read_instance_type
from components.settings.namespaces import refuse_foreign_keys
from components.settings.oidc import OidcSettings, parse_oidc
from components.settings.passwords import admin_password_problem
from components.settings.probe_settings import prewarm_images, smoke_images
from components.settings.readers import (
    AWS_DEFAULT_TAGS,
    SECRET_KEYS,
    read_cidr_list,
    read_default_quota_gb,
    read_kms_key_arn,
    read_tags,
    refuse_plain_secrets,
    refuse_program_default_tags,
)
from components.settings.scale_settings import parse_placement, parse_scale
from components.settings.upstreams import PROXY_CACHE_TYPES, Credential, Upstream, parse_upstreams
from components.settings.validators import (
    AZ_RE,
    EMAIL_RE,
    HARBOR_NAME_RE,
    HARBOR_VERSION_RE,
    SHA256_RE,
    SUBNET_RE,
    is_world,
    validate_api_url,
    validate_cidr,
    validate_dns_name,
    validate_gc_cron,
    validate_project_name,
)

# Re-exported: the rest of the program and the tests know these as settings' names.
__all__ = [
    "HARBOR_NAME_RE",
    "PROJECT",
    "PROXY_CACHE_TYPES",
    "Credential",
    "OidcSettings",
    "Problem",
    "Secret",
    "Settings",
    "SettingsError",
    "Upstream",
    "is_world",
    "load_settings",
    "parse_settings",
    "validate_api_url",
    "validate_cidr",
    "validate_dns_name",
    "validate_gc_cron",
    "validate_project_name",
]
PROJECT_FILE = Path(__file__).resolve().parents[2] / "Pulumi.yaml"
# The oldest Harbor accepted, as (minor, patch) of v2: see parse_settings' harborVersion check.
MIN_HARBOR_VERSION = (15, 1)
# Keys Pulumi.yaml cannot declare: objects and lists of objects, and an optional key without default.
UNDECLARED_KEYS = (
    "upstreams",
    "upstreamCredentials",
    "oidc",
    "tags",
    "adminPassword",
    "metricsAllowedCidrs",
    "smokeImages",
    "prewarm",
    "availabilityZones",
    "subnetIds",
)

SNAPSHOT_RE = re.compile(r"^snap-(?:[0-9a-f]{8}|[0-9a-f]{17})\Z")


@dataclass(frozen=True)
class Settings:
    stack: str
    region: str
    hostname: str
    zone_name: str
    instance_type: str
    availability_zone: str
    subnet_id: str
    root_volume_size_gb: int
    data_volume_size_gb: int
    allowed_cidrs: tuple[str, ...]
    allow_public_access: bool
    ssh_allowed_cidrs: tuple[str, ...]
    ssh_user: str
    acme_email: str
    acme_staging: bool
    harbor_version: str
    # The optional pin ("" when unset); the VM gets the signed digest (components/vm/installer_signature.py).
    harbor_installer_sha256: str
    traefik_version: str
    admin_password: Secret | None
    snapshot_retention_days: int
    gc_schedule: str
    upstreams: tuple[Upstream, ...]
    oidc: OidcSettings | None
    traefik_image_digest: str = ""
    harbor_release_base_url: str = "https://github.com/goharbor/harbor/releases/download"
    verify_installer_signature: bool = True
    mirror_ca_file: str = ""
    mirror_fail_closed: bool = False
    kms_key_arn: str = ""
    harbor_api_url: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    data_volume_snapshot_id: str = ""
    alarm_email: str = ""
    alarm_disk_used_percent: int = 85
    alarm_harbor_unhealthy_minutes: int = 5
    metrics_allowed_cidrs: tuple[str, ...] = ()
    # (upstream name, "<project>/<repository>:<tag>") pulled by the smoke step; prewarm paths likewise.
    smoke_images: tuple[tuple[str, str], ...] = ()
    prewarm: tuple[str, ...] = ()
    prewarm_interval_hours: int = 6
    stack_id: str = ""  # <organization>/<project>/<stack>: how metrics, alarms and snapshot tags name it (issue 19)
    # Issue 13: how many Harbor nodes, where the registry's blobs, the database and Redis live.
    replicas: int = 1
    storage: str = "ebs"
    storage_redirect: bool = False
    external_services: bool = False
    database_multi_az: bool = False
    database_instance_class: str = "db.t4g.small"
    database_backup_retention_days: int = 7
    redis_node_type: str = "cache.t4g.micro"
    # replicas > 1: the nodes' AZs (default subnets there) or their subnets, used round-robin.
    availability_zones: tuple[str, ...] = ()
    subnet_ids: tuple[str, ...] = ()

    @property
    def high_availability(self) -> bool:
        """Several Harbor nodes behind an Application Load Balancer (replicas > 1) instead of one VM behind Traefik."""
        return self.replicas > 1

    @property
    def url(self) -> str:
        return f"https://{self.hostname}"

    @property
    def api_url(self) -> str:
        """Where `pulumi up` reaches Harbor's API: the public URL, or a tunnel through SSH."""
        return self.harbor_api_url or self.url

    @property
    def data_mount(self) -> str:
        """Where the data volume is mounted; Harbor's data_volume and Traefik's certificates live here."""
        return "/data"


def project_defaults(path: Path = PROJECT_FILE) -> dict[str, Any]:
    """Scalar defaults as declared in Pulumi.yaml, the one place they are written."""
    declared = yaml.safe_load(path.read_text())["config"]
    return {key: spec["default"] for key, spec in declared.items() if isinstance(spec, dict) and "default" in spec}


def declared_keys(path: Path = PROJECT_FILE) -> tuple[str, ...]:
    return (*yaml.safe_load(path.read_text())["config"], *UNDECLARED_KEYS)


def _is_cache_or_loopback(host: str | None, hostname: str) -> bool:
    if host == hostname or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def parse_settings(
    raw: Mapping[str, Any],
    stack: str,
    region: str | None,
    defaults: Mapping[str, Any] | None = None,
    plain_keys: Collection[str] = (),
    foreign: Mapping[str, Any] | None = None,
    organization: str = "",
) -> Settings:
    """Builds Settings from raw config values (keys without the project prefix) or raises SettingsError.

    `plain_keys`: the keys the stack holds unencrypted (load_settings and the offline renderer know
    them); a secret key among them is refused. `foreign`: the stack's keys outside the project's
    namespace (namespace:key), checked for a mistyped namespace and provider-only credentials.
    """
    reader = ConfigReader(raw, project_defaults() if defaults is None else defaults, SECRET_KEYS)
    refuse_plain_secrets(reader, plain_keys)
    known = set(declared_keys())
    for key in sorted(set(raw) - known):
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        reader.fail(key, f"is not a setting of this project{hint} Accepted: {', '.join(sorted(known))}")
    refuse_foreign_keys(reader, foreign or {}, tuple(known))
    # pulumi-aws merges aws:defaultTags into every resource's tags (components/settings/readers.py).
    refuse_program_default_tags(reader, (foreign or {}).get(AWS_DEFAULT_TAGS))

    if not region:
        reader.fail("aws:region", "is required (pulumi config set aws:region eu-central-1)")
        region = ""
    hostname = reader.string("hostname", required=True)
    zone = reader.string("zoneName", required=True).rstrip(".")
    if hostname:
        problem = validate_dns_name(hostname)
        if problem:
            reader.fail("hostname", f"{hostname!r} {problem}")
        elif zone and not (hostname == zone or hostname.endswith("." + zone)):
            reader.fail("hostname", f"{hostname!r} is not inside zoneName {zone!r}; accepted: {zone} or a name under it")
    if zone and validate_dns_name(zone):
        reader.fail("zoneName", f"{zone!r} {validate_dns_name(zone)}")

    instance_type = read_instance_type(reader)

    availability_zone = reader.string("availabilityZone") or (f"{region}a" if region else "")
    if availability_zone and not AZ_RE.match(availability_zone):
        reader.fail("availabilityZone", f"{availability_zone!r} is not an availability zone name (e.g. eu-central-1a)")
    elif region and availability_zone and not availability_zone.startswith(region):
        reader.fail("availabilityZone", f"{availability_zone!r} is not in region {region!r}")
    subnet_id = reader.string("subnetId")
    if subnet_id and not SUBNET_RE.match(subnet_id):
        reader.fail("subnetId", f"{subnet_id!r} is not a subnet id (subnet-0123abcd...)")

    allow_public = reader.boolean("allowPublicAccess")
    allowed = read_cidr_list(reader, "allowedCidrs", allow_public, "set allowPublicAccess: true if you really mean it")
    ssh_allowed = read_cidr_list(reader, "sshAllowedCidrs", False, "SSH is never opened to the world; list your addresses")
    ssh_user = reader.string("sshUser", required=True)
    if ssh_user and not re.match(r"^[a-z_][a-z0-9_-]{0,31}\Z", ssh_user):
        reader.fail("sshUser", f"{ssh_user!r} is not a Linux user name")

    acme_email = reader.string("acmeEmail", required=True)
    if acme_email and not EMAIL_RE.match(acme_email):
        reader.fail("acmeEmail", f"{acme_email!r} is not an e-mail address")
    elif "$" in acme_email:
        # The address lands in Traefik's command in the compose override, where compose interpolates `$`.
        reader.fail("acmeEmail", f"{acme_email!r} contains '$', which docker compose would interpolate; accepted: no '$'")
    else:
        refuse_example_email(reader, "acmeEmail", acme_email)

    version = reader.string("harborVersion", required=True)
    version_match = HARBOR_VERSION_RE.match(version)
    if version and not version_match:
        reader.fail("harborVersion", f"{version!r} is not a Harbor release tag (e.g. v2.15.2)")
    elif version_match and (int(version_match.group(1)), int(version_match.group(2))) < MIN_HARBOR_VERSION:
        # v2.15.0 sends no User-Agent to Docker Hub and cannot proxy it (goharbor/harbor#23025, fixed in v2.15.1).
        reader.fail("harborVersion", f"{version!r} is too old; accepted: v2.15.1 or newer (v2.15.0 cannot proxy Docker Hub)")
    # Optional: the signed digest is read from Harbor's Sigstore bundle (components/vm/installer_signature.py).
    sha256 = reader.string("harborInstallerSha256").lower()
    if sha256 and not SHA256_RE.match(sha256):
        reader.fail("harborInstallerSha256", f"{sha256!r} is not a sha256 hex digest (64 hex characters)")
    refuse_placeholder_digest(reader, sha256, version)
    verify_signature = reader.boolean("verifyInstallerSignature")
    if not verify_signature and not sha256:
        reader.fail(
            "harborInstallerSha256",
            "is required when verifyInstallerSignature is false: the sha256 of an installer whose signature you "
            "checked by hand (docs/operate.md, Harbor's installer)",
        )
    release_base_url = reader.string("harborReleaseBaseUrl", required=True).rstrip("/")
    # http is enough for integrity (the bundle's signature and the signed sha256 decide), and lets tests serve on loopback.
    parts = urlsplit(release_base_url)
    if release_base_url and (parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment):
        reader.fail(
            "harborReleaseBaseUrl",
            f"{release_base_url!r} is not an http(s) URL without query; accepted: a base under which "
            "<version>/harbor-offline-installer-<version>.tgz(.sigstore.json) lie, such as "
            "https://github.com/goharbor/harbor/releases/download",
        )

    traefik_version = reader.string("traefikVersion", required=True)
    if traefik_version and not re.match(r"^v3\.\d+(\.\d+)?\Z", traefik_version):
        reader.fail("traefikVersion", f"{traefik_version!r} is not a Traefik v3 tag (e.g. v3.6 or v3.6.2)")
    traefik_digest = reader.string("traefikImageDigest")
    if traefik_digest and not re.match(r"^sha256:[0-9a-f]{64}\Z", traefik_digest):
        reader.fail("traefikImageDigest", f"{traefik_digest!r} is not an image digest; accepted: sha256:<64 hex digits> or empty")

    password = reader.raw.get("adminPassword")
    if password is not None:
        problem = admin_password_problem(password)
        if problem:
            reader.fail("adminPassword", f"{problem}; value not shown: secret")

    gc_schedule = reader.string("gcSchedule", required=True)
    if gc_schedule and validate_gc_cron(gc_schedule):
        reader.fail("gcSchedule", f"{gc_schedule!r} {validate_gc_cron(gc_schedule)}")

    harbor_api_url = reader.string("harborApiUrl")
    if harbor_api_url and validate_api_url(harbor_api_url):
        reader.fail("harborApiUrl", f"{harbor_api_url!r} {validate_api_url(harbor_api_url)}")
    elif harbor_api_url and not _is_cache_or_loopback(urlsplit(harbor_api_url).hostname, hostname):
        # `pulumi up` sends the admin password there: only the cache itself, or a tunnel to it.
        reader.fail(
            "harborApiUrl",
            f"{harbor_api_url!r} points at another host; accepted: https://{hostname or '<hostname>'}[:port] "
            "or a loopback address (an SSH tunnel to the VM)",
        )

    mirror_ca_file = reader.string("mirrorCaFile")
    if mirror_ca_file and not mirror_ca_file.startswith("/"):
        reader.fail("mirrorCaFile", f"{mirror_ca_file!r} is not an absolute path on the nodes (e.g. /etc/pki/harbor-ca.crt)")

    # Only read when the data volume is created: on an existing stack it would replace the
    # protected volume, which Pulumi refuses (see docs/operate.md, Restore).
    snapshot_id = reader.string("dataVolumeSnapshotId")
    if snapshot_id and not SNAPSHOT_RE.match(snapshot_id):
        reader.fail("dataVolumeSnapshotId", f"{snapshot_id!r} is not an EBS snapshot id (snap-0123abcd..., 8 or 17 hex digits)")

    alarm_email = reader.string("alarmEmail")
    if alarm_email and not EMAIL_RE.match(alarm_email):
        reader.fail("alarmEmail", f"{alarm_email!r} is not an e-mail address (or leave it empty: no e-mail subscription)")
    elif alarm_email:
        refuse_example_email(reader, "alarmEmail", alarm_email)

    # Optional, default none: Harbor's metrics port (plain HTTP) gets no ingress rule at all.
    metrics_cidrs = reader.structured("metricsAllowedCidrs", [])
    if not isinstance(metrics_cidrs, list):
        reader.fail("metricsAllowedCidrs", f"{metrics_cidrs!r} is not a list of CIDRs")
        metrics_cidrs = []
    for item in metrics_cidrs:
        problem = validate_cidr(item)
        if problem:
            reader.fail("metricsAllowedCidrs", f"{item!r} {problem}")
        elif is_world(item):
            reader.fail("metricsAllowedCidrs", f"{item!r} opens metrics (plain HTTP) to the internet; list your Prometheus")
        else:
            refuse_documentation_cidrs(reader, "metricsAllowedCidrs", (item,))

    upstreams = parse_upstreams(reader, read_default_quota_gb(reader))
    settings_values = dict(
        metrics_allowed_cidrs=tuple(metrics_cidrs),
        smoke_images=smoke_images(reader, upstreams),
        prewarm=prewarm_images(reader, upstreams),
        prewarm_interval_hours=reader.integer("prewarmIntervalHours", 1, 168),
        data_volume_snapshot_id=snapshot_id,
        alarm_email=alarm_email,
        alarm_disk_used_percent=reader.integer("alarmDiskUsedPercent", 50, 99),
        alarm_harbor_unhealthy_minutes=reader.integer("alarmHarborUnhealthyMinutes", 2, 1440),
        **(scale := parse_scale(reader)),
        **parse_placement(reader, region, availability_zone, subnet_id, scale["replicas"]),
        harbor_api_url=harbor_api_url.rstrip("/"),
        mirror_ca_file=mirror_ca_file,
        mirror_fail_closed=reader.boolean("mirrorFailClosed"),
        root_volume_size_gb=reader.integer("rootVolumeSizeGb", 20, 1024),
        data_volume_size_gb=reader.integer("dataVolumeSizeGb", 20, 16384),
        snapshot_retention_days=reader.integer("snapshotRetentionDays", 1, 365),
        acme_staging=reader.boolean("acmeStaging"),
        upstreams=upstreams,
        oidc=parse_oidc(reader),
        tags=read_tags(reader),
        kms_key_arn=read_kms_key_arn(reader, region),
    )
    if reader.problems:
        raise SettingsError(reader.problems)
    return Settings(
        stack=stack,
        stack_id=f"{organization}/{PROJECT}/{stack}" if organization else stack,
        region=region,
        hostname=hostname,
        zone_name=zone,
        instance_type=instance_type,
        availability_zone=availability_zone,
        subnet_id=subnet_id,
        allowed_cidrs=allowed,
        allow_public_access=allow_public,
        ssh_allowed_cidrs=ssh_allowed,
        ssh_user=ssh_user,
        acme_email=acme_email,
        harbor_version=version,
        harbor_installer_sha256=sha256,
        harbor_release_base_url=release_base_url,
        verify_installer_signature=verify_signature,
        traefik_version=traefik_version,
        traefik_image_digest=traefik_digest,
        admin_password=Secret(password) if password is not None else None,
        gc_schedule=gc_schedule,
        **settings_values,
    )


def load_settings() -> Settings:
    """Reads this stack's configuration from the Pulumi runtime; registers nothing."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    prefix = f"{PROJECT}:"
    keys = {*runtime_config.CONFIG.get(), *runtime_config.get_config_env()}
    raw = {key[len(prefix) :]: runtime_config.get_config(key) for key in keys if key.startswith(prefix)}
    foreign = {key: runtime_config.get_config(key) for key in keys if not key.startswith(prefix)}
    region = runtime_config.get_config("aws:region") or os.environ.get("AWS_REGION")
    # The engine names the keys whose values were encrypted in the stack (`--secret`): the language
    # host hands them to set_all_config, and older hosts through PULUMI_CONFIG_SECRET_KEYS
    # (pulumi sdk/python/lib/pulumi/runtime/config.py: is_config_secret, get_config_secret_keys_env).
    env_secret = set(runtime_config.get_config_secret_keys_env())
    plain = {
        key[len(prefix) :]
        for key in keys
        if key.startswith(prefix) and not runtime_config.is_config_secret(key) and key not in env_secret
    }
    org = pulumi.get_organization()
    return parse_settings(raw, stack=pulumi.get_stack(), region=region, plain_keys=plain, foreign=foreign, organization=org)
