"""Bypass corpus, generated secrets (review 22f B1 and L3): the program's own secrets made weaker, secrets the pack does not
know, and Harbor's token certificate made from another key, each run through the pack as the engine runs it (its own
entry point over the analyzer's gRPC protocol, tests/standins/policy_engine.py: Analyze for each resource,
AnalyzeStack for the whole stack), at preview and at up. Each probe must be refused; on the pack before the fix
(RandomPassword, RandomBytes and SelfSignedCert judged by nothing, the token key's size by nothing, the certificate's
key a harmless Value) every one passed. The program's own stacks pass in every mode: tests/policy/test_policies.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.policy.test_policy_bypass import Probe, judged, made, with_probe
from tests.standins.policy_engine import (
    SECRET_SIGNATURE_KEY,
    WITHOUT_AWS_LOOKUPS,
    EngineResource,
    changed,
    engine_resources,
    registration_of,
    run_program,
    running_pack,
)
from tests.standins.pulumi_harness import dev_config

PASSWORD = "random:index/randomPassword:RandomPassword"
BYTES = "random:index/randomBytes:RandomBytes"
KEY = "tls:index/privateKey:PrivateKey"
CERT = "tls:index/selfSignedCert:SelfSignedCert"
# The type checks' policy names (harbor_policies.py _slug).
PASSWORD_POLICY = "random-index-randompassword-randompassword"
BYTES_POLICY = "random-index-randombytes-randombytes"
KEY_POLICY = "tls-index-privatekey-privatekey"
CERT_POLICY = "tls-index-selfsignedcert-selfsignedcert"
IDENTITIES = "identities-come-from-the-program"

# The program's stacks the probes are added to: the single VM (its admin and database passwords, the OIDC client
# secret: dev_config sets oidc), HA (the shared secrets, node 1's database password, the token key and certificate),
# externalServices (the stores' passwords).
STACK_MODES = {
    "dev": {},
    "ha": {"harbor-cache:replicas": 2},
    "s3": {"harbor-cache:storage": "s3", "harbor-cache:externalServices": True},
}
OTHER_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA...a key its author keeps...\n-----END RSA PRIVATE KEY-----\n"


def stack_config(label: str) -> dict:
    return {**dev_config(), **STACK_MODES[label]}


@pytest.fixture(scope="module")
def stacks():
    return {label: engine_resources(run_program(stack_config(label))) for label in STACK_MODES}


Build = Callable[[list[EngineResource]], list[EngineResource]]


def weakened(name: str, **values) -> Build:
    """The program's resource `name` with `values` set (None: the field left out, the provider's default applies)."""

    def change(props: dict) -> None:
        for key, value in values.items():
            if value is None:
                props.pop(key, None)
            else:
                props[key] = value

    return lambda stack: [changed(stack, name, change)]


ONE_CHARACTER = {"length": 1, "minUpper": 0, "minLower": 0, "minNumeric": 0}


def _secret(value) -> dict:
    return {SECRET_SIGNATURE_KEY: "1b47061264138c4ac30d75fd1eb44270", "value": value}


def token_cert_key(value, depends_on: str | None) -> Build:
    """The token certificate with `value` as its privateKeyPem (a secret, as the engine sends it), coming from the
    program's resource `depends_on` or (None) from nothing: a literal."""

    def build(stack: list[EngineResource]) -> list[EngineResource]:
        pem = value(stack) if callable(value) else value
        cert = changed(stack, "harbor-shared-token-cert", lambda p: p.update(privateKeyPem=_secret(pem)))
        sources = [registration_of(stack, depends_on).urn] if depends_on else []
        cert.property_dependencies = {**cert.property_dependencies, "privateKeyPem": sources}
        return [cert]

    return build


def ssh_private_key(stack: list[EngineResource]) -> str:
    # The mocks give the ED25519 key its OpenSSH form only (tests/standins/pulumi_harness.py); either is the SSH key.
    pem = registration_of(stack, "harbor-vm-ssh-key").outputs["privateKeyOpenssh"]
    return pem["value"] if isinstance(pem, dict) else pem


# B1: how strong the generated secrets are.
WEAK_SECRET_PROBES = [
    # The single VM's Harbor admin password (24 letters and digits): one character; no digit or capital asked; the
    # special characters pulumi-random adds when `special` is left out (terraform-provider-random: default true).
    Probe(
        "B1",
        "the admin password of one character",
        "dev",
        weakened("harbor-install-admin-password", **ONE_CHARACTER),
        PASSWORD_POLICY,
    ),
    Probe(
        "B1", "the admin password of 23 characters", "dev", weakened("harbor-install-admin-password", length=23), PASSWORD_POLICY
    ),
    Probe(
        "B1",
        "the admin password without capitals",
        "dev",
        weakened("harbor-install-admin-password", minUpper=None),
        PASSWORD_POLICY,
    ),
    Probe(
        "B1",
        "the admin password, special left out",
        "dev",
        weakened("harbor-install-admin-password", special=None),
        PASSWORD_POLICY,
    ),
    Probe(
        "B1", "the admin password, special true", "dev", weakened("harbor-install-admin-password", special=True), PASSWORD_POLICY
    ),
    Probe(
        "B1",
        "the admin password without digits",
        "dev",
        weakened("harbor-install-admin-password", numeric=False),
        PASSWORD_POLICY,
    ),
    Probe(
        "B1",
        "the database password of one character",
        "dev",
        weakened("harbor-install-database-password", length=1),
        PASSWORD_POLICY,
    ),
    Probe(
        "B1", "the OIDC client secret of one byte", "dev", weakened("harbor-config-oidc-client-secret", length=1), BYTES_POLICY
    ),
    Probe(
        "B1", "the OIDC client secret of 19 bytes", "dev", weakened("harbor-config-oidc-client-secret", length=19), BYTES_POLICY
    ),
    *(
        Probe("B1", f"{name} of one character", "ha", weakened(name, **ONE_CHARACTER), PASSWORD_POLICY)
        for name in (
            "harbor-shared-admin-password",
            "harbor-shared-secret-key",  # encrypts the upstream credentials and the OIDC secret in the database
            "harbor-shared-core-secret",
            "harbor-shared-jobservice-secret",
            "harbor-shared-csrf-key",
            "harbor-shared-registry-http-secret",
            "harbor-shared-scan-robot-prefix",
            "harbor-install-1-database-password",  # node 1's own: a node-indexed name
        )
    ),
    Probe("B1", "the RDS password of one character", "s3", weakened("harbor-data-db-password", **ONE_CHARACTER), PASSWORD_POLICY),
    Probe("B1", "the Redis AUTH token of 31", "s3", weakened("harbor-data-redis-password", length=31), PASSWORD_POLICY),
    # Harbor's token signing key (RSA 4096, as prepare's `openssl genrsa 4096`): 1024 bits, the provider's 2048 default
    # (rsaBits left out), another algorithm.
    Probe("B1", "the token key of 1024 bits", "ha", weakened("harbor-shared-token-key", rsaBits=1024), KEY_POLICY),
    Probe("B1", "the token key, rsaBits left out", "ha", weakened("harbor-shared-token-key", rsaBits=None), KEY_POLICY),
    Probe("B1", "the token key ECDSA", "ha", weakened("harbor-shared-token-key", algorithm="ECDSA", rsaBits=None), KEY_POLICY),
    # Secrets the pack does not know: refused whatever their strength.
    Probe(
        "B1",
        "a password of another name",
        "dev",
        lambda s: [made(PASSWORD, "probe-password", {"length": 64, "special": False})],
        PASSWORD_POLICY,
    ),
    Probe(
        "B1",
        "the admin password's name at the stack's root",
        "dev",
        lambda s: [made(PASSWORD, "harbor-install-admin-password", registration_of(s, "harbor-install-admin-password").inputs)],
        PASSWORD_POLICY,
    ),
    Probe("B1", "random bytes of another name", "dev", lambda s: [made(BYTES, "probe-bytes", {"length": 64})], BYTES_POLICY),
    Probe(
        "B1",
        "a key of another name",
        "dev",
        lambda s: [made(KEY, "probe-key", {"algorithm": "RSA", "rsaBits": 4096})],
        KEY_POLICY,
    ),
]

# L3: Harbor's token service certificate (HA): every node's registry trusts it to verify the bearer tokens core signs.
TOKEN_CERT_PROBES = [
    Probe("L3", "the token certificate from a literal key", "ha", token_cert_key(OTHER_KEY, None), IDENTITIES),
    Probe(
        "L3",
        "the token certificate from a literal beside the token key",
        "ha",
        token_cert_key(OTHER_KEY, "harbor-shared-token-key"),
        IDENTITIES,
    ),
    Probe("L3", "the token certificate from the SSH key", "ha", token_cert_key(ssh_private_key, "harbor-vm-ssh-key"), IDENTITIES),
    Probe("L3", "the token certificate not a CA", "ha", weakened("harbor-shared-token-cert", isCaCertificate=False), CERT_POLICY),
    Probe(
        "L3",
        "the token certificate, isCaCertificate left out",
        "ha",
        weakened("harbor-shared-token-cert", isCaCertificate=None),
        CERT_POLICY,
    ),
    Probe(
        "L3",
        "the token certificate for TLS servers too",
        "ha",
        weakened("harbor-shared-token-cert", allowedUses=["digital_signature", "cert_signing", "server_auth"]),
        CERT_POLICY,
    ),
    Probe(
        "L3",
        "the token certificate valid one hour",
        "ha",
        weakened("harbor-shared-token-cert", validityPeriodHours=1),
        CERT_POLICY,
    ),
    Probe(
        "L3",
        "a second self-signed certificate",
        "ha",
        lambda s: [
            made(
                CERT,
                "probe-cert",
                {
                    "privateKeyPem": OTHER_KEY,
                    "isCaCertificate": True,
                    "allowedUses": ["cert_signing"],
                    "validityPeriodHours": 87600,
                },
            )
        ],
        CERT_POLICY,
    ),
]

PROBES = WEAK_SECRET_PROBES + TOKEN_CERT_PROBES


@pytest.mark.parametrize("dry_run", [True, False], ids=["preview", "up"])
def test_every_secret_probe_is_refused(stacks, dry_run):
    passed = []
    for label in STACK_MODES:
        with running_pack(dry_run=dry_run, config=stack_config(label), disabled=WITHOUT_AWS_LOOKUPS) as pack:
            assert pack.analyze_all(stacks[label]) == [], "the program's own stack passes"
            for probe in (p for p in PROBES if p.stack == label):
                found = judged(pack, stacks[label], probe)
                if not any(d.mandatory and d.policy == probe.refused_by for d in found):
                    passed.append(
                        f"{probe.gap}: {probe.what} (expected {probe.refused_by}, got {sorted({d.policy for d in found})})"
                    )
    assert passed == []


def test_a_literal_key_beside_a_token_key_unknown_at_a_fresh_preview_is_refused():
    """A fresh HA stack: the token key is made in the same update, so the program's certificate holds an unknown key
    and passes on its dependency; a literal kept beside that dependency is refused (holds_the_sources_value)."""
    config = stack_config("ha")
    fresh = engine_resources(run_program(config, fresh_preview=True))
    cert = registration_of(fresh, "harbor-shared-token-cert")
    assert cert.property_dependencies["privateKeyPem"] == [registration_of(fresh, "harbor-shared-token-key").urn]
    with running_pack(dry_run=True, config=config, disabled=WITHOUT_AWS_LOOKUPS) as pack:
        assert [d for d in pack.analyze_stack(fresh) if d.policy == IDENTITIES] == []
        probe = token_cert_key(OTHER_KEY, "harbor-shared-token-key")(fresh)
        assert any(d.mandatory and d.policy == IDENTITIES for d in pack.analyze_stack(with_probe(fresh, probe)))


def test_the_refusals_say_what_to_change(stacks):
    with running_pack(dry_run=False, config=stack_config("ha"), disabled=WITHOUT_AWS_LOOKUPS) as pack:
        weak = weakened("harbor-shared-secret-key", length=8)(stacks["ha"])[0]
        assert any("is 8 characters long: the program makes it 16" in d.message for d in pack.analyze(weak))
        small = weakened("harbor-shared-token-key", rsaBits=2048)(stacks["ha"])[0]
        assert any("set rsa_bits=4096" in d.message for d in pack.analyze(small))
        other = made(PASSWORD, "probe-password", {"length": 64, "special": False})
        assert any("not one of the program's generated secrets" in d.message for d in pack.analyze(other))


# ---------------------------------------------------------------------------------------------
# The pack's floors are the program's own values


def test_the_packs_floors_are_the_programs_constants():
    """policy/resource_checks.py keeps copies of the program's constants (the pack cannot import the program)."""
    import resource_checks as pack

    from components.aws import data_services
    from components.harbor import config
    from components.vm import secret_values, shared_secrets

    pairs = {
        "ADMIN_PASSWORD_LENGTH": shared_secrets.ADMIN_PASSWORD_LENGTH,
        "ADMIN_PASSWORD_MIN_EACH": shared_secrets.ADMIN_PASSWORD_MIN_EACH,
        "SECRET_KEY_LENGTH": shared_secrets.SECRET_KEY_LENGTH,
        "COMPONENT_SECRET_LENGTH": shared_secrets.COMPONENT_SECRET_LENGTH,
        "CSRF_KEY_LENGTH": shared_secrets.CSRF_KEY_LENGTH,
        "REGISTRY_HTTP_SECRET_LENGTH": shared_secrets.REGISTRY_HTTP_SECRET_LENGTH,
        "SCAN_ROBOT_PREFIX_LENGTH": shared_secrets.SCAN_ROBOT_PREFIX_LENGTH,
        "TOKEN_KEY_BITS": shared_secrets.TOKEN_KEY_BITS,
        "TOKEN_CERT_VALIDITY_HOURS": shared_secrets.TOKEN_CERT_VALIDITY_HOURS,
        "DATABASE_PASSWORD_LENGTH": secret_values.DATABASE_PASSWORD_LENGTH,
        "STORE_PASSWORD_LENGTH": data_services.STORE_PASSWORD_LENGTH,
        "STORE_PASSWORD_MIN_EACH": data_services.STORE_PASSWORD_MIN_EACH,
        "OIDC_CLIENT_SECRET_BYTES": config.OIDC_CLIENT_SECRET_BYTES,
    }
    assert {name: getattr(pack, name) for name in pairs} == pairs


def _floors_of(resource: EngineResource) -> tuple:
    """What the program registers for a generated secret, in the form of the pack's tables (absent counts: 0)."""
    props = resource.inputs
    if resource.type == PASSWORD:
        return (props["length"], props.get("minUpper", 0), props.get("minLower", 0), props.get("minNumeric", 0), props["special"])
    if resource.type == BYTES:
        return (props["length"],)
    if resource.type == KEY:
        return (props["algorithm"], props.get("rsaBits"))
    return (props["isCaCertificate"], tuple(props["allowedUses"]), props["validityPeriodHours"])


def test_the_pack_knows_every_generated_secret_at_exactly_the_programs_strength(stacks):
    """Every generated secret the program registers (in the single-VM, HA and externalServices stacks) is one of the
    pack's by its name, and the program's values are the pack's floors exactly: a floor above them would refuse the
    program, one below would let a weaker secret through."""
    import resource_checks as pack
    from reading import Resource

    wanted, found = {}, {}
    for stack in stacks.values():
        for r in (r for r in stack if r.type in (PASSWORD, BYTES, KEY, CERT)):
            resource = Resource(r.type, r.name, r.urn, r.inputs)
            if r.type == PASSWORD:
                key = pack._known_as(pack.RANDOM_PASSWORDS, resource)
                f = pack.RANDOM_PASSWORDS.get(key)
                wanted[r.name] = f and (f.length, f.min_upper, f.min_lower, f.min_numeric, False)
            elif r.type == BYTES:
                key = pack._known_as(pack.RANDOM_BYTES, resource)
                wanted[r.name] = key and (pack.RANDOM_BYTES[key],)
            elif r.type == KEY:
                key = pack._known_as(pack.PRIVATE_KEYS, resource)
                wanted[r.name] = key and pack.PRIVATE_KEYS[key]
            else:
                known = resource.made_by(*pack.TOKEN_CERT)
                wanted[r.name] = known and (True, pack.TOKEN_CERT_USES, pack.TOKEN_CERT_VALIDITY_HOURS)
            found[r.name] = _floors_of(r)
    assert found == wanted
    every_key = set(pack.RANDOM_PASSWORDS) | set(pack.RANDOM_BYTES) | set(pack.PRIVATE_KEYS) | {pack.TOKEN_CERT}
    named = {
        key
        for stack in stacks.values()
        for r in stack
        for key in every_key
        if Resource(r.type, r.name, r.urn, r.inputs).made_by(*key)
    }
    assert named == every_key, "every name the pack floors is one the program registers"
