"""Validators of single values (names, CIDRs, URLs, cron): None when fine, else why not."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

# Harbor's own rule for project names (and the one we apply to registry endpoint names).
HARBOR_NAME_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*\Z")
DNS_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}\Z", re.IGNORECASE)
HARBOR_VERSION_RE = re.compile(r"^v2\.(\d+)\.(\d+)\Z")
SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")
INSTANCE_TYPE_RE = re.compile(r"^([a-z]+)(\d+)([a-z-]*)\.(\d*[a-z]+)\Z")
AZ_RE = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d[a-z]\Z")
# A key ARN (single- or multi-Region key); EBS also takes aliases, but then AWS reports the key ARN
# back and every `pulumi up` would see a change.
KMS_KEY_ARN_RE = re.compile(r"^arn:aws(?:-[a-z]+)*:kms:([a-z]{2}(?:-[a-z]+)+-\d):\d{12}:key/(?:mrk-[0-9a-f]{32}|[0-9a-f-]{36})\Z")
SUBNET_RE = re.compile(r"^subnet-[0-9a-f]{8,17}\Z")
# Harbor parses schedules with robfig/cron's 6-field parser and wants seconds at 0
# (src/common/utils/utils.go ValidateCronString). Per field: name, low, high, named values.
CRON_FIELDS = (
    ("seconds", 0, 0, ()),
    ("minutes", 0, 59, ()),
    ("hours", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    ("day of week", 0, 6, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)
CRON_ITEM_RE = re.compile(r"^(?:(\*|\?)|([0-9a-z]+)(?:-([0-9a-z]+))?)(?:/([0-9]+))?\Z", re.IGNORECASE)


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


def world_families(cidrs: Iterable[str]) -> list[str]:
    """The address families ('IPv4', 'IPv6') whose whole space the CIDRs cover together.

    Judged by coverage, not by a /0: 0.0.0.0/1 + 128.0.0.0/1 is the whole internet as surely as
    0.0.0.0/0. Networks of one family collapse into their union; the family is covered when that
    union is its single /0.
    """
    covered = []
    for version, label in ((4, "IPv4"), (6, "IPv6")):
        networks = [ipaddress.ip_network(c) for c in cidrs if ipaddress.ip_network(c).version == version]
        if [n.prefixlen for n in ipaddress.collapse_addresses(networks)] == [0]:
            covered.append(label)
    return covered


def validate_project_name(name: Any) -> str | None:
    if not isinstance(name, str) or not HARBOR_NAME_RE.match(name) or len(name) > 255:
        return "is not a Harbor project name (lowercase [a-z0-9] groups joined by '.', '_' or '-', at most 255)"
    return None


def validate_registry_host(text: Any) -> str | None:
    """None when `text` is host[:port] (a DNS name, port 1..65535), else why not.

    The value becomes a directory name on nodes (/etc/containerd/certs.d/<host>/hosts.toml), so
    nothing but a name and a port may pass: no path, no `..`.
    """
    if not isinstance(text, str):
        return "is not a string"
    host, separator, port = text.partition(":")
    if validate_dns_name(host):
        return f"host {host!r} {validate_dns_name(host)}"
    if separator and (not port.isdigit() or not port.isascii() or not 1 <= int(port) <= 65535):
        return f"port {port!r} is not a number 1..65535"
    return None


def validate_upstream_url(url: Any) -> str | None:
    """None when `url` is scheme://host[:port] with nothing else, else why not."""
    if not isinstance(url, str):
        return "is not a string"
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "is not a registry URL (https://host[:port], no path)"
    if "@" in parts.netloc:
        # A credential in the URL would land in Harbor's registry list, the state and logs.
        return "carries user info (user:secret@); put credentials in upstreamCredentials (a secret)"
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return "has a query or fragment; accepted: https://host[:port], no path"
    if parts.path not in ("", "/"):
        return "has a path; accepted: https://host[:port], no path"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 and parts.netloc.rpartition("]")[2].count(":"):
        return "has a port outside 1..65535"
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


def _cron_value(text: str, low: int, names: tuple[str, ...]) -> int | None:
    if text.isdigit():
        return int(text)
    if text.lower() in names:
        return names.index(text.lower()) + low
    return None


def _cron_field_problem(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> str | None:
    accepted = f"{low}..{high}" + (f" or {names[0].upper()}..{names[-1].upper()}" if names else "")
    for item in text.split(","):
        match = CRON_ITEM_RE.match(item)
        if not match:
            return f"{name} {item!r} is not *, a value, a range a-b or a step x/n"
        wildcard, start, end, step = match.groups()
        if wildcard == "?" and name not in ("day of month", "day of week"):
            return f"{name} cannot be '?'"
        if name == "seconds" and text != "0":
            break
        for part in (start, end):
            if part is None:
                continue
            value = _cron_value(part, low, names)
            if value is None or not low <= value <= high:
                return f"{name} {part!r} is out of range; accepted: {accepted}"
        if start and end and _cron_value(start, low, names) > _cron_value(end, low, names):
            return f"{name} range {item!r} runs backwards"
        if step is not None and int(step) < 1:
            return f"{name} step {item!r} must be 1 or more"
    if name == "seconds" and text != "0":
        return "seconds must be 0 (Harbor's rule)"
    return None


def validate_gc_cron(cron: str) -> str | None:
    """Harbor's schedule cron: 6 space-separated fields, each valid for its position."""
    fields = cron.split(" ") if isinstance(cron, str) else []
    if len(fields) != 6:
        return "is not a 6-field cron with seconds fixed at 0 (e.g. '0 0 3 * * 0')"
    for text, (name, low, high, names) in zip(fields, CRON_FIELDS, strict=True):
        problem = _cron_field_problem(text, name, low, high, names)
        if problem:
            return f"is not a valid cron: {problem} (fields: seconds minutes hours day-of-month month day-of-week)"
    return None
