#!/usr/bin/env python3
"""Pulls images through the cache as a node would: anonymously, over the public URL, with the
registry token flow, from outside Harbor's containers. Used by the deploy's smoke step (one small
image per proxy project) and by harbor-probe.timer (the same smoke images and the prewarm list).

usage: harbor-probe.py [--expect-address IP] [--all-blobs] [--metric NAME] URL PROJECT/REPOSITORY:TAG ...

Per image it prints one JSON line {image, ok, seconds, manifest, blobs, bytes, error}. A failure
names the broken link: DNS, connect, TLS, auth, rate limited, upstream, cache. Exit 1 when any
image failed. --metric puts the number of failures into CloudWatch (harbor-metrics.py put).

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
from urllib.parse import urlencode, urljoin, urlsplit

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
            # Blobs may redirect to storage elsewhere; the token does not travel there.
            target = urljoin(url, answer_headers["location"])
            same = urlsplit(target).netloc == parts.netloc
            return self.request(target, headers if same else {}, redirects - 1)
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


def token(client: Client, params: dict[str, str], repository: str) -> str:
    scope = f"repository:{repository}:pull"
    query = urlencode({"service": params.get("service", ""), "scope": scope})
    status, _headers, body = client.request(f"{params['realm']}?{query}", {})
    if status != 200:
        raise ProbeError(f"auth: the token service {params['realm']} answered {status} for an anonymous {scope}")
    answer = json.loads(body)
    return answer.get("token") or answer.get("access_token") or ""


def check_status(status: int, body: bytes, what: str, project: str) -> None:
    if status == 200:
        return
    message = error_message(body)
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


def pull(client: Client, base_url: str, image: str, all_blobs: bool) -> dict:
    repository, _, reference = image.rpartition("@") if "@" in image else image.rpartition(":")
    project = repository.split("/", 1)[0]
    bearer = {"Authorization": f"Bearer {token(client, challenge(client, base_url), repository)}"}
    url = f"{base_url}/v2/{repository}/manifests/{reference}"
    status, headers, body = client.request(url, {**bearer, "Accept": MANIFEST_TYPES})
    check_status(status, body, image, project)
    manifest = json.loads(body)
    digest = headers.get("docker-content-digest", "sha256:" + hashlib.sha256(body).hexdigest())
    if headers.get("content-type", manifest.get("mediaType", "")).split(";")[0] in INDEX_TYPES or "manifests" in manifest:
        platforms = [m for m in manifest.get("manifests", []) if m.get("platform", {}).get("os") == "linux"]
        chosen = next((m for m in platforms if m["platform"].get("architecture") == "amd64"), platforms[0] if platforms else None)
        if chosen is None:
            raise ProbeError(f"cache: {image} is an index without a linux image")
        status, headers, body = client.request(
            f"{base_url}/v2/{repository}/manifests/{chosen['digest']}", {**bearer, "Accept": MANIFEST_TYPES}
        )
        check_status(status, body, f"{image} (linux/{chosen['platform'].get('architecture')})", project)
        manifest = json.loads(body)
    blobs = [manifest["config"], *manifest.get("layers", [])] if "config" in manifest else manifest.get("layers", [])
    if not all_blobs:
        blobs = sorted(blobs, key=lambda blob: blob.get("size", 0))[:1]
    fetched = 0
    for blob in blobs:
        status, _headers, data = client.request(f"{base_url}/v2/{repository}/blobs/{blob['digest']}", bearer)
        check_status(status, data, f"{image} blob {blob['digest'][:19]}", project)
        if "sha256:" + hashlib.sha256(data).hexdigest() != blob["digest"]:
            raise ProbeError(f"cache: blob {blob['digest']} of {image} arrived with another digest")
        fetched += len(data)
    return {"manifest": digest, "blobs": len(blobs), "bytes": fetched}


def check_dns(base_url: str, expected: str) -> None:
    host = urlsplit(base_url).hostname
    try:
        addresses = sorted({info[4][0] for info in socket.getaddrinfo(host, 443, proto=socket.IPPROTO_TCP)})
    except socket.gaierror as error:
        raise ProbeError(f"DNS: {host} does not resolve ({error.strerror})") from None
    if expected and expected not in addresses:
        raise ProbeError(f"DNS: {host} resolves to {', '.join(addresses)}, not to this cache's address {expected}")


def main(argv: list[str]) -> int:
    args = list(argv)
    options: dict[str, str | bool] = {"expect": "", "metric": "", "all_blobs": False}
    while args and args[0].startswith("--"):
        flag = args.pop(0)
        if flag == "--all-blobs":
            options["all_blobs"] = True
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
            result.update(pull(client, base_url, image, bool(options["all_blobs"])))
            result["ok"] = True
        except ProbeError as error:
            result.update(ok=False, error=str(error))
            failures += 1
        result["seconds"] = round(time.monotonic() - started, 2)
        print(json.dumps(result), flush=True)
        if not result["ok"]:
            print(f"{image}: {result['error']}", file=sys.stderr)
    if options["metric"]:
        reporter = Path(__file__).resolve().parent / "harbor-metrics.py"
        subprocess.run([sys.executable, str(reporter), "put", str(options["metric"]), str(failures)], check=False)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
