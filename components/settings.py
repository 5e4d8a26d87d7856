"""Typed, validated settings for one harbor-cache stack.

Everything the program needs from configuration is read, checked and frozen here before any
resource is registered: a bad value stops the program with every problem listed, each naming its
key, the value (never for secrets) and what is accepted.

Defaults of scalar keys live only in Pulumi.yaml (read from there, because Pulumi does not apply
them under mocks or in the offline renderer); defaults of structured keys live only here.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

PROJECT = "harbor-cache"
PROJECT_FILE = Path(__file__).resolve().parent.parent / "Pulumi.yaml"

# Registry types that Harbor's compose installer permits for proxy-cache projects
# (PERMITTED_REGISTRY_TYPES_FOR_PROXY_CACHE). `quay` was removed upstream in 2025.
PROXY_CACHE_TYPES = (
    "docker-hub",
    "harbor",
    "azure-acr",
    "ali-acr",
    "aws-ecr",
    "google-gcr",
    "docker-registry",
    "github-ghcr",
    "jfrog-artifactory",
)

# Harbor's own rule for project names (and the one we apply to registry endpoint names).
HARBOR_NAME_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
DNS_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.IGNORECASE)
HARBOR_VERSION_RE = re.compile(r"^v2\.(\d+)\.(\d+)$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
INSTANCE_TYPE_RE = re.compile(r"^([a-z]+)(\d+)([a-z-]*)\.(\d*[a-z]+)$")
AZ_RE = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d[a-z]$")
SUBNET_RE = re.compile(r"^subnet-[0-9a-f]{8,17}$")
GC_CRON_RE = re.compile(r"^0( \S+){5}$")

SECRET_KEYS = frozenset({"adminPassword", "upstreamCredentials"})
# Keys Pulumi.yaml cannot declare: objects and lists of objects, and an optional key without default.
UNDECLARED_KEYS = ("upstreams", "upstreamCredentials", "oidc", "tags", "harborImports", "adminPassword")

DEFAULT_UPSTREAMS: tuple[dict[str, Any], ...] = (
    {"name": "dockerhub", "type": "docker-hub", "url": "https://hub.docker.com", "registryHost": "docker.io"},
    {"name": "ghcr", "type": "github-ghcr", "url": "https://ghcr.io"},
    # quay.io speaks the plain registry API; Harbor dropped its `quay` adapter (#22237).
    {"name": "quay", "type": "docker-registry", "url": "https://quay.io"},
    {"name": "k8s", "type": "docker-registry", "url": "https://registry.k8s.io"},
    # google-gcr needs a service-account key; anonymous pulls of public images work as a registry.
    {"name": "gcr", "type": "docker-registry", "url": "https://gcr.io"},
)

UPSTREAM_KEYS = {
    "name": "Harbor registry endpoint name",
    "type": "Harbor registry type",
    "url": "upstream endpoint URL",
    "project": "proxy-cache project name (default <name>-proxy)",
    "registryHost": "registry host nodes pull from (default: the URL's host; docker.io for docker-hub)",
    "description": "free text",
    "insecure": "skip TLS verification of the upstream",
    "public": "anonymous pulls from the project (default true)",
    "storageQuotaGb": "project storage quota in GiB, -1 = unlimited",
    "speedLimitKbps": "proxy bandwidth limit in KiB/s, -1 = unlimited",
    "forceDestroy": "delete the project's cached repositories with it (default false)",
}

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


class Secret:
    """A plain value that must never be printed: repr and str hide it."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.value)


@dataclass(frozen=True)
class Problem:
    key: str
    message: str

    def __str__(self) -> str:
        prefix = "" if self.key.startswith("aws:") else f"{PROJECT}:"
        return f"{prefix}{self.key}: {self.message}"


class SettingsError(ValueError):
    """Every problem found in the configuration, each naming its key."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration ({len(problems)} problem(s)); nothing was created:\n{lines}")


@dataclass(frozen=True)
class Credential:
    username: Secret
    password: Secret


@dataclass(frozen=True)
class Upstream:
    name: str
    type: str
    url: str
    project: str
    registry_host: str
    description: str = ""
    insecure: bool = False
    public: bool = True
    storage_quota_gb: int = -1
    speed_limit_kbps: int = -1
    credential: Credential | None = None
    force_destroy: bool = False
    # Where nodes fall back to when the cache is down; derived from registry_host unless set.
    server_url: str = ""

    @property
    def server(self) -> str:
        """The real upstream a node falls back to (Docker Hub's registry API is not hub.docker.com)."""
        if self.server_url:
            return self.server_url
        if self.registry_host == "docker.io":
            return "https://registry-1.docker.io"
        return f"https://{self.registry_host}"


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


class _Reader:
    """Reads raw values (strings from the Pulumi engine, typed values from a stack file) into types."""

    def __init__(self, raw: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
        self.raw = raw
        self.defaults = defaults
        self.problems: list[Problem] = []

    def fail(self, key: str, message: str) -> None:
        self.problems.append(Problem(key, message))

    def value(self, key: str) -> Any:
        value = self.raw.get(key)
        return self.defaults.get(key) if value is None else value

    def string(self, key: str, required: bool = False) -> str:
        value = self.value(key)
        if value is None or value == "":
            if required:
                self.fail(key, f"is required; set it with `pulumi config set {key} <value>`")
            return ""
        if not isinstance(value, str):
            self.fail(key, f"{value!r} is not a string")
            return ""
        return value

    def integer(self, key: str, low: int, high: int) -> int:
        value = self.value(key)
        try:
            number = int(value) if not isinstance(value, bool) and str(value).strip().lstrip("-").isdigit() else None
        except (TypeError, ValueError):
            number = None
        if number is None:
            self.fail(key, f"{value!r} is not a whole number; accepted: {low}..{high}")
            return low
        if not low <= number <= high:
            self.fail(key, f"{number} is out of range; accepted: {low}..{high}")
        return number

    def boolean(self, key: str) -> bool:
        value = self.value(key)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        self.fail(key, f"{value!r} is not a boolean; accepted: true or false")
        return False

    def structured(self, key: str, default: Any) -> Any:
        value = self.raw.get(key)
        if value is None:
            return default
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as error:
                shown = "the value" if key in SECRET_KEYS else repr(value)
                self.fail(key, f"{shown} is not valid JSON ({error.msg})")
                return default
        return value


def validate_dns_name(name: str) -> str | None:
    """None when `name` is a lowercase FQDN without trailing dot, else why not."""
    if not name or len(name) > 253:
        return "must be 1..253 characters"
    labels = name.split(".")
    if len(labels) < 2:
        return "must have at least two labels (e.g. harbor.example.com)"
    bad = [label for label in labels if not DNS_LABEL_RE.match(label)]
    if bad:
        return f"label {bad[0]!r} is not a DNS label (lowercase a-z, 0-9, inner '-', 1..63 chars)"
    if labels[-1].isdigit():
        return "the top-level label cannot be numeric"
    return None


def validate_cidr(text: Any) -> str | None:
    if not isinstance(text, str):
        return "is not a string"
    try:
        ipaddress.ip_network(text, strict=True)
    except ValueError as error:
        return f"is not a CIDR ({error})"
    if "/" not in text:
        return "needs a prefix length (e.g. 203.0.113.7/32)"
    return None


def is_world(cidr: str) -> bool:
    return ipaddress.ip_network(cidr).prefixlen == 0


def validate_project_name(name: Any) -> str | None:
    if not isinstance(name, str) or not HARBOR_NAME_RE.match(name) or len(name) > 255:
        return "is not a Harbor project name (lowercase [a-z0-9] groups joined by '.', '_' or '-', at most 255)"
    return None


def validate_api_url(url: Any) -> str | None:
    """https anywhere; plain http only to loopback (an SSH tunnel to the VM)."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or not parts.hostname or parts.scheme not in ("https", "http") or parts.path not in ("", "/"):
        return "is not a Harbor URL (https://<host>, or http://127.0.0.1:<port> through an SSH tunnel)"
    if parts.scheme == "http":
        try:
            loopback = ipaddress.ip_address(parts.hostname).is_loopback
        except ValueError:
            loopback = parts.hostname == "localhost"
        if not loopback:
            return "uses plain http; only loopback (an SSH tunnel) may, anything else must be https"
    return None


def validate_gc_cron(cron: str) -> str | None:
    if not GC_CRON_RE.match(cron):
        return "is not a 6-field cron with seconds fixed at 0 (e.g. '0 0 3 * * 0')"
    return None


def _cidr_list(reader: _Reader, key: str, allow_world: bool, world_hint: str) -> tuple[str, ...]:
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


def _upstream(reader: _Reader, index: int, item: Any, credentials: Mapping[str, Credential]) -> Upstream | None:
    key = f"upstreams[{index}]"
    if not isinstance(item, dict):
        reader.fail(key, f"{item!r} is not an object with name, type and url")
        return None
    unknown = sorted(set(item) - set(UPSTREAM_KEYS))
    if unknown:
        reader.fail(key, f"unknown field(s) {unknown}; accepted: {sorted(UPSTREAM_KEYS)}")
    name, kind, url = item.get("name"), item.get("type"), item.get("url")
    ok = True
    if not isinstance(name, str) or not HARBOR_NAME_RE.match(name):
        reader.fail(f"{key}.name", f"{name!r} is not a name (lowercase [a-z0-9] groups joined by '.', '_' or '-')")
        ok = False
    if kind == "quay":
        reader.fail(f"{key}.type", "'quay' was removed from Harbor in 2025; use type docker-registry with url https://quay.io")
        ok = False
    elif kind not in PROXY_CACHE_TYPES:
        reader.fail(f"{key}.type", f"{kind!r} is not a proxy-cache registry type; accepted: {', '.join(PROXY_CACHE_TYPES)}")
        ok = False
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("https", "http") or not parts.hostname or parts.path not in ("", "/"):
        reader.fail(f"{key}.url", f"{url!r} is not a registry URL (https://host[:port], no path)")
        ok = False
    elif parts.scheme == "http" and not item.get("insecure"):
        reader.fail(f"{key}.url", f"{url!r} is plain http; use https or set insecure: true")
        ok = False
    project = item.get("project", f"{name}-proxy")
    problem = validate_project_name(project)
    if problem:
        reader.fail(f"{key}.project", f"{project!r} {problem}")
        ok = False
    default_host = "docker.io" if kind == "docker-hub" else (parts.netloc if parts else "")
    registry_host = item.get("registryHost", default_host)
    host_only = registry_host.rsplit(":", 1)[0] if isinstance(registry_host, str) else ""
    if validate_dns_name(host_only):
        reader.fail(f"{key}.registryHost", f"{registry_host!r} is not a registry host name (e.g. docker.io)")
        ok = False
    numbers = {}
    for field_name, low in (("storageQuotaGb", -1), ("speedLimitKbps", -1)):
        value = item.get(field_name, -1)
        if isinstance(value, bool) or not isinstance(value, int) or value < low or value == 0:
            reader.fail(f"{key}.{field_name}", f"{value!r} is not accepted; use -1 (unlimited) or a positive whole number")
            ok = False
        numbers[field_name] = value
    flags = {}
    for field_name, default in (("insecure", False), ("public", True), ("forceDestroy", False)):
        value = item.get(field_name, default)
        if not isinstance(value, bool):
            reader.fail(f"{key}.{field_name}", f"{value!r} is not a boolean")
            ok = False
        flags[field_name] = value
    description = item.get("description", "")
    if not isinstance(description, str):
        reader.fail(f"{key}.description", f"{description!r} is not a string")
        ok = False
    if not ok:
        return None
    return Upstream(
        name=name,
        type=kind,
        url=url.rstrip("/"),
        project=project,
        registry_host=registry_host,
        description=description,
        insecure=flags["insecure"],
        public=flags["public"],
        storage_quota_gb=numbers["storageQuotaGb"],
        speed_limit_kbps=numbers["speedLimitKbps"],
        credential=credentials.get(name),
        force_destroy=flags["forceDestroy"],
    )


def _credentials(reader: _Reader) -> dict[str, Credential]:
    value = reader.structured("upstreamCredentials", {})
    if not isinstance(value, dict):
        reader.fail("upstreamCredentials", "must be an object: {<upstream name>: {username, password}}")
        return {}
    result = {}
    for name, entry in value.items():
        if (
            not isinstance(entry, dict)
            or set(entry) != {"username", "password"}
            or not all(isinstance(v, str) and v for v in entry.values())
        ):
            reader.fail(
                f"upstreamCredentials.{name}", "must be {username: <non-empty>, password: <non-empty>} (value not shown: secret)"
            )
            continue
        result[name] = Credential(Secret(entry["username"]), Secret(entry["password"]))
    return result


def _upstreams(reader: _Reader) -> tuple[Upstream, ...]:
    credentials = _credentials(reader)
    items = reader.structured("upstreams", [dict(u) for u in DEFAULT_UPSTREAMS])
    if not isinstance(items, list) or not items:
        reader.fail("upstreams", f"{items!r} is not a non-empty list of upstream objects")
        return ()
    upstreams = [u for i, item in enumerate(items) if (u := _upstream(reader, i, item, credentials))]
    for attribute, label in (("name", "name"), ("project", "project"), ("registry_host", "registryHost")):
        seen: set[str] = set()
        for upstream in upstreams:
            value = getattr(upstream, attribute)
            if value in seen:
                reader.fail("upstreams", f"duplicate {label} {value!r}; every upstream needs its own")
            seen.add(value)
    names = {u.name for u in upstreams}
    for name in sorted(set(credentials) - names):
        reader.fail(f"upstreamCredentials.{name}", f"names no upstream; accepted: {sorted(names)}")
    return tuple(upstreams)


def _oidc(reader: _Reader) -> OidcSettings | None:
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


def _tags(reader: _Reader) -> dict[str, str]:
    value = reader.structured("tags", {})
    if not isinstance(value, dict):
        reader.fail("tags", f"{value!r} is not an object of string keys and values")
        return {}
    for key, item in value.items():
        if not isinstance(item, str) or len(key) > 128 or len(item) > 256 or key.lower().startswith("aws:"):
            reader.fail(f"tags.{key}", f"{item!r}: keys 1..128 chars not starting with 'aws:', string values up to 256 chars")
    return {str(k): str(v) for k, v in value.items()}


def parse_settings(raw: Mapping[str, Any], stack: str, region: str | None, defaults: Mapping[str, Any] | None = None) -> Settings:
    """Builds Settings from raw config values (keys without the project prefix) or raises SettingsError."""
    reader = _Reader(raw, project_defaults() if defaults is None else defaults)
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
    elif version_match and int(version_match.group(1)) < 10:
        reader.fail(
            "harborVersion", f"{version!r} is too old; accepted: v2.10.0 or newer (proxy-cache and OIDC settings used here)"
        )
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
        harbor_api_url=harbor_api_url.rstrip("/"),
        harbor_imports=imports,
        mirror_ca_file=mirror_ca_file,
        mirror_fail_closed=reader.boolean("mirrorFailClosed"),
        root_volume_size_gb=reader.integer("rootVolumeSizeGb", 20, 1024),
        data_volume_size_gb=reader.integer("dataVolumeSizeGb", 20, 16384),
        snapshot_retention_days=reader.integer("snapshotRetentionDays", 1, 365),
        acme_staging=reader.boolean("acmeStaging"),
        upstreams=_upstreams(reader),
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
