"""A stateful Harbor API emulator: a real HTTP server on loopback with Harbor's semantics as
DESIGN.md records them and as goharbor/harbor v2.15.2's handlers (src/server/v2.0/handler/) and
controllers do them: 201 + Location, 409, 412, fuzzy `name` vs exact `q=name=`, paging, masked
secrets, flat registry PUT that keeps what is not sent, the upstream health check inside registry
POST and PUT (with a configurable latency that runs on after the client gave up), string metadata,
the default retention policy of a proxy project, GC parameters as a JSON string, 401 without auth,
the auth-mode lock. Every request body and response is validated against Harbor v2.15.2's swagger
when shared/reference holds it (types of known keys only: Harbor's go-swagger server ignores
unknown JSON keys); a request that does not fit fails the call with 422 and is recorded in
`violations`, so a test sees it.
"""

from __future__ import annotations

import base64
import copy
import http.server
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.paths import REFERENCE

SWAGGER = REFERENCE / "harbor-v2.15.2-swagger.yaml"
# Harbor's list, written out here rather than imported from components.settings on purpose: the
# emulator stands for Harbor, so a wrong list in our code must disagree with it, not follow it.
PERMITTED_PROXY_TYPES = {
    "docker-hub",
    "harbor",
    "azure-acr",
    "ali-acr",
    "aws-ecr",
    "google-gcr",
    "docker-registry",
    "github-ghcr",
    "jfrog-artifactory",
}
# Adapters Harbor has that may not back a proxy-cache project.
OTHER_ADAPTER_TYPES = {"gitlab", "huawei-SWR", "tencent-tcr", "volcengine-cr", "dtr"}
PROJECT_NAME_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
MASK = "*****"
# src/pkg/quota/types/resources.go MaxLimitedValue: 1024 TB.
MAX_STORAGE_BYTES = 1125899906842624


# What a robot may be given, per permission kind: src/common/rbac/const.go PoliciesMap (ScopeSystem,
# ScopeProject) at v2.15.2, which handler/robot.go validate checks every access against ("bad
# request permission: <resource>:<action>").
ROBOT_ACCESS: dict[str, dict[str, set[str]]] = {
    "system": {
        "audit-log": {"list"},
        "preheat-instance": {"read", "create", "delete", "list", "update"},
        "project": {"list", "create"},
        "replication-policy": {"read", "create", "delete", "list", "update"},
        "replication": {"read", "create", "list"},
        "replication-adapter": {"list"},
        "registry": {"read", "create", "delete", "list", "update"},
        "scan-all": {"read", "update", "stop", "create"},
        "system-volumes": {"read"},
        "garbage-collection": {"read", "create", "list", "update", "stop"},
        "purge-audit": {"read", "create", "list", "update", "stop"},
        "jobservice-monitor": {"list", "stop"},
        "scanner": {"read", "create", "delete", "list", "update"},
        "label": {"read", "create", "delete", "update"},
        "security-hub": {"read", "list"},
        "catalog": {"read"},
        "quota": {"read", "list"},
    },
    "project": {
        "log": {"list"},
        "project": {"read", "delete", "update"},
        "metadata": {"read", "create", "delete", "list", "update"},
        "repository": {"read", "update", "delete", "list", "pull", "push"},
        "artifact": {"read", "create", "list", "delete"},
        "scan": {"create", "read", "stop"},
        "sbom": {"create", "stop", "read"},
        "tag": {"create", "list", "delete"},
        "accessory": {"list"},
        "artifact-addition": {"read"},
        "artifact-label": {"create", "delete"},
        "scanner": {"create", "read"},
        "preheat-policy": {"read", "create", "delete", "list", "update"},
        "immutable-tag": {"create", "delete", "list", "update"},
        "notification-policy": {"read", "create", "delete", "list", "update"},
        "tag-retention": {"read", "create", "delete", "list", "update"},
        "label": {"read", "create", "delete", "list", "update"},
        "quota": {"read"},
    },
}


def robot_access_problem(permissions: list[dict]) -> str:
    for permission in permissions:
        allowed = ROBOT_ACCESS.get(permission.get("kind", ""))
        if allowed is None:
            return f"bad request permission level: {permission.get('kind')}"
        for access in permission.get("access") or []:
            if access.get("action") not in allowed.get(access.get("resource", ""), set()):
                return f"bad request permission: {access.get('resource')}:{access.get('action')}"
    return ""


class SwaggerValidator:
    """Validates bodies against the spec's definitions: the types of the keys the spec knows.

    Unknown keys are accepted, as Harbor accepts them: its generated server decodes bodies with
    go-openapi/runtime's default JSONConsumer (json.go: encoding/json without
    DisallowUnknownFields; Harbor's src/server sets no other consumer), so a key the model does not
    have is dropped silently.
    """

    def __init__(self, path: Path = SWAGGER) -> None:
        self.spec = yaml.safe_load(path.read_text())
        fixed = copy.deepcopy(self.spec)
        # Known spec errors (DESIGN.md): Schedule.parameters and RetentionRule.params take booleans
        # and integers (pkg/retention/policy/models.go WithNDaysSinceLastPull: an int).
        fixed["definitions"]["Schedule"]["properties"]["parameters"] = {"type": "object"}
        fixed["definitions"]["RetentionRule"]["properties"]["params"] = {"type": "object"}
        self.fixed = fixed

    def _operation(self, method: str, path: str) -> dict | None:
        for template, operations in self.spec["paths"].items():
            pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
            if re.match(pattern, path) and method.lower() in operations:
                return operations[method.lower()]
        return None

    def _validate(self, document: dict, schema: dict, value: Any) -> None:
        resolver_schema = {**schema, "definitions": document["definitions"]}
        jsonschema.Draft4Validator(resolver_schema).validate(value)

    def request(self, method: str, path: str, body: Any) -> str | None:
        operation = self._operation(method, path)
        if operation is None:
            return f"{method} {path} is not in Harbor's API"
        parameters = [p for p in operation.get("parameters", []) if p.get("in") == "body"]
        if parameters and body is not None:
            try:
                self._validate(self.fixed, parameters[0]["schema"], body)
            except jsonschema.ValidationError as error:
                return f"request body of {method} {path}: {error.message} at {list(error.absolute_path)}"
        return None

    def response(self, method: str, path: str, status: int, body: Any) -> str | None:
        operation = self._operation(method, path)
        schema = ((operation or {}).get("responses", {}).get(str(status)) or {}).get("schema")
        if schema is None or body is None:
            return None
        try:
            self._validate(self.fixed, schema, body)
        except jsonschema.ValidationError as error:
            return f"response of {method} {path} ({status}): {error.message}"
        return None


@dataclass
class Fault:
    """An injected failure for matching requests: a status code, 'drop' (close the connection before
    Harbor acts), 'drop-after' (Harbor acts, the answer is lost) or a delay."""

    method: str
    path_pattern: str
    kind: str | int
    times: int = 1
    delay: float = 0.0


@dataclass
class HarborState:
    admin_password: str
    registries: dict[int, dict] = field(default_factory=dict)
    projects: dict[int, dict] = field(default_factory=dict)
    quotas: dict[int, dict] = field(default_factory=dict)
    configurations: dict[str, Any] = field(default_factory=lambda: {"auth_mode": "db_auth", "oidc_client_secret": ""})
    gc_schedule: dict | None = None
    robots: dict[int, dict] = field(default_factory=dict)
    retentions: dict[int, dict] = field(default_factory=dict)
    users: list[str] = field(default_factory=lambda: ["admin"])
    # GET /system/gc: the GC runs, newest first (handler/gc.go GetGCHistory, model GCHistory).
    gc_history: list[dict] = field(default_factory=list)
    # src/controller/systeminfo/controller.go: "<ReleaseVersion>-<GitCommit>".
    harbor_version: str = "v2.15.2-0ef2e4f3"
    next_id: int = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


class HarborEmulator:
    def __init__(self, admin_password: str = "Harbor12345", validate: bool = True, tls=None) -> None:  # noqa: S107
        """`tls`: an ssl.SSLContext to serve HTTPS with (Harbor behind Traefik, as clients reach it)."""
        self.state = HarborState(admin_password=admin_password)
        self.validator = SwaggerValidator() if validate and SWAGGER.exists() else None
        self.calls: list[tuple[str, str]] = []
        self.queries: list[tuple[str, str, dict]] = []
        self.bodies: list[tuple[str, str, Any]] = []
        self.violations: list[str] = []
        self.faults: list[Fault] = []
        # Seconds Harbor spends pinging the upstream inside a registry POST or PUT (up to ~30 s when
        # the VM's packets are dropped); the request completes even after the client gave up.
        self.ping_delay = 0.0
        # Docker Hub tokens whose login fails (-> 500).
        self.rejected_tokens: set[str] = {"bad-token"}
        # Jobservice's side of a schedule: called ("schedule" | "unschedule", vendor) whenever Harbor
        # would create or remove the periodic job (pkg/scheduler Schedule / UnScheduleByVendor), for a
        # test that keeps jobservice's policies where Harbor does (Redis).
        self.on_schedule: Callable[[str, str], None] | None = None
        self.lock = threading.Lock()
        emulator = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _serve(self, method: str) -> None:
                emulator.handle(self, method)

            def do_GET(self):  # noqa: N802
                self._serve("GET")

            def do_POST(self):  # noqa: N802
                self._serve("POST")

            def do_PUT(self):  # noqa: N802
                self._serve("PUT")

            def do_DELETE(self):  # noqa: N802
                self._serve("DELETE")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            self.url = f"https://localhost:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # Test helpers

    def inject(self, method: str, path_pattern: str, kind: str | int, times: int = 1, delay: float = 0.0) -> None:
        self.faults.append(Fault(method, path_pattern, kind, times, delay))

    def add_user(self, name: str) -> None:
        self.state.users.append(name)

    def add_repository(self, project_name: str, repository: str) -> None:
        project = self.project_by_name(project_name)
        project["repositories"].append(f"{project_name}/{repository}")

    def project_by_name(self, name: str) -> dict:
        return next(p for p in self.state.projects.values() if p["name"] == name)

    def count(self, method: str | None = None, prefix: str = "") -> int:
        return sum(1 for m, p in self.calls if (method is None or m == method) and p.startswith(prefix))

    def switch_database(self) -> None:
        """Harbor started again on a new, empty database, as after `externalServices` or `replicas`
        moved it onto RDS (or back): Harbor's migrations create only the admin user, with the
        password from harbor.yml, and every id sequence starts again (a new PostgreSQL database)."""
        with self.lock:
            self.state = HarborState(admin_password=self.state.admin_password)

    def reset_calls(self) -> None:
        self.calls.clear()
        self.queries.clear()
        self.bodies.clear()

    # HTTP

    def handle(self, handler: http.server.BaseHTTPRequestHandler, method: str) -> None:
        parts = urllib.parse.urlsplit(handler.path)
        path = parts.path.removeprefix("/api/v2.0")
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(parts.query).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        with self.lock:
            self.calls.append((method, path))
            self.queries.append((method, path, query))
            fault = self._take_fault(method, path)
        if fault is not None and fault.kind != "drop-after":
            if fault.delay:
                time.sleep(fault.delay)
            if fault.kind == "drop":
                handler.close_connection = True
                handler.connection.shutdown(2)
                return
            if isinstance(fault.kind, int):
                message = "internal server error" if fault.kind >= 500 else "injected"
                return self._send(handler, fault.kind, {"errors": [{"code": "INJECTED", "message": message}]})
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return self._send(handler, 400, _errors("BAD_REQUEST", "invalid JSON"))
        with self.lock:
            self.bodies.append((method, path, body))
        if path != "/health" and not self._authorised(handler):
            return self._send(handler, 401, _errors("UNAUTHORIZED", "unauthorized"))
        if self.validator is not None:
            problem = self.validator.request(method, path, body)
            if problem:
                self.violations.append(problem)
                return self._send(handler, 422, _errors("SPEC_VIOLATION", problem))
        if self.ping_delay and method in ("POST", "PUT") and re.match(r"^/registries(/\d+)?$", path):
            time.sleep(self.ping_delay)  # outside the lock: Harbor serves other requests meanwhile
        with self.lock:
            status, payload, headers = self.route(method, path, query, body, handler.headers)
        if self.validator is not None and 200 <= status < 300:
            problem = self.validator.response(method, path, status, payload)
            if problem:
                self.violations.append(problem)
        if fault is not None and fault.kind == "drop-after":
            # Harbor did the work; the answer is lost on the way (proxy restart, network).
            handler.close_connection = True
            handler.connection.shutdown(2)
            return
        self._send(handler, status, payload, headers)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.method == method and re.search(fault.path_pattern, path):
                fault.times -= 1
                return fault
        return None

    def _authorised(self, handler) -> bool:
        header = handler.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user == "admin" and password == self.state.admin_password

    @staticmethod
    def _send(handler, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        try:
            handler.send_response(status)
            for key, value in (headers or {}).items():
                handler.send_header(key, value)
            if data:
                handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the client gave up; what was done stays done

    # Harbor's behaviour

    def route(self, method: str, path: str, query: dict, body: Any, headers) -> tuple[int, Any, dict]:
        segments = path.strip("/").split("/")
        if path == "/health":
            return 200, {"status": "healthy", "components": [{"name": "core", "status": "healthy"}]}, {}
        if segments[0] == "registries":
            return self.registries(method, segments[1:], query, body)
        if segments[0] == "projects":
            return self.projects(method, segments[1:], query, body, headers)
        if segments[0] == "quotas":
            return self.quotas(method, segments[1:], query, body)
        if path == "/configurations":
            return self.configurations(method, body)
        if path == "/system/gc/schedule":
            return self.gc(method, body)
        if path == "/system/gc" and method == "GET":
            return self.page(list(self.state.gc_history), query)
        if path == "/systeminfo" and method == "GET":
            return 200, {"harbor_version": self.state.harbor_version, "auth_mode": self.state.configurations["auth_mode"]}, {}
        if segments[0] == "robots":
            return self.robots(method, segments[1:], body)
        if segments[0] == "retentions":
            return self.retentions(method, segments[1:], body)
        return 404, _errors("NOT_FOUND", f"{path} not found"), {}

    @staticmethod
    def page(items: list, query: dict) -> tuple[int, list, dict]:
        size = min(int(query.get("page_size", 10)), 100)
        number = int(query.get("page", 1))
        return 200, items[(number - 1) * size : number * size], {"X-Total-Count": str(len(items))}

    @staticmethod
    def filter_name(items: list[dict], query: dict, key: str = "name") -> list[dict]:
        if "q" in query:
            match = re.match(r"^name=(~?)(.*)$", query["q"])
            if match and match.group(1):
                return [i for i in items if match.group(2) in i[key]]
            if match:
                return [i for i in items if i[key] == match.group(2)]
        if "name" in query:  # fuzzy, as Harbor's own `name` parameter is
            return [i for i in items if query["name"] in i[key]]
        return items

    def registry_problem(self, registry: dict) -> tuple[int, Any, dict] | None:
        """src/controller/registry/controller.go validate: name length, then the upstream health check."""
        if not registry["name"]:
            return 400, _errors("BAD_REQUEST", "name cannot be empty"), {}
        if len(registry["name"]) > 64:
            return 400, _errors("BAD_REQUEST", "the max length of name is 64"), {}
        if registry["type"] not in PERMITTED_PROXY_TYPES | OTHER_ADAPTER_TYPES:
            return 400, _errors("BAD_REQUEST", f"adapter factory for {registry['type']} not found"), {}
        credential = registry.get("credential") or {}
        if registry["type"] == "docker-hub" and credential.get("access_secret") in self.rejected_tokens:
            # The docker-hub adapter logs in to hub.docker.com and a failed login surfaces as an
            # error, which Harbor answers with 500 (pkg/reg/adapter/dockerhub/client.go).
            return 500, _errors("UNKNOWN", "internal server error"), {}
        if "unreachable" in registry["url"]:
            return 400, _errors("BAD_REQUEST", "the registry is unhealthy"), {}
        return None

    def registries(self, method: str, rest: list[str], query: dict, body: Any) -> tuple[int, Any, dict]:
        state = self.state
        if not rest and method == "POST":
            # handler/registry.go CreateRegistry: only the model's fields are taken.
            credential = body.get("credential") or {"type": "basic", "access_key": "", "access_secret": ""}
            registry = {
                "name": body.get("name", ""),
                "type": body.get("type", ""),
                "url": body.get("url", ""),
                "description": body.get("description", ""),
                "insecure": body.get("insecure", False),
                "credential": dict(credential),
                "ca_certificate": body.get("ca_certificate") or "",
                "status": "healthy",
            }
            problem = self.registry_problem(registry)
            if problem:
                return problem
            # The name is unique in the database: the conflict shows after the health check.
            if any(r["name"] == registry["name"] for r in state.registries.values()):
                return 409, _errors("CONFLICT", f"registry {registry['name']} already exists"), {}
            registry_id = state.new_id()
            state.registries[registry_id] = {"id": registry_id, **registry}
            return 201, None, {"Location": f"/api/v2.0/registries/{registry_id}"}
        if not rest and method == "GET":
            items = [self.shown_registry(r) for r in state.registries.values()]
            return self.page(self.filter_name(items, query), query)
        registry = state.registries.get(int(rest[0])) if rest and rest[0].isdigit() else None
        if registry is None:
            return 404, _errors("NOT_FOUND", "registry not found"), {}
        if method == "GET":
            return 200, self.shown_registry(registry), {}
        if method == "PUT":
            # handler/registry.go UpdateRegistry: each field changes only when sent; the stored
            # secret stays unless access_secret is sent (whatever happens to the URL). A nested
            # `credential` is no field of RegistryUpdate: ignored.
            updated = copy.deepcopy(registry)
            for key in ("name", "description", "url", "insecure", "ca_certificate"):
                if key in body:
                    updated[key] = body[key]
            for source, target in (("credential_type", "type"), ("access_key", "access_key"), ("access_secret", "access_secret")):
                if source in body:
                    updated["credential"][target] = body[source]
            problem = self.registry_problem(updated)
            if problem:
                return problem
            if any(r["name"] == updated["name"] and r["id"] != registry["id"] for r in state.registries.values()):
                return 409, _errors("CONFLICT", f"registry {updated['name']} already exists"), {}
            registry.update(updated)
            return 200, None, {}
        if method == "DELETE":
            if any(p["registry_id"] == registry["id"] for p in state.projects.values()):
                return 412, _errors("PRECONDITION", f"registry {registry['id']} is referenced by projects"), {}
            del state.registries[registry["id"]]
            return 200, None, {}
        return 405, _errors("METHOD_NOT_ALLOWED", method), {}

    @staticmethod
    def shown_registry(registry: dict) -> dict:
        """handler/replication.go convertRegistry: secret masked, ca_certificate only when set."""
        shown = copy.deepcopy(registry)
        if shown["credential"].get("access_secret"):
            shown["credential"]["access_secret"] = MASK
        if not shown.get("ca_certificate"):
            shown.pop("ca_certificate", None)
        return shown

    def projects(self, method: str, rest: list[str], query: dict, body: Any, headers) -> tuple[int, Any, dict]:
        state = self.state
        if not rest and method == "POST":
            name = body["project_name"]
            if not PROJECT_NAME_RE.match(name) or len(name) > 255:
                return 400, _errors("BAD_REQUEST", "project name is invalid"), {}
            metadata = dict(body.get("metadata") or {"public": "false"})
            registry_id = body.get("registry_id")
            # handler/project.go validateProjectReq.
            if registry_id is not None:
                if registry_id <= 0:
                    return 400, _errors("BAD_REQUEST", f"{registry_id} is invalid value of registry_id"), {}
                registry = state.registries.get(registry_id)
                if registry is None:
                    # A failed registry lookup comes back as a plain error: 500, message replaced.
                    return 500, _errors("UNKNOWN", "internal server error"), {}
                if registry["type"] not in PERMITTED_PROXY_TYPES:
                    return 400, _errors("BAD_REQUEST", f"unsupported registry type {registry['type']}"), {}
                for key in ("proxy_speed_kb", "max_upstream_conn"):
                    if key in metadata and not _is_int32(metadata[key]):
                        return 400, _errors("BAD_REQUEST", f"metadata.{key} should be an int32, but got '{metadata[key]}'"), {}
            storage = body.get("storage_limit", -1)
            if storage > MAX_STORAGE_BYTES:
                return 400, _errors("BAD_REQUEST", "storage limit is out of range"), {}
            if any(p["name"] == name for p in state.projects.values()):
                return 409, _errors("CONFLICT", f"The project named {name} already exists"), {}
            metadata.pop("retention_id", None)
            project_id = state.new_id()
            state.projects[project_id] = {
                "project_id": project_id,
                "name": name,
                "registry_id": registry_id or 0,
                "metadata": metadata,
                "repositories": [],
            }
            quota_id = state.new_id()
            state.quotas[quota_id] = {
                "id": quota_id,
                "ref": {"id": project_id, "name": name, "owner_name": "admin"},
                "hard": {"storage": storage},
                "used": {"storage": 0},
            }
            if registry_id:
                # handler/project.go CreateProject: a proxy project gets Harbor's default policy,
                # keep what was pulled in the last 7 days (policy.WithNDaysSinceLastPull).
                retention_id = self.add_retention(default_retention(project_id, 7))
                metadata["retention_id"] = str(retention_id)
            location = name if headers.get("X-Resource-Name-In-Location") == "true" else str(project_id)
            return 201, None, {"Location": f"/api/v2.0/projects/{location}"}
        if not rest and method == "GET":
            items = [self.shown_project(p) for p in state.projects.values()]
            return self.page(self.filter_name(items, query), query)
        by_name = headers.get("X-Is-Resource-Name") == "true" or not rest[0].isdigit()
        project = next(
            (p for p in state.projects.values() if (p["name"] == rest[0] if by_name else p["project_id"] == int(rest[0]))), None
        )
        if project is None:
            return 404, _errors("NOT_FOUND", f"project {rest[0]} not found"), {}
        if len(rest) >= 2 and rest[1] == "repositories":
            return self.repositories(method, project, rest[2:], query)
        if method == "GET":
            return 200, self.shown_project(project), {}
        if method == "PUT":
            if body.get("registry_id") not in (None, project["registry_id"]):
                return 400, _errors("BAD_REQUEST", "the registry of a proxy-cache project cannot be changed"), {}
            metadata = body.get("metadata") or {}
            for key in ("proxy_speed_kb", "max_upstream_conn"):
                if key in metadata and not _is_int32(metadata[key]):
                    return 400, _errors("BAD_REQUEST", f"metadata.{key} should be an int32, but got '{metadata[key]}'"), {}
            project["metadata"].update(metadata)
            return 200, None, {}
        if method == "DELETE":
            if project["repositories"]:
                return 412, _errors("PRECONDITION", f"the project {project['name']} contains repositories"), {}
            del state.projects[project["project_id"]]
            state.quotas = {k: q for k, q in state.quotas.items() if q["ref"]["id"] != project["project_id"]}
            return 200, None, {}
        return 405, _errors("METHOD_NOT_ALLOWED", method), {}

    @staticmethod
    def shown_project(project: dict) -> dict:
        shown = {k: v for k, v in project.items() if k != "repositories"}
        shown["repo_count"] = len(project["repositories"])
        return shown

    def repositories(self, method: str, project: dict, rest: list[str], query: dict) -> tuple[int, Any, dict]:
        if not rest and method == "GET":
            return self.page([{"name": name, "project_id": project["project_id"]} for name in project["repositories"]], query)
        if rest and method == "DELETE":
            # Harbor wants the repository name URL-encoded twice; one decoding happened in routing.
            name = urllib.parse.unquote(urllib.parse.unquote(rest[0]))
            full = f"{project['name']}/{name}"
            if full not in project["repositories"]:
                return 404, _errors("NOT_FOUND", f"repository {full} not found"), {}
            project["repositories"].remove(full)
            return 200, None, {}
        return 405, _errors("METHOD_NOT_ALLOWED", method), {}

    def quotas(self, method: str, rest: list[str], query: dict, body: Any) -> tuple[int, Any, dict]:
        if not rest and method == "GET":
            items = [
                q for q in self.state.quotas.values() if str(q["ref"]["id"]) == str(query.get("reference_id", q["ref"]["id"]))
            ]
            return self.page(items, query)
        quota = self.state.quotas.get(int(rest[0])) if rest and rest[0].isdigit() else None
        if quota is None:
            return 404, _errors("NOT_FOUND", "quota not found"), {}
        if method == "PUT":
            quota["hard"] = dict(body["hard"])
            return 200, None, {}
        return 200, quota, {}

    def configurations(self, method: str, body: Any) -> tuple[int, Any, dict]:
        config = self.state.configurations
        if method == "GET":
            return 200, {k: {"value": v, "editable": True} for k, v in config.items() if k != "oidc_client_secret"}, {}
        if "auth_mode" in body and body["auth_mode"] != config["auth_mode"] and len(self.state.users) > 1:
            return 400, _errors("BAD_REQUEST", "auth mode can not be modified as new users have been inserted into db"), {}
        config.update(body)
        return 200, None, {}

    def gc(self, method: str, body: Any) -> tuple[int, Any, dict]:
        if method == "GET":
            # handler/gc.go GetGCSchedule: an empty 200 without a schedule; otherwise a GCHistory
            # whose parameters are a JSON *string* (handler/model/gc.go GCSchedule.ToSwagger).
            schedule = self.state.gc_schedule
            if schedule is None:
                return 200, None, {}
            return (
                200,
                {
                    "id": schedule["id"],
                    "job_name": "",
                    "job_kind": schedule["schedule"]["cron"],
                    "job_parameters": json.dumps(schedule["parameters"]),
                    "job_status": "",
                    "deleted": False,
                    "schedule": {**schedule["schedule"], "next_scheduled_time": "2026-01-04T03:00:00.000Z"},
                    "creation_time": "2026-01-01T00:00:00.000Z",
                    "update_time": "2026-01-01T00:00:00.000Z",
                },
                {},
            )
        # handler/gc.go: a schedule is replaced as a whole, DeleteSchedule then createSchedule
        # (updateSchedule), so jobservice's periodic job is made again even for the same cron.
        if self.state.gc_schedule is not None and self.state.gc_schedule["schedule"]["type"] not in ("None", "Manual"):
            self._scheduled("unschedule", "GARBAGE_COLLECTION")
        if body["schedule"]["type"] not in ("None", "Manual"):
            self._scheduled("schedule", "GARBAGE_COLLECTION")
        if body["schedule"]["type"] == "None":
            self.state.gc_schedule = None
        else:
            self.state.gc_schedule = {
                "id": 1,
                "schedule": dict(body["schedule"]),
                "parameters": dict(body.get("parameters") or {}),
            }
        return (201 if method == "POST" else 200), None, {}

    def robots(self, method: str, rest: list[str], body: Any) -> tuple[int, Any, dict]:
        """Harbor v2.15.2's robot API (handler/robot.go, controller/robot/controller.go), system robots.

        The stored name has no prefix; every answer shows it with `robot$` (controller populate).
        The secret is answered on create only. A permission naming a missing project fails the
        create with 404 (toScope); the request's transaction leaves no robot behind.
        """
        robots = self.state.robots
        if not rest and method == "POST":
            if not PROJECT_NAME_RE.match(body.get("name", "")):  # validateName: the same pattern
                return 400, _errors("BAD_REQUEST", "robot name is not in lower case or contains illegal characters"), {}
            permissions = body.get("permissions") or []
            if body.get("level") not in ("system", "project") or not permissions or not all(p.get("access") for p in permissions):
                return 400, _errors("BAD_REQUEST", "bad request empty permission"), {}
            if body["level"] == "project" and len(permissions) > 1:
                return 400, _errors("BAD_REQUEST", "bad request permission"), {}
            if robot_access_problem(permissions):
                return 400, _errors("BAD_REQUEST", robot_access_problem(permissions)), {}
            names = {p["name"] for p in self.state.projects.values()}
            missing = [p["namespace"] for p in permissions if p.get("kind") == "project" and p["namespace"] not in names]
            if missing:
                return 404, _errors("NOT_FOUND", f"project {missing[0]} not found"), {}
            if any(r["name"] == body["name"] for r in robots.values()):
                return 409, _errors("CONFLICT", f"robot account 0:{body['name']} already exists"), {}
            robot_id = self.state.new_id()
            secret = base64.b32encode(robot_id.to_bytes(4, "big") * 5).decode().rstrip("=")  # Harbor: 32 random chars
            robots[robot_id] = {"id": robot_id, "name": body["name"], "level": body["level"], "secret": secret}
            robots[robot_id].update(description=body.get("description", ""), duration=body.get("duration", -1))
            robots[robot_id].update(permissions=copy.deepcopy(permissions), disable=bool(body.get("disable")))
            created = {"id": robot_id, "name": f"robot${body['name']}", "secret": secret, "expires_at": -1}
            created["creation_time"] = "2026-11-28T06:00:00.000Z"
            return 201, created, {"Location": f"/api/v2.0/robots/{robot_id}"}
        robot = robots.get(int(rest[0])) if rest and rest[0].isdigit() else None
        if not rest and method == "GET":
            return self.page([self.shown_robot(r) for r in robots.values()], {})
        if robot is None:
            return 404, _errors("NOT_FOUND", f"robot {rest[0] if rest else ''} not found"), {}
        if method == "GET":
            return 200, self.shown_robot(robot), {}
        if method == "PUT":
            if body.get("name") != f"robot${robot['name']}" or body.get("level") != robot["level"]:
                return 400, _errors("BAD_REQUEST", "cannot update the level or name of robot"), {}
            if robot_access_problem(body.get("permissions") or []):
                return 400, _errors("BAD_REQUEST", robot_access_problem(body.get("permissions") or [])), {}
            robot.update(description=body.get("description", ""), permissions=copy.deepcopy(body.get("permissions") or []))
            return 200, None, {}
        if method == "DELETE":
            del robots[robot["id"]]
            return 200, None, {}
        return 405, _errors("METHOD_NOT_ALLOWED", method), {}

    def shown_robot(self, robot: dict) -> dict:
        names = {p["name"] for p in self.state.projects.values()}
        # Permissions on a project that is gone are not listed (controller populatePermissions).
        permissions = [p for p in robot["permissions"] if p.get("kind") != "project" or p["namespace"] in names]
        shown = {k: v for k, v in robot.items() if k != "secret"}
        return {**shown, "name": f"robot${robot['name']}", "permissions": permissions, "editable": True, "expires_at": -1}

    def _scheduled(self, action: str, vendor: str) -> None:
        if self.on_schedule is not None:
            self.on_schedule(action, vendor)

    def add_retention(self, policy: dict) -> int:
        retention_id = self.state.new_id()
        self.state.retentions[retention_id] = {**copy.deepcopy(policy), "id": retention_id}
        # controller/retention CreateRetention: a schedule trigger with a cron is scheduled at once.
        if retention_cron(policy):
            self._scheduled("schedule", f"RETENTION:{retention_id}")
        return retention_id

    def retentions(self, method: str, rest: list[str], body: Any) -> tuple[int, Any, dict]:
        """handler/retention.go: Create refuses a second policy for a project; Update replaces it."""
        state = self.state
        if not rest and method == "POST":
            project = state.projects.get((body.get("scope") or {}).get("ref", 0))
            if project is None:
                return 400, _errors("BAD_REQUEST", "invalid Project id"), {}
            if project["metadata"].get("retention_id"):
                return (
                    400,
                    _errors(
                        "BAD_REQUEST",
                        f"project {project['project_id']} already has retention policy {project['metadata']['retention_id']}",
                    ),
                    {},
                )
            retention_id = self.add_retention(body)
            project["metadata"]["retention_id"] = str(retention_id)
            return 201, None, {"Location": f"/api/v2.0/retentions/{retention_id}"}
        policy = state.retentions.get(int(rest[0])) if rest and rest[0].isdigit() else None
        if policy is None:
            return 404, _errors("NOT_FOUND", "retention policy not found"), {}
        if method == "GET":
            return 200, copy.deepcopy(policy), {}
        if method == "PUT":
            # controller/retention UpdateRetention: the schedule changes only when the cron does.
            before, after = retention_cron(policy), retention_cron(body)
            state.retentions[policy["id"]] = {**copy.deepcopy(body), "id": policy["id"]}
            if before != after:
                if before:
                    self._scheduled("unschedule", f"RETENTION:{policy['id']}")
                if after:
                    self._scheduled("schedule", f"RETENTION:{policy['id']}")
            return 200, None, {}
        return 405, _errors("METHOD_NOT_ALLOWED", method), {}


def retention_cron(policy: dict) -> str:
    """The cron of a retention policy's schedule trigger ('' without one)."""
    trigger = policy.get("trigger") or {}
    return (trigger.get("settings") or {}).get("cron", "") if trigger.get("kind") == "Schedule" else ""


def default_retention(project_id: int, days: int) -> dict:
    """pkg/retention/policy/models.go WithNDaysSinceLastPull, as the API shows it.

    Written out here, not imported from components.harbor_provider, on purpose (as with the proxy
    types above): the emulator stands for Harbor, so a wrong policy in our code must disagree with it."""
    return {
        "algorithm": "or",
        "rules": [
            {
                "id": 1,
                "priority": 1,
                "disabled": False,
                "action": "retain",
                "template": "nDaysSinceLastPull",
                "params": {"nDaysSinceLastPull": days},
                "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "**"}],
                "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]},
            }
        ],
        "trigger": {"kind": "Schedule", "settings": {"cron": "0 0 0 * * *"}},
        "scope": {"level": "project", "ref": project_id},
    }


def _is_int32(text: Any) -> bool:
    """strconv.ParseInt(text, 10, 32) succeeds."""
    return isinstance(text, str) and re.fullmatch(r"[+-]?[0-9]+", text) is not None and -(2**31) <= int(text) < 2**31


def _errors(code: str, message: str) -> dict:
    return {"errors": [{"code": code, "message": message}]}
