"""HarborProbe: proves the deploy by pulling through every proxy project, prewarms the cache, and
leaves a timer on the VM that does both again on a schedule.

The pulls run on the VM host, outside Harbor's containers, anonymously over the public name with
the registry token flow (files/harbor-probe.py): DNS -> certificate -> Traefik -> Harbor ->
upstream egress -> cache. The connection goes to the VM's own Traefik (127.0.0.1) because the
security group admits 443 only from allowedCidrs; the DNS check still requires that the public
name resolves to the Elastic IP.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

import pulumi
from pulumi_command import remote

from components.settings.settings import Settings
from components.vm import operate_files
from components.vm.file_modes import file_mode
from components.vm.files import content_hash, script
from components.vm.install import write_file_command
from components.vm.node_check import NODE_CHECK_TIMER, node_check_files


@dataclass(frozen=True)
class HarborProbeArgs:
    settings: Settings
    host: pulumi.Input[str]
    host_public_key: pulumi.Input[str]
    private_key: pulumi.Input[str]
    public_ip: pulumi.Input[str]
    # Re-prove when any of these change (a new VM, a restarted Harbor, changed projects).
    triggers: list[pulumi.Input]
    # Harbor's configuration (registries, projects): the pulls need it in place.
    depends_on: list[pulumi.Resource]
    # The pull robot's `name:secret` (secret) when some proxy projects are private: the probe pulls
    # those with it, as nodes do, and reads their artifacts through Harbor's API.
    probe_login: pulumi.Input[str] | None = None
    # The monitor robot's `name:secret` (secret), for the reporter (operate_files.MONITOR_CREDENTIALS_PATH).
    monitor_login: pulumi.Input[str] | None = None


def probe_command(settings: Settings, public_ip: str, images: list[str], all_blobs: bool) -> str:
    """`python3 - ...`: the probe arrives on stdin; the command line holds nothing secret.

    HA mode (replicas > 1): the node asks its own nginx on 127.0.0.1:8080 in plain HTTP, as the
    load balancer does once it has ended TLS (operate_files.probe_connection). Not through the load
    balancer: it admits 443 from allowedCidrs, and a node reaching an internet-facing load balancer
    arrives from its public address, which no security-group reference matches. The name must
    still resolve, but to the load balancer's changing addresses: no --expect-address."""
    expect = [] if settings.high_availability else ["--expect-address", public_ip]
    flags = [*expect, *(["--all-blobs"] if all_blobs else [])]
    environment = dict(operate_files.probe_connection(settings))
    if not all_blobs:
        # The smoke pull proves Harbor kept what it served, and its result goes to CloudWatch as the
        # timer's does (SmokeFailures, ProbeFailed per project): the probe alarms have data from the
        # deploy on, so treating missing data as breaching does not fire on a new stack.
        flags += [*operate_files.verify_flags(settings), "--metric", "SmokeFailures"]
        environment |= operate_files.metrics_environment(settings)
        environment["PROBE_METRICS_REPORTER"] = f"{operate_files.BIN_DIR}/{operate_files.METRICS_SCRIPT}"
        if operate_files.private_projects(settings):
            environment["PROBE_ROBOT_FILE"] = operate_files.PROBE_CREDENTIALS_PATH
    assignments = [f"{key}={shlex.quote(value)}" for key, value in environment.items()]
    # The robot's file is root's: read it as root (sudo env keeps the assignments).
    runner = ["sudo", "env", *assignments] if "PROBE_ROBOT_FILE" in environment else assignments
    return " ".join([*runner, "python3", "-", *map(shlex.quote, [*flags, settings.url, *images])])


def parse_results(stdout: str) -> list[dict]:
    """The probe's JSON lines, for the stack output."""
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


class HarborProbe(pulumi.ComponentResource):
    def __init__(self, name: str, args: HarborProbeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("harbor-cache:index:HarborProbe", name, None, opts)
        settings = args.settings
        self._name = name
        self._connection = remote.ConnectionArgsDict(
            host=args.host,
            user=settings.ssh_user,
            private_key=args.private_key,
            host_key=args.host_public_key,
            dial_error_limit=40,
            per_dial_timeout=15,
        )
        probe_script = script(operate_files.PROBE_SCRIPT)
        smoke_images = [image for _name, image in settings.smoke_images]
        self.results: pulumi.Output[list[dict]] = pulumi.Output.from_input([])
        self.smoke: remote.Command | None = None
        after: list[pulumi.Resource] = list(args.depends_on)
        smoke_after: list[pulumi.Resource] = list(args.depends_on)
        if args.probe_login is not None and operate_files.private_projects(settings):
            # For the smoke step (sudo) and the timer (LoadCredential=).
            self.credentials = self._login_file("credentials", operate_files.PROBE_CREDENTIALS_PATH, args.probe_login, args)
            smoke_after = [*smoke_after, self.credentials]
        self.monitor_credentials: remote.Command | None = None
        if args.monitor_login is not None:
            # The reporter loads it on its next run (LoadCredential=); written after Harbor holds the robot.
            self.monitor_credentials = self._login_file(
                "monitor-credentials", operate_files.MONITOR_CREDENTIALS_PATH, args.monitor_login, args
            )
        if smoke_images:  # every smokeImages entry set to "" leaves nothing to pull
            self.smoke = self._command(
                "smoke",
                pulumi.Output.from_input(args.public_ip).apply(lambda ip: probe_command(settings, ip, smoke_images, False)),
                probe_script,
                [*args.triggers, *smoke_images],
                smoke_after,
            )
            self.results = self.smoke.stdout.apply(parse_results)
            after = [self.smoke]
        if settings.prewarm:
            self.prewarm = self._command(
                "prewarm",
                pulumi.Output.from_input(args.public_ip).apply(
                    lambda ip: probe_command(settings, ip, list(settings.prewarm), True)
                ),
                probe_script,
                [*args.triggers, *settings.prewarm],
                after,
            )
            after = [self.prewarm]
            self.results = pulumi.Output.all(self.results, self.prewarm.stdout.apply(parse_results)).apply(
                lambda both: [*both[0], *both[1]]
            )

        files = operate_files.probe_files(settings)
        timers = [operate_files.PROBE_TIMER]
        if settings.high_availability:
            # Every node checks itself often and leaves the load balancer while it fails (issue 18 point 8).
            files = {**files, **node_check_files(settings)}
            timers.append(NODE_CHECK_TIMER)
        written = [
            self._command(
                f"file-{path.rsplit('/', 1)[1]}",
                write_file_command(path, file_mode(path, settings)),
                content,
                [*args.triggers[:1], content_hash(content)],
                after,
            )
            for path, content in files.items()
        ]
        self.timer = self._command(
            "timer",
            f"sudo bash -s -- {' '.join(timers)}",
            script("enable-timers.sh"),
            [*args.triggers[:1], content_hash("".join(files.values()))],
            written,
        )
        self.register_outputs({"smoke": self.results})

    def _login_file(self, step: str, path: str, login: pulumi.Input[str], args: HarborProbeArgs) -> remote.Command:
        """A robot's `name:secret` into a 0600 root file; the secret travels on stdin, never the command line."""
        content = pulumi.Output.secret(pulumi.Output.from_input(login).apply(lambda value: value + "\n"))
        return self._command(step, write_file_command(path, "0600"), content, [*args.triggers[:1]], list(args.depends_on))

    def _command(
        self, step: str, create: pulumi.Input[str], stdin: pulumi.Input[str], triggers: list, depends_on: list[pulumi.Resource]
    ) -> remote.Command:
        return remote.Command(
            f"{self._name}-{step}",
            connection=self._connection,
            create=create,
            stdin=stdin,
            triggers=triggers,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
