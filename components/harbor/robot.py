"""A Pulumi dynamic provider for one Harbor robot account that may only pull from given projects.

This module's path is part of every stack's state that holds a robot (Pulumi pickles a dynamic
provider by reference: module + class name). States from before issue 17 name it
`components.harbor_robot_provider`, which components/__init__.py keeps resolvable.

Harbor's robot API (v2.15.2, src/server/v2.0/handler/robot.go and src/controller/robot/):
- A *project*-level robot may carry exactly one permission (one project): `validate` answers 400
  "bad request permission" to more. One credential for every private proxy project, as nodes need
  (one auth entry per registry host), is therefore a *system*-level robot whose permissions are of
  kind `project`, one per project, each with only `repository:pull`.
- `POST /robots` answers 201 with `RobotCreated` {id, name, secret, ...}; the name comes back with
  Harbor's robot prefix (`robot$` by default, config `robot_name_prefix`). The secret is returned
  only here: GET never shows it, so the state is its only copy (kept as a secret).
- `PUT /robots/{id}` replaces description and permissions; name and level must not change (400).
- Duplicate name: 409. `DELETE` of a missing robot: 404.
- `repository:pull` is enough to pull through a proxy-cache project: whether Harbor fetches from
  the upstream depends on the project's registry only (middleware/repoproxy/proxy.go, canProxy);
  Harbor stores what it fetched under its own proxy-cache session, not the robot's.

The provider holds nothing: admin credentials come with the inputs, the client is built per call.
Errors name the method, path and Harbor's messages (HarborApiError), never the robot's secret.
"""

from __future__ import annotations

import time
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult
from pulumi.output import Unknown
from pulumi.runtime import rpc

from components.harbor.api import HarborApiError, HarborClient, MaybeSent, float_env
from components.harbor.provider_base import DATABASE, LOCAL_DATABASE, SETTLE_SECONDS, check_database, database_of
from components.settings.validators import HARBOR_NAME_RE, validate_api_url

CONNECTION = ("harbor_url", "harbor_username", "harbor_password")
# Harbor keeps a robot's permission by project *id* (scope /project/<id>) and drops it silently when
# that project is deleted: a project re-created under the same name needs the robot updated, which
# its name alone would never show. `project_ids` are the projects' resource ids, known in previews.
# `database`: the database Harbor keeps the robot in; a change re-creates it (components/harbor/provider_base.py's docstring).
# `project_access`: what the robot may do in each of `projects` (absent: PROJECT_ACCESS, the pull robot's).
INPUTS = ("name", "description", "projects", "project_ids", DATABASE, "system_access", "project_access")
PULL = {"resource": "repository", "action": "pull"}
# The probe's proof that Harbor stored a pull (GET .../artifacts/{digest}) needs artifact read on
# the project (handler/artifact.go GetArtifact: RequireProjectAccess(read, artifact)); a project
# permission Harbor offers robots (src/common/rbac/const.go, PoliciesMap[ScopeProject]).
ARTIFACT_READ = {"resource": "artifact", "action": "read"}


PROJECT_ACCESS = (PULL, ARTIFACT_READ)


def access_key(access: list[dict] | None) -> list[tuple[str, str]]:
    """An access list compared as a set of (resource, action): Harbor keeps no order, and adds its own
    keys (effect) to what it returns."""
    return sorted({(str(a.get("resource")), str(a.get("action"))) for a in access or []})


def permission_view(permissions: list[dict], project_access: list[dict] | None = None) -> tuple[list[str], list[dict[str, str]]]:
    """A robot's permissions as the state keeps them, compared with exactly what robot_body asks:
    (the projects it has exactly `project_access` on, sorted, then each permission that is anything else
    (another kind, more or less access) as `kind:namespace:resource:action,...`, which no project name
    equals, so the next diff shows it; the system access of its one system permission on "/")."""
    wanted = access_key(project_access or list(PROJECT_ACCESS))
    ours, other = [], []
    system: list[dict[str, str]] = []
    seen_system = False
    for permission in permissions:
        access = access_key(permission.get("access"))
        kind, namespace = permission.get("kind"), permission.get("namespace")
        if kind == "project" and access == wanted:
            ours.append(namespace or "")
        elif kind == "system" and namespace == "/" and not seen_system:
            seen_system = True
            system = [{"resource": resource, "action": action} for resource, action in access]
        else:
            actions = ",".join(f"{resource}:{action}" for resource, action in access)
            other.append(f"{kind}:{namespace}:{actions}")
    return sorted(ours) + sorted(other), system


def _unknown(value: Any) -> bool:
    return isinstance(value, Unknown) or value == rpc.UNKNOWN


def robot_body(
    name: str,
    description: str,
    projects: list[str],
    system_access: list[dict] | None = None,
    project_access: list[dict] | None = None,
) -> dict[str, Any]:
    """The RobotCreate body: a system robot that may only pull, and read artifacts, in each listed project
    (or do `project_access` there: the monitor robot lists retention runs)."""
    access = project_access or list(PROJECT_ACCESS)
    return {
        "name": name,
        "description": description,
        "level": "system",
        "duration": -1,
        "disable": False,
        "permissions": [
            {"kind": "project", "namespace": project, "access": [dict(item) for item in access]} for project in projects
        ]
        # System permissions (the monitor robot: registry list, GC history) are kind "system", namespace "/".
        + ([{"kind": "system", "namespace": "/", "access": [dict(item) for item in system_access]}] if system_access else []),
    }


class HarborRobotProvider(ResourceProvider):
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = {key: news.get(key) for key in (*CONNECTION, *INPUTS)}
        inputs["description"] = inputs["description"] or ""
        inputs[DATABASE] = database_of(inputs)
        failures = [CheckFailure(key, f"{key} is required") for key in CONNECTION if not inputs[key]]
        url = inputs["harbor_url"]
        if url and not _unknown(url) and validate_api_url(url):
            failures.append(CheckFailure("harbor_url", f"{url!r} {validate_api_url(url)}"))
        name = inputs["name"]
        if not _unknown(name) and (not isinstance(name, str) or not HARBOR_NAME_RE.match(name)):
            # Harbor's validateName: lower case groups, and '+' is reserved for project robots.
            failures.append(CheckFailure("name", f"{name!r} is not a robot name ([a-z0-9] groups joined by . _ -)"))
        projects = inputs["projects"]
        inputs["system_access"] = inputs["system_access"] or []
        needed = not inputs["system_access"]  # a robot with system access may have no project
        if not _unknown(projects) and (
            not isinstance(projects, list) or (needed and not projects) or not all(isinstance(p, str) and p for p in projects)
        ):
            failures.append(CheckFailure("projects", "projects must be a non-empty list of project names"))
        if check_database(inputs[DATABASE]):
            failures.append(check_database(inputs[DATABASE]))
        return CheckResult(inputs, failures)

    @staticmethod
    def _client(props: dict[str, Any]) -> HarborClient:
        return HarborClient(props["harbor_url"], props["harbor_username"], props["harbor_password"])

    @staticmethod
    def _outputs(
        props: dict[str, Any], robot_id: int, full_name: str, secret: str, harbor_robot: dict | None = None
    ) -> dict[str, Any]:
        """The state: ours after a create or update, Harbor's (`harbor_robot`) after a refresh."""
        values = {key: props.get(key) for key in (*CONNECTION, *INPUTS)}
        values[DATABASE] = database_of(props)
        values.update(disable=False, duration=-1)
        if harbor_robot is not None:
            projects, system_access = permission_view(harbor_robot.get("permissions") or [], props.get("project_access"))
            values.update(
                description=harbor_robot.get("description", ""),
                projects=projects,
                system_access=system_access,
                disable=harbor_robot.get("disable") is True,
                duration=harbor_robot.get("duration", -1),
            )
        return {**values, "robot_id": robot_id, "robot_name": full_name, "secret": secret}

    def find(self, client: HarborClient, name: str) -> dict | None:
        """Our system robot by its exact name: `q=name=` matches the stored name, which has no prefix
        (handler/robot.go ListRobot lists system robots unless asked otherwise). Harbor shows it as
        its robot name prefix + name (controller/robot/controller.go populate: config.RobotPrefix,
        the configuration robot_name_prefix, `robot$` unless an admin changed it), so the prefix is
        read as Harbor has it now (GET /configurations shows every user setting: controller/config
        ConvertForGet)."""
        shown = client.get("/configurations")["robot_name_prefix"]["value"] + name
        return next((robot for robot in client.list_all("/robots", q=f"name={name}") if robot.get("name") == shown), None)

    def adopt(self, client: HarborClient, props: dict[str, Any], found: dict) -> CreateResult:
        """Take over the robot of our name (made by hand, by a create whose answer was lost, or kept in
        Harbor when the state was lost): set it to our permissions, and have Harbor issue a new secret
        (PATCH /robots/{id} with no secret of our own: handler/robot.go RefreshSec), since the old one
        cannot be read back."""
        robot_id = int(found["id"])
        client.request("PUT", f"/robots/{robot_id}", self.body(found["name"], props))
        secret = self.refresh_secret(client, robot_id)
        return CreateResult(str(robot_id), self._outputs(props, robot_id, found["name"], secret))

    @staticmethod
    def refresh_secret(client: HarborClient, robot_id: int) -> str:
        answer = client.request("PATCH", f"/robots/{robot_id}", {}).body or {}
        secret = answer.get("secret") or ""
        if not secret:
            raise HarborApiError("PATCH", f"/api/v2.0/robots/{robot_id}", 200, ["Harbor answered no new secret"])
        return secret

    @staticmethod
    def body(full_name: str, props: dict[str, Any]) -> dict[str, Any]:
        """The PUT body: name as Harbor shows it (with its prefix), ours for the rest."""
        return robot_body(
            full_name,
            props.get("description") or "",
            list(props["projects"]),
            props.get("system_access"),
            props.get("project_access"),
        )

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = self._client(props)
        found = self.find(client, props["name"])
        if found is not None:
            return self.adopt(client, props, found)
        body = self.body(props["name"], props)
        try:
            answer = client.request("POST", "/robots", body)
        except MaybeSent as error:
            # No answer: Harbor may have made it, and only that answer carried the secret.
            found = self.settle(client, props["name"])
            if found is None:
                raise error.with_hint(
                    f"Harbor did not answer and has no robot named {props['name']!r}; run `pulumi up` again"
                ) from None
            return self.adopt(client, props, found)
        except HarborApiError as error:
            found = self.find(client, props["name"]) if error.status == 409 else None
            if found is None:
                raise
            return self.adopt(client, props, found)
        created = answer.body or {}
        robot_id = int(created.get("id") or answer.location_id())
        return CreateResult(str(robot_id), self._outputs(props, robot_id, created.get("name", ""), created.get("secret", "")))

    def settle(self, client: HarborClient, name: str) -> dict | None:
        """Look the name up until Harbor is surely done with a POST that got no answer."""
        deadline = time.monotonic() + float_env("HARBOR_CACHE_SETTLE_SECONDS", SETTLE_SECONDS)
        while True:
            found = self.find(client, name)
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(min(2.0, max(0.05, deadline - time.monotonic())))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        try:
            robot = self._client(props).get(f"/robots/{id_}")
        except HarborApiError as error:
            if error.status == 404:
                return ReadResult(None, {})
            raise
        # GET never returns the secret: the state keeps the one create (or a refresh) received.
        outputs = self._outputs(props, int(robot["id"]), robot.get("name", ""), props.get("secret") or "", robot)
        return ReadResult(id_, outputs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        def same(key: str) -> bool:
            if key in ("system_access", "project_access"):  # a state from before: the default; Harbor keeps no order
                return access_key(news.get(key)) == access_key(olds.get(key))
            if key in ("projects", "project_ids"):
                return sorted(news.get(key) or []) == sorted(olds.get(key) or [])
            if key == DATABASE:  # a state from before this input: the VM's own database
                return database_of(news) == database_of(olds)
            return news.get(key) == olds.get(key)

        changed = [key for key in (*INPUTS, *CONNECTION) if _unknown(news.get(key)) or not same(key)]
        # Set by hand in Harbor (seen by a refresh; absent in a state from before they were read):
        # our robot is enabled and never expires. A secret lost from the state is issued anew.
        if olds.get("disable", False) is not False:
            changed.append("disable")
        if olds.get("duration", -1) != -1:
            changed.append("duration")
        if not olds.get("secret"):
            changed.append("secret")
        # Harbor cannot rename a robot (400): a new name is a new robot, and a new secret. A new
        # database holds no robot: make it there (deleted first, so it never shares a name or id).
        replaces = [k for k in changed if k in ("name", DATABASE)]
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=True)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        client = self._client(news)
        secret = olds.get("secret") or ""
        robot_changed = (
            any(
                sorted(news.get(k) or []) != sorted(olds.get(k) or [])
                if k in ("projects", "project_ids")
                else access_key(news.get(k)) != access_key(olds.get(k))
                if k in ("system_access", "project_access")
                else news.get(k) != olds.get(k)
                for k in ("description", "projects", "project_ids", "system_access", "project_access")
            )
            or olds.get("disable", False) is not False
            or olds.get("duration", -1) != -1
        )
        if robot_changed:
            client.request("PUT", f"/robots/{id_}", self.body(olds["robot_name"], news))
        if not secret:
            secret = self.refresh_secret(client, int(id_))
        if not robot_changed and olds.get("secret"):
            # Only the connection changed (a new admin password or API URL): nothing in Harbor
            # changes; one authenticated call proves the new credential before the state takes it.
            client.get(f"/robots/{id_}")
        return UpdateResult(self._outputs(news, int(id_), olds["robot_name"], secret))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        client = self._client(props)
        # After a database change Harbor answers from the new database, where ids start again:
        # delete only the robot the state describes (GET shows the prefixed name, as create did).
        try:
            found = client.get(f"/robots/{id_}")
        except HarborApiError as error:
            if error.status == 404:
                return
            raise
        if (found or {}).get("name") != props.get("robot_name"):
            return
        try:
            client.request("DELETE", f"/robots/{id_}")
        except HarborApiError as error:
            if error.status != 404:
                raise


class HarborRobot(pulumi.dynamic.Resource, module="harbor", name="Robot"):
    """A pull-only robot account; `robot_name` and `secret` are what nodes log in with."""

    robot_id: pulumi.Output[int]
    robot_name: pulumi.Output[str]
    secret: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        url: pulumi.Input[str],
        username: pulumi.Input[str],
        password: pulumi.Input[str],
        robot_name: str,
        projects: pulumi.Input[list[str]],
        project_ids: pulumi.Input[list[str]] | None = None,
        description: str = "",
        database: pulumi.Input[str] = LOCAL_DATABASE,
        opts: pulumi.ResourceOptions | None = None,
        system_access: list[dict[str, str]] | None = None,
        project_access: list[dict[str, str]] | None = None,
    ) -> None:
        props = {
            "harbor_url": url,
            "harbor_username": username,
            "harbor_password": pulumi.Output.secret(password),
            "name": robot_name,
            "description": description,
            "projects": projects,
            "project_ids": project_ids or [],
            DATABASE: database,
            **({"system_access": system_access} if system_access else {}),
            **({"project_access": project_access} if project_access else {}),
            "robot_id": None,
            "robot_name": None,
            "secret": None,
        }
        # `secret` is a new output key, not an input: only additional_secret_outputs keeps it
        # encrypted in the state (the engine re-marks only outputs named like secret inputs).
        secret_opts = pulumi.ResourceOptions(additional_secret_outputs=["secret", "harbor_password"])
        super().__init__(HarborRobotProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret_opts))
