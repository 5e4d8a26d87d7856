"""Values a stack copied from the example still holds, refused before anything is created.

Each would fail only late, or silently: Let's Encrypt refuses the account at the first certificate,
AWS mails the alarm subscription's confirmation to nobody, no real client has an address in a
documentation block, Harbor switches its login to an issuer that does not exist, and no installer
has the placeholder digest. Every problem names the key, the value and what to set.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from components.settings.config_reader import ConfigReader

# What Pulumi.dev.yaml shipped as harborInstallerSha256 before a real digest was set.
PLACEHOLDER_SHA256 = "0" * 64
# RFC 2606 section 3: second-level names reserved for examples. Let's Encrypt refuses a contact
# e-mail there ("Contact emails @example.com are forbidden": letsencrypt/boulder policy/pa.go,
# forbiddenMailDomains and ValidEmail).
EXAMPLE_DOMAINS = ("example.com", "example.net", "example.org")
# RFC 2606 section 2 (and RFC 6761): top-level names that never exist in public DNS. Boulder's
# ValidEmail refuses a contact domain that does not end in a public suffix (validNonWildcardDomain).
RESERVED_TLDS = ("example", "invalid", "localhost", "test")
# RFC 5737 (TEST-NET-1, -2, -3) and RFC 3849: address blocks for documentation, routed nowhere.
DOCUMENTATION_NETWORKS = tuple(
    ipaddress.ip_network(block) for block in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)
# What goes wrong with an example address in each e-mail key, and the fix.
EMAIL_USES = {
    "acmeEmail": "Let's Encrypt refuses it as the account's contact and the VM gets no certificate; set your team's address",
    "alarmEmail": "AWS would mail the subscription's confirmation there and no alarm would reach anyone; set your "
    "on-call address or leave it empty",
}
# What each CIDR key's addresses are, for the fix.
CIDR_OWNERS = {
    "allowedCidrs": "your clusters' NAT gateway addresses, CI runners and the machine that runs `pulumi up`",
    "sshAllowedCidrs": "the public address of the machine that runs `pulumi up`, as <address>/32",
    "metricsAllowedCidrs": "your Prometheus' addresses",
}


def example_domain(domain: str) -> str | None:
    """The reserved name `domain` lies under (RFC 2606), or None."""
    domain = domain.lower().rstrip(".")
    for reserved in EXAMPLE_DOMAINS:
        if domain == reserved or domain.endswith("." + reserved):
            return reserved
    top = domain.rsplit(".", 1)[-1]
    return f".{top}" if top in RESERVED_TLDS else None


def documentation_network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    network = ipaddress.ip_network(cidr)
    inside = (block for block in DOCUMENTATION_NETWORKS if block.version == network.version and network.subnet_of(block))
    return next(inside, None)


def refuse_example_email(reader: ConfigReader, key: str, address: str) -> None:
    reserved = example_domain(address.rpartition("@")[2]) if "@" in address else None
    if reserved:
        reader.fail(key, f"{address!r} is an address at {reserved}, a name reserved for examples (RFC 2606): {EMAIL_USES[key]}")


def refuse_documentation_cidrs(reader: ConfigReader, key: str, cidrs: Iterable[str]) -> None:
    """Call with CIDRs that passed validate_cidr."""
    for cidr in cidrs:
        block = documentation_network(cidr)
        if block is not None:
            reader.fail(
                key,
                f"{cidr!r} lies in {block}, an address block reserved for documentation (RFC 5737, RFC 3849): no client "
                f"has such an address, so the rule would let nobody in; set {CIDR_OWNERS[key]}",
            )


def refuse_example_issuer(reader: ConfigReader, issuer: str) -> None:
    reserved = example_domain(urlsplit(issuer).hostname or "")
    if reserved:
        reader.fail(
            "oidc.issuer",
            f"{issuer!r} is at {reserved}, a name reserved for examples: Harbor would switch its login to OIDC at an "
            "issuer that does not exist and nobody could log in through it; set your dex's URL, or remove the oidc "
            "key to keep Harbor's local users (`pulumi config rm oidc`)",
        )


def refuse_placeholder_digest(reader: ConfigReader, sha256: str, version: str) -> None:
    if sha256 == PLACEHOLDER_SHA256:
        installer = f"harbor-offline-installer-{version or '<harborVersion>'}.tgz"
        reader.fail(
            "harborInstallerSha256",
            f"{sha256!r} is the old example's placeholder, not a digest: no installer has it, so the deploy would "
            "stop at the installer check; remove the key (`pulumi config rm harborInstallerSha256`: `pulumi up` takes "
            f"the sha256 Harbor signed) or pin the real one, `sha256sum {installer}` of a download whose signature "
            "you verified",
        )
