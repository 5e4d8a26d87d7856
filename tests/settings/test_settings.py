"""Settings: defaults, parsing of engine strings, and a clear error for every bad value."""

from __future__ import annotations

import functools
import ipaddress
import json
import re

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from components.settings.config_reader import SettingsError
from components.settings.settings import UNDECLARED_KEYS, parse_settings
from components.settings.validators import (
    validate_cidr,
    validate_dns_name,
    validate_gc_cron,
    validate_project_name,
    world_families,
)
from tests.standins.pulumi_harness import ROOT, dev_config


def dev_raw() -> dict:
    return {k.split(":", 1)[1]: v for k, v in dev_config().items() if k.startswith("harbor-cache:")}


def parse(**overrides):
    raw = {**dev_raw(), **overrides}
    raw = {k: v for k, v in raw.items() if v is not None}
    return parse_settings(raw, stack="dev", region="eu-central-1")


def problems_of(**overrides) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        parse(**overrides)
    return [str(p) for p in caught.value.problems]


def test_dev_stack_parses_with_defaults_from_the_project_file():
    settings = parse()
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert settings.instance_type == declared["instanceType"]["default"] == "t3.large"
    assert settings.root_volume_size_gb == declared["rootVolumeSizeGb"]["default"]
    assert settings.gc_schedule == declared["gcSchedule"]["default"]
    assert settings.availability_zone == "eu-central-1a"
    assert [u.registry_host for u in settings.upstreams] == ["docker.io", "ghcr.io", "quay.io", "registry.k8s.io", "gcr.io"]
    assert [u.project for u in settings.upstreams][0] == "dockerhub-proxy"
    assert settings.upstreams[0].server == "https://registry-1.docker.io"
    assert settings.oidc.client_id == "harbor-cache-oidc-dex"
    assert settings.oidc.admin_group == "cluster_admins"
    assert settings.oidc.scope == "openid,profile,email,groups,offline_access"
    assert settings.oidc.verify_cert is True and settings.oidc.auto_onboard is False


def test_engine_strings_are_parsed_like_typed_values():
    typed = parse()
    as_engine_strings = {k: v if isinstance(v, str) else json.dumps(v) for k, v in dev_raw().items()}
    as_engine_strings["dataVolumeSizeGb"] = "200"
    assert parse_settings(as_engine_strings, "dev", "eu-central-1") == typed


def test_every_scalar_key_of_the_project_file_is_read_and_every_structured_key_documented():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    # The README is the front page; the reference lives in docs/ (configuration.md holds the keys).
    documentation = "".join(path.read_text() for path in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))))
    for key in (*declared, *UNDECLARED_KEYS):
        assert f"`{key}`" in documentation, f"neither README.md nor docs/*.md documents {key}"
    # The settings package: settings.py and the modules it reads a part of the keys with.
    source = "".join(path.read_text() for path in (ROOT / "components" / "settings").glob("*.py"))
    for key in declared:
        assert f'"{key}"' in source, f"no settings module reads {key}"


def test_keys_the_cli_requires_are_the_keys_the_program_requires():
    """Pulumi requires every key declared without a default; so must the program, and no other."""
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    required = {key for key, spec in declared.items() if "default" not in spec}
    assert required == {"hostname", "zoneName", "allowedCidrs", "sshAllowedCidrs", "acmeEmail"}
    for key in required:
        with pytest.raises(SettingsError, match=f"harbor-cache:{key}: is required"):
            parse(**{key: None})
    for key in UNDECLARED_KEYS:
        parse(**{key: None})  # optional: absent is fine


def test_project_file_config_uses_only_types_pulumi_accepts():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    for key, spec in declared.items():
        assert spec["type"] in ("string", "integer", "boolean", "array"), key
        assert set(spec) <= {"type", "items", "description", "secret", "default"}, key
        if spec["type"] == "array":
            assert spec["items"]["type"] in ("string", "integer", "boolean")


HUB = {"name": "dockerhub", "type": "docker-hub", "url": "https://hub.docker.com", "registryHost": "docker.io"}
HUB_CREDENTIALS = {"dockerhub": {"username": "bot", "password": "hunter2-Secret"}}


def upstream(**fields) -> list[dict]:
    return [{"name": "x", "type": "docker-registry", "url": "https://x.example.com", **fields}]


def test_upstream_credentials_are_kept_secret():
    settings = parse(upstreams=[{**HUB, "public": False}], upstreamCredentials=HUB_CREDENTIALS)
    credential = settings.upstreams[0].credential
    assert credential.password.value == "hunter2-Secret"
    assert "hunter2" not in repr(settings)


BAD_VALUES = [
    ({"hostname": "Harbor.Example.com"}, "hostname", "Harbor.Example.com"),
    ({"hostname": "harbor"}, "hostname", "two labels"),
    ({"hostname": "harbor.other.org"}, "hostname", "not inside zoneName"),
    ({"hostname": "har_bor.dev.example.com"}, "hostname", "har_bor"),
    ({"hostname": None}, "hostname", "is required"),
    ({"zoneName": "dev..example.com"}, "zoneName", "not a DNS label"),
    ({"instanceType": "large"}, "instanceType", "not an EC2 instance type"),
    ({"instanceType": "t4g.large"}, "instanceType", "Graviton"),
    ({"instanceType": "t3.micro"}, "instanceType", "too small"),
    ({"dataVolumeSizeGb": 0}, "dataVolumeSizeGb", "out of range"),
    ({"dataVolumeSizeGb": "lots"}, "dataVolumeSizeGb", "not a whole number"),
    ({"rootVolumeSizeGb": -5}, "rootVolumeSizeGb", "out of range"),
    ({"snapshotRetentionDays": 0}, "snapshotRetentionDays", "1..365"),
    ({"allowedCidrs": ["10.0.0.1/24"]}, "allowedCidrs", "host bits set"),
    ({"allowedCidrs": ["0.0.0.0/0"]}, "allowedCidrs", "allowPublicAccess"),
    ({"allowedCidrs": []}, "allowedCidrs", "is required"),
    ({"allowedCidrs": ["not-a-cidr"]}, "allowedCidrs", "not-a-cidr"),
    ({"sshAllowedCidrs": ["::/0"]}, "sshAllowedCidrs", "whole internet"),
    ({"acmeEmail": "platform.example.com"}, "acmeEmail", "not an e-mail"),
    ({"harborVersion": "2.15.2"}, "harborVersion", "release tag"),
    ({"harborVersion": "v2.4.0"}, "harborVersion", "too old"),
    ({"harborVersion": "v2.15.0"}, "harborVersion", "v2.15.1 or newer (v2.15.0 cannot proxy Docker Hub)"),
    ({"harborVersion": "v2.14.9"}, "harborVersion", "too old"),
    ({"harborInstallerSha256": "abc123"}, "harborInstallerSha256", "64 hex"),
    ({"verifyInstallerSignature": False}, "harborInstallerSha256", "required when verifyInstallerSignature is false"),
    ({"verifyInstallerSignature": "no"}, "verifyInstallerSignature", "true or false"),
    ({"harborReleaseBaseUrl": "ftp://mirror.example.com/harbor"}, "harborReleaseBaseUrl", "not an http(s) URL"),
    ({"harborReleaseBaseUrl": "https://mirror.example.com/h?x=1"}, "harborReleaseBaseUrl", "without query"),
    ({"gcSchedule": "0 3 * * 0"}, "gcSchedule", "6-field"),
    ({"availabilityZone": "us-east-1a"}, "availabilityZone", "not in region"),
    ({"subnetId": "sn-123"}, "subnetId", "not a subnet id"),
    ({"sshUser": "Root User"}, "sshUser", "Linux user"),
    ({"allowPublicAccess": "yes"}, "allowPublicAccess", "true or false"),
    ({"upstreams": [{"name": "q", "type": "quay", "url": "https://quay.io"}]}, "upstreams[0].type", "docker-registry"),
    ({"upstreams": [{"name": "x", "type": "nexus", "url": "https://x.io"}]}, "upstreams[0].type", "docker-hub, harbor"),
    ({"upstreams": [{"name": "x", "type": "docker-registry", "url": "ftp://x.io"}]}, "upstreams[0].url", "ftp://x.io"),
    ({"upstreams": [{"name": "x", "type": "docker-registry", "url": "http://x.io"}]}, "upstreams[0].url", "plain http"),
    (
        {"upstreams": [{"name": "x", "type": "docker-registry", "url": "https://x.io", "project": "Bad_Name"}]},
        "upstreams[0].project",
        "Harbor project name",
    ),
    (
        {
            "upstreams": [
                {"name": "a", "type": "docker-registry", "url": "https://a.io", "project": "p"},
                {"name": "b", "type": "docker-registry", "url": "https://b.io", "project": "p"},
            ]
        },
        "upstreams",
        "duplicate project 'p'",
    ),
    (
        {
            "upstreams": [
                {"name": "a", "type": "docker-registry", "url": "https://a.io"},
                {"name": "a", "type": "docker-registry", "url": "https://b.io"},
            ]
        },
        "upstreams",
        "duplicate name",
    ),
    (
        {"upstreams": [{"name": "a", "type": "docker-registry", "url": "https://a.io", "mirror": "x"}]},
        "upstreams[0]",
        "unknown field(s) ['mirror']",
    ),
    (
        {"upstreams": [{"name": "a", "type": "docker-registry", "url": "https://a.io", "storageQuotaGb": 0}]},
        "upstreams[0].storageQuotaGb",
        "-1 (unlimited)",
    ),
    ({"upstreams": []}, "upstreams", "non-empty"),
    ({"upstreams": "{not json"}, "upstreams", "not valid JSON"),
    ({"oidc": {"issuer": "http://dex.example.com"}}, "oidc.issuer", "https URL"),
    ({"oidc": {"issuer": "https://dex.example.com", "scope": "profile,email"}}, "oidc.scope", "openid"),
    ({"oidc": {"issuer": "https://dex.example.com", "verifyCert": "no"}}, "oidc.verifyCert", "boolean"),
    ({"tags": {"aws:owner": "x"}}, "tags.aws:owner", "aws:"),
    ({"tags": {"harbor-cache:allow-public-access": "true"}}, "tags.harbor-cache:allow-public-access", "program's own"),
    ({"tags": {"Harbor-Cache:node-scratch": "true"}}, "tags.Harbor-Cache:node-scratch", "program's own"),
    ({"tags": {"harbor-cache:snapshot": "dev"}}, "tags.harbor-cache:snapshot", "allowPublicAccess"),
    ({"traefikVersion": "latest"}, "traefikVersion", "Traefik v3 tag"),
    ({"traefikImageDigest": "sha256:abc"}, "traefikImageDigest", "sha256:<64 hex digits>"),
    ({"adminPassword": "Pa$$w0rdLong"}, "adminPassword", "must not contain '$'"),
    ({"adminPassword": "Harbor12345"}, "adminPassword", "Harbor's published default"),
    ({"mirrorCaFile": "ca.crt"}, "mirrorCaFile", "absolute path"),
    ({"harborApiUrl": "http://harbor.dev.example.com"}, "harborApiUrl", "only loopback"),
    ({"harborApiUrl": "ftp://x"}, "harborApiUrl", "SSH tunnel"),
    ({"harborImports": {"registry/x": "x"}}, "harborImports", "is not a setting of this project"),
    ({"gcSchedule": "0 0 25 * * 0"}, "gcSchedule", "hours '25' is out of range"),
    ({"gcSchedule": "0 0 3 * * 7"}, "gcSchedule", "day of week '7'"),
    (
        {"upstreams": [{"name": "a", "type": "docker-registry", "url": "https://a.io", "retentionDays": 0}]},
        "upstreams[0].retentionDays",
        "1..3650",
    ),
    (
        {"upstreams": [{"name": "a", "type": "docker-registry", "url": "https://a.io", "maxUpstreamConn": 2**31}]},
        "upstreams[0].maxUpstreamConn",
        "1..2147483647",
    ),
    (
        {"upstreams": [{"name": "a", "type": "docker-registry", "url": "https://a.io", "storageQuotaGb": 1048577}]},
        "upstreams[0].storageQuotaGb",
        "1..1048576",
    ),
    (
        {"upstreams": [{"name": "a", "type": "docker-registry", "url": "https://a.io", "caCertificate": "not pem"}]},
        "upstreams[0].caCertificate",
        "PEM",
    ),
    (
        {"upstreams": [{"name": "a", "type": "docker-registry", "url": "https://a.io", "forceDestroy": "yes"}]},
        "upstreams[0].forceDestroy",
        "boolean",
    ),
    ({"hostnam": "x"}, "hostnam", "did you mean 'hostname'"),
    ({"upstreamCredentials": {"nobody": {"username": "u", "password": "p"}}}, "upstreamCredentials.nobody", "names no upstream"),
    # Issue 11, low: every one of these passed before.
    ({"upstreams": upstream(registryHost="x.example.com:1/../../..")}, "upstreams[0].registryHost", "port '1/../../..'"),
    ({"upstreams": upstream(registryHost="x.example.com:0")}, "upstreams[0].registryHost", "1..65535"),
    ({"upstreams": upstream(registryHost="../../etc")}, "upstreams[0].registryHost", "host '../../etc'"),
    ({"upstreams": upstream(url="https://x.example.com?x=1")}, "upstreams[0].url", "query or fragment"),
    ({"upstreams": upstream(url="https://x.example.com#top")}, "upstreams[0].url", "query or fragment"),
    ({"upstreams": upstream(url="https://x.example.com:99999")}, "upstreams[0].url", "outside 1..65535"),
    ({"upstreams": upstream(url="https://x.example.com:5000")}, "upstreams[0].url", "allowCustomPortEgress"),
    ({"upstreams": upstream(allowCustomPortEgress="yes")}, "upstreams[0].allowCustomPortEgress", "boolean"),
    ({"allowedCidrs": ["0.0.0.0/1", "128.0.0.0/1"]}, "allowedCidrs", "whole internet (IPv4"),
    ({"allowedCidrs": ["::/1", "8000::/1"]}, "allowedCidrs", "whole internet (IPv6"),
    ({"sshAllowedCidrs": ["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/1"]}, "sshAllowedCidrs", "whole internet"),
    ({"harborApiUrl": "https://attacker.example.net"}, "harborApiUrl", "another host"),
    ({"harborApiUrl": "https://harbor.dev.example.com.attacker.net"}, "harborApiUrl", "another host"),
    ({"acmeEmail": "ops$HOME@example.com"}, "acmeEmail", "interpolate"),
    ({"defaultStorageQuotaGb": 0}, "defaultStorageQuotaGb", "-1 (unlimited)"),
    ({"kmsKeyArn": "alias/aws/ebs"}, "kmsKeyArn", "not a KMS key ARN"),
    (
        {"kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
        "kmsKeyArn",
        "EBS needs a key in 'eu-central-1'",
    ),
    ({"upstreamCredentials": HUB_CREDENTIALS}, "upstreams[0].public", "Public Repo Read-only"),
]


@pytest.mark.parametrize("overrides,key,fragment", BAD_VALUES, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD_VALUES)])
def test_bad_value_names_key_value_and_what_is_accepted(overrides, key, fragment):
    problems = problems_of(**overrides)
    matching = [p for p in problems if p.startswith(f"harbor-cache:{key}: ")]
    assert matching, problems
    assert any(fragment in p for p in matching), matching


def test_secret_values_never_appear_in_errors():
    password = "short#Secret"
    problems = problems_of(
        adminPassword="weakpass", upstreamCredentials={"dockerhub": {"username": "u", "password": password, "extra": 1}}
    )
    text = "\n".join(problems)
    assert "weakpass" not in text and password not in text
    assert "adminPassword" in text and "upstreamCredentials.dockerhub" in text


def test_region_is_required():
    with pytest.raises(SettingsError, match="aws:region: is required"):
        parse_settings(dev_raw(), stack="dev", region=None)


def test_all_problems_are_reported_at_once():
    problems = problems_of(hostname="x", acmeEmail="nope", dataVolumeSizeGb=-1)
    assert len(problems) == 3


# Property tests of the validators.

labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)


@given(st.lists(labels, min_size=1, max_size=4), st.from_regex(r"[a-z]{2,6}", fullmatch=True))
def test_generated_dns_names_are_accepted(parts, tld):
    assert validate_dns_name(".".join([*parts, tld])) is None


@given(st.text(min_size=1, max_size=40))
def test_dns_validator_rejects_anything_with_characters_outside_the_rule(text):
    if any(c not in "abcdefghijklmnopqrstuvwxyz0123456789-." for c in text):
        assert validate_dns_name(text) is not None


@given(st.ip_addresses(v=4), st.integers(min_value=0, max_value=32))
def test_cidr_validator_agrees_with_ipaddress(address, prefix):
    text = f"{address}/{prefix}"
    try:
        ipaddress.ip_network(text, strict=True)
        valid = True
    except ValueError:
        valid = False
    assert (validate_cidr(text) is None) == valid


@given(st.text(max_size=30))
def test_project_name_validator_matches_harbors_rule(name):
    import re

    expected = bool(re.fullmatch(r"[a-z0-9]+(?:[._-][a-z0-9]+)*", name))
    assert (validate_project_name(name) is None) == expected


@given(st.lists(st.sampled_from(["*", "3", "1-5", "*/2", "1,4"]), min_size=5, max_size=5))
def test_gc_cron_accepts_six_fields_starting_with_zero(fields):
    # Values valid in every position ("0" is no day of month nor month: robfig/cron ranges).
    assert validate_gc_cron(" ".join(["0", *fields])) is None
    assert validate_gc_cron(" ".join(fields)) is not None


@pytest.mark.parametrize(
    "cron", ["0 60 3 * * 0", "0 0 24 * * *", "0 0 0 0 * *", "0 0 0 32 * *", "0 0 0 * 13 *", "0 0 0 * * 7", "0 0 0 * FOO *"]
)
def test_gc_cron_rejects_out_of_range_fields(cron):
    assert "out of range" in validate_gc_cron(cron)


@functools.cache
def admin_password_errors() -> frozenset[str]:
    """The error text for one example of each reason adminPassword can be refused for."""
    errors = set()
    for bad in (
        "weak",
        "Harbor12345",
        "Valid$Passw0rd",
        "Valid Passw0rd #x",
        " Valid-Passw0rd",
        "'Valid-Passw0rd",
        "Valid-Passw\u00f6rd1",
        1,
    ):
        with pytest.raises(SettingsError) as reference:
            parse(adminPassword=bad)
        errors.add(str(reference.value))
    return frozenset(errors)


@settings(deadline=None)  # the first example also builds admin_password_errors' references
@given(st.text(max_size=40))
def test_admin_password_is_never_echoed(password):
    """Whatever the bad password, the error is one of the fixed texts: nothing of the value leaks."""
    references = admin_password_errors()
    try:
        parse(adminPassword=password)
    except SettingsError as error:
        assert str(error) in references


@pytest.mark.parametrize("version", ["v2.15.1", "v2.15.2", "v2.16.0", "v2.20.3"])
def test_harbor_releases_from_v2_15_1_on_are_accepted(version):
    assert parse(harborVersion=version).harbor_version == version


def test_a_url_with_user_info_is_refused_without_showing_it():
    problems = problems_of(upstreams=upstream(url="https://bot:hunter2-Secret@x.example.com"))
    (problem,) = [p for p in problems if p.startswith("harbor-cache:upstreams[0].url")]
    assert "user info" in problem and "hunter2" not in problem and "bot" not in problem


def test_coverage_not_prefix_zero_decides_what_is_the_whole_internet():
    assert world_families(["0.0.0.0/1", "128.0.0.0/1"]) == ["IPv4"]
    assert world_families(["::/1", "8000::/1", "10.0.0.0/8"]) == ["IPv6"]
    assert world_families(["0.0.0.0/1", "128.0.0.0/2"]) == []
    allowed = parse(allowedCidrs=["0.0.0.0/1", "128.0.0.0/1"], allowPublicAccess=True)
    assert allowed.allowed_cidrs == ("0.0.0.0/1", "128.0.0.0/1"), "allowPublicAccess still opens it on purpose"


# Short prefixes, so that generated lists often do cover a whole family.
networks_strategy = st.builds(
    lambda address, prefix: ipaddress.ip_network(f"{address}/{prefix}", strict=False),
    st.ip_addresses(v=4) | st.ip_addresses(v=6),
    st.integers(min_value=0, max_value=2),
)


@given(st.lists(networks_strategy, min_size=1, max_size=8))
def test_world_families_agrees_with_counting_addresses(networks):
    for version, label in ((4, "IPv4"), (6, "IPv6")):
        union = ipaddress.collapse_addresses([n for n in networks if n.version == version])
        total = sum(n.num_addresses for n in union)
        assert (label in world_families([str(n) for n in networks])) == (total == 2 ** (32 if version == 4 else 128))


def test_api_url_may_name_the_cache_itself_or_loopback():
    assert parse(harborApiUrl="https://harbor.dev.example.com:8443").api_url == "https://harbor.dev.example.com:8443"
    assert parse(harborApiUrl="http://[::1]:18080").api_url == "http://[::1]:18080"
    assert parse(harborApiUrl="https://localhost:18443").api_url == "https://localhost:18443"


def test_custom_port_with_acknowledgement_and_valid_ports_pass():
    settings = parse(upstreams=upstream(url="https://x.example.com:5000", allowCustomPortEgress=True))
    assert settings.upstreams[0].registry_host == "x.example.com:5000"
    assert parse(upstreams=upstream(registryHost="x.example.com:65535")).upstreams[0].registry_host == "x.example.com:65535"


def test_credentialed_public_project_only_with_explicit_opt_in():
    settings = parse(upstreams=[{**HUB, "allowCredentialedPublic": True}], upstreamCredentials=HUB_CREDENTIALS)
    assert settings.upstreams[0].public and settings.upstreams[0].credential is not None
    problems = problems_of(upstreams=[HUB], upstreamCredentials=HUB_CREDENTIALS)
    assert any("public: false" in p and "pull-only robot" in p for p in problems)
    assert not any("hunter2" in p for p in problems)


def test_default_storage_quota_applies_where_an_upstream_sets_none():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    unlimited = {**upstream()[0], "name": "y", "url": "https://y.example.com", "storageQuotaGb": -1}
    settings = parse(upstreams=[*upstream(), unlimited])
    assert settings.upstreams[0].storage_quota_gb == declared["defaultStorageQuotaGb"]["default"] == 50
    assert settings.upstreams[1].storage_quota_gb == -1, "an explicit -1 stays unlimited"
    assert parse(defaultStorageQuotaGb=7).upstreams[0].storage_quota_gb == 7


def test_kms_key_arn_is_read():
    arn = "arn:aws:kms:eu-central-1:123456789012:key/mrk-1234567890abcdef1234567890abcdef"
    assert parse(kmsKeyArn=arn).kms_key_arn == arn
    assert parse().kms_key_arn == ""


@pytest.mark.parametrize("key,value", [("adminPassword", "Plain-Passw0rd"), ("upstreamCredentials", HUB_CREDENTIALS)])
def test_secrets_given_as_plain_config_are_refused(key, value):
    raw = {**dev_raw(), key: value, "upstreams": [{**HUB, "public": False}]}
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw, stack="dev", region="eu-central-1", plain_keys=set(raw))
    (problem,) = [str(p) for p in caught.value.problems]
    assert problem.startswith(f"harbor-cache:{key}: is set as plain config") and "--secret" in problem
    assert "Plain-Passw0rd" not in problem and "hunter2" not in problem
    secret = parse_settings(raw, stack="dev", region="eu-central-1", plain_keys=set(raw) - {key})
    assert secret.hostname == "harbor.dev.example.com"


def test_the_program_refuses_secrets_the_engine_holds_in_plain(monkeypatch):
    from tests.standins.pulumi_harness import run_program

    config = {**dev_config(), "harbor-cache:adminPassword": "Plain-Passw0rd"}
    captured = {}
    with pytest.raises(SettingsError, match="adminPassword: is set as plain config") as caught:
        run_program(config, recorder=captured)
    assert "Plain-Passw0rd" not in str(caught.value) and captured["registrations"] == []
    assert run_program(config, secret_keys=("harbor-cache:adminPassword",)).registrations
    # Older language hosts pass the secret keys in the environment only.
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["harbor-cache:adminPassword"]))
    assert run_program(config).registrations


def test_the_renderer_refuses_a_plain_secret_in_the_stack_file(tmp_path):
    import shutil
    import subprocess
    import sys

    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    stack = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    stack["config"]["harbor-cache:adminPassword"] = "Plain-Passw0rd"
    (tmp_path / "Pulumi.plain.yaml").write_text(yaml.safe_dump(stack))
    stack["config"]["harbor-cache:adminPassword"] = {"secure": "v1:AAAAencrypted"}
    (tmp_path / "Pulumi.enc.yaml").write_text(yaml.safe_dump(stack))

    def render(name: str, *extra: str) -> subprocess.CompletedProcess:
        code = (
            "import sys; from pathlib import Path; from components import render; "
            f"render.ROOT = Path({str(tmp_path)!r}); sys.exit(render.main(sys.argv[1:]))"
        )
        arguments = [sys.executable, "-c", code, "--stack", name, "--out", str(tmp_path / f"out-{name}"), *extra]
        return subprocess.run(arguments, cwd=ROOT, capture_output=True, text=True)

    plain = render("plain")
    assert plain.returncode == 2 and "adminPassword: is set as plain config" in plain.stderr
    assert "Plain-Passw0rd" not in plain.stderr + plain.stdout
    assert render("enc").returncode == 0
    assert render("plain", "--set", "adminPassword=From-The-Command-L1ne").returncode == 0, "--set values are not in git"


def test_every_tag_the_program_sets_itself_is_one_users_may_not_set():
    """`tags` may not start with the program's prefix, so the program's own tags (which steer DLM and the
    policy pack's exemptions) come only from the program."""
    from components.aws import tagging
    from components.settings.readers import PROGRAM_TAG_PREFIX

    own = [value for name, value in vars(tagging).items() if name.endswith("_TAG")]
    assert own and all(tag.startswith(PROGRAM_TAG_PREFIX) for tag in own)
    for tag in own:
        with pytest.raises(SettingsError, match="program.s own"):
            parse(tags={tag: "true"})


@pytest.mark.parametrize(
    "key,good",
    [
        ("instanceType", "t3.large"),
        ("availabilityZone", "eu-central-1a"),
        ("subnetId", "subnet-0a1b2c3d"),
        ("sshUser", "ubuntu"),
        ("acmeEmail", "platform@example.com"),
        ("alarmEmail", "ops@example.com"),
        ("harborVersion", "v2.15.2"),
        ("harborInstallerSha256", "0" * 64),
        ("traefikVersion", "v3.3.5"),
        ("traefikImageDigest", "sha256:" + "a" * 64),
        ("dataVolumeSnapshotId", "snap-0123456789abcdef0"),
        ("kmsKeyArn", "arn:aws:kms:eu-central-1:123456789012:key/0c1f2e3d-4b5a-6978-8a9b-0c1d2e3f4a5b"),
        ("databaseInstanceClass", "db.t4g.small"),
        ("redisNodeType", "cache.t4g.micro"),
        ("gcSchedule", "0 0 3 * * 6"),
        ("hostname", "harbor.dev.example.com"),
    ],
)
def test_a_trailing_newline_is_refused(key, good):
    """`$` also matches before a final newline (Python re docs): every validator anchors with \\Z, so a
    value that would land in harbor.yml, a unit or a tag with a line break is refused, naming the key."""
    parse(**{key: good})
    with pytest.raises(SettingsError, match=key):
        parse(**{key: good + "\n"})


def test_no_validator_pattern_ends_with_dollar():
    """The module-level patterns that judge values end with \\Z (or are multi-line on purpose)."""
    import importlib

    modules = ("validators", "settings", "scale_settings", "probe_settings")
    patterns = [
        (f"{module}.{name}", value)
        for module in modules
        for name, value in vars(importlib.import_module(f"components.settings.{module}")).items()
        if isinstance(value, re.Pattern)
    ]
    from components.aws.host_key_provider import INSTANCE_ID_RE

    patterns.append(("host_key_provider.INSTANCE_ID_RE", INSTANCE_ID_RE))
    assert len(patterns) > 10
    assert [name for name, pattern in patterns if pattern.pattern.endswith("$") and not pattern.flags & re.MULTILINE] == []
