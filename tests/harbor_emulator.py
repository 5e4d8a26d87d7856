"""A stateful Harbor API emulator: a real HTTP server on loopback with Harbor's semantics as
DESIGN.md records them (201 + Location, 409, 412, fuzzy `name` vs exact `q=name=`, paging, masked
secrets, flat registry PUT, string metadata, 401 without auth, 400 for an unhealthy upstream or an
unsupported proxy type, the auth-mode lock). Every request body and response is validated against
Harbor v2.15.2's swagger when shared/reference holds it; a request that does not fit fails the call
with 422 and is recorded in `violations`, so a test sees it.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SWAGGER = Path(__file__).resolve().parents[2] / "shared" / "reference" / "harbor-v2.15.2-swagger.yaml"
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


class SwaggerValidator:
    """Validates bodies against the spec's definitions; request bodies also reject unknown keys."""

    def __init__(self, path: Path = SWAGGER) -> None:
        self.spec = yaml.safe_load(path.read_text())
        strict = copy.deepcopy(self.spec)
        for definition in strict["definitions"].values():
            if "properties" in definition and "additionalProperties" not in definition:
                definition["additionalProperties"] = False
        # Known spec error (DESIGN.md): Schedule.parameters takes booleans and integers.
        strict["definitions"]["Schedule"]["properties"]["parameters"] = {"type": "object"}
        self.strict = strict

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
                self._validate(self.strict, parameters[0]["schema"], body)
            except jsonschema.ValidationError as error:
                return f"request body of {method} {path}: {error.message} at {list(error.absolute_path)}"
        return None

    def response(self, method: str, path: str, status: int, body: Any) -> str | None:
        operation = self._operation(method, path)
        schema = ((operation or {}).get("responses", {}).get(str(status)) or {}).get("schema")
        if schema is None or body is None:
            return None
        try:
            self._validate(self.spec, schema, body)
        except jsonschema.ValidationError as error:
            return f"response of {method} {path} ({status}): {error.message}"
        return None


@dataclass
class Fault:
    """An injected failure for matching requests: status code, 'drop' (close the connection) or a delay."""

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
    users: list[str] = field(default_factory=lambda: ["admin"])
    next_id: int = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


class HarborEmulator:
    def __init__(self, admin_password: str = "Harbor12345", validate: bool = True) -> None:  # noqa: S107
        self.state = HarborState(admin_password=admin_password)
        self.validator = SwaggerValidator() if validate and SWAGGER.exists() else None
        self.calls: list[tuple[str, str]] = []
        self.queries: list[tuple[str, str, dict]] = []
        self.violations: list[str] = []
        self.faults: list[Fault] = []
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

    def reset_calls(self) -> None:
        self.calls.clear()
        self.queries.clear()

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
        if fault is not None:
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
        if path != "/health" and not self._authorised(handler):
            return self._send(handler, 401, _errors("UNAUTHORIZED", "unauthorized"))
        if self.validator is not None:
            problem = self.validator.request(method, path, body)
            if problem:
                self.violations.append(problem)
                return self._send(handler, 422, _errors("SPEC_VIOLATION", problem))
        with self.lock:
            status, payload, headers = self.route(method, path, query, body, handler.headers)
        if self.validator is not None and 200 <= status < 300:
            problem = self.validator.response(method, path, status, payload)
            if problem:
                self.violations.append(problem)
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
        handler.send_response(status)
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        if data:
            handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

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
        if segments[0] == "robots":
            return self.robots(method, segments[1:], body)
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

    def registries(self, method: str, rest: list[str], query: dict, body: Any) -> tuple[int, Any, dict]:
        state = self.state
        if not rest and method == "POST":
            if any(r["name"] == body["name"] for r in state.registries.values()):
                return 409, _errors("CONFLICT", f"registry {body['name']} already exists"), {}
            if body["type"] not in PERMITTED_PROXY_TYPES | OTHER_ADAPTER_TYPES:
                return 400, _errors("BAD_REQUEST", f"adapter factory for {body['type']} not found"), {}
            if "unreachable" in body["url"]:
                return 400, _errors("BAD_REQUEST", "the registry is unhealthy"), {}
            registry_id = state.new_id()
            credential = body.get("credential") or {"type": "basic", "access_key": "", "access_secret": ""}
            state.registries[registry_id] = {
                "id": registry_id,
                "name": body["name"],
                "type": body["type"],
                "url": body["url"],
                "description": body.get("description", ""),
                "insecure": body.get("insecure", False),
                "credential": dict(credential),
                "status": "healthy",
            }
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
            if "credential" in body:
                return 400, _errors("BAD_REQUEST", "unknown field credential"), {}
            old_url = registry["url"]
            for key in ("name", "description", "url", "insecure"):
                if key in body:
                    registry[key] = body[key]
            if "access_secret" in body and body["access_secret"] != MASK:
                registry["credential"] = {
                    "type": body.get("credential_type", "basic"),
                    "access_key": body.get("access_key", ""),
                    "access_secret": body["access_secret"],
                }
            elif registry["url"] != old_url:
                registry["credential"]["access_secret"] = ""  # Harbor clears it when the URL changes
            return 200, None, {}
        if method == "DELETE":
            if any(p["registry_id"] == registry["id"] for p in state.projects.values()):
                return 412, _errors("PRECONDITION", f"registry {registry['id']} is referenced by projects"), {}
            del state.registries[registry["id"]]
            return 200, None, {}
        return 405, _errors("METHOD_NOT_ALLOWED", method), {}

    @staticmethod
    def shown_registry(registry: dict) -> dict:
        shown = copy.deepcopy(registry)
        if shown["credential"].get("access_secret"):
            shown["credential"]["access_secret"] = MASK
        return shown

    def projects(self, method: str, rest: list[str], query: dict, body: Any, headers) -> tuple[int, Any, dict]:
        state = self.state
        if not rest and method == "POST":
            name = body["project_name"]
            if not PROJECT_NAME_RE.match(name) or len(name) > 255:
                return 400, _errors("BAD_REQUEST", "project name is invalid"), {}
            if any(p["name"] == name for p in state.projects.values()):
                return 409, _errors("CONFLICT", f"The project named {name} already exists"), {}
            registry_id = body.get("registry_id")
            if registry_id:
                registry = state.registries.get(registry_id)
                if registry is None:
                    return 400, _errors("BAD_REQUEST", f"registry {registry_id} not found"), {}
                if registry["type"] not in PERMITTED_PROXY_TYPES:
                    return 400, _errors("BAD_REQUEST", f"unsupported registry type {registry['type']}"), {}
            project_id = state.new_id()
            state.projects[project_id] = {
                "project_id": project_id,
                "name": name,
                "registry_id": registry_id or 0,
                "metadata": dict(body.get("metadata") or {"public": "false"}),
                "repositories": [],
            }
            quota_id = state.new_id()
            state.quotas[quota_id] = {
                "id": quota_id,
                "ref": {"id": project_id, "name": name, "owner_name": "admin"},
                "hard": {"storage": body.get("storage_limit", -1)},
                "used": {"storage": 0},
            }
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
            project["metadata"].update(body.get("metadata") or {})
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
            return 200, self.state.gc_schedule, {}
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


def _errors(code: str, message: str) -> dict:
    return {"errors": [{"code": code, "message": message}]}
