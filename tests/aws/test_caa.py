"""The CAA record: only our Let's Encrypt account may issue for the cache's name.

The account URI comes from Traefik's acme.json on the VM (files/acme-account-uri.sh); the store
written here follows Traefik's structs (traefik v3.6.24 pkg/provider/acme/store.go StoredData,
account.go Account/Resource with `json:"body"`/`json:"uri"`, provider.go CertAndStore/Certificate,
local_store.go json.MarshalIndent of map[resolver]*StoredData) and lego's acme.Account body.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from components.aws.caa import ACCOUNT_URL_PREFIX, STAGING_ACCOUNT_URL_PREFIX, acm_caa_records, caa_records
from tests.paths import FILES
from tests.standins.pulumi_harness import FAKE_ACME_ACCOUNT_URI, FAKE_ZONE_ID, dev_config, run_program

SCRIPT = FILES / "acme-account-uri.sh"
PRIVATE_KEY = base64.b64encode(b"0\x82\x04\xa4 pkcs1 rsa private key bytes").decode()
ACCOUNT = "https://acme-v02.api.letsencrypt.org/acme/acct/2144569876"


def traefik_store(uri: str | None = ACCOUNT, resolver: str = "letsencrypt") -> dict:
    registration = {
        "body": {"status": "valid", "contact": ["mailto:ops@example.com"], "orders": uri + "/orders" if uri else ""},
        "uri": uri,
    }
    return {
        resolver: {
            "Account": {"Email": "ops@example.com", "Registration": registration, "PrivateKey": PRIVATE_KEY},
            "Certificates": [
                {
                    "domain": {"main": "harbor.dev.example.com"},
                    "certificate": base64.b64encode(b"-----BEGIN CERTIFICATE-----").decode(),
                    "key": base64.b64encode(b"-----BEGIN EC PRIVATE KEY-----").decode(),
                    "Store": "default",
                }
            ],
        }
    }


def account_uri(tmp_path: Path, store: dict | str, prefix: str = ACCOUNT_URL_PREFIX) -> subprocess.CompletedProcess:
    path = tmp_path / "acme.json"
    path.write_text(store if isinstance(store, str) else json.dumps(store, indent=2))
    return subprocess.run(["bash", str(SCRIPT), str(path), "letsencrypt", prefix], capture_output=True, text=True, timeout=30)


def test_prints_the_registered_account_and_never_the_key(tmp_path):
    result = account_uri(tmp_path, traefik_store())
    assert result.returncode == 0, result.stderr
    assert result.stdout == ACCOUNT + "\n"
    assert PRIVATE_KEY not in result.stdout + result.stderr


def test_staging_accounts_are_read_with_the_staging_prefix(tmp_path):
    staging = "https://acme-staging-v02.api.letsencrypt.org/acme/acct/98765"
    assert account_uri(tmp_path, traefik_store(staging), STAGING_ACCOUNT_URL_PREFIX).stdout == staging + "\n"
    refused = account_uri(tmp_path, traefik_store(staging), ACCOUNT_URL_PREFIX)
    assert refused.returncode != 0 and "not an account at" in refused.stderr


@pytest.mark.parametrize(
    "store,message",
    [
        (traefik_store(None), "no registered ACME account"),
        (traefik_store(resolver="other"), "no registered ACME account"),
        (traefik_store(ACCOUNT + "/../../evil"), "not an account at"),
        (traefik_store("https://acme.example.net/acme/acct/1"), "not an account at"),
        ("{not json", "cannot read Traefik's ACME store"),
    ],
)
def test_anything_else_fails_with_a_reason(tmp_path, store, message):
    result = account_uri(tmp_path, store)
    assert result.returncode != 0 and result.stdout == ""
    assert message in result.stderr


def test_missing_store_fails(tmp_path):
    result = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "absent.json"), "letsencrypt", ACCOUNT_URL_PREFIX], capture_output=True, text=True
    )
    assert result.returncode != 0 and "cannot read" in result.stderr


def test_caa_values():
    assert caa_records(ACCOUNT + "\n") == [f'0 issue "letsencrypt.org; accounturi={ACCOUNT}"', '0 issuewild ";"']


@pytest.fixture(scope="module")
def run():
    return run_program(dev_config())


def test_the_caa_record_names_our_account_after_the_readiness_gate(run):
    record = run.named("harbor-caa-caa")
    assert record.type == "aws:route53/record:Record"
    assert record.inputs["type"] == "CAA" and record.inputs["name"] == "harbor.dev.example.com"
    assert record.inputs["zoneId"] == FAKE_ZONE_ID
    uri = FAKE_ACME_ACCOUNT_URI.strip()
    assert record.inputs["records"] == [f'0 issue "letsencrypt.org; accounturi={uri}"', '0 issuewild ";"']

    account = run.named("harbor-caa-acme-account")
    ready = run.named("harbor-install-ready")
    assert account.type == "command:remote:Command"
    assert ready.urn in account.dependencies, "the account exists only once Traefik got its certificate"
    assert account.urn in record.dependencies
    assert account.inputs["triggers"] == ["harbor-install-ready-id"], "re-read only when the gate ran again"
    assert account.inputs["create"] == f"sudo bash -s -- /data/traefik/acme.json letsencrypt {ACCOUNT_URL_PREFIX}"
    assert account.inputs["stdin"] == SCRIPT.read_text()
    component = run.named("harbor-caa")
    assert component.type == "harbor-cache:index:HarborCaa"
    assert account.parent == record.parent == component.urn


def test_staging_reads_a_staging_account():
    run = run_program({**dev_config(), "harbor-cache:acmeStaging": "true"})
    assert run.named("harbor-caa-acme-account").inputs["create"].endswith(STAGING_ACCOUNT_URL_PREFIX)


# --- the way back from HA (issue 18 point 10) ---


def caa_permits(records: list[str], issuer: str, method: str, account: str, wildcard: bool = False) -> bool:
    """Whether a CA whose CAA identity is `issuer` may issue over `method` for `account`, as RFC 8659
    section 4 and RFC 8657 sections 3 and 4 say: for a wildcard the issuewild properties decide when
    there are any, else issue; a property whose issuer-domain-name is the CA's permits it unless its
    `accounturi` names another account or its `validationmethods` leave the method out; `;` alone
    (no issuer) permits nobody."""
    parsed = []
    for record in records:
        flags, tag, value = record.split(" ", 2)
        assert flags == "0"
        parsed.append((tag, value.strip('"')))
    tags = ["issuewild"] if wildcard and any(tag == "issuewild" for tag, _ in parsed) else ["issue"]
    for tag, value in parsed:
        if tag not in tags:
            continue
        name, _, rest = value.partition(";")
        if name.strip() != issuer:
            continue
        parameters = dict(
            (key.strip(), item.strip()) for key, _, item in (part.partition("=") for part in rest.split(";") if part.strip())
        )
        if "accounturi" in parameters and parameters["accounturi"] != account:
            continue
        if "validationmethods" in parameters and method not in parameters["validationmethods"].split(","):
            continue
        return True
    return False


def test_the_ha_record_lets_traefik_renew_by_dns01_on_the_way_back_and_nothing_else():
    """Back to one VM, Traefik (DNS-01 through its instance role) starts before the record is narrowed
    to its account (that waits for the readiness gate), so while the HA record still stands it must let
    Let's Encrypt issue by DNS-01; it admits Amazon for ACM, and no other method, CA or wildcard."""
    records = acm_caa_records()
    assert caa_permits(records, "letsencrypt.org", "dns-01", ACCOUNT)
    assert caa_permits(records, "amazon.com", "dns-01", "")
    assert not caa_permits(records, "letsencrypt.org", "http-01", ACCOUNT)
    assert not caa_permits(records, "letsencrypt.org", "tls-alpn-01", ACCOUNT)
    assert not caa_permits(records, "sectigo.com", "dns-01", "")
    assert not caa_permits(records, "letsencrypt.org", "dns-01", ACCOUNT, wildcard=True)
    # One VM, after the gate: our account only, any method Traefik may use.
    narrowed = caa_records(ACCOUNT)
    assert caa_permits(narrowed, "letsencrypt.org", "dns-01", ACCOUNT)
    assert not caa_permits(narrowed, "letsencrypt.org", "dns-01", ACCOUNT.replace("2144569876", "987654321"))
    assert not caa_permits(narrowed, "amazon.com", "dns-01", "")
