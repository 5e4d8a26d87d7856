#!/usr/bin/env python3
"""HA node: proves that this node's registry can still write to its storage (and read it back), the
path every blob Harbor caches takes: core -> registry -> s3 driver -> credential relay -> bucket.

usage: harbor-write-check.py CORE_ENV_FILE REGISTRY_ADDRESS

Why: Harbor's proxy controller serves a pull from the upstream whenever its registry cannot store
what it fetched (src/controller/proxy/controller.go ProxyBlob: the write-back error is only logged),
and a smoke image stored once is afterwards only *read*. So a node whose registry lost its write
access (the credential relay down and the role's credentials expired, a bucket policy, KMS) passes
every pull while caching nothing new. This check uploads a small fixed canary blob straight to the
node's own registry container, with the credential core itself uses, and reads it back.

What one run does (docker/distribution v2.8.3; goharbor/distribution's release/2.8, ea065fef, which
Harbor's v2.8.3-harbor.1 comes from, has the same blobupload.go and blobwriter.go, and
linkedblobstore.go differs only in imports and io.ReadSeekCloser):
  1. GET /v2/ with Basic auth: the registry authenticates core's htpasswd user (prepare's
     templates/registry/config.yml.jinja `auth: htpasswd`; the user and password are
     REGISTRY_CREDENTIAL_USERNAME/PASSWORD in core's env, templates/core/env.jinja). Read from
     CORE_ENV_FILE at every run (prepare draws a new password each time it runs), never from the
     command line or the environment, and never printed.
  2. POST /v2/<CANARY_REPOSITORY>/blobs/uploads/ -> 202 + Location. registry/handlers/blobupload.go
     StartBlobUpload -> linkedBlobStore.Create (registry/storage/linkedblobstore.go): PutContent of
     _uploads/<uuid>/startedat and driver.Writer(_uploads/<uuid>/data) (s3-aws: CreateMultipartUpload).
     There is no "already exists" shortcut on this path (only ?mount= skips it).
  3. PUT <Location>&digest=<canary digest> with the canary as the body -> 201 Created.
     PutBlobUploadComplete -> blobWriter.Commit (registry/storage/blobwriter.go): the data is
     written and committed (s3: UploadPart + CompleteMultipartUpload), moveBlob skips the move when
     the blob already exists (Stat of blobs/sha256/<..>/data), linkBlob *always* PutContent's
     repositories/<repo>/_layers/sha256/<hex>/link, and removeResources deletes the upload folder.
     So even with the canary long stored every run writes three objects and deletes the upload's,
     and what it leaves behind stays one blob and one link: storage does not grow.
  4. GET /v2/<CANARY_REPOSITORY>/blobs/<digest>: 200 and the canary's bytes (the registry reads
     its storage; with storage.redirect enabled a 307 to a URL the registry presigned with its
     credentials, followed without our Authorization).
Prints one JSON line {check, ok, seconds, step, error}; on failure a message on stderr that names
what failed (config, connect, auth, storage write, storage read) and exits 1.

CANARY_REPOSITORY is a name distribution accepts (reference grammar: `--` is a separator) and Harbor
never makes: a Harbor project name matches [a-z0-9]+(?:[._-][a-z0-9]+)* (src/pkg/project/manager.go),
so no project, and nothing Harbor lists, counts, replicates or garbage-collects, can ever hold it.
Harbor's GC works from its database only (src/jobservice/job/impl/gc/garbage_collection.go: the
candidates are blob rows without a project_blob row, blob/dao GetBlobsNotRefedByProjectBlob), so
it never deletes the canary; it only empties the registry's Redis blob cache (cleanCache), which the
registry refills from storage. An upload left behind by a failed run is removed by the registry's
upload purging (harbor.yml upload_purging: 168h) and an unfinished S3 multipart upload by the
bucket's lifecycle rule.
"""

# ruff: noqa: S310 - the registry's address comes from the systemd unit; redirects only to the URL it gave.
from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit

TIMEOUT = float(os.environ.get("WRITE_CHECK_TIMEOUT", "60"))
CANARY_REPOSITORY = "harbor-cache--node-check/write-canary"
# Fixed content: the same digest every run, so the bucket holds one canary whatever the number of runs.
CANARY = b"harbor-cache node write check: this node's registry wrote this blob to its storage\n"
CANARY_DIGEST = "sha256:" + hashlib.sha256(CANARY).hexdigest()
USAGE = "usage: harbor-write-check.py CORE_ENV_FILE REGISTRY_ADDRESS"


class CheckError(Exception):
    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step


def read_env_file(path: str) -> dict[str, str]:
    """KEY=VALUE lines as prepare writes them (unquoted) and compose reads them (dotenv: spaces
    around the value trimmed, a quoted value up to its closing quote)."""
    values = {}
    for line in Path(path).read_text().splitlines():
        key, separator, value = line.partition("=")
        if not separator or key.strip().startswith("#"):
            continue
        value = value.strip()
        if value[:1] in ("'", '"') and value[0] in value[1:]:
            value = value[1 : value.index(value[0], 1)]
        values[key.strip()] = value
    return values


def registry_login(env_file: str) -> tuple[str, int, dict[str, str]]:
    """(scheme, port, Basic auth header) of core's credential for its registry."""
    try:
        values = read_env_file(env_file)
    except OSError as error:
        raise CheckError("config", f"cannot read core's env file {env_file} ({error.strerror})") from None
    missing = [
        key for key in ("REGISTRY_URL", "REGISTRY_CREDENTIAL_USERNAME", "REGISTRY_CREDENTIAL_PASSWORD") if not values.get(key)
    ]
    if missing:
        raise CheckError("config", f"{env_file} lacks {', '.join(missing)} (is it the core env prepare writes?)")
    url = urlsplit(values["REGISTRY_URL"])
    if url.scheme != "http":
        # internal_tls (https://registry:5443) is never on in harbor-cache's harbor.yml.
        raise CheckError("config", f"REGISTRY_URL {values['REGISTRY_URL']} is not plain http; internal TLS is not supported here")
    user = f"{values['REGISTRY_CREDENTIAL_USERNAME']}:{values['REGISTRY_CREDENTIAL_PASSWORD']}"
    return url.scheme, url.port or 80, {"Authorization": "Basic " + base64.b64encode(user.encode()).decode()}


def detail(value: object) -> str:
    """An error's detail: the storage driver's error (e.g. {"DriverName", "Enclosed": {"Op", "Path", "Err"}})."""
    if not value:
        return ""
    return f" ({value if isinstance(value, str) else json.dumps(value, sort_keys=True)})"


def error_message(body: bytes) -> str:
    """The registry's {"errors": [{code, message, detail}]}, else the start of the body."""
    try:
        errors = json.loads(body).get("errors") or []
        parts = [" ".join(str(e.get(k, "")) for k in ("code", "message")).strip() + detail(e.get("detail")) for e in errors]
        return "; ".join(parts)[:400] or body[:200].decode(errors="replace")
    except (ValueError, AttributeError):
        return body[:200].decode(errors="replace").strip()


class Registry:
    def __init__(self, address: str, port: int, login: dict[str, str]) -> None:
        self.base = f"http://{address}:{port}"
        self.login = login

    def request(
        self, step: str, method: str, url: str, body: bytes | None = None, headers: dict | None = None, auth: bool = True
    ):
        parts = urlsplit(urljoin(self.base, url))
        connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=TIMEOUT)
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(parts.hostname, parts.port or 443, timeout=TIMEOUT)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request(method, path, body=body, headers={**(self.login if auth else {}), **(headers or {})})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        except OSError as error:
            where = f"{parts.hostname}:{parts.port or ''}"
            if step == "connect":
                raise CheckError(
                    step, f"cannot reach this node's registry at {where} ({error}): is the registry container up?"
                ) from None
            raise CheckError(step, f"{method} {parts.scheme}://{where}{parts.path} failed ({error})") from None
        finally:
            connection.close()


def check(env_file: str, address: str) -> None:
    _scheme, port, login = registry_login(env_file)
    registry = Registry(address, port, login)
    status, _headers, body = registry.request("connect", "GET", "/v2/")
    if status in (401, 403):
        raise CheckError(
            "auth",
            f"this node's registry refused core's credential ({status} {error_message(body)}): its htpasswd file and "
            "core's env differ (prepare ran without restarting the registry?); core cannot store anything either",
        )
    if status != 200:
        raise CheckError("connect", f"GET /v2/ on this node's registry answered {status} ({error_message(body)})")
    status, headers, body = registry.request("storage write", "POST", f"/v2/{CANARY_REPOSITORY}/blobs/uploads/")
    if status != 202 or "location" not in headers:
        raise CheckError(
            "storage write",
            f"this node's registry could not start an upload (POST answered {status} {error_message(body)}): it cannot "
            "write to its storage (credential relay, role credentials, bucket policy, KMS key); nothing new is cached here",
        )
    location = headers["location"]
    target = location + ("&" if "?" in location else "?") + urlencode({"digest": CANARY_DIGEST})
    status, headers, body = registry.request(
        "storage write", "PUT", target, CANARY, {"Content-Type": "application/octet-stream", "Content-Length": str(len(CANARY))}
    )
    if status != 201 or headers.get("docker-content-digest") != CANARY_DIGEST:
        raise CheckError(
            "storage write",
            f"this node's registry could not store the canary blob (PUT answered {status} {error_message(body)}): it cannot "
            "write to its storage (credential relay, role credentials, bucket policy, KMS key); nothing new is cached here",
        )
    url = f"/v2/{CANARY_REPOSITORY}/blobs/{CANARY_DIGEST}"
    status, headers, body = registry.request("storage read", "GET", url)
    if status in (301, 302, 303, 307, 308) and "location" in headers:
        # storage.redirect: a URL the registry presigned; our Basic auth does not travel there.
        status, headers, body = registry.request(
            "storage read", "GET", urljoin(registry.base + url, headers["location"]), auth=False
        )
    if status != 200 or body != CANARY:
        got = f"{len(body)} bytes of other content" if status == 200 else f"{status} {error_message(body)}"
        raise CheckError("storage read", f"this node's registry stored the canary blob but reading it back gave {got}")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(USAGE, file=sys.stderr)
        return 2
    started = time.monotonic()
    result: dict = {"check": "registry storage write", "repository": CANARY_REPOSITORY, "digest": CANARY_DIGEST}
    try:
        check(argv[0], argv[1])
        result.update(ok=True, step="done", error="")
    except CheckError as error:
        result.update(ok=False, step=error.step, error=str(error))
    result["seconds"] = round(time.monotonic() - started, 2)
    print(json.dumps(result), flush=True)
    if not result["ok"]:
        print(f"write check failed ({result['step']}): {result['error']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
