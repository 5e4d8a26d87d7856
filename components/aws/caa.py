"""HarborCaa: a CAA record that lets only our Let's Encrypt account issue for the cache's name.

The instance role may write the `_acme-challenge` TXT record, so anyone holding it (Traefik, or
whoever takes the VM) could prove control of the name to any CA. CAA (RFC 8659) with the RFC 8657
`accounturi` parameter narrows that to one CA and one ACME account. The account exists only after
Traefik registered it, so the record is made after the readiness gate: a remote command reads the
account URI from Traefik's store and prints it.

With replicas > 1 the load balancer's certificate comes from ACM and no node may write DNS: the
record lets Amazon's CA issue (AWS Certificate Manager User Guide, "(Optional) Configure a CAA
record": the issue value must name amazon.com, amazontrust.com, awstrust.com or amazonaws.com, or
ACM cannot issue or renew), and nobody wildcards. It also lets Let's Encrypt issue by DNS-01 only
(RFC 8657 `validationmethods`): in HA nobody but the deployer may write the zone, who may change
this record anyway, so that grants no one anything; but on the way back to one VM the record is
narrowed to Traefik's account only after the readiness gate (the account is read from the VM), and
Traefik, whose certificate may have expired meanwhile, must be able to issue before that gate.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from pulumi_command import remote

from components.settings.settings import Settings
from components.vm.files import script
from components.vm.install import script_command
from components.vm.traefik import CERTIFICATE_RESOLVER

# Let's Encrypt's CAA identity, for production and staging alike (letsencrypt.org/docs/caa/).
CAA_ISSUER = "letsencrypt.org"
ACCOUNT_URL_PREFIX = "https://acme-v02.api.letsencrypt.org/acme/acct/"
STAGING_ACCOUNT_URL_PREFIX = "https://acme-staging-v02.api.letsencrypt.org/acme/acct/"
ACM_CAA_ISSUER = "amazon.com"


@dataclass(frozen=True)
class HarborCaaArgs:
    settings: Settings
    zone_id: pulumi.Input[str]
    # One VM: where Traefik's account is read, and the readiness gate (Harbor answers over HTTPS,
    # so Traefik has registered its account). None with replicas > 1 (ACM issues).
    connection: remote.ConnectionArgsDict | None = None
    ready: remote.Command | None = None


def acme_store_path(settings: Settings) -> str:
    """Where Traefik's acme.json lies on the VM (the override mounts <data>/traefik at /certificates)."""
    return f"{settings.data_mount}/traefik/acme.json"


def account_url_prefix(settings: Settings) -> str:
    return STAGING_ACCOUNT_URL_PREFIX if settings.acme_staging else ACCOUNT_URL_PREFIX


def caa_records(account_uri: str) -> list[str]:
    """Only our account at Let's Encrypt may issue for the name, and nobody may issue wildcards."""
    return [f'0 issue "{CAA_ISSUER}; accounturi={account_uri.strip()}"', '0 issuewild ";"']


def acm_caa_records() -> list[str]:
    """replicas > 1: Amazon's CA (ACM) may issue for the name, Let's Encrypt only through a DNS-01
    challenge (which needs a zone write no node can make: the way back to one VM), nobody wildcards."""
    return [f'0 issue "{ACM_CAA_ISSUER}"', f'0 issue "{CAA_ISSUER}; validationmethods=dns-01"', '0 issuewild ";"']


class HarborCaa(pulumi.ComponentResource):
    def __init__(self, name: str, args: HarborCaaArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("harbor-cache:index:HarborCaa", name, None, opts)
        settings = args.settings
        if settings.high_availability:
            self.account = None
            self.account_uri = None
            self.record = aws.route53.Record(
                f"{name}-caa",
                zone_id=args.zone_id,
                name=settings.hostname,
                type="CAA",
                ttl=300,
                records=acm_caa_records(),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.register_outputs({"issuer": ACM_CAA_ISSUER})
            return
        assert args.connection is not None and args.ready is not None, "one VM: the CAA record follows Traefik's account"
        self.account = remote.Command(
            f"{name}-acme-account",
            connection=args.connection,
            create=script_command(args=[acme_store_path(settings), CERTIFICATE_RESOLVER, account_url_prefix(settings)]),
            stdin=script("acme-account-uri.sh"),
            # Read again whenever the gate ran again (new VM, new start); otherwise nothing runs.
            triggers=[args.ready.id],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.ready]),
        )
        self.account_uri = self.account.stdout.apply(str.strip)
        self.record = aws.route53.Record(
            f"{name}-caa",
            zone_id=args.zone_id,
            name=settings.hostname,
            type="CAA",
            ttl=300,
            records=self.account.stdout.apply(caa_records),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"acmeAccountUri": self.account_uri})
