"""Harbor's installer, verified from its Sigstore bundle (components/vm/installer_signature.py), with
real cryptography and no network.

No Harbor bundle can be fetched here, so the tests use a real GitHub Actions keyless bundle of the
same kind (shared/reference/sigstore/: a `messageSignature` bundle with a hashedrekord entry, made
by a release workflow through https://token.actions.githubusercontent.com), which names the PyPI
wheel it signs, its sha256 and its signer. With that signer as the identity the code must accept it
and return the signed sha256; with Harbor's identity, another issuer, a disagreeing pin or any
altered byte it must refuse, naming the key. sigstore-python checks it against its embedded trust
root (offline=True); the program itself refreshes that root through TUF.

The program's path is served by a loopback HTTP server standing in for GitHub's release downloads,
which answer an asset URL with a redirect to the file (so does the stand-in).
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from components.settings.config_reader import SettingsError
from components.settings.settings import Settings, parse_settings
from components.vm import installer_signature as signature
from components.vm.install import HarborInstall, HarborInstallArgs
from tests.conftest import unavailable
from tests.paths import REFERENCE
from tests.standins.pulumi_harness import FAKE_SIGNED_INSTALLER_SHA256, dev_config, run_program

BUNDLE_FILE = REFERENCE / "sigstore" / "rfc8785-0.1.2-py3-none-any.whl.sigstore.json"
# From shared/reference/sigstore/README.md: what the bundle signs and who signed it.
SIGNED_SHA256 = "c4e92e9ecc828bef2aa7dba1de8ac983511f7532a0df11c770d39099a25cf201"
SIGNER = "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2"
VERSION = "v2.15.2"
OTHER_SHA256 = "ab" * 32


@pytest.fixture
def bundle(monkeypatch, tmp_path) -> bytes:
    if not BUNDLE_FILE.is_file():
        unavailable(f"no reference bundle at {BUNDLE_FILE} (set HARBOR_CACHE_REFERENCE_DIR)")
    # sigstore-python copies its embedded trust root into the user's cache and data folders: here a
    # fresh pair, so no cache another run refreshed (or altered) decides.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return BUNDLE_FILE.read_bytes()


def verify(bundle_json: bytes, identity: str = SIGNER, **options) -> str:
    return signature.signed_sha256(bundle_json, identity, offline=True, **options)


def altered(bundle_json: bytes, change) -> bytes:
    document = copy.deepcopy(json.loads(bundle_json))
    change(document)
    return json.dumps(document).encode()


def flip_base64(text: str, index: int = 5) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def refusal(error: pytest.ExceptionInfo) -> tuple[str, str]:
    (problem,) = error.value.problems
    return problem.key, problem.message


# --- the bundle alone ---


def test_the_signers_identity_is_accepted_and_the_signed_sha256_returned(bundle):
    assert verify(bundle) == SIGNED_SHA256


def test_harbors_identity_refuses_a_bundle_another_workflow_signed(bundle):
    with pytest.raises(SettingsError) as error:
        verify(bundle, signature.signing_identity(VERSION), url="https://example.test/b.sigstore.json")
    key, message = refusal(error)
    assert key == "harborVersion"
    assert signature.signing_identity(VERSION) in message and "SANs do not match" in message
    assert "https://example.test/b.sigstore.json" in message and "refusing the installer" in message


def test_another_tag_of_the_same_workflow_is_refused(bundle):
    with pytest.raises(SettingsError, match="SANs do not match"):
        verify(bundle, SIGNER.replace("v0.1.2", "v0.1.3"))


def test_another_issuer_is_refused(bundle):
    with pytest.raises(SettingsError) as error:
        verify(bundle, issuer="https://accounts.google.com")
    key, message = refusal(error)
    assert key == "harborVersion" and "OIDCIssuer does not match" in message and "https://accounts.google.com" in message


def entry(document: dict) -> dict:
    return document["verificationMaterial"]["tlogEntries"][0]


def leaf_certificate(document: dict) -> dict:
    return document["verificationMaterial"]["x509CertificateChain"]["certificates"][0]


@pytest.mark.parametrize(
    "what, change, reason",
    [
        # Another file's digest in place of the signed one: the signature no longer covers it.
        (
            "message digest",
            lambda d: d["messageSignature"]["messageDigest"].update(
                digest=flip_base64(d["messageSignature"]["messageDigest"]["digest"])
            ),
            "Signature is invalid for input",
        ),
        (
            "signature",
            lambda d: d["messageSignature"].update(signature=flip_base64(d["messageSignature"]["signature"], 20)),
            "Signature is invalid for input",
        ),
        (
            "log entry body",
            lambda d: entry(d).update(canonicalizedBody=flip_base64(entry(d)["canonicalizedBody"], 40)),
            "inclusion proof contains invalid root hash",
        ),
        (
            "log inclusion promise",
            lambda d: entry(d)["inclusionPromise"].update(
                signedEntryTimestamp=flip_base64(entry(d)["inclusionPromise"]["signedEntryTimestamp"], 10)
            ),
            "invalid inclusion promise",
        ),
        (
            "certificate",
            lambda d: leaf_certificate(d).update(rawBytes=flip_base64(leaf_certificate(d)["rawBytes"], 300)),
            "signature does not match",
        ),
    ],
)
def test_an_altered_bundle_is_refused(bundle, what, change, reason):
    with pytest.raises(SettingsError) as error:
        verify(altered(bundle, change))
    key, message = refusal(error)
    assert key == "harborVersion", what
    assert reason in message and message.endswith("refusing the installer"), message


def test_a_bundle_without_a_digest_is_checked_against_the_pin(bundle):
    bare = altered(bundle, lambda d: d["messageSignature"].pop("messageDigest"))
    assert verify(bare, pin=SIGNED_SHA256) == SIGNED_SHA256
    with pytest.raises(SettingsError, match="Signature is invalid for input"):
        verify(bare, pin=OTHER_SHA256)
    with pytest.raises(SettingsError) as error:
        verify(bare)
    key, message = refusal(error)
    assert key == "harborInstallerSha256" and "names no sha256" in message


def test_a_legacy_cosign_bundle_is_named_and_the_manual_path_given(bundle):
    """cosign < 3 wrote its own format with `--bundle` (without --new-bundle-format): sigstore-python
    cannot read it. The fields as cosign's LocalSignedPayload has them (pkg/cosign/bundle)."""
    document = json.loads(bundle)
    legacy = json.dumps(
        {
            "base64Signature": document["messageSignature"]["signature"],
            "cert": document["verificationMaterial"]["x509CertificateChain"]["certificates"][0]["rawBytes"],
            "rekorBundle": {"SignedEntryTimestamp": "", "Payload": {}},
        }
    ).encode()
    with pytest.raises(SettingsError) as error:
        verify(legacy, version=VERSION)
    key, message = refusal(error)
    assert key == "harborVersion" and "legacy cosign bundle" in message and "cannot read" in message
    assert "cosign verify-blob" in message and signature.signing_identity(VERSION) in message
    assert "verifyInstallerSignature: false" in message and "harborInstallerSha256" in message


def test_a_bundle_version_this_sigstore_python_does_not_know_is_named_with_the_manual_path(bundle):
    """A future bundle media type: sigstore-python's bundle model refuses it (models.py Bundle.from_json:
    "failed to load bundle"); the program says it cannot read it and how to go on by hand."""
    future = altered(bundle, lambda d: d.update(mediaType="application/vnd.dev.sigstore.bundle.v0.9+json"))
    with pytest.raises(SettingsError) as error:
        verify(future, version=VERSION)
    key, message = refusal(error)
    assert key == "harborVersion" and "sigstore-python can read" in message and "failed to load bundle" in message
    assert "cosign verify-blob" in message and "verifyInstallerSignature: false" in message


def test_a_dsse_attestation_names_no_installer_digest(bundle):
    def to_dsse(document):
        message = document.pop("messageSignature")
        document["dsseEnvelope"] = {
            "payload": base64.b64encode(b"{}").decode(),
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"sig": message["signature"]}],
        }

    with pytest.raises(SettingsError) as error:
        verify(altered(bundle, to_dsse), version=VERSION)
    key, message = refusal(error)
    assert key == "harborVersion" and "cosign verify-blob" in message


def test_what_is_not_json_is_refused(bundle):
    with pytest.raises(SettingsError, match="is not JSON"):
        verify(b"<html>Not Found</html>")


# --- the program's path: fetch from the release, verify, compare with the pin ---


class ReleaseServer:
    """GitHub's release downloads, on loopback: `/<tag>/<asset>` answers 302 to the file (as
    github.com/<owner>/<repo>/releases/download does, to its asset host), unknown assets 404."""

    def __init__(self, assets: dict[str, bytes]) -> None:
        self.assets = assets
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                server.requests.append(self.path)
                if self.path.startswith("/assets/") and self.path.removeprefix("/assets") in server.assets:
                    body = server.assets[self.path.removeprefix("/assets")]
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                elif self.path in server.assets:
                    self.send_response(302)
                    self.send_header("Location", f"/assets{self.path}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "9")
                    self.end_headers()
                    self.wfile.write(b"Not Found")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/goharbor/harbor/releases/download"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def bundle_requests(self) -> list[str]:
        return [path for path in self.requests if not path.startswith("/assets/")]


@pytest.fixture
def release(bundle):
    path = f"/goharbor/harbor/releases/download/{VERSION}/harbor-offline-installer-{VERSION}.tgz.sigstore.json"
    server = ReleaseServer({path: bundle})
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def signer_as_harbor(monkeypatch):
    """The reference bundle's signer in the place of Harbor's workflow identity: the rest is the program's."""
    monkeypatch.setattr(signature, "signing_identity", lambda version: SIGNER)


def stack_settings(**changes) -> Settings:
    raw = {key.split(":", 1)[1]: value for key, value in dev_config().items() if key.startswith("harbor-cache:")}
    return dataclasses.replace(parse_settings(raw, stack="dev", region="eu-central-1"), **changes)


def test_up_fetches_verifies_and_hands_over_the_signed_sha256(release, signer_as_harbor):
    settings = stack_settings(harbor_release_base_url=release.base_url)
    assert signature.installer_sha256(settings, preview=False, offline=True) == SIGNED_SHA256
    assert release.bundle_requests() == [
        f"/goharbor/harbor/releases/download/{VERSION}/harbor-offline-installer-{VERSION}.tgz.sigstore.json"
    ]
    assert release.requests[-1].startswith("/assets/"), "the redirect was followed"


def test_up_refuses_the_bundle_for_harbors_real_identity(release):
    """No stand-in identity: a bundle that Harbor's release workflow did not sign is refused."""
    settings = stack_settings(harbor_release_base_url=release.base_url)
    with pytest.raises(SettingsError) as error:
        signature.installer_sha256(settings, preview=False, offline=True)
    key, message = refusal(error)
    assert key == "harborVersion" and signature.signing_identity(VERSION) in message


def test_a_pin_that_agrees_is_accepted(release, signer_as_harbor):
    settings = stack_settings(harbor_release_base_url=release.base_url, harbor_installer_sha256=SIGNED_SHA256)
    assert signature.installer_sha256(settings, preview=False, offline=True) == SIGNED_SHA256
    assert release.bundle_requests(), "up checks a pin against the signature"


def test_a_pin_that_disagrees_names_the_key_both_digests_and_the_fix(release, signer_as_harbor):
    settings = stack_settings(harbor_release_base_url=release.base_url, harbor_installer_sha256=OTHER_SHA256)
    with pytest.raises(SettingsError) as error:
        signature.installer_sha256(settings, preview=False, offline=True)
    key, message = refusal(error)
    assert key == "harborInstallerSha256"
    assert OTHER_SHA256 in message and SIGNED_SHA256 in message and release.base_url in message
    assert "remove harborInstallerSha256" in message and f"set it to {SIGNED_SHA256}" in message
    assert str(error.value).startswith("invalid configuration (1 problem(s)); nothing was created")


def test_a_preview_with_a_pin_fetches_nothing(release, signer_as_harbor):
    settings = stack_settings(harbor_release_base_url=release.base_url, harbor_installer_sha256=OTHER_SHA256)
    assert signature.installer_sha256(settings, preview=True, offline=True) == OTHER_SHA256
    assert release.requests == []


def test_a_preview_without_a_pin_verifies_like_up(release, signer_as_harbor):
    settings = stack_settings(harbor_release_base_url=release.base_url)
    assert signature.installer_sha256(settings, preview=True, offline=True) == SIGNED_SHA256
    assert len(release.bundle_requests()) == 1


def test_the_manual_path_fetches_nothing_and_uses_the_pin(release):
    settings = stack_settings(
        harbor_release_base_url=release.base_url, harbor_installer_sha256=OTHER_SHA256, verify_installer_signature=False
    )
    assert signature.installer_sha256(settings, preview=False, offline=True) == OTHER_SHA256
    assert release.requests == []


def test_a_release_without_a_bundle_is_named(release, signer_as_harbor):
    settings = stack_settings(harbor_release_base_url=release.base_url, harbor_version="v2.15.9")
    with pytest.raises(SettingsError) as error:
        signature.installer_sha256(settings, preview=False, offline=True)
    key, message = refusal(error)
    assert key == "harborVersion" and "HTTP 404" in message and "v2.15.9" in message


def test_an_unreachable_release_names_the_base_url_and_the_manual_path(monkeypatch, bundle):
    monkeypatch.setattr(signature.time, "sleep", lambda seconds: None)
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]
    settings = stack_settings(harbor_release_base_url=f"http://127.0.0.1:{port}/releases")
    with pytest.raises(SettingsError) as error:
        signature.installer_sha256(settings, preview=False, offline=True)
    key, message = refusal(error)
    assert key == "harborReleaseBaseUrl" and f"127.0.0.1:{port}" in message and "3 attempts" in message
    assert "verifyInstallerSignature: false" in message


def test_a_trust_root_that_cannot_be_refreshed_is_named_not_blamed_on_the_bundle(monkeypatch, bundle):
    """Online, sigstore-python refreshes Sigstore's trust root through TUF first and raises TUFError
    when it cannot (sigstore/_internal/tuf.py TrustUpdater.__init__); that is raised here in its place."""
    from sigstore.errors import TUFError
    from sigstore.verify import Verifier

    calls = []

    def unreachable(cls, *, offline=False):
        calls.append(offline)
        raise TUFError("Failed to refresh TUF metadata") from OSError("Name or service not known")

    monkeypatch.setattr(Verifier, "production", classmethod(unreachable))
    monkeypatch.setattr(signature.time, "sleep", lambda seconds: None)
    with pytest.raises(SettingsError) as error:
        signature.signed_sha256(bundle, SIGNER, version=VERSION)
    key, message = refusal(error)
    assert key == "verifyInstallerSignature" and signature.SIGSTORE_TUF_URL in message
    assert "Name or service not known" in message and "cosign verify-blob" in message
    assert calls == [False] * signature.FETCH_ATTEMPTS, "online, retried"


def test_a_response_too_large_for_a_bundle_is_refused(bundle):
    path = f"/r/{VERSION}/harbor-offline-installer-{VERSION}.tgz.sigstore.json"
    server = ReleaseServer({path: b" " * (signature.MAX_BUNDLE_BYTES + 1)})
    server.thread.start()
    try:
        with pytest.raises(SettingsError, match="not a signature bundle"):
            signature.fetch_bundle(f"http://127.0.0.1:{server.httpd.server_address[1]}{path}", VERSION)
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


# --- the program under mocks: before any resource, and where the digest goes ---


def test_a_disagreeing_pin_stops_the_program_before_any_resource():
    """The harness stands in for fetch-and-verify with FAKE_SIGNED_INSTALLER_SHA256; the comparison is the program's."""
    recorder: dict = {}
    with pytest.raises(Exception, match="harborInstallerSha256") as error:
        run_program({**dev_config(), "harbor-cache:harborInstallerSha256": OTHER_SHA256}, recorder=recorder)
    assert FAKE_SIGNED_INSTALLER_SHA256 in str(error.value)
    assert recorder["registrations"] == []


@pytest.mark.parametrize(
    "preview, pin, fetches",
    [(False, "", 1), (False, FAKE_SIGNED_INSTALLER_SHA256, 1), (True, FAKE_SIGNED_INSTALLER_SHA256, 0), (True, "", 1)],
)
def test_when_the_program_fetches_the_bundle(preview, pin, fetches):
    config = {**dev_config(), **({"harbor-cache:harborInstallerSha256": pin} if pin else {})}
    run = run_program(config, preview=preview)
    assert run.bundle_fetches == [(VERSION, "https://github.com/goharbor/harbor/releases/download")] * fetches


def test_the_signed_sha256_reaches_the_installer_command_and_nothing_secret():
    run = run_program(dev_config())
    installer = run.named("harbor-install-installer")
    assert f"HARBOR_SHA256={FAKE_SIGNED_INSTALLER_SHA256} " in installer.inputs["create"]
    assert (
        f"HARBOR_INSTALLER_URL={signature.installer_url('https://github.com/goharbor/harbor/releases/download', VERSION)} "
        in (installer.inputs["create"])
    )
    # Not a secret: the digest is public and travels in the command, which the engine stores plain.
    assert "create" not in installer.secret_keys()
    for registration in run.registrations:
        for key in registration.secret_keys():
            assert FAKE_SIGNED_INSTALLER_SHA256 not in json.dumps(registration.inputs.get(key), default=str), (
                registration.name,
                key,
            )


@pytest.mark.parametrize("digest", ["", "0" * 63, "G" * 64, f"sha256:{'0' * 64}"])
def test_the_install_takes_nothing_but_a_sha256(digest):
    """HarborInstall refuses anything else before it registers itself (an empty pin must never reach the VM)."""
    args = HarborInstallArgs(
        settings=stack_settings(),
        installer_sha256=digest,
        host="192.0.2.10",
        host_public_key="",
        private_key="",
        instance_id="i-0",
        data_volume_id="vol-0",
        zone_id="Z0",
        depends_on=[],
    )
    with pytest.raises(ValueError, match="not a sha256 hex digest"):
        HarborInstall("harbor-install", args)
