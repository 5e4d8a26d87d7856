"""Validators of single values (names, CIDRs, URLs, cron): None when fine, else why not."""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

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
