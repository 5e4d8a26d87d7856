"""HA node mode under Pulumi mocks (issue 13 step 3): HarborSharedSecrets and HarborInstall with
shared secrets, run as a small program (the nodes' wiring lives in harbor_cache.py, owned elsewhere)."""

from __future__ import annotations

import json

import pulumi
import pytest

from components import vm_files
from components.harbor_shared_secrets import HarborSharedSecrets, HarborSharedSecretsArgs
from components.settings import parse_settings
from tests.pulumi_harness import AwsMocks, ProgramRun, RecordingMonitor
from tests.test_settings import dev_raw

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
    assert isinstance(values, vm_files.SharedSecretValues)
    assert values.secret_key in json.dumps(values.__dict__) and values.secret_key not in repr(values)
    assert len(values.secret_key) == 16 and "BEGIN CERTIFICATE" in values.token_certificate_pem
