"""A stand-in for the EC2 instance metadata service (IMDSv2, tokens required) on 169.254.169.254:80.

What it reproduces, from AWS's own description:
- "How Instance Metadata Service Version 2 works" (docs.aws.amazon.com/AWSEC2/latest/UserGuide/
  instance-metadata-v2-how-it-works.html): a session token from `PUT /latest/api/token` with
  `X-aws-ec2-metadata-token-ttl-seconds` (1..21600); every other request must carry it in
  `X-aws-ec2-metadata-token`, or gets 401 when tokens are required.
- The hop limit is the IP TTL of the PUT response: "the PUT response containing the secret token
  will, by default, not be able to travel outside the instance ... by having the default Time To
  Live (TTL) on the low-level IP packets containing the secret token set to 1" (AWS Security Blog,
  "Add defense in depth against open firewalls, reverse proxies, and SSRF vulnerabilities with
  enhancements to the EC2 Instance Metadata Service", 2019; `HttpPutResponseHopLimit` in the EC2
  API). Only the token response gets that TTL: the TCP handshake and other answers use the normal
  TTL, which is why a container still connects but never receives its token.
- Role credentials at /latest/meta-data/iam/security-credentials/<role> (instance-metadata-
  security-credentials in the same guide), and /latest/user-data.

Usage: python imds_stand_in.py <listen address> <hop limit> [credentials.json]
(credentials.json: the role's credentials to hand out instead of the fixed ones, e.g. a session that
moto's STS issued, so that the S3 stand-in can check the signatures made with them.)
"""

from __future__ import annotations

import json
import secrets
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROLE = "harbor-vm-role"
CREDENTIALS = {
    "Code": "Success",
    "Type": "AWS-HMAC",
    "AccessKeyId": "ASIAEXAMPLESTANDIN00",
    "SecretAccessKey": "stand-in-secret",
    "Token": "stand-in-session-token",
    "Expiration": "2026-01-01T00:00:00Z",
}
PATHS = {
    "/latest/meta-data/iam/security-credentials/": ROLE,
    f"/latest/meta-data/iam/security-credentials/{ROLE}": json.dumps(CREDENTIALS),
    "/latest/user-data": "#cloud-config\n",
}


class Handler(BaseHTTPRequestHandler):
    hop_limit = 1
    tokens: set[str] = set()

    def _answer(self, status: int, body: str = "", headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
        ttl_seconds = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if self.path != "/latest/api/token" or not ttl_seconds.isdigit() or not 1 <= int(ttl_seconds) <= 21600:
            self._answer(400)
            return
        token = secrets.token_urlsafe(32)
        self.tokens.add(token)
        # From here on, this connection's packets carry TTL = hop limit.
        self.connection.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, self.hop_limit)
        # IMDS answers with the token's TTL in the same header; SDKs read it (aws-sdk-go v1.55.8
        # aws/ec2metadata/service.go unmarshalTokenHandler fails the token request without it).
        self._answer(200, token, {"X-aws-ec2-metadata-token-ttl-seconds": ttl_seconds})

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.headers.get("X-aws-ec2-metadata-token") not in self.tokens:
            self._answer(401)
        elif self.path in PATHS:
            self._answer(200, PATHS[self.path])
        else:
            self._answer(404)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
        sys.stderr.write(f"imds: {format % args}\n")


def main() -> None:
    address, hop_limit = sys.argv[1], int(sys.argv[2])
    Handler.hop_limit = hop_limit
    if len(sys.argv) > 3:
        with open(sys.argv[3]) as credentials:
            PATHS[f"/latest/meta-data/iam/security-credentials/{ROLE}"] = json.dumps({**CREDENTIALS, **json.load(credentials)})
    server = ThreadingHTTPServer((address, 80), Handler)
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
