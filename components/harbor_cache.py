"""HarborCache: the whole deployment for one stack, composed from its parts."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.alarms import HarborAlarms, HarborAlarmsArgs, LoadBalancerMetrics
from components.aws.backup_watch import HarborBackupWatch, HarborBackupWatchArgs
from components.aws.caa import HarborCaa, HarborCaaArgs
from components.aws.dashboard import HarborDashboard, HarborDashboardArgs
from components.aws.data_services import HarborDataServices, HarborDataServicesArgs
from components.aws.dns import HarborDns, HarborDnsArgs, LoadBalancerAlias
from components.aws.load_balancer import DEREGISTRATION_DELAY_SECONDS, HarborLoadBalancer, HarborLoadBalancerArgs
from components.aws.placement import checked_vpc_id, checked_zones, node_subnets
from components.aws.storage import HarborStorage, HarborStorageArgs
from components.aws.target_drain import rolling_hooks
from components.aws.vm import HarborVm, HarborVmArgs, LoadBalancerTarget
from components.harbor.config import HarborConfig, HarborConfigArgs, database_identity, oidc_redirect_uri
from components.nodes.mirrors import mirror_options
from components.nodes.outputs import stack_outputs
from components.settings.settings import Settings
from components.vm.harbor_yml import DataEndpoints
from components.vm.install import HarborInstall, HarborInstallArgs, node_connection
from components.vm.operate_files import render_prometheus_scrape_configs
from components.vm.paths import HARBOR_HTTP_PORT
from components.vm.probe import HarborProbe, HarborProbeArgs
from components.vm.rolling import RollingHooks
from components.vm.shared_secrets import HarborSharedSecrets, HarborSharedSecretsArgs
from components.vm.upgrade_hold import HarborUpgradeHold, HarborUpgradeHoldArgs


@dataclass(frozen=True)
class HarborCacheArgs:
    settings: Settings
    # The installer sha256 verified from Harbor's signature (components/vm/installer_signature.py).
    installer_sha256: str


def install_name(name: str, index: int) -> str:
    """Node 0 keeps the single VM's `harbor-install` (as its VM keeps `harbor-vm-*`); node i is `harbor-install-<i>`."""
    return f"{name}-install" if index == 0 else f"{name}-install-{index}"


class HarborCache(pulumi.ComponentResource):
    def __init__(self, name: str, args: HarborCacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("harbor-cache:index:HarborCache", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)

        # replicas > 1 (issue 13 step 3): the load balancer comes first, because the nodes' security
        # group admits only its group; before it, the CAA record that lets ACM issue.
        self.load_balancer: HarborLoadBalancer | None = None
        subnets = None
        load_balancer_target = None
        if settings.high_availability:
            hosted_zone = aws.route53.get_zone_output(
                name=settings.zone_name, private_zone=False, opts=pulumi.InvokeOutputOptions(parent=self)
            )
            subnets = node_subnets(settings, self)
            subnet_ids: list[pulumi.Input[str]] = [subnet.id for subnet in subnets]
            if settings.subnet_ids:
                # Their AZs are AWS's answer: the load balancer waits for the check, as the nodes do.
                checked = checked_zones(settings, subnets)
                subnet_ids = [pulumi.Output.all(checked, subnet.id).apply(lambda values: values[1]) for subnet in subnets]
            # The nodes' Elastic IPs for the load balancer's group, which must exist before the nodes
            # (their group admits it): deferred, resolved once HarborVm made them (below).
            node_addresses = [pulumi.deferred_output() for _ in range(settings.replicas)]
            self.caa = HarborCaa(f"{name}-caa", HarborCaaArgs(settings=settings, zone_id=hosted_zone.zone_id), opts=child)
            self.load_balancer = HarborLoadBalancer(
                f"{name}-lb",
                HarborLoadBalancerArgs(
                    settings=settings,
                    # storage: s3 (always in HA): its blocks checked against Harbor's fixed network first.
                    vpc_id=checked_vpc_id(settings, subnets[0].vpc_id, self),
                    subnet_ids=subnet_ids,
                    node_cidrs=pulumi.Output.all(*[subnet.cidr_block for subnet in subnets]).apply(
                        lambda blocks: sorted(set(blocks))
                    ),
                    hosted_zone_id=hosted_zone.zone_id,
                    certificate_after=(self.caa.record,),
                    node_public_ips=tuple(address for address, _ in node_addresses),
                ),
                opts=child,
            )
            load_balancer_target = LoadBalancerTarget(
                security_group_id=self.load_balancer.security_group.id,
                target_group_arn=self.load_balancer.target_group.arn,
            )

        # externalServices: the instances join the stores' client group, made with the stores (below), after the
        # VM's group that the stores admit: deferred, resolved once HarborDataServices made it.
        stores_group_id, resolve_stores_group_id = pulumi.deferred_output() if settings.external_services else (None, None)
        self.vm = HarborVm(
            f"{name}-vm",
            HarborVmArgs(
                settings=settings,
                subnets=subnets,
                load_balancer=load_balancer_target,
                stores_security_group_id=stores_group_id,
            ),
            opts=child,
        )
        if self.load_balancer is not None:
            for (_, resolve), node in zip(node_addresses, self.vm.nodes, strict=True):
                resolve(node.public_ip)
        # One VM: the name (and Traefik's DNS-01 permission) before the install. HA: the name moves to
        # the load balancer only once node 0 serves (below).
        if self.load_balancer is None:
            self.dns = HarborDns(
                f"{name}-dns",
                HarborDnsArgs(settings=settings, public_ip=self.vm.public_ip, instance_role_name=self.vm.role.name),
                opts=child,
            )
            zone_id = self.dns.zone_id
            dns_ready = [r for r in (self.dns.record, self.dns.dns01_policy) if r is not None]
        else:
            zone_id = hosted_zone.zone_id
            dns_ready = []

        # Issue 13 steps 1 and 2: the stores outside the VM, when the settings ask for them.
        self.storage = (
            HarborStorage(
                f"{name}-storage", HarborStorageArgs(settings=settings, instance_role_name=self.vm.role.name), opts=child
            )
            if settings.storage == "s3"
            else None
        )
        self.data_services = (
            HarborDataServices(
                f"{name}-data",
                HarborDataServicesArgs(
                    settings=settings,
                    vpc_id=self.vm.vpc_id,
                    vm_security_group_id=self.vm.security_group.id,
                    # HA: the stores go in the nodes' subnets (one VM: its subnet alone spans one AZ).
                    node_subnet_ids=[subnet.id for subnet in subnets] if subnets else None,
                ),
                opts=child,
            )
            if settings.external_services
            else None
        )
        if self.data_services is not None and resolve_stores_group_id is not None:
            resolve_stores_group_id(self.data_services.client_security_group.id)
        placeholders = DataEndpoints()
        endpoints = pulumi.Output.all(
            self.storage.bucket_name if self.storage else placeholders.bucket,
            self.data_services.database_host if self.data_services else placeholders.database_host,
            self.data_services.redis_host if self.data_services else placeholders.redis_host,
        ).apply(lambda values: DataEndpoints(*values))
        store_ready = [r for r in (self.storage and self.storage.role_policy, self.data_services) if r is not None]

        # What every node must hold identically (Harbor's secret key, token key and certificate, the
        # core/jobservice secrets, ...): generated once, laid on each node by its install. Also for
        # one VM on RDS: the secret key encrypts what Harbor stores there (upstream credentials, the
        # OIDC secret), so a later switch to HA must find the key that database was written with.
        self.shared_secrets = (
            HarborSharedSecrets(f"{name}-shared", HarborSharedSecretsArgs(settings=settings), opts=child)
            if settings.high_availability or settings.external_services
            else None
        )

        # HA: each node leaves the load balancer before its Harbor stops and rejoins it, healthy, after
        # (issue 18 point 5); on a new harborVersion the other nodes first leave and stop their older
        # Harbor while node 0 migrates the database (point 6).
        def hooks(node) -> RollingHooks | None:
            if self.load_balancer is None:
                return None
            target_group = self.load_balancer.target_group.arn
            return rolling_hooks(target_group, node.instance.id, HARBOR_HTTP_PORT, settings.region, DEREGISTRATION_DELAY_SECONDS)

        holds: list[pulumi.Resource] = []
        for node in self.vm.nodes[1:]:
            rolling = hooks(node)
            assert rolling is not None, "nodes beyond 0 exist only behind the load balancer"
            prefix = install_name(name, node.index)
            left = rolling.leave(
                f"{prefix}-upgrade-leave",
                [node.instance.id, settings.harbor_version],
                pulumi.ResourceOptions(parent=self, depends_on=[node.eip_association]),
            )
            holds.append(
                HarborUpgradeHold(
                    f"{prefix}-upgrade-hold",
                    HarborUpgradeHoldArgs(
                        settings=settings,
                        connection=node_connection(settings, node.public_ip, node.host_public_key, self.vm.ssh_private_key),
                        instance_id=node.instance.id,
                        depends_on=[left, node.eip_association],
                    ),
                    opts=child,
                )
            )

        # One install per node, each the same remote commands. Rolling: node i starts only once node
        # i-1 is back in the load balancer and healthy there, so a change restarts one node at a time
        # while the others serve.
        self.installs: list[HarborInstall] = []
        # The alarm topic is made with the alarms, after the installs (the alarms wait for the
        # reporter); each reporter counts its confirmed subscribers, so its unit waits for the topic.
        alarm_topic_arn, resolve_alarm_topic_arn = pulumi.deferred_output()
        for node in self.vm.nodes:
            previous = [self.installs[-1].rejoined] if self.installs else holds
            self.installs.append(
                HarborInstall(
                    install_name(name, node.index),
                    HarborInstallArgs(
                        settings=settings,
                        installer_sha256=args.installer_sha256,
                        host=node.public_ip,
                        host_public_key=node.host_public_key,
                        private_key=self.vm.ssh_private_key,
                        instance_id=node.instance.id,
                        data_volume_id=node.data_volume.id,
                        zone_id=zone_id,
                        depends_on=[
                            node.data_attachment,
                            node.running,
                            node.eip_association,
                            *dns_ready,
                            *store_ready,
                            *previous,
                        ],
                        endpoints=endpoints,
                        external_database_password=self.data_services.database_password if self.data_services else "",
                        redis_password=self.data_services.redis_password if self.data_services else "",
                        shared_secrets=self.shared_secrets.values if self.shared_secrets else None,
                        node_index=node.index,
                        rolling=hooks(node),
                        alarm_topic_arn=alarm_topic_arn,
                    ),
                    opts=child,
                )
            )
        self.install = self.installs[0]
        # The last node is ready only after every node before it: the gate for Harbor's configuration.
        all_ready = self.installs[-1].rejoined

        if self.load_balancer is not None:
            # The alias waits for node 0's readiness gate: on a switch from one VM the name keeps
            # pointing at the VM (node 0) until the load balancer has a node to send traffic to.
            self.dns = HarborDns(
                f"{name}-dns",
                HarborDnsArgs(
                    settings=settings,
                    load_balancer=LoadBalancerAlias(dns_name=self.load_balancer.dns_name, zone_id=self.load_balancer.zone_id),
                    record_after=(self.install.rejoined,),
                ),
                opts=child,
            )

        if not settings.high_availability:
            self.caa = HarborCaa(
                f"{name}-caa",
                HarborCaaArgs(
                    settings=settings, zone_id=self.dns.zone_id, connection=self.install.connection, ready=self.install.ready
                ),
                opts=child,
            )

        # With several nodes settings.url is the load balancer (the alias record): the provider talks to it.
        self.config = HarborConfig(
            f"{name}-config",
            HarborConfigArgs(
                settings=settings,
                admin_password=self.install.admin_password,
                ready=all_ready,
                # HA: the provider reaches Harbor by the name that now leads to the load balancer.
                also_after=(self.dns.record,) if self.load_balancer is not None else (),
                # Harbor's objects are made again when its database changes (issue 13).
                database=database_identity(self.data_services),
            ),
            opts=child,
        )

        # The probe runs on every node (issue 18 point 8): each proves its own path to the bucket, and
        # in HA its timer takes a failing node out of the load balancer. Node 0's keeps the single VM's name.
        self.probes = [
            HarborProbe(
                f"{name}-probe" if node.index == 0 else f"{name}-probe-{node.index}",
                HarborProbeArgs(
                    settings=settings,
                    host=node.public_ip,
                    host_public_key=node.host_public_key,
                    private_key=self.vm.ssh_private_key,
                    public_ip=node.public_ip,
                    triggers=[node.instance.id, install.start.id, *self.config.projects.values()],
                    # The smoke step puts its result with the installed reporter.
                    depends_on=[self.config, install.timers],
                    probe_login=self.config.probe_login,
                    monitor_login=self.config.monitor_login,
                ),
                opts=child,
            )
            for node, install in zip(self.vm.nodes, self.installs, strict=True)
        ]
        self.probe = self.probes[0]

        self.alarms = HarborAlarms(
            f"{name}-alarms",
            HarborAlarmsArgs(
                settings=settings,
                instance_id=self.vm.instance.id,
                instance_role_name=self.vm.role.name,
                reporting=[install.timers for install in self.installs],
                # The probe's alarms treat silence as failure: they start once the deploy's smoke step reported.
                probed=tuple(
                    step for probe in self.probes for step in (probe.smoke, probe.monitor_credentials) if step is not None
                ),
                other_instance_ids=tuple(node.instance.id for node in self.vm.nodes[1:]),
                load_balancer=LoadBalancerMetrics(
                    load_balancer=self.load_balancer.load_balancer.arn_suffix,
                    target_group=self.load_balancer.target_group.arn_suffix,
                    certificate=self.load_balancer.certificate.arn,
                )
                if self.load_balancer is not None
                else None,
                stores=self.data_services.metrics if self.data_services is not None else None,
            ),
            opts=child,
        )

        resolve_alarm_topic_arn(self.alarms.topic_arn)

        # DLM's errors and failed snapshots of the data volume go to the alarm topic.
        self.backup_watch = HarborBackupWatch(
            f"{name}-backup-watch",
            HarborBackupWatchArgs(
                settings=settings,
                topic=self.alarms.topic,
                snapshot_policy_arn=self.vm.snapshot_policy.arn,
                data_volume_id=self.vm.data_volume.id,
            ),
            opts=child,
        )

        self.dashboard = HarborDashboard(
            f"{name}-dashboard",
            HarborDashboardArgs(
                settings=settings,
                load_balancer=self.load_balancer.load_balancer.arn_suffix if self.load_balancer is not None else None,
                certificate_arn=self.load_balancer.certificate.arn if self.load_balancer is not None else None,
                # The alarm widget shows at most 100 alarms.
                alarm_arns=tuple(alarm.arn for alarm in list(self.alarms.alarms.values())[:100]),
            ),
            opts=child,
        )

        self.outputs: dict[str, pulumi.Input] = {
            "url": settings.url,
            "hostname": settings.hostname,
            "publicIp": self.vm.public_ip,
            "instanceId": self.vm.instance.id,
            "dataVolumeId": self.vm.data_volume.id,
            "sshUser": settings.ssh_user,
            "sshHost": self.vm.public_ip,
            "sshPrivateKey": self.vm.ssh_private_key,
            "harborAdminPassword": self.install.admin_password,
            "harborInstallerSha256": self.install.installer_sha256,
            "projects": self.config.projects,
            "alarmTopicArn": self.alarms.topic_arn,
            "smoke": self.probe.results,
            "prometheusScrapeConfig": render_prometheus_scrape_configs(settings),
            "dashboardUrl": self.dashboard.url,
            # How metrics, alarms and snapshot tags name this stack (organization/project/stack).
            "stackId": settings.stack_id,
            "grafanaDashboard": self.dashboard.grafana,
            **stack_outputs(settings.hostname, settings.upstreams, mirror_options(settings)),
        }
        if self.load_balancer is not None:
            self.outputs["prometheusScrapeConfig"] = pulumi.Output.all(*[node.public_ip for node in self.vm.nodes]).apply(
                lambda ips: render_prometheus_scrape_configs(settings, list(ips))
            )
            # publicIp / instanceId / sshHost / dataVolumeId stay node 0's (SSH lands there, the probe runs there).
            self.outputs["loadBalancerDnsName"] = self.load_balancer.dns_name
            self.outputs["nodes"] = [
                {"instanceId": node.instance.id, "publicIp": node.public_ip, "sshHost": node.public_ip} for node in self.vm.nodes
            ]
        if self.config.pull_credential is not None:
            self.outputs["registryPullCredentials"] = self.config.pull_credential
        if self.config.dex_static_client is not None:
            self.outputs["dexStaticClient"] = self.config.dex_static_client
            self.outputs["oidcRedirectUri"] = oidc_redirect_uri(settings.hostname)
        self.register_outputs(self.outputs)
