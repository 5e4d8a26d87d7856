"""What every Harbor dynamic provider shares: normalised inputs, local diffs, adoption of an existing
object inside create, the connection to Harbor and the database its objects live in. One module per
Harbor object holds its provider and resource: registry.py, project.py, oidc.py, gc_schedule.py, robot.py.

Every provider's module path is part of every stack's state (Pulumi pickles a dynamic provider by
reference: module + class name). Never rename or move a provider module or class without an entry in
components/__init__.py's LEGACY_MODULES, which keeps the paths of states written before issue 17 working.

Providers hold no state: no client, session or credential is kept on them. Admin credentials
arrive with each resource's inputs (secret), and a client is built inside each call. `diff` is
computed locally without network calls; numbers arrive as floats and `None` values are dropped,
so every input is normalised first.

Every resource also names the database Harbor keeps its objects in (`database`): "local" for the
VM's own PostgreSQL container, "rds:<instance id>" for RDS (components/harbor/config.py
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
import time
from abc import ABCMeta, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, DiffResult, ResourceProvider
from pulumi.output import Unknown
from pulumi.runtime import rpc

from components.harbor.api import HarborApiError, HarborClient, MaybeSent, float_env
from components.settings.validators import validate_api_url

UNKNOWN = rpc.UNKNOWN
CONNECTION = ("harbor_url", "harbor_username", "harbor_password")
# How long to keep looking for an object whose create got no answer: past Harbor's 30 s upstream ping.
SETTLE_SECONDS = 40.0
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


def is_a(value: Any, kind: type) -> bool:
    # bool is an int in Python; Harbor's numbers are not booleans.
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


class HarborProvider(ResourceProvider, metaclass=ABCMeta):
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
            elif not is_unknown(value) and not is_a(value, spec.kind):
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

    def unapplied(self, olds: dict[str, Any]) -> list[str]:
        """The settings this provider did not have when the state was written: never applied yet, so
        their default is no proof of what Harbor holds (e.g. retention_days on an older stack). Only
        the olds as the state holds them can say: `typed()` fills every absent key with its default.
        Secrets are not kept (comparable drops them; their hashes stand for them)."""
        return [key for key in self.comparable(olds) if key in self.FIELDS and key not in olds]

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        old, new = self.comparable(olds), self.comparable(news)
        changed = [key for key in new if is_unknown(new[key]) or new[key] != old.get(key)]
        changed += [key for key in self.unapplied(olds) if key not in changed]
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
        """Whether an update changes nothing in Harbor: only how we reach it (admin password, API URL,
        user). Compares what `comparable` keeps (secrets through their hashes), and a setting an older
        state lacks counts as changed (see diff): so `olds` as the state holds them, never typed()."""
        old, new = self.comparable(olds), self.comparable(news)
        same_hashes = all(olds.get(k) == v for k, v in self.secret_hashes(news).items())
        return same_hashes and not self.unapplied(olds) and all(old.get(k) == new[k] for k in new if k not in CONNECTION)

    def apply_or_verify(self, id_: str, olds: dict[str, Any], news: dict[str, Any], apply: Callable[[dict], None]) -> None:
        """Apply the new (typed) inputs to Harbor; or, when only the connection changed, touch nothing
        in Harbor and prove the new connection with one authenticated call. `olds` as the state holds
        them (see only_connection_changed)."""
        if self.only_connection_changed(olds, news):
            self.verify_connection(news, id_)
        else:
            apply(news)

    @abstractmethod
    def verify_path(self, id_: str) -> str:
        """The object's own GET: what proves a new admin credential (and reaches this object)."""

    def verify_connection(self, props: dict[str, Any], id_: str) -> None:
        """One authenticated call with the new connection, before the state takes it: a wrong
        password or URL fails this `up` here (HTTP 401 says what to do), not the next refresh. A 404
        still proves the credential; the next refresh then sees the object gone."""
        try:
            self.client(props).get(self.verify_path(id_))
        except HarborApiError as error:
            if error.status != 404:
                raise

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


def with_secret_outputs(opts: pulumi.ResourceOptions | None, *keys: str) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=list(keys)))
