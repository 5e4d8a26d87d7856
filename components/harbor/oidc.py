"""Harbor's OIDC login (dex): the dynamic provider for the auth configuration and the resource."""

from __future__ import annotations

import urllib.parse
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CreateResult, ReadResult, UpdateResult

from components.harbor.api import HarborApiError
from components.harbor.provider_base import (
    UNKNOWN,
    Field,
    HarborConnection,
    HarborProvider,
    is_unknown,
    secret_hash,
    with_secret_outputs,
)

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

    def normalise(self, props: dict[str, Any]) -> dict[str, Any]:
        values = super().normalise(props)
        scope = values["oidc_scope"]
        if isinstance(scope, str) and not is_unknown(scope):
            # Harbor splits the scope at commas and trims each item (lib/config/userconfig.go
            # OIDCSetting -> SplitAndTrim): take it in that form, so it reads back equal.
            values["oidc_scope"] = ",".join(item.strip() for item in scope.split(",") if item.strip())
        return values

    def verify_path(self, id_: str) -> str:
        return "/configurations"

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
        # Every setting is shown, defaults included (controller/config ConvertForGet): one missing reads
        # as None, never as what the state holds, so the next `up` writes it.
        values = {key: (current.get(key) or {}).get("value") for key in self.SETTINGS}
        return ReadResult("oidc", self.outputs({**props, **values}))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        news = self.typed(news)  # olds untyped: a setting the state lacks is still unapplied
        self.apply_or_verify(id_, olds, news, self.apply)
        return UpdateResult(self.outputs({**news, "client_secret_hash": None}))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        props = self.typed(props)
        # Back to local users where Harbor allows it. Once any user other than admin exists Harbor
        # refuses (400, controller/config validateCfg) and stays on OIDC: say so, rather than let the
        # state claim OIDC is gone while Harbor still logs users in through it.
        try:
            self.client(props).request("PUT", "/configurations", {"auth_mode": "db_auth"})
        except HarborApiError as error:
            if error.status == 400:
                raise error.with_hint(
                    "Harbor stays on OIDC once any user other than admin exists. Delete those users in Harbor and "
                    "run `pulumi up` again; or, to leave Harbor on OIDC and stop managing it here, remove this "
                    "resource from the state with `pulumi state delete <its URN>`"
                ) from None
            raise


class HarborOidcAuth(pulumi.dynamic.Resource, module="harbor", name="OidcAuth"):
    def __init__(
        self, name: str, connection: HarborConnection, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {**props, "oidc_client_secret": pulumi.Output.secret(props["oidc_client_secret"])}
        super().__init__(
            HarborOidcProvider(),
            name,
            {**connection.props(), **props, "client_secret_hash": None},
            with_secret_outputs(opts, "client_secret_hash", "harbor_password"),
        )
