"""A stand-in for Harbor v2.15.2's pull-through proxy path, in front of two real registries
(Debian's docker-registry, distribution 2.8): `upstream` holds the images, `store` is Harbor's own
registry. What the stand-in does between them is Harbor's code, read at v2.15.2:

- src/server/middleware/repoproxy/proxy.go `handleManifest`: a manifest asked for by digest that
  the store holds is served from the store (`next.ServeHTTP`); otherwise the upstream is asked
  (HEAD) and, unless the store's copy of the tag has that digest, core logs
  `Artifact: %v:%v, digest:%v is not found in proxy cache, fetch it from remote repo` (Warning) and
  answers with the upstream's manifest (`proxyManifestGet`: Content-Type, Docker-Content-Digest and
  Etag set to the *requested* digest, empty for a tag).
- `handleBlob`: a blob the store has is served by the store (`UseLocalBlob` -> `next.ServeHTTP`,
  which honours Range: distribution's blobServer.ServeBlob -> http.ServeContent); otherwise
  `ProxyBlob` streams the upstream's blob whole with 200 (`io.CopyN`, Range ignored) and a
  goroutine fetches it again and pushes it into the store (`putBlobToLocal`), logging
  `error while putting blob to local repo, %v` when that fails.
- src/controller/proxy/controller.go `ProxyManifest` + manifestcache.go `ManifestCache.CacheContent`:
  in the background, every `sleepIntervalSec` (20 s; `interval` here, shorter for tests) up to
  `maxManifestWait` (10) times, check that the store has every blob of the manifest; then push the
  missing ones itself and push the manifest by digest and by tag. Only then does the artifact exist
  in Harbor's database, and so in its API.
- the artifact API (`GET /api/v2.0/projects/{p}/repositories/{r}/artifacts/{ref}`,
  src/server/v2.0/handler/artifact.go GetArtifact: `RequireProjectAccess(read, artifact)`, then
  src/pkg/artifact/dao/dao.go: 404 `artifact %s@%s not found`); the repository name arrives
  URL-encoded twice when it holds a slash (swagger).
- the token service and RBAC as a client sees them: anonymous tokens carry pull only on public
  projects; a private project needs a login (the pull robot), and its artifact API needs the
  robot's `artifact read` permission (src/common/rbac/const.go), else 403.

`storing=False` makes the store refuse writes as a full or read-only storage does (distribution's
`storage.maintenance.readonly`: uploads answer 405), so the stand-in streams every pull and keeps
nothing, exactly Harbor's behaviour when its registry cannot write. `cut_upstream_once_stored`
makes the upstream unreachable (connection refused) from the moment the store holds an artifact:
what is served after that can only come from the store. Only single-platform manifests are
handled (ManifestListCache is not reproduced); every request to the upstream is recorded.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import http.server
import json
import secrets
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from tests.standins.daemons import free_port, stop_process, wait_until

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)
SERVICE = "harbor-registry"
# Harbor's zero time for an artifact never pulled since it was stored (Go's time.Time{} through strfmt).
ZERO_TIME = "0001-01-01T00:00:00.000Z"


class PlainRegistry:
    """docker-registry on plain HTTP, 127.0.0.1; `readonly` = distribution's maintenance read-only
    mode (configuration.go `Maintenance.ReadOnly`): reads work, every upload answers 405."""

    def __init__(self, directory: Path, readonly: bool = False) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        storage: dict = {"filesystem": {"rootdirectory": str(directory / "storage")}}
        if readonly:
            storage["maintenance"] = {"readonly": {"enabled": True}}
        config = {"version": 0.1, "log": {"level": "info"}, "storage": storage, "http": {"addr": f"127.0.0.1:{self.port}"}}
        (directory / "config.yml").write_text(yaml.safe_dump(config))
        self.log = (directory / "registry.log").open("wb")
        self.process = subprocess.Popen(
            ["docker-registry", "serve", str(directory / "config.yml")], stdout=self.log, stderr=self.log
        )
        wait_until(lambda: self.call("GET", "/v2/")[0] == 200, 20, "docker-registry")

    def call(self, method: str, path: str, headers: dict | None = None, body: bytes | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            answer = connection.getresponse()
            return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
        finally:
            connection.close()

    def stop(self) -> None:
        stop_process(self.process, self.log)


@dataclass
class Project:
    public: bool = True


@dataclass
class Stored:
    push_time: str
    tags: list[str] = field(default_factory=list)


class ProxyCacheHarbor:
    def __init__(
        self,
        directory: Path,
        ca,
        upstream: PlainRegistry,
        projects: dict[str, Project],
        storing: bool = True,
        interval: float = 1.0,
        max_wait: int = 10,
        robot: tuple[str, str] = ("robot$probe", "robot-secret"),
        robot_reads_artifacts: bool = True,
        cut_upstream_once_stored: bool = False,
    ) -> None:
        self.upstream = upstream
        self.store = PlainRegistry(directory / "store", readonly=not storing)
        self.projects = projects
        self.interval, self.max_wait = interval, max_wait
        self.robot, self.robot_reads_artifacts = robot, robot_reads_artifacts
        self.cut_upstream_once_stored = cut_upstream_once_stored
        self.upstream_reachable = True
        self.upstream_requests: list[tuple[float, str, str]] = []
        self.core_log: list[str] = []
        self.artifacts: dict[tuple[str, str], Stored] = {}
        self.tokens: dict[str, tuple[str, set[str]]] = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                outer.handle(self, "GET")

            def do_HEAD(self):  # noqa: N802
                outer.handle(self, "HEAD")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(ca.server_cert), str(ca.server_key))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"https://localhost:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.store.stop()

    # The upstream, as Harbor's remote helper reaches it.

    def remote(self, method: str, path: str, headers: dict | None = None):
        self.upstream_requests.append((time.monotonic(), method, path))
        if not self.upstream_reachable:
            raise ConnectionRefusedError("dial tcp upstream:443: connect: connection refused")
        return self.upstream.call(method, path, headers)

    # Answers

    @staticmethod
    def send(handler, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        handler.send_response(status)
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        if "Content-Length" not in (headers or {}):
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(body)

    def error(self, handler, status: int, code: str, message: str, headers: dict | None = None) -> None:
        body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
        self.send(handler, status, body, {"Content-Type": "application/json", **(headers or {})})

    def login_of(self, handler) -> str | None:
        """'' anonymous, the robot's name with its secret, None for a wrong login (401)."""
        header = handler.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return ""
        user, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        return user if (user, secret) == self.robot else None

    def handle(self, handler, method: str) -> None:
        parts = urlsplit(handler.path)
        path = parts.path
        try:
            if path == "/v2/":
                realm = f"{self.url}/service/token"
                challenge = f'Bearer realm="{realm}",service="{SERVICE}"'
                return self.error(handler, 401, "UNAUTHORIZED", "unauthorized", {"WWW-Authenticate": challenge})
            if path == "/service/token":
                return self.token(handler, parse_qs(parts.query))
            if path.startswith("/api/v2.0/projects/"):
                return self.artifact_api(handler, path)
            if path.startswith("/v2/"):
                return self.registry(handler, method, path)
            return self.error(handler, 404, "NOT_FOUND", "not found")
        except ConnectionRefusedError as error:
            # A remote error that is neither not-found nor rate limit: Harbor's SendError, 500.
            return self.error(handler, 500, "UNKNOWN", str(error))

    def token(self, handler, query: dict) -> None:
        login = self.login_of(handler)
        if login is None:
            return self.error(handler, 401, "UNAUTHORIZED", "unauthorized")
        scope = query.get("scope", [""])[0]
        _kind, repository, _actions = (scope.split(":") + ["", "", ""])[:3]
        project = self.projects.get(repository.split("/", 1)[0])
        allowed = project is not None and (project.public or login == self.robot[0])
        token = secrets.token_hex(8)
        self.tokens[token] = (repository, {"pull"} if allowed else set())
        self.send(handler, 200, json.dumps({"token": token}).encode(), {"Content-Type": "application/json"})

    def artifact_api(self, handler, path: str) -> None:
        # /api/v2.0/projects/<p>/repositories/<r, encoded twice>/artifacts/<reference>
        segments = path.split("/")
        if len(segments) != 9 or segments[5] != "repositories" or segments[7] != "artifacts":
            return self.error(handler, 404, "NOT_FOUND", "not found")
        project_name, repository, reference = segments[4], unquote(unquote(segments[6])), segments[8]
        project = self.projects.get(project_name)
        login = self.login_of(handler)
        if login is None or (project is not None and not project.public and login == ""):
            return self.error(handler, 401, "UNAUTHORIZED", "unauthorized")
        if project is None:
            return self.error(handler, 404, "NOT_FOUND", f"project {project_name} not found")
        if not project.public and not self.robot_reads_artifacts:
            return self.error(handler, 403, "FORBIDDEN", "forbidden")
        full = f"{project_name}/{repository}"
        stored = self.artifacts.get((full, reference))
        if stored is None:
            return self.error(handler, 404, "NOT_FOUND", f"artifact {full}@{reference} not found")
        body = {
            "id": abs(hash((full, reference))) % 10000,
            "digest": reference,
            "repository_name": full,
            "push_time": stored.push_time,
            "pull_time": ZERO_TIME,
            "tags": [{"name": tag} for tag in stored.tags],
        }
        self.send(handler, 200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def registry(self, handler, method: str, path: str) -> None:
        repository, kind, reference = self.split(path)
        bearer = handler.headers.get("Authorization", "").removeprefix("Bearer ")
        granted = self.tokens.get(bearer)
        if granted is None or granted[0] != repository or "pull" not in granted[1]:
            message = f"unauthorized to access repository: {repository}, action: pull"
            return self.error(handler, 401, "UNAUTHORIZED", message)
        remote_repository = repository.split("/", 1)[1]  # getRemoteRepo: the project prefix trimmed
        if kind == "blobs":
            return self.blob(handler, method, repository, remote_repository, reference)
        return self.manifest(handler, method, repository, remote_repository, reference)

    @staticmethod
    def split(path: str) -> tuple[str, str, str]:
        inner = path.removeprefix("/v2/")
        for kind in ("manifests", "blobs"):
            marker = f"/{kind}/"
            if marker in inner:
                repository, _, reference = inner.rpartition(marker)
                return repository, kind, reference
        return inner, "", ""

    def forward_to_store(self, handler, method: str, path: str, extra: dict | None = None) -> None:
        """next.ServeHTTP: the request goes to Harbor's registry as it is (Range included)."""
        headers = {"Accept": handler.headers.get("Accept", MANIFEST_ACCEPT), **(extra or {})}
        if handler.headers.get("Range"):
            headers["Range"] = handler.headers["Range"]
        status, answer_headers, body = self.store.call(method, path, headers)
        keep = ("content-type", "docker-content-digest", "etag", "content-range", "accept-ranges", "content-length")
        self.send(handler, status, body, {k.title(): v for k, v in answer_headers.items() if k in keep})

    def store_digest(self, repository: str, reference: str) -> str:
        status, headers, _ = self.store.call("HEAD", f"/v2/{repository}/manifests/{reference}", {"Accept": MANIFEST_ACCEPT})
        return headers.get("docker-content-digest", "") if status == 200 else ""

    def manifest(self, handler, method: str, repository: str, remote_repository: str, reference: str) -> None:
        by_digest = reference.startswith("sha256:")
        local = self.store_digest(repository, reference)
        if local and by_digest:  # UseLocalManifest: "Pull by digest when artifact exist in local"
            return self.forward_to_store(handler, method, f"/v2/{repository}/manifests/{reference}")
        status, headers, _ = self.remote("HEAD", f"/v2/{remote_repository}/manifests/{reference}", {"Accept": MANIFEST_ACCEPT})
        if status == 404:
            return self.error(handler, 404, "NOT_FOUND", f"repo {repository}, tag {reference} not found")
        if local and headers.get("docker-content-digest") == local:
            return self.forward_to_store(handler, method, f"/v2/{repository}/manifests/{reference}")
        tag, digest = ("", reference) if by_digest else (reference, "")
        if method == "GET":
            self.core_log.append(
                f"Artifact: {repository}:{tag}, digest:{digest} is not found in proxy cache, fetch it from remote repo"
            )
        status, headers, body = self.remote("GET", f"/v2/{remote_repository}/manifests/{reference}", {"Accept": MANIFEST_ACCEPT})
        if status != 200:
            return self.send(handler, status, body, {"Content-Type": headers.get("content-type", "application/json")})
        content_type = headers.get("content-type", "")
        real_digest = headers.get("docker-content-digest") or "sha256:" + hashlib.sha256(body).hexdigest()
        threading.Thread(
            target=self.cache_content, args=(repository, remote_repository, body, content_type, real_digest, tag), daemon=True
        ).start()
        # setHeaders(w, len(payload), ct, art.Digest): the digest header is the requested digest, "" for a tag.
        self.send(handler, 200, body, {"Content-Type": content_type, "Docker-Content-Digest": digest, "Etag": digest})

    def blob(self, handler, method: str, repository: str, remote_repository: str, digest: str) -> None:
        status, _, _ = self.store.call("HEAD", f"/v2/{repository}/blobs/{digest}")
        if status == 200:  # UseLocalBlob
            return self.forward_to_store(handler, method, f"/v2/{repository}/blobs/{digest}")
        status, headers, body = self.remote("GET", f"/v2/{remote_repository}/blobs/{digest}")
        if status != 200:
            return self.send(handler, status, body, {"Content-Type": "application/json"})
        threading.Thread(target=self.put_blob_logged, args=(repository, remote_repository, digest), daemon=True).start()
        # io.CopyN(w, reader, size): the whole blob, 200, whatever Range asked.
        self.send(handler, 200, body, {"Content-Type": "application/octet-stream"})

    def put_blob_logged(self, repository: str, remote_repository: str, digest: str) -> None:
        try:
            error = self.put_blob(repository, remote_repository, digest)
        except OSError as failure:
            error = str(failure)
        if error:
            self.core_log.append(f"error while putting blob to local repo, {error}")

    def put_blob(self, repository: str, remote_repository: str, digest: str) -> str:
        """putBlobToLocal: read the blob from the upstream again and push it into the store."""
        try:
            status, _, data = self.remote("GET", f"/v2/{remote_repository}/blobs/{digest}")
        except ConnectionRefusedError as error:
            return str(error)
        if status != 200:
            return f"upstream answered {status}"
        status, headers, body = self.store.call("POST", f"/v2/{repository}/blobs/uploads/")
        if status != 202:
            return f"http status code: {status}, body: {body.decode(errors='replace').strip()}"
        location = urlsplit(headers["location"])  # distribution's upload URL, with its _state query
        put = f"{location.path}?{location.query}&digest={digest}" if location.query else f"{location.path}?digest={digest}"
        status, _, body = self.store.call("PUT", put, {"Content-Type": "application/octet-stream"}, data)
        return "" if status == 201 else f"http status code: {status}, body: {body.decode(errors='replace').strip()}"

    def cache_content(self, *args: str | bytes) -> None:
        try:
            self._cache_content(*args)
        except OSError as error:  # the test stopped the stand-in while Harbor was still waiting
            self.core_log.append(f"error occurred on manifest push to local: {error}")

    def _cache_content(
        self, repository: str, remote_repository: str, payload: bytes, content_type: str, digest: str, tag: str
    ) -> None:
        """ManifestCache.CacheContent: wait for the blobs, push the missing ones, push the manifest."""
        manifest = json.loads(payload)
        blobs = [manifest["config"], *manifest.get("layers", [])] if "config" in manifest else []
        missing = blobs
        for _ in range(self.max_wait):
            time.sleep(self.interval)
            missing = [b for b in blobs if self.store.call("HEAD", f"/v2/{repository}/blobs/{b['digest']}")[0] != 200]
            if not missing:
                break
        for blob in missing:
            error = self.put_blob(repository, remote_repository, blob["digest"])
            if error:
                self.core_log.append(f"Failed to push blob to local repo, error: {error}")
                return
        pushed = []
        for reference in [digest, *([tag] if tag else [])]:
            status, _, body = self.store.call(
                "PUT", f"/v2/{repository}/manifests/{reference}", {"Content-Type": content_type}, payload
            )
            if status != 201:
                self.core_log.append(f"error occurred on manifest push to local: {status} {body.decode(errors='replace')}")
                return
            pushed.append(reference)
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        with self.lock:
            self.artifacts[(repository, digest)] = Stored(push_time=now, tags=[tag] if tag else [])
            if self.cut_upstream_once_stored:
                self.upstream_reachable = False
