"""HarborDns: the A record of the cache, and the one permission Traefik needs for DNS-01."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.settings import Settings


@dataclass(frozen=True)
class HarborDnsArgs:
    settings: Settings
    public_ip: pulumi.Input[str]
    instance_role_name: pulumi.Input[str]


def acme_challenge_name(hostname: str) -> str:
    return f"_acme-challenge.{hostname}"


def dns01_policy(zone_id: str, hostname: str) -> dict:
    """What lego's route53 provider calls, and nothing more: TXT changes to one name in one zone.

    Traefik gets the zone id (AWS_HOSTED_ZONE_ID), so lego never looks the zone up and needs no
    `ListHostedZonesByName` on `*`. With the id set, Present/CleanUp call ListResourceRecordSets,
    ChangeResourceRecordSets and GetChange until INSYNC (go-acme/lego v5.2.2, the version Traefik
    v3.6.24 vendors: providers/dns/route53/route53.go, getHostedZoneID returns the configured id first).
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ChangeOnlyTheAcmeChallengeRecord",
                "Effect": "Allow",
                "Action": "route53:ChangeResourceRecordSets",
                "Resource": f"arn:aws:route53:::hostedzone/{zone_id}",
                "Condition": {
                    "ForAllValues:StringEquals": {
                        # Normalised names are lower case without the trailing dot.
                        "route53:ChangeResourceRecordSetsNormalizedRecordNames": [acme_challenge_name(hostname)],
                        "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"],
                    }
                },
            },
            {
                "Sid": "ReadTheZone",
                "Effect": "Allow",
                "Action": "route53:ListResourceRecordSets",
                "Resource": f"arn:aws:route53:::hostedzone/{zone_id}",
            },
            {
                "Sid": "WaitForPropagation",
                "Effect": "Allow",
                "Action": "route53:GetChange",
                "Resource": "arn:aws:route53:::change/*",
            },
        ],
    }


class HarborDns(pulumi.ComponentResource):
    def __init__(self, name: str, args: HarborDnsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("harbor-cache:index:HarborDns", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)

        zone = aws.route53.get_zone_output(
            name=settings.zone_name, private_zone=False, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        self.zone_id = zone.zone_id
        self.record = aws.route53.Record(
            f"{name}-a",
            zone_id=zone.zone_id,
            name=settings.hostname,
            type="A",
            ttl=300,
            records=[args.public_ip],
            opts=child,
        )
        self.dns01_policy = aws.iam.RolePolicy(
            f"{name}-dns01",
            role=args.instance_role_name,
            policy=zone.zone_id.apply(lambda zone_id: json.dumps(dns01_policy(zone_id, settings.hostname))),
            opts=child,
        )
        self.register_outputs({"zoneId": self.zone_id, "fqdn": self.record.fqdn})
