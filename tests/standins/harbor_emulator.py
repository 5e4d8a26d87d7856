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
import hashlib
import http.server
import json
import re
import ssl
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
# The robot accesses Harbor accepts per permission kind: src/common/rbac/const.go PoliciesMap plus
# NolimitProvider.GetPermissions (handler/robot.go validate -> containsAccess), "resource:action".
ROBOT_ACCESS = {
    "project": frozenset(
        f"{resource}:{action}"
        for resource, actions in {
            "accessory": "list",
            "artifact-addition": "read",
            "artifact-label": "create delete",
            "artifact": "create delete list read",
            "export-cve": "create read",
            "immutable-tag": "create delete list update",
            "label": "create delete list read update",
            "log": "list",
            "member": "create delete list read update",
            "metadata": "create delete list read update",
            "notification-policy": "create delete list read update",
            "preheat-policy": "create delete list read update",
            "project": "delete read update",
            "quota": "read",
            "repository": "delete list pull push read update",
            "robot": "create delete list read",
            "sbom": "create read stop",
            "scan": "create read stop",
            "scanner": "create read",
            "tag-retention": "create delete list read update",
            "tag": "create delete list",
        }.items()
        for action in actions.split()
    ),
    "system": frozenset(
        f"{resource}:{action}"
        for resource, actions in {
            "audit-log": "list",
            "catalog": "read",
            "garbage-collection": "create list read stop update",
            "jobservice-monitor": "list stop",
            "label": "create delete read update",
            "ldap-user": "create list",
            "preheat-instance": "create delete list read update",
            "project": "create list",
            "purge-audit": "create list read stop update",
            "quota": "list read update",
            "registry": "create delete list read update",
            "replication-adapter": "list",
            "replication-policy": "create delete list read update",
            "replication": "create list read",
            "robot": "create delete list read",
            "scan-all": "create read stop update",
            "scanner": "create delete list read update",
            "security-hub": "list read",
            "system-volumes": "read",
            "user-group": "create delete list read update",
            "user": "create delete list read update",
        }.items()
        for action in actions.split()
    ),
}
# The keys of Harbor's typed models: what is not one of them is dropped on the way in (the handler
# copies the request into the model, json.Marshal/Unmarshal through it: lib.JSONCopy, toCfgMap).
# swagger ProjectMetadata (handler/project.go CreateProject/UpdateProject lib.JSONCopy).
PROJECT_METADATA_KEYS = frozenset(
    {
        "public",
        "enable_content_trust",
        "enable_content_trust_cosign",
        "prevent_vul",
        "severity",
        "auto_scan",
        "auto_sbom_generation",
        "reuse_sys_cve_allowlist",
        "retention_id",
        "proxy_speed_kb",
        "max_upstream_conn",
        "proxy_cache_local_on_not_found",
    }
)
# User-scope configuration and their defaults (src/lib/config/metadata/metadatalist.go ConfigList),
# the ones GET /configurations shows on a fresh Harbor (PasswordType items are never shown:
# controller/config ConvertForGet). Harbor's PUT takes the keys of swagger `Configurations`
# (handler/config.go toCfgMap) and drops the rest.
CONFIG_DEFAULTS: dict[str, Any] = {
    "auth_mode": "db_auth",
    "primary_auth_mode": False,
    "project_creation_restriction": "everyone",
    "read_only": False,
    "self_registration": False,
    "token_expiration": 30,
    "robot_token_duration": 30,
    "robot_name_prefix": "robot$",
    "notification_enable": True,
    "quota_per_project_enable": True,
    "storage_per_project": -1,
    "session_timeout": 60,
    "oidc_name": "",
    "oidc_endpoint": "",
    "oidc_client_id": "",
    "oidc_groups_claim": "",
    "oidc_admin_group": "",
    "oidc_group_filter": "",
    "oidc_scope": "",
    "oidc_user_claim": "",
    "oidc_verify_cert": True,
    "oidc_auto_onboard": False,
    "oidc_extra_redirect_parms": "{}",
    "oidc_logout": False,
}
PASSWORD_CONFIG_KEYS = frozenset({"oidc_client_secret", "ldap_search_password", "uaa_client_secret"})
# lib/config/metadata/type.go AuthModeType and ProjectCreationRestrictionType validate.
AUTH_MODES = ("db_auth", "ldap_auth", "uaa_auth", "http_auth", "oidc_auth")
PROJECT_CREATION_RESTRICTIONS = ("adminonly", "everyone")
# handler/gc.go kick: the schedule types it acts on (any other type is a silent no-op).
GC_SCHEDULED_TYPES = ("Hourly", "Daily", "Weekly", "Custom")
# robfig/cron's 6-field parser (common/utils/utils.go CronParser): field bounds and names.
CRON_BOUNDS = (
    (0, 59, ()),
    (0, 59, ()),
    (0, 23, ()),
    (1, 31, ()),
    (1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    (0, 6, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)


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

    def configuration_keys(self) -> frozenset[str]:
        """The keys of swagger `Configurations`: what Harbor's PUT /configurations keeps."""
        return frozenset(self.spec["definitions"]["Configurations"]["properties"])

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
    Harbor acts), 'drop-after' (Harbor acts, the answer is lost), 'empty-list' (a list that does not
    show yet what a concurrent create made). `delay`: Harbor is busy that long first (outside the
    lock, other requests are served meanwhile); with 'drop-after', a request that Harbor completes
    after a client with a shorter timeout gave up on it and started looking for its result."""

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
    configurations: dict[str, Any] = field(default_factory=lambda: {**CONFIG_DEFAULTS, **dict.fromkeys(PASSWORD_CONFIG_KEYS, "")})
    gc_schedule: dict | None = None
    robots: dict[int, dict] = field(default_factory=dict)
    retentions: dict[int, dict] = field(default_factory=dict)
    users: list[str] = field(default_factory=lambda: ["admin"])
    # GET /system/gc: the GC runs, newest first (handler/gc.go GetGCHistory, model GCHistory).
    gc_history: list[dict] = field(default_factory=list)
    # Retention executions by policy id (swagger RetentionExecution; controller/retention convertExecution).
    retention_executions: dict[int, list[dict]] = field(default_factory=dict)
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
        self.config_keys = (
            self.validator.configuration_keys() if self.validator else frozenset(CONFIG_DEFAULTS) | PASSWORD_CONFIG_KEYS
        )
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

            def do_PATCH(self):  # noqa: N802
                self._serve("PATCH")

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
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.kind != "drop-after":
            if fault.kind == "drop":
                handler.close_connection = True
                handler.connection.shutdown(2)
                return
            if fault.kind == "empty-list":
                # A list answered before another writer's create committed: the race between a
                # name lookup and the POST that follows it (the POST then meets Harbor's 409).
                return self._send(handler, 200, [], {"X-Total-Count": "0"})
            if isinstance(fault.kind, int):
                message = "internal server error" if fault.kind >= 500 else "injected"
                return self._send(handler, fault.kind, {"errors": [{"code": "INJECTED", "message": message}]})
        if raw:
            # A body must be in a type the route consumes, application/json for every Harbor route
            # (go-openapi/runtime middleware/validation.go validateContentType, checked when the
            # request has a body): else 415, errors.InvalidContentType.
            content_type = handler.headers.get("Content-Type", "")
            if content_type.split(";")[0].strip().lower() != "application/json":
                message = f'unsupported media type "{content_type}", only [application/json] are allowed'
                return self._send(handler, 415, _errors("UNSUPPORTED_MEDIA_TYPE", message))
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return self._send(handler, 400, _errors("BAD_REQUEST", "invalid JSON"))
        with self.lock:
            self.bodies.append((method, path, body))
        principal = self._principal(handler)
        if path != "/health" and principal is None:
            return self._send(handler, 401, _errors("UNAUTHORIZED", "unauthorized"))
        if self.validator is not None:
            problem = self.validator.request(method, path, body)
            if problem:
                self.violations.append(problem)
                # go-openapi's router answers a path it has no route for with 404.
                status = 404 if problem.endswith("is not in Harbor's API") else 422
                return self._send(handler, status, _errors("SPEC_VIOLATION", problem))
        if self.ping_delay and method in ("POST", "PUT") and re.match(r"^/registries(/\d+)?$", path):
            time.sleep(self.ping_delay)  # outside the lock: Harbor serves other requests meanwhile
        with self.lock:
            if isinstance(principal, dict):
                status, payload, headers = self.robot_route(principal, method, path, query)
            else:
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

    def _principal(self, handler) -> str | dict | None:
        """Who sends the request: "admin", a robot (its stored dict) or None (no security context).

        A robot logs in with basic auth as `<robot_name_prefix><name>` and its secret, and is refused
        when disabled or expired (src/server/middleware/security/robot.go Generate: no context then).
        """
        header = handler.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        if user == "admin" and password == self.state.admin_password:
            return "admin"
        prefix = self.state.configurations["robot_name_prefix"]
        if not user.startswith(prefix):
            return None
        with self.lock:
            robot = next((r for r in self.state.robots.values() if r["name"] == user.removeprefix(prefix)), None)
        if robot is None or robot["secret"] != password or robot["disable"]:
            return None
        if robot["expires_at"] != -1 and robot["expires_at"] <= time.time():
            return None
        return robot

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
        if method == "GET" and query.get("q"):
            # lib/q/builder.go parseKeywords: every comma-separated item is key=value, both non-empty.
            for item in urllib.parse.unquote(query["q"]).split(","):
                key, equals, value = item.partition("=")
                if not equals or not key or not value:
                    message = 'the query string must contain "=" and the key/value cannot be empty'
                    return 400, _errors("BAD_REQUEST", message), {}
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
            return self.robots(method, segments[1:], query, body)
        if segments[0] == "retentions" and method == "GET" and len(segments) == 3 and segments[2] == "executions":
            return self.retention_executions("admin", int(segments[1]), query) if segments[1].isdigit() else (404, None, {})
        if segments[0] == "retentions":
            return self.retentions(method, segments[1:], body)
        return 404, _errors("NOT_FOUND", f"{path} not found"), {}

    def robot_route(self, robot: dict, method: str, path: str, query: dict) -> tuple[int, Any, dict]:
        """What a robot may call, each with the check its handler makes (Harbor v2.15.2). Any other
        call of a robot is refused with 403: stricter than Harbor where Harbor would allow it, never
        more lenient."""
        if method == "GET" and path == "/projects":
            # handler/project.go ListProjects, the robot branch: no RBAC check, but only the projects
            # its permissions name (all of them when one covers all: namespace "*"), and the public ones.
            # The permissions as its security context holds them (robot_permissions: by project id).
            kinds = [(p["kind"], p["namespace"]) for p in self.robot_permissions(robot)]
            cover_all = ("project", "*") in kinds
            names = {namespace for _, namespace in kinds}
            listed = [
                self.shown_project(p)
                for p in self.state.projects.values()
                if cover_all or p["name"] in names or p["metadata"].get("public") == "true"
            ]
            return self.page(self.filter_name(listed, query), query)
        if method == "GET" and path == "/registries":
            # handler/registry.go ListRegistries: RequireSystemAccess(list, registry).
            if not robot_can(robot, "/system", "registry", "list"):
                return 403, _errors("FORBIDDEN", self.robot_shown_name(robot)), {}
            return self.registries(method, [], query, None)
        if method == "GET" and path == "/system/gc":
            # handler/gc.go GetGCHistory: RequireSystemAccess(list, garbage-collection).
            if not robot_can(robot, "/system", "garbage-collection", "list"):
                return 403, _errors("FORBIDDEN", self.robot_shown_name(robot)), {}
            return self.page(list(self.state.gc_history), query)
        match = re.fullmatch(r"/retentions/(\d+)/executions", path)
        if method == "GET" and match:
            return self.retention_executions(robot, int(match[1]), query)
        return 403, _errors("FORBIDDEN", "not modelled for robots in this emulator: refused"), {}

    def retention_executions(self, principal: str | dict, policy_id: int, query: dict) -> tuple[int, Any, dict]:
        """handler/retention.go ListRetentionExecutions: the policy (a missing one is a 400: the
        manager's "no such Retention policy" wrapped in BadRequestError), then requireAccess(list):
        RequireProjectAccess(scope ref, list, tag-retention) for a project-level policy; then the
        executions, newest start first (pkg/task/dao Execution: StartTime `sort:"default:desc"`)."""
        policy = self.state.retentions.get(policy_id)
        if policy is None:
            return 400, _errors("BAD_REQUEST", f"no such Retention policy with id {policy_id}"), {}
        project_id = (policy.get("scope") or {}).get("ref", 0)
        if principal != "admin" and not robot_can(principal, f"/project/{project_id}", "tag-retention", "list"):
            return 403, _errors("FORBIDDEN", "forbidden"), {}
        executions = sorted(self.state.retention_executions.get(policy_id, []), key=lambda e: e["start_time"], reverse=True)
        return self.page([copy.deepcopy(e) for e in executions], query)

    def add_retention_execution(self, project_name: str, status: str, start_time: str, dry_run: bool = False) -> dict:
        """Test helper: a run of the project's retention policy as jobservice leaves it. Statuses of
        an execution: Running, then Success, Error or Stopped (pkg/task/dao/execution.go refreshStatus)."""
        assert status in ("Running", "Success", "Error", "Stopped"), status
        with self.lock:
            project = self.project_by_name(project_name)
            policy_id = int(project["metadata"]["retention_id"])
            execution = {
                "id": self.state.new_id(),
                "policy_id": policy_id,
                "start_time": start_time,
                "end_time": "" if status == "Running" else start_time,
                "status": status,
                "trigger": "SCHEDULE",
                "dry_run": dry_run,
            }
            self.state.retention_executions.setdefault(policy_id, []).append(execution)
        return execution

    @staticmethod
    def page(items: list, query: dict) -> tuple[int, list, dict]:
        # swagger parameters page (default 1) and page_size (default 10, maximum 100): go-swagger
        # refuses a page_size over 100 with 422 before any handler runs.
        size = int(query.get("page_size", 10))
        if size > 100:
            return 422, _errors("602", "page_size in query should be less than or equal to 100"), {}
        number = int(query.get("page", 1))
        if size <= 0:  # lib/orm: no page size means everything
            return 200, items, {"X-Total-Count": str(len(items))}
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
        """src/controller/registry/controller.go validate: name length, the URL (lib.ValidateHTTPURL,
        which also normalises the stored URL), then the upstream health check."""
        if not registry["name"]:
            return 400, _errors("BAD_REQUEST", "name cannot be empty"), {}
        if len(registry["name"]) > 64:
            return 400, _errors("BAD_REQUEST", "the max length of name is 64"), {}
        url, problem = validate_http_url(registry["url"])
        if problem:
            return 400, _errors("BAD_REQUEST", problem), {}
        registry["url"] = url
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
            # handler/registry.go CreateRegistry: only the model's fields are taken; a CA
            # certificate is checked first (commonhttp.ValidateCACertificate -> 400).
            problem = ca_certificate_problem(body.get("ca_certificate") or "")
            if problem:
                return 400, _errors("BAD_REQUEST", problem), {}
            sent = body.get("credential") or {}
            credential = {key: sent.get(key, "") for key in ("type", "access_key", "access_secret")}
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
            if "ca_certificate" in body:
                problem = ca_certificate_problem(body["ca_certificate"] or "")
                if problem:
                    return 400, _errors("BAD_REQUEST", problem), {}
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
            registry_id = body.get("registry_id")
            # handler/project.go CreateProject: the typed ProjectMetadata (unknown keys dropped), the
            # legacy top-level `public`, "false" when absent and nothing but "true"/"false" taken;
            # the proxy limits only on a proxy project, content trust never on one.
            metadata = typed_metadata(body.get("metadata"))
            if body.get("public") is not None and not metadata.get("public"):
                metadata["public"] = "true" if body["public"] else "false"
            metadata.setdefault("public", "false")
            if metadata["public"] not in ("true", "false"):
                return (
                    400,
                    _errors("BAD_REQUEST", f"metadata.public should only be 'true' or 'false', but got: '{metadata['public']}'"),
                    {},
                )
            if registry_id is None:
                metadata.pop("proxy_speed_kb", None)
                metadata.pop("max_upstream_conn", None)
            else:
                metadata.pop("enable_content_trust", None)
            # handler/project.go validateProjectReq, in its order.
            if metadata.get("retention_id"):
                return (
                    400,
                    _errors(
                        "BAD_REQUEST",
                        "the retention_id in the request's payload when creating a project should be omitted, "
                        "alternatively passing an empty string",
                    ),
                    {},
                )
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
            # CreateProject: absent or 0 takes storage_per_project (quota per project is on by
            # default); validateProjectReq -> quota driver Validate -> lib.ValidateQuotaLimit.
            storage = body.get("storage_limit") or self.state.configurations["storage_per_project"]
            problem = quota_limit_problem(storage)
            if problem:
                return 400, _errors("BAD_REQUEST", problem), {}
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
            # handler/project.go UpdateProject: registry_id and the name are not looked at; the
            # metadata goes through the typed model (unknown keys dropped) and is merged into the
            # stored one (controller/project Update: add new keys, update present ones) with NO
            # check of the values (neither int32 limits nor public's true/false); the proxy limits
            # only on a proxy project, content trust never on one; retention_id must be the one
            # already associated.
            metadata = typed_metadata(body.get("metadata"))
            if project["registry_id"]:
                metadata.pop("enable_content_trust", None)
            else:
                metadata.pop("proxy_speed_kb", None)
                metadata.pop("max_upstream_conn", None)
            if "retention_id" in metadata and metadata["retention_id"] != project["metadata"].get("retention_id"):
                message = (
                    "the retention_id in the request's payload when updating a project should be omitted, "
                    "alternatively passing the one that has already been associated to this project"
                )
                return 400, _errors("BAD_REQUEST", message), {}
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
        """handler/model/project.go ToSwagger copies the stored registry_id, 0 for an ordinary project;
        the generated model (swagger Project.registry_id, not required: `omitempty`) leaves a 0 out."""
        shown = {k: v for k, v in project.items() if k != "repositories" and not (k == "registry_id" and not v)}
        shown["repo_count"] = len(project["repositories"])
        return shown

    def repositories(self, method: str, project: dict, rest: list[str], query: dict) -> tuple[int, Any, dict]:
        if not rest and method == "GET":
            return self.page([{"name": name, "project_id": project["project_id"]} for name in project["repositories"]], query)
        if len(rest) == 1 and method == "DELETE":
            # The router matches the escaped path, so a name's slashes must be encoded (else more
            # segments: no route, 404); go-openapi decodes the parameter once and the handler's
            # Prepare once more (handler/repository.go Prepare -> unescapePathParams).
            name = urllib.parse.unquote(urllib.parse.unquote(rest[0]))
            full = f"{project['name']}/{name}"
            if full not in project["repositories"]:
                return 404, _errors("NOT_FOUND", f"repository {full} not found"), {}
            project["repositories"].remove(full)
            return 200, None, {}
        return 405, _errors("METHOD_NOT_ALLOWED", method), {}

    def quotas(self, method: str, rest: list[str], query: dict, body: Any) -> tuple[int, Any, dict]:
        if not rest and method == "GET":
            # handler/quota.go ListQuotas: filtered by reference and reference_id.
            items = [
                q
                for q in self.state.quotas.values()
                if str(q["ref"]["id"]) == str(query.get("reference_id", q["ref"]["id"]))
                and query.get("reference", "project") == "project"
            ]
            return self.page(items, query)
        quota = self.state.quotas.get(int(rest[0])) if rest and rest[0].isdigit() else None
        if method == "PUT":
            # handler/quota.go UpdateQuota: `hard` required and not empty, then the quota, then
            # the project driver's Validate (controller/quota/driver/project/project.go): storage
            # only, storage present, each limit through lib.ValidateQuotaLimit.
            hard = (body or {}).get("hard") or {}
            if not hard:
                return 400, _errors("BAD_REQUEST", "hard required in body"), {}
            if quota is None:
                return 404, _errors("NOT_FOUND", "quota not found"), {}
            for resource, value in hard.items():
                if resource != "storage":
                    return 400, _errors("BAD_REQUEST", f"resource {resource} not support"), {}
                problem = quota_limit_problem(value)
                if problem:
                    return 400, _errors("BAD_REQUEST", problem), {}
            quota["hard"] = dict(hard)
            return 200, None, {}
        if quota is None:
            return 404, _errors("NOT_FOUND", "quota not found"), {}
        return 200, quota, {}

    def configurations(self, method: str, body: Any) -> tuple[int, Any, dict]:
        """handler/config.go and controller/config/controller.go."""
        config = self.state.configurations
        # authModeCanBeModified: no user but the default admin (user manager Count excludes id 1).
        auth_mode_editable = len(self.state.users) <= 1
        if method == "GET":
            # ConvertForGet: every item but passwords, auth_mode editable only while no user exists.
            shown = {k: {"value": v, "editable": True} for k, v in config.items() if k not in PASSWORD_CONFIG_KEYS}
            shown["auth_mode"]["editable"] = auth_mode_editable
            return 200, shown, {}
        if body is None:
            return 400, _errors("BAD_REQUEST", "Missing configure item"), {}
        # toCfgMap: through the typed Configurations model (pointer fields, omitempty), so keys it
        # lacks and null values are dropped.
        updates = {k: v for k, v in body.items() if k in self.config_keys and v is not None}
        # validateCfg: the auth-mode lock first, then each item's type (lib/config/metadata/type.go).
        if "auth_mode" in updates and updates["auth_mode"] != config["auth_mode"] and not auth_mode_editable:
            return (
                400,
                _errors("BAD_REQUEST", "the auth mode cannot be modified as new users have been inserted into database"),
                {},
            )
        if "auth_mode" in updates and updates["auth_mode"] not in AUTH_MODES:
            return 400, _errors("BAD_REQUEST", f"invalid auth_mode, shoud be one of {', '.join(AUTH_MODES)}"), {}
        restriction = updates.get("project_creation_restriction", "everyone")
        if restriction not in PROJECT_CREATION_RESTRICTIONS:
            return 400, _errors("BAD_REQUEST", "invalid project_creation_restriction, should be adminonly or everyone"), {}
        if "storage_per_project" in updates and quota_limit_problem(updates["storage_per_project"]):
            return 400, _errors("BAD_REQUEST", quota_limit_problem(updates["storage_per_project"])), {}
        for key in ("token_expiration", "robot_token_duration", "session_timeout"):  # verifyValueLengthCfg
            if key in updates and updates[key] <= 0:
                return 400, _errors("BAD_REQUEST", f"the {key} value must be positive"), {}
        config.update(updates)
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
                    # CleanExtraAttrs of the schedule's extras; Go marshals a map with sorted keys.
                    "job_parameters": json.dumps(schedule["parameters"], sort_keys=True, separators=(",", ":")),
                    "job_status": "",
                    "deleted": False,
                    "schedule": {**schedule["schedule"], "next_scheduled_time": "2026-01-04T03:00:00.000Z"},
                    "creation_time": "2026-01-01T00:00:00.000Z",
                    "update_time": "2026-01-01T00:00:00.000Z",
                },
                {},
            )
        # handler/gc.go kick: None deletes the schedule; Hourly/Daily/Weekly/Custom check the
        # parameters, then the cron (updateSchedule -> utils.ValidateCronString), then replace the
        # schedule with extras {delete_untagged, delete_tag, workers} (controller/gc CreateSchedule):
        # a boolean only when sent as one, workers only when sent as a JSON integer in 1..10
        # (json.Number.Int64: 1.0 fails), else 0. Any other type does nothing and still succeeds.
        done = (201 if method == "POST" else 200), None, {}
        schedule = (body or {}).get("schedule") or {}
        kind, cron = schedule.get("type", ""), schedule.get("cron", "")
        parameters = (body or {}).get("parameters") or {}
        # A schedule is replaced as a whole (updateSchedule: DeleteSchedule then createSchedule), so
        # jobservice's periodic job is made again even for the same cron.
        previous = self.state.gc_schedule
        if kind == "None":
            if previous is not None:
                self._scheduled("unschedule", "GARBAGE_COLLECTION")
            self.state.gc_schedule = None
            return done
        if kind not in GC_SCHEDULED_TYPES:
            return done
        workers = parameters.get("workers")
        if isinstance(workers, float):
            return 400, _errors("BAD_REQUEST", "workers should be integer format"), {}
        if isinstance(workers, int) and not isinstance(workers, bool) and not 0 < workers <= 10:
            message = f"Error: Invalid number of workers:{workers}. Workers must be greater than 0 and less than or equal to 10."
            return 400, _errors("BAD_REQUEST", message), {}
        problem = cron_problem(cron)
        if problem:
            return 400, _errors("BAD_REQUEST", f"invalid cron string for scheduled gc: {cron}, error: {problem}"), {}
        extras = {
            key: parameters[key] if isinstance(parameters.get(key), bool) else False for key in ("delete_untagged", "delete_tag")
        }
        extras["workers"] = workers if isinstance(workers, int) and not isinstance(workers, bool) else 0
        if previous is not None:
            self._scheduled("unschedule", "GARBAGE_COLLECTION")
        self._scheduled("schedule", "GARBAGE_COLLECTION")
        self.state.gc_schedule = {"id": 1, "schedule": {"type": kind, "cron": cron}, "parameters": extras}
        return done

    def robots(self, method: str, rest: list[str], query: dict, body: Any) -> tuple[int, Any, dict]:
        """Harbor v2.15.2's robot API (handler/robot.go, controller/robot/controller.go).

        The stored name has no prefix; every answer shows it with the configured prefix
        (robot_shown_name).
        The secret is answered on create and on a refresh without a secret of one's own only. A
        permission naming a missing project fails with 404 (toScope); the request's transaction
        leaves no robot behind.
        """
        robots = self.state.robots
        if not rest and method == "POST":
            body = body or {}
            if not PROJECT_NAME_RE.match(body.get("name") or ""):  # validateName
                return 400, _errors("BAD_REQUEST", "robot name is not in lower case or contains illegal characters"), {}
            # RobotCreate.duration is a plain int64: absent is 0, which validate refuses.
            problem = self.robot_problem(body.get("duration", 0), body.get("level"), body.get("permissions"))
            if problem:
                return problem
            missing = self.missing_project(body["permissions"])
            if missing:
                return missing
            if any(r["name"] == body["name"] for r in robots.values()):
                return 409, _errors("CONFLICT", f"robot account 0:{body['name']} already exists"), {}
            robot_id = self.state.new_id()
            secret = robot_secret(robot_id)
            # CreateRobot takes name, description, duration and permissions; `disable` and
            # `secret` of RobotCreate are not used (a new robot is enabled, its secret generated).
            robots[robot_id] = {
                "id": robot_id,
                "name": body["name"],
                "level": body["level"],
                "secret": secret,
                "description": body.get("description", ""),
                "duration": body["duration"],
                "expires_at": -1 if body["duration"] == -1 else 1796536800 + body["duration"] * 86400,
                "permissions": self.typed_permissions(body["permissions"]),
                "scopes": self.scopes(body["permissions"]),
                "disable": False,
            }
            created = {
                "id": robot_id,
                "name": self.robot_shown_name(robots[robot_id]),
                "secret": secret,
                "expires_at": robots[robot_id]["expires_at"],
            }
            created["creation_time"] = "2026-11-28T06:00:00.000Z"
            return 201, created, {"Location": f"/api/v2.0/robots/{robot_id}"}
        if not rest and method == "GET":
            # ListRobot: without q=Level=... the system robots (project id 0), visible ones.
            listed = [r for r in robots.values() if r["level"] == "system"]
            return self.page([self.shown_robot(r) for r in self.filter_name(listed, query)], query)
        robot = robots.get(int(rest[0])) if len(rest) == 1 and rest[0].isdigit() else None
        if robot is None:
            return 404, _errors("NOT_FOUND", f"robot {rest[0] if rest else ''} not found"), {}
        if method == "GET":
            return 200, self.shown_robot(robot), {}
        if method == "PUT":
            # updateV2Robot: duration absent keeps the stored one; validate as on create; the
            # name (with prefix, as shown) and level must not change; then description, disable
            # (absent: false), duration and, when sent, the permissions are replaced.
            body = body or {}
            duration = body["duration"] if body.get("duration") is not None else robot["duration"]
            problem = self.robot_problem(duration, body.get("level"), body.get("permissions"))
            if problem:
                return problem
            if body.get("level") != robot["level"] or body.get("name") != self.robot_shown_name(robot):
                return 400, _errors("BAD_REQUEST", "cannot update the level or name of robot"), {}
            missing = self.missing_project(body["permissions"])
            if missing:
                return missing
            if duration != robot["duration"]:
                robot["duration"] = duration
                robot["expires_at"] = -1 if duration == -1 else 1796536800 + duration * 86400
            robot["description"] = body.get("description", "")
            robot["disable"] = bool(body.get("disable", False))
            robot["permissions"] = self.typed_permissions(body["permissions"])
            robot["scopes"] = self.scopes(body["permissions"])
            return 200, None, {}
        if method == "PATCH":
            # RefreshSec: an empty secret makes Harbor generate one and answer it; a secret of
            # one's own must pass IsValidSec and is answered as "".
            wanted = (body or {}).get("secret") or ""
            if wanted:
                if not is_valid_robot_secret(wanted):
                    message = (
                        "the secret must be 8-128, inclusively, characters long with at least 1 uppercase letter, "
                        "1 lowercase letter and 1 number"
                    )
                    return 400, _errors("BAD_REQUEST", message), {}
                robot["secret"] = wanted
                return 200, {"secret": ""}, {}
            robot["refreshes"] = robot.get("refreshes", 0) + 1
            robot["secret"] = robot_secret(robot["id"] * 1000 + robot["refreshes"])
            return 200, {"secret": robot["secret"]}, {}
        if method == "DELETE":
            del robots[robot["id"]]
            return 200, None, {}
        return 405, _errors("METHOD_NOT_ALLOWED", method), {}

    def missing_project(self, permissions: list[dict]) -> tuple[int, Any, dict] | None:
        """controller/robot toScope: a project permission names an existing project (or `*`), else 404."""
        names = {p["name"] for p in self.state.projects.values()}
        missing = [p["namespace"] for p in permissions if p.get("kind") == "project" and p.get("namespace") not in (*names, "*")]
        return (404, _errors("NOT_FOUND", f"project {missing[0]} not found"), {}) if missing else None

    @staticmethod
    def robot_problem(duration: Any, level: Any, permissions: Any) -> tuple[int, Any, dict] | None:
        """handler/robot.go validate, in its order, and controller toScope's namespace check."""
        if not isinstance(duration, int) or not (duration == -1 or 0 < duration < 2**31 - 1):
            message = f"bad request error duration input: {duration}, duration must be either -1(Never) or a positive integer"
            return 400, _errors("BAD_REQUEST", message), {}
        if level not in ("system", "project"):
            return 400, _errors("BAD_REQUEST", f"bad request error level input: {level}"), {}
        if not permissions:
            return 400, _errors("BAD_REQUEST", "bad request empty permission"), {}
        if any(not p.get("access") for p in permissions):
            return 400, _errors("BAD_REQUEST", "bad request empty access"), {}
        if level == "project" and len(permissions) > 1:
            return 400, _errors("BAD_REQUEST", "bad request permission"), {}
        for permission in permissions:
            allowed = ROBOT_ACCESS.get(permission.get("kind"))
            if allowed is None:
                return 400, _errors("BAD_REQUEST", f"bad request permission level: {permission.get('kind')}"), {}
            for access in permission["access"]:
                if f"{access.get('resource')}:{access.get('action')}" not in allowed:
                    return (
                        400,
                        _errors("BAD_REQUEST", f"bad request permission: {access.get('resource')}:{access.get('action')}"),
                        {},
                    )
        for permission in permissions:
            if permission["kind"] == "system" and permission.get("namespace") != "/":
                return 400, _errors("BAD_REQUEST", "unknown namespace"), {}
        return None

    @staticmethod
    def typed_permissions(permissions: list[dict]) -> list[dict]:
        """RobotPermission {kind, namespace, access[{resource, action, effect}]}: other keys dropped."""
        return [
            {
                "kind": p["kind"],
                "namespace": p.get("namespace", ""),
                "access": [{k: a[k] for k in ("resource", "action", "effect") if k in a} for a in p["access"]],
            }
            for p in permissions
        ]

    def scopes(self, permissions: list[dict], strict: bool = True) -> list[str]:
        """controller/robot toScope, kept beside each permission as Harbor keeps it (rbac_policy): the
        project's *id*, so a project deleted and made again under the same name is not covered.
        Every named project must exist (missing_project answered 404 before); `strict=False` leaves
        out a permission naming none instead."""
        ids = {p["name"]: p["project_id"] for p in self.state.projects.values()}
        return [
            "/system" if p["kind"] == "system" else "/project/*" if p["namespace"] == "*" else f"/project/{ids[p['namespace']]}"
            for p in permissions
            if strict or p["kind"] == "system" or p["namespace"] in (*ids, "*")
        ]

    def robot_shown_name(self, robot: dict) -> str:
        """controller/robot/controller.go populate: a v2 robot is shown (create's answer, GET, list, the
        name a PUT must repeat, its security context) as `config.RobotPrefix(ctx)` + its stored name:
        the configuration robot_name_prefix as it is now (lib/config/userconfig.go RobotPrefix;
        default `robot$`, lib/config/metadata/metadatalist.go), which an admin may change."""
        return self.state.configurations["robot_name_prefix"] + robot["name"]

    def robot_permissions(self, robot: dict) -> list[dict]:
        """controller/robot/controller.go populatePermissions: the robot's policies as Harbor stored
        them (rbac_policy scopes, kept by toScope: a project by its *id*), grouped by scope, one
        permission per scope with every access of it (so one system "/" permission at most, however
        many were sent). convertScope turns each scope back into a namespace: /system -> "/",
        /project/* -> "*", /project/<id> -> the name of the project with that id *now* (proMgr.Get by
        id); a scope whose project is gone (NotFound) is not listed, even when a project of the same
        name was made since (it has another id). What GET /robots shows and what the robot's security
        context holds (middleware/security/robot.go: robot_ctl List WithPermission), so also what
        ListProjects lists a robot. Harbor walks a Go map (no order); the emulator keeps the order of
        first appearance."""
        names = {p["project_id"]: p["name"] for p in self.state.projects.values()}
        stored = robot.get("scopes", [])
        grouped: dict[str, dict] = {}
        for index, permission in enumerate(robot["permissions"]):
            # A permission a test put into the state by hand has no stored scope: it is taken as
            # made through the API now (toScope by its name), as Harbor would have stored it.
            scope = stored[index] if index < len(stored) else next(iter(self.scopes([permission], strict=False)), None)
            if scope is None:
                continue
            if scope in grouped:
                grouped[scope]["access"] = grouped[scope]["access"] + permission["access"]
                continue
            if scope == "/system":
                namespace = "/"
            elif scope == "/project/*":
                namespace = "*"
            else:
                project_id = int(scope.removeprefix("/project/"))
                if project_id not in names:
                    continue
                namespace = names[project_id]
            grouped[scope] = {**permission, "namespace": namespace}
        return list(grouped.values())

    def shown_robot(self, robot: dict) -> dict:
        permissions = self.robot_permissions(robot)
        shown = {k: v for k, v in robot.items() if k not in ("secret", "refreshes", "scopes")}
        return {**shown, "name": self.robot_shown_name(robot), "permissions": permissions, "editable": True}

    def _scheduled(self, action: str, vendor: str) -> None:
        if self.on_schedule is not None:
            self.on_schedule(action, vendor)

    def add_retention(self, policy: dict) -> int:
        retention_id = self.state.new_id()
        self.state.retentions[retention_id] = {**typed_retention(copy.deepcopy(policy)), "id": retention_id}
        # controller/retention CreateRetention: a schedule trigger with a cron is scheduled at once.
        if retention_cron(policy):
            self._scheduled("schedule", f"RETENTION:{retention_id}")
        return retention_id

    def retentions(self, method: str, rest: list[str], body: Any) -> tuple[int, Any, dict]:
        """handler/retention.go CreateRetention / UpdateRetention and controller/retention's
        ValidateRetentionPolicy: at most 15 rules, no two rules alike (409), project scope only, one
        policy per project, a valid schedule cron; an update only through the project whose
        retention_id it is (requirePolicyAccess, else 404). Stored through the typed model."""
        state = self.state
        if method in ("POST", "PUT") and (rest or method == "POST"):
            policy = typed_retention(body or {})
            if len(policy["rules"]) > 15:
                return 400, _errors("BAD_REQUEST", "only 15 rules are allowed at most"), {}
            seen: dict[str, int] = {}
            for index, rule in enumerate(policy["rules"]):
                key = json.dumps({**rule, "id": 0}, sort_keys=True)
                if key in seen:
                    return 409, _errors("CONFLICT", f"rule {index} is conflict with rule {seen[key]}"), {}
                seen[key] = index
            scope = policy["scope"] or {}
            cron = ((policy["trigger"] or {}).get("settings") or {}).get("cron", "")
            cron_error = None
            if (policy["trigger"] or {}).get("kind") == "Schedule" and cron:
                problem = cron_problem(cron)
                if problem:
                    cron_error = _errors(
                        "BAD_REQUEST", f"invalid cron string for scheduled tag retention: {cron}, error: {problem}"
                    )
        if not rest and method == "POST":
            if scope.get("level") != "project":
                return 400, _errors("BAD_REQUEST", f"scope {scope.get('level', '')} is not support"), {}
            project = state.projects.get(scope.get("ref", 0))
            if project is None:
                return 400, _errors("BAD_REQUEST", f"invalid Project id {scope.get('ref', 0)}"), {}
            if project["metadata"].get("retention_id"):
                message = f"project {project['project_id']} already has retention policy {project['metadata']['retention_id']}"
                return 400, _errors("BAD_REQUEST", message), {}
            if cron_error:
                return 400, cron_error, {}
            retention_id = self.add_retention(policy)
            project["metadata"]["retention_id"] = str(retention_id)
            return 201, None, {"Location": f"/api/v2.0/retentions/{retention_id}"}
        policy_id = int(rest[0]) if len(rest) == 1 and rest[0].isdigit() else None
        if method == "PUT" and policy_id is not None:
            project = state.projects.get(scope.get("ref", 0)) if scope.get("level") == "project" else None
            if project is None or project["metadata"].get("retention_id") != str(policy_id):
                return 404, _errors("NOT_FOUND", f"the retention policy id {policy_id} does not match"), {}
            if cron_error:
                return 400, cron_error, {}
            if policy_id not in state.retentions:
                return 404, _errors("NOT_FOUND", "retention policy not found"), {}
            # controller/retention UpdateRetention: the schedule changes only when the cron does.
            before, after = retention_cron(state.retentions[policy_id]), retention_cron(policy)
            state.retentions[policy_id] = {**policy, "id": policy_id}
            if before != after:
                if before:
                    self._scheduled("unschedule", f"RETENTION:{policy_id}")
                if after:
                    self._scheduled("schedule", f"RETENTION:{policy_id}")
            return 200, None, {}
        stored = state.retentions.get(policy_id) if policy_id is not None else None
        if stored is None:
            return 404, _errors("NOT_FOUND", "retention policy not found"), {}
        if method == "GET":
            return 200, copy.deepcopy(stored), {}
        return 405, _errors("METHOD_NOT_ALLOWED", method), {}


def robot_can(robot: dict, scope: str, resource: str, action: str) -> bool:
    """common/security/robot/context.go Can for a system robot: each access becomes the policy
    `<scope>/<resource>` (getPolicyResource; scope /system, /project/<id>, or /project/* for namespace
    "*", which casbin's keyMatch matches against every project), evaluated per namespace; a deny
    among the matching policies wins (casbin's allow-and-no-deny effect)."""
    matching = [
        access
        for permission, granted in zip(robot["permissions"], robot.get("scopes", []), strict=False)
        if granted == scope or (granted == "/project/*" and scope.startswith("/project/"))
        for access in permission["access"]
        if access.get("resource") == resource and access.get("action") == action
    ]
    return bool(matching) and all(access.get("effect", "allow") != "deny" for access in matching)


def typed_retention(body: dict) -> dict:
    """A retention policy as swagger RetentionPolicy / RetentionRule / RetentionSelector keep it
    (handler/model/retention.go NewRetentionPolicyFromSwagger: JSON through the typed model)."""
    selector_keys = ("kind", "decoration", "pattern", "extras")

    def selectors(items: Any) -> list[dict]:
        return [{k: s[k] for k in selector_keys if k in s} for s in items or []]

    rules = [
        {
            **{k: rule[k] for k in ("id", "priority", "disabled", "action", "template", "params") if k in rule},
            "tag_selectors": selectors(rule.get("tag_selectors")),
            "scope_selectors": {name: selectors(items) for name, items in (rule.get("scope_selectors") or {}).items()},
        }
        for rule in body.get("rules") or []
    ]
    trigger = body.get("trigger")
    scope = body.get("scope")
    return {
        "id": body.get("id", 0),
        "algorithm": body.get("algorithm", ""),
        "rules": rules,
        "trigger": {k: trigger[k] for k in ("kind", "settings", "references") if k in trigger} if trigger else None,
        "scope": {k: scope[k] for k in ("level", "ref") if k in scope} if scope else None,
    }


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


def typed_metadata(sent: Any) -> dict[str, str]:
    """A project's metadata as lib.JSONCopy through swagger ProjectMetadata leaves it: only the
    model's keys, and only set ones (string fields with omitempty, null pointers omitted)."""
    return {key: value for key, value in (sent or {}).items() if key in PROJECT_METADATA_KEYS and value not in (None, "")}


def quota_limit_problem(limit: Any) -> str | None:
    """src/lib/quota_storage_limit.go ValidateQuotaLimit: -1 (unlimited) or 1..1024 TB in bytes."""
    if limit <= 0 and limit != -1:
        return f"invalid non-positive value for quota limit, value={limit}"
    if limit > MAX_STORAGE_BYTES:
        return f"exceeded 1024TB, which is 1125899906842624 Bytes, value={limit}"
    return None


def _is_int32(text: Any) -> bool:
    """strconv.ParseInt(text, 10, 32) succeeds."""
    return isinstance(text, str) and re.fullmatch(r"[+-]?[0-9]+", text) is not None and -(2**31) <= int(text) < 2**31


def _errors(code: str, message: str) -> dict:
    return {"errors": [{"code": code, "message": message}]}


def cron_problem(cron: Any) -> str | None:
    """common/utils/utils.go ValidateCronString: robfig/cron's parser with seconds, minutes, hours,
    day of month, month and day of week (no descriptors, no optional field), then seconds fixed at 0."""
    if not isinstance(cron, str) or not cron:
        return "empty cron string is invalid"
    fields = cron.split()
    if len(fields) != 6:
        return f"expected exactly 6 fields, found {len(fields)}: {cron}"
    for text, (low, high, names) in zip(fields, CRON_BOUNDS, strict=True):
        for item in text.split(","):
            range_part, _, step = item.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                return f"bad step: {item}"
            if range_part in ("*", "?"):
                continue
            bounds = range_part.split("-")
            if len(bounds) > 2:
                return f"too many hyphens: {item}"
            values = []
            for bound in bounds:
                value = names.index(bound.lower()) + low if bound.lower() in names else None
                if value is None and not bound.isdigit():
                    return f"failed to parse int from {bound}"
                values.append(int(bound) if value is None else value)
            if values[0] < low or values[-1] > high or values[0] > values[-1]:
                return f"value out of range: {item}"
    if cron.split(" ")[0] != "0":
        return "the 1st field (indicating Seconds of time) of the cron setting must be 0"
    return None


def validate_http_url(text: str) -> tuple[str | None, str | None]:
    """src/lib/endpoint.go ValidateHTTPURL: (normalised URL, None) or (None, problem). Spaces and
    trailing slashes trimmed, http:// added when no scheme, the scheme lower-cased (Go's url.Parse),
    and only scheme://host/path kept (query, fragment and user info dropped)."""
    text = text.strip(" ").rstrip("/")
    if not text:
        return None, "empty string"
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError as error:
        return None, f"invalid URL: {error}"
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return None, f"invalid HTTP scheme: {scheme}"
    host = parts.netloc.rpartition("@")[2]
    return f"{scheme}://{host}{parts.path}", None


def ca_certificate_problem(pem: str) -> str | None:
    """common/http/transport.go ValidateCACertificate: empty is fine; otherwise at least one PEM
    CERTIFICATE block that parses as X.509 (other blocks skipped). OpenSSL's loader does the same."""
    text = pem.strip().replace("\r\n", "\n").replace("\r", "\n")
    if not text:
        return None
    try:
        ssl.create_default_context().load_verify_locations(cadata=text)
    except (ssl.SSLError, ValueError) as error:
        return f"invalid CA certificate: {error}"
    return None


def robot_secret(seed: int) -> str:
    """controller/robot CreateSec: 32 characters of [a-zA-Z0-9] that pass IsValidSec (a lower case
    letter, an upper case letter and a digit). Deterministic here, so tests can repeat runs."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    digest = hashlib.sha256(f"robot-secret-{seed}".encode()).digest()
    body = "".join(alphabet[b % len(alphabet)] for b in digest[:29])
    return "aZ" + str(seed % 10) + body


def is_valid_robot_secret(secret: str) -> bool:
    """controller/robot/controller.go IsValidSec."""
    return (
        8 <= len(secret) <= 128
        and re.search("[a-z]", secret) is not None
        and re.search("[A-Z]", secret) is not None
        and re.search("[0-9]", secret) is not None
    )
