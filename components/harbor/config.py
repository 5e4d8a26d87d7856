"""HarborConfig: Harbor's configuration as code, once the install reports Harbor healthy.

One registry endpoint and one proxy-cache project per upstream, OIDC login through dex with a
generated client secret, and a garbage-collection schedule. Each proxy project's retention policy
(keep what was pulled in the last N days) is set explicitly; GC then frees the disk.

Every object also carries the identity of the database Harbor keeps it in (`database_identity`):
when that changes (`externalServices` or `replicas` moving Harbor onto RDS, or back), Harbor starts
on an empty database and the providers re-create every object there (components/harbor/provider_base.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random

from components.aws.data_services import HarborDataServices
from components.harbor.gc_schedule import HarborGcSchedule
from components.harbor.oidc import HarborOidcAuth
from components.harbor.project import HarborProject
from components.harbor.provider_base import LOCAL_DATABASE, HarborConnection
from components.harbor.registry import HarborRegistry
from components.harbor.robot import HarborRobot
from components.harbor.system_settings import ROBOT_NAME_PREFIX, HarborSystemSettings
from components.nodes.credentials import pull_credential_outputs
from components.nodes.mirrors import PullCredential, mirror_options
from components.settings.settings import Settings
from components.settings.upstreams import Upstream

GC_WORKERS = 1
PULL_ROBOT_NAME = "harbor-cache-pull"
# The VM's reporter reads each upstream's health, the GC history and each proxy project's retention
# runs with this robot: system permissions to list registries and GC runs (handler/registry.go
# ListRegistries, handler/gc.go GetGCHistory: RequireSystemAccess(list, ...)), and in each proxy
# project, by name (not "*", which would cover every project), only the list of retention runs
# (handler/retention.go ListRetentionExecutions: requireAccess(list) -> RequireProjectAccess(scope
# ref, list, tag-retention); a project permission Harbor offers robots, src/common/rbac/const.go
# PoliciesMap[ScopeProject]). The policy id is read from GET /projects, which lists a robot the
# projects its permissions name, with their metadata, and needs no other permission
# (handler/project.go ListProjects).
MONITOR_ROBOT_NAME = "harbor-cache-monitor"
MONITOR_ACCESS = [{"resource": "registry", "action": "list"}, {"resource": "garbage-collection", "action": "list"}]
MONITOR_PROJECT_ACCESS = [{"resource": "tag-retention", "action": "list"}]
# 20 random bytes, base64: what `openssl rand -base64 20` gave in the manual setup (the policy pack floors it:
# policy/resource_checks.py RANDOM_BYTES).
OIDC_CLIENT_SECRET_BYTES = 20


@dataclass(frozen=True)
class HarborConfigArgs:
    settings: Settings
    admin_password: pulumi.Input[str]
    # The readiness gate of the install: nothing here may talk to Harbor before it is healthy.
    ready: pulumi.Resource
    # Which database Harbor keeps these objects in (database_identity); a change re-creates them.
    database: pulumi.Input[str] = LOCAL_DATABASE
    # Anything else the provider needs first (HA: the name that leads to the load balancer).
    also_after: tuple[pulumi.Resource, ...] = ()


def robot_login_name(name: str) -> str:
    """The name one of our robots logs in under: the prefix we own + the name it was made with, as
    Harbor authenticates it (server/middleware/security/robot.go Generate: the user name is the
    configured robot_name_prefix + the stored name; controller/robot populate shows it so).

    Not the robot's `robot_name` output: that is the name Harbor showed at the last create or
    refresh. A refresh after an admin changed the prefix records the interim name (`bot$...`), and
    the `up` that follows writes `robot$` back in the settings' step while the robot, unchanged in
    our terms, keeps the interim name in its state until the next refresh (its provider,
    components/harbor/robot.py, takes the name only from Harbor). Logins built from the prefix the
    settings own are right after every `up`, and never change with an admin's interim prefix."""
    return ROBOT_NAME_PREFIX + name


def database_identity(data_services: HarborDataServices | None) -> pulumi.Input[str]:
    """Names the database Harbor's objects live in: "local" for the PostgreSQL container on the VM's
    data volume, "rds:<instance id>" for the RDS instance of `externalServices` (one per stack,
    shared by every node, so going from one node to several keeps it).

    The instance's resource id, not its endpoint: an id is known in previews once the instance
    exists and names exactly one database; only the `up` that creates the instance previews it as
    unknown, which the providers show as the replace that `up` then does.
    """
    if data_services is None:
        return LOCAL_DATABASE
    return pulumi.Output.concat("rds:", data_services.database.id)


def oidc_redirect_uri(hostname: str) -> str:
    return f"https://{hostname}/c/oidc/callback"


def dex_static_client(settings: Settings, secret: str) -> dict:
    """A dex `staticClients` entry for Harbor, for the cluster's dex values."""
    return {
        "id": settings.oidc.client_id,
        "name": "Harbor",
        "secret": secret,
        "redirectURIs": [oidc_redirect_uri(settings.hostname)],
    }


class HarborConfig(pulumi.ComponentResource):
    def __init__(self, name: str, args: HarborConfigArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("harbor-cache:index:HarborConfig", name, None, opts)
        settings = args.settings
        self._settings = settings
        self._name = name
        self._connection = HarborConnection(
            url=settings.api_url, username="admin", password=args.admin_password, database=args.database
        )
        self._after_ready = [args.ready, *args.also_after]

        self.projects: dict[str, pulumi.Output[str]] = {}
        private_projects: list[HarborProject] = []
        proxy_projects: list[HarborProject] = []
        for upstream in settings.upstreams:
            registry = self._registry(upstream)
            project = self._project(upstream, registry)
            self.projects[upstream.registry_host] = project.name
            proxy_projects.append(project)
            if not upstream.public:
                private_projects.append(project)

        # Harbor's defaults a cache must not keep, and the robot name prefix kept at Harbor's default
        # (components/harbor/system_settings.py says why). The robots depend on it: Harbor shows and
        # authenticates a robot under the prefix as configured at that moment, so an `up` that puts
        # `robot$` back must do so before a robot is updated under the name the state holds.
        system_settings = HarborSystemSettings(
            f"{name}-system-settings",
            self._connection,
            {"project_creation_restriction": "adminonly", "self_registration": False, "robot_name_prefix": ROBOT_NAME_PREFIX},
            opts=self._options(),
        )

        # Private proxy projects: nodes pull with a robot that may only pull, from those projects.
        self.pull_credential: pulumi.Output[dict] | None = None
        self.probe_login: pulumi.Output[str] | None = None
        monitor = HarborRobot(
            f"{name}-monitor-robot",
            url=settings.api_url,
            username="admin",
            password=args.admin_password,
            robot_name=MONITOR_ROBOT_NAME,
            projects=[u.project for u in settings.upstreams],
            # Harbor keeps the permission by project id: a project made again needs the robot updated.
            project_ids=[project.id for project in proxy_projects],
            description="harbor-cache: the VM's reporter reads upstream health, GC and retention results",
            database=args.database,
            system_access=MONITOR_ACCESS,
            project_access=MONITOR_PROJECT_ACCESS,
            opts=self._options(depends_on=[system_settings, *proxy_projects]),
        )
        self.monitor_login = pulumi.Output.secret(pulumi.Output.concat(robot_login_name(MONITOR_ROBOT_NAME), ":", monitor.secret))
        if private_projects:
            robot = HarborRobot(
                f"{name}-pull-robot",
                url=settings.api_url,
                username="admin",
                password=args.admin_password,
                robot_name=PULL_ROBOT_NAME,
                projects=[u.project for u in settings.upstreams if not u.public],
                project_ids=[project.id for project in private_projects],
                # The description says what the robot may do; its change is what updates a robot
                # made before artifact read was added (the provider's diff compares inputs).
                description="harbor-cache: nodes pull the private proxy projects; the probe reads their artifacts",
                database=args.database,
                opts=self._options(depends_on=[system_settings, *private_projects]),
            )
            pull_login = robot_login_name(PULL_ROBOT_NAME)
            self.probe_login = pulumi.Output.secret(pulumi.Output.concat(pull_login, ":", robot.secret))
            self.pull_credential = pulumi.Output.secret(
                robot.secret.apply(
                    lambda secret: pull_credential_outputs(
                        settings.hostname, settings.upstreams, PullCredential(pull_login, secret), mirror_options(settings)
                    )
                )
            )

        self.dex_static_client: pulumi.Output[dict] | None = None
        if settings.oidc is not None:
            client_secret = random.RandomBytes(
                f"{name}-oidc-client-secret", length=OIDC_CLIENT_SECRET_BYTES, opts=pulumi.ResourceOptions(parent=self)
            )
            secret = pulumi.Output.secret(client_secret.base64)
            HarborOidcAuth(f"{name}-oidc", self._connection, self._oidc_props(secret), opts=self._options())
            self.dex_static_client = pulumi.Output.secret(secret.apply(lambda value: dex_static_client(settings, value)))

        HarborGcSchedule(
            f"{name}-gc",
            self._connection,
            {"cron": settings.gc_schedule, "delete_untagged": True, "workers": GC_WORKERS},
            opts=self._options(),
        )
        self.register_outputs({"projects": self.projects})

    def _options(self, depends_on: list[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
        # Objects that already exist in Harbor are adopted by the providers' create (the engine
        # cannot import dynamic resources).
        return pulumi.ResourceOptions(parent=self, depends_on=[*self._after_ready, *(depends_on or [])])

    def _registry(self, upstream: Upstream) -> HarborRegistry:
        props = {
            "name": upstream.name,
            "type": upstream.type,
            "url": upstream.url,
            "description": upstream.description or f"harbor-cache upstream {upstream.registry_host}",
            "insecure": upstream.insecure,
            "ca_certificate": upstream.ca_certificate,
        }
        if upstream.credential is not None:
            props["access_key"] = pulumi.Output.secret(upstream.credential.username.value)
            props["access_secret"] = pulumi.Output.secret(upstream.credential.password.value)
        return HarborRegistry(f"{self._name}-registry-{upstream.name}", self._connection, props, opts=self._options())

    def _project(self, upstream: Upstream, registry: HarborRegistry) -> HarborProject:
        props = {
            "name": upstream.project,
            # The registry's id, not its registry_id output: in a preview of an update the engine
            # only knows a dynamic resource's new inputs, so every output is unknown and a project
            # fed from one would show a replace. `id` stays known for an existing resource.
            "registry_id": registry.id.apply(int),
            "public": upstream.public,
            "storage_quota_gb": upstream.storage_quota_gb,
            "speed_limit_kbps": upstream.speed_limit_kbps,
            "local_on_not_found": upstream.local_on_not_found,
            "max_upstream_conn": upstream.max_upstream_conn,
            "retention_days": upstream.retention_days,
            "force_destroy": upstream.force_destroy,
        }
        return HarborProject(
            f"{self._name}-project-{upstream.name}",
            self._connection,
            props,
            opts=self._options(depends_on=[registry]),
        )

    def _oidc_props(self, secret: pulumi.Output[str]) -> dict:
        oidc = self._settings.oidc
        return {
            "oidc_name": oidc.name,
            "oidc_endpoint": oidc.issuer,
            "oidc_client_id": oidc.client_id,
            "oidc_client_secret": secret,
            "oidc_groups_claim": oidc.groups_claim,
            "oidc_admin_group": oidc.admin_group,
            "oidc_scope": oidc.scope,
            "oidc_verify_cert": oidc.verify_cert,
            "oidc_auto_onboard": oidc.auto_onboard,
            "oidc_user_claim": oidc.user_claim,
        }
