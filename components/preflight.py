"""Checks before a deploy, each failure saying what to do.

    python -m components.preflight <stack>

`scripts/deploy.sh` runs this (also alone: `scripts/deploy.sh --check <stack>`) after it checked the
Pulumi CLI, Python, the stack file and the secrets provider, and before it creates or changes
anything. It asks, without changing anything anywhere:
- the program's own validation of Pulumi.<stack>.yaml (every problem, each naming its key);
- example values copied from Pulumi.dev.yaml (RFC 2606 names, RFC 5737 / 3849 documentation
  networks, the all-zero installer digest) and `aws:profile`;
- AWS: who the credentials are (`aws sts get-caller-identity`), that the public hosted zone
  `zoneName` is in that account (`aws route53 list-hosted-zones-by-name`), and with a KMS secrets
  provider that its key exists and is enabled (`aws kms describe-key`);
- this machine's public address (https://checkip.amazonaws.com, or HARBOR_CACHE_DEPLOY_ADDRESS),
  which must be inside `sshAllowedCidrs` (the install runs over SSH) and `allowedCidrs` (Harbor's
  API; not needed when `harborApiUrl` points at an SSH tunnel).
The AWS questions go through the AWS CLI, so they use the credentials the deploy will use
(environment, AWS_PROFILE, SSO).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.render import PLACEHOLDER_SECRET, ROOT, plain_keys, stack_config
from components.settings.config_reader import PROJECT, SettingsError
from components.settings.settings import parse_settings

# AWS's own "what is my address" service: one line, the caller's IPv4 address.
ADDRESS_URL = "https://checkip.amazonaws.com"
# RFC 2606: names reserved for examples and documentation.
EXAMPLE_DOMAINS = ("example.com", "example.net", "example.org")
EXAMPLE_TLDS = ("example", "test", "invalid", "localhost")
# RFC 5737 (IPv4 TEST-NET-1..3) and RFC 3849 (IPv6): networks reserved for documentation.
DOCUMENTATION_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)
PLACEHOLDER_DIGEST = "0" * 64
# AWS CLI v2 return codes (docs.aws.amazon.com/cli/latest/userguide/cli-usage-returncodes.html):
# 253 = configuration or credentials missing, 254 = the service answered with an error.
AWS_NO_CONFIGURATION = 253


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    message: str

    def __str__(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.check}: {self.message}"


class AwsCliError(Exception):
    def __init__(self, returncode: int, stderr: str) -> None:
        super().__init__(stderr.strip() or f"exit {returncode}")
        self.returncode = returncode


def aws_cli(*args: str, region: str | None = None) -> dict[str, Any]:
    """One AWS CLI call, its JSON answer; AwsCliError with the CLI's own message otherwise."""
    command = ["aws", *args, "--output", "json"] + (["--region", region] if region else [])
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603
    if done.returncode != 0:
        raise AwsCliError(done.returncode, done.stderr)
    return json.loads(done.stdout or "{}")


def public_address(url: str = ADDRESS_URL) -> str:
    """This machine's public IPv4 address as the internet sees it."""
    with urllib.request.urlopen(url, timeout=15) as answer:  # noqa: S310 - a fixed https URL or a test's loopback
        text = answer.read(100).decode().strip()
    return str(ipaddress.ip_address(text))


def example_value_findings(raw: Mapping[str, Any], config: Mapping[str, Any]) -> list[Finding]:
    """Values copied from the example stack that would fail late (or, for OIDC, lock users out)."""
    findings = []

    def example_name(name: str) -> bool:
        name = name.lower().rstrip(".")
        return name.rsplit(".", 1)[-1] in EXAMPLE_TLDS or any(
            name == domain or name.endswith(f".{domain}") for domain in EXAMPLE_DOMAINS
        )

    names = {
        "hostname": raw.get("hostname"),
        "zoneName": raw.get("zoneName"),
        "acmeEmail": str(raw.get("acmeEmail") or "").rpartition("@")[2] or None,
        "alarmEmail": str(raw.get("alarmEmail") or "").rpartition("@")[2] or None,
        "oidc.issuer": urllib.parse.urlsplit(str((raw.get("oidc") or {}).get("issuer") or "")).hostname
        if isinstance(raw.get("oidc"), dict)
        else None,
    }
    fixes = {
        "hostname": "set the cache's name inside your own hosted zone",
        "zoneName": "set your Route53 public hosted zone",
        "acmeEmail": "set an address that reads Let's Encrypt's expiry mail",
        "alarmEmail": "set an address that reads the alarms, or remove the key",
        "oidc.issuer": "set your dex's issuer, or remove the oidc block (local users only)",
    }
    for key, name in names.items():
        if isinstance(name, str) and name and example_name(name):
            value = raw["oidc"]["issuer"] if key == "oidc.issuer" else raw[key]
            findings.append(Finding(f"{PROJECT}:{key}", False, f"{value!r} is an example name (RFC 2606): {fixes[key]}"))
    for key in ("allowedCidrs", "sshAllowedCidrs", "metricsAllowedCidrs"):
        for cidr in raw.get(key) or []:
            try:
                network = ipaddress.ip_network(str(cidr), strict=False)
            except ValueError:
                continue  # the validation names it
            if any(network.version == doc.version and network.overlaps(doc) for doc in DOCUMENTATION_NETWORKS):
                findings.append(
                    Finding(
                        f"{PROJECT}:{key}",
                        False,
                        f"{cidr} is a documentation network (RFC 5737/3849), nobody's real address: "
                        "list the addresses that must reach the cache",
                    )
                )
    if str(raw.get("harborInstallerSha256") or "") == PLACEHOLDER_DIGEST:
        findings.append(
            Finding(
                f"{PROJECT}:harborInstallerSha256",
                False,
                "all zeros, a placeholder, not a digest: remove the key (the program takes the sha256 Harbor signed) "
                "or pin the real one (docs/operate.md, Harbor's installer)",
            )
        )
    if "aws:profile" in config:
        findings.append(
            Finding(
                "aws:profile",
                False,
                "a profile in the stack file is used by the AWS provider only, not by the host-key reader or CI: "
                "remove it (`pulumi config rm aws:profile`) and export AWS_PROFILE instead",
            )
        )
    return findings


def kms_key_of(provider: str, region: str | None) -> tuple[str, str | None] | None:
    """(key id or alias, region) of an `awskms://` secrets provider URL; None for any other provider.

    Pulumi's forms (gocloud.dev/secrets/awskms): awskms://alias/<name>?region=<r>, awskms://<key id>?region=<r>,
    awskms:///arn:aws:kms:<r>:<account>:key/<id>.
    """
    if not provider.startswith("awskms://"):
        return None
    parsed = urllib.parse.urlsplit(provider)
    key = (parsed.netloc + parsed.path).lstrip("/")
    query = urllib.parse.parse_qs(parsed.query)
    return key, (query.get("region") or [region])[0]


def stack_secrets_provider(stack: str, root: Path) -> str:
    document = yaml.safe_load((root / f"Pulumi.{stack}.yaml").read_text()) or {}
    return str(document.get("secretsprovider") or os.environ.get("PULUMI_SECRETS_PROVIDER") or "passphrase")


def aws_findings(raw: Mapping[str, Any], region: str | None, provider: str) -> list[Finding]:
    if shutil.which("aws") is None:
        return [
            Finding(
                "AWS CLI",
                False,
                "not installed: install AWS CLI v2 "
                "(https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html); "
                "the preflight asks AWS through it with the credentials the deploy uses",
            )
        ]
    try:
        identity = aws_cli("sts", "get-caller-identity", region=region)
    except AwsCliError as error:
        hint = (
            "no credentials: export AWS_PROFILE (then `aws sso login` if it is an SSO profile) or AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN for the target account"
            if error.returncode == AWS_NO_CONFIGURATION
            else "the credentials were refused: renew them (`aws sso login`, a new session) for the target account"
        )
        return [Finding("AWS identity", False, f"{error}; {hint}")]
    findings = [Finding("AWS identity", True, f"account {identity.get('Account')} as {identity.get('Arn')}")]
    account = identity.get("Account")

    zone = str(raw.get("zoneName") or "").lower().rstrip(".")
    if zone:
        try:
            answer = aws_cli("route53", "list-hosted-zones-by-name", "--dns-name", zone, "--max-items", "10", region=region)
        except AwsCliError as error:
            findings.append(Finding("hosted zone", False, f"{error}; the identity needs route53:ListHostedZonesByName"))
        else:
            # The answer lists zones from that name on, in order: a missing zone shows the next ones.
            same = [z for z in answer.get("HostedZones", []) if z.get("Name", "").lower().rstrip(".") == zone]
            public = [z for z in same if not (z.get("Config") or {}).get("PrivateZone")]
            if public:
                findings.append(Finding("hosted zone", True, f"{zone} is {public[0].get('Id', '').rsplit('/', 1)[-1]}"))
            elif same:
                findings.append(
                    Finding(
                        "hosted zone", False, f"{zone} is only a private zone in account {account}: DNS-01 needs a public one"
                    )
                )
            else:
                findings.append(
                    Finding(
                        "hosted zone",
                        False,
                        f"no hosted zone {zone} in account {account}: create the public zone and delegate it, "
                        f"or set {PROJECT}:zoneName to one that exists (or use the account that holds it)",
                    )
                )

    kms = kms_key_of(provider, region)
    if kms is not None:
        key, key_region = kms
        try:
            metadata = aws_cli("kms", "describe-key", "--key-id", key, region=key_region).get("KeyMetadata", {})
        except AwsCliError as error:
            findings.append(
                Finding(
                    "secrets provider",
                    False,
                    f"{provider}: {error}; create the key and its alias in {key_region} (docs/architecture.md, "
                    "Add an environment) or set PULUMI_SECRETS_PROVIDER to one that exists",
                )
            )
        else:
            if metadata.get("KeyState") != "Enabled":
                findings.append(
                    Finding(
                        "secrets provider", False, f"{provider}: the key is {metadata.get('KeyState')}; enable it or use another"
                    )
                )
            else:
                findings.append(Finding("secrets provider", True, f"{provider} is {metadata.get('Arn')}"))
    return findings


def address_findings(raw: Mapping[str, Any], lookup: Callable[[], str]) -> list[Finding]:
    given = os.environ.get("HARBOR_CACHE_DEPLOY_ADDRESS", "")
    try:
        address = ipaddress.ip_address(given.strip()) if given else ipaddress.ip_address(lookup())
    except (OSError, ValueError) as error:
        return [
            Finding(
                "this machine's address",
                False,
                f"could not learn it ({error}): set HARBOR_CACHE_DEPLOY_ADDRESS=<the address the VM sees you from>",
            )
        ]

    def covered(key: str) -> bool:
        networks = []
        for cidr in raw.get(key) or []:
            try:
                networks.append(ipaddress.ip_network(str(cidr), strict=False))
            except ValueError:
                continue
        return any(address.version == n.version and address in n for n in networks)

    def reach(check: str, key: str, why: str) -> Finding:
        if covered(key):
            return Finding(check, True, f"{address} is in {key}")
        suffix = "32" if address.version == 4 else "128"
        return Finding(check, False, f"this machine ({address}) is not in {PROJECT}:{key}, and {why}: add {address}/{suffix}")

    findings = [reach("SSH reach", "sshAllowedCidrs", "the install runs over SSH from here")]
    if raw.get("harborApiUrl"):
        findings.append(Finding("Harbor API reach", True, f"through harborApiUrl {raw['harborApiUrl']} (an SSH tunnel)"))
    else:
        api = reach("Harbor API reach", "allowedCidrs", "`pulumi up` configures Harbor through its API on 443")
        if not api.ok:
            hint = ", or tunnel over SSH and set harborApiUrl (docs/configuration.md, Harbor configuration as code)"
            api = Finding(api.check, False, api.message + hint)
        findings.append(api)
    return findings


def preflight(
    stack: str,
    root: Path = ROOT,
    lookup: Callable[[], str] | None = None,
) -> list[Finding]:
    raw, region = stack_config(stack, root)
    config = (yaml.safe_load((root / f"Pulumi.{stack}.yaml").read_text()) or {}).get("config") or {}
    findings = []
    settings_raw = {k: v for k, v in raw.items() if not (k == "adminPassword" and v == PLACEHOLDER_SECRET)}
    try:
        parse_settings(settings_raw, stack=stack, region=region, plain_keys=plain_keys(stack, root))
        findings.append(Finding("configuration", True, f"Pulumi.{stack}.yaml passes the program's validation"))
    except SettingsError as error:
        findings += [Finding("configuration", False, str(problem)) for problem in error.problems]
    findings += example_value_findings(raw, config)
    findings += aws_findings(raw, region, stack_secrets_provider(stack, root))
    address_url = os.environ.get("HARBOR_CACHE_ADDRESS_URL", ADDRESS_URL)
    findings += address_findings(raw, lookup or (lambda: public_address(address_url)))
    return findings


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m components.preflight <stack>", file=sys.stderr)
        return 2
    # Pulumi reads Pulumi.<stack>.yaml from the project folder, where deploy.sh runs this.
    findings = preflight(args[0], Path.cwd())
    for finding in findings:
        print(finding)
    failed = [f for f in findings if not f.ok]
    if failed:
        print(f"preflight: {len(failed)} problem(s); nothing was created", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
