"""Harbor's system settings that a cache must not leave at Harbor's defaults: the dynamic provider and
the resource.

- `project_creation_restriction: adminonly` (Harbor's default is `everyone`). With `everyone`, any
  account that can log in (every OIDC user, and even the nodes' pull robot: handler/project.go
  CreateProject lets system robots create projects) may make projects of its own, with unlimited
  storage (storage_per_project defaults to -1): push without limit onto the data volume that also
  holds the database (or into the bucket), host images under the cache's trusted name, and add
  webhooks to its project that make Harbor call into the VPC. A cache needs no project but its
  proxy projects, which the admin makes.
- `self_registration: false` (Harbor's default too, owned so a change shows as drift). With
  database logins a self-registered account is a user other than admin, which locks `auth_mode`
  for good (controller/config authModeCanBeModified): OIDC could then never be switched on.

Both are read back by a refresh and drift-checked like every other object. Deleting the resource
leaves them as they are (opening project creation up again is never what removing it means).
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CreateResult, ReadResult, UpdateResult

from components.harbor.provider_base import Field, HarborConnection, HarborProvider, is_unknown, with_secret_outputs

# lib/config/metadata/type.go ProjectCreationRestrictionType validate.
PROJECT_CREATION_RESTRICTIONS = ("adminonly", "everyone")


class HarborSystemSettingsProvider(HarborProvider):
    KIND = "system settings"
    FIELDS = {
        "project_creation_restriction": Field(str, "adminonly"),
        "self_registration": Field(bool, False),
    }

    def validate(self, inputs: dict[str, Any]) -> list[CheckFailure]:
        value = inputs["project_creation_restriction"]
        if not is_unknown(value) and value not in PROJECT_CREATION_RESTRICTIONS:
            return [
                CheckFailure(
                    "project_creation_restriction",
                    f"project_creation_restriction must be one of {', '.join(PROJECT_CREATION_RESTRICTIONS)}, got {value!r}",
                )
            ]
        return []

    def verify_path(self, id_: str) -> str:
        return "/configurations"

    def outputs(self, props: dict[str, Any]) -> dict[str, Any]:
        return {**self.connection(props), **{key: props[key] for key in self.FIELDS}}

    def apply(self, props: dict[str, Any]) -> None:
        # PUT /configurations changes only the keys sent (handler/config.go UpdateConfigurations).
        self.client(props).request("PUT", "/configurations", {key: props[key] for key in self.FIELDS})

    def create(self, props: dict[str, Any]) -> CreateResult:
        props = self.typed(props)
        self.apply(props)
        return CreateResult("system-settings", self.outputs(props))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        props = self.typed(props)
        current = self.client(props).get("/configurations") or {}
        # Harbor shows every user setting, defaults included (controller/config ConvertForGet); one
        # missing reads as None, which no input equals, so the next `up` writes it.
        values = {key: (current.get(key) or {}).get("value") for key in self.FIELDS}
        return ReadResult(id_, self.outputs({**props, **values}))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        news = self.typed(news)  # olds untyped: a setting the state lacks is still unapplied
        self.apply_or_verify(id_, olds, news, self.apply)
        return UpdateResult(self.outputs(news))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Leaves Harbor's settings as they are (see the module docstring)."""


class HarborSystemSettings(pulumi.dynamic.Resource, module="harbor", name="SystemSettings"):
    def __init__(
        self, name: str, connection: HarborConnection, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            HarborSystemSettingsProvider(), name, {**connection.props(), **props}, with_secret_outputs(opts, "harbor_password")
        )
