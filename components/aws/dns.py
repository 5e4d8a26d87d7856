"""HarborDns: the A record of the cache, and the one permission Traefik needs for DNS-01.

With replicas > 1 the same name is an alias of the load balancer (the nodes' mirror configuration
does not change) and there is no DNS-01: ACM's certificate on the load balancer replaces Traefik's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.settings.settings import Settings


@dataclass(frozen=True)
class LoadBalancerAlias:
    """The load balancer's DNS name and canonical hosted zone id (aws.lb.LoadBalancer dns_name / zone_id)."""

    dns_name: pulumi.Input[str]
    zone_id: pulumi.Input[str]


@dataclass(frozen=True)
class HarborDnsArgs:
    settings: Settings
    # One VM: its Elastic IP, and the instance role that gets the DNS-01 permission.
    public_ip: pulumi.Input[str] | None = None
    instance_role_name: pulumi.Input[str] | None = None
    # replicas > 1: the load balancer the name points at instead, and what the alias waits for.
    load_balancer: LoadBalancerAlias | None = None
    record_after: tuple[pulumi.Resource, ...] = ()


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
        self.dns01_policy: aws.iam.RolePolicy | None = None
        if args.load_balancer is not None:
            # An alias costs no queries and follows the load balancer's addresses; the name stays.
            # Same resource name as the single VM's record: switching to HA updates it in place.
            self.record = aws.route53.Record(
                f"{name}-a",
                zone_id=zone.zone_id,
                name=settings.hostname,
                type="A",
                aliases=[
                    {
                        "name": args.load_balancer.dns_name,
                        "zone_id": args.load_balancer.zone_id,
                        "evaluate_target_health": True,
                    }
                ],
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.record_after)),
            )
        else:
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
