"""The `oidc` key: Harbor's OIDC login through dex, read and checked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from components.settings.config_reader import ConfigReader

OIDC_DEFAULTS: dict[str, Any] = {
    "name": "dex",
    "clientId": "harbor-cache-oidc-dex",
    "adminGroup": "cluster_admins",
    "groupsClaim": "groups",
    # offline_access: without a refresh token Harbor cannot renew a user's session, and the CLI
    # secret (docker login) stops working when the ID token expires (Harbor pkg/oidc/secret.go).
    "scope": "openid,profile,email,groups,offline_access",
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


def parse_oidc(reader: ConfigReader) -> OidcSettings | None:
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
