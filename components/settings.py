"""Typed, validated settings for one harbor-cache stack.

Everything the program needs from configuration is read, checked and frozen here before any
resource is registered: a bad value stops the program with every problem listed, each naming its
key, the value (never for secrets) and what is accepted.

Defaults of scalar keys live only in Pulumi.yaml (read from there, because Pulumi does not apply
them under mocks or in the offline renderer); defaults of structured keys live only here.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from components.config_reader import PROJECT, ConfigReader, Problem, Secret, SettingsError
from components.upstreams import PROXY_CACHE_TYPES, Credential, Upstream, parse_upstreams
from components.validators import (
    AZ_RE,
    EMAIL_RE,
    HARBOR_NAME_RE,
    HARBOR_VERSION_RE,
    INSTANCE_TYPE_RE,
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
PROJECT_FILE = Path(__file__).resolve().parent.parent / "Pulumi.yaml"
# The oldest Harbor accepted, as (minor, patch) of v2: see parse_settings' harborVersion check.
MIN_HARBOR_VERSION = (15, 1)

SECRET_KEYS = frozenset({"adminPassword", "upstreamCredentials"})
# Keys Pulumi.yaml cannot declare: objects and lists of objects, and an optional key without default.
UNDECLARED_KEYS = ("upstreams", "upstreamCredentials", "oidc", "tags", "harborImports", "adminPassword")

OIDC_DEFAULTS: dict[str, Any] = {
    "name": "dex",
    "clientId": "harbor-cache-oidc-dex",
    "adminGroup": "cluster_admins",
    "groupsClaim": "groups",
    "scope": "openid,profile,email,groups",
    "verifyCert": True,
    "autoOnboard": False,
    "userClaim": "",
}
OIDC_KEYS = ("issuer", *OIDC_DEFAULTS)


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    name: str
    client_id: str
    admin_group: str
    groups_claim: str
    scope: str
    verify_cert: bool
    auto_onboard: bool
    user_claim: str


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
    harbor_installer_sha256: str
    traefik_version: str
    admin_password: Secret | None
    snapshot_retention_days: int
    gc_schedule: str
    upstreams: tuple[Upstream, ...]
    oidc: OidcSettings | None
    mirror_ca_file: str = ""
    mirror_fail_closed: bool = False
    harbor_api_url: str = ""
    harbor_imports: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    # Issue 13, steps 1 and 2: where the registry's blobs, the database and Redis live.
    storage: str = "ebs"
    storage_redirect: bool = False
    external_services: bool = False
    database_multi_az: bool = False
    database_instance_class: str = "db.t4g.small"
    database_backup_retention_days: int = 7
    redis_node_type: str = "cache.t4g.micro"

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


def _cidr_list(reader: ConfigReader, key: str, allow_world: bool, world_hint: str) -> tuple[str, ...]:
    value = reader.structured(key, None)
    if value is None or value == []:
        reader.fail(key, "is required: a non-empty list of CIDRs such as ['203.0.113.0/24']")
        return ()
    if not isinstance(value, list):
        reader.fail(key, f"{value!r} is not a list of CIDRs")
        return ()
    for item in value:
        problem = validate_cidr(item)
        if problem:
            reader.fail(key, f"{item!r} {problem}")
        elif is_world(item) and not allow_world:
            reader.fail(key, f"{item!r} opens the port to the whole internet; {world_hint}")
    return tuple(value)


def _oidc(reader: ConfigReader) -> OidcSettings | None:
    value = reader.structured("oidc", None)
    if value is None:
        return None
    if not isinstance(value, dict):
        reader.fail("oidc", f"{value!r} is not an object with at least issuer")
        return None
    problems_before = len(reader.problems)
    unknown = sorted(set(value) - set(OIDC_KEYS))
    if unknown:
        reader.fail("oidc", f"unknown field(s) {unknown}; accepted: {list(OIDC_KEYS)}")
    merged = {**OIDC_DEFAULTS, **value}
    issuer = merged.get("issuer")
    parts = urlsplit(issuer) if isinstance(issuer, str) else None
    if parts is None or parts.scheme != "https" or not parts.hostname:
        reader.fail("oidc.issuer", f"{issuer!r} is not an https URL of the OIDC issuer (e.g. https://dex.example.com)")
    for name in ("name", "clientId", "adminGroup", "groupsClaim", "scope", "userClaim"):
        if not isinstance(merged[name], str) or (name != "userClaim" and not merged[name]):
            reader.fail(f"oidc.{name}", f"{merged[name]!r} is not a non-empty string")
    if isinstance(merged["scope"], str) and "openid" not in merged["scope"].split(","):
        reader.fail("oidc.scope", f"{merged['scope']!r} lacks 'openid'; accepted: a comma-separated list that includes openid")
    for name in ("verifyCert", "autoOnboard"):
        if not isinstance(merged[name], bool):
            reader.fail(f"oidc.{name}", f"{merged[name]!r} is not a boolean")
    if len(reader.problems) > problems_before:
        return None
    return OidcSettings(
        issuer=issuer.rstrip("/"),
        name=merged["name"],
        client_id=merged["clientId"],
        admin_group=merged["adminGroup"],
        groups_claim=merged["groupsClaim"],
        scope=merged["scope"],
        verify_cert=merged["verifyCert"],
        auto_onboard=merged["autoOnboard"],
        user_claim=merged["userClaim"],
    )


def _tags(reader: ConfigReader) -> dict[str, str]:
    value = reader.structured("tags", {})
    if not isinstance(value, dict):
        reader.fail("tags", f"{value!r} is not an object of string keys and values")
        return {}
    for key, item in value.items():
        if not isinstance(item, str) or len(key) > 128 or len(item) > 256 or key.lower().startswith("aws:"):
            reader.fail(f"tags.{key}", f"{item!r}: keys 1..128 chars not starting with 'aws:', string values up to 256 chars")
    return {str(k): str(v) for k, v in value.items()}


STORAGE_MODES = ("ebs", "s3")
DB_INSTANCE_CLASS_RE = re.compile(r"^db\.[a-z][a-z0-9-]*\.[a-z0-9]+$")
CACHE_NODE_TYPE_RE = re.compile(r"^cache\.[a-z][a-z0-9-]*\.[a-z0-9]+$")


def _data_services(reader: ConfigReader) -> dict[str, Any]:
    """storage / externalServices and their sizing keys (issue 13, steps 1 and 2)."""
    storage = reader.string("storage", required=True)
    if storage not in STORAGE_MODES:
        reader.fail("storage", f"{storage!r} is not a storage mode; accepted: {', '.join(STORAGE_MODES)}")
    db_class = reader.string("databaseInstanceClass", required=True)
    if db_class and not DB_INSTANCE_CLASS_RE.match(db_class):
        reader.fail("databaseInstanceClass", f"{db_class!r} is not an RDS instance class (e.g. db.t4g.small, db.m7g.large)")
    node_type = reader.string("redisNodeType", required=True)
    if node_type and not CACHE_NODE_TYPE_RE.match(node_type):
        reader.fail("redisNodeType", f"{node_type!r} is not an ElastiCache node type (e.g. cache.t4g.micro, cache.m7g.large)")
    redirect = reader.boolean("storageRedirect")
    if redirect and storage != "s3":
        reader.fail("storageRedirect", f"true needs storage: s3 (presigned URLs exist only for S3), storage is {storage!r}")
    return dict(
        storage=storage,
        storage_redirect=redirect,
        external_services=reader.boolean("externalServices"),
        database_multi_az=reader.boolean("databaseMultiAz"),
        database_instance_class=db_class,
        # RDS accepts 1..35 days of automated backups; 0 (no backups) is refused on purpose.
        database_backup_retention_days=reader.integer("databaseBackupRetentionDays", 1, 35),
        redis_node_type=node_type,
    )


def parse_settings(raw: Mapping[str, Any], stack: str, region: str | None, defaults: Mapping[str, Any] | None = None) -> Settings:
    """Builds Settings from raw config values (keys without the project prefix) or raises SettingsError."""
    reader = ConfigReader(raw, project_defaults() if defaults is None else defaults, SECRET_KEYS)
    known = set(declared_keys())
    for key in sorted(set(raw) - known):
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        reader.fail(key, f"is not a setting of this project{hint} Accepted: {', '.join(sorted(known))}")

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

    instance_type = reader.string("instanceType", required=True)
    match = INSTANCE_TYPE_RE.match(instance_type)
    if not match:
        reader.fail("instanceType", f"{instance_type!r} is not an EC2 instance type (e.g. t3.large)")
    elif "g" in match.group(3) or match.group(1) in ("a", "im", "is"):
        reader.fail(
            "instanceType",
            f"{instance_type!r} is an Arm (Graviton) type; Harbor's offline installer ships amd64 images: "
            "use e.g. t3.large or m7i.large",
        )
    elif match.group(4) in ("nano", "micro", "small"):
        reader.fail(
            "instanceType",
            f"{instance_type!r} is too small for Harbor; accepted: at least 2 vCPU and 4 GiB (e.g. t3.medium, t3.large)",
        )

    availability_zone = reader.string("availabilityZone") or (f"{region}a" if region else "")
    if availability_zone and not AZ_RE.match(availability_zone):
        reader.fail("availabilityZone", f"{availability_zone!r} is not an availability zone name (e.g. eu-central-1a)")
    elif region and availability_zone and not availability_zone.startswith(region):
        reader.fail("availabilityZone", f"{availability_zone!r} is not in region {region!r}")
    subnet_id = reader.string("subnetId")
    if subnet_id and not SUBNET_RE.match(subnet_id):
        reader.fail("subnetId", f"{subnet_id!r} is not a subnet id (subnet-0123abcd...)")

    allow_public = reader.boolean("allowPublicAccess")
    allowed = _cidr_list(reader, "allowedCidrs", allow_public, "set allowPublicAccess: true if you really mean it")
    ssh_allowed = _cidr_list(reader, "sshAllowedCidrs", False, "SSH is never opened to the world; list your addresses")
    ssh_user = reader.string("sshUser", required=True)
    if ssh_user and not re.match(r"^[a-z_][a-z0-9_-]{0,31}$", ssh_user):
        reader.fail("sshUser", f"{ssh_user!r} is not a Linux user name")

    acme_email = reader.string("acmeEmail", required=True)
    if acme_email and not EMAIL_RE.match(acme_email):
        reader.fail("acmeEmail", f"{acme_email!r} is not an e-mail address")

    version = reader.string("harborVersion", required=True)
    version_match = HARBOR_VERSION_RE.match(version)
    if version and not version_match:
        reader.fail("harborVersion", f"{version!r} is not a Harbor release tag (e.g. v2.15.2)")
    elif version_match and (int(version_match.group(1)), int(version_match.group(2))) < MIN_HARBOR_VERSION:
        # v2.15.0 sends no User-Agent to Docker Hub and cannot proxy it (goharbor/harbor#23025, fixed in v2.15.1).
        reader.fail("harborVersion", f"{version!r} is too old; accepted: v2.15.1 or newer (v2.15.0 cannot proxy Docker Hub)")
    sha256 = reader.string("harborInstallerSha256", required=True).lower()
    if sha256 and not SHA256_RE.match(sha256):
        reader.fail("harborInstallerSha256", f"{sha256!r} is not a sha256 hex digest (64 hex characters)")

    traefik_version = reader.string("traefikVersion", required=True)
    if traefik_version and not re.match(r"^v3\.\d+(\.\d+)?$", traefik_version):
        reader.fail("traefikVersion", f"{traefik_version!r} is not a Traefik v3 tag (e.g. v3.6 or v3.6.2)")

    password = reader.raw.get("adminPassword")
    if password is not None and (
        not isinstance(password, str)
        or len(password) < 8
        or not re.search(r"[A-Z]", password)
        or not re.search(r"[a-z]", password)
        or not re.search(r"[0-9]", password)
    ):
        reader.fail(
            "adminPassword",
            "does not meet Harbor's rule (8+ characters with upper case, lower case and a digit); value not shown: secret",
        )
    elif password is not None and ("$" in password or "\n" in password or len(password) > 128):
        # `$` is interpolated by docker compose in the env files that Harbor's prepare generates.
        reader.fail("adminPassword", "must not contain '$' or a line break, at most 128 characters; value not shown: secret")

    gc_schedule = reader.string("gcSchedule", required=True)
    if gc_schedule and validate_gc_cron(gc_schedule):
        reader.fail("gcSchedule", f"{gc_schedule!r} {validate_gc_cron(gc_schedule)}")

    harbor_api_url = reader.string("harborApiUrl")
    if harbor_api_url and validate_api_url(harbor_api_url):
        reader.fail("harborApiUrl", f"{harbor_api_url!r} {validate_api_url(harbor_api_url)}")
    imports = reader.structured("harborImports", {})
    if not isinstance(imports, dict) or not all(
        isinstance(k, str) and re.match(r"^(registry|project)/\S+$", k) and isinstance(v, str) and v for k, v in imports.items()
    ):
        reader.fail("harborImports", f"{imports!r} must map 'registry/<name>' or 'project/<name>' to the Harbor name to import")
        imports = {}

    mirror_ca_file = reader.string("mirrorCaFile")
    if mirror_ca_file and not mirror_ca_file.startswith("/"):
        reader.fail("mirrorCaFile", f"{mirror_ca_file!r} is not an absolute path on the nodes (e.g. /etc/pki/harbor-ca.crt)")

    settings_values = dict(
        **_data_services(reader),
        harbor_api_url=harbor_api_url.rstrip("/"),
        harbor_imports=imports,
        mirror_ca_file=mirror_ca_file,
        mirror_fail_closed=reader.boolean("mirrorFailClosed"),
        root_volume_size_gb=reader.integer("rootVolumeSizeGb", 20, 1024),
        data_volume_size_gb=reader.integer("dataVolumeSizeGb", 20, 16384),
        snapshot_retention_days=reader.integer("snapshotRetentionDays", 1, 365),
        acme_staging=reader.boolean("acmeStaging"),
        upstreams=parse_upstreams(reader),
        oidc=_oidc(reader),
        tags=_tags(reader),
    )
    if reader.problems:
        raise SettingsError(reader.problems)
    return Settings(
        stack=stack,
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
        traefik_version=traefik_version,
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
    region = runtime_config.get_config("aws:region") or os.environ.get("AWS_REGION")
    return parse_settings(raw, stack=pulumi.get_stack(), region=region)
