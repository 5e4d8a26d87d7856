"""Harbor's offline installer, verified from its Sigstore signature: the sha256 the VM accepts.

How Harbor signs (goharbor/harbor v2.15.0..v2.15.2, `.github/workflows/publish_release.yml`): the
release job installs cosign with `sigstore/cosign-installer@v4.0.0` (cosign v3.0.2, its action.yml
default) and runs `cosign sign-blob --yes --bundle=harbor-offline-installer-<tag>.tgz.sigstore.json`
on the installer, keyless, with the job's GitHub OIDC token; the bundle is a release asset next to
the installer. cosign 3 writes a Sigstore protobuf bundle by default
(`cmd/cosign/cli/options/signblob.go`: `--new-bundle-format` defaults to true) whose
`messageSignature` holds the installer's sha256 (`messageDigest`) and the signature over it. The
Fulcio certificate names the workflow as its identity,
`https://github.com/goharbor/harbor/.github/workflows/publish_release.yml@refs/tags/<tag>`, issued
through `https://token.actions.githubusercontent.com` (Harbor's `docs/signature-verification.md`).

So the deploying machine needs the bundle (kilobytes), not the 650 MB installer: sigstore-python's
`Verifier.verify_artifact` takes the digest as a prehashed input (`sigstore.hashes.Hashed`) and checks
the certificate chain against Sigstore's trust root, the transparency-log entry (which records that
same digest), the identity and issuer, and the signature over the digest (sigstore 4.5.1
`sigstore/verify/verifier.py`). The digest it accepted goes to the VM (files/install-harbor.sh),
which refuses any other file.

When the bundle is fetched (the choice, docs/operate.md "Harbor's installer"):
- `pulumi up`: always, before any resource is registered (__main__.py).
- `pulumi preview` with `harborInstallerSha256` set: never; the pin stands in (a preview installs
  nothing) and the next `up` checks it against the signature. So a CI preview of a pinned stack does
  not depend on GitHub or Sigstore being reachable.
- `pulumi preview` without a pin: fetched and verified, because the digest is part of the installer
  step's command: an unknown value would show that step as changing in every preview.
- `verifyInstallerSignature: false`: never (the manual path: cosign by hand, the pin required).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from components.settings.config_reader import Problem, SettingsError
from components.settings.settings import Settings

SIGNING_ISSUER = "https://token.actions.githubusercontent.com"
# Where sigstore-python refreshes the public instance's trust root (sigstore/_internal/tuf.py DEFAULT_TUF_URL).
SIGSTORE_TUF_URL = "https://tuf-repo-cdn.sigstore.dev"
# A bundle is a few kilobytes (one certificate, one log entry, one signature); anything far larger
# is not one.
MAX_BUNDLE_BYTES = 1024 * 1024
FETCH_ATTEMPTS = 3
FETCH_TIMEOUT_SECONDS = 30
# The fields of the legacy cosign bundle (cosign < 3 without --new-bundle-format), which sigstore-python
# cannot read.
LEGACY_COSIGN_BUNDLE_KEYS = frozenset({"base64Signature", "cert", "rekorBundle"})


def installer_name(version: str) -> str:
    return f"harbor-offline-installer-{version}.tgz"


def installer_url(base_url: str, version: str) -> str:
    """Where the VM downloads the installer (files/install-harbor.sh, HARBOR_INSTALLER_URL)."""
    return f"{base_url.rstrip('/')}/{version}/{installer_name(version)}"


def bundle_url(base_url: str, version: str) -> str:
    return f"{installer_url(base_url, version)}.sigstore.json"


def signing_identity(version: str) -> str:
    """The certificate identity (SAN) of Harbor's release workflow run for the tag `version`. Exact,
    where Harbor's docs match any `refs/tags/v.*`: a bundle another release's run signed is refused."""
    return f"https://github.com/goharbor/harbor/.github/workflows/publish_release.yml@refs/tags/{version}"


def manual_path(version: str) -> str:
    """What to do where the program cannot verify: Harbor's documented cosign check, then the pin."""
    if not version:
        return "verify the installer by hand with cosign, set harborInstallerSha256 and verifyInstallerSignature: false"
    return (
        f"verify by hand as Harbor documents it (docs/signature-verification.md): download {installer_name(version)} "
        f"and {installer_name(version)}.sigstore.json, run `cosign verify-blob --bundle {installer_name(version)}.sigstore.json "
        f"--certificate-oidc-issuer {SIGNING_ISSUER} --certificate-identity {signing_identity(version)} "
        f"{installer_name(version)}`, then set harborInstallerSha256 to `sha256sum {installer_name(version)}` "
        "and verifyInstallerSignature: false"
    )


def _refused(key: str, message: str) -> SettingsError:
    return SettingsError([Problem(key, message)])


def fetch_bundle(url: str, version: str) -> bytes:
    """The bundle's bytes (GitHub answers release downloads with a redirect, which urllib follows).
    Retries connection failures and 5xx answers; a 4xx is final."""
    if not url.startswith(("https://", "http://")):
        raise _refused("harborReleaseBaseUrl", f"{url!r} is not an http(s) URL")
    request = urllib.request.Request(url, headers={"User-Agent": "harbor-cache"})  # noqa: S310 - scheme checked above
    problem = ""
    for attempt in range(FETCH_ATTEMPTS):
        if attempt:
            time.sleep(attempt)
        try:
            with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:  # noqa: S310
                body = response.read(MAX_BUNDLE_BYTES + 1)
        except urllib.error.HTTPError as error:
            if error.code < 500:
                raise _refused(
                    "harborVersion",
                    f"no signature bundle at {url} (HTTP {error.code}): Harbor signs its installers since v2.15.0; "
                    "check harborVersion (a release tag such as v2.15.2) and harborReleaseBaseUrl",
                ) from None
            problem = f"HTTP {error.code}"
            continue
        except (urllib.error.URLError, OSError) as error:
            problem = str(getattr(error, "reason", error))
            continue
        if len(body) > MAX_BUNDLE_BYTES:
            raise _refused("harborVersion", f"{url} is larger than {MAX_BUNDLE_BYTES} bytes: not a signature bundle")
        return body
    raise _refused(
        "harborReleaseBaseUrl",
        f"could not fetch {url} ({problem}, {FETCH_ATTEMPTS} attempts): the machine that runs pulumi must reach it "
        "(and Sigstore's trust root, tuf-repo-cdn.sigstore.dev); a preview needs neither once harborInstallerSha256 "
        f"is set; where it cannot be reached at all, {manual_path(version)}",
    )


@dataclass(frozen=True)
class SignedInstaller:
    sha256: str
    url: str


def _message_digest(document: object) -> bytes | None:
    """The SHA2_256 digest a bundle's messageSignature names (protobuf-specs' JSON form of
    sigstore_bundle.proto: messageSignature.messageDigest {algorithm, digest (base64)}), or None."""
    if not isinstance(document, dict):
        return None
    message = document.get("messageSignature")
    digest = message.get("messageDigest") if isinstance(message, dict) else None
    if not isinstance(digest, dict) or digest.get("algorithm") != "SHA2_256":
        return None
    try:
        raw = base64.b64decode(str(digest.get("digest", "")), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def production_verifier(offline: bool, version: str = ""):  # -> sigstore.verify.Verifier
    """sigstore-python's verifier for Sigstore's public instance. Online, it refreshes the trust root
    through TUF first (sigstore/_internal/tuf.py TrustUpdater: TUFError when that fails), retried
    like the bundle fetch."""
    from sigstore.errors import TUFError
    from sigstore.verify import Verifier

    problem = ""
    for attempt in range(FETCH_ATTEMPTS):
        if attempt:
            time.sleep(attempt)
        try:
            return Verifier.production(offline=offline)
        except TUFError as error:
            problem = f"{error}: {error.__cause__}" if error.__cause__ else str(error)
    manual = manual_path(version)
    raise _refused(
        "verifyInstallerSignature",
        f"could not refresh Sigstore's trust root from {SIGSTORE_TUF_URL} ({problem}, {FETCH_ATTEMPTS} attempts): "
        f"the machine that runs pulumi must reach it; a preview needs it only without harborInstallerSha256; "
        f"where it cannot be reached at all, {manual}",
    )


def signed_sha256(
    bundle_json: bytes,
    identity: str,
    *,
    issuer: str = SIGNING_ISSUER,
    pin: str = "",
    url: str = "",
    version: str = "",
    offline: bool = False,
) -> str:
    """The sha256 the bundle signs, once sigstore-python has verified it for `identity` and `issuer`;
    SettingsError otherwise. A bundle that names no digest is checked against `pin`.

    `offline`: Sigstore's trust root as embedded in sigstore-python (tests); otherwise refreshed
    through TUF from tuf-repo-cdn.sigstore.dev, so keys Sigstore adds or retires after this
    sigstore-python release are known.
    """
    # Imported here: only `up` (and an unpinned preview) need it, and it is not light.
    from sigstore.errors import Error as SigstoreError
    from sigstore.hashes import Hashed
    from sigstore.models import Bundle
    from sigstore.verify.policy import Identity
    from sigstore_models.common.v1 import HashAlgorithm

    where = url or "the signature bundle"
    manual = manual_path(version)
    try:
        document = json.loads(bundle_json)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _refused("harborVersion", f"{where} is not JSON ({error}); refusing the installer") from None
    if isinstance(document, dict) and set(document) >= LEGACY_COSIGN_BUNDLE_KEYS:
        raise _refused(
            "harborVersion",
            f"{where} is a legacy cosign bundle (base64Signature, cert, rekorBundle), which sigstore-python "
            f"cannot read; {manual}",
        )
    try:
        bundle = Bundle.from_json(bundle_json)
    except (SigstoreError, ValueError) as error:  # ValueError: e.g. a certificate that does not parse
        raise _refused(
            "harborVersion", f"{where} is not a Sigstore bundle sigstore-python can read ({error}); {manual}"
        ) from None
    if not isinstance(document.get("messageSignature"), dict):
        raise _refused(
            "harborVersion",
            f"{where} holds no signature over a file's digest (a DSSE attestation?), so it names no installer sha256; {manual}",
        )
    digest = _message_digest(document)
    if digest is None:
        if not pin:
            raise _refused(
                "harborInstallerSha256",
                f"{where} names no sha256 of the installer (messageSignature.messageDigest): set harborInstallerSha256 "
                "to the sha256 of the installer and it is checked against the signature",
            )
        digest = bytes.fromhex(pin)
    verifier = production_verifier(offline, version)
    try:
        verifier.verify_artifact(
            Hashed(algorithm=HashAlgorithm.SHA2_256, digest=digest),
            bundle,
            Identity(identity=identity, issuer=issuer),
        )
    except (SigstoreError, ValueError) as error:
        raise _refused(
            "harborVersion",
            f"{where} does not verify as signed by {identity} through {issuer}: {error}; refusing the installer",
        ) from None
    return digest.hex()


def release_signed_sha256(version: str, base_url: str, pin: str = "", offline: bool = False) -> SignedInstaller:
    """Fetches the release's bundle and returns the installer sha256 it signs, verified. The network
    step: the program's test harness stands in for it (tests/standins/pulumi_harness.py)."""
    url = bundle_url(base_url, version)
    bundle = fetch_bundle(url, version)
    sha256 = signed_sha256(bundle, signing_identity(version), pin=pin, url=url, version=version, offline=offline)
    return SignedInstaller(sha256, url)


def installer_sha256(settings: Settings, preview: bool, offline: bool = False) -> str:
    """The sha256 the VM accepts for `settings.harbor_version`: the signed one, which an optional pin
    (harborInstallerSha256) must equal. Fetches only as the module docstring says."""
    pin = settings.harbor_installer_sha256
    if not settings.verify_installer_signature:
        return pin  # the settings require the pin then
    if preview and pin:
        return pin
    signed = release_signed_sha256(settings.harbor_version, settings.harbor_release_base_url, pin, offline)
    if pin and pin != signed.sha256:
        raise _refused(
            "harborInstallerSha256",
            f"{pin!r} differs from the sha256 Harbor signed for {settings.harbor_version} ({signed.sha256}, "
            f"verified from {signed.url}); remove harborInstallerSha256 to use the signed digest, or set it to "
            f"{signed.sha256} (and change it together with harborVersion)",
        )
    return signed.sha256
