#!/usr/bin/env python3
"""The instance role's credentials for Harbor's registry and registryctl, with IMDSv2 still required.

Harbor v2.15.2's `registry` is goharbor/distribution v2.8.3-harbor.1 with aws-sdk-go 1.15.11 vendored;
that SDK's ec2metadata client sends plain GETs and never asks for an IMDSv2 token, so with
`http_tokens: required` the s3 driver's credential chain ends in NoCredentialProviders. The host's
nat table sends the registry's and registryctl's connections to 169.254.169.254:80 (and only
theirs: the rule matches their fixed source addresses) here. This service fetches the credentials
from the real IMDS with a token, as the host may (hop limit 1), and answers the two requests of
aws-sdk-go's EC2RoleProvider (aws/credentials/ec2rolecreds/ec2_role_provider.go, requestCredList
and requestCred: GET <endpoint>/meta-data/iam/security-credentials/ and .../<role>, endpoint
http://169.254.169.254/latest). The JSON body is IMDS's own, passed through: the SDK reads
AccessKeyId, SecretAccessKey, Token, Expiration and Code; with no ExpiryWindow (1.15.11's
EC2RoleProvider sets none) it asks again only when Expiration has passed. Every answer here is
fetched fresh from IMDS, and its Expiration is moved EXPIRY_MARGIN earlier when that is still in the
future: IMDS hands out new credentials at least 5 minutes before the old ones expire (EC2 User
Guide, "Retrieve security credentials from instance metadata"), so the registry renews in time and
a presigned redirect URL it signs (storage middleware `redirect`) is not already dying with its
session token. Otherwise IMDS's body passes through unchanged.

Hardening: the host firewall (harbor-imds-guard.service's INPUT rules) lets only connections that
the nat rule redirected reach this port; here a source outside RELAY_CLIENTS is closed before its
request is read, a client that sends nothing is dropped after REQUEST_TIMEOUT_SECONDS, and at most
MAX_CONNECTIONS requests are served at once (more are closed at once). No proxy: urllib would honour
http_proxy/no_proxy from the environment, and IMDS is link-local. No reverse DNS at start (http.server's
server_bind calls getfqdn).

registryctl is built from Harbor's go.mod (aws-sdk-go v1.55.8), whose ec2metadata client first asks
`PUT /latest/api/token`; a 403 there makes it fall back to the plain GETs for good
(aws/ec2metadata/token_provider.go fetchTokenHandler: 403, 404 and 405 set `disabled`; a 400 would
fail the request). Everything else is refused: other paths 404, other methods 403, other sources
closed unanswered (FreeBindServer.verify_request; the handler's own 403 for them is a second check).
User data and every other metadata path stay out of reach.

Settings (environment, all required): RELAY_LISTEN (address), RELAY_PORT, RELAY_CLIENTS (CIDR of the
addresses allowed to ask; the nat rule changes only the destination, so this is the container's
own address), IMDS_URL (http://169.254.169.254).
"""
# ruff: noqa: S310 - the one URL is IMDS's, set by the systemd unit (checked to be http://), never by a client.

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer

CREDENTIALS_PATH = "/latest/meta-data/iam/security-credentials/"
# IAM role (and instance profile) names: 1-64 of [\w+=,.@-] (IAM API reference, CreateRole RoleName);
# not starting with a dot here, so `..` never reaches IMDS as a path segment.
ROLE_NAME = re.compile(r"[A-Za-z0-9_+=,@-][A-Za-z0-9_+=,.@-]{0,63}")
TOKEN_PATH = "/latest/api/token"  # noqa: S105 - a path, not a secret
# IMDSv2 session tokens last up to 21600 s; one is reused until a minute before it ends.
TOKEN_TTL_SECONDS = 21600
IMDS_TIMEOUT_SECONDS = 2
# A client's socket timeout (BaseHTTPRequestHandler.timeout, None by default): the SDK sends its
# request at once, a connection that sends nothing holds a thread no longer than this.
REQUEST_TIMEOUT_SECONDS = 5
# Two clients (registry, registryctl), one request at a time each: a few threads are plenty.
MAX_CONNECTIONS = 8
# Served Expiration = IMDS's - this, when still in the future (IMDS rotates >= 5 min before expiry).
EXPIRY_MARGIN = datetime.timedelta(minutes=4)
EXPIRATION_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# What CPython 3.12's BaseHTTPRequestHandler.log_message escapes (http/server.py _control_char_table):
# C0, DEL and C1 as \xNN, so a client's request line cannot forge or break journal lines.
CONTROL_CHARACTERS = str.maketrans({c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)]})
# IMDS is link-local: never through a proxy from the environment (urllib's default ProxyHandler
# reads http_proxy and friends).
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# Linux IP_FREEBIND (linux/in.h): bind to the Harbor network's gateway address before dockerd has
# created the bridge that carries it, so the relay can start before docker.service.
IP_FREEBIND = 15


class Imds:
    """A client of the real IMDS, with a session token (IMDSv2)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._lock = threading.Lock()
        self._token = ""
        self._token_until = 0.0

    def _new_token(self) -> str:
        request = urllib.request.Request(
            self.base_url + TOKEN_PATH,
            method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)},
        )
        with OPENER.open(request, timeout=IMDS_TIMEOUT_SECONDS) as response:
            return response.read().decode()

    def token(self, renew: bool = False) -> str:
        with self._lock:
            if renew or time.monotonic() >= self._token_until:
                self._token = self._new_token()
                self._token_until = time.monotonic() + TOKEN_TTL_SECONDS - 60
            return self._token

    def get(self, path: str) -> tuple[int, bytes, str]:
        """IMDS's status, body and content type for one GET; a rejected token is renewed once."""
        for renew in (False, True):
            request = urllib.request.Request(self.base_url + path, headers={"X-aws-ec2-metadata-token": self.token(renew)})
            try:
                with OPENER.open(request, timeout=IMDS_TIMEOUT_SECONDS) as response:
                    return response.status, response.read(), response.headers.get("Content-Type", "text/plain")
            except urllib.error.HTTPError as error:
                if error.code == 401 and not renew:
                    continue
                return error.code, error.read(), error.headers.get("Content-Type", "text/plain")
        raise AssertionError("unreachable")


def served_early(body: bytes, now: datetime.datetime) -> bytes:
    """IMDS's credentials JSON with Expiration EXPIRY_MARGIN earlier when that is still after `now`;
    anything else (another shape, a date already that close) unchanged."""
    try:
        document = json.loads(body)
        expiration = datetime.datetime.strptime(document["Expiration"], EXPIRATION_FORMAT).replace(tzinfo=datetime.UTC)
    except (ValueError, TypeError, KeyError):
        return body
    early = expiration - EXPIRY_MARGIN
    if early <= now:
        return body
    document["Expiration"] = early.strftime(EXPIRATION_FORMAT)
    return json.dumps(document, indent=2).encode()


class Handler(BaseHTTPRequestHandler):
    imds: Imds
    clients: ipaddress.IPv4Network
    server_version = "EC2ws"
    timeout = REQUEST_TIMEOUT_SECONDS
    sys_version = ""

    def _answer(self, status: int, body: bytes = b"", content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _client_allowed(self) -> bool:
        try:
            return ipaddress.ip_address(self.client_address[0]) in self.clients
        except ValueError:
            return False

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if not self._client_allowed():
            self._answer(403)
            return
        path = self.path
        role = path[len(CREDENTIALS_PATH) :] if path.startswith(CREDENTIALS_PATH) else None
        if role is None or (role and not ROLE_NAME.fullmatch(role)):
            self._answer(404)
            return
        try:
            status, body, content_type = self.imds.get(path)
        except (OSError, urllib.error.URLError) as error:
            self.log_message("instance metadata service unreachable: %s", error)
            self._answer(502)
            return
        if status == 200 and role:
            body = served_early(body, datetime.datetime.now(datetime.UTC))
        self._answer(status, body, content_type)

    def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
        # Also the token request of newer SDKs: 403 makes them fall back to plain GETs.
        self._answer(403)

    do_POST = do_DELETE = do_PATCH = do_PUT  # noqa: N815 - http.server's naming

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
        # One line per request to the journal; never a body (it holds the credentials).
        message = (format % args).translate(CONTROL_CHARACTERS)
        sys.stderr.write(f"{self.client_address[0]} {message}\n")


class FreeBindServer(ThreadingHTTPServer):
    daemon_threads = True
    clients: ipaddress.IPv4Network

    def __init__(self, address: tuple[str, int], handler: type[Handler], clients: ipaddress.IPv4Network) -> None:
        self.clients = clients
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, handler)

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
        # TCPServer's bind, not HTTPServer's: that one asks getfqdn (reverse DNS) for a name unused here.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def verify_request(self, request, client_address) -> bool:
        """Before any byte is read and before a thread: sources outside RELAY_CLIENTS are closed."""
        try:
            return ipaddress.ip_address(client_address[0]) in self.clients
        except ValueError:
            return False

    def process_request(self, request, client_address) -> None:
        """A thread per request while fewer than MAX_CONNECTIONS run; beyond that, closed at once."""
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def main() -> None:
    missing = [name for name in ("RELAY_LISTEN", "RELAY_PORT", "RELAY_CLIENTS", "IMDS_URL") if not os.environ.get(name)]
    if missing:
        sys.exit(f"imds-credential-relay: set {', '.join(missing)} in the environment")
    if not os.environ["IMDS_URL"].startswith("http://"):
        sys.exit("imds-credential-relay: IMDS_URL must be http://<address>")
    Handler.imds = Imds(os.environ["IMDS_URL"])
    Handler.clients = ipaddress.IPv4Network(os.environ["RELAY_CLIENTS"])
    server = FreeBindServer((os.environ["RELAY_LISTEN"], int(os.environ["RELAY_PORT"])), Handler, Handler.clients)
    print(f"listening on {os.environ['RELAY_LISTEN']}:{os.environ['RELAY_PORT']} for {Handler.clients}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
