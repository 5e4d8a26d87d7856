"""Harbor's proxy-cache projects, one per upstream, with their quota and retention: the dynamic provider and the resource."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CreateResult, ReadResult, UpdateResult

from components.harbor.api import HarborApiError, HarborClient, MaybeSent
from components.harbor.provider_base import Field, HarborConnection, HarborProvider, is_unknown, with_secret_outputs
from components.settings.upstreams import (
    DEFAULT_RETENTION_DAYS,
    INT32_MAX,
    MAX_RETENTION_DAYS,
    MAX_STORAGE_QUOTA_GB,
)
from components.settings.validators import HARBOR_NAME_RE

GIB = 1024**3
INTEGER_RE = re.compile(r"[+-]?[0-9]+")


def metadata_flag(value: str | None) -> bool | str:
    """A boolean metadata value as the state keeps it: absent means false (pkg/project/models
    project.go), "true"/"false" their booleans, anything else the text itself. Harbor's project PUT
    stores any string (handler/project.go UpdateProject checks no value), and a text never equals
    the boolean input, so the next diff shows it and `up` writes the value back."""
    if value is None or value == "false":
        return False
    return True if value == "true" else value


def metadata_number(value: str | None) -> int | str:
    """An int32 metadata value as the state keeps it: absent means -1 (no limit); a text that is not
    a number stays text (Harbor's PUT stores it; `int()` on it would fail the whole refresh)."""
    if value is None:
        return -1
    return int(value) if INTEGER_RE.fullmatch(value) else value


def quota_gb(storage: Any) -> int | float:
    """A storage limit in bytes as storage_quota_gb: -1 stays unlimited; a limit that is no whole
    number of GiB stays fractional, so it never equals an input."""
    if storage == -1:
        return -1
    return storage // GIB if storage % GIB == 0 else storage / GIB


def policy_form(policy: dict[str, Any]) -> dict[str, Any]:
    """What defines a retention policy, without what Harbor adds or numbers itself: the policy's
    and the rules' ids, a selector's empty `extras` (pkg/retention/policy/rule/models.go)."""

    def selectors(items: Any) -> list[tuple]:
        return [(s.get("kind"), s.get("decoration"), s.get("pattern"), s.get("extras") or "") for s in items or []]

    rules = [
        {
            "priority": rule.get("priority"),
            "disabled": bool(rule.get("disabled")),
            "action": rule.get("action"),
            "template": rule.get("template"),
            "params": rule.get("params") or {},
            "tag_selectors": selectors(rule.get("tag_selectors")),
            "scope_selectors": {k: selectors(v) for k, v in (rule.get("scope_selectors") or {}).items()},
        }
        for rule in policy.get("rules") or []
    ]
    trigger = policy.get("trigger") or {}
    return {
        "algorithm": policy.get("algorithm"),
        "rules": rules,
        "trigger": (trigger.get("kind"), (trigger.get("settings") or {}).get("cron")),
        "scope": policy.get("scope"),
    }


# Projects


class HarborProjectProvider(HarborProvider):
    KIND = "project"
    ID_KEY = "project_id"
    FIELDS = {
        "name": Field(str, replace=True),
        "registry_id": Field(int, replace=True),
        "public": Field(bool, True),
        "storage_quota_gb": Field(int, -1),
        "speed_limit_kbps": Field(int, -1),
        "local_on_not_found": Field(bool, True),
        "max_upstream_conn": Field(int, -1),
        "retention_days": Field(int, DEFAULT_RETENTION_DAYS),
        "force_destroy": Field(bool, False),
    }
    METADATA_FIELDS = ("public", "speed_limit_kbps", "local_on_not_found", "max_upstream_conn")

    def validate(self, inputs: dict[str, Any]) -> list[CheckFailure]:
        failures = []
        name = inputs["name"]
        if not is_unknown(name) and (not HARBOR_NAME_RE.match(name) or len(name) > 255):
            failures.append(CheckFailure("name", f"{name!r} is not a Harbor project name ([a-z0-9] groups joined by . _ -)"))
        if not is_unknown(inputs["registry_id"]) and inputs["registry_id"] < 1:
            failures.append(CheckFailure("registry_id", "registry_id must be a Harbor registry id (1 or more)"))
        # Harbor's limits: int32 metadata (handler/project.go validateProjectReq), quotas up to 1024 TB.
        for key, high in (
            ("storage_quota_gb", MAX_STORAGE_QUOTA_GB),
            ("speed_limit_kbps", INT32_MAX),
            ("max_upstream_conn", INT32_MAX),
        ):
            value = inputs[key]
            if not is_unknown(value) and (value == 0 or value < -1 or value > high):
                failures.append(CheckFailure(key, f"{key} must be -1 (unlimited) or 1..{high}, got {value}"))
        days = inputs["retention_days"]
        if not is_unknown(days) and not 1 <= days <= MAX_RETENTION_DAYS:
            failures.append(CheckFailure("retention_days", f"retention_days must be 1..{MAX_RETENTION_DAYS}, got {days}"))
        return failures

    @staticmethod
    def metadata(props: dict[str, Any]) -> dict[str, str]:
        # Harbor's project metadata values are strings (pkg/project/models/pro_meta.go).
        return {
            "public": "true" if props["public"] else "false",
            "proxy_speed_kb": str(props["speed_limit_kbps"]),
            "proxy_cache_local_on_not_found": "true" if props["local_on_not_found"] else "false",
            "max_upstream_conn": str(props["max_upstream_conn"]),
        }

    @staticmethod
    def storage_limit(props: dict[str, Any]) -> int:
        return -1 if props["storage_quota_gb"] == -1 else props["storage_quota_gb"] * GIB

    @staticmethod
    def retention_policy(project_id: int, days: int) -> dict[str, Any]:
        """Harbor's own proxy-project default (pkg/retention/policy/models.go WithNDaysSinceLastPull),
        with our number of days: keep what was pulled in the last N days, checked daily."""
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

    def outputs(self, props: dict[str, Any], project: dict | None, project_id: int) -> dict[str, Any]:
        """The state: ours after a create or update (project None), Harbor's after a refresh."""
        values = {**self.connection(props), **{key: props[key] for key in self.FIELDS}, "project_id": project_id}
        if project is not None:
            metadata = project.get("metadata") or {}
            values.update(
                name=project["name"],
                registry_id=int(project.get("registry_id") or 0),
                public=metadata_flag(metadata.get("public")),
                speed_limit_kbps=metadata_number(metadata.get("proxy_speed_kb")),
                local_on_not_found=metadata_flag(metadata.get("proxy_cache_local_on_not_found")),
                max_upstream_conn=metadata_number(metadata.get("max_upstream_conn")),
            )
        return values

    def verify_path(self, id_: str) -> str:
        return f"/projects/{id_}"

    def apply_retention(self, client: HarborClient, project_id: int, days: int) -> None:
        """Set the project's retention policy to ours: Harbor made one on create, else we make it."""
        project = client.get(f"/projects/{project_id}") or {}
        retention_id = (project.get("metadata") or {}).get("retention_id")
        policy = self.retention_policy(project_id, days)
        if retention_id:
            client.request("PUT", f"/retentions/{retention_id}", {**policy, "id": int(retention_id)})
            return
        try:
            client.request("POST", "/retentions", policy)
        except (MaybeSent, HarborApiError) as error:
            # Answered "already has retention policy", or no answer: Harbor may hold ours already.
            if not isinstance(error, MaybeSent) and error.status != 400:
                raise
            project = client.get(f"/projects/{project_id}") or {}
            retention_id = (project.get("metadata") or {}).get("retention_id")
            if not retention_id:
                raise
            client.request("PUT", f"/retentions/{retention_id}", {**policy, "id": int(retention_id)})

    def read_retention_days(self, client: HarborClient, project: dict) -> int:
        """The days of our policy when the project's retention policy is exactly ours (one rule,
        its selectors, its schedule, its scope), else 0, which no input equals: any rule added,
        disabled or changed in Harbor, or the policy gone, shows in the next diff and `up` puts
        ours back."""
        retention_id = (project.get("metadata") or {}).get("retention_id")
        if not retention_id:
            return 0
        try:
            policy = client.get(f"/retentions/{retention_id}") or {}
        except HarborApiError as error:
            if error.status == 404:
                return 0
            raise
        rules = policy.get("rules") or []
        days = (rules[0].get("params") or {}).get("nDaysSinceLastPull") if len(rules) == 1 else None
        if not isinstance(days, int) or isinstance(days, bool):
            return 0
        ours = self.retention_policy(int(project["project_id"]), days)
        return days if policy_form(policy) == policy_form(ours) else 0

    def read_quota_gb(self, client: HarborClient, project_id: str) -> int | float:
        """The project's storage limit in GiB; 0 (no input's value) when Harbor has no quota for it."""
        quotas = client.get("/quotas", reference="project", reference_id=project_id) or []
        if not quotas:
            return 0
        return quota_gb((quotas[0].get("hard") or {}).get("storage", 0))

    def set_quota(self, client: HarborClient, project_id: str, props: dict[str, Any]) -> None:
        quotas = client.get("/quotas", reference="project", reference_id=project_id) or []
        if not quotas:
            raise HarborApiError(
                "GET", f"/api/v2.0/quotas?reference_id={project_id}", 200, [f"project {project_id} has no quota"]
            )
        client.request("PUT", f"/quotas/{quotas[0]['id']}", {"hard": {"storage": self.storage_limit(props)}})

    def explain(self, error: HarborApiError, props: dict[str, Any]) -> HarborApiError:
        if error.status == 500 and props.get("registry_id"):
            # validateProjectReq wraps a failed registry lookup in a plain error: HTTP 500.
            return error.with_hint(
                f"Harbor answers 500 when registry id {props['registry_id']} does not exist; is the registry there?"
            )
        return error

    def create(self, props: dict[str, Any]) -> CreateResult:
        props = self.typed(props)
        body = {
            "project_name": props["name"],
            "registry_id": props["registry_id"],
            "metadata": self.metadata(props),
            "storage_limit": self.storage_limit(props),
        }
        project_id, found = self.create_or_adopt(props, "/projects", body)
        client = self.client(props)
        if found is not None:
            if int(found.get("registry_id") or 0) != props["registry_id"]:
                raise HarborApiError(
                    "POST",
                    "/api/v2.0/projects",
                    409,
                    [
                        f"project {props['name']!r} already exists with registry id {found.get('registry_id') or 'none'} "
                        f"(wanted {props['registry_id']})"
                    ],
                    hint="its registry cannot be changed: rename the project, or delete it in Harbor",
                )
            client.request("PUT", f"/projects/{project_id}", {"metadata": self.metadata(props)})
            self.set_quota(client, str(project_id), props)
        self.apply_retention(client, project_id, props["retention_days"])
        return CreateResult(str(project_id), self.outputs(props, None, project_id))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        props = self.typed(props)
        project = self.fetch(props, "/projects", id_)
        if project is None:
            return ReadResult(None, {})
        client = self.client(props)
        values = self.outputs(props, project, int(project["project_id"]))
        values["storage_quota_gb"] = self.read_quota_gb(client, str(project["project_id"]))
        values["retention_days"] = self.read_retention_days(client, project)
        return ReadResult(str(project["project_id"]), values)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        unapplied = self.unapplied(olds)  # from the olds as the state holds them, before typed()
        old, new = self.typed(olds), self.typed(news)
        client = self.client(new)

        def changed(*keys: str) -> bool:
            return any(old[key] != new[key] or key in unapplied for key in keys)

        if self.only_connection_changed(olds, new):
            self.verify_connection(new, id_)

        if changed(*self.METADATA_FIELDS):
            client.request("PUT", f"/projects/{id_}", {"metadata": self.metadata(new)})
        if changed("storage_quota_gb"):
            self.set_quota(client, id_, new)
        if changed("retention_days"):
            self.apply_retention(client, int(id_), new["retention_days"])
        return UpdateResult(self.outputs(new, None, int(id_)))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        props = self.typed(props)
        if not self.still_ours(props, "/projects", id_):
            return
        client = self.client(props)
        try:
            client.request("DELETE", f"/projects/{id_}")
            return
        except HarborApiError as error:
            if error.status == 404:
                return
            if error.status != 412:
                raise
            if not props.get("force_destroy"):
                raise error.with_hint(
                    (
                        f"project {props.get('name')!r} still holds cached repositories; set forceDestroy to delete "
                        "them with it, or delete them in Harbor"
                    ),
                ) from None
        name = props["name"]
        for repository in client.list_all(f"/projects/{name}/repositories"):
            # Repository names carry the project and slashes; Harbor wants them encoded twice.
            short = repository["name"].removeprefix(f"{name}/")
            encoded = urllib.parse.quote(urllib.parse.quote(short, safe=""), safe="")
            client.request("DELETE", f"/projects/{name}/repositories/{encoded}")
        client.request("DELETE", f"/projects/{id_}")


class HarborProject(pulumi.dynamic.Resource, module="harbor", name="Project"):
    project_id: pulumi.Output[int]

    def __init__(
        self, name: str, connection: HarborConnection, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            HarborProjectProvider(),
            name,
            {**connection.props(), **props, "project_id": None},
            with_secret_outputs(opts, "harbor_password"),
        )
