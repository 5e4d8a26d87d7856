"""A small client for Harbor's REST API v2.0, used by the dynamic provider.

Built fresh inside every provider call (never kept on the pickled provider). Retries connection
errors, timeouts and 502/503/504 (Harbor just started, or its core restarting behind nginx) with
exponential backoff for up to RETRY_SECONDS, long enough for a restart of Harbor's core; never retries other
statuses, nor a TLS verification failure (it will not heal by itself). A non-idempotent request
(POST) is never sent twice once it may have reached Harbor: a timeout or dropped connection after
sending raises `MaybeSent`, and the caller finds out by looking the object up by name. Errors
carry the method, path and Harbor's own messages, never a credential or body.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from components.harbor.progress import waiting

API_BASE = "/api/v2.0"
RETRY_STATUSES = frozenset({502, 503, 504})
# Harbor pings the upstream inside every registry POST and PUT and its dialer waits up to 30 s
# (src/controller/registry/controller.go validate -> IsHealthy): wait well past that.
REGISTRY_WRITE_TIMEOUT = 75.0
PAGE_SIZE = 100
# How long to keep retrying a Harbor that does not answer or answers 502/503/504: `docker compose
# restart` of Harbor's core runs its database migrations and config load before it serves (on a
# small VM a minute or two), and nginx answers 502 meanwhile. Backoff doubles up to MAX_DELAY.
RETRY_SECONDS = 240.0
MAX_DELAY = 15.0
UNAUTHORIZED_HINT = (
    "Harbor refused the admin credential: adminPassword must be Harbor's current admin password "
    "(after changing it in Harbor, set it with `pulumi config set --secret adminPassword` and run "
    "`pulumi up` before any `pulumi refresh`: refresh uses the password stored in the state)"
)


class HarborApiError(Exception):
    """A failed call: method, path, status (None when no answer came) and Harbor's messages."""

    def __init__(self, method: str, path: str, status: int | None, messages: list[str], hint: str = "") -> None:
        self.method, self.path, self.status, self.messages = method, path, status, messages
        answer = f"HTTP {status}" if status is not None else "no answer"
        text = "; ".join(messages) if messages else "no message"
        super().__init__(f"Harbor API {method} {path} failed ({answer}): {text}{(' - ' + hint) if hint else ''}")

    def with_hint(self, hint: str) -> HarborApiError:
        """The same failure, with what to do about it."""
        return HarborApiError(self.method, self.path, self.status, self.messages, hint=hint)


class MaybeSent(HarborApiError):
    """A non-idempotent request that may have reached Harbor, with no answer: never re-send it blindly."""


IDEMPOTENT = frozenset({"GET", "PUT", "DELETE", "HEAD"})


def _not_sent(reason: object) -> bool:
    """Connection refused or DNS failure: the request never left this machine."""
    if isinstance(reason, ConnectionRefusedError):
        return True
    # urllib wraps DNS failures (socket.gaierror) in URLError; gaierror is an OSError, not a timeout.
    return type(reason).__name__ == "gaierror"


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: Any

    def location_id(self) -> str:
        """The last path segment of Location (an id, or a name with X-Resource-Name-In-Location)."""
        return self.headers.get("location", "").rstrip("/").rsplit("/", 1)[-1]


def float_env(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def registry_write_timeout() -> float:
    """Timeout of a registry POST/PUT (the environment knob exists for tests)."""
    return float_env("HARBOR_CACHE_REGISTRY_WRITE_TIMEOUT", REGISTRY_WRITE_TIMEOUT)


class HarborClient:
    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        timeout: float | None = None,
        retry_seconds: float | None = None,
        base_delay: float | None = None,
    ) -> None:
        self.base = url.rstrip("/") + API_BASE
        self._authorization = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        # Environment knobs exist for tests and slow links; defaults suit a real Harbor.
        self.timeout = timeout if timeout is not None else float_env("HARBOR_CACHE_HTTP_TIMEOUT", 30.0)
        self.base_delay = base_delay if base_delay is not None else float_env("HARBOR_CACHE_RETRY_BASE_DELAY", 1.0)
        self.retry_seconds = (
            retry_seconds if retry_seconds is not None else float_env("HARBOR_CACHE_RETRY_SECONDS", RETRY_SECONDS)
        )

    def __repr__(self) -> str:
        return f"HarborClient({self.base!r})"

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        shown_path = API_BASE + path
        url = self.base + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
            shown_path += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        request_headers = {"Authorization": self._authorization, "Accept": "application/json", **(headers or {})}
        if data is not None:
            request_headers["Content-Type"] = "application/json"
        last_error = ""
        timeout = timeout if timeout is not None else self.timeout
        deadline = time.monotonic() + self.retry_seconds
        attempt = 0
        while True:
            if attempt:
                delay = min(self.base_delay * 2 ** (attempt - 1), MAX_DELAY)
                if time.monotonic() + delay > deadline:
                    break
                time.sleep(delay)
            attempt += 1
            request = urllib.request.Request(url, data=data, method=method, headers=request_headers)  # noqa: S310
            try:
                # A registry write waits while Harbor pings the upstream (up to ~30 s): say so in `pulumi up`.
                with (
                    waiting(f"Harbor {method} {shown_path} ({self.base})", limit=timeout),
                    urllib.request.urlopen(request, timeout=timeout) as answer,  # noqa: S310 - URL checked in check()
                ):
                    return Response(answer.status, {k.lower(): v for k, v in answer.headers.items()}, _json(answer.read()))
            except urllib.error.HTTPError as error:
                messages = _messages(error.read())
                if method not in IDEMPOTENT and error.code == 504:
                    # The gateway gave up waiting for Harbor's core: the request reached it.
                    raise MaybeSent(method, shown_path, error.code, messages) from None
                if error.code in RETRY_STATUSES:
                    last_error = f"HTTP {error.code}"
                    continue
                if error.code == 401:
                    raise HarborApiError(method, shown_path, 401, messages, hint=UNAUTHORIZED_HINT) from None
                raise HarborApiError(method, shown_path, error.code, messages) from None
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as error:
                reason = getattr(error, "reason", error)
                last_error = f"{type(reason).__name__}: {reason}"
                if isinstance(reason, ssl.SSLCertVerificationError):
                    raise HarborApiError(
                        method, shown_path, None, [f"TLS certificate verification failed: {reason.verify_message}"]
                    ) from None
                if method not in IDEMPOTENT and not _not_sent(reason):
                    raise MaybeSent(
                        method, shown_path, None, [f"no answer ({last_error}); the request may have reached Harbor"]
                    ) from None
        raise HarborApiError(
            method,
            shown_path,
            None,
            [f"gave up after {attempt} attempts in {self.retry_seconds:g} s, last: {last_error}"],
            hint="is Harbor up? (`systemctl status harbor` on the VM)",
        )

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, query=query or None).body

    def list_all(self, path: str, **query: Any) -> list[dict]:
        """Every item of a paged list (Harbor pages by 10 unless asked, at most 100)."""
        items: list[dict] = []
        page = 1
        while True:
            answer = self.request("GET", path, query={**query, "page": page, "page_size": PAGE_SIZE})
            batch = answer.body or []
            items.extend(batch)
            total = int(answer.headers.get("x-total-count", len(items)))
            if not batch or len(items) >= total:
                return items
            page += 1

    def find_by_name(self, path: str, name: str, key: str = "name") -> dict | None:
        """Exact lookup by name: `q=name=<name>` (`name=` alone is a fuzzy match), across pages."""
        for item in self.list_all(path, q=f"name={name}"):
            if item.get(key) == name:
                return item
        return None


def _json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw.decode(errors="replace")


def _messages(raw: bytes) -> list[str]:
    body = _json(raw)
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return [str(e.get("message", "")) for e in body["errors"] if isinstance(e, dict)]
    return [body[:200]] if isinstance(body, str) and body else []
