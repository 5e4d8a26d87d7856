"""HA node mode under Pulumi mocks (issue 13 step 3): HarborSharedSecrets and HarborInstall with
shared secrets, run as a small program (the nodes' wiring lives in harbor_cache.py, owned elsewhere)."""

from __future__ import annotations

import json

import pulumi
import pytest
import yaml
from pulumi.runtime import rpc

from components.settings.settings import parse_settings
from components.vm.files import content_hash, render_compose_override
from components.vm.ha_node import HARBOR_KEY_FILE, SIGNING_CERT_FILE, SIGNING_KEY_FILE, shared_secret_files
from components.vm.install import HarborInstall, HarborInstallArgs
from components.vm.secret_values import SharedSecretValues
from components.vm.shared_secrets import HarborSharedSecrets, HarborSharedSecretsArgs, admin_password_alias
from tests.settings.test_settings import dev_raw
from tests.standins import pulumi_harness
from tests.standins.pulumi_harness import (
    FAKE_HOST_PUBLIC_KEY,
    FAKE_SIGNED_INSTALLER_SHA256,
    FAKE_ZONE_ID,
    SECRET_SIG,
    AwsMocks,
    ProgramRun,
    RecordingMonitor,
    dev_config,
    run_program,
)

REPLICAS = 3
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
SHARED_TYPES = {RANDOM_PASSWORD, "tls:index/privateKey:PrivateKey", "tls:index/selfSignedCert:SelfSignedCert"}


class SecretMocks(AwsMocks):
    """AwsMocks plus the computed outputs of pulumi_tls's key and certificate, and a RandomPassword
    result unique per resource (the harness's reuses the name's last 6 characters)."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        resource_id, state = super().new_resource(args)
        if args.typ == "tls:index/privateKey:PrivateKey" and args.inputs.get("algorithm") == "RSA":
            state.update(privateKeyPem=f"-----BEGIN RSA PRIVATE KEY-----\n{args.name}\n-----END RSA PRIVATE KEY-----\n")
        elif args.typ == "tls:index/selfSignedCert:SelfSignedCert":
            state.update(certPem=f"-----BEGIN CERTIFICATE-----\n{args.name}\n-----END CERTIFICATE-----\n")
        elif args.typ == "random:index/randomPassword:RandomPassword":
            length = int(args.inputs["length"])
            state.update(result=f"Gen{args.name.replace('-', '')}"[:length].ljust(length, "x"))
        return resource_id, state


def run_components(build, settings_overrides: dict | None = None) -> tuple[ProgramRun, dict]:
    """Runs `build(settings)` as a Pulumi program under mocks; returns the registrations and what
    `build` returned, resolved (each Output awaited, with its secretness)."""
    mocks = SecretMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="harbor-cache", stack="dev", preview=False, monitor=monitor)
    run = ProgramRun(registrations=monitor.registrations)
    resolved: dict = {}
    settings = parse_settings({**dev_raw(), **(settings_overrides or {})}, stack="dev", region="eu-central-1")

    @pulumi.runtime.test
    def program():
        outputs = build(settings)

        async def collect():
            for key, value in outputs.items():
                output = pulumi.Output.from_input(value)
                resolved[key] = (await output.future(), await output.is_secret())

        return pulumi.Output.from_input(collect())

    program()
    return run, resolved


@pytest.fixture(scope="module")
def shared_run():
    def build(settings):
        shared = HarborSharedSecrets("harbor-shared", HarborSharedSecretsArgs(settings=settings))
        return {"values": shared.values}

    return run_components(build, {"replicas": REPLICAS})


def test_shared_secrets_are_real_resources_named_from_the_component(shared_run):
    run, _ = shared_run
    component = run.one("harbor-cache:index:HarborSharedSecrets")
    children = [r for r in run.registrations if r.parent == component.urn]
    assert {r.type for r in children} == SHARED_TYPES
    assert all(r.name.startswith("harbor-shared-") for r in children)
    key = run.named("harbor-shared-token-key")
    assert key.inputs["algorithm"] == "RSA" and key.inputs["rsaBits"] == 4096
    lengths = {r.name.removeprefix("harbor-shared-"): r.inputs["length"] for r in run.of_type(RANDOM_PASSWORD)}
    # prepare's lengths: get_secret_key insists on 16, configs.py 16 for core/jobservice, core.py 32 and 8.
    assert lengths["secret-key"] == 16 and lengths["core-secret"] == 16 and lengths["jobservice-secret"] == 16
    assert lengths["csrf-key"] == 32 and lengths["scan-robot-prefix"] == 8
    assert all(r.inputs["special"] is False for r in run.of_type(RANDOM_PASSWORD))


def test_shared_values_are_one_secret_output_that_hides_its_repr(shared_run):
    _, resolved = shared_run
    values, secret = resolved["values"]
    assert secret, "the shared values must be a secret Output"
    assert isinstance(values, SharedSecretValues)
    assert values.secret_key in json.dumps(values.__dict__) and values.secret_key not in repr(values)
    assert len(values.secret_key) == 16 and "BEGIN CERTIFICATE" in values.token_certificate_pem


# --- HarborInstall on every node with the shared values (h-ha wires the nodes in harbor_cache.py) ---

SHARED_FILE_STEPS = ("harbor-key", "signing-key", "signing-cert")


def strip_secrets(value):
    """A registration's raw request with every secret-marked value removed: what state keeps in plain."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == SECRET_SIG:
            return None
        return {key: strip_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [strip_secrets(item) for item in value]
    return value


@pytest.fixture(scope="module")
def nodes_run():
    def build(settings):
        shared = HarborSharedSecrets("harbor-shared", HarborSharedSecretsArgs(settings=settings))
        installs = [
            HarborInstall(
                f"harbor-install-{index}",
                HarborInstallArgs(
                    settings=settings,
                    installer_sha256=FAKE_SIGNED_INSTALLER_SHA256,
                    host=f"10.0.{index}.10",
                    host_public_key=FAKE_HOST_PUBLIC_KEY,
                    private_key=pulumi.Output.secret("-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n"),
                    instance_id=f"i-0{index}",
                    data_volume_id=f"vol-0{index}",
                    zone_id=FAKE_ZONE_ID,
                    depends_on=[],
                    shared_secrets=shared.values,
                ),
            )
            for index in range(REPLICAS)
        ]
        return {"values": shared.values, **{f"admin-{i}": install.admin_password for i, install in enumerate(installs)}}

    return run_components(build, {"replicas": REPLICAS})


def node_steps(run, index: int) -> dict:
    prefix = f"harbor-install-{index}-"
    return {r.name.removeprefix(prefix): r for r in run.of_type("command:remote:Command") if r.name.startswith(prefix)}


def test_every_node_gets_the_shared_files_before_prepare_as_prepare_leaves_them(nodes_run):
    run, resolved = nodes_run
    values, _ = resolved["values"]
    expected = shared_secret_files(
        parse_settings({**dev_raw(), "replicas": REPLICAS}, stack="dev", region="eu-central-1"), values
    )
    for index in range(REPLICAS):
        steps = node_steps(run, index)
        urns = {r.urn: name for name, r in steps.items()}
        for step, relative in zip(
            SHARED_FILE_STEPS, (HARBOR_KEY_FILE, SIGNING_KEY_FILE, SIGNING_CERT_FILE), strict=True
        ):
            command = steps[step]
            path = f"/data/{relative}"
            create = command.inputs["create"]
            assert f"install -D -m 0600 -o 10000 -g 10000 /dev/stdin {path}" in create and create.startswith("sudo ")
            assert command.inputs["stdin"] == expected[path], "every node the same shared content"
            assert "stdin" in command.secret_keys()
            assert "data-volume" in {urns.get(urn) for urn in command.dependencies}
            # prepare runs in the start step (files/start-harbor.sh): after the files, and again when they change.
            assert command.urn in steps["start"].dependencies
        # A changed shared file re-runs prepare and restarts Harbor.
        assert {content_hash(content) for content in expected.values()} <= set(steps["start"].inputs["triggers"])


def test_an_ha_node_writes_a_secret_override_and_no_traefik_routes(nodes_run):
    run, resolved = nodes_run
    values, _ = resolved["values"]
    for index in range(REPLICAS):
        steps = node_steps(run, index)
        assert "traefik-routes" not in steps
        override = steps["compose-override"]
        assert override.inputs["create"].startswith("sudo install -D -m 0600 -o root -g root /dev/stdin ")
        assert "stdin" in override.secret_keys()
        document = yaml.safe_load(override.inputs["stdin"].replace("!override", ""))
        assert "traefik" not in document["services"]
        assert document["services"]["core"]["environment"]["CSRF_KEY"] == values.csrf_key
        assert document["services"]["registry"]["environment"]["REGISTRY_HTTP_SECRET"] == values.registry_http_secret
        # The readiness gate asks this node's nginx, not a Traefik that is not there.
        ready = steps["ready"].inputs["create"]
        assert "HEALTH_LOCAL_PORT=8080" in ready and "ACME_STAGING" not in ready


def test_every_node_logs_in_with_the_one_shared_admin_password(nodes_run):
    run, resolved = nodes_run
    values, _ = resolved["values"]
    for index in range(REPLICAS):
        admin, secret = resolved[f"admin-{index}"]
        assert admin == values.admin_password and secret
        harbor_yml = yaml.safe_load(node_steps(run, index)["harbor-yml"].inputs["stdin"])
        assert harbor_yml["harbor_admin_password"] == values.admin_password
    assert not [r.name for r in run.of_type(RANDOM_PASSWORD) if r.name.endswith("-admin-password") and "install" in r.name]


def test_no_shared_value_is_plain_in_any_command_line_trigger_or_state(nodes_run):
    run, resolved = nodes_run
    values, _ = resolved["values"]
    plain = [value for value in values.__dict__.values() if value]
    for registration in run.registrations:
        text = json.dumps(strip_secrets(registration.raw))
        leaked = [name for name, value in values.__dict__.items() if value and value in text and name != "token_certificate_pem"]
        assert not leaked, (registration.name, leaked)
    assert plain, "the check saw the values"


# --- The admin password survives a switch between one VM and HA (an RDS database outlives it) ---


class AliasRecordingMonitor(RecordingMonitor):
    """RecordingMonitor that also keeps each resource's alias specs as the SDK sent them."""

    def __init__(self, mocks) -> None:
        super().__init__(mocks)
        self.aliases: dict[str, list[tuple[str, str]]] = {}

    def RegisterResource(self, request):  # noqa: N802 - the gRPC method's name
        self.aliases[request.name] = [(alias.spec.name, alias.spec.parentUrn) for alias in request.aliases]
        return super().RegisterResource(request)


def engine_urn(urn: str) -> str:
    """The URN as the engine writes it: a child of the root stack has no `pulumi:pulumi:Stack$` in
    its qualified type (pulumi sdk/go/common/resource/urn.go NewURN). The mock monitor's make_urn
    puts it there for a stack-parented resource, and create_urn builds on that parent URN."""
    return urn.replace("::pulumi:pulumi:Stack$", "::", 1)


def program_aliases(monkeypatch, config: dict) -> tuple[ProgramRun, dict[str, list[tuple[str, str]]]]:
    """The real program (__main__.py) under the harness's mocks, with each resource's alias specs."""
    monitors: list[AliasRecordingMonitor] = []

    def recording(mocks):
        monitors.append(AliasRecordingMonitor(mocks))
        return monitors[-1]

    monkeypatch.setattr(pulumi_harness, "RecordingMonitor", recording)
    run = run_program(config)
    return run, monitors[0].aliases


def test_the_admin_password_moves_between_the_single_vm_install_and_the_shared_secrets(monkeypatch):
    single, single_aliases = program_aliases(monkeypatch, dev_config())
    install_urn = single.named("harbor-install").urn
    assert single.named("harbor-install-admin-password").parent == install_urn
    ha, ha_aliases = program_aliases(monkeypatch, {**dev_config(), "harbor-cache:replicas": REPLICAS})
    assert not [r.name for r in ha.of_type(RANDOM_PASSWORD) if r.name.endswith("-admin-password") and "install" in r.name]
    shared_urn = ha.named("harbor-shared").urn
    # One VM -> HA: the shared password is the single VM's resource (same value), not a new one.
    [(alias_name, alias_parent)] = ha_aliases["harbor-shared-admin-password"]
    assert (alias_name, engine_urn(alias_parent)) == ("harbor-install-admin-password", install_urn)
    # HA -> one VM: back again.
    [(alias_name, alias_parent)] = single_aliases["harbor-install-admin-password"]
    assert (alias_name, engine_urn(alias_parent)) == ("harbor-shared-admin-password", shared_urn)
    # The same inputs on both sides, or the moved resource would be replaced (a new password).
    assert ha.named("harbor-shared-admin-password").inputs == single.named("harbor-install-admin-password").inputs
    # Nodes 1..N-1 have no admin password of their own to move.
    assert admin_password_alias("harbor-install-2", "-install", "-shared", "t", None) == []


def test_one_vm_given_shared_values_gets_the_files_but_keeps_its_override():
    """Shared values on one VM (e.g. so a database that outlives the VM keeps its key): the three
    files are laid, the override stays the single VM's (0644, Traefik, no shared environment)."""

    def build(settings):
        shared = HarborSharedSecrets("harbor-shared", HarborSharedSecretsArgs(settings=settings))
        HarborInstall(
            "harbor-install",
            HarborInstallArgs(
                settings=settings,
                installer_sha256=FAKE_SIGNED_INSTALLER_SHA256,
                host="192.0.2.10",
                host_public_key=FAKE_HOST_PUBLIC_KEY,
                private_key=pulumi.Output.secret("key"),
                instance_id="i-0",
                data_volume_id="vol-0",
                zone_id=FAKE_ZONE_ID,
                depends_on=[],
                shared_secrets=shared.values,
            ),
        )
        return {}

    run, _ = run_components(build, {"externalServices": True})
    steps = {r.name.removeprefix("harbor-install-"): r for r in run.of_type("command:remote:Command")}
    assert set(SHARED_FILE_STEPS) <= set(steps) and "traefik-routes" in steps
    override = steps["compose-override"]
    settings = parse_settings({**dev_raw(), "externalServices": True}, stack="dev", region="eu-central-1")
    assert override.inputs["stdin"] == render_compose_override(settings, FAKE_ZONE_ID)
    assert override.inputs["create"].startswith("sudo install -D -m 0644 ")
