"""HarborCache: the whole deployment for one stack, composed from its parts."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.harbor_alarms import HarborAlarms, HarborAlarmsArgs
from components.harbor_caa import HarborCaa, HarborCaaArgs
from components.harbor_config import HarborConfig, HarborConfigArgs, database_identity, oidc_redirect_uri
from components.harbor_data_services import HarborDataServices, HarborDataServicesArgs
from components.harbor_dns import HarborDns, HarborDnsArgs
from components.harbor_install import HarborInstall, HarborInstallArgs
from components.harbor_probe import HarborProbe, HarborProbeArgs
from components.harbor_storage import HarborStorage, HarborStorageArgs
from components.harbor_vm import HarborVm, HarborVmArgs
from components.node_files import mirror_options, stack_outputs
from components.operate_files import render_prometheus_scrape_configs
from components.settings import Settings
from components.vm_files import DataEndpoints


@dataclass(frozen=True)
class HarborCacheArgs:
    settings: Settings


class HarborCache(pulumi.ComponentResource):
    def __init__(self, name: str, args: HarborCacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("harbor-cache:index:HarborCache", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)

        self.vm = HarborVm(f"{name}-vm", HarborVmArgs(settings=settings), opts=child)
        self.dns = HarborDns(
            f"{name}-dns",
            HarborDnsArgs(settings=settings, public_ip=self.vm.public_ip, instance_role_name=self.vm.role.name),
            opts=child,
        )

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
                HarborDataServicesArgs(settings=settings, vpc_id=self.vm.vpc_id, vm_security_group_id=self.vm.security_group.id),
                opts=child,
            )
            if settings.external_services
            else None
        )
        placeholders = DataEndpoints()
        endpoints = pulumi.Output.all(
            self.storage.bucket_name if self.storage else placeholders.bucket,
            self.data_services.database_host if self.data_services else placeholders.database_host,
            self.data_services.redis_host if self.data_services else placeholders.redis_host,
        ).apply(lambda values: DataEndpoints(*values))
        vm_ready = [self.vm.data_attachment, self.vm.eip_association, self.dns.record, self.dns.dns01_policy]
        store_ready = [r for r in (self.storage and self.storage.role_policy, self.data_services) if r is not None]

        self.install = HarborInstall(
            f"{name}-install",
            HarborInstallArgs(
                settings=settings,
                host=self.vm.public_ip,
                host_public_key=self.vm.host_public_key,
                private_key=self.vm.ssh_private_key,
                instance_id=self.vm.instance.id,
                data_volume_id=self.vm.data_volume.id,
                zone_id=self.dns.zone_id,
                depends_on=[*vm_ready, *store_ready],
                endpoints=endpoints,
                external_database_password=self.data_services.database_password if self.data_services else "",
                redis_password=self.data_services.redis_password if self.data_services else "",
            ),
            opts=child,
        )

        self.caa = HarborCaa(
            f"{name}-caa",
            HarborCaaArgs(
                settings=settings, zone_id=self.dns.zone_id, connection=self.install.connection, ready=self.install.ready
            ),
            opts=child,
        )

        self.config = HarborConfig(
            f"{name}-config",
            HarborConfigArgs(
                settings=settings,
                admin_password=self.install.admin_password,
                ready=self.install.ready,
                # Harbor's objects are made again when its database changes (issue 13).
                database=database_identity(self.data_services),
            ),
            opts=child,
        )

        self.alarms = HarborAlarms(
            f"{name}-alarms",
            HarborAlarmsArgs(
                settings=settings,
                instance_id=self.vm.instance.id,
                instance_role_name=self.vm.role.name,
                reporting=[self.install.timers],
            ),
            opts=child,
        )

        self.probe = HarborProbe(
            f"{name}-probe",
            HarborProbeArgs(
                settings=settings,
                host=self.vm.public_ip,
                host_public_key=self.vm.host_public_key,
                private_key=self.vm.ssh_private_key,
                public_ip=self.vm.public_ip,
                triggers=[self.vm.instance.id, self.install.start.id, *self.config.projects.values()],
                depends_on=[self.config],
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
            **stack_outputs(settings.hostname, settings.upstreams, mirror_options(settings)),
        }
        if self.config.pull_credential is not None:
            self.outputs["registryPullCredentials"] = self.config.pull_credential
        if self.config.dex_static_client is not None:
            self.outputs["dexStaticClient"] = self.config.dex_static_client
            self.outputs["oidcRedirectUri"] = oidc_redirect_uri(settings.hostname)
        self.register_outputs(self.outputs)
