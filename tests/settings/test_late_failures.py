"""What would fail only late is refused up front (issue 21 point 5): values left from the example
stack, a credential only the AWS provider would see, an instance type EC2 does not have, keys under a
namespace nobody reads. Each problem names the key, the value (unless secret) and what to do."""

from __future__ import annotations

from typing import Any

import pytest

from components.settings.config_reader import SettingsError
from components.settings.instance_types import ec2_instance_types
from components.settings.settings import parse_settings
from tests.standins.pulumi_harness import dev_config, run_program

PREFIX = "harbor-cache:"


def fixture_raw() -> dict[str, Any]:
    return {key.removeprefix(PREFIX): value for key, value in dev_config().items() if key.startswith(PREFIX)}


def problems(overrides: dict[str, Any] | None = None, foreign: dict[str, Any] | None = None) -> list[str]:
    try:
        parse_settings({**fixture_raw(), **(overrides or {})}, "dev", "eu-central-1", foreign=foreign)
    except SettingsError as error:
        return [str(problem) for problem in error.problems]
    return []


# (overrides, key as shown, the value as shown, words of the fix)
EXAMPLE_VALUES = [
    ({"harborInstallerSha256": "0" * 64}, "harbor-cache:harborInstallerSha256", "'" + "0" * 64 + "'", "sha256sum"),
    ({"acmeEmail": "platform@example.com"}, "harbor-cache:acmeEmail", "'platform@example.com'", "Let's Encrypt"),
    ({"acmeEmail": "ops@team.example.org"}, "harbor-cache:acmeEmail", "'ops@team.example.org'", "your team's address"),
    ({"acmeEmail": "ops@registry.test"}, "harbor-cache:acmeEmail", "'ops@registry.test'", "your team's address"),
    ({"alarmEmail": "ops@example.net"}, "harbor-cache:alarmEmail", "'ops@example.net'", "on-call address"),
    ({"allowedCidrs": ["192.0.2.0/24"]}, "harbor-cache:allowedCidrs", "'192.0.2.0/24'", "NAT gateway addresses"),
    ({"allowedCidrs": ["198.51.100.7/32"]}, "harbor-cache:allowedCidrs", "'198.51.100.7/32'", "NAT gateway addresses"),
    ({"allowedCidrs": ["10.0.0.0/8", "203.0.113.0/25"]}, "harbor-cache:allowedCidrs", "'203.0.113.0/25'", "CI runners"),
    ({"allowedCidrs": ["2001:db8:1::/48"]}, "harbor-cache:allowedCidrs", "'2001:db8:1::/48'", "NAT gateway"),
    ({"sshAllowedCidrs": ["203.0.113.10/32"]}, "harbor-cache:sshAllowedCidrs", "'203.0.113.10/32'", "runs `pulumi up`"),
    ({"metricsAllowedCidrs": ["198.51.100.0/24"]}, "harbor-cache:metricsAllowedCidrs", "'198.51.100.0/24'", "Prometheus"),
    ({"oidc": {"issuer": "https://dex.dev.example.com"}}, "harbor-cache:oidc.issuer", "'https://dex.dev.example.com'", "rm oidc"),
    ({"instanceType": "t3.larg"}, "harbor-cache:instanceType", "'t3.larg'", "did you mean 't3.large'"),
    ({"instanceType": "m9z.large"}, "harbor-cache:instanceType", "'m9z.large'", "newer boto3"),
    ({"instanceType": "c5.huge"}, "harbor-cache:instanceType", "'c5.huge'", "not an EC2 instance type"),
]


@pytest.mark.parametrize(("overrides", "key", "shown", "fix"), EXAMPLE_VALUES, ids=[case[2] for case in EXAMPLE_VALUES])
def test_values_that_fail_late_are_refused_with_key_value_and_fix(overrides, key, shown, fix):
    (problem,) = problems(overrides)
    assert problem.startswith(f"{key}: {shown}"), problem
    assert fix in problem


FOREIGN_KEYS = [
    ({"aws:profile": "work"}, "aws:profile: is set ('work')", "export AWS_PROFILE=work"),
    ({"aws:secretKey": "wJalrXUtnFEMI/K7MDENG"}, "aws:secretKey: is set,", "AWS_SECRET_ACCESS_KEY"),
    (
        {"aws:assumeRoles": [{"roleArn": "arn:aws:iam::1:role/x", "externalId": "wJalrXUtnFEMI"}]},
        "aws:assumeRoles: is set,",
        "role_arn",
    ),
    # Review 22f L2: the policy pack refuses the default provider with any of these; the settings say so first.
    ({"aws:sharedConfigFiles": '["./aws-config"]'}, "aws:sharedConfigFiles: is set", "AWS_CONFIG_FILE"),
    ({"aws:ec2MetadataServiceEndpoint": "http://198.51.100.7"}, "aws:ec2MetadataServiceEndpoint: is set", "AWS_EC2_METADATA"),
    (
        {"aws:assumeRole": '{"roleArn": "arn:aws:iam::1:role/x", "externalId": "wJalrXUtnFEMI"}'},
        "aws:assumeRole: is set,",
        "AWS_",
    ),
    ({"aws:regoin": "eu-central-1"}, "aws:regoin: is set, but the policy pack allows only", "pulumi config rm aws:regoin"),
    ({"aws:insecure": "true"}, "aws:insecure: is set ('true')", "pulumi config rm aws:insecure"),
    ({"aws:httpsProxy": "http://me:wJalrXUtnFEMI@proxy.example.net"}, "aws:httpsProxy: is set:", "elsewhere"),
    ({"aws:ignoreTags": '{"keyPrefixes": ["harbor"]}'}, "aws:ignoreTags: ", "stop managing the program's 'harbor-cache:' tags"),
    ({"harbor_cache:hostname": "h.dev.example.com"}, "harbor_cache:hostname: namespace", "'harbor-cache:hostname'"),
    ({"harborcache:acmeEmail": "x@corp.io"}, "harborcache:acmeEmail: namespace", "did you mean 'harbor-cache:acmeEmail'"),
    ({"harbor-cahce:zonename": "dev.example.com"}, "harbor-cahce:zonename: namespace", "did you mean 'harbor-cache:zoneName'"),
    ({"aws_:region": "eu-central-1"}, "aws_:region: namespace", "did you mean 'aws:region'"),
]


@pytest.mark.parametrize(("foreign", "start", "fix"), FOREIGN_KEYS, ids=[next(iter(case[0])) for case in FOREIGN_KEYS])
def test_keys_only_the_provider_or_nobody_would_read_are_refused(foreign, start, fix):
    (problem,) = problems(foreign={"aws:region": "eu-central-1", **foreign})
    assert problem.startswith(start) and fix in problem, problem
    assert "wJalrXUtnFEMI" not in problem, "a credential's value is never shown"


def test_real_values_near_the_refused_ones_pass():
    near = {
        "acmeEmail": "ops@example-corp.com",
        "alarmEmail": "alarms@examples.org",
        # Contains a documentation block, but is not inside one: real clients have such addresses.
        "allowedCidrs": ["192.0.0.0/16", "10.0.0.0/8", "2001:db9::/32"],
        "metricsAllowedCidrs": ["198.51.0.0/16"],
        "oidc": {"issuer": "https://dex.example.company"},
        "harborInstallerSha256": "0" * 63 + "1",
        "instanceType": "m7i.large",
    }
    foreign = {
        "aws:region": "eu-central-1",
        "aws:defaultTags": {"tags": {"a": "b"}},
        "pulumi:tags": {"x": "y"},
        # Review 22f FR3 and L2: explicit "off" and the provider settings the policy pack allows.
        "aws:insecure": "false",
        "aws:endpoints": "[]",
        "aws:httpProxy": "",
        "aws:skipRequestingAccountId": "true",
        "aws:maxRetries": "25",
        "aws:allowedAccountIds": '["123456789012"]',
        "aws:ignoreTags": '{"keyPrefixes": ["kubernetes.io/"], "keys": ["CostCenter"]}',
    }
    assert problems(near, foreign) == []
    for real in ("t3.medium", "c7i.2xlarge", "m5zn.large", "u-6tb1.metal", "x2iedn.xlarge"):
        assert problems({"instanceType": real}) == [], real


def test_the_instance_types_come_from_botocore_s_ec2_model():
    known = ec2_instance_types()
    assert {"t3.large", "m7i.large", "c6a.xlarge", "m7g.large"} <= known and "t3.larg" not in known
    assert len(known) > 500
    # Real but unfit types are still refused for what they are.
    (arm,) = problems({"instanceType": "m7g.large"})
    assert "Arm (Graviton)" in arm
    (small,) = problems({"instanceType": "t3.micro"})
    assert "too small" in small


def test_oidc_is_off_without_the_key():
    settings = parse_settings({k: v for k, v in fixture_raw().items() if k != "oidc"}, "dev", "eu-central-1")
    assert settings.oidc is None


@pytest.mark.parametrize(
    ("key", "value", "start"),
    [
        ("aws:profile", "work", "aws:profile: is set ('work')"),
        ("harbor_cache:hostname", "harbor.dev.example.com", "harbor_cache:hostname: namespace 'harbor_cache'"),
    ],
)
def test_the_program_refuses_them_before_registering_anything(key, value, start):
    captured: dict = {}
    with pytest.raises(SettingsError) as caught:
        run_program({**dev_config(), key: value}, recorder=captured)
    assert [str(p) for p in caught.value.problems if str(p).startswith(start)], caught.value
    assert captured["registrations"] == []


def test_the_known_namespaces_are_the_project_the_engine_and_the_providers_in_requirements():
    import re

    from components.settings.config_reader import PROJECT
    from components.settings.namespaces import KNOWN_NAMESPACES
    from tests.paths import ROOT

    providers = set(re.findall(r"^pulumi-([a-z]+)", (ROOT / "requirements.txt").read_text(), re.MULTILINE))
    assert set(KNOWN_NAMESPACES) == {PROJECT, "pulumi", *providers}
