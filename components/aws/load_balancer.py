"""HarborLoadBalancer: the Application Load Balancer in front of the Harbor nodes (replicas > 1, issue 13 step 3).

The ALB terminates TLS with an ACM certificate for the cache's hostname (validated by a Route53
record, so nothing on the nodes holds a certificate or a DNS permission) and forwards plain HTTP to
each node's Harbor nginx on 8080. Port 80 only redirects to 443. Nodes register themselves in the
target group (components/aws/vm.py): this group must exist before theirs, which admits it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.network_rules import web_ingress
from components.aws.tagging import PUBLIC_ACCESS_TAG, resource_tags
from components.settings.settings import Settings
from components.vm.node_ready import READY_PATH
from components.vm.paths import (
    HARBOR_HTTP_PORT,
    LOAD_BALANCER_CHECK_INTERVAL_SECONDS,
    LOAD_BALANCER_CHECK_TIMEOUT_SECONDS,
    LOAD_BALANCER_DEREGISTRATION_DELAY_SECONDS,
    LOAD_BALANCER_HEALTHY_THRESHOLD,
    LOAD_BALANCER_IDLE_TIMEOUT_SECONDS,
    LOAD_BALANCER_UNHEALTHY_THRESHOLD,
)

# TLS 1.3 with TLS 1.2 fallback, forward-secret AEAD ciphers only: the policy AWS recommends for
# compatibility with TLS 1.3 (ELB User Guide, "Security policies for your Application Load
# Balancer"); containerd, Docker and CRI-O all speak TLS 1.2+.
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
# Harbor's nginx gives /v2/ (blobs) proxy_read_timeout and proxy_send_timeout 900 s
# (make/photon/prepare/templates/nginx/nginx.http.conf.jinja, v2.15.2): a cold pull of a large layer
# may stay silent that long while core fetches it upstream. The ALB's idle timeout accepts 1..4000 s
# (ELB API, LoadBalancerAttribute idle_timeout.timeout_seconds; default 60, which would cut such
# pulls); 900 matches nginx, so neither side gives up first without the other. Each node's nginx keeps
# idle connections open longer than this (components/vm/ha_node.py nginx_keepalive_timeout, rendered from the same value).
IDLE_TIMEOUT_SECONDS = LOAD_BALANCER_IDLE_TIMEOUT_SECONDS
# Scale-down (a node's target attachment deleted): requests in flight get this long to finish, about
# a 1 GiB layer at 10 MB/s. AWS's default is 300 s.
DEREGISTRATION_DELAY_SECONDS = LOAD_BALANCER_DEREGISTRATION_DELAY_SECONDS
# Harbor's ping: core answers 200 "Pong" (src/server/v2.0/handler/ping.go) and nginx a 502 when core
# is down. /api/v2.0/health is no use to an ALB: it answers 200 also when a component is unhealthy
# (handler/health.go GetHealth always returns NewGetHealthOK; the status is in the body, which an
# ALB health check does not read) and checks every component, up to 60 s each
# (src/controller/health/controller.go). Component health goes to CloudWatch per node instead
# (components/aws/alarms.py).
# Asked through a location of ours (components/vm/node_ready.py): core's ping, unless the node's
# end-to-end check has marked it (its registry cannot serve from the bucket; issue 18 point 8).
HEALTH_CHECK_PATH = READY_PATH
HEALTH_CHECK = {
    "enabled": True,
    "protocol": "HTTP",
    "port": "traffic-port",
    "path": HEALTH_CHECK_PATH,
    "matcher": "200",
    "interval": LOAD_BALANCER_CHECK_INTERVAL_SECONDS,
    "timeout": LOAD_BALANCER_CHECK_TIMEOUT_SECONDS,
    "healthy_threshold": LOAD_BALANCER_HEALTHY_THRESHOLD,
    "unhealthy_threshold": LOAD_BALANCER_UNHEALTHY_THRESHOLD,
}


@dataclass(frozen=True)
class HarborLoadBalancerArgs:
    settings: Settings
    vpc_id: pulumi.Input[str]
    # One subnet per AZ the nodes use (at least 2 AZs, checked in settings and components/aws/vm.py).
    subnet_ids: list[pulumi.Input[str]]
    # The IPv4 blocks of the nodes' subnets: where the load balancer sends traffic.
    node_cidrs: pulumi.Input[list[str]]
    # The public hosted zone of settings.hostname: the certificate's validation record goes there.
    hosted_zone_id: pulumi.Input[str]
    # The CAA record that admits Amazon's CA: ACM checks CAA before it issues, and a stack coming
    # from one VM still has a record that admits only its Let's Encrypt account.
    certificate_after: tuple[pulumi.Resource, ...] = ()
    # Each node's Elastic IP (components/aws/vm.py), in node order: their reporters check the public
    # path through this load balancer (components/vm/operate_files.py reporter_environment).
    node_public_ips: tuple[pulumi.Input[str], ...] = ()


def node_address_ingress(node_public_ips: tuple[pulumi.Input[str], ...]) -> list[dict]:
    """443 from each node's Elastic IP, one rule per node: its reporter checks the public path as a
    client does. A node's request to the load balancer's public address leaves through the internet
    gateway and arrives from its Elastic IP, and a rule naming the nodes' security group matches only
    their private addresses ("Incoming traffic is allowed based on the private IP addresses of the
    network interfaces associated with the source security group (and not the public IP or Elastic IP
    addresses)": Amazon VPC User Guide, "Security group rules", Security group referencing), so the
    addresses themselves, each a /32. Inline in the group like every rule of the program: the policy
    pack refuses stand-alone rules, and the EIPs come through deferred outputs (components/harbor_cache.py)."""
    return [
        {
            "description": f"443 from the Elastic IP of node {index} (its public path check)",
            "protocol": "tcp",
            "from_port": 443,
            "to_port": 443,
            "cidr_blocks": [pulumi.Output.from_input(address).apply(lambda ip: f"{ip}/32")],
        }
        for index, address in enumerate(node_public_ips)
    ]


def load_balancer_egress(node_cidrs: pulumi.Input[list[str]]) -> list[dict]:
    """Out only to Harbor's 8080 in the nodes' subnets (which may lie in a secondary block of the VPC).
    CIDRs, not the nodes' group: that group admits this one already, and two groups naming each other
    inline cannot be created. The nodes' group is the gate."""
    return [
        {
            "description": f"Harbor {HARBOR_HTTP_PORT} on the nodes",
            "protocol": "tcp",
            "from_port": HARBOR_HTTP_PORT,
            "to_port": HARBOR_HTTP_PORT,
            "cidr_blocks": node_cidrs,
        }
    ]


class HarborLoadBalancer(pulumi.ComponentResource):
    def __init__(self, name: str, args: HarborLoadBalancerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("harbor-cache:index:HarborLoadBalancer", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)
        public = {PUBLIC_ACCESS_TAG: "true"} if settings.allow_public_access else {}
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            description=f"harbor-cache {settings.hostname}: load balancer, HTTPS from allowedCidrs",
            vpc_id=args.vpc_id,
            # Who may use the cache, as the one VM admits them, and the nodes' own public path checks.
            ingress=[*web_ingress(settings), *node_address_ingress(args.node_public_ips)],
            egress=load_balancer_egress(args.node_cidrs),
            tags=resource_tags(settings, f"{name}-sg", **public),
            opts=child,
        )

        # The certificate, validated through the hosted zone: ACM checks CAA too (components/aws/caa.py).
        self.certificate = aws.acm.Certificate(
            f"{name}-certificate",
            domain_name=settings.hostname,
            validation_method="DNS",
            tags=resource_tags(settings, f"{name}-certificate"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.certificate_after)),
        )
        # One name, hence one validation option (ACM's CNAME, reused across renewals).
        option = self.certificate.domain_validation_options.apply(lambda options: options[0])
        self.validation_record = aws.route53.Record(
            f"{name}-certificate-validation",
            zone_id=args.hosted_zone_id,
            name=option.resource_record_name,
            type=option.resource_record_type,
            records=[option.resource_record_value],
            ttl=300,
            # ACM gives every certificate for this name the same CNAME: a replaced certificate
            # finds the record of the old one in place.
            allow_overwrite=True,
            opts=child,
        )
        self.validation = aws.acm.CertificateValidation(
            f"{name}-certificate-issued",
            certificate_arn=self.certificate.arn,
            validation_record_fqdns=[self.validation_record.fqdn],
            opts=child,
        )

        self.load_balancer = aws.lb.LoadBalancer(
            f"{name}-alb",
            internal=False,
            load_balancer_type="application",
            security_groups=[self.security_group.id],
            subnets=args.subnet_ids,
            idle_timeout=IDLE_TIMEOUT_SECONDS,
            # Requests with header names that are not valid HTTP are dropped, not passed to Harbor.
            drop_invalid_header_fields=True,
            tags=resource_tags(settings, f"{name}-alb"),
            opts=child,
        )
        self.target_group = aws.lb.TargetGroup(
            f"{name}-nodes",
            port=HARBOR_HTTP_PORT,
            protocol="HTTP",
            target_type="instance",
            vpc_id=args.vpc_id,
            deregistration_delay=DEREGISTRATION_DELAY_SECONDS,
            health_check=HEALTH_CHECK,
            tags=resource_tags(settings, f"{name}-nodes"),
            opts=child,
        )
        self.https_listener = aws.lb.Listener(
            f"{name}-https",
            load_balancer_arn=self.load_balancer.arn,
            port=443,
            protocol="HTTPS",
            ssl_policy=TLS_POLICY,
            certificate_arn=self.validation.certificate_arn,
            default_actions=[{"type": "forward", "target_group_arn": self.target_group.arn}],
            tags=resource_tags(settings, f"{name}-https"),
            opts=child,
        )
        self.http_listener = aws.lb.Listener(
            f"{name}-http",
            load_balancer_arn=self.load_balancer.arn,
            port=80,
            protocol="HTTP",
            default_actions=[{"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"}}],
            tags=resource_tags(settings, f"{name}-http"),
            opts=child,
        )

        self.dns_name = self.load_balancer.dns_name
        self.zone_id = self.load_balancer.zone_id
        self.register_outputs(
            {
                "dnsName": self.dns_name,
                "arn": self.load_balancer.arn,
                "targetGroupArn": self.target_group.arn,
                "certificateArn": self.certificate.arn,
            }
        )
