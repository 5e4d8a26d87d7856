"""Pulumi dynamic providers for Harbor: registries, proxy-cache projects, OIDC auth and the GC schedule.

This module's path is part of every stack's state (Pulumi pickles a dynamic provider by reference:
module + class name). Never rename or move it, nor the provider classes in it.

Providers hold no state: no client, session or credential is kept on them. Admin credentials
arrive with each resource's inputs (secret), and a client is built inside each call. `diff` is
computed locally without network calls; numbers arrive as floats and `None` values are dropped,
so every input is normalised first.

Every resource also names the database Harbor keeps its objects in (`database`): "local" for the
VM's own PostgreSQL container, "rds:<instance id>" for RDS (components/harbor_config.py
database_identity). Harbor on a new database starts empty while the state still holds the objects
of the old one, with unchanged inputs: only this input tells the engine they must be made again.
A change of it is a replace, old object deleted first; that delete talks to Harbor on the *new*
database, so it tolerates a missing object and leaves alone one that is not ours (another name at
that id: ids restart in a new database). A state written before this input existed lacks it and
means "local", so upgrading a single-VM stack replaces nothing.
Engine behaviour this relies on (pulumi pkg/resource/deploy/step_generator.go): with
deleteBeforeReplace the old resource is deleted before its replacement is created, dependents that
the change would replace first (calculateDependentReplacements), and an old resource left
PendingReplacement by a failed create is never deleted again.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, ClassVar

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult
from pulumi.output import Unknown
from pulumi.runtime import rpc

from components.harbor_api import HarborApiError, HarborClient, MaybeSent, float_env, registry_write_timeout
from components.upstreams import DEFAULT_RETENTION_DAYS, INT32_MAX, MAX_RETENTION_DAYS, MAX_STORAGE_QUOTA_GB, PROXY_CACHE_TYPES
from components.validators import HARBOR_NAME_RE, validate_api_url, validate_gc_cron

UNKNOWN = rpc.UNKNOWN
CONNECTION = ("harbor_url", "harbor_username", "harbor_password")
GIB = 1024**3
# How long to keep looking for an object whose create got no answer: past Harbor's 30 s upstream ping.
SETTLE_SECONDS = 40.0
# Harbor's limit on registry names (src/controller/registry/controller.go validate).
REGISTRY_NAME_MAX = 64
DATABASE = "database"
LOCAL_DATABASE = "local"


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


def database_of(props: dict[str, Any]) -> Any:
    """The database an object lives in; absent (a state from before this input) means the VM's own."""
    value = props.get(DATABASE)
    return LOCAL_DATABASE if value is None or value == "" else value


def check_database(value: Any) -> CheckFailure | None:
    if is_unknown(value) or isinstance(value, str):
        return None
    return CheckFailure(DATABASE, f"{DATABASE} must be a string naming Harbor's database, got {type(value).__name__}")


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
    ID_KEY: ClassVar[str] = "id"

    # Inputs

    def normalise(self, props: dict[str, Any]) -> dict[str, Any]:
        values = {key: props.get(key) for key in CONNECTION}
        values[DATABASE] = database_of(props)
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
        if check_database(inputs[DATABASE]):
            failures.append(check_database(inputs[DATABASE]))
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
        return {key: values[key] for key in (*CONNECTION, DATABASE, *self.FIELDS)}

    def secret_hashes(self, news: dict[str, Any]) -> dict[str, str]:
        return {}

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        old, new = self.comparable(olds), self.comparable(news)
        changed = [key for key in new if is_unknown(new[key]) or new[key] != old.get(key)]
        # A setting this provider did not have when the state was written: never applied yet, so
        # its default is no proof of what Harbor holds (e.g. retention_days on an older stack).
        changed += [key for key in new if key in self.FIELDS and key not in olds and key not in changed]
        for key, value in self.secret_hashes(news).items():
            if is_unknown(value) or value != olds.get(key):
                changed.append(key)
        replaces = [key for key in changed if key == DATABASE or (key in self.FIELDS and self.FIELDS[key].replace)]
        return DiffResult(
            changes=bool(changed),
            replaces=replaces,
            # Same name, new registry: the old project must go before Harbor accepts the name again.
            # New database: the delete must run before the create, or a new object could take the
            # old one's id in the new database and be deleted in its place.
            delete_before_replace=bool(replaces) and ("name" not in replaces or DATABASE in replaces),
        )

    # Calls

    @staticmethod
    def client(props: dict[str, Any]) -> HarborClient:
        return HarborClient(props["harbor_url"], props["harbor_username"], props["harbor_password"])

    @staticmethod
    def connection(props: dict[str, Any]) -> dict[str, Any]:
        """What every output carries besides the object: how to reach Harbor and which database it is in."""
        return {**{key: props[key] for key in CONNECTION}, DATABASE: database_of(props)}

    def only_connection_changed(self, olds: dict[str, Any], news: dict[str, Any]) -> bool:
        old, new = self.comparable(olds), self.comparable(news)
        same_hashes = all(olds.get(k) == v for k, v in self.secret_hashes(news).items())
        return same_hashes and all(old[k] == new[k] for k in self.FIELDS)

    def create_or_adopt(
        self, props: dict[str, Any], collection: str, body: dict[str, Any], key: str = "name", timeout: float | None = None
    ) -> tuple[int, dict | None]:
        """Create the object, or find the one of that exact name: (id, None) when this call created it
        (also when the answer was lost and the name lookup found it), (id, found) to adopt.

        The engine cannot import dynamic resources (it sends Read with the id only), so adoption
        happens here. The POST is sent at most once: when it may have reached Harbor without an
        answer, the name is looked up instead, until Harbor has finished what it was doing.
        """
        client = self.client(props)
        name = props["name"]
        found = client.find_by_name(collection, name, key)
        if found is not None:
            return int(found[self.ID_KEY]), found
        try:
            answer = client.request("POST", collection, body, timeout=timeout)
        except MaybeSent as error:
            found = self.settle(client, collection, name, key)
            if found is None:
                raise error.with_hint(
                    f"Harbor did not answer and has no {self.KIND} named {name!r}; run `pulumi up` again "
                    "(it adopts what Harbor may have created meanwhile)"
                ) from None
            # Absent a moment ago, present now: our own POST made it, with our body.
            return int(found[self.ID_KEY]), None
        except HarborApiError as error:
            found = client.find_by_name(collection, name, key) if error.status == 409 else None
            if found is None:
                raise self.explain(error, props) from None
            return int(found[self.ID_KEY]), found
        return int(answer.location_id()), None

    @staticmethod
    def settle(client: HarborClient, collection: str, name: str, key: str) -> dict | None:
        """Look the name up until Harbor is surely done with a request that got no answer."""
        deadline = time.monotonic() + float_env("HARBOR_CACHE_SETTLE_SECONDS", SETTLE_SECONDS)
        while True:
            found = client.find_by_name(collection, name, key)
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(min(2.0, max(0.05, deadline - time.monotonic())))

    def explain(self, error: HarborApiError, props: dict[str, Any]) -> HarborApiError:
        """The same error with what to do about it, where Harbor's own message does not say."""
        return error

    def fetch(self, props: dict[str, Any], collection: str, id_: str) -> dict | None:
        """One GET by id; None when Harbor has no such object (404 only: admin passes every RBAC check,
        so a 403 is a real problem, not a deleted object)."""
        try:
            return self.client(props).get(f"{collection}/{id_}")
        except HarborApiError as error:
            if error.status == 404:
                return None
            raise

    def still_ours(self, props: dict[str, Any], collection: str, id_: str) -> bool:
        """Whether Harbor's object at `id_` is the one the state describes, before a delete.

        After a database change Harbor answers from the new database, where ids start again: the
        id may be gone, or belong to an object this same `up` just made under another name.
        """
        found = self.fetch(props, collection, id_)
        return found is not None and found.get("name") == props.get("name")


# Registries


class HarborRegistryProvider(HarborProvider):
    KIND = "registry"
    FIELDS = {
        "name": Field(str),
        "type": Field(str, replace=True),
        "url": Field(str),
        "description": Field(str, ""),
        "insecure": Field(bool, False),
        "ca_certificate": Field(str, ""),
        "access_key": Field(str, ""),
        "access_secret": Field(str, ""),
    }
    SHOWN = ("name", "url", "description", "insecure", "ca_certificate")

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
        name = inputs["name"]
        if not is_unknown(name) and not 1 <= len(name) <= REGISTRY_NAME_MAX:
            failures.append(CheckFailure("name", f"{name!r} is longer than Harbor's {REGISTRY_NAME_MAX} characters"))
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
        ca = inputs["ca_certificate"]
        if not is_unknown(ca) and ca and "-----BEGIN CERTIFICATE-----" not in ca:
            failures.append(CheckFailure("ca_certificate", "ca_certificate is not a PEM certificate"))
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
            "ca_certificate": source.get("ca_certificate") or "",
            "registry_id": registry_id,
            "credential_hash": props.get("credential_hash") or self.secret_hashes(props)["credential_hash"],
        }

    def explain(self, error: HarborApiError, props: dict[str, Any]) -> HarborApiError:
        name, url = props.get("name"), props.get("url")
        if error.status == 400 and any("unhealthy" in m for m in error.messages):
            reach = "https://hub.docker.com (Docker Hub's login)" if props.get("type") == "docker-hub" else url
            credential = f", and that the credential in upstreamCredentials.{name} is valid" if props.get("access_key") else ""
            return error.with_hint(
                f"Harbor (on the VM) could not reach {reach} for registry {name!r}: check the VM's outbound access "
                f"(security group egress, network ACL, proxy, DNS) to that URL{credential}"
            )
        if error.status == 500 and props.get("type") == "docker-hub":
            # Harbor answers a failed Docker Hub login with 500 (pkg/reg/adapter/dockerhub/client.go).
            return error.with_hint(
                f"Harbor could not log in to Docker Hub for registry {name!r}: check upstreamCredentials.{name} "
                "(a Docker Hub username and a valid access token)"
            )
        return error

    def body(self, props: dict[str, Any]) -> dict[str, Any]:
        return {key: props[key] for key in self.SHOWN}

    def put(self, props: dict[str, Any], id_: str, body: dict[str, Any]) -> None:
        try:
            self.client(props).request("PUT", f"/registries/{id_}", body, timeout=registry_write_timeout())
        except HarborApiError as error:
            raise self.explain(error, props) from None

    def credential_body(self, props: dict[str, Any]) -> dict[str, Any]:
        """PUT's flat credential fields; empty ones remove a credential."""
        return {
            "credential_type": "basic",
            "access_key": props.get("access_key") or "",
            "access_secret": props.get("access_secret") or "",
        }

    def create(self, props: dict[str, Any]) -> CreateResult:
        props = self.typed(props)
        body = {key: props[key] for key in ("type", *self.SHOWN)}
        if props.get("access_key"):
            body["credential"] = {"type": "basic", "access_key": props["access_key"], "access_secret": props["access_secret"]}
        registry_id, found = self.create_or_adopt(props, "/registries", body, timeout=registry_write_timeout())
        if found is not None:
            self.adopt(props, found)
        return CreateResult(str(registry_id), self.outputs(props, None, registry_id))

    def adopt(self, props: dict[str, Any], found: dict) -> None:
        """Take over a registry of our name when it points where ours would; set it to the desired state."""
        differences = []
        if found.get("type") != props["type"]:
            differences.append(f"type {found.get('type')!r} (wanted {props['type']!r})")
        if (found.get("url") or "").rstrip("/") != props["url"].rstrip("/"):
            differences.append(f"URL {found.get('url')!r} (wanted {props['url']!r})")
        if differences:
            raise HarborApiError(
                "POST",
                "/api/v2.0/registries",
                409,
                [f"registry {props['name']!r} already exists with {' and '.join(differences)}"],
                hint="rename the upstream, or change or delete that registry in Harbor",
            )
        # The stored secret cannot be read back: send ours so the adopted registry uses it.
        self.put(props, str(found["id"]), {**self.body(props), **self.credential_body(props)})

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
        # PUT takes a flat body and changes only the fields sent: without access_secret Harbor
        # keeps the stored secret (handler/registry.go UpdateRegistry). Send it only when it changed.
        body = self.body(news)
        if olds.get("credential_hash") != outputs["credential_hash"]:
            body.update(self.credential_body(news))
        self.put(news, id_, body)
        return UpdateResult(outputs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        props = self.typed(props)
        if not self.still_ours(props, "/registries", id_):
            return
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

    def outputs(
        self, props: dict[str, Any], project: dict | None, project_id: int, retention_days: int | None = None
    ) -> dict[str, Any]:
        values = {**self.connection(props), **{key: props[key] for key in self.FIELDS}, "project_id": project_id}
        if project is not None:
            metadata = project.get("metadata") or {}
            values.update(
                name=project["name"],
                registry_id=int(project.get("registry_id") or 0),
                public=metadata.get("public", "false") == "true",
                speed_limit_kbps=int(metadata.get("proxy_speed_kb", "-1")),
                # Absent means false and no limit (pkg/project/models/project.go).
                local_on_not_found=metadata.get("proxy_cache_local_on_not_found", "false") == "true",
                max_upstream_conn=int(metadata.get("max_upstream_conn", "-1")),
            )
        if retention_days is not None:
            values["retention_days"] = retention_days
        return values

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
        """The days of the nDaysSinceLastPull rule; 0 when the project has none (a diff then restores it)."""
        retention_id = (project.get("metadata") or {}).get("retention_id")
        if not retention_id:
            return 0
        try:
            policy = client.get(f"/retentions/{retention_id}") or {}
        except HarborApiError as error:
            if error.status == 404:
                return 0
            raise
        for rule in policy.get("rules") or []:
            if rule.get("template") == "nDaysSinceLastPull" and rule.get("action") == "retain" and not rule.get("disabled"):
                return int((rule.get("params") or {}).get("nDaysSinceLastPull", 0))
        return 0

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
        days = self.read_retention_days(self.client(props), project)
        return ReadResult(str(project["project_id"]), self.outputs(props, project, int(project["project_id"]), days))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        unapplied = {key for key in self.FIELDS if key not in olds}  # see diff: an older state
        olds, news = self.typed(olds), self.typed(news)
        old, new = olds, news
        client = self.client(news)

        def changed(*keys: str) -> bool:
            return any(old[key] != new[key] or key in unapplied for key in keys)

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
        "oidc_scope": Field(str, "openid,profile,email,groups,offline_access"),
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
        # Harbor reports the parameters as `job_parameters`, a JSON string (handler/model/gc.go
        # GCSchedule.ToSwagger), not as the `parameters` object it takes.
        try:
            parameters = json.loads(current.get("job_parameters") or "{}")
        except json.JSONDecodeError:
            parameters = {}
        if not isinstance(parameters, dict):
            parameters = {}
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
    # The database Harbor keeps its objects in (see the module docstring): a change re-creates them.
    database: pulumi.Input[str] = LOCAL_DATABASE

    def props(self) -> dict[str, Any]:
        return {
            "harbor_url": self.url,
            "harbor_username": self.username,
            "harbor_password": pulumi.Output.secret(self.password),
            DATABASE: self.database,
        }


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
