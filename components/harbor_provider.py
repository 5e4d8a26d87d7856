"""Pulumi dynamic providers for Harbor: registries, proxy-cache projects, OIDC auth and the GC schedule.

This module's path is part of every stack's state (Pulumi pickles a dynamic provider by reference:
module + class name). Never rename or move it, nor the provider classes in it.

Providers hold no state: no client, session or credential is kept on them. Admin credentials
arrive with each resource's inputs (secret), and a client is built inside each call. `diff` is
computed locally without network calls; numbers arrive as floats and `None` values are dropped,
so every input is normalised first.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from dataclasses import dataclass
from typing import Any, ClassVar

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult
from pulumi.output import Unknown
from pulumi.runtime import rpc

from components.harbor_api import HarborApiError, HarborClient
from components.upstreams import PROXY_CACHE_TYPES
from components.validators import HARBOR_NAME_RE, validate_api_url, validate_gc_cron

UNKNOWN = rpc.UNKNOWN
CONNECTION = ("harbor_url", "harbor_username", "harbor_password")
GIB = 1024**3


@dataclass(frozen=True)
class Field:
    kind: type
    default: Any = None  # None: required
    replace: bool = False


def is_unknown(value: Any) -> bool:
    """During preview the engine sends values not yet known; they arrive as Unknown."""
    return isinstance(value, Unknown) or value == UNKNOWN


def secret_hash(*parts: str) -> str:
    """What we keep of a secret to see it change (Harbor never returns it)."""
    if not any(parts):
        return ""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def check_harbor_url(url: Any) -> str | None:
    if is_unknown(url):
        return None
    problem = validate_api_url(url)
    return f"{url!r} {problem}" if problem else None


def _is_a(value: Any, kind: type) -> bool:
    # bool is an int in Python; Harbor's numbers are not booleans.
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


class HarborProvider(ResourceProvider):
    """Shared mechanics: normalising inputs, local diffs and the client. Subclasses say what differs."""

    FIELDS: ClassVar[dict[str, Field]] = {}
    KIND: ClassVar[str] = "object"

    # Inputs

    def normalise(self, props: dict[str, Any]) -> dict[str, Any]:
        values = {key: props.get(key) for key in CONNECTION}
        for key, spec in self.FIELDS.items():
            value = props.get(key, spec.default)
            if spec.kind is int and isinstance(value, float) and value.is_integer():
                value = int(value)
            values[key] = value
        return values

    def typed(self, props: dict[str, Any]) -> dict[str, Any]:
        """Props with every known field normalised (the engine sends numbers as floats everywhere)."""
        return {**props, **self.normalise(props)}

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = self.normalise(news)
        failures = [CheckFailure(key, f"{key} is required") for key in CONNECTION if not inputs.get(key)]
        problem = check_harbor_url(inputs.get("harbor_url"))
        if problem:
            failures.append(CheckFailure("harbor_url", problem))
        for key, spec in self.FIELDS.items():
            value = inputs[key]
            if value is None:
                failures.append(CheckFailure(key, f"{key} is required"))
            elif not is_unknown(value) and not _is_a(value, spec.kind):
                failures.append(CheckFailure(key, f"{key} must be a {spec.kind.__name__}, got {type(value).__name__}"))
        if not failures:
            failures = self.validate(inputs)
        return CheckResult(inputs, failures)

    def validate(self, inputs: dict[str, Any]) -> list[CheckFailure]:
        return []

    # Diff

    def comparable(self, props: dict[str, Any]) -> dict[str, Any]:
        """The values that define the object in Harbor, plus connection and secret hashes."""
        values = self.normalise(props)
        return {key: values[key] for key in (*CONNECTION, *self.FIELDS)}

    def secret_hashes(self, news: dict[str, Any]) -> dict[str, str]:
        return {}

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        old, new = self.comparable(olds), self.comparable(news)
        changed = [key for key in new if is_unknown(new[key]) or new[key] != old.get(key)]
        for key, value in self.secret_hashes(news).items():
            if is_unknown(value) or value != olds.get(key):
                changed.append(key)
        replaces = [key for key in changed if key in self.FIELDS and self.FIELDS[key].replace]
        return DiffResult(
            changes=bool(changed),
            replaces=replaces,
            # Same name, new registry: the old project must go before Harbor accepts the name again.
            delete_before_replace=bool(replaces) and "name" not in replaces,
        )

    # Calls

    @staticmethod
    def client(props: dict[str, Any]) -> HarborClient:
        return HarborClient(props["harbor_url"], props["harbor_username"], props["harbor_password"])

    @staticmethod
    def connection(props: dict[str, Any]) -> dict[str, Any]:
        return {key: props[key] for key in CONNECTION}

    def only_connection_changed(self, olds: dict[str, Any], news: dict[str, Any]) -> bool:
        old, new = self.comparable(olds), self.comparable(news)
        same_hashes = all(olds.get(k) == v for k, v in self.secret_hashes(news).items())
        return same_hashes and all(old[k] == new[k] for k in self.FIELDS)

    def create_in(self, props: dict[str, Any], collection: str, body: dict[str, Any]) -> int:
        """POST to a collection; the new object's id comes back in Location (one call)."""
        try:
            answer = self.client(props).request("POST", collection, body)
        except HarborApiError as error:
            raise self.already_exists(error, props["name"]) from None
        return int(answer.location_id())

    def fetch(self, props: dict[str, Any], collection: str, id_: str, gone: tuple[int, ...] = (404,)) -> dict | None:
        """One GET by id, or an exact lookup by name when importing; None when Harbor has no such object."""
        client = self.client(props)
        if not id_.isdigit():
            return client.find_by_name(collection, id_)
        try:
            return client.get(f"{collection}/{id_}")
        except HarborApiError as error:
            if error.status in gone:
                return None
            raise

    def already_exists(self, error: HarborApiError, name: str) -> HarborApiError:
        if error.status != 409:
            return error
        return error.with_hint(
            f"{self.KIND} {name!r} already exists in Harbor. Import it instead of creating it: "
            f"""`pulumi config set --path 'harborImports["{self.KIND}/{name}"]' {name}` and run `pulumi up` again, """
            "or delete it in Harbor"
        )


# Registries


class HarborRegistryProvider(HarborProvider):
    KIND = "registry"
    FIELDS = {
        "name": Field(str),
        "type": Field(str, replace=True),
        "url": Field(str),
        "description": Field(str, ""),
        "insecure": Field(bool, False),
        "access_key": Field(str, ""),
        "access_secret": Field(str, ""),
    }

    def comparable(self, props: dict[str, Any]) -> dict[str, Any]:
        values = super().comparable(props)
        # The credential is compared through its hash (olds carry no plain secret).
        values.pop("access_key")
        values.pop("access_secret")
        return values

    def secret_hashes(self, news: dict[str, Any]) -> dict[str, str]:
        key, secret = news.get("access_key", ""), news.get("access_secret", "")
        if is_unknown(key) or is_unknown(secret):
            return {"credential_hash": UNKNOWN}
        return {"credential_hash": secret_hash(key or "", secret or "")}

    def validate(self, inputs: dict[str, Any]) -> list[CheckFailure]:
        failures = []
        if inputs["type"] == "quay":
            failures.append(CheckFailure("type", "'quay' was removed from Harbor; use docker-registry with https://quay.io"))
        elif not is_unknown(inputs["type"]) and inputs["type"] not in PROXY_CACHE_TYPES:
            failures.append(
                CheckFailure("type", f"{inputs['type']!r} is not a proxy-cache type; accepted: {', '.join(PROXY_CACHE_TYPES)}")
            )
        url = inputs["url"]
        if not is_unknown(url) and urllib.parse.urlsplit(url).scheme not in ("https", "http"):
            failures.append(CheckFailure("url", f"{url!r} is not an http(s) URL"))
        if bool(inputs["access_key"]) != bool(inputs["access_secret"]):
            failures.append(CheckFailure("access_secret", "access_key and access_secret go together"))
        return failures

    def outputs(self, props: dict[str, Any], registry: dict | None, registry_id: int) -> dict[str, Any]:
        source = registry if registry is not None else props
        return {
            **self.connection(props),
            "name": source["name"],
            "type": source["type"],
            "url": source["url"],
            "description": source.get("description") or "",
            "insecure": bool(source.get("insecure", False)),
            "registry_id": registry_id,
            "credential_hash": props.get("credential_hash") or self.secret_hashes(props)["credential_hash"],
        }

    def create(self, props: dict[str, Any]) -> CreateResult:
        props = self.typed(props)
        body = {key: props[key] for key in ("name", "type", "url", "description", "insecure")}
        if props.get("access_key"):
            body["credential"] = {"type": "basic", "access_key": props["access_key"], "access_secret": props["access_secret"]}
        registry_id = self.create_in(props, "/registries", body)
        return CreateResult(str(registry_id), self.outputs(props, None, registry_id))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        props = self.typed(props)
        registry = self.fetch(props, "/registries", id_)
        if registry is None:
            return ReadResult(None, {})
        return ReadResult(str(registry["id"]), self.outputs(props, registry, int(registry["id"])))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        olds, news = self.typed(olds), self.typed(news)
        outputs = self.outputs({**news, "credential_hash": None}, None, int(id_))
        if self.only_connection_changed(olds, news):
            return UpdateResult(outputs)
        # PUT takes a flat body. Send the secret whenever there is one: a URL change without it
        # clears the stored secret.
        body = {key: news[key] for key in ("name", "url", "description", "insecure")}
        if news.get("access_key") or olds.get("credential_hash"):
            body.update(
                credential_type="basic", access_key=news.get("access_key", ""), access_secret=news.get("access_secret", "")
            )
        self.client(news).request("PUT", f"/registries/{id_}", body)
        return UpdateResult(outputs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        props = self.typed(props)
        try:
            self.client(props).request("DELETE", f"/registries/{id_}")
        except HarborApiError as error:
            if error.status == 404:
                return
            if error.status == 412:
                raise error.with_hint(
                    f"registry {props.get('name')!r} is still used by a proxy-cache project or a "
                    "replication rule; remove those first",
                ) from None
            raise


# Projects


class HarborProjectProvider(HarborProvider):
    KIND = "project"
    FIELDS = {
        "name": Field(str, replace=True),
        "registry_id": Field(int, replace=True),
        "public": Field(bool, True),
        "storage_quota_gb": Field(int, -1),
        "speed_limit_kbps": Field(int, -1),
        "force_destroy": Field(bool, False),
    }

    def validate(self, inputs: dict[str, Any]) -> list[CheckFailure]:
        failures = []
        name = inputs["name"]
        if not is_unknown(name) and (not HARBOR_NAME_RE.match(name) or len(name) > 255):
            failures.append(CheckFailure("name", f"{name!r} is not a Harbor project name ([a-z0-9] groups joined by . _ -)"))
        if not is_unknown(inputs["registry_id"]) and inputs["registry_id"] < 1:
            failures.append(CheckFailure("registry_id", "registry_id must be a Harbor registry id (1 or more)"))
        for key in ("storage_quota_gb", "speed_limit_kbps"):
            value = inputs[key]
            if not is_unknown(value) and (value == 0 or value < -1):
                failures.append(CheckFailure(key, f"{key} must be -1 (unlimited) or positive, got {value}"))
        return failures

    @staticmethod
    def metadata(props: dict[str, Any]) -> dict[str, str]:
        # Harbor's project metadata values are strings.
        return {"public": "true" if props["public"] else "false", "proxy_speed_kb": str(props["speed_limit_kbps"])}

    @staticmethod
    def storage_limit(props: dict[str, Any]) -> int:
        return -1 if props["storage_quota_gb"] == -1 else props["storage_quota_gb"] * GIB

    def outputs(self, props: dict[str, Any], project: dict | None, project_id: int) -> dict[str, Any]:
        values = {**self.connection(props), **{key: props[key] for key in self.FIELDS}, "project_id": project_id}
        if project is not None:
            metadata = project.get("metadata") or {}
            values.update(
                name=project["name"],
                registry_id=int(project.get("registry_id") or 0),
                public=metadata.get("public", "false") == "true",
                speed_limit_kbps=int(metadata.get("proxy_speed_kb", "-1")),
            )
        return values

    def create(self, props: dict[str, Any]) -> CreateResult:
        props = self.typed(props)
        body = {
            "project_name": props["name"],
            "registry_id": props["registry_id"],
            "metadata": self.metadata(props),
            "storage_limit": self.storage_limit(props),
        }
        project_id = self.create_in(props, "/projects", body)
        return CreateResult(str(project_id), self.outputs(props, None, project_id))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        props = self.typed(props)
        # A project that is gone answers 403 to an admin as often as 404.
        project = self.fetch(props, "/projects", id_, gone=(403, 404))
        if project is None:
            return ReadResult(None, {})
        return ReadResult(str(project["project_id"]), self.outputs(props, project, int(project["project_id"])))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        olds, news = self.typed(olds), self.typed(news)
        old, new = olds, news
        client = self.client(news)
        if (old["public"], old["speed_limit_kbps"]) != (new["public"], new["speed_limit_kbps"]):
            client.request("PUT", f"/projects/{id_}", {"metadata": self.metadata(new)})
        if old["storage_quota_gb"] != new["storage_quota_gb"]:
            quotas = client.get("/quotas", reference="project", reference_id=id_) or []
            if not quotas:
                raise HarborApiError("GET", f"/api/v2.0/quotas?reference_id={id_}", 200, [f"project {id_} has no quota"])
            client.request("PUT", f"/quotas/{quotas[0]['id']}", {"hard": {"storage": self.storage_limit(new)}})
        return UpdateResult(self.outputs(new, None, int(id_)))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        props = self.typed(props)
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


# OIDC authentication


class HarborOidcProvider(HarborProvider):
    KIND = "oidc"
    FIELDS = {
        "oidc_name": Field(str),
        "oidc_endpoint": Field(str),
        "oidc_client_id": Field(str),
        "oidc_client_secret": Field(str),
        "oidc_groups_claim": Field(str, "groups"),
        "oidc_admin_group": Field(str, ""),
        "oidc_scope": Field(str, "openid,profile,email,groups"),
        "oidc_verify_cert": Field(bool, True),
        "oidc_auto_onboard": Field(bool, False),
        "oidc_user_claim": Field(str, ""),
    }
    SETTINGS = tuple(key for key in FIELDS if key != "oidc_client_secret")

    def comparable(self, props: dict[str, Any]) -> dict[str, Any]:
        values = super().comparable(props)
        values.pop("oidc_client_secret")
        return values

    def secret_hashes(self, news: dict[str, Any]) -> dict[str, str]:
        secret = news.get("oidc_client_secret", "")
        return {"client_secret_hash": UNKNOWN if is_unknown(secret) else secret_hash(secret or "")}

    def validate(self, inputs: dict[str, Any]) -> list[CheckFailure]:
        endpoint = inputs["oidc_endpoint"]
        if not is_unknown(endpoint) and urllib.parse.urlsplit(endpoint).scheme != "https":
            return [CheckFailure("oidc_endpoint", f"{endpoint!r} is not an https URL")]
        scope = inputs["oidc_scope"]
        if not is_unknown(scope) and "openid" not in scope.split(","):
            return [CheckFailure("oidc_scope", f"{scope!r} lacks openid")]
        return []

    def outputs(self, props: dict[str, Any]) -> dict[str, Any]:
        return {
            **self.connection(props),
            **{key: props[key] for key in self.SETTINGS},
            "client_secret_hash": props.get("client_secret_hash") or self.secret_hashes(props)["client_secret_hash"],
        }

    def apply(self, props: dict[str, Any]) -> None:
        body = {"auth_mode": "oidc_auth", **{key: props[key] for key in self.FIELDS}}
        try:
            self.client(props).request("PUT", "/configurations", body)
        except HarborApiError as error:
            if error.status == 400 and any("auth" in m.lower() for m in error.messages):
                raise error.with_hint(
                    (
                        "OIDC cannot be switched on: Harbor locks auth_mode once any user other than admin exists. "
                        "Delete those users in Harbor (or set the auth mode by hand), then run `pulumi up` again"
                    ),
                ) from None
            raise

    def create(self, props: dict[str, Any]) -> CreateResult:
        props = self.typed(props)
        self.apply(props)
        return CreateResult("oidc", self.outputs({**props, "client_secret_hash": None}))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        props = self.typed(props)
        current = self.client(props).get("/configurations") or {}
        if (current.get("auth_mode") or {}).get("value") != "oidc_auth":
            return ReadResult(None, {})
        values = {key: (current.get(key) or {}).get("value", props.get(key)) for key in self.SETTINGS}
        return ReadResult("oidc", self.outputs({**props, **values}))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        olds, news = self.typed(olds), self.typed(news)
        if not self.only_connection_changed(olds, news):
            self.apply(news)
        return UpdateResult(self.outputs({**news, "client_secret_hash": None}))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        props = self.typed(props)
        # Back to local users where Harbor allows it; once OIDC users exist Harbor keeps OIDC.
        try:
            self.client(props).request("PUT", "/configurations", {"auth_mode": "db_auth"})
        except HarborApiError as error:
            if error.status not in (400, 404):
                raise


# Garbage collection


class HarborGcScheduleProvider(HarborProvider):
    KIND = "gc-schedule"
    FIELDS = {"cron": Field(str), "delete_untagged": Field(bool, True), "workers": Field(int, 1)}

    def validate(self, inputs: dict[str, Any]) -> list[CheckFailure]:
        failures = []
        if not is_unknown(inputs["cron"]) and validate_gc_cron(inputs["cron"]):
            failures.append(CheckFailure("cron", f"{inputs['cron']!r} {validate_gc_cron(inputs['cron'])}"))
        if not is_unknown(inputs["workers"]) and not 1 <= inputs["workers"] <= 10:
            failures.append(CheckFailure("workers", f"workers must be 1..10, got {inputs['workers']}"))
        return failures

    @staticmethod
    def body(props: dict[str, Any]) -> dict[str, Any]:
        # Harbor takes booleans and integers in parameters, whatever its spec says.
        return {
            "schedule": {"type": "Custom", "cron": props["cron"]},
            "parameters": {"delete_untagged": props["delete_untagged"], "workers": props["workers"]},
        }

    def outputs(self, props: dict[str, Any]) -> dict[str, Any]:
        return {**self.connection(props), **{key: props[key] for key in self.FIELDS}}

    def create(self, props: dict[str, Any]) -> CreateResult:
        props = self.typed(props)
        self.client(props).request("POST", "/system/gc/schedule", self.body(props))
        return CreateResult("gc", self.outputs(props))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        props = self.typed(props)
        current = self.client(props).get("/system/gc/schedule")
        schedule = (current or {}).get("schedule") if isinstance(current, dict) else None
        if not schedule or schedule.get("type") in (None, "", "None"):
            return ReadResult(None, {})
        parameters = current.get("parameters") or {}
        values = {
            "cron": schedule.get("cron", props.get("cron")),
            "delete_untagged": bool(parameters.get("delete_untagged", props.get("delete_untagged", True))),
            "workers": int(parameters.get("workers", props.get("workers", 1))),
        }
        return ReadResult("gc", self.outputs({**props, **values}))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        olds, news = self.typed(olds), self.typed(news)
        if not self.only_connection_changed(olds, news):
            self.client(news).request("PUT", "/system/gc/schedule", self.body(news))
        return UpdateResult(self.outputs(news))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        props = self.typed(props)
        self.client(props).request("PUT", "/system/gc/schedule", {"schedule": {"type": "None"}})


# Resources the program registers


@dataclass(frozen=True)
class HarborConnection:
    url: pulumi.Input[str]
    username: pulumi.Input[str]
    password: pulumi.Input[str]

    def props(self) -> dict[str, Any]:
        return {"harbor_url": self.url, "harbor_username": self.username, "harbor_password": pulumi.Output.secret(self.password)}


def _with_secrets(opts: pulumi.ResourceOptions | None, *keys: str) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=list(keys)))


class HarborRegistry(pulumi.dynamic.Resource, module="harbor", name="Registry"):
    registry_id: pulumi.Output[int]

    def __init__(
        self, name: str, connection: HarborConnection, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        secrets = {key: pulumi.Output.secret(props[key]) for key in ("access_key", "access_secret") if key in props}
        super().__init__(
            HarborRegistryProvider(),
            name,
            {**connection.props(), **props, **secrets, "registry_id": None, "credential_hash": None},
            _with_secrets(opts, "credential_hash", "harbor_password"),
        )


class HarborProject(pulumi.dynamic.Resource, module="harbor", name="Project"):
    project_id: pulumi.Output[int]

    def __init__(
        self, name: str, connection: HarborConnection, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            HarborProjectProvider(),
            name,
            {**connection.props(), **props, "project_id": None},
            _with_secrets(opts, "harbor_password"),
        )


class HarborOidcAuth(pulumi.dynamic.Resource, module="harbor", name="OidcAuth"):
    def __init__(
        self, name: str, connection: HarborConnection, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {**props, "oidc_client_secret": pulumi.Output.secret(props["oidc_client_secret"])}
        super().__init__(
            HarborOidcProvider(),
            name,
            {**connection.props(), **props, "client_secret_hash": None},
            _with_secrets(opts, "client_secret_hash", "harbor_password"),
        )


class HarborGcSchedule(pulumi.dynamic.Resource, module="harbor", name="GcSchedule"):
    def __init__(
        self, name: str, connection: HarborConnection, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            HarborGcScheduleProvider(), name, {**connection.props(), **props}, _with_secrets(opts, "harbor_password")
        )
