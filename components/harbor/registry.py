"""Harbor's registry endpoints (the upstreams a proxy-cache project pulls from): the dynamic provider
and the resource the program registers.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CreateResult, ReadResult, UpdateResult

from components.harbor.api import HarborApiError, registry_write_timeout
from components.harbor.provider_base import (
    UNKNOWN,
    Field,
    HarborConnection,
    HarborProvider,
    is_unknown,
    secret_hash,
    with_secret_outputs,
)
from components.settings.upstreams import (
    PROXY_CACHE_TYPES,
)

# Harbor's limit on registry names (src/controller/registry/controller.go validate).
REGISTRY_NAME_MAX = 64
# What a refresh puts in place of the credential's hash when Harbor holds another credential than
# ours (another access key, or a secret where we have none or none where we have one): never a
# sha256, so the next diff shows the credential changed and `up` sends ours again.
CREDENTIAL_CHANGED = "changed in Harbor"


def harbor_url_form(url: str) -> str:
    """The URL as Harbor stores it (src/lib/endpoint.go ValidateHTTPURL, called by the registry
    controller's validate on every create and update): spaces and trailing slashes trimmed, the
    scheme lower-cased by Go's url.Parse, and only scheme://host/path kept. Inputs are put in this
    form, so what a refresh reads back compares equal and an `HTTPS://...` input is not PUT again on
    every `up`."""
    text = url.strip(" ").rstrip("/")
    if "://" not in text:
        text = "http://" + text
    parts = urllib.parse.urlsplit(text)
    return f"{parts.scheme.lower()}://{parts.netloc.rpartition('@')[2]}{parts.path}"


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

    def normalise(self, props: dict[str, Any]) -> dict[str, Any]:
        values = super().normalise(props)
        url = values["url"]
        if (
            isinstance(url, str)
            and not is_unknown(url)
            and urllib.parse.urlsplit(url.strip()).scheme.lower() in ("http", "https")
        ):
            values["url"] = harbor_url_form(url)
        return values

    def verify_path(self, id_: str) -> str:
        return f"/registries/{id_}"

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
        """The state: ours after a create or update (registry None), Harbor's after a refresh."""
        source = registry if registry is not None else props
        credential_hash = props.get("credential_hash") or self.secret_hashes(props)["credential_hash"]
        if registry is None:
            access_key_hash = secret_hash(props.get("access_key") or "")
        else:
            access_key_hash = props.get("access_key_hash")  # None in a state from before it existed
            if self.credential_changed(registry, credential_hash, access_key_hash):
                credential_hash = CREDENTIAL_CHANGED
        return {
            **self.connection(props),
            "name": source["name"],
            "type": source["type"],
            "url": source["url"],
            "description": source.get("description") or "",
            "insecure": bool(source.get("insecure", False)),
            "ca_certificate": source.get("ca_certificate") or "",
            "registry_id": registry_id,
            "credential_hash": credential_hash,
            # The access key's hash: Harbor shows the key in clear (handler/replication.go
            # convertRegistry), so a refresh sees a key changed in Harbor through it.
            "access_key_hash": access_key_hash,
        }

    @staticmethod
    def credential_changed(registry: dict, credential_hash: str, access_key_hash: str | None) -> bool:
        """Whether Harbor's credential is not the one the state describes. Harbor shows the access key
        and masks the secret ("*****" when one is stored, absent when not): a key or the presence of
        a secret can be compared, the secret itself cannot. A state from before access_key_hash
        existed compares presence only."""
        credential = registry.get("credential") or {}
        has_secret = bool(credential.get("access_secret"))
        if has_secret != bool(credential_hash) and credential_hash != CREDENTIAL_CHANGED:
            return True
        return access_key_hash is not None and secret_hash(credential.get("access_key") or "") != access_key_hash

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
        fresh = {k: v for k, v in props.items() if k not in ("credential_hash", "access_key_hash")}
        return CreateResult(str(registry_id), self.outputs(fresh, None, registry_id))

    def adopt(self, props: dict[str, Any], found: dict) -> None:
        """Take over a registry of our name when it points where ours would; set it to the desired state."""
        differences = []
        if found.get("type") != props["type"]:
            differences.append(f"type {found.get('type')!r} (wanted {props['type']!r})")
        if harbor_url_form(found.get("url") or "") != props["url"]:
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
        news = self.typed(news)  # olds untyped: a setting the state lacks is still unapplied
        outputs = self.outputs({k: v for k, v in news.items() if k not in ("credential_hash", "access_key_hash")}, None, int(id_))
        if self.only_connection_changed(olds, news):
            self.verify_connection(news, id_)
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
            with_secret_outputs(opts, "credential_hash", "access_key_hash", "harbor_password"),
        )
