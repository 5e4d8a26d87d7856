#!/usr/bin/env python3
"""Pulls images through the cache as a node would: anonymously, over the public URL, with the
registry token flow, from outside Harbor's containers. Used by the deploy's smoke step (one small
image per proxy project) and by harbor-probe.timer (the same smoke images and the prewarm list).

usage: harbor-probe.py [--expect-address IP|imds] [--all-blobs] [--verify-stored] [--private PROJECT]...
                       [--metric NAME] URL PROJECT/REPOSITORY:TAG ...

Per image it prints one JSON line {image, ok, seconds, manifest, blobs, bytes, stored, error}. A
failure names the broken link: DNS, connect, TLS, auth, rate limited, upstream, cache. Exit 1 when
any image failed. --metric puts the number of failures into CloudWatch (harbor-metrics.py put),
and with --verify-stored also ProbeFailed per project (dimension Project: 1 failed, 0 passed).

--verify-stored proves that Harbor *kept* what it served, not only streamed it (Harbor's proxy
controller serves the upstream's stream and writes it back in a goroutine whose error is only
logged: src/controller/proxy/controller.go ProxyBlob / putBlobToLocal). After the pull (every blob
of the platform image: Harbor pushes a manifest into its store only once all its blobs are there,
ManifestCache.CacheContent in src/controller/proxy/manifestcache.go, checking every 20 s):
  1. Harbor's API lists the artifact in the proxy project: GET /api/v2.0/projects/<project>/
     repositories/<repository, URL-encoded twice>/artifacts/<platform manifest digest> answers 200
     with a push_time (polled up to PROBE_STORE_WAIT seconds, default 300, with progress on stderr);
  2. the manifest by digest is served again: for a digest that is in its store Harbor answers from
     the store without asking the upstream (UseLocalManifest: "Pull by digest when artifact exist
     in local");
  3. one blob is asked for with `Range: bytes=0-0` and must answer 206 with that one byte: only the
     store serves ranges (distribution's blobServer.ServeBlob -> http.ServeContent, or a redirect to
     the bucket, which serves ranges too), while a blob Harbor fetches upstream is copied whole with
     200 (src/server/middleware/repoproxy/proxy.go handleBlob: io.CopyN). So a 206 proves the blob
     came from the store and no upstream request was made for it.
--private PROJECT: that project is not public: its pulls and API calls use the credentials in
PROBE_ROBOT_FILE (or $CREDENTIALS_DIRECTORY/probe, systemd's LoadCredential=), one line
`name:secret` (the pull robot), never the command line. Public projects stay anonymous, as nodes pull.

Flow (distribution's token authentication spec, which Harbor implements): GET /v2/ -> 401 with
`WWW-Authenticate: Bearer realm=...,service=...`; GET realm?service=&scope=repository:<repo>:pull
-> {"token"}; GET the manifest (an index resolves to linux/amd64); GET one blob (--all-blobs:
every blob of that platform, which is what caches an image in Harbor) and check its digest.

PROBE_CONNECT_HOST sends connections for the URL's host to this address instead (the VM asks its
own Traefik, since the security group admits 443 only from allowedCidrs), after the DNS check;
PROBE_CA_FILE trusts this CA bundle instead of the system's. PROBE_CONNECT_PLAIN_PORT (an HA node,
which runs no Traefik): those connections go to PROBE_CONNECT_HOST on this port in plain HTTP, to
Harbor's nginx, as the load balancer forwards them once it has ended TLS (X-Forwarded-Proto: https).
"""

# ruff: noqa: S310 - URLs come from the command line of the deploy step or the systemd unit, https only.
from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlencode, urljoin, urlsplit

TIMEOUT = float(os.environ.get("PROBE_TIMEOUT", "120"))
CONNECT_HOST = os.environ.get("PROBE_CONNECT_HOST", "")
CONNECT_PLAIN_PORT = int(os.environ.get("PROBE_CONNECT_PLAIN_PORT") or 0)
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
# Harbor stores a proxied manifest at least 20 s after serving it, up to 200 s + a blob fetch when
# some blobs were not pulled (manifestcache.go: sleepIntervalSec 20, maxManifestWait 10).
STORE_WAIT = float(os.environ.get("PROBE_STORE_WAIT", "300"))
STORE_POLL = float(os.environ.get("PROBE_STORE_POLL", "5"))
PROGRESS_EVERY = float(os.environ.get("PROBE_PROGRESS_EVERY", "15"))
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")


class ProbeError(Exception):
    """A failure, its message naming the broken link."""


class Client:
    def __init__(self, base_url: str) -> None:
        self.base = urlsplit(base_url)
        cafile = os.environ.get("PROBE_CA_FILE") or None
        self.context = ssl.create_default_context(cafile=cafile)

    def request(self, url: str, headers: dict[str, str], redirects: int = 5) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        redirected = bool(CONNECT_HOST) and parts.hostname == self.base.hostname
        address = CONNECT_HOST if redirected else parts.hostname
        where = f"{parts.hostname}:{port}"
        # The load balancer's part: TLS ends before Harbor's nginx, which hears plain HTTP.
        plain = redirected and CONNECT_PLAIN_PORT > 0
        if plain:
            port, where = CONNECT_PLAIN_PORT, f"{CONNECT_HOST}:{CONNECT_PLAIN_PORT} (Harbor's nginx, as {parts.hostname})"
        try:
            sock = socket.create_connection((address, port), timeout=TIMEOUT)
        except socket.gaierror as error:
            raise ProbeError(f"DNS: {parts.hostname} does not resolve ({error.strerror})") from None
        except OSError as error:
            raise ProbeError(
                f"connect: cannot reach {where} ({error.strerror or error}): Traefik down or the port blocked"
            ) from None
        if parts.scheme == "https" and not plain:
            try:
                sock = self.context.wrap_socket(sock, server_hostname=parts.hostname)
            except ssl.SSLCertVerificationError as error:
                raise ProbeError(
                    f"TLS: the certificate of {where} does not verify ({error.verify_message}); "
                    "is Traefik still serving its default certificate (ACME not done)?"
                ) from None
            except (ssl.SSLError, OSError) as error:
                raise ProbeError(f"TLS: handshake with {where} failed ({error})") from None
        connection = http.client.HTTPConnection(parts.hostname, port, timeout=TIMEOUT)
        connection.sock = sock
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            forwarded = {"Host": parts.netloc, "X-Forwarded-Proto": parts.scheme} if plain else {}
            connection.request("GET", path, headers={"User-Agent": "harbor-cache-probe", **forwarded, **headers})
            response = connection.getresponse()
            body = response.read()
        except OSError as error:
            raise ProbeError(f"connect: {where} dropped the request ({error})") from None
        finally:
            connection.close()
        answer_headers = {key.lower(): value for key, value in response.getheaders()}
        if response.status in (301, 302, 303, 307, 308) and "location" in answer_headers and redirects > 0:
            # Blobs may redirect to storage elsewhere (a presigned bucket URL); the token does not
            # travel there, a Range header does.
            target = urljoin(url, answer_headers["location"])
            same = urlsplit(target).netloc == parts.netloc
            kept = headers if same else {key: value for key, value in headers.items() if key.lower() != "authorization"}
            return self.request(target, kept, redirects - 1)
        return response.status, answer_headers, body


def error_message(body: bytes) -> str:
    """The registry's own message ({"errors": [{"code", "message"}]}), else the start of the body."""
    try:
        errors = json.loads(body).get("errors") or []
        return "; ".join(f"{e.get('code', '')} {e.get('message', '')}".strip() for e in errors) or body[:200].decode()
    except (ValueError, AttributeError):
        return body[:200].decode(errors="replace").strip()


def challenge(client: Client, base_url: str) -> dict[str, str]:
    status, headers, body = client.request(f"{base_url}/v2/", {})
    header = headers.get("www-authenticate", "")
    if status != 401 or not header.lower().startswith("bearer "):
        raise ProbeError(f"auth: {base_url}/v2/ answered {status} without a Bearer challenge ({error_message(body)})")
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


def token(client: Client, params: dict[str, str], repository: str, login: dict[str, str]) -> str:
    """A pull token for `repository`: anonymous, or with `login` (Basic auth of the pull robot)."""
    scope = f"repository:{repository}:pull"
    query = urlencode({"service": params.get("service", ""), "scope": scope})
    status, _headers, body = client.request(f"{params['realm']}?{query}", login)
    if status != 200:
        who = "the pull robot's" if login else "an anonymous"
        raise ProbeError(f"auth: the token service {params['realm']} answered {status} for {who} {scope}")
    answer = json.loads(body)
    return answer.get("token") or answer.get("access_token") or ""


def read_login() -> dict[str, str]:
    """Basic auth of the pull robot, from a file only (never argv or the environment's values)."""
    path = os.environ.get("PROBE_ROBOT_FILE") or (
        str(Path(os.environ["CREDENTIALS_DIRECTORY"]) / "probe") if os.environ.get("CREDENTIALS_DIRECTORY") else ""
    )
    if not path:
        raise ProbeError("auth: a private project needs the pull robot: PROBE_ROBOT_FILE is not set")
    try:
        line = Path(path).read_text().strip()
    except OSError as error:
        raise ProbeError(f"auth: cannot read the pull robot's credentials {path} ({error.strerror})") from None
    if ":" not in line:
        raise ProbeError(f"auth: {path} does not hold 'name:secret'")
    return {"Authorization": "Basic " + base64.b64encode(line.encode()).decode()}


def check_status(status: int, body: bytes, what: str, project: str, private: bool = False) -> None:
    if status == 200:
        return
    message = error_message(body)
    if status in (401, 403) and private:
        raise ProbeError(f"auth: the pull robot may not pull {what} ({status} {message}); is it allowed on {project}?")
    if status in (401, 403):
        raise ProbeError(f"auth: anonymous pull of {what} refused ({status} {message}); is project {project} public?")
    if status == 429:
        raise ProbeError(
            f"rate limited: {what} answered 429 ({message}): the upstream's pull limit; add upstreamCredentials or wait"
        )
    if status == 404:
        raise ProbeError(
            f"upstream: {what} not found (404 {message}): the upstream is unreachable from the VM "
            "(Harbor then serves only what it cached) or the image does not exist there"
        )
    raise ProbeError(f"upstream: Harbor answered {status} fetching {what} ({message}): upstream down or egress blocked?")


def pull(client: Client, base_url: str, image: str, all_blobs: bool, verify_stored: bool, private: set[str]) -> dict:
    repository, _, reference = image.rpartition("@") if "@" in image else image.rpartition(":")
    project = repository.split("/", 1)[0]
    is_private = project in private
    login = read_login() if is_private else {}
    bearer = {"Authorization": f"Bearer {token(client, challenge(client, base_url), repository, login)}"}
    url = f"{base_url}/v2/{repository}/manifests/{reference}"
    status, headers, body = client.request(url, {**bearer, "Accept": MANIFEST_TYPES})
    check_status(status, body, image, project, is_private)
    manifest = json.loads(body)
    digest = headers.get("docker-content-digest") or "sha256:" + hashlib.sha256(body).hexdigest()
    platform_digest = digest
    if headers.get("content-type", manifest.get("mediaType", "")).split(";")[0] in INDEX_TYPES or "manifests" in manifest:
        platforms = [m for m in manifest.get("manifests", []) if m.get("platform", {}).get("os") == "linux"]
        chosen = next((m for m in platforms if m["platform"].get("architecture") == "amd64"), platforms[0] if platforms else None)
        if chosen is None:
            raise ProbeError(f"cache: {image} is an index without a linux image")
        platform_digest = chosen["digest"]
        status, headers, body = client.request(
            f"{base_url}/v2/{repository}/manifests/{platform_digest}", {**bearer, "Accept": MANIFEST_TYPES}
        )
        check_status(status, body, f"{image} (linux/{chosen['platform'].get('architecture')})", project, is_private)
        manifest = json.loads(body)
    blobs = [manifest["config"], *manifest.get("layers", [])] if "config" in manifest else manifest.get("layers", [])
    if not (all_blobs or verify_stored):
        blobs = sorted(blobs, key=lambda blob: blob.get("size", 0))[:1]
    fetched = 0
    for blob in blobs:
        status, _headers, data = client.request(f"{base_url}/v2/{repository}/blobs/{blob['digest']}", bearer)
        check_status(status, data, f"{image} blob {blob['digest'][:19]}", project, is_private)
        if "sha256:" + hashlib.sha256(data).hexdigest() != blob["digest"]:
            raise ProbeError(f"cache: blob {blob['digest']} of {image} arrived with another digest")
        fetched += len(data)
    result = {"manifest": digest, "blobs": len(blobs), "bytes": fetched}
    if verify_stored:
        smallest = min(blobs, key=lambda blob: blob.get("size", 0))
        result["stored"] = verify_kept(client, base_url, image, repository, platform_digest, smallest, bearer, login)
    return result


def artifact_path(repository: str, reference: str) -> str:
    """Harbor's artifact API path; the repository inside the project is URL-encoded twice when it
    holds a slash (swagger v2.15.2, parameter repositoryName: a/b -> a%2Fb -> a%252Fb)."""
    project, _, inside = repository.partition("/")
    return f"/api/v2.0/projects/{project}/repositories/{quote(quote(inside, safe=''), safe='')}/artifacts/{reference}"


def progress(message: str) -> None:
    print(f"harbor-probe: {message}", file=sys.stderr, flush=True)


def verify_kept(
    client: Client, base_url: str, image: str, repository: str, digest: str, blob: dict, bearer: dict, login: dict
) -> dict:
    """The three proofs of --verify-stored (module docstring); a failure names the project and what Harbor said."""
    project = repository.split("/", 1)[0]
    path = artifact_path(repository, digest)
    started = time.monotonic()
    announced = started - PROGRESS_EVERY  # the first miss is announced at once
    while True:
        status, _headers, body = client.request(f"{base_url}{path}", {**login, "Accept": "application/json"})
        waited = time.monotonic() - started
        if status == 200:
            artifact = json.loads(body)
            if artifact.get("push_time"):
                break
        elif status != 404:
            raise ProbeError(
                f"cache: project {project}: Harbor's API answered {status} for GET {path} ({error_message(body)})"
                + ("; the pull robot needs artifact read on the project" if status in (401, 403) and login else "")
            )
        if waited >= STORE_WAIT:
            raise ProbeError(
                f"cache: project {project}: Harbor served {image} but did not keep it: {waited:.0f} s after the pull "
                f"GET {path} answers {status} ({error_message(body)}). Harbor streams from the upstream when its "
                "registry cannot write (core's log: 'error while putting blob to local repo'); check the registry's "
                "storage (disk full, bucket permissions) and the project's quota"
            )
        if time.monotonic() - announced >= PROGRESS_EVERY:
            announced = time.monotonic()
            progress(f"waiting for Harbor to store {repository}@{digest[:19]}: {waited:.0f} s of at most {STORE_WAIT:.0f} s")
        time.sleep(STORE_POLL)
    status, headers, body = client.request(f"{base_url}/v2/{repository}/manifests/{digest}", {**bearer, "Accept": MANIFEST_TYPES})
    check_status(status, body, f"{repository}@{digest} (from the store)", project, bool(login))
    if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
        raise ProbeError(f"cache: project {project}: the stored manifest {digest} came back with another digest")
    status, headers, body = client.request(f"{base_url}/v2/{repository}/blobs/{blob['digest']}", {**bearer, "Range": "bytes=0-0"})
    if status == 200:
        raise ProbeError(
            f"cache: project {project}: blob {blob['digest'][:19]} of {image} was fetched from the upstream again "
            "(a Range request answered 200 with the whole blob; only Harbor's store answers ranges): Harbor does not hold it"
        )
    if status != 206:
        check_status(status, body, f"{image} blob {blob['digest'][:19]} (from the store)", project, bool(login))
    expected = f"bytes 0-0/{blob.get('size')}"
    if status != 206 or len(body) != 1 or headers.get("content-range") != expected:
        raise ProbeError(
            f"cache: project {project}: a Range request for blob {blob['digest'][:19]} answered {status} "
            f"{headers.get('content-range', 'without Content-Range')}, not 206 {expected}"
        )
    return {
        "artifact": digest,
        "push_time": artifact.get("push_time"),
        "pull_time": artifact.get("pull_time"),
        "waited": round(time.monotonic() - started, 1),
    }


def imds_public_address() -> str:
    """This VM's public IPv4 (its Elastic IP) from IMDSv2: the scheduled probe's unit renders
    before the address exists, so it asks the instance itself (--expect-address imds)."""
    import urllib.request

    imds = os.environ.get("IMDS_ENDPOINT", "http://169.254.169.254")
    try:
        put = urllib.request.Request(
            f"{imds}/latest/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}
        )
        with urllib.request.urlopen(put, timeout=5) as answer:
            token = answer.read().decode()
        get = urllib.request.Request(f"{imds}/latest/meta-data/public-ipv4", headers={"X-aws-ec2-metadata-token": token})
        with urllib.request.urlopen(get, timeout=5) as answer:
            return answer.read().decode().strip()
    except OSError as error:
        raise ProbeError(f"DNS: cannot read this VM's public address from IMDS ({error})") from None


def check_dns(base_url: str, expected: str) -> None:
    host = urlsplit(base_url).hostname
    if expected == "imds":
        expected = imds_public_address()
    try:
        addresses = sorted({info[4][0] for info in socket.getaddrinfo(host, 443, proto=socket.IPPROTO_TCP)})
    except socket.gaierror as error:
        raise ProbeError(f"DNS: {host} does not resolve ({error.strerror})") from None
    if expected and expected not in addresses:
        raise ProbeError(f"DNS: {host} resolves to {', '.join(addresses)}, not to this cache's address {expected}")


def main(argv: list[str]) -> int:
    args = list(argv)
    options: dict[str, str | bool] = {"expect": "", "metric": "", "all_blobs": False, "verify_stored": False}
    private: set[str] = set()
    while args and args[0].startswith("--"):
        flag = args.pop(0)
        if flag in ("--all-blobs", "--verify-stored"):
            options[flag[2:].replace("-", "_")] = True
        elif flag == "--private" and args:
            private.add(args.pop(0))
        elif flag in ("--expect-address", "--metric") and args:
            options["expect" if flag == "--expect-address" else "metric"] = args.pop(0)
        else:
            print(__doc__.split("\n\n")[1], file=sys.stderr)
            return 2
    if len(args) < 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    base_url, images = args[0].rstrip("/"), args[1:]
    client = Client(base_url)
    failures = 0
    failed_projects: dict[str, bool] = {}
    try:
        check_dns(base_url, str(options["expect"]))
        dns_error = ""
    except ProbeError as error:
        dns_error = str(error)
    for image in images:
        started = time.monotonic()
        result: dict = {"image": image}
        try:
            if dns_error:
                raise ProbeError(dns_error)
            result.update(pull(client, base_url, image, bool(options["all_blobs"]), bool(options["verify_stored"]), private))
            result["ok"] = True
        except ProbeError as error:
            result.update(ok=False, error=str(error))
            failures += 1
        project = image.split("/", 1)[0]
        failed_projects[project] = failed_projects.get(project, False) or not result["ok"]
        result["seconds"] = round(time.monotonic() - started, 2)
        print(json.dumps(result), flush=True)
        if not result["ok"]:
            print(f"{image}: {result['error']}", file=sys.stderr)
    if options["metric"]:
        # Beside this script on the VM; the deploy's smoke step runs it from stdin and names the installed one.
        reporter = os.environ.get("PROBE_METRICS_REPORTER") or str(Path(__file__).resolve().parent / "harbor-metrics.py")
        values = [str(options["metric"]), str(failures)]
        if options["verify_stored"]:
            # One series per proxy project: an alarm names the project whose pull or store failed.
            for project, failed in sorted(failed_projects.items()):
                values += [f"ProbeFailed@Project={project}", str(int(failed))]
        subprocess.run([sys.executable, str(reporter), "put", *values], check=False)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
