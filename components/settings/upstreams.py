"""The upstream registries the cache proxies, and their (secret) credentials, as settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from components.settings.config_reader import ConfigReader, Secret
from components.settings.validators import HARBOR_NAME_RE, validate_project_name, validate_registry_host, validate_upstream_url

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
    "storageQuotaGb": "project storage quota in GiB, -1 = unlimited (default: defaultStorageQuotaGb)",
    "speedLimitKbps": "proxy bandwidth limit in KiB/s, -1 = unlimited",
    "forceDestroy": "delete the project's cached repositories with it (default false)",
    "allowCredentialedPublic": "accept public: true together with upstreamCredentials (default false)",
    "allowCustomPortEgress": "accept a URL port other than 443/80, which opens that port to the internet (default false)",
    "localOnNotFound": "keep serving the cached copy when the upstream says a tag is gone (default true)",
    "maxUpstreamConn": "concurrent upstream connections per artifact, -1 = no limit (default -1)",
    "caCertificate": "PEM CA certificate Harbor trusts for this upstream (Harbor 2.15+, default none)",
    "retentionDays": "keep artifacts pulled within the last N days, the rest goes at the next GC (default 7)",
}
INT32_MAX = 2**31 - 1
# Harbor keeps storage quotas up to 1024 TB (src/pkg/quota/types/resources.go MaxLimitedValue = 2^50 bytes).
MAX_STORAGE_QUOTA_GB = 1024 * 1024
# Harbor's own default for proxy projects (handler/project.go defaultDaysToRetentionForProxyCacheProject).
DEFAULT_RETENTION_DAYS = 7
MAX_RETENTION_DAYS = 3650


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
    local_on_not_found: bool = True
    # -1: no cap. A cap answers 429 to the nodes past it; Docker Hub counts manifest pulls, not
    # connections, so a cap buys no rate limit and costs availability.
    max_upstream_conn: int = -1
    ca_certificate: str = ""
    retention_days: int = DEFAULT_RETENTION_DAYS

    @property
    def server(self) -> str:
        """The real upstream a node falls back to (Docker Hub's registry API is not hub.docker.com)."""
        if self.server_url:
            return self.server_url
        if self.registry_host == "docker.io":
            return "https://registry-1.docker.io"
        return f"https://{self.registry_host}"


def _upstream(
    reader: ConfigReader, index: int, item: Any, credentials: Mapping[str, Credential], default_quota_gb: int
) -> Upstream | None:
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
    url_problem = validate_upstream_url(url)
    parts = urlsplit(url) if url_problem is None else None
    if url_problem is not None:
        # A URL with user info holds a credential: never echo it.
        shown = "the value (not shown: it holds a credential)" if isinstance(url, str) and "@" in url else repr(url)
        reader.fail(f"{key}.url", f"{shown} {url_problem}")
        ok = False
    elif parts.scheme == "http" and not item.get("insecure"):
        reader.fail(f"{key}.url", f"{url!r} is plain http; use https or set insecure: true")
        ok = False
    elif parts.port not in (None, 80, 443) and item.get("allowCustomPortEgress") is not True:
        # The security group then lets the VM out to the whole internet on that port.
        reader.fail(
            f"{key}.url",
            f"{url!r} uses port {parts.port}: the VM's security group would allow tcp {parts.port} out to the whole "
            "internet. Set allowCustomPortEgress: true on this upstream to accept that, or use the registry on 443",
        )
        ok = False
    project = item.get("project", f"{name}-proxy")
    problem = validate_project_name(project)
    if problem:
        reader.fail(f"{key}.project", f"{project!r} {problem}")
        ok = False
    default_host = "docker.io" if kind == "docker-hub" else (parts.netloc if parts else "")
    registry_host = item.get("registryHost", default_host)
    host_problem = validate_registry_host(registry_host)
    if host_problem and (parts is not None or "registryHost" in item):
        reader.fail(f"{key}.registryHost", f"{registry_host!r} {host_problem}; accepted: host[:port] such as docker.io")
        ok = False
    numbers = {}
    # Harbor's limits: proxy_speed_kb and max_upstream_conn parse as int32 (handler/project.go
    # validateProjectReq); storage quotas stop at 1024 TB.
    for field_name, default, high in (
        ("storageQuotaGb", default_quota_gb, MAX_STORAGE_QUOTA_GB),
        ("speedLimitKbps", -1, INT32_MAX),
        ("maxUpstreamConn", -1, INT32_MAX),
    ):
        value = item.get(field_name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < -1 or value == 0 or value > high:
            reader.fail(f"{key}.{field_name}", f"{value!r} is not accepted; use -1 (unlimited) or a whole number 1..{high}")
            ok = False
        numbers[field_name] = value
    retention_days = item.get("retentionDays", DEFAULT_RETENTION_DAYS)
    if isinstance(retention_days, bool) or not isinstance(retention_days, int) or not 1 <= retention_days <= MAX_RETENTION_DAYS:
        reader.fail(
            f"{key}.retentionDays", f"{retention_days!r} is not accepted; use a whole number of days 1..{MAX_RETENTION_DAYS}"
        )
        ok = False
    ca_certificate = item.get("caCertificate", "")
    if not isinstance(ca_certificate, str) or (ca_certificate and "-----BEGIN CERTIFICATE-----" not in ca_certificate):
        reader.fail(f"{key}.caCertificate", "is not a PEM certificate (-----BEGIN CERTIFICATE----- ...)")
        ok = False
    flags = {}
    for field_name, default in (
        ("insecure", False),
        ("public", True),
        ("forceDestroy", False),
        ("allowCredentialedPublic", False),
        ("allowCustomPortEgress", False),
        ("localOnNotFound", True),
    ):
        value = item.get(field_name, default)
        if not isinstance(value, bool):
            reader.fail(f"{key}.{field_name}", f"{value!r} is not a boolean")
            ok = False
        flags[field_name] = value
    description = item.get("description", "")
    if not isinstance(description, str):
        reader.fail(f"{key}.description", f"{description!r} is not a string")
        ok = False
    if flags["public"] is True and name in credentials and flags["allowCredentialedPublic"] is not True:
        reader.fail(
            f"{key}.public",
            f"upstream {name!r} is public and has upstreamCredentials: Harbor pulls with that credential for every "
            "client allowed in, so anyone in allowedCidrs could pull what the account can read (its private images "
            "too). Use a credential that reads public content only (Docker Hub: an access token with scope "
            "'Public Repo Read-only') and set allowCredentialedPublic: true on this upstream, or set public: false: "
            "nodes then pull with the pull-only robot account (stack output registryPullCredentials)",
        )
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
        local_on_not_found=flags["localOnNotFound"],
        max_upstream_conn=numbers["maxUpstreamConn"],
        ca_certificate=ca_certificate,
        retention_days=retention_days,
    )


def _credentials(reader: ConfigReader) -> dict[str, Credential]:
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


def parse_upstreams(reader: ConfigReader, default_quota_gb: int = -1) -> tuple[Upstream, ...]:
    credentials = _credentials(reader)
    items = reader.structured("upstreams", [dict(u) for u in DEFAULT_UPSTREAMS])
    if not isinstance(items, list) or not items:
        reader.fail("upstreams", f"{items!r} is not a non-empty list of upstream objects")
        return ()
    upstreams = [u for i, item in enumerate(items) if (u := _upstream(reader, i, item, credentials, default_quota_gb))]
    for attribute, label in (("name", "name"), ("project", "project"), ("registry_host", "registryHost")):
        seen: set[str] = set()
        for upstream in upstreams:
            value = getattr(upstream, attribute)
            if value in seen:
                reader.fail("upstreams", f"duplicate {label} {value!r}; every upstream needs its own")
            seen.add(value)
    # Names of entries that failed validation count too: their credential is not the problem.
    names = {item["name"] for item in items if isinstance(item, dict) and isinstance(item.get("name"), str)}
    for name in sorted(set(credentials) - names):
        reader.fail(f"upstreamCredentials.{name}", f"names no upstream; accepted: {sorted(names)}")
    return tuple(upstreams)
