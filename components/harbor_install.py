"""HarborInstall: remote commands over SSH that lay Harbor's compose stack down on the VM.

Each step is a `pulumi_command.remote.Command` whose script arrives on stdin, so the script's text
is part of the step's inputs: a changed script, file or setting re-runs that step, an unchanged one
runs nothing. Secrets (harbor.yml) travel only on stdin, never on a command line.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

import pulumi
import pulumi_random as random
from pulumi_command import remote

from components import operate_files, vm_files
from components.settings import Settings


@dataclass(frozen=True)
class HarborInstallArgs:
    settings: Settings
    host: pulumi.Input[str]
    host_public_key: pulumi.Input[str]
    private_key: pulumi.Input[str]
    instance_id: pulumi.Input[str]
    data_volume_id: pulumi.Input[str]
    # The Route53 hosted zone of the hostname: Traefik's DNS-01 (lego route53) is told it, not left to look it up.
    zone_id: pulumi.Input[str]
    # The VM must have its volume attached, its DNS name and its DNS-01 permission before install.
    depends_on: list[pulumi.Resource]
    # storage: s3 / externalServices (issue 13): where the stores are, and their secrets.
    endpoints: pulumi.Input[vm_files.DataEndpoints] | None = None
    external_database_password: pulumi.Input[str] = ""
    redis_password: pulumi.Input[str] = ""
    # HA mode (replicas > 1, issue 13 step 3): what every node holds identically
    # (components/harbor_shared_secrets.py); None for the single VM, which keeps what prepare makes.
    shared_secrets: pulumi.Output[vm_files.SharedSecretValues] | None = None


def script_command(env: dict[str, pulumi.Input[str]] | None = None, args: list[str] | None = None) -> pulumi.Output[str]:
    """`sudo VAR=value bash -s -- args`: the script comes on stdin; only non-secret values here."""
    env = env or {}

    def build(values: list[str]) -> str:
        assignments = [f"{key}={shlex.quote(value)}" for key, value in zip(env, values, strict=True)]
        arguments = ["--", *map(shlex.quote, args)] if args else []
        return " ".join(["sudo", *assignments, "bash", "-s", *arguments])

    return pulumi.Output.all(*env.values()).apply(build)


def readiness_environment(settings: Settings) -> dict[str, str]:
    """wait-healthy.sh's settings: single VM, through Traefik over HTTPS under the public name; HA
    node, Harbor's nginx on this node's 127.0.0.1:8080 (no Traefik there; the load balancer checks
    the nodes itself and is not this node's to wait for)."""
    if settings.high_availability:
        return {"HEALTH_LOCAL_PORT": str(vm_files.HARBOR_HTTP_PORT), "HEALTH_LOG_CONTAINERS": HA_HEALTH_LOG_CONTAINERS}
    return {"ACME_STAGING": "1" if settings.acme_staging else "0"}


# An HA node runs no Traefik and no database container (RDS): the logs worth showing on a timeout.
HA_HEALTH_LOG_CONTAINERS = "nginx harbor-core registry"


INSTALLED_DIGEST_RE = re.compile(r"^installer-sha256=([0-9a-f]{64})$", re.MULTILINE)


def installed_digest(installer_stdout: str | None) -> str | None:
    """The sha256 of the installer the VM runs, from the last `installer-sha256=` line that
    files/install-harbor.sh prints; None before the step has run (preview)."""
    found = INSTALLED_DIGEST_RE.findall(installer_stdout or "")
    return found[-1] if found else None


def write_file_command(path: str, mode: str, owner: str = "root") -> str:
    """Writes stdin to `path` with its final mode and owner from the first byte (no readable window)."""
    return f"sudo install -D -m {mode} -o {owner} -g {owner} /dev/stdin {shlex.quote(path)}"


class HarborInstall(pulumi.ComponentResource):
    def __init__(self, name: str, args: HarborInstallArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("harbor-cache:index:HarborInstall", name, None, opts)
        settings = args.settings
        self._connection = remote.ConnectionArgsDict(
            host=args.host,
            user=settings.ssh_user,
            private_key=args.private_key,
            # The key the VM printed on its console (components/host_key_provider.py). pulumi-command
            # reads it with ssh.ParseAuthorizedKey and accepts that key only (ssh.FixedHostKey in
            # provider/pkg/provider/remote/connection.go), so no secret goes to an unverified host.
            host_key=args.host_public_key,
            # The VM may still be booting on the first up.
            dial_error_limit=40,
            per_dial_timeout=15,
        )
        self._name = name
        self.connection = self._connection

        if args.shared_secrets is not None:
            # Every node's harbor.yml carries the one shared admin password.
            self.admin_password = pulumi.Output.secret(args.shared_secrets.apply(lambda shared: shared.admin_password))
        elif settings.admin_password is not None:
            self.admin_password = pulumi.Output.secret(settings.admin_password.value)
        else:
            # Letters and digits only: the value passes through YAML, env files and compose unharmed.
            generated = random.RandomPassword(
                f"{name}-admin-password",
                length=24,
                special=False,
                min_upper=2,
                min_lower=2,
                min_numeric=2,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.admin_password = pulumi.Output.secret(generated.result)
        database_password = random.RandomPassword(
            f"{name}-database-password", length=32, special=False, opts=pulumi.ResourceOptions(parent=self)
        )

        endpoints = args.endpoints or vm_files.DataEndpoints()
        harbor_yml = pulumi.Output.secret(
            pulumi.Output.all(
                self.admin_password, database_password.result, args.external_database_password, args.redis_password, endpoints
            ).apply(lambda values: vm_files.render_harbor_yml(settings, vm_files.HarborSecrets(*values[:4]), values[4]))
        )
        shared = args.shared_secrets
        if shared is None:
            override = pulumi.Output.from_input(args.zone_id).apply(
                lambda zone_id: vm_files.render_compose_override(settings, zone_id)
            )
            override_mode = "0644"
        else:
            # HA node: the override carries the shared CORE_SECRET, CSRF_KEY, ... (vm_files.shared_secret_environment),
            # so it is a secret and written like harbor.yml.
            override = pulumi.Output.secret(
                pulumi.Output.all(args.zone_id, shared).apply(
                    lambda values: vm_files.render_compose_override(settings, values[0], values[1])
                )
            )
            override_mode = "0600"
        traefik_routes = vm_files.render_traefik_dynamic_config(settings)
        unit = vm_files.render_systemd_unit(settings)
        docker_dropin = vm_files.render_docker_dropin(settings)
        # A new VM is a new machine: every step runs again there.
        machine = [args.instance_id]

        docker = self._run("docker", "install-docker.sh", triggers=machine, depends_on=args.depends_on)
        user = self._run("harbor-user", "harbor-user.sh", triggers=machine, depends_on=[docker])
        volume = self._run(
            "data-volume",
            "data-volume.sh",
            # The size is passed so that growing the volume re-runs the step, which grows the filesystem.
            env={
                "DATA_VOLUME_ID": args.data_volume_id,
                "DATA_MOUNT": settings.data_mount,
                "DATA_VOLUME_SIZE_GB": str(settings.data_volume_size_gb),
            },
            triggers=[*machine, args.data_volume_id],
            depends_on=[user],
        )
        written = [
            self._write("harbor-yml", vm_files.HARBOR_YML_PATH, harbor_yml, "0600", machine, [volume]),
            self._write("compose-override", vm_files.COMPOSE_OVERRIDE_PATH, override, override_mode, machine, [volume]),
            self._write("envrc", vm_files.ENVRC_PATH, vm_files.render_envrc(settings), "0644", machine, [volume]),
            # No Traefik on an HA node: the load balancer is the front.
            *(
                []
                if settings.high_availability
                else [self._write("traefik-routes", vm_files.TRAEFIK_DYNAMIC_PATH, traefik_routes, "0644", machine, [volume])]
            ),
            self._write("systemd-unit", vm_files.SYSTEMD_UNIT_PATH, unit, "0644", machine, [volume]),
            # start-harbor.sh's `systemctl daemon-reload` makes it count from the next start of docker.
            self._write("docker-dropin", vm_files.DOCKER_DROPIN_PATH, docker_dropin, "0644", machine, [volume]),
        ]
        start_triggers: list = []
        if shared is not None:
            # On the data volume before prepare runs, as prepare would leave them: it then loads them
            # instead of generating its own (vm_files.shared_secret_files).
            shared_files = shared.apply(lambda values: vm_files.shared_secret_files(settings, values))
            for step, relative in (
                ("harbor-key", vm_files.HARBOR_KEY_FILE),
                ("signing-key", vm_files.SIGNING_KEY_FILE),
                ("signing-cert", vm_files.SIGNING_CERT_FILE),
            ):
                path = f"{settings.data_mount}/{relative}"
                content = pulumi.Output.secret(shared_files.apply(lambda files, path=path: files[path]))
                written.append(
                    self._write(
                        step, path, content, vm_files.PREPARE_FILE_MODE, machine, [volume], owner=vm_files.PREPARE_FILE_OWNER
                    )
                )
                start_triggers.append(content.apply(vm_files.content_hash))
        # storage: s3: the IMDS guard, started by harbor.service (Requires=) at the start step.
        imds_guard = vm_files.render_imds_guard_unit(settings) if vm_files.imds_guarded(settings) else None
        if imds_guard is not None:
            written.append(self._write("imds-guard", vm_files.IMDS_GUARD_PATH, imds_guard, "0644", machine, [volume]))
        installer = self._run(
            "installer",
            "install-harbor.sh",
            env={"HARBOR_VERSION": settings.harbor_version, "HARBOR_SHA256": settings.harbor_installer_sha256},
            triggers=machine,
            depends_on=[volume, *written],
        )
        self.installer_sha256 = installer.stdout.apply(installed_digest)
        # Restart Harbor only when what it runs from changes.
        self.start = self._run(
            "start",
            "start-harbor.sh",
            triggers=[
                *machine,
                settings.harbor_version,
                harbor_yml.apply(vm_files.content_hash),
                override.apply(vm_files.content_hash),
                vm_files.content_hash(traefik_routes),
                vm_files.content_hash(unit),
                vm_files.content_hash(docker_dropin),
                *([vm_files.content_hash(imds_guard)] if imds_guard is not None else []),
                *start_triggers,
            ],
            depends_on=[installer, *written],
        )
        self.ready = self._run(
            "ready",
            "wait-healthy.sh",
            env=readiness_environment(settings),
            args=[settings.hostname, "900"],
            triggers=[self.start.id],
            depends_on=[self.start],
        )
        # Operating the cache: the CloudWatch reporter and its timer, once Harbor is healthy (so the
        # "Harbor unhealthy" alarm does not fire during the first install).
        operate = operate_files.metrics_files(settings)
        operate_written = [
            self._write(f"file-{path.rsplit('/', 1)[1]}", path, content, mode, machine, [self.ready])
            for path, content in operate.items()
            for mode in ["0755" if path.startswith(operate_files.BIN_DIR) else "0644"]
        ]
        self.timers = self._run(
            "timers",
            "enable-timers.sh",
            args=[operate_files.METRICS_TIMER],
            triggers=[*machine, vm_files.content_hash("".join(operate.values()))],
            depends_on=operate_written,
        )
        self.register_outputs({"ready": self.ready.stdout, "installer_sha256": self.installer_sha256})

    def _run(
        self,
        step: str,
        script: str,
        triggers: list,
        depends_on: list[pulumi.Resource],
        env: dict[str, pulumi.Input[str]] | None = None,
        args: list[str] | None = None,
    ) -> remote.Command:
        return remote.Command(
            f"{self._name}-{step}",
            connection=self._connection,
            create=script_command(env, args),
            stdin=vm_files.script(script),
            triggers=triggers,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )

    def _write(
        self,
        step: str,
        path: str,
        content: pulumi.Input[str],
        mode: str,
        triggers: list,
        depends_on: list[pulumi.Resource],
        owner: str = "root",
    ) -> remote.Command:
        return remote.Command(
            f"{self._name}-{step}",
            connection=self._connection,
            create=write_file_command(path, mode, owner),
            stdin=content,
            triggers=triggers,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
