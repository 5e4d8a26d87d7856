"""scripts/deploy.sh: the preflight stops a deploy that would fail late, each failure saying what to do.

The script runs for real in a copy of the project layout, with stand-ins on PATH: `pulumi` (answers
`version` as the CLI does and logs every other call), `aws` (tests/standins/aws_cli.py: the CLI's
command and option names, answer fields and error texts from botocore's model) and a loopback
HTTP server in place of https://checkip.amazonaws.com (which answers the caller's address and a
newline). No real network, no AWS, no Pulumi CLI.
"""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.paths import ROOT

DEPLOYER = "18.196.10.7"  # this machine's public address, as the stand-in answers it
ACCOUNT = "111122223333"
TRIAL_STACK = {
    "config": {
        "aws:region": "eu-central-1",
        "harbor-cache:hostname": "harbor.platform.corp-cache.io",
        "harbor-cache:zoneName": "platform.corp-cache.io",
        "harbor-cache:allowedCidrs": ["18.196.10.0/24", "3.120.4.0/24"],
        "harbor-cache:sshAllowedCidrs": [f"{DEPLOYER}/32"],
        "harbor-cache:acmeEmail": "platform@corp-cache.io",
        "harbor-cache:harborInstallerSha256": "5" * 64,
    }
}
# Field for field what STS, Route53 and KMS answer (names checked against botocore's model by the stand-in).
IDENTITY = {"UserId": "AIDAJQABLZS4A3QDU576Q", "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/deployer"}
ZONE = {
    "Id": "/hostedzone/Z0123456789ABCDEFGHIJ",
    "Name": "platform.corp-cache.io.",
    "CallerReference": "2026-11-28T10:00:00Z",
    "Config": {"Comment": "", "PrivateZone": False},
    "ResourceRecordSetCount": 4,
}
ZONES = {"HostedZones": [ZONE], "DNSName": "platform.corp-cache.io", "IsTruncated": False, "MaxItems": "10"}
KEY = {
    "AWSAccountId": ACCOUNT,
    "KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab",
    "Arn": f"arn:aws:kms:eu-central-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "CreationDate": "2026-11-28T10:00:00+00:00",
    "Enabled": True,
    "Description": "",
    "KeyUsage": "ENCRYPT_DECRYPT",
    "KeyState": "Enabled",
    "Origin": "AWS_KMS",
    "KeyManager": "CUSTOMER",
    "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
    "KeySpec": "SYMMETRIC_DEFAULT",
    "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
    "MultiRegion": False,
}
# What deploy.sh runs besides the stand-ins.
TOOLS = ("bash", "sh", "dirname", "sed", "sort", "head", "tr", "grep", "mkdir", "cat")
GOOD_AWS = {
    "sts get-caller-identity": {"output": IDENTITY},
    "route53 list-hosted-zones-by-name": {"output": ZONES},
    "kms describe-key": {"output": {"KeyMetadata": KEY}},
}


class AddressHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        body = f"{DEPLOYER}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def address_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), AddressHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The files deploy.sh reads, with venvs whose pip only logs (the real installs are not the subject)."""
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "deploy.sh", root / "scripts" / "deploy.sh")
    (root / "components").symlink_to(ROOT / "components")
    for name in ("Pulumi.yaml", "requirements.lock"):
        shutil.copy(ROOT / name, root / name)
    (root / "policy").mkdir()
    shutil.copy(ROOT / "policy" / "requirements.lock", root / "policy" / "requirements.lock")
    for venv in (root / "venv", root / "policy" / "venv"):
        executable(venv / "bin" / "python", f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        executable(venv / "bin" / "pip", f'#!/bin/sh\necho "{venv.relative_to(root)} pip $*" >> "$FAKE_LOG"\n')
    (root / "Pulumi.trial.yaml").write_text(yaml.safe_dump(TRIAL_STACK))
    return root


def run(
    project: Path,
    address_url: str,
    *args: str,
    aws: dict | None = None,
    pulumi_version: str = "v3.272.0",
    with_pulumi: bool = True,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess, list[str], list[dict]]:
    fakebin = project.parent / "bin"
    log, aws_log, scenario = project.parent / "calls.log", project.parent / "aws.log", project.parent / "aws.json"
    for path in (log, aws_log):
        path.write_text("")
    scenario.write_text(json.dumps(GOOD_AWS if aws is None else aws))
    shutil.rmtree(fakebin, ignore_errors=True)
    if with_pulumi:
        # `pulumi version` prints version.Version, "v3.272.0" (pkg/cmd/pulumi/version.go).
        executable(
            fakebin / "pulumi",
            f'#!/bin/sh\n[ "$1" = version ] && {{ echo "{pulumi_version}"; exit 0; }}\necho "pulumi $*" >> "$FAKE_LOG"\n',
        )
    executable(fakebin / "aws", f'#!/bin/sh\nexec "{sys.executable}" "{ROOT / "tests" / "standins" / "aws_cli.py"}" "$@"\n')
    executable(fakebin / "python3", f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    # PATH is only this folder: the stand-ins and the few real tools the script uses, so no real
    # pulumi or aws on the machine can answer.
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, f"{tool} is not installed"
        (fakebin / tool).symlink_to(found)
    environment = {
        "PATH": str(fakebin),
        "HOME": str(project.parent),
        "FAKE_LOG": str(log),
        "FAKE_AWS_LOG": str(aws_log),
        "FAKE_AWS_SCENARIO": str(scenario),
        "HARBOR_CACHE_ADDRESS_URL": address_url,
        "PULUMI_CONFIG_PASSPHRASE_FILE": str(project.parent / "passphrase"),
    }
    (project.parent / "passphrase").write_text("a long random passphrase\n")
    environment.update(env or {})
    done = subprocess.run(
        ["bash", str(project / "scripts" / "deploy.sh"), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    calls = [line for line in log.read_text().splitlines() if line]
    aws_calls = [json.loads(line) for line in aws_log.read_text().splitlines() if line]
    return done, calls, aws_calls


def test_check_passes_and_creates_nothing(project, address_url):
    done, calls, aws_calls = run(project, address_url, "--check", "trial")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "preflight passed" in done.stdout
    for line in (
        "ok   Pulumi CLI: 3.272.0",
        f"account {ACCOUNT}",
        "platform.corp-cache.io is Z0123456789ABCDEFGHIJ",
        f"{DEPLOYER} is in sshAllowedCidrs",
        f"{DEPLOYER} is in allowedCidrs",
        "passes the program's validation",
    ):
        assert line in done.stdout
    assert not [c for c in calls if c.startswith("pulumi")], "--check runs no pulumi command (no stack is created)"
    assert [c["call"] for c in aws_calls] == ["sts get-caller-identity", "route53 list-hosted-zones-by-name"]
    assert aws_calls[1]["params"] == {"DNSName": "platform.corp-cache.io", "MaxItems": "10"}


def test_preview_and_up_run_pulumi_with_the_policy_pack(project, address_url):
    done, calls, _ = run(project, address_url, "--preview", "trial", "--diff")
    assert done.returncode == 0, done.stderr
    pulumi_calls = [c for c in calls if c.startswith("pulumi")]
    assert pulumi_calls == [
        "pulumi stack select --create trial --secrets-provider passphrase",
        "pulumi preview --stack trial --policy-pack policy --diff",
    ]
    done, calls, _ = run(project, address_url, "trial", "--yes")
    assert done.returncode == 0, done.stderr
    assert [c for c in calls if c.startswith("pulumi")][-1] == "pulumi up --stack trial --policy-pack policy --yes"
    assert "venv pip install -q --disable-pip-version-check --require-hashes -r requirements.lock" in calls


def test_a_missing_stack_file_is_refused_before_anything_is_installed_or_created(project, address_url):
    done, calls, _ = run(project, address_url, "prod")
    assert done.returncode == 2
    assert "there is no Pulumi.prod.yaml. Copy Pulumi.dev.yaml to Pulumi.prod.yaml" in done.stderr
    assert calls == [], "no install, no `pulumi stack select --create`"


def test_no_pulumi_cli_is_found_before_the_installs(project, address_url):
    done, calls, _ = run(project, address_url, "trial", with_pulumi=False)
    assert done.returncode == 2
    assert "Pulumi CLI: not installed. Install 3.272.0 or newer" in done.stderr
    assert calls == []


def test_an_old_pulumi_cli_is_refused(project, address_url):
    done, _, _ = run(project, address_url, "--check", "trial", pulumi_version="v3.100.0")
    assert done.returncode == 2
    assert "version '3.100.0' is older than the locked SDK (3.272.0)" in done.stderr


def test_no_secrets_provider_or_an_empty_passphrase_file_is_refused(project, address_url):
    done, calls, _ = run(project, address_url, "--check", "trial", env={"PULUMI_CONFIG_PASSPHRASE_FILE": ""})
    assert done.returncode == 2 and "Pulumi.trial.yaml names none. Set PULUMI_SECRETS_PROVIDER" in done.stderr
    (project.parent / "empty").write_text("")
    done, _, _ = run(
        project, address_url, "--check", "trial", env={"PULUMI_CONFIG_PASSPHRASE_FILE": str(project.parent / "empty")}
    )
    assert done.returncode == 2 and "is missing or empty: write a passphrase into it" in done.stderr


def test_no_aws_credentials_say_how_to_get_them(project, address_url):
    done, _, _ = run(
        project, address_url, "--check", "trial", aws={**GOOD_AWS, "sts get-caller-identity": {"no_credentials": True}}
    )
    assert done.returncode == 2
    assert "FAIL AWS identity: Unable to locate credentials" in done.stdout
    assert "export AWS_PROFILE" in done.stdout


def test_a_zone_missing_from_the_account_is_named(project, address_url):
    # Route53 answers with the zones from that name on: a missing zone shows the next one instead.
    other = {**ZONE, "Id": "/hostedzone/Z999", "Name": "qa.corp-cache.io."}
    aws = {**GOOD_AWS, "route53 list-hosted-zones-by-name": {"output": {**ZONES, "HostedZones": [other]}}}
    done, _, _ = run(project, address_url, "--check", "trial", aws=aws)
    assert done.returncode == 2
    assert f"FAIL hosted zone: no hosted zone platform.corp-cache.io in account {ACCOUNT}" in done.stdout
    private = {**ZONE, "Config": {"PrivateZone": True}}
    aws = {**GOOD_AWS, "route53 list-hosted-zones-by-name": {"output": {**ZONES, "HostedZones": [private]}}}
    done, _, _ = run(project, address_url, "--check", "trial", aws=aws)
    assert "is only a private zone" in done.stdout


def test_the_kms_key_of_the_secrets_provider_must_exist(project, address_url):
    provider = "awskms://alias/harbor-cache-trial?region=eu-central-1"
    missing = {
        "code": "NotFoundException",
        "message": f"Alias arn:aws:kms:eu-central-1:{ACCOUNT}:alias/harbor-cache-trial is not found.",
    }
    done, _, aws_calls = run(
        project,
        address_url,
        "--check",
        "trial",
        aws={**GOOD_AWS, "kms describe-key": {"error": missing}},
        env={"PULUMI_SECRETS_PROVIDER": provider},
    )
    assert done.returncode == 2
    assert (
        "FAIL secrets provider: awskms://alias/harbor-cache-trial?region=eu-central-1: An error occurred (NotFoundException)"
        in done.stdout
    )
    assert "create the key and its alias in eu-central-1" in done.stdout
    assert (
        aws_calls[-1]["params"] == {"KeyId": "alias/harbor-cache-trial"}
        and aws_calls[-1]["options"]["--region"] == "eu-central-1"
    )
    done, _, _ = run(project, address_url, "--check", "trial", env={"PULUMI_SECRETS_PROVIDER": provider})
    assert done.returncode == 0 and f"is {KEY['Arn']}" in done.stdout


def test_this_machine_outside_the_cidrs_is_told_what_to_add(project, address_url):
    stack = yaml.safe_load((project / "Pulumi.trial.yaml").read_text())
    stack["config"]["harbor-cache:sshAllowedCidrs"] = ["3.120.4.0/24"]
    stack["config"]["harbor-cache:allowedCidrs"] = ["3.120.4.0/24"]
    (project / "Pulumi.trial.yaml").write_text(yaml.safe_dump(stack))
    done, _, _ = run(project, address_url, "--check", "trial")
    assert done.returncode == 2
    assert f"not in harbor-cache:sshAllowedCidrs, and the install runs over SSH from here: add {DEPLOYER}/32" in done.stdout
    assert (
        f"not in harbor-cache:allowedCidrs, and `pulumi up` configures Harbor through its API on 443: add {DEPLOYER}/32"
        in done.stdout
    )
    # An SSH tunnel for the API (harborApiUrl) needs only SSH.
    stack["config"]["harbor-cache:harborApiUrl"] = "http://127.0.0.1:18080"
    (project / "Pulumi.trial.yaml").write_text(yaml.safe_dump(stack))
    done, _, _ = run(project, address_url, "--check", "trial")
    assert "ok   Harbor API reach: through harborApiUrl" in done.stdout and "FAIL SSH reach" in done.stdout


def test_example_values_and_validation_errors_are_listed_with_their_keys(project, address_url):
    stack = yaml.safe_load((project / "Pulumi.trial.yaml").read_text())
    stack["config"].update(
        {
            "harbor-cache:hostname": "harbor.dev.example.com",
            "harbor-cache:acmeEmail": "platform@example.com",
            "harbor-cache:sshAllowedCidrs": ["203.0.113.10/32", f"{DEPLOYER}/32"],
            "harbor-cache:harborInstallerSha256": "0" * 64,
            "harbor-cache:oidc": {"issuer": "https://dex.dev.example.com"},
            "harbor-cache:snapshotRetentionDays": 0,
            "aws:profile": "work",
        }
    )
    (project / "Pulumi.trial.yaml").write_text(yaml.safe_dump(stack))
    done, calls, _ = run(project, address_url, "trial")
    assert done.returncode == 2
    for expected in (
        "FAIL harbor-cache:hostname: 'harbor.dev.example.com' is an example name",
        "FAIL harbor-cache:acmeEmail: 'platform@example.com' is an example name",
        "FAIL harbor-cache:oidc.issuer: 'https://dex.dev.example.com' is an example name",
        "FAIL harbor-cache:sshAllowedCidrs: 203.0.113.10/32 is a documentation network",
        "FAIL harbor-cache:harborInstallerSha256: all zeros, a placeholder",
        "FAIL aws:profile: ",
        "FAIL configuration: harbor-cache:snapshotRetentionDays",
    ):
        assert expected in done.stdout, expected
    assert not [c for c in calls if c.startswith("pulumi")], "nothing is created when the preflight fails"


def test_the_address_lookup_failing_says_how_to_give_it(project, address_url):
    done, _, _ = run(project, address_url, "--check", "trial", env={"HARBOR_CACHE_ADDRESS_URL": "http://127.0.0.1:9/"})
    assert done.returncode == 2 and "set HARBOR_CACHE_DEPLOY_ADDRESS=" in done.stdout
    done, _, _ = run(
        project,
        address_url,
        "--check",
        "trial",
        env={"HARBOR_CACHE_ADDRESS_URL": "http://127.0.0.1:9/", "HARBOR_CACHE_DEPLOY_ADDRESS": DEPLOYER},
    )
    assert done.returncode == 0, done.stdout


def test_the_stacks_own_secrets_provider_is_used(project, address_url):
    """A new stack takes PULUMI_SECRETS_PROVIDER (one KMS key per stack); a stack file that names its
    provider (`secretsprovider:`, written by `pulumi stack init --secrets-provider`) keeps it."""
    kms = "awskms://alias/harbor-cache-trial?region=eu-central-1"
    done, calls, _ = run(project, address_url, "trial", env={"PULUMI_SECRETS_PROVIDER": kms, "PULUMI_CONFIG_PASSPHRASE_FILE": ""})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "policy/venv pip install -q --disable-pip-version-check --require-hashes -r policy/requirements.lock" in calls
    assert [c for c in calls if c.startswith("pulumi")] == [
        f"pulumi stack select --create trial --secrets-provider {kms}",
        "pulumi up --stack trial --policy-pack policy",
    ]
    stack_file = project / "Pulumi.trial.yaml"
    stack_file.write_text(f"secretsprovider: {kms}\nencryptedkey: AQICAHg=\n" + stack_file.read_text())
    done, calls, _ = run(project, address_url, "trial", env={"PULUMI_CONFIG_PASSPHRASE_FILE": ""})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pulumi stack select --create trial" in calls and f"is {KEY['Arn']}" in done.stdout
