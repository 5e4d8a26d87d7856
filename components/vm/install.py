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

from components.settings.settings import Settings
from components.settings.validators import SHA256_RE
from components.vm import operate_files
from components.vm.envrc import render_envrc
from components.vm.file_modes import file_mode, shared_file_paths
from components.vm.files import content_hash, render_compose_override, script
from components.vm.ha_node import (
    NGINX_KEEPALIVE_PATH,
    PREPARE_FILE_OWNER,
    render_nginx_keepalive,
    shared_secret_files,
)
from components.vm.harbor_yml import DataEndpoints, render_harbor_yml
from components.vm.imds_guard import IMDS_GUARD_PATH, imds_guarded, render_imds_guard_unit
from components.vm.imds_relay import imds_relay_files
from components.vm.installer_signature import installer_url
from components.vm.node_ready import NGINX_READY_PATH, NODE_STATE_DIR, STORAGE_FAILED, render_nginx_ready
from components.vm.paths import (
    COMPOSE_OVERRIDE_PATH,
    DOCKER_DROPIN_PATH,
    ENVRC_PATH,
    HARBOR_HTTP_PORT,
    HARBOR_YML_PATH,
    SYSTEMD_UNIT_PATH,
    TRAEFIK_DYNAMIC_PATH,
)
from components.vm.rolling import RollingHooks
from components.vm.runtime_drain import DRAIN_HOOK_STEP, runtime_drain_commands, runtime_drain_files
from components.vm.schedules_check import SCHEDULES_TIMER, schedules_checked, schedules_files
from components.vm.secret_values import DATABASE_PASSWORD_LENGTH, HarborSecrets, SharedSecretValues
from components.vm.shared_secrets import ADMIN_PASSWORD_LENGTH, ADMIN_PASSWORD_MIN_EACH, SHARED_SECRETS_TYPE, admin_password_alias
from components.vm.systemd import render_docker_dropin, render_systemd_unit
from components.vm.traefik import render_traefik_dynamic_config


@dataclass(frozen=True)
class HarborInstallArgs:
    settings: Settings
    # The only installer the VM unpacks: the sha256 verified from Harbor's Sigstore bundle
    # (components/vm/installer_signature.py). Not a secret: it travels on the command line.
    installer_sha256: str
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
    endpoints: pulumi.Input[DataEndpoints] | None = None
    external_database_password: pulumi.Input[str] = ""
    redis_password: pulumi.Input[str] = ""
    # HA mode (replicas > 1, issue 13 step 3): what every node holds identically
    # (components/vm/shared_secrets.py); None for the single VM, which keeps what prepare makes.
    shared_secrets: pulumi.Output[SharedSecretValues] | None = None
    # HA mode: which node this is (0..replicas-1); its CloudWatch metrics carry it as the Node dimension.
    node_index: int = 0
    # HA mode: out of the load balancer before Harbor stops, back in (healthy) before the next node.
    rolling: RollingHooks | None = None
    # The stack's alarm topic: the reporter counts its confirmed subscribers (ConfirmedAlarmSubscribers).
    alarm_topic_arn: pulumi.Input[str] | None = None


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
        return {"HEALTH_LOCAL_PORT": str(HARBOR_HTTP_PORT), "HEALTH_LOG_CONTAINERS": HA_HEALTH_LOG_CONTAINERS}
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


# Where the harbor-key step keeps the secret key a node held before the shared one replaced it.
PREVIOUS_KEY_SUFFIX = ".before-shared"


def write_keeping_previous_command(path: str, mode: str, owner: str) -> str:
    """write_file_command that first keeps the file it replaces, once, as `<path>.before-shared`.

    For the secret key: node 0 is the former single VM, and its local database (kept on its volume)
    holds registry credentials encrypted with the key prepare made there. Going all the way back to
    one VM on that database needs that key again (docs/scale.md, "Switching a stack from one VM to HA")."""
    quoted = shlex.quote(path)
    keep = f"test ! -e {quoted} || test -e {quoted}{PREVIOUS_KEY_SUFFIX} || cp -p {quoted} {quoted}{PREVIOUS_KEY_SUFFIX}"
    write = f"install -D -m {mode} -o {owner} -g {owner} /dev/stdin {quoted}"
    return f"sudo sh -c {shlex.quote(f'{keep}; exec {write}')}"


def shared_file_commands(settings: Settings) -> dict[str, tuple[str, str]]:
    """Step -> (path, command) that lays each shared file (shared_secret_files) on a node,
    its content on stdin, as prepare's mark_file leaves its own (0600, 10000:10000)."""
    owner = PREPARE_FILE_OWNER
    key, signing_key, signing_cert = shared_file_paths(settings)
    return {
        "harbor-key": (key, write_keeping_previous_command(key, file_mode(key, settings, True), owner)),
        # Tokens live minutes: nothing signed with a previous key pair is worth keeping.
        "signing-key": (signing_key, write_file_command(signing_key, file_mode(signing_key, settings, True), owner)),
        "signing-cert": (signing_cert, write_file_command(signing_cert, file_mode(signing_cert, settings, True), owner)),
    }


def node_connection(
    settings: Settings, host: pulumi.Input[str], host_public_key: pulumi.Input[str], private_key: pulumi.Input[str]
) -> remote.ConnectionArgsDict:
    """SSH to a node, accepting only the host key it printed on its console."""
    return remote.ConnectionArgsDict(
        host=host,
        user=settings.ssh_user,
        private_key=private_key,
        # The key the VM printed on its console (components/aws/host_key_provider.py). pulumi-command
        # reads it with ssh.ParseAuthorizedKey and accepts that key only (ssh.FixedHostKey in
        # provider/pkg/provider/remote/connection.go), so no secret goes to an unverified host.
        host_key=host_public_key,
        # The VM may still be booting on the first up.
        dial_error_limit=40,
        per_dial_timeout=15,
    )


class HarborInstall(pulumi.ComponentResource):
    def __init__(self, name: str, args: HarborInstallArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        installer_sha256 = args.installer_sha256
        if not SHA256_RE.match(installer_sha256):
            # Only a verified digest may reach the VM (the caller passes installer_signature's).
            raise ValueError(f"installer_sha256 {installer_sha256!r} is not a sha256 hex digest")
        super().__init__("harbor-cache:index:HarborInstall", name, None, opts)
        settings = args.settings
        self._connection = node_connection(settings, args.host, args.host_public_key, args.private_key)
        self._name = name
        self._settings = settings
        self.connection = self._connection

        if args.shared_secrets is not None:
            # Every node's harbor.yml carries the one shared admin password.
            self.admin_password = pulumi.Output.secret(args.shared_secrets.apply(lambda shared: shared.admin_password))
        elif settings.admin_password is not None:
            self.admin_password = pulumi.Output.secret(settings.admin_password.value)
        else:
            # Letters and digits only: the value passes through YAML, env files and compose unharmed.
            # Going back from HA to one VM keeps the password the nodes used (HarborSharedSecrets').
            previous = admin_password_alias(name, "-install", "-shared", SHARED_SECRETS_TYPE, opts)
            generated = random.RandomPassword(
                f"{name}-admin-password",
                length=ADMIN_PASSWORD_LENGTH,
                special=False,
                min_upper=ADMIN_PASSWORD_MIN_EACH,
                min_lower=ADMIN_PASSWORD_MIN_EACH,
                min_numeric=ADMIN_PASSWORD_MIN_EACH,
                opts=pulumi.ResourceOptions(parent=self, aliases=previous),
            )
            self.admin_password = pulumi.Output.secret(generated.result)
        database_password = random.RandomPassword(
            f"{name}-database-password", length=DATABASE_PASSWORD_LENGTH, special=False, opts=pulumi.ResourceOptions(parent=self)
        )

        endpoints = args.endpoints or DataEndpoints()
        harbor_yml = pulumi.Output.secret(
            pulumi.Output.all(
                self.admin_password, database_password.result, args.external_database_password, args.redis_password, endpoints
            ).apply(lambda values: render_harbor_yml(settings, HarborSecrets(*values[:4]), values[4]))
        )
        shared = args.shared_secrets
        # The shared files (below) go wherever shared values are given; the values prepare redraws on
        # every run matter only between nodes, so a single VM keeps its override as it is.
        if shared is None or not settings.high_availability:
            override = pulumi.Output.from_input(args.zone_id).apply(
                lambda zone_id: render_compose_override(settings, zone_id)
            )
        else:
            # HA node: the override carries the shared CORE_SECRET, CSRF_KEY, ... (shared_secret_environment),
            # so it is a secret and written like harbor.yml.
            override = pulumi.Output.secret(
                pulumi.Output.all(args.zone_id, shared).apply(
                    lambda values: render_compose_override(settings, values[0], values[1])
                )
            )
        traefik_routes = render_traefik_dynamic_config(settings)
        unit = render_systemd_unit(settings)
        docker_dropin = render_docker_dropin(settings)
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
            self._write("harbor-yml", HARBOR_YML_PATH, harbor_yml, machine, [volume]),
            self._write("compose-override", COMPOSE_OVERRIDE_PATH, override, machine, [volume], shared=shared is not None),
            self._write("envrc", ENVRC_PATH, render_envrc(settings), machine, [volume]),
            # No Traefik on an HA node: the load balancer is the front.
            *(
                []
                if settings.high_availability
                else [self._write("traefik-routes", TRAEFIK_DYNAMIC_PATH, traefik_routes, machine, [volume])]
            ),
            self._write("systemd-unit", SYSTEMD_UNIT_PATH, unit, machine, [volume]),
            # start-harbor.sh's `systemctl daemon-reload` makes it count from the next start of docker.
            self._write("docker-dropin", DOCKER_DROPIN_PATH, docker_dropin, machine, [volume]),
        ]
        start_triggers: list = []
        if settings.high_availability:
            # nginx's keep-alive beyond the load balancer's idle timeout, mounted by the HA override.
            keepalive = render_nginx_keepalive()
            written.append(self._write("nginx-keepalive", NGINX_KEEPALIVE_PATH, keepalive, machine, [volume]))
            start_triggers.append(content_hash(keepalive))
            # The load balancer's health check location, which a failing end-to-end check turns to 503.
            ready_location = render_nginx_ready()
            written.append(self._write("nginx-ready", NGINX_READY_PATH, ready_location, machine, [volume]))
            start_triggers.append(content_hash(ready_location))
        if shared is not None:
            # On the data volume before prepare runs, as prepare would leave them: it then loads them
            # instead of generating its own (shared_secret_files).
            shared_files = shared.apply(lambda values: shared_secret_files(settings, values))
            for step, (path, command) in shared_file_commands(settings).items():
                content = pulumi.Output.secret(shared_files.apply(lambda files, path=path: files[path]))
                written.append(self._command(step, command, content, machine, [volume]))
                start_triggers.append(content.apply(content_hash))
        # storage: s3: the IMDS guard (with the nat rule to the relay) and the credential relay, both
        # started by harbor.service (Requires=) at the start step.
        imds_guard = render_imds_guard_unit(settings) if imds_guarded(settings) else None
        imds_relay = imds_relay_files(settings) if imds_guarded(settings) else {}
        if imds_guard is not None:
            written.append(self._write("imds-guard", IMDS_GUARD_PATH, imds_guard, machine, [volume]))
        for path, content in imds_relay.items():
            written.append(self._write(f"imds-relay-{path.rsplit('/', 1)[1]}", path, content, machine, [volume]))
        # Restart Harbor only when what it runs from changes.
        restart_triggers = [
            *machine,
            settings.harbor_version,
            harbor_yml.apply(content_hash),
            override.apply(content_hash),
            content_hash(traefik_routes),
            content_hash(unit),
            content_hash(docker_dropin),
            *([content_hash(imds_guard)] if imds_guard is not None else []),
            *[content_hash(content) for content in imds_relay.values()],
            *start_triggers,
        ]
        # HA: out of the load balancer whenever Harbor is about to stop (an upgrade's installer stops
        # it, the start restarts it): the same triggers, so an unchanged node is never drained.
        leave_options = pulumi.ResourceOptions(parent=self, depends_on=args.depends_on)
        leave = [args.rolling.leave(f"{name}-leave", restart_triggers, leave_options)] if args.rolling is not None else []
        installer = self._run(
            "installer",
            "install-harbor.sh",
            env={
                "HARBOR_VERSION": settings.harbor_version,
                "HARBOR_SHA256": installer_sha256,
                "HARBOR_INSTALLER_URL": installer_url(settings.harbor_release_base_url, settings.harbor_version),
            },
            triggers=machine,
            depends_on=[volume, *written, *leave],
        )
        self.installer_sha256 = installer.stdout.apply(installed_digest)
        restart_after = [installer, *written, *leave]
        if settings.high_availability:
            # The folder of the node check's mark, which the override mounts into nginx; a restarted
            # Harbor starts unmarked and is judged again (components/vm/node_check.py).
            state = f"install -d -m 0755 {NODE_STATE_DIR} && rm -f {NODE_STATE_DIR}/{STORAGE_FAILED}"
            command = f"sudo sh -c {shlex.quote(state)}"
            restart_after.append(self._command("node-state", command, "", restart_triggers, list(restart_after)))
        self.start = self._run("start", "start-harbor.sh", triggers=restart_triggers, depends_on=restart_after)
        self.ready = self._run(
            "ready",
            "wait-healthy.sh",
            env=readiness_environment(settings),
            args=[settings.hostname, "900"],
            triggers=[self.start.id],
            depends_on=[self.start],
        )
        # HA: back in the target group, and healthy there, before anything waits on this node.
        self.rejoined: pulumi.Resource = (
            args.rolling.rejoin(f"{name}-rejoin", [self.ready.id], pulumi.ResourceOptions(parent=self, depends_on=[self.ready]))
            if args.rolling is not None
            else self.ready
        )
        if settings.high_availability:
            self._runtime_drain(args.node_index, machine)
        # Operating the cache: the CloudWatch reporter and its timer, once Harbor is healthy (so the
        # "Harbor unhealthy" alarm does not fire during the first install).
        operate: dict[str, pulumi.Input[str]] = dict(operate_files.metrics_files(settings, args.node_index))
        # Only the reporter's unit names the alarm topic (made after the installs): only its write waits for it.
        operate[operate_files.METRICS_SERVICE_PATH] = pulumi.Output.from_input(args.alarm_topic_arn or "").apply(
            lambda arn: operate_files.metrics_unit(settings, args.node_index, arn)
        )
        timers = [operate_files.METRICS_TIMER, operate_files.CACHE_EXPORTER_SERVICE]
        if schedules_checked(settings, args.node_index):
            # Harbor's schedules back in jobservice after a Redis loss (components/vm/schedules_check.py).
            operate = {**operate, **schedules_files(settings)}
            timers.append(SCHEDULES_TIMER)
        operate_written = [
            self._write(f"file-{path.rsplit('/', 1)[1]}", path, content, machine, [self.ready])
            for path, content in operate.items()
        ]
        self.timers = self._run(
            "timers",
            "enable-timers.sh",
            args=timers,
            triggers=[*machine, pulumi.Output.all(*operate.values()).apply(lambda texts: content_hash("".join(texts)))],
            depends_on=operate_written,
        )
        self.register_outputs({"ready": self.ready.stdout, "installer_sha256": self.installer_sha256})

    def _runtime_drain(self, node_index: int, machine: list) -> None:
        """The node drains itself around unattended upgrades of the runtime (components/vm/runtime_drain.py):
        once Harbor runs with the ready location that knows the mark, the script and its safety nets,
        then the apt hook that calls them."""
        files = runtime_drain_files(node_index)
        commands = runtime_drain_commands(self._settings)
        laid = [
            self._command(step, command, files[path], machine, [self.ready])
            for step, (path, command) in commands.items()
            if step != DRAIN_HOOK_STEP
        ]
        path, command = commands[DRAIN_HOOK_STEP]
        self._command(DRAIN_HOOK_STEP, command, files[path], machine, [self.ready, *laid])

    def _run(
        self,
        step: str,
        script_name: str,
        triggers: list,
        depends_on: list[pulumi.Resource],
        env: dict[str, pulumi.Input[str]] | None = None,
        args: list[str] | None = None,
    ) -> remote.Command:
        return remote.Command(
            f"{self._name}-{step}",
            connection=self._connection,
            create=script_command(env, args),
            stdin=script(script_name),
            triggers=triggers,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )

    def _write(
        self,
        step: str,
        path: str,
        content: pulumi.Input[str],
        triggers: list,
        depends_on: list[pulumi.Resource],
        shared: bool = False,
    ) -> remote.Command:
        """Writes `content` to `path` with the mode the renderer shows for it (file_modes.file_mode)."""
        mode = file_mode(path, self._settings, shared)
        return self._command(step, write_file_command(path, mode), content, triggers, depends_on)

    def _command(
        self, step: str, create: str, content: pulumi.Input[str], triggers: list, depends_on: list[pulumi.Resource]
    ) -> remote.Command:
        return remote.Command(
            f"{self._name}-{step}",
            connection=self._connection,
            create=create,
            stdin=content,
            triggers=triggers,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
